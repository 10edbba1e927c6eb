--- ferry.store.journal -- every transaction's life, written before each step is taken.
---
---   new (an id claimed) -> reserved (a nonce) -> signed (the raw bytes, before they leave)
---   -> sent | unsure (no answer: bound to its nonce and hash) -> confirmed | reverted
---   or failed (nothing was paid: refused, or stopped before its broadcast) | taken (its nonce
---   was mined by another transaction and no version of it is anywhere: nothing paid)
---
--- A row: id, chain, chain_id, chain_key (chain id and genesis hash: two dev chains with one
--- chain id are not one chain), address, nonce, state, hash, raw, hashes (every version's hash),
--- fields (the payment: to, value, data, gas, fees, legacy), block, error, provider, owner,
--- created, updated (wall-clock seconds), and events: every pipeline step's {step, outcome,
--- at, nonce, hash}, appended to the row as lines of JSON with its next write.
---
--- Writes are queued in order behind each other (ferry.core.db); `save` also waits until the
--- row is on disk, which the pipeline does for the signed bytes before they are broadcast.
---
--- With nonces on Redis (the store has redis_nonces: config redis.url) every row is on Redis
--- too (ferry.store.redis_journal), so ids are claimed once by every process on that Redis
--- and get / by_hash answer for any of them. The SQLite journal stays: it is this process's
--- own durable record, and what a restart resumes. Each row's writes go to Redis in order,
--- from a queue no send waits on, except `claim` and the `save` of a claimed id (the signed
--- bytes: on Redis before they leave), which wait for Redis while it is unreachable and say
--- why. A row without a caller's id (its id is this process's own, no other process can
--- claim it) waits for nothing on Redis: the lease holder goes on sending it alone while
--- Redis is out of reach (ferry.store.redis, "Sending alone"), and Redis gets it later.
local ferry = require "ferry"
local json = require "ferry.core.json"
local task = require "ferry.core.task"

local Journal = {}
Journal.__index = Journal

--- States a transaction is still on its way in (a restart resumes them).
Journal.PENDING = { new = true, reserved = true, signed = true, sent = true, unsure = true }
--- States a transaction ends in (it leaves journal.live, the in-process registry, there).
Journal.FINAL = { confirmed = true, reverted = true, taken = true, failed = true }
--- States that say nothing was paid (an id in one of them may be sent again).
Journal.UNPAID = { failed = true, taken = true }

local function wall() return require("ferry.store").wall() end

function Journal.new(store)
  return setmetatable({ store = store, counts_ = {}, live = {}, pending_events = {}, chain_of = {}, mq = {}, known = {},
                        claimed = {} }, Journal)
end

-- How long a claim by a live process of another host counts without news from its send (a
-- row is written at each step); past it, the id is taken over. A stalled owner that wakes
-- up then finds its row taken and signs nothing (its `save` is refused).
Journal.CLAIM_LEASE = 90
-- How long a claim or a save waits for an unreachable Redis.
Journal.REDIS_WAIT = 30

-- The journal on Redis when the store's nonces are there, else nil.
function Journal:_redis()
  local rn = self.store.redis_nonces
  if not rn then return nil end
  if not self.rj or self.rj_client ~= rn.client then
    self.rj = require("ferry.store.redis_journal").new(rn.client, { prefix = rn.prefix, timeout = rn.timeout })
    self.rj_client = rn.client
  end
  return self.rj
end

-- fn() on Redis, waiting (and saying so once) while Redis is unreachable, up to REDIS_WAIT.
local function wait_redis(what, fn)
  local deadline = ferry.now() + Journal.REDIS_WAIT
  local said
  while true do
    local ok, a, b = pcall(fn)
    if ok then
      if said then ferry.log.info("journal on Redis reachable again", { step = what }) end
      return a, b
    end
    if type(a) ~= "table" or a.code ~= "store_unavailable" or ferry.now() >= deadline then error(a, 0) end
    if not said then
      said = true
      ferry.log.warn("the journal on Redis is unreachable: this step waits for it, as other processes must see it "
        .. "before it goes on", { step = what, err = tostring(a.message) })
    end
    ferry.sleep(0.25)
  end
end

local COLS = "id, chain, chain_id, chain_key, address, nonce, state, hash, raw, hashes, fields, block, error, provider, "
  .. "owner, created, updated"

-- u256 and other userdata as text, so a row's JSON reads back exactly
local function plain(v)
  if type(v) == "table" then
    local o = {}
    for k, x in pairs(v) do o[k] = plain(x) end
    return o
  end
  if type(v) == "userdata" then return tostring(v) end
  return v
end

local function decode(row)
  if not row then return nil end
  if row.hashes then row.hashes = json.decode(row.hashes) end
  if row.fields then row.fields = json.decode(row.fields) end
  return row
end

