-- ferry.core.health: breaker, EWMAs and weighted round-robin (engine/prim/health_lua.c)
local health = require "ferry.core.health"

local function fake_clock(t)
  local clock = { t = t or 500 }
  function clock.now() return clock.t end
  return clock
end

local function pool(clk, extra)
  local opts = {
    providers = {
      { name = "alchemy", weight = 3, priority = 1 },
      { name = "infura", weight = 1, priority = 1 },
      { name = "backup", weight = 1, priority = 2 },
    },
    clock = clk.now,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return health.new(opts)
end

describe("ferry.core.health", function()
  it("spreads picks by weight within the best tier", function()
    local h = pool(fake_clock())
    local count = { 0, 0, 0 }
    for _ = 1, 400 do
      local i = h:pick()
      count[i] = count[i] + 1
    end
    assert.are.same({ 300, 100, 0 }, count)
  end)

  it("honours exclusions in both forms and falls back a tier", function()
    local h = pool(fake_clock())
    assert.are.equal(2, h:pick{ 1 })
    assert.are.equal(3, h:pick{ [1] = true, [2] = true })
    local i, wait = h:pick{ 1, 2, 3 }
    assert.is_nil(i)
    assert.is_nil(wait)
  end)

  it("opens after three failures, half-opens for one probe, closes on success", function()
    local clk = fake_clock()
    local h = pool(clk)
    for _ = 1, 3 do h:report(2, "timeout", 2.0) end
    assert.are.equal("open", h:state(2))
    for _ = 1, 20 do assert.are_not.equal(2, h:pick()) end
    clk.t = clk.t + 1
    assert.are.equal("half_open", h:state(2))
    assert.are.equal(2, h:pick{ 1 })           -- the one probe
    assert.are.equal(3, h:pick{ 1 })           -- no second probe: next tier
    h:report(2, "ok", 0.05)
    assert.are.equal("closed", h:state(2))
  end)

  it("doubles the cooldown when the probe fails", function()
    local clk = fake_clock()
    local h = pool(clk)
    for _ = 1, 3 do h:report(1, "refused") end
    clk.t = clk.t + 1
    assert.are.equal(1, h:pick{ 2 })
    h:report(1, "http_5xx", 0.2)
    assert.are.equal("open", h:state(1))
    assert.are.equal(2, h:status()[1].open_for)
    local i, wait = h:pick{ 2, 3 }
    assert.is_nil(i)
    assert.are.equal(2, wait)
  end)

  it("does not hold transaction errors against a provider", function()
    local h = pool(fake_clock())
    for _ = 1, 50 do h:report(1, "tx_error", 0.1) end
    local s = h:status()[1]
    assert.are.equal("closed", s.state)
    assert.are.equal(0, s.error_rate)
    assert.are.equal(0, s.failures)
  end)

  it("blocks a rate-limited provider for its Retry-After", function()
    local clk = fake_clock()
    local h = pool(clk)
    h:report(1, "rate_limited", 0.1, 5)
    for _ = 1, 10 do assert.are.equal(2, h:pick()) end
    assert.are.equal("closed", h:state(1))
    clk.t = clk.t + 5
    h:block(2, 1)
    assert.are.equal(1, h:pick())
  end)

  it("skips providers lagging more than max_lag blocks", function()
    local h = pool(fake_clock(), { max_lag = 2 })
    h:set_head(1, 1000)
    h:set_head(2, 997)
    local s = h:status()
    assert.are.equal(3, s[2].lag)
    for _ = 1, 10 do assert.are.equal(1, h:pick()) end
  end)

  it("opens at once on the wrong chain", function()
    local h = pool(fake_clock())
    h:report(3, "wrong_chain")
    assert.are.equal("open", h:state(3))
    assert.are.equal(30, h:status()[3].open_for)
  end)

  it("reports status for display", function()
    local h = pool(fake_clock())
    h:report(1, "ok", 0.1)
    local s = h:status()
    assert.are.equal(3, #s)
    assert.are.equal("alchemy", s[1].name)
    assert.are.equal("closed", s[1].state)
    assert.is_true(math.abs(s[1].latency_ms - 100) < 1e-9)
    assert.is_true(s[1].score > 0 and s[1].score <= 1)
    assert.are.equal("infura", h:name(2))
    assert.are.equal(3, #h)
  end)

  it("raises on misuse", function()
    local h = pool(fake_clock())
    assert.has_error(function() h:report(1, "weird") end)
    assert.has_error(function() h:report(4, "ok") end)
    assert.has_error(function() health.new{ providers = {} } end)
    assert.has_error(function() health.new{ providers = { { weight = -1 } } } end)
    assert.has_error(function() health.new{ providers = { {} }, alpha = 2 } end)
    h:close()
    h:close()
    assert.error_matches(function() h:pick() end, "attempt to use a closed ferry.Health", 1, true)
    do local scoped <close> = health.new{ providers = { {} } }; assert.are.equal(1, scoped:pick()) end
    collectgarbage()
  end)
end)
