--- ferry.nonces -- what one process knows about an address's sends in flight: the nonce
--- allocator, the gaps it must fill, and the funds its sends have committed.
---
--- One instance per (chain, address), made by chain:_nonces(addr); signer:send is its user.
--- In-process only: the store issue puts the allocator in Redis/SQLite behind the same calls
--- (reserve, release, unsure, resync, commit, ahead_of).
local ferry = require "ferry"
local u256 = require "ferry.core.u256"

local U = u256.new
local Nonces = {}
Nonces.__index = Nonces

-- chain: a ferry.eth chain (nonce, balance, fees, gas_price, _call); addr: checksummed
function Nonces.new(chain, addr)
  return setmetatable({ chain = chain, addr = addr, next = nil, free = {}, limbo = {}, syncing = nil,
                        holds = {}, seq = 0, counts = {}, last_count = 0, round = nil, reading = nil }, Nonces)
end

-- Read the pending count once; concurrent first callers share the read.
function Nonces:_sync()
  if self.syncing then
    local ok, err = self.syncing:wait()
    if not ok then error(err, 0) end
    return
  end
  self.syncing = ferry.spawn(function()
    local n = self.chain:nonce(self.addr, "pending")
    if not self.next or n > self.next then self.next = n end
    -- released nonces below the chain's count were used by someone else
    local keep = {}
    for _, f in ipairs(self.free) do if f >= n then keep[#keep + 1] = f end end
    self.free = keep
    for l in pairs(self.limbo) do if l < n then self.limbo[l] = nil end end
  end):detach()                                -- the first caller's cancel is not the others'
  local syncing = self.syncing
  local ok, err = syncing:wait()
  if self.syncing == syncing then self.syncing = nil end
  if not ok then error(err, 0) end
end

function Nonces:reserve()
  if not self.next then self:_sync() end
  if #self.free > 0 then
    table.sort(self.free)
    return table.remove(self.free, 1)
  end
  local n = self.next
  while self.limbo[n] do n = n + 1 end       -- after a resync: never reuse an unanswered one
  self.next = n + 1
  return n
end

-- Gaps. Every transaction of an address waits on all lower nonces, so a nonce handed out and
-- then not used stalls everything above it. Two ways that happens:
--  * freed: the node refused the broadcast; the next send takes the nonce (reserve prefers
--    freed ones);
--  * unsure: the broadcast got no answer, so the bytes may still arrive and the nonce stays
--    taken (the caller has them in err.raw to resend).
-- Whatever is still open after the chain's `gap_fill_after` seconds (default 2) is filled by
-- one filler task per address with a 0-value transfer to self. For an unsure nonce it first
-- asks the node for the original and leaves the nonce to it if it is there. The two share the
-- nonce, so at most one is ever mined; the filler pays at least the original's fees, so an
-- original already in a mempool is not displaced by it ("replacement underpriced": taken).

function Nonces:release(n, signer)
  self.free[#self.free + 1] = n
  table.sort(self.free)
  while self.free[#self.free] == self.next - 1 do   -- freed at the top: no gap, just give back
    self.next = table.remove(self.free)
  end
  if #self.free > 0 then self:_watch_gaps(signer) end
end

-- fields: the unanswered transaction's fee fields (max_fee, max_priority_fee | gas_price)
function Nonces:unsure(n, signer, hash, fields)
  self.limbo[n] = { hash = hash, max_fee = fields.max_fee, max_priority_fee = fields.max_priority_fee,
                    gas_price = fields.gas_price }
  self:_watch_gaps(signer)
end

-- A daemon: it serves the transactions someone waits on and never keeps a script alive.
function Nonces:_watch_gaps(signer)
  if signer and not self.filler then self.filler = ferry.spawn(self._fill_gaps, self, signer):daemon() end
end

-- The lowest open gap, taken out of its list: n, limbo entry (nil for a freed nonce)
function Nonces:_take_gap()
  local n, lim = self.free[1], nil
  for ln, l in pairs(self.limbo) do
    if n == nil or ln < n then n, lim = ln, l end
  end
  if lim then self.limbo[n] = nil elseif n then table.remove(self.free, 1) end
  return n, lim
end

-- Fill nonce n -> "filled" | "taken" (nothing to do) | nil, err (try again later)
function Nonces:_fill(signer, n, lim)
  local chain = self.chain
  local t = { to = signer.address, value = 0, nonce = n }
  if lim then
    if chain:_call("eth_getTransactionByHash", { lim.hash }, { fresh = true }) then return "taken" end
    t.gas = 21000
    if lim.gas_price then
      local now = chain:gas_price()
      t.gas_price = now > lim.gas_price and now or lim.gas_price
    else
      local f = chain:fees()
      t.max_fee = f.max_fee > lim.max_fee and f.max_fee or lim.max_fee
      t.max_priority_fee = f.max_priority_fee > lim.max_priority_fee and f.max_priority_fee or lim.max_priority_fee
      if t.max_priority_fee > t.max_fee then t.max_priority_fee = t.max_fee end
    end
  end
  local ok, tx = pcall(signer.send, signer, t)
  if ok then
    ferry.log.warn("nonce gap filled with a 0-value transfer to self",
      { address = signer.address, nonce = n, hash = tx.hash, was = lim and "unanswered broadcast" or "refused broadcast" })
    ferry.spawn(function()                     -- see it mined (and bumped if it gets stuck)
      local wok, werr = pcall(tx.wait, tx, { timeout = 300 })
      if not wok then ferry.log.error("nonce gap filler not mined", { nonce = n, hash = tx.hash, err = tostring(werr) }) end
    end):daemon()
    return "filled"
  end
  local code, msg = type(tx) == "table" and tx.code, type(tx) == "table" and tostring(tx.message) or ""
  if code == "nonce_too_low" or code == "already_known" or (code == "underpriced" and msg:find("replacement", 1, true)) then
    return "taken"                             -- the chain or the mempool has a tx at n
  end
  return nil, tx
end

function Nonces:_fill_gaps(signer)
  local wait = self.chain.cfg.gap_fill_after or 2
  local failures = 0
  while (#self.free > 0 or next(self.limbo)) and failures < 5 do
    ferry.sleep(wait)
    local n, lim = self:_take_gap()
    if n == nil then break end                 -- sends took them meanwhile
    local done, err = self:_fill(signer, n, lim)
    if done == "taken" then
      ferry.log.info("nonce gap already closed", { address = signer.address, nonce = n })
    elseif not done then
      failures = failures + 1
      if lim then self.limbo[n] = lim else self.free[#self.free + 1] = n; table.sort(self.free) end
      ferry.log.warn("nonce gap fill failed; trying again", { address = signer.address, nonce = n, err = tostring(err) })
      wait = math.min(wait * 2, 30)
    end
  end
  local open = {}
  for _, n in ipairs(self.free) do open[#open + 1] = n end
  for n in pairs(self.limbo) do open[#open + 1] = n end
  if #open > 0 then
    table.sort(open)
    ferry.log.error("nonce gaps left open: later transactions of this address wait on them",
      { address = signer.address, nonces = table.concat(open, ",") })
  end
  self.filler = nil
end

-- Funds. A mined balance does not show this address's sends that are still on their way:
-- past their pre-flight check, signed, broadcast, in a mempool. So a send first commits what
-- it may spend (value + gas x max fee) and then checks the balance against its amount plus
-- what the sends that committed before it still hold; sends checking at the same time are
-- judged in commit order, as if one after the other. A hold ends when the send fails or is
-- cancelled before its broadcast (closing it), or once its nonce is below the account's mined
-- count: the balance shows it from there. A fee bump grows its transaction's hold to the
-- replacement's amount before broadcasting it (Tx:_bump). The count is read before the balance, so a
-- transaction mined between the two reads is counted twice (a refusal on the safe side, which
-- the send looks at once more), never not at all.
local Hold = { __close = function(h)
  local n = h.nonces
  n.counts[h] = nil                            -- a check cut short by an error or a cancel
  if not h.sent then n.holds[h] = nil end
end }

-- Snapshots: the (mined count, balance) pair a check judges by, the count read first, both from
-- one provider, never from the cache. Sends checking at once share one, in rounds: a round
-- starts when someone asks and no round is waiting to start; it reads only once the round
-- before it is over, and whoever asks after its reads went out waits for the next round. So
-- every check judges by reads issued after it asked (after its commit), and 32 sends in flight
-- cost a few pairs of reads instead of 32. Until its round answers, a check holds back pruning
-- at the last count a round read: its own count can only be that or higher.
function Nonces:snapshot(h)
  local round = self.round
  if not round then
    round = {}
    self.round = round
    local prev = self.reading
    -- detached: a check cancelled while it waits must not take the round from the others
    round.task = ferry.spawn(function()
      local _ <close> = setmetatable({}, { __close = function()   -- however it ends (a cancel too)
        if self.round == round then self.round = nil end
        if self.reading == round then self.reading = nil end
      end })
      if prev then prev.task:wait() end
      if self.round == round then self.round = nil end   -- from here on: the next round
      self.reading = round
      local view = self.chain:view()
      local ok, count, balance = pcall(function()
        local c = view:nonce(self.addr, "latest")
        return c, view:balance(self.addr, "latest", { fresh = true })
      end)
      if ok and count > self.last_count then self.last_count = count end
      return ok, count, balance
    end):detach()
  end
  self.counts[h] = self.last_count
  local done, ok, count, balance = round.task:wait()
  if not done then error(ok, 0) end                      -- cancelled (engine shutting down)
  if not ok then error(count, 0) end                     -- the read's own error table
  self.counts[h] = count
  return count, balance
end

function Nonces:commit(amount)
  self.seq = self.seq + 1
  local h = setmetatable({ nonces = self, amount = amount, seq = self.seq, nonce = nil, sent = false }, Hold)
  self.holds[h] = true
  return h
end

-- What the holds that committed before h and are not mined at `count` hold: amount, how many.
-- Holds mined at the lowest count a running check has read are forgotten (every later read
-- sees a count at least that high).
function Nonces:ahead_of(h, count)
  local floor = count
  for _, c in pairs(self.counts) do if c < floor then floor = c end end
  local sum, n = U(0), 0
  for o in pairs(self.holds) do
    if o.nonce and o.nonce < count then
      if o.nonce < floor then self.holds[o] = nil end
    elseif o.seq < h.seq then
      sum, n = sum + o.amount, n + 1
    end
  end
  return sum, n
end

-- The node says our count is stale (nonce too low): forget it and read again.
function Nonces:resync()
  self.next = nil
  self.free = {}
  self:_sync()
end

return Nonces
