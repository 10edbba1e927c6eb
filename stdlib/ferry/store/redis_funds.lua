--- ferry.store.redis_funds -- the funds holds of an address on Redis: every process sending
--- from one address judges its pre-flight check against what all of them still hold, so
--- four processes never promise the same ether twice. One script per step (EVALSHA, EVAL
--- after NOSCRIPT), keys under the address's hash tag (the nonce allocator's).
---
---   local funds = require("ferry.store.redis_funds").new(client, { prefix = "ferry:" })
---   local f = funds:holds(chain_key, address)
---   f:hold(seen, amount, owner, lease_s) -> epoch, left, seq   (the commit: seq is the commit order)
---   f:ahead(seen, seq, count) -> epoch, left, "OK", amounts, owners | "STALE", pruned | "RECOVERING" | "EPOCH"
---   f:put(seen, seq, amount, nonce, sent, owner, lease_s)     (assign, sent, resize: the whole hold)
---   f:done(seen, seq, sent)  f:forget(seen, owner)  f:register(owner, lease_s, holds)  f:ping()  f:state()
---
--- A hold: its Redis-side sequence number (commit order across processes), an amount (wei,
--- as text: exact, summed by the caller in u256), a nonce once assigned, a sent flag, its
--- owner and, until sent, a lease: a dead process's unsent holds expire with it (or at once
--- when the caller finds their process gone on this host: forget). A sent hold stays until
--- its nonce is below the mined count: the balance shows it from there. Any later
--- transaction of the address moves the count past it, so none stays forever.
---
--- "Ahead of seq at count c" = the holds committed before seq whose nonce is unassigned or
--- >= c. Holds with a nonce below the lowest count a running check has read are pruned;
--- each check registers a lower bound of its count when it commits (the highest count any
--- check reported), so a check in another process never has a hold pruned under it. A
--- check whose provider answers a count below what was pruned already is told so (STALE).
---
--- A Redis that restarted empty (or a failover that lost writes) has forgotten every hold,
--- so the state carries an epoch, as the nonce allocator's does (ferry.store.redis): the
--- first script to find it missing makes a new one and opens a window (2 s) in which checks
--- wait ("recovering") while every process registers the holds it still has again
--- (register: each keeps its order, below every hold committed since). Every reply starts
--- with the epoch and the ms left in the window; a step that names an epoch that is no
--- longer the one (put, done, forget, ahead) changes nothing and answers "epoch": its caller
--- registers again, then retries.
---
--- Every call may yield, and raises {code = "store_unavailable"} when Redis cannot be
--- reached; the caller (ferry.nonces, "Funds") waits and says why.
local ferry = require "ferry"
local redis = require "ferry.redis"

local M = {}

-- What the funds store on Redis did in this process, for ferry.stats().funds_redis
local totals = { holds = 0, checks = 0, recovering = 0, stale = 0, registered = 0, forgotten = 0 }
ferry.register_stats("funds_redis", totals)

-- KEYS = meta (seq, last: the highest count reported, pruned: the highest prune floor),
-- holds (seq -> "amount|nonce|sent|expires ms|owner", nonce -1 while unassigned, expires 0
-- once sent), checks (seq -> the count its check judges at, at least).
-- ARGV[1] a new epoch should the state be missing, [2] the window (ms), [3] the epoch the
-- caller saw ('' none); the step's own arguments from ARGV[4].
local PROLOGUE = [[
local meta, holds, checks = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = redis.call('HMGET', meta, 'epoch', 'until')
local epoch, left = m[1], 0
if not epoch then
  epoch, left = ARGV[1], tonumber(ARGV[2])
  redis.call('HSET', meta, 'epoch', epoch, 'until', now + left)
else
  left = math.max(0, tonumber(m[2]) - now)
end
local stale = ARGV[3] ~= '' and ARGV[3] ~= epoch
local function parse(v)
  local amount, nonce, sent, expires, owner = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return amount, tonumber(nonce), sent == '1', tonumber(expires), owner
end
]]

