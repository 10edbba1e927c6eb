-- ferry.core.db: SQLite off the loop thread, one job at a time, in order
local ferry = require "ferry"
local db = require "ferry.core.db"
local child = require "helpers.child"

local function fresh()
  local dir = child.tmpdir()
  return db.open(dir .. "/t.db"), dir
end

describe("ferry.core.db", function()
  it("runs statements with values in and rows out; NULL is a missing key", function()
    local c <close> = fresh()
    assert.is_true(c:ready())
    assert.same({}, (c:exec("CREATE TABLE t(k TEXT PRIMARY KEY, i INTEGER, f REAL, n TEXT, b INTEGER)")))
    local rows, changes = c:exec("INSERT INTO t VALUES(?, ?, ?, ?, ?)", "a", 7, 1.5, nil, true)
    assert.same({}, rows)
    assert.equal(1, changes)
    rows = c:exec("SELECT * FROM t")
    assert.same({ { k = "a", i = 7, f = 1.5, b = 1 } }, rows)
    assert.is_true(math.type(rows[1].i) == "integer")
  end)

  it("a failed statement is nil, err with a stable code; a batch keeps nothing of itself and names the statement", function()
    local c <close> = fresh()
    c:exec("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER)")
    c:exec("INSERT INTO t VALUES('a', 1)")
    local none, err = c:exec("INSERT INTO t VALUES('a', 2)")
    assert.is_nil(none)
    assert.equal("constraint", err.code)
    assert.matches("UNIQUE", err.message)
    local r, berr = c:batch{ { "INSERT INTO t VALUES(?, ?)", "b", 2 }, { "INSERT INTO t VALUES('a', 3)" } }
    assert.is_nil(r)
    assert.equal(2, berr.statement)
    assert.same({ { n = 1 } }, (c:exec("SELECT count(*) AS n FROM t")))
    local ok = c:batch{ { "UPDATE t SET v = v + 10" }, { "SELECT v FROM t WHERE k = ?", "a" } }
    assert.equal(1, ok[1].changes)
    assert.same({ { v = 11 } }, ok[2].rows)
    local _, serr = c:exec("SELEC nonsense")
    assert.equal("invalid_argument", serr.code)
  end)

  it("posted writes are not waited for, but nothing issued after them overtakes them", function()
    local c <close> = fresh()
    c:exec("CREATE TABLE t(i INTEGER)")
    for i = 1, 500 do c:post("INSERT INTO t VALUES(?)", i) end
    assert.equal(500, c:exec("SELECT count(*) AS n FROM t")[1].n)
    -- many tasks at once: each gets its own answer
    local tasks = {}
    for i = 1, 100 do tasks[i] = ferry.spawn(function() return c:exec("SELECT i FROM t WHERE i = ?", i)[1].i end) end
    for i = 1, 100 do
      local ok, v = tasks[i]:wait()
      assert.is_true(ok)
      assert.equal(i, v)
    end
    assert.equal(0, c:stats().queued)
  end)

  it("a database that cannot be opened fails every call with store_unavailable; bad arguments raise", function()
    local c <close> = db.open("/nonexistent-dir-ferry/x.db")
    local ok, err = c:ready()
    assert.is_nil(ok)
    assert.equal("store_unavailable", err.code)
    assert.matches("/nonexistent%-dir%-ferry/x.db", err.message)
    local good <close> = fresh()
    assert.has_error(function() good:exec("SELECT ?", {}) end)
    assert.has_error(function() good:batch{} end)
    assert.has_error(function() db.open("x", { sync = "sometimes" }) end)
  end)

  it("a write posted just before the script ends is on disk (the engine drains the queue at exit)", function()
    local dir = child.tmpdir()
    local script = child.tmpfile(([[
      local db = require "ferry.core.db"
      local c = db.open(%q)
      c:exec("CREATE TABLE t(i INTEGER)")
      c:post("INSERT INTO t VALUES(42)")
    ]]):format(dir .. "/x.db"))
    local code, _, err = child.ferry({ script })
    assert.equal(0, code, err)
    local c <close> = db.open(dir .. "/x.db")
    assert.same({ { i = 42 } }, (c:exec("SELECT i FROM t")))
    os.remove(script)
  end)
end)
