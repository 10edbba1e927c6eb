-- examples/erc20.lua -- deploy a small ERC-20, transfer, approve, and see a revert caught.
--
--   PAYER_KEY=0x... ./ferry examples/erc20.lua [chain=local]
--   ./ferry tests/helpers/with_anvil.lua examples/erc20.lua
-- The token's Solidity source and compiled bytecode are in tests/fixtures/erc20/.
local ferry = require "ferry"
local eth = require "ferry.eth"

local chain = eth.chain(arg[1] or "local")
local signer = chain:signer{ env = "PAYER_KEY" }
local spender = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
local friend = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"

local f = assert(io.open("tests/fixtures/erc20/Token.json"))
local artifact = ferry.json.decode(f:read("a"))
f:close()

local deploy = signer:send{ data = artifact.bytecode }
local rc = deploy:wait{ timeout = 60 }
local token = chain:erc20(rc.contractAddress)
local decimals = token:decimals()
print(("deployed %s (%s, %d decimals) in block %d"):format(token.address, token:symbol(), decimals,
  eth.quantity(rc.blockNumber)))
local function show(v) return eth.format_units(v, decimals) end
print(("supply   %s, ours %s"):format(show(token:total_supply()), show(token:balance_of(signer.address))))

token:transfer(signer, friend, eth.parse_units("1250.5", decimals)):wait{ timeout = 60 }
print(("transfer 1250.5 -> %s: balance %s"):format(friend, show(token:balance_of(friend))))

token:approve(signer, spender, eth.parse_units("300", decimals)):wait{ timeout = 60 }
print(("approve  %s may spend %s"):format(spender, show(token:allowance(signer.address, spender))))

-- a transfer over the balance: the revert reason comes back before anything is broadcast
local poor = chain:signer("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
local nonce_before = chain:nonce(poor.address)
local ok, err = pcall(token.transfer, token, poor, friend, eth.parse_units("1", decimals))
assert(not ok and err.code == "reverted", "expected a revert")
print(("revert   caught before broadcast: %q (nonce still %d)"):format(err.reason, chain:nonce(poor.address)))
assert(chain:nonce(poor.address) == nonce_before)
