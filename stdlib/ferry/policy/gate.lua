--- ferry.policy.gate -- the send pipeline's policy step: what the configured policies see, what
--- their verdicts do, and the queue.
---
---   allow              the send goes on
---   reject, reason     policy_rejected {policy, hash, reason}
---   queue, reason      held; judged again on every new head, up to policies.max_queue_wait
---                      seconds, then queued_timeout. Once allowed, the fees are filled again
---                      (what the chain asks now) and capped: a fee still above the engine's cap
---                      keeps it queued, so nothing above the cap is ever signed.
---   route, name        ctx.route ("public" only for now)
---
--- Every judgment is an event in the send's events: step "policy:<name>", outcome the verdict,
--- with the policy's name, content hash and reason.
local ferry = require "ferry"
local json = require "ferry.core.json"
local u256 = require "ferry.core.u256"
local policy = require "ferry.policy"
local simulate = require "ferry.simulate"
local events = require "ferry.eth.events"

local M = {}

local HISTORY = 20                -- blocks of eth_feeHistory a policy sees
local APPROVE = "0x095ea7b3"      -- approve(address,uint256)

local function gwei(v) return v and tonumber(u256.format_units(v, 9)) or nil end
local function eth_of(v) return tonumber(u256.format_units(v, 18)) end
local function qty(h) return u256.new(h) end

