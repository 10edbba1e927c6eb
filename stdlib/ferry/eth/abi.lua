--- ferry.eth.abi -- ABI encoding and decoding, hex in, hex out.
---
--- Values follow the bytes rule of ferry.eth.values: `bytes`, `bytesN` and `address` take "0x" hex text or
--- eth.raw(bytes), and refuse any other string (eth.abi.encode({"bytes"}, "0x1234") is the two
--- bytes 0x12 0x34, never the six characters); `string` takes text as it is. Numbers take a
--- U256, an integer or a decimal/0x string. eth.abi.decode's data is 0x hex or eth.raw, and it
--- returns bytes/bytesN as 0x hex and addresses EIP-55 checksummed (as ethers does). Encoding
--- returns 0x hex. A bad argument raises invalid_argument naming the call; data that does not
--- decode gives nil, err.
local keccak = require "ferry.core.keccak"
local abic = require "ferry.core.abi"
local A = require "ferry.eth.args"

local abi = {}
local tohex = keccak.tohex
local checked, arg_bytes, bad_arg = A.checked, A.bytes, A.bad_arg

--- encode_call("transfer(address,uint256)", to, amount) -> 0x selector and arguments
---@param sig string a function signature
---@param ... any its arguments
---@return string data 0x hex
function abi.encode_call(sig, ...) return tohex(checked("eth.abi.encode_call", abic.encode_call, sig, ...)) end
--- encode({"uint256", "address"}, a, b) -> 0x hex of the arguments (no selector)
---@param types string[]
---@param ... any
---@return string
function abi.encode(types, ...) return tohex(checked("eth.abi.encode", abic.encode, types, ...)) end
--- selector(sig) -> the 4-byte selector, 0x hex
---@param sig string
---@return string
function abi.selector(sig) return tohex(checked("eth.abi.selector", abic.selector, sig)) end
--- decode(types, data) -> the values, or nil, err when data does not decode
---@param types string|string[] one type or a list
---@param data string|Bytes 0x hex or eth.raw
---@return any ...
function abi.decode(types, data)
  local d = arg_bytes(data, "eth.abi.decode: data")
  local r = table.pack(pcall(abic.decode, types, d))       -- a bad type list raises; bad data: nil, err
  if not r[1] then bad_arg("eth.abi.decode", r[2]) end
  return table.unpack(r, 2, r.n)
end
--- decode_revert(data) -> the reason of Error(string) / Panic(uint256) revert data, or nil
---@param data string|Bytes
---@return string|nil reason
function abi.decode_revert(data)
  return abic.decode_revert(arg_bytes(data, "eth.abi.decode_revert: data"))
end

return abi
