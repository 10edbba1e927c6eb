-- ferry.core.secp256k1: keys, EIP-55 addresses, recoverable signatures, EIP-191 (engine/crypto/secp_lua.c)
-- Vectors: PEERS.md section 3 (cast wallet address / sign --no-hash / sign).
local secp = require "ferry.core.secp256k1"

local keccak = require "ferry.core.keccak"
local unhex, hex = keccak.fromhex, keccak.tohex

local KEY0_HEX = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
local KEY0 = unhex(KEY0_HEX)
local ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
-- keccak256(0x1234): `cast keccak 0x1234`
local H1234 = unhex("0x56570de287d73cd1cb6092bb8fdee6173974955fdef345ae579ee9f475ea7432")

describe("ferry.core.secp256k1", function()
  it("derives the address of anvil key 0 (raw and 0x-hex keys)", function()
    assert.are.equal(ADDR0, secp.address(KEY0))
    assert.are.equal(ADDR0, secp.address(KEY0_HEX))
    assert.are.equal(64, #secp.pubkey(KEY0))
    assert.are.equal(ADDR0:lower(), hex(keccak.keccak256(secp.pubkey(KEY0)):sub(13)))
  end)

  it("signs a hash like `cast wallet sign --no-hash` and recovers the signer", function()
    local r, s, v = secp.sign(H1234, KEY0)
    assert.are.equal("0xae76f7962dd09ea8959a2c59b7205f0e26d328b9170a49e9c357d71fd3597c38" ..
      "4151b6a1535c0e87c9c71badbfe7968911b1886dca4df5fd91ade95b4561c81d1b",
      hex(r .. s .. string.char(27 + v)))
    assert.are.equal(ADDR0, secp.recover(H1234, r, s, v))
    assert.are.equal(ADDR0, secp.recover(H1234, r, s, v + 27))
    -- the other parity recovers some other address (or fails), never the signer
    local other = secp.recover(H1234, r, s, 1 - v)
    assert.are_not.equal(ADDR0, other)
  end)

  it("personal_sign matches `cast wallet sign` (EIP-191) and round-trips", function()
    local sig = secp.personal_sign("hello", KEY0)
    assert.are.equal("0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc" ..
      "573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c", hex(sig))
    assert.are.equal(ADDR0, secp.personal_recover("hello", sig))
    assert.are_not.equal(ADDR0, secp.personal_recover("hellO", sig))
    assert.are.equal(32, #secp.personal_hash(""))
  end)

  it("is deterministic (RFC6979) and low-S", function()
    for i = 1, 50 do
      local h = string.rep(string.char(i), 32)
      local r1, s1, v1 = secp.sign(h, KEY0)
      local r2, s2, v2 = secp.sign(h, KEY0)
      assert.are.equal(r1 .. s1 .. v1, r2 .. s2 .. v2)
      assert.is_true(s1:byte(1) < 0x80) -- s <= n/2 implies the top bit is clear
      assert.are.equal(ADDR0, secp.recover(h, r1, s1, v1))
    end
  end)

  it("checksums addresses (EIP-55) and rejects a wrong mixed-case checksum", function()
    assert.are.equal(ADDR0, secp.checksum(ADDR0:lower()))
    assert.are.equal(ADDR0, secp.checksum("0x" .. ADDR0:sub(3):upper()))
    assert.are.equal(ADDR0, secp.checksum(require("ferry.core.bytes").raw(unhex(ADDR0))))
    assert.has_error(function() secp.checksum(unhex(ADDR0)) end)   -- 20 raw bytes need eth.raw
    -- EIP-55 reference vectors
    for _, a in ipairs{ "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
                        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb" } do
      assert.are.equal(a, secp.checksum(a:lower()))
      assert.is_true(secp.is_address(a))
    end
    local bad = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92267"
    assert.has_error(function() secp.checksum(bad) end)
    assert.is_false(secp.is_address(bad))
    assert.is_false(secp.is_address("0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266")) -- one letter flipped
    assert.has_error(function() secp.checksum("0x1234") end)
    assert.has_error(function() secp.checksum("f39fd6e51aad88f6f4ce6ab8827279cfffb92266") end) -- no 0x
    assert.has_error(function() secp.checksum("0xz39fd6e51aad88f6f4ce6ab8827279cfffb92266") end)
    assert.has_error(function() secp.checksum(42) end)
    assert.is_false(secp.is_address(nil))
  end)

  it("rejects bad keys without echoing them", function()
    local zero = string.rep("\0", 32)
    local n = unhex("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
    for _, k in ipairs{ zero, n, string.rep("\255", 32) } do
      local ok, err = pcall(secp.address, k)
      assert.is_false(ok)
      assert.equal("invalid_argument", err.code)
      assert.matches("invalid private key", err.message)
      assert.is_false(secp.is_valid_key(k))
    end
    assert.is_true(secp.is_valid_key(KEY0))
    local secret = KEY0_HEX:sub(1, 65) -- odd-length hex
    for _, k in ipairs{ secret, KEY0_HEX:sub(1, 64) .. "zz", KEY0:sub(1, 31), 7 } do
      local ok, err = pcall(secp.sign, H1234, k)
      assert.is_false(ok)
      assert.equal("invalid_argument", err.code)
      assert.matches("private key must be 32 raw bytes", err.message)
      assert.is_nil(err.message:find(KEY0_HEX:sub(3, 20), 1, true))
      assert.is_nil(err.message:find(KEY0:sub(1, 8), 1, true))
    end
  end)

  it("raises on malformed signature arguments and returns nil, err for invalid ones", function()
    local r, s, v = secp.sign(H1234, KEY0)
    assert.has_error(function() secp.recover(H1234:sub(2), r, s, v) end)
    assert.has_error(function() secp.recover(H1234, r .. "x", s, v) end)
    assert.has_error(function() secp.recover(H1234, r, s, 2) end)
    local addr, err = secp.recover(H1234, string.rep("\0", 32), s, v)
    assert.is_nil(addr)
    assert.are.equal("invalid_signature", err.code)
    addr, err = secp.recover(H1234, r, string.rep("\255", 32), v) -- s >= n
    assert.is_nil(addr)
    assert.are.equal("invalid_signature", err.code)
  end)
end)
