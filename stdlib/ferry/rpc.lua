--- ferry.rpc -- JSON-RPC 2.0 over HTTP.
---
---   local c = rpc.http("http://127.0.0.1:8545", {timeout = 5, name = "anvil"})
---   local n, err = c:call("eth_blockNumber")          -- "0x1a" | nil, {code = ...}
---   local rs = c:batch{{"eth_chainId"}, {"eth_getBalance", {addr, "latest"}}}
---
--- Failures come back as `nil, err` with err.code from DESIGN.md's list:
---   timeout, provider_down (refused, reset, HTTP 5xx), rate_limited (HTTP 429, with
---   retry_after), bad_response (not JSON, truncated, wrong id, too large, too deep),
---   rpc_error (a JSON-RPC error object) or a more precise code for well-known node messages
---   (nonce_too_low, insufficient_funds, reverted, underpriced, already_known).
--- err.rpc_code, err.data, err.provider and err.http_status are set when known. A provider
--- is named by its configured name or its scheme://host:port only: URL paths often hold API
--- keys, and keys never appear in errors or logs.
local http = require "ferry.core.http"
local json = require "ferry.core.json"
local ferry = require "ferry"

local M = {}
local Client = {}
Client.__index = Client

--- The one default timeout of a JSON-RPC request, in seconds: config.lua's rpc.timeout
--- defaults to it, and the pool and every client take theirs from there.
M.DEFAULT_TIMEOUT = 10
local DEFAULT_MAX_BYTES = 32 * 1024 * 1024
local HEADERS = { ["Content-Type"] = "application/json" }

