--- ferry.eth.receipts -- the receipt book of one chain (pool): receipts read by block, so N
--- waiting transactions cost one call per new block, not N.
---
---   local book = require("ferry.eth.receipts").book(chain)
---   local rc = book:receipt(tx)   -- the receipt | false (not mined up to the head) | nil, err
---
--- A transaction this process broadcast can only be mined in a block above the head it knew
--- when the broadcast began (tx.from_block: the block above that head). Every block from the lowest such block
--- up to the head is scanned exactly once with eth_getBlockReceipts (by hash when the head
--- tracker knows it), and the hashes of the transactions it holds are kept, so:
---  * a transaction whose hash is in a scanned block has its receipt (kept from the scan when
---    someone was waiting for that hash, read directly otherwise);
---  * one whose hash is in none of the scanned blocks from its from_block to the head is not
---    mined yet: no call of its own;
---  * a transaction without a from_block (resumed from the journal, made by hand) or whose
---    range is too long to scan gets nil: the caller reads its receipt directly, as before.
--- Blocks are checked against the head tracker's canonical hashes (pool.heads): a reorg drops
--- the scanned blocks above its fork point, and a block scanned with another hash than the one
--- the tracker holds now is scanned again.
---
--- A provider without eth_getBlockReceipts ("method not found", remembered per provider): the
--- book asks, once per new head, one JSON-RPC batch of eth_getTransactionReceipt for every
--- transaction that waits on it instead.
local ferry = require "ferry"
local json = require "ferry.core.json"

local M = {}
local Book = {}
Book.__index = Book
Book.__name = "ferry.ReceiptBook"

local KEEP = 64           -- scanned blocks kept (as many as the head tracker keeps hashes)
local MAX_SCAN = 8        -- more unscanned blocks than this for one transaction: read it directly

local function hex(n) return ("0x%x"):format(n) end
local function qty(x) return type(x) == "string" and tonumber(x:sub(3), 16) or x end

--- book(chain) -> the chain's book (one per pool, made on first use)
---@param chain table a Chain
---@return table
function M.book(chain)
  local pool = chain.pool
  if pool.receipts then return pool.receipts end
  local self = setmetatable({
    chain = chain, pool = pool,
    blocks = {},              -- number -> {hash =, txs = {tx hash -> receipt | true}}
    by_hash = {},             -- tx hash -> block number, for every scanned block
    scanning = {},            -- number -> task reading that block
    wanted = setmetatable({}, { __mode = "v" }),  -- tx hash -> the Tx waiting for it
    lacks = {},               -- provider name -> true: no eth_getBlockReceipts there
    batch = nil,              -- {head =, task =, answers = {hash -> receipt | false}} (no method)
    generation = 0,           -- bumped by each reorg: a scan that spans one is not kept
    st = { blocks_scanned = 0, block_calls = 0, batches = 0, batched = 0, found = 0, not_mined = 0,
           direct = 0, rescans = 0, dropped_by_reorg = 0 },
  }, Book)
  pool.receipts = self
  pool.heads:listen_reorg(function(fork) self:_drop_above(fork) end)
  ferry.register_stats("receipts:" .. chain.name, function() return self.st end)
  return self
end

