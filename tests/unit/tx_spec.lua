-- ferry.core.tx: EIP-1559 and legacy EIP-155 transactions (engine/crypto/tx_lua.c)
-- THE KEY SPEC: 1,000 random transactions signed by ferry equal `cast mktx` byte for byte
-- (tests/fixtures/vectors/tx_cast.json, made by tests/fixtures/gen_tx_vectors.js), plus a fresh
-- handful signed live by cast when it is installed (env CAST, default tests/peers/node_modules/.bin/cast).
local ferry = require "ferry"
local tx = require "ferry.core.tx"
local secp = require "ferry.core.secp256k1"
local u256 = require "ferry.core.u256"
local json = require "ferry.core.json"

local FIXTURE = "tests/fixtures/vectors/tx_cast.json"
local CAST = os.getenv("CAST") or "tests/peers/node_modules/.bin/cast"

local keccak = require "ferry.core.keccak"
local unhex, hex = keccak.fromhex, keccak.tohex

local KEY0 = unhex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
local ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

-- a fixture/random vector (all strings, as in the JSON) -> tx.sign options
local function options(v)
  local t = {
    type = v.type, chain_id = v.chain_id, nonce = v.nonce, gas = v.gas, value = v.value,
    data = unhex(v.data), key = unhex(v.key),
  }
  if v.to ~= nil and v.to ~= json.null then t.to = v.to end
  if v.type == 2 then
    t.max_fee, t.max_priority_fee = v.max_fee, v.max_priority_fee
    t.access_list = {}
    for i, e in ipairs(v.access_list) do
      local keys = {}
      for j, k in ipairs(e.storage_keys) do keys[j] = unhex(k) end
      t.access_list[i] = { address = e.address, storage_keys = keys }
    end
  else
    t.gas_price = v.gas_price
  end
  return t
end

-- one vector per line: stream them so that the 1 MB document never sits in the heap (this keeps
-- the spec fast under FERRY_GC=aggressive)
local function each_vector()
  local f = assert(io.open(FIXTURE, "rb"))
  local lines = f:lines()
  return function()
    for line in lines do
      if line:sub(1, 3) == "  {" then return json.decode((line:gsub(",%s*$", ""))) end
    end
    f:close()
  end
end

