--- ferry.boot -- what the engine runs before any script: user coroutines that forward
--- engine waits, an orderly os.exit, and the main task.
local task = require "ferry.core.task"

local M = { options = {} }

local YIELD, EXIT = task.YIELD_TAG, task.EXIT_TAG
local raw_resume, raw_yield, raw_create = coroutine.resume, coroutine.yield, coroutine.create
local raw_isyieldable = coroutine.isyieldable
local pack, unpack = table.pack, table.unpack

-- An engine wait inside a user coroutine (a coroutine.wrap iterator, say) yields the engine
-- tag. Resuming it must not hand the tag to the user: park the enclosing task instead and
-- feed the results back in (STYLE.md 3.6, "User coroutines").
local function forward(co, r)
  while r[1] and (r[2] == YIELD or r[2] == EXIT) and coroutine.status(co) == "suspended" do
    if not raw_isyieldable() then
      return false, "ferry: an engine wait inside a coroutine resumed from outside any task"
    end
    r = pack(raw_resume(co, raw_yield(r[2])))
  end
  return unpack(r, 1, r.n)
end

function coroutine.resume(co, ...)
  return forward(co, pack(raw_resume(co, ...)))
end

function coroutine.wrap(fn)
  local co = raw_create(fn)
  return function(...)
    local r = pack(forward(co, pack(raw_resume(co, ...))))
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end

-- os.exit(code) stops the loop and the engine shuts down in order: tasks are cancelled
-- (their <close> variables run), handles closed, then the state. Busted calls os.exit too.
local raw_exit = os.exit
function os.exit(code, close)
  if code == nil then code = 0 end
  task.exit(code)
  -- only reached outside a task (a plain callback): nothing to unwind, stop right here
  if not task.current() then return end
  raw_exit(code, close)
end

-- Where the engine's own Lua lives ("@.../stdlib/"): its frames are not the script's.
local STDLIB = debug.getinfo(1, "S").source:match("^(@.*/)ferry/boot%.lua$")

-- The innermost frame of the script itself (not the stdlib, not C), as "file:line", from
-- the error handler's caller up.
local function script_line()
  for level = 3, 200 do
    local info = debug.getinfo(level, "Sl")
    if not info then return nil end
    if info.what ~= "C" and info.currentline > 0
       and not (STDLIB and info.source:sub(1, #STDLIB) == STDLIB) then
      return info.short_src .. ":" .. info.currentline
    end
  end
end

-- An uncaught error. A ferry.Error table is an expected failure (a timeout, a revert): one
-- line, "file:line: code: message", at the script's own line; the engine's frames only with
-- FERRY_TRACE=1. Anything else is a bug somewhere: the message and the whole traceback.
local function traceback(err)
  if type(err) == "table" then
    local code, msg = err.code, err.message
    err = (code and (code .. ": ") or "") .. tostring(msg or err)
    if code and os.getenv("FERRY_TRACE") ~= "1" then
      local where = script_line()
      return where and (where .. ": " .. err) or err
    end
  else
    err = tostring(err)
  end
  return debug.traceback(err, 2)
end

-- A script that cannot start (a config typo, a missing file, a syntax error): the message says
-- it all, so no traceback of boot.lua (as with lua itself); exit status 1.
local function cannot_start(msg)
  io.stderr:write("ferry: ", tostring(msg), "\n")
  io.stderr:flush()
  os.exit(1)
end

--- Spawn the main task. kind: "file" | "string" | "repl" | "command" (src: its name, run by
--- ferry.cli) | "none".
function M.main(kind, src, chunkname, config, pre, ...)
  M.options.config = config
  local args = pack(...)
  task.spawn(function()
    -- a configuration named explicitly is checked before anything runs: a typo stops here,
    -- with the key path and no traceback (it is the file that is wrong, not the code)
    -- (the REPL starts anyway and says what is wrong: it is where one goes to look)
    if kind ~= "repl" and (config or (os.getenv("FERRY_CONFIG") or "") ~= "") then
      local ok, err = pcall(require("ferry").config)
      if not ok then cannot_start(err) end
    end
    local ok, err = xpcall(function()
      for _, p in ipairs(pre) do
        local k, v = p:sub(1, 1), p:sub(2)
        if k == "l" then
          _G[v] = require(v)
        else
          local f, e = load(v, "=(command line)", "t")
          if not f then cannot_start(e) end
          f()
        end
      end
      if kind == "repl" then
        return require("ferry.repl").run()
      end
      if kind == "command" then
        return require("ferry.cli").main(src, unpack(args, 1, args.n))
      end
      local chunk, e
      if kind == "file" then
        chunk, e = loadfile(src, "t")
      elseif kind == "string" then
        chunk, e = load(src, chunkname, "t")
      else
        return
      end
      if not chunk then cannot_start(e) end
      return chunk(unpack(args, 1, args.n))
    end, traceback)
    if not ok then
      io.stderr:write("ferry: ", err, "\n")
      io.stderr:flush()
      os.exit(1)
    end
  end)
end

return M
