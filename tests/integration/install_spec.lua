-- Runs anywhere: `make install PREFIX=...` gives a binary that finds its stdlib, `ferry init`
-- writes a starter configuration, and the commands work from a directory that is not the
-- repository (engine/core/engine.c find_home, Makefile install, stdlib/ferry/cli.lua init).
local peers = require "helpers.peers"
local evm = require "helpers.evm"
local child = require "helpers.child"

-- the repository (this binary's home: its stdlib is there), an absolute path
local REPO = debug.getregistry()["ferry.home"]

local tmpdir = child.tmpdir

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- run argv with cwd = dir; FERRY_HOME and FERRY_CONFIG emptied so only the binary's place counts
local function run_in(dir, argv, env)
  env = env or {}
  env.FERRY_HOME = env.FERRY_HOME or ""
  env.FERRY_CONFIG = env.FERRY_CONFIG or ""
  argv.cwd = dir
  return child.run(argv, env)
end

describe("installed ferry", function()
  local prefix, work, anvil

  setup(function()
    prefix, work = tmpdir(), tmpdir()
    anvil = peers.anvil()
  end)

  teardown(function()
    if anvil then anvil:stop() end
    child.sh("rm -rf '" .. prefix .. "' '" .. work .. "'")
  end)

  it("make install, then ferry init and ferry balance in another directory", function()
    local code, out, err = child.sh("make install PREFIX='" .. prefix .. "'")
    assert.equal(0, code, out .. err)
    local bin = prefix .. "/bin/ferry"
    assert.truthy(read(prefix .. "/share/ferry/stdlib/ferry/init.lua"))

    code, out, err = run_in(work, { bin, "init" })
    assert.equal(0, code, err)
    assert.matches("wrote config.lua and .env.example", out, 1, true)
    assert.matches("chains", read(work .. "/config.lua"), 1, true)
    assert.matches("LOCAL_RPC_URL=", read(work .. "/.env.example"), 1, true)

    code, out, err = run_in(work, { bin, "balance", evm.ADDR1 }, { LOCAL_RPC_URL = anvil.url })
    assert.equal(0, code, err)
    assert.equal("10000 ETH (10000000000000000000000 wei)\n", out)
  end)

  it("ferry init refuses to overwrite, and says so", function()
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/config.lua", "w"))
    f:write("return {}\n")
    f:close()
    local code, out, err = run_in(dir, { REPO .. "/ferry", "init" })
    child.sh("rm -rf '" .. dir .. "'")
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ferry init: invalid_argument: config.lua already exists here: nothing written (move it away to start afresh)\n", err)
  end)

  it("with no config.lua, eth.chain says where it looked and how to make one", function()
    local dir = tmpdir()
    local code, out, err = run_in(dir, { REPO .. "/ferry", "-e", 'require("ferry.eth").chain("local")' })
    child.sh("rm -rf '" .. dir .. "'")
    assert.equal(1, code)
    assert.equal("", out)
    -- one line: where in the script (the -e chunk), then the error table
    assert.matches('^ferry: %(command line%):1: invalid_argument: eth.chain: no chain "local": there is no configuration: no '
      .. dir:gsub("%p", "%%%0") .. "/config%.lua %(write one with `ferry init`, or name one with %-%-config FILE or FERRY_CONFIG%)\n", err)
  end)

  it("an empty FERRY_CONFIG counts as unset", function()
    local code, out, err = child.ferry({ "-e", 'print(require("ferry").config().path)' }, { FERRY_CONFIG = "" })
    assert.equal(0, code, err)
    assert.equal("config.lua\n", out)
  end)
end)
