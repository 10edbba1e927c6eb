-- Providers that lie: a reply of the wrong shape is a bad_response of that provider (it counts
-- against it, and the next provider is asked), never a crash, a raw error string, or a value
-- the engine signs with.
local ferry = require "ferry"
local eth = require "ferry.eth"
local peers = require "helpers.peers"
local evm = require "helpers.evm"

local ADDR0, ADDR1 = evm.ADDR0, evm.ADDR1

-- code: the expected error code, or a table of acceptable ones
local function raises(code, f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "did not raise")
  assert.equal("table", type(err), "a raw error: " .. tostring(err))
  if type(code) == "table" then assert.is_true(code[err.code] ~= nil, tostring(err))
  else assert.equal(code, err.code, tostring(err)) end
  return err
end

-- after a few lies the only provider's breaker is open for a moment: then no provider answers
local UNANSWERED = { bad_response = true, provider_down = true }

describe("a provider that answers with the wrong type", function()
  local anvil, proxy, chain, signer
  -- its breaker opens for short spells: each lie below opens it
  before_each(function()
    anvil, proxy, chain, signer = evm.behind_proxy({ head_poll = 0, timeout = 1,
                                                     breaker = { cooldown = 0.05, max_cooldown = 0.1 } })
  end)
  after_each(function() proxy:stop(); anvil:stop() end)

  it("eth_blockNumber 'abc' is a bad_response, with no traceback and no wait for the deadline", function()
    proxy:fault{ mode = "reply", methods = { "eth_blockNumber" }, result = "abc" }
    local t0 = ferry.now()
    local r, err = chain:call("eth_blockNumber", nil, { fresh = true })
    assert.is_nil(r)
    assert.equal("bad_response", err.code)
    assert.matches("eth_blockNumber from node: not a 0x quantity", err.message, 1, true)
    assert.is_true(ferry.now() - t0 < 2, "took " .. (ferry.now() - t0))
  end)

  it("fee and gas replies of the wrong type raise bad_response tables from every public call", function()
    proxy:fault{ mode = "reply", methods = { "eth_feeHistory" }, result = { baseFeePerGas = "x" } }
    raises(UNANSWERED, chain.fees, chain)
    proxy:fault{ mode = "reply", methods = { "eth_feeHistory" }, result = { baseFeePerGas = { 12 }, reward = { { "0x1" } } } }
    raises(UNANSWERED, chain.fees, chain, { fresh = true })
    proxy:fault{ mode = "reply", methods = { "eth_gasPrice" }, result = "zz" }
    raises(UNANSWERED, chain.gas_price, chain)
    proxy:fault{ mode = "reply", methods = { "eth_estimateGas" }, result = 21000 }
    raises(UNANSWERED, chain.estimate_gas, chain, { from = ADDR0, to = ADDR1, value = 1 })
    proxy:fault{ mode = "reply", methods = { "eth_getBalance" }, result = { "0x1" } }
    raises(UNANSWERED, chain.balance, chain, ADDR1)
    proxy:fault{ mode = "pass" }
    proxy:reset_stats()
    proxy:fault{ mode = "reply", methods = { "eth_estimateGas" }, result = "0x" .. ("f"):rep(65) }
    raises(UNANSWERED, signer.send, signer, { to = ADDR1, value = 1 })
    assert.is_nil(proxy:stats().methods.eth_sendRawTransaction, "nothing was broadcast")
  end)

  it("a pending nonce of 2^64 - 1 is not signed", function()
    proxy:fault{ mode = "reply", methods = { "eth_getTransactionCount" }, param = "pending", result = "0xffffffffffffffff" }
    raises("bad_response", signer.send, signer, { to = ADDR1, value = 1 })
    assert.is_nil(proxy:stats().methods.eth_sendRawTransaction, "nothing was broadcast")
  end)

  it("a pending nonce 1000 above the mined count and what this process has in flight is not signed", function()
    proxy:fault{ mode = "reply", methods = { "eth_getTransactionCount" }, param = "pending", result = "0x3e8" }
    local err = raises("bad_response", signer.send, signer, { to = ADDR1, value = 1 })
    assert.matches("next nonce of " .. ADDR0 .. " is 1000, but 0 are mined", err.message, 1, true)
    assert.is_nil(proxy:stats().methods.eth_sendRawTransaction, "nothing was broadcast")
    -- once it tells the truth, the send goes out at nonce 0
    proxy:fault{ mode = "pass" }
    local tx = signer:send{ to = ADDR1, value = 1 }
    assert.equal(0, tx.nonce)
    tx:wait{ timeout = 10 }
  end)

  it("a redirect with a JSON body is not an answer", function()
    proxy:fault{ mode = "reply", status = 302, methods = { "eth_blockNumber" }, result = "0x10" }
    local r, err = chain:call("eth_blockNumber", nil, { fresh = true })
    assert.is_nil(r)
    assert.equal("bad_response", err.code)
    assert.matches("HTTP 302", err.message, 1, true)
  end)
end)

describe("a lying provider next to an honest one", function()
  it("is failed over at once and counted against: the honest one answers", function()
    local anvil = peers.anvil()
    local liar = peers.proxy(anvil.url)
    liar:fault{ mode = "reply", methods = { "eth_blockNumber", "eth_getBalance" }, result = "abc" }
    local chain = eth.connect{ chain_id = 31337, head_poll = 0, providers = {
      { name = "liar", url = liar.url, priority = 1 },
      { name = "honest", url = anvil.url, priority = 2 } } }
    local t0 = ferry.now()
    assert.equal(0, chain:block_number())
    assert.equal(eth.ether "10000", chain:balance(ADDR0))
    assert.is_true(ferry.now() - t0 < 1, "took " .. (ferry.now() - t0))
    local st = chain:pool_status()
    assert.is_true(st[1].failures_total >= 1, "the liar's failures: " .. tostring(st[1].failures_total))
    assert.equal(0, st[2].failures_total)
    liar:stop(); anvil:stop()
  end)
end)
