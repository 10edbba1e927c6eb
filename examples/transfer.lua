-- examples/transfer.lua -- send ETH once and wait for it.
--
--   PAYER_KEY=0x... ./ferry examples/transfer.lua 0xRecipient 0.25 [chain]
-- On a local anvil: ./ferry tests/helpers/with_anvil.lua examples/transfer.lua
local ferry = require "ferry"
local eth = require "ferry.eth"

local to = arg[1] or "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
local amount = eth.ether(arg[2] or "0.25")
local chain = eth.chain(arg[3] or "local")
local signer = chain:signer{ env = "PAYER_KEY" }

print(("from    %s  (%s ETH)"):format(signer.address, eth.format_ether(chain:balance(signer.address))))
local before = chain:balance(to, "latest", { fresh = true })
local t0 = ferry.now()
local tx = signer:send{ to = to, value = amount }
print(("sent    %s  nonce %d  max fee %s gwei"):format(tx.hash, tx.nonce, eth.format_units(tx.max_fee, 9)))
local receipt = tx:wait{ confirmations = 1, timeout = 60 }
print(("mined   block %d  gas used %d  in %.0f ms"):format(eth.quantity(receipt.blockNumber),
  eth.quantity(receipt.gasUsed), (ferry.now() - t0) * 1000))
local after = chain:balance(to, "latest", { fresh = true })
print(("to      %s  %s -> %s ETH"):format(eth.address(to), eth.format_ether(before), eth.format_ether(after)))
assert(after - before == amount, "recipient balance did not move by the amount sent")
