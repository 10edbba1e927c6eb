-- chain:subscribe against a real anvil behind the fault proxy: every block and every log
-- exactly once and in order across drops, stalls and bad frames; bounded queues.
local ferry = require "ferry"
local eth = require "ferry.eth"

local peers = require "helpers.peers"

local FROM = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
local TOPIC = "0x" .. ("ab"):rep(32)

-- A contract whose every call emits LOG1(TOPIC) with the calldata as data. -> its address
local function deploy_emitter(node)
  local runtime = "366000600037" .. "7f" .. TOPIC:sub(3) .. "3660" .. "00a100"
  local init = "602c8060" .. "0b" .. "6000396000f3" .. runtime     -- copies runtime (44 B) out
  local hash = assert(node.rpc:call("eth_sendTransaction", { { from = FROM, data = "0x" .. init, gas = "0x100000" } }))
  node:mine()
  return assert(node.rpc:call("eth_getTransactionReceipt", { hash })).contractAddress
end

local function emit(node, contract, v)
  assert(node.rpc:call("eth_sendTransaction", { { from = FROM, to = contract, data = ("0x%064x"):format(v), gas = "0x30000" } }))
end

local function chain_over(providers, extra)
  local spec = { chain_id = 31337, head_poll = 0.05, providers = providers }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return eth.connect(spec)
end

local function provider(p, name)
  return { name = name or "node", url = p.url, ws = "ws://127.0.0.1:" .. p.port, rps = 10000 }
end

local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

local function head_number(node) return tonumber(node.rpc:call("eth_blockNumber", {})) end

-- Read heads until `last`: -> numbers seen, duplicates, out of order
local function read_heads(sub, from, last)
  local dup, disorder, seen, prev = 0, 0, {}, from
  while prev < last do
    local h = assert(sub:next{ timeout = 10 })
    if h.number ~= prev + 1 then disorder = disorder + 1 end
    if seen[h.number] then dup = dup + 1 end
    seen[h.number] = true
    prev = h.number
  end
  return seen, dup, disorder
end

