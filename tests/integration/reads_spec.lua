-- Decoded reads (ferry.eth.decode): chain:block, chain:transaction, chain:receipt and
-- chain:logs return integers, U256 and checksummed addresses under snake_case names, checked
-- against the raw JSON of the same anvil; a reply of the wrong shape is a bad_response.
local eth = require "ferry.eth"
local u256 = require "ferry.core.u256"
local evm = require "helpers.evm"

local ADDR0, ADDR1 = evm.ADDR0, evm.ADDR1
local TOPIC = eth.keccak256(eth.raw("Ping(bytes)"))

-- runtime: copy the calldata to memory and LOG1 it under TOPIC
--   CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY PUSH32 TOPIC CALLDATASIZE PUSH1 0 LOG1 STOP
local RUNTIME = "3660006000377f" .. TOPIC:sub(3) .. "366000a100"

local function deploy_emitter(signer)
  local n = #RUNTIME // 2
  local tx = signer:send{ data = ("0x61%04x80600c6000396000f3"):format(n) .. RUNTIME }
  local rc = tx:wait{ confirmations = 1, timeout = 30 }
  return eth.address(rc.contractAddress)
end

local function raises(code, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "did not raise")
  assert.equal("table", type(err), "a raw error: " .. tostring(err))
  assert.equal(code, err.code, tostring(err.message))
  return err
end

local function qty(v) return math.tointeger(tonumber(v:sub(3), 16)) end

