--- ferry.repl -- the interactive prompt: `ferry repl`.
---
--- Each entry runs as its own task on the engine's loop, so it can wait on I/O
--- (`eth.chain"local":block_number()`). Expressions print their values (`=expr` too);
--- incomplete input continues on the next line; Ctrl-C cancels a running entry; history is
--- kept in <data_dir>/history, except entries holding anything shaped like a private key. Globals set at the prompt live in the session, not in _G.
--- Names of ferry modules (eth, workflow, rpc, json ...) resolve on first use.
local ferry = require "ferry"
local term = require "ferry.core.term"
local proc = require "ferry.core.proc"
local pretty = require "ferry.pretty"

local M = {}

local LAZY = { eth = "ferry.eth", workflow = "ferry.workflow", rpc = "ferry.rpc", sol = "ferry.sol",
               pretty = "ferry.pretty", config = "ferry.config" }

local function session_env()
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
  local env = session_env()
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

return M
