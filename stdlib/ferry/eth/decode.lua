--- ferry.eth.decode -- JSON-RPC blocks, transactions, receipts and logs as Lua values.
---
--- What chain:block, chain:transaction, chain:receipt and chain:logs return, as ethers and
--- viem decode them: snake_case names; Lua integers for counts (block numbers, gas, nonce,
--- index, type, status); ferry.U256 for amounts (value, fees, base fee, difficulty);
--- checksummed addresses; hashes, data and topics stay 0x text; JSON null becomes nil.
--- A field of the wrong shape raises `bad_response` naming the method and the field, so a
--- lying node never hands a caller a half-decoded value. Fields not listed here keep their
--- JSON value under their snake_case name (a node's extensions pass through).
---
---   local b = decode.block(raw, "eth_getBlockByNumber")   -- b.number, b.base_fee_per_gas ...
local ferry = require "ferry"
local json = require "ferry.core.json"
local u256 = require "ferry.core.u256"
local secp = require "ferry.core.secp256k1"

local M = {}

-- A field's decoder: value -> decoded | nil, why
local kinds = {}

function kinds.int(v)
  if type(v) ~= "string" then return nil, "not a 0x quantity" end
  local d = v:match("^0x(%x+)$")
  if not d then return nil, "not a 0x quantity" end
  -- 13 hex digits fit a Lua integer with room to spare; no count on a chain is larger
  if #d > 13 then return nil, "not a plausible count (" .. #d .. " hex digits)" end
  return math.tointeger(tonumber(d, 16))
end

function kinds.u256(v)
  if type(v) ~= "string" or not v:match("^0x%x+$") or #v > 66 then return nil, "not a 0x quantity" end
  return u256.new(v)
end

function kinds.hash(v)
  if type(v) ~= "string" or #v ~= 66 or not v:match("^0x%x+$") then return nil, "not a 32-byte 0x hash" end
  return v
end

function kinds.data(v)
  if type(v) ~= "string" or not v:match("^0x%x*$") or #v % 2 ~= 0 then return nil, "not 0x data" end
  return v
end

function kinds.address(v)
  if type(v) ~= "string" or #v ~= 42 then return nil, "not a 20-byte 0x address" end
  local ok, a = pcall(secp.checksum, v)
  if not ok then return nil, "not a 20-byte 0x address" end
  return a
end

function kinds.bool(v)
  if type(v) ~= "boolean" then return nil, "not true or false" end
  return v
end

-- "array" when v is a decoded JSON array (an empty one is marked by ferry.core.json)
local function is_array(v)
  if type(v) ~= "table" or json.is_number(v) then return false end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__jsontype then return mt.__jsontype == "array" end
  return v[1] ~= nil or next(v) == nil
end

local function array_of(kind)
  return function(v)
    if not is_array(v) then return nil, "not an array" end
    local out = {}
    for i, x in ipairs(v) do
      local d, why = kind(x)
      if why then return nil, ("[%d]: %s"):format(i, why) end
      out[i] = d
    end
    return out
  end
end

-- camelCase -> snake_case (baseFeePerGas -> base_fee_per_gas)
local function snake(name)
  return (name:gsub("(%u)", function(c) return "_" .. c:lower() end))
end

-- An object decoder: `fields` maps a JSON name to its kind; `required` names the fields that
-- must be there (absent or null otherwise means nil).
local function object(what, fields, required)
  return function(v)
    if type(v) ~= "table" or is_array(v) or json.is_number(v) then return nil, "not " .. what end
    for _, k in ipairs(required or {}) do
      if v[k] == nil or v[k] == json.null then return nil, k .. ": missing" end
    end
    local out = {}
    for k, x in pairs(v) do
      if type(k) == "string" and x ~= json.null then
        local kind = fields[k]
        if kind then
          local d, why = kind(x)
          if why then return nil, k .. ": " .. why end
          out[snake(k)] = d
        else
          out[snake(k)] = x
        end
      end
    end
    return out
  end
end

local I, U, H, D, A = kinds.int, kinds.u256, kinds.hash, kinds.data, kinds.address

local log = object("a log", {
  address = A, topics = array_of(H), data = D, blockNumber = I, blockHash = H, blockTimestamp = I,
  transactionHash = H, transactionIndex = I, logIndex = I, removed = kinds.bool,
}, { "address", "topics", "data" })

local transaction = object("a transaction", {
  hash = H, nonce = I, blockHash = H, blockNumber = I, transactionIndex = I, from = A, to = A,
  value = U, gas = I, gasPrice = U, maxFeePerGas = U, maxPriorityFeePerGas = U, maxFeePerBlobGas = U,
  input = D, type = I, chainId = I, v = I, yParity = I, r = D, s = D,
  blobVersionedHashes = array_of(H),
}, { "hash", "nonce", "from", "value", "gas", "input" })

local receipt = object("a receipt", {
  transactionHash = H, transactionIndex = I, blockHash = H, blockNumber = I, from = A, to = A,
  cumulativeGasUsed = I, gasUsed = I, effectiveGasPrice = U, contractAddress = A, logs = array_of(log),
  logsBloom = D, type = I, status = I, root = H, blobGasUsed = I, blobGasPrice = U,
}, { "transactionHash", "blockNumber", "gasUsed" })

-- a block's transactions: hashes, or whole transactions when asked for in full
local function block_transactions(v)
  if not is_array(v) then return nil, "not an array" end
  if type(v[1]) == "table" then return array_of(transaction)(v) end
  return array_of(H)(v)
end

local block = object("a block", {
  number = I, hash = H, parentHash = H, timestamp = I, nonce = D, difficulty = U, totalDifficulty = U,
  gasLimit = I, gasUsed = I, baseFeePerGas = U, miner = A, extraData = D, logsBloom = D, size = I,
  stateRoot = H, transactionsRoot = H, receiptsRoot = H, sha3Uncles = H, mixHash = H,
  transactions = block_transactions, uncles = array_of(H), withdrawalsRoot = H,
  blobGasUsed = I, excessBlobGas = I, parentBeaconBlockRoot = H,
}, { "number", "hash", "parentHash", "timestamp", "gasLimit", "gasUsed" })

-- v decoded by `decoder`, or a raised bad_response naming the method and what is wrong
local function run(decoder, v, method, chain)
  local d, why = decoder(v)
  if why then
    ferry.raise("bad_response", ("%s from node: %s"):format(method, why), { method = method, chain = chain })
  end
  return d
end

--- block(raw, method, chain?) -> the decoded block (nil for JSON null); raises bad_response.
---@param raw table|nil a block object as the node sent it
---@param method string the JSON-RPC method, for the error
---@param chain? string the chain's name, for the error
---@return table|nil block
function M.block(raw, method, chain)
  if raw == nil or raw == json.null then return nil end
  return run(block, raw, method, chain)
end

--- transaction(raw, method, chain?) -> the decoded transaction (nil for JSON null).
---@param raw table|nil
---@param method string
---@param chain? string
---@return table|nil transaction
function M.transaction(raw, method, chain)
  if raw == nil or raw == json.null then return nil end
  return run(transaction, raw, method, chain)
end

--- receipt(raw, method, chain?) -> the decoded receipt, logs decoded (nil for JSON null).
---@param raw table|nil
---@param method string
---@param chain? string
---@return table|nil receipt
function M.receipt(raw, method, chain)
  if raw == nil or raw == json.null then return nil end
  return run(receipt, raw, method, chain)
end

--- logs(raw, method, chain?) -> a list of decoded logs.
---@param raw table
---@param method string
---@param chain? string
---@return table[] logs
function M.logs(raw, method, chain)
  return run(array_of(log), raw, method, chain)
end

return M
