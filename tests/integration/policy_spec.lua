-- Policies in the send pipeline, against a real anvil: verdicts, the gas-spike queue, and a
-- policy file edited while a batch is sending.
local ferry = require "ferry"
local eth = require "ferry.eth"
local policy = require "ferry.policy"
local workflow = require "ferry.workflow"
local peers = require "helpers.peers"
local evm = require "helpers.evm"

local KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"   -- anvil's account 1

local child = require "helpers.child"
local tmpdir = child.tmpdir

-- Write like an editor: a temp file, then renamed over the old one.
local function write(dir, stem, src) child.write_as_editor(("%s/%s.lua"):format(dir, stem), src) end

local function shipped(name)
  local f = assert(io.open("policies/" .. name .. ".lua"))
  local src = f:read("a")
  f:close()
  return src
end

local function events_of(tx_or_err, prefix)
  local out = {}
  for _, ev in ipairs(tx_or_err.events or {}) do
    if ev.step:sub(1, #prefix) == prefix then out[#out + 1] = ev end
  end
  return out
end

describe("policies on anvil", function()
  local anvil, dir
  setup(function() anvil = peers.anvil() end)
  teardown(function() anvil:stop() end)
  before_each(function() dir = tmpdir() end)
  after_each(function()
    policy.stop()
    os.execute("rm -rf " .. dir)
  end)

  -- a chain whose config asks the policies in dir, in `enabled` order
  local function chain_with(enabled, extra)
    local root = { policies = { dir = dir, enabled = enabled, max_queue_wait = 30, settings = {} },
                   limits = { max_gas_price_gwei = 1000 } }
    for k, v in pairs(extra or {}) do
      if k == "settings" then root.policies.settings = v
      elseif k == "max_queue_wait" then root.policies.max_queue_wait = v
      else root.limits[k] = v end
    end
    local chain = eth.connect({ chain_id = 31337, providers = { { name = "anvil", url = anvil.url, rps = 10000 } } }, root)
    return chain, chain:signer(evm.KEY0)
  end

  it("a reject fails the send with policy_rejected, and its decision is in the events with the hash", function()
    write(dir, "deny", [[return { name = "deny", before_send = function(tx)
      if tx.value_eth > 1 then return "reject", "more than 1 ETH" end
    end }]])
    local _, signer = chain_with({ "deny" })
    local ok, err = pcall(signer.send, signer, { to = evm.fresh_address(1), value = eth.ether "2" })
    assert.is_false(ok)
    assert.equal("policy_rejected", err.code)
    assert.equal("deny", err.policy)
    assert.matches("more than 1 ETH", err.message)
    local tx = signer:send{ to = evm.fresh_address(2), value = eth.ether "0.5" }
    local d = events_of(tx, "policy:")
    assert.equal(1, #d)
    assert.equal("deny", d[1].policy)
    assert.equal(policy.status().files.deny.hash, d[1].policy_hash)
    assert.equal("allow", d[1].outcome)
  end)

  describe("gas_spike", function()
    local function spike(gwei)
      anvil:next_base_fee(eth.gwei(gwei))
      anvil:mine()
    end

    it("queues while the base fee is above the line, and sends once it falls", function()
      write(dir, "gas_spike", shipped("gas_spike"))
      local chain, signer = chain_with({ "gas_spike" }, { settings = { gas_spike = { max_base_fee_gwei = 50 } } })
      spike(200)
      local to = evm.fresh_address(3)
      local t = ferry.spawn(function() return signer:send{ to = to, value = eth.ether "0.01" } end)
      ferry.sleep(0.3)
      assert.not_equal("dead", t:status())               -- still queued: nothing sent
      assert.equal(0, chain:nonce(to) + #chain:call("eth_getBlockByNumber", { "pending", false }).transactions)
      spike(1)                                            -- the fee falls: the next head releases it
      local ok, tx = t:wait()
      assert.is_true(ok, tostring(tx))
      local rc = tx:wait{ timeout = 10 }
      assert.equal("0x1", rc.status)
      local d = events_of(tx, "policy:")
      assert.equal("queue", d[1].outcome)
      assert.matches("a spike", d[1].reason)
      assert.equal("allow", d[#d].outcome)
      -- signed with what the chain asked once it fell, not at the spike
      assert.is_true(tx.max_fee < eth.gwei(50))
    end)

    it("at the engine's own cap (both 500 gwei): a spike above it is queued, not refused; below it the fee is lowered to the cap", function()
      write(dir, "gas_spike", shipped("gas_spike"))
      local chain, signer = chain_with({ "gas_spike" }, { max_gas_price_gwei = 500,
                                                           settings = { gas_spike = { max_base_fee_gwei = 500 } } })
      -- a base fee of 300 gwei: the filled max fee (2 x base + tip) would be 600; the chain
      -- can mine at 500, so it is lowered to the cap and sent
      spike(300)
      local low = signer:send{ to = evm.fresh_address(5), value = 1 }
      assert.equal(eth.gwei(500), low.max_fee)
      assert.equal("0x1", low:wait{ timeout = 10 }.status)
      -- 800 gwei: above the cap and the policy's line: queued until it falls, never refused
      spike(800)
      local t = ferry.spawn(function() return signer:send{ to = evm.fresh_address(6), value = 1 } end)
      ferry.sleep(0.3)
      assert.not_equal("dead", t:status())
      spike(1)
      local ok, tx = t:wait()
      assert.is_true(ok, tostring(tx))
      assert.equal("0x1", tx:wait{ timeout = 10 }.status)
      assert.is_true(tx.max_fee <= eth.gwei(500))
      local _ = chain
    end)

    it("with no policy to hold it, a base fee above the cap is refused before anything is signed", function()
      local _, signer = chain_with({}, { max_gas_price_gwei = 500 })
      spike(800)
      local ok, err = pcall(signer.send, signer, { to = evm.fresh_address(7), value = 1 })
      assert.is_false(ok)
      assert.equal("policy_rejected", err.code)
      assert.matches("above the cap of 500 gwei", err.message, 1, true)
      spike(1)
    end)

    it("fails with queued_timeout past the maximum wait", function()
      write(dir, "gas_spike", shipped("gas_spike"))
      local _, signer = chain_with({ "gas_spike" }, { settings = { gas_spike = { max_base_fee_gwei = 50 } }, max_queue_wait = 0.5 })
      spike(200)
      local ok, err = pcall(signer.send, signer, { to = evm.fresh_address(4), value = eth.ether "0.01" })
      assert.is_false(ok)
      assert.equal("queued_timeout", err.code)
      assert.equal("gas_spike", err.policy)
      spike(1)
    end)
  end)

  it("500 transfers under random spikes: nothing broadcast above the cap, read back from the mined blocks", function()
    write(dir, "gas_spike", shipped("gas_spike"))
    local CAP = 120
    local chain, signer = chain_with({ "gas_spike" }, { settings = { gas_spike = { max_base_fee_gwei = 20 } },
                                                         max_gas_price_gwei = CAP, max_queue_wait = 60 })
    chain:track_heads(0.01)                    -- as eth.chain does: a new head drops cached fees
    -- read back through a chain of its own: nothing this batch's chain cached
    local function head() return evm.chain_at(anvil.url):block_number() end
    local first = head() + 1
    local calm, queued, txs, done = false, 0, {}, 0
    -- a new random base fee every 10 sends that end (or 0.2 s without one: all may be queued),
    -- calm for the last hundred
    local spiker = ferry.spawn(function()
      local levels = { 1, 2, 10, 25, 40, 55, 90 }     -- 90: the engine's cap stops it (2 x 90 > 120)
      local last, at, spikes = 0, ferry.now(), 0
      while done < 400 and spikes < 300 do
        if done - last >= 10 or ferry.now() - at > 0.2 then
          anvil:next_base_fee(eth.gwei(levels[math.random(#levels)]))
          anvil:mine()
          last, at, spikes = done, ferry.now(), spikes + 1
        end
        ferry.sleep(0.005)
      end
      anvil:next_base_fee(eth.gwei(1))
      anvil:mine()
      calm = true
    end)
    local items = {}
    for i = 1, 500 do items[i] = i end
    local _, results = ferry.log.capture(workflow.parallel, items, { max_concurrent = 16 }, function(i)
      local ok, r = pcall(signer.send, signer, { to = evm.ADDR1, value = i })
      done = done + 1
      if ok then
        for _, ev in ipairs(r.events) do if ev.outcome == "queue" then queued = queued + 1; break end end
        txs[#txs + 1] = r
        return "sent"
      end
      if r.code == "policy_rejected" and r.policy == nil then return "capped" end       -- the engine's cap
      if r.code == "underpriced" then return "refused" end     -- the fee rose past what the cap lets it out-bid
      error(r, 0)
    end)
    assert.is_true(spiker:wait())
    assert.is_true(calm)
    local counts = { sent = 0, capped = 0, refused = 0 }
    for _, r in ipairs(results) do
      assert.is_true(r.ok, r.err and (tostring(r.err.code) .. " " .. tostring(r.err.message) .. " " .. tostring(r.err.policy)))
      counts[r.value] = counts[r.value] + 1
    end
    assert.is_true(counts.sent > 0)
    -- every transaction of ours that was mined, read back from the blocks
    -- every one is mined in the end (gaps left by refused sends are filled, fee bumps capped too)
    local waited = ferry.log.capture(workflow.parallel, txs, { max_concurrent = 64 }, function(tx) return tx:wait{ timeout = 60 } end)
    assert.is_string(waited)
    local reader = evm.chain_at(anvil.url)
    local last, seen, fillers = reader:block_number(), 0, 0   -- fillers: 0-value to self at nonces refused sends freed
    for n = first, last do
      local b = reader:call("eth_getBlockByNumber", { ("0x%x"):format(n), true }, { fresh = true })
      for _, t in ipairs(b.transactions) do
        if t.from:lower() == evm.ADDR0:lower() then
          if t.to:lower() == evm.ADDR0:lower() then fillers = fillers + 1 else seen = seen + 1 end
          local fee = eth.u256(t.maxFeePerGas or t.gasPrice)
          assert.is_true(fee <= eth.gwei(CAP), ("%s signed at %s wei"):format(t.hash, tostring(fee)))
        end
      end
    end
    assert.equal(counts.sent, seen, ("blocks %d..%d"):format(first, last))
    assert.is_true(queued > 0, "nothing was queued")
    print(("\n500 transfers under spikes: %d sent (%d of them queued first), %d stopped by the cap, %d refused as "
      .. "underpriced; all %d, and %d gap fillers, mined at or under %d gwei")
      :format(counts.sent, queued, counts.capped, counts.refused, seen, fillers, CAP))
  end)

  it("during a 200-transfer batch: broken edits refused, a good one live within 100 ms, no decision saw half of one", function()
    local V1 = [[return { name = "sevens", version = 1, before_send = function() return "allow" end,
      self_test = function() end }]]
    local V2 = [[return { name = "sevens", version = 2, before_send = function(tx)
      if tonumber(tx.value) % 7 == 0 then return "reject", "a multiple of 7" end
    end, self_test = function() end }]]
    write(dir, "sevens", V1)
    local chain = chain_with({ "sevens" })
    local signer = chain:signer(KEY1)          -- its own nonces: the batch before may still fill gaps of KEY0's
    policy.start{ dir = dir, enabled = { "sevens" }, hup = false }
    local h1 = policy.status().files.sevens.hash
    local items = {}
    for i = 1, 200 do items[i] = i end
    local done, written_at, live_at = 0, nil, nil
    -- three broken edits first, each refused while the batch goes on with the old version
    local BROKEN = {
      { "return { name = 'sevens', before_send = function( end }", "sevens.lua:1:" },
      { "return { name = 'sevens', before_send = function() end, self_test = function() error('no') end }", "self_test failed" },
      { "return { name = 'sevens', before_send = 'allow' }", "must be a function" },
    }
    local refusals = {}
    local editor = ferry.spawn(function()
      while done < 30 do ferry.sleep(0.002) end
      for _, b in ipairs(BROKEN) do
        write(dir, "sevens", b[1])
        local t0 = ferry.now()
        while not (policy.status().files.sevens.err or ""):find(b[2], 1, true) and ferry.now() - t0 < 2 do
          ferry.sleep(0.001)
        end
        local st = policy.status().files.sevens
        refusals[#refusals + 1] = { ok = st.ok, err = st.err, kept = st.kept, done = done }
      end
      write(dir, "sevens", V2)
      written_at = ferry.now()
      while policy.status().files.sevens.hash == h1 do ferry.sleep(0.001) end
      live_at = ferry.now()
    end)
    local _, results = ferry.log.capture(workflow.parallel, items, { max_concurrent = 16 }, function(v)
      local ok, r = pcall(signer.send, signer, { to = evm.ADDR1, value = v })
      done = done + 1
      if ok then return { ok = true, events = r.events, v = v } end
      return { ok = false, err = r, v = v }
    end)
    assert.is_true(editor:wait())
    local h2 = policy.status().files.sevens.hash
    assert.not_equal(h1, h2)
    for i, r in ipairs(refusals) do
      assert.is_false(r.ok, BROKEN[i][2])
      assert.matches(BROKEN[i][2], r.err, 1, true)
      assert.equal(h1, r.kept)                          -- the old version stayed in force
    end
    assert.is_true(refusals[3].done < 200, "the batch was over before the edits")
    local latency = (live_at - written_at) * 1000
    print(("\npolicy reload: live %.1f ms after the write"):format(latency))
    assert.is_true(latency < 100, ("%.1f ms"):format(latency))
    local by_hash = { [h1] = 0, [h2] = 0 }
    for _, r in ipairs(results) do
      local res = r.value
      local evs = res.ok and res.events or res.err.events or {}
      local d = events_of({ events = evs }, "policy:")
      local hash = d[1] and d[1].policy_hash or (res.err and res.err.policy_hash)
      assert.is_not_nil(by_hash[hash], res.err and tostring(res.err.code) .. " " .. tostring(res.err.message))
      by_hash[hash] = by_hash[hash] + 1
      -- each decision is exactly what the version it names says
      if hash == h2 and res.v % 7 == 0 then
        assert.is_false(res.ok)
        assert.equal("policy_rejected", res.err.code)
      else
        assert.is_true(res.ok, tostring(res.err))
      end
    end
    assert.is_true(by_hash[h1] >= 50 and by_hash[h2] > 0, ("v1 %d, v2 %d"):format(by_hash[h1], by_hash[h2]))
  end)
end)