local SCRIPTS = {
  -- ARGV amount, owner, lease_ms -> seq (committed whatever epoch the caller saw)
  hold = [[
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HSET', holds, seq, ARGV[4] .. '|-1|0|' .. (now + tonumber(ARGV[6])) .. '|' .. ARGV[5])
redis.call('HSET', checks, seq, redis.call('HGET', meta, 'last') or '0')
return { epoch, left, seq }
]],
  -- ARGV seq, count -> 'OK', amounts, owners of unsent ones | 'STALE', pruned | 'RECOVERING'
  ahead = [[
if stale then return { epoch, left, 'EPOCH' } end
if left > 0 then return { epoch, left, 'RECOVERING' } end
local seq, count = tonumber(ARGV[4]), tonumber(ARGV[5])
local pruned = tonumber(redis.call('HGET', meta, 'pruned') or '0')
if count < pruned then return { epoch, left, 'STALE', pruned } end
if count > tonumber(redis.call('HGET', meta, 'last') or '0') then redis.call('HSET', meta, 'last', count) end
redis.call('HSET', checks, ARGV[4], count)
local floor = count
local cs = redis.call('HVALS', checks)
for i = 1, #cs do
  local c = tonumber(cs[i])
  if c < floor then floor = c end
end
if floor > pruned then redis.call('HSET', meta, 'pruned', floor) end
local all, amounts, owners = redis.call('HGETALL', holds), {}, {}
for i = 1, #all, 2 do
  local s = tonumber(all[i])
  local amount, nonce, sent, expires, owner = parse(all[i + 1])
  if not sent and expires <= now then
    redis.call('HDEL', holds, all[i]); redis.call('HDEL', checks, all[i])   -- its process died
  elseif nonce >= 0 and nonce < count then
    if nonce < floor then redis.call('HDEL', holds, all[i]); redis.call('HDEL', checks, all[i]) end
  elseif s < seq then
    amounts[#amounts + 1] = amount
    if not sent then owners[#owners + 1] = owner end
  end
end
return { epoch, left, 'OK', amounts, owners }
]],
  -- ARGV seq, amount, nonce (-1), sent (0/1), owner, lease_ms: the whole hold, so a hold
  -- its lease dropped while its process stalled is back before the broadcast
  put = [[
if stale then return { epoch, left, 'EPOCH' } end
local expires = ARGV[7] == '1' and 0 or (now + tonumber(ARGV[9]))
redis.call('HSET', holds, ARGV[4], ARGV[5] .. '|' .. ARGV[6] .. '|' .. ARGV[7] .. '|' .. expires .. '|' .. ARGV[8])
if ARGV[6] ~= '-1' then redis.call('HDEL', checks, ARGV[4]) end
return { epoch, left, 'OK' }
]],
  -- ARGV seq, sent (0/1): the send is over; an unsent hold is given back
  done = [[
if stale then return { epoch, left, 'EPOCH' } end
redis.call('HDEL', checks, ARGV[4])
if ARGV[5] ~= '1' then redis.call('HDEL', holds, ARGV[4]) end
return { epoch, left, 'OK' }
]],
  -- ARGV owner: its process is gone; its unsent holds go with it -> how many
  forget = [[
if stale then return { epoch, left, 'EPOCH' } end
local all, n = redis.call('HGETALL', holds), 0
for i = 1, #all, 2 do
  local _, _, sent, _, owner = parse(all[i + 1])
  if not sent and owner == ARGV[4] then
    redis.call('HDEL', holds, all[i]); redis.call('HDEL', checks, all[i])
    n = n + 1
  end
end
return { epoch, left, 'OK', n }
]],
  -- ARGV owner, lease_ms, then seq, amount, nonce, sent per hold: the holds a process still
  -- has, in a new epoch (their seqs, chosen by the caller, keep their order)
  register = [[
for i = 6, #ARGV, 4 do
  local expires = ARGV[i + 3] == '1' and 0 or (now + tonumber(ARGV[5]))
  redis.call('HSET', holds, ARGV[i], ARGV[i + 1] .. '|' .. ARGV[i + 2] .. '|' .. ARGV[i + 3] .. '|' .. expires .. '|' .. ARGV[4])
end
return { epoch, left, 'OK' }
]],
  ping = [[
return { epoch, left, 'OK' }
]],
  state = [[
return { epoch, left, redis.call('HGETALL', meta), redis.call('HGETALL', holds), redis.call('HGETALL', checks) }
]],
}

local Store = {}
Store.__index = Store
local Holds = {}
Holds.__index = Holds

--- new(client, {prefix = "ferry:", timeout = client's, recover_window = 2}) -> store
function M.new(client, opts)
  opts = opts or {}
  if type(client) ~= "table" or type(client.script) ~= "function" then
    ferry.raise("invalid_argument", "store.redis_funds.new: expects a ferry.redis client")
  end
  local self = setmetatable({ client = client, prefix = opts.prefix or "ferry:", timeout = opts.timeout,
                              window = opts.recover_window or 2, scripts = {}, addrs = {} }, Store)
  for name, body in pairs(SCRIPTS) do self.scripts[name] = client:script(PROLOGUE .. body) end
  return self
end

--- store:holds(chain_key, address) -> the holds of that address (one object per address)
function Store:holds(chain_key, address)
  if (type(chain_key) ~= "string" and type(chain_key) ~= "number") or type(address) ~= "string" then
    ferry.raise("invalid_argument", "store.redis_funds:holds: expects (chain_key, address: string)")
  end
  local tag = tostring(chain_key) .. ":" .. address:lower()
  local h = self.addrs[tag]
  if h then return h end
  local function k(part) return redis.key(self.prefix, tag, part) end
  h = setmetatable({ store = self, tag = tag, keys = { k("funds"), k("holds"), k("checks") } }, Holds)
  self.addrs[tag] = h
  return h
end

-- A candidate epoch, used only by a script that finds the state missing: unique per call.
local epoch_base, epoch_seq = nil, 0
local function new_epoch()
  if not epoch_base then
    local f = io.open("/dev/urandom", "rb")
    local b = f and f:read(8) or tostring(os.time() + math.random())
    if f then f:close() end
    epoch_base = (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end
  epoch_seq = epoch_seq + 1
  return epoch_base .. "." .. epoch_seq
end

-- -> epoch, ms left in the recovery window, the step's reply (a table)
function Holds:_run(name, seen, args)
  local s = self.store
  local argv = { new_epoch(), math.floor(s.window * 1000), seen or "" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r, err = s.scripts[name]:run(self.keys, argv, s.timeout)
  if r == nil and err and err.code == "redis_error" then
    ferry.raise("internal", ("funds store %s: %s failed: %s"):format(self.tag, name, err.message))
  end
  if r == nil then
    ferry.raise("store_unavailable", ("funds store %s: %s"):format(self.tag, err and err.message or "no reply"),
      { cause = err and err.code })
  end
  return r[1], r[2], r
end

local function ms(s) return math.max(1, math.floor(s * 1000)) end

--- hold(seen, amount, owner, lease_s) -> epoch, left, seq
function Holds:hold(seen, amount, owner, lease_s)
  local epoch, left, r = self:_run("hold", seen, { tostring(amount), owner, ms(lease_s) })
  totals.holds = totals.holds + 1
  return epoch, left, math.tointeger(r[3])
end

--- ahead(seen, seq, count) -> epoch, left, "OK", amounts, owners | "STALE", pruned | "RECOVERING" | "EPOCH"
function Holds:ahead(seen, seq, count)
  local epoch, left, r = self:_run("ahead", seen, { seq, count })
  if r[3] == "OK" then totals.checks = totals.checks + 1
  elseif r[3] == "RECOVERING" then totals.recovering = totals.recovering + 1 end
  if r[3] == "STALE" then
    totals.stale = totals.stale + 1
    return epoch, left, "STALE", math.tointeger(r[4])
  end
  return epoch, left, r[3], r[4], r[5]
end

--- put(seen, seq, amount, nonce, sent, owner, lease_s) -> epoch, left, "OK" | "EPOCH"
function Holds:put(seen, seq, amount, nonce, sent, owner, lease_s)
  local epoch, left, r = self:_run("put", seen, { seq, tostring(amount), nonce or -1, sent and 1 or 0, owner, ms(lease_s) })
  return epoch, left, r[3]
end

--- done(seen, seq, sent) -> epoch, left, "OK" | "EPOCH"
function Holds:done(seen, seq, sent)
  local epoch, left, r = self:_run("done", seen, { seq, sent and 1 or 0 })
  return epoch, left, r[3]
end

--- forget(seen, owner) -> epoch, left, "OK", n | "EPOCH"
function Holds:forget(seen, owner)
  local epoch, left, r = self:_run("forget", seen, { owner })
  totals.forgotten = totals.forgotten + (math.tointeger(r[4]) or 0)
  return epoch, left, r[3], math.tointeger(r[4])
end

--- register(owner, lease_s, {{seq, amount, nonce, sent}...}) -> epoch, left
function Holds:register(owner, lease_s, list)
  local args = { owner, ms(lease_s) }
  for _, h in ipairs(list) do
    args[#args + 1] = ("%d"):format(h[1])
    args[#args + 1] = tostring(h[2])
    args[#args + 1] = h[3] or -1
    args[#args + 1] = h[4] and 1 or 0
  end
  local epoch, left = self:_run("register", nil, args)
  totals.registered = totals.registered + #list
  return epoch, left
end

--- ping() -> epoch, left (is the state still the one seen?)
function Holds:ping()
  local epoch, left = self:_run("ping", nil, {})
  return epoch, left, "OK"
end

--- state() -> {epoch, left, seq, last, pruned, holds = {[seq] = {amount, nonce, sent, expires, owner}}, checks}
function Holds:state()
  local epoch, left, r = self:_run("state", nil, {})
  local st = { epoch = epoch, left = left, holds = {}, checks = {} }
  for i = 1, #r[3], 2 do
    if r[3][i] ~= "epoch" then st[r[3][i]] = math.tointeger(tonumber(r[3][i + 1])) end
  end
  for i = 1, #r[4], 2 do
    local amount, nonce, sent, expires, owner = r[4][i + 1]:match("^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$")
    st.holds[math.tointeger(tonumber(r[4][i]))] = { amount = amount, nonce = math.tointeger(tonumber(nonce)),
      sent = sent == "1", expires = tonumber(expires), owner = owner }
  end
  for i = 1, #r[5], 2 do st.checks[math.tointeger(tonumber(r[5][i]))] = math.tointeger(tonumber(r[5][i + 1])) end
  return st
end

return M
