--- ferry.ws -- JSON-RPC 2.0 over one WebSocket: calls matched to replies by id, and
--- eth_subscription notifications handed to the subscription's function.
---
---   local c, err = ws.connect("ws://127.0.0.1:8545", {name = "anvil", ping_interval = 5})
---   local n = c:call("eth_blockNumber")                      -- "0x1a" | nil, err (as ferry.rpc)
---   local id = c:subscribe({"newHeads"}, function(head) ... end)  -- fn must not wait
---   c:unsubscribe(id); c:close()
---
--- One reader task (a daemon) per connection takes every frame and dispatches it
--- (M.dispatch, the function the fuzz target drives). A frame that is not JSON, a binary
--- frame, a notification for a subscription this connection never had, or an oversized frame
--- is a broken connection: it is logged, closed, and `on_close(err)` runs once; the
--- subscriber (ferry.subscribe) reconnects. Calls still waiting then fail with provider_down.
local ferry = require "ferry"
local core = require "ferry.core.ws"
local json = require "ferry.core.json"
local task = require "ferry.core.task"
local rpc = require "ferry.rpc"

local M = {}
local Client = {}
Client.__index = Client
Client.__name = "ferry.ws.Client"

M.DEFAULT_TIMEOUT = rpc.DEFAULT_TIMEOUT

local function fail(self, code, message, fields)
  fields = fields or {}
  fields.provider = self.name
  return nil, ferry.error(code, message, fields)
end

--- connect(url, opts) -> client | nil, err. opts: name, timeout (connect, s), ping_interval,
--- pong_timeout, max_message (bytes), max_backlog (bytes), on_close = fn(err).
function M.connect(url, opts)
  opts = opts or {}
  local full = tostring(rpc.reveal(url))
  if not full:match("^wss?://") then
    ferry.raise("invalid_argument", "ws.connect: url must be ws(s)://..., got " .. rpc.redact_url(full))
  end
  local self = setmetatable({
    name = opts.name or rpc.redact_url(full),
    next_id = 0,
    pending = {},        -- id -> queue of the caller waiting on it
    subs = {},           -- subscription id -> fn(result)
    gone = {},           -- ids unsubscribed: their late notifications are expected
    on_close = opts.on_close,
    closed = nil,        -- the error the connection ended with
  }, Client)
  self.conn = core.open(full, { timeout = opts.timeout or M.DEFAULT_TIMEOUT, ping_interval = opts.ping_interval,
                                pong_timeout = opts.pong_timeout, max_message = opts.max_message,
                                max_backlog = opts.max_backlog, background = opts.background })
  local ok, err = self.conn:wait_open()
  if not ok then
    self.conn:close()
    err.provider = self.name
    return nil, err
  end
  self.reader = ferry.spawn(self._read, self):daemon()
  return self
end

-- keep_alive(on): does the socket keep the engine alive (a script with work left)? Off for a
-- feed nobody reads (opts.background at connect), on again with its first reader.
function Client:keep_alive(on) self.conn:keep_alive(on) end

-- The connection is over: every waiting call fails, on_close runs once.
function Client:_end(err)
  if self.closed then return end
  self.closed = err
  self.conn:close()
  for id, q in pairs(self.pending) do
    self.pending[id] = nil
    q:put(err)
  end
  if self.on_close then
    local ok, e = pcall(self.on_close, err)
    if not ok then ferry.log.error("ws on_close failed", { provider = self.name, err = tostring(e) }) end
  end
end

function Client:_read()
  while not self.closed do
    local msg, kind = self.conn:recv()
    if not msg then
      kind.provider = self.name
      self:_end(kind)
      return
    end
    local err = kind ~= "text" and "binary frame" or M.dispatch(self, msg)
    if err then
      ferry.log.error("ws protocol error", { provider = self.name, err = err })
      self:_end(ferry.error("bad_response", "websocket: " .. err, { provider = self.name }))
      return
    end
  end
end

local function one(self, v)
  if type(v) ~= "table" then return "a frame that is not a JSON object" end
  if v.method == "eth_subscription" then
    local p = v.params
    if type(p) ~= "table" or type(p.subscription) ~= "string" then return "a notification without a subscription" end
    local fn = self.subs[p.subscription]
    if fn then
      local ok, e = pcall(fn, p.result)
      if not ok then ferry.log.error("subscription handler failed", { provider = self.name, err = tostring(e) }) end
      return nil
    end
    if self.gone[p.subscription] then return nil end
    return "a notification for an unknown subscription " .. p.subscription:sub(1, 40)
  end
  if math.type(v.id) == "integer" then
    local q = self.pending[v.id]
    if q then
      self.pending[v.id] = nil
      q:put(v)
    end
    return nil                  -- a reply nobody waits for any more (a call that timed out)
  end
  if v.id == json.null and v.error then return nil end
  return "a frame that is neither a reply nor a notification"
end

--- dispatch(client, text) -> nil | why the frame breaks the connection. A reply goes to the
--- call waiting on its id; a notification to its subscription's function.
function M.dispatch(self, text)
  local ok, v = pcall(json.decode, text)           -- decode raises or answers nil, err
  if not ok or v == nil then return "a frame that is not JSON" end
  if type(v) == "table" and v[1] ~= nil then
    for _, x in ipairs(v) do
      local e = one(self, x)
      if e then return e end
    end
    return nil
  end
  return one(self, v)
end

--- call(method, params, {timeout =}) -> result | nil, err (the codes of ferry.rpc)
function Client:call(method, params, opts)
  if self.closed then return nil, self.closed end
  self.next_id = self.next_id + 1
  local id = self.next_id
  local q = task.queue()
  self.pending[id] = q
  local ok, err = self.conn:send(json.encode({ jsonrpc = "2.0", id = id, method = method,
                                               params = json.array(params or {}) }))
  if not ok then
    self.pending[id] = nil
    return fail(self, "provider_down", "websocket: " .. tostring(err and err.message))
  end
  local reply, terr = q:get(opts and opts.timeout or M.DEFAULT_TIMEOUT)
  self.pending[id] = nil
  if not reply then return nil, terr end
  if ferry.is_error(reply) then return nil, reply end
  if reply.error ~= nil then
    local e = reply.error
    if type(e) ~= "table" then return fail(self, "bad_response", "malformed JSON-RPC error member") end
    local msg = type(e.message) == "string" and e.message or "(no message)"
    return fail(self, rpc.classify(e.code, msg), msg, { rpc_code = math.type(e.code) and e.code or nil, data = e.data })
  end
  local result = reply.result
  if result == json.null then result = nil end
  return result
end

--- subscribe(params, fn) -> subscription id | nil, err. fn(result) runs in the reader task
--- for each notification, in the order they came; it must not wait (put into a queue).
function Client:subscribe(params, fn)
  local id, err = self:call("eth_subscribe", params)
  if not id then return nil, err end
  if type(id) ~= "string" then return fail(self, "bad_response", "eth_subscribe: the id is not a string") end
  self.subs[id] = fn
  return id
end

function Client:unsubscribe(id)
  self.subs[id] = nil
  self.gone[id] = true
  if self.closed then return true end
  return self:call("eth_unsubscribe", { id })
end

--- "open" | "closing" | "closed"
function Client:state()
  if self.closed then return "closed" end
  return self.conn:state()
end

function Client:close()
  self:_end(ferry.error("provider_down", "websocket closed by its owner", { provider = self.name }))
  if self.reader and ferry.current() ~= self.reader then self.reader:cancel("ws closed") end
end
Client.__close = Client.close

M.stats = core.stats
ferry.register_stats("ws", core.stats)

return M