describe("decoded reads", function()
  local anvil, chain, signer, sent, raw_rc
  setup(function()
    anvil, chain, signer = evm.on_anvil()
    sent = signer:send{ to = ADDR1, value = eth.ether "1" }
    raw_rc = sent:wait{ confirmations = 1, timeout = 30 }
  end)
  teardown(function() chain:close(); anvil:stop() end)

  it("chain:receipt: integers, U256, checksummed addresses, snake_case", function()
    local rc = chain:receipt(sent.hash)
    assert.equal(sent.hash, rc.transaction_hash)
    assert.equal(1, rc.status)
    assert.equal(qty(raw_rc.blockNumber), rc.block_number)
    assert.equal(math.type(rc.block_number), "integer")
    assert.equal(21000, rc.gas_used)
    assert.equal(qty(raw_rc.cumulativeGasUsed), rc.cumulative_gas_used)
    assert.is_true(u256.is_u256(rc.effective_gas_price))
    assert.equal(u256.new(raw_rc.effectiveGasPrice), rc.effective_gas_price)
    assert.equal(ADDR0, rc.from)
    assert.equal(ADDR1, rc.to)
    assert.is_nil(rc.contract_address)
    assert.equal(2, rc.type)
    assert.same({}, rc.logs)
    assert.is_nil(rc.blockNumber, "no raw names")
    assert.is_nil(chain:receipt("0x" .. ("ab"):rep(32)), "unknown hash: nil")
    raises("invalid_argument", chain.receipt, chain, "0x1234")
  end)

  it("chain:transaction: nonce, gas and type as integers, value and fees as U256", function()
    local t = chain:transaction(sent.hash)
    assert.equal(sent.hash, t.hash)
    assert.equal(sent.nonce, t.nonce)
    assert.equal("integer", math.type(t.nonce))
    assert.equal(eth.ether "1", t.value)
    assert.is_true(u256.is_u256(t.max_fee_per_gas) and u256.is_u256(t.max_priority_fee_per_gas))
    assert.equal(21000, t.gas)
    assert.equal(2, t.type)
    assert.equal(31337, t.chain_id)
    assert.equal(ADDR0, t.from)
    assert.equal(ADDR1, t.to)
    assert.equal("0x", t.input)
    assert.equal(qty(raw_rc.blockNumber), t.block_number)
    assert.equal(raw_rc.blockHash, t.block_hash)
    assert.is_nil(chain:transaction("0x" .. ("cd"):rep(32)))
  end)

  it("chain:block: by number, latest and in full; nil past the head", function()
    local n = qty(raw_rc.blockNumber)
    local b = chain:block(n)
    local raw = chain:call("eth_getBlockByNumber", { ("0x%x"):format(n), false })
    assert.equal(n, b.number)
    assert.equal(raw.hash, b.hash)
    assert.equal(raw.parentHash, b.parent_hash)
    assert.equal(qty(raw.timestamp), b.timestamp)
    assert.equal(qty(raw.gasLimit), b.gas_limit)
    assert.equal(21000, b.gas_used)
    assert.equal(u256.new(raw.baseFeePerGas), b.base_fee_per_gas)
    assert.is_true(u256.is_u256(b.difficulty))
    assert.equal(eth.address(raw.miner), b.miner)
    assert.same({ sent.hash }, b.transactions)
    local full = chain:block(n, true)
    assert.equal(sent.hash, full.transactions[1].hash)
    assert.equal(eth.ether "1", full.transactions[1].value)
    assert.is_true(chain:block().number >= n)
    assert.equal(0, chain:block("earliest").number)
    assert.equal(0, chain:block("0x0").number)
    assert.is_nil(chain:block(n + 1000))
    raises("invalid_argument", chain.block, chain, "soon")
    raises("invalid_argument", chain.block, chain, -1)
  end)

  it("chain:logs: by address, topics, range and block hash; receipts carry the same logs", function()
    local emitter = deploy_emitter(signer)
    local rcs = {}
    for i, payload in ipairs({ "0x01", "0xbeef" }) do
      rcs[i] = signer:send{ to = emitter, data = payload }:wait{ confirmations = 1, timeout = 30 }
    end
    local logs = chain:logs{ address = emitter, from_block = 0 }
    assert.equal(2, #logs)
    assert.equal(emitter, logs[1].address)
    assert.same({ TOPIC }, logs[1].topics)
    assert.equal("0x01", logs[1].data)
    assert.equal("0xbeef", logs[2].data)
    assert.equal(qty(rcs[2].blockNumber), logs[2].block_number)
    assert.equal(rcs[2].transactionHash, logs[2].transaction_hash)
    assert.equal("integer", math.type(logs[2].log_index))
    assert.equal("integer", math.type(logs[2].transaction_index))
    assert.is_false(logs[2].removed)

    assert.equal(2, #chain:logs{ address = { emitter, ADDR1 }, topics = { TOPIC }, from_block = 0, to_block = "latest" })
    assert.equal(2, #chain:logs{ topics = { { TOPIC, "0x" .. ("00"):rep(32) } }, from_block = 0 })
    assert.equal(0, #chain:logs{ address = emitter, topics = { "0x" .. ("00"):rep(32) }, from_block = 0 })
    assert.equal(2, #chain:logs{ address = emitter, topics = { false }, from_block = 0 })   -- false: any topic
    assert.equal(0, #chain:logs{ address = emitter, topics = { false, TOPIC }, from_block = 0 })
    local only = chain:logs{ address = emitter, block_hash = rcs[1].blockHash }
    assert.equal(1, #only)
    assert.equal("0x01", only[1].data)

    local rc = chain:receipt(rcs[2].transactionHash)
    assert.equal(1, #rc.logs)
    assert.same(logs[2], rc.logs[1])

    raises("invalid_argument", chain.logs, chain, { adress = emitter })
    raises("invalid_argument", chain.logs, chain, { topics = { "0x12" } })
    raises("invalid_argument", chain.logs, chain, { block_hash = rcs[1].blockHash, from_block = 0 })
  end)

  it("a reverted transaction's receipt has status 0", function()
    -- runtime PUSH1 0 PUSH1 0 REVERT: every call to it reverts
    local tx = signer:send{ data = "0x6005600c60003960056000f360006000fd" }
    local creator = tx:wait{ confirmations = 1, timeout = 30 }
    local reverter = eth.address(creator.contractAddress)
    -- signer:send refuses a call that reverts (preflight): anvil's own unlocked account sends it
    local hash = assert(anvil.rpc:call("eth_sendTransaction", { { from = ADDR1, to = reverter, gas = "0xc350" } }))
    local rc = chain:receipt(hash)
    assert.equal(0, rc.status)
    assert.equal(ADDR1, rc.from)
    assert.equal(0, #rc.logs)
  end)
end)

describe("decoded reads of a pending transaction", function()
  it("chain:transaction has no block yet, chain:receipt is nil", function()
    local anvil, chain, signer = evm.on_anvil(nil, { "--no-mining" })
    local tx = signer:send{ to = ADDR1, value = 5 }
    local t = chain:transaction(tx.hash)
    local rc = chain:receipt(tx.hash)
    chain:close()
    anvil:stop()
    assert.equal(tx.hash, t.hash)
    assert.equal(u256.new(5), t.value)
    assert.is_nil(t.block_number)
    assert.is_nil(t.block_hash)
    assert.is_nil(rc)
  end)
end)

describe("decoded reads from a node that lies", function()
  local anvil, proxy, chain, signer, hash
  setup(function()
    anvil, proxy, chain, signer = evm.behind_proxy({ timeout = 1 })
    local tx = signer:send{ to = ADDR1, value = 1 }
    tx:wait{ confirmations = 1, timeout = 30 }
    hash = tx.hash
  end)
  teardown(function() chain:close(); proxy:stop(); anvil:stop() end)
  after_each(function() proxy:fault{ mode = "pass" } end)

  it("a field of the wrong shape is a bad_response naming the method and the field", function()
    local good = chain:call("eth_getTransactionReceipt", { hash })
    local bad = {}
    for k, v in pairs(good) do bad[k] = v end
    bad.gasUsed = "lots"
    proxy:fault{ mode = "reply", methods = { "eth_getTransactionReceipt" }, result = bad }
    local err = raises("bad_response", chain.receipt, chain, hash)
    assert.matches("eth_getTransactionReceipt from node: gasUsed: not a 0x quantity", err.message, 1, true)

    proxy:fault{ mode = "reply", methods = { "eth_getTransactionByHash" },
                 result = { hash = hash, nonce = "0x0", from = ADDR0, value = "1 ether", gas = "0x5208", input = "0x" } }
    err = raises("bad_response", chain.transaction, chain, hash)
    assert.matches("value: not a 0x quantity", err.message, 1, true)

    local block = chain:call("eth_getBlockByNumber", { "0x1", false })
    local b = {}
    for k, v in pairs(block) do b[k] = v end
    b.miner = "0x1234"
    proxy:fault{ mode = "reply", methods = { "eth_getBlockByNumber" }, result = b }
    err = raises("bad_response", chain.block, chain, 1)
    assert.matches("eth_getBlockByNumber from node: miner: not a 20-byte 0x address", err.message, 1, true)

    proxy:fault{ mode = "reply", methods = { "eth_getLogs" },
                 result = { { address = ADDR1, topics = { "0x01" }, data = "0x" } } }
    err = raises("bad_response", chain.logs, chain, { from_block = 0 })
    assert.matches("topics: [1]: not a 32-byte 0x hash", err.message, 1, true)
  end)
end)
