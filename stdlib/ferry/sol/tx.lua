--- ferry.sol.tx -- one Solana payment after signing: broadcast, tx:wait, and the money rule.
---
---   local tx = signer:transfer{to = addr, lamports = 5000}
---   tx.signature; tx:wait{commitment = "confirmed" | "finalized", timeout = 60}
---
--- A payment may be signed more than once (each time with a fresh blockhash, so with a new
--- signature); tx.signatures lists them all, tx.signature is the latest. It lands at most once:
---   * a copy can land only while its blockhash is valid, that is while the chain's block height
---     is at most its lastValidBlockHeight (a durable nonce: while the nonce account still holds
---     the value it was signed with). Expiry is read from the chain, never from a clock.
---   * it is signed again only when its current copy has expired AND one more status read of
---     every signature it ever had says none landed (a copy reported lost may have landed).
---   * while a copy is valid and unconfirmed, the same bytes are sent again now and then (a
---     node may have dropped them); that can never make a second payment.
local ferry = require "ferry"
local json = require "ferry.core.json"
local config = require "ferry.config"
local C = require "ferry.sol.chain"

local M = {}
local raise = ferry.raise
local log = ferry.log

local Tx = {}
Tx.__index = Tx
Tx.__name = "ferry.sol.Tx"
Tx.__tostring = function(t) return "ferry.sol.Tx " .. t.signature end
M.Tx = Tx

local RANK = { processed = 1, confirmed = 2, finalized = 3 }

-- failures of a read or a send that say nothing about the payment: tried again next poll
local TRANSIENT = { timeout = true, provider_down = true, rate_limited = true, bad_response = true }

--- A payment. build(lifetime, salt) -> wire (base64), signature: signs the same instructions
--- with a lifetime {blockhash =, last_valid =} or {nonce = {account =, value =}}; salt (0, 1,
--- ...) must change the bytes without changing what they do (signer:send adds it to the
--- compute-unit limit).
---@param chain Chain
---@param build fun(lifetime: table, salt: integer): string, string
---@param lifetime table
---@return Tx
function M.new(chain, build, lifetime)
  local self = setmetatable({ chain = chain, build = build, signatures = {}, copies = 0, rebroadcasts = 0,
                              events = {} }, Tx)
  self:_sign(lifetime)
  return self
end

