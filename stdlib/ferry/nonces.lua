--- ferry.nonces -- what one process knows about an address's sends in flight: the nonce
--- allocator, the gaps it must fill, and the funds its sends have committed.
---
--- One instance per (chain, address), made by chain:_nonces(addr); the send pipeline is its
--- user, through these methods only (the fields are for reading: specs, the REPL):
---   nonces:   reserve() -> n, settle(n), wait_below(n, timeout), release(n, fill), bind(tx), resync()
---   funds:    hold(amount) -> h, funds(h) -> balance, held, n, assign(h, nonce), sent(h),
---             resize(h, amount) -> before, done(h)
---   store:    ready(signer, fill): the address's lease, and what a process before this one
---             left on its way resumed from the journal (ferry.store), before the first nonce
--- Two allocators:
---   * in this process (the default): the lease (ferry.store) makes this process the only one
---     sending from the address with this store, so nothing else hands out its nonces;
---   * on Redis (config redis.url): every process on that Redis reserves, settles and frees
---     through ferry.store.redis, one script per step. While Redis is unreachable a send
---     waits for it (up to order_wait) and says so: no process hands out a nonce meanwhile.
--- tests/helpers/nonce_contract.lua is the contract a backend must pass.
local ferry = require "ferry"
local u256 = require "ferry.core.u256"
local task = require "ferry.core.task"
local store = require "ferry.store"

local U = u256.new
local Nonces = {}
Nonces.__index = Nonces

-- What every address's allocator did in this process, for ferry.stats().nonces
local totals = { reserved = 0, released = 0, gaps_filled = 0, resumed = 0, interrupted = 0, lease_waits = 0,
                 leases_lost = 0 }
ferry.register_stats("nonces", totals)

-- chain: a ferry.eth chain (nonce, balance, fees, gas_price, _call); addr: checksummed
function Nonces.new(chain, addr)
  return setmetatable({ chain = chain, addr = addr, next = nil, free = {}, bound = {}, syncing = nil,
                        out = {}, settling = {}, reserving = 0, lost = {},
                        holds = {}, seq = 0, counts = {}, last_count = 0, round = nil, reading = nil }, Nonces)
end

-- How many of this address's transactions this process has sent and not yet seen mined.
function Nonces:_in_flight(mined)
  local n = 0
  for h in pairs(self.holds) do
    if h.sent and h.nonce and h.nonce >= mined then n = n + 1 end
  end
  return n
end

