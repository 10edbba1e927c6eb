-- ferry.core.ratelimit: token bucket with FIFO reservations (engine/prim/ratelimit_lua.c)
local ratelimit = require "ferry.core.ratelimit"

-- A hand-driven clock so every expectation is exact.
local function fake_clock(t)
  local clock = { t = t or 100 }
  function clock.now() return clock.t end
  return clock
end

describe("ferry.core.ratelimit", function()
  it("admits up to burst at once, then refuses", function()
    local clk = fake_clock()
    local rl = ratelimit.new{ rate = 10, burst = 3, clock = clk.now }
    assert.is_true(rl:try_take())
    assert.is_true(rl:try_take(2))
    assert.is_false(rl:try_take())
    local s = rl:stats()
    assert.are.equal(2, s.admitted)
    assert.are.equal(1, s.rejected)
  end)

  it("refills at rate tokens per second, capped at burst", function()
    local clk = fake_clock()
    local rl = ratelimit.new{ rate = 10, burst = 3, clock = clk.now }
    rl:try_take(3)
    clk.t = clk.t + 0.1
    assert.is_true(math.abs(rl:tokens() - 1) < 1e-9)
    clk.t = clk.t + 60
    assert.are.equal(3, rl:tokens())
  end)

  it("reserve books tokens and returns FIFO waits", function()
    local clk = fake_clock()
    local rl = ratelimit.new{ rate = 10, burst = 2, clock = clk.now }
    assert.are.equal(0, rl:reserve())
    assert.are.equal(0, rl:reserve())
    assert.is_true(math.abs(rl:reserve() - 0.1) < 1e-9)
    assert.is_true(math.abs(rl:reserve() - 0.2) < 1e-9)
    assert.is_true(rl:tokens() < 0)
    assert.is_false(rl:try_take())      -- a try_take cannot jump the queue
    local s = rl:stats()
    assert.are.equal(2, s.waited)
    assert.is_true(math.abs(s.wait_total - 0.3) < 1e-9)
  end)

  it("wait_time says how long without booking", function()
    local clk = fake_clock()
    local rl = ratelimit.new{ rate = 4, burst = 1, clock = clk.now }
    assert.are.equal(0, rl:wait_time())
    rl:try_take()
    assert.is_true(math.abs(rl:wait_time() - 0.25) < 1e-9)
    assert.is_true(math.abs(rl:wait_time() - 0.25) < 1e-9)
  end)

  it("penalize blocks everything until the time is up", function()
    local clk = fake_clock()
    local rl = ratelimit.new{ rate = 10, burst = 5, clock = clk.now }
    rl:penalize(2)
    assert.is_false(rl:try_take())
    assert.are.equal(2, rl:stats().blocked_for)
    assert.are.equal(2, rl:reserve())
    clk.t = clk.t + 2
    assert.is_true(rl:try_take())
  end)

  it("keeps admissions in any window within rate * t + burst", function()
    local clk = fake_clock(0)
    local rl = ratelimit.new{ rate = 25, burst = 5, clock = clk.now }
    local times = {}
    math.randomseed(7)
    while clk.t < 10 do
      clk.t = clk.t + (math.random() < 0.2 and 0 or math.random() * 0.03)
      if math.random() < 0.5 then
        if rl:try_take() then times[#times + 1] = clk.t end
      else
        times[#times + 1] = clk.t + rl:reserve()
      end
    end
    table.sort(times)
    for i = 1, #times do
      for j = i, #times do
        assert(j - i + 1 <= 25 * (times[j] - times[i]) + 5 + 1e-6, "window too full")
      end
    end
  end)

  it("uses the monotonic clock by default", function()
    local rl = ratelimit.new{ rate = 1, burst = 2 }
    assert.is_true(rl:try_take(2))
    assert.is_false(rl:try_take())
    assert.is_true(rl:wait_time() > 0.5)
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() ratelimit.new{ rate = 0 } end)
    assert.has_error(function() ratelimit.new{ rate = 5, burst = 0.5 } end)
    assert.has_error(function() ratelimit.new() end)
    local rl = ratelimit.new{ rate = 5, burst = 2 }
    assert.has_error(function() rl:reserve(3) end)
    assert.has_error(function() rl.try_take({}) end)
  end)

  it("closes once, through close, __close or __gc", function()
    local rl = ratelimit.new{ rate = 5 }
    assert.are.equal(5, rl:stats().burst)
    rl:close()
    rl:close()
    assert.error_matches(function() rl:try_take() end, "attempt to use a closed ferry.RateLimit", 1, true)
    do
      local scoped <close> = ratelimit.new{ rate = 1 }
      assert.matches("ferry.RateLimit", tostring(scoped))
    end
    collectgarbage()
  end)
end)
