-- JSON-RPC client against a real anvil, a frozen anvil, and a fault proxy in front of one.
local ferry = require "ferry"
local rpc = require "ferry.rpc"
local peers = require "helpers.peers"

describe("ferry.rpc against anvil", function()
  local anvil, client
  setup(function()
    anvil = peers.anvil()
    client = rpc.http(anvil.url, { timeout = 30, name = "anvil" })
  end)
  teardown(function() anvil:stop() end)

  it("calls a method and gets its result", function()
    assert.equal("0x7a69", client:call("eth_chainId"))
    local bal = client:call("eth_getBalance", { "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest" })
    assert.equal("0x21e19e0c9bab2400000", bal)
  end)

  it("returns a JSON-RPC error object as an error table", function()
    local r, err = client:call("no_such_method", {})
    assert.is_nil(r)
    assert.equal("rpc_error", err.code)
    assert.equal(-32601, err.rpc_code)
    assert.equal("anvil", err.provider)
    assert.matches("not found", err.message:lower())
  end)

  it("classifies a revert from eth_call", function()
    -- CREATE code that reverts with Error("nope"): PUSH the ABI-encoded reason, REVERT
    local r, err = client:call("eth_call", { { data = "0x60006000fd" }, "latest" })
    assert.is_nil(r)
    assert.equal("reverted", err.code)
  end)

  it("sends a batch and matches replies by id", function()
    local rs = assert(client:batch{ { "eth_chainId" }, { "eth_blockNumber" }, { "nope_method" } })
    assert.equal("0x7a69", rs[1].result)
    assert.matches("^0x", rs[2].result)
    assert.equal("rpc_error", rs[3].error.code)
  end)

  it("1,000 concurrent eth_blockNumber calls all succeed", function()
    local ok, n = 0, 1000
    local tasks = {}
    for i = 1, n do
      tasks[i] = ferry.spawn(function() return assert(client:call("eth_blockNumber")) end)
    end
    for i = 1, n do
      local good, v = tasks[i]:wait()
      if good and v:match("^0x") then ok = ok + 1 end
    end
    assert.equal(n, ok)
  end)

  it("times out a frozen anvil within its deadline + 50 ms while other tasks keep running", function()
    local frozen = peers.anvil()
    local c = rpc.http(frozen.url, { timeout = 0.3 })
    assert(c:call("eth_chainId"))   -- warm connection
    frozen:freeze()
    local ticks = 0
    local ticker = ferry.spawn(function() while true do ferry.sleep(0.01) ticks = ticks + 1 end end)
    local t0 = ferry.now()
    local r, err = c:call("eth_blockNumber")
    local dt = ferry.now() - t0
    ticker:cancel()
    frozen:thaw()
    frozen:stop()
    assert.is_nil(r)
    assert.equal("timeout", err.code)
    assert.is_true(dt >= 0.29 and dt < 0.35, ("took %.3f s"):format(dt))  -- deadline + 50 ms; timers tick in ms
    assert.is_true(ticks >= 15, "other tasks kept running (" .. ticks .. " ticks)")
  end)
end)

describe("ferry.rpc bad input", function()
  it("connection refused gives provider_down", function()
    -- a port nobody listens on: start anvil, stop it, reuse its port
    local a = peers.anvil()
    local url = a.url
    a:stop()
    local r, err = rpc.http(url, { timeout = 2 }):call("eth_chainId")
    assert.is_nil(r)
    assert.equal("provider_down", err.code)
    assert.equal("refused", err.transport)
  end)

  it("never puts a URL path (where API keys live) in an error", function()
    local r, err = rpc.http("http://127.0.0.1:9/v2/SECRETKEY123", { timeout = 1 }):call("eth_chainId")
    assert.is_nil(r)
    assert.not_matches("SECRETKEY123", tostring(err.provider) .. tostring(err.message))
  end)
end)

describe("ferry.rpc malformed replies (fault proxy in front of anvil)", function()
  local anvil, proxy, client
  setup(function()
    anvil = peers.anvil()
    proxy = peers.proxy(anvil.url)
    client = rpc.http(proxy.url, { timeout = 5, name = "proxied", max_bytes = 8 * 1024 * 1024 })
  end)
  teardown(function() proxy:stop(); anvil:stop() end)
  after_each(function() proxy:fault{ mode = "pass" } end)

  local function expect(mode, opts, code, pattern)
    opts.mode = mode
    proxy:fault(opts)
    local before = ferry.stats()
    local r, err = client:call("eth_blockNumber")
    assert.is_nil(r)
    assert.equal(code, err.code, tostring(err))
    if pattern then assert.matches(pattern, err.message) end
    assert.equal("proxied", err.provider)
    -- no leak: the op and its refs are gone
    local after = ferry.stats()
    assert.equal(before.tasks.ops_pending, after.tasks.ops_pending)
    assert.equal(before.refs, after.refs)
    proxy:fault{ mode = "pass" }
    assert(client:call("eth_blockNumber"), "client works again after " .. mode)
  end

  it("HTTP 500 -> provider_down", function() expect("500", {}, "provider_down", "HTTP 500") end)
  it("a non-JSON body -> bad_response", function() expect("garbage", {}, "bad_response", "not a JSON%-RPC reply") end)
  it("truncated JSON -> bad_response", function() expect("truncated", {}, "bad_response", "truncated") end)
  it("a reply with the wrong id -> bad_response", function() expect("wrong_id", {}, "bad_response", "does not match") end)
  it("a 50 MB body -> bad_response (size cap)", function()
    expect("huge", { bytes = 50 * 1024 * 1024 }, "bad_response", "larger than")
  end)
  it("deeply nested JSON -> bad_response (depth limit)", function()
    expect("deep", { depth = 100000 }, "bad_response", "too deep")
  end)
  it("HTTP 429 -> rate_limited with retry_after", function()
    proxy:fault{ mode = "429", retry_after = 3 }
    local r, err = client:call("eth_blockNumber")
    assert.is_nil(r)
    assert.equal("rate_limited", err.code)
    assert.equal(3, err.retry_after)
  end)
  it("a hung reply times out", function()
    proxy:fault{ mode = "hang" }
    local r, err = client:call("eth_blockNumber", nil, { timeout = 0.2 })
    assert.is_nil(r)
    assert.equal("timeout", err.code)
  end)
end)
