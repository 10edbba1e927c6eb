--- ferry.subscribe -- the live feed of one chain: heads, logs and pending transactions over
--- its providers' `ws`, with nothing lost across drops.
---
---   local sub <close> = chain:subscribe("heads")             -- or "logs", {address =, topics =}
---   for head in sub:each() do print(head.number, head.hash) end     -- or "pending"
---   local item, err = sub:next{timeout = 5}; sub:close()
---
--- One Feed per chain (its pool): a connector task keeps one WebSocket up (backoff with jitter,
--- the next provider's `ws` on each failure, everything subscribed again), and one processor
--- task turns what arrives into items, in chain order:
---  * every head goes through `advance`: a head whose parent is the last one delivered is
---    delivered; a gap (a drop, a slow socket) is filled by walking back over HTTP by parent
---    hash (eth_getBlockByHash) to the last block delivered, so each block is delivered
---    exactly once and in order; a walk that meets a block delivered with another hash is a
---    reorg (below);
---  * logs come from the heads, not from a `logs` subscription (anvil orders the two streams
---    differently from block to block, so a socket's logs cannot say when a block's logs are
---    complete): for each delivered block whose logsBloom may hold the filter's logs, one
---    eth_getLogs by blockHash. So each log is delivered once, in (block, logIndex) order,
---    and a backfilled block's logs come with it;
---  * while no socket is up the processor polls the latest block over HTTP (pool's head_poll)
---    through the same `advance`, so the feed (and pool.heads) goes on;
---  * a reorg (a parent that does not match, a number that goes back): the logs delivered for
---    the replaced blocks are delivered again with removed = true, newest first, then the new
---    chain's blocks and logs; the first new head carries `reorg = {depth, fork, old, new}`;
---    pool.heads hears of it (the cache drops what it replaced) and reorg listeners run
---    (ferry.eth.tx re-verifies the transactions it sent that were mined in replaced blocks).
---
--- Every subscription keeps at most `max_queue` items (default 4096): a reader that falls
--- behind loses the oldest, and the next item it gets says how many with `gap = n`.
local ferry = require "ferry"
local json = require "ferry.core.json"
local keccak = require "ferry.core.keccak"
local task = require "ferry.core.task"
local rpc = require "ferry.rpc"
local ws = require "ferry.ws"

local M = {}

local KEEP = 128            -- delivered blocks remembered (hashes, and logs for removal)
local DEFAULT_QUEUE = 4096

local function hex(n) return ("0x%x"):format(n) end
local function num(x) return type(x) == "string" and tonumber(x:sub(3), 16) or x end

-- ---------------------------------------------------------------------------------------
-- Subscription: a bounded queue read by one task at a time
-- ---------------------------------------------------------------------------------------
local Sub = {}
Sub.__index = Sub
Sub.__name = "ferry.Subscription"

local function new_sub(feed, kind, filter, opts)
  return setmetatable({
    feed = feed, kind = kind, filter = filter,
    max = opts and opts.max_queue or DEFAULT_QUEUE,
    items = {}, head = 1, tail = 0,          -- items[head..tail]
    dropped = 0, lost = 0, delivered = 0,
    signal = task.queue(), waiting = false,
    closed = false,
  }, Sub)
end

function Sub:_push(item)
  if self.closed then return end
  if self.tail - self.head + 1 >= self.max then
    self.items[self.head] = nil
    self.head = self.head + 1
    self.dropped = self.dropped + 1
    self.lost = self.lost + 1
  end
  self.tail = self.tail + 1
  self.items[self.tail] = item
  self.delivered = self.delivered + 1
  if self.waiting then
    self.waiting = false
    self.signal:put(true)
  end
end

--- next{timeout =} -> item | nil, err (timeout, or cancelled once closed)
---@param opts? table {timeout = seconds}
---@return table|nil item a head, a log or a pending hash (with gap = n when items were lost)
---@return table|nil err
function Sub:next(opts)
  local timeout = opts and opts.timeout
  local deadline = timeout and ferry.now() + timeout
  while self.head > self.tail do
    if self.closed then return nil, ferry.error("cancelled", "subscription closed") end
    self.waiting = true
    local left = deadline and deadline - ferry.now()
    if left and left <= 0 then return nil, ferry.error("timeout", "no item within " .. timeout .. " s") end
    local ok, err = self.signal:get(left)
    if ok == nil then                                   -- timed out (or cancelled)
      self.waiting = false
      return nil, err
    end
  end
  local item = self.items[self.head]
  self.items[self.head] = nil
  self.head = self.head + 1
  if self.dropped > 0 then
    item.gap = self.dropped
    self.dropped = 0
  end
  return item
end

--- each() -> iterator over the items until the subscription is closed
---@return function iterator
function Sub:each()
  return function()
    local item, err = self:next()
    if item then return item end
    if err.code == "cancelled" then return nil end
    error(err, 2)
  end
end

--- close(): no more items; a reader waiting in next() gets cancelled (also `local sub <close>`)
function Sub:close()
  if self.closed then return end
  self.closed = true
  self.feed:_remove(self)
  if self.waiting then
    self.waiting = false
    self.signal:put(false)
  end
end
Sub.__close = Sub.close

--- stats() -> {kind, queued, lost, delivered}
---@return table
function Sub:stats()
  return { kind = self.kind, queued = self.tail - self.head + 1, lost = self.lost, delivered = self.delivered }
end

-- ---------------------------------------------------------------------------------------
-- Log filters: the bloom test, and the eth_getLogs filter object
-- ---------------------------------------------------------------------------------------

-- the three bloom bits of a value (an address or topic, hex)
local function bloom_bits(v)
  local h = keccak.keccak256(keccak.fromhex(v))       -- of the bytes, not of the hex text
  local bits = {}
  for i = 0, 2 do
    bits[#bits + 1] = ((h:byte(2 * i + 1) << 8) | h:byte(2 * i + 2)) & 2047
  end
  return bits
end

local function bloom_has(bloom, bits)
  for _, bit in ipairs(bits) do
    -- bit 0 is the lowest bit of the last byte
    local byte_i = 256 - (bit >> 3)
    local b = tonumber(bloom:sub(2 * byte_i + 1, 2 * byte_i + 2), 16)
    if not b or (b >> (bit & 7)) & 1 == 0 then return false end
  end
  return true
end

local function list(v) if v == nil or v == json.null then return nil end
  return type(v) == "table" and v or { v } end

-- a filter {address = a | {a...}, topics = {t | {t...} | nil, ...}} prepared for bloom tests
local function prepare_filter(f)
  f = f or {}
  local p = { address = list(f.address), topics = {} }
  p.address_bits = p.address and {} or nil
  for i, a in ipairs(p.address or {}) do p.address_bits[i] = bloom_bits(a:lower()) end
  for i, t in ipairs(f.topics or {}) do
    local alts = list(t)
    if alts then
      local bits = {}
      for j, x in ipairs(alts) do bits[j] = bloom_bits(x:lower()) end
      p.topics[i] = bits
    end
  end
  p.ntopics = #(f.topics or {})
  p.rpc = { address = f.address, topics = f.topics and json.array(f.topics) or nil }
  return p
end

local function any_in(bloom, alts)
  for _, bits in ipairs(alts) do if bloom_has(bloom, bits) then return true end end
  return false
end

-- may the block with this logsBloom hold logs the filter matches?
local function may_match(bloom, p)
  if type(bloom) ~= "string" or #bloom ~= 514 then return true end
  if p.address_bits and not any_in(bloom, p.address_bits) then return false end
  for i = 1, p.ntopics do
    local alts = p.topics[i]
    if alts and not any_in(bloom, alts) then return false end
  end
  return true
end
M._may_match, M._prepare_filter = may_match, prepare_filter

-- ---------------------------------------------------------------------------------------
-- Feed: one per pool
-- ---------------------------------------------------------------------------------------
local Feed = {}
Feed.__index = Feed
Feed.__name = "ferry.Feed"

local function ws_providers(chain)
  local out = {}
  for _, p in ipairs(chain.cfg.providers or {}) do
    if p.ws then out[#out + 1] = { name = p.name or rpc.redact_url(p.ws), url = p.ws } end
  end
  return out
end

--- feed(chain, opts?) -> the chain's one Feed (made on first use)
---@param chain Chain
---@param opts? table {poll?, ping_interval? = 5, pong_timeout? = 5, backoff? = 0.05, max_backoff? = 5}
---@return Feed
function M.feed(chain, opts)
  local pool = chain.pool
  if pool.feed then return pool.feed end
  opts = opts or {}
  local self = setmetatable({
    chain = chain, pool = pool, name = chain.name,
    providers = ws_providers(chain),
    at = 0,                        -- the provider in use (index into providers)
    subs = { heads = {}, logs = {}, pending = {} },
    inbox = task.queue(),
    swept = task.queue(),          -- a token per head delivered (Feed:_sweep)
    queued = 0,                    -- events posted to the inbox and not yet handled
    last = nil,                    -- the last block delivered {number, hash, parent}
    hashes = {},                   -- number -> hash of delivered blocks (the last KEEP)
    logs_at = {},                  -- block hash -> {sub -> {logs delivered}}
    listeners = {},                -- reorg listeners
    poll = opts.poll or chain.cfg.head_poll or 1,
    ping_interval = opts.ping_interval or 5, pong_timeout = opts.pong_timeout or 5,
    backoff = opts.backoff or 0.05, max_backoff = opts.max_backoff or 5,
    st = { ws_state = "down", connects = 0, reconnects = 0, failovers = 0, backfilled_blocks = 0,
           backfilled_logs = 0, reorgs = 0, deepest_reorg = 0, polls = 0, heads = 0, logs = 0,
           pending = 0, protocol_errors = 0, by_provider = {} },
  }, Feed)
  pool.feed = self
  ferry.register_stats("feed:" .. chain.name, function() return self:stats() end)
  self.processor = ferry.spawn(self._process, self):daemon()
  self.sweeper = ferry.spawn(self._sweep, self):daemon()
  if #self.providers > 0 then self.connector = ferry.spawn(self._connect_loop, self):daemon() end
  return self
end

--- live() -> true while a socket is up and subscribed (the pool's tracker stops polling)
---@return boolean
function Feed:live() return self.client ~= nil and self.subscribed == true end

--- on_reorg(fn): fn(reorg) on each reorg the feed finds
---@param fn fun(reorg: table)
function Feed:on_reorg(fn) self.listeners[#self.listeners + 1] = fn end

function Feed:_remove(sub)
  for i, s in ipairs(self.subs[sub.kind]) do
    if s == sub then table.remove(self.subs[sub.kind], i) break end
  end
  if self.client and not self:_subscribed() then self.client:keep_alive(false) end
end

local function provider_stats(self, name)
  local s = self.st.by_provider[name]
  if not s then
    s = { ws_state = "down", connects = 0, reconnects = 0, drops = 0, backfilled_blocks = 0, backfilled_logs = 0,
          reorgs = 0, deepest_reorg = 0 }
    self.st.by_provider[name] = s
  end
  return s
end

-- count n more of `what` for the provider whose socket is (or was last) up
function Feed:_count(what, n)
  self.st[what] = self.st[what] + (n or 1)
  if self.current then
    local ps = provider_stats(self, self.current)
    ps[what] = ps[what] + (n or 1)
  end
end

-- the deepest reorg seen, overall and for the provider whose socket is up
function Feed:_deepest(depth)
  self.st.deepest_reorg = math.max(self.st.deepest_reorg, depth)
  if self.current then
    local ps = provider_stats(self, self.current)
    ps.deepest_reorg = math.max(ps.deepest_reorg, depth)
  end
end

function Feed:_count_reorg(depth)
  self:_count("reorgs")
  self:_deepest(depth)
end

-- The connector: one socket at a time, to the next provider after each failure.
function Feed:_connect_loop()
  local failures = 0
  while true do
    local p = self.providers[self.at % #self.providers + 1]
    local ps = provider_stats(self, p.name)
    ps.ws_state = "connecting"
    local done = task.queue()
    local client, err = ws.connect(p.url, { name = p.name, timeout = 5, ping_interval = self.ping_interval,
      pong_timeout = self.pong_timeout, on_close = function(e) done:put(e or true) end,
      background = not self:_subscribed() })
    local ok = client ~= nil
    if client then
      local id
      id, err = client:subscribe({ "newHeads" }, function(h) self:_head_frame(h) end)
      if id and #self.subs.pending > 0 then
        id, err = client:subscribe({ "newPendingTransactions" }, function(hash) self:_pending(hash) end)
        self.pending_id = id
      end
      ok = id ~= nil
      if not ok then client:close() end
    end
    if ok then
      failures = 0
      client:keep_alive(self:_subscribed())           -- a reader came while it connected
      self.st.connects = self.st.connects + 1
      ps.connects = ps.connects + 1
      if self.st.connects > 1 then self.st.reconnects = self.st.reconnects + 1; ps.reconnects = ps.reconnects + 1 end
      self.client, self.subscribed, self.with_pending = client, true, #self.subs.pending > 0
      self.current = p.name
      self.st.ws_state, ps.ws_state = "up", "up"
      -- what happened while no socket was up is fetched now, before anything new
      self:_post({ kind = "connected" })
      local why = done:get()
      self.client, self.subscribed = nil, false
      self.st.ws_state, ps.ws_state = "down", "down"
      ps.drops = ps.drops + 1
      if ferry.is_error(why) and why.code == "bad_response" then self.st.protocol_errors = self.st.protocol_errors + 1 end
      ferry.log.info("ws feed down", { chain = self.name, provider = p.name, err = tostring(why) })
      self:_post({ kind = "down" })
      if self.reconnect_now then self.reconnect_now = false else failures = 1 end
    else
      ps.ws_state = "down"
      failures = failures + 1
      self.at = self.at + 1                             -- fail over to the next provider
      if #self.providers > 1 then self.st.failovers = self.st.failovers + 1 end
      ferry.log.debug("ws connect failed", { chain = self.name, provider = p.name, err = tostring(err) })
    end
    if failures > 0 then
      local d = math.min(self.max_backoff, self.backoff * 2 ^ (failures - 1))
      ferry.sleep(d * (0.5 + math.random() * 0.5))      -- jitter: reconnects do not march in step
    end
  end
end

-- A pending transaction goes straight to the bounded queues (no order to keep with blocks):
-- a flood of them never piles up in the processor's inbox.
function Feed:_pending(hash)
  self.st.pending = self.st.pending + 1
  for _, s in ipairs(self.subs.pending) do s:_push({ hash = hash }) end
end

-- Does anyone read heads or logs (and so need every block, in order, across drops)?
function Feed:_readers() return #self.subs.heads + #self.subs.logs > 0 end
-- Does anyone read anything? A feed nobody reads does not keep the script alive.
function Feed:_subscribed() return self:_readers() or #self.subs.pending > 0 end

-- The garbage collector's work, paid right after each head is delivered: this task is
-- readied after the subscribers the head woke, so it runs once they have the head, and the
-- collector's debt is not left for an allocation in the middle of the next frame's path
-- (measured: head latency p99 0.86 ms with the collector stepping wherever it falls, 0.16-0.18
-- ms with this; docs/ws.md).
function Feed:_sweep()
  while true do
    self.swept:get()
    collectgarbage("step", 0)
  end
end

-- an event for the processor; `queued` counts those not yet handled
function Feed:_post(ev)
  self.queued = self.queued + 1
  self.inbox:put(ev)
end

-- A head from the socket. The common case is delivered at once, from the socket's reader
-- task: the block on top of the last one delivered, nothing queued or in hand before it, no
-- logs to read, and pool.heads agreeing (no reorg to walk): nothing in that path waits, so
-- the order holds, and the subscriber wakes one task hop after the frame instead of two.
-- Anything else goes to the processor.
function Feed:_head_frame(h)
  local last, n = self.last, num(h.number)
  if self.queued == 0 and last and #self.subs.logs == 0 and type(h) == "table" and n == last.number + 1
     and h.parentHash == last.hash then
    local hashes = self.pool.heads.hashes
    if hashes[n] == nil and (hashes[n - 1] == nil or hashes[n - 1] == h.parentHash) then
      local ok, err = pcall(self._deliver, self, h)
      if not ok then ferry.log.warn("ws feed", { chain = self.name, err = tostring(err) }) end
      return
    end
  end
  self:_post({ kind = "head", block = h })
end

-- Forget what was delivered: the next block is a new start (a feed nobody reads skips a gap
-- instead of backfilling it; pool.heads still compares that block with the hashes it knows,
-- so a reorg across the gap is still found there).
function Feed:_restart()
  self.last, self.hashes, self.logs_at = nil, {}, {}
end

-- The processor: the one task that delivers, so delivery is in order. A feed nobody reads
-- (started by eth.chain for a provider with `ws`) only feeds pool.heads: while its socket is
-- down the pool's tracker polls (the feed does not poll too), and on a reconnect it starts
-- again from the latest block instead of backfilling what nobody asked for.
function Feed:_process()
  while true do
    local poll = not self:live() and (self:_readers() or not self.pool.tracker) and self.poll > 0
    local ev = self.inbox:get(poll and self.poll or nil)
    local ok, err = pcall(function()
      if not ev then                                    -- no socket: poll
        if not poll then return end
        self.st.polls = self.st.polls + 1
        self:_latest()
      elseif ev.kind == "head" then
        if not self:_readers() and self.last and self.hashes[num(ev.block.number) - 1] ~= ev.block.parentHash then
          self:_restart()                               -- a gap nobody reads: start here
        end
        self:advance(ev.block)
      elseif ev.kind == "connected" then
        if not self:_readers() then self:_restart() end
        self:_latest()
      end
    end)
    if ev then self.queued = self.queued - 1 end
    if not ok then ferry.log.warn("ws feed", { chain = self.name, err = tostring(err) }) end
  end
end

-- a block over HTTP, by hash or number; raises when it cannot be had
function Feed:_block(method, arg)
  local b, err
  for _ = 1, 3 do
    b, err = self.pool:call(method, json.array({ arg, false }), { fresh = true })
    if type(b) == "table" then return b end
  end
  error(ferry.error("provider_down", ("%s %s: %s"):format(method, tostring(arg), tostring(err or "no block"))))
end

function Feed:_latest()
  self:advance(self:_block("eth_getBlockByNumber", "latest"), true)
end

-- Bring the delivered chain up to block b (a header table): fill gaps, detect reorgs.
--- advance(b, polled?): bring the delivered chain up to block b (fill gaps, detect reorgs)
---@param b table a block header
---@param polled? boolean b came from polling, not the socket
function Feed:advance(b, polled)
  local n = num(b.number)
  if self.hashes[n] == b.hash then return end                     -- delivered already
  if not self.last then return self:_deliver(b, nil, polled) end  -- the start
  -- walk back by parent hash until a block we delivered (or the edge of what we keep)
  local chain = { b }
  local cur = b
  while true do
    local m = num(cur.number) - 1
    local known = self.hashes[m]
    if known == cur.parentHash then break end                      -- joined
    if m < 0 or m < self.last.number - KEEP + 2 then break end     -- too deep: start over here
    if not known and m <= self.last.number then break end          -- below what we remember
    cur = self:_block("eth_getBlockByHash", cur.parentHash)
    table.insert(chain, 1, cur)
  end
  local fork = num(chain[1].number) - 1
  local reorg
  if fork < self.last.number then
    reorg = { fork = fork, depth = self.last.number - fork, old = {}, new = {} }
    for k = fork + 1, self.last.number do reorg.old[#reorg.old + 1] = self.hashes[k] end
    for _, x in ipairs(chain) do if num(x.number) <= self.last.number then reorg.new[#reorg.new + 1] = x.hash end end
    self:_unwind(fork)
  end
  for i, x in ipairs(chain) do
    local backfilled = i < #chain
    if backfilled then self:_count("backfilled_blocks") end
    self:_deliver(x, i == 1 and reorg or nil, polled, backfilled)
  end
end

-- A reorg back to `fork`: logs of the replaced blocks delivered again as removed, newest
-- first; the hashes above the fork forgotten.
function Feed:_unwind(fork)
  self:_count("reorgs")
  for k = self.last.number, fork + 1, -1 do
    local h = self.hashes[k]
    local per = h and self.logs_at[h]
    if per then
      for _, s in ipairs(self.subs.logs) do
        local logs = per[s] or {}
        for i = #logs, 1, -1 do
          local l = {}
          for key, v in pairs(logs[i]) do l[key] = v end
          l.removed = true
          l.gap = nil
          s:_push(l)
        end
      end
      self.logs_at[h] = nil
    end
    self.hashes[k] = nil
  end
end

function Feed:_deliver(b, reorg, polled, backfilled)
  local n = num(b.number)
  -- the logs first: a failure to read them leaves the block undelivered (the next head
  -- backfills it), never delivered without its logs
  local logs = #self.subs.logs > 0 and self:_fetch_logs(b) or nil
  self.hashes[n] = b.hash
  self.hashes[n - KEEP] = nil
  local old = self.last and self.hashes[self.last.number - KEEP + 1]
  if old then self.logs_at[old] = nil end
  self.last = { number = n, hash = b.hash, parent = b.parentHash }
  self.st.heads = self.st.heads + 1
  if reorg then
    self:_deepest(reorg.depth)
    ferry.log.warn("reorg", { chain = self.name, fork_point = reorg.fork, depth = reorg.depth, new_head = n })
  end
  -- pool.heads: the cache, the receipt book and tx:wait's waiters (it finds the same reorg
  -- itself, or one the feed could not see: a gap nobody read)
  local outcome = self.pool.heads:on_head(n, b.hash, b.parentHash, function(k)
    return self.pool:call("eth_getBlockByNumber", json.array({ hex(k), false }), { fresh = true })
  end)
  if reorg or outcome == "reorg" then
    -- the transactions this process saw mined in replaced blocks (ferry.eth.tx)
    local Tx = package.loaded["ferry.eth.tx"]
    local r = reorg or self.pool.heads.last_reorg
    if not reorg then self:_count_reorg(r.depth) end      -- one only pool.heads could see
    if Tx and Tx.reverify then r.transactions = Tx.reverify(self.pool, r) end
  end
  if reorg then
    for _, fn in ipairs(self.listeners) do
      local ok, err = pcall(fn, reorg)
      if not ok then ferry.log.error("reorg listener failed", { chain = self.name, err = tostring(err) }) end
    end
  end
  local item = { number = n, hash = b.hash, parent_hash = b.parentHash, timestamp = num(b.timestamp),
                 base_fee = b.baseFeePerGas, block = b, reorg = reorg, backfilled = backfilled or nil,
                 polled = polled or nil }
  for _, s in ipairs(self.subs.heads) do
    local copy = {}
    for k, v in pairs(item) do copy[k] = v end
    s:_push(copy)
  end
  if logs then self:_push_logs(b, logs, backfilled) end
  if #self.swept == 0 then self.swept:put(true) end
end

-- {sub -> logs of block b it wants}, sorted by logIndex. A block the node no longer knows
-- (replaced while we read it: the next head says how) has none; any other failure raises.
function Feed:_fetch_logs(b)
  local out = {}
  for _, s in ipairs(self.subs.logs) do
    if may_match(b.logsBloom, s.filter) then
      local f = { blockHash = b.hash, address = s.filter.rpc.address, topics = s.filter.rpc.topics }
      local logs, err = self.pool:call("eth_getLogs", json.array({ f }), { fresh = true })
      if type(logs) ~= "table" then
        if err and err.code == "rpc_error" and tostring(err.message):lower():find("unknown block", 1, true) then
          ferry.log.debug("logs of a block replaced meanwhile", { chain = self.name, block = b.hash })
          logs = {}
        else
          error(ferry.error("provider_down", "eth_getLogs: " .. tostring(err)))
        end
      end
      table.sort(logs, function(a, c) return num(a.logIndex) < num(c.logIndex) end)
      out[s] = logs
    end
  end
  return out
end

function Feed:_push_logs(b, per, backfilled)
  self.logs_at[b.hash] = per
  for s, logs in pairs(per) do
    for _, l in ipairs(logs) do
      l.number = num(l.blockNumber)
      l.removed = false
      if backfilled then self:_count("backfilled_logs") end
      self.st.logs = self.st.logs + 1
      local copy = {}
      for k, v in pairs(l) do copy[k] = v end
      s:_push(copy)
    end
  end
end

--- subscribe(chain, kind, filter, opts) -> Subscription
---@param chain Chain
---@param kind string "heads", "logs" or "pending"
---@param filter? table {address =, topics =} for logs
---@param opts? table {max_queue? = 4096} and the feed's options
---@return Subscription
function M.subscribe(chain, kind, filter, opts)
  if kind ~= "heads" and kind ~= "logs" and kind ~= "pending" then
    ferry.raise("invalid_argument", ('chain:subscribe: kind must be "heads", "logs" or "pending", got %s')
      :format(tostring(kind)))
  end
  if filter ~= nil and type(filter) ~= "table" then
    ferry.raise("invalid_argument", "chain:subscribe: filter must be a table {address =, topics =}")
  end
  local feed = M.feed(chain, opts)
  local sub = new_sub(feed, kind, kind == "logs" and prepare_filter(filter) or filter, opts)
  feed.subs[kind][#feed.subs[kind] + 1] = sub
  if not feed:live() then feed:_post({ kind = "wake" }) end  -- a feed nobody read polls from now
  if feed.client then feed.client:keep_alive(true) end          -- and keeps the script alive
  -- a socket up without newPendingTransactions: subscribe on it now
  if kind == "pending" and feed.client and not feed.with_pending then
    feed.with_pending = true
    local client = feed.client
    local id, err = client:subscribe({ "newPendingTransactions" }, function(hash) feed:_pending(hash) end)
    feed.pending_id = id
    if not id then ferry.log.warn("ws pending subscribe", { chain = feed.name, err = tostring(err) }) end
  end
  return sub
end

--- stats() -> the feed's counters (also ferry.stats()["feed:<chain>"])
---@return table
function Feed:stats()
  local s = {}
  for k, v in pairs(self.st) do s[k] = v end
  s.head = self.last and self.last.number
  s.subscriptions = #self.subs.heads + #self.subs.logs + #self.subs.pending
  return s
end

--- close(): the socket and every subscription
function Feed:close()
  for _, kind in ipairs({ "heads", "logs", "pending" }) do
    for _, s in ipairs(self.subs[kind]) do
      s.closed = true
      if s.waiting then s.waiting = false; s.signal:put(false) end
    end
    self.subs[kind] = {}
  end
  if self.connector then self.connector:cancel("feed closed") end
  if self.client then self.client:close() end
  if self.processor then self.processor:cancel("feed closed") end
  if self.sweeper then self.sweeper:cancel("feed closed") end
  if self.pool.feed == self then
    self.pool.feed = nil
    ferry.register_stats("feed:" .. self.name, nil)
  end
end
Feed.__close = Feed.close

return M
