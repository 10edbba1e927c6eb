-- ferry.simulate and the simulation gate, against a real anvil (debug_traceCall) and with a
-- fault proxy in front of it (a node without tracers, a node that cannot simulate at all).
local ferry = require "ferry"
local eth = require "ferry.eth"
local json = require "ferry.core.json"
local policy = require "ferry.policy"
local simulate = require "ferry.simulate"
local peers = require "helpers.peers"
local evm = require "helpers.evm"

local child = require "helpers.child"
local tmpdir = child.tmpdir

local function copy_policy(dir, name)
  local src = assert(io.open("policies/" .. name .. ".lua")):read("a")
  local f = assert(io.open(("%s/%s.lua"):format(dir, name), "w"))
  f:write(src)
  f:close()
end

local function step(events, name)
  for _, ev in ipairs(events or {}) do if ev.step == name then return ev end end
end

local TRANSFER = "transfer(address,uint256)"

describe("simulation", function()
  local anvil, token, dir
  setup(function()
    anvil = peers.anvil()
    local chain = evm.chain_at(anvil.url)
    local artifact = json.decode(assert(io.open("tests/fixtures/erc20/Token.json")):read("a"))
    token = chain:signer(evm.KEY0):send{ data = artifact.bytecode }:wait{ timeout = 30 }.contractAddress
    chain:close()
    dir = tmpdir()
    copy_policy(dir, "simulation")
  end)
  teardown(function()
    anvil:stop()
    os.execute("rm -rf " .. dir)
  end)
  after_each(function() policy.stop() end)

  local function chain_with(url, root, spec)
    spec = spec or {}
    spec.chain_id, spec.providers = 31337, { { name = "node", url = url, rps = 10000 } }
    local chain = eth.connect(spec, root)
    return chain, chain:signer(evm.KEY0)
  end

  it("finds the revert reason, gas, logs and state changes with debug_traceCall", function()
    local chain = chain_with(anvil.url)
    local data = eth.abi.encode_call(TRANSFER, evm.ADDR1, eth.u256(1000))
    local sim = simulate.run(chain, { from = evm.ADDR0, to = token, data = data, value = eth.u256(0) })
    assert.equal("debug_traceCall", sim.via)
    assert.is_false(sim.reverted)
    assert.is_true(sim.gas_used > 21000)
    assert.equal(1, #sim.logs)                        -- Transfer
    local slots = sim.storage_changes[token:lower()]
    assert.is_table(slots)                            -- two balances moved
    local n = 0
    for _ in pairs(slots) do n = n + 1 end
    assert.equal(2, n)
    local bad = eth.abi.encode_call(TRANSFER, evm.ADDR0, eth.u256(1))
    sim = simulate.run(chain, { from = evm.ADDR1, to = token, data = bad, value = eth.u256(0) })
    assert.is_true(sim.reverted)
    assert.equal("ERC20: insufficient balance", sim.reason)
    -- a plain transfer's balance changes
    sim = simulate.run(chain, { from = evm.ADDR0, to = evm.ADDR1, value = eth.ether "1" })
    assert.is_table(sim.balance_changes[evm.ADDR1:lower()])
  end)

  it("rejects a reverting call with its reason before broadcast, and puts a call's state changes in its events", function()
    local chain, signer = chain_with(anvil.url, { policies = { dir = dir, enabled = { "simulation" } } })
    local from1 = chain:signer("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")   -- anvil's key 1
    local nonce = chain:nonce(from1.address)
    local bad = eth.abi.encode_call(TRANSFER, evm.ADDR0, eth.u256(1))
    local ok, err = pcall(from1.send, from1, { to = token, data = bad, gas = 100000 })  -- gas given: no estimate
    assert.is_false(ok)
    assert.equal("policy_rejected", err.code)
    assert.matches("simulated revert: ERC20: insufficient balance", err.message)
    assert.equal(nonce, chain:nonce(from1.address, "pending"))             -- nothing went out
    local tx = signer:send{ to = token, data = eth.abi.encode_call(TRANSFER, evm.ADDR1, eth.u256(5)) }
    local ev = step(tx.events, "simulation")
    assert.equal("debug_traceCall", ev.via)
    assert.is_table(ev.storage_changes[token:lower()])
    assert.equal("allow", step(tx.events, "policy:simulation").outcome)
    tx:wait{ timeout = 10 }
  end)

  it("falls back to the node when Tenderly is configured but unreachable, and says so", function()
    local root = { tenderly = { account = "acct", project = "proj", access_key = "k", url = "http://127.0.0.1:9" } }
    local chain = chain_with(anvil.url, root)
    local log, sim = ferry.log.capture(simulate.run, chain, { from = evm.ADDR0, to = evm.ADDR1, value = eth.ether "1" })
    assert.matches("tenderly unreachable", sim.fallback)
    assert.equal("debug_traceCall", sim.via)
    assert.matches("tenderly unreachable", log)
  end)

  it("uses eth_simulateV1 when the node has no tracer, and eth_call alone when it has neither", function()
    local proxy = peers.proxy(anvil.url)
    proxy:fault{ mode = "reply", methods = { "debug_traceCall" }, error = { code = -32601, message = "Method not found" } }
    local chain = chain_with(proxy.url)
    local data = eth.abi.encode_call(TRANSFER, evm.ADDR1, eth.u256(7))
    local sim = simulate.run(chain, { from = evm.ADDR0, to = token, data = data, value = eth.u256(0) })
    assert.equal("eth_simulateV1", sim.via)
    assert.equal(1, #sim.logs)
    proxy:fault{ mode = "reply", methods = { "debug_traceCall", "eth_simulateV1" },
                 error = { code = -32601, message = "Method not found" } }
    local chain2 = chain_with(proxy.url)
    sim = simulate.run(chain2, { from = evm.ADDR0, to = token, data = data, value = eth.u256(0) })
    assert.equal("eth_call", sim.via)
    assert.is_false(sim.reverted)
    proxy:stop()
  end)

  it("refuses to send on a simulation_required chain when nothing can simulate", function()
    local proxy = peers.proxy(anvil.url)
    proxy:fault{ mode = "reply", methods = { "eth_call", "debug_traceCall", "eth_simulateV1" },
                 error = { code = -32000, message = "simulation backend down" } }
    local chain, signer = chain_with(proxy.url, nil, { simulation_required = true })
    local nonce = chain:nonce(evm.ADDR0, "pending")
    local ok, err = pcall(signer.send, signer, { to = evm.ADDR1, value = eth.ether "1", gas = 21000 })
    assert.is_false(ok)
    assert.equal("simulation_failed", err.code)
    assert.equal(nonce, chain:nonce(evm.ADDR0, "pending"))
    proxy:stop()
  end)
end)
