-- Reorgs seen through the live feed (anvil_reorg): the event, logs delivered again as removed,
-- and every transaction this process sent that was mined in a replaced block re-verified:
-- kept (its receipt follows the new block) or dropped (the same signed bytes sent again and
-- mined again). Counted by the chain: receipts and balances.
local ferry = require "ferry"
local eth = require "ferry.eth"
local json = require "ferry.core.json"
local peers = require "helpers.peers"
local evm = require "helpers.evm"
local Tx = require "ferry.eth.tx"

local FROM = evm.ADDR0
local TOPIC = "0x" .. ("cd"):rep(32)

local function deploy_emitter(node)
  local runtime = "366000600037" .. "7f" .. TOPIC:sub(3) .. "3660" .. "00a100"
  local init = "602c8060" .. "0b" .. "6000396000f3" .. runtime
  local hash = assert(node.rpc:call("eth_sendTransaction", { { from = FROM, data = "0x" .. init, gas = "0x100000" } }))
  for _ = 1, 500 do                                     -- automine answers before the receipt is there
    local rc = node.rpc:call("eth_getTransactionReceipt", { hash })
    if rc then return rc.contractAddress end
    ferry.sleep(0.01)
  end
  error("the emitter was not mined")
end

local function block_hash(node, n)
  local b = node.rpc:call("eth_getBlockByNumber", { ("0x%x"):format(n), false })
  return b and b.hash
end

-- anvil_reorg(depth, txs): answers null
local function reorg(node, depth, txs)
  local _, err = node.rpc:call("anvil_reorg", { depth, txs or json.array({}) })
  assert(err == nil, tostring(err))
end

local function until_true(what, f, timeout, explain)
  local deadline = ferry.now() + (timeout or 20)
  while not f() do
    assert(ferry.now() < deadline, "timed out waiting for " .. what .. (explain and (": " .. explain()) or ""))
    ferry.sleep(0.01)
  end
end

