--- ferry.simulate -- what a transaction would do, before it is signed.
---
---   local sim = require("ferry.simulate").run(chain, {from =, to =, value =, data =, gas =})
---   sim.ok, sim.reverted, sim.reason, sim.gas_used, sim.logs, sim.balance_changes,
---   sim.storage_changes, sim.reentrant, sim.return_data, sim.via, sim.fallback
---
--- Tenderly first when configured (tenderly = {account, project, access_key}); when it cannot
--- be reached, the node takes over and `fallback` says why. On the node: eth_call (the revert
--- reason) and eth_estimateGas, then whichever of debug_traceCall (callTracer with logs, and
--- prestateTracer in diff mode for state changes) or eth_simulateV1 the node has: found out
--- once per chain and remembered. A node with neither gives `via = "eth_call"` and no state
--- changes. Raises only on what no simulation can answer (a node down): the caller decides
--- whether that blocks the send (simulation_required does).
local ferry = require "ferry"
local json = require "ferry.core.json"
local http = require "ferry.core.http"
local A = require "ferry.eth.args"

local M = {}

local capability = setmetatable({}, { __mode = "k" })   -- chain -> "trace" | "simulate" | "none"

-- answers that mean "this node does not have the method" (anvil, hardhat, geth's wordings)
local function unsupported(err)
  local m = tostring(err and err.message or ""):lower()
  local c = err and err.rpc_code
  return c == -32601 or c == -32004 or c == -32602 or m:find("not supported", 1, true) ~= nil
    or m:find("not found", 1, true) ~= nil or m:find("only supports the default tracer", 1, true) ~= nil
end

local function call_object(t)
  local o = json.object({})
  o.from = t.from
  if t.to then o.to = t.to end
  if t.value and t.value > A.U(0) then o.value = t.value:tohex() end
  if t.data and t.data ~= "0x" and t.data ~= "" then o.data = t.data end
  if t.gas then o.gas = ("0x%x"):format(t.gas) end
  return o
end

local function qty(v) return type(v) == "string" and tonumber(v:sub(3), 16) or v end

-- A call tree re-enters when a contract already on the stack is called again below itself.
local function reentrant(frame, stack)
  stack = stack or {}
  local to = type(frame.to) == "string" and frame.to:lower() or nil
  if to and stack[to] then return true end
  if to then stack[to] = true end
  for _, sub in ipairs(type(frame.calls) == "table" and frame.calls or {}) do
    if reentrant(sub, stack) then return true end
  end
  if to then stack[to] = nil end
  return false
end

-- every log of the call tree, in order
local function collect_logs(frame, out)
  for _, l in ipairs(type(frame.logs) == "table" and frame.logs or {}) do
    out[#out + 1] = { address = l.address, topics = l.topics, data = l.data }
  end
  for _, sub in ipairs(type(frame.calls) == "table" and frame.calls or {}) do collect_logs(sub, out) end
  return out
end

-- prestateTracer diff mode -> balance_changes {addr = {before =, after =}}, storage_changes
-- {addr = {slot = {before =, after =}}}
local function state_changes(diff)
  local balances, storage = {}, {}
  local pre, post = diff.pre or {}, diff.post or {}
  for addr, p in pairs(post) do
    local b = pre[addr] or {}
    if p.balance and p.balance ~= b.balance then
      balances[addr] = { before = b.balance or "0x0", after = p.balance }
    end
    for slot, v in pairs(type(p.storage) == "table" and p.storage or {}) do
      local was = type(b.storage) == "table" and b.storage[slot] or ("0x" .. ("0"):rep(64))
      if v ~= was then
        storage[addr] = storage[addr] or {}
        storage[addr][slot] = { before = was, after = v }
      end
    end
  end
  return balances, storage
end

local function via_trace(chain, obj, sim)
  local tree, err = chain:_call("debug_traceCall", { obj, "latest",
    { tracer = "callTracer", tracerConfig = { withLog = true } } }, { fresh = true })
  if err then return nil, err end
  sim.gas_used = qty(tree.gasUsed) or sim.gas_used
  sim.logs = collect_logs(tree, {})
  sim.reentrant = reentrant(tree)
  if tree.error then
    sim.reverted, sim.ok = true, false
    sim.reason = sim.reason or tree.revertReason or tree.error
  end
  local diff = chain:_call("debug_traceCall", { obj, "latest",
    { tracer = "prestateTracer", tracerConfig = { diffMode = true } } }, { fresh = true })
  if type(diff) == "table" then sim.balance_changes, sim.storage_changes = state_changes(diff) end
  return true
end

local function via_simulate(chain, obj, sim)
  local blocks, err = chain:_call("eth_simulateV1", { { blockStateCalls = { { calls = { obj } } },
    validation = false, traceTransfers = true }, "latest" }, { fresh = true })
  if err then return nil, err end
  local c = type(blocks) == "table" and blocks[1] and blocks[1].calls and blocks[1].calls[1]
  if not c then return true end
  sim.gas_used = qty(c.gasUsed) or sim.gas_used
  sim.logs = {}
  for _, l in ipairs(c.logs or {}) do sim.logs[#sim.logs + 1] = { address = l.address, topics = l.topics, data = l.data } end
  if c.status == "0x0" then
    sim.reverted, sim.ok = true, false
    if not sim.reason then
      local e = A.revert_error({ message = "execution reverted", data = c.returnData })
      sim.reason = e.reason
    end
  end
  return true
end

-- The node's own view: eth_call for the revert reason, then the richest tracer it has.
local function local_sim(chain, t, sim)
  local obj = call_object(t)
  local ok, err = pcall(chain.eth_call, chain, t, "latest", { fresh = true })
  sim.via = "eth_call"
  if not ok then
    if type(err) ~= "table" or err.code ~= "reverted" then error(err, 0) end
    sim.ok, sim.reverted, sim.reason, sim.revert = false, true, err.reason, err.revert
  else
    sim.ok, sim.return_data = true, err          -- "0x" from a token that returns nothing (USDT)
    local gok, gas = pcall(chain.estimate_gas, chain, t)
    if gok then sim.gas_estimate = gas end
  end
  local cap = capability[chain.base or chain]
  local order = cap and { cap } or { "trace", "simulate" }
  for _, how in ipairs(order) do
    if how == "none" then break end
    local fine, e = (how == "trace" and via_trace or via_simulate)(chain, obj, sim)
    if fine then
      capability[chain.base or chain] = how
      sim.via = how == "trace" and "debug_traceCall" or "eth_simulateV1"
      return sim
    end
    if not unsupported(e) then
      ferry.log.warn("simulation: the node's tracer failed; the eth_call result stands", { method = how, err = tostring(e) })
      return sim
    end
  end
  capability[chain.base or chain] = "none"
  return sim
end

-- Tenderly's simulate API. -> true | nil, why (unreachable, refused)
local function tenderly(cfg, chain, t, sim)
  local rpc = require "ferry.rpc"
  local base = cfg.url or "https://api.tenderly.co"
  local url = ("%s/api/v1/account/%s/project/%s/simulate"):format(base, cfg.account, cfg.project)
  local body = json.encode({ network_id = tostring(chain.chain_id), from = t.from, to = t.to,
    input = t.data or "0x", value = t.value and tostring(t.value) or "0", gas = t.gas, save = false,
    simulation_type = "full" })
  local status, text = http.request(url, { method = "POST", body = body, timeout = cfg.timeout or 5,
    headers = { ["X-Access-Key"] = rpc.reveal(cfg.access_key) or "", ["Content-Type"] = "application/json" } })
  if not status then return nil, tostring(text and text.message or text) end
  if status ~= 200 then return nil, ("HTTP %d"):format(status) end
  local okj, r = pcall(json.decode, text)
  if not okj or type(r) ~= "table" or type(r.transaction) ~= "table" then return nil, "an answer it could not read" end
  local tx = r.transaction
  sim.via, sim.ok = "tenderly", tx.status ~= false
  sim.reverted = tx.status == false
  sim.reason = tx.error_message
  sim.gas_used = tx.gas_used
  return true
end

--- run(chain, {from, to, value (u256), data, gas}) -> sim (a plain table, as policies see it)
function M.run(chain, t)
  local sim = { ok = true, reverted = false, logs = {}, balance_changes = {}, storage_changes = {}, reentrant = false }
  local root = chain.cfg_root or {}
  local tc = root.tenderly
  if tc and tc.account and tc.project and tc.access_key then
    local ok, why = tenderly(tc, chain, t, sim)
    if ok then return sim end
    sim.fallback = ("tenderly unreachable (%s): simulated on the node instead"):format(why)
    ferry.log.warn("simulation: tenderly unreachable, simulating on the node", { why = why })
  end
  return local_sim(chain, t, sim)
end

--- forget(chain): find out again what the chain's node offers (a provider changed).
function M.forget(chain) capability[chain] = nil end

return M
