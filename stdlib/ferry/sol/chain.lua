--- ferry.sol.chain -- a Solana chain: reads through its provider pool, the blockhash cache,
--- priority fees, and what Solana's errors mean.
---
---   local chain = sol.chain "solana"   -- config.chains.solana (kind = "solana")
---   chain:balance(addr); chain:slot(); chain:block_height(); chain:account(addr)
---   chain:blockhash()  -- {blockhash, last_valid} from the cache (refreshed before expiry, <= 60 s)
---
--- Calls go through ferry.pool (rate limits, failover, hedging, retries) like EVM calls. A node's
--- answer about a transaction (a blockhash not found, a transaction already processed, a failed
--- simulation) is a JSON-RPC error object, which the pool never counts against the provider;
--- classify() gives it a code the send pipeline acts on.
local ferry = require "ferry"
local json = require "ferry.core.json"
local core = require "ferry.core.sol"
local bytes = require "ferry.core.bytes"
local config = require "ferry.config"
local Pool = require "ferry.pool"
local V = require "ferry.sol.values"

local M = {}
local raise = ferry.raise

local Chain = {}
Chain.__index = Chain
Chain.__name = "ferry.sol.Chain"
Chain.__tostring = function(c)
  local names = {}
  for _, p in ipairs(c.pool.providers) do names[#names + 1] = p.name end
  return ("ferry.sol.Chain %s (providers: %s)"):format(c.name, table.concat(names, ", "))
end
M.Chain = Chain

-- what config.chains[name].solana may set, with the defaults used when it does not
M.DEFAULTS = {
  commitment = "confirmed",     -- what tx:wait waits for unless told
  compute_margin = 1.05,        -- compute-unit limit = simulated units x this (rounded up)
  priority_percentile = 75,     -- of getRecentPrioritizationFees, for the unit price
  max_priority_fee = 1000000,   -- micro-lamports per compute unit, at most
  blockhash_max_age = 60,       -- seconds a cached blockhash is used, at most (never more than 60)
  blockhash_margin = 20,        -- blocks before lastValidBlockHeight when the cache refreshes
  poll = 0.2,                   -- seconds between status reads in tx:wait
  rebroadcast = 2,              -- seconds between sends of the same bytes while unconfirmed
}

-- ---- the shape of the answers the code relies on ------------------------------------------
-- (a provider that answers otherwise is a bad_response of that provider: the pool fails over)
local function ctx_value(r) return type(r) == "table" and type(r.context) == "table" and r.value ~= nil end
local CHECKS = {
  getLatestBlockhash = function(r)
    if not ctx_value(r) or type(r.value.blockhash) ~= "string" or math.type(r.value.lastValidBlockHeight) ~= "integer" then
      return "not {context, value = {blockhash, lastValidBlockHeight}}"
    end
  end,
  getBalance = function(r) if not ctx_value(r) or math.type(r.value) ~= "integer" then return "not {context, value = <lamports>}" end end,
  getSlot = function(r) if math.type(r) ~= "integer" then return "not a slot number" end end,
  getBlockHeight = function(r) if math.type(r) ~= "integer" then return "not a block height" end end,
  getSignatureStatuses = function(r) if not ctx_value(r) or type(r.value) ~= "table" then return "not {context, value = [...]}" end end,
  sendTransaction = function(r) if type(r) ~= "string" or not core.b58decode(r, 64) then return "not a base58 signature" end end,
  getAccountInfo = function(r) if type(r) ~= "table" or type(r.context) ~= "table" then return "not {context, value}" end end,
  simulateTransaction = function(r) if not ctx_value(r) then return "not {context, value}" end end,
  getRecentPrioritizationFees = function(r) if type(r) ~= "table" then return "not a list of fees" end end,
}
local function check(method, r)
  local f = CHECKS[method]
  return f and f(r)
end

-- ---- errors ---------------------------------------------------------------------------------

local function log_tail(logs, n)
  if type(logs) ~= "table" or #logs == 0 then return "" end
  local from = math.max(1, #logs - (n or 6) + 1)
  return "\n  " .. table.concat(logs, "\n  ", from)
end
M.log_tail = log_tail

local function is_insufficient(te, logs)
  -- AccountNotFound: "attempt to debit an account but found no record of a prior credit", a
  -- fee payer that never held a lamport
  if te == "InsufficientFundsForFee" or te == "AccountNotFound" or (type(te) == "table" and te.InsufficientFundsForRent) then
    return true
  end
  for _, l in ipairs(type(logs) == "table" and logs or {}) do
    if tostring(l):find("insufficient lamports", 1, true) or tostring(l):find("insufficient funds", 1, true) then return true end
  end
  return false
end

-- what a transaction error means, for the messages (the logs follow them)
local HINTS = {
  InvalidProgramForExecution = "a program it calls does not exist or is not executable",
  ProgramAccountNotFound = "a program it calls does not exist",
  AccountNotFound = "the fee payer has no account (it never held any SOL)",
  InsufficientFundsForFee = "the fee payer cannot pay the fee",
  BlockhashNotFound = "its blockhash is unknown or expired",
  AlreadyProcessed = "this very transaction has already landed",
  SignatureFailure = "a signature does not verify",
}

--- The words for a transaction error: its JSON, and what it means when that is known.
---@param te any a transaction error as the node sent it
---@return string
function M.explain(te)
  local text = json.encode(te)
  local hint = type(te) == "string" and HINTS[te]
  if type(te) == "table" and te.InsufficientFundsForRent then
    hint = "an account would be left below its rent-exempt minimum (a new account needs at least that much)"
  elseif type(te) == "table" and type(te.InstructionError) == "table" then
    local ie = te.InstructionError[2]
    if ie == "ComputationalBudgetExceeded" then hint = "the compute-unit limit is too low for what it runs"
    elseif type(ie) == "table" and ie.Custom ~= nil then
      hint = ("instruction %s failed with the program's own error %s (see the logs)"):format(tostring(te.InstructionError[1]), tostring(ie.Custom))
    end
  end
  return hint and (text .. ": " .. hint) or text
end

--- A Solana node's verdict on a transaction -> the error with a code the pipeline acts on:
--- blockhash_not_found, already_processed (this transaction landed), insufficient_funds,
--- simulation_failed (with logs). Other errors are returned as they are.
---@param err table an error table
---@return table err
function M.classify(err)
  if type(err) ~= "table" then return err end
  local data = type(err.data) == "table" and err.data or nil
  local te = data and data.err
  if te == nil or te == json.null then
    -- some nodes say it in the message only
    local m = tostring(err.message or ""):lower()
    if m:find("blockhash not found", 1, true) then err.code = "blockhash_not_found"
    elseif m:find("already been processed", 1, true) then err.code = "already_processed" end
    return err
  end
  err.tx_error, err.logs = te, data.logs
  if te == "BlockhashNotFound" then err.code = "blockhash_not_found"
  elseif te == "AlreadyProcessed" then err.code = "already_processed"
  elseif is_insufficient(te, data.logs) then err.code = "insufficient_funds"
  else err.code = "simulation_failed" end
  return err
end

-- ---- chains ---------------------------------------------------------------------------------

local chains = {}

local function settings(cc)
  local s = {}
  for k, v in pairs(M.DEFAULTS) do s[k] = v end
  for k, v in pairs(cc.solana or {}) do s[k] = v end
  s.blockhash_max_age = math.min(s.blockhash_max_age, 60)
  return s
end

local function new_chain(name, cc, cfg)
  local c = setmetatable({ name = name, cfg = cc, cfg_root = cfg, confirmations = cc.confirmations or 32,
                           settings = settings(cc), pool = Pool.new(name, cc, cfg, check),
                           bh = nil, height = nil,
                           st = { sent = 0, send_errors = 0, rebroadcasts = 0, expired = 0, status_checks = 0,
                                  resigns = 0, found_at_reconcile = 0, landed_late = 0, blockhash_fetches = 0, simulations = 0 } }, Chain)
  ferry.register_stats("sol:" .. name, function() return c:stats() end)
  return c
end

--- sol.chain(name) -> the chain from config.chains[name] (kind = "solana"; one per name and config).
---@param name string a key of config.chains (kind = "solana")
---@return Chain
function M.chain(name)
  local cfg = ferry.config()
  local c = chains[name]
  if c and c.cfg_root == cfg then return c end
  local cc = cfg.chains[name]
  if not cc then
    local names = {}
    for k, v in pairs(cfg.chains) do if v.kind == "solana" then names[#names + 1] = k end end
    table.sort(names)
    raise("invalid_argument", ferry.redact(("sol.chain: no chain %q in %s (solana chains configured: %s)")
      :format(tostring(name), cfg.path or "config", #names > 0 and table.concat(names, ", ") or "none")), { argument = "name" })
  end
  if cc.kind ~= "solana" then raise("invalid_argument", ("sol.chain: %s is a %s chain"):format(name, cc.kind), { argument = "name" }) end
  if #cc.providers == 0 then raise("invalid_argument", ("sol.chain: chain %s has no usable provider"):format(name), { argument = "name" }) end
  c = new_chain(name, cc, cfg)
  chains[name] = c
  return c
end

--- A chain over explicit settings (tests, tools): sol.connect{providers = {...}, confirmations =,
--- solana = {...}}, with optional top-level config (cache, rpc) as a second table.
---@param spec table
---@param root? table
---@return Chain
function M.connect(spec, root)
  local s = { kind = "solana" }
  for k, v in pairs(spec) do if k ~= "name" then s[k] = v end end
  local tbl = { chains = { adhoc = s } }
  for k, v in pairs(root or {}) do tbl[k] = v end
  local cfg = config.validate(tbl, "sol.connect")
  return new_chain(spec.name or "adhoc", cfg.chains.adhoc, cfg)
end

--- chain:call(method, params, opts) -> result | nil, err (classified)
---@param method string
---@param params? table
---@param opts? table
---@return any|nil result
---@return table|nil err
function Chain:call(method, params, opts)
  local r, err = self.pool:call(method, params, opts)
  if err then return nil, M.classify(err) end
  return r
end

-- the same, raising
function Chain:_must(method, params, opts)
  local r, err = self:call(method, params, opts)
  if err then error(err, 2) end
  return r
end

--- stats() -> the chain's counters and its pool's
---@return table
function Chain:stats()
  local s = {}
  for k, v in pairs(self.st) do s[k] = v end
  s.pool = self.pool:stats()
  return s
end
--- pool_status() -> each provider's health
---@return table
function Chain:pool_status() return self.pool:status() end

local FRESH = { fresh = true }

--- slot(commitment = "processed") -> the current slot, read fresh
---@param commitment? string
---@return integer
function Chain:slot(commitment)
  return self:_must("getSlot", { { commitment = commitment or "processed" } }, FRESH)
end

--- The block height (read fresh: expiry is decided by it). Remembered for the blockhash cache.
---@param commitment? string
---@return integer
function Chain:block_height(commitment)
  local h = self:_must("getBlockHeight", { { commitment = commitment or "confirmed" } }, FRESH)
  if not self.height or h > self.height then self.height = h end
  return h
end

--- balance(addr) -> lamports (an integer), read fresh
---@param addr string base58
---@param commitment? string
---@return integer lamports
function Chain:balance(addr, commitment)
  return self:_must("getBalance", { V.address(V.key(addr, "chain:balance")), { commitment = commitment or "confirmed" } }, FRESH).value
end

--- account(addr) -> nil | {lamports, owner, executable, space, data = ferry.Bytes}, read fresh
---@param addr string base58
---@param commitment? string
---@return table|nil account
function Chain:account(addr, commitment)
  local r = self:_must("getAccountInfo", { V.address(V.key(addr, "chain:account")),
                                           { encoding = "base64", commitment = commitment or "confirmed" } }, FRESH)
  local v = r.value
  if v == nil or v == json.null then return nil end
  local raw = type(v.data) == "table" and core.b64decode(tostring(v.data[1])) or nil
  if not raw then raise("bad_response", ("getAccountInfo %s: account data is not base64"):format(addr)) end
  return { lamports = v.lamports, owner = v.owner, executable = v.executable, space = #raw, data = bytes.raw(raw) }
end

--- The SPL token balance of owner's associated token account for mint -> amount (0 when the
--- account does not exist), and the account's address.
---@param owner string base58
---@param mint string base58
---@param program? string the token program
---@return integer amount
---@return string account
function Chain:token_balance(owner, mint, program)
  local ata = require("ferry.sol.builders").token.ata(owner, mint, program)
  local a = self:account(ata)
  if not a then return 0, ata end
  return (string.unpack("<i8", bytes.string(a.data), 65)), ata
end

--- A mint's decimals (read from its account).
---@param mint string base58
---@return integer
function Chain:mint_decimals(mint)
  local a = self:account(mint)
  if not a or a.space < 45 then raise("invalid_argument", ("%s is not a token mint"):format(tostring(mint)), { argument = "mint" }) end
  return (string.byte(bytes.string(a.data), 45))
end

--- rent-exempt minimum for `space` bytes
---@param space integer bytes
---@return integer lamports
function Chain:rent_exempt(space)
  return self:_must("getMinimumBalanceForRentExemption", { V.amount(space, "space") })
end

--- airdrop(addr, lamports) -> signature (test validators and devnet only)
---@param addr string base58
---@param lamports integer
---@return string signature
function Chain:airdrop(addr, lamports)
  return self:_must("requestAirdrop", { V.address(V.key(addr, "chain:airdrop")), V.amount(lamports, "lamports") })
end

-- ---- the blockhash cache ---------------------------------------------------------------------

--- blockhash({fresh = true}?) -> {blockhash = base58, last_valid = height, at = ferry.now()}.
--- Refreshed when older than blockhash_max_age (60 s at most), or once the known block height
--- comes within blockhash_margin blocks of its lastValidBlockHeight. Concurrent callers share
--- one fetch. Expiry is never decided by this cache's clock: a transaction's own lastValid
--- and the chain's height decide it (ferry.sol.tx).
---@param opts? table
---@return table {blockhash, last_valid}
function Chain:blockhash(opts)
  local s, bh = self.settings, self.bh
  local fresh = opts and opts.fresh
  if not fresh and bh and ferry.now() - bh.at < s.blockhash_max_age
     and not (self.height and bh.last_valid - self.height <= s.blockhash_margin) then
    return bh
  end
  if not self.bh_fetch then
    self.bh_fetch = ferry.spawn(function()
      self.st.blockhash_fetches = self.st.blockhash_fetches + 1
      local r, err = self:call("getLatestBlockhash", { { commitment = "confirmed" } }, FRESH)
      if not r then return nil, err end
      local got = { blockhash = r.value.blockhash, last_valid = r.value.lastValidBlockHeight, at = ferry.now(),
                    slot = r.context.slot }
      self.bh = got
      return got
    end):detach()
  end
  local t = self.bh_fetch
  local ok, got, err = t:wait()
  if self.bh_fetch == t then self.bh_fetch = nil end
  if not ok then error(got, 0) end
  if not got then error(err, 0) end
  return got
end

--- Forget the cached blockhash (a node said it was not found, or it expired).
---@param hash string the blockhash to forget
function Chain:invalidate_blockhash(hash)
  if self.bh and (hash == nil or self.bh.blockhash == hash) then self.bh = nil end
end

-- ---- fees -------------------------------------------------------------------------------------

--- priority_fee(writable_accounts?) -> micro-lamports per compute unit: the configured
--- percentile of getRecentPrioritizationFees, capped by max_priority_fee.
---@param accounts string[] the accounts the transaction writes
---@return integer micro_lamports per compute unit
function Chain:priority_fee(accounts)
  local r = self:_must("getRecentPrioritizationFees", { json.array(accounts or {}) })
  local fees = {}
  for _, e in ipairs(r) do
    if type(e) == "table" and math.type(e.prioritizationFee) == "integer" then fees[#fees + 1] = e.prioritizationFee end
  end
  if #fees == 0 then return 0 end
  table.sort(fees)
  local i = math.max(1, math.ceil(#fees * self.settings.priority_percentile / 100))
  return math.min(fees[i], self.settings.max_priority_fee)
end

--- statuses({signature...}) -> {[signature] = status | nil} (searchTransactionHistory, fresh)
---@param sigs string[] base58 signatures
---@return table
function Chain:statuses(sigs)
  local r = self:_must("getSignatureStatuses", { json.array(sigs), { searchTransactionHistory = true } }, FRESH)
  local out = {}
  for i, s in ipairs(sigs) do
    local v = r.value[i]
    if type(v) == "table" then out[s] = v end
  end
  return out
end

return M
