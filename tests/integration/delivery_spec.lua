-- The money rule under a failing or lying provider: once signed bytes may have reached a node,
-- the payment is bound to its nonce and hash. It is mined, replaced by a fee bump of itself,
-- or proven absent with its nonce taken by another transaction; it is never signed again at
-- another nonce. Payments are counted by balances, never by return values.
local ferry = require "ferry"
local eth = require "ferry.eth"
local wf = require "ferry.workflow"
local evm = require "helpers.evm"

local ADDR0, ADDR1 = evm.ADDR0, evm.ADDR1
local fresh_address = evm.fresh_address

-- One provider whose breaker opens for short spells: 30 cut replies open it, and with its
-- default cooldowns (1 s doubling to 30 s) the batch would spend its time waiting on it.
local function behind_proxy(settings)
  settings = settings or {}
  settings.breaker = { cooldown = 0.05, max_cooldown = 0.2 }
  return evm.behind_proxy(settings)
end

local function broadcasts(proxy) return proxy:stats().methods.eth_sendRawTransaction or 0 end

local function balance(chain, addr) return chain:balance(addr, "latest", { fresh = true }) end

-- n sends of `value` wei to fresh recipients, 32 in flight, each waited for. Then, by the
-- chain: every recipient whose send+wait succeeded has exactly `value`, every other has 0
-- and failed before anything was signed, and the address used exactly one nonce per payment
-- made. -> paid, failed (counts)
-- What the faults make the engine log (unanswered broadcasts, calls still waiting) is kept
-- off the run's output, and shown if a check fails.
local check
local function batch(chain, signer, n, value, opts)
  local start = chain:nonce(ADDR0, "latest")
  local to = {}
  for i = 1, n do to[i] = fresh_address(i) end
  local logged, results = ferry.log.capture(wf.parallel, to, { max_concurrent = 32, progress = false }, function(addr)
    local tx = signer:send{ to = addr, value = value }
    return tx:wait{ timeout = (opts and opts.wait) or 30, rebroadcast = 0.5 }
  end)
  local ok, paid, failed = pcall(check, chain, results, to, value, start)
  if not ok then io.stderr:write(logged); error(paid, 0) end
  return paid, failed
end

function check(chain, results, to, value, start)
  local paid, failed = 0, 0
  local errors = {}
  for i, r in ipairs(results) do
    if not r.ok then
      errors[tostring(r.err)] = (errors[tostring(r.err)] or 0) + 1
      -- a provider down for a moment may fail a send before it signs anything (its reads);
      -- once signed, a send and its wait end only in a receipt
      assert.is_nil(type(r.err) == "table" and r.err.hash, "failed after signing: " .. tostring(r.err))
    end
    local got = balance(chain, to[i])
    if r.ok then
      paid = paid + 1
      assert.equal(eth.u256(value), got, ("recipient %d: send returned ok, chain holds %s"):format(i, tostring(got)))
    else
      failed = failed + 1
      assert.equal(eth.u256(0), got, ("recipient %d: send failed (%s), chain holds %s"):format(i, tostring(r.err), tostring(got)))
    end
  end
  assert.equal(start + paid, chain:nonce(ADDR0, "latest"), "one nonce per payment")
  for e, k in pairs(errors) do print(("\n    %d x %s"):format(k, e)) end
  return paid, failed
end

describe("a broadcast whose reply is cut", function()
  it("pays its recipient once: the retry meets 'nonce too low', and the hash is looked up", function()
    local anvil, proxy, chain, signer = behind_proxy()
    local to = fresh_address(1)
    local start = chain:nonce(ADDR0, "latest")
    proxy:reset_stats()
    proxy:fault{ mode = "truncated", count = 1, methods = { "eth_sendRawTransaction" } }
    local tx = signer:send{ to = to, value = eth.ether "1" }
    tx:wait{ timeout = 10 }
    assert.equal(eth.ether "1", balance(chain, to))
    assert.equal(start + 1, chain:nonce(ADDR0, "latest"))
    assert.is_true(broadcasts(proxy) >= 2, "the cut broadcast was retried")
    proxy:stop(); anvil:stop()
  end)

  it("in a batch of 100 with 30 cut replies, pays every recipient exactly once", function()
    local anvil, proxy, chain, signer = behind_proxy()
    proxy:fault{ mode = "truncated", count = 30, methods = { "eth_sendRawTransaction" } }
    local paid, failed = batch(chain, signer, 100, 1000)
    print(("\n    30 cut replies: %d paid once, %d failed before signing, %d broadcasts"):format(paid, failed, broadcasts(proxy)))
    assert.is_true(paid > failed)
    proxy:stop(); anvil:stop()
  end)

  it("when every reply is cut, the send still binds the payment and it is mined once", function()
    local anvil, proxy, chain, signer = behind_proxy({ timeout = 0.3 })
    local to = fresh_address(2)
    proxy:fault{ mode = "truncated", methods = { "eth_sendRawTransaction" } }
    local tx = signer:send{ to = to, value = 77 }
    proxy:fault{ mode = "pass" }
    tx:wait{ timeout = 10 }
    assert.equal(eth.u256(77), balance(chain, to))
    proxy:stop(); anvil:stop()
  end)
end)

