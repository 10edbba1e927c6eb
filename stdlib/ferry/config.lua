--- ferry.config -- load config.lua in a sandbox and validate it against a schema.
---
--- config.lua is a chunk that returns one table. It runs in a Lua state of its own
--- (ferry.core.sandbox): a small environment (`env`, its own string/table/math, tonumber/
--- tostring/pairs/ipairs/type/error/assert/select/next; no io, no os, no require), at most
--- M.LIMITS.instructions instructions and M.LIMITS.memory_mib MiB, and only its result, as
--- plain data, comes back. Whatever it does to string, table or math (or to the string
--- metatable) stays in that state and is gone when it ends. `env(name, default)` reads an
--- environment variable; a number default makes the value a number (a non-numeric value is
--- an error naming the variable).
---
--- Numbers must be finite (no NaN, no infinities). limits.max_gas_price_gwei defaults to 500;
--- only `false` or "off" turns the cap off, with a warning. Provider URLs (and ws URLs) come
--- out as ferry.rpc hidden values that print as scheme://host:port, and header values as
--- "[redacted]": the REPL, logs and errors never show an API key in a URL path.
---
--- Every mistake is reported with its key path and what was expected, e.g.
---   config.lua: chains.local.providers[1].rps: expected a number > 0, got "fast"
---   config.lua: chains.local.provders: unknown key (did you mean "providers"?)
local rpc = require "ferry.rpc"
local sandbox = require "ferry.core.sandbox"
local redact = require("ferry.core.log").redact

local M = {}

--- What one evaluation of config.lua may use.
M.LIMITS = { instructions = 10000000, memory_mib = 64 }
M.DEFAULT_MAX_GAS_PRICE_GWEI = 500

local DEFAULT_TTL = { eth_getBalance = 30, eth_blockNumber = 12, eth_gasPrice = 15,
                      eth_feeHistory = 12, eth_maxPriorityFeePerGas = 12, eth_chainId = 0, net_version = 0 }
-- documented per-provider budgets (requests per second) by provider name
M.DEFAULT_RPS = { alchemy = 25, infura = 10, quicknode = 15, public = 5 }
M.RPS_ENV = { alchemy = "RPC_RATE_LIMIT_ALCHEMY", infura = "RPC_RATE_LIMIT_INFURA",
              quicknode = "RPC_RATE_LIMIT_QUICKNODE", public = "RPC_RATE_LIMIT_PUBLIC" }

-- Schema nodes: {t = "string"|"number"|"integer"|"boolean"|"table"|"map"|"array"|"enum"|"any",
--   fields = {...} (table), item = node (map/array), values = {...} (enum), min =, required =,
--   default =, check = fn(v) -> ok, why}
local function S(t, extra) extra = extra or {}; extra.t = t; return extra end

local provider = S("table", { fields = {
  name = S("string"),
  url = S("url", { required = true, pattern = "^https?://[^/]", what = "an http(s):// URL" }),
  ws = S("url", { pattern = "^wss?://[^/]", what = "a ws(s):// URL" }),
  weight = S("number", { min = 0, default = 1 }),
  priority = S("integer", { min = 1, default = 1 }),
  rps = S("number", { min = 0.001 }),
  burst = S("number", { min = 1 }),
  timeout = S("number", { min = 0.001 }),
  headers = S("map", { item = S("string", { hide = true }) }),
}})

