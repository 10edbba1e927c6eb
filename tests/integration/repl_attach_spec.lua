-- `ferry repl --attach` against an engine running a batch on anvil (`ferry --repl SOCKET
-- script.lua`): its pending and queued sends and pool status read from outside, Ctrl-C
-- stopping `while true do end` inside it while the batch goes on, and other users refused.
local ferry = require "ferry"
local eth = require "ferry.eth"
local proc = require "ferry.core.proc"
local peers = require "helpers.peers"
local child = require "helpers.child"
local evm = require "helpers.evm"

local BATCH = [[
local ferry = require "ferry"
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"
CHAIN = eth.connect({ chain_id = 31337, providers = { { name = "anvil", url = os.getenv("ANVIL_URL"), rps = 10000 } } },
  { policies = { dir = os.getenv("POLICY_DIR"), enabled = { "gas_spike" }, max_queue_wait = 120,
                 settings = { gas_spike = { max_base_fee_gwei = 50 } } },
    limits = { max_gas_price_gwei = 1000 } })
CHAIN:track_heads(0.05)
local signer = CHAIN:signer(os.getenv("KEY"))
STATE = { done = 0 }
local items = {}
for i = 1, 20 do items[i] = i end
workflow.parallel(items, { max_concurrent = 4 }, function(i)
  signer:send{ to = os.getenv("TO"), value = i }
  STATE.done = STATE.done + 1
end)
while not io.open(os.getenv("STOP")) do ferry.sleep(0.05) end
]]

-- a file or a socket (io.open cannot open a socket)
local function exists(path)
  local d, name = path:match("^(.*)/([^/]+)$")
  for _, n in ipairs(require("ferry.core.fswatch").list(d) or {}) do
    if n == name then return true end
  end
  return false
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

