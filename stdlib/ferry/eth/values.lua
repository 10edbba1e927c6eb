--- ferry.eth.values -- amounts, units, bytes, hashes and addresses: the values of the EVM API.
local u256 = require "ferry.core.u256"
local keccak = require "ferry.core.keccak"
local secp = require "ferry.core.secp256k1"
local bytesc = require "ferry.core.bytes"
local ferry = require "ferry"
local A = require "ferry.eth.args"

local M = {}
local tohex, fromhex = keccak.tohex, keccak.fromhex
local raise = ferry.raise
local U, checked, arg_bytes = A.U, A.checked, A.bytes

--- eth.u256(x): from an integer >= 0, a decimal or 0x string, a U256, or a JSON big number;
--- anything else is invalid_argument ("eth.u256: negative integer: -1").
---@param x integer|string|U256 an integer >= 0, a decimal or 0x string, or a U256
---@return U256
function M.u256(x) return A.u256(x, "eth.u256") end

-- A Lua float as the decimal it prints as ("%.14g": 0.3 is "0.3", never 0.29999999999999998),
-- written out without an exponent. A float that is not exactly that decimal (0.1 + 0.2, or
-- more digits than a double keeps) is refused: an amount is never off by a few wei.
local function float_decimal(x, what)
  if x ~= x or x == math.huge or x == -math.huge then
    raise("invalid_argument", ("%s: %s is not an amount"):format(what, tostring(x)))
  end
  local s = ("%.14g"):format(x)
  if tonumber(s) ~= x then
    raise("invalid_argument", ("%s: the float %.17g is not exactly a decimal number; pass the amount as a string, such as %q")
      :format(what, x, s), { argument = what })
  end
  local sign, int, frac, e = s:match("^(-?)(%d+)%.?(%d*)e([-+]%d+)$")
  if not sign then return s end
  local digits, point = int .. frac, #int + tonumber(e)
  if point <= 0 then return sign .. "0." .. ("0"):rep(-point) .. digits end
  if point >= #digits then return sign .. digits .. ("0"):rep(point - #digits) end
  return sign .. digits:sub(1, point) .. "." .. digits:sub(point + 1)
end

local function units(decimals, name)
  return function(x)
    if u256.is_u256(x) then return x * u256.new(10) ^ decimals end
    if math.type(x) == "float" then x = float_decimal(x, name) end
    return checked(name, u256.parse_units, tostring(x), decimals)
  end
end
M.ether = units(18, "eth.ether")     -- eth.ether "1.5"
M.gwei = units(9, "eth.gwei")        -- eth.gwei(30)
--- wei(x) -> U256: an amount already in wei (as eth.u256)
---@param x integer|string|U256
---@return U256
function M.wei(x) return U(x) end
M.parse_units = u256.parse_units     -- (text, decimals)
M.format_units = u256.format_units   -- (value, decimals) -> "1.5"
--- format_ether(v) -> "1.5": wei as ether, no trailing zeros
---@param v integer|string|U256 wei
---@return string
function M.format_ether(v) return u256.format_units(U(v), 18) end

--- Bytes. One rule for every bytes-like value in this API (ABI bytes, bytesN and address
--- values, eth.keccak256's input, eth.abi.decode's data, signer data): a string is "0x" + hex
--- digits and is read as hex, as JSON-RPC, ethers and viem read it; raw binary is said to be
--- raw with eth.raw(bytes), a ferry.Bytes (#b, b:hex(), b:string()); any other string is
--- refused with invalid_argument naming the call, never taken as raw bytes.
---   eth.keccak256("0x1234")            -- the two bytes 0x12 0x34
---   eth.keccak256(eth.raw("hello"))    -- the five bytes of the text
---   eth.keccak256("hello")             -- invalid_argument
M.raw = bytesc.raw
M.is_raw = bytesc.is_raw

--- bytes <-> 0x hex: eth.hex(raw string or eth.raw) -> "0x..."; eth.bytes("0x...") -> raw string
---@param b string|Bytes raw bytes (a string, or eth.raw)
---@return string hex 0x text
function M.hex(b)
  if bytesc.is_raw(b) then return b:hex() end
  return checked("eth.hex", tohex, b)
end
--- bytes(hex) -> the raw bytes of 0x hex text (invalid_argument on anything else)
---@param hex string 0x text
---@return string
function M.bytes(hex)
  if type(hex) ~= "string" or not hex:match("^0x") then
    raise("invalid_argument", ("eth.bytes: expected 0x-hex text, got %s"):format(type(hex) == "string" and "a plain string" or type(hex)))
  end
  return checked("eth.bytes", fromhex, hex)
end

--- keccak256 of 0x-hex input's bytes or of eth.raw(bytes); returns 0x hex.
---@param data string|Bytes 0x hex text or eth.raw(bytes)
---@return string hash 0x + 64 hex digits
function M.keccak256(data)
  return tohex(keccak.keccak256(arg_bytes(data, "eth.keccak256")))
end

--- EIP-55 checksummed address from "0x" + 40 hex digits or eth.raw(20 bytes); raises
--- invalid_argument on anything else (a 20-character string included).
---@param v string|Bytes 0x + 40 hex digits (EIP-55 checked when mixed case) or eth.raw of 20 bytes
---@return string address checksummed
function M.address(v) return A.address(v, "eth.address") end
M.is_address = secp.is_address

--- 0x quantity -> integer (or U256 when it does not fit)
M.quantity = A.qty

return M
