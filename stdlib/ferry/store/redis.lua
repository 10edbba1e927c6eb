--- ferry.store.redis -- the nonce allocator on Redis: processes on many machines share an
--- address's nonces, and every atomic step is one script (EVALSHA, EVAL after NOSCRIPT).
---
---   local store = require("ferry.store.redis").new(client, { prefix = "ferry:" })
---   local a = store:nonces(chain_id, address)
---   a:reserve(floor, owner, lease_s) -> n
---   a:settle(n)  a:release(n)  a:raise(floor)  a:reclaim() -> {n...}  a:state()
---   a:lease(owner, ttl_s) -> true, token, expires | false, holder, ttl_left
---
--- An owner of the form "<process>#<n>" names one reserve and its retries: a retry whose
--- first reply was lost (Redis stalled past the call's deadline, then ran it) gets the same
--- nonce instead of a second one (ferry.nonces names each reserve so).
---
--- Every call may yield, and raises {code = "store_unavailable"} when Redis cannot be
--- reached. Keys: prefix .. "{" .. chain_id .. ":" .. lower(address) .. "}:" .. part, one
--- hash tag per address so a Redis Cluster keeps them on one slot (every script touches one
--- address only). Times (lease expiries) are Redis's TIME, one clock for every process.
---
--- A Redis that restarted empty (no persistence, or a failover that lost writes) has
--- forgotten which nonces are reserved and not yet broadcast. Handing them out again would
--- send two transactions with one nonce, so each address's state carries an epoch:
---   * the first script to find the state missing makes a new epoch and opens a
---     re-registration window (recover_window, 2 s by default);
---   * every process that holds reservations of that address notices the new epoch (each
---     reply carries it, and a watcher asks every recover_window / 8 while it holds some) and
---     registers them again: they are reserved by it, and next moves above them;
---   * reserve waits while the window is open, then seals it: nonces in [floor, next) that no
---     one registered are free (reserved by processes that died, or whose reply was lost with
---     the old Redis) and are handed out first, so no gap is left; floor is the chain's
---     pending count, which the caller passes, so what was broadcast is never handed out;
---   * a registration after the seal takes a nonce back if it is still free, and reports a
---     conflict if another process has it (its caller must not broadcast it).
--- The window is the one price: the first reserve of an address after Redis lost it (or the
--- first ever) waits recover_window.
local ferry = require "ferry"
local redis = require "ferry.redis"
local task = require "ferry.core.task"

local M = {}

-- Shared by every script: KEYS = meta, free, res, lease, used; ARGV[1] = the epoch the caller
-- saw, ARGV[2] = a new epoch should the state be missing, ARGV[3] = the window (ms); the op's
-- own arguments from ARGV[4]. Every reply starts with the current epoch.
local PROLOGUE = [[
-- res: n -> "<expires ms>:<owner>" (one hash, no sorted set of expiries: a ZADD per
-- reservation cost more than the rest of the script, and only reclaim reads expiries)
local meta, free, res, lease, used, owners = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function owner_of(v) return v and string.match(v, '^%d+:(.*)$') end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', meta, 'epoch', epoch, 'next', 0, 'recover_until', now + tonumber(ARGV[3]), 'sealed', 0)
end
local function nxt() return tonumber(redis.call('HGET', meta, 'next')) end
-- the highest free nonces that touch next are not free: they are next's own
local function trim()
  local n = nxt()
  while true do
    local top = redis.call('ZREVRANGE', free, 0, 0)[1]
    if not top or tonumber(top) ~= n - 1 then break end
    redis.call('ZREM', free, top)
    n = n - 1
  end
  redis.call('HSET', meta, 'next', n)
end
]]

-- The address's lease (KEYS[4]: owner, token, expires, heard): the process holding it renews
-- it every HEARTBEAT and may go on sending alone while Redis is out of its reach (see
-- "Sending alone" below). `heard` is when its last renewal ran.
local FENCE = [[
local function process_of(o) return (string.gsub(o, '#%d+$', '')) end
local function holder()
  local h = redis.call('HMGET', lease, 'owner', 'expires', 'heard')
  return h[1], tonumber(h[2] or '0'), tonumber(h[3] or '0')
end
]]

local SCRIPTS = {
  -- ARGV[4] floor, [5] seal cap, [6] the caller's process, [7] the fence (ms); then count,
  -- owner, lease_ms triples: count reservations each (a process sends its concurrent
  -- reserves of one address as one script)
  reserve = FENCE .. [[
local who, expires, heard = holder()
if who and who ~= ARGV[6] then
  -- the holder has not been heard from for longer than the fence: it may be sending alone,
  -- with nonces this script does not know; nobody else gets one until it is back or its
  -- lease has run out
  if expires > now and now - heard > tonumber(ARGV[7]) then return { epoch, 'FENCED', expires - now, who } end
  -- its lease ran out (a holder gives it back when it stops sending: it fell silent): what it
  -- sent alone is only in the chain's count, which a caller must read from now on (then
  -- fresh_floor)
  if expires <= now then return { epoch, 'FLOOR', 0, who } end
end
local floor = tonumber(ARGV[4])
-- the highest floor any caller passed: a floor read before a wait may be stale
local m = redis.call('HMGET', meta, 'floor', 'sealed', 'next')
floor = math.max(floor, tonumber(m[1] or '0'))
redis.call('HSET', meta, 'floor', floor)
if m[2] == '0' then
  local left = tonumber(redis.call('HGET', meta, 'recover_until')) - now
  if left > 0 then return { epoch, 'RECOVERING', left } end
  local n = tonumber(m[3])
  for i = math.max(floor, n - tonumber(ARGV[5])), n - 1 do
    if redis.call('HEXISTS', res, i) == 0 and redis.call('SISMEMBER', used, i) == 0 then
      redis.call('ZADD', free, i, i)
    end
  end
  redis.call('HSET', meta, 'sealed', 1)
  redis.call('DEL', used)
end
redis.call('ZREMRANGEBYSCORE', free, '-inf', '(' .. floor)
local nx, took = math.max(tonumber(m[3]), floor), false
local out, hs = {}, {}
-- a single reserve under a request name ("<owner>#<n>": one reserve and its retries) that
-- already holds one is a retry whose first reply was lost (the call's deadline passed while
-- Redis stalled, then the script ran): it gets the same nonce
local again = {}
local total = 0
local function named(i) return ARGV[i] == '1' and string.find(ARGV[i + 1], '#', 1, true) end
for i = 8, #ARGV, 3 do
  local prev = named(i) and redis.call('HGET', owners, ARGV[i + 1])
  if prev and owner_of(redis.call('HGET', res, prev)) == ARGV[i + 1] then
    again[i] = tonumber(prev)
  else
    total = total + tonumber(ARGV[i])
  end
end
local popped = total > 0 and redis.call('ZPOPMIN', free, total) or {}  -- the lowest free ones: member, score, ...
local k, o = 1, 0
for i = 8, #ARGV, 3 do
  local v = string.format('%d', now + tonumber(ARGV[i + 2])) .. ':' .. ARGV[i + 1]
  for _ = 1, tonumber(ARGV[i]) do
    local n = again[i]
    if not n then
      n = popped[k]
      if n then
        n, k = tonumber(n), k + 2
      else
        n, nx, took = nx, nx + 1, true
      end
      if named(i) then redis.call('HSET', owners, ARGV[i + 1], n) end
    end
    o = o + 1
    out[o] = n
    hs[2 * o - 1], hs[2 * o] = n, v
  end
end
if took then redis.call('HSET', meta, 'next', nx) end
redis.call('HSET', res, unpack(hs))
return { epoch, 'OK', out }
]],
  settle = [[
local o = owner_of(redis.call('HGET', res, ARGV[4]))
if o then redis.call('HDEL', owners, o) end
redis.call('HDEL', res, ARGV[4])
return { epoch, 'OK' }
]],
  release = [[
local n = tonumber(ARGV[4])
local o = owner_of(redis.call('HGET', res, n))
if o then redis.call('HDEL', owners, o) end
redis.call('HDEL', res, n)
if n < nxt() then
  redis.call('ZADD', free, n, n)
  trim()
end
return { epoch, 'OK' }
]],
  raise = [[
local floor = math.max(tonumber(ARGV[4]), tonumber(redis.call('HGET', meta, 'floor') or '0'))
redis.call('HSET', meta, 'floor', floor)
if floor > nxt() then redis.call('HSET', meta, 'next', floor) end
redis.call('ZREMRANGEBYSCORE', free, '-inf', '(' .. floor)
return { epoch, 'OK' }
]],
  reclaim = [[
-- the reservations in flight are few (settle and release remove them): a scan is cheap
local all, gone = redis.call('HGETALL', res), {}
for i = 1, #all, 2 do
  if tonumber(string.match(all[i + 1], '^(%d+):')) <= now then
    local n = all[i]
    gone[#gone + 1] = n
    redis.call('HDEL', owners, owner_of(all[i + 1]))
    redis.call('HDEL', res, n)
    redis.call('ZADD', free, n, n)
  end
end
if #gone > 0 then trim() end
return { epoch, 'OK', gone }
]],
  state = [[
return { epoch, 'OK', nxt(), redis.call('ZRANGE', free, 0, -1), redis.call('HGETALL', res),
         redis.call('HGET', meta, 'sealed') }
]],
  -- ARGV[4] owner (a process), [5] ttl_ms, [6] not after (Redis ms; 0: any time). A new
  -- holder's token is above the last one and above the time in microseconds, so tokens keep
  -- growing even across a Redis that lost the record. A renewal run after its sender gave up
  -- on it (it sat in a frozen Redis's socket) renews nothing: its sender may be sending alone
  -- by now. -> OK, token, expires, now | HELD, holder, ms left | FLOOR, holder | LATE
  lease = FENCE .. [[
local owner, ttl = ARGV[4], tonumber(ARGV[5])
if tonumber(ARGV[6]) > 0 and now > tonumber(ARGV[6]) then return { epoch, 'LATE' } end
local h = redis.call('HMGET', lease, 'owner', 'token', 'expires')
local who, token, expires = h[1], tonumber(h[2] or '0'), tonumber(h[3] or '0')
if who and who ~= owner then
  if expires > now then return { epoch, 'HELD', who, expires - now } end
  return { epoch, 'FLOOR', who, 0 }          -- a silent holder's: see reserve
end
if who ~= owner or expires <= now then
  token = math.max(token + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
end
redis.call('HSET', lease, 'owner', owner, 'token', string.format('%d', token), 'expires', now + ttl, 'heard', now)
redis.call('PEXPIRE', lease, ttl * 2 + 60000)
return { epoch, 'OK', string.format('%d', token), now + ttl, now }
]],
  -- ARGV[4] owner, [5] why: "idle" (it sent nothing alone: the lease just ends) or "dead"
  -- (its process is gone; it may have sent alone: the next reserve reads the chain first)
  unlease = FENCE .. [[
local who = holder()
if who ~= ARGV[4] then return { epoch, 'OK', 0 } end
if ARGV[5] == 'idle' then
  redis.call('DEL', lease)
else
  redis.call('HSET', lease, 'expires', now, 'heard', 0)
end
return { epoch, 'OK', 1 }
]],
  -- ARGV[4] n, [5] the caller's process, [6] the fence (ms). Is n still the caller's? Asked
  -- before a broadcast that comes late (ferry.nonces:confirm): the lease holder, sending alone
  -- meanwhile, may have taken it back (rejoin). Fenced as reserve is, so the holder's rejoin
  -- comes first. -> OK | GONE | FENCED, ms left, holder | FLOOR, 0, holder
  confirm = FENCE .. [[
local who, expires, heard = holder()
if who and who ~= ARGV[5] then
  if expires > now and now - heard > tonumber(ARGV[6]) then return { epoch, 'FENCED', expires - now, who } end
  if expires <= now then return { epoch, 'FLOOR', 0, who } end
end
local cur = owner_of(redis.call('HGET', res, ARGV[4]))
if cur and process_of(cur) == ARGV[5] then return { epoch, 'OK' } end
return { epoch, 'GONE' }
]],
  -- Is Redis there? (Changes nothing; the epoch comes back as with every script.)
  probe = [[
return { epoch, 'OK' }
]],
  -- ARGV[4] a pending count read after a FLOOR reply: what a holder that fell silent sent
  -- alone is below it. The stale lease is dropped; later reserves need no read of their own.
  fresh_floor = FENCE .. [[
local floor = math.max(tonumber(ARGV[4]), tonumber(redis.call('HGET', meta, 'floor') or '0'))
redis.call('HSET', meta, 'floor', floor)
if floor > nxt() then redis.call('HSET', meta, 'next', floor) end
redis.call('ZREMRANGEBYSCORE', free, '-inf', '(' .. floor)
local who, expires = holder()
if who and expires <= now then redis.call('DEL', lease) end
return { epoch, 'OK' }
]],
  -- The holder is back after sending alone: ARGV[4] its process, [5] its token, [6] the
  -- highest pending count it read (the nonces below it that it used are forgotten here:
  -- the chain vouches for them, and the floor keeps a seal from freeing them), [7] the next
  -- nonce it would have used; then n, lease_ms pairs (lease > 0:
  -- reserved, 0: used, -1: freed). Registered whatever the epoch (the state may be intact: a
  -- stall or a partition). A nonce it used that another process holds a reservation of was
  -- handed out just before the fence and its reply never arrived, or not in time for the
  -- chain to show it: the holder's bytes may be out, so the nonce is the holder's and the
  -- other reservation is taken back (its retry, by name, gets another one). It renews
  -- nothing: the fence stays up until a renewal, which the holder sends once all it used alone
  -- is registered (a rejoin run late, or one that missed the last nonces, unfences no one).
  -- -> OK, taken back, still holding (1 | 0)
  rejoin = FENCE .. [[
local owner, taken = ARGV[4], {}
local floor = math.max(tonumber(ARGV[6]), tonumber(redis.call('HGET', meta, 'floor') or '0'))
redis.call('HSET', meta, 'floor', floor)
redis.call('ZREMRANGEBYSCORE', free, '-inf', '(' .. floor)
if floor > nxt() then redis.call('HSET', meta, 'next', floor) end
for i = 8, #ARGV, 2 do
  local n, lease_ms = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local cur = owner_of(redis.call('HGET', res, n))
  if cur and process_of(cur) ~= owner and lease_ms < 0 then
    -- freed here, but reserved by another since: theirs
  else
    if cur and process_of(cur) ~= owner then taken[#taken + 1] = n end
    if cur then redis.call('HDEL', owners, cur) end
    redis.call('HDEL', res, n)
    if lease_ms < 0 then
      if n < nxt() and n >= floor then redis.call('ZADD', free, n, n) end
    else
      redis.call('ZREM', free, n)
      if lease_ms > 0 then redis.call('HSET', res, n, string.format('%d', now + lease_ms) .. ':' .. owner .. '#0') end
      if redis.call('HGET', meta, 'sealed') == '0' and lease_ms == 0 then redis.call('SADD', used, n) end
      if n >= nxt() then redis.call('HSET', meta, 'next', n + 1) end
    end
  end
end
if tonumber(ARGV[7]) > nxt() then redis.call('HSET', meta, 'next', tonumber(ARGV[7])) end
local h = redis.call('HMGET', lease, 'owner', 'token', 'expires')
local holding = (h[1] == owner and h[2] == ARGV[5] and tonumber(h[3]) > now) and 1 or 0
return { epoch, 'OK', taken, holding }
]],
  -- ARGV[4] owner, [5] the highest floor it knew; then n, lease_ms pairs (lease 0: used,
  -- i.e. settled, not reserved). Only when the epoch is not the one the caller saw (the state
  -- was lost): register them again. -> conflicts (nonces another owner has)
  register = [[
if epoch == ARGV[1] then return { epoch, 'SAME' } end
local owner, conflicts = ARGV[4], {}
redis.call('HSET', meta, 'floor', math.max(tonumber(ARGV[5]), tonumber(redis.call('HGET', meta, 'floor') or '0')))
for i = 6, #ARGV, 2 do
  local n, lease_ms = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local cur = owner_of(redis.call('HGET', res, n))
  if cur and (cur ~= owner or lease_ms == 0) then
    conflicts[#conflicts + 1] = n
  else
    redis.call('ZREM', free, n)
    if lease_ms > 0 then
      redis.call('HSET', res, n, string.format('%d', now + lease_ms) .. ':' .. owner)
    elseif redis.call('HGET', meta, 'sealed') == '0' then
      redis.call('SADD', used, n)           -- the seal must not free it
    end
    if n >= nxt() then redis.call('HSET', meta, 'next', n + 1) end
  end
end
return { epoch, 'OK', conflicts }
]],
}

local Store = {}
Store.__index = Store
local Alloc = {}
Alloc.__index = Alloc

-- A candidate epoch, used only by a script that finds the state missing: unique per call
-- (random per process, then a counter), so a second loss is never taken for the first.
local epoch_base, epoch_seq
local function new_epoch()
  if not epoch_base then
    local f = io.open("/dev/urandom", "rb")
    local b = f and f:read(8) or tostring(os.time() + math.random())
    if f then f:close() end
    epoch_base, epoch_seq = (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end)), 0
  end
  epoch_seq = epoch_seq + 1
  return epoch_base .. "." .. epoch_seq
end

-- Sending alone. While Redis is out of reach, the process holding an address's lease goes
-- on sending from it alone; every other process's sends wait and say why. The lease is
-- renewed every `heartbeat` by whichever process is sending (given back after `idle`
-- seconds without a reserve), and Redis notes when (`heard`). The fence, on Redis's clock:
-- once the holder has not been heard from for `fence`, no other process gets a nonce until
-- it is back or its lease (`lease_ttl`) has run out. The holder, on its own clock, sends
-- alone only from `fence + drain` after its last renewal's reply (so every nonce Redis handed
-- out before the fence was handed out before it; `drain` lets those reach the chain, whose
-- pending count it reads first) until `lease_ttl - margin` after that renewal was sent (so
-- it stops before Redis's expiry, whatever the delays). When the holder is back, it
-- registers what it used alone (rejoin) before any other step; when its lease ran out
-- instead, the next reserve of any process reads the chain's pending count first
-- (fresh_floor): what the holder sent alone is below it. A fencing token that only grows
-- names each holder (a stale holder's rejoin renews nothing).
M.TIMES = { heartbeat = 0.25, fence = 1, drain = 0.5, lease_ttl = 10, margin = 0.5, idle = 2 }

--- new(client, {prefix = "ferry:", recover_window = 2, timeout = client's, process =
--- store.owner, times = M.TIMES' overrides}) -> store
function M.new(client, opts)
  opts = opts or {}
  if type(client) ~= "table" or type(client.script) ~= "function" then
    ferry.raise("invalid_argument", "store.redis.new: expects a ferry.redis client")
  end
  local t = {}
  for k, v in pairs(M.TIMES) do t[k] = (opts.times or {})[k] or v end
  local self = setmetatable({
    client = client, prefix = opts.prefix or "ferry:", window = opts.recover_window or 2,
    -- strong: an allocator holding reservations must stay known to the watcher
    timeout = opts.timeout, scripts = {}, allocs = {}, times = t,
    process = opts.process or require("ferry.store").owner,
    st = { reserves = 0, batches = 0, settles = 0, releases = 0, reclaimed = 0, recoveries = 0, reregistered = 0,
           conflicts = 0, fenced_waits = 0, alone = 0, alone_spells = 0, rejoins = 0, taken_back = 0 },
  }, Store)
  for name, body in pairs(SCRIPTS) do self.scripts[name] = client:script(PROLOGUE .. body) end
  return self
end

--- store:nonces(chain_id, address) -> the allocator of that address (one per address per store)
function Store:nonces(chain_id, address)
  if (type(chain_id) ~= "number" and type(chain_id) ~= "string") or type(address) ~= "string" then
    ferry.raise("invalid_argument", ("store:nonces: expects (chain_id, address: string), got (%s, %s)")
      :format(type(chain_id), type(address)))
  end
  local tag = tostring(chain_id) .. ":" .. address:lower()
  local a = self.allocs[tag]
  if a then return a end
  local function k(part) return redis.key(self.prefix, tag, part) end
  a = setmetatable({ store = self, tag = tag, keys = { k("meta"), k("free"), k("res"), k("lease"), k("used"), k("owners") },
                     held = {}, nheld = 0, used = {}, nused = 0, max_floor = 0, waiting = {}, senders = 0, conflicts = {} }, Alloc)
  self.allocs[tag] = a
  return a
end

local function ms(seconds) return math.max(1, math.floor(seconds * 1000)) end

local function unavailable(self, err)
  ferry.raise("store_unavailable", ("nonce store %s: %s"):format(self.tag, err and err.message or "no reply"),
    { cause = err and err.code })
end

-- Run one script; its epoch is checked on the way. -> the reply after the epoch. What this
-- process used alone is registered (rejoin) before any other step.
function Alloc:_run(name, ...)
  local s = self.store
  if self.alone_used and name ~= "rejoin" then self:_rejoin() end
  local r, err = s.scripts[name]:run(self.keys, { self.epoch or "", new_epoch(), math.floor(s.window * 1000), ... },
    s.timeout)
  if r == nil and err and err.code == "redis_error" then
    -- a script that failed is a bug here, not an outage: say it as it is
    ferry.raise("internal", ("nonce store %s: %s failed: %s"):format(self.tag, name, err.message))
  end
  if r == nil then
    self.down_since = self.down_since or ferry.now()
    unavailable(self, err)
  end
  self.down_since = nil
  self.generation = s.client.generation
  if r[1] ~= self.epoch then
    local was = self.epoch
    self.epoch = r[1]
    if was ~= nil then self:_lost_state(was) end
  end
  return r
end

-- The state this allocator knew is gone (Redis restarted empty): register what it holds.
function Alloc:_lost_state(was)
  self:_register(was)
end

-- Register the reservations held here if the epoch is no longer `seen` (one script per
-- owner; it does nothing while the epoch is still the one seen).
function Alloc:_register(seen)
  local s = self.store
  local args = { seen or "", new_epoch(), math.floor(s.window * 1000) }
  local by_owner = {}
  for n, h in pairs(self.held) do
    local list = by_owner[h.owner] or {}
    by_owner[h.owner] = list
    list[#list + 1] = n
    list[#list + 1] = math.max(1, math.floor(h.lease * 1000))
  end
  -- settled nonces the chain's floor has not passed yet: a gapped broadcast is not in the
  -- chain's pending count, so without them a recovery would hand them out again
  for n, owner in pairs(self.used) do
    local list = by_owner[owner] or {}
    by_owner[owner] = list
    list[#list + 1] = n
    list[#list + 1] = 0
  end
  -- nothing held: still say which floor this process knew (it forgot what is below it)
  if next(by_owner) == nil then by_owner[self.last_owner or "?"] = {} end
  for owner, list in pairs(by_owner) do
    local argv = { table.unpack(args) }
    argv[4], argv[5] = owner, self.max_floor
    for _, v in ipairs(list) do argv[#argv + 1] = v end
    local gen = s.client.generation
    local r, err = s.scripts.register:run(self.keys, argv, s.timeout)
    if r == nil then unavailable(self, err) end
    self.epoch, self.generation = r[1], gen
    if r[2] == "OK" and #list > 0 then
      s.st.recoveries = s.st.recoveries + 1
      ferry.log.warn("nonce store: Redis lost this address's state; the reservations held here are registered again",
        { address = self.tag, owner = owner, held = #list // 2, conflicts = #r[3] })
      s.st.reregistered = s.st.reregistered + #list // 2
      for _, n in ipairs(r[3]) do
        s.st.conflicts = s.st.conflicts + 1
        if self.held[n] then self.conflicts[n] = true end
        ferry.log.error("nonce store: a nonce held here was handed to another process while Redis "
          .. "was being recovered; it must not be broadcast", { address = self.tag, nonce = n })
      end
    end
  end
end

local function check_int(v, what)
  if math.type(v) ~= "integer" or v < 0 then
    ferry.raise("invalid_argument", ("nonces: %s must be an integer >= 0, got %s"):format(what, tostring(v)))
  end
end

local function forget(self, n)
  local h = self.held[n]
  if h then
    self.held[n] = nil
    self.conflicts[n] = nil
    self.nheld = self.nheld - 1
  end
  return h
end

-- Forget the settled nonces below the chain's floor: the chain itself vouches for them now.
local function prune_used(self, floor)
  if self.nused == 0 or floor <= (self.used_min or 0) then return end
  local min
  for n in pairs(self.used) do
    if n < floor then
      self.used[n] = nil
      self.nused = self.nused - 1
    elseif not min or n < min then
      min = n
    end
  end
  self.used_min = min or floor
end

-- A process's concurrent reserves of one address go to Redis as batches of up to BATCH, with
-- up to SENDERS batches in flight: Redis runs one while this process hands out the other's.
local BATCH, SENDERS = 32, 2

-- Reserve one nonce for each waiter of `batch` in one script (waiting out a recovery window).
function Alloc:_reserve_batch(batch)
  local s = self.store
  -- runs of one owner and lease go as (count, owner, lease_ms): the usual batch is one run
  local argv = { self.max_floor, 100000, s.process, ms(s.times.fence) }
  local last
  for _, w in ipairs(batch) do
    if last and w.owner == last.owner and w.lease == last.lease then
      argv[#argv - 2] = argv[#argv - 2] + 1
    else
      argv[#argv + 1] = 1
      argv[#argv + 1] = w.owner
      argv[#argv + 1] = math.max(1, math.floor(w.lease * 1000))
      last = w
    end
  end
  local first_contact = self.epoch == nil
  local waited_since, fenced_since
  while true do
    local r = self:_run("reserve", table.unpack(argv))
    if r[2] == "FENCED" or r[2] == "FLOOR" then
      fenced_since = self:_fenced(r, fenced_since)
      argv[1] = self.max_floor
    elseif r[2] == "OK" then
      local held, h = self.held, nil
      for i, n in ipairs(r[3]) do
        local w = batch[i]
        w.n = n
        -- one record per run of owner and lease (never changed, only replaced)
        if not (h and h.owner == w.owner and h.lease == w.lease) then
          h = { owner = w.owner, lease = w.lease, granted = ferry.now(), gen = s.client.generation }
        end
        held[n] = h
      end
      self.last_owner = batch[#batch].owner
      self.nheld = self.nheld + #batch
      s.st.reserves = s.st.reserves + #batch
      s.st.batches = s.st.batches + 1
      s:_watch()
      return
    -- RECOVERING: wait for the window to close (r[3] ms left)
    elseif not waited_since then
      waited_since = ferry.now()
      -- a first contact (no epoch seen) is the usual first use of an address: not news
      ferry.log[first_contact and "debug" or "info"]("nonce store: waiting for live owners to register their reservations again",
        { address = self.tag, seconds = r[3] / 1000 })
    elseif ferry.now() - waited_since > s.window + (s.timeout or s.client.timeout) then
      ferry.raise("store_unavailable", ("nonce store %s: still recovering after %.1fs"):format(self.tag,
        ferry.now() - waited_since))
    end
    if r[2] == "RECOVERING" then
      ferry.sleep(math.min(r[3] / 1000 + 0.005, 0.25))
      argv[1] = self.max_floor                 -- callers meanwhile may have raised it
    end
  end
end

-- The task that sends the waiting reserves, as many as are waiting in one script. A waiter
-- whose caller was cancelled meanwhile is skipped, or its nonce released if it got one.
local function send_batch(self, batch)
  local ok, err = pcall(self._reserve_batch, self, batch)
  for _, w in ipairs(batch) do
    if ok and w.abandoned then
      pcall(self.release, self, w.n)
    else
      w.q:put(ok and w.n or err)
    end
  end
end

local pump

local function sender(self, batch)
  send_batch(self, batch)
  self.senders = self.senders - 1
  if #self.waiting > 0 then pump(self) end
end

-- Start batches for what is waiting, as long as fewer than SENDERS are out.
function pump(self)
  while #self.waiting > 0 and self.senders < SENDERS do
    local batch, rest = {}, {}
    for _, w in ipairs(self.waiting) do
      if not w.abandoned then                  -- else its caller is gone: nothing to do
        if #batch < BATCH then batch[#batch + 1] = w else rest[#rest + 1] = w end
      end
    end
    self.waiting = rest
    if #batch > 0 then
      self.senders = self.senders + 1
      ferry.spawn(sender, self, batch):detach()
    end
  end
end

-- One waiting reserve. Its caller may be cancelled while it waits: then it is abandoned
-- (closed before done), and a nonce reserved for it is released. Its queue is reused.
local Waiter = {}
local queues = {}
local function take_queue()
  local n = #queues
  if n == 0 then return task.queue() end
  local q = queues[n]
  queues[n] = nil
  return q
end
Waiter.__close = function(w)
  local a = w.alloc
  a.last_use, a.reserving = ferry.now(), a.reserving - 1
  if w.done then
    queues[#queues + 1] = w.q
  else
    w.abandoned = true
  end
end

function Alloc:reserve(floor, owner, lease_s)
  check_int(floor, "floor")
  if type(owner) ~= "string" or owner == "" or type(lease_s) ~= "number" or lease_s <= 0 then
    ferry.raise("invalid_argument", "nonces:reserve: expects (floor, owner: string, lease_s > 0)")
  end
  -- in use while a reserve waits (a recovery window, say) and `idle` seconds after the last
  -- (the waiter's close counts it out)
  self.last_use, self.reserving = ferry.now(), (self.reserving or 0) + 1
  if floor > self.max_floor then self.max_floor = floor end
  prune_used(self, self.max_floor)
  local w <close> = setmetatable({ owner = owner, lease = lease_s, q = take_queue(), alloc = self }, Waiter)
  self.waiting[#self.waiting + 1] = w
  -- the batch goes out from the next tick: the other tasks ready now may join it
  if not self.pump_at_tick then
    self.pump_at_tick = true
    ferry.spawn(function() self.pump_at_tick = nil; pump(self) end):detach()
  end
  local r = w.q:get()
  w.done = true
  if math.type(r) ~= "integer" then error(r, 0) end
  return r
end

-- settle and release forget n here first: were the state lost meanwhile, n must not be
-- registered again by this process (it is broadcast, or free).
function Alloc:settle(n)
  check_int(n, "n")
  local h = forget(self, n)
  if h and not self.used[n] then
    self.used[n] = h.owner
    self.nused = self.nused + 1
    if not self.used_min or n < self.used_min then self.used_min = n end
  end
  self:_run("settle", n)
  self.store.st.settles = self.store.st.settles + 1
end

function Alloc:release(n)
  check_int(n, "n")
  forget(self, n)
  if self.alone_next then                      -- sending alone: the next one alone takes it
    self.alone_free[n] = true
    return
  end
  self:_run("release", n)
  self.store.st.releases = self.store.st.releases + 1
end

function Alloc:raise(floor)
  check_int(floor, "floor")
  if floor > self.max_floor then self.max_floor = floor end
  self:_run("raise", floor)
end

function Alloc:reclaim()
  local gone = {}
  for i, n in ipairs(self:_run("reclaim")[3]) do gone[i] = tonumber(n) end
  table.sort(gone)
  self.store.st.reclaimed = self.store.st.reclaimed + #gone
  return gone
end

function Alloc:state()
  local r = self:_run("state")
  local free, reserved = {}, {}
  for i, n in ipairs(r[4]) do free[i] = tonumber(n) end
  for i = 1, #r[5], 2 do reserved[tonumber(r[5][i])] = r[5][i + 1]:match("^%d+:(.*)$") end
  return { next = r[3], free = free, reserved = reserved, recovering = r[6] == "0" }
end

function Alloc:lease(owner, ttl_s)
  if type(owner) ~= "string" or owner == "" or type(ttl_s) ~= "number" or ttl_s <= 0 then
    ferry.raise("invalid_argument", "nonces:lease: expects (owner: string, ttl_s > 0)")
  end
  local r = self:_run("lease", owner, ms(ttl_s), 0)
  if r[2] == "OK" then return true, math.tointeger(tonumber(r[3])), r[4] / 1000 end
  -- FLOOR: the lease of a holder that fell silent ran out; taking it needs fresh_floor first
  return false, r[3], r[4] / 1000, r[2] == "FLOOR" and "floor" or "held"
end

--- a:fresh_floor(n): n is the chain's pending count, read after a lapsed lease was seen
function Alloc:fresh_floor(n)
  check_int(n, "floor")
  if n > self.max_floor then self.max_floor = n end
  self:_run("fresh_floor", n)
end

-- A fresh pending count (the caller's floor_reader reads the chain), raised into Redis: the
-- stale lease of a holder that fell silent is dropped on the way.
function Alloc:_fresh_floor()
  if not self.floor_reader then
    ferry.raise("store_unavailable", ("nonce store %s: the lease of a silent holder ran out, and without the chain's "
      .. "pending count no nonce can be handed out"):format(self.tag))
  end
  local floor = self.floor_reader()
  check_int(floor, "floor")
  if floor > self.max_floor then self.max_floor = floor end
  self:_run("fresh_floor", floor)
end

-- A reserve was fenced (r: FENCED, ms left, holder) or must read the chain first (FLOOR).
-- A holder whose process died on this host is let go at once. -> when the wait began
function Alloc:_fenced(r, since)
  local s, store = self.store, require("ferry.store")
  if r[2] == "FLOOR" then
    self:_fresh_floor()
    return since
  end
  if store.dead(r[4]) then
    ferry.log.info("the process holding this address's lease is gone; its lease is let go", { address = self.tag,
      holder = r[4] })
    self:_run("unlease", r[4], "dead")
    return since
  end
  local now = ferry.now()
  if not since then
    s.st.fenced_waits = s.st.fenced_waits + 1
    ferry.log.warn("sends from this address wait: the process holding its lease is out of touch with Redis and may "
      .. "be sending alone; until it is back or its lease runs out", { address = self.tag, holder = r[4],
        lease_left = ("%.1fs"):format(r[3] / 1000) })
    since = now
  elseif now - since > s.times.lease_ttl + (s.timeout or s.client.timeout) then
    ferry.raise("store_unavailable", ("nonce store %s: fenced by the lease holder %s for %.1fs"):format(self.tag,
      r[4], now - since))
  end
  ferry.sleep(math.min(r[3] / 1000 + 0.005, s.times.heartbeat))
  return since
end

--- a:touch(): a send of this address is under way here (a funds check, say): the lease is
--- kept, as for a reserve, for `idle` seconds from now
function Alloc:touch() self.last_use = ferry.now() end

--- a:hold_lease(floor_reader): from now on this process holds the address's lease while it
--- sends (see "Sending alone"); floor_reader() -> the chain's pending count, read fresh.
function Alloc:hold_lease(floor_reader)
  self.floor_reader = floor_reader
  if self.beating then return end
  self.beating = ferry.spawn(self._beat_loop, self)
  self.beating:detach()
  self.beating:daemon()
end

-- One renewal (or a try at taking the lease). Once a step failed (Redis out of reach), or
-- while what was used alone is not all registered, a probe instead: it renews nothing, and
-- its _run registers what was used alone first. A renewal is good only until the call's
-- deadline on Redis's clock (as last seen here, plus the time since: never later than the
-- real deadline), so one that waited in a frozen Redis does not land after this process
-- went alone.
function Alloc:_beat()
  local s = self.store
  if self.down_since or self.alone_used then
    self:_run("probe")
    return
  end
  local sent = ferry.now()
  local timeout = s.timeout or s.client.timeout
  local not_after = self.rclock and math.floor(self.rclock[1] + (sent - self.rclock[2] + timeout) * 1000) or 0
  self.renew_deadline = sent + timeout
  local r = self:_run("lease", s.process, ms(s.times.lease_ttl), not_after)
  if r[2] == "OK" then
    self.rclock = { r[5], ferry.now() }
    if not self.holding then
      ferry.log.debug("address lease taken", { address = self.tag, fence = r[3] })
    end
    self.holding, self.token = true, r[3]
    self.lease_until = sent + s.times.lease_ttl - s.times.margin
    self.heard_at = ferry.now()
  elseif r[2] == "FLOOR" then
    self.holding = false
    self:_fresh_floor()
  elseif r[2] == "HELD" then
    self.holding = false
  end                                          -- LATE: as if it had not arrived
end

function Alloc:_beat_loop()
  local s = self.store
  while not s.closed do
    local idle = (self.reserving or 0) == 0 and ferry.now() - (self.last_use or -1e9) > s.times.idle
    if self.alone_used or not idle then
      local ok, err = pcall(self._beat, self)
      if not ok and not (type(err) == "table" and err.code == "store_unavailable") then
        ferry.log.error("nonce store: lease renewal failed", { address = self.tag, err = tostring(err) })
      end
    elseif self.holding then                   -- idle: nothing to send alone, give it back
      self.holding = false
      pcall(self._run, self, "unlease", s.process, "idle")
    end
    ferry.sleep(s.times.heartbeat)
  end
end

--- a:why_not_alone() -> nil when this process may send alone now, else why not
function Alloc:why_not_alone()
  local s, now = self.store, ferry.now()
  if not self.holding then return "another process holds the address's lease" end
  if not self.down_since then return "Redis answers" end
  -- one call that timed out on a loaded machine is not an outage yet
  if now - self.down_since < s.times.drain then return "Redis failed only just now" end
  -- a reserve of this process on its way to Redis may be a retry that gets a nonce its lost
  -- reply had (by its name): nothing alone until it is answered or given up
  if self.senders > 0 then return "a reserve of this process is on its way to Redis" end
  if now >= (self.lease_until or 0) then return "the address's lease ran out while Redis was unreachable" end
  if now - (self.heard_at or 0) < s.times.fence + s.times.drain then return "Redis not out of reach for long enough" end
  if now < (self.renew_deadline or 0) then return "a renewal sent may still reach Redis" end
end

--- a:alone(lease_s) -> n while this process sends alone (Redis out of reach, the lease held
--- and not about to run out), else nil, why. The first one of a spell reads the chain's
--- pending count first.
function Alloc:alone(lease_s)
  local s = self.store
  local why = self:why_not_alone()
  if why then return nil, why end
  if not self.alone_next then
    if self.entering then
      self.entering:wait()
    else
      self.entering = ferry.spawn(function()
        -- from the chain's pending count up, past what this process holds or used: every
        -- nonce another process got and broadcast before the fence is below that count by
        -- now (drain); one it got and did not broadcast (its reply lost in the outage, most
        -- likely) is taken back at the rejoin, so no gap below stalls what is sent alone
        local floor = self.floor_reader()
        local top = floor
        for n in pairs(self.held) do if n >= top then top = n + 1 end end
        for n in pairs(self.used) do if n >= top then top = n + 1 end end
        local free = {}
        for n = floor, top - 1 do if not self.held[n] and not self.used[n] then free[n] = true end end
        self.alone_next, self.alone_free = top, free
        s.st.alone_spells = s.st.alone_spells + 1
        ferry.log.warn("Redis is unreachable: this process holds the address's lease and goes on sending from it alone; "
          .. "other processes' sends from it wait", { address = self.tag, fence = self.token, from_nonce = floor,
            lease_left = ("%.1fs"):format(self.lease_until - ferry.now()) })
      end)
      self.entering:detach()
      local ok, err = self.entering:wait()
      self.entering = nil
      if not ok then return nil, tostring(err) end
    end
    if not self.alone_next then return nil, "could not read the chain's pending count" end
  end
  local n
  for f in pairs(self.alone_free) do if not n or f < n then n = f end end
  if n then
    self.alone_free[n] = nil
  else
    n, self.alone_next = self.alone_next, self.alone_next + 1
  end
  self.held[n] = { owner = s.process .. "#0", lease = lease_s }
  self.nheld = self.nheld + 1
  self.alone_used, self.alone_seq = true, (self.alone_seq or 0) + 1
  s.st.alone = s.st.alone + 1
  return n
end

-- Back in touch: register what was used alone, before any other step of this allocator.
function Alloc:_rejoin()
  if self.rejoining then
    local done, ok, err = self.rejoining:wait()
    if not done then error(ok, 0) end
    if not ok then error(err, 0) end
    return
  end
  local s = self.store
  -- its error goes to the waiters, not to the log: pcall inside, the result passed on
  self.rejoining = ferry.spawn(pcall, function()
    -- a rejoin is tried before every step while Redis is out of reach, and sending alone goes
    -- on meanwhile: what is used alone during one that succeeds is registered by the next
    local seq = self.alone_seq
    local argv, k = { s.process, self.token or "", self.max_floor, self.alone_next or 0 }, 0
    local mine = s.process .. "#0"
    for n, h in pairs(self.held) do
      if h.owner == mine then argv[#argv + 1] = n; argv[#argv + 1] = ms(h.lease); k = k + 1 end
    end
    for n in pairs(self.used) do argv[#argv + 1] = n; argv[#argv + 1] = 0; k = k + 1 end
    -- a nonce freed alone and offered to Redis as free is never used alone again (a rejoin
    -- that failed here may still have run there): it is offered again until one succeeds
    self.freeing = self.freeing or {}
    for n in pairs(self.alone_free or {}) do self.freeing[n] = true end
    self.alone_free = {}
    local offered = {}
    for n in pairs(self.freeing) do argv[#argv + 1] = n; argv[#argv + 1] = -1; offered[n] = true end
    local r = self:_run("rejoin", table.unpack(argv))
    for n in pairs(offered) do self.freeing[n] = nil end
    if #r[3] > 0 then
      s.st.taken_back = s.st.taken_back + #r[3]
      ferry.log.warn("nonce store: nonces used here alone had been handed to another process just before Redis was "
        .. "out of reach (their replies lost); they are taken back, and that process's reserves get others",
        { address = self.tag, nonces = table.concat(r[3], ",") })
    end
    self.holding = r[4] == 1
    if self.alone_next then
      ferry.log.info("Redis reachable again: what was sent alone is registered; sending through Redis",
        { address = self.tag, nonces = k, still_holding = self.holding })
    end
    s.st.rejoins = s.st.rejoins + 1
    if self.alone_seq ~= seq then return end     -- more was used alone meanwhile: again
    local late = self.alone_free
    self.alone_used, self.alone_next, self.alone_free = nil, nil, {}
    for n in pairs(late) do self:_run("release", n) end
    -- what else was done alone goes to Redis too (the funds holds: ferry.nonces), and only
    -- then does a renewal bring the fence down
    if self.on_rejoin then self.on_rejoin() end
    if self.holding then pcall(self._beat, self) end
  end)
  self.rejoining:detach()
  local done, ok, err = self.rejoining:wait()
  self.rejoining = nil
  if not done then error(ok, 0) end            -- cancelled
  if not ok then error(err, 0) end
end

--- a:late(n) -> true when n, reserved here through Redis, is broadcast late: `drain` after its
--- reply, or across a reconnect to Redis (the lease holder may have used it alone since)
function Alloc:late(n)
  local h = self.held[n]
  if not h or not h.granted then return false end
  return ferry.now() - h.granted > self.store.times.drain or self.store.client.generation ~= h.gen
end

--- a:confirm(n) -> true while n is still this process's, false when it was taken back (its
--- bytes must not leave: the payment gets another nonce). Waits out a fence, as reserve does.
function Alloc:confirm(n)
  local s, since = self.store, nil
  while true do
    local r = self:_run("confirm", n, s.process, ms(s.times.fence))
    if r[2] == "OK" then return true end
    if r[2] == "GONE" then return false end
    since = self:_fenced(r, since)
  end
end

--- a:forget(n): n is not this process's any more (taken back): dropped here, nothing told
function Alloc:forget(n) forget(self, n) end

--- a:conflicted(n) -> true when n was handed to another process during a recovery
function Alloc:conflicted(n) return self.held[n] ~= nil and self.conflicts[n] == true end

-- One daemon per store (from its first reservation until store:close): every window / 8,
-- after the client connected again, it asks whether the epoch changed and, if so,
-- registers what is held here and the floor known here (register does nothing when the
-- epoch is the one seen). So owners busy signing still register again within the window.
function Store:_watch()
  if self.watcher or self.closed then return end
  self.watcher = ferry.spawn(function()
    while not self.closed do
      ferry.sleep(self.window / 8)
      for _, a in pairs(self.allocs) do
        -- a Redis that lost its state was restarted or replaced: the connection was made
        -- again (generation), so only then is there anything to ask
        if a.epoch and a.generation ~= self.client.generation then
          local ok, err = pcall(a._register, a, a.epoch)
          if not ok and not (type(err) == "table" and err.code == "store_unavailable") then error(err, 0) end
        end
      end
    end
  end)
  self.watcher:detach()
  self.watcher:daemon()
end

--- store:close(): stop the watcher; the allocators forget what they hold (the client stays open)
function Store:close()
  self.closed = true
  if self.watcher then self.watcher:cancel() end
  self.watcher = nil
  for _, a in pairs(self.allocs) do
    if a.beating then a.beating:cancel() end
    a.held, a.nheld, a.used, a.nused, a.beating, a.holding = {}, 0, {}, 0, nil, false
  end
end

function Store:stats()
  local s = {}
  for k, v in pairs(self.st) do s[k] = v end
  return s
end

return M