describe("a broadcast that hangs", function()
  it("in a batch of 100 with 30 hung broadcasts, pays every recipient exactly once", function()
    local anvil, proxy, chain, signer = behind_proxy({ timeout = 0.4 })
    proxy:fault{ mode = "hang", count = 30, methods = { "eth_sendRawTransaction" } }
    local paid, failed = batch(chain, signer, 100, 1000)
    print(("\n    30 hung broadcasts: %d paid once, %d failed before signing"):format(paid, failed))
    assert.is_true(paid > failed)
    proxy:stop(); anvil:stop()
  end)

  it("forwarded after the client gave up (a late arrival) is paid once", function()
    local anvil, proxy, chain, signer = behind_proxy({ timeout = 0.3 })
    proxy:fault{ mode = "delay", ms = 700, count = 20, methods = { "eth_sendRawTransaction" } }
    local paid, failed = batch(chain, signer, 40, 500)
    ferry.sleep(1)                              -- every late copy has arrived by now
    print(("\n    20 late broadcasts: %d paid once, %d failed before signing"):format(paid, failed))
    assert.is_true(paid > failed)
    proxy:stop(); anvil:stop()
  end)

  -- Every broadcast hangs for as long as the send waits: it comes back bound (tx.unsure), and
  -- the next send, once the provider answers again, takes the nonce above it.
  -- -> anvil, proxy, chain, tx, tx2, to
  local function hung(n, value)
    local anvil, proxy, chain, signer = behind_proxy({ timeout = 0.3 })
    chain.pool.retries = 0
    local to = fresh_address(n)
    proxy:fault{ mode = "hang", methods = { "eth_sendRawTransaction" } }
    local tx = signer:send{ to = to, value = value }
    assert.equal("timeout", tx.unsure.code)
    assert.equal(tx, chain:_nonces(ADDR0).bound[tx.nonce])
    proxy:fault{ mode = "pass" }
    local tx2 = signer:send{ to = ADDR1, value = 6 }
    assert.equal(tx.nonce + 1, tx2.nonce)
    return anvil, proxy, chain, tx, tx2, to
  end

  it("for longer than the send waits: the tx comes back bound and is mined once the provider answers", function()
    local anvil, proxy, chain, tx, tx2, to = hung(3, 5)
    tx:wait{ timeout = 10, rebroadcast = 0.2 }
    tx2:wait{ timeout = 10 }
    assert.equal(eth.u256(5), balance(chain, to))
    proxy:stop(); anvil:stop()
  end)

  it("and nobody waits on it: a tracker sends the same bytes again, and the payment is mined once", function()
    local anvil, proxy, chain, tx, tx2, to = hung(13, 15)
    tx2:wait{ timeout = 10 }                    -- mined only once the tracker resent tx
    assert.equal(eth.u256(15), balance(chain, to))
    assert.equal(tx.hash, chain:receipt(tx.hash).transaction_hash)
    local deadline = ferry.now() + 5
    while chain:_nonces(ADDR0).bound[tx.nonce] and ferry.now() < deadline do ferry.sleep(0.05) end
    assert.is_nil(chain:_nonces(ADDR0).bound[tx.nonce], "the tracker let go of it")
    proxy:stop(); anvil:stop()
  end)
end)

