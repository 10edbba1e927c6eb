--- ferry.store.redis -- the nonce allocator on Redis: processes on many machines share an
--- address's nonces, and every atomic step is one script (EVALSHA, EVAL after NOSCRIPT).
---
---   local store = require("ferry.store.redis").new(client, { prefix = "ferry:" })
---   local a = store:nonces(chain_id, address)
---   a:reserve(floor, owner, lease_s) -> n
---   a:settle(n)  a:release(n)  a:raise(floor)  a:reclaim() -> {n...}  a:state()
---   a:lease(owner, ttl_s) -> true, token, expires | false, holder, ttl_left
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

local M = {}

-- Shared by every script: KEYS = meta, free, res, exp, lease, used; ARGV[1] = the epoch the caller
-- saw, ARGV[2] = a new epoch should the state be missing, ARGV[3] = the window (ms); the op's
-- own arguments from ARGV[4]. Every reply starts with the current epoch.
local PROLOGUE = [[
local meta, free, res, exp, lease, used = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
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

local SCRIPTS = {
  -- ARGV[4] floor, [5] owner, [6] lease_ms, [7] seal cap
  reserve = [[
local floor, owner, lease_ms = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
-- the highest floor any caller passed: a floor read before a wait may be stale
floor = math.max(floor, tonumber(redis.call('HGET', meta, 'floor') or '0'))
redis.call('HSET', meta, 'floor', floor)
if redis.call('HGET', meta, 'sealed') == '0' then
  local left = tonumber(redis.call('HGET', meta, 'recover_until')) - now
  if left > 0 then return { epoch, 'RECOVERING', left } end
  local n = nxt()
  local from = math.max(floor, n - tonumber(ARGV[7]))
  for i = from, n - 1 do
    if redis.call('HEXISTS', res, i) == 0 and redis.call('SISMEMBER', used, i) == 0 then
      redis.call('ZADD', free, i, i)
    end
  end
  redis.call('HSET', meta, 'sealed', 1)
  redis.call('DEL', used)
end
redis.call('ZREMRANGEBYSCORE', free, '-inf', '(' .. floor)
local n = redis.call('ZRANGE', free, 0, 0)[1]
if n then
  n = tonumber(n)
  redis.call('ZREM', free, n)
else
  n = math.max(nxt(), floor)
  redis.call('HSET', meta, 'next', n + 1)
end
redis.call('HSET', res, n, owner)
redis.call('ZADD', exp, now + lease_ms, n)
return { epoch, 'OK', n }
]],
  settle = [[
redis.call('HDEL', res, ARGV[4])
redis.call('ZREM', exp, ARGV[4])
return { epoch, 'OK' }
]],
  release = [[
local n = tonumber(ARGV[4])
redis.call('HDEL', res, n)
redis.call('ZREM', exp, n)
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
local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
for _, n in ipairs(gone) do
  redis.call('HDEL', res, n)
  redis.call('ZREM', exp, n)
  redis.call('ZADD', free, n, n)
end
if #gone > 0 then trim() end
return { epoch, 'OK', gone }
]],
  state = [[
return { epoch, 'OK', nxt(), redis.call('ZRANGE', free, 0, -1), redis.call('HGETALL', res),
         redis.call('HGET', meta, 'sealed') }
]],
  -- ARGV[4] owner, [5] ttl_ms. A new holder's token is above the last one and above the
  -- time in microseconds, so tokens keep growing even across a Redis that lost the record.
  lease = [[
local owner, ttl = ARGV[4], tonumber(ARGV[5])
local h = redis.call('HMGET', lease, 'owner', 'token', 'expires')
local holder, token, expires = h[1], tonumber(h[2] or '0'), tonumber(h[3] or '0')
if holder and holder ~= owner and expires > now then
  return { epoch, 'HELD', holder, expires - now }
end
if holder ~= owner or expires <= now then
  token = math.max(token + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
end
redis.call('HSET', lease, 'owner', owner, 'token', string.format('%d', token), 'expires', now + ttl)
redis.call('PEXPIRE', lease, ttl * 2 + 60000)
return { epoch, 'OK', string.format('%d', token), now + ttl }
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
  local cur = redis.call('HGET', res, n)
  if cur and (cur ~= owner or lease_ms == 0) then
    conflicts[#conflicts + 1] = n
  else
    redis.call('ZREM', free, n)
    if lease_ms > 0 then
      redis.call('HSET', res, n, owner)
      redis.call('ZADD', exp, now + lease_ms, n)
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

local function new_epoch()
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(8) or tostring(os.time() + math.random())
  if f then f:close() end
  return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- new(client, {prefix = "ferry:", recover_window = 2, timeout = client's}) -> store
function M.new(client, opts)
  opts = opts or {}
  if type(client) ~= "table" or type(client.script) ~= "function" then
    ferry.raise("invalid_argument", "store.redis.new: expects a ferry.redis client")
  end
  local self = setmetatable({
    client = client, prefix = opts.prefix or "ferry:", window = opts.recover_window or 2,
    timeout = opts.timeout, scripts = {}, allocs = setmetatable({}, { __mode = "v" }),
    st = { reserves = 0, settles = 0, releases = 0, reclaimed = 0, recoveries = 0, reregistered = 0,
           conflicts = 0 },
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
  a = setmetatable({ store = self, tag = tag, keys = { k("meta"), k("free"), k("res"), k("exp"), k("lease"), k("used") },
                     held = {}, nheld = 0, used = {}, nused = 0, max_floor = 0 }, Alloc)
  self.allocs[tag] = a
  return a
end

local function unavailable(self, err)
  ferry.raise("store_unavailable", ("nonce store %s: %s"):format(self.tag, err and err.message or "no reply"),
    { cause = err and err.code })
end

-- Run one script; its epoch is checked on the way. -> the reply after the epoch
function Alloc:_run(name, ...)
  local s = self.store
  local r, err = s.scripts[name]:run(self.keys, { self.epoch or "", new_epoch(), math.floor(s.window * 1000), ... },
    s.timeout)
  if r == nil and err and err.code == "redis_error" then
    -- a script that failed is a bug here, not an outage: say it as it is
    ferry.raise("internal", ("nonce store %s: %s failed: %s"):format(self.tag, name, err.message))
  end
  if r == nil then unavailable(self, err) end
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
        if self.held[n] then self.held[n].conflict = true end
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

function Alloc:reserve(floor, owner, lease_s)
  check_int(floor, "floor")
  if type(owner) ~= "string" or owner == "" or type(lease_s) ~= "number" or lease_s <= 0 then
    ferry.raise("invalid_argument", "nonces:reserve: expects (floor, owner: string, lease_s > 0)")
  end
  local s = self.store
  if floor > self.max_floor then self.max_floor = floor end
  floor = self.max_floor
  prune_used(self, floor)
  local first_contact = self.epoch == nil
  local waited_since
  while true do
    local r = self:_run("reserve", floor, owner, math.max(1, math.floor(lease_s * 1000)), 100000)
    if r[2] == "OK" then
      local n = r[3]
      self.held[n] = { owner = owner, lease = lease_s }
      self.last_owner = owner
      self.nheld = self.nheld + 1
      s.st.reserves = s.st.reserves + 1
      self.store:_watch()
      return n
    end
    -- RECOVERING: wait for the window to close (r[3] ms left)
    if not waited_since then
      waited_since = ferry.now()
      -- a first contact (no epoch seen) is the usual first use of an address: not news
      ferry.log[first_contact and "debug" or "info"]("nonce store: waiting for live owners to register their reservations again",
        { address = self.tag, seconds = r[3] / 1000 })
    elseif ferry.now() - waited_since > s.window + (s.timeout or s.client.timeout) then
      ferry.raise("store_unavailable", ("nonce store %s: still recovering after %.1fs"):format(self.tag,
        ferry.now() - waited_since))
    end
    ferry.sleep(math.min(r[3] / 1000 + 0.005, 0.25))
  end
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
  for i = 1, #r[5], 2 do reserved[tonumber(r[5][i])] = r[5][i + 1] end
  return { next = r[3], free = free, reserved = reserved, recovering = r[6] == "0" }
end

function Alloc:lease(owner, ttl_s)
  if type(owner) ~= "string" or owner == "" or type(ttl_s) ~= "number" or ttl_s <= 0 then
    ferry.raise("invalid_argument", "nonces:lease: expects (owner: string, ttl_s > 0)")
  end
  local r = self:_run("lease", owner, math.max(1, math.floor(ttl_s * 1000)))
  if r[2] == "OK" then return true, math.tointeger(tonumber(r[3])), r[4] / 1000 end
  return false, r[3], r[4] / 1000
end

--- a:conflicted(n) -> true when n was handed to another process during a recovery
function Alloc:conflicted(n) return self.held[n] ~= nil and self.held[n].conflict == true end

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
  for _, a in pairs(self.allocs) do a.held, a.nheld, a.used, a.nused = {}, 0, {}, 0 end
end

function Store:stats()
  local s = {}
  for k, v in pairs(self.st) do s[k] = v end
  return s
end

return M