describe("chain:subscribe across drops", function()
  local node, proxy, contract
  setup(function()
    node = peers.anvil({ "--no-mining" })
    proxy = peers.proxy(node.url)
    contract = deploy_emitter(node)
  end)
  teardown(function() proxy:stop(); node:stop() end)

  it("50 drops at random moments while a block is mined every 50 ms: every block and log once, in order", function()
    local chain = chain_over({ provider(proxy) })
    local feed = require("ferry.subscribe").feed(chain)
    local _ <close> = feed
    local heads <close> = chain:subscribe("heads")
    local logs <close> = chain:subscribe("logs", { address = contract, topics = { TOPIC } })
    local first = assert(heads:next{ timeout = 10 }).number
    local sent, mining = {}, true
    local miner = ferry.spawn(function()
      local i = 0
      while mining do
        i = i + 1
        if i % 4 ~= 0 then emit(node, contract, i); sent[#sent + 1] = i end   -- logs in most blocks
        node:mine()
        ferry.sleep(0.05)
      end
    end)
    local logged = ferry.log.capture(function()
      for d = 1, 50 do
        ferry.sleep(0.02 + math.random() * 0.15)
        while not feed:live() do ferry.sleep(0.005) end  -- each drop cuts a live socket
        proxy:fault{ mode = "ws_drop" }
        -- now and then the node stays away for a few blocks (a refused upgrade), so the
        -- gap is longer than a reconnect and must be backfilled
        if d % 5 == 0 then proxy:fault{ mode = "ws_refuse", for_ms = 150 + math.random(150) } end
      end
      mining = false
      assert(miner:wait())
      while not feed:live() do ferry.sleep(0.01) end     -- back up after the last drop
    end)
    local last = head_number(node)
    local seen, dup, disorder = read_heads(heads, first, last)
    local missed = 0
    for n = first + 1, last do if not seen[n] then missed = missed + 1 end end
    local got, ldup, nlogs, prev = {}, 0, 0, -1
    local lorder = 0
    while nlogs < #sent do
      local l = assert(logs:next{ timeout = 10 })
      local v = tonumber(l.data:sub(3), 16)
      if got[v] then ldup = ldup + 1 end
      if v <= prev then lorder = lorder + 1 end
      got[v], prev, nlogs = true, v, nlogs + 1
    end
    local lmissed = 0
    for _, v in ipairs(sent) do if not got[v] then lmissed = lmissed + 1 end end
    local st = chain.pool.feed:stats()
    print(("\n  drops: blocks %d..%d (%d), missed %d, duplicated %d, out of order %d; logs %d sent, %d missed, "
      .. "%d duplicated, %d out of order; reconnects %d, backfilled blocks %d, backfilled logs %d, polls %d")
      :format(first + 1, last, last - first, missed, dup, disorder, #sent, lmissed, ldup, lorder, st.reconnects,
              st.backfilled_blocks, st.backfilled_logs, st.polls))
    assert.equal(0, missed)
    assert.equal(0, dup)
    assert.equal(0, disorder)
    assert.equal(0, lmissed)
    assert.equal(0, ldup)
    assert.equal(0, lorder)
    assert.is_nil(logs:next{ timeout = 0.2 })            -- nothing more than what was sent
    assert.is_true(st.reconnects >= 50)
    assert.is_true(st.backfilled_blocks > 0)
    assert.truthy(logged:find("ws feed down", 1, true))
  end)
  it("pool_status() and ferry.stats() show per provider: ws state, reconnects, backfills, reorgs and the deepest", function()
    local chain = chain_over({ provider(proxy), { name = "http-only", url = node.url, rps = 10000 } })
    local feed = require("ferry.subscribe").feed(chain, { poll = 30 })   -- no poll: the reconnect backfills
    local _ <close> = feed
    local _ <close> = chain:subscribe("heads")
    local _ <close> = chain:subscribe("logs", { address = contract, topics = { TOPIC } })
    local deadline = ferry.now() + 10
    while not (feed:live() and feed.last) do assert(ferry.now() < deadline); ferry.sleep(0.01) end
    ferry.log.capture(function()
      proxy:fault{ mode = "ws_refuse" }
      proxy:fault{ mode = "ws_drop" }                 -- (then back to pass: refused again at once)
      proxy:fault{ mode = "ws_refuse" }
      while feed:live() do ferry.sleep(0.01) end
      for v = 1, 3 do emit(node, contract, v); node:mine() end   -- three blocks with a log each, unseen
      proxy:fault{ mode = "pass" }
      local top = head_number(node)
      while not (feed:live() and feed.last.number == top) do assert(ferry.now() < deadline + 10); ferry.sleep(0.01) end
      -- a reorg of the last two blocks, seen when the next block comes
      assert(node.rpc:call("anvil_reorg", { 2, ferry.json.array({}) }) == nil)
      node:mine()
      while feed:stats().reorgs == 0 do assert(ferry.now() < deadline + 20); ferry.sleep(0.01) end
    end)
    local st = chain:pool_status()
    local ws = st[1].ws
    assert.equal("up", ws.ws_state)
    assert.is_true(ws.reconnects >= 1 and ws.drops >= 1, ferry.json.encode(ws))
    assert.is_true(ws.backfilled_blocks >= 2 and ws.backfilled_logs >= 2, ferry.json.encode(ws))
    assert.is_true(ws.reorgs >= 1 and ws.deepest_reorg >= 2, ferry.json.encode(ws))
    assert.is_nil(st[2].ws)                           -- no ws: nothing to show
    local fs = ferry.stats()["feed:adhoc"]
    assert.same(ws, fs.by_provider.node)
    assert.equal("up", fs.ws_state)
    assert.is_true(fs.reorgs >= 1 and fs.deepest_reorg >= 2)
    assert.is_true(fs.backfilled_blocks >= 2 and fs.backfilled_logs >= 2)
  end)
end)

describe("chain:subscribe: stalls, bad frames, failover, fallback to polling", function()
  local node, p1, p2
  setup(function()
    node = peers.anvil()
    p1 = peers.proxy(node.url)
    p2 = peers.proxy(node.url)
  end)
  teardown(function() p1:stop(); p2:stop(); node:stop() end)
  before_each(function() p1:fault{ mode = "pass" }; p2:fault{ mode = "pass" } end)

  it("a stalled socket is dropped by the pong deadline; the tracker polls meanwhile and no head is lost", function()
    local chain = chain_over({ provider(p1) })
    local feed = require("ferry.subscribe").feed(chain, { ping_interval = 0.1, pong_timeout = 0.2 })
    local heads <close> = chain:subscribe("heads")
    local first = assert(heads:next{ timeout = 10 }).number
    ferry.log.capture(function()
      p1:fault{ mode = "ws_stall" }                     -- open sockets go silent, new ones hang
      node:mine()
      local h = assert(heads:next{ timeout = 10 })      -- found by polling while the socket is stalled
      assert.equal(first + 1, h.number)
      assert.is_true(h.polled)
      p1:fault{ mode = "pass" }
      while not feed:live() do ferry.sleep(0.02) end
    end)
    node:mine()
    assert.equal(first + 2, assert(heads:next{ timeout = 10 }).number)
    assert.is_true(feed:stats().polls > 0)
    feed:close()
  end)

  for _, mode in ipairs({ "ws_garbage", "ws_binary", "ws_huge" }) do
    it(mode .. ": a logged protocol error and a reconnect, never a crash", function()
      local chain = chain_over({ provider(p1) })
      local feed = require("ferry.subscribe").feed(chain)
      local heads <close> = chain:subscribe("heads")
      local first = assert(heads:next{ timeout = 10 }).number
      local logged = ferry.log.capture(function()
        p1:fault{ mode = mode, bytes = 20 * 1024 * 1024 }    -- ws_huge: over the 16 MiB cap
        while feed:stats().connects < 2 or not feed:live() do ferry.sleep(0.02) end
      end)
      assert.truthy(logged:find("ws feed down", 1, true))
      node:mine()
      assert.equal(first + 1, assert(heads:next{ timeout = 10 }).number)
      feed:close()
    end)
  end

  it("fails over to the next provider's ws when one refuses, and back", function()
    local chain = chain_over({ provider(p1, "one"), provider(p2, "two") })
    local feed = require("ferry.subscribe").feed(chain)
    local heads <close> = chain:subscribe("heads")
    local first = assert(heads:next{ timeout = 10 }).number
    ferry.log.capture(function()
      p1:fault{ mode = "ws_refuse" }
      p1:fault{ mode = "ws_drop" }
      p1:fault{ mode = "ws_refuse" }
      while not (feed:live() and feed:stats().by_provider.two) do ferry.sleep(0.02) end
    end)
    node:mine()
    assert.equal(first + 1, assert(heads:next{ timeout = 10 }).number)
    assert.equal("up", feed:stats().by_provider.two.ws_state)
    assert.is_true(feed:stats().failovers >= 1)
    feed:close()
  end)

  it("no provider has ws: the feed polls, and subscribers still see every head", function()
    local chain = chain_over({ { name = "http-only", url = p1.url, rps = 10000 } })
    local heads <close> = chain:subscribe("heads")
    local first = assert(heads:next{ timeout = 10 }).number
    node.rpc:call("anvil_mine", { "0x3" })
    for k = 1, 3 do assert.equal(first + k, assert(heads:next{ timeout = 10 }).number) end
    chain.pool.feed:close()
  end)
end)

describe("chain:subscribe: bounded queues", function()
  local node, proxy
  setup(function()
    node = peers.anvil()
    proxy = peers.proxy(node.url)
  end)
  teardown(function() proxy:stop(); node:stop() end)

  it("100,000 pending notifications into a subscription nobody reads: RSS flat, loss = sent - kept", function()
    local chain = chain_over({ provider(proxy) })
    local pending <close> = chain:subscribe("pending", nil, { max_queue = 1000 })
    local feed = chain.pool.feed
    while not (feed:live() and feed.pending_id) do ferry.sleep(0.02) end
    local N = tonumber(os.getenv("FERRY_FLOOD_N")) or 100000
    collectgarbage()
    local rss0 = rss_kb()
    proxy:fault{ mode = "ws_flood", subscription = feed.pending_id, count = N }
    while feed:stats().pending < N do ferry.sleep(0.05) end
    collectgarbage()
    local st = pending:stats()
    local grown = rss_kb() - rss0
    print(("\n  flood: %d notifications, %d kept, %d lost, RSS grew %d KB"):format(N, st.queued, st.lost, grown))
    assert.equal(1000, st.queued)
    assert.equal(N - 1000, st.lost)
    local first = pending:next()
    assert.equal(N - 1000, first.gap)
    assert.equal(("0x%064x"):format(N - 1000), first.hash)       -- the oldest kept one
    -- (under ASan freed memory sits in its quarantine: RSS says nothing there)
    if not os.getenv("ASAN_OPTIONS") then assert.is_true(grown < 16 * 1024) end
    feed:close()
  end)

  it("a reader that never reads: memory stays bounded, the loss is counted and reported as gap", function()
    local chain = chain_over({ provider(node) })
    local pending <close> = chain:subscribe("pending", nil, { max_queue = 100 })
    local feed = chain.pool.feed
    while not (feed:live() and feed.with_pending) do ferry.sleep(0.02) end
    node:automine(false)
    local N = tonumber(os.getenv("FERRY_PENDING_N")) or 3000
    collectgarbage()
    local kb0, rss0 = collectgarbage("count"), rss_kb()
    -- N pending transactions, in batches of JSON-RPC calls (the node announces each)
    local sent = 0
    local nonce = tonumber(node.rpc:call("eth_getTransactionCount", { FROM, "pending" }))
    while sent < N do
      local batch = {}
      for _ = 1, math.min(100, N - sent) do
        batch[#batch + 1] = { "eth_sendTransaction", { { from = FROM, to = FROM, value = "0x1", gas = "0x5208",
                                                           nonce = ("0x%x"):format(nonce + sent) } } }
        sent = sent + 1
      end
      local rs = assert(node.rpc:batch(batch))
      for _, r in ipairs(rs) do assert.is_nil(r.error) end
    end
    while feed:stats().pending < N do ferry.sleep(0.05) end
    collectgarbage()
    local grown, rss_grown = collectgarbage("count") - kb0, rss_kb() - rss0
    local st = pending:stats()
    print(("\n  backpressure: %d notifications, %d kept, %d lost, Lua heap grew %.0f KB, RSS grew %d KB")
      :format(N, st.queued, st.lost, grown, rss_grown))
    assert.equal(100, st.queued)
    assert.equal(N - 100, st.lost)
    local first = pending:next()
    assert.equal(N - 100, first.gap)
    assert.is_nil(pending:next().gap)
    assert.is_true(grown < 4096)                           -- the Lua heap, ASan or not
    node:automine(true)
    node:mine()
    feed:close()
  end)
