-- The journal (ferry.store): every send is a row written before each step, an id pays once,
-- and what a process that died left on its way is resumed. Payments are counted by balances.
local ferry = require "ferry"
local eth = require "ferry.eth"
local store = require "ferry.store"
local signal = require "ferry.core.signal"
local evm = require "helpers.evm"

local ADDR0, fresh_address = evm.ADDR0, evm.fresh_address

local function balance(chain, addr) return chain:balance(addr, "latest", { fresh = true }) end
local function uid(what) return ("%s-%d-%d"):format(what, math.random(1e9), math.floor(ferry.now() * 1e6)) end
local function journal() return store.get().journal end

-- until f() is true, at most `timeout` seconds
local function eventually(f, timeout)
  local deadline = ferry.now() + (timeout or 10)
  while not f() do
    if ferry.now() > deadline then return false end
    ferry.sleep(0.02)
  end
  return true
end

describe("the journal", function()
  it("holds a send's signed bytes before they leave, then its outcome, its block and every step", function()
    local anvil, proxy, chain, signer = evm.behind_proxy({ timeout = 0.5 })
    local to, id = fresh_address(1), uid("journaled")
    proxy:fault{ mode = "hang", methods = { "eth_sendRawTransaction" } }
    local sending = ferry.spawn(function() return signer:send{ to = to, value = 5, id = id } end)
    local row
    assert.is_true(eventually(function() row = journal():get(id); return row and row.state == "signed" end))
    -- the bytes are on disk while the broadcast is still out, and they are the transaction
    assert.equal(row.hash, eth.keccak256(row.raw))
    assert.equal(ADDR0, row.address)
    assert.equal(0, row.nonce)
    assert.equal(tostring(to):lower(), row.fields.to:lower())
    assert.equal("5", row.fields.value)
    proxy:fault{ mode = "pass" }
    local ok, tx = sending:wait()
    assert.is_true(ok, tostring(tx))
    assert.equal(row.hash, tx.hash)
    assert.matches("^[su][en][ns]", journal():get(id).state)       -- sent, or unsure (the hang timed out)
    local rc = tx:wait{ timeout = 10, rebroadcast = 0.2 }
    row = journal():get(id)
    assert.equal("confirmed", row.state)
    assert.equal(eth.quantity(rc.blockNumber), row.block)
    assert.equal(eth.u256(5), balance(chain, to))
    local steps = {}
    for _, e in ipairs(journal():events(id)) do steps[#steps + 1] = e.step end
    assert.same({ "validate", "claim", "fill_fees", "cap", "fill_gas", "policy", "preflight", "simulate", "reserve",
                  "sign", "journal", "broadcast", "track" }, steps)
    assert.equal(row.id, journal():by_hash(row.hash:upper():gsub("^0X", "0x")).id)
    proxy:stop(); anvil:stop()
  end)

  it("a send that fails before its broadcast is a failed row: nothing paid", function()
    local anvil, chain, signer = evm.on_anvil()
    local id = uid("too-much")
    local ok, err = pcall(signer.send, signer, { to = fresh_address(2), value = eth.ether "1000000", id = id })
    assert.is_false(ok)
    assert.equal("insufficient_funds", err.code)
    local row = journal():get(id)
    assert.equal("failed", row.state)
    assert.matches("insufficient_funds", row.error, 1, true)
    local _ = chain
    anvil:stop()
  end)
end)

describe("signer:send with an id", function()
  it("pays once: a second send, five at once and one after the first is mined return the first transaction", function()
    local anvil, chain, signer = evm.on_anvil()
    local to, id = fresh_address(3), uid("payout")
    local tasks = {}
    for i = 1, 5 do tasks[i] = ferry.spawn(function() return signer:send{ to = to, value = 7, id = id } end) end
    local hashes = {}
    for i = 1, 5 do
      local ok, tx = tasks[i]:wait()
      assert.is_true(ok, tostring(tx))
      hashes[tx.hash] = true
    end
    local n = 0
    for _ in pairs(hashes) do n = n + 1 end
    assert.equal(1, n, "one transaction for one id")
    local first = next(hashes)
    local again = signer:send{ to = to, value = 7, id = id }
    assert.equal(first, again.hash)
    again:wait{ timeout = 10 }
    local later = signer:send{ to = to, value = 7, id = id }
    assert.equal(first, later.hash)
    later:wait{ timeout = 10 }                              -- a mined one answers its wait at once
    assert.equal(eth.u256(7), balance(chain, to))
    assert.equal(1, chain:nonce(ADDR0, "latest"))
    -- what scripts and the REPL read
    local fj = require "ferry.journal"
    assert.equal(first, fj.get(id).hash)
    assert.equal(id, fj.by_hash(first).id)
    local mine = 0
    for _, r in ipairs(fj.by_address(ADDR0:lower(), "confirmed")) do if r.id == id then mine = mine + 1 end end
    assert.equal(1, mine)
    for _, r in ipairs(fj.pending()) do assert.are_not.equal(id, r.id) end
    local stats = ferry.stats()
    assert.is_true(stats.nonces.reserved >= 1)
    assert.equal("sqlite", stats.store.kind)
    assert.is_true(stats.store.journal.confirmed >= 1)
    anvil:stop()
  end)

  it("refuses another payment under a used id, and sends again an id whose send paid nothing", function()
    local anvil, chain = evm.on_anvil()
    local key = "0x" .. eth.keccak256(eth.raw(uid("key"))):sub(3)
    local poor = chain:signer(key)
    local to, id = fresh_address(4), uid("retry")
    local ok, err = pcall(poor.send, poor, { to = to, value = 9, id = id })
    assert.is_false(ok)
    assert.equal("insufficient_funds", err.code)
    assert.is_nil(select(2, anvil.rpc:call("anvil_setBalance", { poor.address, "0xde0b6b3a7640000" })))
    local tx = poor:send{ to = to, value = 9, id = id }      -- the failed id is sent again
    tx:wait{ timeout = 10 }
    assert.equal(eth.u256(9), balance(chain, to))
    local ok2, err2 = pcall(poor.send, poor, { to = to, value = 10, id = id })
    assert.is_false(ok2)
    assert.equal("invalid_argument", err2.code)
    assert.matches("already used for another payment", err2.message, 1, true)
    assert.equal(eth.u256(9), balance(chain, to))
    anvil:stop()
  end)
end)

describe("recovery from the journal", function()
  it("sends again the signed bytes a dead process left, and gives back the nonce of one it had not signed", function()
    local anvil, chain, signer = evm.on_anvil()
    local genesis = assert(anvil.rpc:call("eth_getBlockByNumber", { "0x0", false })).hash:lower()
    local chain_key = ("31337:%s"):format(genesis:sub(1, 18))
    local host = io.open("/proc/sys/kernel/hostname"):read("l")
    local dead = 4194000
    while signal.alive(dead) do dead = dead - 1 end
    local owner = ("%s:%d:deadbeef"):format(host, dead)
    local to, lost = fresh_address(5), fresh_address(6)
    -- what the dead process had: nonce 0 signed (maybe sent), nonce 1 reserved, not signed
    local raw, hash = signer:sign{ to = to, value = 11, nonce = 0, gas = 21000, max_fee = eth.gwei(10),
                                   max_priority_fee = eth.gwei(1) }
    local s = store.get()
    local signed_id, reserved_id = uid("dead-signed"), uid("dead-reserved")
    s:exec([[INSERT INTO txs(id, chain, chain_id, chain_key, address, nonce, state, hash, raw, hashes, fields, owner,
             created, updated) VALUES(?, 'adhoc', 31337, ?, ?, 0, 'signed', ?, ?, ?, ?, ?, 1, 1)]],
      signed_id, chain_key, ADDR0, hash, raw, ('["%s"]'):format(hash), ('{"to":"%s","value":"11"}'):format(to), owner)
    s:exec([[INSERT INTO txs(id, chain, chain_id, chain_key, address, nonce, state, fields, owner, created, updated)
             VALUES(?, 'adhoc', 31337, ?, ?, 1, 'reserved', ?, ?, 2, 2)]],
      reserved_id, chain_key, ADDR0, ('{"to":"%s","value":"12"}'):format(lost), owner)
    -- this process's first send from the address resumes them first (and logs it)
    local logged, tx = ferry.log.capture(signer.send, signer, { to = fresh_address(7), value = 13 })
    assert.matches("resuming a transaction from the journal", logged, 1, true)
    assert.equal(1, tx.nonce, "the unsigned nonce is handed out again, no gap")
    tx:wait{ timeout = 10 }
    assert.is_true(eventually(function() return journal():get(signed_id).state == "confirmed" end, 15))
    assert.equal(eth.u256(11), balance(chain, to))
    assert.equal(eth.u256(0), balance(chain, lost))
    local r = journal():get(reserved_id)
    assert.equal("failed", r.state)
    assert.matches("nothing was sent", r.error, 1, true)
    assert.equal(2, chain:nonce(ADDR0, "latest"))
    anvil:stop()
  end)
end)

describe("the nonce floor", function()
  it("a refused broadcast gives its nonce back (no gap), and a `cast send` from the same address raises the floor", function()
    local anvil, proxy, chain, signer = evm.behind_proxy({ timeout = 2, breaker = { cooldown = 0.05, max_cooldown = 0.2 } })
    local peers = require "helpers.peers"
    signer:send{ to = fresh_address(8), value = 1 }:wait{ timeout = 10 }          -- nonce 0
    -- the provider goes down between the signature and the broadcast. A kept-alive
    -- connection reset under the request may have delivered it: the payment stays bound to
    -- nonce 1 and is sent again once the provider is back. A connection refused outright
    -- delivered nothing: nonce 1 is free again. No gap either way.
    local id = uid("down")
    local off = eth.on_step(function(ev)
      if ev.id == id and ev.step == "journal" then proxy:fault{ mode = "refuse" } end
    end)
    local _, ok, tx1 = ferry.log.capture(pcall, signer.send, signer, { to = fresh_address(9), value = 2, id = id })
    off()
    proxy:fault{ mode = "pass" }
    if ok then
      assert.equal(1, tx1.nonce)
      tx1:wait{ timeout = 10, rebroadcast = 0.2 }
    else
      assert.equal("provider_down", tx1.code)
      assert.equal(1, tx1.nonce)
      assert.equal("failed", journal():get(id).state)
      signer:send{ to = fresh_address(9), value = 2 }:wait{ timeout = 10 }     -- takes nonce 1
    end
    assert.equal(2, chain:nonce(ADDR0, "latest"))
    -- a node refuses the broadcast outright: nothing can be mined, nonce 2 is free again
    id = uid("refused")
    proxy:fault{ mode = "reply", count = 1, methods = { "eth_sendRawTransaction" },
                 error = { code = -32000, message = "insufficient funds for gas * price + value" } }
    local ok2, err = pcall(signer.send, signer, { to = fresh_address(10), value = 3, id = id })
    assert.is_false(ok2, "a refused broadcast must fail")
    assert.equal(2, err.nonce)
    assert.equal("failed", journal():get(id).state)
    local tx = signer:send{ to = fresh_address(10), value = 3 }
    assert.equal(2, tx.nonce, "the freed nonce is used: no gap")
    tx:wait{ timeout = 10 }
    -- another tool sends from the same key (nonce 3)
    local code = require("helpers.child").run({ peers.bin.cast, "send", "--private-key", evm.KEY0, "--rpc-url", anvil.url,
      evm.ADDR1, "--value", "1" }, {}, 60)
    assert.equal(0, code)
    assert.equal(4, chain:nonce(ADDR0, "latest"))
    ferry.sleep(1.05)                                   -- past the floor's refresh interval (floor_every = 1 s)
    local after = signer:send{ to = fresh_address(11), value = 4 }
    assert.equal(4, after.nonce, "above what cast used, with no nonce too low")
    after:wait{ timeout = 10 }
    proxy:stop(); anvil:stop()
  end)
end)
