-- The same cases on every node implementation ferry is tested against: anvil and hardhat's
-- node (tests/peers). One node of each kind for the whole file (hardhat's takes seconds to
-- start); each test runs on a snapshot of it (evm_snapshot before, evm_revert after) with a
-- chain object of its own, so no test sees another's blocks, nonces or mining mode.
local ferry = require "ferry"
local eth = require "ferry.eth"
local wf = require "ferry.workflow"
local evm = require "helpers.evm"

local KEY0, ADDR0, ADDR1 = evm.KEY0, evm.ADDR0, evm.ADDR1
local fresh_address = evm.fresh_address

-- What each node says when it refuses a transaction (eth_sendRawTransaction, HTTP 200), by
-- case: the code ferry.rpc gives it and a piece of the node's own text. nil: the node takes it.
local SAYS = {
  anvil = {
    gap = nil,                                  -- anvil queues a nonce above the next one
    mined_again = { "nonce_too_low", "nonce too low" },
    funds = { "insufficient_funds", "Insufficient funds for gas * price + value" },
    below_base_fee = { "underpriced", "max fee per gas less than block base fee" },
    pending_again = { "already_known", "transaction already imported" },
    replacement = { "underpriced", "replacement transaction underpriced" },
    intrinsic_gas = { "rpc_error", "intrinsic gas too low" },
    chain_id = { "rpc_error", "invalid chain id for signer" },
  },
  hardhat = {
    gap = { "nonce_too_high", "Nonce too high. Expected nonce to be 0 but got 5. Note that transactions can't be queued when automining." },
    mined_again = { "nonce_too_low", "Nonce too low. Expected nonce to be 1 but got 0." },
    funds = { "insufficient_funds", "Sender doesn't have enough funds to send tx. The max upfront cost is: " },
    below_base_fee = { "underpriced", "Transaction maxFeePerGas (1) is too low for the next block, which has a baseFeePerGas of " },
    pending_again = { "already_known", "Known transaction: 0x" },
    replacement = { "underpriced", "Replacement transaction underpriced. A gasPrice/maxFeePerGas of at least " },
    intrinsic_gas = { "rpc_error", "Transaction requires at least 21000 gas but got 20000" },
    chain_id = { "rpc_error", "Trying to send a raw transaction with an invalid chainId. The expected chainId is 31337" },
  },
}

