-- ferry.core.proc: child processes read and waited on from tasks.
local ferry = require "ferry"
local proc = require "ferry.core.proc"

describe("ferry.core.proc", function()
  it("reads lines, then everything, and waits for the exit status", function()
    local p <close> = assert(proc.spawn{ "/bin/sh", "-c", "echo one; echo two; echo three; exit 3", stdout = "pipe" })
    assert.equal("one", p:read_line(5))
    assert.equal("two\nthree\n", p:read_all(5))
    assert.equal(3, p:wait(5))
    assert.is_false(p:running())
  end)

  it("closing a process a task is parked on answers that task, and its timeout later touches nothing", function()
    local p = assert(proc.spawn{ "/bin/sh", "-c", "sleep 5", stdout = "pipe" })
    local reader = ferry.spawn(function() return p:read_line(0.3) end)
    local waiter = ferry.spawn(function() return p:wait(0.3) end)
    ferry.sleep(0.05)
    p:close()
    local ok, line, err = reader:wait()
    assert.is_true(ok)
    assert.is_nil(line)
    assert.equal("closed", err.code)
    local ok2, status, err2 = waiter:wait()
    assert.is_true(ok2)
    assert.is_nil(status)
    assert.equal("closed", err2.code)
    ferry.sleep(0.4)                            -- past both timeouts: nothing fires on freed memory
    collectgarbage()
  end)
end)
