-- A ferry process stopped mid-batch (SIGKILL, Ctrl-C) and started again on the same store:
-- examples/batch_payouts.lua re-run by its batch name pays every recipient exactly once,
-- counted by balances. And two processes on one store never send from one address at once.
local ferry = require "ferry"
local eth = require "ferry.eth"
local proc = require "ferry.core.proc"
local db = require "ferry.core.db"
local evm = require "helpers.evm"
local peers = require "helpers.peers"
local child = require "helpers.child"

local COUNT = 60

-- the recipients and amounts batch_payouts.lua derives from a batch name
local function recipients(batch)
  local list = {}
  for i = 1, COUNT do
    list[i] = { address = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batch .. " " .. i)):sub(-40)),
                amount = eth.gwei(1000000 * (1 + (i - 1) % 10)) }
  end
  return list
end

local function env_for(anvil, data_dir)
  return { LOCAL_RPC_URL = anvil.url, FERRY_DATA_DIR = data_dir, PAYER_KEY = evm.KEY0, FERRY_LOG = "info,text" }
end

-- start the batch as a child; returns it once it has started paying
local function start(anvil, data_dir, batch)
  local argv = { "./ferry", "examples/batch_payouts.lua", tostring(COUNT), "local", batch,
                 env = env_for(anvil, data_dir), stdout = "pipe", stderr = "pipe" }
  local p = assert(proc.spawn(argv))
  local line = p:read_line(20)
  assert.matches("paying " .. COUNT .. " recipients", line or "", 1, true)
  return p
end

local function run_again(anvil, data_dir, batch)
  return child.ferry({ "examples/batch_payouts.lua", tostring(COUNT), "local", batch }, env_for(anvil, data_dir), 120)
end

-- every recipient holds exactly its amount (paid once), and the address used one nonce each
local function paid_once(chain, batch, start_nonce)
  for i, r in ipairs(recipients(batch)) do
    assert.equal(r.amount, chain:balance(r.address, "latest", { fresh = true }), "recipient " .. i)
  end
  assert.equal(start_nonce + COUNT, chain:nonce(evm.ADDR0, "latest"))
end

local function journal_states(data_dir)
  local c <close> = db.open(data_dir .. "/ferry.db")
  local counts = {}
  for _, r in ipairs(assert(c:exec("SELECT state, count(*) AS n FROM txs GROUP BY state"))) do counts[r.state] = r.n end
  return counts
end

local function unfinished(counts)
  return (counts.new or 0) + (counts.reserved or 0) + (counts.signed or 0) + (counts.sent or 0) + (counts.unsure or 0)
end

describe("a batch stopped half-way and run again", function()
  local anvil, chain
  before_each(function()
    anvil = peers.anvil({ "--block-time", "1" })
    chain = evm.chain_at(anvil.url)
  end)
  after_each(function() anvil:stop() end)

  it("after SIGKILL: the journal resumes what was in flight, and every recipient is paid exactly once", function()
    local dir, batch = child.tmpdir(), ("killed-%d"):format(math.random(1e9))
    local p = start(anvil, dir, batch)
    ferry.sleep(1.2)
    p:kill("KILL")
    p:wait(10)
    local before = journal_states(dir)
    assert.is_true(unfinished(before) > 0, "killed with nothing in flight: the test proves nothing")
    local code, out, err = run_again(anvil, dir, batch)
    assert.equal(0, code, out .. err)
    assert.matches(("balances checked   %d/%d match on chain"):format(COUNT, COUNT), out, 1, true)
    assert.matches("resumed what a previous run left in the journal", err, 1, true)
    paid_once(chain, batch, 0)
    assert.equal(0, unfinished(journal_states(dir)))
  end)

  it("after Ctrl-C: sends in flight are listed with their hashes, and the re-run pays only the rest", function()
    local dir, batch = child.tmpdir(), ("interrupted-%d"):format(math.random(1e9))
    local p = start(anvil, dir, batch)
    ferry.sleep(1.2)
    p:kill("INT")
    local code = p:wait(20)
    local err = p:read_err()
    assert.equal(130, code, err)
    assert.matches("SIGINT: no new sends", err, 1, true)
    local listed = err:match("stopped by SIGINT%. (%d+) transactions? sent and not yet confirmed")
    assert.is_not_nil(listed, err)
    assert.matches((batch:gsub("%-", "%%-")) .. "%-%d+%s+nonce %d+%s+0x%x+", err)
    local code2, out2, err2 = run_again(anvil, dir, batch)
    assert.equal(0, code2, out2 .. err2)
    paid_once(chain, batch, 0)
  end)

  it("two processes on one store: the second waits for the address's lease and says why; both batches paid once", function()
    local dir = child.tmpdir()
    local a, b = ("first-%d"):format(math.random(1e9)), ("second-%d"):format(math.random(1e9))
    local pa = start(anvil, dir, a)
    local argv = { "./ferry", "examples/batch_payouts.lua", tostring(COUNT), "local", b,
                   env = env_for(anvil, dir), stdout = "pipe", stderr = "pipe" }
    local pb = assert(proc.spawn(argv))
    assert.equal(0, pa:wait(120), pa:read_err())
    assert.equal(0, pb:wait(120), pb:read_err())
    assert.matches("another process holds this address's lease; waiting for it", pb:read_err(), 1, true)
    for _, batch in ipairs({ a, b }) do
      for i, r in ipairs(recipients(batch)) do
        assert.equal(r.amount, chain:balance(r.address, "latest", { fresh = true }), batch .. " recipient " .. i)
      end
    end
    assert.equal(2 * COUNT, chain:nonce(evm.ADDR0, "latest"))
  end)
end)
