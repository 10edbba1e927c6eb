-- ferry.store.redis: the nonce allocator on a real redis-server, alone and shared by four
-- ferry processes, with Redis killed and restarted empty in the middle.
local ferry = require "ferry"
local redis = require "ferry.redis"
local peers = require "helpers.peers"
local child = require "helpers.child"
local store_redis = require "ferry.store.redis"

local ADDR = "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

describe("ferry.store.redis: one allocator", function()
  local server, client, store, a
  setup(function()
    server = peers.redis()
    client = redis.connect{ url = server.url, timeout = 2 }
  end)
  teardown(function() client:close(); server:stop() end)
  before_each(function()
    client:call("FLUSHALL")
    store = store_redis.new(client, { prefix = "t:", recover_window = 0.1 })
    a = store:nonces(1, ADDR)
  end)
  after_each(function() store:close() end)

  it("keeps one address's keys under one hash tag", function()
    a:reserve(0, "me", 10)
    a:reserve(0, "me", 10)
    a:release(0)
    a:lease("me", 10)
    local keys = client:call("KEYS", "*")
    assert.equal(4, #keys)                                         -- meta, free, res, lease
    for _, k in ipairs(keys) do assert.truthy(k:find("^t:{1:" .. ADDR:lower() .. "}:"), k) end
  end)

  it("reserves from the floor, hands freed nonces out first, shrinks next on release", function()
    assert.equal(5, a:reserve(5, "me", 10))                       -- a fresh address starts at the floor
    assert.equal(6, a:reserve(0, "me", 10))
    assert.equal(7, a:reserve(0, "me", 10))
    a:release(6)
    assert.same({ next = 8, free = { 6 }, reserved = { [5] = "me", [7] = "me" }, recovering = false }, a:state())
    a:release(7)                                                   -- 7 and then 6 touch next: next = 6
    assert.same({ next = 6, free = {}, reserved = { [5] = "me" }, recovering = false }, a:state())
    assert.equal(6, a:reserve(0, "me", 10))
    a:settle(5)
    a:release(6)
    assert.same({ next = 6, free = {}, reserved = {}, recovering = false }, a:state())
  end)

  it("drops free nonces below the floor; raise moves next", function()
    for _ = 1, 4 do a:reserve(0, "me", 10) end                       -- 0..3
    a:release(1); a:release(2)
    assert.equal(2, a:reserve(2, "me", 10))                        -- 1 is below the floor: gone
    assert.same({}, a:state().free)
    a:raise(10)
    assert.equal(10, a:state().next)
    assert.equal(10, a:reserve(0, "me", 10))
    a:release(3)
    a:raise(4)                                                     -- drops 3 from free
    assert.same({}, a:state().free)
  end)

  it("reclaims reservations whose lease passed", function()
    assert.equal(0, a:reserve(0, "dead", 0.05))
    assert.equal(1, a:reserve(0, "alive", 30))
    assert.same({}, a:reclaim())
    ferry.sleep(0.1)
    assert.same({ 0 }, a:reclaim())
    assert.same({ next = 2, free = { 0 }, reserved = { [1] = "alive" }, recovering = false }, a:state())
    assert.equal(0, a:reserve(0, "alive", 30))
  end)

  it("leases an address to one owner; the token moves only with a new holder", function()
    local ok, token, expires = a:lease("p1", 0.2)
    assert.is_true(ok)
    assert.truthy(token > 0 and expires > 0)
    local ok2, holder, left = a:lease("p2", 0.2)
    assert.is_false(ok2)
    assert.equal("p1", holder)
    assert.truthy(left > 0 and left <= 0.2, left)
    local ok3, token3 = a:lease("p1", 0.2)                         -- renewed by its holder
    assert.is_true(ok3)
    assert.equal(token, token3)
    ferry.sleep(0.25)
    -- expired without being given back: p1 fell silent and may have sent alone; the chain's
    -- pending count must be read (fresh_floor) before anyone takes it or gets a nonce
    local no, who, _, why = a:lease("p2", 0.2)
    assert.same({ false, "p1", "floor" }, { no, who, why })
    a:fresh_floor(0)
    local ok4, token4 = a:lease("p2", 0.2)                         -- a new holder
    assert.is_true(ok4)
    assert.truthy(token4 > token)
    client:call("FLUSHALL")                                        -- even a Redis that forgot it
    local ok5, token5 = a:lease("p3", 0.2)
    assert.is_true(ok5)
    assert.truthy(token5 > token4)
  end)

  it("after Redis lost everything, live reservations are registered again and nothing is handed out twice",
    function()
    local text = ferry.log.capture(function()
      for _ = 1, 6 do a:reserve(0, "me", 30) end                     -- 0..5
      a:settle(0); a:settle(1); a:settle(3)                          -- 3: broadcast past a gap (2 in flight)
      client:call("FLUSHALL")                                        -- Redis restarted empty
      -- the chain's pending count is 2 (0 and 1 mined); 2, 4 and 5 are still held here, 3 is out
      local n = a:reserve(2, "me", 30)
      assert.equal(6, n)
      assert.same({ [2] = "me", [4] = "me", [5] = "me", [6] = "me" }, a:state().reserved)
    end)
    assert.truthy(text:find("registered again", 1, true))
  end)

  it("a reservation whose owner died in the restart is handed out again once the window closes", function()
    local other_store = store_redis.new(client, { prefix = "t:", recover_window = 0.1 })
    local _ <close> = setmetatable({}, { __close = function() other_store:close() end })
    local other = other_store:nonces(1, ADDR)
    for _ = 1, 3 do a:reserve(0, "me", 30) end                       -- 0 1 2
    assert.equal(3, other:reserve(0, "other", 30))
    assert.equal(4, a:reserve(0, "me", 30))
    ferry.log.capture(function()
      other_store:close()                                          -- "other" dies...
      client:call("FLUSHALL")                                      -- ...and Redis restarts empty
      -- "other" died with 3: a re-registers 0 1 2 4; 3 is free once the window is sealed
      assert.equal(3, a:reserve(0, "me", 30))
      assert.equal(5, a:reserve(0, "me", 30))
    end)
  end)

  it("sends a process's concurrent reserves together; a cancelled caller's nonce is given back", function()
    -- a fresh address: the first reserve waits out the window, so this one is still waiting
    local t = ferry.spawn(function() return a:reserve(0, "me", 30) end)
    ferry.sleep(0.03)
    t:cancel()
    local tasks = {}
    for i = 1, 100 do tasks[i] = ferry.spawn(function() return a:reserve(0, "me", 30) end) end
    local seen = {}
    for _, task in ipairs(tasks) do
      local ok, n = task:wait()
      assert.is_true(ok)
      assert.is_nil(seen[n])
      seen[n] = true
    end
    ferry.sleep(0.05)                                              -- the cancelled one's release
    local st = a:state()
    local held = 0
    for n in pairs(st.reserved) do
      assert.is_true(seen[n])
      held = held + 1
    end
    assert.equal(100, held)
    assert.truthy(st.next == 100 or (st.next == 101 and #st.free == 1), ferry.json.encode(st))
    assert.truthy(store:stats().batches < 100)
  end)

  it("raises store_unavailable when Redis cannot be reached", function()
    local dead = redis.connect{ url = "redis://127.0.0.1:1", timeout = 0.2 }
    local s = store_redis.new(dead, { prefix = "t:" })
    local a2 = s:nonces(1, ADDR)
    local _, ok, err = ferry.log.capture(function() return pcall(a2.reserve, a2, 0, "me", 1) end)
    assert.is_false(ok)
    dead:close()
    assert.equal("store_unavailable", err.code)
  end)
end)

-- One process: `workers` tasks reserve N nonces in all, "sign" for a few ms, "broadcast"
-- (SADD to the chain stand-in, which must never see a nonce twice) and settle. The floor is
-- the stand-in's pending count: its contiguous run of broadcast nonces, as a node counts them.
-- The stand-in is a second redis-server that is never killed. Prints the nonces as JSON.
local WORKER = [[
local ferry = require "ferry"
local redis = require "ferry.redis"
local store = require("ferry.store.redis").new(redis.connect{ url = os.getenv("STORE"), timeout = 1 },
  { prefix = "n:", recover_window = tonumber(os.getenv("WINDOW")) })
local chain = redis.connect{ url = os.getenv("CHAIN") }
local pending = chain:script([=[
local p = tonumber(redis.call('GET', KEYS[1]) or '0')
while redis.call('SISMEMBER', KEYS[2], p) == 1 do p = p + 1 end
redis.call('SET', KEYS[1], p)
return p]=])
local a = store:nonces(31337, "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
local owner, left, sign_ms = os.getenv("OWNER"), tonumber(os.getenv("N")), tonumber(os.getenv("SIGN_MS"))
local got, dup, retries = {}, 0, 0
local tasks = {}
for i = 1, tonumber(os.getenv("INFLIGHT")) do
  tasks[i] = ferry.spawn(function()
    while left > 0 do
      left = left - 1
      while true do
        local floor = assert(pending:run({ "pending", "sent" }, {}))
        local ok, n = pcall(a.reserve, a, floor, owner, 30)
        if ok then
          ferry.sleep(math.random() * sign_ms / 1000)
          if chain:call("SADD", "sent", n) == 0 then dup = dup + 1 end
          while not pcall(a.settle, a, n) do retries = retries + 1; ferry.sleep(0.05) end
          got[#got + 1] = n
          break
        end
        assert(n.code == "store_unavailable", tostring(n))
        retries = retries + 1
        ferry.sleep(0.05)
      end
    end
  end)
end
for _, t in ipairs(tasks) do assert(t:wait()) end
print(ferry.json.encode({ nonces = got, dup = dup, retries = retries, stats = store:stats() }))
]]

describe("ferry.store.redis: sending alone while Redis is out of reach", function()
  -- short times, the same rules: see "Sending alone" in ferry.store.redis
  local TIMES = { heartbeat = 0.02, fence = 0.15, drain = 0.05, lease_ttl = 1, margin = 0.1, idle = 5 }
  local server, tcp, ca, cb, sa, sb, a, b, sent
  setup(function()
    server = peers.redis()
    tcp = peers.tcp_proxy("127.0.0.1:" .. server.port)
  end)
  teardown(function() tcp:stop(); server:stop() end)

  -- the chain as the allocators see it: its pending count is the run of broadcast nonces from 0
  local function pending()
    local n = 0
    while sent[n] do n = n + 1 end
    return n
  end
  local function broadcast(alloc, n)
    assert.is_nil(sent[n], "nonce " .. n .. " used twice")
    sent[n] = true
    -- as ferry.nonces does, not waited for: it fails while Redis is out of reach (the rejoin
    -- registers the nonce later)
    ferry.spawn(pcall, alloc.settle, alloc, n):detach()
  end
  -- what ferry.nonces does: alone when allowed, else through Redis, waiting while unreachable
  local function take(alloc, owner, timeout)
    local deadline = ferry.now() + (timeout or 10)
    while ferry.now() < deadline do
      local n = alloc:alone(30)
      if n then return n, "alone" end
      local ok, r = pcall(alloc.reserve, alloc, pending(), owner, 30)
      if ok then return r, "redis" end
      assert.equal("store_unavailable", r.code, tostring(r))
      ferry.sleep(0.01)
    end
    error("no nonce within " .. tostring(timeout or 10) .. "s")
  end

  before_each(function()
    sent = {}
    -- process A reaches Redis through the proxy (the spec cuts that link: a partition), B directly
    ca = redis.connect{ url = "redis://127.0.0.1:" .. tcp.port, timeout = 0.2, connect_timeout = 0.2 }
    cb = redis.connect{ url = server.url, timeout = 0.2 }
    cb:call("FLUSHALL")
    local opts = { prefix = "t:", recover_window = 0.05, timeout = 0.2, times = TIMES }
    opts.process = "A"
    sa = store_redis.new(ca, opts)
    opts.process = "B"
    sb = store_redis.new(cb, opts)
    a, b = sa:nonces(1, ADDR), sb:nonces(1, ADDR)
    for i = 1, 5 do broadcast(a, take(a, "A#" .. i)) end           -- 0..4, through Redis
    a:hold_lease(pending)                                          -- A sends: it holds the lease
    ferry.sleep(0.1)
    b:hold_lease(pending)
    for i = 1, 2 do broadcast(b, take(b, "B#" .. i)) end           -- 5, 6
  end)
  after_each(function()
    tcp:set("pass")
    sa:close(); sb:close(); ca:close(); cb:close()
  end)

  it("a partition: the holder goes on alone, the other waits, and once healed nothing is handed out twice",
    function()
    local text = ferry.log.capture(function()
      tcp:set("hang")
      local waiting = ferry.spawn(function()                       -- B, meanwhile: fenced
        ferry.sleep(TIMES.fence + 0.05)
        return take(b, "B#3", 20)
      end)
      local got = {}
      for i = 1, 3 do
        local n, how = take(a, "A#alone" .. i)
        assert.equal("alone", how)
        got[i] = n
        broadcast(a, n)
      end
      assert.same({ 7, 8, 9 }, got)
      ferry.sleep(0.2)
      assert.equal("waiting", waiting:status(), "B got a nonce while A was sending alone")
      tcp:set("pass")
      local ok, n = waiting:wait()
      assert.is_true(ok, tostring(n))
      assert.equal(10, n)                                          -- above what A used alone
      broadcast(b, n)
      local n2, how = take(a, "A#after")
      assert.equal("redis", how)
      assert.equal(11, n2)
    end)
    assert.truthy(text:find("goes on sending from it alone", 1, true), text)
    assert.truthy(text:find("may be sending alone", 1, true), text)
    assert.truthy(text:find("what was sent alone is registered", 1, true), text)
    assert.equal(3, sa:stats().alone)
    assert.equal(1, sb:stats().fenced_waits)
    assert.equal(0, sa:stats().conflicts)
  end)

  it("the lease runs out in the partition: the holder stops, the other goes on above the chain's count",
    function()
    ferry.log.capture(function()
      tcp:set("hang")
      local n = take(a, "A#alone")
      assert.equal(7, n)
      broadcast(a, n)
      -- the lease held here ends margin before Redis's: alone no more, waiting like anyone
      local deadline = ferry.now() + 3
      while not (a:why_not_alone() or ""):find("ran out", 1, true) do
        assert.truthy(ferry.now() < deadline, a:why_not_alone())
        ferry.sleep(0.05)
      end
      local n2 = take(b, "B#3", 5)                                 -- fenced, then the chain read
      assert.equal(8, n2)
      broadcast(b, n2)
      tcp:set("pass")
      local n3, how = take(a, "A#after")
      assert.equal("redis", how)
      assert.equal(9, n3)
    end)
    assert.equal(0, sa:stats().conflicts)
  end)
end)

describe("ferry.store.redis: four processes, one address", function()
  local store_server, chain_server, chain
  setup(function()
    store_server = peers.redis()
    chain_server = peers.redis()
    chain = redis.connect{ url = chain_server.url }
  end)
  teardown(function() chain:close(); store_server:stop(); chain_server:stop() end)

  -- four children x 250 reserves at 64 in flight; during(): what to do meanwhile
  local function run(sign_ms, during)
    chain:call("FLUSHALL")
    local script = child.tmpfile(WORKER)
    local _ <close> = setmetatable({}, { __close = function() os.remove(script) end })
    local procs = {}
    for i = 1, 4 do
      procs[i] = ferry.spawn(function()
        return child.ferry({ script }, { STORE = store_server.url, CHAIN = chain_server.url, OWNER = "p" .. i,
          N = "250", INFLIGHT = "64", SIGN_MS = tostring(sign_ms), WINDOW = "1" }, 90)
      end)
    end
    if during then during() end
    local seen, reports = {}, {}
    for i, t in ipairs(procs) do
      local ok, code, out, err = t:wait()
      assert.is_true(ok)
      assert.equal(0, code, err)
      local r = ferry.json.decode(out:match("([^\n]+)\n?$"))
      reports[i] = r
      assert.equal(250, #r.nonces)
      assert.equal(0, r.dup)
      for _, n in ipairs(r.nonces) do
        assert.is_nil(seen[n], "nonce handed out twice: " .. n)
        seen[n] = true
      end
    end
    for n = 0, 999 do assert.is_true(seen[n], "nonce never handed out: " .. n) end
    assert.equal(1000, chain:call("SCARD", "sent"))
    return reports
  end

  it("1,000 distinct contiguous nonces (4 x 250, 64 in flight each)", function()
    store_server:restart()
    local t0 = ferry.now()
    run(5)
    print(("\n    4 processes x 250 reserves, 64 in flight: nonces 0..999 once each (%.2fs with the 1 s window)")
      :format(ferry.now() - t0))
  end)

  it("the same with Redis kill -9'd and restarted empty mid-way", function()
    store_server:restart()
    local killed_at
    local reports = run(40, function()
      -- wait until a good part is broadcast, then kill the store's Redis and restart it empty
      while (chain:call("SCARD", "sent") or 0) < 300 do ferry.sleep(0.01) end
      store_server:signal("KILL")
      killed_at = chain:call("SCARD", "sent")
      store_server:restart()
    end)
    local retries, rereg, recoveries = 0, 0, 0
    for _, r in ipairs(reports) do
      retries = retries + r.retries
      rereg = rereg + r.stats.reregistered
      recoveries = recoveries + r.stats.recoveries
    end
    print(("\n    kill -9 after %d broadcasts: 0..999 once each; %d calls retried, %d reservations "
      .. "registered again by %d owners"):format(killed_at, retries, rereg, recoveries))
    assert.truthy(recoveries >= 1)
  end)
end)
