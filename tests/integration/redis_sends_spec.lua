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

local function recipients(batch, each)
  local list = {}
  for i = 1, each or EACH do
    list[i] = { address = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batch .. " " .. i)):sub(-40)),
                amount = eth.gwei(1000000 * (1 + (i - 1) % 10)) }
  end
  return list
end

-- start PROCESSES batch_payouts children on one Redis and one anvil; -> children, batch names
local function start_all(anvil, redis, each, script)
  local kids, batches = {}, {}
  for k = 1, PROCESSES do
    batches[k] = ("shared-%d-%d"):format(k, math.random(1e9))
    if type(each) == "table" and k > 1 then ferry.sleep(0.5) end        -- the first one takes the lease
    local n = type(each) == "table" and each[k] or each or EACH
    kids[k] = assert(proc.spawn{ "./ferry", script or "examples/batch_payouts.lua", tostring(n), "local", batches[k],
      env = { LOCAL_RPC_URL = anvil.url, REDIS_URL = redis.url, FERRY_DATA_DIR = child.tmpdir(), PAYER_KEY = evm.KEY0,
              FERRY_LOG = "info,text" },
      stdout = "pipe", stderr = "pipe" })
  end
  return kids, batches
end

local function wait_all(kids)
  local errs, outs, codes = {}, {}, {}
  for k, p in ipairs(kids) do
    outs[k] = p:read_all(180)
    codes[k] = p:wait(30)
    errs[k] = p:read_err()
  end
  for k = 1, #kids do
    if codes[k] ~= 0 then                      -- what every process said: one's failure is often another's doing
      local all = {}
      for j = 1, #kids do all[j] = ("--- process %d (exit %s):\n%s\n%s"):format(j, codes[j], outs[j], errs[j]) end
      error(("process %d failed\n%s"):format(k, table.concat(all, "\n")), 0)
    end
  end
  return errs
end

-- each: how many each process sent (a number for all, or a list)
local function paid_once(chain, batches, each)
  local total = 0
  for k, batch in ipairs(batches) do
    local n = type(each) == "table" and each[k] or each or EACH
    total = total + n
    for i, r in ipairs(recipients(batch, n)) do
      assert.equal(r.amount, chain:balance(r.address, "latest", { fresh = true }), batch .. " recipient " .. i)
    end
  end
  assert.equal(total, chain:nonce(evm.ADDR0, "latest"), "one nonce per payment, none skipped")
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

  it("Redis frozen for 4 s: the lease holder goes on alone, the others wait; none twice, none lost", function()
    -- whichever process holds the address's lease has plenty left to send when Redis stops, and
    -- after it is back; the payouts have no ids (one with an id waits for Redis: every process
    -- must see its claim)
    local each = 250
    local kids, batches = start_all(anvil, redis, each, "tests/helpers/pay_plain.lua")
    -- sending is under way (a fresh address's first reserve waits out a 2 s window)
    local deadline = ferry.now() + 30
    while chain:nonce(evm.ADDR0, "latest") < 60 and ferry.now() < deadline do ferry.sleep(0.05) end
    redis:signal("STOP")
    -- the holder goes alone fence + drain (1.5 s) after its last renewal; what was reserved
    -- before the freeze is mined by then
    ferry.sleep(2)
    local before = chain:nonce(evm.ADDR0, "latest")
    ferry.sleep(1.8)
    local after = chain:nonce(evm.ADDR0, "latest")
    redis:signal("CONT")
    local errs = wait_all(kids)
    paid_once(chain, batches, each)
    local said, alone, registered, let_go = {}, 0, 0, 0
    for k, e in ipairs(errs) do
      local a, r = e:find("goes on sending from it alone", 1, true), e:find("what was sent alone is registered", 1, true)
      local g = e:find("lease is let go", 1, true)
      alone, registered, let_go = alone + (a and 1 or 0), registered + (r and 1 or 0), let_go + (g and 1 or 0)
      said[k] = (a and "alone" or "") .. (e:find("(Redis) is unreachable", 1, true) and " waited" or "")
        .. (r and " registered" or "") .. (g and " let-go" or "")
    end
    print(("\n    Redis frozen 4 s: %d payments mined in 1.8 s of it, by the holder alone; the processes said: %s")
      :format(after - before, table.concat(said, ",")))
    if alone ~= 1 then for k, e in ipairs(errs) do print("--- " .. k); print(e:sub(1, 3000)) end end
    assert.equal(1, alone, "one process, the lease holder, goes on alone")
    -- once Redis is back, the holder registers what it used alone; or it was done by then and
    -- gone, and the others let its lease go and read the chain's count instead
    assert.truthy(registered == 1 or let_go >= 1, "what the holder sent alone reaches the others")
    assert.truthy(after > before, "payments went on while Redis was frozen")
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
