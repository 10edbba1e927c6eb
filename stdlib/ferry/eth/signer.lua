--- ferry.eth.signer -- keys and signatures: chain:signer(key | keystore), signer:sign{}, personal_sign,
--- sign_typed_data (EIP-712).
local ferry = require "ferry"
local keccak = require "ferry.core.keccak"
local txc = require "ferry.core.tx"
local keyc = require "ferry.core.key"
local A = require "ferry.eth.args"
local eip712 = require "ferry.eth.eip712"
local Chain = require("ferry.eth.chain").Chain

local M = {}
local tohex = keccak.tohex
local raise = ferry.raise

local Signer = {}
Signer.__index = Signer
Signer.__tostring = function(s) return "ferry.Signer " .. s.address end
Signer.__name = "ferry.Signer"

-- {keystore = PATH, password_env = NAME | password_file = PATH} -> a ferry.Key. The JSON (public:
-- only ciphertext) is read and checked here; the password is read, the key derived and the
-- secret decrypted in C (ferry.core.key.from_keystore) on the libuv thread pool, so neither the
-- password nor the key becomes a Lua string and the loop keeps running meanwhile.
local KEYSTORE_FIELDS = { keystore = true, password_env = true, password_file = true }
local function load_keystore(spec)
  local path = spec.keystore
  local function fail(msg) raise("invalid_argument", ("keystore %s: %s"):format(path, msg), { argument = "key", keystore = path }) end
  for k in pairs(spec) do
    if not KEYSTORE_FIELDS[k] then
      fail(("unknown field %s (give keystore, and password_env = NAME or password_file = PATH)"):format(tostring(k)))
    end
  end
  local f, why = io.open(path, "rb")
  if not f then fail(why) end
  local text = f:read(1 << 20)
  f:close()
  local ks, jerr = ferry.json.decode(text or "")
  if type(ks) ~= "table" then fail("not JSON (" .. tostring(jerr or "not an object") .. ")") end
  if ks.version ~= 3 then fail("version must be 3") end
  local c = ks.crypto or ks.Crypto                  -- geth wrote "Crypto" in old files
  if type(c) ~= "table" then fail("crypto: expected an object") end
  if c.cipher ~= "aes-128-ctr" then fail(("crypto.cipher %q is not supported (aes-128-ctr is)"):format(tostring(c.cipher))) end
  local kp, cp = c.kdfparams, c.cipherparams
  if type(kp) ~= "table" then fail("crypto.kdfparams: expected an object") end
  if type(cp) ~= "table" then fail("crypto.cipherparams: expected an object") end
  if kp.dklen ~= 32 then fail("crypto.kdfparams.dklen must be 32") end
  if c.kdf == "pbkdf2" and kp.prf ~= "hmac-sha256" then
    fail(("crypto.kdfparams.prf %q is not supported (hmac-sha256 is)"):format(tostring(kp.prf)))
  end
  local params = { kdf = c.kdf, n = kp.n, r = kp.r, p = kp.p, c = kp.c, salt = kp.salt,
                   iv = cp.iv, ciphertext = c.ciphertext, mac = c.mac }
  local ok, k, err = pcall(keyc.from_keystore, params, { password_env = spec.password_env, password_file = spec.password_file })
  if not ok then
    local m = ferry.is_error(k) and k.message or tostring(k)
    -- name the JSON fields as the file spells them
    m = m:gsub("^kdf:", "crypto.kdf:"):gsub("^(salt):", "crypto.kdfparams.%1:"):gsub("^([nrpc]):", "crypto.kdfparams.%1:")
      :gsub("^iv:", "crypto.cipherparams.iv:"):gsub("^(ciphertext):", "crypto.%1:"):gsub("^(mac):", "crypto.%1:")
    fail(m)
  end
  if not k then fail(err.message) end
  -- geth and ethers write the address too: a key that does not match it is the wrong file
  if type(ks.address) == "string" and ks.address:lower():gsub("^0x", "") ~= k:address():lower():sub(3) then
    local addr = k:address()
    k:close()
    fail(("the decrypted key is %s but the file says address %s"):format(addr, ks.address))
  end
  return k
end

-- -> a ferry.Key (ferry.core.key): the key's bytes live in guarded C memory from here on, and
-- no error shows them. {env = NAME} is parsed from the environment in C, so the key is never
-- a Lua string at all.
local function load_key(key)
  if keyc.is_key(key) then
    if key:is_closed() then raise("invalid_argument", "signer: the ferry.Key is closed", { argument = "key" }) end
    return key
  end
  if type(key) == "table" and type(key.keystore) == "string" then return load_keystore(key) end
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
    raise("invalid_argument", "signer: key must be 0x + 64 hex digits, 32 bytes, a ferry.Key, {env = NAME} or "
      .. "{keystore = PATH, password_env = NAME | password_file = PATH}", { argument = "key" })
  end
  local ok, k = pcall(keyc.new, key)
  if not ok then raise("invalid_argument", "signer: " .. tostring(k.message or k):gsub("^ferry%.Key: ", ""), { argument = "key" }) end
  return k
end

--- chain:signer(key | {env = NAME} | {keystore = PATH, password_env = NAME | password_file = PATH}
--- | ferry.Key) -> signer with .address (EIP-55). The key is a
--- ferry.Key: its bytes stay in C memory (no field, upvalue or method returns them), so
--- printing the signer (REPL, logs) or walking it with the debug library cannot show them.
--- signer:close() (or `local s <close> = chain:signer(...)`) wipes them; a key passed in as a
--- ferry.Key is wiped with it.
---@param key string|table|Key a 0x private key, {env = NAME}, {keystore = PATH, password_env = NAME}, or a ferry.Key
---@return Signer
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

--- sign{to, value, data, nonce, gas, max_fee, max_priority_fee | gas_price, chain_id, type,
--- access_list} -> raw, hash. No I/O: every field must be given.
---@param t table every transaction field
---@return string raw 0x signed transaction
---@return string hash 0x transaction hash
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
---@param msg string the message, as it is
---@return string signature 0x, 65 bytes
function Signer:personal_sign(msg)
  check_signer(self, "signer:personal_sign")
  if type(msg) ~= "string" then
    raise("invalid_argument", ("signer:personal_sign: message must be a string, got %s"):format(type(msg)), { argument = "msg" })
  end
  return tohex(self.key:personal_sign(msg))
end

--- EIP-712: signer:sign_typed_data(domain, types, value) -> 0x r||s||v (v = 27/28), what
--- `cast wallet sign --data` and ethers' signTypedData give (ferry.eth.eip712 has the rules)
---@param domain table the EIP-712 domain (name, version, chainId, verifyingContract, salt)
---@param types table struct name -> {{name =, type =}...}
---@param value table the message
---@return string signature 0x, 65 bytes
function Signer:sign_typed_data(domain, types, value)
  check_signer(self, "signer:sign_typed_data")
  return tohex(self.key:sign_hash(eip712.digest("signer:sign_typed_data", domain, types, value)))
end

M.Signer = Signer
return M
