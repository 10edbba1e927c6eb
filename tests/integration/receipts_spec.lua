-- Receipts by block (ferry.eth.receipts): N transactions waiting at once cost one
-- eth_getBlockReceipts per new block, counted at a fault proxy in front of a real anvil; a node
-- without that method is asked one batch of receipts per head; a mined transaction the book
-- cannot see is still found (its rebroadcast says its nonce is used) and never bumped.
local ferry = require "ferry"
local eth = require "ferry.eth"
local peers = require "helpers.peers"
local evm = require "helpers.evm"

local N = 24

local function recipients(tag)
  local out = {}
  for i = 1, N do out[i] = eth.address("0x" .. eth.keccak256(eth.raw(tag .. i)):sub(-40)) end
  return out
end

-- anvil that mines only when told; a proxy in front of it (HTTP counted, the socket piped)
local function node_and_chain(with_ws)
  local node = peers.anvil({ "--no-mining" })
  local proxy = peers.proxy(node.url)
  local chain = eth.connect{ chain_id = 31337, head_poll = 0.05,
    providers = { { name = "node", url = proxy.url, rps = 100000,
                    ws = with_ws and ("ws://127.0.0.1:" .. proxy.port) or nil } } }
  if with_ws then
    local feed = require("ferry.subscribe").feed(chain)
    local deadline = ferry.now() + 10
    while not (feed:live() and feed.last) do
      assert(ferry.now() < deadline, "the feed did not come up")
      ferry.sleep(0.01)
    end
  end
  return node, proxy, chain
end

-- send one transfer to each address, all waiting at once, and mine blocks until every wait
-- returned; -> receipts, the transactions
local function pay_all(chain, to, wait_opts)
  local signer = chain:signer(evm.KEY0)
  chain:nonce(signer.address)
  local txs, rcs = {}, {}
  local sent = 0
  local waiters = {}
  for i, addr in ipairs(to) do
    waiters[i] = ferry.spawn(function()
      local tx = signer:send{ to = addr, value = 1000 + i }
      txs[i] = tx
      sent = sent + 1
      rcs[i] = tx:wait(wait_opts or { timeout = 30 })
    end)
  end
  while sent < #to do ferry.sleep(0.01) end
  ferry.sleep(0.2)                                  -- every wait has looked once before the block
  for _, t in ipairs(waiters) do
    local ok, err = t:wait()
    assert(ok, tostring(err))
  end
  return rcs, txs
end

describe("receipts by block", function()
  it("N transactions waiting at once cost one eth_getBlockReceipts per block, no receipt of their own", function()
    local node, proxy, chain = node_and_chain(true)
    local to = recipients("book")
    proxy:reset_stats()
    local miner = ferry.spawn(function()
      while true do
        ferry.sleep(0.3)
        node.rpc:call("evm_mine", {})
      end
    end)
    local rcs, txs = pay_all(chain, to)
    miner:cancel()
    local m = proxy:stats().methods
    local blocks = tonumber(node.rpc:call("eth_blockNumber", {}))
    for i, rc in ipairs(rcs) do
      assert.are.equal(txs[i].hash, rc.transactionHash)
      assert.are.equal(1, tonumber(rc.status))
      assert.are.equal(1000 + i, tonumber(node.rpc:call("eth_getBalance", { to[i], "latest" })))
    end
    print(("\n  %d transfers, %d blocks: eth_getBlockReceipts %d, eth_getTransactionReceipt %d")
      :format(N, blocks, m.eth_getBlockReceipts or 0, m.eth_getTransactionReceipt or 0))
    assert.are.equal(0, m.eth_getTransactionReceipt or 0)
    -- every block mined after the first broadcast, each read once
    assert.is_true((m.eth_getBlockReceipts or 0) <= blocks)
    assert.is_true((m.eth_getBlockReceipts or 0) >= 1)
    local st = chain.pool.receipts.st
    assert.are.equal(N, st.found)
    chain:close(); proxy:stop(); node:stop()
  end)

  it("a node without eth_getBlockReceipts: asked once, then one batch of receipts per head", function()
    local node, proxy, chain = node_and_chain(false)
    local to = recipients("batch")
    proxy:fault{ mode = "reply", methods = { "eth_getBlockReceipts" },
                 error = { code = -32601, message = "the method eth_getBlockReceipts does not exist/is not available" } }
    proxy:reset_stats()
    local miner = ferry.spawn(function()
      while true do
        ferry.sleep(0.3)
        node.rpc:call("evm_mine", {})
      end
    end)
    local _, rcs, txs = ferry.log.capture(function() return pay_all(chain, to) end)
    miner:cancel()
    local m = proxy:stats().methods
    for i, rc in ipairs(rcs) do
      assert.are.equal(txs[i].hash, rc.transactionHash)
      assert.are.equal(1000 + i, tonumber(node.rpc:call("eth_getBalance", { to[i], "latest" })))
    end
    local st = chain.pool.receipts.st
    print(("\n  %d transfers: eth_getBlockReceipts %d, %d batches of %d receipts"):format(N,
      m.eth_getBlockReceipts or 0, st.batches, st.batched))
    assert.are.equal(1, m.eth_getBlockReceipts)
    assert.is_true(st.batches >= 1)
    assert.is_true(chain.pool.receipts.lacks.node)
    chain:close(); proxy:stop(); node:stop()
  end)

  it("a provider that does not have the head's block yet: the book asks again, no transaction reads its own", function()
    local node, proxy, chain = node_and_chain(true)
    local to = recipients("behind")
    -- the first three block reads answer null, as a node a block behind does
    proxy:fault{ mode = "reply", methods = { "eth_getBlockReceipts" }, result = ferry.json.null, count = 3 }
    proxy:reset_stats()
    local miner = ferry.spawn(function()
      ferry.sleep(0.3)
      node.rpc:call("evm_mine", {})                     -- one block: no new head comes after it
    end)
    local rcs, txs = pay_all(chain, to, { timeout = 10 })
    miner:wait()
    local m = proxy:stats().methods
    for i, rc in ipairs(rcs) do assert.are.equal(txs[i].hash, rc.transactionHash) end
    print(("\n  %d transfers, one block, its receipts refused 3 times: eth_getBlockReceipts %d, eth_getTransactionReceipt %d")
      :format(N, m.eth_getBlockReceipts or 0, m.eth_getTransactionReceipt or 0))
    assert.are.equal(0, m.eth_getTransactionReceipt or 0)
    assert.are.equal(4, m.eth_getBlockReceipts)
    chain:close(); proxy:stop(); node:stop()
  end)

  it("a mined transaction the book cannot see is found through its rebroadcast, never bumped", function()
    local node, proxy, chain = node_and_chain(true)
    local signer = chain:signer(evm.KEY0)
    local to = recipients("blind")[1]
    local before = tonumber(node.rpc:call("eth_getBalance", { to, "latest" }))
    local tx = signer:send{ to = to, value = 7 }
    -- the book is told the transaction starts far above the head: it will never scan its block
    tx.from_block = chain.pool.heads.number + 1000000
    node.rpc:call("evm_mine", {})
    local _, rc = ferry.log.capture(function()
      return tx:wait{ timeout = 8, rebroadcast = 0.2, stuck_after = 0.1, max_bumps = 3 }
    end)
    assert.are.equal(tx.hash, rc.transactionHash)
    assert.are.equal(0, tx.bumps)
    assert.are.equal(1, #tx.hashes)
    assert.are.equal(before + 7, tonumber(node.rpc:call("eth_getBalance", { to, "latest" })))
    chain:close(); proxy:stop(); node:stop()
  end)
end)
