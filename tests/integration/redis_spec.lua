-- ferry.redis (and ferry.core.redis under it) against a real redis-server.
local ferry = require "ferry"
local redis = require "ferry.redis"
local core = require "ferry.core.redis"
local peers = require "helpers.peers"

-- A case whose faults log (drops, reconnects) keeps the lines to itself.
local function quietly(fn)
  return function() ferry.log.capture(fn) end
end

-- every task's results, in order
local function all(tasks)
  local out = {}
  for i, t in ipairs(tasks) do out[i] = table.pack(t:wait()) end
  return out
end

describe("ferry.redis: URLs and keys", function()
  it("reads every REDIS_URL form", function()
    local c = redis.parse_url("redis://127.0.0.1")
    assert.same({ "127.0.0.1", 6379, 0 }, { c.host, c.port, c.db })
    c = redis.parse_url("redis://:p%40ss@h:7000/3")
    assert.same({ "h", 7000, 3, "p@ss" }, { c.host, c.port, c.db, c.password })
    assert.is_nil(c.user)
    c = redis.parse_url("redis://alice:pw@h/2")
    assert.same({ "alice", "pw", 2, 6379 }, { c.user, c.password, c.db, c.port })
    c = redis.parse_url("redis://[::1]:6390")
    assert.same({ "::1", 6390 }, { c.host, c.port })
  end)

  it("never shows the password", function()
    local c = redis.parse_url("redis://alice:hunter2@h:7000/1")
    assert.equal("redis://alice@h:7000/1", c.display)
    local ok, err = pcall(redis.parse_url, "http://alice:hunter2@h")
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
    assert.is_nil(err.message:find("hunter2", 1, true))
  end)

  it("refuses what is not a URL", function()
    for _, bad in ipairs({ "redis://", "redis://h:1/x", "redis://h:99999", "h:6379" }) do
      local ok, err = pcall(redis.parse_url, bad)
      assert.is_false(ok, bad)
      assert.equal("invalid_argument", err.code, bad)
    end
  end)

  it("config: redis.url is kept hidden, shared_rate_limits is a boolean", function()
    local config = require "ferry.config"
    local cfg = config.validate({ redis = { url = "redis://:hunter2@db.example:6380/1" } }, "test")
    assert.equal("redis://db.example:6380", tostring(cfg.redis.url))
    assert.equal("db.example", redis.parse_url(cfg.redis.url).host)
    assert.equal("hunter2", redis.parse_url(cfg.redis.url).password)
    local ok, err = pcall(config.validate, { redis = { url = "http://x" } }, "test")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("redis.url", 1, true))
    ok, err = pcall(config.validate, { redis = { url = "redis://x", shared_rate_limits = "yes" } }, "test")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("shared_rate_limits", 1, true))
  end)

  it("builds hash-tagged keys", function()
    assert.equal("ferry:{1:0xab}:next", redis.key("ferry:", "1:0xab", "next"))
    assert.equal("p{t}:a:1", redis.key("p", "t", "a", 1))
    assert.equal("invalid_argument", select(2, pcall(redis.key, "p", "a{b}")).code)
  end)
end)

