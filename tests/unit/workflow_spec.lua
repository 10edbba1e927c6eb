-- ferry.workflow.parallel (stdlib/ferry/workflow.lua): bounded concurrency, input-ordered
-- results, per-item errors, stop_on_error cancellation, summary.
local ferry = require "ferry"
local workflow = require "ferry.workflow"

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local function closer(fn) return setmetatable({}, { __close = fn }) end

describe("ferry.workflow.parallel", function()
  it("never runs more than max_concurrent items at once over 10,000 items", function()
    local in_flight, max_seen = 0, 0
    local results, summary = with_timeout(60, function()
      return workflow.parallel(range(10000), { max_concurrent = 16, progress = false }, function(x, i)
        in_flight = in_flight + 1
        if in_flight > max_seen then max_seen = in_flight end
        if i % 7 == 0 then ferry.sleep(0) end
        in_flight = in_flight - 1
        return x * 2
      end)
    end)
    assert.equal(16, max_seen)
    assert.equal(16, summary.peak_in_flight)
    assert.equal(10000, #results)
    assert.equal(10000, summary.ok)
  end)

  it("returns results in input order even when items finish out of order", function()
    local finished = {}
    local results = with_timeout(30, function()
      return workflow.parallel(range(200), { max_concurrent = 16, progress = false }, function(x)
        -- early items wait longest, so completion order differs from input order
        if x <= 32 and x % 2 == 1 then ferry.sleep(0.02) elseif x % 3 == 0 then ferry.sleep(0) end
        finished[#finished + 1] = x
        return x * 10
      end)
    end)
    local in_order = true
    for i = 2, #finished do if finished[i] < finished[i - 1] then in_order = false end end
    assert.is_false(in_order, "test setup: items should have finished out of order")
    assert.equal(200, #results)
    for i = 1, 200 do
      assert.is_true(results[i].ok)
      assert.equal(i * 10, results[i].value)
    end
  end)

  it("passes each item and its index to fn", function()
    local items = { "a", "b", "c" }
    local results = workflow.parallel(items, { progress = false }, function(item, i) return item .. i end)
    assert.same({ { ok = true, value = "a1" }, { ok = true, value = "b2" }, { ok = true, value = "c3" } }, results)
  end)

  it("keeps only fn's first return value", function()
    local results = workflow.parallel({ 1 }, { progress = false }, function() return "first", "second" end)
    assert.same({ ok = true, value = "first" }, results[1])
  end)

  it("accepts fn in place of opts (default limit)", function()
    local results, summary = workflow.parallel({ 5, 6 }, function(x) return x + 1 end)
    assert.equal(6, results[1].value)
    assert.equal(7, results[2].value)
    assert.equal(2, summary.ok)
  end)

  it("limits to 16 by default", function()
    local in_flight, max_seen = 0, 0
    local _, summary = workflow.parallel(range(100), { progress = false }, function()
      in_flight = in_flight + 1
      max_seen = math.max(max_seen, in_flight)
      ferry.sleep(0)
      in_flight = in_flight - 1
    end)
    assert.equal(16, max_seen)
    assert.equal(16, summary.peak_in_flight)
  end)

  it("runs items one at a time with max_concurrent = 1", function()
    local order = {}
    local _, summary = workflow.parallel(range(10), { max_concurrent = 1, progress = false }, function(x)
      ferry.sleep(x % 2 == 0 and 0.002 or 0)
      order[#order + 1] = x
    end)
    assert.same(range(10), order)
    assert.equal(1, summary.peak_in_flight)
  end)

  it("captures errors per item as error tables and keeps going", function()
    local results, summary = workflow.parallel(range(10), { max_concurrent = 3, progress = false }, function(x)
      ferry.sleep(0)
      if x == 4 then error("boom at four") end
      if x == 7 then ferry.raise("rpc_error", "provider said no", { provider = "p1" }) end
      return x
    end)
    assert.equal(10, #results)
    assert.is_false(results[4].ok)
    assert.is_true(ferry.is_error(results[4].err))
    assert.equal("error", results[4].err.code)
    assert.matches("boom at four", results[4].err.message)
    assert.is_string(results[4].err.traceback)
    assert.is_false(results[7].ok)
    assert.equal("rpc_error", results[7].err.code)
    assert.equal("provider said no", results[7].err.message)
    assert.equal("p1", results[7].err.provider)
    for _, i in ipairs{ 1, 2, 3, 5, 6, 8, 9, 10 } do
      assert.same({ ok = true, value = i }, results[i])
    end
    assert.equal(10, summary.total)
    assert.equal(8, summary.ok)
    assert.equal(2, summary.errors)
    assert.equal(0, summary.cancelled)
  end)

  it("turns plain error tables with a code into ferry error tables", function()
    local results = workflow.parallel({ 1 }, { progress = false }, function()
      error({ code = "reverted", message = "execution reverted", reason = "nope" })
    end)
    assert.is_true(ferry.is_error(results[1].err))
    assert.equal("reverted", results[1].err.code)
    assert.equal("nope", results[1].err.reason)
    assert.equal("reverted: execution reverted", tostring(results[1].err))
  end)

  describe("stop_on_error", function()
    it("cancels in-flight items (their <close> runs) and marks unstarted ones cancelled", function()
      local started, closed, finished = {}, {}, {}
      local before = ferry.stats().tasks.alive
      local results, summary = with_timeout(10, function()
        return workflow.parallel(range(20), { max_concurrent = 4, stop_on_error = true, progress = false },
          function(x)
            started[x] = true
            local _ <close> = closer(function() closed[x] = true end)
            if x == 3 then ferry.sleep(0.01) error({ code = "boom", message = "item 3 failed" }) end
            ferry.sleep(30)
            finished[x] = true
          end)
      end)
      -- items 1, 2 and 4 were in flight when 3 failed
      assert.same({ true, true, true, true }, { started[1], started[2], started[3], started[4] })
      for x = 5, 20 do assert.is_nil(started[x], "item " .. x .. " should not start") end
      assert.is_true(closed[1]); assert.is_true(closed[2]); assert.is_true(closed[4])
      assert.is_true(closed[3])
      assert.same({}, finished)
      assert.equal("boom", results[3].err.code)
      for _, x in ipairs{ 1, 2, 4, 5, 20 } do
        assert.is_false(results[x].ok)
        assert.equal("cancelled", results[x].err.code)
      end
      assert.equal(20, summary.total)
      assert.equal(0, summary.ok)
      assert.equal(1, summary.errors)
      assert.equal(19, summary.cancelled)
      assert.equal(4, summary.peak_in_flight)
      assert.equal(before, ferry.stats().tasks.alive)
    end)

    it("keeps results of items that finished before the error", function()
      local ran = {}
      local results, summary = workflow.parallel(range(10), { max_concurrent = 1, stop_on_error = true, progress = false },
        function(x)
          ran[#ran + 1] = x
          ferry.sleep(0)
          if x == 5 then error("five") end
          return x
        end)
      assert.same({ 1, 2, 3, 4, 5 }, ran)
      for x = 1, 4 do assert.same({ ok = true, value = x }, results[x]) end
      assert.equal("error", results[5].err.code)
      for x = 6, 10 do assert.equal("cancelled", results[x].err.code) end
      assert.equal(4, summary.ok)
      assert.equal(1, summary.errors)
      assert.equal(10, summary.ok + summary.errors + summary.cancelled)
    end)

    it("without stop_on_error, later items still run after a failure", function()
      local ran = 0
      local _, summary = workflow.parallel(range(10), { max_concurrent = 2, progress = false }, function(x)
        ran = ran + 1
        if x == 1 then error("first fails") end
      end)
      assert.equal(10, ran)
      assert.equal(9, summary.ok)
      assert.equal(1, summary.errors)
    end)
  end)

  it("reports total, ok, errors, cancelled, peak_in_flight and seconds", function()
    local _, summary = workflow.parallel(range(5), { max_concurrent = 2, progress = false }, function(x)
      ferry.sleep(0)
      if x == 2 then error("x") end
    end)
    assert.equal(5, summary.total)
    assert.equal(4, summary.ok)
    assert.equal(1, summary.errors)
    assert.equal(0, summary.cancelled)
    assert.equal(2, summary.peak_in_flight)
    assert.is_number(summary.seconds)
    assert.is_true(summary.seconds >= 0)
  end)

  it("raises on an invalid max_concurrent", function()
    for _, bad in ipairs{ 0, -1, 1.5, "4", true } do
      assert.has_error(function()
        workflow.parallel({ 1 }, { max_concurrent = bad }, function() end)
      end, "workflow.parallel: max_concurrent must be an integer >= 1")
    end
  end)

  it("raises on a misspelt option instead of running at the default concurrency", function()
    local ok, err = pcall(workflow.parallel, { 1 }, { max_concurent = 2 }, function() end)
    assert.is_false(ok)
    assert.matches('workflow.parallel: unknown option "max_concurent" (did you mean "max_concurrent"?)', err, 1, true)
  end)

  it("raises when items or fn are missing", function()
    assert.has_error(function() workflow.parallel(nil, {}, function() end) end)
    assert.has_error(function() workflow.parallel({}, {}, nil) end)
  end)

  it("returns an empty list for empty input", function()
    local called = false
    local results, summary = workflow.parallel({}, { max_concurrent = 4 }, function() called = true end)
    assert.same({}, results)
    assert.is_false(called)
    assert.equal(0, summary.total)
    assert.equal(0, summary.ok)
    assert.equal(0, summary.peak_in_flight)
  end)

  it("leaves no tasks or pending ops behind", function()
    local before = ferry.stats().tasks
    workflow.parallel(range(50), { max_concurrent = 8, progress = false }, function(x)
      ferry.sleep(x % 2 == 0 and 0 or 0.001)
    end)
    local after = ferry.stats().tasks
    assert.equal(before.alive, after.alive)
    assert.equal(before.ops_pending, after.ops_pending)
    assert.equal(before.refs, after.refs)
  end)
end)
