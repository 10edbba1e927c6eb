--- ferry.policy -- hot-reloadable before_send rules (policies/*.lua; docs/policies.md).
---
---   local policy = require "ferry.policy"
---   policy.start{ dir = "policies" }   -- load every *.lua there, watch the dir, reload on SIGHUP
---   policy.reload()                    -- now; -> the status table
---   policy.status()                    -- per file: {ok, name, hash, loaded_at, err, ...}
---   policy.judge(tx, ctx)              -- -> verdict, arg, decisions (what each policy said)
---
--- A policy file returns {name =, before_send = fn(tx, ctx), self_test = fn()?, on_head =?,
--- simulate = true?}. Each is a lua_State of its own (ferry.core.policyvm: allow-listed env,
--- read-only views of tx and ctx, an instruction budget per call, a memory cap). A new version
--- is loaded into a fresh state, validated, its self_test run, and only then swapped in: one
--- assignment of `current` (a frozen list) from the reloader task, so it happens between two
--- resumes of any other task; a judgment that holds the old list finishes on it. On any error
--- the old version stays, the error is logged and kept in status().
local ferry = require "ferry"
local policyvm = require "ferry.core.policyvm"
local fswatch = require "ferry.core.fswatch"
local keccak = require "ferry.core.keccak"

local M = {}

--- Budgets of one policy: instructions per call, for the chunk itself, memory per state.
M.LIMITS = { instructions = 200000, load_instructions = 5000000, memory_mib = 16 }
--- Seconds a burst of fs events is gathered before a reload (editors write, then rename).
M.DEBOUNCE = 0.02

M.VERDICTS = { allow = true, reject = true, queue = true, route = true }
M.ROUTES = { public = true }   -- "private" and "bundle" come with the MEV work

local state = {
  dir = nil, enabled = nil,
  current = {},        -- the list judged: {policy, ...} in order; replaced, never changed
  by_file = {},        -- file stem -> the policy in force
  status = {},         -- file stem -> what its last load said
  reloads = 0, refused = 0, decisions = 0,
  watcher = nil, reloader = nil, hup = nil, hup_task = nil,
  last_reload = nil,   -- {at =, took =, trigger =}
}

-- the content hash events and status name a version by (keccak256, first 8 bytes)
local function hex_hash(src) return keccak.tohex(keccak.keccak256(src)):sub(1, 18) end

local function err_text(kind, msg)
  if kind == "instructions" then return "took more than its instruction budget" end
  if kind == "memory" then return "passed its memory cap" end
  return msg
end

-- The shape a policy file must have. -> nil | the problem
local HOOKS = { before_send = true, on_head = true, self_test = true }
local FIELDS = { name = "string", version = "string|number", description = "string", simulate = "boolean" }
local function misshapen(shape)
  local f, fns = shape.fields, shape.functions
  if type(f.name) ~= "string" or f.name == "" then return "returns no `name` (a non-empty string)" end
  for k in pairs(fns) do
    if not HOOKS[k] then return ("has a function `%s`, which is not a hook (before_send, on_head, self_test)"):format(k) end
  end
  for k, v in pairs(f) do
    if HOOKS[k] then return ("`%s` must be a function, got %s"):format(k, type(v)) end
    if not FIELDS[k] then return ("has `%s`, which a policy does not have"):format(k) end
    if not FIELDS[k]:find(type(v), 1, true) then return ("`%s` must be a %s, got %s"):format(k, FIELDS[k], type(v)) end
  end
  local k, t = next(shape.other)
  if k then
    return HOOKS[k] and ("`%s` must be a function, got %s"):format(k, t) or ("has `%s`, which a policy does not have"):format(k)
  end
  if not fns.before_send and not fns.on_head then return "has neither before_send nor on_head" end
end

--- compile(src, chunkname) -> policy | nil, message. A fresh state, the chunk run, its shape
--- checked, its self_test run: what a reload does before it swaps anything.
---@param src string the policy's source
---@param chunkname string its name in errors
---@param limits? table instruction and memory limits
---@return table|nil policy
---@return table|nil err
function M.compile(src, chunkname, limits)
  local vm = policyvm.new(limits or M.LIMITS)
  local ok, shape, msg = vm:load(src, "@" .. chunkname)
  if not ok then vm:close(); return nil, err_text(shape, msg) end
  local bad = misshapen(shape)
  if bad then vm:close(); return nil, chunkname .. ": " .. bad end
  if shape.functions.self_test then
    local tok, r1, r2 = vm:call("self_test")
    if not tok then vm:close(); return nil, "self_test failed: " .. err_text(r1, r2) end
    if r1 == false then vm:close(); return nil, "self_test failed: " .. tostring(r2 or "returned false") end
  end
  return { name = shape.fields.name, version = shape.fields.version, simulate = shape.fields.simulate == true,
           hash = hex_hash(src), file = chunkname, vm = vm, hooks = shape.functions, loaded_at = os.time() }
end

-- A verdict as the pipeline takes it: policy errors and nonsense deny (STYLE.md 3.8).
local function verdict_of(p, ok, v, arg, why)
  if not ok then return "reject", ("policy %s failed: %s"):format(p.name, err_text(v, arg)), true end
  if v == nil then v = "allow" end
  if not M.VERDICTS[v] then return "reject", ("policy %s answered %q, not a verdict"):format(p.name, tostring(v)), true end
  if v == "route" and not M.ROUTES[arg] then
    return "reject", ("policy %s routes to %q, which is not a route (public)"):format(p.name, tostring(arg)), true
  end
  if (v == "reject" or v == "queue") and type(arg) ~= "string" then arg = tostring(arg or why or v) end
  return v, arg, false
end

--- judge(tx, ctx, list?) -> verdict, arg, decisions. Asks each policy's before_send in order
--- (tx and ctx are plain data; each policy sees them as read-only views, ctx.settings its own
--- entry of settings); the first verdict other than allow ends it (a route is remembered and
--- the rest still asked). decisions: {policy, hash, verdict, reason, us} per policy asked.
---@param tx table the transaction as policies see it
---@param ctx table what they may read (fees, chain, ...)
---@param list? table the policies (default: the current list)
---@param settings? table per policy settings
---@return string verdict allow, reject, queue or route
---@return any detail
---@return table decisions
function M.judge(tx, ctx, list, settings)
  list = list or state.current
  local decisions, route = {}, nil
  for _, p in ipairs(list) do
    if p.hooks.before_send then
      ctx.settings = settings and settings[p.name] or nil
      local t0 = ferry.now()
      local ok, v, arg = p.vm:call("before_send", tx, ctx)
      local verdict, reason, failed = verdict_of(p, ok, v, arg)
      decisions[#decisions + 1] = { policy = p.name, hash = p.hash, verdict = verdict, reason = reason,
                                    failed = failed or nil, us = (ferry.now() - t0) * 1e6 }
      state.decisions = state.decisions + 1
      if verdict == "route" then route = reason
      elseif verdict ~= "allow" then return verdict, reason, decisions end
    end
  end
  ctx.settings = nil
  if route then return "route", route, decisions end
  return "allow", nil, decisions
end

--- The list judged now (frozen: a reload replaces it). A caller that holds it keeps its versions.
function M.current() return state.current end
--- wants_simulation(list?) -> true when a policy of the list asks for a simulation
---@param list? table (default: the current list)
---@return boolean
function M.wants_simulation(list)
  for _, p in ipairs(list or state.current) do if p.simulate then return true end end
  return false
end

---------------------------------------------------------------------------------------------
-- Loading a directory
---------------------------------------------------------------------------------------------

local function read(path)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local src = f:read("a")
  f:close()
  return src
end

local function stems(dir)
  local names = fswatch.list(dir)
  local out = {}
  for _, n in ipairs(names or {}) do
    local stem = n:match("^([%w_%-]+)%.lua$")
    if stem then out[#out + 1] = stem end
  end
  return out
end

-- Load every file whose text changed; swap in the new list only after all of them are
-- judged. A file that fails keeps its old version (or none, if it never loaded).
local function reload(trigger)
  local t0 = ferry.now()
  local dir = state.dir
  if not dir then ferry.raise("invalid_argument", "ferry.policy.reload: not started (policy.start{dir =})") end
  local names = state.enabled or stems(dir)
  local by_file, changed = {}, false
  for _, stem in ipairs(names) do
    local path = dir .. "/" .. stem .. ".lua"
    local old = state.by_file[stem]
    local src, rerr = read(path)
    local st = state.status[stem] or {}
    if not src then
      st = { ok = false, err = ("cannot read %s: %s"):format(path, tostring(rerr)), at = os.time(),
             name = old and old.name, hash = old and old.hash }
      by_file[stem] = old
    elseif old and old.hash == hex_hash(src) then
      by_file[stem] = old
    else
      local p, err = M.compile(src, path)
      if p then
        by_file[stem], changed = p, true
        st = { ok = true, name = p.name, hash = p.hash, version = p.version, loaded_at = p.loaded_at, at = os.time() }
        if old then ferry.log.info("policy reloaded", { file = path, policy = p.name, hash = p.hash, trigger = trigger }) end
      else
        by_file[stem] = old
        state.refused = state.refused + 1
        st = { ok = false, err = err, at = os.time(), name = old and old.name, hash = old and old.hash,
               kept = old and old.hash or nil }
        ferry.log.error("policy refused; the old version stays", { file = path, err = err, kept = old and old.hash })
      end
    end
    state.status[stem] = st
  end
  for stem in pairs(state.by_file) do
    if by_file[stem] == nil then changed = true; state.status[stem] = nil end   -- its file is gone
  end
  if changed or #state.current == 0 then
    local list = {}
    for _, stem in ipairs(names) do if by_file[stem] then list[#list + 1] = by_file[stem] end end
    state.by_file, state.current = by_file, list    -- the swap: one assignment each
    state.reloads = state.reloads + 1
  end
  state.last_reload = { at = os.time(), took_ms = (ferry.now() - t0) * 1000, trigger = trigger }
  return M.status()
end

--- reload() -> status(): load what changed in the policies dir now.
function M.reload() return reload("call") end

--- status() -> {dir, reloads, refused, decisions, last_reload, files = {stem = {ok, name, hash,
--- version, loaded_at, err, kept}}, order = {name...}}
function M.status()
  local files = {}
  for stem, st in pairs(state.status) do
    local c = {}
    for k, v in pairs(st) do c[k] = v end
    files[stem] = c
  end
  local order = {}
  for i, p in ipairs(state.current) do order[i] = p.name .. "@" .. p.hash end
  return { dir = state.dir, watching = state.watcher ~= nil, reloads = state.reloads, refused = state.refused,
           decisions = state.decisions, last_reload = state.last_reload, files = files, order = order }
end

-- Reload when the dir changes: the first event, then whatever follows within DEBOUNCE.
local function watch_loop(w)
  while true do
    local name, err = w:wait()
    if not name then
      if err and err.code == "closed" then return end
    else
      while w:wait(M.DEBOUNCE) do end     -- gather the burst (write, rename, ...)
      local ok, e = pcall(reload, "fs")
      if not ok then ferry.log.error("policy reload failed", { err = tostring(e) }) end
    end
  end
end

local function hup_loop(h)
  while h:wait() do
    local ok, e = pcall(reload, "SIGHUP")
    if not ok then ferry.log.error("policy reload failed", { err = tostring(e) }) end
  end
end

--- start{dir =, enabled = {stem...}?, watch = true?, hup = true?} -> status(). Loads the
--- dir (a file that fails is refused and said, the others load), then watches it.
---@param opts table {dir, enabled?, watch?, hup?}
---@return table status
function M.start(opts)
  opts = opts or {}
  if type(opts.dir) ~= "string" then ferry.raise("invalid_argument", "ferry.policy.start: expects {dir = string}") end
  M.stop()
  state.dir, state.enabled = opts.dir, opts.enabled
  local st = reload("start")
  if opts.watch ~= false then
    local w, err = fswatch.watch(opts.dir)
    if not w then    -- no such dir: no policies, nothing to say above debug (the default config names one)
      ferry.log[err and err.code == "not_found" and "debug" or "warn"]("policy dir not watched",
        { dir = opts.dir, err = tostring(err) })
    else
      state.watcher = w
      state.reloader = ferry.spawn(watch_loop, w)
    end
  end
  if opts.hup ~= false then
    state.hup = require("ferry.core.signal").watch("HUP")
    state.hup_task = ferry.spawn(hup_loop, state.hup)
  end
  st.watching = state.watcher ~= nil
  return st
end

--- start from the configuration's `policies` section, once (the send pipeline's policy step
--- calls it). -> true when policies are configured
---@param cfg_root table the configuration
---@return boolean configured
function M.ensure(cfg_root)
  if state.dir then return true end
  local pc = cfg_root and cfg_root.policies
  if not pc then return false end
  M.start{ dir = pc.dir, enabled = pc.enabled, watch = pc.watch }
  return true
end

--- stop(): no more watching; the policies in force are dropped.
function M.stop()
  if state.watcher then state.watcher:close() end
  if state.hup then state.hup:close() end
  state.watcher, state.reloader, state.hup, state.hup_task = nil, nil, nil, nil
  state.dir, state.enabled, state.current, state.by_file, state.status = nil, nil, {}, {}, {}
end

ferry.register_stats("policy", function()
  return { policies = #state.current, reloads = state.reloads, refused = state.refused, decisions = state.decisions }
end)

ferry.policy = M   -- so the REPL's ferry.policy.status() reads it

return M
