-- ferry.core.signal: signals as something a task waits on
local ferry = require "ferry"
local signal = require "ferry.core.signal"
local child = require "helpers.child"

describe("ferry.core.signal", function()
  it("wakes the waiting task, keeps an arrival nobody waited for, and times out", function()
    local w <close> = signal.watch("USR1")
    local t = ferry.spawn(function() return w:wait(5) end)
    ferry.sleep(0.01)
    signal.raise("USR1")
    local ok, name = t:wait()
    assert.is_true(ok)
    assert.equal("USR1", name)
    signal.raise("USR1")                       -- nobody waits: kept for the next wait
    ferry.sleep(0.05)
    assert.equal("USR1", w:wait(1))
    assert.equal(2, w.count)
    local none, err = w:wait(0.05)
    assert.is_nil(none)
    assert.equal("timeout", err.code)
  end)

  it("close wakes a waiter with `closed`, and a closed watcher says so", function()
    local w = signal.watch("USR2")
    local t = ferry.spawn(function() return w:wait() end)
    ferry.sleep(0.01)
    w:close()
    local _, none, err = t:wait()
    assert.is_nil(none)
    assert.equal("closed", err.code)
    local _, err2 = w:wait()
    assert.equal("closed", err2.code)
    assert.matches("closed", tostring(w))
  end)

  it("refuses an unknown name and a second waiter", function()
    local ok, err = pcall(signal.watch, "KILL")
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
    assert.matches("unknown signal 'KILL'", err.message)
    local w <close> = signal.watch("USR1")
    local t = ferry.spawn(function() return w:wait(1) end)
    ferry.sleep(0.01)
    local ok2, err2 = pcall(w.wait, w, 1)
    assert.is_false(ok2)
    assert.matches("another task", err2.message)
    t:cancel()
  end)

  it("a watcher never keeps a finished script alive, and a caught TERM does not kill", function()
    local script = child.tmpfile([[
      local signal = require "ferry.core.signal"
      local w = signal.watch("TERM")
      signal.raise("TERM")
      print("caught", w:wait(2), w.count)
      local _ = signal.watch("INT")         -- left open: the script still ends
    ]])
    local code, out, err = child.ferry({ script }, nil, 10)
    os.remove(script)
    assert.equal(0, code, err)
    assert.equal("caught\tTERM\t1\n", out)
  end)
end)
