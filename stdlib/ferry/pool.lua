--- ferry.pool -- the provider pool of one chain: rate limits, cache, health, failover, hedging.
---
---   local pool = require("ferry.pool").new("local", cfg.chains["local"], cfg)
---   local n, err = pool:call("eth_blockNumber")
---   pool:status()        -- per provider: state, score, latency, errors, lag, tokens
---
--- A call goes: cache (TTL per method, head-bound entries dropped on a new head, a reorg drops
--- everything above the fork point) -> identical reads in flight share one upstream call ->
--- provider picked by health (weighted round-robin over healthy providers of the best
--- priority tier) -> that provider's token bucket -> JSON-RPC. A refused connection, timeout,
--- 5xx, 429 (Retry-After honoured), garbage reply, wrong chain id or lagging head fails over
--- to the next provider at once; when none is left, rounds are retried with exponential
--- backoff and jitter until the deadline. Reads are hedged: after hedge_ms with no answer the
--- next provider is asked too and the first good answer wins. Errors that describe the
--- request (nonce too low, revert, already known, unknown method) are returned as they are
--- and never count against a provider.
local ferry = require "ferry"
local rpc = require "ferry.rpc"
local json = require "ferry.core.json"
local health = require "ferry.core.health"
local ratelimit = require "ferry.core.ratelimit"
local config = require "ferry.config"
local cachec = require "ferry.core.cache"
local Heads = require "ferry.heads"

local M = {}
local Pool = {}
Pool.__index = Pool

local EMPTY = json.array({})

-- Writes are never shared, hedged or cached.
local WRITES = { eth_sendRawTransaction = true, eth_sendTransaction = true, sendTransaction = true,
                 eth_sendBundle = true, eth_sendPrivateTransaction = true }
-- Answers that depend on the head: dropped when a new head arrives.
local HEAD_METHODS = { eth_blockNumber = true, eth_gasPrice = true, eth_maxPriorityFeePerGas = true,
                       eth_feeHistory = true, eth_getBlockByNumber = true }
-- Answers that never change once deep enough (kept "forever", dropped by a reorg below them).
local FINAL_METHODS = { eth_getTransactionReceipt = true, eth_getTransactionByHash = true }

local function head_bound(method, params)
  if HEAD_METHODS[method] then return true end
  for _, p in ipairs(params) do
    if p == "latest" or p == "pending" or p == "safe" or p == "finalized" then return true end
  end
  return false
end

-- A provider's token bucket: the process's own, or with redis.url set (and
-- redis.shared_rate_limits not false) one budget shared by every process on that Redis,
-- keyed by chain and provider name (docs/redis.md).
local function make_limiter(chain, p, rcfg)
  local burst = p.burst and p.burst > 1 and p.burst - 1 or p.burst
  local own = ratelimit.new{ rate = p.rps, burst = burst }
  if not (rcfg and rcfg.url) or rcfg.shared_rate_limits == false then return own end
  local redis = require "ferry.redis"
  local tag = tostring(chain.chain_id or "?") .. ":" .. tostring(p.name)
  return redis.limiter(redis.shared(rcfg.url, "ratelimit"), { key = redis.key(rcfg.prefix or "ferry:", tag, "rate"),
    rate = p.rps, burst = burst, fallback = own, name = tag })
end

--- A pool for one chain. chain: the validated config.chains[name]; cfg: the whole config;
--- check: check(method, result) -> nil | why, the shape each answer must have (a reply of the
--- wrong shape is a bad_response of that provider, like one that is not JSON).
function M.new(name, chain, cfg, check)
  cfg = cfg or { rpc = {}, cache = { ttl = {} } }
  local rcfg = cfg.rpc or {}
  local self = setmetatable({
    name = name,
    chain = chain,
    expected_chain_id = chain.chain_id,
    confirmations = chain.confirmations or 1,
    timeout = rcfg.timeout or rpc.DEFAULT_TIMEOUT,
    retries = rcfg.retries or 2,
    hedge = chain.hedge_ms and chain.hedge_ms / 1000 or nil,
    ttl = (cfg.cache and cfg.cache.ttl) or {},
    providers = {},
    inflight = {},
    check = check,
    st = { calls = 0, cache_hits = 0, shared = 0, upstream = 0, failovers = 0, hedges = 0,
           retries = 0, errors = 0 },
  }, Pool)
  local hp = {}
  self.by_name = {}
  for i, p in ipairs(chain.providers) do
    self.providers[i] = {
      name = p.name, index = i,
      client = rpc.http(p.url, { timeout = p.timeout or self.timeout, headers = p.headers, name = p.name,
                                 max_bytes = rcfg.max_bytes }),
      -- one token of the burst is held back for the network: the provider counts arrivals,
      -- and requests admitted in order can arrive bunched up; with a token in hand a burst
      -- that arrives up to 1/rps late still stays within rps x t + burst at the provider
      limiter = make_limiter(chain, p, cfg.redis),
      timeout = p.timeout or self.timeout,
      verified = false, -- chain id checked since the breaker last closed
    }
    hp[i] = { name = p.name, weight = p.weight or 1, priority = p.priority or 1 }
    self.by_name[p.name] = i
  end
  local b = chain.breaker or {}
  self.health = health.new{ providers = hp, max_lag = chain.max_lag or 5,
    failure_threshold = b.failure_threshold, cooldown = b.cooldown, max_cooldown = b.max_cooldown,
    error_rate_threshold = b.error_rate_threshold }
  self.cache = cachec.new{ max_entries = cfg.cache and cfg.cache.max_entries or 100000,
                           max_bytes = cfg.cache and cfg.cache.max_bytes or 64 * 1024 * 1024 }
  -- the head: a new one drops head-bound answers, a reorg everything above its fork point
  self.heads = Heads.new{ name = name,
    on_new = function() self.cache:new_head() end,
    on_reorg = function(fork) self.cache:drop_from_block(fork + 1); self.cache:new_head() end }
  self.head_waiters = 0
  return self
