--- ferry.workflow -- bounded concurrency over a list (what p-limit gives Node, natively).
---
---   local results = workflow.parallel(recipients, {max_concurrent = 16}, function(r, i)
---     return signer:send{to = r.address, value = r.amount}
---   end)
---   -- results[i] = {ok = true, value = <first return>} | {ok = false, err = <error table>}
---
--- Never more than max_concurrent items run at once; results come back in input order.
--- stop_on_error = true cancels the items in flight and skips the rest at the first error
--- (they get err.code = "cancelled"). On a terminal, runs longer than a second draw one
--- progress line on stderr (done/total, rate, errors); progress = false turns it off.
local ferry = require "ferry"
local term = require "ferry.core.term"

local M = {}

local function as_error(e)
  if ferry.is_error(e) then return e end
  if type(e) == "table" and e.code then return setmetatable(e, getmetatable(ferry.error("x", "x"))) end
  return ferry.error("error", tostring(e))
end

local function traceback_handler(e)
  if type(e) == "string" then return ferry.error("error", e, { traceback = debug.traceback(nil, 2) }) end
  return e
end

local function progress_line(done, total, errors, started)
  local dt = ferry.now() - started
  local rate = dt > 0 and done / dt or 0
  return ("\r%d/%d done  %.0f/s  %d error%s  "):format(done, total, rate, errors, errors == 1 and "" or "s")
end

---@param items table  array of work items
---@param opts table|nil  {max_concurrent = 16, stop_on_error = false, progress = true}
---@param fn fun(item: any, i: integer): any
---@return table results, table summary
local OPTIONS = { max_concurrent = true, stop_on_error = true, progress = true }

--- parallel(items, opts, fn) -> results in input order, and a summary (see the module comment)
---@param items table
---@param opts? table {max_concurrent = 16, stop_on_error = false, progress = true}
---@param fn fun(item: any, i: integer): any
---@return table results
---@return table summary
function M.parallel(items, opts, fn)
  if type(opts) == "function" then fn, opts = opts, nil end
  opts = opts or {}
  assert(type(items) == "table", "workflow.parallel: items must be a table")
  assert(type(fn) == "function", "workflow.parallel: fn must be a function")
  local bad, shown = require("ferry.config").unknown_key(opts, OPTIONS)   -- max_concurent = 2 would run 16
  if bad ~= nil then error("workflow.parallel: unknown option " .. shown, 2) end
  local limit = opts.max_concurrent or 16
  assert(math.type(limit) == "integer" and limit >= 1, "workflow.parallel: max_concurrent must be an integer >= 1")
  local total = #items
  local results = {}
  local next_i, done, errors, in_flight, peak = 0, 0, 0, 0, 0
  local stopping = false
  local started = ferry.now()

  local workers = {}
  local function worker()
    while not stopping do
      next_i = next_i + 1
      local i = next_i
      if i > total then return end
      in_flight = in_flight + 1
      if in_flight > peak then peak = in_flight end
      local ok, v = xpcall(fn, traceback_handler, items[i], i)
      in_flight = in_flight - 1
      done = done + 1
      if ok then
        results[i] = { ok = true, value = v }
      else
        errors = errors + 1
        results[i] = { ok = false, err = as_error(v) }
        if opts.stop_on_error and not stopping then
          stopping = true
          local me = ferry.current()
          for _, other in ipairs(workers) do
            if other ~= me then other:cancel("stop_on_error") end
          end
        end
      end
    end
  end

  for w = 1, math.min(limit, total) do workers[w] = ferry.spawn(worker) end

  local show = opts.progress ~= false and total > 0 and term.isatty(2)
  local ticker
  if show then
    ticker = ferry.spawn(function()
      ferry.sleep(1)
      while true do
        io.stderr:write(progress_line(done, total, errors, started))
        io.stderr:flush()
        ferry.sleep(0.25)
      end
    end)
  end

  for _, w in ipairs(workers) do
    local ok, err = w:wait()
    if not ok and not (ferry.is_error(err) and err.code == "cancelled") then
      errors = errors + 1
      ferry.log.error("workflow.parallel: worker failed", { err = tostring(err) })
    end
  end
  local printed = ticker and ticker:status() ~= "ready" and ferry.now() - started >= 1
  if ticker then ticker:cancel() end
  if printed then io.stderr:write(progress_line(done, total, errors, started), "\n") end

  local cancelled = 0
  for i = 1, total do
    if not results[i] then
      cancelled = cancelled + 1
      results[i] = { ok = false, err = ferry.error("cancelled", "not run: stop_on_error") }
    end
  end
  local summary = {
    total = total, ok = done - errors, errors = errors, cancelled = cancelled,
    seconds = ferry.now() - started, peak_in_flight = peak,
  }
  return results, summary
end

return M
