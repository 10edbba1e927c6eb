-- ferry.core.ws and ferry.ws against a real anvil, through the fault proxy's ws_* modes.
local ferry = require "ferry"
local core = require "ferry.core.ws"
local ws = require "ferry.ws"
local peers = require "helpers.peers"

local function ws_url(p) return "ws://127.0.0.1:" .. p.port end

describe("ferry.core.ws", function()
  local anvil, proxy
  setup(function()
    anvil = peers.anvil()
    proxy = peers.proxy(anvil.url)
  end)
  teardown(function() proxy:stop(); anvil:stop() end)
  before_each(function() proxy:fault{ mode = "pass" } end)

  it("talks JSON-RPC text frames with anvil, and a closed socket says so on recv", function()
    local c <close> = core.open(anvil.ws)
    assert.is_true(c:wait_open())
    assert.equal("open", c:state())
    assert.is_true(c:send('{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}'))
    local msg, kind = c:recv(5)
    assert.equal("text", kind)
    assert.equal("0x7a69", ferry.json.decode(msg).result)
    c:close(1000, "bye")
    local none, err = c:recv(5)
    assert.is_nil(none)
    assert.equal("provider_down", err.code)
    assert.equal(1006, err.close_code)            -- anvil answers a close with no close frame
    assert.equal("local", err.why)
  end)

  it("reassembles a notification and keeps pinging an idle peer that never pings", function()
    local c <close> = core.open(anvil.ws, { ping_interval = 0.05, pong_timeout = 2 })
    assert.is_true(c:wait_open())
    local before = core.stats().pongs
    assert.is_nil(c:recv(0.3))                    -- quiet: only pings and pongs meanwhile
    assert.is_true(core.stats().pongs > before)
    assert.equal("open", c:state())
  end)

  it("refused: no listener, and an upgrade answered with 403", function()
    local c <close> = core.open("ws://127.0.0.1:1/", { timeout = 2 })
    local ok, err = c:wait_open()
    assert.is_nil(ok)
    assert.equal("refused", err.why)
    proxy:fault{ mode = "ws_refuse" }
    local c2 <close> = core.open(ws_url(proxy), { timeout = 2 })
    ok, err = c2:wait_open()
    assert.is_nil(ok)
    assert.equal("refused", err.why)
  end)

  it("a connect that hangs ends at its deadline", function()
    proxy:fault{ mode = "ws_stall" }                -- accepts, never answers the upgrade
    local c <close> = core.open(ws_url(proxy), { timeout = 0.3 })
    local ok, err = c:wait_open()
    assert.is_nil(ok)
    assert.equal("connect_timeout", err.why)
  end)

  it("a stalled socket (no frame, no pong) is closed as stalled", function()
    local c <close> = core.open(ws_url(proxy), { ping_interval = 0.1, pong_timeout = 0.2 })
    assert.is_true(c:wait_open())
    proxy:fault{ mode = "ws_stall" }
    local t0 = ferry.now()
    local msg, err = c:recv(10)
    assert.is_nil(msg)
    assert.equal("stalled", err.why)
    ferry.log.debug("stall detected", { seconds = ferry.now() - t0 })
  end)

  it("reports the peer's close code as sent", function()
    local c <close> = core.open(ws_url(proxy))
    assert.is_true(c:wait_open())
    proxy:fault{ mode = "ws_close", code = 4001 }
    local msg, err = c:recv(5)
    assert.is_nil(msg)
    assert.equal(4001, err.close_code)
    assert.equal("closed", err.why)
  end)

  it("a message over max_message closes the connection with 1009", function()
    local c <close> = core.open(ws_url(proxy), { max_message = 1000 })
    assert.is_true(c:wait_open())
    proxy:fault{ mode = "ws_huge", bytes = 5000 }
    local msg, err = c:recv(5)
    assert.is_nil(msg)
    assert.equal("too_large", err.why)
    assert.equal(1009, err.close_code)
  end)

  it("a peer that dies in the middle of a message: closed, the partial message dropped", function()
    local c <close> = core.open(ws_url(proxy))
    assert.is_true(c:wait_open())
    proxy:fault{ mode = "ws_huge", bytes = 8 * 1024 * 1024 }   -- still on its way when cut
    proxy:fault{ mode = "ws_drop" }
    local msg, err = c:recv(5)
    if msg then                                                -- it made it whole before the cut
      assert.equal(8 * 1024 * 1024, #msg)
      msg, err = c:recv(5)
    end
    assert.is_nil(msg)
    assert.equal("closed", err.why)
    assert.equal(1006, err.close_code)
  end)

  it("a reader that never reads: the backlog is capped and the connection closed", function()
    local c <close> = core.open(anvil.ws, { max_backlog = 4000 })
    assert.is_true(c:wait_open())
    assert.is_true(c:send('{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}'))
    for _ = 1, 5 do anvil:mine() end               -- five ~1.8 KB heads, never read
    ferry.sleep(0.2)
    assert.is_true(c:backlog() <= 4000)
    local n = 0
    while true do
      local msg, err = c:recv(5)
      if not msg then
        assert.equal("backlog", err.why)
        break
      end
      n = n + 1
    end
    assert.is_true(n >= 1 and n <= 3)
  end)
end)

describe("ferry.core.ws: the engine exits with sockets open", function()
  local child = require "helpers.child"
  local anvil
  setup(function() anvil = peers.anvil() end)
  teardown(function() anvil:stop() end)

  it("a script that leaves an open socket, a subscription and a parked reader ends with 0", function()
    local code, out, err = child.ferry({ "-e", ([[
      local ferry = require "ferry"
      local core = require "ferry.core.ws"
      local c = core.open("%s", { ping_interval = 0.05 })
      assert(c:wait_open())
      c:send('{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}')
      local c2 = core.open("%s")
      ferry.spawn(function() c2:wait_open(); c2:recv() end):daemon()
      print("open", c:state())
    ]]):format(anvil.ws, anvil.ws) }, nil, 20)
    assert.equal(0, code, err)
    assert.equal("open\topen\n", out)
  end)
end)

describe("ferry.ws", function()
  local anvil, proxy
  setup(function()
    anvil = peers.anvil()
    proxy = peers.proxy(anvil.url)
  end)
  teardown(function() proxy:stop(); anvil:stop() end)
  before_each(function() proxy:fault{ mode = "pass" } end)

  it("matches replies to calls by id, concurrent calls included", function()
    local c <close> = assert(ws.connect(anvil.ws))
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = ferry.spawn(function()
        return c:call("eth_getBalance", { ("0x%040x"):format(i), "latest" })
      end)
    end
    for i = 1, 20 do
      local ok, v = tasks[i]:wait()
      assert.is_true(ok)
      assert.equal("0x0", v)
    end
    assert.equal("0x7a69", c:call("eth_chainId"))
    local r, err = c:call("no_such_method")
    assert.is_nil(r)
    assert.equal("rpc_error", err.code)
  end)

  it("hands notifications to the subscription's function", function()
    local c <close> = assert(ws.connect(anvil.ws))
    local q = require("ferry.core.task").queue()
    local id = assert(c:subscribe({ "newHeads" }, function(h) q:put(h) end))
    anvil:mine()
    local h = q:get(5)
    assert.is_string(h.hash)
    assert.is_true(c:unsubscribe(id))
  end)

  for _, case in ipairs({ { "ws_garbage", "not JSON" }, { "ws_binary", "binary" } }) do
    it("a bad frame (" .. case[1] .. ") is a logged protocol error that closes the connection", function()
      local closed = require("ferry.core.task").queue()
      local c <close> = assert(ws.connect(ws_url(proxy), { on_close = function(e) closed:put(e) end }))
      local logged = ferry.log.capture(function()
        proxy:fault{ mode = case[1] }
        local e = closed:get(5)
        assert.equal("bad_response", e.code)
      end)
      assert.truthy(logged:find("ws protocol error", 1, true))
      assert.truthy(logged:find(case[2], 1, true), logged)
      local r, err = c:call("eth_chainId")
      assert.is_nil(r)
      assert.equal("bad_response", err.code)
    end)
  end

  it("a notification for a subscription it never had is a protocol error", function()
    local closed = require("ferry.core.task").queue()
    local c <close> = assert(ws.connect(anvil.ws, { on_close = function(e) closed:put(e) end }))
    local err = ws.dispatch(c, '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x99","result":{}}}')
    assert.truthy(err:find("unknown subscription", 1, true))
    assert.is_nil(ws.dispatch(c, '{"jsonrpc":"2.0","id":12345,"result":"0x1"}'))   -- a late reply: ignored
    assert.truthy(ws.dispatch(c, "[1,2"))
    assert.truthy(ws.dispatch(c, "42"))
  end)
end)
