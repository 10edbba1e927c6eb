--- ferry.store.redis_journal -- the journal's rows on Redis, so an id is claimed once by all
--- the processes on that Redis (other hosts too), and any of them can read any row.
---
---   local rj = require("ferry.store.redis_journal").new(client, { prefix = "ferry:" })
---   rj:claim(chain_key, id, owner, row, lease_s, takeover) -> "claimed" | "taken_over", old owner
---                                                          | "row", row | "busy", row
---   rj:put(chain_key, id, owner, state, fields, known) -> true | false (refused)
---   rj:get(id) -> row | nil      rj:by_hash(hash) -> row | nil      rj:row(chain_key, id) -> row | nil
---
--- One hash per id under its chain's hash tag (prefix{chain_key}:tx:<id>), with the columns
--- of the SQLite journal (ferry.store.journal) but the step events; prefix{chain_key}:hashes maps every
--- version's hash to its id; prefix{journal}:chains lists the chains, so a read by id or
--- hash alone looks in each. Times are Redis's (one clock for every process), in seconds.
---
--- Who may write a row: its owner, the process that claimed it; another one's write is
--- refused (a process that stalled past the claim's lease and was taken over must not sign;
--- a restart marking its dead run's unsigned rows failed must not unpay a row another
--- process took over and signed). Once the row has bytes, a process tracking them (it got
--- them as a duplicate) may write their outcome: a write that names one of their hashes. A
--- write saying nothing was paid (failed, taken) lands only from a writer that knows every
--- version of the bytes: another tracker may have bumped them, and its version may be the
--- one mined. A final row (confirmed, reverted) does not go back to a pending state.
---
--- Every call may yield, and raises {code = "store_unavailable"} when Redis cannot be
--- reached. Rows are kept (no expiry): an id pays once for as long as Redis keeps them, so
--- this Redis must persist (AOF or RDB): one that restarts empty has forgotten which ids
--- other hosts paid (a process still finds its own in its SQLite journal).
local ferry = require "ferry"
local redis = require "ferry.redis"
local json = require "ferry.core.json"

local M = {}

-- What the journal on Redis did in this process, for ferry.stats().journal_redis
local totals = { claims = 0, busy = 0, taken_over = 0, returned = 0, writes = 0, refused = 0 }
ferry.register_stats("journal_redis", totals)

local PROLOGUE = [=[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local stamp = string.format('%.3f', now)
local UNPAID = { failed = true, taken = true }
local FINAL = { confirmed = true, reverted = true, taken = true, failed = true }
]=]

