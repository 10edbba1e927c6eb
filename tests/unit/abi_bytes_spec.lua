-- One rule for bytes and addresses (issue 8): a string is 0x-hex, raw binary goes through
-- eth.raw (ferry.Bytes), any other string is refused with invalid_argument, never guessed.
-- Covers the C bindings (ferry.core.abi, secp256k1, tx) and ferry.eth on top of them.
local ferry = require "ferry"
local eth = require "ferry.eth"
local abi = require "ferry.core.abi"
local secp = require "ferry.core.secp256k1"
local txc = require "ferry.core.tx"
local bytes = require "ferry.core.bytes"
local keccak = require "ferry.core.keccak"
local unhex = keccak.fromhex

local VITALIK = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"
local ASCII20 = "d8dA6BF26964aF9D7eEd"          -- 20 characters: once taken as the raw address
local KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

local function refused(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "accepted")
  assert.is_true(ferry.is_error(err), "not an error table: " .. tostring(err))
  assert.equal("invalid_argument", err.code)
  return err
end

describe("addresses are 0x + 40 hex digits everywhere", function()
  it("secp.checksum / eth.address refuse a 20-character string", function()
    refused(secp.checksum, ASCII20)
    local err = refused(eth.address, ASCII20)
    assert.matches("eth.address", err.message, 1, true)
    assert.is_false(eth.is_address(ASCII20))
    refused(eth.address, "0X" .. VITALIK:sub(3))
    refused(eth.address, VITALIK:sub(3))                    -- no prefix
    refused(eth.address, VITALIK:gsub("d8dA", "d8Da"))       -- bad EIP-55 checksum
  end)

  it("takes raw 20 bytes through eth.raw", function()
    local raw = unhex(VITALIK)
    assert.equal(VITALIK, eth.address(eth.raw(raw)))
    assert.equal(VITALIK, eth.address(VITALIK:lower()))
    refused(eth.address, eth.raw(raw:sub(2)))
  end)

  it("ABI address values refuse a 20-character string", function()
    local err = refused(eth.abi.encode, { "address" }, ASCII20)
    assert.matches("eth.abi.encode", err.message, 1, true)
    refused(abi.encode, { "address" }, ASCII20)
    assert.equal(abi.encode({ "address" }, VITALIK), abi.encode({ "address" }, bytes.raw(unhex(VITALIK))))
  end)

  it("tx.sign refuses a 20-character `to` and takes eth.raw", function()
    local t = { chain_id = 1, nonce = 0, gas = 21000, max_fee = 2, max_priority_fee = 1, to = ASCII20, value = 1 }
    local err = refused(txc.sign, t, KEY0)
    assert.matches("to", err.message)
    assert.is_nil(err.message:find(KEY0:sub(3), 1, true))
    t.to = eth.raw(unhex(VITALIK))
    local raw = txc.sign(t, KEY0)
    assert.equal(VITALIK, txc.decode(raw).to)
    t.to = nil
    t.access_list = { { address = ASCII20, storage_keys = {} } }
    refused(txc.sign, t, KEY0)
  end)

  it("chain:balance and signer:sign refuse it before any I/O", function()
    local chain = eth.connect{ chain_id = 1, providers = { { url = "http://127.0.0.1:1" } } }
    local err = refused(chain.balance, chain, ASCII20)
    assert.matches("chain:balance", err.message, 1, true)
    local signer = chain:signer(KEY0)
    refused(signer.sign, signer, { to = ASCII20, value = 1, nonce = 0, gas = 21000, max_fee = 2, max_priority_fee = 1 })
    chain:close()
  end)
end)

