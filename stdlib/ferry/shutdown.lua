--- ferry.shutdown -- Ctrl-C and SIGTERM while payments are on their way.
---
--- Armed by the first send (ferry.eth.send calls arm()). On the first SIGINT or SIGTERM:
---   * sends that have not reserved a nonce yet are refused (`shutting_down`);
---   * broadcasts under way get `shutdown.grace` seconds (config, default 10) to settle;
---   * what is in flight (sent, not yet confirmed) is printed with ids, nonces and hashes;
---   * the engine exits (130 for SIGINT, 143 for SIGTERM) in order, so every journal write
---     queued is on disk.
--- A second signal stops waiting and exits at once. Either way the journal (ferry.store) holds
--- every transaction, and the next run resumes it; a send with an id re-run returns the
--- transaction it already made.
local ferry = require "ferry"
local signal = require "ferry.core.signal"
local task = require "ferry.core.task"

local M = { draining = false, active = {}, signal = nil }
local armed = false

local CODES = { INT = 130, TERM = 143 }

--- begin(ctx) / finish(ctx): a send's broadcast-bound part (reserve .. track) starts / ends
function M.begin(ctx) M.active[ctx] = true end
function M.finish(ctx) M.active[ctx] = nil end

local function busy()
  local n = 0
  for _ in pairs(M.active) do n = n + 1 end
  return n
end

--- in_flight() -> the transactions this process sent and has not seen confirmed, by nonce
function M.in_flight()
  local list = {}
  local store = require("ferry.store").current()
  local live = store and store.journal.live or {}
  for id, tx in pairs(live) do
    if tx.state ~= "confirmed" and tx.state ~= "reverted" and tx.state ~= "taken" then
      list[#list + 1] = { id = id, nonce = tx.nonce, hash = tx.hash, from = tx.from, state = tx.state or "sent" }
    end
  end
  table.sort(list, function(a, b) return (a.nonce or -1) < (b.nonce or -1) end)
  return list
end

local function report(name)
  local list = M.in_flight()
  local out = io.stderr
  out:write(("\nferry: stopped by SIG%s. %d transaction%s sent and not yet confirmed%s\n"):format(name, #list,
    #list == 1 and "" or "s", #list > 0 and " (the journal keeps them; the next run resumes them):" or "."))
  for _, t in ipairs(list) do
    out:write(("  %-28s nonce %-6s %s  %s\n"):format(t.id, tostring(t.nonce), tostring(t.hash), t.state))
  end
  out:flush()
end

local function exit_now(name)
  report(name)
  os.exit(CODES[name] or 1)
end

-- Wait for either signal -> its name (daemons: waiting never keeps a script alive)
local function next_signal(int, term)
  local q = task.queue()
  local a = ferry.spawn(function() q:put(int:wait()) end):daemon()
  local b = ferry.spawn(function() q:put(term:wait()) end):daemon()
  local name = q:get()
  a:cancel(); b:cancel()
  return name
end

local function watch()
  local int, term = signal.watch("INT"), signal.watch("TERM")
  local name = next_signal(int, term)
  if not name then return end
  M.draining, M.signal = true, name
  local grace = (ferry.config().shutdown or {}).grace or 10
  ferry.log.warn(("SIG%s: no new sends; waiting up to %gs for %d broadcast%s under way (again to stop at once)")
    :format(name, grace, busy(), busy() == 1 and "" or "s"))
  local deadline = ferry.now() + grace
  local second = false
  local waiter = ferry.spawn(function() next_signal(int, term); second = true end):daemon()
  while busy() > 0 and ferry.now() < deadline and not second do ferry.sleep(0.05) end
  waiter:cancel()
  exit_now(name)
end

--- arm(): from now on SIGINT / SIGTERM drain instead of killing (once per process; not
--- while an interactive REPL owns Ctrl-C)
function M.arm()
  if armed then return end
  armed = true
  local repl = package.loaded["ferry.repl"]
  if repl and repl.interactive then return end
  ferry.spawn(watch):daemon()
end

--- check(): raise shutting_down while draining (a send that has not reserved a nonce yet)
function M.check()
  if M.draining then
    ferry.raise("shutting_down", ("the engine is stopping (SIG%s): no new sends"):format(M.signal or "?"))
  end
end

return M
