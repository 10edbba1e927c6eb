--- ferry.pool.request -- one request through the pool: attempts on providers picked by
--- health, failover, hedging, retry rounds. Installed into the Pool class by ferry.pool.
local ferry = require "ferry"
local json = require "ferry.core.json"
local task = require "ferry.core.task"

local EMPTY = json.array({})
local log = ferry.log

-- A provider as errors and logs show it: its name and scheme://host:port (never the path).
local function label(p)
  local origin = tostring(p.client.url)
  if p.name == nil or p.name == origin then return origin end
  return ("%s (%s)"):format(p.name, origin)
end

-- FERRY_LOG=debug: one line per request that went to a provider, when it ended.
-- (for_method: the request a chain id check was made for)
local function log_attempt(p, method, dt, e, for_method)
  if log.enabled("debug") then
    log.debug("rpc attempt", { method = method, provider = p.name, endpoint = tostring(p.client.url),
                               ms = math.floor(dt * 1000 + 0.5), outcome = e and e.code or "ok", ["for"] = for_method })
  end
end

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

return function(Pool, WRITES)

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
  local function post(r, e)
    local dt = ferry.now() - t0
    log_attempt(p, method, dt, e)
    q:put({ i = i, r = r, e = e, dt = dt })
  end
  local left = deadline - t0
  if left <= 0 then return post(nil, ferry.error("timeout", "deadline passed before the request")) end
  self.st.upstream = self.st.upstream + 1
  local r, e = self:_checked(p, method, p.client:call(method, params, { timeout = math.min(p.timeout, left) }))
  if e == nil and method == "eth_blockNumber" then self.health:set_head(i, tonumber(r)) end
  post(r, e)
end

-- Check a provider's chain id once (concurrent first users share the check; it spends a
-- token like any request). -> true | nil, err
function Pool:_verify(p, deadline, for_method)
  if not p.verifying then
    p.verifying = ferry.spawn(function()
      local w = p.limiter:reserve(1)
      if w > 0 then ferry.sleep(w) end
      local t0 = ferry.now()
      local id, err = p.client:call("eth_chainId", EMPTY, { timeout = math.min(p.timeout, deadline - ferry.now()) })
      log_attempt(p, "eth_chainId", ferry.now() - t0, err, for_method)
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
-- r: the request, which counts the chain id checks it waits on as its attempts.
function Pool:_pick(exclude, deadline, pinned, r)
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
      if r then r.attempts, r.current = r.attempts + 1, i; r.tried[i] = true end
      ok, err = self:_verify(p, deadline, r and r.method)
      if r then r.current = nil end
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
-- r: one request's state. An error of a write that may have been delivered (now or by an
-- earlier attempt) carries maybe_sent. -> nil, e
local function failed(r, e)
  if r.write and e and maybe_delivered(e) then r.maybe_sent = true end
  if r.write and r.maybe_sent and e then e.maybe_sent = true end
  return nil, e
end

-- One round: attempts on the providers not tried in it, failing over at once and hedging
-- reads. -> true, result, err once a provider answered (err: the request's own error, such
-- as a revert), or false when none did (r.last_err says why).
function Pool:_round(r)
  local exclude, running = {}, {}
  local function start()
    local i, _, perr = self:_pick(exclude, r.deadline, r.opts.provider, r)
    if perr then r.last_err = perr end
    if not i then r.current = nil; return false end
    exclude[i] = true
    r.attempts, r.current = r.attempts + 1, i
    r.tried[i] = true
    running[i] = ferry.spawn(function() self:_attempt(i, r.method, r.params, r.deadline, r.q) end)
    return true
  end
  if not start() then return false end
  while next(running) do
    local left = r.deadline - ferry.now()
    if left <= 0 then break end
    local msg = r.q:get(r.hedge and math.min(r.hedge, left) or left)
    if msg == nil then
      -- no answer yet: hedge onto the next provider (reads only), or give up at the deadline
      if r.hedge and start() then self.st.hedges = self.st.hedges + 1
      elseif ferry.now() >= r.deadline then break end
    elseif running[msg.i] then
      running[msg.i] = nil
      local outcome = self:_report(msg)
      if outcome == "ok" or outcome == "tx_error" then
        for _, t in pairs(running) do t:cancel("another provider answered") end
        return true, msg.r, msg.e
      end
      r.last_err = msg.e
      failed(r, msg.e)
      if start() then self.st.failovers = self.st.failovers + 1 end   -- fail over at once
    end
  end
  for i, t in pairs(running) do
    t:cancel("deadline")
    self.health:report(i, "timeout", self.providers[i].timeout)
    if r.write then r.maybe_sent = true end      -- cut off while it was out
  end
  r.current = nil
  return false
end