end

-- A block number read, cached or fresh, tells the pool about the head. -> r, e unchanged
function Pool:_noted(method, r, e)
  if e == nil and method == "eth_blockNumber" and type(r) == "string" then self.heads:saw_number(tonumber(r)) end
  return r, e
end

-- Fetch (after a cache miss) and store what may be cached.
function Pool:_fetch(method, params, opts, key, ttl)
  local head_before = self.heads.number
  local r, e = self:_noted(method, self:_request(method, params, opts))
  if e == nil and r ~= nil and key then
    if FINAL_METHODS[method] then
      local bn = type(r) == "table" and tonumber(tostring(r.blockNumber))
      local head = self.heads.number
      if bn and head and head - bn >= self.confirmations then
        self.cache:set(key, json.encode(r), 0, { block = bn })
      end
    elseif ttl then
      local hb = head_bound(method, params)
      -- a head-bound answer asked for before a new head arrived may predate it: not kept
      if hb and self.heads.number ~= head_before and method ~= "eth_blockNumber" then return r, e end
      self.cache:set(key, json.encode(r), ttl > 0 and ttl or nil, { head_bound = hb, block = self.heads.number })
    end
  end
  return r, e
end

--- call(method, params, opts) -> result | nil, err
--- opts: fresh (skip the cache and in-flight sharing), timeout (s, whole call), provider
--- (name or index to prefer while it is healthy: a session uses this), hedge_ms.
local CALL_OPTIONS = { fresh = true, timeout = true, provider = true, hedge_ms = true }

function Pool:call(method, params, opts)
  if type(method) ~= "string" or (params ~= nil and type(params) ~= "table") then
    error(ferry.error("invalid_argument", ("chain %s: call(method, params): expects a method name and an array of params, got %s, %s")
      :format(self.name, type(method), type(params))), 2)
  end
  opts = opts or {}
  if next(opts) ~= nil then                 -- {fersh = true} would be served from the cache
    local bad, shown = config.unknown_key(opts, CALL_OPTIONS)
    if bad ~= nil then error(ferry.error("invalid_argument", "chain:call: unknown option " .. shown, { option = bad }), 2) end
  end
  params = params or EMPTY
  if type(opts.provider) == "string" then
    local i = self.by_name[opts.provider]
    if not i then
      local names = {}
      for _, p in ipairs(self.providers) do names[#names + 1] = p.name end
      error(ferry.error("invalid_argument", ferry.redact(("chain %s has no provider %q (it has: %s)")
        :format(self.name, opts.provider, table.concat(names, ", ")))), 2)
    end
    opts = setmetatable({ provider = i }, { __index = opts })
  end
  self.st.calls = self.st.calls + 1
  if #self.providers == 0 then
    return nil, ferry.error("provider_down", ("chain %s has no provider configured"):format(self.name))
  end
  if WRITES[method] or opts.fresh then return self:_noted(method, self:_request(method, params, opts)) end
  -- a read pinned to a provider is its own entry: another provider's answer is not its answer
  local key = method .. json.canonical(params) .. (opts.provider and ("@" .. opts.provider) or "")
  local ttl = self.ttl[method]
  if ttl or FINAL_METHODS[method] then
    local hit = self.cache:get(key)
    if hit then
      self.st.cache_hits = self.st.cache_hits + 1
      return json.decode(hit)
    end
  end
  -- identical reads in flight share one upstream call
  local t = self.inflight[key]
  if t then
    self.st.shared = self.st.shared + 1
  else
    t = ferry.spawn(function()
      local ok, r, e = pcall(self._fetch, self, method, params, opts, (ttl or FINAL_METHODS[method]) and key, ttl)
      self.inflight[key] = nil
      if not ok then error(r, 0) end
      return r, e
    end):detach()
    self.inflight[key] = t
  end
  local ok, r, e = t:wait()
  if not ok then return nil, r end
  return r, e
end

--- A session keeps one logical operation (nonce, estimate, sign, broadcast) on one
--- provider's view of the chain while that provider is healthy.
function Pool:session()
  local pool = self
  local s = { provider = nil }
  function s.call(sess, method, params, opts)
    opts = opts or {}
    if not sess.provider or pool.health:state(sess.provider) ~= "closed" then
      sess.provider = pool.health:peek()       -- nil: the call picks (and may probe) as usual
    end
    return pool:call(method, params, { fresh = opts.fresh, timeout = opts.timeout, provider = sess.provider })
  end
  return s
end

--- Per provider: state, score, latency, errors, lag, tokens.
function Pool:status()
  local out = self.health:status()
  for i, s in ipairs(out) do
    local p = self.providers[i]
    s.tokens = p.limiter:tokens()
    s.rps = p.limiter:stats().rate
    s.verified_chain = p.verified
  end
  return out
end

function Pool:stats()
  local s = {}
  for k, v in pairs(self.st) do s[k] = v end
  for k, v in pairs(self.heads:stats()) do s[k] = v end
  s.cache = self.cache:stats()
  s.providers = self:status()
  return s
end

require("ferry.pool.request")(Pool, WRITES)  -- _request: attempts, failover, hedging, retries
require("ferry.pool.tracker")(Pool)          -- close, watch_heads, track_heads, poll_heads

return M
