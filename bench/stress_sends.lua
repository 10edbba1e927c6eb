-- bench/stress_sends.lua -- many rounds of 100 concurrent sends from one address, each round on
-- a fresh anvil; reports the rounds that needed a fee bump or failed.
--
--   ./ferry bench/stress_sends.lua [rounds=20]
--   (yes > /dev/null & yes > /dev/null &); ./ferry bench/stress_sends.lua 80; pkill yes
-- Under CPU load anvil 1.7.1 now and then leaves the next nonce in `queued` (its pool status
-- shows the account's own nonce queued); tx:wait's fee bump is what frees it.
package.path = "tests/?.lua;" .. package.path
local ferry = require "ferry"
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"
local peers = require "helpers.peers"

local rounds = tonumber(arg[1] or 20)
local bumped_rounds, failed_rounds = 0, 0
for round = 1, rounds do
  local anvil <close> = peers.anvil()
  local chain = eth.connect{ chain_id = 31337, head_poll = 0, providers = { { name = "anvil", url = anvil.url, rps = 10000 } } }
  local signer = chain:signer("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
  local to = {}
  for i = 1, 100 do to[i] = eth.address("0x" .. eth.keccak256(eth.raw(("stress %d %d"):format(round, i))):sub(-40)) end
  local t0 = ferry.now()
  local results, summary = workflow.parallel(to, { max_concurrent = 32, progress = false }, function(addr)
    local tx = signer:send{ to = addr, value = 1 }
    tx:wait{ timeout = 30, stuck_after = 2 }
    return tx.bumps
  end)
  local bumps, first = 0, nil
  for _, r in ipairs(results) do
    if r.ok then bumps = bumps + r.value else first = first or r.err end
  end
  if bumps > 0 then bumped_rounds = bumped_rounds + 1 end
  if summary.errors > 0 then failed_rounds = failed_rounds + 1 end
  if bumps > 0 or summary.errors > 0 then
    print(("round %d: %d failed, %d fee bumps, %.2f s %s"):format(round, summary.errors, bumps,
      ferry.now() - t0, first and tostring(first) or ""))
  end
end
print(("%d rounds: %d needed a fee bump, %d had failures"):format(rounds, bumped_rounds, failed_rounds))
if failed_rounds > 0 then os.exit(1) end