end)




describe("the feed starts by itself", function()
  it("eth.chain starts it for a provider with ws (LOCAL_RPC_URL's host:port); a script still exits when done", function()
    local child = require "helpers.child"
    local node = peers.anvil()
    local script = [[
      local ferry, eth = require "ferry", require "ferry.eth"
      local c = eth.chain("local")
      local f = assert(c.pool.feed, "no feed")
      print("ws " .. tostring(c.cfg.providers[1].ws))
      local deadline = ferry.now() + 10
      while not (f:live() and f.last) do assert(ferry.now() < deadline, "the feed is not live"); ferry.sleep(0.01) end
      local s = c:signer("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
      s:send{ to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", value = 1 }:wait{ timeout = 10 }
      print(("live %s heads %d receipts found %d"):format(tostring(f:live()), f:stats().heads,
        c.pool.receipts and c.pool.receipts.st.found or 0))
    ]]
    -- no LOCAL_WS_URL: the ws follows the HTTP url to the same node, never the default port
    local code, out, err = child.ferry({ "-e", script }, { LOCAL_RPC_URL = node.url }, 20)
    node:stop()
    assert.equal(0, code, err)
    assert.truthy(out:find("ws " .. node.ws, 1, true), out)
    assert.truthy(out:find("live true heads %d+ receipts found 1"), out)
  end)
end)
