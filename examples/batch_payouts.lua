-- examples/batch_payouts.lua -- pay many recipients from one address, 32 in flight.
--
--   PAYER_KEY=0x... ./ferry examples/batch_payouts.lua [count=200] [chain=local] [batch=new]
--   make demo     (starts a local anvil, runs this for 200 recipients, stops anvil)
--
-- Every payout runs the whole pipeline (fees, gas, funds check, nonce, sign, broadcast,
-- receipt). At the end: a summary table, a check that no nonce was used twice, and every
-- recipient's balance read back from the chain.
--
-- Each payout has an id ("<batch>-<i>"): a batch stopped half-way (Ctrl-C, a crash, a lost
-- machine) is finished by running it again with its name, and only the recipients not yet
-- paid are paid; those already paid get back the transaction that paid them (the journal in
-- .ferry/ferry.db, ferry.store).
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"

local count = tonumber(arg[1] or 200)
local chain = eth.chain(arg[2] or "local")
local signer = chain:signer{ env = "PAYER_KEY" }

-- recipients: addresses derived from the batch's name, amounts 0.001..0.01 ETH
local batch = arg[3] or ("batch-" .. os.time() .. "-" .. math.random(1000, 9999))
local recipients = {}
for i = 1, count do
  local addr = eth.address("0x" .. eth.keccak256(eth.raw("payout " .. batch .. " " .. i)):sub(-40))
  recipients[i] = { address = addr, amount = eth.gwei(1000000 * (1 + (i - 1) % 10)), id = batch .. "-" .. i }
end

local start_nonce = chain:nonce(signer.address)
local balance_before = chain:balance(signer.address, "latest", { fresh = true })
print(("batch %s: paying %d recipients from %s (%s ETH, next nonce %d)"):format(batch, count, signer.address,
  eth.format_ether(balance_before), start_nonce))
print(("(stopped half-way? run it again to finish: ./ferry examples/batch_payouts.lua %d %s %s)"):format(count,
  arg[2] or "local", batch))

local results, summary = workflow.parallel(recipients, { max_concurrent = 32 }, function(r)
  local tx = signer:send{ to = r.address, value = r.amount, id = r.id }
  local rc = tx:wait{ confirmations = 1, timeout = 120 }
  return { hash = tx.hash, nonce = tx.nonce, block = eth.quantity(rc.blockNumber),
           gas = eth.quantity(rc.gasUsed), price = eth.u256(rc.effectiveGasPrice) }
end)

-- check: no nonce used twice, every balance on chain
local nonces, total, fees, mismatched = {}, eth.u256(0), eth.u256(0), 0
local first_err
for i, r in ipairs(results) do
  if r.ok then
    nonces[#nonces + 1] = r.value.nonce
    total = total + recipients[i].amount
    fees = fees + r.value.price * r.value.gas
  elseif not first_err then
    first_err = r.err
  end
end
table.sort(nonces)
local contiguous = true                        -- distinct (a re-run's earlier payouts have earlier nonces)
for i = 2, #nonces do if nonces[i] == nonces[i - 1] then contiguous = false end end
local checks = workflow.parallel(recipients, { max_concurrent = 32, progress = false }, function(r)
  return chain:balance(r.address, "latest", { fresh = true }) == r.amount
end)
for _, c in ipairs(checks) do if not (c.ok and c.value) then mismatched = mismatched + 1 end end

local rows = {
  { "recipients", tostring(count) },
  { "mined", tostring(summary.ok) },
  { "failed", tostring(summary.errors) },
  { "peak in flight", tostring(summary.peak_in_flight) },
  { "wall time", ("%.2f s"):format(summary.seconds) },
  { "throughput", ("%.1f tx/s"):format(summary.ok / summary.seconds) },
  { "nonces", #nonces > 0 and ("%d..%d, %s"):format(nonces[1], nonces[#nonces], contiguous and "each used once" or "ONE USED TWICE") or "-" },
  { "paid", eth.format_ether(total) .. " ETH" },
  { "fees", eth.format_ether(fees) .. " ETH" },
  { "balances checked", ("%d/%d match on chain"):format(count - mismatched, count) },
}
print(("\n%-18s %s"):format("", "summary"))
print(("-"):rep(44))
for _, row in ipairs(rows) do print(("%-18s %s"):format(row[1], row[2])) end
if first_err then print("first error: " .. tostring(first_err)) end

if summary.errors > 0 or not contiguous or mismatched > 0 then os.exit(1) end
