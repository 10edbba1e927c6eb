--- helpers.evm -- set-ups the EVM specs share: anvil's first two accounts, fresh recipients,
--- chains over one endpoint, a fault proxy in front of a fresh anvil, and either node by name.
local ferry = require "ferry"
local eth = require "ferry.eth"
local peers = require "helpers.peers"

local M = {}

M.KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
M.ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
M.ADDR1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

--- An address nobody has used: its balance is exactly what was sent to it.
function M.fresh_address(i)
  return eth.address("0x" .. eth.keccak256(eth.raw(("recipient-%d-%f"):format(i, ferry.now()))):sub(-40))
end

--- A chain over one endpoint (an anvil, or a fault proxy in front of one). extra: chain
--- settings, and `timeout` for the provider's.
function M.chain_at(url, extra)
  local provider = { name = "node", url = url, rps = 10000 }
  local spec = { chain_id = 31337, providers = { provider } }
  for k, v in pairs(extra or {}) do
    if k == "timeout" then provider.timeout = v else spec[k] = v end
  end
  return eth.connect(spec)
end

--- A fresh anvil (anvil_args: more flags), a chain over it (settings as for chain_at) and
--- KEY0's signer. -> anvil, chain, signer
function M.on_anvil(settings, anvil_args)
  local anvil = peers.anvil(anvil_args)
  local chain = M.chain_at(anvil.url, settings)
  return anvil, chain, chain:signer(M.KEY0)
end

--- The same with a fault proxy between the chain and the anvil. -> anvil, proxy, chain, signer
function M.behind_proxy(settings, anvil_args)
  local anvil = peers.anvil(anvil_args)
  local proxy = peers.proxy(anvil.url)
  local chain = M.chain_at(proxy.url, settings)
  return anvil, proxy, chain, chain:signer(M.KEY0)
end

--- A node by name: "anvil" (extra: more flags) or "hardhat" (hardhat's node, ~10 s to start:
--- share one per spec file and isolate tests with node:snapshot() / node:revert(id)). Both
--- answer the same dev calls under one name (tests/helpers/peers.lua: mine, automine,
--- next_base_fee, drop, snapshot, revert).
M.NODES = { "anvil", "hardhat" }
function M.node(name, extra)
  if name == "anvil" then return peers.anvil(extra) end
  if name == "hardhat" then
    assert(extra == nil or #extra == 0, "hardhat's node takes no extra flags here: use its dev calls")
    return peers.hardhat()
  end
  error(("evm.node: unknown node %q (anvil or hardhat)"):format(tostring(name)), 2)
end

--- A fault proxy in front of a node (from M.node or peers.*): proxy:fault{...}, proxy:stop().
function M.proxy(node) return peers.proxy(node.url) end

return M
