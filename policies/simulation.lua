-- simulation: nothing goes out that its simulation says reverts. Required (no simulation, no
-- send) on chains with simulation_required, or with settings.required (SIMULATION_REQUIRED).
-- settings.reject_reentrant: also refuse a call whose trace re-enters a contract.
local function judge(sim, required, reject_reentrant)
  if not sim then
    if required then return "reject", "simulation is required here, and none could run" end
    return "allow"
  end
  if sim.reverted then return "reject", "simulated revert: " .. tostring(sim.reason or "no reason given") end
  if sim.reentrant and reject_reentrant then return "reject", "the simulated call re-enters a contract" end
  return "allow"
end

return {
  name = "simulation",
  version = 1,
  simulate = true,          -- the engine simulates before asking (ctx.simulation)
  before_send = function(_, ctx)
    local s = ctx.settings or {}
    return judge(ctx.simulation, ctx.chain.simulation_required or s.required == true, s.reject_reentrant == true)
  end,
  self_test = function()
    assert(judge(nil, false) == "allow")
    assert(judge(nil, true) == "reject")
    local v, why = judge({ reverted = true, reason = "nope" }, false)
    assert(v == "reject" and why == "simulated revert: nope", why)
    assert(judge({ reverted = false, reentrant = true }, false, true) == "reject")
    assert(judge({ reverted = false }, true) == "allow")
  end,
}
