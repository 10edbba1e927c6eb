-- ferry.config (stdlib/ferry/config.lua): sandboxed loading, schema errors with key paths,
-- env(), providers dropped for unset env vars, defaults. Env-dependent cases run in a child
-- ./ferry so this process's environment is never touched.
local config = require "ferry.config"

local DIR = "tests/fixtures/configs/"

local run_ferry = require("helpers.child").ferry

local function load_error(file)
  local ok, err = pcall(config.load, DIR .. file)
  assert.is_false(ok, file .. " should not load")
  return err
end

local function validate_error(tbl)
  local ok, err = pcall(config.validate, tbl, "cfg")
  assert.is_false(ok, "should not validate")
  return err
end

local function url(n) return "http://127.0.0.1:" .. (8545 + (n or 0)) end

-- a config file with `text`; -> its path (the caller removes it)
local tmp_config = require("helpers.child").tmpfile

-- load a config made of `text`; -> ok, cfg | err
local function load_text(text, limits)
  local path = tmp_config(text)
  local ok, r = pcall(config.load, path, limits)
  os.remove(path)
  return ok, r, path
end

describe("ferry.config", function()
  describe("load", function()
    it("loads a valid file and fills defaults", function()
      local cfg = config.load(DIR .. "good.lua")
      assert.equal(DIR .. "good.lua", cfg.path)
      assert.equal("/tmp/ferry-good", cfg.data_dir)
      local c = cfg.chains["local"]
      assert.equal("evm", c.kind)
      assert.equal(31337, c.chain_id)
      assert.equal(2, c.confirmations)
      assert.is_false(c.simulation_required)
      assert.equal(2, #c.providers)
      local anvil, backup = c.providers[1], c.providers[2]
      assert.same({ "anvil", url(), "ws://127.0.0.1:8545", 100, 1, 1, 20 },
        { anvil.name, tostring(anvil.url), tostring(anvil.ws), anvil.rps, anvil.weight, anvil.priority, anvil.burst })
      assert.same({ "backup", 25, 2, 2, 5 }, { backup.name, backup.rps, backup.weight, backup.priority, backup.burst })
      assert.equal(500, cfg.cache.max_entries)
      assert.equal(80, cfg.limits.max_gas_price_gwei)
      assert.equal(1.5, cfg.limits.max_slippage_percent)
    end)

    it("merges the file's cache.ttl over the default TTLs", function()
      local cfg = config.load(DIR .. "good.lua")
      assert.same({ eth_getBalance = 5, eth_call = 2, eth_blockNumber = 12, eth_gasPrice = 15,
                    eth_feeHistory = 12, eth_maxPriorityFeePerGas = 12, eth_chainId = 0, net_version = 0 },
                  cfg.cache.ttl)
    end)

    it("names the key path of a misspelt key and suggests the right one", function()
      assert.equal(DIR .. 'typo.lua: chains.local.provders: unknown key (did you mean "providers"?)',
        load_error("typo.lua"))
    end)

    it("names the key path and the expected type of a wrong value", function()
      assert.equal(DIR .. 'wrong_type.lua: chains.local.providers[1].rps: expected a number >= 0.001, got "fast"',
        load_error("wrong_type.lua"))
    end)

    it("reports a syntax error with the file and line", function()
      assert.matches("^config: " .. DIR:gsub("%p", "%%%0") .. "syntax%.lua:2: ", load_error("syntax.lua"))
    end)

    it("refuses a file that does not return a table", function()
      assert.equal("config: " .. DIR .. "not_table.lua must return a table, got string", load_error("not_table.lua"))
    end)

    it("refuses a missing file given explicitly", function()
      assert.equal("config: cannot open " .. DIR .. "nope.lua", load_error("nope.lua"))
    end)
  end)

  describe("sandbox", function()
    it("has env, string and table but no io, os, require, load, dofile, loadfile or print", function()
      local cfg = config.load(DIR .. "sandbox.lua")
      assert.equal("nil nil nil nil nil nil function table nil", cfg.data_dir)
    end)

    it("stops a file that calls os.execute", function()
      os.remove("/tmp/ferry-config-escaped")
      local err = load_error("escape_os.lua")
      assert.matches("escape_os.lua:2: attempt to index a nil value (global 'os')", err, 1, true)
      assert.is_nil(io.open("/tmp/ferry-config-escaped"))
    end)

    it("keeps global writes inside the sandbox", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write("ferry_config_leak = 1\nstring_leak = string\nreturn {}\n")
      f:close()
      local ok = pcall(config.load, path)
      os.remove(path)
      assert.is_true(ok)
      assert.is_nil(rawget(_G, "ferry_config_leak"))
    end)
  end)

  describe("sandbox of its own", function()
    it("a config that replaces string, table and math functions changes nothing outside it", function()
      local match, format, concat, floor = string.match, string.format, table.concat, math.floor
      local ok, err = load_text([[
        local seen = {}
        string.match = function(s, p) seen[#seen + 1] = s; return nil end
        string.format = function() return "hijacked" end
        string.gsub = nil
        table.concat = function() return "hijacked" end
        math.floor = function() return 42 end
        return { data_dir = ("x"):upper() }]])
      assert.is_true(ok, err)
      assert.equal(match, string.match)
      assert.equal(format, string.format)
      assert.equal(concat, table.concat)
      assert.equal(floor, math.floor)
      assert.is_function(string.gsub)
      -- the string metatable too: ("..."):match is the engine's own match
      assert.equal("PAYER", ("PAYER_KEY"):match("^(%u+)_"))
      assert.equal(match, ("").match)
    end)

    it("its string table is its own from the start: changing it does not reach the engine's strings", function()
      local ok = load_text([[
        string.rep = function() error("hijacked") end
        return { data_dir = ("ab"):rep(2) }]])
      assert.is_false(ok)                     -- its own ("ab"):rep is the replaced one
      assert.equal("abab", ("ab"):rep(2))     -- the engine's is not
    end)

    it("a config that never ends stops after the instruction budget (child process)", function()
      local path = tmp_config("while true do end\n")
      local code, out, err = run_ferry({ "--config", path, "-e", [[require("ferry").config() print("loaded")]] },
        nil, 20)
      os.remove(path)
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches(path .. ": took more than 10000000 instructions", err, 1, true)
    end)

    it("a config that allocates without end stops at the memory cap", function()
      local ok, err, path = load_text([[return { data_dir = ("x"):rep(256 * 1024 * 1024) }]])
      assert.is_false(ok)
      assert.equal(path .. ": used more than 64 MiB", err)
    end)

    it("a config that grows a table without end stops at the memory cap (child process, 1 GB ulimit)", function()
      local path = tmp_config("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end return {}\n")
      local code, out, err = require("helpers.child").sh(("ulimit -v 1000000; ./ferry --config %s -e " ..
        "'require(\"ferry\").config() print(\"loaded\")'"):format(path), nil, 30)
      os.remove(path)
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches(path .. ": used more than 64 MiB", err, 1, true)
    end)

    it("refuses a result that is not plain data, naming the key", function()
      local ok, err, path = load_text([[return { data_dir = function() end }]])
      assert.is_false(ok)
      assert.equal(path .. ": data_dir: a function cannot be part of the configuration (plain values and tables only)", err)
    end)
  end)

  describe("env()", function()
    local function unset(name)
      local v = os.getenv(name)
      return v == nil or v == ""
    end

    it("uses defaults when the variables are unset", function()
      assert(unset("FERRY_TEST_CONFIRMATIONS") and unset("FERRY_TEST_DATA_DIR") and unset("FERRY_TEST_MAX_GAS"),
        "FERRY_TEST_* must not be set when running the specs")
      local cfg = config.load(DIR .. "env.lua")
      assert.equal(3, cfg.chains["local"].confirmations)
      assert.equal(".ferry-test", cfg.data_dir)
      assert.equal(500, cfg.limits.max_gas_price_gwei)
      assert.equal(url(), tostring(cfg.chains["local"].providers[1].url))
    end)

    it("drops providers whose url comes from an unset variable and remembers why", function()
      assert(unset("FERRY_TEST_REMOTE_RPC"))
      local cfg = config.load(DIR .. "env.lua")
      assert.same({}, cfg.chains.remote.providers)
      assert.same({ remote = { { provider = "alchemy", env = "FERRY_TEST_REMOTE_RPC" } } }, cfg.dropped_providers)
      assert.equal(1, #cfg.chains["local"].providers)
    end)

    it("reads set variables, turning numbers into numbers (child process)", function()
      local code, out, err = run_ferry({ "--config", DIR .. "env.lua", "-e", [[
        local c = require("ferry").config()
        print(c.chains["local"].confirmations, math.type(c.chains["local"].confirmations),
              c.limits.max_gas_price_gwei, c.data_dir, c.chains.remote.providers[1].url,
              c.chains["local"].providers[1].url, #(c.dropped_providers.remote or {}))]] },
        { FERRY_TEST_CONFIRMATIONS = "7", FERRY_TEST_MAX_GAS = "42.5", FERRY_TEST_DATA_DIR = "/tmp/fd",
          FERRY_TEST_REMOTE_RPC = "https://rpc.example:8545/v2", FERRY_TEST_LOCAL_URL = "http://10.0.0.2:8545" })
      assert.equal(0, code, err)
      -- a provider URL prints as scheme://host:port: its path (/v2/<api key>) is not shown
      assert.equal("7\tinteger\t42.5\t/tmp/fd\thttps://rpc.example:8545\thttp://10.0.0.2:8545\t0\n", out)
    end)

    it("treats an empty variable as unset", function()
      local code, out, err = run_ferry({ "--config", DIR .. "env.lua", "-e", [[
        local c = require("ferry").config()
        print(c.chains["local"].confirmations, #c.chains.remote.providers)]] },
        { FERRY_TEST_CONFIRMATIONS = "", FERRY_TEST_REMOTE_RPC = "" })
      assert.equal(0, code, err)
      assert.equal("3\t0\n", out)
    end)

    it("a non-numeric value for a numeric default is an error naming the variable (child process)", function()
      local code, out, err = run_ferry({ "--config", DIR .. "env.lua", "-e", [[require("ferry").config()]] },
        { FERRY_TEST_CONFIRMATIONS = "lots" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches('env FERRY_TEST_CONFIRMATIONS: expected a number, got "lots"', err, 1, true)
      assert.matches("env.lua:6:", err, 1, true) -- the line of the env() call
    end)

    it("eth.chain on a chain whose providers were dropped names the variable (child process)", function()
      local code, out, err = run_ferry({ "--config", DIR .. "env.lua", "-e", [[
        local eth = require "ferry.eth"
        print(eth.chain("local").chain_id)
        local ok, e = pcall(eth.chain, "remote")
        print(ok, e)]] }, { FERRY_TEST_REMOTE_RPC = "" })
      assert.equal(0, code, err)
      assert.equal("31337\nfalse\tinvalid_argument: eth.chain: chain remote has no usable provider: set FERRY_TEST_REMOTE_RPC\n", out)
    end)

    it("rejects a non-string name", function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write("return { data_dir = env(42) }\n")
      f:close()
      local ok, err = pcall(config.load, path)
      os.remove(path)
      assert.is_false(ok)
      assert.matches("env(name, default): name must be a string", err, 1, true)
    end)

    it("does not drop a provider that simply has no url because another variable is unset", function()
      local err = load_error("missing_url.lua")
      assert.matches("chains.local.providers[1].url: missing (required)", err, 1, true)
    end)
  end)

  describe("validate", function()
    it("fills defaults for an empty table", function()
      local cfg = config.validate({})
      assert.same({}, cfg.chains)
      assert.equal(".ferry", cfg.data_dir)
      assert.equal(100000, cfg.cache.max_entries)
      assert.equal(64 * 1024 * 1024, cfg.cache.max_bytes)
      assert.same({ eth_getBalance = 30, eth_blockNumber = 12, eth_gasPrice = 15, eth_feeHistory = 12,
                    eth_maxPriorityFeePerGas = 12, eth_chainId = 0, net_version = 0 }, cfg.cache.ttl)
      assert.same({ timeout = 10, max_bytes = 32 * 1024 * 1024, retries = 2 }, cfg.rpc)
      assert.same({ max_gas_price_gwei = 500 }, cfg.limits)
    end)

    it("defaults provider rps by provider name", function()
      local cfg = config.validate({ chains = { c = { chain_id = 1, providers = {
        { name = "alchemy", url = url(1) }, { name = "infura", url = url(2) },
        { name = "quicknode", url = url(3) }, { name = "public", url = url(4) },
        { name = "Alchemy-backup", url = url(5) }, { name = "custom", url = url(6) },
        { url = url(7) },
      } } } })
      local rps, burst = {}, {}
      for i, p in ipairs(cfg.chains.c.providers) do rps[i], burst[i] = p.rps, p.burst end
      assert.same({ 25, 10, 15, 5, 25, 25, 25 }, rps)
      assert.same({ 5, 2, 3, 1, 5, 5, 5 }, burst)
      assert.equal("c#7", cfg.chains.c.providers[7].name)
    end)

    it("keeps an explicit rps over the name default", function()
      local cfg = config.validate({ chains = { c = { chain_id = 1, providers = {
        { name = "infura", url = url(), rps = 3 } } } } })
      assert.equal(3, cfg.chains.c.providers[1].rps)
      assert.equal(1, cfg.chains.c.providers[1].burst)
    end)

    it("suggests the closest top-level key", function()
      assert.equal('cfg: chians: unknown key (did you mean "chains"?)', validate_error({ chians = {} }))
    end)

    it("does not suggest when nothing is close", function()
      assert.equal("cfg: zzzzzzzz: unknown key", validate_error({ zzzzzzzz = 1 }))
    end)

    it("requires chain_id on evm chains, naming the key path", function()
      assert.equal("cfg: chains.x.chain_id: missing (required for evm chains)",
        validate_error({ chains = { x = { providers = { { url = url() } } } } }))
    end)

    it("does not require chain_id on solana chains", function()
      local cfg = config.validate({ chains = { s = { kind = "solana", providers = { { url = url() } } } } })
      assert.equal("solana", cfg.chains.s.kind)
    end)

    it("requires providers and their url", function()
      assert.equal("cfg: chains.x.providers: missing (required)", validate_error({ chains = { x = { chain_id = 1 } } }))
      assert.equal("cfg: chains.x.providers[2].url: missing (required)",
        validate_error({ chains = { x = { chain_id = 1, providers = { { url = url() }, { name = "b" } } } } }))
    end)

    it("checks url schemes", function()
      assert.equal('cfg: chains.x.providers[1].url: expected an http(s):// URL, got "ftp://host"',
        validate_error({ chains = { x = { chain_id = 1, providers = { { url = "ftp://host" } } } } }))
      assert.equal('cfg: chains.x.providers[1].ws: expected a ws(s):// URL, got "http://host"',
        validate_error({ chains = { x = { chain_id = 1, providers = { { url = url(), ws = "http://host" } } } } }))
    end)

    it("checks integers, minimums and enums", function()
      assert.equal("cfg: chains.x.confirmations: expected an integer >= 0, got 1.5 (number)",
        validate_error({ chains = { x = { chain_id = 1, confirmations = 1.5, providers = {} } } }))
      assert.equal("cfg: chains.x.confirmations: expected an integer >= 0, got -1 (number)",
        validate_error({ chains = { x = { chain_id = 1, confirmations = -1, providers = {} } } }))
      assert.equal('cfg: chains.x.kind: expected one of evm, solana, got "btc"',
        validate_error({ chains = { x = { kind = "btc", chain_id = 1, providers = {} } } }))
    end)

    it("accepts a whole float where an integer is expected", function()
      local cfg = config.validate({ chains = { x = { chain_id = 1.0, confirmations = 2.0, providers = {} } } })
      assert.equal("integer", math.type(cfg.chains.x.chain_id))
      assert.equal("integer", math.type(cfg.chains.x.confirmations))
    end)

    it("refuses NaN and infinities for every number", function()
      assert.equal("cfg: rpc.timeout: expected a finite number, got nan (number)",
        validate_error({ rpc = { timeout = 0 / 0 } }):gsub("%-nan", "nan"))
      assert.equal("cfg: rpc.timeout: expected a finite number, got inf (number)",
        validate_error({ rpc = { timeout = 1 / 0 } }))
      assert.equal("cfg: chains.x.hedge_ms: expected a finite number, got inf (number)",
        validate_error({ chains = { x = { chain_id = 1, hedge_ms = math.huge, providers = {} } } }))
      assert.equal("cfg: chains.x.confirmations: expected an integer >= 0, got inf (number)",
        validate_error({ chains = { x = { chain_id = 1, confirmations = 1 / 0, providers = {} } } }))
      assert.equal("cfg: cache.ttl.eth_call: expected a finite number, got -inf (number)",
        validate_error({ cache = { ttl = { eth_call = -1 / 0 } } }))
      assert.matches('cfg: limits.max_gas_price_gwei: expected a finite number >= 0, or false / "off" for no cap, got inf',
        validate_error({ limits = { max_gas_price_gwei = 1 / 0 } }), 1, true)
    end)

    it("shows a bad provider URL as scheme://host:port, never its path", function()
      local err = validate_error({ chains = { x = { chain_id = 1, providers = {
        { url = "htps://eth-mainnet.g.alchemy.com/v2/AbCdEfSecretApiKey123" } } } } })
      assert.equal('cfg: chains.x.providers[1].url: expected an http(s):// URL, got "htps://eth-mainnet.g.alchemy.com"', err)
      err = validate_error({ chains = { x = { chain_id = 1, providers = {
        { url = "eth-mainnet.g.alchemy.com/v2/AbCdEfSecretApiKey123" } } } } })
      assert.equal("cfg: chains.x.providers[1].url: expected an http(s):// URL, got a string of 50 characters (not shown)", err)
      err = validate_error({ chains = { x = { chain_id = 1, providers = {
        { url = url(), ws = "https://x.example/ws/AbCdEfSecretApiKey123" } } } } })
      assert.is_nil(err:find("AbCdEf", 1, true), err)
    end)

    it("never echoes a value shaped like a private key", function()
      local key = ("ab12"):rep(16)
      local err = validate_error({ log = { level = "0x" .. key } })
      assert.is_nil(err:find(key:sub(1, 16), 5, true), err)
      assert.matches("(64 hex digits, redacted)", err, 1, true)
      local code, _, cerr = run_ferry({ "--config", DIR .. "env.lua", "-e", [[require("ferry").config()]] },
        { FERRY_TEST_CONFIRMATIONS = key })
      assert.equal(1, code)
      assert.matches("env FERRY_TEST_CONFIRMATIONS: expected a number", cerr, 1, true)
      assert.is_nil(cerr:find(key:sub(5), 1, true), cerr)
    end)

    it("wants providers as a list", function()
      assert.equal('cfg: chains.x.providers.main: expected a list (1, 2, 3 ...), found key "main"',
        validate_error({ chains = { x = { chain_id = 1, providers = { main = { url = url() } } } } }))
    end)

    it("caps gas prices at 500 gwei when the config does not say", function()
      assert.equal(500, config.validate({}).limits.max_gas_price_gwei)
      assert.equal(500, config.validate({ limits = { max_slippage_percent = 1 } }).limits.max_gas_price_gwei)
      assert.equal(80, config.validate({ limits = { max_gas_price_gwei = 80 } }).limits.max_gas_price_gwei)
      assert.equal('cfg: limits.max_gas_price_gwei: expected a finite number >= 0, or false / "off" for no cap, got "none"',
        validate_error({ limits = { max_gas_price_gwei = "none" } }))
    end)

    it("turns the cap off only when told, with a warning at load (child process)", function()
      local code, out, err = run_ferry({ "-e", [[
        local config = require "ferry.config"
        print(config.validate({ limits = { max_gas_price_gwei = false } }).limits.max_gas_price_gwei,
              config.validate({ limits = { max_gas_price_gwei = "off" } }).limits.max_gas_price_gwei)]] })
      assert.equal(0, code, err)
      assert.equal("false\tfalse\n", out)
      local n = 0
      for _ in err:gmatch("WARN  no gas price cap") do n = n + 1 end
      assert.equal(2, n, err)
    end)

    describe("the default cap on a send", function()
      local eth = require "ferry.eth"
      local KEY = "0x" .. ("5a"):rep(32)
      local TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
      -- nobody listens on port 9: anything that gets past the cap fails on the network
      local function chain(limits)
        return eth.connect({ chain_id = 31337, providers = { { name = "nobody", url = "http://127.0.0.1:9" } } },
          { rpc = { timeout = 0.5, retries = 0 }, limits = limits })
      end
      local function send(c, gwei)
        local signer = c:signer(KEY)
        local signed = 0
        local sign = signer.sign
        signer.sign = function(...) signed = signed + 1; return sign(...) end
        local ok, err = pcall(signer.send, signer, { to = TO, value = 1, gas = 21000,
          max_fee = eth.gwei(gwei), max_priority_fee = eth.gwei(1) })
        assert.is_false(ok)
        return err, signed
      end

      it("a config without limits.max_gas_price_gwei refuses 501 gwei before anything is signed", function()
        local err, signed = send(chain(nil), 501)
        assert.equal("policy_rejected", err.code, tostring(err))
        assert.equal(500, err.cap_gwei)
        assert.matches("above the cap of 500 gwei", err.message, 1, true)
        assert.equal(0, signed)
        err = send(chain({ max_slippage_percent = 1 }), 501)
        assert.equal("policy_rejected", err.code, tostring(err))
      end)

      it("lets 500 gwei through the cap (then meets the network)", function()
        local err = send(chain(nil), 500)
        assert.equal("provider_down", err.code, tostring(err))
      end)

      it("with the cap off, even 100,000 gwei passes it", function()
        for _, off in ipairs{ false, "off" } do
          local err = send(chain({ max_gas_price_gwei = off }), 100000)
          assert.equal("provider_down", err.code, tostring(err))
        end
      end)
    end)

    it("is what ferry.set_config applies (child process: the config is per engine)", function()
      local code, out, err = run_ferry({ "-e", [[
        local ferry = require "ferry"
        local cfg = ferry.set_config({ data_dir = "/tmp/x" })
        print(cfg.data_dir, cfg == ferry.config(), cfg.cache.ttl.eth_blockNumber)
        print(pcall(ferry.set_config, { data_dri = "/tmp/x" }))]] })
      assert.equal(0, code, err)
      assert.equal('/tmp/x\ttrue\t12\nfalse\tconfig: data_dri: unknown key (did you mean "data_dir"?)\n', out)
    end)
  end)
end)

describe("the request timeout", function()
  it("has one default (ferry.rpc), set in config and passed down to the pool and each client", function()
    local rpc = require "ferry.rpc"
    local eth = require "ferry.eth"
    local c = eth.connect{ chain_id = 1, head_poll = 0, providers = { { url = "http://127.0.0.1:9" } } }
    assert.equal(rpc.DEFAULT_TIMEOUT, c.cfg_root.rpc.timeout)
    assert.equal(rpc.DEFAULT_TIMEOUT, c.pool.timeout)
    assert.equal(rpc.DEFAULT_TIMEOUT, c.pool.providers[1].client.timeout)
    local d = eth.connect({ chain_id = 1, head_poll = 0,
                            providers = { { url = "http://127.0.0.1:9" }, { url = "http://127.0.0.1:10", timeout = 2 } } },
                          { rpc = { timeout = 3 } })
    assert.equal(3, d.pool.timeout)
    assert.equal(3, d.pool.providers[1].client.timeout)
    assert.equal(2, d.pool.providers[2].client.timeout)
    -- the HTTP binding has none of its own
    local ok, err = pcall(require("ferry.core.http").request, "http://127.0.0.1:9/", {})
    assert.is_false(ok)
    assert.matches("timeout", err.message)
  end)
end)