-- The chain's fee history as numbers a policy can compare: gwei per block, oldest first (the
-- last is the next block's base fee), its mean, its slope per block (least squares) and the
-- tip's median.
function M.fee_view(history)
  local bases = {}
  for i, b in ipairs(history.baseFeePerGas or {}) do bases[i] = gwei(qty(b)) end
  local n = #bases
  local sum = 0
  for _, b in ipairs(bases) do sum = sum + b end
  local avg = n > 0 and sum / n or 0
  local sx, sxy, sxx = 0, 0, 0
  for i, b in ipairs(bases) do
    local x = i - (n + 1) / 2
    sx, sxy, sxx = sx + x, sxy + x * (b - avg), sxx + x * x
  end
  local slope = sxx > 0 and sxy / sxx or 0
  local ratios, rsum = history.gasUsedRatio or {}, 0
  for _, r in ipairs(ratios) do rsum = rsum + r end
  return { history = bases, next_base_fee = bases[n] or 0, base_fee = bases[n - 1] or bases[n] or 0, avg = avg,
           slope = slope, gas_used_ratio = #ratios > 0 and rsum / #ratios or 0 }
end

-- approve(spender, amount) decoded, for approvals.lua: unlimited is 2^255 or more (what
-- wallets send as "unlimited" is 2^256 - 1; some send 2^255)
local function approve_of(data)
  if type(data) ~= "string" or data:sub(1, 10):lower() ~= APPROVE or #data < 10 + 128 then return nil end
  local spender = "0x" .. data:sub(10 + 25, 10 + 64)
  local digits = data:sub(10 + 65, 10 + 128)
  return { spender = spender:lower(), amount = tostring(u256.new("0x" .. digits)), zero = not digits:find("[1-9a-fA-F]"),
           unlimited = tonumber(digits:sub(1, 1), 16) >= 8 }
end

-- what one address's sends in flight are: this process's holds other than this send's
local function pending_of(ctx)
  local n = 0
  for h in pairs(ctx.nonces.holds or {}) do if h ~= ctx.hold then n = n + 1 end end
  return n
end

-- value this engine allowed per chain in the last hour (limits.lua's per-hour cap)
local spent = {}
local function spent_hour(key, now)
  local w = spent[key] or {}
  spent[key] = w
  local total, kept = 0, {}
  for _, e in ipairs(w) do
    if now - e.at < 3600 then kept[#kept + 1] = e; total = total + e.eth end
  end
  spent[key] = kept
  return total
end
local function record_spend(key, now, eth)
  if eth > 0 then table.insert(spent[key], { at = now, eth = eth }) end
end

local function tx_view(ctx)
  local t = { from = ctx.from, to = ctx.to, value = tostring(ctx.value), value_eth = eth_of(ctx.value),
              data = ctx.data or "0x", gas = ctx.gas, legacy = ctx.legacy == true,
              max_fee_gwei = gwei(ctx.max_fee), tip_gwei = gwei(ctx.tip), gas_price_gwei = gwei(ctx.gas_price) }
  t.selector = type(ctx.data) == "string" and #ctx.data >= 10 and ctx.data:sub(1, 10):lower() or nil
  t.approve = approve_of(ctx.data)
  return t
end

-- An allowance is state a policy cannot read: read it for approve (allowance(owner, spender)).
local function allowance_of(ctx, approve)
  local data = "0xdd62ed3e" .. ("0"):rep(24) .. ctx.from:sub(3):lower() .. ("0"):rep(24) .. approve.spender:sub(3)
  local ok, r = pcall(ctx.chain.eth_call, ctx.chain, { to = ctx.to, data = data }, "latest", { fresh = true })
  if ok and type(r) == "string" and #r >= 66 then return tostring(u256.new(r:sub(1, 66))) end
  return nil
end

--- context(ctx, fees, queued_for, attempts) -> tx, view: what a policy sees of a send (plain data).
function M.context(ctx, fees, queued_for, attempts)
  local base = ctx.base
  local root = base.cfg_root or {}
  local limits = {}
  for k, v in pairs(root.limits or {}) do limits[k] = v end
  local key = tostring(base.chain_id)
  local tx = tx_view(ctx)
  if tx.approve then tx.approve.current_allowance = allowance_of(ctx, tx.approve) end
  return tx, {
    chain = { name = base.name, chain_id = base.chain_id, simulation_required = base.cfg.simulation_required == true },
    fees = fees, simulation = ctx.simulation, pending = pending_of(ctx), limits = limits,
    spent_hour_eth = spent_hour(key, os.time()), queued_for = queued_for or 0, attempts = attempts or 1,
    now = os.time(),
  }
end

local function fees_now(ctx, fresh)
  local h = ctx.chain:_must("eth_feeHistory", { ("0x%x"):format(HISTORY), "latest", json.array({}) },
    fresh and { fresh = true } or nil)
  return M.fee_view(h)
end

-- The decisions as events of the send, each with the policy's name and content hash.
local function record(ctx, decisions, t0)
  for _, d in ipairs(decisions) do
    events.emit(ctx, "policy:" .. d.policy, d.verdict, t0)
    local ev = ctx.events[#ctx.events]
    ev.policy, ev.policy_hash, ev.reason, ev.us = d.policy, d.hash, d.reason, d.us
    if d.verdict == "allow" and d.reason then      -- an allow with a note: a warning
      ferry.log.warn("policy note", { policy = d.policy, note = d.reason, id = ctx.id })
    end
  end
end

local function simulation_event(ctx, sim, t0)
  events.emit(ctx, "simulation", sim.reverted and "reverted" or "ok", t0)
  local ev = ctx.events[#ctx.events]
  ev.via, ev.fallback, ev.reason, ev.gas_used = sim.via, sim.fallback, sim.reason, sim.gas_used
  ev.balance_changes, ev.storage_changes, ev.reentrant, ev.logs = sim.balance_changes, sim.storage_changes,
    sim.reentrant, #(sim.logs or {})
end

--- simulate(ctx): ferry.simulate over the send (once), its result in ctx.simulation and the
--- events. A failure to simulate at all is kept in ctx.simulation_error.
function M.simulate(ctx)
  if ctx.simulation or ctx.simulation_error then return ctx.simulation end
  local t0 = ferry.now()
  local ok, sim = pcall(simulate.run, ctx.chain, { from = ctx.from, to = ctx.to, value = ctx.value, data = ctx.data,
                                                   gas = ctx.gas })
  if not ok then ctx.simulation_error = sim; return nil end
  ctx.simulation = sim
  simulation_event(ctx, sim, t0)
  return sim
end

--- run(ctx, refill) -> outcome for the policy step. refill(): the pipeline's fill_fees and cap
--- again (after a queue). Raises policy_rejected, queued_timeout.
function M.run(ctx, refill)
  local base = ctx.base
  if not policy.ensure(base.cfg_root) then return "skipped" end
  local list = policy.current()
  if #list == 0 then return "skipped" end
  local pc = base.cfg_root.policies or {}
  local settings = pc.settings
  -- a full simulation (traces, state changes) where it is required or a setting needs what
  -- only it shows; otherwise a policy that wants one gets it, except for a plain value
  -- transfer that eth_estimateGas already ran at the pending block (fill_gas: a revert fails
  -- there): it calls no code, and its state change is the value moving. That spared every
  -- payout of the demo four calls (two debug_traceCall, an estimate, an eth_call).
  local sc = settings and settings.simulation or {}
  local full = base.cfg.simulation_required or sc.required == true or sc.reject_reentrant == true
  local plain = ctx.simulated and (ctx.data == nil or ctx.data == "" or ctx.data == "0x")
  if full or (policy.wants_simulation(list) and not plain) then M.simulate(ctx) end
  local started, max_wait = ferry.now(), pc.max_queue_wait or 600
  local attempts, fresh = 0, false
  local heads = base.pool.heads
  -- while queued the head is kept fresh (Pool:watch_heads), and let go however this ends
  local watching <close> = setmetatable({}, { __close = function(w)
    if w.guard then getmetatable(w.guard).__close(w.guard) end
  end })
  while true do
    attempts = attempts + 1
    local t0 = ferry.now()
    local tx, view = M.context(ctx, fees_now(ctx, fresh), t0 - started, attempts)
    local verdict, arg, decisions = policy.judge(tx, view, list, settings)
    record(ctx, decisions, t0)
    local last = decisions[#decisions] or {}
    if verdict == "reject" then
      ferry.raise("policy_rejected", ("policy %s: %s"):format(last.policy, arg),
        { policy = last.policy, policy_hash = last.hash, reason = arg })
    end
    if verdict == "allow" or verdict == "route" then
      if attempts == 1 then
        ctx.route = verdict == "route" and arg or "public"
        record_spend(tostring(base.chain_id), os.time(), tx.value_eth)
        return verdict == "route" and ("route:" .. arg) or "allow"
      end
      -- fees again, as the chain asks now; above the engine's cap it stays queued
      local ok, err = pcall(refill)
      if ok then
        ctx.route = verdict == "route" and arg or "public"
        record_spend(tostring(base.chain_id), os.time(), tx.value_eth)
        return "released"
      end
      if type(err) ~= "table" or err.code ~= "policy_rejected" then error(err, 0) end
      arg, last = err.message, { policy = "cap" }
    end
    -- queued: wait for the next head, up to the maximum wait
    local waited = ferry.now() - started
    if waited >= max_wait then
      ferry.raise("queued_timeout", ("queued by %s for %.1f s (%s); the maximum wait is %s s")
        :format(last.policy, waited, arg, tostring(max_wait)), { policy = last.policy, reason = arg, waited = waited })
    end
    watching.guard = watching.guard or base.pool:watch_heads()
    local after = heads.number or 0
    heads:wait(after, max_wait - waited)
    fresh = true
    list = policy.current()             -- a new judgment uses the policies in force now
  end
end

return M
