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
local task = require "ferry.core.task"
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

-- rpc error code -> health outcome
local OUTCOME = {
  timeout = "timeout", provider_down = "refused", rate_limited = "rate_limited",
  bad_response = "bad_response",
}

local function outcome_of(err)
  if err.code == "provider_down" then
    if err.http_status then return "http_5xx" end
    return "refused"
  end
  return OUTCOME[err.code] or "tx_error"
end

local function head_bound(method, params)
  if HEAD_METHODS[method] then return true end
  for _, p in ipairs(params) do
    if p == "latest" or p == "pending" or p == "safe" or p == "finalized" then return true end
  end
  return false
end

local function hex(n) return ("0x%x"):format(n) end

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
    timeout = rcfg.timeout or 10,
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
      limiter = ratelimit.new{ rate = p.rps, burst = p.burst and p.burst > 1 and p.burst - 1 or p.burst },
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

-- A reply of the wrong shape for its method is provider p's bad_response. -> r, e
function Pool:_checked(p, method, r, e)
  local why = e == nil and self.check and self.check(method, r)
  if not why then return r, e end
  return nil, ferry.error("bad_response", ("%s from %s: %s"):format(method, p.name, why), { provider = p.name })
end

-- One attempt on provider i; posts {i, result, err, dt} on q. Runs as its own task.
function Pool:_attempt(i, method, params, deadline, q)
  local p = self.providers[i]
  local t0 = ferry.now()
  local function post(r, e) q:put({ i = i, r = r, e = e, dt = ferry.now() - t0 }) end
  local left = deadline - t0
  if left <= 0 then return post(nil, ferry.error("timeout", "deadline passed before the request")) end
  self.st.upstream = self.st.upstream + 1
  local r, e = self:_checked(p, method, p.client:call(method, params, { timeout = math.min(p.timeout, left) }))
  if e == nil and method == "eth_blockNumber" then self.health:set_head(i, tonumber(r)) end
  post(r, e)
end

-- Check a provider's chain id once (concurrent first users share the check; it spends a
-- token like any request). -> true | nil, err
function Pool:_verify(p, deadline)
  if not p.verifying then
    p.verifying = ferry.spawn(function()
      local w = p.limiter:reserve(1)
      if w > 0 then ferry.sleep(w) end
      local id, err = p.client:call("eth_chainId", EMPTY, { timeout = math.min(p.timeout, deadline - ferry.now()) })
      if not id then return nil, err end
      local got = tonumber(tostring(id))
      if got ~= self.expected_chain_id then
        return nil, ferry.error("wrong_chain", ("provider %s serves chain id %s, expected %d")
          :format(p.name, tostring(id), self.expected_chain_id), { provider = p.name })
      end
      p.verified = true
      return true
    end):detach()
  end
  local t = p.verifying
  local ok, r, err = t:wait(math.max(0.001, deadline - ferry.now()))
  if p.verifying == t and t:status() ~= "waiting" and t:status() ~= "ready" then p.verifying = nil end
  if ok == nil then return nil, r end
  if not ok then return nil, ferry.error("provider_down", tostring(r), { provider = p.name }) end
  return r, err
end

-- Pick a provider not in `exclude`, waiting for its token bucket. Returns i or nil, wait.
function Pool:_pick(exclude, deadline, pinned)
  local last_err
  while true do
    local i, wait
    if pinned and not exclude[pinned] and self.health:state(pinned) == "closed" then
      i = pinned
    else
      i, wait = self.health:pick(exclude)
    end
    if not i then return nil, wait, last_err end
    local p = self.providers[i]
    -- a provider is used only once its chain id is known to be right
    local ok, err = true
    if not p.verified and self.expected_chain_id then
      local t0 = ferry.now()
      ok, err = self:_verify(p, deadline)
      if not ok then
        self:_report({ i = i, e = err, dt = ferry.now() - t0 })
        exclude[i] = true
        last_err = err
      end
    end
    if ok then
      local w = p.limiter:reserve(1)
      if w <= 0 then return i end
      if ferry.now() + w < deadline then
        ferry.sleep(w)
        return i
      end
      -- its budget cannot be met in time: try another provider
      exclude[i] = true
    end
  end
end

