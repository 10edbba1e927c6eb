-- `ferry repl` on a real terminal: script(1) (util-linux, always on Debian) gives it a pty,
-- so libedit's line editing and the SIGINT handling run as they do for a person.
local child = require "helpers.child"

-- feed: a shell snippet writing the keystrokes (with sleeps between them) to the pty.
-- script(1) runs its command with $SHELL -c; `exec` keeps that shell out of the pty's foreground
-- process group, or dash (SHELL=/bin/sh, as on CI) dies of the ^C and script exits 130.
local function tty(feed)
  local code, out, err = child.sh("(" .. feed .. ") | SHELL=/bin/sh timeout 20 script -qfec 'exec ./ferry repl' /dev/null")
  return code, out:gsub("\r", ""), err
end

describe("ferry repl on a terminal", function()
  it("Ctrl-C stops an entry that never yields, and the session goes on", function()
    local code, out = tty([[printf 'while true do end\n'; sleep 1; printf '\003'; sleep 0.5; printf '1+1\n'; sleep 0.5; printf '\004']])
    assert.equal(0, code, out)
    assert.matches("error: interrupted\n", out, 1, true)
    assert.matches("> 1+1\n2\n", out, 1, true)
  end)

  it("Ctrl-C cancels an entry that waits on I/O", function()
    local code, out = tty([[printf 'ferry.sleep(60)\n'; sleep 0.7; printf '\003'; sleep 0.5; printf '"after"\n'; sleep 0.5; printf '\004']])
    assert.equal(0, code, out)
    assert.matches("^Cinterrupted\n", out, 1, true)
    assert.matches('"after"\n', out, 1, true)
  end)

  it("Ctrl-C at the prompt drops the half-typed line", function()
    local code, out = tty([[sleep 0.5; printf 'garbage'; sleep 0.3; printf '\003'; sleep 0.3; printf '6*7\n'; sleep 0.5; printf '\004']])
    assert.equal(0, code, out)
    assert.matches("\n42\n", out, 1, true)
    assert.not_matches("garbage6", out, 1, true)
  end)

  it("pasted multi-line input runs line by line", function()
    local code, out = tty([[sleep 0.5; printf 'for i = 1, 3 do\nprint(i * 10)\nend\n'; sleep 0.5; printf '\004']])
    assert.equal(0, code, out)
    assert.matches("10\n20\n30\n", out, 1, true)
  end)
end)

describe("ferry repl history, as the specs run it", function()
  -- a spec run leaves the checkout's ./.ferry alone: children get FERRY_DATA_DIR (helpers.child)
  it("goes to the suite's own data dir, not ./.ferry/history", function()
    local token = ("history_token_%d"):format(math.random(1e9))
    local code, out = tty(("sleep 0.5; printf '%s = 1\\n'; sleep 0.5; printf '\\004'"):format(token))
    assert.equal(0, code, out)
    local mine = io.open("./.ferry/history")
    if mine then
      local text = mine:read("a")
      mine:close()
      assert.not_matches(token, text, 1, true)
    end
    local f = assert(io.open(child.data_dir() .. "/history"))
    local text = f:read("a")
    f:close()
    assert.matches(token, text, 1, true)
  end)
end)
