-- The pool's shared rate limit: one budget for every process on one Redis, counted where it
-- matters, at the provider (the fault proxy records every arrival).
local ferry = require "ferry"
local eth = require "ferry.eth"
local peers = require "helpers.peers"
local child = require "helpers.child"

-- One process hammering one provider through its pool for `seconds`, with `workers` calls
-- always waiting on the limiter. Prints its limiter's stats as JSON on its last line.
local HAMMER = [[
local ferry = require "ferry"
local eth = require "ferry.eth"
local seconds, workers = tonumber(os.getenv("SECONDS_")), tonumber(os.getenv("WORKERS"))
local chain = eth.connect({ chain_id = 31337, providers = { { name = "p", url = os.getenv("PROVIDER"), rps = 25, burst = 1,
  timeout = 20 } } }, { redis = { url = os.getenv("REDIS"), prefix = os.getenv("PREFIX") }, rpc = { timeout = 20 } })
local stop_at = ferry.now() + seconds
local calls, failed = 0, 0
local tasks = {}
for i = 1, workers do
  tasks[i] = ferry.spawn(function()
    while ferry.now() < stop_at do
      local _, err = chain:call("eth_blockNumber", {}, { fresh = true })
      if err then failed = failed + 1 else calls = calls + 1 end
    end
  end)
end
for _, t in ipairs(tasks) do t:wait() end
local st = chain.pool.providers[1].limiter:stats()
print(ferry.json.encode({ calls = calls, failed = failed, shared = st.shared, fallbacks = st.fallbacks,
                          admitted = st.admitted }))
]]

describe("shared rate limit through Redis", function()
  local anvil, proxy, server
  setup(function()
    anvil = peers.anvil()
    proxy = peers.proxy(anvil.url)
    server = peers.redis()
  end)
  teardown(function()
    proxy:stop(); anvil:stop(); server:stop()
  end)

  it("four processes sharing 25 rps are admitted at 25 rps +-2% at the provider over 10 s", function()
    local script = child.tmpfile(HAMMER)
    local _ <close> = setmetatable({}, { __close = function() os.remove(script) end })
    proxy:reset_stats()
    local env = { PROVIDER = proxy.url, REDIS = server.url, PREFIX = "rl-test:", SECONDS_ = "13", WORKERS = "8" }
    local procs = {}
    for i = 1, 4 do
      procs[i] = ferry.spawn(function()
        local e = {}
        for k, v in pairs(env) do e[k] = v end
        return child.ferry({ script }, e, 60)
      end)
    end
    local reports = {}
    for i, t in ipairs(procs) do
      local ok, code, out, err = t:wait()
      assert.is_true(ok)
      assert.equal(0, code, err)
      reports[i] = ferry.json.decode(out:match("([^\n]+)\n?$"))
      assert.is_true(reports[i].shared, out)               -- never fell back to its own bucket
      assert.equal(0, reports[i].fallbacks)
      assert.equal(0, reports[i].failed)
      assert.truthy(reports[i].calls > 20, out)            -- every process got its share
    end
    -- count at the provider, over 10 s of the steady state (1 s after the first arrival, when
    -- all four run; they run 13 s)
    local arrivals = proxy:stats().arrivals_ms
    table.sort(arrivals)
    local from = arrivals[1] + 1000
    local n = 0
    for _, a in ipairs(arrivals) do
      if a >= from and a < from + 10000 then n = n + 1 end
    end
    local rate = n / 10
    print(("\n    4 processes, one 25 rps budget: %d arrivals at the provider in 10 s = %.1f rps "
      .. "(%d calls in all: %d, %d, %d, %d)"):format(n, rate, #arrivals,
      reports[1].calls, reports[2].calls, reports[3].calls, reports[4].calls))
    assert.truthy(rate >= 24.5 and rate <= 25.5, ("%.2f rps"):format(rate))
  end)

  it("falls back to the process's own bucket while Redis is down, and says so once", function()
    local chain = eth.connect({ chain_id = 31337, providers = { { name = "q", url = proxy.url, rps = 50, burst = 1 } } },
      { redis = { url = server.url, prefix = "rl-test2:" } })
    local lim = chain.pool.providers[1].limiter
    assert.truthy(chain:call("eth_blockNumber", {}, { fresh = true }))
    assert.is_true(lim:stats().shared)
    local text = ferry.log.capture(function()
      server:signal("KILL")
      for _ = 1, 5 do assert.truthy(chain:call("eth_blockNumber", {}, { fresh = true })) end
      assert.is_false(lim:stats().shared)
      server:restart()
      ferry.sleep(1.2)                                          -- past the 1 s before asking Redis again
      for _ = 1, 3 do assert.truthy(chain:call("eth_blockNumber", {}, { fresh = true })) end
    end)
    assert.is_true(lim:stats().shared)
    assert.equal(1, lim:stats().fallbacks)
    local _, warned = text:gsub("no longer shared", "")
    assert.equal(1, warned)
    assert.truthy(text:find("shared again", 1, true))
  end)

  it("is off with shared_rate_limits = false", function()
    local chain = eth.connect({ chain_id = 31337, providers = { { name = "r", url = proxy.url, rps = 50 } } },
      { redis = { url = server.url, shared_rate_limits = false } })
    assert.is_nil(chain.pool.providers[1].limiter.client)
  end)
end)