describe("ferry.redis against redis-server", function()
  local server, db
  setup(function() server = peers.redis() end)
  teardown(function() server:stop() end)
  before_each(function() db = redis.connect{ url = server.url, timeout = 2 } end)
  after_each(function() db:close() end)

  it("maps every kind of reply", function()
    assert.equal("OK", db:call("SET", "k", "v"))                   -- status
    assert.equal("v", db:call("GET", "k"))                        -- bulk string
    assert.equal(7, db:call("INCRBY", "n", 7))                    -- integer (numbers sent as text)
    local r, err = db:call("GET", "missing")                      -- nil: no error either
    assert.is_nil(r); assert.is_nil(err)
    assert.same({ 1, "x", false, { 2, "y" } }, db:call("EVAL", "return {1, 'x', false, {2, 'y'}}", 0))
    assert.equal("a\0b", (function() db:call("SET", "bin", "a\0b"); return db:call("GET", "bin") end)())
  end)

  it("returns Redis's errors verbatim", function()
    local r, err = db:call("NOSUCHCOMMAND", "x")
    assert.is_nil(r)
    assert.equal("redis_error", err.code)
    assert.truthy(err.message:find("^ERR unknown command 'NOSUCHCOMMAND'"))
    err = select(2, db:call("EVAL", "return redis.error_reply('NONCE_UNINIT details')", 0))
    assert.equal("NONCE_UNINIT details", err.message)
    -- an error inside an array is an error table in its place
    db:call("SET", "s", "x")
    local replies = db:call("EVAL", "return {redis.pcall('INCR', KEYS[1]), 5}", 1, "s")
    assert.equal("redis_error", replies[1].code)
    assert.equal(5, replies[2])
  end)

  it("pipelines 1,000 concurrent calls on one connection", function()
    db:call("DEL", "ctr")
    local tasks = {}
    for i = 1, 1000 do tasks[i] = ferry.spawn(function() return db:call("INCR", "ctr") end) end
    local seen = {}
    for _, r in ipairs(all(tasks)) do
      assert.is_true(r[1])
      seen[r[2]] = true
    end
    for i = 1, 1000 do assert.is_true(seen[i], i) end           -- each reply went to its own caller
    assert.equal("1000", db:call("GET", "ctr"))
    assert.equal(1, db:stats().connects)
  end)

  it("checks arguments before anything is sent", function()
    assert.equal("invalid_argument", select(2, pcall(db.call, db, {})).code)
    assert.equal("invalid_argument", select(2, pcall(db.call, db, "SET", "k", {})).code)
    assert.equal("invalid_argument", select(2, pcall(db.call_within, db, -1, "PING")).code)
  end)

  it("runs scripts by EVALSHA, by EVAL after NOSCRIPT", function()
    local s = db:script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    db:call("DEL", "sk")
    assert.equal(2, s:run({ "sk" }, { 2 }))                        -- not loaded yet: NOSCRIPT, EVAL
    assert.equal(4, s:run({ "sk" }, { 2 }))                        -- loaded by that EVAL
    assert.equal(1, db:stats().noscript)
    assert.equal(1, db:call("SCRIPT", "EXISTS", s.sha)[1])
  end)

  it("fails a stalled call with timeout within its deadline", quietly(function()
    local stalled = ferry.spawn(function() return db:call_within(3, "DEBUG", "SLEEP", "0.6") end)
    ferry.sleep(0.05)
    local t0 = ferry.now()
    local r, err = db:call_within(0.2, "PING")
    local dt = ferry.now() - t0
    assert.is_nil(r)
    assert.equal("timeout", err.code)
    assert.truthy(dt >= 0.18 and dt < 0.3, dt)
    -- the connection was dropped: the other call on it failed too, and the next one reconnects
    local ok, _, e2 = stalled:wait()
    assert.is_true(ok)
    assert.equal("timeout", e2.code)
    ferry.sleep(0.6)
    assert.equal("PONG", db:call("PING"))
  end))
end)

