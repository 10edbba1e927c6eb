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
  name = S("string", {
    doc = "the provider's name in logs, errors and stats; its default rate limit comes from it (alchemy, infura, quicknode, public)" }),
  url = S("url", { required = true, pattern = "^https?://[^/]", what = "an http(s):// URL",
    doc = "the JSON-RPC endpoint; shown as scheme://host:port only (its path may hold an API key)" }),
  ws = S("url", { pattern = "^wss?://[^/]", what = "a ws(s):// URL", doc = "a WebSocket endpoint of the same node" }),
  weight = S("number", { min = 0, default = 1, doc = "share of requests among healthy providers of the same priority" }),
  priority = S("integer", { min = 1, default = 1,
    doc = "tier: 1 is asked first; a higher tier only when every provider of the tiers before it is down" }),
  rps = S("number", { min = 0.001,
    doc = "requests per second this provider may be sent (a token bucket); default by name: alchemy 25, infura 10, quicknode 15, public 5,"
      .. " else 25" }),
  burst = S("number", { min = 1, doc = "requests the bucket may send at once (default rps / 5)" }),
  timeout = S("number", { min = 0.001, doc = "seconds one request to this provider may take (default: rpc.timeout)" }),
  headers = S("map", { item = S("string", { hide = true }), doc = "HTTP headers sent with each request; values never shown" }),
}})

local chain = S("table", { fields = {
  kind = S("enum", { values = { "evm", "solana" }, default = "evm", doc = "an EVM chain (ferry.eth) or Solana (ferry.sol)" }),
  chain_id = S("integer", { min = 1, doc = "the chain id every provider must answer; a provider on another chain is not used" }),
  confirmations = S("integer", { min = 0,
    doc = "blocks on top of a receipt before tx:wait returns;"
      .. " default 1 (evm), 32 (solana)" }), -- default 1 (evm), 32 (solana: stands in for finality)
  simulation_required = S("boolean", { default = false, doc = "every send is simulated first (ferry.simulate) and refused if it would fail" }),
  providers = S("array", { item = provider, required = true, doc = "the chain's JSON-RPC providers, failed over in order of priority and health" }),
  max_lag = S("integer", { min = 0, doc = "blocks a provider may lag the best head before it is skipped (default 5)" }),
  hedge_ms = S("number", { min = 0, doc = "a read with no answer after this many ms is also sent to a second provider; the first answer wins" }),
  fees = S("table", { doc = "how chain:fees() and sends price EIP-1559 fees", fields = {
    percentile = S("number", { min = 0, doc = "the percentile of recent tips (eth_feeHistory) used as the tip (default 50)" }),
    base_multiplier = S("number", { min = 1, doc = "max_fee = base fee x this + tip (default 2)" }),
    blocks = S("integer", { min = 1, doc = "blocks of fee history read (default 5)" }),
    max_fee_gwei = S("number", { min = 0, doc = "accepted but not read yet: the cap on a send's fee is limits.max_gas_price_gwei" }),
  }}),
  gas_margin = S("number", { min = 1, doc = "an estimate is multiplied by this (default 1.2; a plain transfer stays 21000)" }),
  head_poll = S("number", { min = 0, doc = "seconds between head polls while nothing waits (default 1); 0 turns head tracking off" }),
  stuck_after = S("number", { min = 0, doc = "seconds without a receipt before tx:wait bumps the fees of the same transaction (default 12)" }),
  gap_fill_after = S("number", { min = 0,
    doc = "seconds a freed nonce below the next one may stay unused before a 0-value transfer to self fills it (default 2)" }),
  floor_every = S("number", { min = 0,
    doc = "seconds after which the pending nonce is read again before a new nonce, so sends by other tools are seen (default 1)" }),
  breaker = S("table", { doc = "the circuit breaker of each provider", fields = {
    failure_threshold = S("integer", { min = 1, doc = "failures in a row that open the breaker" }),
    cooldown = S("number", { min = 0.001, doc = "seconds an open breaker keeps the provider out before one trial request" }),
    max_cooldown = S("number", { min = 0.001, doc = "the cooldown doubles on each failed trial, up to this many seconds" }),
    error_rate_threshold = S("number", { min = 0, doc = "a recent error rate (0..1) above which the breaker opens" }),
  }}),
  legacy = S("boolean", { doc = "send legacy (gas_price) transactions instead of EIP-1559 ones" }),
  -- kind = "solana" only (defaults in ferry.sol.chain.DEFAULTS)
  solana = S("table", { doc = "settings of a kind = \"solana\" chain", fields = {
    commitment = S("enum", { values = { "processed", "confirmed", "finalized" }, doc = "what tx:wait waits for" }), -- what tx:wait waits for
    compute_margin = S("number", { min = 1,
      doc = "compute-unit limit = simulated units x this" }),        -- compute-unit limit = simulated units x this
    priority_percentile = S("number", { min = 0,
      doc = "percentile of getRecentPrioritizationFees used for the unit price" }),   -- of getRecentPrioritizationFees, for the unit price
    max_priority_fee = S("integer", { min = 0,
      doc = "cap on the unit price, micro-lamports per compute unit" }),     -- cap on the unit price, micro-lamports per CU
    blockhash_max_age = S("number", { min = 0.001,
      doc = "seconds a cached blockhash is used (60 at most)" }), -- seconds a cached blockhash is used (60 at most)
    blockhash_margin = S("integer", { min = 0,
      doc = "blocks before lastValidBlockHeight at which the blockhash is refreshed" }),     -- blocks before lastValidBlockHeight to refresh it
    poll = S("number", { min = 0.001, doc = "seconds between status reads in tx:wait" }),              -- seconds between status reads in tx:wait
    rebroadcast = S("number", { min = 0.001,
      doc = "seconds between sends of unconfirmed bytes" }),       -- seconds between sends of unconfirmed bytes
  }}),
}})

