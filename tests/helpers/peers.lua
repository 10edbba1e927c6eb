-- tests/helpers/peers.lua -- start the real test peers on free ports, stop them by PID.
--
--   local peers = require "helpers.peers"
--   local anvil = peers.anvil{"--no-mining"}        -- {url, port, pid, proc, stop = fn, rpc = client}
--   local hh = peers.hardhat()                       -- hardhat's node: the same object, ~10 s to start
--   local proxy = peers.proxy(anvil.url)            -- fault proxy: proxy:fault{mode = "500"}
--   anvil:stop()
--   local r = peers.redis{ password = "pw" }       -- {url, port, pid, stop(), signal(name), restart()}
-- Binaries come from tests/peers/node_modules (make peers / npm ci there).
-- Both nodes answer the same dev calls under one name (node:mine(), node:automine(false),
-- node:next_base_fee(wei), node:drop(hash), node:snapshot(), node:revert(id)): see DEV below.
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
  hardhat = os.getenv("HARDHAT") or (root .. "/node_modules/.bin/hardhat"),
  redis = os.getenv("REDIS_SERVER") or "redis-server",
}

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

function M.have(name)
  if name == "node" then return true end
  if name == "redis" then
    for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
      if exists(dir .. "/" .. M.bin.redis) then return true end
    end
    return exists(M.bin.redis)
  end
  if name == "hardhat" and not exists(root .. "/hardhat.config.js") then return false end
  return M.bin[name] ~= nil and exists(M.bin[name])
end

