local ferry = require "ferry"

describe("ferry tasks", function()
  it("spawn runs a function and wait returns its results", function()
    local t = ferry.spawn(function(a, b) ferry.sleep(0.01) return a + b, "x" end, 2, 3)
    local ok, sum, x = t:wait()
    assert.is_true(ok)
    assert.equal(5, sum)
    assert.equal("x", x)
    assert.equal("done", t:status())
  end)

  it("wait on a failed task returns false and the error", function()
    local t = ferry.spawn(function() ferry.sleep(0) error({ code = "boom", message = "b" }) end)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.equal("boom", err.code)
  end)

  it("sleep lets other tasks run meanwhile", function()
    local order = {}
    local a = ferry.spawn(function() ferry.sleep(0.05) order[#order + 1] = "a" end)
    local b = ferry.spawn(function() ferry.sleep(0.01) order[#order + 1] = "b" end)
    a:wait(); b:wait()
    assert.same({ "b", "a" }, order)
  end)

  it("cancelling a task mid-sleep runs its <close> variables", function()
    local closed = false
    local t = ferry.spawn(function()
      local _ <close> = setmetatable({}, { __close = function() closed = true end })
      ferry.sleep(10)
    end)
    ferry.sleep(0.01)
    assert.equal("waiting", t:status())
    assert.is_true(t:cancel())
    assert.is_true(closed)
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.equal("cancelled", err.code)
  end)

  it("cancelling a parent cancels its children", function()
    local child
    local parent = ferry.spawn(function()
      child = ferry.spawn(function() ferry.sleep(10) end)
      ferry.sleep(10)
    end)
    ferry.sleep(0.01)
    parent:cancel()
    assert.equal("cancelled", child:status())
  end)

  it("a task cannot cancel itself", function()
    local t
    t = ferry.spawn(function() return pcall(function() t:cancel() end) end)
    local ok, pok, err = t:wait()
    assert.is_true(ok)
    assert.is_false(pok)
    assert.matches("cannot cancel itself", err)
  end)

  it("wait with a timeout returns nil, timeout while the task keeps running", function()
    local t = ferry.spawn(function() ferry.sleep(0.2) return 1 end)
    local ok, err = t:wait(0.02)
    assert.is_nil(ok)
    assert.equal("timeout", err.code)
    assert.same({ true, 1 }, { t:wait() })
  end)

  it("engine waits pass through user coroutines (coroutine.wrap iterators)", function()
    local function ticks(n)
      return coroutine.wrap(function()
        for i = 1, n do ferry.sleep(0.001) coroutine.yield(i) end
      end)
    end
    local got = {}
    for i in ticks(3) do got[#got + 1] = i end
    assert.same({ 1, 2, 3 }, got)
  end)

  it("engine waits inside pcall work", function()
    local ok, v = pcall(function() ferry.sleep(0.001) return 7 end)
    assert.is_true(ok)
    assert.equal(7, v)
  end)

  it("a yielding call across a C boundary raises a clear error", function()
    local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b) ferry.sleep(0) return a < b end)
    assert.is_false(ok)
    assert.matches("must be called from a task", err)
  end)

  it("uncaught errors in a task do not take the engine down, and are logged with a traceback", function()
    local t
    local logged = ferry.log.capture(function()
      t = ferry.spawn(function() error("deliberate test failure (logged)") end)
      ferry.sleep(0.01)
    end)
    assert.equal("failed", t:status())
    assert.matches("ERROR task %d+ failed: [^\n]*deliberate test failure %(logged%)\n\tstack traceback:", logged)
    assert.is_true(ferry.spawn(function() return true end):wait())
  end)

  it("ops settle exactly once: refs and pending ops return to baseline", function()
    local before = ferry.stats().tasks
    local ts = {}
    for i = 1, 50 do
      ts[i] = ferry.spawn(function() ferry.sleep(i % 2 == 0 and 0.001 or 5) end)
    end
    ferry.sleep(0.02)
    for i = 1, 50 do ts[i]:cancel() end
    local after = ferry.stats().tasks
    assert.equal(before.refs, after.refs)
    assert.equal(before.ops_pending, after.ops_pending)
    assert.equal(before.alive, after.alive)
  end)
end)

describe("ferry.register_stats", function()
  it("takes a function, or a table of counters whose copy each stats() shows; nil unregisters", function()
    local counters = { sent = 1 }
    ferry.register_stats("spec_counters", counters)
    local seen = ferry.stats().spec_counters
    counters.sent = 2
    assert.same({ sent = 1 }, seen)                       -- a copy: later counts do not change it
    assert.same({ sent = 2 }, ferry.stats().spec_counters)
    ferry.register_stats("spec_counters", function() return { n = 7 } end)
    assert.same({ n = 7 }, ferry.stats().spec_counters)
    ferry.register_stats("spec_counters", nil)
    assert.is_nil(ferry.stats().spec_counters)
    local ok, err = pcall(ferry.register_stats, "spec_counters", 5)
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
  end)
end)