describe("ferry.redis: faults", function()
  local server
  setup(function() server = peers.redis() end)
  teardown(function() server:stop() end)

  it("fails calls within their deadline on a SIGSTOPped server", quietly(function()
    local db <close> = redis.connect{ url = server.url }
    assert.equal("PONG", db:call("PING"))
    server:signal("STOP")
    local _ <close> = setmetatable({}, { __close = function() server:signal("CONT") end })
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = ferry.spawn(function()
        local t0 = ferry.now()
        local r, err = db:call_within(0.5, "INCR", "x")
        return r, err, ferry.now() - t0
      end)
    end
    for _, r in ipairs(all(tasks)) do
      assert.is_nil(r[2])
      assert.equal("timeout", r[3].code)
      assert.truthy(r[4] >= 0.45 and r[4] <= 0.55, r[4])          -- the deadline, within 10%
    end
    -- while it stays frozen, a new call waits for a connection that cannot be made, then says so
    local t0 = ferry.now()
    local r, err = db:call_within(0.5, "PING")
    local dt = ferry.now() - t0
    assert.is_nil(r)
    assert.truthy(err.code == "unavailable" or err.code == "timeout", err.code)
    assert.truthy(dt >= 0.45 and dt <= 0.55, dt)
    server:signal("CONT")
    ferry.sleep(0.5)
    assert.equal("PONG", db:call("PING"))
  end))

  it("reconnects after kill -9 and a restart; scripts are loaded again", quietly(function()
    local db <close> = redis.connect{ url = server.url, timeout = 3, backoff_max = 0.2 }
    local s = db:script("return redis.call('INCR', KEYS[1])")
    assert.equal(1, s:run({ "r" }, {}))
    local noscript = db:stats().noscript
    server:signal("KILL")
    local r, err = db:call_within(0.3, "PING")
    assert.is_nil(r)
    assert.equal("unavailable", err.code)
    assert.truthy(err.message:find(server.url, 1, true) or err.message:find("127.0.0.1:" .. server.port, 1, true))
    assert.truthy(err.message:find("tried for", 1, true) or err.message:find("Server closed", 1, true)
                  or err.message:find("refused", 1, true), err.message)
    -- a call made while it is down waits for it to come back (within its deadline)
    local waiting = ferry.spawn(function() return db:call("SET", "after", "1") end)
    ferry.sleep(0.3)
    server:restart()
    local ok, reply = waiting:wait()
    assert.is_true(ok)
    assert.equal("OK", reply)
    -- the restarted server forgot the script (and the data): EVALSHA -> NOSCRIPT -> EVAL
    assert.equal(1, s:run({ "r" }, {}))
    assert.equal(noscript + 1, db:stats().noscript)
    assert.truthy(db:stats().connects >= 2)
  end))

  it("an idle connection dropped by a restart: the next call waits for the new one", quietly(function()
    local db <close> = redis.connect{ url = server.url, backoff_max = 0.1 }
    assert.equal("PONG", db:call("PING"))
    server:restart()                                               -- TERM: the server closes our socket
    ferry.sleep(0.05)
    assert.equal("PONG", db:call_within(2, "PING"))
    assert.equal(2, db:stats().connects)
  end))

  it("says unavailable, with the address and how long it tried, when nothing listens", function()
    local db <close> = redis.connect{ url = "redis://:secret@127.0.0.1:1/0", backoff_max = 0.05 }
    local text, r, err = ferry.log.capture(function() return db:call_within(0.3, "PING") end)
    assert.is_nil(r)
    assert.equal("unavailable", err.code)
    assert.equal("redis at redis://127.0.0.1:1/0 unavailable: tried for 0.3s (last error: Connection refused)",
      err.message)
    assert.is_nil(text:find("secret", 1, true))
    assert.truthy(text:find("cannot connect", 1, true))
  end)

  it("core: a connection that dies with commands pending fails them all; closing at exit is clean", function()
    local c = core.open("127.0.0.1", server.port, 1)
    local k = core.open("127.0.0.1", server.port, 1)
    assert.equal("PONG", c:call(1, "PING"))
    local tasks = {}
    for i = 1, 20 do tasks[i] = ferry.spawn(function() return c:call(5, "BLPOP", "none" .. i, 0) end) end
    ferry.sleep(0.05)
    assert.equal(1, k:call(1, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
    for _, r in ipairs(all(tasks)) do assert.equal("unavailable", r[3].code) end
    assert.equal("dead", c:state())
    assert.equal("unavailable", select(2, c:call(1, "PING")).code)
    -- a cancelled task's command is read and dropped; the connection goes on
    local t = ferry.spawn(function() return k:call(5, "DEBUG", "SLEEP", "0.1") end)
    ferry.sleep(0.01)
    t:cancel()
    assert.equal("PONG", k:call(1, "PING"))
    -- k stays open with nothing pending: the engine's shutdown closes it (ASan run: no leak)
  end)

  it("AUTH and SELECT from the URL on every (re)connect", function()
    local locked = peers.redis{ password = "s3cret" }
    local _ <close> = locked
    local text, err = ferry.log.capture(function()
      local db <close> = redis.connect{ url = locked.url .. "/5", backoff_max = 0.1 }
      assert.equal("OK", db:call("SET", "in5", "yes"))
      assert.equal(5, db:call("CLIENT", "INFO"):match("db=(%d+)") + 0)
      db:call("CLIENT", "KILL", "TYPE", "normal")                   -- drops ourselves too
      ferry.sleep(0.05)
      assert.equal("yes", db:call("GET", "in5"))                    -- back in db 5, authenticated
      local wrong <close> = redis.connect{ url = ("redis://:nope@127.0.0.1:%d"):format(locked.port), backoff_max = 0.05 }
      local r, e = wrong:call_within(0.3, "PING")
      assert.is_nil(r)
      return e
    end)
    assert.equal("unavailable", err.code)
    assert.truthy(err.message:find("WRONGPASS", 1, true), err.message)
    assert.is_nil((err.message .. text):find("nope", 1, true))
    assert.is_nil(text:find("s3cret", 1, true))
  end)
end)
