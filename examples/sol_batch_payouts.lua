-- examples/sol_batch_payouts.lua -- pay many Solana recipients from one payer, 32 in flight.
--
--   SOL_PAYER_KEY=<base58 secret> ./ferry examples/sol_batch_payouts.lua [count=200] [chain=solana]
--   make demo     (also runs this for 200 recipients on a local litesvm peer)
--
-- Every payout runs the whole pipeline (blockhash from the cache, simulation-sized compute
-- limit, priority fee, sign, send, status until confirmed, re-signing only after a status
-- read said an expired copy had not landed). At the end: a summary table and every
-- recipient's balance read back from the chain.
local sol = require "ferry.sol"
local workflow = require "ferry.workflow"

local count = tonumber(arg[1] or 200)
local chain = sol.chain(arg[2] or "solana")
local signer = chain:signer{ env = "SOL_PAYER_KEY" }

local function fmt(l) return ("%.9f SOL"):format(l / sol.LAMPORTS_PER_SOL) end

-- recipients: fresh accounts, amounts 0.001..0.01 SOL (above the rent-exempt minimum)
local recipients = {}
for i = 1, count do
  recipients[i] = { address = sol.address(sol.keygen()), amount = 1000000 * (1 + (i - 1) % 10) }
end

local balance_before = chain:balance(signer.address)
print(("paying %d recipients from %s (%s)"):format(count, signer.address, fmt(balance_before)))

local results, summary = workflow.parallel(recipients, { max_concurrent = 32 }, function(r)
  local tx = signer:transfer{ to = r.address, lamports = r.amount }
  local landed = tx:wait{ commitment = "confirmed", timeout = 120 }
  return { signature = landed.signature, copies = landed.copies, units = tx.compute_units, price = tx.priority_fee }
end)

local total, copies, first_err = 0, 0, nil
for i, r in ipairs(results) do
  if r.ok then
    total = total + recipients[i].amount
    copies = copies + r.value.copies
  elseif not first_err then
    first_err = r.err
  end
end
local checks = workflow.parallel(recipients, { max_concurrent = 32, progress = false }, function(r)
  return chain:balance(r.address) == r.amount
end)
local mismatched = 0
for _, c in ipairs(checks) do if not (c.ok and c.value) then mismatched = mismatched + 1 end end
local spent = balance_before - chain:balance(signer.address)

local st = chain:stats()
local rows = {
  { "recipients", tostring(count) },
  { "confirmed", tostring(summary.ok) },
  { "failed", tostring(summary.errors) },
  { "peak in flight", tostring(summary.peak_in_flight) },
  { "wall time", ("%.2f s"):format(summary.seconds) },
  { "throughput", ("%.1f tx/s"):format(summary.ok / summary.seconds) },
  { "copies signed", ("%d (%d re-signed after a status read)"):format(copies, st.resigns) },
  { "paid", fmt(total) },
  { "fees", fmt(spent - total) },
  { "balances checked", ("%d/%d match on chain"):format(count - mismatched, count) },
}
print(("\n%-18s %s"):format("", "summary"))
print(("-"):rep(44))
for _, row in ipairs(rows) do print(("%-18s %s"):format(row[1], row[2])) end
if first_err then print("first error: " .. tostring(first_err)) end

if summary.errors > 0 or mismatched > 0 then os.exit(1) end
