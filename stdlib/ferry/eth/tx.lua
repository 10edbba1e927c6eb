--- ferry.eth.tx -- a sent transaction: waiting for its receipt, resending it, bumping its fees.
local ferry = require "ferry"
local config = require "ferry.config"
local delivery = require "ferry.eth.delivery"
local receipts = require "ferry.eth.receipts"
local A = require "ferry.eth.args"

local raise = ferry.raise

local Tx = {}
Tx.__index = Tx
Tx.__name = "ferry.Tx"
Tx.__tostring = function(t) return ("ferry.Tx %s (nonce %d)"):format(t.hash, t.nonce) end

-- The journal's row of this transaction moves to state (a Tx made outside a send has none).
-- A transaction that ended leaves the journal's in-process registry (journal.live), which
-- would otherwise grow with every send of a long-running engine; a send of its id again is
-- answered from its row.
function Tx:_journal(state, fields)
  local journal = self.journal
  if journal and self.id then
    journal:record(self.id, state, fields or {})
    if journal.FINAL[state] and journal.live[self.id] == self then journal.live[self.id] = nil end
  end
  self.state = state
end

-- Fee bump (Tx:_bump_once: the send pipeline's steps over a replacement, ferry.eth.send)
-- -> true if a replacement may be out.
function Tx:_bump()
  if self._bumping then return false end        -- a second waiter on the same tx
  self._bumping = true
  local ok, r = pcall(self._bump_once, self)
  self._bumping = nil
  if not ok then error(r, 0) end
  return r
end

--- tx:wait{confirmations = chain's, timeout = 120, poll = adaptive, rebroadcast = 3,
---         stuck_after = chain's (12 s), max_bumps = 3} -> receipt
--- Raises {code = "reverted", receipt =} if it was mined but failed, "nonce_too_low" once its
--- nonce is used by a transaction that is not one of its versions, "timeout" if not mined in
--- time. While it waits:
---  * the signed bytes are sent again every `rebroadcast` seconds: a node that lost the
---    transaction from its pool (restart, eviction) gets it back; "already known" costs nothing;
---  * when it is next in line (the account's mined nonce equals its nonce) and still not mined
---    `stuck_after` seconds after it was sent or last bumped, it is replaced by the same
---    transaction with higher fees (tx.hash follows; tx.hashes keeps every version, and a
---    receipt for any of them ends the wait).
local WAIT_OPTIONS = { confirmations = true, timeout = true, poll = true, max_poll = true, rebroadcast = true,
                       stuck_after = true, max_bumps = true }

-- A receipt can only appear with a new block: after its first look, a waiting transaction looks
-- again only once the chain's head (pool.heads) has moved past the one it last looked at
-- (Pool:watch_heads keeps the head fresh while anyone waits; heads:wait wakes it), or every
-- RECHECK seconds should head reads fail. It looks in the chain's receipt book
-- (ferry.eth.receipts: one eth_getBlockReceipts per new block for every transaction waiting);
-- it reads its own receipt only when the book cannot tell (no known start, a range too long),
-- every RECHECK seconds whatever the book says, and when a rebroadcast says its nonce is used.
local RECHECK = 15

-- Errors that say a provider could not answer now, not that the transaction failed: a wait
-- rides them out (until its timeout), as a payment in flight does not fail with its provider.
local TRANSIENT = { timeout = true, provider_down = true, rate_limited = true, bad_response = true }

-- f(...) -> its result, or nil, err when it failed for a passing reason; other errors raise
local function transient(f, ...)
  local ok, r = pcall(f, ...)
  if ok then return r end
  if type(r) == "table" and TRANSIENT[r.code] then return nil, r end
  error(r, 0)
end

-- The newest receipt among the tx's versions. -> receipt | nil, err (a read failed)
function Tx:_receipt()
  for i = #self.hashes, 1, -1 do
    local rc, err = transient(self.chain._raw_receipt, self.chain, self.hashes[i])
    if err then return nil, err end
    if rc then self.hash = self.hashes[i]; return rc end
  end
  return nil
end

-- The first block that may hold this transaction: the one above the head the tracker knew
-- when its first broadcast began (its step event's `at`; that block was mined before the
-- bytes left). nil when unknown (resumed from the journal, no head known then).
function Tx:_from_block()
  if self.from_block then return self.from_block end
  for _, ev in ipairs(self.events or {}) do
    if ev.step == "broadcast" then
      local n = ev.at and self.chain.pool.heads:number_at(ev.at)
      self.from_block = n and n + 1
      break
    end
  end
  return self.from_block
end

-- The receipt, from the book when it can tell, else read directly. -> receipt | nil, err
function Tx:_look(direct)
  if not direct and self:_from_block() then
    local rc, err = receipts.book(self.chain):receipt(self)
    if rc then return rc end
    if rc == false then return nil end
    -- a provider a block behind the head: the book is asked again at the next poll (one scan
    -- for every waiting transaction), not each transaction's own receipt
    if err and err.code == "not_yet" then return nil, err end
    if err then ferry.log.debug("receipt book", { hash = self.hash, err = tostring(err) }) end
  end
  local head = self.chain.pool.heads.number
  local rc, err = self:_receipt()
  -- not mined as of head (known before the read): the book can take it from the next block (a
  -- provider a little behind that missed it: the next rebroadcast says its nonce is used, and
  -- that reads it directly again)
  if not rc and not err and head and not self.from_block then self.from_block = head + 1 end
  return rc, err
end

-- Proven absent: no version of it is known to the node, and its nonce is mined. -> bool
function Tx:_taken()
  for i = #self.hashes, 1, -1 do
    if delivery.known(self.chain, self.hashes[i]) ~= false then return false end
  end
  local mined = transient(self.chain.nonce, self.chain, self.from, "latest")
  return mined ~= nil and mined > self.nonce
end

-- Not mined yet (w: the wait's state): replace it when it is stuck and next in line, send
-- its bytes again when it is time. Raises nonce_too_low once it is proven absent.
function Tx:_nudge(w)
  local chain, now = self.chain, ferry.now()
  if w.stuck_after > 0 and self.bumps < w.max_bumps and self.signer and now - w.last_move >= w.stuck_after then
    w.last_move = now
    if transient(chain.nonce, chain, self.from, "latest") == self.nonce and transient(self._bump, self) then
      w.next_send = now + w.every
    end
  end
  if w.every > 0 and now >= w.next_send then
    local _, err = chain:call("eth_sendRawTransaction", { self.raw })
    ferry.log.debug("rebroadcast", { hash = self.hash, nonce = self.nonce, result = err and err.code or "sent" })
    self.rebroadcasts = (self.rebroadcasts or 0) + 1
    w.next_send = now + w.every
    -- its nonce is used: by one of its versions (a receipt will say so: read it directly next,
    -- whatever the book says), or by another transaction, and then none of its receipts will
    -- ever come
    if err and err.code == "nonce_too_low" then w.direct = true end
    if err and err.code == "nonce_too_low" and self:_taken() then
      self:_journal("taken", { error = "its nonce was used by another transaction" })
      raise("nonce_too_low", ("transaction %s will not be mined: nonce %d of %s was used by another transaction")
        :format(self.hash, self.nonce, self.from), { hash = self.hash, hashes = self.hashes, nonce = self.nonce })
    end
  end
end

-- A receipt deep enough? -> the receipt (raises when it reverted) | nil, err
function Tx:_confirmed(rc, conf)
  local bn = A.qty(rc.blockNumber)
  -- the chain is at least at the receipt's block: head-bound answers cached before it (a
  -- balance, a nonce of "latest") are dropped, so reads after the wait see the transaction
  local heads = self.chain.pool.heads
  heads:saw_number(bn)
  heads:saw_hash(bn, rc.blockHash)          -- so a poller notices if that block is replaced
  local top, err = bn, nil
  if conf > 1 then top, err = transient(self.chain.block_number, self.chain) end
  if not (top and top - bn + 1 >= conf) then return nil, err end
  -- a receipt from a block the head tracker knows was replaced is not an answer (a reorg
  -- between reading it and now): the next head reads it again
  local canonical = self.chain.pool.heads.hashes[bn]
  if canonical and rc.blockHash and canonical ~= rc.blockHash then return nil end
  self.receipt = rc
  self:_remember()
  if A.qty(rc.status) ~= 1 then
    self:_journal("reverted", { block = bn, hash = self.hash })
    raise("reverted", ("transaction %s was mined but reverted (block %d)"):format(self.hash, bn),
      { receipt = rc, hash = self.hash })
  end
  return rc
end

-- Reorgs. The live feed (ferry.subscribe) and the polling tracker (pool/tracker.lua) call
-- Tx.reverify(pool, reorg) on each: every transaction this process saw mined in a replaced
-- block is read again. Found in the new chain: its receipt (block, confirmations) is updated.
-- Not found: its signed bytes are sent again, the same bytes (the money rule: never a new
-- signature at another nonce), and it is waited for until mined again.
-- A transaction is held (strongly: its caller may have dropped it, the payment still
-- matters) while its block is within REMEMBER blocks of the head, as deep as pool.heads can
-- see a reorg; the pools themselves weakly.
local mined = setmetatable({}, { __mode = "k" })          -- pool -> {tx -> its block number}
local pruned = setmetatable({}, { __mode = "k" })         -- pool -> the head it was last pruned at
local REMEMBER = 64
Tx.reorg_stats = { reverified = 0, kept = 0, moved = 0, rebroadcast = 0, remined = 0 }
ferry.register_stats("reorgs", function() return Tx.reorg_stats end)

function Tx:_remember()
  local pool = self.chain.pool
  local set = mined[pool]
  if not set then
    set = {}
    mined[pool] = set
  end
  local bn = A.qty(self.receipt.blockNumber)
  set[self] = bn
  -- those deeper than any reorg the tracker can see are let go (looked over once per head)
  local head = pool.heads.number or bn
  if pruned[pool] ~= head then
    pruned[pool] = head
    for tx, at in pairs(set) do
      if at < head - REMEMBER then set[tx] = nil end
    end
  end
end

-- Read it again after a reorg: kept or moved (its receipt follows), or dropped: the same
-- signed bytes sent again. -> true when it was sent again (to be waited for)
function Tx:_recheck(reorg)
  local st = Tx.reorg_stats
  st.reverified = st.reverified + 1
  local old = self.receipt
  local rc, err = self:_receipt()
  if err then return false end                             -- cannot tell now: left as it is
  if rc then
    if old and rc.blockHash ~= old.blockHash then st.moved = st.moved + 1 else st.kept = st.kept + 1 end
    self.receipt = rc
    return false
  end
  self.receipt = nil
  self.reorged = (self.reorged or 0) + 1
  self.from_block = reorg.fork + 1                          -- blocks up to the fork point stand
  local _, serr = self.chain:call("eth_sendRawTransaction", { self.raw })
  st.rebroadcast = st.rebroadcast + 1
  ferry.log.warn("reorg dropped a transaction: sent again", { hash = self.hash, nonce = self.nonce,
    fork_point = reorg.fork, result = serr and serr.code or "sent" })
  return true
end

-- until the one sent again is mined again
function Tx:_remine()
  local ok = pcall(self.wait, self, { confirmations = 1, timeout = 120, stuck_after = 0 })
  if ok then Tx.reorg_stats.remined = Tx.reorg_stats.remined + 1 end
  self._reverifying = nil
end

--- Tx.reverify(pool, reorg{fork =}) -> how many transactions are being re-verified
---@param pool table the chain's pool
---@param reorg table {fork =, ...}
---@return integer
function Tx.reverify(pool, reorg)
  local affected = {}
  for tx in pairs(mined[pool] or {}) do
    local rc = tx.receipt
    if rc and A.qty(rc.blockNumber) > reorg.fork and not tx._reverifying then
      tx._reverifying = true
      affected[#affected + 1] = tx
    end
  end
  if #affected == 0 then return 0 end
  -- one sender's transactions are read and sent again in nonce order, so no node ever holds
  -- a later one waiting on a gap below it; then each is waited for on its own
  table.sort(affected, function(a, b)
    if a.from ~= b.from then return tostring(a.from) < tostring(b.from) end
    return a.nonce < b.nonce
  end)
  ferry.spawn(function()
    for _, tx in ipairs(affected) do
      local ok, sent = pcall(tx._recheck, tx, reorg)
      if ok and sent then
        ferry.spawn(tx._remine, tx):daemon()
      else
        if not ok then ferry.log.error("re-verification failed", { hash = tx.hash, err = tostring(sent) }) end
        tx._reverifying = nil
      end
    end
  end):daemon()
  return #affected
end

--- tx:wait(opts) -> the receipt (raw JSON, as the node sent it); raises reverted, nonce_too_low or
--- timeout. The options and what happens while it waits: the comment above WAIT_OPTIONS.
---@param opts? table {confirmations?, timeout? = 120, poll?, rebroadcast? = 3, stuck_after?, max_bumps? = 3}
---@return table receipt
function Tx:wait(opts)
  opts = opts or {}
  local bad, shown = config.unknown_key(opts, WAIT_OPTIONS)   -- {timout = 5}: 120 s
  if bad ~= nil then raise("invalid_argument", "tx:wait: unknown option " .. shown, { option = bad }) end
  local chain = self.chain
  local conf = opts.confirmations or chain.confirmations or 1
  local deadline = ferry.now() + (opts.timeout or 120)
  local poll = opts.poll or 0.02
  local w = { every = opts.rebroadcast or 3, stuck_after = opts.stuck_after or chain.cfg.stuck_after or 12,
              max_bumps = opts.max_bumps or 3, last_move = self.sent_at or ferry.now() }
  w.next_send = ferry.now() + w.every
  local _ <close> = chain.pool:watch_heads()
  local _ <close> = setmetatable({}, { __close = function()
    if chain.pool.receipts then chain.pool.receipts:done(self) end
  end })
  local heads = chain.pool.heads
  -- no head known yet (the tracker just started): the first one, so the first read of the
  -- receipt has a head to place it, and the book takes it from there
  if not heads.number then heads:wait(nil, math.min(1, opts.timeout or 120)) end
  local asked_at, asked_head = nil, nil          -- when we last asked for a receipt, at which head
  local read_at = ferry.now()                    -- when we last read it directly
  local rc, last_err
  while true do
    local head = heads.number
    if not rc or conf > 1 then
      if asked_at == nil or (head and head ~= asked_head) or ferry.now() - asked_at >= RECHECK or w.direct then
        -- the first look is a read of its own unless a live feed keeps the head current: a
        -- polled head may be a whole poll interval behind a node that mines at once
        local first = asked_at == nil and not (chain.pool.feed and chain.pool.feed:live())
        local direct = w.direct or first or ferry.now() - read_at >= RECHECK
        if direct then read_at, w.direct = ferry.now(), nil end
        local err
        rc, err = self:_look(direct)
        if err then last_err = err else asked_at, asked_head = ferry.now(), head end
      end
    end
    if rc then
      local done, err = self:_confirmed(rc, conf)
      if done then
        if self.state ~= "confirmed" then self:_journal("confirmed", { block = A.qty(done.blockNumber), hash = self.hash }) end
        return done
      end
      last_err = err or last_err
    else
      self:_nudge(w)
    end
    if ferry.now() + poll > deadline then
      raise("timeout", ("transaction %s not %s within %ss%s"):format(self.hash, rc and "confirmed" or "mined",
        opts.timeout or 120, last_err and ("; last error: " .. tostring(last_err)) or ""),
        { hash = self.hash, hashes = self.hashes, last_error = last_err })
    end
    -- until a new head, or the next thing to do (a rebroadcast, a stuck check, a recheck)
    heads:wait(asked_head, poll)
    poll = math.min(poll * 1.5, opts.max_poll or 1)
  end
end

return Tx