function Pool:_report(msg)
  local p = self.providers[msg.i]
  if msg.e == nil then
    self.health:report(msg.i, "ok", msg.dt)
    return "ok"
  end
  local e = msg.e
  local outcome = e.code == "wrong_chain" and "wrong_chain" or outcome_of(e)
  self.health:report(msg.i, outcome, msg.dt, e.retry_after)
  if outcome == "rate_limited" then
    p.limiter:penalize(e.retry_after or 1)
  elseif outcome ~= "tx_error" then
    -- the next time it is used (after its breaker closes again), check its chain id again
    if self.health:state(msg.i) ~= "closed" then p.verified = false end
  end
  return outcome
end

-- Did the request of a failed attempt perhaps reach the node and take effect? Only an answer
-- from the node itself (a JSON-RPC error object) or a connection that never opened says no.
local function maybe_delivered(e)
  if e.code == "timeout" or e.code == "bad_response" then return true end
  if e.code == "provider_down" then return e.transport ~= "refused" and e.transport ~= "resolve" end
  return false
end

-- The request itself: attempts, failover, hedging, retry rounds. -> result | nil, err
-- A write that fails after an attempt that may have been delivered says so: err.maybe_sent.
-- Whoever sent it must then find out (a transaction: look its hash up), not assume it lost.
function Pool:_request(method, params, opts)
  local deadline = ferry.now() + (opts.timeout or self.timeout * (self.retries + 1))
  local write = WRITES[method]
  local hedge = not write and (opts.hedge_ms and opts.hedge_ms / 1000 or self.hedge) or nil
  local q = task.queue()
  local last_err
  local maybe_sent = false
  local function failed(e)
    if write and e and maybe_delivered(e) then maybe_sent = true end
    if write and maybe_sent and e then e.maybe_sent = true end
    return nil, e
  end
  for round = 0, self.retries do
    local exclude, running = {}, {}
    local function start()
      local i, _, perr = self:_pick(exclude, deadline, opts.provider)
      if perr then last_err = perr end
      if not i then return false end
      exclude[i] = true
      running[i] = ferry.spawn(function() self:_attempt(i, method, params, deadline, q) end)
      return true
    end
    if start() then
      while next(running) do
        local left = deadline - ferry.now()
        if left <= 0 then break end
        local msg = q:get(hedge and math.min(hedge, left) or left)
        if msg == nil then
          -- no answer yet: hedge onto the next provider (reads only), or give up at the deadline
          if hedge and start() then self.st.hedges = self.st.hedges + 1
          elseif ferry.now() >= deadline then break end
        elseif running[msg.i] then
          running[msg.i] = nil
          local outcome = self:_report(msg)
          if outcome == "ok" or outcome == "tx_error" then
            for _, t in pairs(running) do t:cancel("another provider answered") end
            if msg.e then
              self.st.errors = self.st.errors + 1
              return failed(msg.e)
            end
            return msg.r
          end
          last_err = msg.e
          failed(msg.e)
          -- fail over at once
          if start() then self.st.failovers = self.st.failovers + 1 end
        end
      end
      for i, t in pairs(running) do
        t:cancel("deadline")
        self.health:report(i, "timeout", self.providers[i].timeout)
        if write then maybe_sent = true end      -- cut off while it was out
      end
    end
    if ferry.now() >= deadline then break end
    if round < self.retries then
      -- nobody left this round: back off (exponential, half of it jittered), then try everyone
      -- again; a provider blocked by Retry-After sets the wait if that is longer
      self.st.retries = self.st.retries + 1
      local _, wait = self.health:pick({})
      local backoff = math.min(2, 0.05 * 2 ^ round) * (0.5 + math.random() * 0.5)
      if wait and wait > backoff then backoff = wait end
      backoff = math.min(backoff, deadline - ferry.now())
      if backoff > 0 then ferry.sleep(backoff) end
    end
  end
  self.st.errors = self.st.errors + 1
  if last_err then return failed(last_err) end
  return failed(ferry.error(ferry.now() >= deadline and "timeout" or "provider_down",
    ("no healthy provider answered for chain %s"):format(self.name), { chain = self.name }))
end

-- A block number read, cached or fresh, tells the pool about the head. -> r, e unchanged
function Pool:_noted(method, r, e)
  if e == nil and method == "eth_blockNumber" and type(r) == "string" then self.heads:saw_number(tonumber(r)) end
  return r, e
end