-- a reorg back to `fork`: the blocks above it are forgotten (scanned again as the new chain's)
function Book:_drop_above(fork)
  self.generation = self.generation + 1
  for n in pairs(self.blocks) do
    if n > fork then self:_forget(n); self.st.dropped_by_reorg = self.st.dropped_by_reorg + 1 end
  end
  self.batch = nil
end

function Book:_forget(n)
  local b = self.blocks[n]
  if not b then return end
  for h in pairs(b.txs) do if self.by_hash[h] == n then self.by_hash[h] = nil end end
  self.blocks[n] = nil
end

-- Is block n scanned, with the hash the tracker holds for it now (when it holds one)?
function Book:_fresh(n)
  local b = self.blocks[n]
  if not b then return false end
  local canonical = self.pool.heads.hashes[n]
  if canonical and b.hash and canonical ~= b.hash then
    self:_forget(n)
    self.st.rescans = self.st.rescans + 1
    return false
  end
  return true
end

-- "the node has no such method": answered once per provider, then remembered
local function lacks_method(err)
  if type(err) ~= "table" then return false end
  if err.rpc_code == -32601 or err.rpc_code == -32004 then return true end
  local m = tostring(err.message or ""):lower()
  return m:find("not found", 1, true) ~= nil and m:find("method", 1, true) ~= nil
    or m:find("not supported", 1, true) ~= nil or m:find("unsupported", 1, true) ~= nil
    or m:find("does not exist", 1, true) ~= nil or m:find("unknown method", 1, true) ~= nil
end

-- a provider (index) that has eth_getBlockReceipts as far as we know, the healthiest first;
-- nil when none has (the batch then)
function Book:_provider()
  local pool = self.pool
  local best = pool.health:peek()
  if best and not self.lacks[pool.providers[best].name] then return best end
  for i, p in ipairs(pool.providers) do
    if not self.lacks[p.name] and pool.health:state(i) ~= "open" then return i end
  end
  return nil
end

-- Read block n's receipts and index them. -> true | nil, err
function Book:_scan(n)
  local pool = self.pool
  local i = self:_provider()
  if not i then return nil, ferry.error("rpc_error", "no provider has eth_getBlockReceipts") end
  local canonical = pool.heads.hashes[n]
  local gen = self.generation
  self.st.block_calls = self.st.block_calls + 1
  local rcs, err = pool:call("eth_getBlockReceipts", json.array({ canonical or hex(n) }), { fresh = true, provider = i })
  if err then
    if lacks_method(err) then
      local name = err.provider or pool.providers[i].name
      ferry.log.info("provider has no eth_getBlockReceipts: receipts by batch", { chain = pool.name, provider = name })
      self.lacks[name] = true
    end
    return nil, err
  end
  if rcs == nil then return nil, ferry.error("not_yet", ("block %d not known to the provider yet"):format(n)) end
  if type(rcs) ~= "table" then return nil, ferry.error("bad_response", "eth_getBlockReceipts: not an array") end
  if gen ~= self.generation then return nil, ferry.error("rpc_error", "a reorg came while the block was read") end
  local hash = canonical
  local txs = {}
  for _, rc in ipairs(rcs) do
    if type(rc) ~= "table" or type(rc.transactionHash) ~= "string" or qty(rc.blockNumber) ~= n then
      return nil, ferry.error("bad_response", "eth_getBlockReceipts: a receipt of another block or without a hash")
    end
    if hash and rc.blockHash ~= hash then
      return nil, ferry.error("bad_response", "eth_getBlockReceipts: receipts of another block than the canonical one")
    end
    hash = rc.blockHash
    local h = rc.transactionHash:lower()
    -- a receipt is kept when someone waits for it; of the others only the hash
    txs[h] = self.wanted[h] and rc or true
  end
  self:_forget(n)
  self.blocks[n] = { hash = hash, txs = txs }
  for h in pairs(txs) do self.by_hash[h] = n end
  self:_forget(n - KEEP)
  self.st.blocks_scanned = self.st.blocks_scanned + 1
  return true
end

-- block n scanned (one read per block however many transactions ask at once) -> true | nil, err
function Book:_ensure(n)
  if self:_fresh(n) then return true end
  local t = self.scanning[n]
  if not t then
    t = ferry.spawn(function()
      local ok, r, e = pcall(self._scan, self, n)
      self.scanning[n] = nil
      if not ok then return nil, r end
      return r, e
    end):detach()
    self.scanning[n] = t
  end
  local ok, r, e = t:wait()
  if not ok then return nil, r end
  return r, e
end

-- The receipt the scans found for one of tx's hashes (newest version first), read directly
-- when the scan kept only its hash. -> receipt | false | nil, err
function Book:_found(tx)
  for i = #tx.hashes, 1, -1 do
    local h = tx.hashes[i]:lower()
    local n = self.by_hash[h]
    if n and self:_fresh(n) then
      local rc = self.blocks[n].txs[h]
      if rc == true then
        self.st.direct = self.st.direct + 1
        local ok, r = pcall(self.chain._raw_receipt, self.chain, tx.hashes[i])
        if not ok then return nil, r end
        if not r then return false end              -- gone meanwhile (a reorg the tracker has not seen)
        rc = r
      end
      tx.hash = tx.hashes[i]
      self.st.found = self.st.found + 1
      return rc
    end
  end
  return false
end

--- done(tx): tx waits no more (its hashes leave the batches)
---@param tx table
function Book:done(tx)
  for _, h in ipairs(tx.hashes) do
    if self.wanted[h:lower()] == tx then self.wanted[h:lower()] = nil end
  end
end

--- receipt(tx) -> the receipt of one of tx's versions | false: none is mined up to the head |
--- nil, err: the book cannot tell (the caller reads the receipt directly; with err.code
--- "not_yet", a provider that does not have the head's block yet, it asks the book again soon)
---@param tx table a Tx (hashes, from_block)
---@return table|false|nil
---@return table|nil err
function Book:receipt(tx)
  local head = self.pool.heads.number
  if not head or not tx.from_block then return nil end
  for _, h in ipairs(tx.hashes) do self.wanted[h:lower()] = tx end
  if tx.from_block > head then self.st.not_mined = self.st.not_mined + 1; return false end
  if not self:_provider() then return self:_batched(tx, head) end
  local missing = 0
  for n = tx.from_block, head do
    if not self:_fresh(n) then missing = missing + 1 end
  end
  if missing > MAX_SCAN then return nil end
  for n = tx.from_block, head do
    local ok, err = self:_ensure(n)
    if not ok then
      if not self:_provider() then return self:_batched(tx, head) end
      return nil, err
    end
  end
  local rc, err = self:_found(tx)
  if rc == false then self.st.not_mined = self.st.not_mined + 1 end
  return rc, err
end

-- The node lacks eth_getBlockReceipts: one batch of eth_getTransactionReceipt per head for
-- everything that waits; a transaction that joins after that head's batch went out (its
-- hashes not in it) is asked in a batch of its own. -> receipt | false | nil, err
function Book:_batched(tx, head)
  local b = self.batch
  if b and b.head == head and b.task then b.task:wait() end
  b = self.batch
  local function answered()
    if not (b and b.head == head) then return nil end
    for i = #tx.hashes, 1, -1 do
      local a = b.answers[tx.hashes[i]:lower()]
      if a == nil then return nil end
      if a then tx.hash = tx.hashes[i]; return a end
    end
    return false
  end
  local a = answered()
  if a ~= nil then return a end
  if not (b and b.head == head) then
    b = { head = head, answers = {} }
    self.batch = b
  end
  local hashes = {}
  for h, t in pairs(self.wanted) do
    if t.from_block and t.from_block <= head and b.answers[h] == nil then hashes[#hashes + 1] = h end
  end
  b.task = ferry.spawn(function() return self:_ask_batch(b, hashes) end):detach()
  local ok, done, err = b.task:wait()
  b.task = nil
  if not ok then return nil, done end
  if not done then return nil, err end
  a = answered()
  if a == nil then return nil, ferry.error("rpc_error", "receipt batch left a hash unanswered") end
  if a == false then self.st.not_mined = self.st.not_mined + 1 else self.st.found = self.st.found + 1 end
  return a
end

-- one batch of eth_getTransactionReceipt on the healthiest provider -> true | nil, err
function Book:_ask_batch(b, hashes)
  local pool = self.pool
  local i = pool.health:peek() or 1
  local p = pool.providers[i]
  local calls = {}
  for k, h in ipairs(hashes) do calls[k] = { "eth_getTransactionReceipt", { h } } end
  self.st.batches, self.st.batched = self.st.batches + 1, self.st.batched + #calls
  local t0 = ferry.now()
  local rs, err = p.client:batch(calls, { timeout = p.timeout })
  pool:_report({ i = i, r = rs, e = err, dt = ferry.now() - t0 })
  if not rs then return nil, err end
  for k, h in ipairs(hashes) do
    local r = rs[k]
    if r.error then return nil, r.error end
    local rc = r.result
    if rc ~= nil and rc ~= json.null then
      if type(rc) ~= "table" or qty(rc.blockNumber) == nil then
        return nil, ferry.error("bad_response", "eth_getTransactionReceipt: a receipt without a block")
      end
      local canonical = pool.heads.hashes[qty(rc.blockNumber)]
      b.answers[h] = (not canonical or canonical == rc.blockHash) and rc or false
    else
      b.answers[h] = false
    end
  end
  return true
end

return M
