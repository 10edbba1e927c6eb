--- ferry.eth.signer -- keys and signatures: chain:signer(key), signer:sign{}, personal_sign.
local ferry = require "ferry"
local keccak = require "ferry.core.keccak"
local secp = require "ferry.core.secp256k1"
local txc = require "ferry.core.tx"
local A = require "ferry.eth.args"
local Chain = require("ferry.eth.chain").Chain

local M = {}
local tohex, fromhex = keccak.tohex, keccak.fromhex
local raise = ferry.raise

local Signer = {}
Signer.__index = Signer
Signer.__tostring = function(s) return "ferry.Signer " .. s.address end
Signer.__name = "ferry.Signer"

local function load_key(key)
  if type(key) == "table" and key.env then
    local v = os.getenv(key.env)
    if not v or v == "" then error(("signer: environment variable %s is not set"):format(key.env), 3) end
    if not v:match("^0x%x+$") and v:match("^%x+$") then v = "0x" .. v end
    if not (v:match("^0x%x+$") and #v == 66) or not secp.is_valid_key(fromhex(v)) then
      error(("signer: %s does not hold a valid secp256k1 private key (expected 0x + 64 hex digits)"):format(key.env), 3)
    end
    return fromhex(v)
  end
  if type(key) ~= "string" then error("signer: key must be 0x + 64 hex digits or {env = NAME}", 3) end
  if key:match("^0x") then
    if #key ~= 66 or not key:match("^0x%x+$") then
      error("signer: a private key is 0x + 64 hex digits", 3)
    end
    key = fromhex(key)
  end
  if #key ~= 32 or not secp.is_valid_key(key) then error("signer: not a valid secp256k1 private key", 3) end
  return key
end

--- chain:signer(key | {env = NAME}) -> signer with .address (EIP-55). The key is kept in a
--- closure, never in a field, so printing the signer (REPL, logs) cannot show it.
function Chain:signer(key)
  local k = load_key(key)
  local s = setmetatable({ chain = self, address = secp.address(k) }, Signer)
  s._sign = function(t) local ok, a, b = pcall(txc.sign, t, k, "hex")
    if not ok then error(a, 3) end
    return a, b end
  s._personal = function(msg) return secp.personal_sign(msg, k) end
  return s
end

-- fields for ferry.core.tx from the user's table
local function tx_fields(self, t)
  A.check_fields(t, A.SIGN_FIELDS, "signer:sign")
  local f = {
    type = t.type or (t.gas_price and 0) or (self.chain.cfg.legacy and 0) or 2,
    chain_id = t.chain_id or self.chain.chain_id,
    nonce = t.nonce, gas = t.gas, to = t.to, value = t.value and A.u256(t.value, "signer:sign: value") or nil,
    data = A.data(t.data, "signer:sign: data"),
    access_list = t.access_list,
  }
  if f.type == 0 then f.gas_price = t.gas_price or t.max_fee
  else
    A.check_tip(t.max_fee, t.max_priority_fee, "signer:sign")
    f.max_fee, f.max_priority_fee = t.max_fee, t.max_priority_fee
  end
  return f
end

--- signer:sign{to, value, data, nonce, gas, max_fee, max_priority_fee | gas_price, chain_id,
--- type, access_list} -> raw (0x hex), hash (0x hex). No I/O: every field must be given.
-- signer.sign(x) instead of signer:sign(x): say so rather than fail on the field read
local function check_signer(self, what)
  if getmetatable(self) ~= Signer then
    raise("invalid_argument", ("%s: called without a signer (use signer:%s)"):format(what, what:match(":(.*)")))
  end
end

function Signer:sign(t)
  check_signer(self, "signer:sign")
  return self._sign(tx_fields(self, t))
end

--- EIP-191 personal_sign of the message's bytes (text as it is) -> 0x r||s||v (v = 27/28)
function Signer:personal_sign(msg)
  check_signer(self, "signer:personal_sign")
  return tohex(A.checked("signer:personal_sign", self._personal, msg))
end

M.Signer = Signer
return M
