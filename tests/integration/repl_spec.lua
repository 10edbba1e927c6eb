-- `ferry repl` with its input piped in (stdlib/ferry/repl.lua, stdlib/ferry/pretty.lua,
-- engine/core/term.c pipe mode). Each case checks the whole of stdout.

local CONFIG = "tests/fixtures/configs/good.lua"

local run = require("helpers.child").run

-- Pipe `input` into `ferry repl` (through the environment, so no shell quoting is involved).
local function repl(input, extra)
  return run({ "/bin/sh", "-c", [[printf '%s' "$FERRY_REPL_INPUT" | ./ferry repl --config "$FERRY_REPL_CONFIG"]] },
    { FERRY_REPL_INPUT = input, FERRY_REPL_CONFIG = extra or CONFIG })
end

local function repl_ok(input)
  local code, out, err = repl(input)
  assert.equal(0, code, err)
  assert.equal("", err)
  return out
end

describe("ferry repl", function()
  it("prints the value of a bare expression", function()
    assert.equal("2\n", repl_ok("1+1\n"))
  end)

  it("prints strings quoted and several values tab-separated", function()
    assert.equal('1\t"a"\tnil\n', repl_ok('1, "a", nil\n'))
  end)

  it("=expr prints the expression", function()
    assert.equal("6\n", repl_ok("=2*3\n"))
  end)

  it("prints nothing for statements and for calls that return nothing", function()
    assert.equal("hello\n", repl_ok('x = 1\nprint("hello")\n'))
  end)

  it("runs multi-line input once it is complete", function()
    assert.equal("1 2 3 \ndone\n",
      repl_ok('for i = 1, 3 do\n  io.write(i, " ")\nend\nprint()\nprint("done")\n'))
  end)

  it("runs a multi-line function definition and calls it", function()
    assert.equal("42\n", repl_ok("function f(a)\n  local b = a * 2\n  return b\nend\nf(21)\n"))
  end)

  it("keeps globals between entries", function()
    assert.equal("15\n", repl_ok("x = 5\ny = x * 2\nx + y\n"))
  end)

  it("keeps session globals out of _G", function()
    assert.equal("5\tnil\n", repl_ok('x = 5\nx, rawget(_G, "x")\n'))
  end)

  it("does not keep locals between entries (each entry is its own chunk)", function()
    assert.equal("nil\n", repl_ok("local y = 1\ny\n"))
  end)

  it("prints error: for a runtime error and continues", function()
    local out = repl_ok('error("bad thing")\nprint("after")\n')
    assert.matches("^error: repl:1: bad thing\nstack traceback:\n", out)
    assert.matches("\nafter\n$", out)
  end)

  it("prints error: code: message for an error table and continues", function()
    assert.equal("error: timeout: slow\n2\n", repl_ok('ferry.raise("timeout", "slow")\n1+1\n'))
  end)

  it("reports a syntax error and continues", function()
    local out = repl_ok("1 +* 2\n3\n")
    assert.matches("^repl:1: [^\n]*\n3\n$", out)
  end)

  it("an entry can wait on I/O (ferry.sleep) before returning", function()
    assert.equal('"ok"\n', repl_ok('ferry.sleep(0.01) return "ok"\n'))
  end)

  it("an entry can wait for a spawned task", function()
    assert.equal("true\t42\n", repl_ok("ferry.spawn(function() ferry.sleep(0.01) return 42 end):wait()\n"))
  end)

  it("pretty-prints tables with sorted keys", function()
    assert.equal('{ "s", a = 1, b = { 2, 3 } }\n', repl_ok('{a = 1, b = {2, 3}, "s"}\n'))
  end)

  it("pretty-prints large tables over several lines", function()
    local out = repl_ok('{alpha = "aaaaaaaaaaaaaaaaaaaa", beta = "bbbbbbbbbbbbbbbbbbbb", gamma = "cccccccccccccccccccc", n = 1}\n')
    assert.equal('{\n  alpha = "aaaaaaaaaaaaaaaaaaaa",\n  beta = "bbbbbbbbbbbbbbbbbbbb",\n' ..
                 '  gamma = "cccccccccccccccccccc",\n  n = 1\n}\n', out)
  end)

  it("marks cycles and shows binary strings as hex", function()
    assert.equal('{ self = <cycle> }\n<3 bytes 0x610062>\n', repl_ok('t = {}\nt.self = t\nt\n"a\\0b"\n'))
  end)

  it("shows keys that are Lua keywords in brackets", function()
    assert.equal('{ ["local"] = 1 }\n', repl_ok('{["local"] = 1}\n'))
  end)

  it("resolves ferry modules lazily by name", function()
    assert.equal('"table"\t"function"\n', repl_ok("type(workflow), type(json.encode)\n"))
  end)

  it("shows a chain and a signer by name and address, never their config dump or key", function()
    local out = repl_ok([[c = require("ferry.eth").connect{ chain_id = 1, providers = { { url = "http://127.0.0.1:9", name = "x" } } }
c
c:signer("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
]])
    assert.equal("ferry.Chain adhoc (chain id 1, providers: x)\nferry.Signer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n", out)
  end)

  it("ignores blank lines and exits 0 at end of input", function()
    assert.equal("1\n", repl_ok("\n   \n1\n\n"))
  end)

  it("evaluates a last line that has no newline", function()
    assert.equal("7\n", repl_ok("7"))
  end)

  it("reads a regular file on stdin too", function()
    local code, out, err = run({ "/bin/sh", "-c", [[./ferry repl --config "$C" < "$F"]] },
      { C = CONFIG, F = "tests/fixtures/configs/good.lua" })
    assert.equal(0, code, err)
    -- the file's first line is a comment, then a `return {` opening a table: incomplete, so
    -- the whole file becomes one entry whose value is the config table
    assert.matches("chains = {", out, 1, true)
    assert.matches('data_dir = "/tmp/ferry-good"', out, 1, true)
  end)

  it("reports a broken config on stderr and still starts", function()
    local code, out, err = repl("1+1\n", "tests/fixtures/configs/typo.lua")
    assert.equal(0, code)
    assert.equal("2\n", out)
    assert.matches("chains.local.provders: unknown key", err, 1, true)
  end)

  it("exits 1 on repl --attach with no engine at the socket, saying so", function()
    local code, out, err = run({ "./ferry", "repl", "--attach", "/tmp/none.sock" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry repl: cannot attach to /tmp/none.sock: ", err)
  end)
end)
