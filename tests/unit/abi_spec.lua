-- ferry.core.abi: Solidity ABI encode/decode, selectors, revert data (engine/crypto/abi_lua.c)
-- Expected bytes come from `cast calldata` / `cast abi-encode` (foundry 1.7.1).
local abi = require "ferry.core.abi"
local u256 = require "ferry.core.u256"

local keccak = require "ferry.core.keccak"
local unhex, hex = keccak.fromhex, keccak.tohex
local raw = require("ferry.core.bytes").raw

local ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
local WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
local USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"

describe("ferry.core.abi", function()
  it("computes selectors", function()
    assert.are.equal("0xa9059cbb", hex(abi.selector("transfer(address,uint256)")))
    assert.are.equal("0xa9059cbb", hex(abi.selector("transfer(address, uint)"))) -- canonicalised
    assert.are.equal("0x095ea7b3", hex(abi.selector("approve(address,uint256)")))
    assert.are.equal("0x70a08231", hex(abi.selector("balanceOf(address)")))
    assert.are.equal("0x23b872dd", hex(abi.selector("transferFrom(address,address,uint256)")))
    assert.are.equal("0x38ed1739", hex(abi.selector("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)")))
  end)

  it("encodes ERC-20 calls like cast calldata", function()
    local data = abi.encode_call("transfer(address,uint256)", ALICE, 1000)
    assert.are.equal("0xa9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8" ..
      "00000000000000000000000000000000000000000000000000000000000003e8", hex(data))
    -- numbers as U256, decimal and hex strings give the same bytes
    assert.are.equal(data, abi.encode_call("transfer(address,uint256)", ALICE:lower(), u256.new(1000)))
    assert.are.equal(data, abi.encode_call("transfer(address,uint256)", ALICE, "1000"))
    assert.are.equal(data, abi.encode_call("transfer(address,uint256)", ALICE, "0x3e8"))
    local to, amount = abi.decode("transfer(address,uint256)", data)
    assert.are.equal(ALICE, to)
    assert.are.equal("1000", tostring(amount))
    local max = abi.encode({"uint256"}, "115792089237316195423570985008687907853269984665640564039457584007913129639935")
    assert.are.equal(string.rep("\255", 32), max)
  end)

  it("encodes the Uniswap V2 router swapExactTokensForTokens call", function()
    local sig = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
    local data = abi.encode_call(sig, "1000000000000000000", 990000, { WETH, USDC }, ALICE, 1700000000)
    assert.are.equal("0x38ed1739" ..
      "0000000000000000000000000000000000000000000000000de0b6b3a7640000" ..
      "00000000000000000000000000000000000000000000000000000000000f1b30" ..
      "00000000000000000000000000000000000000000000000000000000000000a0" ..
      "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8" ..
      "000000000000000000000000000000000000000000000000000000006553f100" ..
      "0000000000000000000000000000000000000000000000000000000000000002" ..
      "000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2" ..
      "000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", hex(data))
    local amount_in, min_out, path, to, deadline = abi.decode(sig, data)
    assert.are.equal("1000000000000000000", tostring(amount_in))
    assert.are.equal("990000", tostring(min_out))
    assert.are.same({ WETH, USDC }, path)
    assert.are.equal(ALICE, to)
    assert.are.equal("1700000000", tostring(deadline))
    -- a different selector is data, not a programmer error
    local v, err = abi.decode("transfer(address,uint256)", data)
    assert.is_nil(v)
    assert.are.equal("invalid_argument", err.code)
  end)

  it("encodes and decodes nested tuples, fixed arrays, signed ints like cast abi-encode", function()
    local types = { "(uint256,address[])[]", "string", "int8", "bytes3", "bool", "uint16[2]" }
    local data = abi.encode(types, { { 1, { ALICE } }, { 2, {} } }, "hi", -5, raw("abc"), true, { 7, 8 })
    assert.are.equal(unhex(
      "0x00000000000000000000000000000000000000000000000000000000000000e0" ..
      "0000000000000000000000000000000000000000000000000000000000000220" ..
      "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffb" ..
      "6162630000000000000000000000000000000000000000000000000000000000" ..
      "0000000000000000000000000000000000000000000000000000000000000001" ..
      "0000000000000000000000000000000000000000000000000000000000000007" ..
      "0000000000000000000000000000000000000000000000000000000000000008" ..
      "0000000000000000000000000000000000000000000000000000000000000002" ..
      "0000000000000000000000000000000000000000000000000000000000000040" ..
      "00000000000000000000000000000000000000000000000000000000000000c0" ..
      "0000000000000000000000000000000000000000000000000000000000000001" ..
      "0000000000000000000000000000000000000000000000000000000000000040" ..
      "0000000000000000000000000000000000000000000000000000000000000001" ..
      "00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8" ..
      "0000000000000000000000000000000000000000000000000000000000000002" ..
      "0000000000000000000000000000000000000000000000000000000000000040" ..
      "0000000000000000000000000000000000000000000000000000000000000000" ..
      "0000000000000000000000000000000000000000000000000000000000000002" ..
      "6869000000000000000000000000000000000000000000000000000000000000"), data)
    local pairs_, s, i8, b3, flag, fixed = abi.decode(types, data)
    assert.are.equal(2, #pairs_)
    assert.are.equal("1", tostring(pairs_[1][1]))
    assert.are.same({ ALICE }, pairs_[1][2])
    assert.are.same({}, pairs_[2][2])
    assert.are.equal("hi", s)
    assert.are.equal(-5, i8)
    assert.are.equal("0x616263", b3)                              -- bytesN decode to 0x hex
    assert.is_true(flag)
    assert.are.equal("8", tostring(fixed[2]))
    -- the same list given as one string
    assert.are.equal(data, abi.encode(table.concat(types, ","), { { 1, { ALICE } }, { 2, {} } }, "hi", -5,
      "0x616263", true, { 7, 8 }))
  end)

  it("handles int256 extremes, bytes, bytes32 and tuple arrays (cast abi-encode)", function()
    local types = { "int256", "int128", "uint8[]", "bytes", "bytes32", "(string,bool)[2]" }
    local min256 = "-57896044618658097711785492504343953926634992332820282019728792003956564819968"
    local max128 = "170141183460469231731687303715884105727"
    local data = abi.encode(types, min256, max128, { 1, 2, 255 }, "0xdeadbeef",
      "0x0000000000000000000000000000000000000000000000000000000000000001", { { "a", true }, { "", false } })
    assert.are.equal("0x8000000000000000000000000000000000000000000000000000000000000000" ..
      "000000000000000000000000000000007fffffffffffffffffffffffffffffff", hex(data:sub(1, 64)))
    assert.are.equal(0x2a0, #data)
    local a, b, c, d, e, f = abi.decode(types, data)
    assert.are.equal(min256, a) -- beyond int64: decimal string
    assert.are.equal(max128, b)
    assert.are.equal("255", tostring(c[3]))
    assert.are.equal("0xdeadbeef", d)
    assert.are.equal("0x" .. string.rep("00", 31) .. "01", e)
    assert.are.same({ "a", true }, f[1])
    assert.are.same({ "", false }, f[2])
    assert.are.equal(-1, (abi.decode({ "int256" }, abi.encode({ "int256" }, -1))))
    assert.are.equal(math.mininteger, (abi.decode({ "int64" }, abi.encode({ "int64" }, math.mininteger))))
  end)

  it("encodes and decodes the empty type list (no memset on a NULL buffer under UBSan)", function()
    assert.are.equal("", abi.encode({}))
    assert.are.equal("", abi.encode(""))
    assert.are.equal("0x" .. hex(abi.selector("f()")):sub(3), hex(abi.encode_call("f()")))
    assert.are.equal(0, select("#", abi.decode({}, "")))
  end)

  it("raises on programmer errors", function()
    assert.has_error(function() abi.encode({ "uint8" }, 256) end)
    assert.has_error(function() abi.encode({ "uint256" }, -1) end)
    assert.has_error(function() abi.encode({ "int8" }, 128) end)
    assert.has_error(function() abi.encode({ "int8" }, "-129") end)
    assert.has_error(function() abi.encode({ "address" }, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92267") end)
    assert.has_error(function() abi.encode({ "address" }, "0x1234") end)
    assert.has_error(function() abi.encode({ "bytes3" }, "abcd") end)
    assert.has_error(function() abi.encode({ "bool" }, 1) end)
    assert.has_error(function() abi.encode({ "uint256[2]" }, { 1 }) end)
    assert.has_error(function() abi.encode({ "uint256", "uint256" }, 1) end)
    assert.has_error(function() abi.encode({ "uint7" }, 1) end)
    assert.has_error(function() abi.encode({ "uint256[" }, 1) end)
    assert.has_error(function() abi.encode_call("uint256", 1) end)
    assert.has_error(function() abi.selector("transfer(address,uint256") end)
    local ok, err = pcall(abi.encode, { "uint8" }, 300)
    assert.is_false(ok)
    assert.matches("uint8", err)
  end)

  it("rejects garbage data with nil, err and never crashes", function()
    local types = { "(uint256,address[])[]", "string", "bytes", "uint8[3]" }
    local good = abi.encode(types, { { 1, { ALICE } } }, "hello", raw("\1\2\3"), { 1, 2, 3 })
    assert.is_not_nil(abi.decode(types, good))
    for n = 0, #good - 1 do
      local v, err = abi.decode(types, good:sub(1, n))
      assert.is_nil(v)
      assert.are.equal("invalid_argument", err.code)
      assert.is_string(err.message)
    end
    math.randomseed(42)
    local accepted = 0
    for _ = 1, 3000 do
      local b = { good:byte(1, -1) }
      for _ = 1, math.random(1, 4) do
        local i = math.random(1, #b)
        b[i] = math.random(0, 255)
      end
      local ok, v = pcall(abi.decode, types, string.char(table.unpack(b)))
      assert.is_true(ok) -- never raises on data
      if v ~= nil then accepted = accepted + 1 end
    end
    assert.is_true(accepted < 3000)
    -- huge offset / length, bool 2, dirty address padding
    local v, err = abi.decode({ "bytes" }, unhex("0x" .. string.rep("ff", 32)))
    assert.is_nil(v)
    assert.matches("offset", err.message)
    assert.is_nil((abi.decode({ "bool" }, unhex("0x" .. string.rep("00", 31) .. "02"))))
    assert.is_nil((abi.decode({ "address" }, unhex("0x01" .. string.rep("00", 31)))))
    assert.is_nil((abi.decode({ "uint8" }, unhex("0x" .. string.rep("00", 30) .. "0100"))))
  end)

  it("decodes revert data", function()
    local err_data = abi.encode_call("Error(string)", "insufficient balance")
    assert.are.equal("0x08c379a0", hex(err_data:sub(1, 4)))
    assert.are.same({ kind = "Error", reason = "insufficient balance" }, abi.decode_revert(err_data))
    local codes = { [0x01] = "assert", [0x11] = "overflow", [0x12] = "zero", [0x21] = "enum", [0x22] = "storage",
                    [0x31] = "pop", [0x32] = "out of bounds", [0x41] = "memory", [0x51] = "zero%-initialized" }
    for code, word in pairs(codes) do
      local r = abi.decode_revert(abi.encode_call("Panic(uint256)", code))
      assert.are.equal("Panic", r.kind)
      assert.are.equal(code, r.code)
      assert.matches(word, r.reason)
    end
    assert.are.equal("unknown panic code", abi.decode_revert(abi.encode_call("Panic(uint256)", 0x99)).reason)
    local custom = abi.encode_call("InsufficientBalance(uint256,uint256)", 1, 2)
    local r = abi.decode_revert(custom)
    assert.are.equal("custom", r.kind)
    assert.are.equal(hex(abi.selector("InsufficientBalance(uint256,uint256)")), r.selector)
    assert.are.equal("0x" .. ("00"):rep(31) .. "01" .. ("00"):rep(31) .. "02", r.data)   -- 0x hex
    assert.are.equal("empty", abi.decode_revert("").kind)
    local v, e = abi.decode_revert("\8\195\121")
    assert.is_nil(v)
    assert.are.equal("invalid_argument", e.code)
    assert.is_nil((abi.decode_revert(err_data:sub(1, 40))))
  end)
end)
