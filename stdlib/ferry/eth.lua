--- ferry.eth -- EVM chains: reads through the provider pool, signing, and the send pipeline.
---
---   local eth = require "ferry.eth"
---   local chain = eth.chain "local"                 -- config.chains["local"]
---   local signer = chain:signer{env = "PAYER_KEY"}  -- or a 0x hex private key
---   local tx = signer:send{to = addr, value = eth.ether "0.5"}
---   local receipt = tx:wait{confirmations = 1, timeout = 60}
---
--- Byte strings in this API are 0x-hex text (data, hashes, raw transactions); raw binary goes
--- in through eth.raw(bytes) (a ferry.Bytes), and a plain string where bytes are expected is
--- refused with invalid_argument, never guessed (ferry.eth.values). Amounts are ferry.U256
--- values (Lua integers and decimal/hex strings are accepted where an amount goes in).
--- chain:call returns `nil, err` on failure like every primitive; the helpers above it
--- (balance, nonce, fees, send, wait ...) raise the same error tables.
---
--- This is the front door; the parts live in ferry.eth.*:
---   values    amounts, units, bytes, hashes, addresses    abi      ABI encode/decode
---   chain     eth.chain, eth.connect, reads and fees      signer   keys, keystores, sign, personal_sign
---   eip712    typed data: eth.typed_data_hash, signer:sign_typed_data
---   send      signer:send, the pipeline's steps           tx       tx:wait, rebroadcast, fee bump
---   delivery  what a broadcast's answer means             erc20    chain:erc20(address)
---   args      how arguments are read (internal)           replies  the shape of RPC answers
local values = require "ferry.eth.values"
local chain = require "ferry.eth.chain"
local send = require "ferry.eth.send"
require "ferry.eth.erc20"

-- U256 values encode to JSON as 0x quantities (RPC params).
debug.getregistry()["ferry.U256"].__tojson = function(v) return v:tohex() end

local M = {}
for k, v in pairs(values) do M[k] = v end
M.abi = require "ferry.eth.abi"
M.typed_data_hash = require("ferry.eth.eip712").hash    -- EIP-712 digest (signer:sign_typed_data signs it)
M.chain, M.connect = chain.chain, chain.connect
M.steps, M.on_step = send.steps, send.on_step

return M
