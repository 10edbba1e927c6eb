-- Solana payments in bulk, counted by balances: 500 transfers from one payer through
-- workflow.parallel, then 200 while the peer expires blockhashes, drops and delays
-- transactions and a fault proxy cuts and fails sendTransaction. Every transfer lands exactly
-- once, and every re-sign follows a status read of all the payment's earlier signatures that
-- said "not landed" (tx.events).
local ferry = require "ferry"
local sol = require "ferry.sol"
local wf = require "ferry.workflow"
local peers = require "helpers.peers"

local FEE = 5000  -- one signature, no priority fee

-- n transfers of base + i lamports to fresh recipients -> recipients, results, txs
local function batch(payer, n, base, opts)
  local to, txs = {}, {}
  for i = 1, n do to[i] = sol.address(sol.keygen()) end
  local logged, results = ferry.log.capture(wf.parallel, to, { max_concurrent = 32, progress = false }, function(addr, i)
    local tx = payer:transfer{ to = addr, lamports = base + i, priority_fee = 0 }
    txs[i] = tx
    return tx:wait{ commitment = "confirmed", timeout = opts and opts.timeout or 60 }
  end)
  return to, results, txs, logged
end

-- every re-sign (a "sign" event after the first) follows a status read, since the last send,
-- of as many signatures as the payment had, that found none landed
local function resigns_after_status(tx)
  local signs, checked = 0, false
  for _, e in ipairs(tx.events) do
    if e.step == "sign" then
      if signs > 0 and not checked then return false end
      signs, checked = signs + 1, false
    elseif e.step == "status" then
      checked = e.landed == false and e.checked == signs
    elseif e.step == "send" then
      checked = false
    end
  end
  return true
end

describe("ferry.sol payments", function()
  local peer, proxy, chain, payer

  setup(function()
    -- blockhashes live 30 s (600 slots of 50 ms), not 7.5 s: on a loaded machine (the whole
    -- suite on 2 cores) a dropped send's resend came after its blockhash expired, and was
    -- rightly signed again; the expiries these cases mean to test are forced by the peer
    peer = peers.solana{ valid_blocks = 600 }
    proxy = peers.proxy(peer.url)
    chain = sol.connect{ providers = { { name = "proxied", url = proxy.url, rps = 100000 } },
                         breaker = { cooldown = 0.05, max_cooldown = 0.2 },
                         solana = { poll = 0.1, rebroadcast = 0.5 } }
    payer = chain:signer(sol.raw(string.rep("\5", 32)))
    peer:airdrop(payer.address, 10000 * sol.LAMPORTS_PER_SOL)
  end)
  teardown(function() proxy:stop(); peer:stop() end)

  it("500 transfers through workflow.parallel: all confirmed, every balance and every fee", function()
    local before = chain:balance(payer.address)
    local t0 = ferry.now()
    local to, results = batch(payer, 500, 1000000)
    local dt = ferry.now() - t0
    local paid = 0
    for i, r in ipairs(results) do
      assert.is_true(r.ok, r.err and r.err.message)
      assert.are.equal(1000000 + i, chain:balance(to[i]))
      paid = paid + 1000000 + i
    end
    assert.are.equal(before - paid - 500 * FEE, chain:balance(payer.address))
    print(("\n500 transfers confirmed in %.2f s (%.0f/s)"):format(dt, 500 / dt))
  end)

  it("200 transfers while blockhashes expire, and sends are dropped, delayed, cut and failed: each lands once", function()
    local st0 = {}
    for k, v in pairs(chain.st) do st0[k] = v end
    local ps0 = peer:stats()
    local before = chain:balance(payer.address)
    peer:fault{ mode = "drop", count = 25 }
    peer:fault{ mode = "delay", count = 25, slots = 4 }
    proxy:fault{ mode = "truncated", methods = { "sendTransaction" }, count = 15 }
    -- the chaos, while the batch is in flight: expiries, then failed sends
    local chaos = ferry.spawn(function()
      for round = 1, 5 do
        ferry.sleep(0.3)
        peer:expire()
        if round == 3 then proxy:fault{ mode = "500", methods = { "sendTransaction" }, count = 15 } end
      end
    end)
    local to, results, txs = batch(payer, 200, 2000000, { timeout = 90 })
    chaos:wait()
    local paid, copies = 0, 0
    for i, r in ipairs(results) do
      assert.is_true(r.ok, r.err and r.err.message)
      assert.are.equal(2000000 + i, chain:balance(to[i]))  -- exactly once: never twice, never lost
      paid = paid + 2000000 + i
      copies = copies + txs[i].copies
      assert.is_true(resigns_after_status(txs[i]), "tx " .. i .. " was re-signed without a status read first")
    end
    -- one fee per landed copy: if a payment had landed twice its fee and amount would show here
    assert.are.equal(before - paid - 200 * FEE, chain:balance(payer.address))
    local d = {}
    for k, v in pairs(chain.st) do d[k] = v - (st0[k] or 0) end
    local ps = peer:stats()
    print(("\nexpiry run: %d copies signed for 200 payments; re-signs %d after %d status reads (found landed at"
      .. " that read: %d); rebroadcasts %d; landed late %d; peer: dropped %d, delayed %d, refused as expired %d")
      :format(copies, d.resigns, d.status_checks, d.found_at_reconcile or 0, d.rebroadcasts, d.landed_late,
              ps.dropped - ps0.dropped, ps.delayed - ps0.delayed, ps.expired_refused - ps0.expired_refused))
    assert.is_true(d.resigns > 0)             -- the faults did force fresh blockhashes
    assert.are.equal(copies - 200, d.resigns)
    assert.are.equal(0, d.landed_late)
    assert.is_true(ps.dropped - ps0.dropped == 25 and ps.delayed - ps0.delayed == 25)
  end)

  it("dropped sends are sent again as the same bytes: one copy each, nothing re-signed", function()
    local st0 = { resigns = chain.st.resigns, rebroadcasts = chain.st.rebroadcasts }
    local before = chain:balance(payer.address)
    peer:fault{ mode = "drop", count = 10 }
    local to, results, txs = batch(payer, 20, 3000000)
    local paid = 0
    for i, r in ipairs(results) do
      assert.is_true(r.ok, r.err and r.err.message)
      assert.are.equal(3000000 + i, chain:balance(to[i]))
      assert.are.equal(1, txs[i].copies)
      paid = paid + 3000000 + i
    end
    assert.are.equal(before - paid - 20 * FEE, chain:balance(payer.address))
    assert.are.equal(st0.resigns, chain.st.resigns)
    assert.is_true(chain.st.rebroadcasts - st0.rebroadcasts >= 10)
  end)
end)