-- What happened to the payment, in order: {step = "sign" | "send" | "status", ...}. Specs read
-- it to show that every re-sign follows a status read of all earlier signatures.
function Tx:_event(e)
  e.at = ferry.now()
  self.events[#self.events + 1] = e
end

-- Signatures this process made recently, two generations of them. Two payments that are the
-- same transfer under the same blockhash would be the same transaction: the chain takes it once
-- and answers the second "already processed", and the second payment would be taken for done.
local seen, seen_old, seen_n = {}, {}, 0
local SEEN_MAX = 50000

local function remember(sig)
  seen[sig] = true
  seen_n = seen_n + 1
  if seen_n >= SEEN_MAX then seen, seen_old, seen_n = {}, seen, 0 end
end

function Tx:_sign(lifetime)
  self.lifetime = lifetime
  local wire, sig
  for salt = 0, 1000 do
    wire, sig = self.build(lifetime, salt)
    if not (seen[sig] or seen_old[sig]) then break end
    self.chain.st.twins = (self.chain.st.twins or 0) + 1
  end
  remember(sig)
  self.wire, self.signature = wire, sig
  self.signatures[#self.signatures + 1] = self.signature
  self.copies = self.copies + 1
  self:_event{ step = "sign", signature = self.signature, copy = self.copies }
end

-- ---- broadcast ------------------------------------------------------------------------------

--- Send the current bytes. -> "sent" | "landed" (already processed) | "expired" (the node
--- does not know its blockhash) | "unsure" (it may have arrived) | nil, err (refused: nothing
--- was paid by this copy)
function Tx:_broadcast()
  local chain = self.chain
  chain.st.sent = chain.st.sent + 1
  self.sent_at = ferry.now()
  local _, err = chain:call("sendTransaction", { self.wire, { encoding = "base64", preflightCommitment = "processed" } })
  self:_event{ step = "send", signature = self.signature, outcome = err and err.code or "sent", maybe_sent = err and err.maybe_sent }
  if not err then return "sent" end
  if err.code == "already_processed" then return "landed" end
  if err.code == "blockhash_not_found" then
    chain.st.expired = chain.st.expired + 1
    if self.lifetime.blockhash then chain:invalidate_blockhash(self.lifetime.blockhash) end
    return "expired"
  end
  if err.maybe_sent then return "unsure" end
  chain.st.send_errors = chain.st.send_errors + 1
  return nil, err
end

-- A refusal of the first copy: what the node said, with its logs.
local function refused(self, err)
  err.signature = self.signature
  if err.code == "simulation_failed" or err.code == "insufficient_funds" then
    err.message = ("transaction %s refused: %s%s"):format(self.signature, tostring(err.message), C.log_tail(err.logs))
  end
  error(err, 0)
end

--- The first send (signer:send): an expired blockhash is reconciled at once; a refusal raises;
--- a send that failed on the way (no provider could take it now) is left to tx:wait, which
--- sends the same bytes again.
function Tx:_send_first()
  local outcome, err = self:_broadcast()
  if outcome == nil and not TRANSIENT[err.code] then refused(self, err) end
  if outcome == "expired" then self:_reconcile() end
  return self
end

-- ---- status and expiry ------------------------------------------------------------------------

--- The status of whichever signature landed, or nil (one read for all of them).
function Tx:_landed()
  local st = self.chain:statuses(self.signatures)
  for i = #self.signatures, 1, -1 do
    local s = self.signatures[i]
    if st[s] then return st[s], s end
  end
  self:_event{ step = "status", checked = #self.signatures, landed = false }
  return nil
end

--- Has the current copy expired? By block height, or by the nonce account's stored value.
function Tx:_expired()
  local l = self.lifetime
  if l.nonce then
    local value = require("ferry.sol.signer").nonce_value(self.chain, l.nonce.account)
    return value ~= l.nonce.value
  end
  return self.chain:block_height() > l.last_valid
end

--- The money rule. Only once the current copy has expired by the chain's height (or nonce) —
--- so that no copy can land any more — read every signature's status once more; only when
--- none landed, sign again with a fresh lifetime and send. A node's "blockhash not found"
--- alone is not expiry (a lagging node says it of hashes that are too new). -> the landed
--- status, or nil (re-signed, or not expired yet)
function Tx:_reconcile(known_expired)
  local chain = self.chain
  if not known_expired and not self:_expired() then return nil end
  chain.st.status_checks = chain.st.status_checks + 1
  local st, sig = self:_landed()
  if st then
    -- a copy the chain says expired had landed after all: exactly why this read is made
    chain.st.found_at_reconcile = chain.st.found_at_reconcile + 1
    return st, sig
  end
  local old = self.signature
  local fresh
  if self.lifetime.nonce then
    local acct = self.lifetime.nonce.account
    fresh = { nonce = { account = acct, value = require("ferry.sol.signer").nonce_value(chain, acct) } }
  else
    chain:invalidate_blockhash(self.lifetime.blockhash)
    local bh = chain:blockhash({ fresh = true })
    fresh = { blockhash = bh.blockhash, last_valid = bh.last_valid }
  end
  self:_sign(fresh)
  chain.st.resigns = chain.st.resigns + 1
  log.debug("sol: re-signed after a status read said not landed", { old = old, new = self.signature, copies = self.copies })
  local outcome, err = self:_broadcast()
  if outcome == nil and not TRANSIENT[err.code] then refused(self, err) end
  return nil   -- a send that failed on the way is sent again by tx:wait
end

local WAIT_OPTIONS = { commitment = true, timeout = true, poll = true, rebroadcast = true }

local function reached(self, st, want)
  local have = RANK[st.confirmationStatus] or 0
  if have >= RANK[want] then return true end
  -- a node without finality: the chain's confirmations stand for it
  return want == "finalized" and math.type(st.confirmations) == "integer" and st.confirmations >= self.chain.confirmations
end

--- tx:wait{commitment =, timeout =} -> {signature, slot, confirmation_status, copies}. Raises
--- reverted when it landed with an error (its fee was paid), timeout at the deadline (the
--- payment may still land: tx.signatures lists every copy).
---@param opts? table
---@return table status
function Tx:wait(opts)
  opts = opts or {}
  local bad, shown = config.unknown_key(opts, WAIT_OPTIONS)
  if bad ~= nil then raise("invalid_argument", "tx:wait: unknown option " .. shown, { option = bad }) end
  local s = self.chain.settings
  local want = opts.commitment or s.commitment
  if not RANK[want] then raise("invalid_argument", ("tx:wait: commitment %q (processed, confirmed or finalized)"):format(tostring(want))) end
  local deadline = ferry.now() + (opts.timeout or 60)
  local poll, every = opts.poll or s.poll, opts.rebroadcast or s.rebroadcast
  while true do
    local ok, r = pcall(self._step, self, want, every)
    if ok and r then return r end
    if not ok then
      if not (type(r) == "table" and TRANSIENT[r.code]) then error(r, 0) end
      log.debug("sol: tx:wait read failed, trying again", { signature = self.signature, code = r.code })
    end
    if ferry.now() >= deadline then
      raise("timeout", ("transaction %s not %s after %.0f s (%d cop%s: %s)"):format(self.signature, want, opts.timeout or 60,
        self.copies, self.copies == 1 and "y" or "ies", table.concat(self.signatures, ", ")),
        { signature = self.signature, signatures = self.signatures })
    end
    ferry.sleep(poll)
  end
end

--- One look at the payment: landed deep enough (-> the result), landed with an error (raises),
--- expired (reconcile), or due for the same bytes again.
function Tx:_step(want, every)
  local st, sig = self:_landed()
  if st then
    -- an earlier copy than the latest landed: the reconcile read must have missed it, which
    -- the money rule says cannot happen; counted so that specs can show it never does
    if sig ~= self.signature and not self.landed then
      self.chain.st.landed_late = self.chain.st.landed_late + 1
    end
    self.landed = sig
    if st.err ~= nil and st.err ~= json.null then
      raise("reverted", ("transaction %s landed in slot %s but failed: %s"):format(sig, tostring(st.slot), C.explain(st.err)),
        { signature = sig, slot = st.slot, tx_error = st.err })
    end
    if reached(self, st, want) then
      return { signature = sig, slot = st.slot, confirmation_status = st.confirmationStatus, copies = self.copies }
    end
  elseif self:_expired() then
    self:_reconcile(true)
  elseif ferry.now() - (self.sent_at or 0) >= every then
    self.rebroadcasts = self.rebroadcasts + 1
    self.chain.st.rebroadcasts = self.chain.st.rebroadcasts + 1
    if self:_broadcast() == "expired" then self:_reconcile() end
  end
  return nil
end

return M
