-- approvals: ERC-20 approve and transfer rules.
--  * An unlimited approval (2^255 or more) goes only to a spender in settings.unlimited_spenders.
--  * A non-zero approve over a non-zero allowance is refused: USDT-style tokens revert it, and
--    on any token it opens the window where the spender moves the old allowance and then the
--    new one. token:approve (ferry.eth.erc20) sets the allowance to 0 first, then the amount.
--  * A token's approve or transfer that the simulation saw return false is refused; one that
--    returns nothing at all (USDT) succeeded.
local APPROVE, TRANSFER, TRANSFER_FROM = "0x095ea7b3", "0xa9059cbb", "0x23b872dd"
local FALSE = "0x" .. ("0"):rep(64)

local function listed(list, addr)
  for _, a in ipairs(list or {}) do
    if a:lower() == addr then return true end
  end
  return false
end

local function judge(tx, sim, settings)
  local ap = tx.approve
  if ap then
    if ap.unlimited and not listed(settings.unlimited_spenders, ap.spender) then
      return "reject", ("unlimited approval to %s, which is not in unlimited_spenders"):format(ap.spender)
    end
    if not ap.zero and ap.current_allowance and ap.current_allowance ~= "0" then
      return "reject", ("allowance of %s is %s: set it to 0 first (token:approve does)"):format(ap.spender, ap.current_allowance)
    end
  end
  local sel = tx.selector
  if sim and not sim.reverted and (sel == APPROVE or sel == TRANSFER or sel == TRANSFER_FROM) and sim.return_data == FALSE then
    return "reject", "the token answered false: nothing would move"
  end
  return "allow"
end

return {
  name = "approvals",
  version = 1,
  simulate = true,
  before_send = function(tx, ctx) return judge(tx, ctx.simulation, ctx.settings or {}) end,
  self_test = function()
    local spender = "0x00000000000000000000000000000000000000aa"
    local unlimited = { selector = APPROVE, approve = { spender = spender, unlimited = true, zero = false, current_allowance = "0" } }
    assert(judge(unlimited, nil, {}) == "reject")
    assert(judge(unlimited, nil, { unlimited_spenders = { (spender:upper():gsub("^0X", "0x")) } }) == "allow")
    local over = { selector = APPROVE, approve = { spender = spender, unlimited = false, zero = false, current_allowance = "5" } }
    assert(judge(over, nil, {}) == "reject")
    local reset = { selector = APPROVE, approve = { spender = spender, unlimited = false, zero = true, current_allowance = "5" } }
    assert(judge(reset, nil, {}) == "allow")
    assert(judge({ selector = TRANSFER }, { return_data = FALSE }, {}) == "reject")
    assert(judge({ selector = TRANSFER }, { return_data = "0x" }, {}) == "allow")
  end,
}
