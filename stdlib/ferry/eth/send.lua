--- ferry.eth.send -- signer:send{}: the send pipeline, a list of named steps over one context.
---
---   validate -> claim -> fill_fees -> cap -> fill_gas -> policy -> preflight -> simulate
---   -> reserve -> sign -> journal -> broadcast -> track
---
--- Every send is a row of the journal (ferry.store.journal), written before each step that
--- matters is taken: reserved (its nonce), signed (its raw bytes, on disk before they leave),
--- then sent / unsure / failed / taken, and confirmed by tx:wait. A send with an `id` claims
--- it first: a second send with the same id returns the first transaction (ferry.store).
---
--- Each step is a small function of the send's context (ctx): it fills fields in, or raises
--- an error table, and nothing after it runs. A fee bump runs fill_fees (raised), cap, sign
--- and broadcast over the transaction it replaces; the gap filler runs fill_fees, cap, sign,
--- broadcast and track for a 0-value transfer to self. Neither calls back into send.
---
--- Every step emits an event {id, step, outcome, at, dt, nonce, hash}: outcome is "ok",
--- "skipped" (nothing to do: a policy step with no policy, a simulation that estimation
--- already ran), what the step settled ("sent", "unsure" ... for broadcast) or the code of
--- the error it raised. eth.on_step(fn) listens; tx.events keeps a send's own; the journal
--- (stores issue) will record them and the REPL show them.
local ferry = require "ferry"
local u256 = require "ferry.core.u256"
local values = require "ferry.eth.values"
local delivery = require "ferry.eth.delivery"
local A = require "ferry.eth.args"
local Signer = require("ferry.eth.signer").Signer
local Tx = require "ferry.eth.tx"
local events = require "ferry.eth.events"
local store = require "ferry.store"
local shutdown = require "ferry.shutdown"
local gate = require "ferry.policy.gate"

local M = {}
local U, raise = A.U, ferry.raise

local emit = events.emit
local seq = 0