-- Random reorgs (depth 1-5) under ferry's transactions, half keeping them in the new chain:
-- every affected one re-verified, every dropped one mined again, each paid once by balance.
-- seen() -> the highest block the chain's head source (the feed, or the polling tracker)
-- has taken in; describe() -> its state for a failure's message.
local function random_reorgs(node, signer, rounds, seen, describe)
  -- blocks deeper than any reorg below hold only our own transactions from here on (a
  -- dropped deployment by another account would leave our nonces gapped for good)
  node.rpc:call("anvil_mine", { "0x6" })
  local value = 1000
  local st0 = {}
  for k, v in pairs(Tx.reorg_stats) do st0[k] = v end
  local kept_rounds, dropped_rounds, sent, identical = 0, 0, {}, 0
  local logged = ferry.log.capture(function()
    for r = 1, rounds do
      local to = evm.fresh_address(r)
      local tx = signer:send{ to = to, value = value }
      local rc = tx:wait{ timeout = 20 }
      sent[#sent + 1] = { tx = tx, to = to }
      local head = tonumber(node.rpc:call("eth_blockNumber", {}))
      local mined_at = tonumber(rc.blockNumber)
      local depth = math.random(math.max(1, head - mined_at + 1), 5)   -- its block is replaced
      until_true("the head source at the head", function() return seen() >= head end)
      local keep = r % 2 == 0
      local txs = json.array(keep and { json.array({ tx.raw, 0 }) } or {})
      local before = Tx.reorg_stats.reverified
      reorg(node, depth, txs)
      if keep then kept_rounds = kept_rounds + 1 else dropped_rounds = dropped_rounds + 1 end
      -- re-verified, and then on the canonical chain again. (A one-block reorg that keeps
      -- the transaction can rebuild the very same block: same hash, nothing replaced.)
      local same = block_hash(node, mined_at) == rc.blockHash
      if same then identical = identical + 1 end
      until_true("re-verification", function() return same or Tx.reorg_stats.reverified > before end, 20, function()
        return json.encode({ round = r, depth = depth, head = head, mined_at = mined_at, source = describe(),
          node_head = node.rpc:call("eth_blockNumber", {}), tasks = #ferry.tasks() })
      end)
      until_true("a canonical receipt", function()
        local now = node.rpc:call("eth_getTransactionReceipt", { tx.hash })
        return now and tx.receipt and tx.receipt.blockHash == now.blockHash
           and block_hash(node, tonumber(now.blockNumber)) == now.blockHash
      end, 20, function()
        local now = node.rpc:call("eth_getTransactionReceipt", { tx.hash })
        return json.encode({ round = r, depth = depth, keep = keep, nonce = tx.nonce, mined_at = mined_at, head = head,
          ours = tx.receipt and tx.receipt.blockNumber, node = now and now.blockNumber,
          latest = node.rpc:call("eth_getTransactionCount", { FROM, "latest" }),
          pending = node.rpc:call("eth_getTransactionCount", { FROM, "pending" }), stats = Tx.reorg_stats })
      end)
    end
  end)
  local d = {}
  for k, v in pairs(Tx.reorg_stats) do d[k] = v - st0[k] end
  local function remined_all()
    return Tx.reorg_stats.remined - st0.remined == Tx.reorg_stats.rebroadcast - st0.rebroadcast
  end
  until_true("every dropped one mined again", remined_all)
  print(("\n  reorgs: %d (%d keeping the transaction, %d dropping it, %d rebuilt the same block): re-verified %d, "
    .. "kept %d, moved %d, sent again %d, mined again %d"):format(rounds, kept_rounds, dropped_rounds, identical, d.reverified,
    d.kept, d.moved, d.rebroadcast, Tx.reorg_stats.remined - st0.remined))
  -- a deep reorg replaces the blocks of earlier rounds too: more re-verifications than
  -- rounds, and a kept transaction whose lower nonce was dropped cannot stay either
  assert.is_true(d.reverified >= rounds - identical)
  assert.equal(d.reverified, d.kept + d.moved + d.rebroadcast)
  assert.is_true(d.rebroadcast >= dropped_rounds)
  -- paid exactly once each, by the chain
  for _, s in ipairs(sent) do
    assert.equal(value, tonumber(node.rpc:call("eth_getBalance", { s.to, "latest" })))
  end
  if dropped_rounds > 0 then assert.truthy(logged:find("sent again", 1, true)) end
end

describe("reorgs through the live feed", function()
  local node, chain, signer
  setup(function()
    node = peers.anvil()
    node.rpc:call("anvil_mine", { "0x8" })              -- room for depth-5 reorgs
    chain = eth.connect{ chain_id = 31337, head_poll = 0.05,
                         providers = { { name = "node", url = node.url, ws = node.ws, rps = 10000 } } }
    signer = chain:signer(evm.KEY0)
  end)
  teardown(function()
    if chain.pool.feed then chain.pool.feed:close() end
    node:stop()
  end)

  it("a reorg event with depth and hashes; replaced logs come again as removed, then the new chain's", function()
    local contract = deploy_emitter(node)
    local heads <close> = chain:subscribe("heads")
    local logs <close> = chain:subscribe("logs", { address = contract })
    local top = assert(heads:next{ timeout = 10 }).number
    local old = {}
    for i = 1, 3 do
      assert(node.rpc:call("eth_sendTransaction", { { from = FROM, to = contract, data = ("0x%064x"):format(i), gas = "0x30000" } }))
      local h = assert(heads:next{ timeout = 10 })
      old[#old + 1] = h.hash
      assert.equal(i, tonumber(assert(logs:next{ timeout = 10 }).data:sub(3), 16))
    end
    reorg(node, 2)                                          -- the last two blocks, now empty
    local h = assert(heads:next{ timeout = 10 })
    assert.equal(top + 2, h.number)
    assert.same({ fork = top + 1, depth = 2, old = { old[2], old[3] } },
                { fork = h.reorg.fork, depth = h.reorg.depth, old = h.reorg.old })
    assert.equal(h.hash, h.reorg.new[1])
    local removed = {}
    for _ = 1, 2 do
      local l = assert(logs:next{ timeout = 10 })
      assert.is_true(l.removed)
      removed[#removed + 1] = tonumber(l.data:sub(3), 16)
    end
    assert.same({ 3, 2 }, removed)                          -- newest first
    assert.equal(top + 3, assert(heads:next{ timeout = 10 }).number)
    assert.is_nil(logs:next{ timeout = 0.2 })              -- the new blocks are empty
    local st = chain.pool.feed:stats()
    assert.is_true(st.reorgs >= 1)
    assert.is_true(st.deepest_reorg >= 2)
  end)

  it("random reorgs (depth 1-5): every affected transaction re-verified, every dropped one mined again", function()
    local _ <close> = chain:subscribe("heads")
    local feed = chain.pool.feed
    until_true("the feed up", function() return feed:live() and feed.last end)
    random_reorgs(node, signer, tonumber(os.getenv("FERRY_REORGS")) or 20, function() return feed.last.number end,
      function() return { feed = feed:stats(), last = feed.last } end)
  end)

  it("a payment its caller let go of is still re-verified and mined again", function()
    local _ <close> = chain:subscribe("heads")
    local feed = chain.pool.feed
    until_true("the feed up", function() return feed:live() and feed.last end)
    node.rpc:call("anvil_mine", { "0x6" })
    local to = evm.fresh_address(900)
    signer:send{ to = to, value = 4321 }:wait{ timeout = 20 }   -- the Tx is garbage from here
    collectgarbage("collect")
    collectgarbage("collect")
    local head = tonumber(node.rpc:call("eth_blockNumber", {}))
    until_true("the feed at the head", function() return feed.last.number >= head end)
    local st0 = { rebroadcast = Tx.reorg_stats.rebroadcast, remined = Tx.reorg_stats.remined }
    ferry.log.capture(function()
      reorg(node, 1)                                         -- drops it
      until_true("mined again", function() return Tx.reorg_stats.remined > st0.remined end)
    end)
    assert.equal(1, Tx.reorg_stats.rebroadcast - st0.rebroadcast)
    assert.equal(4321, tonumber(node.rpc:call("eth_getBalance", { to, "latest" })))
  end)

  it("tx:wait{confirmations = 3} never returns a receipt from a replaced block", function()
    local _ <close> = chain:subscribe("heads")
    local feed = chain.pool.feed
    until_true("the feed up", function() return feed:live() and feed.last end)
    node.rpc:call("anvil_mine", { "0x6" })
    for r = 1, 5 do
      local tx = signer:send{ to = evm.fresh_address(100 + r), value = 1 }
      local waiter = ferry.spawn(function()
        local rc = tx:wait{ confirmations = 3, timeout = 30 }
        return rc, block_hash(node, tonumber(rc.blockNumber))
      end)
      local rc0
      until_true("mined", function() rc0 = node.rpc:call("eth_getTransactionReceipt", { tx.hash }); return rc0 end)
      ferry.log.capture(function()
        reorg(node, 1)                                       -- drops it
        until_true("the rebroadcast", function()
          local now = node.rpc:call("eth_getTransactionReceipt", { tx.hash })
          return now and now.blockHash ~= rc0.blockHash
        end)
        node.rpc:call("anvil_mine", { "0x3" })
        local ok, rc, canonical = waiter:wait()
        assert.is_true(ok, tostring(rc))
        assert.equal(canonical, rc.blockHash)
        assert.are_not.equal(rc0.blockHash, rc.blockHash)
      end)
    end
  end)
end)

describe("reorgs seen by polling (a provider without ws)", function()
  it("the tracker re-verifies: every affected transaction, every dropped one mined again", function()
    local node = peers.anvil()
    node.rpc:call("anvil_mine", { "0x8" })
    local chain = eth.connect{ chain_id = 31337, head_poll = 0.05,
                               providers = { { name = "node", url = node.url, rps = 10000 } } }
    chain:track_heads(0.05)
    local heads = chain.pool.heads
    until_true("a head", function() return heads.number end)
    random_reorgs(node, chain:signer(evm.KEY0), tonumber(os.getenv("FERRY_REORGS")) or 10,
      function() return heads.number or 0 end, function() return heads:stats() end)
    assert.is_nil(chain.pool.feed)
    assert.is_true(heads:stats().reorgs >= 1)
    chain:close()
    node:stop()
  end)
end)
