--- ferry.sol.values -- how the Solana API reads its arguments: base58 keys, bytes, lamports.
---
--- Keys cross the Lua API as base58 text (what explorers, wallets and RPC show) and the C core
--- as 32 raw bytes; this is the one place that converts. A wrong argument raises
--- invalid_argument naming it; nothing is guessed.
local ferry = require "ferry"
local core = require "ferry.core.sol"
local bytes = require "ferry.core.bytes"
local keccak = require "ferry.core.keccak"

local M = {}
local raise = ferry.raise

M.SYSTEM_PROGRAM = "11111111111111111111111111111111"
M.COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111"
M.TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
M.TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PGnBqCXEpPxuJb"
M.ATA_PROGRAM = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
M.RECENT_BLOCKHASHES_SYSVAR = "SysvarRecentB1ockHashes11111111111111111111"
M.RENT_SYSVAR = "SysvarRent111111111111111111111111111111111"
M.LAMPORTS_PER_SOL = 1000000000

--- A base58 public key (or anything with .address, a signer) -> its 32 raw bytes; raises
--- invalid_argument naming `what` otherwise.
---@param v string|SolKey|table
---@param what string the argument, for errors
---@return string base58
function M.key(v, what)
  if type(v) == "table" and type(v.address) == "string" then v = v.address end
  if type(v) ~= "string" then
    raise("invalid_argument", ("%s: expected a base58 public key, got %s"):format(what, type(v)), { argument = what })
  end
  local raw, err = core.b58decode(v, 32)
  if not raw then
    raise("invalid_argument", ("%s: not a public key (%s)"):format(what, err.message), { argument = what })
  end
  return raw
end

--- 32 raw bytes -> base58
M.address = core.b58encode

--- Instruction data: a ferry.Bytes (raw), "0x" hex, or nil (empty) -> a raw string.
---@param v Bytes|string|nil
---@param what string
---@return string raw
function M.data(v, what)
  if v == nil then return "" end
  if bytes.is_raw(v) then return bytes.string(v) end
  if type(v) == "string" and v:match("^0[xX]") then
    local ok, raw = pcall(keccak.fromhex, v)
    if ok then return raw end
  end
  raise("invalid_argument", ("%s: expected bytes (a ferry.Bytes from sol.raw, or 0x hex), got %s")
    :format(what, type(v) == "string" and "a string that is not 0x hex" or type(v)), { argument = what })
end

--- A non-negative integer that fits a u64 as Lua holds it (lamports, token amounts, units).
---@param v integer
---@param what string
---@param max? integer
---@return integer
function M.amount(v, what, max)
  local n = math.tointeger(v)
  if type(v) == "string" then n = math.tointeger(tonumber(v)) end
  if not n or n < 0 or (max and n > max) then
    raise("invalid_argument", ("%s: expected a whole number from 0 to %s, got %s")
      :format(what, max and tostring(max) or "2^63-1", tostring(v)), { argument = what })
  end
  return n
end

--- sol.lamports("1.5") -> 1500000000: SOL (a decimal string or a number) as whole lamports;
--- more than 9 decimals is refused, not rounded.
---@param sol number|string SOL
---@return integer lamports
function M.lamports(sol)
  local s = type(sol) == "number" and string.format("%.9f", sol) or tostring(sol)
  local int, frac = s:match("^(%d+)%.?(%d*)$")
  frac = frac and frac:gsub("0+$", "")
  if not int or #frac > 9 then
    raise("invalid_argument", ("sol.lamports: expected SOL as a decimal with at most 9 places, got %s"):format(tostring(sol)))
  end
  return math.tointeger(int) * M.LAMPORTS_PER_SOL + math.tointeger(tonumber(frac .. string.rep("0", 9 - #frac)))
end

return M
