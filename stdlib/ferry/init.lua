--- ferry -- the engine's Lua API: tasks, time, JSON, logging, counters.
---
---   local ferry = require "ferry"
---   local t = ferry.spawn(function(x) ferry.sleep(0.1) return x * 2 end, 21)
---   print(t:wait())            --> true  42
local task = require "ferry.core.task"
local json = require "ferry.core.json"
local logc = require "ferry.core.log"

local M = {}

M.spawn = task.spawn          ---@type fun(fn: function, ...): userdata
M.sleep = task.sleep          ---@type fun(seconds: number)
M.now = task.now              ---@type fun(): number  monotonic seconds
M.current = task.current
M.tasks = task.tasks
M.YIELD_TAG = task.YIELD_TAG
M.json = json
M.options = require("ferry.boot").options

--- Error tables: {code = "timeout", message = "...", ...}; tostring gives "code: message".
local error_mt = debug.getregistry()["ferry.Error"]

---@param code string  one of DESIGN.md's stable codes
---@param message string
---@param fields table|nil  extra fields (required, available, provider, ...)
function M.error(code, message, fields)
  if type(code) ~= "string" or (message ~= nil and type(message) ~= "string" and type(message) ~= "number")
     or (fields ~= nil and type(fields) ~= "table") then
    error(setmetatable({ code = "invalid_argument", message = ("ferry.error: expects (code: string, message: "
      .. "string?, fields: table?), got (%s, %s, %s)"):format(type(code), type(message), type(fields)) }, error_mt), 2)
  end
  local e = fields or {}
  e.code, e.message = code, message
  return setmetatable(e, error_mt)
end

--- Raise an error table (for high-level calls that raise instead of returning nil, err).
---@param code string one of the stable error codes (docs/guide.md, "Errors")
---@param message? string
---@param fields? table extra fields of the error table
function M.raise(code, message, fields)
  error(M.error(code, message, fields), 2)
end

--- is_error(v) -> true when v is a ferry error table (ferry.error, or raised by the engine)
---@param v any
---@return boolean
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == error_mt
end

-- logging: ferry.log.info("sent", {hash = h}); fields named like secrets are redacted
local LEVELS = { error = 0, warn = 1, info = 2, debug = 3 }
M.log = {}
for name, lv in pairs(LEVELS) do
  M.log[name] = function(msg, fields) logc.log(lv, msg, fields) end
end
M.log.configure = logc.configure
M.log.level = logc.level
M.log.enabled = function(name) return logc.enabled(LEVELS[name] or 2) end

--- ferry.log.capture(fn, ...) -> text, fn's results. While fn runs, every log record (the
--- engine's too, such as a failed task's, and those of other tasks meanwhile) is kept in
--- `text` instead of written to stderr: for specs of failures that are expected to log. If
--- fn raises (or its task is cancelled), what was kept goes to stderr and the error goes on.
---@param fn function called with the remaining arguments
---@param ... any
---@return string logged what fn logged, then fn's own returns
function M.log.capture(fn, ...)
  local mt = getmetatable(fn)
  if type(fn) ~= "function" and not (type(mt) == "table" and mt.__call) then
    M.raise("invalid_argument", ("ferry.log.capture: expects a function, got %s"):format(type(fn)))
  end
  logc.capture(true)
  local text
  local _ <close> = setmetatable({}, { __close = function()
    if text == nil then io.stderr:write(logc.capture(false)); io.stderr:flush() end
  end })
  local r = table.pack(fn(...))
  text = logc.capture(false)
  return text, table.unpack(r, 1, r.n)
end

--- ferry.redact(v) -> tostring(v) with every run that looks like a private key (64+ hex
--- digits, 0x or not) masked: "0x1234…(64 hex digits, redacted)", and every URL cut to its
--- scheme://host:port (paths, queries and user:password@ hold API keys). Every error that
--- echoes a value from the user goes through it (engine/core/redact.c, also used by the log).
M.redact = logc.redact

-- counters: modules register a function under a name; ferry.stats() calls them all
local stat_sources = {}
--- register_stats(name, fn): ferry.stats()[name] is fn()'s result from now on; fn = nil
--- unregisters. fn may be a table of counters instead: a copy of it is the result.
---@param name string
---@param fn? fun(): table | table
function M.register_stats(name, fn)          -- fn = nil unregisters
  if type(name) ~= "string" or (fn ~= nil and type(fn) ~= "function" and type(fn) ~= "table") then
    M.raise("invalid_argument", ("ferry.register_stats: expects (name: string, fn: function|table?), got (%s, %s)")
      :format(type(name), type(fn)))
  end
  if type(fn) == "table" then
    local counters = fn
    fn = function()
      local copy = {}
      for k, v in pairs(counters) do copy[k] = v end
      return copy
    end
  end
  stat_sources[name] = fn
end

--- stats() -> a table of counters: tasks, memory_kb, http, refs, and one entry per registered
--- source ("pool:<chain>", "redis", ...); docs/guide.md explains each field
---@return table
function M.stats()
  local s = {
    tasks = task.stats(),
    memory_kb = collectgarbage("count"),
    http = require("ferry.core.http").stats(),
  }
  s.refs = s.tasks.refs
  for name, fn in pairs(stat_sources) do
    local ok, v = pcall(fn)
    s[name] = ok and v or { error = tostring(v) }
  end
  return s
end

--- The loaded configuration (config.lua or --config), validated; loaded on first use.
local config_cache

-- config.log applies unless FERRY_LOG (the operator's override) is set
local function apply_log(cfg)
  local l = cfg.log
  if l and not os.getenv("FERRY_LOG") then
    logc.configure((l.level or "info") .. "," .. (l.format or "text"))
  end
end

--- config() -> the validated configuration (config.lua, --config or FERRY_CONFIG), loaded on first use
---@return table config
function M.config()
  if not config_cache then
    config_cache = require("ferry.config").load(M.options.config)
    apply_log(config_cache)
  end
  return config_cache
end

--- Replace the configuration (tests, REPL experiments). Validated like a file.
---@param tbl table a configuration as config.lua would return it
---@return table config the validated configuration
function M.set_config(tbl)
  config_cache = require("ferry.config").validate(tbl, "config")
  apply_log(config_cache)
  return config_cache
end

return M
