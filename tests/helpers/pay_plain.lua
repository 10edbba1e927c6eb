-- tests/helpers/pay_plain.lua -- examples/batch_payouts.lua's payouts without ids, for specs:
--
--   PAYER_KEY=0x... ./ferry tests/helpers/pay_plain.lua count chain batch
--
-- The same recipients and amounts as batch_payouts ("payout <batch> <i>"), 32 in flight, each
-- send without an `id` (an id must be claimed on Redis by every process, so a send with one
-- waits for Redis; one without goes on alone in the address's lease holder while Redis is out
-- of reach). Exits 1 if any payout failed.
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"

local count, batch = tonumber(arg[1]), arg[3]
local chain = eth.chain(arg[2] or "local")
local signer = chain:signer{ env = "PAYER_KEY" }
local recipients = {}
for i = 1, count do
  recipients[i] = { address = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batch .. " " .. i)):sub(-40)),
                    amount = eth.gwei(1000000 * (1 + (i - 1) % 10)) }
end
local results, summary = workflow.parallel(recipients, { max_concurrent = 32, progress = false }, function(r)
  signer:send{ to = r.address, value = r.amount }:wait{ timeout = 120 }
end)
local first
for _, r in ipairs(results) do if not r.ok then first = first or r.err end end
print(("paid %d of %d (%d failed)%s"):format(summary.ok, count, summary.errors, first and (": " .. tostring(first)) or ""))
os.exit(summary.errors == 0 and 0 or 1)
