--- ferry.store.redis_funds -- the funds holds of an address on Redis: every process sending
--- from one address judges its pre-flight check against what all of them still hold, so
--- four processes never promise the same ether twice. One script per step (EVALSHA, EVAL
--- after NOSCRIPT), keys under the address's hash tag (the nonce allocator's).
---
---   local funds = require("ferry.store.redis_funds").new(client, { prefix = "ferry:" })
---   local f = funds:holds(chain_key, address)
---   f:hold(amount, owner, lease_s) -> seq           (the commit: seq is the commit order)
---   f:ahead(seq, count) -> amounts, owners | nil    (nil: the count is older than a prune)
---   f:put(seq, amount, nonce, sent, owner, lease_s) (assign, sent, resize: the whole hold)
---   f:done(seq, sent)  f:forget(owner)  f:state()
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
--- check whose provider answers a count below what was pruned already is told so (nil).
---
--- Every call may yield, and raises {code = "store_unavailable"} when Redis cannot be
--- reached; the caller (ferry.nonces, "Funds") waits and says why.
local ferry = require "ferry"
local redis = require "ferry.redis"

local M = {}

-- KEYS = meta (seq, last: the highest count reported, pruned: the highest prune floor),
-- holds (seq -> "amount|nonce|sent|expires ms|owner", nonce -1 while unassigned, expires 0
-- once sent), checks (seq -> the count its check judges at, at least).
local PROLOGUE = [[
local meta, holds, checks = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function parse(v)
  local amount, nonce, sent, expires, owner = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return amount, tonumber(nonce), sent == '1', tonumber(expires), owner
end
]]

local SCRIPTS = {
  -- ARGV amount, owner, lease_ms -> seq
  hold = [[
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HSET', holds, seq, ARGV[1] .. '|-1|0|' .. (now + tonumber(ARGV[3])) .. '|' .. ARGV[2])
redis.call('HSET', checks, seq, redis.call('HGET', meta, 'last') or '0')
return seq
]],
  -- ARGV seq, count -> { 'OK', amounts, owners of unsent ones } | { 'STALE', pruned }
  ahead = [[
local seq, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local pruned = tonumber(redis.call('HGET', meta, 'pruned') or '0')
if count < pruned then return { 'STALE', pruned } end
if count > tonumber(redis.call('HGET', meta, 'last') or '0') then redis.call('HSET', meta, 'last', count) end
redis.call('HSET', checks, seq, count)
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
return { 'OK', amounts, owners }
]],
  -- ARGV seq, amount, nonce (-1), sent (0/1), owner, lease_ms: the whole hold, so a hold
  -- its lease dropped while its process stalled is back before the broadcast
  put = [[
local expires = ARGV[4] == '1' and 0 or (now + tonumber(ARGV[6]))
redis.call('HSET', holds, ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|' .. expires .. '|' .. ARGV[5])
if ARGV[3] ~= '-1' then redis.call('HDEL', checks, ARGV[1]) end
return 'OK'
]],
  -- ARGV seq, sent (0/1): the send is over; an unsent hold is given back
  done = [[
redis.call('HDEL', checks, ARGV[1])
if ARGV[2] ~= '1' then redis.call('HDEL', holds, ARGV[1]) end
return 'OK'
]],
  -- ARGV owner: its process is gone; its unsent holds go with it -> how many
  forget = [[
local all, n = redis.call('HGETALL', holds), 0
for i = 1, #all, 2 do
  local _, _, sent, _, owner = parse(all[i + 1])
  if not sent and owner == ARGV[1] then
    redis.call('HDEL', holds, all[i]); redis.call('HDEL', checks, all[i])
    n = n + 1
  end
end
return n
]],
  state = [[
return { redis.call('HGETALL', meta), redis.call('HGETALL', holds), redis.call('HGETALL', checks) }
]],
}

local Store = {}
Store.__index = Store
local Holds = {}
Holds.__index = Holds

--- new(client, {prefix = "ferry:", timeout = client's}) -> store
function M.new(client, opts)
  opts = opts or {}
  if type(client) ~= "table" or type(client.script) ~= "function" then
    ferry.raise("invalid_argument", "store.redis_funds.new: expects a ferry.redis client")
  end
  local self = setmetatable({ client = client, prefix = opts.prefix or "ferry:", timeout = opts.timeout,
                              scripts = {}, addrs = {} }, Store)
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

function Holds:_run(name, args)
  local s = self.store
  local r, err = s.scripts[name]:run(self.keys, args, s.timeout)
  if r == nil and err and err.code == "redis_error" then
    ferry.raise("internal", ("funds store %s: %s failed: %s"):format(self.tag, name, err.message))
  end
  if r == nil then
    ferry.raise("store_unavailable", ("funds store %s: %s"):format(self.tag, err and err.message or "no reply"),
      { cause = err and err.code })
  end
  return r
end

local function ms(s) return math.max(1, math.floor(s * 1000)) end

function Holds:hold(amount, owner, lease_s)
  return math.tointeger(self:_run("hold", { tostring(amount), owner, ms(lease_s) }))
end

function Holds:ahead(seq, count)
  local r = self:_run("ahead", { seq, count })
  if r[1] ~= "OK" then return nil, math.tointeger(r[2]) end
  return r[2], r[3]
end

function Holds:put(seq, amount, nonce, sent, owner, lease_s)
  self:_run("put", { seq, tostring(amount), nonce or -1, sent and 1 or 0, owner, ms(lease_s) })
end

function Holds:done(seq, sent) self:_run("done", { seq, sent and 1 or 0 }) end

function Holds:forget(owner) return math.tointeger(self:_run("forget", { owner })) end

--- state() -> {seq, last, pruned, holds = {[seq] = {amount, nonce, sent, expires, owner}}, checks}
function Holds:state()
  local r = self:_run("state", {})
  local st = { holds = {}, checks = {} }
  for i = 1, #r[1], 2 do st[r[1][i]] = math.tointeger(tonumber(r[1][i + 1])) end
  for i = 1, #r[2], 2 do
    local amount, nonce, sent, expires, owner = r[2][i + 1]:match("^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$")
    st.holds[math.tointeger(tonumber(r[2][i]))] = { amount = amount, nonce = math.tointeger(tonumber(nonce)),
      sent = sent == "1", expires = tonumber(expires), owner = owner }
  end
  for i = 1, #r[3], 2 do st.checks[math.tointeger(tonumber(r[3][i]))] = math.tointeger(tonumber(r[3][i + 1])) end
  return st
end

return M
