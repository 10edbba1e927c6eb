-- Issue 14, signers: EIP-712 typed data. eth.typed_data_hash and signer:sign_typed_data against
-- vectors signed by the pinned cast 1.7.1 (`cast wallet sign --data --from-file`) and hashed by
-- ethers 6 (tests/fixtures/eip712/gen_vectors.js; ethers' signatures equal cast's on every one).
local ferry = require "ferry"
local eth = require "ferry.eth"
local eip712 = require "ferry.eth.eip712"

local f = assert(io.open("tests/fixtures/eip712/vectors.json"))
local FX = ferry.json.decode(f:read("a"))
f:close()

local function offline()
  return eth.connect({ chain_id = 31337, providers = { { name = "nobody", url = "http://127.0.0.1:9" } } },
    { rpc = { timeout = 0.2, retries = 0 } })
end

-- the vector's types without EIP712Domain (ethers' form: the domain type follows from the domain)
local function types_of(v)
  local t = {}
  for k, x in pairs(v.typed.types) do if k ~= "EIP712Domain" then t[k] = x end end
  return t
end

local function raises(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  assert.is_true(ferry.is_error(err), tostring(err))
  assert.equal("invalid_argument", err.code)
  return err.message
end

local MAIL = FX.vectors[1].typed

describe("EIP-712", function()
  assert.is_true(#FX.vectors >= 5)
  for _, v in ipairs(FX.vectors) do
    it(v.name .. ": encodeType, hash and signature equal cast's", function()
      local typed = v.typed
      assert.equal(v.encode_type, eip712.encode_type(types_of(v), typed.primaryType))
      assert.equal(v.hash, eth.typed_data_hash(typed.domain, types_of(v), typed.message))
      local s <close> = offline():signer(FX.keys[v.key + 1])
      assert.equal(v.address, s.address)
      assert.equal(v.signature, s:sign_typed_data(typed.domain, types_of(v), typed.message))
      -- the types as cast reads them, EIP712Domain included, give the same
      assert.equal(v.signature, s:sign_typed_data(typed.domain, typed.types, typed.message))
    end)
  end

  it("a keystore signer signs typed data as the raw key does", function()
    local s <close> = offline():signer{ keystore = "tests/fixtures/keystore/cast_scrypt.json",
                                        password_file = "tests/fixtures/keystore/password.txt" }
    local v = FX.vectors[1]
    assert.equal(v.signature, s:sign_typed_data(v.typed.domain, types_of(v), v.typed.message))
  end)

  it("the signature recovers to the signer (v is 27 or 28)", function()
    local secp = require "ferry.core.secp256k1"
    local keccak = require "ferry.core.keccak"
    local v = FX.vectors[2]
    local s <close> = offline():signer(FX.keys[v.key + 1])
    local sig = keccak.fromhex(s:sign_typed_data(v.typed.domain, types_of(v), v.typed.message))
    assert.equal(65, #sig)
    assert.is_true(sig:byte(65) == 27 or sig:byte(65) == 28)
    assert.equal(s.address, secp.recover(keccak.fromhex(v.hash), sig:sub(1, 32), sig:sub(33, 64), sig:byte(65) - 27))
  end)

  it("refuses what it cannot encode, naming the field", function()
    local types = { Person = MAIL.types.Person, Mail = MAIL.types.Mail }
    local function msg(mut)
      local m = ferry.json.decode(ferry.json.encode(MAIL.message))
      mut(m)
      return raises(function() eth.typed_data_hash(MAIL.domain, types, m) end)
    end
    assert.matches("Mail.from.wallet: ", msg(function(m) m.from.wallet = "0x1234" end), 1, true)
    assert.matches("Mail.to: missing field wallet", msg(function(m) m.to.wallet = nil end), 1, true)
    assert.matches("Mail.to: unknown field walet", msg(function(m) m.to.walet = "x" end), 1, true)
    assert.matches("Mail.contents: expected a string", msg(function(m) m.contents = 5 end), 1, true)
    -- bytes follow ferry's bytes rule: a plain string is refused, not hashed as text
    local bt = { Doc = { { name = "body", type = "bytes" }, { name = "n", type = "uint8" }, { name = "fx", type = "uint8[2]" } } }
    assert.matches("Doc.body: expected 0x-hex text", raises(function()
      eth.typed_data_hash({ name = "x" }, bt, { body = "hello", n = 1, fx = { 1, 2 } }) end), 1, true)
    assert.matches("Doc.n: ", raises(function()
      eth.typed_data_hash({ name = "x" }, bt, { body = "0x", n = 256, fx = { 1, 2 } }) end), 1, true)
    assert.matches("Doc.fx: expected 2 elements, got 3", raises(function()
      eth.typed_data_hash({ name = "x" }, bt, { body = "0x", n = 1, fx = { 1, 2, 3 } }) end), 1, true)
    assert.matches("unknown type Persn", raises(function()
      eth.typed_data_hash(MAIL.domain, { Mail = { { name = "from", type = "Persn" } } }, { from = {} }) end), 1, true)
    assert.matches("more than one primary type", raises(function()
      eth.typed_data_hash(MAIL.domain, { A = { { name = "x", type = "uint8" } }, B = { { name = "y", type = "uint8" } } }, { x = 1 })
    end), 1, true)
    assert.matches("domain: unknown field chain_id", raises(function()
      eth.typed_data_hash({ name = "x", chain_id = 1 }, types, MAIL.message) end), 1, true)
    assert.matches("domain.verifyingContract: ", raises(function()
      eth.typed_data_hash({ verifyingContract = "0x12" }, types, MAIL.message) end), 1, true)
  end)

  it("signer.sign_typed_data without the colon says so", function()
    local s <close> = offline():signer(FX.keys[1])
    assert.matches("signer:sign_typed_data", raises(function() s.sign_typed_data(MAIL.domain, MAIL.types, MAIL.message) end), 1, true)
  end)
end)
