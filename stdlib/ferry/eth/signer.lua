--- ferry.eth.signer -- keys and signatures: chain:signer(key), signer:sign{}, personal_sign.
local ferry = require "ferry"
local keccak = require "ferry.core.keccak"
local txc = require "ferry.core.tx"
local keyc = require "ferry.core.key"
local A = require "ferry.eth.args"
local Chain = require("ferry.eth.chain").Chain

local M = {}
local tohex = keccak.tohex
local raise = ferry.raise

local Signer = {}
Signer.__index = Signer
Signer.__tostring = function(s) return "ferry.Signer " .. s.address end
Signer.__name = "ferry.Signer"

-- -> a ferry.Key (ferry.core.key): the key's bytes live in guarded C memory from here on, and
-- no error shows them. {env = NAME} is parsed from the environment in C, so the key is never
-- a Lua string at all.
local function load_key(key)
  if keyc.is_key(key) then
    if key:is_closed() then raise("invalid_argument", "signer: the ferry.Key is closed", { argument = "key" }) end
    return key
  end
  if type(key) == "table" and type(key.env) == "string" then
    local k, why = keyc.from_env(key.env)
    if why == "unset" then
      raise("invalid_argument", ("signer: environment variable %s is not set"):format(key.env), { argument = "key", env = key.env })
    elseif not k then
      raise("invalid_argument", ("signer: %s does not hold a valid secp256k1 private key (expected 0x + 64 hex digits)")
        :format(key.env), { argument = "key", env = key.env })
    end
    return k
  end
  if type(key) ~= "string" then
    raise("invalid_argument", "signer: key must be 0x + 64 hex digits, 32 bytes, a ferry.Key or {env = NAME}", { argument = "key" })
  end
  local ok, k = pcall(keyc.new, key)
  if not ok then raise("invalid_argument", "signer: " .. tostring(k.message or k):gsub("^ferry%.Key: ", ""), { argument = "key" }) end
  return k
end

--- chain:signer(key | {env = NAME} | ferry.Key) -> signer with .address (EIP-55). The key is a
--- ferry.Key: its bytes stay in C memory (no field, upvalue or method returns them), so
--- printing the signer (REPL, logs) or walking it with the debug library cannot show them.
--- signer:close() (or `local s <close> = chain:signer(...)`) wipes them; a key passed in as a
--- ferry.Key is wiped with it.
function Chain:signer(key)
  local k = load_key(key)
  return setmetatable({ chain = self, address = k:address(), key = k }, Signer)
end

--- signer:close(): wipe the key. The signer cannot sign afterwards.
function Signer:close() self.key:close() end
Signer.__close = Signer.close

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
  local ok, raw, hash = pcall(txc.sign, tx_fields(self, t), self.key, "hex")
  if not ok then
    if ferry.is_error(raw) then error(raw, 2) end
    A.bad_arg("signer:sign", (tostring(raw):gsub("^tx%.sign: ", "")))
  end
  return raw, hash
end

--- EIP-191 personal_sign of the message's bytes (text as it is) -> 0x r||s||v (v = 27/28)
function Signer:personal_sign(msg)
  check_signer(self, "signer:personal_sign")
  if type(msg) ~= "string" then
    raise("invalid_argument", ("signer:personal_sign: message must be a string, got %s"):format(type(msg)), { argument = "msg" })
  end
  return tohex(self.key:personal_sign(msg))
end

M.Signer = Signer
return M
