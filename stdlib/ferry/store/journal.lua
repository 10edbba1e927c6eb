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
local ferry = require "ferry"
local json = require "ferry.core.json"

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
  return setmetatable({ store = store, counts_ = {}, live = {}, pending_events = {} }, Journal)
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

--- journal:record(id, state, fields): queued behind every write before it; not waited for.
function Journal:record(id, state, f)
  self.store:post(upsert(self, id, state, f or {}, take_events(self, id)))
end

--- journal:save(id, state, fields): the same, and returns once it is on disk (raises).
function Journal:save(id, state, f)
  self.store:exec(upsert(self, id, state, f or {}, take_events(self, id)))
end

--- journal:claim(id, row) -> nil when the id is now this send's (new, or one that paid
--- nothing before), else the row already there (sent, in flight, or done). row: chain,
--- chain_id, address, fields.
function Journal:claim(id, f)
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
    return self:get(id)
  end
  return row
end

--- journal:get(id) -> row | nil
function Journal:get(id)
  local rows = self.store:exec("SELECT " .. COLS .. " FROM txs WHERE id = ?", id)
  return decode(rows[1])
end

--- journal:by_hash(hash) -> row | nil (any version's hash)
function Journal:by_hash(hash)
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
  for i, r in ipairs(rows) do rows[i] = decode(r) end
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
