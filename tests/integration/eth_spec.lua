-- The EVM send pipeline against a real anvil.
local ferry = require "ferry"
local eth = require "ferry.eth"
local peers = require "helpers.peers"

local evm = require "helpers.evm"

local KEY0, ADDR0, ADDR1 = evm.KEY0, evm.ADDR0, evm.ADDR1
local fresh_address, chain_at, on_anvil, behind_proxy = evm.fresh_address, evm.chain_at, evm.on_anvil, evm.behind_proxy

describe("ferry.eth on anvil", function()
  local anvil, chain, signer
  setup(function()
    anvil = peers.anvil()
    chain = chain_at(anvil.url, { stuck_after = 3 })
    signer = chain:signer(KEY0)
  end)
  teardown(function() anvil:stop() end)

  it("reads block number, balance and nonce", function()
    assert.equal(0, chain:block_number())
    assert.equal(eth.ether "10000", chain:balance(ADDR0))
    assert.equal(0, chain:nonce(ADDR1))
  end)

  it("signer has the checksummed address and never shows its key", function()
    assert.equal(ADDR0, signer.address)
    assert.not_matches("ac0974bec", tostring(signer))
    assert.not_matches("ac0974bec", require("ferry.pretty").render(signer))
  end)

  it("sends a transfer that is mined and moves the value", function()
    local to = fresh_address(1)
    local tx = signer:send{ to = to, value = eth.ether "1.5" }
    assert.matches("^0x%x+$", tx.hash)
    local rc = tx:wait{ confirmations = 1, timeout = 10 }
    assert.equal(tx.hash, rc.transactionHash)
    assert.equal(eth.ether "1.5", chain:balance(to, "latest", { fresh = true }))
  end)

  it("after tx:wait, a cached balance read of latest shows the transaction (no fresh needed)", function()
    local to = fresh_address(14)
    assert.equal(eth.u256(0), chain:balance(to))     -- cached (cache.ttl.eth_getBalance)
    local tx = signer:send{ to = to, value = eth.ether "1" }
    tx:wait{ timeout = 10 }
    assert.equal(eth.ether "1", chain:balance(to))
  end)

  it("fees come from eth_feeHistory: max fee = 2 x base + tip", function()
    local f = chain:fees()
    assert.is_true(f.base_fee > 0)
    assert.equal(f.base_fee * 2 + f.max_priority_fee, f.max_fee)
  end)

  it("insufficient funds are caught before broadcast with both amounts", function()
    local poor = chain:signer("0x" .. ("11"):rep(32))
    local ok, err = pcall(poor.send, poor, { to = ADDR1, value = eth.ether "1" })
    assert.is_false(ok)
    assert.equal("insufficient_funds", err.code)
    assert.equal(eth.u256(0), err.available)
    assert.is_true(err.required > eth.ether "1")
    assert.equal(0, chain:nonce(poor.address))
  end)

  it("a reverting call is reported with its reason and nothing reaches the mempool", function()
    -- a contract whose runtime code always reverts with Error("nope")
    local z28 = ("00"):rep(28)
    local init = "0x" .. "7f08c379a0" .. z28 .. "600052" .. "6020600452" .. "6004602452" ..
      "7f6e6f7065" .. z28 .. "604452" .. "60646000fd"
    -- deploy code that returns the runtime above: store runtime, return it
    local runtime = init:sub(3)
    local n = #runtime // 2
    local deploy = ("0x61%04x80600c6000396000f3"):format(n) .. runtime
    local tx = signer:send{ data = deploy }
    local rc = tx:wait{ timeout = 10 }
    local target = eth.address(rc.contractAddress)
    local before = chain:nonce(ADDR0)
    local ok, err = pcall(signer.send, signer, { to = target, data = "0x12345678" })
    assert.is_false(ok)
    assert.equal("reverted", err.code)
    assert.equal("nope", err.reason)
    assert.equal(before, chain:nonce(ADDR0))
    local pool = chain:call("txpool_status")
    assert.equal("0x0", pool.pending)
  end)

  it("100 concurrent sends from one address get contiguous nonces", function()
    local wf = require "ferry.workflow"
    local start = chain:nonce(ADDR0)
    local items = {}
    for i = 1, 100 do items[i] = fresh_address(100 + i) end
    local results, summary = wf.parallel(items, { max_concurrent = 32, progress = false }, function(to)
      local tx = signer:send{ to = to, value = 1000 + 1 }
      tx:wait{ timeout = 20 }
      return tx.nonce
    end)
    local first
    for _, r in ipairs(results) do if not r.ok then first = first or r.err end end
    assert.equal(0, summary.errors, first and tostring(first))
    local seen = {}
    for _, r in ipairs(results) do seen[r.value] = true end
    for n = start, start + 99 do assert.is_true(seen[n], "nonce " .. n) end
    assert.equal(start + 100, chain:nonce(ADDR0))
    -- the next funds check that reads the chain (a check within floor_every, 1 s, of the last
    -- read judges by that one) forgets the holds of all hundred: they are mined
    ferry.sleep(1.05)
    signer:send{ to = ADDR1, value = 1 }
    local holds = 0
    for _ in pairs(chain:_nonces(ADDR0).holds) do holds = holds + 1 end
    assert.equal(1, holds)
  end)

  it("bad keys are refused with clear errors that never echo them", function()
    local ok, err = pcall(chain.signer, chain, "0x1234")
    assert.is_false(ok)
    assert.matches("64 hex", err)
    ok, err = pcall(chain.signer, chain, "0x" .. ("00"):rep(32))
    assert.is_false(ok)
    assert.matches("not a valid", err)
    ok, err = pcall(chain.signer, chain, { env = "FERRY_TEST_UNSET_KEY" })
    assert.is_false(ok)
    assert.matches("FERRY_TEST_UNSET_KEY is not set", err)
  end)

  it("rejects a wrong checksum and odd-length hex", function()
    local function refused(t, pattern)
      local ok, err = pcall(signer.send, signer, t)
      assert.is_false(ok)
      local msg = type(err) == "table" and err.message or tostring(err)
      assert.matches(pattern, msg, 1, true)
      return err
    end
    local e = refused({ to = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8", value = 1 }, "signer:send: to: ")
    assert.equal("invalid_argument", e.code)
    assert.matches("checksum", e.message)
    refused({ to = ADDR1, data = "0x123" }, "odd number of hex digits")
    assert.equal("invalid_argument", refused({ to = ADDR1, value = -1 }, "signer:send: value: negative integer").code)
  end)

  it("refuses a misspelt field or a creation with nothing to deploy, before any I/O", function()
    local err = select(2, pcall(signer.send, signer, { to = ADDR1, valeu = 1 }))
    assert.equal("invalid_argument", err.code)
    assert.equal('signer:send: unknown field "valeu" (did you mean "value"?)', err.message)
    err = select(2, pcall(signer.sign, signer, { to = ADDR1, value = 1, nonce = 0, gas = 21000, max_fee = 1,
                                                 max_priority_fee = 1, gas_limit = 5 }))
    assert.equal("invalid_argument", err.code)
    assert.matches('unknown field "gas_limit"', err.message, 1, true)
    err = select(2, pcall(signer.send, signer, { value = 1 }))
    assert.equal("invalid_argument", err.code)
    assert.matches("no `to`", err.message, 1, true)
    err = select(2, pcall(chain.balance, chain, "0xbad"))
    assert.equal('chain:balance: invalid address (want 0x + 40 hex digits) (got "0xbad")', err.message)
    err = select(2, pcall(chain.call, chain, "eth_getBalance", ADDR0))
    assert.equal("invalid_argument", err.code)
    -- a tip above the fee cap: every node refuses it, so it is never signed
    err = select(2, pcall(signer.sign, signer, { to = ADDR1, value = 1, nonce = 0, gas = 21000, max_fee = 1,
                                                 max_priority_fee = 2 }))
    assert.equal("signer:sign: max_priority_fee (2) is above max_fee (1)", err.message)
    err = select(2, pcall(signer.send, signer, { to = ADDR1, value = 1, max_fee = 1, max_priority_fee = 2 }))
    assert.equal("signer:send: max_priority_fee (2) is above max_fee (1)", err.message)
    err = select(2, pcall(signer.send, signer, { to = ADDR1, data = "abc" }))
    assert.equal("signer:send: data must be 0x-prefixed hex", err.message)
    -- options too: {fersh = true} would have been served from the cache, {timout = 5} waited 120 s
    err = select(2, pcall(chain.call, chain, "eth_chainId", {}, { fersh = true }))
    assert.equal('chain:call: unknown option "fersh" (did you mean "fresh"?)', err.message)
    local tx = signer:send{ to = ADDR1, value = 1 }
    err = select(2, pcall(tx.wait, tx, { timout = 5 }))
    assert.equal('tx:wait: unknown option "timout" (did you mean "timeout"?)', err.message)
    tx:wait{ timeout = 10 }
  end)

  it("an ERC-20 read of an address without code says so", function()
    local err = select(2, pcall(function() return chain:erc20(ADDR1):balance_of(ADDR0) end))
    assert.equal("bad_response", err.code)
    assert.matches("returned nothing: is there a contract at this address", err.message, 1, true)
  end)
end)

describe("tx:wait on a node that lost the transaction", function()
  it("sends the signed bytes again and the transaction is mined", function()
    local anvil, _, signer = on_anvil(nil, { "--no-mining" })
    local tx = signer:send{ to = ADDR1, value = 7 }
    -- the node forgets it (as after a restart or an eviction)
    assert.equal(tx.hash, (anvil.rpc:call("anvil_dropTransaction", { tx.hash })))
    local miner = ferry.spawn(function()
      for _ = 1, 40 do ferry.sleep(0.05); anvil.rpc:call("evm_mine", {}) end
    end)
    local rc = tx:wait{ timeout = 5, rebroadcast = 0.2 }
    miner:cancel()
    anvil:stop()
    assert.equal(tx.hash, rc.transactionHash)
    assert.is_true(tx.rebroadcasts >= 1)
  end)
end)

describe("a transaction whose nonce another transaction took", function()
  it("tx:wait raises nonce_too_low at its next rebroadcast instead of waiting out its timeout", function()
    local anvil, chain, signer = on_anvil(nil, { "--no-mining" })
    local tx = signer:send{ to = ADDR1, value = 1 }
    -- someone else (another process, a wallet) replaces it at the same nonce, and it is mined
    local raw = signer:sign{ to = ADDR1, value = 2, nonce = tx.nonce, gas = 21000,
                             max_fee = tx.max_fee * 2, max_priority_fee = tx.max_priority_fee * 2 }
    assert(chain:call("eth_sendRawTransaction", { raw }))
    assert.is_nil(select(2, anvil.rpc:call("evm_mine", {})))
    local t0 = ferry.now()
    local ok, err = pcall(tx.wait, tx, { timeout = 30, rebroadcast = 0.2, stuck_after = 0 })
    assert.is_false(ok)
    assert.equal("nonce_too_low", err.code)
    assert.matches("was used by another transaction", err.message, 1, true)
    assert.is_true(ferry.now() - t0 < 2, "took " .. (ferry.now() - t0))
    anvil:stop()
  end)
end)

describe("a transaction stuck below the base fee", function()
  it("is replaced with higher fees, same nonce, and the replacement is mined", function()
    local anvil, chain, signer = on_anvil(nil, { "--no-mining" })
    local f = chain:fees()
    local tx = signer:send{ to = ADDR1, value = 9, max_fee = f.base_fee, max_priority_fee = 1 }
    local first = tx.hash
    -- the base fee jumps to 100 gwei: the transaction no longer fits in a block
    assert.is_nil(select(2, anvil.rpc:call("anvil_setNextBlockBaseFeePerGas", { "0x174876e800" })))
    local miner = ferry.spawn(function()
      while true do
        anvil.rpc:call("anvil_setNextBlockBaseFeePerGas", { "0x174876e800" })
        anvil.rpc:call("evm_mine", {})
        ferry.sleep(0.1)
      end
    end)
    local rc = tx:wait{ timeout = 10, stuck_after = 0.3 }
    miner:cancel()
    anvil:stop()
    assert.equal(1, tx.bumps)
    assert.are_not.equal(first, tx.hash)
    assert.same({ first, tx.hash }, tx.hashes)
    assert.equal(tx.hash, rc.transactionHash)
    assert.is_true(tx.max_fee > eth.gwei(100))
    assert.equal(0, tx.nonce)
    -- the funds it holds for later sends' checks grew with the replacement's fees
    assert.equal(tx.value + 21000 * tx.max_fee, tx._hold.amount)
  end)
end)

describe("the gas price cap", function()
  it("refuses to broadcast above limits.max_gas_price_gwei", function()
    local anvil = peers.anvil()
    local chain = eth.connect({ chain_id = 31337, providers = { { name = "anvil", url = anvil.url, rps = 10000 } } },
      { limits = { max_gas_price_gwei = 50 } })
    local signer = chain:signer(KEY0)
    local ok, err = pcall(signer.send, signer, { to = ADDR1, value = 1, max_fee = eth.gwei(60), max_priority_fee = eth.gwei(1) })
    assert.is_false(ok)
    assert.equal("policy_rejected", err.code)
    assert.matches("above the cap of 50 gwei", err.message)
    assert.equal(0, chain:nonce(ADDR0))
    local tx = signer:send{ to = ADDR1, value = 1, max_fee = eth.gwei(40), max_priority_fee = eth.gwei(1) }
    tx:wait{ timeout = 10 }
    anvil:stop()
  end)
end)

describe("a broadcast refused in the middle of a batch", function()
  it("leaves no nonce gap: the freed nonce is filled and every later transaction is mined", function()
    local anvil, proxy, chain, signer = behind_proxy({ gap_fill_after = 0.5 })
    local wf = require "ferry.workflow"
    local start = chain:nonce(ADDR0)
    local n = chain:_nonces(ADDR0)
    -- broadcasts take 400 ms, so the later sends take their nonces while the first one's
    -- broadcast is still out; that one pays 1 wei per gas, which the node refuses
    proxy:fault{ mode = "delay", ms = 400, methods = { "eth_sendRawTransaction" } }
    -- (its failure is this spec's to check: the task catches it, so no "task failed" log)
    local low = ferry.spawn(pcall, signer.send, signer, { to = fresh_address(900), value = 1, max_fee = 1, max_priority_fee = 1 })
    local deadline = ferry.now() + 5
    while n.next ~= start + 1 and ferry.now() < deadline do ferry.sleep(0.005) end
    assert.equal(start + 1, n.next)
    local results, summary = wf.parallel({ 1, 2, 3, 4, 5, 6, 7 }, { max_concurrent = 7, progress = false }, function(i)
      return signer:send{ to = fresh_address(900 + i), value = 1 }
    end)
    assert.equal(0, summary.errors)
    local _, ok, err = low:wait(5)
    assert.is_false(ok)
    assert.equal("underpriced", err.code)
    assert.equal(start, err.nonce)
    -- the seven hold nonces above the freed one; they are mined once the filler takes it
    for _, r in ipairs(results) do r.value:wait{ timeout = 15 } end
    assert.equal(start + 8, chain:nonce(ADDR0))
    assert.equal(0, tonumber(anvil.rpc:call("txpool_status", {}).queued))
    proxy:stop(); anvil:stop()
  end)
end)

describe("concurrent sends from one address", function()
  it("are judged against the balance in turn: no more pass than it covers, and nothing reaches the node", function()
    local anvil = peers.anvil()
    local chain = chain_at(anvil.url)
    local signer = chain:signer(eth.keccak256(eth.raw("ferry funds in flight")))
    local _, serr = anvil.rpc:call("anvil_setBalance", { signer.address, "0xde0b6b3a7640000" })   -- 1 ether
    assert.is_nil(serr)
    local wf = require "ferry.workflow"
    local items = {}
    for i = 1, 8 do items[i] = fresh_address(700 + i) end
    -- each needs 0.3 ether + 21000 x 10 gwei: the balance covers three
    local results = wf.parallel(items, { max_concurrent = 8, progress = false }, function(to)
      return signer:send{ to = to, value = eth.ether "0.3", gas = 21000, max_fee = eth.gwei(10),
                          max_priority_fee = eth.gwei(1) }
    end)
    local sent, nonces, refused = 0, {}, 0
    for _, r in ipairs(results) do
      if r.ok then
        sent = sent + 1
        nonces[#nonces + 1] = r.value.nonce
        r.value:wait{ timeout = 10 }
      else
        refused = refused + 1
        assert.equal("insufficient_funds", r.err.code, tostring(r.err))
        assert.is_true(r.err.required > r.err.available)
      end
    end
    assert.equal(3, sent)
    assert.equal(5, refused)
    table.sort(nonces)
    assert.same({ 0, 1, 2 }, nonces)
    assert.equal(3, chain:nonce(signer.address))
    local n = chain:_nonces(signer.address)
    assert.same({}, n.free)                              -- no broadcast was refused
    assert.is_nil(n.filler)
    -- every hold is gone: the refused ones at once, the sent ones once a check saw them mined
    -- (one that reads the chain: floor_every after the last read)
    ferry.sleep(1.05)
    signer:send{ to = signer.address, value = 0, gas = 21000, max_fee = eth.gwei(2), max_priority_fee = eth.gwei(1) }
    local holds = 0
    for h in pairs(n.holds) do if h.nonce ~= 3 then holds = holds + 1 end end
    assert.equal(0, holds)
    assert.is_nil(next(n.counts))
    anvil:stop()
  end)
end)

describe("transactions waiting for their receipts", function()
  it("ask again only when a new block has come, so 20 waiting on 1 s blocks cost a read each per block", function()
    local anvil, proxy, _, signer = behind_proxy(nil, { "--block-time", "1" })
    local txs = {}
    for i = 1, 20 do txs[i] = signer:send{ to = fresh_address(500 + i), value = 1, gas = 21000 } end
    proxy:reset_stats()
    local t0 = ferry.now()
    local results = require("ferry.workflow").parallel(txs, { max_concurrent = 20, progress = false },
      function(tx) return tx:wait{ timeout = 20 } end)
    local took = ferry.now() - t0
    local st = proxy:stats()
    for i, r in ipairs(results) do assert.is_true(r.ok, "tx " .. i .. ": " .. tostring(r.err)) end
    local receipts = st.methods.eth_getTransactionReceipt or 0
    print(("\n    %d receipt reads, %d block number reads in %.1f s"):format(receipts, st.methods.eth_blockNumber or 0, took))
    -- each: one read when it starts, one per new head until it is in one (they all go in the
    -- first block or two); polling on a timer would have made ~10 each in the first second
    assert.is_true(receipts <= 20 * 4, ("%d receipt reads in %.1f s"):format(receipts, took))
    assert.is_true((st.methods.eth_blockNumber or 0) <= 20 * (took + 1), "block number reads: " .. tostring(st.methods.eth_blockNumber))
    proxy:stop(); anvil:stop()
  end)

  it("keep going when the head tracker is cancelled: the next wait starts another", function()
    local anvil, chain, signer = on_anvil({ head_poll = 0 }, { "--no-mining" })    -- no following: only waiters run the tracker
    local a = signer:send{ to = ADDR1, value = 1, gas = 21000 }
    local wa = ferry.spawn(a.wait, a, { timeout = 10 })
    ferry.sleep(0.1)
    assert.is_not_nil(chain.pool.tracker)
    chain.pool.tracker:cancel("test")
    assert.is_nil(chain.pool.tracker)
    local b = signer:send{ to = ADDR1, value = 2, gas = 21000 }
    local wb = ferry.spawn(b.wait, b, { timeout = 10 })
    ferry.sleep(0.1)
    assert.is_not_nil(chain.pool.tracker)
    assert.is_nil(select(2, anvil.rpc:call("evm_mine", {})))
    local oka, ra = wa:wait(10)
    local okb, rb = wb:wait(10)
    assert.is_true(oka, tostring(ra))
    assert.is_true(okb, tostring(rb))
    assert.equal(ra.blockNumber, rb.blockNumber)
    anvil:stop()
  end)
end)

-- Once a send of task t is in its funds check (registered in n.counts), cancel t: it ends
-- with "cancelled".
local function cancel_in_check(t, n)
  local deadline = ferry.now() + 5
  while next(n.counts) == nil and ferry.now() < deadline do ferry.sleep(0.005) end
  assert.is_not_nil(next(n.counts), "the send should be waiting on its funds check")
  t:cancel("changed my mind")
  local ok, err = t:wait(5)
  assert.is_false(ok)
  assert.equal("cancelled", err.code)
end

describe("funds checks of sends in flight at once", function()
  it("share their reads in rounds, and one cancelled while it waits does not fail the rest", function()
    local anvil, proxy, chain, signer = behind_proxy()
    local n = chain:_nonces(ADDR0)
    -- every balance read takes 150 ms: checks that arrive meanwhile wait for the next round
    proxy:fault{ mode = "delay", ms = 150, methods = { "eth_getBalance" } }
    proxy:reset_stats()
    local victim = ferry.spawn(signer.send, signer, { to = ADDR1, value = 1, gas = 21000 })
    local tasks = {}
    for i = 1, 40 do tasks[i] = ferry.spawn(signer.send, signer, { to = fresh_address(300 + i), value = 1, gas = 21000 }) end
    cancel_in_check(victim, n)
    for i, t in ipairs(tasks) do
      local ok, tx = t:wait(20)
      assert.is_true(ok, "send " .. i .. ": " .. tostring(tx))
      tx:wait{ timeout = 20 }
    end
    local st = proxy:stats()
    -- 41 checks, a handful of rounds (each read after the round before it)
    assert.is_true(st.methods.eth_getBalance <= 4, "balance reads: " .. st.methods.eth_getBalance)
    assert.is_true(st.methods.eth_getTransactionCount <= 6, "count reads: " .. st.methods.eth_getTransactionCount)
    assert.equal(40, chain:nonce(ADDR0))
    assert.is_nil(next(n.counts))
    proxy:stop(); anvil:stop()
  end)
end)

describe("a balance read out while a new head arrives", function()
  -- it may have been answered from the state before that head: answered, but not cached
  it("is not kept in the cache", function()
    local anvil, proxy, chain = behind_proxy()
    chain:block_number()                                   -- the head is known
    proxy:fault{ mode = "delay", ms = 400, methods = { "eth_getBalance" } }
    local t = ferry.spawn(chain.balance, chain, ADDR1)
    ferry.sleep(0.1)
    anvil.rpc:call("anvil_mine", { "0x1" })
    chain:call("eth_blockNumber", {}, { fresh = true })   -- the pool sees the new head
    assert.is_true(t:wait())
    proxy:fault{ mode = "pass" }
    proxy:reset_stats()
    chain:balance(ADDR1)
    assert.equal(1, proxy:stats().methods.eth_getBalance or 0)
    proxy:stop(); anvil:stop()
  end)
end)

describe("a send cancelled during its funds check", function()
  it("gives its hold back", function()
    local anvil, proxy, chain, signer = behind_proxy()
    proxy:fault{ mode = "hang", methods = { "eth_getBalance" } }
    local t = ferry.spawn(signer.send, signer, { to = ADDR1, value = 1 })
    local n = chain:_nonces(ADDR0)
    cancel_in_check(t, n)
    assert.is_nil(next(n.holds))
    assert.is_nil(next(n.counts))
    proxy:stop(); anvil:stop()
  end)
end)

describe("chain:close()", function()
  it("stops eth.chain's head tracker and lets eth.chain make a new chain (child process)", function()
    local anvil = peers.anvil()
    local code, out, err = require("helpers.child").ferry({ "-e", ([[
      local ferry, eth = require "ferry", require "ferry.eth"
      ferry.set_config{ chains = { x = { kind = "evm", chain_id = 31337, head_poll = 0.05,
                                         providers = { { url = %q } } } } }
      local c = eth.chain "x"
      local tracker = c.pool.tracker
      print(tracker:status() ~= "cancelled", c:block_number(), ferry.stats()["pool:x"] ~= nil)
      c:close()
      print(tracker:status(), c:block_number(), ferry.stats()["pool:x"] ~= nil, eth.chain "x" ~= c)
      do local d <close> = eth.chain "x" end
      print(ferry.stats()["pool:x"] ~= nil)]]):format(anvil.url) })
    anvil:stop()
    assert.equal(0, code, err)
    assert.equal("true\t0\ttrue\ncancelled\t0\tfalse\ttrue\nfalse\n", out)
  end)
end)

describe("the nonce allocator", function()
  it("hands out distinct nonces while resyncs run between its reads (no nil in between)", function()
    local anvil, chain = on_anvil()
    local n = chain:_nonces(ADDR0)
    local failures, seen, dup = {}, {}, nil
    for round = 1, 20 do
      local tasks = {}
      for i = 1, 20 do
        tasks[#tasks + 1] = ferry.spawn(function()
          ferry.sleep(math.random() * 0.003)
          return n:reserve()
        end)
        if i % 7 == 0 then
          tasks[#tasks + 1] = ferry.spawn(function()
            ferry.sleep(math.random() * 0.003)
            n:resync()
          end)
        end
      end
      for _, t in ipairs(tasks) do
        local ok, v = t:wait()
        if not ok then failures[#failures + 1] = ("round %d: %s"):format(round, tostring(v))
        elseif v then
          if seen[v] then dup = v end
          seen[v] = true
        end
      end
    end
    assert.same({}, failures)
    assert.is_nil(dup, "nonce handed out twice")
    anvil:stop()
  end)
end)

describe("the send pipeline's steps", function()
  it("are listed in one place, and a send emits each one's event in order with its outcome", function()
    assert.equal("validate -> claim -> fill_fees -> cap -> fill_gas -> policy -> preflight -> simulate -> reserve"
      .. " -> sign -> journal -> broadcast -> track", tostring(eth.steps()))
    local anvil, _, signer = on_anvil()
    local seen = {}
    local off = eth.on_step(function(ev) seen[#seen + 1] = ev end)
    local tx = signer:send{ to = ADDR1, value = 1 }
    off()
    local steps, outcomes = {}, {}
    for i, ev in ipairs(tx.events) do
      steps[i], outcomes[i] = ev.step, ev.outcome
      assert.equal(tx.id, ev.id)
      assert.is_true(ev.dt >= 0)
      assert.is_true(i == 1 or ev.at >= tx.events[i - 1].at)
    end
    assert.same(eth.steps(), steps)
    assert.same({ "ok", "skipped", "ok", "ok", "ok", "skipped", "ok", "skipped", "ok", "ok", "ok", "sent", "sent" }, outcomes)
    assert.equal(tx.hash, tx.events[#tx.events].hash)
    assert.equal(tx.nonce, tx.events[#tx.events].nonce)
    assert.same(tx.events, seen)
    -- a step that raises is the last event, with the error's code (the default cap: 500 gwei)
    local failed = {}
    off = eth.on_step(function(ev) failed[#failed + 1] = ev end)
    local ok, err = pcall(signer.send, signer, { to = ADDR1, value = 1, max_fee = eth.gwei(600), max_priority_fee = 1 })
    off()
    assert.is_false(ok)
    assert.equal("policy_rejected", err.code)
    assert.same({ "validate", "claim", "fill_fees", "cap" }, { failed[1].step, failed[2].step, failed[3].step, failed[4].step })
    assert.equal("given", failed[3].outcome)
    assert.equal("policy_rejected", failed[4].outcome)
    assert.equal(4, #failed)
    tx:wait{ timeout = 10 }
    anvil:stop()
  end)
end)
