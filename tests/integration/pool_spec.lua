-- The provider pool against real anvils behind fault proxies.
local ferry = require "ferry"
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"
local peers = require "helpers.peers"

local ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

-- a chain over the given proxies (priority 1 = the faulty one first, 2 = the good one)
local function chain_over(providers, extra)
  local spec = { chain_id = 31337, providers = providers, hedge_ms = nil,
                 breaker = { failure_threshold = 3, cooldown = 0.2, max_cooldown = 0.4 } }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return eth.connect(spec)
end

local function state(chain, i) return chain.pool.health:state(i) end

describe("provider pool: one faulty provider, one healthy", function()
  local anvil, bad, good, chain
  setup(function()
    anvil = peers.anvil()
    anvil.rpc:call("anvil_mine", { "0x10" })  -- some height, so a stale head lags
    bad = peers.proxy(anvil.url)
    good = peers.proxy(anvil.url)
  end)
  teardown(function() bad:stop(); good:stop(); anvil:stop() end)
  before_each(function()
    bad:fault{ mode = "pass" }
    chain = chain_over({
      { name = "bad", url = bad.url, priority = 1, rps = 10000, timeout = 0.3 },
      { name = "good", url = good.url, priority = 2, rps = 10000, timeout = 2 },
    })
  end)

  -- the call succeeds through "good", "bad"'s breaker opens, then closes once it recovers
  local function breaker_cycle(fault)
    assert(chain:call("eth_chainId"))                -- both verified while healthy
    bad:fault(fault)
    for _ = 1, 4 do
      local r, err = chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })
      assert.is_nil(err, tostring(err))
      assert.equal("0x21e19e0c9bab2400000", r)
    end
    assert.equal("open", state(chain, 1))
    bad:fault{ mode = "pass" }
    ferry.sleep(0.45)                                 -- past the cooldown: half-open
    for _ = 1, 3 do assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })) end
    assert.equal("closed", state(chain, 1))
  end

  it("chain:call{provider = name} prefers that provider; an unknown name is a clear error", function()
    assert(chain:call("eth_chainId"))
    good:reset_stats(); bad:reset_stats()
    for _ = 1, 3 do assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true, provider = "good" })) end
    assert.equal(3, good:stats().methods.eth_getBalance)
    assert.is_nil(bad:stats().methods.eth_getBalance)  -- "bad" has the better priority
    local ok, err = pcall(chain.call, chain, "eth_chainId", {}, { provider = "nope" })
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
    assert.matches('no provider "nope" (it has: bad, good)', err.message, 1, true)
  end)

  it("refused connections", function() breaker_cycle{ mode = "refuse" } end)
  it("a hung provider", function() breaker_cycle{ mode = "hang" } end)
  it("HTTP 500", function() breaker_cycle{ mode = "500" } end)
  it("a garbage body", function() breaker_cycle{ mode = "garbage" } end)
  it("a truncated body", function() breaker_cycle{ mode = "truncated" } end)
  it("a delay past the provider's timeout", function() breaker_cycle{ mode = "delay", ms = 1000 } end)

  it("a wrong chain id", function()
    bad:fault{ mode = "wrong_chain", chain_id = 1 }
    local r, err = chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })
    assert.is_nil(err, tostring(err))
    assert.equal("0x21e19e0c9bab2400000", r)
    assert.equal("open", state(chain, 1))
    bad:fault{ mode = "pass" }
    ferry.sleep(0.45)
    for _ = 1, 3 do assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })) end
    assert.equal("closed", state(chain, 1))
    assert.is_true(chain:pool_status()[1].verified_chain)
  end)

  it("429 with Retry-After: fail over at once, and no call before Retry-After", function()
    bad:fault{ mode = "429", retry_after = 1 }
    bad:reset_stats()
    local slowest = 0
    for _ = 1, 20 do
      local t0 = ferry.now()
      assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true }))
      slowest = math.max(slowest, ferry.now() - t0)
    end
    assert.is_true(slowest < 0.9, "failed over without waiting out the Retry-After")
    assert.equal(1, bad:stats().requests)             -- blocked for the Retry-After second
    bad:fault{ mode = "pass" }
    ferry.sleep(1.05)
    for _ = 1, 3 do assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })) end
    assert.is_true(bad:stats().requests >= 2, "used again after Retry-After")
  end)

  it("a stale head: lagging providers are not picked until they catch up", function()
    bad:fault{ mode = "stale_head", block = 1 }
    chain.pool:poll_heads()
    local st = chain:pool_status()
    assert.is_true(st[1].lag > 5, "lag " .. tostring(st[1].lag))
    bad:reset_stats()
    for _ = 1, 5 do assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })) end
    assert.equal(0, bad:stats().requests - (bad:stats().methods.eth_blockNumber or 0))
    bad:fault{ mode = "pass" }
    chain.pool:poll_heads()
    assert.is_true(chain:pool_status()[1].lag <= 5)
    bad:reset_stats()
    for _ = 1, 5 do assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })) end
    assert.is_true(bad:stats().requests > 0)
  end)

  it("errors that describe the request never count against the provider", function()
    for _ = 1, 6 do
      local r, err = chain:call("eth_call", { { to = ADDR0, data = "0x60006000fd" }, "latest" }, { fresh = true })
      local r2, err2 = chain:call("no_such_method", {}, { fresh = true })
      assert.is_nil(r2)
      assert.equal("rpc_error", err2.code)
      local _, _ = r, err
    end
    assert.equal("closed", state(chain, 1))
    assert.equal(0, chain:pool_status()[1].failures)
  end)