-- Fetch (after a cache miss) and store what may be cached.
function Pool:_fetch(method, params, opts, key, ttl)
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
      error(ferry.error("invalid_argument", ("chain %s has no provider %q (it has: %s)")
        :format(self.name, opts.provider, table.concat(names, ", "))), 2)
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
      sess.provider = pool.health:pick({})
    end
    return pool:call(method, params, { fresh = opts.fresh, timeout = opts.timeout, provider = sess.provider })
  end
  return s
end

--- Stop following the head and free the cache. The pool still answers calls afterwards
--- (with no cache); idempotent.
function Pool:close()
  self.follow_every = nil
  if self.tracker then self.tracker:cancel("pool closed") end
  self.cache:flush()
end

-- Heads. One loop per pool (the tracker) polls the head and feeds self.heads:
--  * while anyone waits on new blocks (watch_heads: tx:wait), fast: 20 ms after a new head,
--    backing off 1.5x to 1 s, so N waiters cost one read per tick, not N reads of their own
--    (200 payouts on a 12 s chain ask about 200 receipts a block instead of about 4,000);
--  * while the chain follows its head (track_heads: eth.chain, head_poll), at that interval;
--  * every provider's block number (their lag) at the follow interval, or each second.
-- It stops when nobody waits and nothing follows, and clears itself however it ends.

--- watch_heads() -> guard to <close>: keeps the head fresh while the guard is open.
function Pool:watch_heads()
  self.head_waiters = self.head_waiters + 1
  self:_run_tracker()
  return setmetatable({}, { __close = function() self.head_waiters = self.head_waiters - 1 end })
end

--- track_heads(interval = head_poll or 1) -> the tracker task (a daemon), following the head.
function Pool:track_heads(interval)
  self.follow_every = interval or self.chain.head_poll or 1
  return self:_run_tracker()
end

function Pool:_run_tracker()
  if self.tracker then return self.tracker end
  self.tracker = ferry.spawn(function()
    local _ <close> = setmetatable({}, { __close = function() self.tracker = nil end })  -- a cancel too
    local fast, lag_at = 0.02, -math.huge
    while (self.follow_every or 0) > 0 or self.head_waiters > 0 do
      local follow = self.follow_every or 0
      local lag = ferry.now() - lag_at >= (follow > 0 and follow or 1)
      if lag then lag_at = ferry.now() end
      local before = self.heads.hash
      local ok, err = pcall(self.poll_heads, self, lag)
      if not ok then ferry.log.warn("head tracker", { chain = self.name, err = tostring(err) }) end
      local every = follow
      if self.head_waiters > 0 then
        fast = self.heads.hash ~= before and 0.02 or math.min(fast * 1.5, 1)
        every = follow > 0 and math.min(fast, follow) or fast
      end
      ferry.sleep(every)
    end
  end):daemon()
  return self.tracker
end

-- Send a request straight to provider i if it is usable and has a token; nil otherwise.
function Pool:_direct(i, method, params)
  local p = self.providers[i]
  if self.health:state(i) == "open" or not p.limiter:try_take(1) then return nil end
  local t0 = ferry.now()
  local r, e = self:_checked(p, method, p.client:call(method, params, { timeout = p.timeout }))
  self:_report({ i = i, r = r, e = e, dt = ferry.now() - t0 })
  return r, e
end

--- poll_heads(lag = true): the latest block, from the provider with the highest head (or the
--- best by health), into self.heads; with lag, first every provider's block number.
function Pool:poll_heads(lag)
  local best_i
  if lag ~= false then
    local best
    local tasks = {}
    for i in ipairs(self.providers) do
      tasks[i] = ferry.spawn(function()
        local r = self:_direct(i, "eth_blockNumber", EMPTY)
        local n = r and tonumber(r)
        if n then self.health:set_head(i, n) end
        return n
      end)
    end
    for i, t in ipairs(tasks) do
      local _, n = t:wait()
      if n and (not best or n > best) then best, best_i = n, i end
    end
    if not best_i then return end
  end
  best_i = best_i or self.health:pick({})
  if not best_i then return end
  local function block(tag)
    return self:call("eth_getBlockByNumber", json.array({ tag, false }), { fresh = true, provider = best_i })
  end
  local blk = block("latest")
  if type(blk) ~= "table" then return end
  self.heads:on_head(tonumber(blk.number), blk.hash, blk.parentHash, function(n) return block(hex(n)) end)
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

return M
