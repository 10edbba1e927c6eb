--- ferry.sol -- the front door of the Solana API, over ferry.sol.*:
---   values    base58 keys, bytes, lamports (how arguments are read)
---   builders  System, ComputeBudget and SPL Token instructions
---   chain     sol.chain / sol.connect: reads, the blockhash cache, priority fees, error codes
---   signer    chain:signer, signer:sign (no I/O), signer:send / transfer / token_transfer
---   tx        tx:wait and the money rule (re-sign only after a status read said "not landed")
---
---   local sol = require "ferry.sol"
---   local chain = sol.chain "solana"
---   local payer = chain:signer{env = "SOL_PAYER_KEY"}
---   local tx = payer:transfer{to = "9xQe...", lamports = sol.lamports "0.01"}
---   tx:wait{commitment = "confirmed"}
local core = require "ferry.core.sol"
local bytes = require "ferry.core.bytes"
local V = require "ferry.sol.values"
local B = require "ferry.sol.builders"
local C = require "ferry.sol.chain"
local S = require "ferry.sol.signer"

local M = {}

M.chain, M.connect = C.chain, C.connect
M.system, M.compute_budget, M.token = B.system, B.compute_budget, B.token
M.lamports = V.lamports
M.LAMPORTS_PER_SOL = V.LAMPORTS_PER_SOL
M.SYSTEM_PROGRAM, M.TOKEN_PROGRAM, M.ATA_PROGRAM = V.SYSTEM_PROGRAM, V.TOKEN_PROGRAM, V.ATA_PROGRAM
M.COMPUTE_BUDGET_PROGRAM = V.COMPUTE_BUDGET_PROGRAM
M.PACKET_SIZE = core.PACKET_SIZE

--- sol.raw(s): raw bytes as instruction data (a ferry.Bytes)
M.raw = bytes.raw

--- sol.keygen() -> a new random key (ferry.SolKey); chain:signer(key) signs with it
M.keygen = S.keygen

--- sol.address(key_or_signer) -> base58 (a ferry.SolKey's public key, a signer's address)
---@param k SolKey|Signer|string
---@return string base58
function M.address(k)
  if type(k) == "userdata" then return V.address(k:public()) end
  if type(k) == "table" and k.address then return k.address end
  return V.address(V.key(k, "sol.address"))
end

--- sol.find_pda(seeds, program) -> address (base58), bump. Seeds are raw strings or base58 keys
--- given as {key = "..."}.
---@param seeds table a list of seeds
---@param program string base58
---@return string address base58
---@return integer bump
function M.find_pda(seeds, program)
  local raw = {}
  for i, s in ipairs(seeds) do
    if type(s) == "table" and s.key then raw[i] = V.key(s.key, ("seeds[%d]"):format(i))
    elseif bytes.is_raw(s) then raw[i] = bytes.string(s)
    else raw[i] = s end
  end
  local addr, bump = core.find_pda(raw, V.key(program, "program"))
  if not addr then require("ferry").raise("invalid_argument", "sol.find_pda: " .. bump.message) end
  return V.address(addr), bump
end

--- sol.decode(wire_base64) -> the transaction's fields (keys base58, indices as on the wire)
---@param wire string base64
---@return table
function M.decode(wire)
  local raw = core.b64decode(wire)
  if not raw then return nil, require("ferry").error("invalid_argument", "sol.decode: not base64") end
  local d, err = core.decode(raw)
  if not d then return nil, err end
  for i, k in ipairs(d.keys) do d.keys[i] = V.address(k) end
  for i, s in ipairs(d.signatures) do d.signatures[i] = V.address(s) end
  d.blockhash = V.address(d.blockhash)
  for _, l in ipairs(d.lookups) do l.key = V.address(l.key) end
  return d
end

return M