-- The statement that writes state and the given fields of row id (the others kept); one text,
-- so SQLite prepares it once (ferry.core.db caches statements by their text).
local UPSERT = [[INSERT INTO txs(]] .. COLS .. [[, events)
      VALUES(?1, ?2, ?3, ?16, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?17)
      ON CONFLICT(id) DO UPDATE SET state = excluded.state,
        chain = coalesce(excluded.chain, chain), chain_id = coalesce(excluded.chain_id, chain_id),
        chain_key = coalesce(excluded.chain_key, chain_key),
        address = coalesce(excluded.address, address), nonce = coalesce(excluded.nonce, nonce),
        hash = coalesce(excluded.hash, hash), raw = coalesce(excluded.raw, raw),
        hashes = coalesce(excluded.hashes, hashes), fields = coalesce(excluded.fields, fields),
        block = coalesce(excluded.block, block), error = excluded.error,
        provider = coalesce(excluded.provider, provider), owner = excluded.owner, updated = excluded.updated,
        events = coalesce(events, '') || coalesce(?17, '')]]

local function upsert(self, id, state, f, events)
  self.counts_[state] = (self.counts_[state] or 0) + 1
  return UPSERT, id, f.chain, f.chain_id, f.address, f.nonce, state, f.hash, f.raw,
    f.hashes and json.encode(f.hashes) or nil, f.fields and json.encode(plain(f.fields)) or nil,
    f.block, f.error and ferry.redact(tostring(f.error)) or nil, f.provider, require("ferry.store").owner, wall(),
    f.chain_key, events
end