describe("ferry repl --attach", function()
  local anvil, dir, sock, engine
  setup(function()
    anvil = peers.anvil()
    dir = child.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/policies"))
    write(dir .. "/policies/gas_spike.lua", assert(io.open("policies/gas_spike.lua")):read("a"))
    write(dir .. "/batch.lua", BATCH)
    sock = dir .. "/run/repl.sock"
    -- a spike first: every send of the batch is queued by gas_spike
    anvil:next_base_fee(eth.gwei(200))
    anvil:mine()
    engine = assert(proc.spawn{ "./ferry", "--repl", sock, dir .. "/batch.lua", stdout = "pipe", stderr = "pipe",
      env = { ANVIL_URL = anvil.url, POLICY_DIR = dir .. "/policies", KEY = evm.KEY0, TO = evm.ADDR1,
              STOP = dir .. "/stop", FERRY_LOG = "warn,text", FERRY_DATA_DIR = child.data_dir() } })
    local deadline = ferry.now() + 10
    while not exists(sock) and ferry.now() < deadline do ferry.sleep(0.02) end
    if not exists(sock) then engine:kill("TERM"); engine:wait(5); error("no REPL socket: " .. tostring(engine:read_err())) end
  end)
  teardown(function()
    write(dir .. "/stop", "")
    if engine then engine:wait(10); engine:close() end
    anvil:stop()
    os.execute("rm -rf " .. dir)
  end)

  local function attach(lines, env)
    return child.sh(("printf '%s' | ./ferry repl --attach %s"):format(lines, sock), env)
  end

  it("serves the socket 0600 in a 0700 directory", function()
    local _, out = child.sh("stat -c '%a' " .. sock .. " " .. dir .. "/run")
    assert.equal("600\n700\n", out)
  end)

  it("reads the running batch's queued and pending sends and its pool status", function()
    local out
    local deadline = ferry.now() + 10
    repeat                                           -- the batch's first four reach the policy step
      ferry.sleep(0.05)
      local _, o = attach([[#queued()\n]])
      out = o
    until out == "4\n" or ferry.now() > deadline
    assert.equal("4\n", out)
    local code, o, err = attach([[queued()[1].policy\n#pending()\nCHAIN:pool_status()[1].name\nSTATE.done\nferry.policy.status().order[1]\n]])
    assert.equal(0, code, err)
    local lines = {}
    for l in o:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal('"gas_spike"', lines[1])
    assert.equal("4", lines[2])
    assert.equal('"anvil"', lines[3])
    assert.equal("0", lines[4])
    assert.matches('^"gas_spike@0x%x+"$', lines[5])
  end)

  it("Ctrl-C stops `while true do end` in the engine, and the batch goes on", function()
    local script = ([[
set -e
mkfifo %s/in
./ferry repl --attach %s < %s/in > %s/out 2>&1 &
C=$!
exec 3> %s/in
printf 'while true do end\n' >&3
sleep 0.5
kill -INT $C
sleep 0.3
printf 'STATE.done\n' >&3
exec 3>&-
wait $C
cat %s/out
]]):format(dir, sock, dir, dir, dir, dir)
    local code, out, err = child.sh(script)
    assert.equal(0, code, err)
    assert.equal("error: interrupted\n0\n", out)
    -- the engine is alive: the fee falls and the batch finishes
    anvil:next_base_fee(eth.gwei(1))
    anvil:mine()
    local deadline, done = ferry.now() + 30
    repeat
      ferry.sleep(0.1)
      local _, o = attach([[STATE.done\n]])
      done = o
    until done == "20\n" or ferry.now() > deadline
    assert.equal("20\n", done)
  end)

  it("refuses a connection from another user", function()
    if not exists("/usr/bin/setpriv") or select(2, child.sh("id -u")) ~= "0\n" then
      pending("needs setpriv and root to act as another user")
      return
    end
    -- the socket's mode keeps nobody out
    local code, _, err = child.sh(("printf '1\\n' | setpriv --reuid=65534 --regid=65534 --clear-groups ./ferry repl --attach %s")
      :format(sock))
    assert.equal(1, code)
    assert.matches("cannot attach.*permission denied", err)
    -- and the uid check refuses a peer that the mode would let in (root, at nobody's engine)
    local nb = "/tmp/ferry-attach-" .. tostring(math.random(1e9))
    local other = assert(proc.spawn{ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "./ferry",
      "--repl", nb .. "/sock", "-e", "require('ferry').sleep(5)", stderr = "pipe", stdout = "pipe" })
    local deadline = ferry.now() + 5
    while not exists(nb .. "/sock") and ferry.now() < deadline do ferry.sleep(0.02) end
    code, _, err = child.sh(("printf '1\\n' | ./ferry repl --attach %s/sock"):format(nb))
    assert.equal(1, code)
    assert.matches("refused: this engine's REPL takes only its own user", err)
    other:kill("TERM")
    other:wait(5)
    other:close()
    os.execute("rm -rf " .. nb)
  end)
end)

describe("ferry serve", function()
  it("runs the policies, the REPL socket and the scripts of the config until SIGTERM; an edit is live over attach", function()
    local dir = child.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/policies"))
    write(dir .. "/policies/limits.lua", assert(io.open("policies/limits.lua")):read("a"))
    local sock = dir .. "/run/repl.sock"
    write(dir .. "/job.lua", "JOB_RAN = 'yes'")
    write(dir .. "/broken.lua", "error('this job fails')")
    write(dir .. "/config.lua", ("return { policies = { dir = %q }, repl = { socket = %q }, serve = { scripts = { %q, %q } } }")
      :format(dir .. "/policies", sock, dir .. "/broken.lua", dir .. "/job.lua"))
    local engine <close> = assert(proc.spawn{ "./ferry", "--config", dir .. "/config.lua", "serve", stdout = "pipe",
      stderr = "pipe", env = { FERRY_LOG = "info,text", FERRY_DATA_DIR = child.data_dir() } })
    local deadline = ferry.now() + 10
    while not exists(sock) and ferry.now() < deadline do ferry.sleep(0.02) end
    local function ask(line)
      local code, out, err = child.sh(("printf '%s\\n' | ./ferry repl --attach %s"):format(line, sock))
      assert.equal(0, code, err)
      return out
    end
    assert.matches('^{ "limits@0x%x+" }', ask("ferry.policy.status().order"))
    assert.equal('"yes"\n', ask("JOB_RAN"))                -- a script of serve.scripts ran; the broken one did not stop it
    -- an edit to the policy file on the running engine
    write(dir .. "/policies/.limits.tmp", "return { name = 'limits', version = 2, before_send = function() end }")
    assert(os.rename(dir .. "/policies/.limits.tmp", dir .. "/policies/limits.lua"))
    local v
    deadline = ferry.now() + 5
    repeat ferry.sleep(0.05); v = ask("ferry.policy.status().files.limits.version") until v == "2\n" or ferry.now() > deadline
    assert.equal("2\n", v)
    engine:kill("TERM")
    assert.equal(0, engine:wait(10))
    local err = engine:read_err()
    assert.matches("stopping signal=TERM", err)
    assert.matches("serve: script failed.*this job fails", err)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("Tab completion", function()
  -- script(1) gives the REPL a pty, so libedit runs its completion as it does for a person
  local function tty(cmd, feed)
    local code, out, err = child.sh("(" .. feed .. ") | SHELL=/bin/sh timeout 20 script -qfec 'exec " .. cmd .. "' /dev/null")
    return code, out:gsub("\r", ""), err
  end

  it("completes globals, fields and methods in the local REPL", function()
    local code, out = tty("./ferry repl", [[sleep 0.5; printf 'string.fo\t'; sleep 0.3; printf '("%%d", 7)\n'; sleep 0.3;
      printf 'tab_target_q = {go = function() return 9 end}\n'; sleep 0.3; printf 'tab_tar\t'; sleep 0.3;
      printf ':g\t'; sleep 0.3; printf '()\n'; sleep 0.5; printf '\004']])
    assert.equal(0, code, out)
    assert.matches('"7"\n', out, 1, true)
    assert.matches("\n9\n", out, 1, true)
  end)

  it("completes the running engine's names over attach", function()
    local dir = child.tmpdir()
    local sock = dir .. "/run/repl.sock"
    local engine <close> = assert(proc.spawn{ "./ferry", "--repl", sock, "-e",
      "ENGINE_ONLY_GLOBAL_Q = 42; require('ferry').sleep(20)", stdout = "pipe", stderr = "pipe",
      env = { FERRY_LOG = "warn,text", FERRY_DATA_DIR = child.data_dir() } })
    local deadline = ferry.now() + 10
    while not exists(sock) and ferry.now() < deadline do ferry.sleep(0.02) end
    local code, out = tty("./ferry repl --attach " .. sock, [[sleep 0.5; printf 'ENGINE_ONLY_GL\t'; sleep 0.4;
      printf '\n'; sleep 0.4; printf 'ferry.polic\t'; sleep 0.4; printf '.status().reloads\n'; sleep 0.4; printf '\004']])
    assert.equal(0, code, out)
    assert.matches("\n42\n", out, 1, true)
    assert.matches("\n0\n", out, 1, true)
    engine:kill("TERM")
    engine:wait(5)
    os.execute("rm -rf " .. dir)
  end)
end)