describe("a broadcast answered with HTTP 500", function()
  it("in a batch of 100 with 30 of them, pays every recipient exactly once", function()
    local anvil, proxy, chain, signer = behind_proxy()
    proxy:fault{ mode = "500", count = 30, methods = { "eth_sendRawTransaction" } }
    local paid, failed = batch(chain, signer, 100, 1000)
    print(("\n    30 HTTP 500s: %d paid once, %d failed before signing"):format(paid, failed))
    assert.is_true(paid > failed)
    proxy:stop(); anvil:stop()
  end)

  it("on every try: the payment stays bound (a 5xx may come after the node took it), and is mined once", function()
    local anvil, proxy, chain, signer = behind_proxy()
    local to = fresh_address(4)
    proxy:fault{ mode = "500", methods = { "eth_sendRawTransaction" } }
    local tx = signer:send{ to = to, value = 9 }
    assert.equal("provider_down", tx.unsure.code)
    proxy:fault{ mode = "pass" }
    tx:wait{ timeout = 10, rebroadcast = 0.2 }
    assert.equal(eth.u256(9), balance(chain, to))
    proxy:stop(); anvil:stop()
  end)
end)

describe("a nonce another transaction took", function()
  it("is an error the caller sees; the payment is never signed again at another nonce", function()
    local anvil, proxy, chain, signer = behind_proxy()
    signer:send{ to = ADDR1, value = 1 }:wait{ timeout = 10 }        -- the allocator is at 1
    -- another process (another chain object) pays from the same key at nonce 1
    local other = evm.chain_at(anvil.url)
    other:signer(evm.KEY0):send{ to = ADDR1, value = 2 }:wait{ timeout = 10 }
    local to = fresh_address(7)
    proxy:reset_stats()
    local ok, err = pcall(signer.send, signer, { to = to, value = 3 })
    assert.is_false(ok)
    assert.equal("nonce_too_low", err.code)
    assert.equal(1, err.nonce)
    assert.matches("taken by another transaction", err.message, 1, true)
    assert.equal(1, broadcasts(proxy), "signed once, broadcast once")
    assert.equal(eth.u256(0), balance(chain, to))
    -- the allocator has moved on: the next send is mined at nonce 2
    local tx = signer:send{ to = to, value = 4 }
    assert.equal(2, tx.nonce)
    tx:wait{ timeout = 10 }
    assert.equal(eth.u256(4), balance(chain, to))
    proxy:stop(); anvil:stop()
  end)
end)

describe("a provider that lies about the broadcast", function()
  it("says 'nonce too low' for a nonce that is not used: the payment stays bound and is mined once", function()
    local anvil, proxy, chain, signer = behind_proxy()
    local to = fresh_address(8)
    proxy:fault{ mode = "reply", count = 1, methods = { "eth_sendRawTransaction" },
                 error = { code = -32000, message = "nonce too low" } }
    local tx = signer:send{ to = to, value = 11 }
    assert.equal("nonce_too_low", tx.unsure.code)
    tx:wait{ timeout = 10, rebroadcast = 0.2 }
    assert.equal(eth.u256(11), balance(chain, to))
    assert.equal(1, chain:nonce(ADDR0, "latest"))
    proxy:stop(); anvil:stop()
  end)

  it("takes the transaction and answers 'nonce too low': the hash is found, nothing is signed again", function()
    local anvil, proxy, chain, signer = behind_proxy()
    local to = fresh_address(9)
    proxy:fault{ mode = "forward_then_reply", count = 1, methods = { "eth_sendRawTransaction" },
                 error = { code = -32000, message = "nonce too low" } }
    local tx = signer:send{ to = to, value = 12 }
    assert.is_nil(tx.unsure)
    tx:wait{ timeout = 10 }
    assert.equal(eth.u256(12), balance(chain, to))
    assert.equal(1, chain:nonce(ADDR0, "latest"))
    proxy:stop(); anvil:stop()
  end)
end)

