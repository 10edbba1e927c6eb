--- ferry.eth.replies -- the shape of each JSON-RPC answer the EVM code relies on.
---
--- A provider that answers `eth_blockNumber` with "abc", a balance with a number, or a fee
--- history without base fees is not answering: the pool turns such a reply into
--- `bad_response`, counts it against that provider and asks the next one. Nothing above the
--- pool ever sees a value of the wrong type. Methods not listed here pass as they come.
---
---   local why = replies.check("eth_blockNumber", r)   -- nil when r has the right shape
local json = require "ferry.core.json"

local M = {}

-- A quantity: 0x and 1 to 64 hex digits, no leading zeros beyond "0x0" (JSON-RPC's rule;
-- anvil, geth and hardhat follow it). Longer cannot be a 256-bit value.
local function quantity(v)
  if type(v) ~= "string" then return "not a 0x quantity" end
  local d = v:match("^0x(%x+)$")
  if not d or #d > 64 then return "not a 0x quantity" end
  return nil
end

-- Counts and heights (block numbers, nonces, chain ids, gas): below 2^52, so exact in every
-- Lua number. A pending nonce of 2^64 - 1 is not an answer.
local function count(v)
  if quantity(v) then return "not a 0x quantity" end
  if #v > 15 then return "not a plausible count (" .. #v - 2 .. " hex digits)" end
  return nil
end

-- Bytes of any length (call results, code) or of an exact length (hashes).
local function data(v)
  if type(v) ~= "string" or not v:match("^0x%x*$") or #v % 2 ~= 0 then return "not 0x data" end
  return nil
end
local function hash(v)
  if type(v) ~= "string" or #v ~= 66 or not v:match("^0x%x+$") then return "not a 32-byte 0x hash" end
  return nil
end

-- "array" | "object" | nil for a decoded JSON value (ferry.core.json marks the empty ones)
local function kind(v)
  if type(v) ~= "table" or json.is_number(v) then return nil end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__jsontype then return mt.__jsontype end
  if v[1] ~= nil then return "array" end
  return next(v) ~= nil and "object" or nil
end
local function is_object(v) return kind(v) == "object" end

-- fields: name -> checker; optional fields may be absent (nil), never of the wrong type
local function object(fields, optional)
  return function(v)
    if not is_object(v) then return "not an object" end
    for k, check in pairs(fields) do
      local why = check(v[k])
      if why then return k .. ": " .. why end
    end
    for k, check in pairs(optional or {}) do
      if v[k] ~= nil and v[k] ~= json.null then
        local why = check(v[k])
        if why then return k .. ": " .. why end
      end
    end
    return nil
  end
end

-- nil (not found, not mined) or what `then_` accepts
local function or_null(then_)
  return function(v)
    if v == nil or v == json.null then return nil end
    return then_(v)
  end
end

local function array_of(check, min)
  return function(v)
    if kind(v) ~= "array" then return "not an array" end
    if #v < (min or 0) then return ("fewer than %d entries"):format(min) end
    for i, x in ipairs(v) do
      local why = check(x)
      if why then return ("[%d]: %s"):format(i, why) end
    end
    return nil
  end
end

local CHECKS = {
  eth_blockNumber = count,
  eth_chainId = count,
  eth_getTransactionCount = count,
  eth_getBalance = quantity,
  eth_gasPrice = quantity,
  eth_maxPriorityFeePerGas = quantity,
  eth_estimateGas = count,
  eth_call = data,
  eth_getCode = data,
  eth_sendRawTransaction = hash,
  eth_feeHistory = object({ baseFeePerGas = array_of(quantity, 1) },
                          { reward = array_of(array_of(quantity)), oldestBlock = quantity }),
  eth_getTransactionReceipt = or_null(object({ blockNumber = count, transactionHash = hash },
                                             { status = quantity, contractAddress = data })),
  eth_getTransactionByHash = or_null(object({ hash = hash }, { blockNumber = count, nonce = count })),
  eth_getBlockByNumber = or_null(object({ number = count, hash = hash }, { parentHash = hash })),
  eth_getLogs = array_of(object({ address = data, data = data }, { blockNumber = count, transactionHash = hash })),
}

--- check(method, result) -> nil when the reply has the shape the method promises, else why not
function M.check(method, result)
  local check = CHECKS[method]
  if not check then return nil end
  return check(result)
end

return M