-- The events buffered for id, as JSON lines (written with the row's next write)
local function take_events(self, id)
  local evs = self.pending_events[id]
  if not evs then return nil end
  self.pending_events[id] = nil
  return table.concat(evs)
end

--- journal:event(id, ev): a pipeline step's event; written with the row's next write.
function Journal:event(id, ev)
  local list = self.pending_events[id]
  if not list then list = {}; self.pending_events[id] = list end
  list[#list + 1] = ('{"at":%.3f,"step":%s,"outcome":%s%s%s}\n'):format(wall(), json.encode(ev.step),
    json.encode(tostring(ev.outcome)), ev.nonce and (',"nonce":' .. math.tointeger(ev.nonce)) or "",
    ev.hash and (',"hash":"' .. ev.hash .. '"') or "")
end

-- The columns of a write as the Redis row keeps them (JSON as text, the error redacted).
local function columns(f)
  return { chain = f.chain, chain_id = f.chain_id, chain_key = f.chain_key, address = f.address, nonce = f.nonce,
           hash = f.hash, raw = f.raw, hashes = f.hashes and json.encode(f.hashes) or nil,
           fields = f.fields and json.encode(plain(f.fields)) or nil, block = f.block,
           error = f.error and ferry.redact(tostring(f.error)) or nil, provider = f.provider }
end

-- Every hash of a payment this process knows (signed here, bumped here, or read with a row
-- it was given): its proof, on Redis, that a write is about those bytes, and that a
-- "nothing was paid" knows every version.
function Journal:_know(id, row)
  local set = self.known[id]
  local function add(h)
    if type(h) ~= "string" then return end
    if not set then set = {}; self.known[id] = set end
    set[h:lower()] = true
  end
  add(row.hash)
  for _, h in ipairs(type(row.hashes) == "table" and row.hashes or {}) do add(h) end
end

function Journal:_known(id)
  local list = {}
  for h in pairs(self.known[id] or {}) do list[#list + 1] = h end
  return list
end

-- Queue a row's write to Redis behind that row's earlier ones; one task per row drains
-- them. The step events stay in this process's journal (a kilobyte a transaction). -> the queued item (item.q gets its outcome when `wait` is set)
function Journal:_mirror(id, state, f, wait)
  local rj = self:_redis()
  if not rj then return nil end
  if f.chain_key then self.chain_of[id] = f.chain_key end
  local ck = self.chain_of[id]
  if not ck then return nil end                -- a row this process knows no chain of
  self:_know(id, f)
  local item = { ck = ck, state = state, cols = columns(f), q = wait and task.queue() or nil }
  local q = self.mq[id]
  if q then q[#q + 1] = item; return item end
  q = { item }
  self.mq[id] = q
  ferry.spawn(function()
    local owner = require("ferry.store").owner
    while #q > 0 do
      local it = table.remove(q, 1)
      local ok, written = pcall(wait_redis, "write", function()
        return rj:put(it.ck, id, owner, it.state, it.cols, self:_known(id))
      end)
      if it.q then it.q:put({ ok = ok, written = written }) end
      if not ok then
        ferry.log.warn("a journal row was not written to Redis", { id = id, state = it.state, err = tostring(written) })
      elseif not written then
        ferry.log.debug("journal row on Redis belongs to another process; not written", { id = id, state = it.state })
      end
    end
    self.mq[id] = nil
  end):detach()
  return item
end

--- journal:record(id, state, fields): queued behind every write before it; not waited for.
function Journal:record(id, state, f)
  f = f or {}
  if Journal.FINAL[state] then self.claimed[id] = nil end
  local events = take_events(self, id)
  self.store:post(upsert(self, id, state, f, events))
  self:_mirror(id, state, f)
end

--- journal:save(id, state, fields): the same, and returns once it is on disk (raises) -- and
--- on Redis when the journal is shared there: a row another process took over raises
--- id_taken (this process must not go on with it).
--- Redis first: bytes on disk here and not on Redis would be sent again by a restart
--- (recovery) after another process took the id over and paid it; bytes on Redis and not
--- here are only ever the ones the id's other senders track.
function Journal:save(id, state, f)
  f = f or {}
  local events = take_events(self, id)
  local item = self:_mirror(id, state, f, self.claimed[id])
  if item and item.q then
    local r = item.q:get()
    if not r.ok then error(r.written, 0) end
    if not r.written then
      ferry.raise("id_taken", ("id %q was taken over by another process (this one stalled past its claim's lease): "
        .. "nothing more is sent for it here"):format(id), { id = id })
    end
  end
  self.store:exec(upsert(self, id, state, f, events))
end

--- journal:flush(): returns once every write queued for Redis so far is done (a bench, a
--- clean exit)
function Journal:flush()
  while next(self.mq) do ferry.sleep(0.005) end
end

-- The claim in this process's own journal: nil when the id is now this send's here, else
-- the row already there.
function Journal:_claim_local(id, f)
  local now, owner = wall(), require("ferry.store").owner
  local r = self.store:batch({
    { [[INSERT INTO txs(id, chain, chain_id, chain_key, address, state, fields, owner, created, updated)
        VALUES(?1, ?2, ?3, ?8, ?4, 'new', ?5, ?6, ?7, ?7) ON CONFLICT(id) DO NOTHING]],
      id, f.chain, f.chain_id, f.address, json.encode(plain(f.fields or {})), owner, now, f.chain_key },
    { "SELECT " .. COLS .. " FROM txs WHERE id = ?", id },
  })
  if r[1].changes == 1 then
    self.counts_.new = (self.counts_.new or 0) + 1
    return nil
  end
  local row = decode(r[2].rows[1])
  if Journal.UNPAID[row.state] then
    local _, changes = self.store:exec([[UPDATE txs SET state = 'new', nonce = NULL, hash = NULL, raw = NULL,
        hashes = NULL, error = NULL, owner = ?2, updated = ?3, fields = ?4 WHERE id = ?1 AND state = ?5]],
      id, owner, now, json.encode(plain(f.fields or {})), row.state)
    if changes == 1 then return nil end
    return decode(self.store:exec("SELECT " .. COLS .. " FROM txs WHERE id = ?", id)[1])
  end
  return row
end

-- A row with signed bytes may have been bumped by another process tracking them (it got
-- them as a duplicate): Redis has every version. -> row, with Redis's versions when it
-- knows more (the hash, bytes and hashes a resumed or returned transaction must track)
function Journal:_versions(row)
  local rj = self:_redis()
  if not (rj and row and row.raw and row.chain_key) then return row end
  local ok, r = pcall(rj.row, rj, row.chain_key, row.id)
  if ok and r and r.raw and #(r.hashes or {}) > #(row.hashes or {}) then
    row.hash, row.raw, row.hashes = r.hash, r.raw, r.hashes
  end
  self:_know(row.id, row)
  return row
end

--- journal:claim(id, row) -> nil when the id is now this send's (new, or one that paid
--- nothing before), else the row already there (sent, in flight, or done). row: chain,
--- chain_id, chain_key, address, fields.
---
--- Shared on Redis: this process's own journal answers first for what it knows better (the
--- signed bytes it has, a send of its own in flight), then the claim is Redis's: a row of a
--- live process that has not signed is "busy" (returned: the caller waits), one whose
--- process died (gone from this host, or silent past CLAIM_LEASE) and never signed is taken
--- over, one that signed is returned.
function Journal:claim(id, f)
  local rj = f.chain_key and self:_redis()
  if not rj then return self:_claim_local(id, f) end
  local store = require "ferry.store"
  local row = decode(self.store:exec("SELECT " .. COLS .. " FROM txs WHERE id = ?", id)[1])
  if row and row.raw then return self:_versions(row) end
  if row and row.owner == store.owner and Journal.PENDING[row.state] then return row end
  local cols = columns({ chain = f.chain, chain_id = f.chain_id, chain_key = f.chain_key, address = f.address,
                         fields = f.fields or {} })
  local outcome, got = wait_redis("claim", function() return rj:claim(f.chain_key, id, store.owner, cols,
    Journal.CLAIM_LEASE) end)
  if outcome == "busy" and got.owner and store.dead(got.owner) then
    outcome, got = wait_redis("claim", function() return rj:claim(f.chain_key, id, store.owner, cols,
      Journal.CLAIM_LEASE, got.owner) end)
  end
  self.chain_of[id] = f.chain_key
  if outcome == "claimed" or outcome == "taken_over" then
    self.claimed[id] = true
    if outcome == "taken_over" then
      ferry.log.info("took over an id whose process died before signing", { id = id, owner = got })
    end
    -- this process's row of it, new (whatever a run before knew less than Redis)
    self.store:exec([[INSERT INTO txs(id, chain, chain_id, chain_key, address, state, fields, owner, created, updated)
        VALUES(?1, ?2, ?3, ?8, ?4, 'new', ?5, ?6, ?7, ?7) ON CONFLICT(id) DO UPDATE SET state = 'new', nonce = NULL,
        hash = NULL, raw = NULL, hashes = NULL, error = NULL, block = NULL, owner = excluded.owner,
        updated = excluded.updated, fields = excluded.fields]],
      id, f.chain, f.chain_id, f.address, json.encode(plain(f.fields or {})), store.owner, wall(), f.chain_key)
    self.counts_.new = (self.counts_.new or 0) + 1
    return nil
  end
  got.busy = outcome == "busy" or nil
  if got.raw then self:_know(id, got) end
  return got
end

-- Redis's row when the journal is shared there and Redis answers, else nil
local function shared_row(self, what, arg)
  local rj = self:_redis()
  if not rj then return nil end
  local ok, row = pcall(rj[what], rj, arg)
  if ok then return row end
  ferry.log.debug("journal on Redis not read; this process's own answers", { err = tostring(row) })
end

--- journal:get(id) -> row | nil (shared on Redis: any process's row)
function Journal:get(id)
  local shared = shared_row(self, "get", id)
  if shared then return shared end
  local rows = self.store:exec("SELECT " .. COLS .. " FROM txs WHERE id = ?", id)
  return decode(rows[1])
end

--- journal:by_hash(hash) -> row | nil (any version's hash; shared on Redis: any process's)
function Journal:by_hash(hash)
  local shared = shared_row(self, "by_hash", hash)
  if shared then return shared end
  hash = hash:lower()
  local rows = self.store:exec("SELECT " .. COLS .. " FROM txs WHERE hash = ?1 OR hashes LIKE ?2 LIMIT 1",
    hash, '%"' .. hash .. '"%')
  return decode(rows[1])
end

--- journal:find{address=, chain_id=, chain_key=, state= | pending = true, limit = 1000} -> rows, oldest first
function Journal:find(q)
  q = q or {}
  local where, vals = {}, {}
  if q.address then where[#where + 1] = "address = ?"; vals[#vals + 1] = q.address end
  if q.chain_id then where[#where + 1] = "chain_id = ?"; vals[#vals + 1] = q.chain_id end
  if q.chain_key then where[#where + 1] = "chain_key = ?"; vals[#vals + 1] = q.chain_key end
  if q.state then where[#where + 1] = "state = ?"; vals[#vals + 1] = q.state end
  if q.pending then
    local states = {}
    for s in pairs(Journal.PENDING) do states[#states + 1] = "'" .. s .. "'" end
    table.sort(states)
    where[#where + 1] = "state IN (" .. table.concat(states, ", ") .. ")"
  end
  local sql = "SELECT " .. COLS .. " FROM txs" .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "")
    .. " ORDER BY created, nonce LIMIT " .. math.tointeger(q.limit or 1000)
  local rows = self.store:exec(sql, table.unpack(vals, 1, #vals))
  for i, r in ipairs(rows) do
    rows[i] = decode(r)
    if r.chain_key then self.chain_of[r.id] = r.chain_key end   -- a resumed row's writes reach Redis too
    if Journal.PENDING[r.state] then rows[i] = self:_versions(rows[i]) end
  end
  return rows
end

--- journal:pending() -> every row still on its way, oldest first
function Journal:pending() return self:find({ pending = true }) end

--- journal:events(id) -> the row's events, in order: {step, outcome, at, nonce, hash}
function Journal:events(id)
  local rows = self.store:exec("SELECT events FROM txs WHERE id = ?", id)
  local list = {}
  for line in ((rows[1] and rows[1].events) or ""):gmatch("[^\n]+") do list[#list + 1] = json.decode(line) end
  return list
end

--- journal:counts() -> {state = writes by this process} (for ferry.stats(); no I/O)
function Journal:counts()
  local c = {}
  for k, v in pairs(self.counts_) do c[k] = v end
  return c
end

return Journal