-- Read lines until one matches pattern; returns the captures, or nil and what went wrong
-- (with the output so far). A process that did not start in time is killed.
local function try_line(p, pattern, timeout, what)
  local deadline = ferry.now() + timeout
  local seen = {}
  while true do
    local left = deadline - ferry.now()
    if left <= 0 then break end
    local line, err = p:read_line(left)
    if not line then
      if err and err.code == "timeout" then break end
      return nil, ("%s did not start (%s); output:\n%s\n%s"):format(what, err and err.code or "?",
        table.concat(seen, "\n"), p:read_err())
    end
    seen[#seen + 1] = line
    local a, b = line:match(pattern)
    if a then return a, b end
  end
  p:kill("KILL")
  return nil, ("%s did not start within %ss; output:\n%s\n%s"):format(what, timeout,
    table.concat(seen, "\n"), p:read_err())
end

-- The same, raising what went wrong.
local function await_line(p, pattern, timeout, what)
  local a, b = try_line(p, pattern, timeout, what)
  if a == nil then error(b, 0) end
  return a, b
end

local Peer = {}
Peer.__index = Peer

function Peer:stop()
  if self.proc and self.proc:running() then
    self.proc:kill("TERM")
    local code = self.proc:wait(3)
    if code == nil then self.proc:kill("KILL"); self.proc:wait(3) end
  end
  -- let the reader of its output see the end before the process handle is closed (closing
  -- it under a parked read_line leaves the read pointing at freed memory)
  if self.drain then self.drain:wait(3) end
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
  self.kind = "anvil"
  return self
end

-- Is anything listening on 127.0.0.1:port? (a refused connection says no)
local function port_taken(port)
  local status, err = http.request(("http://127.0.0.1:%d/"):format(port), { method = "GET", timeout = 1 })
  return status ~= nil or (type(err) == "table" and err.code ~= "provider_down")
end

--- hardhat's node (tests/peers, hardhat 2) on a free port. It cannot be given port 0, so a
--- port is picked at random from 20000-59999, skipped if something answers there, and
--- picked again if the node then fails to listen on it (EADDRINUSE: another process won
--- the race). It takes about 10 s to start: share one per spec file (evm_snapshot /
--- evm_revert between tests).
function M.hardhat(timeout)
  assert(M.have("hardhat"), "hardhat not installed: run `make peers`")
  timeout = timeout or 40
  local failures = {}
  for _ = 1, 5 do
    local port
    repeat port = math.random(20000, 59999) until not port_taken(port)
    -- the launcher resolves hardhat from the folder it runs in: run it from tests/peers
    local bin = M.bin.hardhat
    if bin:sub(1, #root + 1) == root .. "/" then bin = bin:sub(#root + 2) end
    -- no colours: with CI set, hardhat's output library colours even a pipe ("\27[32mStarted ...")
    local p = assert(proc.spawn{ bin, "node", "--hostname", "127.0.0.1", "--port", tostring(port),
                                 cwd = root, stdout = "pipe", stderr = "pipe",
                                 env = { NO_COLOR = "1", FORCE_COLOR = "0" } })
    local got, why = try_line(p, "Started HTTP and WebSocket JSON%-RPC server at http://[%d.]+:(%d+)/", timeout, "hardhat node")
    if got then
      local url = "http://127.0.0.1:" .. port
      local self = setmetatable({ proc = p, pid = p:pid(), port = port, url = url, kind = "hardhat",
                                  ws = "ws://127.0.0.1:" .. port }, Peer)
      self.rpc = rpc.http(url, { timeout = 10, name = "hardhat" })
      -- it logs every call on stdout: drain it so its pipe never fills
      self.drain = ferry.spawn(function() while p:running() and p:read_line() do end end):detach()
      return self
    end
    if p:running() then p:kill("KILL") end
    p:wait(3)
    local in_use = (why .. p:read_err()):find("EADDRINUSE", 1, true)
    p:close()
    failures[#failures + 1] = why
    if not in_use then break end
  end
  error(failures[#failures] .. (#failures > 1 and ("\n(%d attempts)"):format(#failures) or ""), 0)
end

-- Dev calls by what they do, as each node spells them. A missing entry: the node cannot.
local DEV = {
  anvil = { mine = { "evm_mine" }, automine = { "evm_setAutomine" }, drop = { "anvil_dropTransaction" },
            next_base_fee = { "anvil_setNextBlockBaseFeePerGas" }, snapshot = { "evm_snapshot" },
            revert = { "evm_revert" } },
  hardhat = { mine = { "evm_mine" }, automine = { "evm_setAutomine" }, drop = { "hardhat_dropTransaction" },
              next_base_fee = { "hardhat_setNextBlockBaseFeePerGas" }, snapshot = { "evm_snapshot" },
              revert = { "evm_revert" } },
}

-- one dev call; raises with the node's answer when it fails
local function dev(self, what, params)
  local m = assert(DEV[self.kind] and DEV[self.kind][what], ("%s has no dev call for %s"):format(self.kind, what))[1]
  local r, err = self.rpc:call(m, params or {})
  if err then error(("%s %s: %s"):format(self.kind, m, tostring(err)), 2) end
  return r
end

function Peer:mine() return dev(self, "mine") end
function Peer:automine(on) return dev(self, "automine", { on }) end
--- the next block's base fee (wei: an integer or a ferry.U256), as a hex quantity
function Peer:next_base_fee(wei)
  return dev(self, "next_base_fee", { math.type(wei) == "integer" and ("0x%x"):format(wei) or wei:tohex() })
end
--- forget a pending transaction -> true when the node had it
function Peer:drop(hash)
  local r = dev(self, "drop", { hash })
  return r == true or r == hash
end
function Peer:snapshot() return dev(self, "snapshot") end
--- back to a snapshot (which is used up: take another to come back again), pool included:
--- hardhat's evm_revert restores its pool, anvil's keeps the transactions pending and queued
--- since (a queued nonce 5 would be mined in a later test), so anvil's pool is emptied.
function Peer:revert(id)
  local r = dev(self, "revert", { id })
  if r ~= true then error(("%s evm_revert %s: answered %s"):format(self.kind, tostring(id), tostring(r)), 2) end
  if self.kind == "anvil" then
    local _, err = self.rpc:call("anvil_dropAllTransactions", {})
    if err then error("anvil anvil_dropAllTransactions: " .. tostring(err), 2) end
  end
end

local Redis = setmetatable({}, { __index = Peer })
Redis.__index = Redis
Redis.__close = Peer.stop

-- Start redis-server on self.port; nil and why when it did not (the port was taken, ...).
local function redis_start(self)
  local argv = { M.bin.redis, "--port", tostring(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--enable-debug-command", "local", "--logfile", "" }
  if self.password then argv[#argv + 1] = "--requirepass"; argv[#argv + 1] = self.password end
  for _, a in ipairs(self.extra) do argv[#argv + 1] = a end
  argv.stdout, argv.stderr = "pipe", "pipe"
  local p = assert(proc.spawn(argv))
  local got, why = try_line(p, "(Ready to accept connections)", 10, "redis-server")
  if not got then
    if p:running() then p:kill("KILL") end
    p:wait(3)
    p:close()
    return nil, why
  end
  self.proc, self.pid = p, p:pid()
  self.drain = ferry.spawn(function() while p:running() and p:read_line() do end end):detach()
  return true
end

--- redis-server on a free port, no persistence, DEBUG allowed (DEBUG SLEEP for stalls).
--- opts: { password = "pw", "--more", "flags" }. The port is picked at random (redis cannot
--- be given port 0 and report it) and picked again when it turns out taken.
function M.redis(opts)
  opts = opts or {}
  assert(M.have("redis"), "redis-server not installed: run `make deps`")
  local extra = {}
  for _, a in ipairs(opts) do extra[#extra + 1] = a end
  local self = setmetatable({ password = opts.password, extra = extra, kind = "redis" }, Redis)
  local why
  for _ = 1, 5 do
    repeat self.port = math.random(20000, 59999) until not port_taken(self.port)
    local ok
    ok, why = redis_start(self)
    if ok then
      self.url = ("redis://%s127.0.0.1:%d"):format(self.password and (":" .. self.password .. "@") or "", self.port)
      return self
    end
    if not why:find("in use", 1, true) then break end
  end
  error(why, 0)
end

--- signal("STOP" | "CONT" | "KILL" | ...): STOP waits until the kernel reports it stopped.
function Redis:signal(name)
  if name == "STOP" then return self:freeze() end
  self.proc:kill(name)
  if name == "KILL" then self.proc:wait(3) end
end

--- stop it (if it runs) and start it again on the same port: with no persistence, empty.
function Redis:restart()
  self:stop()
  for _ = 1, 50 do
    local ok, why = redis_start(self)
    if ok then return self end
    if not why:find("in use", 1, true) then error(why, 0) end
    ferry.sleep(0.1) -- the old socket may linger an instant
  end
  error("redis-server could not get its port back: " .. self.port, 0)
end
--- The Solana peer (tests/peers/solana.js: litesvm behind JSON-RPC, supervised) on a free port.
--- opts: slot_ms (default 50), valid_blocks (a blockhash's life in blocks, default 150).
--- peer:advance(n), peer:expire() (every blockhash so far expires), peer:fault{mode =, count =,
--- slots =}, peer:priority_fees{...}, peer:stats(); peer.rpc is a ferry.rpc client.
local Sol = setmetatable({}, { __index = Peer })
Sol.__index = Sol
Sol.__close = Peer.stop

function M.solana(opts)
  opts = opts or {}
  local p = assert(proc.spawn{ M.bin.node, root .. "/solana.js", "--port", "0", "--slot-ms", tostring(opts.slot_ms or 50),
                               "--valid-blocks", tostring(opts.valid_blocks or 150), stdout = "pipe", stderr = "pipe" })
  local port = await_line(p, "listening on 127%.0%.0%.1:(%d+)", 30, "solana peer")
  local url = "http://127.0.0.1:" .. port
  local self = setmetatable({ proc = p, pid = p:pid(), port = tonumber(port), url = url, kind = "solana" }, Sol)
  self.rpc = rpc.http(url, { timeout = 10, name = "solana" })
  self.restarts = 0
  self.drain = ferry.spawn(function()
    while p:running() do
      local line = p:read_line()
      if not line then break end
      if line:find("worker restarted", 1, true) then self.restarts = self.restarts + 1 end
    end
  end):detach()
  return self
end

local function sol_admin(self, method, params)
  local r, err = self.rpc:call(method, params or {})
  if err then error(("solana peer %s: %s"):format(method, tostring(err)), 2) end
  return r
end
function Sol:advance(n) return sol_admin(self, "peer_advanceSlots", { n or 1 }) end
function Sol:expire() return sol_admin(self, "peer_expireBlockhashes") end
function Sol:fault(f) return sol_admin(self, "peer_fault", { f }) end
function Sol:priority_fees(list) return sol_admin(self, "peer_setPrioritizationFees", { ferry.json.array(list) }) end
function Sol:stats() return sol_admin(self, "peer_stats") end
function Sol:airdrop(addr, lamports) return sol_admin(self, "requestAirdrop", { addr, lamports }) end

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

--- A TCP proxy (tests/peers/tcpproxy.js) in front of host:port: tcp:set("hang") is a
--- partition (connections stay open, nothing is forwarded), "pass" heals it, "reset" drops
--- every connection. tcp.port is where clients connect.
local Tcp = setmetatable({}, { __index = Peer })
Tcp.__index = Tcp
Tcp.__close = Peer.stop

function M.tcp_proxy(target)
  local p = assert(proc.spawn{ M.bin.node, root .. "/tcpproxy.js", "--target", target, stdout = "pipe", stderr = "pipe" })
  local port = await_line(p, "listening on 127%.0%.0%.1:(%d+)", 20, "tcpproxy")
  local admin = await_line(p, "admin on 127%.0%.0%.1:(%d+)", 5, "tcpproxy admin")
  local self = setmetatable({ proc = p, pid = p:pid(), port = tonumber(port), admin = "http://127.0.0.1:" .. admin }, Tcp)
  self.drain = ferry.spawn(function() while p:running() and p:read_line() do end end):detach()
  return self
end

function Tcp:set(mode)
  local status, text = http.request(self.admin .. "/" .. mode, { method = "POST", body = "", timeout = 5 })
  assert(status == 200, ("tcpproxy %s: %s %s"):format(mode, tostring(status), tostring(text)))
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
