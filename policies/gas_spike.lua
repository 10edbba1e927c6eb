-- gas_spike: hold sends while the next block's base fee is above the line, and say whether
-- that is a spike (it will pass: far above the window's average) or a new level (the average
-- has caught up with it: the line may be what needs to move).
--
-- The line: settings.max_base_fee_gwei, else limits.max_gas_price_gwei (MAX_GAS_PRICE_GWEI),
-- else 500. Above settings.warn_gwei (default: 80% of the line) a send still goes, with a
-- warning in its events and the log. The engine's own cap (send.lua's cap step) stays a
-- floor under this: nothing is signed above limits.max_gas_price_gwei, whatever this says.
local DEFAULT_GWEI = 500
local SPIKE_RATIO = 1.5    -- next base fee / the window's mean: above this, a spike

local function trend(fees) return ("mean %.2f gwei, slope %+.2f gwei/block"):format(fees.avg, fees.slope) end

local function judge(fees, max, warn)
  local next_fee = fees.next_base_fee
  if next_fee <= warn then return "allow" end       -- the common case: nothing to say
  if next_fee > max then
    local avg = fees.avg
    local what = (avg > 0 and next_fee > avg * SPIKE_RATIO) and "a spike" or "a new level"
    return "queue", ("next base fee %.2f gwei is above %.2f gwei: %s (%s)"):format(next_fee, max, what, trend(fees))
  end
  return "allow", ("warn: next base fee %.2f gwei is near the %.2f gwei line (%s)"):format(next_fee, max, trend(fees))
end

return {
  name = "gas_spike",
  version = 1,
  before_send = function(_, ctx)
    local s = ctx.settings
    local max = (s and s.max_base_fee_gwei) or ctx.limits.max_gas_price_gwei
    if max == false then return "allow" end       -- the cap is off and no line of its own: none drawn
    max = max or DEFAULT_GWEI
    return judge(ctx.fees, max, (s and s.warn_gwei) or max * 0.8)
  end,
  self_test = function()
    local calm = { next_base_fee = 10, avg = 10, slope = 0 }
    assert(judge(calm, 100, 80) == "allow")
    local v, why = judge({ next_base_fee = 300, avg = 40, slope = 20 }, 100, 80)
    assert(v == "queue" and why:find("a spike", 1, true), why)
    v, why = judge({ next_base_fee = 120, avg = 118, slope = 0.1 }, 100, 80)
    assert(v == "queue" and why:find("a new level", 1, true), why)
    v, why = judge({ next_base_fee = 90, avg = 60, slope = 3 }, 100, 80)
    assert(v == "allow" and why:find("^warn"), why)
  end,
}
