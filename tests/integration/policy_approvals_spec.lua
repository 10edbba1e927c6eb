-- policies/approvals.lua and token:approve's approve-to-zero dance, against a USDT-style token
-- (tests/fixtures/usdt: approve/transfer return nothing, approve refuses non-zero over non-zero)
-- and the plain ERC-20 fixture, on anvil.
local eth = require "ferry.eth"
local json = require "ferry.core.json"
local policy = require "ferry.policy"
local peers = require "helpers.peers"
local evm = require "helpers.evm"

local SPENDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"    -- anvil's account 2
local MAX = eth.u256("0x" .. ("f"):rep(64))

local function deploy(signer, path)
  local artifact = json.decode(assert(io.open(path)):read("a"))
  return signer:send{ data = artifact.bytecode }:wait{ timeout = 30 }.contractAddress
end

local function step(events, name)
  for _, ev in ipairs(events or {}) do if ev.step == name then return ev end end
end

describe("approvals", function()
  local anvil, dir, chain, signer, usdt, erc20
  setup(function()
    anvil = peers.anvil()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local src = assert(io.open("policies/approvals.lua")):read("a")
    local f = assert(io.open(dir .. "/approvals.lua", "w"))
    f:write(src)
    f:close()
    chain = eth.connect({ chain_id = 31337, providers = { { name = "anvil", url = anvil.url, rps = 10000 } } },
      { policies = { dir = dir, enabled = { "approvals" }, settings = { approvals = { unlimited_spenders = {} } } } })
    signer = chain:signer(evm.KEY0)
    usdt = chain:erc20(deploy(signer, "tests/fixtures/usdt/TetherLike.json"))
    erc20 = chain:erc20(deploy(signer, "tests/fixtures/erc20/Token.json"))
  end)
  teardown(function()
    policy.stop()
    anvil:stop()
    os.execute("rm -rf " .. dir)
  end)

  it("the USDT-style fixture refuses a non-zero approve over a non-zero allowance", function()
    usdt:approve(signer, SPENDER, 100):wait{ timeout = 10 }
    local data = eth.abi.encode_call("approve(address,uint256)", SPENDER, eth.u256(200))
    local ok, err = pcall(chain.eth_call, chain, { from = evm.ADDR0, to = usdt.address, data = data })
    assert.is_false(ok)
    assert.matches("set the allowance to 0 first", err.message)
  end)

  it("token:approve goes through 0 first, on the USDT-style token and a plain one", function()
    for _, token in ipairs({ usdt, erc20 }) do
      token:approve(signer, SPENDER, 100):wait{ timeout = 10 }
      local tx = token:approve(signer, SPENDER, 250)
      assert.equal("0x1", tx:wait{ timeout = 10 }.status)
      assert.equal(eth.u256(250), token:allowance(evm.ADDR0, SPENDER))
      assert.equal("allow", step(tx.events, "policy:approvals").outcome)
    end
  end)

  it("refuses a direct non-zero approve over a non-zero allowance, and an unlimited one to an unlisted spender", function()
    local data = eth.abi.encode_call("approve(address,uint256)", SPENDER, eth.u256(7))
    local ok, err = pcall(signer.send, signer, { to = erc20.address, data = data, gas = 100000 })
    assert.is_false(ok)
    assert.equal("policy_rejected", err.code)
    assert.matches("set it to 0 first", err.message)
    usdt:approve(signer, SPENDER, 0):wait{ timeout = 10 }
    ok, err = pcall(usdt.approve, usdt, signer, SPENDER, MAX)
    assert.is_false(ok)
    assert.matches("unlimited approval", err.message)
  end)

  it("a transfer that returns nothing (USDT-style) is a success, and moves the tokens", function()
    local to = evm.fresh_address(1)
    local tx = usdt:transfer(signer, to, 1234)
    assert.equal("0x1", tx:wait{ timeout = 10 }.status)
    assert.equal(eth.u256(1234), usdt:balance_of(to))
    local sim = step(tx.events, "simulation")
    assert.is_not_nil(sim)
    assert.equal("allow", step(tx.events, "policy:approvals").outcome)
  end)
end)
