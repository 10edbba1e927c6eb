-- ferry.sol against the litesvm peer (tests/peers/solana.js): reads, signer:sign, transfers,
-- compute budget and priority fees, durable nonces, SPL tokens, and bad input. Balances are
-- read from the peer; fees are checked against 5,000 lamports a signature plus limit x price.
local ferry = require "ferry"
local sol = require "ferry.sol"
local json = require "ferry.core.json"
local peers = require "helpers.peers"

local SEED = string.rep("\1", 32)

describe("ferry.sol on the litesvm peer", function()
  local peer, chain, payer

  setup(function()
    peer = peers.solana()
    chain = sol.connect{ providers = { { name = "litesvm", url = peer.url, rps = 10000 } },
                         solana = { poll = 0.05, rebroadcast = 0.5 } }
    payer = chain:signer(sol.raw(SEED))
    peer:airdrop(payer.address, 1000 * sol.LAMPORTS_PER_SOL)
  end)
  teardown(function() peer:stop() end)

  local function recipient() return sol.address(sol.keygen()) end

  it("reads balance, slot and block height, and accounts", function()
    assert.are.equal(1000 * sol.LAMPORTS_PER_SOL, chain:balance(payer.address))
    local s1, h1 = chain:slot(), chain:block_height()
    peer:advance(3)
    assert.is_true(chain:slot() >= s1 + 3)
    assert.is_true(chain:block_height() >= h1 + 3)
    local a = chain:account(payer.address)
    assert.are.equal(sol.SYSTEM_PROGRAM, a.owner)
    assert.is_nil(chain:account(recipient()))
    assert.is_true(chain:account(sol.TOKEN_PROGRAM).executable)
  end)

  it("transfers lamports: balances move, the fee is 5,000 lamports a signature", function()
    local to = recipient()
    local before = chain:balance(payer.address)
    local tx = payer:transfer{ to = to, lamports = 1234567, priority_fee = 0 }
    local r = tx:wait{ commitment = "confirmed", timeout = 20 }
    assert.are.equal(tx.signature, r.signature)
    assert.are.equal(1234567, chain:balance(to))
    assert.are.equal(before - 1234567 - 5000, chain:balance(payer.address))
  end)

  it("two identical payments under one blockhash are two payments, not one taken twice", function()
    local to = recipient()
    local a = payer:transfer{ to = to, lamports = 2000000, priority_fee = 0 }
    local b = payer:transfer{ to = to, lamports = 2000000, priority_fee = 0 }
    assert.are_not.equal(a.signature, b.signature)
    -- the same transfer; the second copy's compute-unit limit is one more, so its bytes differ
    local la = string.unpack("<I4", sol.decode(a.wire).instructions[1].data, 2)
    local lb = string.unpack("<I4", sol.decode(b.wire).instructions[1].data, 2)
    assert.are.equal(la + 1, lb)
    a:wait{ timeout = 20 }
    b:wait{ timeout = 20 }
    assert.are.equal(4000000, chain:balance(to))
  end)

  it("signs with no I/O what the peer then accepts, in legacy and v0", function()
    for _, version in ipairs { "legacy", 0 } do
      local to = recipient()
      local bh = chain:blockhash()
      local wire, sig = payer:sign{ instructions = { sol.system.transfer{ from = payer.address, to = to, lamports = 5000000 } },
                                    recent_blockhash = bh.blockhash, version = version }
      local d = assert(sol.decode(wire))
      assert.are.equal(sig, d.signatures[1])
      assert.are.equal(version, d.version)
      assert.are.equal(sig, assert(chain:call("sendTransaction", { wire, { encoding = "base64" } })))
      peer:advance(1)
      assert.are.equal(5000000, chain:balance(to))
    end
  end)

  it("waits for finalized: 32 confirmations where the node reports them", function()
    local tx = payer:transfer{ to = recipient(), lamports = 1000000 }
    local r = tx:wait{ commitment = "finalized", timeout = 30 }
    assert.are.equal("finalized", r.confirmation_status)
  end)

  -- the fee the peer charged (its balance-difference fee) and the units the tx consumed
  local function landed(sig)
    local t = assert(chain:call("getTransaction", { sig }))
    return t.meta.fee, t.meta.computeUnitsConsumed
  end

  it("sizes the compute-unit limit by simulation (within 10%) and charges limit x price", function()
    peer:priority_fees{ 25000 }
    local to = recipient()
    local before = chain:balance(payer.address)
    local tx = payer:transfer{ to = to, lamports = 1000777 }
    tx:wait{ timeout = 20 }
    peer:priority_fees{}
    assert.are.equal(25000, tx.priority_fee)
    local fee, used = landed(tx.signature)
    assert.is_true(tx.compute_units >= used and tx.compute_units <= used * 1.1,
      ("limit %d for %d units used"):format(tx.compute_units, used))
    local priority = (tx.compute_units * 25000 + 999999) // 1000000
    assert.are.equal(5000 + priority, fee)
    assert.are.equal(before - 1000777 - fee, chain:balance(payer.address))
  end)

  it("caps the priority fee at max_priority_fee", function()
    peer:priority_fees{ 10 ^ 12 // 1 }
    assert.are.equal(chain.settings.max_priority_fee, chain:priority_fee())
    peer:priority_fees{}
  end)

  it("too few compute units: a clear ComputationalBudgetExceeded, nothing paid", function()
    local to = recipient()
    local before = chain:balance(payer.address)
    local ok, err = pcall(payer.transfer, payer, { to = to, lamports = 1000, compute_units = 100, priority_fee = 0 })
    assert.is_false(ok)
    assert.are.equal("simulation_failed", err.code)
    assert.matches("ComputationalBudgetExceeded", err.message)
    assert.is_table(err.logs)
    assert.are.equal(before, chain:balance(payer.address))
    assert.are.equal(0, chain:balance(to))
  end)

  it("a durable-nonce transaction lands after 10 blockhash expiries; its old nonce is refused after", function()
    local nonce = payer:create_nonce_account()
    local value = require("ferry.sol.signer").nonce_value(chain, nonce)
    local to = recipient()
    local function signed(lamports, nonce_value)
      return (payer:sign{ recent_blockhash = nonce_value, instructions = {
        sol.system.advance_nonce{ nonce = nonce, authority = payer.address },
        sol.system.transfer{ from = payer.address, to = to, lamports = lamports } } })
    end
    local wire = signed(3000000, value)
    for _ = 1, 10 do peer:expire() end
    local sig = assert(chain:call("sendTransaction", { wire, { encoding = "base64" } }))
    peer:advance(1)
    assert.are.equal(3000000, chain:balance(to))
    assert.is_not.equal(value, require("ferry.sol.signer").nonce_value(chain, nonce))
    assert.is_string(sig)
    -- the same nonce value again (another transfer, so another signature): refused
    local r, err = chain:call("sendTransaction", { signed(4000000, value), { encoding = "base64" } })
    assert.is_nil(r)
    assert.are.equal("blockhash_not_found", err.code)
    peer:advance(1)
    assert.are.equal(3000000, chain:balance(to))
    -- send{durable_nonce =}: AdvanceNonceAccount first, the stored value as the blockhash
    local stored = require("ferry.sol.signer").nonce_value(chain, nonce)
    local tx = payer:send{ durable_nonce = nonce, instructions = { sol.system.transfer{ from = payer.address, to = to, lamports = 5 } } }
    local d = sol.decode(tx.wire)
    assert.are.equal(stored, d.blockhash)
    assert.are.equal(sol.SYSTEM_PROGRAM, d.keys[d.instructions[1].program_index + 1])
    peer:expire()
    tx:wait{ timeout = 20 }
    assert.are.equal(3000005, chain:balance(to))
  end)

  it("a dropped durable-nonce payment whose nonce another transaction used is re-signed with the new value, once", function()
    local nonce = payer:create_nonce_account()
    local to = recipient()
    peer:fault{ mode = "drop", count = 1 }
    local tx = payer:send{ durable_nonce = nonce, priority_fee = 0,
                           instructions = { sol.system.transfer{ from = payer.address, to = to, lamports = 6000000 } } }
    -- someone else advances the nonce: the dropped copy can never land now
    payer:send{ durable_nonce = nonce, priority_fee = 0,
                instructions = { sol.system.transfer{ from = payer.address, to = recipient(), lamports = 1000000 } } }:wait{ timeout = 20 }
    local r = tx:wait{ timeout = 20 }
    assert.are.equal(2, tx.copies)
    assert.are.equal(tx.signatures[2], r.signature)
    assert.are.equal(6000000, chain:balance(to))
  end)

  it("a transaction that lands but fails: tx:wait raises reverted with what failed, its fee paid", function()
    local p = chain:signer(sol.raw(string.rep("\12", 32)))
    peer:airdrop(p.address, 10 * sol.LAMPORTS_PER_SOL)
    local a, b = recipient(), recipient()
    peer:fault{ mode = "delay", count = 1, slots = 3 }   -- the first lands 3 slots late...
    local first = p:transfer{ to = a, lamports = 6 * sol.LAMPORTS_PER_SOL, priority_fee = 0 }
    p:transfer{ to = b, lamports = 6 * sol.LAMPORTS_PER_SOL, priority_fee = 0 }:wait{ timeout = 20 }  -- ...after this one
    local ok, err = pcall(first.wait, first, { timeout = 20 })
    assert.is_false(ok)
    assert.are.equal("reverted", err.code)
    assert.matches("landed in slot %d+ but failed: .*InstructionError", err.message)
    assert.are.equal(0, chain:balance(a))
    assert.are.equal(10 * sol.LAMPORTS_PER_SOL - 6 * sol.LAMPORTS_PER_SOL - 2 * 5000, chain:balance(p.address))
  end)

  it("SPL tokens: transfer_checked creates the recipient's token account when missing", function()
    local mint_key = sol.keygen()
    local mint = sol.address(mint_key)
    local rent = chain:rent_exempt(sol.token.MINT_SPACE)
    payer:send{ signers = { mint_key }, instructions = {
      sol.system.create_account{ from = payer.address, new = mint, lamports = rent, space = sol.token.MINT_SPACE,
                                 owner = sol.TOKEN_PROGRAM },
      sol.token.initialize_mint{ mint = mint, decimals = 6, authority = payer.address },
    } }:wait{ timeout = 20 }
    local mine = sol.token.ata(payer.address, mint)
    local mint_to = sol.token.mint_to{ mint = mint, destination = mine, authority = payer.address, amount = 1000000000 }
    payer:send{ instructions = { sol.token.create_ata_idempotent{ payer = payer.address, owner = payer.address, mint = mint }, mint_to } }
      :wait{ timeout = 20 }
    assert.are.equal(1000000000, (chain:token_balance(payer.address, mint)))
    assert.are.equal(6, chain:mint_decimals(mint))
    local alice = recipient()
    payer:token_transfer{ mint = mint, to = alice, amount = 250000 }:wait{ timeout = 20 }
    payer:token_transfer{ mint = mint, to = alice, amount = 1 }:wait{ timeout = 20 }  -- the account exists now
    assert.are.equal(250001, (chain:token_balance(alice, mint)))
    assert.are.equal(1000000000 - 250001, (chain:token_balance(payer.address, mint)))
    local ok, err = pcall(payer.token_transfer, payer, { mint = mint, to = alice, amount = 10 ^ 12 // 1, decimals = 6 })
    assert.is_false(ok)
    assert.are.equal("insufficient_funds", err.code)   -- the token program's "Error: insufficient funds"
    assert.matches("Custom", err.message)
    mint_key:close()
  end)

  it("bad input: base58, key lengths, an oversized transaction, an unknown program", function()
    local sent = peer:stats().sent
    local ok, err = pcall(chain.balance, chain, "0OIl")
    assert.is_false(ok)
    assert.are.equal("invalid_argument", err.code)
    assert.matches("invalid base58 character", err.message)
    ok, err = pcall(chain.balance, chain, "2g")
    assert.is_false(ok)
    assert.matches("decodes to 1 bytes, expected 32", err.message)
    ok, err = pcall(chain.signer, chain, "abc")
    assert.is_false(ok)
    assert.are.equal("invalid_argument", err.code)
    ok, err = pcall(payer.send, payer, { compute_units = 1000, priority_fee = 0, instructions = {
      { program = sol.SYSTEM_PROGRAM, accounts = {}, data = sol.raw(string.rep("x", 1300)) } } })
    assert.is_false(ok)
    assert.matches("too large", err.message)
    assert.are.equal(sent, peer:stats().sent)   -- refused before anything was sent
    local broke = chain:signer(sol.raw(string.rep("\8", 32)))   -- never funded
    ok, err = pcall(broke.transfer, broke, { to = recipient(), lamports = 1000000 })
    assert.is_false(ok)
    assert.are.equal("insufficient_funds", err.code)
    ok, err = pcall(payer.send, payer, { instructions = { { program = recipient(), accounts = {}, data = "0x01" } } })
    assert.is_false(ok)
    assert.are.equal("simulation_failed", err.code)
    assert.matches("simulation failed: ", err.message)
  end)

  it("sends v0 messages through an address lookup table on chain", function()
    local table_key, dests = sol.address(sol.keygen()), {}
    for i = 1, 20 do dests[i] = recipient() end
    peer.rpc:call("peer_setLookupTable", { table_key, dests })
    local ixs = {}
    for i = 1, 20 do ixs[i] = sol.system.transfer{ from = payer.address, to = dests[i], lamports = 1000000 + i } end
    local tx = payer:send{ instructions = ixs, lookup_tables = { { key = table_key, addresses = dests } } }
    local d = sol.decode(tx.wire)
    assert.are.equal(0, d.version)
    assert.are.equal(1, #d.lookups)
    assert.are.equal(20, #d.lookups[1].writable)       -- every recipient through the table
    tx:wait{ timeout = 20 }
    for i = 1, 20 do assert.are.equal(1000000 + i, chain:balance(dests[i])) end
  end)

  it("the peer's WebSocket: slot, signature and account notifications", function()
    local proc = require "ferry.core.proc"
    local to = recipient()
    local wire, sig = payer:sign{ recent_blockhash = chain:blockhash().blockhash,
                                  instructions = { sol.system.transfer{ from = payer.address, to = to, lamports = 4000000 } } }
    local p = assert(proc.spawn{ peers.bin.node, "tests/peers/solana_ws_probe.js", "ws://127.0.0.1:" .. peer.port, to, sig,
                                 stdout = "pipe", stderr = "pipe" })
    assert.are.equal("subscribed", p:read_line(10))
    assert.are.equal(sig, assert(chain:call("sendTransaction", { wire, { encoding = "base64" } })))
    local line = p:read_line(25)
    p:wait(5)
    p:close()
    local got = json.decode(assert(line))
    assert.is_nil(got.timeout)
    assert.is_true(got.slots[2] > got.slots[1])
    assert.is_table(got.signature)
    assert.is_true(got.signature.err == nil or got.signature.err == json.null)
    assert.are.equal(4000000, got.account.lamports)
  end)

  it("the peer survives garbage transactions (kit screens them) and restarts after a crash", function()
    local wire = payer:sign{ recent_blockhash = chain:blockhash().blockhash,
                             instructions = { sol.system.transfer{ from = payer.address, to = recipient(), lamports = 1000000 } } }
    local raw = require("ferry.core.sol").b64decode(wire)
    math.randomseed(7)
    for _ = 1, 300 do
      local b = { raw:byte(1, -1) }
      for _ = 1, math.random(1, 3) do b[math.random(1, #b)] = math.random(0, 255) end
      local mutated = require("ferry.core.sol").b64encode(string.char(table.unpack(b)))
      local r, e = chain:call("sendTransaction", { mutated, { encoding = "base64", skipPreflight = true } })
      assert.is_true(r ~= nil or e ~= nil)
    end
    assert.are.equal(0, peer.restarts)
    assert.is_true(peer:stats().sent >= 300)
    peer.rpc:call("peer_crash", {})
    local deadline = ferry.now() + 20
    while peer.restarts == 0 and ferry.now() < deadline do ferry.sleep(0.05) end
    assert.are.equal(1, peer.restarts)
    local slot
    while not slot and ferry.now() < deadline do
      slot = peer.rpc:call("getSlot", {})
      if not slot then ferry.sleep(0.1) end
    end
    assert.is_number(slot)
    -- a fresh ledger after the restart: fund the payer again for what follows
    peer:airdrop(payer.address, 1000 * sol.LAMPORTS_PER_SOL)
  end)
end)

describe("ferry.sol behind a fault proxy", function()
  local peer, proxy, chain

  setup(function()
    peer = peers.solana()
    proxy = peers.proxy(peer.url)
    chain = sol.connect{ providers = { { name = "proxied", url = proxy.url, rps = 10000 } },
                         breaker = { cooldown = 0.05, max_cooldown = 0.2 },
                         solana = { poll = 0.05, rebroadcast = 0.5 } }
  end)
  teardown(function() proxy:stop(); peer:stop() end)

  it("a garbage answer is a bad_response, not a crash", function()
    proxy:fault{ mode = "garbage", count = 3 }
    local _, err = ferry.log.capture(function() return select(2, chain:call("getSlot", {}, { fresh = true })) end)
    assert.is_table(err)
    assert.are.equal("bad_response", err.code)
    proxy:fault{ mode = "pass" }
    assert.is_number(chain:slot())
  end)

  it("blockhash not found and already processed never count against the provider", function()
    local payer = chain:signer(sol.raw(string.rep("\3", 32)))
    peer:airdrop(payer.address, 10 * sol.LAMPORTS_PER_SOL)
    local st0 = chain:pool_status()[1]
    local old = chain:blockhash()
    local wire = payer:sign{ recent_blockhash = old.blockhash,
                             instructions = { sol.system.transfer{ from = payer.address, to = sol.address(sol.keygen()), lamports = 1000000 } } }
    assert.is_string((chain:call("sendTransaction", { wire, { encoding = "base64" } })))
    for _ = 1, 10 do
      local _, err = chain:call("sendTransaction", { wire, { encoding = "base64" } })
      assert.are.equal("already_processed", err.code)
    end
    peer:expire()
    for _ = 1, 10 do
      local _, err = chain:call("sendTransaction", { payer:sign{ recent_blockhash = old.blockhash, instructions = {
        sol.system.transfer{ from = payer.address, to = sol.address(sol.keygen()), lamports = 2000000 } } }, { encoding = "base64" } })
      assert.are.equal("blockhash_not_found", err.code)
    end
    local st = chain:pool_status()[1]
    assert.are.equal("closed", st.state)
    assert.are.equal(st0.failures_total, st.failures_total)
    assert.is_true(st.reports >= st0.reports + 21)  -- the 21 answers were reported, none as a failure
  end)

  it("finalized on a node without finality: the chain's confirmations stand for it", function()
    local payer = chain:signer(sol.raw(string.rep("\4", 32)))
    peer:airdrop(payer.address, sol.LAMPORTS_PER_SOL)
    local tx = payer:transfer{ to = sol.address(sol.keygen()), lamports = 1000000, priority_fee = 0 }
    tx:wait{ commitment = "confirmed", timeout = 20 }
    -- a node that never says "finalized" but counts confirmations
    local function status(n)
      return { context = { slot = 1 }, value = { { slot = 1, confirmations = n, err = json.null, confirmationStatus = "confirmed" } } }
    end
    proxy:fault{ mode = "reply", methods = { "getSignatureStatuses" }, result = status(31), count = 1 }
    local ok, err = pcall(tx.wait, tx, { commitment = "finalized", timeout = 0.05, poll = 0.01 })
    assert.is_false(ok)
    assert.are.equal("timeout", err.code)
    proxy:fault{ mode = "reply", methods = { "getSignatureStatuses" }, result = status(32), count = 1 }
    local r = tx:wait{ commitment = "finalized", timeout = 5 }
    assert.are.equal("confirmed", r.confirmation_status)
    proxy:fault{ mode = "pass" }
  end)

  it("a copy that looks expired and unlanded to one read, but landed, is found by the read before re-signing", function()
    local payer = chain:signer(sol.raw(string.rep("\6", 32)))
    peer:airdrop(payer.address, sol.LAMPORTS_PER_SOL)
    local to = sol.address(sol.keygen())
    local found0 = chain.st.found_at_reconcile
    local tx = payer:transfer{ to = to, lamports = 3000000, priority_fee = 0 }
    peer:advance(1)
    peer:expire()                       -- its blockhash is past its last valid height now
    -- a lagging node's status read: not found
    proxy:fault{ mode = "reply", methods = { "getSignatureStatuses" }, count = 1,
                 result = { context = { slot = 1 }, value = { json.null } } }
    local r = tx:wait{ timeout = 20 }
    assert.are.equal(1, tx.copies)      -- not signed again
    assert.are.equal(tx.signature, r.signature)
    assert.are.equal(found0 + 1, chain.st.found_at_reconcile)
    assert.are.equal(3000000, chain:balance(to))
  end)
end)
