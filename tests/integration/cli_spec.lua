-- The ferry binary as a child process (engine/main.c, stdlib/ferry/boot.lua, engine/core/log.c):
-- options, arg, stdin scripts, exit codes, os.exit shutdown, task failures, logging.
local json = require "ferry.core.json"

local child = require "helpers.child"
local ferry_run, sh = child.ferry, child.sh

local tmpfile = child.tmpfile

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("ferry CLI", function()
  it("--help prints usage and exits 0", function()
    local code, out, err = ferry_run({ "--help" })
    assert.equal(0, code)
    assert.matches("^usage: ferry %[options%] %[script%.lua %[args%.%.%.%]%]\n", out)
    assert.matches("--config FILE", out, 1, true)
    assert.equal("", err)
  end)

  it("-v prints the version and exits 0", function()
    local code, out = ferry_run({ "-v" })
    assert.equal(0, code)
    assert.matches("^ferry %d+%.%d+%.%d+ %(Lua 5%.4%.%d+%)\n$", out)
  end)

  it("-e runs a string", function()
    local code, out, err = ferry_run({ "-e", "print(1+1)" })
    assert.equal(0, code, err)
    assert.equal("2\n", out)
  end)

  it("several -e run in order before the script", function()
    local script <close> = setmetatable({ path = tmpfile("print('script', x)\n") },
      { __close = function(s) os.remove(s.path) end })
    local code, out, err = ferry_run({ "-e", "x = 1", "-e", "x = x + 1 print('e', x)", script.path })
    assert.equal(0, code, err)
    assert.equal("e\t2\nscript\t2\n", out)
  end)

  it("runs a script file with arg[0], arg[1..] and ... set", function()
    local path = tmpfile("print(arg[0], arg[1], arg[2], #arg, select('#', ...), ...)\n")
    local code, out, err = ferry_run({ path, "alpha", "b c" })
    os.remove(path)
    assert.equal(0, code, err)
    assert.equal(path .. "\talpha\tb c\t2\t2\talpha\tb c\n", out)
  end)

  it("puts ferry and options before the script at negative arg indices", function()
    local path = tmpfile("print(arg[-1], arg[-2], arg[1])\n")
    local code, out, err = ferry_run({ "-e", "x=1", path, "z" })
    os.remove(path)
    assert.equal(0, code, err)
    assert.equal("x=1\t-e\tz\n", out)
  end)

  it("'-' runs the script read from stdin, with arguments", function()
    local code, out, err = sh([[printf 'print("from stdin", arg[0], ...)\n' | ./ferry - one two]])
    assert.equal(0, code, err)
    assert.equal("from stdin\t-\tone\ttwo\n", out)
  end)

  it("'-' reports a syntax error in stdin as =stdin and exits 1", function()
    local code, out, err = sh([[printf 'print(' | ./ferry -]])
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry: stdin:1: ", err)
  end)

  it("an uncaught error exits 1 with the message and a traceback on stderr", function()
    local path = tmpfile("local function inner() error('kaboom') end\nlocal function outer() inner() end\nouter()\n")
    local code, out, err = ferry_run({ path })
    os.remove(path)
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry: " .. path:gsub("%p", "%%%0") .. ":1: kaboom\nstack traceback:\n", err)
    assert.matches(":1: in upvalue 'inner'", err, 1, true)
    assert.matches(":2: in local 'outer'", err, 1, true)
    assert.matches(":3: in main chunk", err, 1, true)
  end)

  -- An error table is an expected failure (a timeout, a revert), not a bug in the engine: one
  -- line at the script's own line, no traceback of boot.lua and the stdlib (issue 14; this
  -- used to print the whole traceback). FERRY_TRACE=1 brings it back.
  it("an uncaught error table is one line: the script's file:line, code: message", function()
    local path = tmpfile("local ferry = require 'ferry'\nlocal function slow() ferry.raise('timeout', 'too slow') end\nslow()\n")
    local code, out, err = ferry_run({ path })
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ferry: " .. path .. ":2: timeout: too slow\n", err)
    -- raised inside the stdlib: the line is the script's call into it
    local _, _, err2 = ferry_run({ "-e", [[require("ferry.eth").address("nope")]] })
    assert.matches("^ferry: %(command line%):1: invalid_argument: [^\n]*\n$", err2)
    code, _, err = ferry_run({ path }, { FERRY_TRACE = "1" })
    os.remove(path)
    assert.equal(1, code)
    assert.matches("^ferry: timeout: too slow\nstack traceback:\n", err)
    assert.matches("boot.lua", err, 1, true)
  end)

  it("a missing script exits 1 naming the file", function()
    local code, _, err = ferry_run({ "/nonexistent/ferry-script.lua" })
    assert.equal(1, code)
    assert.matches("^ferry: cannot open /nonexistent/ferry%-script%.lua[^\n]*\n$", err)   -- and no traceback
  end)

  it("os.exit(3) exits 3 and runs the <close> variables of other tasks", function()
    local code, out, err = ferry_run({ "-e", [[
      local ferry = require "ferry"
      local armed = false
      ferry.spawn(function()
        local guard <close> = setmetatable({}, { __close = function() print("closed by shutdown") end })
        armed = true
        ferry.sleep(60)
      end)
      while not armed do ferry.sleep(0.001) end
      print("exiting")
      os.exit(3)
      print("not reached")]] })
    assert.equal(3, code, err)
    assert.equal("exiting\nclosed by shutdown\n", out)
  end)

  it("os.exit from a spawned task ends the whole script", function()
    local code, out, err = ferry_run({ "-e", [[
      local ferry = require "ferry"
      ferry.spawn(function() ferry.sleep(0.01) os.exit(4) end)
      ferry.sleep(60)
      print("not reached")]] })
    assert.equal(4, code, err)
    assert.equal("", out)
  end)

  it("os.exit(true) and os.exit(false) map to 0 and 1", function()
    assert.equal(0, (ferry_run({ "-e", "os.exit(true)" })))
    assert.equal(1, (ferry_run({ "-e", "os.exit(false)" })))
  end)

  it("a spawned task that fails logs an ERROR with a traceback, and the script still exits 0", function()
    local code, out, err = ferry_run({ "-e", [[
      local ferry = require "ferry"
      local t = ferry.spawn(function() ferry.sleep(0.001) error("background boom") end)
      while t:status() ~= "failed" do ferry.sleep(0.001) end
      print("main done")]] })
    assert.equal(0, code, err)
    assert.equal("main done\n", out)
    assert.matches("ERROR task %d+ failed: %(command line%):2: background boom\n\tstack traceback:\n", err)
  end)

  it("the main chunk can call ferry.sleep at top level", function()
    local path = tmpfile([[
      local ferry = require "ferry"
      local t0 = ferry.now()
      ferry.sleep(0.02)
      print("slept", ferry.now() - t0 >= 0.015)
    ]])
    local code, out, err = ferry_run({ path })
    os.remove(path)
    assert.equal(0, code, err)
    assert.equal("slept\ttrue\n", out)
  end)

  it("the engine waits for spawned tasks after the main chunk returns", function()
    local code, out, err = ferry_run({ "-e", [[
      local ferry = require "ferry"
      ferry.spawn(function() ferry.sleep(0.02) print("late task") end)
      print("main returns")]] })
    assert.equal(0, code, err)
    assert.equal("main returns\nlate task\n", out)
  end)

  describe("logging", function()
    it("FERRY_LOG=json writes one JSON object per line", function()
      local code, _, err = ferry_run({ "-e", [[
        local ferry = require "ferry"
        ferry.log.info("sent", { n = 3, ok = true, to = "0xabc", note = 'say "hi"\n' })
        ferry.log.warn("slow")
        ferry.log.debug("hidden at info level")]] }, { FERRY_LOG = "json" })
      assert.equal(0, code, err)
      local recs = {}
      for _, l in ipairs(lines(err)) do recs[#recs + 1] = assert(json.decode(l), "not JSON: " .. l) end
      assert.equal(2, #recs)
      assert.equal("INFO", recs[1].level)
      assert.equal("sent", recs[1].msg)
      assert.equal(3, recs[1].n)
      assert.equal(true, recs[1].ok)
      assert.equal("0xabc", recs[1].to)
      assert.equal('say "hi"\n', recs[1].note)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", recs[1].ts)
      assert.same({ "WARN", "slow" }, { recs[2].level, recs[2].msg })
    end)

    it("FERRY_LOG=json also covers task failure lines, traceback included", function()
      local code, _, err = ferry_run({ "-e", [[
        local ferry = require "ferry"
        local t = ferry.spawn(function() error("bg json") end)
        while t:status() ~= "failed" do ferry.sleep(0.001) end]] }, { FERRY_LOG = "json" })
      assert.equal(0, code, err)
      local recs = lines(err)
      assert.equal(1, #recs)
      local rec = assert(json.decode(recs[1]))
      assert.equal("ERROR", rec.level)
      assert.matches("bg json\nstack traceback:\n", rec.msg)
    end)

    it("FERRY_LOG=debug,json enables debug lines", function()
      local code, _, err = ferry_run({ "-e", [[require("ferry").log.debug("dbg", { k = 1 })]] },
        { FERRY_LOG = "debug,json" })
      assert.equal(0, code, err)
      local rec = assert(json.decode(lines(err)[1]))
      assert.same({ "DEBUG", "dbg", 1 }, { rec.level, rec.msg, rec.k })
    end)

    it("FERRY_LOG=error hides warnings", function()
      local code, _, err = ferry_run({ "-e", [[require("ferry").log.warn("w") require("ferry").log.error("e")]] },
        { FERRY_LOG = "error" })
      assert.equal(0, code)
      local ls = lines(err)
      assert.equal(1, #ls)
      assert.matches(" ERROR e$", ls[1])
    end)

    it("an unknown FERRY_LOG value is reported and ignored", function()
      local code, out, err = ferry_run({ "-e", "print('ran')" }, { FERRY_LOG = "loud" })
      assert.equal(0, code)
      assert.equal("ran\n", out)
      assert.matches("ferry: ignoring FERRY_LOG=loud", err, 1, true)
    end)

    it("redacts fields named like secrets in JSON lines", function()
      local code, _, err = ferry_run({ "-e", [[
        require("ferry").log.info("creds", { api_key = "k1", private_key = "0xdead", password = "pw",
          authToken = "t0k", client_secret = "s", mnemonic = "m", seed = "x", user = "bob" })]] },
        { FERRY_LOG = "json" })
      assert.equal(0, code, err)
      local rec = assert(json.decode(lines(err)[1]))
      for _, k in ipairs{ "api_key", "private_key", "password", "authToken", "client_secret", "mnemonic", "seed" } do
        assert.equal("[redacted]", rec[k], k)
      end
      assert.equal("bob", rec.user)
      for _, secret in ipairs{ "k1", "0xdead", '"pw"', "t0k", '"s"', '"m"', '"x"' } do
        assert.is_nil(err:find(secret, 1, true), secret .. " leaked")
      end
    end)

    it("redacts fields named like secrets in text lines", function()
      local code, _, err = ferry_run({ "-e", [[
        require("ferry").log.info("creds", { PRIVATE_KEY = "0xdead", to = "0xabc" })]] }, { FERRY_LOG = "text" })
      assert.equal(0, code, err)
      assert.matches(" INFO  creds ", err, 1, true)
      assert.matches("PRIVATE_KEY=[redacted]", err, 1, true)
      assert.matches("to=0xabc", err, 1, true)
      assert.is_nil(err:find("0xdead", 1, true))
    end)

    it("keeps JSON lines valid when a field is NaN or infinite", function()
      local code, _, err = ferry_run({ "-e", [[require("ferry").log.warn("x", { v = 0/0, w = 1/0 })]] },
        { FERRY_LOG = "json" })
      assert.equal(0, code)
      assert.is_table(json.decode(lines(err)[1]))
    end)
  end)

  describe("configuration", function()
    it("--config applies the file", function()
      local code, out, err = ferry_run({ "--config", "tests/fixtures/configs/good.lua", "-e",
        [[print(require("ferry").config().data_dir)]] })
      assert.equal(0, code, err)
      assert.equal("/tmp/ferry-good\n", out)
    end)

    it("a config typo via --config exits 1 with the key path on stderr", function()
      local code, out, err = ferry_run({ "--config", "tests/fixtures/configs/typo.lua", "-e",
        [[require("ferry.eth").chain("local") print("not reached")]] })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches('chains.local.provders: unknown key (did you mean "providers"?)', err, 1, true)
    end)

    it("FERRY_CONFIG names the config file", function()
      local code, out, err = ferry_run({ "-e", [[print(require("ferry").config().data_dir)]] },
        { FERRY_CONFIG = "tests/fixtures/configs/good.lua" })
      assert.equal(0, code, err)
      assert.equal("/tmp/ferry-good\n", out)
    end)

    it("a config typo via --config fails at start even if the script never reads the config", function()
      local code, out, err = ferry_run({ "--config", "tests/fixtures/configs/typo.lua", "-e", "print(1)" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("chains.local.provders: unknown key", err, 1, true)
    end)
  end)

  describe("bad command lines", function()
    it("an unknown option exits 1 with a message and the usage", function()
      local code, out, err = ferry_run({ "--bogus" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^ferry: unknown option '%-%-bogus'\nusage: ferry", err)
    end)

    it("--config without a file exits 1", function()
      local code, _, err = ferry_run({ "--config" })
      assert.equal(1, code)
      assert.equal("ferry: --config needs a file\n", err)
    end)

    it("-e without code exits 1", function()
      local code, _, err = ferry_run({ "-e" })
      assert.equal(1, code)
      assert.equal("ferry: -e needs an argument\n", err)
    end)

    it("a syntax error in -e exits 1", function()
      local code, _, err = ferry_run({ "-e", "print(" })
      assert.equal(1, code)
      assert.matches("^ferry: %(command line%):1: [^\n]*\n$", err)   -- and no traceback
    end)
  end)
end)

describe("daemon tasks", function()
  it("do not keep the engine alive, even in the middle of a request", function()
    local code, _, err = child.ferry({ "-e", [[
      local ferry = require "ferry"
      ferry.spawn(function()
        while true do require("ferry.core.http").request("http://10.255.255.1:9/", { timeout = 30 }) end
      end):daemon()
      ferry.sleep(0.05)]] }, nil, 10)
    assert.equal(0, code, err)
  end)
end)
