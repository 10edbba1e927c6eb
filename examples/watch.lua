-- examples/watch.lua -- watch a chain live: new heads, an ERC-20's Transfer logs, reorgs.
--
--   ./ferry examples/watch.lua [chain=local] [token address] [heads=0: forever]
--   ./ferry tests/helpers/with_anvil.lua examples/watch.lua
-- With no token address it deploys the test token (tests/fixtures/erc20) and, on a dev node
-- (anvil), makes some transfers and one reorg itself, so there is something to see. The feed
-- runs over the chain's `ws` providers (docs/ws.md) and falls back to polling without one.
local ferry = require "ferry"
local eth = require "ferry.eth"

local chain = eth.chain(arg[1] or "local")
local TRANSFER = eth.keccak256(eth.raw("Transfer(address,address,uint256)"))
local token_addr, demo = arg[2], false
local signer

if not token_addr then
  signer = chain:signer{ env = "PAYER_KEY" }
  local f = assert(io.open("tests/fixtures/erc20/Token.json"))
  local artifact = ferry.json.decode(f:read("a"))
  f:close()
  token_addr = signer:send{ data = artifact.bytecode }:wait{ timeout = 60 }.contractAddress
  demo = true
end
local token = chain:erc20(token_addr)
local decimals = token:decimals()
print(("watching %s, Transfer logs of %s (%s)"):format(chain.name, token.address, token:symbol()))

local heads <close> = chain:subscribe("heads")
local logs <close> = chain:subscribe("logs", { address = token.address, topics = { TRANSFER } })

-- the logs, in their own task; a replaced block's logs come again with removed = true
ferry.spawn(function()
  for l in logs:each() do
    local from, to = "0x" .. l.topics[2]:sub(-40), "0x" .. l.topics[3]:sub(-40)
    print(("  %s block %d  %s -> %s  %s"):format(l.removed and "REMOVED " or "transfer", l.number, from, to,
      eth.format_units(eth.u256(l.data), decimals)))
  end
end):daemon()

-- on a dev node: a few transfers, then a reorg of the last two blocks
if demo then
  ferry.spawn(function()
    local friend = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    for i = 1, 4 do
      token:transfer(signer, friend, eth.parse_units(tostring(i), decimals)):wait{ timeout = 60 }
    end
    chain:call("anvil_reorg", { 2, ferry.json.array({}) })
    chain:call("evm_mine", {})
  end):daemon()
end

local want = tonumber(arg[3]) or (demo and 9 or 0)
local seen = 0
for h in heads:each() do
  if h.reorg then
    print(("REORG    depth %d, fork at block %d, %d transaction(s) of ours re-verified"):format(h.reorg.depth,
      h.reorg.fork, h.reorg.transactions or 0))
  end
  print(("head     block %d  %s  base fee %s%s"):format(h.number, h.hash, tostring(h.base_fee and eth.u256(h.base_fee)),
    h.gap and (" (%d heads dropped: reader too slow)"):format(h.gap) or ""))
  seen = seen + 1
  if want > 0 and seen >= want then break end
end
