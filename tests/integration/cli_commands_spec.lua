-- cast-style commands (stdlib/ferry/cli.lua, dispatched by engine/main.c): every command
-- against a throwaway anvil, human output and --json, as a child ./ferry would be run.
local json = require "ferry.core.json"
local eth = require "ferry.eth"
local peers = require "helpers.peers"
local evm = require "helpers.evm"
local child = require "helpers.child"

local ADDR0, ADDR1, KEY0 = evm.ADDR0, evm.ADDR1, evm.KEY0

describe("ferry commands", function()
  local anvil, env, token

  local function run(args, extra)
    local e = { LOCAL_RPC_URL = anvil.url }
    for k, v in pairs(extra or {}) do e[k] = v end
    return child.ferry(args, e)
  end

  setup(function()
    anvil = peers.anvil()
    env = { LOCAL_RPC_URL = anvil.url }
    local chain = evm.chain_at(anvil.url)
    local f = assert(io.open("tests/fixtures/erc20/Token.json"))
    local artifact = json.decode(f:read("a"))
    f:close()
    local rc = chain:signer(KEY0):send{ data = artifact.bytecode }:wait{ timeout = 30 }
    token = rc.contractAddress
    chain:close()
  end)

  teardown(function() if anvil then anvil:stop() end end)

  it("balance: ether and wei, or JSON", function()
    local code, out, err = run({ "balance", ADDR1 })
    assert.equal(0, code, err)
    assert.equal("10000 ETH (10000000000000000000000 wei)\n", out)
    code, out, err = run({ "balance", ADDR1, "--json" })
    assert.equal(0, code, err)
    assert.same({ address = ADDR1, wei = "10000000000000000000000", ether = "10000" }, json.decode(out))
  end)

  it("nonce: the account's next nonce", function()
    local code, out, err = run({ "nonce", ADDR0 })
    assert.equal(0, code, err)
    assert.equal("1\n", out)                       -- the token's deployment
    code, out, err = run({ "nonce", ADDR0, "--json" })
    assert.equal(0, code, err)
    assert.same({ address = ADDR0, nonce = 1 }, json.decode(out))
  end)

  it("chain-id: the node's, not the config's", function()
    local code, out, err = run({ "chain-id" })
    assert.equal(0, code, err)
    assert.equal("31337\n", out)
    code, out = run({ "chain-id", "--json", "--chain", "local" })
    assert.equal(0, code)
    assert.same({ chain = "local", chain_id = 31337 }, json.decode(out))
  end)

  it("call: cast's return-type syntax decodes; without it, the raw result", function()
    local code, out, err = run({ "call", token, "balanceOf(address)(uint256)", ADDR0 })
    assert.equal(0, code, err)
    assert.equal("1000000000000000000000000\n", out)
    code, out, err = run({ "call", token, "symbol()(string)" })
    assert.equal(0, code, err)
    assert.equal("FTT\n", out)
    code, out, err = run({ "call", token, "balanceOf(address)", ADDR0 })
    assert.equal(0, code, err)
    assert.equal("0x" .. ("0"):rep(44) .. "d3c21bcecceda1000000\n", out)
    code, out, err = run({ "call", token, "balanceOf(address)(uint256)", ADDR0, "--json" })
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.same({ "1000000000000000000000000" }, r.values)
    assert.matches("^0x0+d3c21bcecceda1000000$", r.result)
  end)

  it("call: raw calldata instead of a signature, as cast takes it", function()
    local data = eth.abi.encode_call("balanceOf(address)", ADDR0)
    local code, out, err = run({ "call", token, data })
    assert.equal(0, code, err)
    assert.equal("0x" .. ("0"):rep(44) .. "d3c21bcecceda1000000\n", out)
    code, out, err = run({ "call", token, data, "extra" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ferry call: invalid_argument: raw calldata takes no further arguments, got 1\n", err)
  end)

  it("call: a bad argument is a one-line error, exit 1", function()
    local code, out, err = run({ "call", token, "balanceOf(address)(uint256)", "0x1234" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry call: invalid_argument: [^\n]*address[^\n]*\n$", err)
  end)

  it("send: pays from --key-env (default PAYER_KEY), waits for the receipt", function()
    local to = evm.fresh_address(1)
    local code, out, err = run({ "send", to, "--value", "1.5ether" }, { PAYER_KEY = KEY0 })
    assert.equal(0, code, err)
    local hash = out:match("^sent (0x%x+)")
    assert.truthy(hash, out)
    assert.matches("mined in block %d+, status success", out)
    assert.not_matches(KEY0:sub(3), out .. err, 1, true)
    code, out = run({ "balance", to })
    assert.equal(0, code)
    assert.equal("1.5 ETH (1500000000000000000 wei)\n", out)

    local data = eth.abi.encode_call("transfer(address,uint256)", to, 7)
    code, out, err = run({ "send", token, "--data", data, "--key-env", "MY_KEY", "--json" }, { MY_KEY = KEY0 })
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal("success", r.status)
    assert.matches("^0x%x+$", r.hash)
    code, out = run({ "call", token, "balanceOf(address)(uint256)", to })
    assert.equal(0, code)
    assert.equal("7\n", out)
  end)

  it("send: never takes a key on the command line, and names a missing variable", function()
    local code, out, err = run({ "send", ADDR1, "--value", "1", "--key", KEY0 })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry send: invalid_argument: [^\n]*--key%-env[^\n]*\n$", err)
    assert.not_matches(KEY0:sub(3), err, 1, true)
    code, out, err = run({ "send", ADDR1, "--value", "1", "--key-env", "NO_SUCH_KEY_VAR" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ferry send: invalid_argument: signer: environment variable NO_SUCH_KEY_VAR is not set\n", err)
  end)

  it("receipt: a mined transaction, or says it has none", function()
    local code, out, err = run({ "send", ADDR1, "--value", "1gwei", "--json" }, { PAYER_KEY = KEY0 })
    assert.equal(0, code, err)
    local hash = json.decode(out).hash
    code, out, err = run({ "receipt", hash })
    assert.equal(0, code, err)
    assert.matches("status%s+success", out)
    assert.matches("from%s+" .. ADDR0:lower(), out:lower())
    assert.matches("block%s+%d+", out)
    code, out, err = run({ "receipt", hash, "--json" })
    assert.equal(0, code, err)
    local r = json.decode(out)
    assert.equal(hash, r.transactionHash)
    assert.equal("0x1", r.status)
    code, out, err = run({ "receipt", "0x" .. ("ab"):rep(32) })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry receipt: [^\n]*no receipt[^\n]*\n$", err)
  end)

  it("block: by number and latest", function()
    local code, out, err = run({ "block", "0" })
    assert.equal(0, code, err)
    assert.matches("number%s+0\n", out)
    assert.matches("hash%s+0x%x+\n", out)
    code, out, err = run({ "block", "latest", "--json" })
    assert.equal(0, code, err)
    local b = json.decode(out)
    assert.truthy(eth.quantity(b.number) >= 1)
    code, out = run({ "block", "--json" })
    assert.equal(0, code)
    assert.equal(b.hash, json.decode(out).hash)
  end)

  it("--help lists the commands; a typo says did you mean", function()
    local code, out = child.ferry({ "--help" })
    assert.equal(0, code)
    for _, c in ipairs({ "balance", "nonce", "call", "send", "receipt", "block", "chain-id", "init" }) do
      assert.matches("\n  " .. c:gsub("%-", "%%-") .. " ", out)
    end
    local err
    code, out, err = child.ferry({ "balanse", ADDR1 }, env)
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal('ferry: unknown command "balanse" (did you mean "balance"?)\n', err)
  end)

  it("a key given where an address goes is masked in the error", function()
    local code, out, err = run({ "balance", KEY0 })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ferry balance: invalid_argument: [^\n]*redacted[^\n]*\n$", err)
    assert.not_matches(KEY0:sub(7), err, 1, true)
  end)

  it("an unknown chain is a one-line error with a suggestion", function()
    local code, out, err = run({ "balance", ADDR1, "--chain", "locl" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches('^ferry balance: invalid_argument: [^\n]*no chain "locl"[^\n]*did you mean "local"%?[^\n]*\n$', err)
  end)
end)
