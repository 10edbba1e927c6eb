-- examples/sol_transfer.lua -- send SOL once and wait for it.
--
--   SOL_PAYER_KEY=<base58 secret> ./ferry examples/sol_transfer.lua <recipient> 0.25 [chain=solana]
-- On a local peer: ./ferry tests/helpers/with_solana.lua examples/sol_transfer.lua
local ferry = require "ferry"
local sol = require "ferry.sol"

local chain = sol.chain(arg[3] or "solana")
local signer = chain:signer{ env = "SOL_PAYER_KEY" }
local to = arg[1] or sol.address(sol.keygen())   -- a fresh account when none is given
local lamports = sol.lamports(arg[2] or "0.25")

local function fmt(l) return ("%.9f SOL"):format(l / sol.LAMPORTS_PER_SOL) end

print(("from    %s  (%s)"):format(signer.address, fmt(chain:balance(signer.address))))
local before = chain:balance(to)
local t0 = ferry.now()
local tx = signer:transfer{ to = to, lamports = lamports }
print(("sent    %s  %d compute units at %d micro-lamports"):format(tx.signature, tx.compute_units, tx.priority_fee))
local r = tx:wait{ commitment = "confirmed", timeout = 60 }
print(("landed  slot %d  %s  in %.0f ms (%d cop%s signed)"):format(r.slot, r.confirmation_status, (ferry.now() - t0) * 1000,
  r.copies, r.copies == 1 and "y" or "ies"))
local after = chain:balance(to)
print(("to      %s  %s -> %s"):format(to, fmt(before), fmt(after)))
assert(after - before == lamports, "recipient balance did not move by the amount sent")