---------------------------------------------------------------------------------------------
-- The steps. ctx: id, signer, base (the chain), chain (its one-provider view for this send),
-- from, t (the caller's table, never changed), to, value, data, legacy, max_fee, tip,
-- gas_price, price, gas, simulated, nonces, hold, nonce, fields, raw, hash, outcome, err, tx.
-- A step returns nothing ("ok") or the outcome it settled.
---------------------------------------------------------------------------------------------

local S = {}
local run                 -- the step runner (below)

-- A fill(n) for the gap filler: a 0-value transfer to self at nonce n (see M.fill).
local function filler(ctx) return function(n) return M.fill(ctx.signer, n) end end

-- Fields, addresses and amounts, before any I/O.
function S.validate(ctx)
  shutdown.check()                             -- Ctrl-C: nothing new starts
  local t = ctx.t
  A.check_fields(t, A.SEND_FIELDS, "signer:send")
  if t.to == nil and (t.data == nil or t.data == "" or t.data == "0x") then
    raise("invalid_argument", "signer:send: no `to`, and no `data` to deploy (a contract creation needs its init code)")
  end
  ctx.to = t.to ~= nil and A.address(t.to, "signer:send: to") or nil
  ctx.value = t.value and A.u256(t.value, "signer:send: value") or U(0)
  ctx.data = t.data
  A.data(t.data, "signer:send: data")
  A.check_tip(t.max_fee, t.max_priority_fee, "signer:send")
  ctx.legacy = t.gas_price ~= nil or ctx.base.cfg.legacy
  ctx.max_fee = t.max_fee and A.u256(t.max_fee, "signer:send: max_fee")
  ctx.tip = t.max_priority_fee and A.u256(t.max_priority_fee, "signer:send: max_priority_fee")
  ctx.gas_price = t.gas_price and A.u256(t.gas_price, "signer:send: gas_price")
  ctx.gas = t.gas
  ctx.explicit_nonce = t.nonce
  ctx.explicit_fees = t.max_fee ~= nil or t.gas_price ~= nil    -- the caller's price is not raised
end

-- The payment as the journal keeps it (and an id's second send is compared with).
local function payment(ctx)
  return { to = ctx.to, value = ctx.value, data = ctx.data, gas = ctx.gas, legacy = ctx.legacy or nil,
           max_fee = ctx.max_fee, max_priority_fee = ctx.tip, gas_price = ctx.gas_price }
end

local function same_payment(row, ctx)
  local f = row.fields or {}
  local function norm(v) return v ~= nil and tostring(v):lower() or nil end
  return norm(f.to) == norm(ctx.to) and tostring(f.value or "0") == tostring(ctx.value)
    and norm(f.data or "0x") == norm(ctx.data or "0x")
end

-- An id given by the caller is claimed before anything else: a second send with the same id
-- (another task, a run after a crash, another process on the same Redis) returns the first
-- transaction instead of paying again; one that paid nothing (failed, taken) is sent again.
-- A claim still before its signature (here, or by a live process on the shared journal) is
-- waited for; one whose process died before signing is taken over (ferry.store.journal).
function S.claim(ctx)
  local id = ctx.t.id
  if id == nil then return "skipped" end
  ctx.nonces:ready(ctx.signer, filler(ctx))   -- the address's lease; a journal left by a crash is resumed first
  local journal = ctx.journal
  local said
  while true do
    local row = journal:claim(id, { chain = ctx.base.name, chain_id = ctx.base.chain_id, address = ctx.from,
                                    chain_key = ctx.nonces.chain_key, fields = payment(ctx) })
    if row == nil then
      ctx.claimed = true
      return "ok"
    end
    if not same_payment(row, ctx) then
      raise("invalid_argument", ("signer:send: id %q was already used for another payment (to %s, value %s)")
        :format(id, tostring(row.fields and row.fields.to), tostring(row.fields and row.fields.value)),
        { argument = "id", id = id, state = row.state })
    end
    local live = journal.live[id]
    if live then ctx.tx = live; ctx.done = true; return "duplicate" end
    if row.raw and row.state ~= "new" and row.state ~= "reserved" then
      ctx.tx = M.from_row(ctx.signer, row)
      ctx.done = true
      return "duplicate"
    end
    -- claimed by a send still before its signature: wait for it to settle
    if row.busy and not said then
      said = true
      ferry.log.info("another process is sending this id; waiting for it", { id = id, owner = row.owner })
    end
    ferry.sleep(row.busy and 0.2 or 0.05)
  end
end

-- What the chain asks now, for the fees the caller left out.
function S.fill_fees(ctx)
  local chain = ctx.chain
  if ctx.legacy then
    if ctx.gas_price then return "given" end
    ctx.gas_price = chain:gas_price()
  else
    if ctx.max_fee and ctx.tip then return "given" end
    local f = chain:fees()
    ctx.tip = ctx.tip or f.max_priority_fee
    ctx.max_fee = ctx.max_fee or f.max_fee
    ctx.base_fee = f.base_fee
    if ctx.tip > ctx.max_fee then ctx.tip = ctx.max_fee end
  end
end

-- limits.max_gas_price_gwei: nothing is signed above it. A max fee this engine filled in (the
-- base fee times base_multiplier, plus the tip) is lowered to the cap while the chain can
-- still mine at it (next base fee + tip within the cap): the cap bounds what may be paid, not
-- the headroom. A caller's own fee above the cap is refused.
local function cap_of(ctx)
  local limits = ctx.base.cfg_root.limits
  local cap = limits and limits.max_gas_price_gwei
  if cap and cap ~= false then return values.gwei(cap), cap end
end

local function above_cap(price, cap_gwei)
  return ferry.error("policy_rejected", ("fee %s gwei is above the cap of %s gwei (limits.max_gas_price_gwei)")
    :format(u256.format_units(price, 9), tostring(cap_gwei)), { max_fee = price, cap_gwei = cap_gwei })
end

function S.cap(ctx)
  ctx.price = ctx.legacy and ctx.gas_price or ctx.max_fee
  ctx.over_cap = nil
  local cap, cap_gwei = cap_of(ctx)
  if not cap or ctx.price <= cap then return end
  if not ctx.legacy and not ctx.explicit_fees and ctx.base_fee and ctx.base_fee + ctx.tip <= cap then
    ctx.max_fee, ctx.price = cap, cap
    return "lowered"
  end
  error(above_cap(ctx.price, cap_gwei), 0)
end

-- The send pipeline's cap step: a caller's fee above the cap fails here, before any I/O; a
-- fee the chain asks that is above it (a base fee spike) is judged after the policies, so a
-- policy (gas_spike.lua) may queue the send until the fee falls instead.
local function cap_step(ctx)
  local ok, outcome = pcall(S.cap, ctx)
  if ok then return outcome end
  if type(outcome) == "table" and outcome.code == "policy_rejected" and not ctx.explicit_fees then
    ctx.over_cap = outcome
    return "deferred"
  end
  error(outcome, 0)
end

-- eth_estimateGas (with the chain's margin), which also runs the call: a revert is reported
-- with its reason here, before anything is signed.
function S.fill_gas(ctx)
  if ctx.gas then return "given" end
  ctx.gas = ctx.chain:estimate_gas({ from = ctx.from, to = ctx.to, value = ctx.value, data = ctx.data })
  ctx.simulated = true
end

-- before_send policies (ferry.policy.gate): allow, reject, queue until a later head, route.
-- After a queue the fees are filled again and capped (validate re-reads the caller's own
-- fees; the gas estimated before stays).
function S.policy(ctx)
  local outcome = gate.run(ctx, function()
    local gas, simulated = ctx.gas, ctx.simulated
    S.validate(ctx)
    ctx.gas, ctx.simulated = gas, simulated
    S.fill_fees(ctx)
    S.cap(ctx)                                 -- still above the cap: it stays queued
  end)
  if ctx.over_cap then error(ctx.over_cap, 0) end   -- no policy held it back: refused
  return outcome
end

-- Pre-flight funds check: the mined balance, read fresh, less what this address's sends that
-- committed before this one still hold (ferry.nonces, "Funds").
function S.preflight(ctx)
  local nonces = ctx.nonces
  local required = ctx.value + U(ctx.gas) * ctx.price
  ctx.hold = nonces:hold(required)
  local balance, ahead, n_ahead = nonces:funds(ctx.hold)
  if balance < ahead + required then
    local available = balance > ahead and balance - ahead or U(0)
    local held = n_ahead > 0 and (" (balance %s, %s held by %d earlier send%s not mined yet)")
      :format(tostring(balance), tostring(ahead), n_ahead, n_ahead > 1 and "s" or "") or ""
    raise("insufficient_funds", ("%s has %s wei, needs %s wei (value %s + gas %d x %s)%s")
      :format(ctx.from, tostring(available), tostring(required), tostring(ctx.value), ctx.gas, tostring(ctx.price), held),
      { required = required, available = available, balance = balance, held = ahead, address = ctx.from })
  end
end

-- eth_call when the gas was given (estimation already ran the call otherwise). On a chain
-- with simulation_required, ferry.simulate (traces, state changes; Tenderly when configured)
-- must have run, here or for the policies, and found no revert: no simulation, no send.
function S.simulate(ctx)
  if ctx.base.cfg.simulation_required then
    local sim = gate.simulate(ctx)
    if not sim then
      local e = ctx.simulation_error
      raise("simulation_failed", ("simulation_required, and the transaction could not be simulated: %s")
        :format(type(e) == "table" and tostring(e.message or e.code) or tostring(e)), { cause = e })
    end
    if sim.reverted then
      raise("reverted", "execution reverted: " .. tostring(sim.reason), { reason = sim.reason, simulation = sim })
    end
    return sim.via
  end
  if ctx.simulation then return "done" end
  if ctx.simulated then return "skipped" end
  ctx.chain:eth_call({ from = ctx.from, to = ctx.to, value = ctx.value, data = ctx.data, gas = ctx.gas }, "pending")
end

function S.reserve(ctx)
  shutdown.check()
  shutdown.begin(ctx)                          -- from here a shutdown waits for it to settle
  if ctx.explicit_nonce then
    ctx.nonce = ctx.explicit_nonce
    if ctx.hold then ctx.nonces:assign(ctx.hold, ctx.nonce) end
    return "given"
  end
  ctx.nonces:ready(ctx.signer, filler(ctx))   -- the address's lease; a journal left by a crash is resumed first
  ctx.nonce = ctx.nonces:reserve()
  ctx.reserved = true
  ctx.nonces:assign(ctx.hold, ctx.nonce)
  ctx.journal:record(ctx.id, "reserved", { chain = ctx.base.name, chain_id = ctx.base.chain_id,
    chain_key = ctx.nonces.chain_key, address = ctx.from, nonce = ctx.nonce })
end

function S.sign(ctx)
  local cap, cap_gwei = cap_of(ctx)
  local price = ctx.legacy and ctx.gas_price or ctx.max_fee
  if cap and price > cap then error(above_cap(price, cap_gwei), 0) end   -- whatever path led here
  local fields = { type = ctx.legacy and 0 or 2, chain_id = ctx.base.chain_id, nonce = ctx.nonce, gas = ctx.gas,
                   to = ctx.to, value = ctx.value, data = ctx.data, access_list = ctx.t.access_list }
  if ctx.legacy then fields.gas_price = ctx.gas_price
  else fields.max_fee, fields.max_priority_fee = ctx.max_fee, ctx.tip end
  local ok, raw, hash = pcall(ctx.signer.sign, ctx.signer, fields)
  if not ok then
    if not ctx.explicit_nonce and ctx.hold then ctx.nonces:release(ctx.nonce, filler(ctx)) end
    error(raw, 0)
  end
  ctx.fields, ctx.raw, ctx.hash = fields, raw, hash
end

-- The signed bytes, on disk before they leave: a crash from here on is resumed by sending
-- these same bytes again, never by signing another payment.
function S.journal(ctx)
  if not ctx.nonces.chain_key then ctx.nonces:ready(ctx.signer, filler(ctx)) end   -- a send with its own nonce
  local hashes = { ctx.hash }
  if ctx.tx then                                   -- a fee bump: every version so far
    hashes = {}
    for i, h in ipairs(ctx.tx.hashes) do hashes[i] = h end
    hashes[#hashes + 1] = ctx.hash
  end
  ctx.journal:save(ctx.id, "signed", { chain = ctx.base.name, chain_id = ctx.base.chain_id,
    chain_key = ctx.nonces.chain_key, address = ctx.from,
    nonce = ctx.nonce, hash = ctx.hash, raw = ctx.raw, hashes = hashes, fields = payment(ctx) })
end

-- Fees raised to out-bid what the node refused as underpriced at this nonce (an occupant we
-- do not know of, or a base fee that rose since fill_fees): +12.5% (the replacement rule) or
-- what the chain asks now, whichever is higher.
local function up(v) return v + (v + 7) // 8 end
local function outbid(ctx)
  local chain = ctx.base
  if ctx.legacy then
    local now = chain:gas_price()
    ctx.gas_price = up(ctx.gas_price)
    if now > ctx.gas_price then ctx.gas_price = now end
  else
    local f = chain:fees({ fresh = true })
    ctx.max_fee, ctx.tip = up(ctx.max_fee), up(ctx.tip)
    if f.max_fee > ctx.max_fee then ctx.max_fee = f.max_fee end
    if f.max_priority_fee > ctx.tip then ctx.tip = f.max_priority_fee end
    if ctx.tip > ctx.max_fee then ctx.tip = ctx.max_fee end
  end
end

-- The same payment at the same nonce with higher fees: capped, its hold grown, signed.
local function resign(ctx)
  outbid(ctx)
  S.cap(ctx)                                   -- raises policy_rejected above the cap
  if ctx.hold then
    local bigger = ctx.value + U(ctx.gas) * ctx.price
    if bigger > ctx.hold.amount then ctx.nonces:resize(ctx.hold, bigger) end
  end
  S.sign(ctx)
  ctx.versions[#ctx.versions + 1] = { raw = ctx.raw, hash = ctx.hash }
  local hashes = {}
  for i, v in ipairs(ctx.versions) do hashes[i] = v.hash end
  ctx.journal:save(ctx.id, "signed", { nonce = ctx.nonce, hash = ctx.hash, raw = ctx.raw, hashes = hashes,
    fields = payment(ctx) })
end

-- From here on the payment is bound to its nonce and hash (ferry.eth.delivery). Two refusals
-- are answered here instead of reaching the caller, as neither says the payment is unwanted:
--  * "nonce too high" while our own lower nonces are still on their way (their requests
--    arrived after this one): wait for them to settle, then the same bytes again;
--  * "underpriced": something occupies this nonce, or the base fee rose. The same payment is
--    signed again at the same nonce with fees that out-bid it (at most twice, never above
--    the cap), never sent again at the same price, so one refusal does not fail the sends
--    queued behind it.
function S.broadcast(ctx)
  -- a shared nonce whose broadcast comes late (Redis went out of reach since its reserve) is
  -- checked first: the address's lease holder, sending alone meanwhile, may have used it.
  -- These bytes have not left this process: the payment is signed again at another nonce.
  while ctx.reserved and not ctx.nonces:confirm(ctx.nonce) do
    ferry.log.warn("the nonce reserved for this send was used by the address's lease holder while Redis was out "
      .. "of reach; signed again at another (the first bytes never left)", { id = ctx.id, nonce = ctx.nonce })
    ctx.nonces:forget(ctx.nonce)
    ctx.nonce = ctx.nonces:reserve()
    ctx.nonces:assign(ctx.hold, ctx.nonce)
    S.sign(ctx)
    S.journal(ctx)
  end
  ctx.broadcasting = true
  ctx.versions = { { raw = ctx.raw, hash = ctx.hash } }
  local deadline = ferry.now() + (ctx.base.cfg.order_wait or 30)
  local outbids, backoff = 0, 0.02
  while true do
    ctx.outcome, ctx.err = delivery.deliver(ctx.chain, { raw = ctx.raw, hash = ctx.hash, nonce = ctx.nonce, from = ctx.from })
    if ctx.outcome ~= "refused" then break end
    local code, now = ctx.err.code, ferry.now()
    if code == "nonce_too_high" and now < deadline then
      -- nothing of ours below (a gap being filled, a tracker resending): back off and look again
      if ctx.nonces:wait_below(ctx.nonce, deadline - now) == false then
        ferry.sleep(math.min(backoff, deadline - now))
        backoff = math.min(backoff * 2, 1)
      end
    elseif code == "underpriced" and outbids < 2 and not ctx.explicit_fees then
      outbids = outbids + 1
      local ok, err = pcall(resign, ctx)
      if not ok then
        if type(err) == "table" and err.code == "policy_rejected" then break end    -- keep the refusal
        error(err, 0)
      end
    else
      break
    end
  end
  -- a version refused in the end may still be one the node kept (a provider that lies)
  if ctx.outcome == "refused" and #ctx.versions > 1 then
    for _, v in ipairs(ctx.versions) do
      if delivery.known(ctx.chain, v.hash) then
        ctx.raw, ctx.hash, ctx.outcome = v.raw, v.hash, "sent"
        break
      end
    end
  end
  return ctx.outcome
end

-- The tx the caller waits on, or the error that says nothing was paid.
local function make_tx(ctx)
  return setmetatable({ hash = ctx.hash, nonce = ctx.nonce, from = ctx.from, to = ctx.to, value = ctx.value,
                        data = ctx.data, access_list = ctx.t.access_list, legacy = ctx.legacy,
                        raw = ctx.raw, chain = ctx.base, gas = ctx.gas, max_fee = ctx.max_fee,
                        max_priority_fee = ctx.tip, gas_price = ctx.gas_price, sent_at = ferry.now(),
                        hashes = { ctx.hash }, bumps = 0, signer = ctx.signer, _hold = ctx.hold,
                        id = ctx.id, events = ctx.events, journal = ctx.journal }, Tx)
end

--- from_row(signer, row) -> the Tx a journal row describes (a send by id answered from the
--- journal, a transaction resumed after a restart)
---@param signer Signer
---@param row table a journal row
---@return Tx
function M.from_row(signer, row)
  local f = row.fields or {}
  local chain = signer.chain
  local function u(v) return v ~= nil and U(v) or nil end
  return setmetatable({ hash = row.hash, nonce = row.nonce, from = row.address, to = f.to, value = u(f.value) or U(0),
                        data = f.data, legacy = f.legacy, raw = row.raw, chain = chain, gas = f.gas,
                        max_fee = u(f.max_fee), max_priority_fee = u(f.max_priority_fee), gas_price = u(f.gas_price),
                        sent_at = ferry.now(), hashes = row.hashes or { row.hash }, bumps = 0, signer = signer,
                        id = row.id, events = {}, journal = store.get().journal, state = row.state,
                        block = row.block }, Tx)
end

function S.track(ctx)
  local outcome, err, nonces = ctx.outcome, ctx.err, ctx.nonces
  if outcome == "sent" or outcome == "unsure" then
    local tx = make_tx(ctx)
    ctx.tx = tx
    if ctx.hold then nonces:sent(ctx.hold) end            -- held until mined (Nonces:ahead_of)
    if ctx.reserved then nonces:settle(ctx.nonce) end
    ctx.journal.live[ctx.id] = tx
    if outcome == "unsure" then
      tx.unsure = err
      ctx.journal:record(ctx.id, "unsure", { hash = ctx.hash, error = err })
      nonces:bind(tx)
      return "bound"
    end
    ctx.journal:record(ctx.id, "sent", { hash = ctx.hash })
    return "sent"
  end
  if outcome == "taken" then
    if ctx.reserved then nonces:settle(ctx.nonce) end
    nonces:resync()                                        -- the next send starts above what was taken
  elseif not ctx.explicit_nonce then
    nonces:release(ctx.nonce, filler(ctx))                 -- refused: no node will mine these bytes
  end
  err.nonce, err.hash, err.raw = ctx.nonce, ctx.hash, ctx.raw
  ctx.journal:record(ctx.id, outcome == "taken" and "taken" or "failed", { error = err })
  ctx.settled = true
  if err.code == "reverted" then error(A.revert_error(err), 0) end
  error(err, 0)
end

---------------------------------------------------------------------------------------------
-- Running them
---------------------------------------------------------------------------------------------

local NAMES = { "validate", "claim", "fill_fees", "cap", "fill_gas", "policy", "preflight", "simulate", "reserve",
                "sign", "journal", "broadcast", "track" }
local SEND, FILL = {}, {}
for i, name in ipairs(NAMES) do SEND[i] = { name = name, run = name == "cap" and cap_step or S[name] } end
for _, name in ipairs({ "fill_fees", "cap", "sign", "journal", "broadcast", "track" }) do
  FILL[#FILL + 1] = { name = name, run = S[name] }
end

-- A send's journal id when the caller gave none: unique across processes and restarts.
local ID_PREFIX = "tx-" .. store.owner:match("(%x+)$") .. "-"

local function context(signer, t)
  seq = seq + 1
  local base = signer.chain
  return { id = t.id ~= nil and tostring(t.id) or (ID_PREFIX .. seq), signer = signer, base = base,
           chain = base:view(), from = signer.address, t = t, events = {}, nonces = base:_nonces(signer.address),
           journal = store.get().journal }
end

-- Run steps over ctx in order; each one's event is emitted however it ends.
run = function(ctx, steps)
  for _, step in ipairs(steps) do
    if ctx.done then break end
    local t0 = ferry.now()
    local ok, outcome = pcall(step.run, ctx)
    if not ok then
      ctx.failure = outcome
      emit(ctx, step.name, type(outcome) == "table" and outcome.code or "error", t0)
      error(outcome, 0)
    end
    emit(ctx, step.name, outcome or "ok", t0)
  end
end

-- However a send ends (an error, a cancel): a nonce it took and did not settle is freed if
-- nothing was broadcast, or bound to the payment if the broadcast was under way (its bytes
-- may arrive); then its hold is given back unless the tx was sent.
local function closer(ctx)
  return setmetatable({}, { __close = function()
    local nonces, journal = ctx.nonces, ctx.journal
    if ctx.reserved and nonces.out[ctx.nonce] then
      if ctx.broadcasting then
        if ctx.hold then nonces:sent(ctx.hold) end
        local tx = make_tx(ctx)
        journal.live[ctx.id] = tx
        journal:record(ctx.id, "unsure", { hash = ctx.hash, error = "the send was stopped during its broadcast" })
        nonces:bind(tx)
      else
        nonces:release(ctx.nonce, filler(ctx))
        journal:record(ctx.id, "failed", { error = ctx.failure or "stopped before its broadcast: nothing was sent" })
      end
    elseif (ctx.claimed or ctx.reserved) and not ctx.tx and not ctx.settled then
      journal:record(ctx.id, "failed", { error = ctx.failure or "stopped before its broadcast: nothing was sent" })
    end
    if ctx.hold then nonces:done(ctx.hold) end
    shutdown.finish(ctx)
  end })
end

--- signer:send{to, value, data, gas?, max_fee?, max_priority_fee? | gas_price?, nonce?,
--- access_list?} -> tx (raises). The steps above, on one provider's view of the chain.
---@param t table {to, value?, data?, gas?, max_fee?, max_priority_fee?, gas_price?, nonce?, id?, access_list?}
---@return Tx tx sent (tx.hash, tx.nonce); tx:wait() for the receipt
function Signer:send(t)
  shutdown.arm()
  local ctx = context(self, t)
  local _ <close> = closer(ctx)
  run(ctx, SEND)
  return ctx.tx
end

--- The gap filler's transaction: 0 wei to self at nonce n, 21000 gas. -> tx (raises)
---@param signer Signer
---@param n integer the nonce to fill
---@return Tx
function M.fill(signer, n)
  local ctx = context(signer, {})
  ctx.to, ctx.value, ctx.gas, ctx.explicit_nonce, ctx.nonce = signer.address, U(0), 21000, n, n
  ctx.legacy = ctx.base.cfg.legacy
  run(ctx, FILL)
  return ctx.tx
end

-- Fee bump: the same transaction (same nonce) with fees raised by at least 12.5% (geth
-- wants +10% on both; anvil only a higher max fee) or to what the chain asks now, whichever
-- is higher; then cap, sign, journal and broadcast. -> true if a replacement may be out.
local BUMP = {}
for _, name in ipairs({ "cap", "sign", "journal", "broadcast" }) do BUMP[#BUMP + 1] = { name = name, run = S[name] } end

-- a fee bump out-bids the transaction it replaces, as a refused broadcast out-bids an occupant
function S.raise_fees(ctx) outbid(ctx) end
table.insert(BUMP, 1, { name = "raise_fees", run = S.raise_fees })

function Tx:_bump_once()
  local ctx = context(self.signer, { access_list = self.access_list })
  ctx.id, ctx.events, ctx.tx = self.id or ctx.id, self.events or ctx.events, self
  ctx.chain = self.chain                         -- any provider: the replacement is news to all
  ctx.to, ctx.value, ctx.data, ctx.gas, ctx.legacy = self.to, self.value, self.data, self.gas, self.legacy
  ctx.max_fee, ctx.tip, ctx.gas_price = self.max_fee, self.max_priority_fee, self.gas_price
  ctx.nonce, ctx.explicit_nonce = self.nonce, self.nonce
  local hold, held = self._hold, self._hold and self._hold.amount
  local ok, err = pcall(run, ctx, { BUMP[1], BUMP[2] })          -- raise_fees, cap
  if not ok then
    if type(err) == "table" and err.code == "policy_rejected" then
      ferry.log.warn("fee bump would pass the gas price cap; waiting instead",
        { hash = self.hash, nonce = self.nonce, cap_gwei = err.cap_gwei })
      return false
    end
    error(err, 0)
  end
  -- the replacement may spend more: its hold grows before it is broadcast, so a send checking
  -- funds meanwhile counts the larger amount, and shrinks back if the node refuses it
  local bigger = self.value + U(self.gas) * ctx.price
  if hold and bigger > held then ctx.nonces:resize(hold, bigger) end
  run(ctx, { BUMP[3], BUMP[4], BUMP[5] })                         -- sign, journal, broadcast
  -- once it may have reached a node the replacement is one more version of the payment: a
  -- receipt for it ends the wait like one for the original
  if ctx.outcome == "refused" or ctx.outcome == "taken" then
    if hold then ctx.nonces:resize(hold, held) end
    ctx.journal:record(self.id, self.unsure and "unsure" or "sent", { raw = self.raw, hash = self.hash })
    ferry.log.warn("fee bump refused", { hash = self.hash, nonce = self.nonce, err = tostring(ctx.err) })
    return false
  end
  ferry.log.info("fee bump", { nonce = self.nonce, old_hash = self.hash, new_hash = ctx.hash, outcome = ctx.outcome,
    max_fee_gwei = u256.format_units(ctx.price, 9) })
  self.raw, self.hash, self.bumps = ctx.raw, ctx.hash, self.bumps + 1
  self.hashes[#self.hashes + 1] = ctx.hash
  ctx.journal:record(self.id, ctx.outcome == "unsure" and "unsure" or "sent", { hash = self.hash, hashes = self.hashes })
  if self.legacy then self.gas_price = ctx.gas_price
  else self.max_fee, self.max_priority_fee = ctx.max_fee, ctx.tip end
  return true
end

M.on_step = events.on_step

--- steps() -> the send pipeline's step names, in order (prints as "validate -> ... -> track").
function M.steps()
  local list = {}
  for i, name in ipairs(NAMES) do list[i] = name end
  return setmetatable(list, { __tostring = function(l) return table.concat(l, " -> ") end })
end

return M