local SCRIPTS = {
  -- KEYS row; ARGV id, owner, lease_s, takeover (the dead owner to take over from, or ''),
  -- then column, value pairs of the new row
  claim = [=[
local row = KEYS[1]
local cur = redis.call('HMGET', row, 'state', 'owner', 'raw', 'updated')
local function fresh(keep_created)
  if not keep_created then redis.call('HSET', row, 'created', stamp) end
  redis.call('HDEL', row, 'nonce', 'hash', 'raw', 'hashes', 'error', 'block', 'events')
  redis.call('HSET', row, 'id', ARGV[1], 'state', 'new', 'owner', ARGV[2], 'updated', stamp)
  for i = 5, #ARGV, 2 do redis.call('HSET', row, ARGV[i], ARGV[i + 1]) end
end
if not cur[1] then fresh(false); return { 'claimed' } end
if UNPAID[cur[1]] then fresh(true); return { 'claimed' } end
if cur[3] or cur[2] == ARGV[2] then return { 'row', redis.call('HGETALL', row) } end
if (ARGV[4] ~= '' and cur[2] == ARGV[4]) or now - tonumber(cur[4] or '0') > tonumber(ARGV[3]) then
  fresh(true)
  return { 'taken_over', cur[2] }
end
return { 'busy', redis.call('HGETALL', row) }
]=],
  -- KEYS row, hashes; ARGV id, owner, state, n, the write's n hashes (indexed), m, m more
  -- hashes the writer knows of the payment, then column, value pairs
  put = [=[
local row, idx = KEYS[1], KEYS[2]
local cur = redis.call('HMGET', row, 'owner', 'raw', 'state', 'hash', 'hashes')
local n = tonumber(ARGV[4])
local m = tonumber(ARGV[5 + n])
local known = {}
for i = 5, 4 + n do known[ARGV[i]] = true end
for i = 6 + n, 5 + n + m do known[ARGV[i]] = true end
local mine = not cur[1] or cur[1] == ARGV[2]
if cur[2] then
  -- bytes bound to a nonce: another process writes only about them (it names one of their
  -- hashes: it tracks a duplicate), and "nothing was paid" only from whoever knows every
  -- version (another tracker may have bumped them: its version may be the one mined)
  if not mine then
    local about = false
    for h in pairs(known) do if redis.call('HGET', idx, h) == ARGV[1] then about = true end end
    if not about then return 0 end
  end
  if UNPAID[ARGV[3]] then
    local all = cur[5] and cjson.decode(cur[5]) or {}
    all[#all + 1] = cur[4]
    for _, h in ipairs(all) do if h and not known[string.lower(h)] then return 0 end end
  end
elseif not mine then
  return 0                                   -- before a signature the row is its owner's
end
local state = ARGV[3]
if (cur[3] == 'confirmed' or cur[3] == 'reverted') and not FINAL[state] then state = cur[3] end
redis.call('HSET', row, 'id', ARGV[1], 'state', state, 'updated', stamp)
if mine then redis.call('HSET', row, 'owner', ARGV[2]) end
if not cur[1] then redis.call('HSET', row, 'created', stamp) end
for i = 6 + n + m, #ARGV, 2 do redis.call('HSET', row, ARGV[i], ARGV[i + 1]) end
for i = 5, 4 + n do redis.call('HSET', idx, ARGV[i], ARGV[1]) end
return 1
]=],
}

local RJ = {}
RJ.__index = RJ

--- new(client, {prefix = "ferry:", timeout = client's}) -> the journal on that Redis
function M.new(client, opts)
  opts = opts or {}
  if type(client) ~= "table" or type(client.script) ~= "function" then
    ferry.raise("invalid_argument", "store.redis_journal.new: expects a ferry.redis client")
  end
  local self = setmetatable({ client = client, prefix = opts.prefix or "ferry:", timeout = opts.timeout, scripts = {},
                              known = {}, chains = nil, chains_at = -math.huge }, RJ)
  for name, body in pairs(SCRIPTS) do self.scripts[name] = client:script(PROLOGUE .. body) end
  return self
end

local function unavailable(what, err)
  ferry.raise("store_unavailable", ("journal on Redis: %s: %s"):format(what, err and err.message or "no reply"),
    { cause = err and err.code })
end

function RJ:_run(name, keys, args)
  local r, err = self.scripts[name]:run(keys, args, self.timeout)
  if r == nil and err and err.code == "redis_error" then
    ferry.raise("internal", ("journal on Redis: %s failed: %s"):format(name, err.message))
  end
  if r == nil then unavailable(name, err) end
  return r
end

-- -> the key of id's row on that chain, the key of the chain's hash index
function RJ:_keys(chain_key, id)
  local ck = tostring(chain_key)
  return id and redis.key(self.prefix, ck, "tx", id), redis.key(self.prefix, ck, "hashes")
end

function RJ:_call(...)
  local r, err = self.client:call_within(self.timeout or self.client.timeout, ...)
  if r == nil and err then unavailable((...), err) end
  return r
end

-- The chain is listed once per process (reads by id or hash alone look in every chain).
function RJ:_list(chain_key)
  if self.known[chain_key] then return end
  self:_call("SADD", redis.key(self.prefix, "journal", "chains"), chain_key)
  self.known[chain_key] = true
  self.chains = nil
end

local NUMBERS = { nonce = true, chain_id = true, block = true, created = true, updated = true }

-- A row as ferry.store.journal returns it (numbers, decoded JSON), from HGETALL's pairs.
local function decode(pairs_)
  if type(pairs_) ~= "table" or #pairs_ == 0 then return nil end
  local row = {}
  for i = 1, #pairs_, 2 do
    local k, v = pairs_[i], pairs_[i + 1]
    if NUMBERS[k] then v = tonumber(v); v = math.tointeger(v) or v end
    row[k] = v
  end
  if row.hashes then row.hashes = json.decode(row.hashes) end
  if row.fields then row.fields = json.decode(row.fields) end
  row.events = nil
  return row
end
M.decode = decode

-- column, value pairs of the fields that are set (JSON for hashes and fields)
local COLUMNS = { "chain", "chain_id", "chain_key", "address", "nonce", "hash", "raw", "hashes", "fields", "block",
                  "error", "provider" }
local function pairs_of(f, out)
  for _, c in ipairs(COLUMNS) do
    local v = f[c]
    if v ~= nil then
      out[#out + 1] = c
      out[#out + 1] = (c == "hashes" or c == "fields") and v or tostring(v)
    end
  end
  return out
end

--- claim(chain_key, id, owner, row, lease_s, takeover) -> "claimed" | "taken_over", the
--- owner it was taken from | "row", row (signed, or this owner's own) | "busy", row (another
--- live owner's, before its signature). row: the columns of the new row (JSON as text).
function RJ:claim(chain_key, id, owner, f, lease_s, takeover)
  self:_list(chain_key)
  local args = pairs_of(f, { id, owner, lease_s, takeover or "" })
  local r = self:_run("claim", { (self:_keys(chain_key, id)) }, args)
  local outcome = r[1]
  if outcome == "claimed" then totals.claims = totals.claims + 1
  elseif outcome == "row" then totals.returned = totals.returned + 1
  else totals[outcome] = totals[outcome] + 1 end
  if outcome == "row" or outcome == "busy" then return outcome, decode(r[2]) end
  return outcome, r[2]
end

--- put(chain_key, id, owner, state, fields, known) -> true, or false when the write is
--- refused: the row belongs to another owner (claimed by it, no signed bytes yet; or signed
--- and the write names none of its hashes), or it says nothing was paid (failed, taken) of
--- bytes whose every version the writer does not know. known: hashes of the payment the
--- writer knows besides those it writes.
function RJ:put(chain_key, id, owner, state, f, known)
  self:_list(chain_key)
  local row, idx = self:_keys(chain_key, id)
  local hashes = {}
  if f.hashes then for _, h in ipairs(json.decode(f.hashes)) do hashes[#hashes + 1] = h:lower() end end
  if f.hash then hashes[#hashes + 1] = f.hash:lower() end
  local args = { id, owner, state, #hashes }
  for _, h in ipairs(hashes) do args[#args + 1] = h end
  known = known or {}
  args[#args + 1] = #known
  for _, h in ipairs(known) do args[#args + 1] = h:lower() end
  local written = self:_run("put", { row, idx }, pairs_of(f, args)) == 1
  if written then totals.writes = totals.writes + 1 else totals.refused = totals.refused + 1 end
  return written
end

-- The chains rows are kept for (read again every few seconds: another process may add one).
function RJ:_chains()
  if not self.chains or ferry.now() - self.chains_at > 5 then
    self.chains, self.chains_at = self:_call("SMEMBERS", redis.key(self.prefix, "journal", "chains")), ferry.now()
  end
  return self.chains
end

--- row(chain_key, id) -> that chain's row of id | nil
function RJ:row(chain_key, id) return decode(self:_call("HGETALL", (self:_keys(chain_key, id)))) end

--- get(id) -> row | nil (any chain)
function RJ:get(id)
  for _, ck in ipairs(self:_chains()) do
    local got = decode(self:_call("HGETALL", (self:_keys(ck, id))))
    if got then return got end
  end
end

--- by_hash(hash) -> row | nil (any version's hash, any chain)
function RJ:by_hash(hash)
  for _, ck in ipairs(self:_chains()) do
    local _, idx = self:_keys(ck)
    local id = self:_call("HGET", idx, hash:lower())
    if id then return decode(self:_call("HGETALL", (self:_keys(ck, id)))) end
  end
end

return M