M.schema = S("table", { fields = {
  chains = S("map", { item = chain, default = {}, doc = "the chains by name: eth.chain(name), sol.chain(name)" }),
  redis = S("table", { doc = "a shared Redis: nonces and rate limits shared by every process on it (docs/redis.md)", fields = {
    -- a hidden value like a provider's URL: it prints as redis://host:port, never the password
    url = S("url", { pattern = "^redis://[^/]", what = "a redis://[[user]:password@]host[:port][/db] URL",
      doc = "the Redis server; shown as redis://host:port, never the password" }),
    prefix = S("string", { doc = "prefix of every key ferry writes (default \"ferry:\")" }),
    -- absent: true when url is set (pool.lua)
    shared_rate_limits = S("boolean", { description = "one rate budget per provider for every "
      .. "process on this Redis (each process's own bucket while Redis is unreachable); default "
      .. "true when url is set" }),
  } }),
  data_dir = S("string", { default = ".ferry", doc = "where the journal (ferry.db) and the REPL history are kept" }),
  -- the journal, idempotency ids and address leases (ferry.store): SQLite in data_dir unless
  -- redis.url is set; "memory" keeps nothing past the process
  store = S("table", { default = {}, doc = "the journal, idempotency ids and address leases (ferry.store)", fields = {
    backend = S("enum", { values = { "sqlite", "redis", "memory" },
      doc = "sqlite in data_dir (default), redis when redis.url is set, memory keeps nothing past the process" }),
    path = S("string", { doc = "the SQLite file (default data_dir/ferry.db)" }),
    sync = S("enum", { values = { "normal", "full" }, default = "normal", doc = "SQLite synchronous mode: full fsyncs every commit" }),
    lease_ttl = S("number", { min = 1, default = 30,
      doc = "seconds an address's lease (one sending process per address and store) lasts unrenewed" }),
  }}),
  -- SIGINT / SIGTERM: how long broadcasts in flight may settle before the engine exits
  shutdown = S("table", { default = {}, doc = "what SIGINT / SIGTERM do while sends are in flight", fields = {
    grace = S("number", { min = 0, default = 10, doc = "seconds broadcasts under way may settle before the engine exits" }) } }),
  cache = S("table", { default = {}, doc = "the read cache of each chain's pool", fields = {
    max_entries = S("integer", { min = 1, default = 100000, doc = "entries kept before the least recently used go" }),
    max_bytes = S("integer", { min = 1024, default = 64 * 1024 * 1024, doc = "bytes of answers kept" }),
    ttl = S("map", { item = S("number", { min = 0 }),
      doc = "seconds an answer is kept, by JSON-RPC method (0: until evicted); head-bound answers also go on a new head" }),
  }}),
  -- hot-reloaded before_send rules (ferry.policy, docs/policies.md)
  policies = S("table", { doc = "before_send policies, hot-reloaded (docs/policies.md)", fields = {
    dir = S("string", { default = "policies",               -- one policy per *.lua file
      doc = "the directory of the policies, one per *.lua file" }),
    enabled = S("array", { item = S("string"),             -- file names (no .lua), asked in this order; absent: all, sorted
      doc = "file names (no .lua) asked in this order; absent: all, sorted" }),
    max_queue_wait = S("number", { min = 0, default = 600,  -- seconds a "queue" verdict may hold a send
      doc = "seconds a queue verdict may hold a send (then queued_timeout)" }),
    watch = S("boolean", { default = true,                  -- reload on a change in dir (SIGHUP and policy.reload() always)
      doc = "reload on a change in dir (SIGHUP and policy.reload() always reload)" }),
    settings = S("map", { item = S("any"),                 -- per policy, plain data it reads as ctx.settings
      doc = "per policy: plain data it reads as ctx.settings" }),
  } }),
  limits = S("table", { default = {}, doc = "hard limits on what a send may do", fields = {
    -- a number, or false / "off" for no cap at all (validate() warns)
    max_gas_price_gwei = S("cap", { min = 0, default = M.DEFAULT_MAX_GAS_PRICE_GWEI,
      doc = "no send pays a fee per gas above this (gwei): policy_rejected; false or \"off\" for no cap (a warning)" }),
    max_slippage_percent = S("number", { min = 0, doc = "accepted but not read yet (for swaps)" }),
    max_value_eth = S("number", { min = 0, doc = "accepted but not read yet: use a policy (docs/policies.md) to cap a send's value" }),
  }}),
  log = S("table", { doc = "logging (FERRY_LOG and --log override the level)", fields = {
    level = S("enum", { values = { "error", "warn", "info", "debug" },
      doc = "the lowest level written (default info); debug logs each RPC request" }),
    format = S("enum", { values = { "text", "json" }, doc = "lines of text, or one JSON object per line" }),
  }}),
  rpc = S("table", { default = {}, doc = "JSON-RPC requests of every chain", fields = {
    timeout = S("number", { min = 0.001, default = rpc.DEFAULT_TIMEOUT,
      doc = "seconds a request may take, over every attempt and provider, before it fails with timeout" }),
    max_bytes = S("integer", { min = 1024, default = 32 * 1024 * 1024, doc = "the largest reply accepted (bytes)" }),
    retries = S("integer", { min = 0, default = 2, doc = "rounds over the providers after the first, with backoff, within the timeout" }),
  }}),
  repl = S("table", { doc = "the REPL", fields = {
    socket = S("string", { doc = "the Unix socket `ferry serve` listens on for `ferry repl --attach`" }) } }),
  -- `ferry serve`: scripts it runs, each as a task, while it serves
  serve = S("table", { doc = "`ferry serve`", fields = {
    scripts = S("array", { item = S("string"), doc = "scripts it runs, each as a task" }) } }),
  -- simulation first through Tenderly when set (ferry.simulate); url: its API base, for a test or a proxy
  tenderly = S("table", { doc = "simulation through Tenderly when set (ferry.simulate)", fields = {
    account = S("string", { doc = "the Tenderly account" }), project = S("string", { doc = "the Tenderly project" }),
    access_key = S("string", { hide = true, doc = "the API key; never shown" }),
    url = S("string", { doc = "the API base (a test or a proxy)" }) } }),
  flashbots = S("table", { doc = "accepted but not read yet", fields = {
    relay = S("string", { doc = "a relay URL (not used yet)" }), auth_key = S("string", { doc = "a signing key (not used yet)" }) } }),
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
