-- Issue 14, signers: Web3 Secret Storage v3 keystores (scrypt / pbkdf2, aes-128-ctr) open into a
-- ferry.Key in C, on the libuv thread pool. Fixtures: tests/fixtures/keystore (gen.sh made them
-- with the pinned cast and Node's crypto; cast read every one back). They hold anvil's dev key 0.
local ferry = require "ferry"
local eth = require "ferry.eth"
local child = require "helpers.child"

local DIR = "tests/fixtures/keystore/"
local PWFILE = DIR .. "password.txt"
local ANVIL0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
local ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
local PASSWORD = "correct horse battery staple"
local TX = { to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", value = 12345, nonce = 7, gas = 21000,
             max_fee = 3000000000, max_priority_fee = 1000000000, data = "0xdeadbeef" }

local function offline()
  return eth.connect({ chain_id = 31337, providers = { { name = "nobody", url = "http://127.0.0.1:9" } } },
    { rpc = { timeout = 0.2, retries = 0 } })
end

local function raises(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  assert.is_true(ferry.is_error(err), tostring(err))
  return err
end

describe("keystore signers", function()
  it("a keystore written by `cast wallet import` (scrypt) signs the same bytes as the raw key", function()
    local chain = offline()
    local s <close> = chain:signer{ keystore = DIR .. "cast_scrypt.json", password_file = PWFILE }
    local raw <close> = chain:signer(ANVIL0)
    assert.equal(ADDR0, s.address)
    local a, ha = s:sign(TX)
    local b, hb = raw:sign(TX)
    assert.equal(b, a)
    assert.equal(hb, ha)
    assert.equal(raw:personal_sign("hello"), s:personal_sign("hello"))
  end)

  it("a pbkdf2-hmac-sha256 keystore (geth's other kdf) signs the same bytes as the raw key", function()
    local chain = offline()
    local s <close> = chain:signer{ keystore = DIR .. "pbkdf2.json", password_file = PWFILE }
    local raw <close> = chain:signer(ANVIL0)
    assert.equal(ADDR0, s.address)
    assert.equal((raw:sign(TX)), (s:sign(TX)))
  end)

  it("reads the password from an environment variable (password_env)", function()
    local code, out, err = child.ferry({ "-e", [[
      local eth = require "ferry.eth"
      local chain = eth.connect{ chain_id = 31337, providers = { { url = "http://127.0.0.1:9" } } }
      local s = chain:signer{ keystore = "tests/fixtures/keystore/cast_scrypt.json", password_env = "KS_PW" }
      print(s.address)]] }, { KS_PW = PASSWORD })
    assert.equal(0, code, err)
    assert.equal(ADDR0 .. "\n", out)
  end)

  it("a wrong password is invalid_argument naming the file, and shows no secret", function()
    local path = child.tmpfile("not the password\n")
    local err = raises(function() offline():signer{ keystore = DIR .. "cast_scrypt.json", password_file = path } end)
    os.remove(path)
    assert.equal("invalid_argument", err.code)
    assert.equal("keystore " .. DIR .. "cast_scrypt.json: wrong password (MAC mismatch)", err.message)
    assert.is_nil(tostring(err):find("not the password", 1, true))
  end)

  it("an unset password variable and a missing password file are clear errors", function()
    local err = raises(function()
      offline():signer{ keystore = DIR .. "pbkdf2.json", password_env = "FERRY_SPEC_SURELY_UNSET_PW" }
    end)
    assert.equal("invalid_argument", err.code)
    assert.matches("environment variable FERRY_SPEC_SURELY_UNSET_PW is not set", err.message, 1, true)
    err = raises(function() offline():signer{ keystore = DIR .. "pbkdf2.json", password_file = "/nonexistent/pw" } end)
    assert.matches("password_file /nonexistent/pw", err.message, 1, true)
    err = raises(function() offline():signer{ keystore = DIR .. "pbkdf2.json" } end)
    assert.matches("password_env = NAME or password_file = PATH", err.message, 1, true)
  end)

  it("a password as a Lua string is refused (it would live in the Lua heap)", function()
    local err = raises(function() offline():signer{ keystore = DIR .. "pbkdf2.json", password = PASSWORD } end)
    assert.equal("invalid_argument", err.code)
    assert.is_nil(err.message:find(PASSWORD, 1, true))
  end)

  it("malformed JSON, a missing file and unsupported parameters are clear errors naming the file", function()
    local bad = child.tmpfile('{"crypto": {"kdf": "scrypt",')
    local err = raises(function() offline():signer{ keystore = bad, password_file = PWFILE } end)
    assert.equal("invalid_argument", err.code)
    assert.matches("keystore " .. bad .. ": not JSON", err.message, 1, true)
    os.remove(bad)

    err = raises(function() offline():signer{ keystore = "/nonexistent/ks.json", password_file = PWFILE } end)
    assert.matches("keystore /nonexistent/ks.json: ", err.message, 1, true)

    local f = assert(io.open(DIR .. "cast_scrypt.json"))
    local ks = ferry.json.decode(f:read("a"))
    f:close()
    local function with(mut)
      local copy = ferry.json.decode(ferry.json.encode(ks))
      mut(copy)
      local path = child.tmpfile(ferry.json.encode(copy))
      local e = raises(function() offline():signer{ keystore = path, password_file = PWFILE } end)
      os.remove(path)
      assert.equal("invalid_argument", e.code)
      return e.message:gsub("^keystore [^:]*: ", "")
    end
    assert.equal("version must be 3", with(function(k) k.version = 1 end))
    assert.equal("crypto.cipher \"aes-128-cbc\" is not supported (aes-128-ctr is)", with(function(k) k.crypto.cipher = "aes-128-cbc" end))
    assert.equal("crypto.kdf: expected \"scrypt\" or \"pbkdf2\"", with(function(k) k.crypto.kdf = "argon2" end))
    assert.equal("scrypt n must be a power of 2 above 1", with(function(k) k.crypto.kdfparams.n = 1000 end))
    assert.equal("scrypt 128 * r * n is above 1 GiB", with(function(k) k.crypto.kdfparams.n = 1 << 21 end))
    assert.equal("crypto.kdfparams.dklen must be 32", with(function(k) k.crypto.kdfparams.dklen = 16 end))
    assert.equal("crypto.ciphertext: expected 32 bytes of hex", with(function(k) k.crypto.ciphertext = "00" end))
    assert.equal("crypto.mac: not hex", with(function(k) k.crypto.mac = ("zz"):rep(32) end))
    assert.equal("the decrypted key is " .. ADDR0 .. " but the file says address 70997970c51812dc3a010c7d01b50e0d17dc79c8",
      with(function(k) k.address = "70997970c51812dc3a010c7d01b50e0d17dc79c8" end))
    -- a changed byte of ciphertext fails the MAC, as a wrong password does
    assert.equal("wrong password (MAC mismatch)", with(function(k)
      k.crypto.ciphertext = (k.crypto.ciphertext:sub(1, 1) == "0" and "1" or "0") .. k.crypto.ciphertext:sub(2)
    end))
  end)

  it("the key derivation runs off the event loop: other tasks keep running meanwhile", function()
    local ticks, running = 0, true
    local ticker = ferry.spawn(function()
      while running do ticks = ticks + 1; ferry.sleep(0.002) end
    end)
    local t0 = ferry.now()
    local s <close> = offline():signer{ keystore = DIR .. "scrypt_n32768.json", password_file = PWFILE }
    local dt = ferry.now() - t0
    running = false
    ticker:wait()
    assert.equal(ADDR0, s.address)
    -- scrypt n=32768 takes tens of ms at least; a ticker every 2 ms must have run several times
    assert.is_true(ticks >= 3, ("ticks %d in %.3f s"):format(ticks, dt))
  end)

  it("a task cancelled while its key derives settles cleanly: no op left pending, the late result freed", function()
    local before = ferry.stats().tasks.ops_pending
    local t = ferry.spawn(function()
      return offline():signer{ keystore = DIR .. "scrypt_n32768.json", password_file = PWFILE }
    end)
    ferry.sleep(0.005)
    assert.equal("waiting", t:status())
    assert.is_true(t:cancel())
    local ok, err = t:wait()
    assert.is_false(ok)
    assert.equal("cancelled", err.code)
    assert.equal(before, ferry.stats().tasks.ops_pending)
    ferry.sleep(0.2)   -- the worker finishes on its own; its key is wiped and freed (ASan checks it)
    local s <close> = offline():signer{ keystore = DIR .. "cast_scrypt.json", password_file = PWFILE }
    assert.equal(ADDR0, s.address)
  end)

  it("neither the password nor the key is reachable from Lua after a keystore signer signs (child)", function()
    local code, out, err = child.ferry({ "-e", [[
      local eth = require "ferry.eth"
      local chain = eth.connect{ chain_id = 31337, providers = { { url = "http://127.0.0.1:9" } } }
      local s = chain:signer{ keystore = "tests/fixtures/keystore/pbkdf2.json", password_env = "KS_PW" }
      s:sign{ to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", value = 1, nonce = 0, gas = 21000, max_fee = 2, max_priority_fee = 1 }
      s:sign_typed_data({ name = "x" }, { T = { { name = "a", type = "uint8" } } }, { a = 1 })
      collectgarbage()
      package.path = "tests/?.lua;" .. package.path
      local hits = 0
      require("helpers.heap").walk(debug.getregistry(), function(v)
        -- pieces of both, so this chunk's own text cannot match
        if v:find("horse " .. "battery", 1, true) or v:lower():find("bacb478cbed5efcae" .. "784d7bf4f2ff80", 1, true) then
          hits = hits + 1
        end
      end, { threads = true })
      print(s.address, hits)]] }, { KS_PW = PASSWORD })
    assert.equal(0, code, err)
    assert.equal(ADDR0 .. "\t0\n", out)
  end)

  it("is a plain primitive too: ferry.core.key.from_keystore gives nil, err for a wrong password", function()
    local keyc = require "ferry.core.key"
    local path = child.tmpfile("wrong")
    local k, err = keyc.from_keystore({ kdf = "pbkdf2", c = 1, salt = "00", iv = ("00"):rep(16),
      ciphertext = ("00"):rep(32), mac = ("00"):rep(32) }, { password_file = path })
    os.remove(path)
    assert.is_nil(k)
    assert.equal("invalid_argument", err.code)
    assert.equal("wrong password (MAC mismatch)", err.message)
  end)
end)