local chain = S("table", { fields = {
  kind = S("enum", { values = { "evm", "solana" }, default = "evm" }),
  chain_id = S("integer", { min = 1 }),
  confirmations = S("integer", { min = 0 }),  -- default 1 (evm), 32 (solana: stands in for finality)
  simulation_required = S("boolean", { default = false }),
  providers = S("array", { item = provider, required = true }),
  max_lag = S("integer", { min = 0 }),
  hedge_ms = S("number", { min = 0 }),
  fees = S("table", { fields = {
    percentile = S("number", { min = 0 }),
    base_multiplier = S("number", { min = 1 }),
    blocks = S("integer", { min = 1 }),
    max_fee_gwei = S("number", { min = 0 }),
  }}),
  gas_margin = S("number", { min = 1 }),
  head_poll = S("number", { min = 0 }),
  stuck_after = S("number", { min = 0 }),
  gap_fill_after = S("number", { min = 0 }),
  floor_every = S("number", { min = 0 }),
  breaker = S("table", { fields = {
    failure_threshold = S("integer", { min = 1 }),
    cooldown = S("number", { min = 0.001 }),
    max_cooldown = S("number", { min = 0.001 }),
    error_rate_threshold = S("number", { min = 0 }),
  }}),
  legacy = S("boolean"),
  -- kind = "solana" only (defaults in ferry.sol.chain.DEFAULTS)
  solana = S("table", { fields = {
    commitment = S("enum", { values = { "processed", "confirmed", "finalized" } }), -- what tx:wait waits for
    compute_margin = S("number", { min = 1 }),        -- compute-unit limit = simulated units x this
    priority_percentile = S("number", { min = 0 }),   -- of getRecentPrioritizationFees, for the unit price
    max_priority_fee = S("integer", { min = 0 }),     -- cap on the unit price, micro-lamports per CU
    blockhash_max_age = S("number", { min = 0.001 }), -- seconds a cached blockhash is used (60 at most)
    blockhash_margin = S("integer", { min = 0 }),     -- blocks before lastValidBlockHeight to refresh it
    poll = S("number", { min = 0.001 }),              -- seconds between status reads in tx:wait
    rebroadcast = S("number", { min = 0.001 }),       -- seconds between sends of unconfirmed bytes
  }}),
}})

M.schema = S("table", { fields = {
  chains = S("map", { item = chain, default = {} }),
  redis = S("table", { fields = {
    -- a hidden value like a provider's URL: it prints as redis://host:port, never the password
    url = S("url", { pattern = "^redis://[^/]", what = "a redis://[[user]:password@]host[:port][/db] URL" }),
    prefix = S("string"),
    -- absent: true when url is set (pool.lua)
    shared_rate_limits = S("boolean", { description = "one rate budget per provider for every "
      .. "process on this Redis (each process's own bucket while Redis is unreachable); default "
      .. "true when url is set" }),
  } }),
  data_dir = S("string", { default = ".ferry" }),
  -- the journal, idempotency ids and address leases (ferry.store): SQLite in data_dir unless
  -- redis.url is set; "memory" keeps nothing past the process
  store = S("table", { default = {}, fields = {
    backend = S("enum", { values = { "sqlite", "redis", "memory" } }),
    path = S("string"),
    sync = S("enum", { values = { "normal", "full" }, default = "normal" }),
    lease_ttl = S("number", { min = 1, default = 30 }),
  }}),
  -- SIGINT / SIGTERM: how long broadcasts in flight may settle before the engine exits
  shutdown = S("table", { default = {}, fields = { grace = S("number", { min = 0, default = 10 }) } }),
  cache = S("table", { default = {}, fields = {
    max_entries = S("integer", { min = 1, default = 100000 }),
    max_bytes = S("integer", { min = 1024, default = 64 * 1024 * 1024 }),
    ttl = S("map", { item = S("number", { min = 0 }) }),
  }}),
  -- hot-reloaded before_send rules (ferry.policy, docs/policies.md)
  policies = S("table", { fields = {
    dir = S("string", { default = "policies" }),          -- one policy per *.lua file
    enabled = S("array", { item = S("string") }),         -- file names (no .lua), asked in this order; absent: all, sorted
    max_queue_wait = S("number", { min = 0, default = 600 }),  -- seconds a "queue" verdict may hold a send
    watch = S("boolean", { default = true }),             -- reload on a change in dir (SIGHUP and policy.reload() always)
    settings = S("map", { item = S("any") }),             -- per policy, plain data it reads as ctx.settings
  } }),
  limits = S("table", { default = {}, fields = {
    -- a number, or false / "off" for no cap at all (validate() warns)
    max_gas_price_gwei = S("cap", { min = 0, default = M.DEFAULT_MAX_GAS_PRICE_GWEI }),
    max_slippage_percent = S("number", { min = 0 }),
    max_value_eth = S("number", { min = 0 }),
  }}),
  log = S("table", { fields = {
    level = S("enum", { values = { "error", "warn", "info", "debug" } }),
    format = S("enum", { values = { "text", "json" } }),
  }}),
  rpc = S("table", { default = {}, fields = {
    timeout = S("number", { min = 0.001, default = rpc.DEFAULT_TIMEOUT }),
    max_bytes = S("integer", { min = 1024, default = 32 * 1024 * 1024 }),
    retries = S("integer", { min = 0, default = 2 }),
  }}),
  repl = S("table", { fields = { socket = S("string") } }),
  -- `ferry serve`: scripts it runs, each as a task, while it serves
  serve = S("table", { fields = { scripts = S("array", { item = S("string") }) } }),
  -- simulation first through Tenderly when set (ferry.simulate); url: its API base, for a test or a proxy
  tenderly = S("table", { fields = { account = S("string"), project = S("string"), access_key = S("string", { hide = true }),
                                     url = S("string") } }),
  flashbots = S("table", { fields = { relay = S("string"), auth_key = S("string") } }),
}})

