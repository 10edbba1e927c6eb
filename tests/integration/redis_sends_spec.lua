-- Several ferry processes sending from one address through one Redis (config redis.url): the
-- nonces come from the shared allocator (ferry.store.redis), so every payment is mined once,
-- the address's nonce moves up by exactly the number of payments, and none is used twice --
-- also when Redis is killed and restarted empty, or frozen, in the middle. Counted by balances.
local ferry = require "ferry"
local eth = require "ferry.eth"
local proc = require "ferry.core.proc"
local evm = require "helpers.evm"
local peers = require "helpers.peers"
local child = require "helpers.child"

local PROCESSES, EACH = 4, 40

local function recipients(batch)
  local list = {}
  for i = 1, EACH do
    list[i] = { address = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batch .. " " .. i)):sub(-40)),
                amount = eth.gwei(1000000 * (1 + (i - 1) % 10)) }
  end
  return list
end

-- start PROCESSES batch_payouts children on one Redis and one anvil; -> children, batch names
local function start_all(anvil, redis)
  local kids, batches = {}, {}
  for k = 1, PROCESSES do
    batches[k] = ("shared-%d-%d"):format(k, math.random(1e9))
    kids[k] = assert(proc.spawn{ "./ferry", "examples/batch_payouts.lua", tostring(EACH), "local", batches[k],
      env = { LOCAL_RPC_URL = anvil.url, REDIS_URL = redis.url, FERRY_DATA_DIR = child.tmpdir(), PAYER_KEY = evm.KEY0,
              FERRY_LOG = "info,text" },
      stdout = "pipe", stderr = "pipe" })
  end
  return kids, batches
end

local function wait_all(kids)
  local errs = {}
  for k, p in ipairs(kids) do
    local out = p:read_all(180)
    local code = p:wait(30)
    errs[k] = p:read_err()
    assert.equal(0, code, ("process %d:\n%s\n%s"):format(k, out, errs[k]))
  end
  return errs
end

local function paid_once(chain, batches)
  for _, batch in ipairs(batches) do
    for i, r in ipairs(recipients(batch)) do
      assert.equal(r.amount, chain:balance(r.address, "latest", { fresh = true }), batch .. " recipient " .. i)
    end
  end
  assert.equal(PROCESSES * EACH, chain:nonce(evm.ADDR0, "latest"), "one nonce per payment, none skipped")
end

describe("four processes, one address, one Redis", function()
  local anvil, redis, chain
  before_each(function()
    anvil = peers.anvil()
    redis = peers.redis()
    chain = evm.chain_at(anvil.url)
  end)
  after_each(function() redis:stop(); anvil:stop() end)

  it("every payment is mined once and the nonce moves up by exactly their number", function()
    local kids, batches = start_all(anvil, redis)
    wait_all(kids)
    paid_once(chain, batches)
  end)

  it("Redis killed and restarted empty mid-way: sends wait for it, then go on; none twice, none lost", function()
    local kids, batches = start_all(anvil, redis)
    ferry.sleep(1.0)
    redis:signal("KILL")
    ferry.sleep(1.5)
    redis:restart()
    local errs = wait_all(kids)
    paid_once(chain, batches)
    local said = false
    -- the first step to wait says it: the funds check (funds store) or the reserve (nonce store)
    for _, e in ipairs(errs) do if e:find("store (Redis) is unreachable", 1, true) then said = true end end
    assert.is_true(said, "a process says why its sends wait")
  end)

  it("Redis frozen (SIGSTOP) for 2 s mid-way: sends wait, then go on; none twice, none lost", function()
    local kids, batches = start_all(anvil, redis)
    ferry.sleep(1.0)
    redis:signal("STOP")
    ferry.sleep(2)
    redis:signal("CONT")
    wait_all(kids)
    paid_once(chain, batches)
  end)
end)

describe("a process on shared nonces SIGKILLed mid-batch and started again on the same data dir", function()
  it("resumes its journal, frees what it had reserved, and every recipient is paid exactly once", function()
    local anvil, redis = peers.anvil({ "--block-time", "1" }), peers.redis()
    local chain = evm.chain_at(anvil.url)
    local dir, batch = child.tmpdir(), ("redis-killed-%d"):format(math.random(1e9))
    local env = { LOCAL_RPC_URL = anvil.url, REDIS_URL = redis.url, FERRY_DATA_DIR = dir, PAYER_KEY = evm.KEY0,
                  FERRY_LOG = "info,text" }
    local p = assert(proc.spawn{ "./ferry", "examples/batch_payouts.lua", tostring(EACH), "local", batch, env = env,
                                 stdout = "pipe", stderr = "pipe" })
    assert.matches("paying", p:read_line(20) or "")
    ferry.sleep(1.2)
    p:kill("KILL")
    p:wait(10)
    local code, out, err = child.ferry({ "examples/batch_payouts.lua", tostring(EACH), "local", batch }, env, 120)
    assert.equal(0, code, out .. err)
    for i, r in ipairs(recipients(batch)) do
      assert.equal(r.amount, chain:balance(r.address, "latest", { fresh = true }), "recipient " .. i)
    end
    assert.equal(EACH, chain:nonce(evm.ADDR0, "latest"))
    redis:stop(); anvil:stop()
  end)
end)
