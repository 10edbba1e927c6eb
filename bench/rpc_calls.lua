-- bench/rpc_calls.lua -- what N transfers through the whole send pipeline ask of the node:
-- JSON-RPC calls per method, counted at a fault proxy (mode pass) in front of a fresh anvil,
-- and the wall time. The floor needs eth_sendRawTransaction plus receipt polls; everything
-- else is what the pipeline adds (fees, gas estimate, funds check, nonce).
--
--   ./ferry bench/rpc_calls.lua [N=200]
package.path = "tests/?.lua;" .. package.path
local ferry = require "ferry"
local eth = require "ferry.eth"
local workflow = require "ferry.workflow"
local peers = require "helpers.peers"

local N = tonumber(arg[1]) or 200
local anvil = peers.anvil()
local proxy = peers.proxy(anvil.url)
local chain = eth.connect{ chain_id = 31337, providers = { { name = "anvil", url = proxy.url, rps = 100000 } } }
local signer = chain:signer("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
local to = {}
for i = 1, N do to[i] = eth.address("0x" .. eth.keccak256(eth.raw("rpc_calls" .. i)):sub(-40)) end
chain:nonce(signer.address)
proxy:reset_stats()
local t0 = ferry.now()
local _, summary = workflow.parallel(to, { max_concurrent = 32, progress = false }, function(addr)
  signer:send{ to = addr, value = 1 }:wait{ timeout = 60 }
end)
local wall = ferry.now() - t0
local methods = proxy:stats().methods
proxy:stop(); anvil:stop()
local names, total = {}, 0
for m, n in pairs(methods) do names[#names + 1] = m; total = total + n end
table.sort(names, function(a, b) return methods[a] > methods[b] end)
print(("%d transfers (%d failed) in %.0f ms, %d calls (%.2f per transfer):"):format(N, summary.errors, wall * 1000, total, total / N))
for _, m in ipairs(names) do print(("  %-28s %5d"):format(m, methods[m])) end