end)

describe("provider pool under load", function()
  local anvil
  setup(function() anvil = peers.anvil() end)
  teardown(function() anvil:stop() end)

  it("10,000 reads over dead, hung, 429-ing and healthy providers all succeed", function()
    local dead, hung, limited, healthy = peers.proxy(anvil.url), peers.proxy(anvil.url),
      peers.proxy(anvil.url), peers.proxy(anvil.url)
    local chain = chain_over({
      { name = "dead", url = dead.url, rps = 10000, timeout = 0.5 },
      { name = "hung", url = hung.url, rps = 10000, timeout = 0.5 },
      { name = "limited", url = limited.url, rps = 10000, timeout = 0.5 },
      { name = "healthy", url = healthy.url, rps = 10000, timeout = 2 },
    }, { hedge_ms = 100, breaker = { failure_threshold = 3, cooldown = 0.5, max_cooldown = 2 } })
    dead:fault{ mode = "refuse" }
    hung:fault{ mode = "hang" }
    limited:fault{ mode = "429", retry_after = 1 }
    limited:reset_stats()
    local items = {}
    for i = 1, 10000 do items[i] = i end
    local results, summary = workflow.parallel(items, { max_concurrent = 64, progress = false }, function()
      local r, err = chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true })
      if err then error(err) end
      return r
    end)
    local st = limited:stats()
    dead:stop(); hung:stop(); limited:stop(); healthy:stop()
    assert.equal(0, summary.errors, summary.errors > 0 and tostring(results[1].err) or nil)
    -- the 429-ing provider saw one request per Retry-After second at most
    local a = st.arrivals_ms
    for i = 2, #a do
      assert.is_true(a[i] - a[i - 1] >= 950, ("429 provider hit again after %.0f ms"):format(a[i] - a[i - 1]))
    end
    print(("\n    10,000 reads in %.2f s (%.0f/s); 429 provider saw %d requests"):format(
      summary.seconds, 10000 / summary.seconds, #a))
  end)

  it("a provider at 25 rps never sees more than 25 + burst in any 1 s window (10 s saturated)", function()
    local proxy = peers.proxy(anvil.url)
    local chain = chain_over({ { name = "alchemy", url = proxy.url, rps = 25, burst = 5 } })
    proxy:reset_stats()
    local stop = ferry.now() + 10
    local results = workflow.parallel({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
      { max_concurrent = 16, progress = false }, function()
        local n = 0
        while ferry.now() < stop do
          assert(chain:call("eth_getBalance", { ADDR0, "latest" }, { fresh = true, timeout = 30 }))
          n = n + 1
        end
        return n
      end)
    local st = proxy:stats(1000)
    proxy:stop()
    local total = 0
    for _, r in ipairs(results) do assert.is_true(r.ok, tostring(r.err)); total = total + r.value end
    assert.is_true(st.max_in_window <= 30, ("max %d requests in a 1 s window"):format(st.max_in_window))
    assert.is_true(total >= 240, ("saturated: only %d calls in 10 s"):format(total))
    print(("\n    %d calls in 10 s; busiest 1 s window at the proxy: %d (limit 25 + 5)"):format(total, st.max_in_window))
  end)
end)

describe("provider pool cache", function()
  local anvil, chain
  setup(function()
    anvil = peers.anvil()
    chain = chain_over({ { name = "anvil", url = anvil.url, rps = 10000 } })
  end)
  teardown(function() anvil:stop() end)

  it("a repeated-query workload reaches a hit rate above 70%", function()
    local addrs = {}
    for i = 1, 20 do addrs[i] = eth.address(("0x%040x"):format(i)) end
    for _ = 1, 50 do
      for _, a in ipairs(addrs) do assert(chain:call("eth_getBalance", { a, "latest" })) end
    end
    local s = chain:stats().cache
    assert.is_true(s.hit_rate > 0.7, "hit rate " .. s.hit_rate)
    assert.equal(980, s.hits)
  end)

  it("identical reads in flight share one upstream call", function()
    local before = chain:stats().upstream
    local ts = {}
    for i = 1, 50 do ts[i] = ferry.spawn(function() return chain:call("eth_getCode", { ADDR0, "latest" }) end) end
    for i = 1, 50 do assert.is_true((ts[i]:wait())) end
    assert.equal(1, chain:stats().upstream - before)
  end)

  it("after a reorg no stale latest answer is served", function()
    local to = eth.address("0x" .. ("ab"):rep(20))
    chain.pool:poll_heads()
    -- paid by the node's own account, not by this process (whose payments a reorg re-sends)
    assert(anvil.rpc:call("eth_sendTransaction", { { from = ADDR0, to = to, value = "0x3039" } }))
    local deadline = ferry.now() + 5
    while tonumber(anvil.rpc:call("eth_getBalance", { to, "latest" })) == 0 and ferry.now() < deadline do ferry.sleep(0.01) end
    chain.pool:poll_heads()
    assert.equal("0x3039", chain:call("eth_getBalance", { to, "latest" }))   -- cached now
    -- replace the block holding the payment with an empty one at the same height
    local _, err = anvil.rpc:call("anvil_reorg", { 1, ferry.json.array({}) })
    assert.is_nil(err)
    chain.pool:poll_heads()
    assert.equal("0x0", chain:call("eth_getBalance", { to, "latest" }))
    assert.equal(1, chain:stats().reorgs)
  end)

  it("the head tracker notices a reorg by itself and re-sends the payment it dropped", function()
    local Tx = require "ferry.eth.tx"
    local a = peers.anvil()
    local c = chain_over({ { name = "anvil", url = a.url, rps = 10000 } })
    local signer = c:signer("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    local to = eth.address("0x" .. ("cd"):rep(20))
    local tracker = c:track_heads(0.05)
    local tx = signer:send{ to = to, value = 777 }
    local rc0 = tx:wait{ timeout = 10 }
    ferry.sleep(0.2)
    assert.equal("0x309", c:call("eth_getBalance", { to, "latest" }))
    local st0 = { rebroadcast = Tx.reorg_stats.rebroadcast, remined = Tx.reorg_stats.remined }
    local logged = ferry.log.capture(function()
      local _, err = a.rpc:call("anvil_reorg", { 1, ferry.json.array({}) })
      assert.is_nil(err)
      local deadline = ferry.now() + 10
      while Tx.reorg_stats.remined == st0.remined and ferry.now() < deadline do ferry.sleep(0.05) end
    end)
    assert.equal(1, c:stats().reorgs)
    -- the same signed bytes again (never a new signature), mined in another block: paid once
    assert.equal(1, Tx.reorg_stats.rebroadcast - st0.rebroadcast)
    assert.equal(1, Tx.reorg_stats.remined - st0.remined)
    assert.truthy(logged:find("sent again", 1, true))
    local rc = a.rpc:call("eth_getTransactionReceipt", { tx.hash })
    assert.are_not.equal(rc0.blockHash, rc.blockHash)
    assert.equal("0x309", a.rpc:call("eth_getBalance", { to, "latest" }))
    c:close()                                  -- or the tracker polls a dead anvil every 50 ms
    assert.equal("cancelled", tracker:status())
    a:stop()
  end)
end)

describe("provider pool: a read pinned to one provider", function()
  it("is never answered from the cache or the in-flight read of another provider", function()
    -- two nodes of the same chain id whose states differ: ADDR1 has been paid on the second
    local a, b = peers.anvil(), peers.anvil()
    local ADDR1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert.is_nil(select(2, b.rpc:call("anvil_setBalance", { ADDR1, "0x1" })))
    local chain = chain_over({
      { name = "a", url = a.url, priority = 1, rps = 10000 },
      { name = "b", url = b.url, priority = 2, rps = 10000 },
    })
    assert.equal("0x21e19e0c9bab2400000", (chain:call("eth_getBalance", { ADDR1, "latest" })))   -- cached, from a
    assert.equal("0x1", (chain:call("eth_getBalance", { ADDR1, "latest" }, { provider = "b" })))
    assert.equal("0x1", (chain:call("eth_getBalance", { ADDR1, "latest" }, { provider = 2 })))
    -- and in flight: both at once, one pinned
    local t1 = ferry.spawn(chain.call, chain, "eth_getBalance", { ADDR1, "pending" })
    local t2 = ferry.spawn(chain.call, chain, "eth_getBalance", { ADDR1, "pending" }, { provider = "b" })
    local _, r1 = t1:wait()
    local _, r2 = t2:wait()
    assert.equal("0x21e19e0c9bab2400000", r1)
    assert.equal("0x1", r2)
    a:stop(); b:stop()
  end)
end)

describe("provider pool: a provider that never answers", function()
  local child = require "helpers.child"
  local anvil, proxy
  setup(function()
    anvil = peers.anvil()
    proxy = peers.proxy(anvil.url)
  end)
  teardown(function() proxy:stop(); anvil:stop() end)

  -- ms since the epoch of a JSON log record's ts (same day: the spec takes seconds)
  local function ms_of(ts)
    local h, m, s, ms = ts:match("T(%d+):(%d+):(%d+)%.(%d+)Z$")
    return ((tonumber(h) * 60 + tonumber(m)) * 60 + tonumber(s)) * 1000 + tonumber(ms)
  end

  -- rpc.timeout = 1 s a request, retries = 2: three attempts, 3 s in all
  it("fails at the overall timeout, naming method, provider and attempts; debug logs each attempt", function()
    proxy:fault{ mode = "hang" }
    local script = child.tmpfile(([[
      local ferry, eth = require "ferry", require "ferry.eth"
      local chain = eth.connect({ chain_id = 31337, providers = { { name = "node", url = %q, rps = 1000 } } },
                                { rpc = { timeout = 1, retries = 2 } })
      local t0 = ferry.now()
      local ok, err = pcall(chain.balance, chain, %q)
      assert(not ok)
      print(ferry.json.encode({ code = err.code, message = err.message, method = err.method,
        provider = err.provider, attempts = err.attempts, elapsed = err.elapsed, took = ferry.now() - t0 }))
    ]]):format(proxy.url .. "/v2/SECRETPATH", ADDR0))
    local code, out, err = child.ferry({ script }, { FERRY_LOG = "debug,json" })
    os.remove(script)
    proxy:fault{ mode = "pass" }
    assert.equal(0, code, err)
    local r = ferry.json.decode(out)
    assert.equal("timeout", r.code)
    assert.is_true(math.abs(r.took - 3) <= 0.3, "arrived after " .. r.took .. " s, configured 3 s")
    assert.is_true(math.abs(r.elapsed - r.took) < 0.1)
    assert.equal("eth_getBalance", r.method)
    assert.equal("node", r.provider)
    assert.equal(3, r.attempts)
    local origin = "http://127.0.0.1:" .. proxy.port
    assert.matches("eth_getBalance: no answer from node (" .. origin .. ") after 3 attempts in 3.0 s", r.message, 1, true)
    -- each attempt is logged when it ends, about a second apart; one warning while it waits
    local attempts, warns = {}, {}
    for line in err:gmatch("[^\n]+") do
      local rec = ferry.json.decode(line)
      if rec.msg == "rpc attempt" then attempts[#attempts + 1] = rec end
      if rec.level == "WARN" then warns[#warns + 1] = rec end
    end
    assert.equal(3, #attempts, err)
    for i, a in ipairs(attempts) do
      assert.equal("node", a.provider)
      assert.equal(origin, a.endpoint)
      assert.equal("timeout", a.outcome)
      assert.is_true(a.ms >= 800 and a.ms <= 1100, "attempt took " .. a.ms .. " ms")
      if i > 1 then
        local gap = ms_of(a.ts) - ms_of(attempts[i - 1].ts)
        assert.is_true(gap >= 800 and gap <= 1300, "attempts " .. gap .. " ms apart")
      end
    end
    assert.equal(1, #warns, err)
    assert.equal("still waiting", warns[1].msg)
    assert.equal("eth_getBalance", warns[1].method)
    assert.equal("node", warns[1].provider)
    assert.is_true(warns[1].waited_s >= 1.4 and warns[1].waited_s <= 1.7)
    assert.not_matches("SECRETPATH", err .. out, 1, true)
  end)

  it("when no provider can be asked (its breaker is open), the error says so and names each one's state", function()
    proxy:fault{ mode = "500" }
    local chain = eth.connect({ chain_id = 31337, providers = { { name = "node", url = proxy.url, rps = 1000 } },
                                breaker = { failure_threshold = 1, cooldown = 5 } }, { rpc = { timeout = 0.5, retries = 0 } })
    local ok, e = pcall(chain.balance, chain, ADDR0)
    assert.is_false(ok)
    assert.equal(1, e.attempts)
    ok, e = pcall(chain.balance, chain, ADDR0, "pending")
    proxy:fault{ mode = "pass" }
    assert.is_false(ok)
    assert.equal("eth_getBalance", e.method)
    assert.equal(0, e.attempts)
    assert.matches("eth_getBalance: no provider of chain adhoc could be asked in %d%.%d s "
      .. "%(node %(http://127%.0%.0%.1:%d+%): breaker open%)$", e.message)
    chain:close()
  end)
end)

describe("provider pool: a half-open breaker", function()
  it("gets its one probe from a real request: a session's choice or a backoff's look never takes it", function()
    local a = peers.anvil()
    local proxy = peers.proxy(a.url)
    local chain = chain_over({ { name = "only", url = proxy.url, rps = 10000, timeout = 1 } },
                             { breaker = { failure_threshold = 2, cooldown = 0.2, max_cooldown = 0.2 }, head_poll = 0 })
    assert(chain:call("eth_chainId"))
    proxy:fault{ mode = "500" }
    for _ = 1, 3 do chain:call("eth_blockNumber", nil, { fresh = true, timeout = 0.3 }) end
    proxy:fault{ mode = "pass" }
    local deadline = ferry.now() + 2
    while chain.pool.health:state(1) ~= "half_open" and ferry.now() < deadline do ferry.sleep(0.02) end
    assert.equal("half_open", chain.pool.health:state(1))
    -- a send's session chooses its provider now: it must not use up the probe
    local t0 = ferry.now()
    local r, err = chain.pool:session():call("eth_blockNumber", nil, { fresh = true })
    assert.is_nil(err, tostring(err))
    assert.is_not_nil(r)
    assert.is_true(ferry.now() - t0 < 1, "took " .. (ferry.now() - t0))
    assert.equal("closed", chain.pool.health:state(1))
    proxy:stop(); a:stop()
  end)
end)