-- Nobody left this round: back off (exponential, half of it jittered) before trying everyone
-- again; a provider blocked by Retry-After sets the wait if that is longer.
--
-- A wait longer than the backoff is looked at again every PROBE_LOOK seconds: it may be a
-- half-open breaker's probe in flight (retry_in counts its whole probe timeout, 10 s), which
-- usually settles in milliseconds and frees the provider for everyone.
local PROBE_LOOK = 0.05

function Pool:_backoff(round, deadline)
  self.st.retries = self.st.retries + 1
  local backoff = math.min(2, 0.05 * 2 ^ round) * (0.5 + math.random() * 0.5)
  local left = deadline - ferry.now()
  if left > 0 then ferry.sleep(math.min(backoff, left)) end
  while true do
    local wait = self.health:retry_in({})      -- a look only: pick would take a half-open probe
    left = deadline - ferry.now()
    if not wait or wait <= 0 or left <= 0 then return end
    ferry.sleep(math.min(PROBE_LOOK, wait, left))
  end
end

-- The providers a request tried, as errors show them.
function Pool:_tried(r)
  local names, labels = {}, {}
  for i, p in ipairs(self.providers) do
    if r.tried[i] then names[#names + 1] = p.name; labels[#labels + 1] = label(p) end
  end
  return table.concat(names, ", "), table.concat(labels, ", ")
end

-- A request still waiting after WARN_AFTER seconds (or half its time, when shorter) says once
-- what it waits on: a silent provider shows up in the log long before the timeout.
local WARN_AFTER = 5

function Pool:_watch(r)
  local after = math.min(WARN_AFTER, (r.deadline - r.t0) / 2)
  return ferry.spawn(function()
    ferry.sleep(after)
    local p = r.current and self.providers[r.current]
    local f = { chain = self.name, method = r.method, waited_s = math.floor((ferry.now() - r.t0) * 10 + 0.5) / 10,
                attempts = r.attempts }
    if p then
      f.provider, f.endpoint = p.name, tostring(p.client.url)
    else
      -- between attempts: no provider can be asked now (breakers open, budgets spent, backoff)
      local states = {}
      for i, q in ipairs(self.providers) do states[#states + 1] = q.name .. ": " .. self.health:state(i) end
      f.provider, f.providers = "none available now", table.concat(states, ", ")
    end
    log.warn("still waiting", f)
  end)
end

-- The error of a request no provider answered: what was asked, of whom, how often, how long.
function Pool:_no_answer(r)
  local last = r.last_err
  local elapsed = ferry.now() - r.t0
  local code = last and last.code or (ferry.now() >= r.deadline and "timeout" or "provider_down")
  local names, labels = self:_tried(r)
  local msg
  if labels ~= "" then
    msg = ("%s: no answer from %s after %d attempt%s in %.1f s"):format(r.method, labels, r.attempts,
      r.attempts == 1 and "" or "s", elapsed)
  else
    -- nobody could be asked: breakers open, budgets that cannot be met before the deadline
    local states = {}
    for i, p in ipairs(self.providers) do states[#states + 1] = ("%s: breaker %s"):format(label(p), self.health:state(i)) end
    msg = ("%s: no provider of chain %s could be asked in %.1f s (%s)"):format(r.method, self.name, elapsed,
      table.concat(states, ", "))
  end
  if last and last.message then msg = msg .. " (last: " .. tostring(last.message) .. ")" end
  local e = {}
  for k, v in pairs(last or {}) do e[k] = v end     -- transport, http_status, retry_after ...
  e.chain, e.method, e.attempts, e.elapsed = self.name, r.method, r.attempts, elapsed
  e.provider = e.provider or (names ~= "" and names or nil)   -- the one that failed last
  e.providers = names ~= "" and names or nil
  return ferry.error(code, msg, e)
end

function Pool:_request(method, params, opts)
  local write = WRITES[method]
  local t0 = ferry.now()
  local r = { method = method, params = params, opts = opts, write = write, q = task.queue(),
              t0 = t0, deadline = t0 + (opts.timeout or self.timeout * (self.retries + 1)),
              hedge = not write and (opts.hedge_ms and opts.hedge_ms / 1000 or self.hedge) or nil,
              maybe_sent = false, last_err = nil, attempts = 0, tried = {}, current = nil }
  local watch = self:_watch(r)
  local _ <close> = setmetatable({}, { __close = function() watch:cancel("request over") end })
  for round = 0, self.retries do
    local answered, result, err = self:_round(r)
    if answered then
      if err == nil then return result end
      self.st.errors = self.st.errors + 1
      -- the node's own answer (a revert, nonce too low): its message stays as the node gave it
      err.method, err.attempts, err.elapsed = err.method or method, r.attempts, ferry.now() - t0
      return failed(r, err)
    end
    if ferry.now() >= r.deadline then break end
    if round < self.retries then self:_backoff(round, r.deadline) end
  end
  self.st.errors = self.st.errors + 1
  return failed(r, self:_no_answer(r))
end
end
