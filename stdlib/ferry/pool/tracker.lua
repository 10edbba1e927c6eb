--- ferry.pool.tracker -- the pool's head tracker: one loop per pool that keeps pool.heads
--- fresh. Installed into the Pool class by ferry.pool (require("ferry.pool.tracker")(Pool)).
local ferry = require "ferry"
local json = require "ferry.core.json"

local EMPTY = json.array({})

local function hex(n) return ("0x%x"):format(n) end

return function(Pool)

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
      -- a live WebSocket feed (ferry.subscribe) is the head's source: no polling meanwhile
      local ok, err = true, nil
      if not (self.feed and self.feed:live()) then ok, err = pcall(self.poll_heads, self, lag) end
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
  best_i = best_i or self.health:peek()       -- nil: any provider (the call picks)
  local function block(tag)
    return self:call("eth_getBlockByNumber", json.array({ tag, false }), { fresh = true, provider = best_i })
  end
  local blk = block("latest")
  if type(blk) ~= "table" then return end
  local outcome = self.heads:on_head(tonumber(blk.number), blk.hash, blk.parentHash, function(n) return block(hex(n)) end)
  -- a reorg seen by polling: the transactions this process saw mined in replaced blocks are
  -- re-verified, as the live feed does (ferry.eth.tx; not required here: no cycle, and a
  -- process that never sent has none)
  local Tx = package.loaded["ferry.eth.tx"]
  if outcome == "reorg" and Tx and Tx.reverify then Tx.reverify(self, self.heads.last_reorg) end
end

end