-- Hidden values: a provider URL (or a header value) that Lua code may pass around, print,
-- log or pretty-print, and that shows only a safe text (scheme://host:port, "[redacted]").
-- The real text is kept in this module's weak table, and only the HTTP client reads it.
local hidden = setmetatable({}, { __mode = "k" })
local Hidden = { __name = "ferry.Hidden" }
Hidden.__tostring = function(h) return rawget(h, "shown") end
Hidden.__concat = function(a, b) return tostring(a) .. tostring(b) end
Hidden.__eq = function(a, b) return hidden[a] == hidden[b] end
Hidden.__tojson = function(h) return rawget(h, "shown") end

--- hide(text, shown) -> a value that prints as `shown`; reveal() gives text back to the HTTP
--- client. A hidden value passed again is returned as it is.
function M.hide(text, shown)
  if hidden[text] then return text end
  local h = setmetatable({ shown = shown }, Hidden)
  hidden[h] = text
  return h
end

--- The text behind a hidden value (strings are returned as they are).
function M.reveal(v)
  local t = hidden[v]
  if t ~= nil then return t end
  return v
end

function M.is_hidden(v) return hidden[v] ~= nil end

--- scheme://host:port of a URL, never its path or query (where API keys live), nor a
--- user:password@. nil when the text is not a URL.
function M.url_origin(url)
  local scheme, host = tostring(M.reveal(url)):match("^(%a[%w+.-]*)://([^/?#]+)")
  if not scheme then return nil end
  host = host:gsub("^.*@", "")   -- user:password@
  return scheme .. "://" .. host
end

--- scheme://host:port of a URL, or "provider" when it is not a URL.
function M.redact_url(url) return M.url_origin(url) or "provider" end

--- A provider URL as a hidden value that prints as its scheme://host:port.
function M.url(url)
  if hidden[url] then return url end
  return M.hide(url, M.redact_url(url))
end

-- Map a node's error message to a stable code. These describe the transaction, not the
-- provider (the pool must not count them against it). Matched on the lower-cased message,
-- first match wins. tests/integration/nodes_spec.lua provokes each on anvil and on hardhat's
-- node; what they say (geth's texts are the ones without a node named):
local PATTERNS = {
  { "nonce too low", "nonce_too_low" },            -- hardhat: "Nonce too low. Expected nonce to be 1 but got 0. ..."
  { "nonce too high", "nonce_too_high" },          -- hardhat (automine): "Nonce too high. Expected nonce to be 44 but got 45. ..."
  { "already known", "already_known" },
  { "already imported", "already_known" },         -- anvil: "transaction already imported"
  { "known transaction", "already_known" },        -- hardhat: "Known transaction: 0x..."
  { "insufficient funds", "insufficient_funds" },  -- anvil: "Insufficient funds for gas * price + value"
  { "doesn't have enough funds", "insufficient_funds" }, -- hardhat: "Sender doesn't have enough funds to send tx. ..."
  { "replacement transaction underpriced", "underpriced" }, -- anvil, and hardhat's "Replacement transaction underpriced. ..."
  { "underpriced", "underpriced" },
  { "execution reverted", "reverted" },
  { "revert", "reverted" },
  { "max fee per gas less than block base fee", "underpriced" },  -- anvil
  { "is too low for the next block", "underpriced" },  -- hardhat: "Transaction maxFeePerGas (1) is too low for the next block, ..."
}

--- Stable code for a JSON-RPC error object.
function M.classify(rpc_code, message)
  local m = tostring(message or ""):lower()
  for _, p in ipairs(PATTERNS) do
    if m:find(p[1], 1, true) then return p[2] end
  end
  if rpc_code == 3 then return "reverted" end
  if rpc_code == -32005 or rpc_code == 429 or m:find("rate limit", 1, true) then return "rate_limited" end
  return "rpc_error"
end

local function fail(client, code, message, fields)
  fields = fields or {}
  fields.provider = client.name
  return nil, ferry.error(code, message, fields)
end

--- A client for one endpoint. opts: timeout (s), headers, max_bytes, name.
--- The client's `url` and `headers` print safely (M.url, M.hide): the full URL and the header
--- values are read only when a request goes out.
function M.http(url, opts)
  local full = M.reveal(url)
  if type(full) ~= "string" or not full:match("^https?://") then
    error(ferry.error("invalid_argument", ("rpc.http: url must be http(s)://..., got %s")
      :format(type(full) == "string" and (M.url_origin(full) or ("a string of %d characters"):format(#full)) or type(full))), 2)
  end
  opts = opts or {}
  local headers = HEADERS
  if opts.headers then
    headers = { ["Content-Type"] = "application/json" }
    for k, v in pairs(opts.headers) do headers[k] = M.hide(M.reveal(v), "[redacted]") end
  end
  return setmetatable({
    url = M.url(full),
    name = opts.name or M.redact_url(full),
    timeout = opts.timeout or M.DEFAULT_TIMEOUT,
    max_bytes = opts.max_bytes or DEFAULT_MAX_BYTES,
    headers = headers,
    next_id = 0,
    max_depth = opts.max_depth or 64,
  }, Client)
end

-- POST a body; returns the decoded reply or nil, err.
-- header values as the HTTP client wants them (plain strings), built once per client
local wire = setmetatable({}, { __mode = "k" })   -- client -> its headers, revealed
local function wire_headers(self)
  local h = wire[self]
  if not h then
    h = {}
    for k, v in pairs(self.headers) do h[k] = M.reveal(v) end
    wire[self] = h                    -- kept out of the client's fields
  end
  return h
end

function Client:post(body, timeout)
  local url = M.reveal(self.url)
  local status, text, hdrs = http.request(url, {
    method = "POST", body = body, headers = self.headers == HEADERS and HEADERS or wire_headers(self),
    timeout = timeout or self.timeout, max_bytes = self.max_bytes,
  })
  if not status then
    local err = text
    err.provider = self.name
    -- a transport message that quotes the URL shows its scheme://host:port instead
    if type(err.message) == "string" and err.message:find(url, 1, true) then
      err.message = err.message:gsub(url:gsub("%p", "%%%0"), (M.redact_url(url):gsub("%%", "%%%%")))
    end
    if err.transport == "too_large" then
      err.message = ("response larger than %d bytes"):format(self.max_bytes)
    end
    return nil, err
  end
  if status == 429 then
    local ra = tonumber(hdrs["retry-after"])
    return fail(self, "rate_limited", "HTTP 429 Too Many Requests", { http_status = 429, retry_after = ra })
  end
  if status >= 500 then
    return fail(self, "provider_down", ("HTTP %d"):format(status), { http_status = status })
  end
  if status < 200 or (status >= 300 and status < 400) then   -- redirects are not followed
    return fail(self, "bad_response", ("HTTP %d is not a JSON-RPC answer"):format(status), { http_status = status })
  end
  local reply, jerr = json.decode(text, self.max_depth)
  if reply == nil then
    local snippet = text:sub(1, 80):gsub("[%c]", " ")
    return fail(self, "bad_response", ("not a JSON-RPC reply (HTTP %d): %s; body starts %q")
      :format(status, jerr, snippet), { http_status = status })
  end
  if type(reply) ~= "table" then
    return fail(self, "bad_response", ("not a JSON-RPC reply (HTTP %d)"):format(status), { http_status = status })
  end
  return reply, status
end

local function rpc_error(self, e)
  if type(e) ~= "table" then
    return fail(self, "bad_response", "malformed JSON-RPC error member")
  end
  local msg = type(e.message) == "string" and e.message or "(no message)"
  local code = M.classify(e.code, msg)
  return fail(self, code, msg, { rpc_code = math.type(e.code) and e.code or nil, data = e.data })
end

--- call(method, params, opts) -> result | nil, err. A JSON null result is returned as nil
--- with no error (a receipt not yet mined, say): check `err` to tell the two apart.
function Client:call(method, params, opts)
  if type(method) ~= "string" then error("rpc call: method must be a string", 2) end
  if params ~= nil and type(params) ~= "table" then
    error(("rpc call %s: params must be an array (a table), got %s"):format(method, type(params)), 2)
  end
  self.next_id = self.next_id + 1
  local id = self.next_id
  local body = json.encode({ jsonrpc = "2.0", id = id, method = method, params = json.array(params or {}) })
  local reply, status = self:post(body, opts and opts.timeout)
  if not reply then return nil, status end
  if reply.jsonrpc == nil and reply[1] ~= nil then
    return fail(self, "bad_response", "expected one reply, got a batch")
  end
  if reply.error ~= nil then
    -- anvil answers malformed requests with id null; anything else must match
    if reply.id ~= id and reply.id ~= nil then
      return fail(self, "bad_response", ("reply id %s does not match request id %d"):format(tostring(reply.id), id))
    end
    return rpc_error(self, reply.error)
  end
  if reply.id ~= id then
    return fail(self, "bad_response", ("reply id %s does not match request id %d"):format(tostring(reply.id), id))
  end
  -- an answer is an HTTP 200 (a 4xx may carry an error object, never a result)
  if status ~= 200 then
    return fail(self, "bad_response", ("HTTP %d with a result is not an answer"):format(status), { http_status = status })
  end
  local result = reply.result
  if result == json.null then result = nil end
  return result
end

--- batch{{method, params}, ...} -> array of {result = v} | {error = err} in request order,
--- or nil, err when the whole batch failed.
function Client:batch(calls, opts)
  local reqs, ids = {}, {}
  for i, c in ipairs(calls) do
    self.next_id = self.next_id + 1
    ids[self.next_id] = i
    reqs[i] = { jsonrpc = "2.0", id = self.next_id, method = c[1] or c.method, params = json.array(c[2] or c.params or {}) }
  end
  if #reqs == 0 then return {} end
  local reply, status = self:post(json.encode(reqs), opts and opts.timeout)
  if not reply then return nil, status end
  if reply[1] == nil then
    if reply.error then return rpc_error(self, reply.error) end
    return fail(self, "bad_response", "expected a batch reply array")
  end
  local out = {}
  for _, r in ipairs(reply) do
    local i = type(r) == "table" and ids[r.id]
    if not i then
      return fail(self, "bad_response", ("batch reply has an unknown id %s"):format(tostring(type(r) == "table" and r.id)))
    end
    if out[i] then return fail(self, "bad_response", "batch reply repeats an id") end
    if r.error ~= nil then
      local _, e = rpc_error(self, r.error)
      out[i] = { error = e }
    else
      local v = r.result
      if v == json.null then v = nil end
      out[i] = { result = v }
    end
  end
  for i = 1, #reqs do
    if not out[i] then return fail(self, "bad_response", ("batch reply is missing request %d"):format(i)) end
  end
  return out
end

return M