-- Read the pending count; concurrent callers share one read (fresh: not one that started
-- before this call). The count is checked against the mined count and what this process has
-- in flight, both from the same provider: a provider answering 2^64 - 1, or the real count +
-- 1000, is not believed (bad_response), as a signed nonce far above the chain's would stall
-- every later payment of the address.
function Nonces:_sync(fresh)
  if fresh and self.syncing then
    local old = self.syncing
    pcall(old.wait, old)
    if self.syncing == old then self.syncing = nil end
  end
  if self.syncing then
    local ok, err = self.syncing:wait()
    if not ok then error(err, 0) end
    return
  end
  self.syncing = ferry.spawn(function()
    local view = self.chain:view()
    local ahead = self.chain.cfg.max_pending_ahead or 64
    -- the mined count a funds check read within floor_every will do (one call fewer a
    -- second); when it does not explain the pending count, both are read again, in order
    local snap, mined, n = self.last_snap, nil, nil
    if snap and ferry.now() - snap.at < (self.chain.cfg.floor_every or 1) then
      n = view:nonce(self.addr, "pending")
      if n >= snap.count and n <= snap.count + self:_in_flight(snap.count) + ahead then mined = snap.count end
    end
    if not mined then
      mined = view:nonce(self.addr, "latest")
      n = view:nonce(self.addr, "pending")
    end
    local ours = self:_in_flight(mined)
    if self.alloc and n > mined + ours + ahead then
      -- other processes' sends are in flight too: what the shared allocator handed out counts
      local ok, st = pcall(self.alloc.state, self.alloc)
      if ok and st.next then ours = math.max(ours, st.next - mined) end
    end
    if n < mined or n > mined + ours + ahead then
      ferry.raise("bad_response", ("the provider says the next nonce of %s is %d, but %d are mined and this process has %d"
        .. " in flight (at most %d more are believed: max_pending_ahead)"):format(self.addr, n, mined, ours, ahead),
        { address = self.addr, pending = n, mined = mined })
    end
    if not self.next or n > self.next then self.next = n end
    if not self.floor or n > self.floor then self.floor = n end
    self.synced_at = ferry.now()
    -- not waited for: the floor goes with every reserve anyway, and Redis may be out of reach
    if self.alloc then self:_tell("raise", n) end
    -- released nonces below the chain's count were used by someone else
    local keep = {}
    for _, f in ipairs(self.free) do if f >= n then keep[#keep + 1] = f end end
    self.free = keep
  end):detach()                                -- the first caller's cancel is not the others'
  local syncing = self.syncing
  local ok, err = syncing:wait()
  if self.syncing == syncing then self.syncing = nil end
  if not ok then error(err, 0) end
end

-- Leases and recovery ------------------------------------------------------------------------

-- Take the address's lease, waiting while another live process holds it.
function Nonces:_lease(st, key)
  local deadline = ferry.now() + 2 * st.lease_ttl + 5
  local said
  while true do
    local ok, holder, left = st:lease(key)
    if ok then
      if said then ferry.log.info("address lease taken; sending", { address = self.addr }) end
      return
    end
    if ferry.now() >= deadline then
      ferry.raise("lease_held", ("%s is being sent from by another process (%s) with the store %s; waited %ds for its lease")
        :format(self.addr, holder, st.path, math.floor(2 * st.lease_ttl + 5)), { address = self.addr, holder = holder })
    end
    if not said then
      said = true
      totals.lease_waits = totals.lease_waits + 1
      ferry.log.warn("another process holds this address's lease; waiting for it", { address = self.addr,
        holder = holder, expires_in = ("%.0fs"):format(left) })
    end
    ferry.sleep(math.max(0.2, math.min(1, left)))
  end
end

-- Renew the lease while the process lives; a lease lost (this process stalled past its TTL
-- and another took it) stops this process's sends from the address.
function Nonces:_renew(st, key)
  local _ <close> = setmetatable({}, { __close = function() st:unlease(key) end })
  while true do
    ferry.sleep(st.lease_ttl / 3)
    local ok, a, b = pcall(st.lease, st, key)
    if ok and not a then
      self.lease_lost = b
      totals.leases_lost = totals.leases_lost + 1
      ferry.log.error("lost this address's lease to another process: no more sends from it here",
        { address = self.addr, holder = b })
      return
    elseif not ok then
      ferry.log.warn("could not renew this address's lease; trying again", { address = self.addr, err = tostring(a) })
    end
  end
end

-- Resume what the journal says a process before this one left on its way: signed bytes are
-- sent again and tracked (bound to their nonce: never signed again at another), a send
-- stopped before its signature is marked failed and its nonce given back.
function Nonces:_recover(st, signer, fill)
  local rows = st.journal:find({ chain_key = self.chain_key, address = self.addr, pending = true, limit = 100000 })
  local resumed, dropped, top, gaps = 0, 0, nil, {}
  local from_row = require("ferry.eth.send").from_row
  for _, row in ipairs(rows) do
    -- with a lease every other owner is gone; with shared nonces only those that died here
    if row.owner ~= store.owner and (not self.alloc or store.dead(row.owner)) then
      if not row.raw then
        st.journal:record(row.id, "failed", { error = "interrupted before it was signed: nothing was sent" })
        if row.nonce then gaps[#gaps + 1] = row.nonce end
        dropped = dropped + 1
      else
        local tx = from_row(signer, row)
        tx.unsure = "resumed from the journal"
        local _, err = self.chain:call("eth_sendRawTransaction", { row.raw })
        ferry.log.info("resuming a transaction from the journal", { id = row.id, hash = row.hash, nonce = row.nonce,
          state = row.state, rebroadcast = err and err.code or "sent" })
        st.journal.live[row.id] = tx
        st.journal:record(row.id, "unsure", { error = "resumed from the journal" })
        if self.alloc then self.alloc:settle(row.nonce) end     -- ours now: not reclaimed as a dead one's
        self:bind(tx)
        if not top or row.nonce > top then top = row.nonce end
        resumed = resumed + 1
      end
    end
  end
  totals.resumed, totals.interrupted = totals.resumed + resumed, totals.interrupted + dropped
  if resumed + dropped > 0 then
    ferry.log.warn("resumed what a previous run left in the journal", { address = self.addr, resent = resumed,
      interrupted_before_signing = dropped })
  end
  self:_sync()
  if self.alloc then return end        -- shared: a dead process's reservations are freed by owner (_free_the_dead)
  if top and top + 1 > self.next then self.next = top + 1 end
  for _, n in ipairs(gaps) do
    if n < self.next and not self.bound[n] then self:release(n, fill) end
  end
end

-- Shared nonces: reservations held by processes of this host that died are freed at once
-- (other hosts' are freed when their reservation lease runs out: _reclaimer).
function Nonces:_free_the_dead()
  local ok, st = pcall(self.alloc.state, self.alloc)
  if not ok then return end
  for n, owner in pairs(st.reserved or {}) do
    if store.process_of(owner) ~= store.owner and store.dead(owner) and not self.bound[n] then
      ferry.log.info("freeing a nonce reserved by a process that died", { address = self.addr, nonce = n, owner = owner })
      self.alloc:release(n)
    end
  end
end

-- Shared nonces: every few seconds, reservations whose lease ran out (their process died
-- elsewhere, or stalled past RESERVATION_LEASE) are freed, so nobody waits on their gap.
--
-- And two kinds of gap are closed here:
--  * a reservation of this process whose reply was lost (Redis stalled past the call's
--    deadline, then ran the script): nobody here uses it, so it is released;
--  * a free nonce below the allocator's next that no send took for gap_fill_after seconds
--    (a released one, after the last send of the address): filled with a 0-value transfer.
function Nonces:_reclaimer(fill)
  local every = math.min(5, self.chain.cfg.gap_fill_after or 2)
  while true do
    ferry.sleep(every)
    local ok, gone = pcall(self.alloc.reclaim, self.alloc)
    if ok and #gone > 0 then
      ferry.log.warn("freed nonces whose reservation lease ran out", { address = self.addr, nonces = table.concat(gone, ",") })
    end
    pcall(self._close_gaps, self, fill)
  end
end

function Nonces:_close_gaps(fill)
  local st = self.alloc:state()
  for n, owner in pairs(st.reserved or {}) do
    if self.lost[owner] then
      ferry.log.info("giving back a nonce reserved by an attempt whose reply was lost", { address = self.addr, nonce = n })
      self.alloc:release(n)
    end
  end
  if not fill or ferry.now() - (self.last_reserve or 0) < (self.chain.cfg.gap_fill_after or 2) then return end
  for _, n in ipairs(st.free or {}) do
    if n < st.next and n >= (self.floor or 0) and self.reserving == 0 then
      local got = self:reserve()
      if got ~= n then                             -- another process took it meanwhile
        self:release(got)
        return
      end
      local done, err = self:_fill(fill, got)
      if not done then self:release(got) ferry.log.warn("nonce gap fill failed", { nonce = got, err = tostring(err) }) end
      self:settle(got)
      return
    end
  end
end

-- The chain as the store knows it: its id and genesis hash. Two dev chains (two anvils) share
-- chain id 31337; a payment journaled on one must never be resumed on the other.
function Nonces:_chain_key()
  local chain = self.chain.base or self.chain
  if not chain.genesis then
    local b, err = chain:call("eth_getBlockByNumber", { "0x0", false })
    if err then error(err, 0) end
    if type(b) ~= "table" or type(b.hash) ~= "string" then
      ferry.raise("bad_response", "eth_getBlockByNumber(0): no genesis block hash", { method = "eth_getBlockByNumber" })
    end
    chain.genesis = b.hash:lower()
  end
  return ("%d:%s"):format(self.chain.chain_id, chain.genesis:sub(1, 18))
end

--- ready(signer, fill): the lease, then recovery; once per process and address (callers at
--- once share it). fill(n) closes a nonce gap (see release).
function Nonces:ready(signer, fill)
  if self.is_ready then
    if self.lease_lost then
      ferry.raise("lease_lost", ("%s: this process lost the address's lease to %s"):format(self.addr, self.lease_lost),
        { address = self.addr })
    end
    return
  end
  if not self.readying then
    self.readying = ferry.spawn(function()
      local st = store.get()
      self.chain_key = self:_chain_key()
      local key = self.chain_key .. ":" .. self.addr:lower()
      if st.redis_nonces then
        self.alloc = st.redis_nonces:nonces(self.chain_key, self.addr)
        -- the lease lets this process go on alone while Redis is out of reach; a holder that
        -- fell silent is followed by a fresh read of the chain's pending count
        self.alloc:hold_lease(function()
          self:_sync(true)
          return self.floor
        end)
        self.alloc.on_rejoin = function() self:_register_alone() end
        self:_recover(st, signer, fill)
        self:_free_the_dead()
        self.renewer = ferry.spawn(self._reclaimer, self, fill):daemon()
      else
        self:_lease(st, key)
        self.renewer = ferry.spawn(self._renew, self, st, key):daemon()
        self:_recover(st, signer, fill)
      end
    end):detach()
  end
  local readying = self.readying
  local ok, err = readying:wait()
  if self.readying == readying then self.readying = nil end
  if not ok then error(err, 0) end
  self.is_ready = true
end

-- The floor: a transaction another tool sent from this address raises the chain's pending
-- count above ours. Before handing out a new nonce, the count is read again when the last
-- read is older than `floor_every` seconds (the chain's setting, default 1; concurrent
-- reservers share one read), so such a send costs at most one refusal, usually none. A read
-- that fails keeps the floor we have.
function Nonces:_floor()
  local every = self.chain.cfg.floor_every or 1
  if #self.free == 0 and ferry.now() - (self.synced_at or 0) >= every then
    local ok, err = pcall(self._sync, self)
    if not ok then ferry.log.debug("nonce floor not read; keeping ours", { address = self.addr, err = tostring(err) }) end
  end
end

-- How long a reservation on Redis lasts without its settle: above the longest a send holds
-- one (order_wait, 30 s, plus its broadcast); one older than this belongs to a dead process.
local RESERVATION_LEASE = 90
local attempts = 0

-- Shared nonces: the allocator on Redis; while it is unreachable, wait (and say so once).
function Nonces:_reserve_shared()
  while not self.floor do self:_sync() end
  self:_floor()
  local deadline = ferry.now() + (self.chain.cfg.order_wait or 30)
  -- each reserve has its own name, kept by its retries: a retry after a lost reply (Redis
  -- stalled past the call's deadline, then ran the script) gets the nonce the lost one took,
  -- and a reserve that gives up is known by it, and its nonce given back (_close_gaps)
  attempts = attempts + 1
  local owner = store.owner .. "#" .. attempts
  while true do
    -- the lease holder goes on alone while Redis is out of reach (ferry.store.redis)
    local alone = self.alloc:alone(RESERVATION_LEASE)
    if alone then return alone end
    local ok, n = pcall(self.alloc.reserve, self.alloc, self.floor, owner, RESERVATION_LEASE)
    if ok then
      if self.store_down then
        self.store_down = nil
        ferry.log.info("nonce store reachable again; sending", { address = self.addr })
      end
      return n
    end
    if type(n) ~= "table" or n.code ~= "store_unavailable" or ferry.now() >= deadline then
      self.lost[owner] = true
      error(n, 0)
    end
    if not self.store_down then
      self.store_down = true
      ferry.log.warn("the nonce store (Redis) is unreachable: sends from this address wait for it, unless this "
        .. "process holds the address's lease and may go on alone", { address = self.addr, err = tostring(n.message),
          alone = self.alloc:why_not_alone() or "yes" })
    end
    ferry.sleep(0.25)
  end
end

function Nonces:reserve()
  if self.alloc then
    self.reserving = self.reserving + 1
    local ok, n = pcall(self._reserve_shared, self)
    self.reserving = self.reserving - 1
    if not ok then error(n, 0) end
    self.last_reserve = ferry.now()
    self.out[n] = true
    totals.reserved = totals.reserved + 1
    return n
  end
  -- a loop: between a sync and this task's turn another resync may be under way
  while not self.next do self:_sync() end
  self:_floor()
  local n
  if #self.free > 0 then
    table.sort(self.free)
    n = table.remove(self.free, 1)
  else
    n = self.next
    while self.bound[n] do n = n + 1 end      -- never hand out a nonce a payment is bound to
    self.next = n + 1
  end
  self.out[n] = true                          -- handed out, its broadcast not settled yet
  totals.reserved = totals.reserved + 1
  return n
end

-- Order. Sends of one address race each other to the node, so the broadcast of nonce n can
-- arrive before that of n - 1; a node that does not queue gaps (hardhat's automine, L2
-- sequencers) then refuses it ("nonce too high"). That refusal is ours to wait out: the send
-- waits until the nonces below it have settled (sent, bound or freed), then sends the same
-- bytes again (ferry.eth.send, broadcast step).

--- settle(n): the broadcast at n is over, whichever way (sent, bound, freed).
-- Shared nonces: a step on Redis that no caller waits for (settle and release also run from
-- <close> handlers, which cannot yield); a failure only delays the nonce's reclaim.
function Nonces:_tell(what, n)
  ferry.spawn(function()
    local ok, err = pcall(self.alloc[what], self.alloc, n)
    if not ok then ferry.log.debug("nonce store step failed", { step = what, nonce = n, err = tostring(err) }) end
  end):detach()
end

function Nonces:settle(n)
  if not self.out[n] then return end
  self.out[n] = nil
  if self.alloc and not self.releasing then self:_tell("settle", n) end
  for q in pairs(self.settling) do q:put(n) end
end

--- confirm(n) -> false when n, reserved here, was taken back by the address's lease holder
--- (it sent alone with it while Redis was out of reach, and this send's broadcast comes late:
--- ferry.store.redis); the send must not broadcast its bytes, and forget(n) then reserve()
--- again. True otherwise (and at once when nonces are not shared or the broadcast is not late).
--- While Redis is unreachable it waits, as a reserve does.
function Nonces:confirm(n)
  if not (self.alloc and self.out[n] and self.alloc:late(n)) then return true end
  local deadline = ferry.now() + (self.chain.cfg.order_wait or 30)
  while true do
    local ok, r = pcall(self.alloc.confirm, self.alloc, n)
    if ok then return r end
    if type(r) ~= "table" or r.code ~= "store_unavailable" or ferry.now() >= deadline then error(r, 0) end
    ferry.sleep(0.25)
  end
end

--- forget(n): n is not ours any more (confirm said so): no longer handed out here, nothing
--- told to the store (n is another's there).
function Nonces:forget(n)
  if self.alloc then self.alloc:forget(n) end
  self.releasing = true
  self:settle(n)
  self.releasing = nil
end

--- wait_below(n, timeout) -> true once no nonce below n is handed out and unsettled, false
--- if none was to begin with (nothing of ours explains a gap below n), nil on timeout.
function Nonces:wait_below(n, timeout)
  local function any()
    for m in pairs(self.out) do if m < n then return true end end
    return false
  end
  if not any() then return false end
  local q = task.queue()
  self.settling[q] = true
  local _ <close> = setmetatable({}, { __close = function() self.settling[q] = nil end })
  local deadline = ferry.now() + timeout
  while any() do
    local left = deadline - ferry.now()
    if left <= 0 or q:get(left) == nil then return nil end
  end
  return true
end

-- Gaps. Every transaction of an address waits on all lower nonces, so a nonce handed out and
-- then not used stalls everything above it. A nonce is freed when every node refused the
-- broadcast: the next send takes it (reserve prefers freed ones). Whatever is still free after
-- the chain's `gap_fill_after` seconds (default 2) is filled by one filler task per address
-- with a 0-value transfer to self.
--
-- A broadcast that got no answer is no gap: its payment is bound to the nonce (bind) and a
-- tracker sees it through: tx:wait sends the same bytes again and bumps its fees when it is
-- stuck, until it is mined or proven absent (its nonce taken by another transaction).

--- release(n, fill): the broadcast at n was refused by every node; fill(n) closes the gap if
--- no send takes n first (see _watch_gaps).
function Nonces:release(n, fill)
  totals.released = totals.released + 1
  if self.alloc then
    self.releasing = true
    self:settle(n)
    self.releasing = nil
    self:_tell("release", n)     -- the next reserve of any process takes it first
    return
  end
  self:settle(n)
  self.free[#self.free + 1] = n
  table.sort(self.free)
  while self.free[#self.free] == self.next - 1 do   -- freed at the top: no gap, just give back
    self.next = table.remove(self.free)
  end
  if #self.free > 0 then self:_watch_gaps(fill) end
end

-- tx: a ferry.eth Tx whose broadcast got no answer. A daemon waits for it (never keeping a
-- script alive); a caller may wait on the same tx meanwhile.
function Nonces:bind(tx)
  self:settle(tx.nonce)
  self.bound[tx.nonce] = tx
  ferry.spawn(function()
    local _ <close> = setmetatable({}, { __close = function()
      if self.bound[tx.nonce] == tx then self.bound[tx.nonce] = nil end
    end })
    local deadline = ferry.now() + (self.chain.cfg.track_timeout or 600)
    local ok, err
    repeat                                     -- a provider that fails for a while is waited out
      ok, err = pcall(tx.wait, tx, { timeout = math.max(1, deadline - ferry.now()) })
      local settled = ok or (type(err) == "table" and (err.code == "reverted" or err.code == "nonce_too_low"))
      if not settled then ferry.sleep(1) end
    until settled or ferry.now() >= deadline
    if ok then
      ferry.log.info("unanswered broadcast mined", { hash = tx.hash, nonce = tx.nonce, from = tx.from })
    else
      ferry.log.warn("unanswered broadcast not mined", { hash = tx.hash, nonce = tx.nonce, from = tx.from,
        err = tostring(err) })
    end
  end):daemon()
end

-- A daemon: it serves the transactions someone waits on and never keeps a script alive.
-- fill(n) -> tx: sends a 0-value transfer to self at nonce n (the send pipeline's steps that
-- apply, from ferry.eth), or raises.
function Nonces:_watch_gaps(fill)
  if fill and not self.filler then self.filler = ferry.spawn(self._fill_gaps, self, fill):daemon() end
end

-- Fill freed nonce n -> "filled" | "taken" (nothing to do) | nil, err (try again later)
function Nonces:_fill(fill, n)
  local ok, tx = pcall(fill, n)
  if ok then
    totals.gaps_filled = totals.gaps_filled + 1
    ferry.log.warn("nonce gap filled with a 0-value transfer to self",
      { address = self.addr, nonce = n, hash = tx.hash })
    ferry.spawn(function()                     -- see it mined (and bumped if it gets stuck)
      local wok, werr = pcall(tx.wait, tx, { timeout = 300 })
      if not wok then ferry.log.error("nonce gap filler not mined", { nonce = n, hash = tx.hash, err = tostring(werr) }) end
    end):daemon()
    return "filled"
  end
  local code, msg = type(tx) == "table" and tx.code, type(tx) == "table" and tostring(tx.message) or ""
  if code == "nonce_too_low" or code == "already_known" or (code == "underpriced" and msg:lower():find("replacement", 1, true)) then
    return "taken"                             -- the chain or the mempool has a tx at n
  end
  return nil, tx
end

function Nonces:_fill_gaps(fill)
  local wait = self.chain.cfg.gap_fill_after or 2
  local failures = 0
  while #self.free > 0 and failures < 5 do
    ferry.sleep(wait)
    local n = table.remove(self.free, 1)
    if n == nil then break end                 -- sends took them meanwhile
    local done, err = self:_fill(fill, n)
    if done == "taken" then
      ferry.log.info("nonce gap already closed", { address = self.addr, nonce = n })
    elseif not done then
      failures = failures + 1
      self.free[#self.free + 1] = n
      table.sort(self.free)
      ferry.log.warn("nonce gap fill failed; trying again", { address = self.addr, nonce = n, err = tostring(err) })
      wait = math.min(wait * 2, 30)
    end
  end
  if #self.free > 0 then
    ferry.log.error("nonce gaps left open: later transactions of this address wait on them",
      { address = self.addr, nonces = table.concat(self.free, ",") })
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
--
-- With nonces on Redis (the store has redis_nonces) the holds are there too
-- (ferry.store.redis_funds): the commit order is Redis's, across processes, and "held ahead"
-- sums every process's holds, so processes sending from one address never promise the same
-- ether twice. The balance reads stay per process, shared by its checks in rounds. Commits
-- and checks wait while Redis is unreachable (up to order_wait) and say why; a check never
-- passes unchecked. The later steps of a hold (assign, sent, done) go to Redis in order from
-- a queue that no send waits on; a resize (a fee bump) waits for Redis.
local Hold = { __close = function(h) h.nonces:done(h) end }

-- How long an unsent hold lives on Redis without news from its send: above the longest a
-- send takes from its check to its broadcast (a reserve, order_wait, 30 s; the broadcast's,
-- 30 s); one older belongs to a process that died elsewhere (one of this host is seen dead).
local HOLD_LEASE = 90
-- the store's nonce allocator on Redis -> ferry.store.redis_funds on the same client
local funds_stores = setmetatable({}, { __mode = "k" })

-- The address's holds on Redis when its nonces are there, else nil (no I/O the second time).
function Nonces:_shared_funds()
  local st = store.current()
  local rn = st and st.redis_nonces
  if not rn then return nil end
  if self.funds_of ~= rn then
    local fs = funds_stores[rn]
    if not fs then
      fs = require("ferry.store.redis_funds").new(rn.client, { prefix = rn.prefix, timeout = rn.timeout })
      funds_stores[rn] = fs
    end
    self.chain_key = self.chain_key or self:_chain_key()
    self.shared_holds, self.funds_of = fs:holds(self.chain_key, self.addr), rn
  end
  return self.shared_holds
end

-- Sending alone (ferry.store.redis): while Redis is out of reach the address's lease holder
-- goes on, and its funds checks too. Its holds then stay here, and a check judges by the
-- node's pending state: the balance after every transaction the node has (every other
-- process is fenced at its reserve, and broadcast what it reserved before the fence within
-- the allocator's drain), less this process's holds committed before and not in that state
-- (no nonce yet, or one at or above the pending count), less what other processes held at
-- this process's last check through Redis. A hold another process committed after that
-- check is not counted: its send, fenced until the holder is back, may then meet a node that
-- refuses it for funds (nothing paid; never paid twice). Once Redis is back, the holds made
-- alone that still hold go to Redis before the fence comes down (_register_alone).
local ALONE = setmetatable({ code = "funds_alone", message = "sending alone: funds judged by the node's pending state" },
  { __tostring = function(e) return e.message end })

function Nonces:_alone()
  return self.alloc ~= nil and self.alloc:why_not_alone() == nil
end

function Nonces:_alone_funds(h)
  local view = self.chain:view()
  local count = view:nonce(self.addr, "pending")
  local balance = view:balance(self.addr, "pending", { fresh = true })
  -- and what other processes held at the last check that asked Redis (some of it may be in
  -- the pending state already: counted twice, on the safe side)
  local sum, n = self.others_held or U(0), 0
  for o in pairs(self.holds) do
    if o ~= h and o.seq < h.seq and (not o.nonce or o.nonce >= count) then sum, n = sum + o.amount, n + 1 end
  end
  return balance, sum, n
end

-- The holds made alone that still hold, committed on Redis (their order: after every hold
-- there), so other processes' checks count them once the fence is down.
function Nonces:_register_alone()
  local shared = self:_shared_funds()
  if not shared then return end
  for h in pairs(self.holds) do
    if h.alone and not h.rseq and not h.closed then
      local epoch, _, seq = self:_fstep(function(seen) return shared:hold(seen, h.amount, store.owner, HOLD_LEASE) end)
      h.shared, h.rseq, h.epoch = shared, seq, epoch
      self:_fstep(function(seen) return shared:put(seen, h.rseq, h.amount, h.nonce, h.sent, store.owner, HOLD_LEASE) end)
    end
  end
end

-- fn() on Redis; while Redis is unreachable, wait (saying so once) up to order_wait.
function Nonces:_funds_call(fn)
  local deadline = ferry.now() + (self.chain.cfg.order_wait or 30)
  while true do
    local r = table.pack(pcall(fn))
    local ok, a = r[1], r[2]
    if ok then
      if self.funds_down then
        self.funds_down = nil
        ferry.log.info("funds store reachable again; checking funds", { address = self.addr })
      end
      return table.unpack(r, 2, r.n)
    end
    if type(a) ~= "table" or a.code ~= "store_unavailable" or ferry.now() >= deadline then error(a, 0) end
    -- the lease holder sending alone judges by the node's pending state instead (_alone_funds)
    if self:_alone() then error(ALONE, 0) end
    if self.alloc then self.alloc:touch() end   -- a send waiting here keeps the lease
    if not self.funds_down then
      self.funds_down = true
      ferry.log.warn("the funds store (Redis) is unreachable: funds checks of this address wait for it, as what "
        .. "other processes hold is not known meanwhile", { address = self.addr, err = tostring(a.message) })
    end
    ferry.sleep(0.25)
  end
end

-- Re-registered holds go this far below where they were: below every hold committed in the
-- new epoch (from 1 up), in the order they had among themselves.
local REGISTERED_BELOW = 1 << 40

-- Redis lost this address's holds (a new epoch): register the ones held here again, before
-- the window closes and checks judge by the new state.
function Nonces:_reregister()
  local list = {}
  for h in pairs(self.holds) do
    if h.rseq then
      h.rseq, h.epoch = h.rseq - REGISTERED_BELOW, self.funds_epoch
      list[#list + 1] = { h.rseq, h.amount, h.nonce, h.sent }
    end
  end
  if #list == 0 then return end
  ferry.log.warn("funds store: Redis lost this address's holds; the ones held here are registered again",
    { address = self.addr, holds = #list })
  self:_funds_call(function() return self.shared_holds:register(store.owner, HOLD_LEASE, list) end)
end

-- One step on the shared holds: fn(seen epoch) -> epoch, ms left in the window, outcome, ...
-- It waits while Redis is unreachable (_funds_call). A new epoch registers this process's
-- holds again first; a step refused for naming the old one ("EPOCH") runs again.
function Nonces:_fstep(fn)
  local client = self.shared_holds.store.client
  while true do
    local gen = client.generation
    local r = table.pack(self:_funds_call(function() return fn(self.funds_epoch) end))
    if self.funds_epoch ~= r[1] then
      local was = self.funds_epoch
      self.funds_epoch = r[1]
      if was ~= nil then
        self.funds_lost = true
        self:_reregister()
      end
    end
    self.funds_gen = gen
    if r[3] ~= "EPOCH" then return table.unpack(r, 1, r.n) end
  end
end

-- While this process has holds on Redis: after every reconnect (Redis restarted, or failed
-- over), ask whether the state is still the one seen, so holds are registered again within
-- the window even when no send of this process asks meanwhile.
function Nonces:_funds_watch()
  if self.funds_watcher then return end
  self.funds_watcher = ferry.spawn(function()
    local fs = self.shared_holds.store
    while true do
      ferry.sleep(fs.window / 8)
      if self.funds_epoch and next(self.holds) and fs.client.generation ~= self.funds_gen then
        pcall(self._fstep, self, function() return self.shared_holds:ping() end)
      end
    end
  end):daemon()
end

-- The later steps of shared holds, in order, by one task per address. Each waits while Redis
-- is unreachable, up to order_wait (a sent hold must land: it holds funds until mined). A
-- script that ends waits for them (a round trip each); one given up on leaves an unsent hold
-- on Redis to its lease, or to the next check of this host once this process is gone. A hold
-- of an epoch Redis has forgotten, not registered again (it was done), is not there to touch:
-- its seq may be another hold's in the new epoch.
function Nonces:_funds_tell(h, op)
  local q = self.funds_q
  if not q then q = {}; self.funds_q = q end
  q[#q + 1] = { h = h, op = op }
  if self.funds_worker then return end
  self.funds_worker = ferry.spawn(function()
    local _ <close> = setmetatable({}, { __close = function() self.funds_worker = nil end })
    while #q > 0 do
      local item = table.remove(q, 1)
      local hh = item.h
      local ok, err = pcall(self._fstep, self, function(seen)
        if seen and hh.epoch ~= seen then return seen, 0, "OK" end
        if item.op == "done" then return hh.shared:done(seen, hh.rseq, hh.sent) end
        return hh.shared:put(seen, hh.rseq, hh.amount, hh.nonce, hh.sent, store.owner, HOLD_LEASE)
      end)
      if not ok then
        ferry.log.error("funds store step failed", { address = self.addr, step = item.op, err = tostring(err) })
      end
    end
  end):detach()
end

--- done(hold): the send that made it is over. A hold not sent is given back; a check it was
--- in (cut short by an error or a cancel) is forgotten.
function Nonces:done(h)
  self.counts[h] = nil
  if not h.sent then self.holds[h] = nil end
  if h.rseq and not h.sent and not h.closed then
    h.closed = true
    self:_funds_tell(h, "done")
  end
end

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
      local at = ferry.now()
      local ok, count, balance = pcall(function()
        local c = view:nonce(self.addr, "latest")
        return c, view:balance(self.addr, "latest", { fresh = true })
      end)
      if ok and count > self.last_count then self.last_count = count end
      if ok then self.last_snap = { count = count, balance = balance, at = at } end
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

--- hold(amount) -> a hold (to-be-closed): what a send may spend, committed before its check.
--- Closing it before sent(hold) gives it back (a send that failed or was cancelled).
function Nonces:hold(amount)
  self.seq = self.seq + 1
  local h = setmetatable({ nonces = self, amount = amount, seq = self.seq, nonce = nil, sent = false }, Hold)
  local shared = self:_shared_funds()
  if shared then
    if self.alloc then self.alloc:touch() end
    local ok, epoch, _, seq = false, ALONE, nil, nil
    if not self:_alone() then
      ok, epoch, _, seq = pcall(self._fstep, self, function(seen) return shared:hold(seen, amount, store.owner, HOLD_LEASE) end)
    end
    if ok then
      h.shared, h.rseq, h.epoch = shared, seq, epoch
      self:_funds_watch()
    elseif epoch == ALONE then
      h.alone = true                           -- judged by _alone_funds, put on Redis later
    else
      error(epoch, 0)
    end
  end
  self.holds[h] = true
  return h
end

-- A shared check's count is below what another process's checks pruned at (its provider
-- lags theirs): it is read again, at most this many times.
local STALE_LOOKS = 10

--- funds(hold) -> balance, held, n: the mined balance and what the n holds committed before
--- this one still hold, judged by reads made after the commit (a second look when a hold
--- ahead may have been mined between the two reads).
function Nonces:funds(h)
  if h.alone then return self:_alone_funds(h) end
  if not h.rseq then
    local balance, held, n = self:_recent(h)
    if balance then return balance, held, n end
  end
  local balance, ahead, n_ahead
  local looks, stale = 0, 0
  while looks < 2 do
    local count
    count, balance = self:snapshot(h)
    local ok
    ok, ahead, n_ahead = pcall(self.ahead_of, self, h, count)
    if not ok then
      if ahead ~= ALONE then error(ahead, 0) end
      self.counts[h] = nil
      return self:_alone_funds(h)             -- committed on Redis, judged alone
    end
    if ahead then
      looks = looks + 1
      if balance >= ahead + h.amount or n_ahead == 0 then break end
    else
      stale = stale + 1
      if stale >= STALE_LOOKS then
        self.counts[h] = nil
        ferry.raise("bad_response", ("%s: the provider's mined count (%d) stays below %d, which other processes' "
          .. "checks read: funds are not judged on a stale view"):format(self.addr, count, n_ahead), { address = self.addr })
      end
      ferry.sleep(0.1)
    end
  end
  self.counts[h] = nil
  return balance, ahead, n_ahead
end

-- The last pair of reads, when it is recent (floor_every, 1 s) and covers h even against
-- every hold not mined at its count -- those committed after h too, and those mined since
-- (their cost is then in a balance read later, and counted here again): a judgment on the
-- safe side that needs no read. Sends of one process checking by the second share one pair
-- of reads instead of two a round. -> balance, held, n | nil (ask the node: snapshot)
function Nonces:_recent(h)
  local snap = self.last_snap
  if not snap or ferry.now() - snap.at > (self.chain.cfg.floor_every or 1) then return nil end
  self:_local_ahead(h, snap.count)             -- forgets what that read saw mined
  local sum, n = U(0), 0
  for o in pairs(self.holds) do
    if o ~= h and (not o.nonce or o.nonce >= snap.count) then sum, n = sum + o.amount, n + 1 end
  end
  if snap.balance >= sum + h.amount then return snap.balance, sum, n end
end

--- assign(hold, nonce): the hold's transaction is signed at nonce.
function Nonces:assign(h, n)
  h.nonce = n
  if h.rseq then self:_funds_tell(h, "put") end
end

--- sent(hold): its transaction may have reached a node: held until its nonce is mined.
function Nonces:sent(h)
  if h.sent then return end
  h.sent = true
  if h.rseq then self:_funds_tell(h, "put") end
end

--- resize(hold, amount) -> the amount it held before (a fee bump grows it, a refused one
--- shrinks it back).
function Nonces:resize(h, amount)
  local before = h.amount
  h.amount = amount
  if h.rseq then
    local ok, err = pcall(self._fstep, self, function(seen)
      if seen and h.epoch ~= seen then return seen, 0, "OK" end      -- given back meanwhile
      return h.shared:put(seen, h.rseq, h.amount, h.nonce, h.sent, store.owner, HOLD_LEASE)
    end)
    if not ok then
      ferry.log.warn("a hold's new amount is not on the funds store yet; it goes when Redis answers",
        { address = self.addr, err = tostring(type(err) == "table" and err.message or err) })
      self:_funds_tell(h, "put")
    end
  end
  return before
end

-- Forget this process's holds mined at the lowest count a running check has read (every
-- later read sees a count at least that high); with `h`, also sum what the holds committed
-- before it and not mined at `count` hold.
function Nonces:_local_ahead(h, count)
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

-- Shared: what every process's holds committed before h (Redis's order) and not mined at
-- `count` hold. Unsent holds of a process of this host that died are dropped first. -> sum,
-- n | nil, pruned (count is older than what was pruned: read again)
function Nonces:_shared_ahead(h, count)
  self:_local_ahead(h, count)                  -- keeps this process's table small
  self.dead_owners = self.dead_owners or {}
  local said
  while true do
    local _, left, outcome, amounts, owners = self:_fstep(function(seen) return h.shared:ahead(seen, h.rseq, count) end)
    if outcome == "STALE" then return nil, amounts end
    if outcome == "RECOVERING" then
      if not said then
        said = true
        -- the first contact with an address's holds opens the window too: that is not news
        ferry.log[self.funds_lost and "info" or "debug"]("funds store: waiting for every process to register its "
          .. "holds again", { address = self.addr, seconds = left / 1000 })
      end
      ferry.sleep(math.min(left / 1000 + 0.005, 0.25))
    else
      local gone
      for _, o in ipairs(owners) do
        if o ~= store.owner and not self.dead_owners[o] and store.dead(o) then
          self.dead_owners[o] = true
          gone = true
          local n = select(4, self:_fstep(function(seen) return h.shared:forget(seen, o) end))
          ferry.log.info("dropped the funds holds of a process that died", { address = self.addr, owner = o, holds = n })
        end
      end
      if not gone then
        local sum, others = U(0), U(0)
        for i, a in ipairs(amounts) do
          sum = sum + U(a)
          if owners[i] ~= store.owner then others = others + U(a) end
        end
        self.others_held = others               -- what a check alone cannot ask for (_alone_funds)
        return sum, #amounts
      end
    end
  end
end

-- What the holds that committed before h and are not mined at `count` hold: amount, how many.
function Nonces:ahead_of(h, count)
  if h.rseq then return self:_shared_ahead(h, count) end
  return self:_local_ahead(h, count)
end

-- The node says our count is stale (nonce too low): read it again (a read that started
-- before is not enough). The count only moves up, so tasks reserving meanwhile never see
-- it missing.
function Nonces:resync()
  self:_sync(true)
end

return Nonces
