--- ferry.eth.chain -- an EVM chain: reads through its provider pool, fees, calls, estimates.
---
---   local chain = eth.chain "local"      -- config.chains["local"], one per name and config
---   chain:balance(addr); chain:nonce(addr); chain:fees(); chain:eth_call{to =, data =}
---
--- chain:call returns `nil, err` like every primitive; the helpers above it raise the same
--- error tables.
local ferry = require "ferry"
local json = require "ferry.core.json"
local config = require "ferry.config"
local Pool = require "ferry.pool"
local Nonces = require "ferry.nonces"
local replies = require "ferry.eth.replies"
local values = require "ferry.eth.values"
local decode = require "ferry.eth.decode"
local A = require "ferry.eth.args"

local M = {}
local raise = ferry.raise

local Chain = {}
Chain.__index = Chain
Chain.__name = "ferry.Chain"
Chain.__tostring = function(c)
  local names = {}
  for _, p in ipairs(c.pool.providers) do names[#names + 1] = p.name end
  return ("ferry.Chain %s (chain id %d, providers: %s)"):format(c.name, c.chain_id, table.concat(names, ", "))
end
local chains = {}

--- eth.chain(name) -> the chain from config.chains[name] (one per name and config).
---@param name string a key of config.chains
---@return Chain
function M.chain(name)
  local cfg = ferry.config()
  local c = chains[name]
  if c and c.cfg_root == cfg then return c end
  local cc = cfg.chains[name]
  if not cc then
    local names = {}
    for k in pairs(cfg.chains) do names[#names + 1] = k end
    table.sort(names)
    if cfg.missing then
      raise("invalid_argument", ferry.redact(("eth.chain: no chain %q: there is no configuration: no %s (write one with "
        .. "`ferry init`, or name one with --config FILE or FERRY_CONFIG)"):format(tostring(name), cfg.missing)),
        { argument = "name" })
    end
    local s = type(name) == "string" and config.suggest(name, cfg.chains)
    raise("invalid_argument", ferry.redact(("eth.chain: no chain %q in %s%s (configured: %s)"):format(tostring(name),
      cfg.path or "config", s and (' (did you mean "' .. s .. '"?)') or "",
      #names > 0 and table.concat(names, ", ") or "none")), { argument = "name" })
  end
  if cc.kind ~= "evm" then raise("invalid_argument", ("eth.chain: %s is a %s chain"):format(name, cc.kind), { argument = "name" }) end
  if #cc.providers == 0 then
    local vars = {}
    for _, d in ipairs(cfg.dropped_providers and cfg.dropped_providers[name] or {}) do vars[#vars + 1] = d.env end
    local hint = #vars > 0 and (": set " .. table.concat(vars, " or ")) or ""
    raise("invalid_argument", ("eth.chain: chain %s has no usable provider%s"):format(name, hint), { argument = "name" })
  end
  c = setmetatable({ name = name, cfg = cc, cfg_root = cfg, chain_id = cc.chain_id,
                     confirmations = cc.confirmations, pool = Pool.new(name, cc, cfg, replies.check),
                     nonces = {} }, Chain)
  chains[name] = c
  ferry.register_stats("pool:" .. name, function() return c.pool:stats() end)
  -- follow the head (new heads drop head-bound cache entries, reorgs drop what they
  -- replaced); a daemon task, so it never keeps a script alive. head_poll = 0 turns it off.
  if (cc.head_poll or 1) > 0 and ferry.current() then
    c.pool:track_heads(cc.head_poll or 1)
    -- a provider with `ws`: the live feed is the head's source (the tracker polls only while
    -- every socket is down; docs/ws.md)
    for _, p in ipairs(cc.providers) do
      if p.ws then require("ferry.subscribe").feed(c); break end
    end
  end
  return c
end

--- A chain over explicit settings (tests, tools): eth.connect{chain_id =, providers = {...}},
--- with optional top-level config (limits, cache, rpc) as a second table.
---@param spec table a chain as in config.chains (chain_id, providers, ...), plus an optional name
---@param root? table top-level config (limits, cache, rpc)
---@return Chain
function M.connect(spec, root)
  local tbl = { chains = { adhoc = spec } }
  for k, v in pairs(root or {}) do tbl[k] = v end
  local cfg = config.validate(tbl, "eth.connect")
  local cc = cfg.chains.adhoc
  return setmetatable({ name = spec.name or "adhoc", cfg = cc, cfg_root = cfg, chain_id = cc.chain_id,
                        confirmations = cc.confirmations, pool = Pool.new(spec.name or "adhoc", cc, cfg, replies.check),
                        nonces = {} }, Chain)
end

--- chain:call(method, params, opts) -> result | nil, err (rate limit, cache, failover)
---@param method string a JSON-RPC method
---@param params? table its params (a list)
---@param opts? table {fresh = true} skips the cache, {provider = i} pins one provider
---@return any|nil result the raw JSON result
---@return table|nil err an error table
function Chain:call(method, params, opts) return self.pool:call(method, params, opts) end

-- Every read of a chain goes here: through the session when this is a session view (one
-- logical send stays on one provider's view of the chain), else through the pool.
function Chain:_call(method, params, opts)
  if self.session then return self.session:call(method, params, opts) end
  return self.pool:call(method, params, opts)
end

-- call or raise
function Chain:_must(method, params, opts)
  local r, err = self:_call(method, params, opts)
  if err then error(err, 3) end
  return r
end

--- A view of this chain whose reads all go to one provider while it stays healthy.
function Chain:view()
  return setmetatable({ session = self.pool:session(), base = self }, { __index = self })
end

--- pool_status() -> each provider's health, breaker state, lag and rate limit (and its ws feed's
--- state with chain:subscribe)
---@return table
function Chain:pool_status()
  local out = self.pool:status()
  -- with a live feed (chain:subscribe): each provider's ws state, reconnects, backfills, reorgs
  local feed = self.pool.feed
  if feed then
    for _, s in ipairs(out) do s.ws = feed.st.by_provider[s.name] end
  end
  return out
end
--- stats() -> the pool's counters (also ferry.stats()["pool:<name>"]; docs/guide.md)
---@return table
function Chain:stats() return self.pool:stats() end
--- track_heads(interval): follow the head every `interval` seconds (eth.chain does it unless head_poll = 0)
---@param interval number seconds
function Chain:track_heads(interval) return self.pool:track_heads(interval) end
--- chain:subscribe("heads" | "logs" | "pending", filter, opts) -> subscription (ferry.subscribe)
---@param kind string "heads", "logs" or "pending"
---@param filter? table {address =, topics =} for logs
---@param opts? table as for ferry.subscribe
---@return Subscription
function Chain:subscribe(kind, filter, opts) return require("ferry.subscribe").subscribe(self, kind, filter, opts) end
--- chain:close(): stop following the head and drop the cache (also `local c <close> = ...`).
--- A closed chain still answers calls; eth.chain(name) makes a new one.
function Chain:close()
  if self.pool.feed then self.pool.feed:close() end   -- its sockets and tasks (chain:subscribe)
  self.pool:close()
  if chains[self.name] == self then
    chains[self.name] = nil
    ferry.register_stats("pool:" .. self.name, nil)
  end
end
Chain.__close = Chain.close

--- block_number() -> the latest block number (cached until the next head)
---@return integer
function Chain:block_number() return A.qty(self:_must("eth_blockNumber")) end
--- chain_id_remote() -> the chain id the node reports (eth_chainId)
---@return integer
function Chain:chain_id_remote() return A.qty(self:_must("eth_chainId")) end

--- balance(addr, block = "latest", {fresh = true}?) -> U256
--- Cached (cache.ttl.eth_getBalance); an answer for "latest" is dropped on a new head, and
--- tx:wait moves the head to its receipt's block, so a read after a wait shows the transaction.
--- fresh = true asks the node whatever the cache holds (a change made elsewhere before the
--- next head).
---@param addr string an address
---@param block? integer|string a block number or tag (default "latest")
---@param opts? table {fresh = true}
---@return U256 wei
function Chain:balance(addr, block, opts)
  return A.U(self:_must("eth_getBalance", { A.address(addr, "chain:balance"), block or "latest" }, opts))
end

--- nonce(addr, block = "pending") -> integer (always read fresh)
---@param addr string an address
---@param block? string a tag (default "pending")
---@return integer
function Chain:nonce(addr, block)
  return A.qty(self:_must("eth_getTransactionCount", { A.address(addr, "chain:nonce"), block or "pending" }, { fresh = true }))
end

--- code(addr, block = "latest") -> the account's code, 0x hex ("0x" for none)
---@param addr string
---@param block? string
---@return string
function Chain:code(addr, block) return self:_must("eth_getCode", { A.address(addr, "chain:code"), block or "latest" }) end
--- gas_price() -> the node's eth_gasPrice in wei
---@return U256
function Chain:gas_price() return A.U(self:_must("eth_gasPrice")) end

-- a block argument as JSON-RPC wants it: nil -> "latest", 17 -> "0x11", tags and 0x as they are
local function block_tag(n, what)
  if n == nil then return "latest" end
  if math.type(n) == "integer" and n >= 0 then return ("0x%x"):format(n) end
  if type(n) == "string" and (n:match("^0x%x+$") or n == "latest" or n == "earliest" or n == "pending"
      or n == "safe" or n == "finalized") then
    return n
  end
  raise("invalid_argument", ("%s: expected a block number (integer >= 0, 0x quantity) or a tag (latest, earliest, "
    .. "pending, safe, finalized), got %s"):format(what, type(n) == "string" and ("%q"):format(n:sub(1, 40)) or tostring(n)),
    { argument = what })
end

local function tx_hash(hash, what)
  if type(hash) ~= "string" or not hash:match("^0x" .. ("%x"):rep(64) .. "$") then
    raise("invalid_argument", what .. ": expected a transaction hash (0x + 64 hex digits)", { argument = what })
  end
  return hash
end

-- The raw JSON answers, as chain:block and chain:receipt returned them before they decoded:
-- tx:wait (a money path) and ferry.cli's receipt and block commands read these.
function Chain:_raw_block(n, full)
  local tag = n == nil and "latest" or (type(n) == "number" and ("0x%x"):format(n) or n)
  return self:_must("eth_getBlockByNumber", { tag, full and true or false })
end
function Chain:_raw_receipt(hash) return self:_must("eth_getTransactionReceipt", { hash }, { fresh = true }) end

--- block(n = "latest", full = false) -> the block decoded (ferry.eth.decode), nil when there is
--- none: number, timestamp, gas_used, gas_limit as integers; base_fee_per_gas, difficulty as
--- U256; hash, parent_hash ... as 0x text; miner checksummed; transactions: hashes, or decoded
--- transactions when full. The raw JSON: chain:call("eth_getBlockByNumber", {tag, full}).
---@param n? integer|string a block number, 0x quantity or tag (latest, earliest, pending, safe, finalized)
---@param full? boolean whole transactions instead of their hashes
---@return table|nil block
function Chain:block(n, full)
  return decode.block(self:_raw_block(block_tag(n, "chain:block"), full), "eth_getBlockByNumber", self.name)
end

--- transaction(hash) -> the transaction decoded, nil when the node does not know it: nonce,
--- gas, type, block_number (nil while pending) as integers; value and fees as U256; from, to
--- checksummed (to is nil for a contract creation).
---@param hash string 0x + 64 hex digits
---@return table|nil transaction
function Chain:transaction(hash)
  return decode.transaction(self:_must("eth_getTransactionByHash", { tx_hash(hash, "chain:transaction") }),
    "eth_getTransactionByHash", self.name)
end

--- receipt(hash) -> the receipt decoded, nil while not mined: status (1 success, 0 reverted),
--- block_number, gas_used as integers; effective_gas_price as U256; logs decoded as by
--- chain:logs. Always asked fresh. (tx:wait returns the raw JSON receipt.)
---@param hash string 0x + 64 hex digits
---@return table|nil receipt
function Chain:receipt(hash)
  return decode.receipt(self:_raw_receipt(tx_hash(hash, "chain:receipt")), "eth_getTransactionReceipt", self.name)
end

local LOG_FILTER = { address = true, topics = true, from_block = true, to_block = true, block_hash = true }

-- topics as eth_getLogs wants them: each a hash, a list of hashes (any of), or false/json.null (any)
local function topic_filter(topics)
  local out = json.array({})
  if topics == nil then return out end
  if type(topics) ~= "table" then raise("invalid_argument", "chain:logs: topics: expected a list", { argument = "topics" }) end
  local function one(t, i)
    if type(t) ~= "string" or not t:match("^0x" .. ("%x"):rep(64) .. "$") then
      raise("invalid_argument", ("chain:logs: topics[%d]: expected a 32-byte 0x hash"):format(i), { argument = "topics" })
    end
    return t:lower()
  end
  local n = 0
  for i in pairs(topics) do if math.type(i) == "integer" and i > n then n = i end end
  for i = 1, n do
    local t = topics[i]
    if t == nil or t == false or t == json.null then out[i] = json.null
    elseif type(t) == "table" then
      local any = json.array({})
      for j, x in ipairs(t) do any[j] = one(x, i) end
      out[i] = any
    else out[i] = one(t, i) end
  end
  return out
end

--- logs(filter) -> a list of decoded logs (eth_getLogs through the pool): address
--- checksummed, block_number, log_index, transaction_index as integers, topics and data as 0x
--- text. filter: {address = addr | {addr...}, topics = {t0, t1...} (each a hash, a list of
--- hashes, or false for any), from_block =, to_block = (number or tag, default "latest"),
--- block_hash = (instead of the range)}.
---@param filter table {address?, topics?, from_block?, to_block?, block_hash?}
---@return table[] logs
function Chain:logs(filter)
  filter = filter or {}
  A.check_fields(filter, LOG_FILTER, "chain:logs")
  local f = json.object({})
  if type(filter.address) == "table" then
    local list = json.array({})
    for i, a in ipairs(filter.address) do list[i] = A.address(a, "chain:logs: address") end
    f.address = list
  elseif filter.address ~= nil then
    f.address = A.address(filter.address, "chain:logs: address")
  end
  f.topics = topic_filter(filter.topics)
  if filter.block_hash ~= nil then
    if filter.from_block ~= nil or filter.to_block ~= nil then
      raise("invalid_argument", "chain:logs: block_hash or from_block/to_block, not both", { argument = "block_hash" })
    end
    f.blockHash = tx_hash(filter.block_hash, "chain:logs: block_hash")
  else
    f.fromBlock = block_tag(filter.from_block, "chain:logs: from_block")
    f.toBlock = block_tag(filter.to_block, "chain:logs: to_block")
  end
  return decode.logs(self:_must("eth_getLogs", { f }), "eth_getLogs", self.name)
end

--- fees({fresh = bool}?) -> {base_fee, max_priority_fee, max_fee} from eth_feeHistory: the
--- next block's base fee and the chain's `fees.percentile` (50) of recent tips; max_fee =
--- base_multiplier (2) x base + tip. The history is cached until the next head (cache.ttl).
---@param opts? table {fresh = true} reads the fee history again
---@return table fees {base_fee, max_priority_fee, max_fee}, U256 wei
function Chain:fees(opts)
  local fc = self.cfg.fees or {}
  local pct = fc.percentile or 50
  local h = self:_must("eth_feeHistory", { ("0x%x"):format(fc.blocks or 5), "latest", json.array({ pct }) }, opts)
  local bases = h.baseFeePerGas
  if type(bases) ~= "table" or #bases == 0 then
    raise("bad_response", "eth_feeHistory without baseFeePerGas", { chain = self.name })
  end
  local base = A.U(bases[#bases])
  local tips = {}
  for _, r in ipairs(type(h.reward) == "table" and h.reward or {}) do
    local t = r[1] and A.U(r[1])
    if t and t > 0 then tips[#tips + 1] = t end
  end
  local tip
  if #tips > 0 then
    table.sort(tips, function(a, b) return a < b end)
    tip = tips[(#tips + 1) // 2]
  else
    local ok, v = pcall(self._must, self, "eth_maxPriorityFeePerGas")
    tip = ok and A.U(v) or values.gwei(1)
  end
  local permille = math.floor((fc.base_multiplier or 2) * 1000 + 0.5)
  local max_fee = base * permille // 1000 + tip
  return { base_fee = base, max_priority_fee = tip, max_fee = max_fee }
end

-- tx fields -> JSON-RPC call object
local function call_object(t)
  local o = json.object({})
  if t.from then o.from = t.from end
  if t.to then o.to = A.address(t.to, "call: to") end
  local value = t.value and A.u256(t.value, "call: value")
  if value and value > 0 then o.value = value:tohex() end
  if t.data and t.data ~= "0x" and t.data ~= "" then o.data = t.data end
  if t.gas then o.gas = ("0x%x"):format(t.gas) end
  return o
end

--- eth_call(tx, block = "latest") -> 0x result; raises {code = "reverted", reason =} on revert.
---@param t table {to, data?, value?, from?, gas?}
---@param block? string a block tag (default "latest")
---@param opts? table as for chain:call
---@return string result 0x hex
function Chain:eth_call(t, block, opts)
  local r, err = self:_call("eth_call", { call_object(t), block or "latest" }, opts)
  if err then
    if err.code == "reverted" then error(A.revert_error(err), 2) end
    error(err, 2)
  end
  return r
end

--- estimate_gas(tx) -> integer, with the chain's gas_margin (1.2) applied; raises on revert.
---@param t table {to?, data?, value?, from?}
---@param opts? table as for chain:call (default {fresh = true})
---@return integer gas
function Chain:estimate_gas(t, opts)
  local r, err = self:_call("eth_estimateGas", { call_object(t) }, opts or { fresh = true })
  if err then
    if err.code == "reverted" then error(A.revert_error(err), 2) end
    error(err, 2)
  end
  local g = A.qty(r)
  local margin = self.cfg.gas_margin or 1.2
  if g == 21000 and not (t.data and #t.data > 2) then return g end -- plain transfer: exact
  return math.ceil(g * margin)
end

-- The address's nonces and funds in flight (ferry.nonces), one per chain and address.
function Chain:_nonces(addr)
  local n = self.nonces[addr]
  if not n then
    n = Nonces.new(self, addr)
    self.nonces[addr] = n
  end
  return n
end

M.Chain = Chain
return M
