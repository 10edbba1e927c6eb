--- ferry.repl.server -- the REPL socket a running engine serves (`--repl PATH`, `ferry serve`,
--- config repl.socket); `ferry repl --attach PATH` is its client (ferry.repl.attach).
---
---   local srv = require("ferry.repl.server").start("/run/ferry/repl.sock")
---   srv:close()
---
--- The socket is 0600 in a 0700 directory of this user, and a peer of another uid is
--- refused (ferry.core.attach). Frames are lines of JSON: {op = "hello" | "eval" | "interrupt" |
--- "complete", id, src | prefix} -> {id, ok, out, ret | err, incomplete} | {id, complete}.
--- Each eval runs as a task on the engine's loop, in a session env of its own (`x = 1` stays
--- in the session; print goes to the client), so it can wait on I/O; an interrupt, or an
--- instruction budget, stops one that never yields, and the engine goes on. Besides the
--- globals a session has pending() and queued(): the sends in the pipeline, and those a policy
--- holds.
local ferry = require "ferry"
local attach = require "ferry.core.attach"
local pretty = require "ferry.pretty"
local repl = require "ferry.repl"

local M = {}

--- Instructions an evaluation may run without yielding before it is stopped.
M.BUDGET = 2000000000

local function reply(conn, t) conn:write(ferry.json.encode(t) .. "\n") end

local function render(r, from)
  local parts = {}
  for i = from, r.n do parts[#parts + 1] = pretty.render(r[i]) end
  return table.concat(parts, "\t")
end

-- Sends in the pipeline, as the steps' events tell them (ferry.eth.events): id -> its last
-- event. A send leaves at its last step (track) or its first error.
local inflight = {}
local ENDS = {}   -- the outcomes that end a send: the stable error codes (DESIGN.md), "error"
for code in ("timeout cancelled rate_limited provider_down rpc_error bad_response insufficient_funds reverted "
  .. "nonce_too_low nonce_too_high underpriced policy_rejected queued_timeout simulation_failed store_unavailable "
  .. "invalid_argument error"):gmatch("%S+") do ENDS[code] = true end
local function follow(ev)
  if ev.step == "track" or ENDS[ev.outcome] then
    inflight[ev.id] = nil
    return
  end
  local s = inflight[ev.id] or { id = ev.id, since = ev.at }
  s.last = ev
  if ev.step:match("^policy:") then s.queued = ev.outcome == "queue" and ev or nil end
  inflight[ev.id] = s
end

--- pending() -> the sends in the pipeline now: {id, step, outcome, nonce, hash, age}, oldest
--- first; queued() -> those a policy holds, with the policy and its reason.
function M.pending()
  local list = {}
  for _, s in pairs(inflight) do
    list[#list + 1] = { id = s.id, step = s.last.step, outcome = s.last.outcome, nonce = s.last.nonce,
                        hash = s.last.hash, age = ferry.now() - s.since }
  end
  table.sort(list, function(a, b) return a.age > b.age end)
  return list
end
function M.queued()
  local list = {}
  for _, s in pairs(inflight) do
    if s.queued then
      list[#list + 1] = { id = s.id, policy = s.queued.policy, reason = s.queued.reason, age = ferry.now() - s.since }
    end
  end
  table.sort(list, function(a, b) return a.age > b.age end)
  return list
end

local function session_env(out)
  local env = repl.session_env()
  rawset(env, "pending", M.pending)
  rawset(env, "queued", M.queued)
  rawset(env, "print", function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    out[#out + 1] = table.concat(parts, "\t") .. "\n"
  end)
  return env
end

-- One evaluation: compiled in the session's env, run guarded, its answer written back.
local function evaluate(conn, env, out, f)
  local fn, err, incomplete = repl.compile(tostring(f.src or ""), env)
  if not fn then return reply(conn, { id = f.id, ok = false, err = err, incomplete = incomplete or nil }) end
  for i = #out, 1, -1 do out[i] = nil end
  local r = table.pack(attach.pcall(conn, fn, M.BUDGET))
  local printed = table.concat(out)
  if r[1] then
    reply(conn, { id = f.id, ok = true, out = printed, ret = r.n > 1 and render(r, 2) or nil })
  else
    local e = r[2]
    reply(conn, { id = f.id, ok = false, out = printed, err = type(e) == "table" and pretty.render(e) or tostring(e) })
  end
end

local function session(conn, srv)
  local out = {}
  local env = session_env(out)
  local running
  local _ <close> = setmetatable({}, { __close = function()
    if running and running:status() ~= "done" then running:cancel() end
    conn:close()
    srv.sessions = srv.sessions - 1
  end })
  srv.sessions = srv.sessions + 1
  while true do
    local line = conn:read_line()
    if not line then return end
    local ok, f = pcall(ferry.json.decode, line)
    if not ok or type(f) ~= "table" then
      reply(conn, { ok = false, err = "not a frame (one JSON object per line)" })
    elseif f.op == "hello" then
      reply(conn, { id = f.id, ok = true, engine = "ferry" })
    elseif f.op == "interrupt" then
      -- one that waits on I/O is cancelled here; one that never yields was stopped by the guard
      if running and (running:status() == "waiting" or running:status() == "ready") then
        running:cancel("interrupted")
        reply(conn, { id = f.id, ok = false, err = "interrupted" })
      end
    elseif f.op == "eval" then
      local st = running and running:status()
      if st == "waiting" or st == "ready" or st == "running" then
        reply(conn, { id = f.id, ok = false, err = "busy: an evaluation is running (interrupt it first)" })
      else
        running = ferry.spawn(evaluate, conn, env, out, f)
        running:daemon()
      end
    elseif f.op == "complete" then
      reply(conn, { id = f.id, complete = repl.complete(tostring(f.prefix or ""), env) })
    else
      reply(conn, { id = f.id, ok = false, err = ("unknown op %q"):format(tostring(f.op)) })
    end
  end
end

--- start(path) -> server {path, close(), stats()}; raises when the socket cannot be made.
function M.start(path)
  if type(path) ~= "string" or path == "" then ferry.raise("invalid_argument", "repl server: expects a socket path") end
  local sock, err = attach.listen(path)
  if not sock then ferry.raise(err.code, err.message, { path = path }) end
  require "ferry.policy"                         -- ferry.policy.status() in every session
  if not M.following then M.following = require("ferry.eth.events").on_step(follow) end
  local srv = { path = path, sock = sock, sessions = 0 }
  srv.task = ferry.spawn(function()
    while true do
      local conn = sock:accept()
      if not conn then return end
      ferry.spawn(session, conn, srv):daemon()
    end
  end)
  srv.task:daemon()
  function srv.close() sock:close(); os.remove(path) end
  function srv.stats() return { path = path, sessions = srv.sessions, refused = sock.refused } end
  ferry.register_stats("repl_server", srv.stats)
  ferry.log.info("REPL socket open", { path = path })
  return srv
end

return M
