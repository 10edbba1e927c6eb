-- tests/chaos/soak.lua -- the long run, outside CI:
--
--   ./ferry tests/chaos/soak.lua [total=10000] [processes=4] [calm]
--
-- `processes` ferry processes run examples/batch_payouts.lua from ONE address through one
-- Redis (shared nonces) against one anvil, total/processes recipients each. Mid-run, Redis is
-- killed (-9) and restarted empty, then frozen (SIGSTOP) for 4 s (the lease holder goes on
-- alone), and one engine is SIGKILLed and started again on its data dir with the same batch
-- name. At the end every intended transfer must be mined exactly once
-- (each recipient's balance is exactly its amount) and the address's nonce must equal the
-- number of transfers: none used twice, none skipped. Prints the wall time. `calm`: no faults
-- (issue 10's first check: 4 x 250 through one Redis).
package.path = "tests/?.lua;" .. package.path
local ferry = require "ferry"
local eth = require "ferry.eth"
local proc = require "ferry.core.proc"
local workflow = require "ferry.workflow"
local peers = require "helpers.peers"
local evm = require "helpers.evm"
local child = require "helpers.child"

local TOTAL = tonumber(arg[1]) or 10000
local P = tonumber(arg[2]) or 4
local EACH = TOTAL // P
local CALM = arg[3] == "calm"

local anvil, redis = peers.anvil(), peers.redis()
local chain = evm.chain_at(anvil.url)
local t0 = ferry.now()

local function start(batch, dir)
  return assert(proc.spawn{ "./ferry", "examples/batch_payouts.lua", tostring(EACH), "local", batch,
    env = { LOCAL_RPC_URL = anvil.url, REDIS_URL = redis.url, FERRY_DATA_DIR = dir, PAYER_KEY = evm.KEY0,
            FERRY_LOG = "warn,text" },
    stdout = "pipe", stderr = "pipe" })
end

local kids, batches, dirs = {}, {}, {}
for k = 1, P do
  batches[k] = ("soak-%d-%d"):format(k, math.random(1e9))
  dirs[k] = child.tmpdir()
  kids[k] = start(batches[k], dirs[k])
end
print(("%d processes x %d transfers from %s, one Redis, one anvil"):format(P, EACH, evm.ADDR0))

if not CALM then
  ferry.sleep(EACH / 400)                            -- about a third of the way
  print(("%.1f s: redis kill -9, restarted empty"):format(ferry.now() - t0))
  redis:signal("KILL")
  ferry.sleep(1)
  redis:restart()
  ferry.sleep(EACH / 800)
  -- a frozen Redis: the address's lease holder goes on alone, the others wait
  local before = chain:nonce(evm.ADDR0, "latest")
  print(("%.1f s: redis frozen (SIGSTOP) for 4 s"):format(ferry.now() - t0))
  redis:signal("STOP")
  ferry.sleep(4)
  local during = chain:nonce(evm.ADDR0, "latest") - before
  redis:signal("CONT")
  print(("%.1f s: redis thawed; %d transfers were mined while it was frozen"):format(ferry.now() - t0, during))
  ferry.sleep(EACH / 800)
  print(("%.1f s: engine 1 SIGKILLed, started again on its data dir"):format(ferry.now() - t0))
  kids[1]:kill("KILL")
  kids[1]:wait(10)
  kids[1]:close()
  kids[1] = start(batches[1], dirs[1])
end

local failed = 0
for k, p in ipairs(kids) do
  local out = p:read_all(3600)
  local code = p:wait(60)
  if code ~= 0 then
    failed = failed + 1
    io.stderr:write(("process %d exited %s:\n%s\n%s\n"):format(k, tostring(code), out, p:read_err()))
  end
end
local wall = ferry.now() - t0

-- every recipient exactly its amount
local all = {}
for k = 1, P do
  for i = 1, EACH do
    all[#all + 1] = { address = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batches[k] .. " " .. i)):sub(-40)),
                      amount = eth.gwei(1000000 * (1 + (i - 1) % 10)) }
  end
end
local checks = workflow.parallel(all, { max_concurrent = 64, progress = false }, function(r)
  return chain:balance(r.address, "latest", { fresh = true }) == r.amount
end)
local wrong = 0
for _, c in ipairs(checks) do if not (c.ok and c.value) then wrong = wrong + 1 end end
local nonce = chain:nonce(evm.ADDR0, "latest")

print(("%d transfers in %.1f s (%.0f tx/s); processes failed: %d"):format(#all, wall, #all / wall, failed))
print(("balances exact: %d/%d; address nonce %d (expected %d)"):format(#all - wrong, #all, nonce, #all))
redis:stop()
anvil:stop()
if failed > 0 or wrong > 0 or nonce ~= #all then
  print("SOAK FAILED")
  os.exit(1)
end
print("SOAK OK: every transfer mined exactly once")
