-- .env in the working directory (engine/core/dotenv.c, read by engine/main.c before anything
-- starts): NAME=VALUE lines, # comments, optional quotes and `export`; nothing in it runs, and
-- it never overrides what the environment already has.
local peers = require "helpers.peers"
local evm = require "helpers.evm"
local child = require "helpers.child"

local REPO = debug.getregistry()["ferry.home"]

local tmpdir = child.tmpdir

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

describe(".env", function()
  local anvil, dir

  local function run(args, env)
    local argv = { REPO .. "/ferry", cwd = dir }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    env = env or {}
    env.FERRY_CONFIG = env.FERRY_CONFIG or ""
    return child.run(argv, env)
  end

  setup(function()
    anvil = peers.anvil()
    dir = tmpdir()
    assert(run({ "init" }) == 0)
    write(dir .. "/.env", table.concat({
      "# a comment",
      "",
      "export LOCAL_RPC_URL=" .. anvil.url,
      "DOTENV_SPEC_A='single # not a comment'",
      'DOTENV_SPEC_B = "double \\"quoted\\""   # a comment',
      "DOTENV_SPEC_C=plain value # a comment",
      "DOTENV_SPEC_D=$(touch PWNED)`touch PWNED2`",
      "this is not an assignment",
      "PAYER_KEY=" .. evm.KEY0,
      "",
    }, "\n"))
  end)

  teardown(function()
    if anvil then anvil:stop() end
    child.sh("rm -rf '" .. dir .. "'")
  end)

  local SHOW = [[for _, k in ipairs{"DOTENV_SPEC_A", "DOTENV_SPEC_B", "DOTENV_SPEC_C", "DOTENV_SPEC_D"} do print(os.getenv(k)) end]]

  it("is read: quotes, comments, export; a bad line is named, not shown; nothing runs", function()
    local code, out, err = run({ "-e", SHOW })
    assert.equal(0, code, err)
    assert.equal('single # not a comment\ndouble "quoted"\nplain value\n$(touch PWNED)`touch PWNED2`\n', out)
    assert.equal("ferry: .env:8: expected NAME=VALUE, line ignored\n", err)
    assert.is_nil(io.open(dir .. "/PWNED"))
    assert.is_nil(io.open(dir .. "/PWNED2"))
  end)

  it("never overrides the environment", function()
    local code, out, err = run({ "-e", SHOW }, { DOTENV_SPEC_A = "from the environment" })
    assert.equal(0, code, err)
    assert.matches("^from the environment\n", out)
  end)

  it("feeds config.lua and the signer: balance and send with nothing exported", function()
    local to = evm.fresh_address(7)
    local code, out, err = run({ "send", to, "--value", "2gwei" })
    assert.equal(0, code, err)
    assert.matches("^sent 0x%x+ %(from " .. evm.ADDR0 .. ", nonce %d+%)\n", out)
    assert.not_matches(evm.KEY0:sub(3), out .. err, 1, true)
    code, out, err = run({ "balance", to })
    assert.equal(0, code, err)
    assert.equal("0.000000002 ETH (2000000000 wei)\n", out)
  end)
end)
