--- ferry.heads -- one chain's head: the canonical hashes of its last blocks, reorgs, and
--- waiting for the next block.
---
---   local heads = require("ferry.heads").new{ name = "local", on_new = f, on_reorg = g }
---   heads:on_head(number, hash, parent_hash, fetch)  -- from a poller today, a socket tomorrow
---   heads:wait(after, timeout)                       -- -> the head number once it is past `after`
---
--- Whoever learns of a block feeds it here; nothing else keeps head state. A block whose hash
--- differs from the one known at its height, or whose parent is not the known block below
--- it, is a reorg: the fork point is found by walking back with `fetch(n)` (the canonical
--- block at height n from the same source) while the known hashes disagree. on_new(number)
--- runs for each new head (the cache drops head-bound answers), on_reorg(fork, number) for
--- each reorg (the cache drops what was above the fork point), and every waiter wakes.
local ferry = require "ferry"
local task = require "ferry.core.task"

local M = {}
local Heads = {}
Heads.__index = Heads
Heads.__name = "ferry.Heads"

local DEPTH = 64          -- blocks whose hashes are kept

--- new{name, on_new = fn(number), on_reorg = fn(fork, number), depth = 64}
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    name = opts.name or "chain",
    number = nil, hash = nil,           -- the head
    hashes = {},                        -- number -> hash, the last `depth` canonical blocks
    depth = opts.depth or DEPTH,
    on_new = opts.on_new or function() end,
    on_reorg = opts.on_reorg or function() end,
    waiters = {},                       -- queue -> true
    listeners = {},                     -- fn(fork, number) on each reorg (after on_reorg)
    history = {}, first = 1,            -- {at, number}: when the head became each number
    st = { new_heads = 0, reorgs = 0, deepest_reorg = 0 },
  }, Heads)
end

local HISTORY = 256       -- head changes remembered for number_at

-- the head became n now (kept so number_at can say what the head was at a past moment)
function Heads:_note(n)
  local h = self.history
  h[#h + 1] = { ferry.now(), n }
  if #h - self.first + 1 > HISTORY then
    h[self.first] = nil
    self.first = self.first + 1
  end
end

--- number_at(t) -> the head number this tracker knew at time t (ferry.now() clock), or nil
--- when it knew none then or t is older than what it remembers. A transaction broadcast at t
--- can only be mined in a block above it (ferry.eth.receipts scans from there).
function Heads:number_at(t)
  local h = self.history
  if not h[self.first] or h[self.first][1] > t then return nil end
  for i = #h, self.first, -1 do
    if h[i][1] <= t then return h[i][2] end
  end
  return nil
end

--- listen_reorg(fn): fn(fork, number) runs on each reorg, after the cache has dropped what it
--- replaced (ferry.eth.receipts forgets the replaced blocks it scanned)
function Heads:listen_reorg(fn) self.listeners[#self.listeners + 1] = fn end

-- every waiter learns the head
function Heads:_wake()
  for q in pairs(self.waiters) do q:put(self.number) end
end

function Heads:_new_head(n)
  self.number = n
  self:_note(n)
  self.st.new_heads = self.st.new_heads + 1
  self.on_new(n)
  self:_wake()
end

--- A block number seen without its hash (a block-number read): a new head when higher.
function Heads:saw_number(n)
  if n and (not self.number or n > self.number) then self:_new_head(n) end
end

--- saw_hash(n, hash): block n had this hash when something (a receipt) was read from it. Kept
--- when the height has none yet, so a poller that never fetched block n still notices when
--- it is replaced (a receipt's block is the block tx:wait returned).
function Heads:saw_hash(n, hash)
  if type(hash) ~= "string" or self.hashes[n] then return end
  if self.number and n <= self.number - self.depth then return end
  self.hashes[n] = hash
end

--- on_head(number, hash, parent_hash, fetch) -> "same" | "new" | "reorg"
--- fetch(n) -> the canonical block {hash =} at height n, or nil (only needed on a reorg).
function Heads:on_head(n, hash, parent, fetch)
  local known = self.hashes[n]
  if known == hash then return "same" end
  local below = self.hashes[n - 1]
  local outcome
  if (known and known ~= hash) or (below and parent and below ~= parent) then
    -- down to the first height whose known hash the source still has. Heights whose hash
    -- was never known (a poller misses blocks) are passed over, counted as replaced: a fork
    -- point too low costs re-reads, one too high would leave replaced blocks trusted.
    local fork, lowest = n - 1, n
    for k in pairs(self.hashes) do if k < lowest then lowest = k end end
    while fork >= lowest do
      local known_f = self.hashes[fork]
      if known_f then
        local b = fetch and fetch(fork)
        if type(b) ~= "table" or b.hash == known_f then break end
      end
      fork = fork - 1
    end
    local top = self.number or n
    for k in pairs(self.hashes) do if k > fork then self.hashes[k] = nil end end
    self.st.reorgs = self.st.reorgs + 1
    self.st.deepest_reorg = math.max(self.st.deepest_reorg, top - fork)
    self.last_reorg = { fork = fork, depth = top - fork, new = n }
    ferry.log.warn("reorg", { chain = self.name, fork_point = fork, new_head = n })
    self.number = n
    self:_note(n)
    self.on_reorg(fork, n)
    for _, fn in ipairs(self.listeners) do
      local ok, err = pcall(fn, fork, n)
      if not ok then ferry.log.error("reorg listener failed", { chain = self.name, err = tostring(err) }) end
    end
    self:_wake()
    outcome = "reorg"
  else
    -- a new hash at the top (or the source's top is below a number seen elsewhere: follow it)
    if not self.number or n > self.number then self:_new_head(n)
    else
      self.number = n
      self:_note(n)
      self.on_new(n)
      self:_wake()
    end
    outcome = "new"
  end
  self.hash = hash
  self.hashes[n] = hash
  self.hashes[n - self.depth] = nil
  return outcome
end

--- wait(after, timeout) -> the head number once it is past `after` (at once if it already
--- is), or nil after `timeout` seconds.
function Heads:wait(after, timeout)
  if self.number and (after == nil or self.number ~= after) then return self.number end
  local q = task.queue()
  self.waiters[q] = true
  local _ <close> = setmetatable({}, { __close = function() self.waiters[q] = nil end })
  return q:get(timeout)
end

function Heads:stats()
  return { head = self.number, new_heads = self.st.new_heads, reorgs = self.st.reorgs,
           deepest_reorg = self.st.deepest_reorg }
end

return M