describe("ferry.sol blockhash cache", function()
  local peer, chain

  setup(function()
    peer = peers.solana{ slot_ms = 10000, valid_blocks = 40 }  -- slots move only when told
    chain = sol.connect{ providers = { { url = peer.url, rps = 100000 } },
                         solana = { blockhash_margin = 10, blockhash_max_age = 0.3 } }
  end)
  teardown(function() peer:stop() end)

  it("is reused, refreshed once the chain is within the margin of lastValidBlockHeight, and never older than its max age", function()
    local a = chain:blockhash()
    local fetches = chain.st.blockhash_fetches
    assert.are.equal(a, chain:blockhash())                 -- cached
    peer:advance(25)
    chain:block_height()                                   -- 15 blocks left: not yet within 10
    assert.are.equal(a, chain:blockhash())
    peer:advance(6)
    chain:block_height()                                   -- 9 left: refreshed
    local b = chain:blockhash()
    assert.are_not.equal(a.blockhash, b.blockhash)
    assert.are.equal(fetches + 1, chain.st.blockhash_fetches)
    ferry.sleep(0.35)                                      -- older than blockhash_max_age
    local c = chain:blockhash()
    assert.are.equal(fetches + 2, chain.st.blockhash_fetches)
    assert.is_true(c.at > b.at)
  end)

  it("concurrent callers share one fetch", function()
    chain:invalidate_blockhash()
    local fetches = chain.st.blockhash_fetches
    local got = wf.parallel({ 1, 2, 3, 4, 5, 6, 7, 8 }, { progress = false }, function() return chain:blockhash() end)
    for _, r in ipairs(got) do assert.are.equal(got[1].value, r.value) end
    assert.are.equal(fetches + 1, chain.st.blockhash_fetches)
  end)

  it("answers through a peer's 429s (the pool backs off and tries again)", function()
    peer:fault{ mode = "429", count = 2 }
    assert.is_number(chain:slot())
    assert.is_true(chain:pool_status()[1].rate_limited >= 1)
  end)
end)
