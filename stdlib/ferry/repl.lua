--- ferry.repl -- the interactive prompt: `ferry repl`.
---
--- Each entry runs as its own task on the engine's loop, so it can wait on I/O
--- (`eth.chain"local":block_number()`). Expressions print their values (`=expr` too);
--- incomplete input continues on the next line; Ctrl-C cancels a running entry; history is
--- kept in <data_dir>/history, except entries holding anything shaped like a private key. Globals set at the prompt live in the session, not in _G.
--- Tab completes globals, fields and methods (M.complete), in the local REPL and over attach.
--- Names of ferry modules (eth, workflow, rpc, json ...) resolve on first use.
local ferry = require "ferry"
local term = require "ferry.core.term"
local proc = require "ferry.core.proc"
local pretty = require "ferry.pretty"

local M = {}

local LAZY = { eth = "ferry.eth", workflow = "ferry.workflow", rpc = "ferry.rpc", sol = "ferry.sol",
               pretty = "ferry.pretty", config = "ferry.config" }

--- session_env() -> a fresh env for one session: globals set there stay there.
function M.session_env()
  return setmetatable({ ferry = ferry, json = ferry.json }, { __index = function(t, k)
    local v = _G[k]
    if v ~= nil then return v end
    local mod = LAZY[k]
    if mod then
      local ok, m = pcall(require, mod)
      if ok then rawset(t, k, m); return m end
    end
  end })
end