describe("bytes are 0x-hex text or eth.raw", function()
  it("ABI bytes reads 0x text as hex, not as six ASCII characters", function()
    local data = eth.abi.encode({ "bytes" }, "0x1234")
    assert.equal("0x" .. ("0"):rep(62) .. "20" .. ("0"):rep(63) .. "2" .. "1234" .. ("0"):rep(60), data)
    assert.equal(data, eth.abi.encode({ "bytes" }, eth.raw("\x12\x34")))
    assert.equal("0x1234", eth.abi.decode({ "bytes" }, data))
  end)

  it("refuses a plain string where bytes are expected, naming the call", function()
    local err = refused(eth.abi.encode, { "bytes" }, "hello")
    assert.matches("eth.abi.encode", err.message, 1, true)
    assert.matches("value #1", err.message, 1, true)
    refused(eth.abi.encode, { "bytes" }, "0x123")           -- odd number of digits
    refused(eth.abi.encode, { "bytes" }, "0xzz")
    refused(eth.abi.encode, { "bytes4" }, "abcd")
    refused(eth.abi.encode, { "bytes4" }, "0x1234")         -- 2 bytes for bytes4
    refused(abi.encode, { "bytes" }, "hello")
  end)

  it("bytesN takes 0x hex or eth.raw and decodes to 0x hex", function()
    local a = eth.abi.encode({ "bytes4" }, "0x61626364")
    assert.equal(a, eth.abi.encode({ "bytes4" }, eth.raw("abcd")))
    assert.equal("0x61626364", eth.abi.decode({ "bytes4" }, a))
    assert.equal("0x61626364", (abi.decode({ "bytes4" }, unhex(a))))
  end)

  it("string stays text", function()
    local d = eth.abi.encode({ "string" }, "0x1234")
    assert.equal("0x1234", eth.abi.decode({ "string" }, d))
  end)

  it("decodes addresses checksummed", function()
    local d = eth.abi.encode({ "address" }, VITALIK:lower())
    assert.equal(VITALIK, eth.abi.decode({ "address" }, d))
  end)

  it("eth.abi.decode takes 0x hex or eth.raw data and refuses a plain string", function()
    local d = eth.abi.encode({ "uint256" }, 7)
    assert.equal("7", tostring(eth.abi.decode({ "uint256" }, d)))
    assert.equal("7", tostring(eth.abi.decode({ "uint256" }, eth.raw(unhex(d)))))
    local err = refused(eth.abi.decode, { "uint256" }, unhex(d))
    assert.matches("eth.abi.decode", err.message, 1, true)
    refused(eth.abi.decode_revert, "\8\195\121\160")
  end)

  it("eth.keccak256 hashes 0x hex and eth.raw, and refuses a plain string", function()
    local k = "0x56570de287d73cd1cb6092bb8fdee6173974955fdef345ae579ee9f475ea7432"   -- cast keccak 0x1234
    assert.equal(k, eth.keccak256("0x1234"))
    assert.equal(k, eth.keccak256(eth.raw("\x12\x34")))
    -- cast keccak "hello" (the text)
    assert.equal("0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8", eth.keccak256(eth.raw("hello")))
    local err = refused(eth.keccak256, "hello")
    assert.matches("eth.keccak256", err.message, 1, true)
    refused(eth.keccak256, "0x123")
  end)

  it("eth.raw wraps bytes and says what it holds", function()
    local r = eth.raw("\0\1\2")
    assert.equal(3, #r)
    assert.equal("0x000102", r:hex())
    assert.equal("\0\1\2", r:string())
    assert.equal(r, eth.raw("\0\1\2"))
    assert.matches("ferry.Bytes", tostring(r))
    refused(eth.raw, 42)
    refused(eth.raw, nil)
  end)
end)

describe("nil, err from the bindings", function()
  it("are ferry.Error tables (abi, tx, secp256k1, rlp)", function()
    local rlp = require "ferry.core.rlp"
    local errs = {
      select(2, abi.decode({ "uint256" }, "\1")),
      select(2, abi.decode_revert("\8\195\121")),
      select(2, txc.decode("hello")),
      select(2, secp.recover(("\0"):rep(32), ("\0"):rep(32), ("\1"):rep(32), 0)),
      select(2, rlp.decode("\xc2\x01")),
    }
    assert.equal(5, #errs)
    for i, e in ipairs(errs) do
      assert.is_true(ferry.is_error(e), "#" .. i)
      assert.is_string(e.code)
      assert.matches("^" .. e.code .. ": ", tostring(e))
    end
  end)
end)