describe("a fee bump whose broadcast gets no clear answer", function()
  it("is one more version of the payment: its receipt ends the wait, and the payment is mined once", function()
    local anvil, proxy, chain, signer = evm.behind_proxy({ breaker = { cooldown = 0.05, max_cooldown = 0.2 } },
                                                         { "--no-mining" })
    local to = fresh_address(10)
    local f = chain:fees()
    local tx = signer:send{ to = to, value = 9, max_fee = f.base_fee, max_priority_fee = 1 }
    local first = tx.hash
    -- the base fee jumps: the transaction no longer fits, and is bumped; the node takes the
    -- replacement, and every answer to it is a 500
    local miner = ferry.spawn(function()
      while true do
        anvil.rpc:call("anvil_setNextBlockBaseFeePerGas", { "0x174876e800" })
        anvil.rpc:call("evm_mine", {})
        ferry.sleep(0.1)
      end
    end)
    proxy:fault{ mode = "forward_then_reply", status = 500, count = 3, methods = { "eth_sendRawTransaction" } }
    local ok, rc = pcall(tx.wait, tx, { timeout = 10, stuck_after = 0.3, rebroadcast = 0.5 })
    miner:cancel()
    assert.is_true(ok, tostring(rc))
    assert.are_not.equal(first, rc.transactionHash)
    assert.equal(eth.u256(9), balance(chain, to))
    assert.equal(1, chain:nonce(ADDR0, "latest"))
    proxy:stop(); anvil:stop()
  end)
end)

describe("a refusal that our own sends explain", function()
  it("'transaction underpriced' while the node keeps nothing: out-bid at the same nonce, no failure, no cascade", function()
    local anvil, proxy, chain, signer = behind_proxy()
    proxy:fault{ mode = "reply", count = 3, methods = { "eth_sendRawTransaction" },
                 error = { code = -32000, message = "transaction underpriced" } }
    local paid, failed = batch(chain, signer, 50, 700)
    print(("\n    3 underpriced refusals in 50 sends: %d paid once, %d failed"):format(paid, failed))
    assert.equal(50, paid)
    proxy:stop(); anvil:stop()
  end)

  it("'nonce too high' for a nonce whose lower ones are ours: the same bytes again, no failure", function()
    local anvil, proxy, chain, signer = behind_proxy()
    proxy:fault{ mode = "reply", count = 3, methods = { "eth_sendRawTransaction" },
                 error = { code = -32000, message = "Nonce too high. Expected nonce to be 0 but got 1." } }
    local paid, failed = batch(chain, signer, 50, 800)
    print(("\n    3 'nonce too high' in 50 sends: %d paid once, %d failed"):format(paid, failed))
    assert.equal(50, paid)
    proxy:stop(); anvil:stop()
  end)

  it("a caller's own price is not raised: underpriced at an explicit max_fee is the caller's error", function()
    local anvil, proxy, chain, signer = behind_proxy()
    local f = chain:fees()
    proxy:fault{ mode = "reply", count = 1, methods = { "eth_sendRawTransaction" },
                 error = { code = -32000, message = "transaction underpriced" } }
    local ok, err = pcall(signer.send, signer, { to = fresh_address(11), value = 1, max_fee = f.max_fee, max_priority_fee = 1 })
    assert.is_false(ok)
    assert.equal("underpriced", err.code)
    -- and its nonce is free again: the next send takes it
    local tx = signer:send{ to = fresh_address(12), value = 1 }
    assert.equal(err.nonce, tx.nonce)
    tx:wait{ timeout = 10 }
    proxy:stop(); anvil:stop()
  end)
end)

describe("a send cancelled while its broadcast is out", function()
  it("leaves the payment bound to its nonce (a tracker sees it through), and the next send takes the next nonce", function()
    local anvil, proxy, chain, signer = behind_proxy({ timeout = 2 })
    local to = fresh_address(14)
    proxy:fault{ mode = "delay", ms = 500, count = 1, methods = { "eth_sendRawTransaction" } }
    local events = {}
    local off = eth.on_step(function(ev) events[#events + 1] = ev end)
    local t = ferry.spawn(signer.send, signer, { to = to, value = 21 })
    local deadline = ferry.now() + 5
    while not (events[#events] and events[#events].step == "journal") and ferry.now() < deadline do ferry.sleep(0.01) end
    off()
    ferry.sleep(0.05)                           -- the broadcast is on its way (delayed 500 ms)
    t:cancel("the caller gave up")
    local n = chain:_nonces(ADDR0)
    local bound = n.bound[events[#events].nonce]
    assert.is_not_nil(bound, "bound to its nonce")
    local tx2 = signer:send{ to = ADDR1, value = 1 }
    assert.equal(bound.nonce + 1, tx2.nonce)
    tx2:wait{ timeout = 10 }
    assert.equal(eth.u256(21), balance(chain, to))   -- the delayed copy arrived: paid once
    proxy:stop(); anvil:stop()
  end)
end)