describe("ferry.core.tx", function()
  it("matches the PEERS.md EIP-1559 vector (unsigned, signing hash, raw, tx hash)", function()
    local t = { chain_id = 31337, nonce = 0, to = ALICE, value = "1000000000000000000", gas = 21000,
                max_fee = "3000000000", max_priority_fee = u256.new(1000000000), key = KEY0 }
    assert.are.equal("0x02f1827a6980843b9aca0084b2d05e008252089470997970c51812dc3a010c7d01b50e0d17dc79c8" ..
      "880de0b6b3a764000080c0", hex(tx.encode_unsigned(t)))
    assert.are.equal("0x1e6df772a5754d642af0a6eb2490b37e7ee4aff5994733d78233bcbbd9d4fdfa", hex(tx.signing_hash(t)))
    local raw, hash = tx.sign(t)
    assert.are.equal("0x02f874827a6980843b9aca0084b2d05e008252089470997970c51812dc3a010c7d01b50e0d17dc79c8" ..
      "880de0b6b3a764000080c001a0327b671398e480b9ae2a3b89650723c01d64f3dff2d3acfc13a13a6c0ee30da2a01381fa02" ..
      "803f87cc7ec266fff399d884f155d2cf803912fecccf8a867c3b7b35", hex(raw))
    assert.are.equal("0x21f97614e3117d6e9083ba46b8b2be20c428008e5f6801adcc19fc00741833a6", hex(hash))
    local d = tx.decode(raw)
    assert.are.equal(2, d.type)
    assert.are.equal(31337, d.chain_id)
    assert.are.equal(ALICE, d.to)
    assert.are.equal("1000000000000000000", tostring(d.value))
    assert.are.equal("3000000000", tostring(d.max_fee))
    assert.are.equal(1, d.y_parity)
    assert.are.equal("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", d.from)
    assert.are.equal(hash, d.hash)
  end)

  it("signs all 1,000 fixture transactions byte-identical to cast mktx, and decodes them back", function()
    local total, match, roundtrip, mismatches = 0, 0, 0, {}
    for v in each_vector() do
      total = total + 1
      local i = total
      local opts = options(v)
      local raw = tx.sign(opts)
      if hex(raw) == v.raw then match = match + 1
      elseif #mismatches < 3 then mismatches[#mismatches + 1] = ("#%d want %s got %s"):format(i, v.raw, hex(raw)) end
      -- decode(sign(x)) == x, the sender is the key's address, re-signing the decoded fields is identical
      local d = assert(tx.decode(raw))
      local same = d.type == v.type and tostring(d.chain_id) == v.chain_id and tostring(d.nonce) == v.nonce
        and tostring(d.gas) == v.gas and tostring(d.value) == v.value and hex(d.data) == v.data
        and d.from == secp.address(opts.key) and (d.to and d.to:lower() or json.null) == (opts.to or json.null)
      if v.type == 2 then
        same = same and tostring(d.max_fee) == v.max_fee and tostring(d.max_priority_fee) == v.max_priority_fee
          and #d.access_list == #v.access_list
      else
        same = same and tostring(d.gas_price) == v.gas_price
      end
      d.key = opts.key
      if same and tx.sign(d) == raw then roundtrip = roundtrip + 1 end
    end
    assert.are.same({}, mismatches)
    assert.are.equal(1000, total)
    assert.are.equal(1000, match)
    assert.are.equal(1000, roundtrip)
  end)

  it("matches a fresh handful signed live by cast (skipped without cast)", function()
    local probe = io.open(CAST, "r")
    if not probe then
      pending("cast not found at " .. CAST .. " (set CAST)")
      return
    end
    probe:close()
    math.randomseed(os.time())
    local function rhex(nbytes)
      local t = {}
      for i = 1, nbytes do t[i] = string.format("%02x", math.random(0, 255)) end
      return table.concat(t)
    end
    local function rnum(maxbytes) -- decimal string of a random value with a random byte length
      local n = math.random(0, maxbytes)
      if n == 0 then return "0" end
      return tostring(u256.new("0x" .. rhex(n)))
    end
    local chains = { "1", "31337", "8453", "10", "137", "11155111" }
    local checked = 0
    for _ = 1, 20 do
      local v = {
        type = math.random(0, 1) == 0 and 2 or 0, chain_id = chains[math.random(#chains)],
        nonce = rnum(8), gas = rnum(8), value = rnum(32), data = "0x" .. rhex(math.random(0, 80)),
        to = math.random(0, 4) > 0 and ("0x" .. rhex(20)) or json.null,
      }
      repeat v.key = "0x" .. rhex(32) until secp.is_valid_key(unhex(v.key))
      local args = { CAST, "mktx" }
      if v.to ~= json.null then args[#args + 1] = v.to end
      for _, kv in ipairs{ { "--nonce", v.nonce }, { "--gas-limit", v.gas }, { "--value", v.value },
                           { "--chain", v.chain_id } } do
        args[#args + 1] = kv[1]; args[#args + 1] = kv[2]
      end
      if v.type == 2 then
        v.max_fee, v.max_priority_fee = rnum(16), rnum(16)
        v.access_list = {}
        local al = {}
        for i = 1, math.random(0, 2) do
          local e = { address = "0x" .. rhex(20), storage_keys = {} }
          for j = 1, math.random(0, 2) do e.storage_keys[j] = "0x" .. rhex(32) end
          v.access_list[i] = e
          al[i] = { address = e.address, storageKeys = json.array(e.storage_keys) }
        end
        args[#args + 1] = "--gas-price " .. v.max_fee .. " --priority-gas-price " .. v.max_priority_fee
        args[#args + 1] = "--access-list '" .. json.encode(json.array(al)) .. "'"
      else
        v.gas_price = rnum(16)
        args[#args + 1] = "--legacy --gas-price " .. v.gas_price .. " --priority-gas-price 0"
      end
      args[#args + 1] = "--private-key " .. v.key
      args[#args + 1] = (v.to == json.null and "--create " or "") .. v.data
      local p = assert(io.popen(table.concat(args, " ") .. " 2>&1"))
      local out = p:read("a"):gsub("%s+$", "")
      p:close()
      assert.matches("^0x%x+$", out)
      assert.are.equal(out, hex(tx.sign(options(v))))
      checked = checked + 1
    end
    assert.are.equal(20, checked)
  end)

  it("signs legacy EIP-155 with v = chain_id*2 + 35 + yParity, also for chain ids near 2^64", function()
    local base = { type = 0, nonce = 0, gas = 21000, gas_price = 1, to = ALICE, key = KEY0 }
    base.chain_id = "18446744073709551615"
    local d = assert(tx.decode((tx.sign(base))))
    assert.are.equal("18446744073709551615", tostring(d.chain_id))
    assert.are.equal(tostring(u256.new("18446744073709551615") * 2 + 35 + d.y_parity), tostring(d.v))
    base.chain_id = 1337
    d = assert(tx.decode((tx.sign(base))))
    assert.are.equal(1337, d.chain_id)
    assert.are.equal(1337 * 2 + 35 + d.y_parity, d.v)
    assert.is_nil(d.access_list)
    -- contract creation: no "to"
    base.to, base.data = nil, "\x60\x80"
    d = assert(tx.decode((tx.sign(base))))
    assert.is_nil(d.to)
    assert.are.equal("\x60\x80", d.data)
  end)

  it("raises clear argument errors for bad input, never echoing the key", function()
    local function base()
      return { chain_id = 1, nonce = 0, gas = 21000, max_fee = 2, max_priority_fee = 1, to = ALICE, key = KEY0 }
    end
    local cases = {
      { "nonce", -1 }, { "nonce", "18446744073709551616" }, { "chain_id", "0x10000000000000000" },
      { "gas", 1.5 }, { "value", "115792089237316195423570985008687907853269984665640564039457584007913129639936" },
      { "value", "12abc" }, { "to", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92267" }, { "to", "0x1234" },
      { "gas_price", 5 }, { "type", 1 }, { "data", 5 }, { "nonce", nil }, { "max_fee", nil },
      { "access_list", { { address = "0x12", storage_keys = {} } } },
      { "access_list", { { address = ALICE, storage_keys = { "short" } } } },
      { "key", string.rep("\0", 32) }, { "key", "0xac09" }, { "key", nil },
    }
    for _, c in ipairs(cases) do
      local t = base()
      t[c[1]] = c[2]
      local ok, err = pcall(tx.sign, t)
      assert.is_false(ok, c[1])
      assert.is_true(ferry.is_error(err), tostring(err))
      assert.equal("invalid_argument", err.code)
      assert.is_nil(err.message:find(KEY0, 1, true))
      assert.is_nil(err.message:find("ac0974bec39a17e3", 1, true))
    end
    local t = base()
    t.type, t.max_fee, t.max_priority_fee, t.gas_price, t.access_list = 0, nil, nil, 1, { { address = ALICE } }
    assert.has_error(function() tx.sign(t) end)
  end)

  it("takes the key as an argument, and answers in 0x hex when asked", function()
    local t = { chain_id = 5, nonce = 3, gas = 21000, max_fee = 20, max_priority_fee = 2, to = ALICE,
                value = 7, data = "\1\2", access_list = { { address = ALICE, storage_keys = { ("\7"):rep(32) } } },
                key = KEY0 }
    local raw, hash = tx.sign(t)
    t.key = nil
    local hraw, hhash = tx.sign(t, KEY0, "hex")
    assert.equal(hex(raw), hraw)
    assert.equal(hex(hash), hhash)
    assert.equal(raw, (tx.sign(t, hex(KEY0))))                     -- 0x hex key, bytes out
    assert.error_matches(function() tx.sign(t) end, "tx.sign: field 'key': required", 1, true)
    assert.has_error(function() tx.sign(t, KEY0, "HEX") end)
    local ok, err = pcall(tx.sign, t, ("\0"):rep(32))
    assert.is_false(ok)
    assert.matches("invalid private key", err, 1, true)
  end)

  it("decodes strictly: garbage, truncations and non-canonical encodings give nil, err", function()
    local raw = tx.sign{ chain_id = 1, nonce = 7, gas = 21000, max_fee = 2, max_priority_fee = 1, to = ALICE,
                         value = 5, data = "hi", key = KEY0,
                         access_list = { { address = ALICE, storage_keys = { string.rep("\1", 32) } } } }
    assert.is_not_nil(tx.decode(raw))
    for n = 0, #raw - 1 do
      local d, err = tx.decode(raw:sub(1, n))
      assert.is_nil(d)
      assert.are.equal("invalid_argument", err.code)
    end
    local d, err = tx.decode(raw .. "\0")
    assert.is_nil(d)
    assert.is_string(err.message)
    assert.is_nil((tx.decode("\1" .. raw:sub(2)))) -- type 1 is not supported
    assert.is_nil((tx.decode("hello")))
    -- nonce 7 written as 0x8107 (single byte < 0x80 must be itself)
    local bad = raw:gsub("\x01\x07", "\x01\x81\x07", 1)
    assert.is_nil((tx.decode(bad)))
    math.randomseed(7)
    for _ = 1, 2000 do
      local b = { raw:byte(1, -1) }
      b[math.random(#b)] = math.random(0, 255)
      local ok = pcall(tx.decode, string.char(table.unpack(b)))
      assert.is_true(ok)
    end
  end)
end)