-- Levenshtein distance, for "did you mean" on unknown keys
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The closest name in `fields` (a set) within two edits of `key`, or nil. Also used for the
-- fields of signer:send{} and signer:sign{}.
local function suggest(key, fields)
  local best, bd = nil, 3
  for name in pairs(fields) do
    local d = distance(key, name)
    if d < bd then best, bd = name, d end
  end
  return best
end
M.suggest = suggest

--- unknown_key(t, allowed) -> the first key of t not in the set `allowed` and the text to show
--- for it ('"valeu" (did you mean "value"?)'), or nil when every key is allowed. For option and
--- field tables, where a typo would otherwise be dropped without a word.
function M.unknown_key(t, allowed)
  for k in pairs(t) do
    if not allowed[k] then
      local s = type(k) == "string" and suggest(k, allowed)
      return k, (type(k) == "string" and ("%q"):format(redact(k)) or tostring(k)) .. (s and (' (did you mean "' .. s .. '"?)') or "")
    end
  end
end

-- A value in an error: masked if it looks like a key (before it is cut, so no part of a key
-- survives the cut), then at most 40 characters.
local function show(v)
  if type(v) == "string" then
    v = redact(v)
    return ("%q"):format(#v > 40 and v:sub(1, 40) .. "..." or v)
  end
  return tostring(v)
end

-- A URL in an error: scheme://host:port only (its path and query hold API keys), or its
-- length when it is not a URL at all.
local function show_url(v)
  local origin = rpc.url_origin(v)
  if origin then return ("%q"):format(origin) end
  return ("a string of %d characters (not shown)"):format(#v)
end

local function join(path, key)
  if type(key) == "number" then return path .. "[" .. key .. "]" end
  if path == "" then return key end
  return path .. "." .. key
end

local validate_node

local function expect(path, what, v, shown)
  error({ config_error = path .. ": expected " .. what .. ", got " .. (shown or show(v)) ..
    (type(v) == "string" and "" or (" (" .. type(v) .. ")")) }, 0)
end

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

function validate_node(node, v, path)
  local t = node.t
  if v == nil then
    if node.default ~= nil then
      if type(node.default) == "table" then
        v = {}
      else
        return node.default
      end
    elseif node.required then
      error({ config_error = path .. ": missing (required)" }, 0)
    else
      return nil
    end
  end
  if t == "any" then return v end
  if t == "cap" then
    if v == false or v == "off" then return false end
    if type(v) ~= "number" or not finite(v) or v < node.min then
      expect(path, "a finite number >= " .. node.min .. ', or false / "off" for no cap', v)
    end
    return v
  end
  if t == "url" then
    local text = rpc.reveal(v)
    if type(text) ~= "string" then expect(path, node.what, v) end
    if not text:match(node.pattern) then expect(path, node.what, text, show_url(text)) end
    return rpc.url(text)
  end
  if t == "string" then
    if node.hide and rpc.is_hidden(v) then return v end
    if type(v) ~= "string" then expect(path, "a string", v) end
    if node.hide then return rpc.hide(v, "[redacted]") end
  elseif t == "number" then
    if type(v) ~= "number" then expect(path, "a number" .. (node.min and (" >= " .. node.min) or ""), v) end
    if not finite(v) then expect(path, "a finite number", v) end
  elseif t == "integer" then
    if math.type(v) ~= "integer" then
      local i = type(v) == "number" and finite(v) and math.tointeger(v)
      if i then v = i
      else expect(path, "an integer" .. (node.min and (" >= " .. node.min) or ""), v) end
    end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then expect(path, "true or false", v) end
  elseif t == "enum" then
    local ok = false
    for _, x in ipairs(node.values) do if x == v then ok = true end end
    if not ok then expect(path, "one of " .. table.concat(node.values, ", "), v) end
  elseif t == "table" or t == "map" or t == "array" then
    if type(v) ~= "table" then expect(path, t == "array" and "a list" or "a table", v) end
  end
  if node.min and type(v) == "number" and v < node.min then
    expect(path, (t == "integer" and "an integer" or "a number") .. " >= " .. node.min, v)
  end
  if node.check then
    local ok, why = node.check(v)
    if not ok then expect(path, why, v) end
  end
  if t == "table" then
    local out = {}
    for k, x in pairs(v) do
      if type(k) ~= "string" or not node.fields[k] then
        local s = type(k) == "string" and suggest(k, node.fields)
        error({ config_error = join(path, tostring(k)) .. ": unknown key" ..
          (s and (' (did you mean "' .. s .. '"?)') or "") }, 0)
      end
      out[k] = x
    end
    for k, f in pairs(node.fields) do
      out[k] = validate_node(f, out[k], join(path, k))
    end
    return out
  elseif t == "map" then
    local out = {}
    for k, x in pairs(v) do
      if type(k) ~= "string" then error({ config_error = join(path, tostring(k)) .. ": keys must be names" }, 0) end
      out[k] = validate_node(node.item, x, join(path, k))
    end
    return out
  elseif t == "array" then
    local n = #v
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 or k > n then
        error({ config_error = join(path, tostring(k)) .. ": expected a list (1, 2, 3 ...), found key " .. show(k) }, 0)
      end
    end
    local out = {}
    for i = 1, n do out[i] = validate_node(node.item, v[i], join(path, i)) end
    return out
  end
  return v
end

-- After the schema: defaults that depend on other fields.
local function finish(cfg)
  for name, c in pairs(cfg.chains) do
    for i, p in ipairs(c.providers) do
      p.name = p.name or (name .. "#" .. i)
      if not p.rps then
        local known = p.name:lower():match("^(%a+)")
        p.rps = M.DEFAULT_RPS[known] or 25
      end
      p.burst = p.burst or math.max(1, math.ceil(p.rps / 5))
    end
    if c.confirmations == nil then c.confirmations = c.kind == "solana" and 32 or 1 end
    if c.kind == "evm" and not c.chain_id then
      error({ config_error = "chains." .. name .. ".chain_id: missing (required for evm chains)" }, 0)
    end
  end
  local ttl = {}
  for k, v in pairs(DEFAULT_TTL) do ttl[k] = v end
  for k, v in pairs(cfg.cache.ttl or {}) do ttl[k] = v end
  cfg.cache.ttl = ttl
  return cfg
end

--- Validate a config table; raises "config: path: problem" on the first mistake.
function M.validate(tbl, source)
  local ok, res = pcall(function() return finish(validate_node(M.schema, tbl, "")) end)
  if not ok then
    if type(res) == "table" and res.config_error then   -- it quotes the file's keys and values
      error((source or "config") .. ": " .. redact(res.config_error), 0)
    end
    error(res, 0)
  end
  if res.limits.max_gas_price_gwei == false then
    require("ferry").log.warn("no gas price cap: limits.max_gas_price_gwei is off, fees are signed whatever they are",
      { config = source or "config" })
  end
  return res
end

-- env(name) with no default and the variable unset gives a marker, not nil, so the loader
-- knows exactly which values came from which missing variable: a provider whose url is such
-- a marker is left out (eth.chain names the variable to set), any other marked value is nil.
local Missing = {}
Missing.__index = Missing
Missing.__tostring = function(m) return "env " .. m.name .. " (unset)" end

-- Replace every Missing marker by nil (in place), depth-first.
local function strip_missing(t, seen)
  seen = seen or {}
  if seen[t] then return end
  seen[t] = true
  for k, v in pairs(t) do
    if getmetatable(v) == Missing then t[k] = nil
    elseif type(v) == "table" then strip_missing(v, seen) end
  end
end

--- Load and validate a config file. path nil: $FERRY_CONFIG or ./config.lua; when the
--- default file is absent, an empty configuration (no chains) whose `missing` is the path
--- looked for (eth.chain says it). limits: {instructions =,
--- memory_mib =} instead of M.LIMITS.
function M.load(path, limits)
  local envpath = os.getenv("FERRY_CONFIG")
  if envpath == "" then envpath = nil end
  local explicit = path ~= nil or envpath ~= nil
  path = path or envpath or "config.lua"
  local f = io.open(path, "r")
  if not f then
    if explicit then error(("config: cannot open %s"):format(path), 0) end
    -- no config.lua here: an empty configuration that remembers where it was looked for
    local cfg = M.validate({}, path)
    cfg.missing = (require("ferry.core.proc").cwd() or ".") .. "/" .. path
    return cfg
  end
  local src = f:read("a")
  f:close()
  limits = limits or {}
  local instructions = limits.instructions or M.LIMITS.instructions
  local mib = limits.memory_mib or M.LIMITS.memory_mib
  local ok, tbl, msg = sandbox.eval(src, "@" .. path, { instructions = instructions, memory_mib = mib, missing = Missing })
  if not ok then
    if tbl == "instructions" then error(("%s: took more than %d instructions"):format(path, instructions), 0)
    elseif tbl == "memory" then error(("%s: used more than %d MiB"):format(path, mib), 0)
    elseif tbl == "data" then error(("%s: %s"):format(path, msg), 0) end
    error(("config: %s"):format(redact(msg)), 0)
  end
  if type(tbl) ~= "table" then error(("config: %s must return a table, got %s"):format(path, type(tbl)), 0) end
  -- leave out providers whose url is an unset variable; remember which variable, per chain
  local dropped = {}
  for name, c in pairs(type(tbl.chains) == "table" and tbl.chains or {}) do
    if type(c) == "table" and type(c.providers) == "table" then
      local kept = {}
      for _, p in ipairs(c.providers) do
        if type(p) == "table" and getmetatable(p.url) == Missing then
          dropped[name] = dropped[name] or {}
          table.insert(dropped[name], { provider = type(p.name) == "string" and p.name or "?", env = p.url.name })
        else
          kept[#kept + 1] = p
        end
      end
      c.providers = kept
    end
  end
  strip_missing(tbl)
  local cfg = M.validate(tbl, path)
  cfg.path = path
  cfg.dropped_providers = dropped
  return cfg
end

return M
