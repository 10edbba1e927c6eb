-- limits: value caps per chain. Per transaction: limits.max_value_eth (or the chain's own
-- settings.chains[name].max_value_eth); per hour: settings.max_value_eth_per_hour (or the
-- chain's per_hour_eth), over what this engine let through on the chain in the last hour.
local function caps(ctx)
  local s = ctx.settings or {}
  local c = s.chains and s.chains[ctx.chain.name] or {}
  return c.max_value_eth or ctx.limits.max_value_eth, c.per_hour_eth or s.max_value_eth_per_hour
end

local function judge(value, spent, per_tx, per_hour)
  if per_tx and value > per_tx then
    return "reject", ("value %.6f ETH is above the %.6f ETH a transaction may move"):format(value, per_tx)
  end
  if per_hour and spent + value > per_hour then
    return "reject", ("value %.6f ETH would take the last hour to %.6f ETH, above %.6f ETH an hour")
      :format(value, spent + value, per_hour)
  end
  return "allow"
end

return {
  name = "limits",
  version = 1,
  before_send = function(tx, ctx)
    local per_tx, per_hour = caps(ctx)
    return judge(tx.value_eth, ctx.spent_hour_eth or 0, per_tx, per_hour)
  end,
  self_test = function()
    assert(judge(1, 0, nil, nil) == "allow")
    assert(judge(2, 0, 1, nil) == "reject")
    assert(judge(1, 9.5, 5, 10) == "reject")
    assert(judge(0.5, 9.5, 5, 10) == "allow")
  end,
}
