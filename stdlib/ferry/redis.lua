--- ferry.redis -- a Redis client that stays connected: reconnects, deadlines, scripts, keys.
---
---   local redis = require "ferry.redis"
---   local db = redis.connect(os.getenv("REDIS_URL"))          -- or {url=, timeout=, connect_timeout=}
---   db:call("SET", "k", 1)                  --> "OK"        (or nil, err)
---   db:call_within(0.5, "GET", "k")         --> "1"         (a deadline for this call only)
---   local s = db:script("return redis.call('INCR', KEYS[1])")
---   s:run({ redis.key("ferry:", "1:0xab", "n") }, {})         --> 1
---
--- URLs: redis://[[user]:password@]host[:port][/db] (REDIS_URL's forms; port 6379, db 0).
--- Every (re)connect sends AUTH and SELECT before anything else. After a drop the client
--- reconnects in the background with exponential backoff and jitter; a call made meanwhile
--- waits up to its deadline for the connection to come back, then fails `unavailable`
--- saying the address and how long it tried. A call in flight when the connection drops is
--- not sent again (it may have run): it fails `unavailable`, or `timeout` when its own
--- deadline (or another call's on the same connection) passed.
--- Replies: see ferry.core.redis (status -> text, nil -> nil, false inside arrays); an error
--- reply is nil, {code = "redis_error", message = <Redis's text, verbatim>}.
--- The password never appears in logs, errors or stats: the address is shown without it.
local ferry = require "ferry"
local core = require "ferry.core.redis"
local task = require "ferry.core.task"
local rpc = require "ferry.rpc"

local M = {}

local DEFAULTS = { timeout = 5, connect_timeout = 2, backoff_min = 0.05, backoff_max = 2 }

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- parse_url(url) -> {host, port, db, user, password, display} | raises invalid_argument.
--- display is the address as shown in errors and logs: no password, ever.
---@param url string redis://[[user]:password@]host[:port][/db]
---@return table cfg {host, port, password?, user?, db, display}
function M.parse_url(url)
  url = rpc.reveal(url)          -- config's redis.url is a hidden value
  if type(url) ~= "string" then
    ferry.raise("invalid_argument", ("redis: a URL is a string, got %s"):format(type(url)))
  end
  local rest = url:match("^redis://(.*)$")
  if not rest then
    ferry.raise("invalid_argument", ("redis: %q is not a redis://[[user]:password@]host[:port][/db] URL")
      :format(ferry.redact(url)))
  end
  local cfg = { port = 6379, db = 0 }
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  if not auth then hostpart = rest end
  if auth then
    local user, pass = auth:match("^([^:]*):(.*)$")
    if user then
      cfg.user = user ~= "" and unescape(user) or nil
      cfg.password = unescape(pass)
    else
      cfg.password = unescape(auth) -- redis://password@host: the password alone
    end
    if cfg.password == "" then cfg.password = nil end
  end
  local hostport, db = hostpart:match("^([^/]*)/?(.*)$")
  local host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$") -- [::1]:6379
  if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
  if not host or host == "" then
    ferry.raise("invalid_argument", ("redis: no host in %s"):format(ferry.redact(url)))
  end
  cfg.host = host
  if port and port ~= "" then cfg.port = tonumber(port) end
  if db and db ~= "" then
    cfg.db = math.tointeger(tonumber(db))
    if not cfg.db or cfg.db < 0 then
      ferry.raise("invalid_argument", ("redis: the db in a URL is a number (redis://host:port/2), got %q")
        :format(ferry.redact(db)))
    end
  end
  if cfg.port < 1 or cfg.port > 65535 then
    ferry.raise("invalid_argument", ("redis: port %d out of range"):format(cfg.port))
  end
  local h = host:find(":", 1, true) and ("[" .. host .. "]") or host
  cfg.display = ("redis://%s%s:%d/%d"):format(cfg.user and (cfg.user .. "@") or "", h, cfg.port, cfg.db)
  return cfg
end

--- key(prefix, tag, ...) -> prefix .. "{" .. tag .. "}" .. ":" .. part ...
--- The braces are a Redis Cluster hash tag: every key with one tag lands on one slot, so a
--- script may touch all of them (one address's keys, one provider's bucket).
---@param prefix string
---@param tag string the hash tag: every key of one script shares it
---@param ... string the rest of the key
---@return string
function M.key(prefix, tag, ...)
  if type(prefix) ~= "string" or (type(tag) ~= "string" and type(tag) ~= "number") then
    ferry.raise("invalid_argument", ("redis.key: expects (prefix: string, tag: string, ...), got (%s, %s)")
      :format(type(prefix), type(tag)))
  end
  tag = tostring(tag)
  if tag == "" or tag:find("[{}]") then
    ferry.raise("invalid_argument", ("redis.key: a tag is non-empty and has no braces, got %q"):format(tag))
  end
  local parts = { prefix, "{", tag, "}" }
  for i = 1, select("#", ...) do
    parts[#parts + 1] = ":" .. tostring((select(i, ...)))
  end
  return table.concat(parts)
end

local Client = {}
Client.__index = Client

local clients = setmetatable({}, { __mode = "k" }) -- for ferry.stats()

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)
end

-- Wake every call waiting for a connection (they look again at self.conn).
local function wake(self)
  local w = self.waiters
  self.waiters = {}
  for _, q in ipairs(w) do q:put(true) end
end

-- One attempt: connect, AUTH, SELECT, PING. -> conn | nil, err
local function dial(self)
  local cfg, t = self.cfg, self.connect_timeout
  local ip = cfg.host
  if not is_ip(ip) then
    local got, err = core.resolve(cfg.host, t)
    if not got then return nil, err end
    ip = got
  end
  local conn = core.open(ip, cfg.port, t)
  local steps = {}
  if cfg.password then
    steps[#steps + 1] = cfg.user and { "AUTH", cfg.user, cfg.password } or { "AUTH", cfg.password }
  end
  if cfg.db ~= 0 then steps[#steps + 1] = { "SELECT", cfg.db } end
  steps[#steps + 1] = { "PING" }
  for _, argv in ipairs(steps) do
    local ok, err = conn:call(t, table.unpack(argv))
    if ok == nil then
      conn:close()
      -- Redis's own AUTH errors never echo the password; keep only its first word's sentence
      if err.code == "redis_error" then err.message = ("%s: %s"):format(argv[1], err.message) end
      return nil, err
    end
  end
  return conn
end

-- The background task that brings the connection back: backoff doubles from backoff_min
-- to backoff_max with jitter (half to all of it), so many processes do not reconnect in step.
local function connector(self)
  local delay = self.backoff_min
  while not self.closed do
    self.stat.connect_attempts = self.stat.connect_attempts + 1
    local conn, err = dial(self)
    if self.closed then
      if conn then conn:close() end
      return
    end
    if conn then
      if self.stat.connects > 0 then
        ferry.log.info("redis: connected again", { address = self.cfg.display,
          after = ("%.2fs"):format(ferry.now() - (self.down_since or ferry.now())) })
      end
      self.stat.connects = self.stat.connects + 1
      self.conn, self.down_since, self.last_error, self.logged_down = conn, nil, nil, false
      self.generation = self.generation + 1
      self.connecting = nil
      wake(self)
      return
    end
    self.last_error = err and err.message or "?"
    if not self.logged_down then
      self.logged_down = true
      ferry.log.warn("redis: cannot connect, retrying with backoff", { address = self.cfg.display,
        error = self.last_error })
    end
    ferry.sleep(delay * (0.5 + math.random() / 2))
    delay = math.min(delay * 2, self.backoff_max)
  end
end

local function ensure_connector(self)
  if self.connecting or self.closed then return end
  self.down_since = self.down_since or ferry.now()
  self.connecting = task.spawn(connector, self)
  self.connecting:detach()
  self.connecting:daemon()
end

-- The connection conn failed a call with a transport error: drop it (once) and reconnect.
local function lost(self, conn, err)
  if self.conn ~= conn then return end
  self.conn = nil
  self.stat.drops = self.stat.drops + 1
  conn:close()
  ferry.log.warn("redis: connection lost", { address = self.cfg.display, error = err.message })
  ensure_connector(self)
end

local function unavailable(self, started)
  local msg = ("redis at %s unavailable: tried for %.1fs"):format(self.cfg.display, ferry.now() - started)
  if self.last_error then msg = msg .. " (last error: " .. self.last_error .. ")" end
  if self.closed then msg = ("redis at %s: client closed"):format(self.cfg.display) end
  return ferry.error("unavailable", msg, { address = self.cfg.display })
end

-- The connection, waiting for it up to deadline. -> conn | nil, err
local function connection(self, deadline, started)
  while not self.closed do
    if self.conn then return self.conn end
    ensure_connector(self)
    local left = deadline - ferry.now()
    if left <= 0 then break end
    local q = task.queue()
    self.waiters[#self.waiters + 1] = q
    q:get(left)
  end
  self.stat.unavailable = self.stat.unavailable + 1
  return nil, unavailable(self, started)
end

local function check_cmd(cmd, what)
  if type(cmd) ~= "string" or cmd == "" then
    ferry.raise("invalid_argument", ("redis %s: the command is a non-empty string, got %s"):format(what, type(cmd)))
  end
end

--- client:call_within(seconds, cmd, ...) -> reply | nil, err
---@param seconds number the deadline
---@param cmd string a Redis command
---@param ... any its arguments
---@return any|nil reply
---@return table|nil err
function Client:call_within(seconds, cmd, ...)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0 then
    ferry.raise("invalid_argument", ("redis call_within: seconds must be a number > 0, got %s"):format(tostring(seconds)))
  end
  check_cmd(cmd, "call")
  local started = ferry.now()
  local deadline = started + seconds
  local conn, err = connection(self, deadline, started)
  -- a connection that died while idle (Redis restarted, CLIENT KILL): nothing was sent on
  -- it, so wait for the next one as a call made while down does
  while conn and conn:state() == "dead" do
    lost(self, conn, { message = select(2, conn:state()) })
    conn, err = connection(self, deadline, started)
  end
  if not conn then return nil, err end
  self.stat.calls = self.stat.calls + 1
  local reply, e = conn:call(math.max(deadline - ferry.now(), 0.001), cmd, ...)
  if e then
    if e.code == "redis_error" then
      self.stat.errors = self.stat.errors + 1
    else
      if e.code == "timeout" then self.stat.timeouts = self.stat.timeouts + 1 end
      lost(self, conn, e)
      e.message = ("redis at %s: %s"):format(self.cfg.display, e.message)
      e.address = self.cfg.display
    end
    return nil, e
  end
  return reply
end

--- client:call(cmd, ...) -> reply | nil, err, within the client's timeout
---@param cmd string
---@param ... any
---@return any|nil reply
---@return table|nil err
function Client:call(cmd, ...)
  return self:call_within(self.timeout, cmd, ...)
end

--- client:connected() -> true when a connection is up now
function Client:connected() return self.conn ~= nil end

--- client:close(): drop the connection and stop reconnecting; waiting calls fail unavailable.
function Client:close()
  if self.closed then return end
  self.closed = true
  if self.conn then self.conn:close() end
  self.conn = nil
  if self.connecting then self.connecting:cancel() end
  self.connecting = nil
  wake(self)
end
Client.__close = Client.close

--- stats() -> the client's counters, its address (no password), connected, pending
---@return table
function Client:stats()
  local s = {}
  for k, v in pairs(self.stat) do s[k] = v end
  s.address = self.cfg.display
  s.connected = self.conn ~= nil
  if self.conn then
    local cs = self.conn:stats()
    s.pending = cs.pending
  end
  return s
end

local Script = {}
Script.__index = Script

--- client:script(source) -> script; script:run(keys, args[, seconds]) -> reply | nil, err
--- Runs by EVALSHA (the sha is computed here, nothing is loaded ahead); on NOSCRIPT (a
--- restarted Redis forgets its scripts) it runs once by EVAL, which loads it again.
---@param source string the Lua script
---@return Script
function Client:script(source)
  if type(source) ~= "string" or source == "" then
    ferry.raise("invalid_argument", ("redis script: expects the script's source, got %s"):format(type(source)))
  end
  return setmetatable({ client = self, source = source, sha = core.sha1(source) }, Script)
end

local function eval_args(cmd, body, keys, args)
  local argv = { cmd, body, #keys }
  for _, k in ipairs(keys) do argv[#argv + 1] = k end
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return argv
end

--- script:run(keys, args, seconds?) -> reply | nil, err (EVALSHA, EVAL after NOSCRIPT)
---@param keys? string[]
---@param args? any[]
---@param seconds? number the deadline (default the client's timeout)
---@return any|nil reply
---@return table|nil err
function Script:run(keys, args, seconds)
  keys, args = keys or {}, args or {}
  if type(keys) ~= "table" or type(args) ~= "table" then
    ferry.raise("invalid_argument", ("script:run: expects (keys: table, args: table), got (%s, %s)"):format(type(keys), type(args)))
  end
  local c = self.client
  seconds = seconds or c.timeout
  local r, err = c:call_within(seconds, table.unpack(eval_args("EVALSHA", self.sha, keys, args)))
  if err and err.code == "redis_error" and err.message:find("^NOSCRIPT") then
    c.stat.noscript = c.stat.noscript + 1
    return c:call_within(seconds, table.unpack(eval_args("EVAL", self.source, keys, args)))
  end
  return r, err
end

local function opt_number(opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v <= 0 then
    ferry.raise("invalid_argument", ("redis.connect: %s must be a number of seconds > 0, got %s"):format(name, tostring(v)))
  end
  return v
end

--- connect(url | {url=, timeout=, connect_timeout=, backoff_min=, backoff_max=}) -> client
--- url defaults to $REDIS_URL. Connecting starts now, in the background: this does not wait
--- and does not fail when Redis is down (calls do, after their deadline).
---@param opts? string|table a URL, or {url?, timeout?, connect_timeout?, backoff_min?, backoff_max?}
---@return Client
function M.connect(opts)
  if type(opts) == "string" or opts == nil then opts = { url = opts } end
  if type(opts) ~= "table" then
    ferry.raise("invalid_argument", ("redis.connect: expects a URL or an options table, got %s"):format(type(opts)))
  end
  local url = opts.url or os.getenv("REDIS_URL")
  if not url then ferry.raise("invalid_argument", "redis.connect: no URL given and REDIS_URL is not set") end
  local self = setmetatable({
    cfg = M.parse_url(url),
    timeout = opt_number(opts, "timeout", DEFAULTS.timeout),
    connect_timeout = opt_number(opts, "connect_timeout", DEFAULTS.connect_timeout),
    backoff_min = opt_number(opts, "backoff_min", DEFAULTS.backoff_min),
    backoff_max = opt_number(opts, "backoff_max", DEFAULTS.backoff_max),
    waiters = {}, generation = 0,
    stat = { calls = 0, errors = 0, timeouts = 0, unavailable = 0, drops = 0, connects = 0,
             connect_attempts = 0, noscript = 0 },
  }, Client)
  clients[self] = true
  ensure_connector(self)
  return self
end

local shared_clients = {}

--- shared(url, purpose) -> the one client of this process for that URL and purpose
--- ("ratelimit", "store"): one connection however many providers or addresses use it. One
--- per purpose because a deadline drops its connection with every call on it: the rate
--- limiter's short deadlines must not fail the store's calls.
---@param url string
---@param purpose string one connection per url and purpose
---@return Client
function M.shared(url, purpose)
  url = rpc.reveal(url)
  local key = (purpose or "") .. "\0" .. url
  local c = shared_clients[key]
  if not c or c.closed then
    c = M.connect{ url = url }
    shared_clients[key] = c
  end
  return c
end

-- ---------------------------------------------------------------------------------------
-- A shared rate limit: one budget for every process on the same Redis.
--
-- GCRA on Redis's clock, in reservation form (the same contract as ferry.core.ratelimit's
-- reserve: book now, sleep the answer, so callers are served in booking order across every
-- process). One key per provider holds its TAT, the theoretical arrival time of the next
-- request, in microseconds of Redis's TIME: a request booked at `now` may go at
-- max(now, tat - tau) and moves tat on by one interval T = 1/rate; tau = (burst - 1) * T lets
-- a burst through. Admissions in any window t stay <= rate * t + burst, whatever the number
-- of processes. penalize (a 429's Retry-After) moves tat so nothing goes before then.
-- ---------------------------------------------------------------------------------------
local GCRA = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tau, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = 0
if mode == 'penalize' then
  local untl = now + tonumber(ARGV[4]) + tau
  if untl > tat then tat = untl end
else
  wait = tat + interval * (tonumber(ARGV[4]) - 1) - tau - now
  if wait < 0 then wait = 0 end
  if mode == 'try' and wait > 0 then return -1 end
  tat = tat + interval * tonumber(ARGV[4])
end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 60000)
return wait
]]

local Limiter = {}
Limiter.__index = Limiter

--- limiter(client, {key=, rate=, burst=, fallback=, name=, timeout=}) -> a limiter with the
--- methods of ferry.core.ratelimit (reserve, try_take, penalize, tokens, stats); reserve,
--- try_take and penalize may yield. fallback is the process's own bucket: while Redis cannot
--- be reached it is used at the full rate, and that is logged once (see docs/redis.md).
---@param client Client
---@param opts table {key, rate, burst, fallback, name}
---@return Limiter
function M.limiter(client, opts)
  local rate, burst = opts.rate, opts.burst or math.max(1, opts.rate)
  if type(rate) ~= "number" or rate <= 0 or type(burst) ~= "number" or burst < 1 or type(opts.key) ~= "string" then
    ferry.raise("invalid_argument", "redis.limiter: needs key (string), rate > 0 and burst >= 1")
  end
  local interval = 1e6 / rate
  return setmetatable({
    client = client, key = opts.key, rate = rate, burst = burst, name = opts.name or opts.key,
    interval = ("%.0f"):format(interval), tau = ("%.0f"):format((burst - 1) * interval),
    fallback = opts.fallback or require("ferry.core.ratelimit").new{ rate = rate, burst = burst },
    timeout = opts.timeout or 0.25, script = client:script(GCRA),
    retry_at = 0, shared = true, last_wait = 0,
    st = { admitted = 0, waited = 0, wait_total = 0, rejected = 0, local_admitted = 0, fallbacks = 0 },
  }, Limiter)
end

-- Ask Redis. -> wait_us | nil (Redis is out of reach: use the local bucket)
function Limiter:_ask(mode, arg)
  local now = ferry.now()
  -- after a failure, go local for a second rather than spend every request's time on Redis
  if now < self.retry_at then return nil end
  -- a connection that was up and is lost: local at once (a process that is starting waits
  -- for its first connection, within the timeout)
  if not self.client:connected() and self.client.stat.connects > 0 then
    self:_lost("connection lost")
    return nil
  end
  local r, err = self.script:run({ self.key }, { self.interval, self.tau, mode, arg }, self.timeout)
  if r == nil then
    self:_lost(err and err.message or "no reply")
    return nil
  end
  if not self.shared then
    self.shared = true
    ferry.log.info("rate limit: the budget is shared again through Redis", { limiter = self.name })
  end
  return r
end

function Limiter:_lost(why)
  self.retry_at = ferry.now() + 1
  if self.shared then
    self.shared = false
    self.st.fallbacks = self.st.fallbacks + 1
    ferry.log.warn("rate limit: Redis unreachable, the budget is no longer shared: this process "
      .. "uses its own bucket at the full rate until Redis is back", { limiter = self.name, error = why })
  end
end

--- reserve(n = 1) -> seconds to wait before the n requests may go (booked now)
---@param n? integer
---@return number
function Limiter:reserve(n)
  n = n or 1
  local w = self:_ask("reserve", n)
  if w == nil then
    self.st.local_admitted = self.st.local_admitted + 1
    return self.fallback:reserve(n)
  end
  w = w / 1e6
  self.st.admitted = self.st.admitted + 1
  if w > 0 then self.st.waited, self.st.wait_total = self.st.waited + 1, self.st.wait_total + w end
  self.last_wait = w
  return w
end

--- try_take(n = 1) -> true when n tokens were taken now, false otherwise
---@param n? integer
---@return boolean
function Limiter:try_take(n)
  n = n or 1
  local w = self:_ask("try", n)
  if w == nil then return self.fallback:try_take(n) end
  if w < 0 then
    self.st.rejected = self.st.rejected + 1
    return false
  end
  self.st.admitted = self.st.admitted + 1
  return true
end

--- penalize(seconds): no request for that long (a provider said 429)
---@param seconds number
function Limiter:penalize(seconds)
  self.fallback:penalize(seconds)
  self:_ask("penalize", ("%.0f"):format(seconds * 1e6))
end

--- tokens(): an estimate without asking Redis (from the last booking's wait)
function Limiter:tokens()
  if not self.shared then return self.fallback:tokens() end
  return self.last_wait > 0 and -self.last_wait * self.rate or 1
end

--- wait_time(n) -> seconds until n tokens (the local estimate)
---@param n? integer
---@return number
function Limiter:wait_time(n) return self.fallback:wait_time(n) end

--- stats() -> counters, rate, burst, shared, tokens
---@return table
function Limiter:stats()
  local s = {}
  for k, v in pairs(self.st) do s[k] = v end
  s.rate, s.burst, s.shared, s.tokens = self.rate, self.burst, self.shared, self:tokens()
  return s
end

--- close(): stop the local bucket
function Limiter:close() self.fallback:close() end

--- stats() -> one entry per open client
function M.stats()
  local out = {}
  for c in pairs(clients) do
    if not c.closed then out[#out + 1] = c:stats() end
  end
  return out
end
ferry.register_stats("redis", M.stats)

return M