-- a contract whose runtime code always reverts with Error("nope"), as creation code
local function reverting_contract()
  local z28 = ("00"):rep(28)
  local runtime = "7f08c379a0" .. z28 .. "600052" .. "6020600452" .. "6004602452" ..
    "7f6e6f7065" .. z28 .. "604452" .. "60646000fd"
  return ("0x61%04x80600c6000396000f3"):format(#runtime // 2) .. runtime
end

for _, name in ipairs(evm.NODES) do
  describe("on " .. name, function()
    local node, snap, chain, signer
    setup(function() node = evm.node(name) end)
    teardown(function() if node then node:stop() end end)
    before_each(function()
      snap = node:snapshot()
      chain = evm.chain_at(node.url, { stuck_after = 3 })
      signer = chain:signer(KEY0)
    end)
    after_each(function()
      chain:close()
      node:automine(true)
      node:revert(snap)
    end)

    -- sign a transfer from KEY0 at nonce n (fields override), send its bytes as they are
    local function fields(over)
      local f = chain:fees()
      local t = { to = ADDR1, value = 1, gas = 21000, max_fee = f.max_fee, max_priority_fee = f.max_priority_fee }
      for k, v in pairs(over or {}) do t[k] = v end
      return t
    end
    local function broadcast(raw) return chain:call("eth_sendRawTransaction", { raw }) end
    -- anvil answers a broadcast before its automine has mined it: wait for the receipt
    local function mined(hash)
      local deadline = ferry.now() + 5
      repeat
        local rc = chain:call("eth_getTransactionReceipt", { hash }, { fresh = true })
        if rc then return rc end
        ferry.sleep(0.01)
      until ferry.now() > deadline
      error("not mined within 5 s: " .. hash)
    end

    -- the node's answer is the code and text SAYS has for this case, and the nonce did not move
    local function refused(case, raw, nonce)
      local hash, err = broadcast(raw)
      local want = SAYS[name][case]
      if want == nil then
        assert.is_nil(err, case .. ": " .. tostring(err))
        assert.matches("^0x%x+$", hash)
        return
      end
      assert.is_nil(hash, case .. ": the node took it")
      assert.equal(want[1], err.code, case .. ": " .. tostring(err))
      assert.matches(want[2], err.message, 1, true)
      assert.equal(nonce, chain:nonce(ADDR0, "latest"), case .. ": the nonce moved")
    end

    describe("refuses a transaction, and ferry.rpc names why", function()
      it("a nonce above the next one", function()
        refused("gap", (signer:sign(fields{ nonce = 5 })), 0)
      end)

      it("the bytes of a mined transaction sent again", function()
        local raw, hash = signer:sign(fields{ nonce = 0 })
        assert.is_nil(select(2, broadcast(raw)))
        mined(hash)
        assert.equal(1, chain:nonce(ADDR0, "latest"))
        refused("mined_again", raw, 1)
      end)

      it("a value above the balance", function()
        refused("funds", (signer:sign(fields{ nonce = 0, value = eth.ether "20000" })), 0)
      end)

      it("a max fee below the base fee", function()
        refused("below_base_fee", (signer:sign(fields{ nonce = 0, max_fee = 1, max_priority_fee = 1 })), 0)
      end)

      it("the bytes of a pending transaction sent again", function()
        node:automine(false)
        local raw = signer:sign(fields{ nonce = 0 })
        assert.is_nil(select(2, broadcast(raw)))
        refused("pending_again", raw, 0)
      end)

      it("a replacement that pays no more", function()
        node:automine(false)
        local f = fields{ nonce = 0 }
        assert.is_nil(select(2, broadcast((signer:sign(f)))))
        f.value = 2
        refused("replacement", (signer:sign(f)), 0)
      end)

      it("a gas limit below the intrinsic 21000", function()
        refused("intrinsic_gas", (signer:sign(fields{ nonce = 0, gas = 20000 })), 0)
      end)

      it("another chain's id", function()
        refused("chain_id", (signer:sign(fields{ nonce = 0, chain_id = 1 })), 0)
      end)
    end)

    it("a transfer is mined and moves the value", function()
      local to = fresh_address(1)
      local tx = signer:send{ to = to, value = eth.ether "1.5" }
      local rc = tx:wait{ confirmations = 1, timeout = 10 }
      assert.equal(tx.hash, rc.transactionHash)
      assert.equal("0x1", rc.status)
      assert.equal(eth.ether "1.5", chain:balance(to, "latest", { fresh = true }))
    end)

    it("a call that would revert is refused with its reason before it is signed", function()
      local rc = signer:send{ data = reverting_contract() }:wait{ timeout = 10 }
      local target = eth.address(rc.contractAddress)
      local before = chain:nonce(ADDR0, "latest")
      local steps = {}
      local off = eth.on_step(function(ev) steps[#steps + 1] = ev.step end)
      local ok, err = pcall(signer.send, signer, { to = target, data = "0x12345678" })
      off()
      assert.is_false(ok)
      assert.equal("reverted", err.code, tostring(err))
      assert.equal("nope", err.reason, tostring(err))
      for _, s in ipairs(steps) do assert.are_not.equal("sign", s) end
      assert.equal(before, chain:nonce(ADDR0, "latest"))
      assert.equal(before, chain:nonce(ADDR0, "pending"))
    end)

    it("20 concurrent sends from one address are mined with contiguous nonces", function()
      local items = {}
      for i = 1, 20 do items[i] = fresh_address(100 + i) end
      local results, summary = wf.parallel(items, { max_concurrent = 20, progress = false }, function(to)
        local tx = signer:send{ to = to, value = 1000 }
        tx:wait{ timeout = 20 }
        return tx.nonce
      end)
      local errs = {}
      for _, r in ipairs(results) do if not r.ok then errs[#errs + 1] = tostring(r.err) end end
      assert.equal(0, summary.errors, table.concat(errs, "\n"))
      local seen = {}
      for _, r in ipairs(results) do seen[r.value] = true end
      for n = 0, 19 do assert.is_true(seen[n], "nonce " .. n) end
      assert.equal(20, chain:nonce(ADDR0, "latest"))
      for _, to in ipairs(items) do assert.equal(eth.u256(1000), chain:balance(to, "latest", { fresh = true })) end
    end)

    it("a transaction stuck below the base fee is replaced at the same nonce and the replacement is mined", function()
      node:automine(false)
      local f = chain:fees()
      local tx = signer:send{ to = ADDR1, value = 9, max_fee = f.base_fee, max_priority_fee = 1 }
      local first = tx.hash
      -- the base fee jumps to 100 gwei: the transaction no longer fits in a block
      node:next_base_fee(eth.gwei(100))
      local miner = ferry.spawn(function()
        while true do
          node:next_base_fee(eth.gwei(100))
          node:mine()
          ferry.sleep(0.1)
        end
      end)
      local ok, rc = pcall(tx.wait, tx, { timeout = 10, stuck_after = 0.3 })
      miner:cancel()
      node:next_base_fee(f.base_fee)
      assert.is_true(ok, tostring(rc))
      assert.equal(1, tx.bumps)
      assert.same({ first, tx.hash }, tx.hashes)
      assert.equal(tx.hash, rc.transactionHash)
      assert.is_true(tx.max_fee > eth.gwei(100))
      assert.equal(0, tx.nonce)
      assert.equal(1, chain:nonce(ADDR0, "latest"))
    end)

    it("a nonce freed by a refused broadcast is filled, and every later transaction is mined", function()
      local proxy <close> = evm.proxy(node)
      chain:close()
      chain = evm.chain_at(proxy.url, { gap_fill_after = 0.5 })
      signer = chain:signer(KEY0)
      local n = chain:_nonces(ADDR0)
      -- broadcasts take 400 ms, so the later sends take their nonces while the first one's
      -- broadcast is still out; that one pays 1 wei per gas, which the node refuses
      proxy:fault{ mode = "delay", ms = 400, methods = { "eth_sendRawTransaction" } }
      -- (its failure is this spec's to check: the task catches it, so no "task failed" log)
      local low = ferry.spawn(pcall, signer.send, signer, { to = fresh_address(900), value = 1, max_fee = 1, max_priority_fee = 1 })
      local deadline = ferry.now() + 5
      while n.next ~= 1 and ferry.now() < deadline do ferry.sleep(0.005) end
      assert.equal(1, n.next)
      local items = {}
      for i = 1, 7 do items[i] = fresh_address(900 + i) end
      local results, summary = wf.parallel(items, { max_concurrent = 7, progress = false }, function(to)
        return signer:send{ to = to, value = 1 }
      end)
      local errs = {}
      for _, r in ipairs(results) do if not r.ok then errs[#errs + 1] = tostring(r.err) end end
      assert.equal(0, summary.errors, table.concat(errs, "\n"))
      local _, ok, err = low:wait(5)
      assert.is_false(ok)
      assert.equal("underpriced", err.code, tostring(err))
      assert.equal(0, err.nonce)
      -- the seven hold nonces above the freed one; they are mined once the filler takes it
      for _, r in ipairs(results) do r.value:wait{ timeout = 15 } end
      assert.equal(8, chain:nonce(ADDR0, "latest"))
      assert.equal(8, chain:nonce(ADDR0, "pending"))
      for _, to in ipairs(items) do assert.equal(eth.u256(1), chain:balance(to, "latest", { fresh = true })) end
    end)

    it("tx:wait on a transaction the node dropped sends the same bytes again, and it is mined", function()
      node:automine(false)
      local tx = signer:send{ to = ADDR1, value = 7 }
      assert.is_true(node:drop(tx.hash))
      assert.equal(0, chain:nonce(ADDR0, "pending"))
      local miner = ferry.spawn(function()
        while true do ferry.sleep(0.05); node:mine() end
      end)
      local ok, rc = pcall(tx.wait, tx, { timeout = 5, rebroadcast = 0.2 })
      miner:cancel()
      assert.is_true(ok, tostring(rc))
      assert.equal(tx.hash, rc.transactionHash)
      assert.is_true(tx.rebroadcasts >= 1)
      assert.equal(1, chain:nonce(ADDR0, "latest"))
    end)
  end)
end
