-- Issue 8, secrets: a private key never reaches Lua (ferry.Key, engine/crypto/key.c), no error
-- echoes one (ferry.redact), and provider URLs show scheme://host:port only.
local ferry = require "ferry"
local eth = require "ferry.eth"
local _, keyc = pcall(require, "ferry.core.key")   -- (pcall: so that the old code fails per spec, not per file)
local keccak = require "ferry.core.keccak"
local secp = require "ferry.core.secp256k1"
local txc = require "ferry.core.tx"
local run_ferry = require("helpers.child").ferry

local ADDR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

-- a chain nobody answers for: nothing below needs a node
local function offline()
  return eth.connect({ chain_id = 31337, providers = { { name = "nobody", url = "http://127.0.0.1:9" } } },
    { rpc = { timeout = 0.2, retries = 0 } })
end

local walk = require("helpers.heap").walk

-- A fresh random key as (bytes, hex without 0x): made here, held only in locals of the caller.
local function fresh_key()
  local kb
  repeat
    kb = keccak.keccak256(tostring(os.time()) .. tostring(os.clock()) .. tostring({}) .. math.random())
  until secp.is_valid_key(kb)
  return kb, keccak.tohex(kb):sub(3)
end

-- -> the first string reachable from root that holds the key's bytes or its hex (any case)
local function leak_from(root, kb, khex)
  local leak
  walk(root, function(s)
    if leak then return end
    if s:find(kb, 1, true) or (#s >= 64 and s:lower():find(khex, 1, true)) then leak = s end
  end)
  return leak
end

describe("private keys", function()
  it("a signer's functions and fields, walked with debug.getupvalue, never hold the key", function()
    local kb, khex = fresh_key()
    local chain = offline()
    local signer = chain:signer("0x" .. khex)
    signer:sign{ to = ADDR, value = 1, nonce = 0, gas = 21000, max_fee = 2, max_priority_fee = 1 }
    signer:personal_sign("hello")
    assert.equal(secp.address(kb), signer.address)
    collectgarbage()
    assert.is_nil(leak_from(signer, kb, khex))
    -- and every function reachable from it, its methods and their upvalues included
    assert.is_nil(leak_from(getmetatable(signer), kb, khex))
    -- and the whole registry (every module, every loaded function's upvalues)
    assert.is_nil(leak_from(debug.getregistry(), kb, khex))
  end)

  it("nothing reachable from the registry holds the key of a signer made from the environment (child)", function()
    -- the key is made in the child's environment only; the child looks for its hash
    local kb, khex = fresh_key()
    local code, out, err = run_ferry({ "-e", [[
      local eth = require "ferry.eth"
      local keccak = require "ferry.core.keccak"
      local want = os.getenv("KEY_HASH")
      local chain = eth.connect{ chain_id = 31337, providers = { { url = "http://127.0.0.1:9" } } }
      local signer = chain:signer{ env = "PAYER_KEY" }
      signer:sign{ to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", value = 1, nonce = 0, gas = 21000,
                   max_fee = 2, max_priority_fee = 1 }
      collectgarbage()
      package.path = "tests/?.lua;" .. package.path
      local leaks = 0
      local strings = 0
      require("helpers.heap").walk(debug.getregistry(), function(v)
        strings = strings + 1
        if #v == 32 and keccak.tohex(keccak.keccak256(v)) == want then leaks = leaks + 1 end
        for run in v:gmatch("%x+") do
          if #run >= 64 and keccak.tohex(keccak.keccak256(keccak.fromhex("0x" .. run:sub(1, 64)))) == want then
            leaks = leaks + 1
          end
        end
      end, { threads = true })
      print(signer.address, strings > 200, leaks)]] },
      { PAYER_KEY = "0x" .. khex, KEY_HASH = keccak.tohex(keccak.keccak256(kb)) })
    assert.equal(0, code, err)
    assert.equal(secp.address(kb) .. "\ttrue\t0\n", out)
  end)

  it("a ferry.Key prints as its address and has no method that returns its bytes", function()
    local kb, khex = fresh_key()
    local k = keyc.new(khex)
    local addr = secp.address(kb)
    assert.equal("ferry.Key " .. addr, tostring(k))
    assert.equal(addr, k:address())
    assert.equal("ferry.Key", getmetatable(k))
    local mt = debug.getmetatable(k)
    for name, f in pairs(mt.__index) do
      if name ~= "close" then
        local ok, r = pcall(f, k, "message")
        assert.is_falsy(ok and type(r) == "string" and (r:find(kb, 1, true) or r:lower():find(khex, 1, true)), name)
      end
    end
    assert.equal("ferry.Key " .. addr, require("ferry.pretty").render(k))
    assert.is_nil(leak_from(k, kb, khex))
  end)

  it("signs with tx.sign and personal_sign exactly as the raw key does", function()
    local kb = fresh_key()
    local k = keyc.new(kb)
    local t = { chain_id = 1, to = ADDR, value = 5, nonce = 3, gas = 21000, max_fee = 9, max_priority_fee = 2 }
    assert.same({ txc.sign(t, kb) }, { txc.sign(t, k) })
    assert.equal(secp.personal_sign("hi", kb), k:personal_sign("hi"))
    assert.equal(secp.personal_sign("hi", kb), secp.personal_sign("hi", k))
    assert.equal(secp.address(kb), secp.address(k))
  end)

  it("signer:close() and <close> wipe the key: no signature afterwards", function()
    local chain = offline()
    local t = { to = ADDR, value = 1, nonce = 0, gas = 21000, max_fee = 2, max_priority_fee = 1 }
    local signer = chain:signer("0x" .. select(2, fresh_key()))
    signer:close()
    local ok, err = pcall(signer.sign, signer, t)
    assert.is_false(ok)
    assert.equal("invalid_argument", err.code)
    assert.matches("closed", err.message)
    assert.equal("ferry.Key (closed)", tostring(signer.key))
    local kept
    do
      local s <close> = chain:signer("0x" .. select(2, fresh_key()))
      kept = s
      assert.is_string((s:sign(t)))
    end
    assert.is_true(kept.key:is_closed())
  end)

  it("refuses bad keys with an error table that does not show them", function()
    local chain = offline()
    local _, khex = fresh_key()
    for _, bad in ipairs{ "0x" .. khex:sub(1, 62), "0x" .. khex .. "00", ("0"):rep(64), 42 } do
      local ok, err = pcall(chain.signer, chain, bad)
      assert.is_false(ok)
      assert.equal("invalid_argument", err.code, tostring(err))
      assert.is_nil(tostring(err.message):find(khex:sub(1, 40), 1, true))
    end
  end)
end)

describe("errors echo no private key", function()
  local _, khex = fresh_key()
  local function assert_hidden(err)
    assert.is_table(err, tostring(err))
    assert.equal("invalid_argument", err.code)
    assert.is_nil(err.message:lower():find(khex:sub(5), 1, true), err.message)
  end

  it("a key passed as `to`, to chain:balance or inside `value`", function()
    local chain = offline()
    local signer = chain:signer("0x" .. select(2, fresh_key()))
    for _, v in ipairs{ "0x" .. khex, khex, khex:upper() } do
      assert_hidden(select(2, pcall(signer.send, signer, { to = v, value = 1 })))
      local _, err = pcall(chain.balance, chain, v)
      assert_hidden(err)
      assert.matches("(got \"" .. v:sub(1, v:find("x") and 6 or 4) .. "\u{2026}(64 hex digits, redacted)\")", err.message, 1, true)
      assert_hidden(select(2, pcall(signer.send, signer, { to = ADDR, value = v .. "z" })))
      assert_hidden(select(2, pcall(signer.sign, signer, { to = v, value = 1, nonce = 0, gas = 21000,
        max_fee = 2, max_priority_fee = 1 })))
    end
  end)

  it("as the name of a field or of a config key", function()
    local chain = offline()
    local signer = chain:signer("0x" .. select(2, fresh_key()))
    assert_hidden(select(2, pcall(signer.send, signer, { to = ADDR, ["0x" .. khex] = 1 })))
    local ok, err = pcall(require("ferry.config").validate, { limits = { [khex] = 1 } }, "cfg")
    assert.is_false(ok)
    assert.is_nil(err:find(khex:sub(5), 1, true), err)
  end)

  it("in eth.ether / eth.gwei and the U256 parser", function()
    assert_hidden(select(2, pcall(eth.ether, khex .. "x")))
    assert_hidden(select(2, pcall(eth.gwei, "0x" .. khex .. "x")))
    local ok, msg = pcall(require("ferry.core.u256").new, "0x" .. khex .. "g")
    assert.is_false(ok)
    assert.is_nil(tostring(msg):find(khex:sub(5), 1, true), msg)
  end)

  it("ferry.redact masks 64+ hex digits and keeps what is shorter", function()
    assert.equal("to 0x" .. khex:sub(1, 4) .. "\u{2026}(64 hex digits, redacted)!", ferry.redact("to 0x" .. khex .. "!"))
    assert.equal(ADDR, ferry.redact(ADDR))
  end)
end)

describe("provider URLs", function()
  local pretty = require "ferry.pretty"
  local rpc = require "ferry.rpc"
  local SECRET_URL = "http://127.0.0.1:9/v2/PathApiKey0123456789"
  local function chain()
    return eth.connect({ chain_id = 31337, providers = { { name = "alchemy", url = SECRET_URL,
      headers = { Authorization = "Bearer HeaderToken0123456789" } } } }, { rpc = { timeout = 0.5, retries = 0 } })
  end
  local function assert_clean(text, what)
    assert.is_string(text, what)
    assert.is_nil(text:find("PathApiKey", 1, true), what .. " shows the URL's path: " .. text)
    assert.is_nil(text:find("HeaderToken", 1, true), what .. " shows a header value: " .. text)
  end

  it("pool, provider and config tables print scheme://host:port, and the REPL shows no more", function()
    local c = chain()
    assert_clean(pretty.render(c.pool.providers[1], { depth = 8 }), "c.pool.providers[1]")
    assert_clean(pretty.render(c.pool, { depth = 8, items = 1000 }), "c.pool")
    assert_clean(pretty.render(c.cfg, { depth = 8 }), "c.cfg")
    assert_clean(pretty.render(c.cfg_root, { depth = 8, items = 1000 }), "c.cfg_root")
    assert_clean(tostring(c), "tostring(chain)")
    assert.equal("http://127.0.0.1:9", tostring(c.pool.providers[1].client.url))
    assert.equal("http://127.0.0.1:9", tostring(c.cfg.providers[1].url))
    local shown = {}
    local env = setmetatable({ c = c }, { __index = _G })
    require("ferry.repl").eval("c.pool.providers[1]", env, function(s) shown[#shown + 1] = s end)
    require("ferry.repl").eval("c.cfg.providers", env, function(s) shown[#shown + 1] = s end)
    assert_clean(table.concat(shown), "the REPL")
    assert.matches("http://127.0.0.1:9", table.concat(shown), 1, true)
  end)

  it("errors, pool_status and stats name the provider, never the path", function()
    local c = chain()
    local r, err = c:call("eth_blockNumber")
    assert.is_nil(r)
    assert.equal("provider_down", err.code)
    assert_clean(tostring(err), "the error")
    assert_clean(pretty.render(err, { depth = 8 }), "the error table")
    assert_clean(pretty.render(c:pool_status(), { depth = 8 }), "pool_status")
    assert_clean(pretty.render(c:stats(), { depth = 8 }), "stats")
    local client = rpc.http(SECRET_URL, { timeout = 0.5 })
    local _, cerr = client:call("eth_blockNumber")
    assert_clean(tostring(cerr) .. pretty.render(cerr) .. pretty.render(client, { depth = 8 }), "an rpc client")
    assert.equal("http://127.0.0.1:9", cerr.provider)
    local ok, e = pcall(rpc.http, "ftp://host/PathApiKey0123456789")
    assert.is_false(ok)
    assert.equal("invalid_argument", e.code)
    assert_clean(e.message, "a bad URL")
  end)

  it("a bad URL in a config error shows scheme://host:port", function()
    local ok, err = pcall(eth.connect, { chain_id = 1, providers = { { url = "htps://rpc.example/v2/PathApiKey0123456789" } } })
    assert.is_false(ok)
    assert_clean(tostring(err), "the config error")
    assert.matches('"htps://rpc.example"', tostring(err), 1, true)
  end)

  it("the HTTP client still gets the whole URL and the headers", function()
    local c = chain()
    local client = c.pool.providers[1].client
    assert.equal(SECRET_URL, rpc.reveal(client.url))
    assert.equal("Bearer HeaderToken0123456789", rpc.reveal(client.headers.Authorization))
  end)

  it("a log line with a URL field shows its origin", function()
    local code, _, err = run_ferry({ "-e", [[
      local c = require("ferry.eth").connect{ chain_id = 1, providers = { { url = "https://rpc.example/v2/PathApiKey0123456789" } } }
      require("ferry").log.info("using", { url = c.cfg.providers[1].url })]] })
    assert.equal(0, code, err)
    assert.matches("url=https://rpc.example", err, 1, true)
    assert_clean(err, "the log")
  end)
end)

describe("the REPL", function()
  it("keeps no entry that holds a private key in its history file (a pty, child process)", function()
    local _, khex = fresh_key()
    local dir = os.tmpname()
    os.remove(dir)
    local cfg = os.tmpname()
    local f = assert(io.open(cfg, "w"))
    f:write(("return { data_dir = %q }\n"):format(dir))
    f:close()
    local feed = ("sleep 0.5; printf 'k = \"0x%s\"\\n'; sleep 0.3; printf '1+1\\n'; sleep 0.3; printf '\\004'"):format(khex)
    local code, out = require("helpers.child").sh("(" .. feed .. ") | SHELL=/bin/sh FERRY_CONFIG=" .. cfg ..
      " timeout 20 script -qfec 'exec ./ferry repl' /dev/null")
    local h = io.open(dir .. "/history")
    local text = h and h:read("a") or ""
    if h then h:close() end
    os.remove(dir .. "/history")
    os.remove(dir)
    os.remove(cfg)
    assert.equal(0, code, out)
    assert.matches("1+1", text, 1, true)
    assert.is_nil(text:find(khex, 1, true), "the key is in the history file")
  end)
end)