--- complete(prefix, env) -> sorted candidates for the last name in prefix: globals, fields
--- (`ferry.po` -> `ferry.policy`) and methods (`chain:bl` -> `chain:block_number`), read from
--- the session env (metatables' __index tables too).
function M.complete(prefix, env)
  local head, path, sep, word = prefix:match("^(.-)([%w_%.:]-)([%.:]?)([%w_]*)$")
  if not head then return {} end
  local obj = env
  local base = ""
  if sep ~= "" then
    base = path .. sep
    for part in path:gmatch("[^%.:]+") do
      local ok, v = pcall(function() return obj[part] end)
      if not ok or v == nil then return {} end
      obj = v
    end
  else
    word = path .. word
  end
  local out, seen = {}, {}
  local function scan(t, depth)
    if type(t) ~= "table" or depth > 4 then return end
    for k, v in pairs(t) do
      if type(k) == "string" and k:sub(1, #word) == word and not seen[k] and k:match("^[%a_][%w_]*$")
         and (sep ~= ":" or type(v) == "function") then
        seen[k] = true
        out[#out + 1] = head .. base .. k
      end
    end
    local mt = getmetatable(t)
    if type(mt) == "table" and type(mt.__index) == "table" then scan(mt.__index, depth + 1) end
  end
  scan(obj, 0)
  if obj == env then scan(_G, 1) end
  if type(obj) == "string" then scan(string, 1) end
  table.sort(out)
  return out
end

--- Compile one entry: "return <src>" first (so bare expressions print), then as statements.
--- Returns fn | nil, err, incomplete.
function M.compile(src, env)
  if src:sub(1, 1) == "=" then src = "return " .. src:sub(2) end
  local fn = load("return " .. src .. ";", "=repl", "t", env)
  if fn then return fn end
  local err
  fn, err = load(src, "=repl", "t", env)
  if fn then return fn end
  if err:find("<eof>$") then return nil, err, true end
  return nil, err, false
end

local function show(out, ...)
  local n = select("#", ...)
  if n == 0 then return end
  local parts = {}
  for i = 1, n do parts[i] = pretty.render((select(i, ...))) end
  out(table.concat(parts, "\t") .. "\n")
end

--- Evaluate one complete entry as a task, waiting for it; Ctrl-C cancels it.
function M.eval(src, env, out)
  out = out or function(s) io.stdout:write(s); io.stdout:flush() end
  local fn, err = M.compile(src, env)
  if not fn then out(err .. "\n"); return false end
  local t = ferry.spawn(function()
    -- Ctrl-C stops this entry even if it never waits (while true do end)
    term.watch(coroutine.running())
    local r = table.pack(xpcall(fn, function(e)
      if type(e) == "table" and e.code then return e end
      if type(e) == "string" and e:match("^[^\n]*interrupted$") then return "interrupted" end
      return debug.traceback(tostring(e), 2)
    end))
    term.watch()
    return r
  end)
  term.interrupts()
  while true do
    local ok, r = t:wait(0.1)
    if ok == nil then -- wait timed out: check for Ctrl-C
      if term.interrupts() > 0 then
        term.watch()
        t:cancel("interrupted")
        out("interrupted\n")
        return false
      end
    elseif ok then
      if r[1] then show(out, table.unpack(r, 2, r.n)); return true end
      local e = r[2]
      out(("error: %s\n"):format(type(e) == "table" and pretty.render(e) or tostring(e)))
      return false
    else
      out(("error: %s\n"):format(tostring(r)))
      return false
    end
  end
end

function M.run()
  local env = M.session_env()
  local history
  local okc, cfg = pcall(ferry.config)
  if not okc then io.stderr:write(tostring(cfg), "\n") end
  if term.isatty(0) then
    M.interactive = true                       -- Ctrl-C is the REPL's (ferry.shutdown stays out)
    local dir = okc and cfg.data_dir or ".ferry"
    -- a child mkdir the task waits on, not os.execute: nothing blocks the loop
    local p = proc.spawn{ "mkdir", "-p", "--", dir }
    if p then p:wait() end
    history = dir .. "/history"
    term.load_history(history)
    io.stdout:write("ferry repl — Lua 5.4 on the engine's loop. Ctrl-D to leave.\n")
  end
  term.complete(function(_, word) return M.complete(word, env) end)
  local buf = nil
  while true do
    local line = term.readline(buf and ">> " or "> ")
    if line == nil then break end
    buf = buf and (buf .. "\n" .. line) or line
    if buf:match("^%s*$") then
      buf = nil
    else
      local fn, _, incomplete = M.compile(buf, env)
      if fn or not incomplete then
        -- an entry with something shaped like a private key in it is not kept: the history
        -- is a plain file (ferry.redact says what that shape is)
        if history and ferry.redact(buf) == buf then term.add_history(buf) end
        M.eval(buf, env)
        buf = nil
      end
    end
  end
  if history then term.save_history(history) end
  if term.isatty(0) then io.stdout:write("\n") end
end

--- attach(path): `ferry repl --attach PATH`, the client of ferry.repl.server. Each entry is
--- evaluated inside the running engine; Ctrl-C interrupts the running evaluation there (and
--- leaves the engine running); Ctrl-D leaves. -> exits 1 when it cannot attach.
function M.attach(path)
  local attach = require "ferry.core.attach"
  local conn = attach.connect(path)
  local function fail(msg)
    io.stderr:write("ferry repl: ", msg, "\n")
    io.stderr:flush()
    os.exit(1)
  end
  local ok, err = conn:connected()
  if not ok then fail(("cannot attach to %s: %s"):format(path, tostring(err.message or err))) end
  local seq = 0
  local function ask(frame)
    seq = seq + 1
    frame.id = seq
    conn:write(ferry.json.encode(frame) .. "\n")
    while true do
      local line = conn:read_line()
      if not line then fail("the engine closed the connection") end
      local r = ferry.json.decode(line)
      if r.id == nil and r.ok == false then fail(r.err) end     -- refused
      if r.id == seq then return r end
    end
  end
  ask({ op = "hello" })
  -- Ctrl-C: an interrupt for the evaluation in the engine, not the end of this client
  local int = require("ferry.core.signal").watch("INT")
  local busy = false
  ferry.spawn(function()
    while int:wait() do
      if busy then conn:write('{"op":"interrupt"}\n') end
    end
  end):daemon()
  local tty = term.isatty(0)
  if tty then io.stdout:write(("ferry repl — attached to %s. Ctrl-D to leave.\n"):format(path)) end
  -- Tab: the engine's own names, asked for there (libedit waits on the answer)
  term.complete(function(_, word)
    local answer = conn:ask_now(ferry.json.encode({ op = "complete", prefix = word, id = 0 }) .. "\n", 300)
    local okj, r = pcall(ferry.json.decode, answer or "")
    return okj and type(r) == "table" and r.complete or {}
  end)
  local buf
  while true do
    local line = term.readline(buf and ">> " or "attached> ")
    if line == nil then break end
    buf = buf and (buf .. "\n" .. line) or line
    if buf:match("^%s*$") then
      buf = nil
    else
      local _, _, incomplete = M.compile(buf, {})
      if not incomplete then
        busy = true
        local r = ask({ op = "eval", src = buf })
        busy = false
        buf = nil
        if r.out and r.out ~= "" then io.stdout:write(r.out) end
        if r.ok then
          if r.ret then io.stdout:write(r.ret, "\n") end
        else
          io.stdout:write("error: ", tostring(r.err), "\n")
        end
        io.stdout:flush()
      end
    end
  end
  int:close()
  conn:close()
  if tty then io.stdout:write("\n") end
end

return M
