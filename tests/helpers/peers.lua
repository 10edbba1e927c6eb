-- tests/helpers/peers.lua -- start the real test peers on free ports, stop them by PID.
--
--   local peers = require "helpers.peers"
--   local anvil = peers.anvil{"--no-mining"}        -- {url, port, pid, proc, stop = fn, rpc = client}
--   local proxy = peers.proxy(anvil.url)            -- fault proxy: proxy:fault{mode = "500"}
--   anvil:stop()
-- Binaries come from tests/peers/node_modules (make peers / npm ci there).
local ferry = require "ferry"
local proc = require "ferry.core.proc"
local rpc = require "ferry.rpc"
local http = require "ferry.core.http"

local M = {}

local root = os.getenv("FERRY_PEERS") or "tests/peers"
M.bin = {
  anvil = os.getenv("ANVIL") or (root .. "/node_modules/.bin/anvil"),
  cast = os.getenv("CAST") or (root .. "/node_modules/.bin/cast"),
  node = os.getenv("NODE") or "node",
}

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

function M.have(name) return name == "node" or exists(M.bin[name]) end

-- Read lines until one matches pattern; returns the captures, or raises with the output.
local function await_line(p, pattern, timeout, what)
  local deadline = ferry.now() + timeout
  local seen = {}
  while true do
    local left = deadline - ferry.now()
    if left <= 0 then break end
    local line, err = p:read_line(left)
    if not line then
      error(("%s did not start (%s); output:\n%s\n%s"):format(what, err and err.code or "?",
        table.concat(seen, "\n"), p:read_err()), 0)
    end
    seen[#seen + 1] = line
    local a, b = line:match(pattern)
    if a then return a, b end
  end
  p:kill("KILL")
  error(("%s did not start within %ss"):format(what, timeout), 0)
end

local Peer = {}
Peer.__index = Peer

function Peer:stop()
  if self.proc and self.proc:running() then
    self.proc:kill("TERM")
    local code = self.proc:wait(3)
    if code == nil then self.proc:kill("KILL"); self.proc:wait(3) end
  end
  if self.proc then self.proc:close() end
  self.proc = nil
end
Peer.__close = Peer.stop

local function proc_state(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local st = f:read("a"):match("State:%s*(%a)")
  f:close()
  return st
end

-- SIGSTOP takes effect asynchronously (every thread must reach a stop point): wait until
-- the kernel reports the process stopped, or a frozen peer may still answer once.
function Peer:freeze()
  self.proc:kill("STOP")
  local deadline = ferry.now() + 2
  while proc_state(self.pid) ~= "T" and ferry.now() < deadline do ferry.sleep(0.001) end
end
function Peer:thaw() self.proc:kill("CONT") end

--- anvil on a free port. extra: more command-line flags.
function M.anvil(extra)
  assert(M.have("anvil"), "anvil not installed: run `make peers`")
  local argv = { M.bin.anvil, "--host", "127.0.0.1", "--port", "0" }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  argv.stdout, argv.stderr = "pipe", "pipe"
  local p = assert(proc.spawn(argv))
  local port = await_line(p, "Listening on 127%.0%.0%.1:(%d+)", 20, "anvil")
  local url = "http://127.0.0.1:" .. port
  local self = setmetatable({ proc = p, pid = p:pid(), port = tonumber(port), url = url,
                              ws = "ws://127.0.0.1:" .. port }, Peer)
  self.rpc = rpc.http(url, { timeout = 10, name = "anvil" })
  -- drain anvil's stdout so its pipe never fills
  self.drain = ferry.spawn(function() while p:running() and p:read_line() do end end):detach()
  return self
end

local Proxy = setmetatable({}, { __index = Peer })
Proxy.__index = Proxy
Proxy.__close = Peer.stop

--- the fault proxy in front of target_url
function M.proxy(target_url)
  local p = assert(proc.spawn{ M.bin.node, root .. "/faultproxy.js", "--target", target_url, "--port", "0",
                               stdout = "pipe", stderr = "pipe" })
  local port = await_line(p, "listening on 127%.0%.0%.1:(%d+)", 20, "faultproxy")
  local admin = await_line(p, "admin on 127%.0%.0%.1:(%d+)", 5, "faultproxy admin")
  local self = setmetatable({ proc = p, pid = p:pid(), port = tonumber(port), url = "http://127.0.0.1:" .. port,
                              admin = "http://127.0.0.1:" .. admin }, Proxy)
  self.drain = ferry.spawn(function() while p:running() and p:read_line() do end end):detach()
  return self
end

local function admin(self, method, path, body)
  local status, text = http.request(self.admin .. path, { method = method, body = body, timeout = 5,
    headers = { ["Content-Type"] = "application/json" } })
  assert(status == 200, ("proxy admin %s %s: %s %s"):format(method, path, tostring(status), tostring(text)))
  return ferry.json.decode(text)
end

function Proxy:fault(f) return admin(self, "POST", "/__fault", ferry.json.encode(f)) end
function Proxy:stats(window_ms)
  return admin(self, "GET", "/__stats" .. (window_ms and ("?window_ms=" .. window_ms) or ""))
end
function Proxy:reset_stats() return admin(self, "POST", "/__reset_stats", "{}") end

return M
