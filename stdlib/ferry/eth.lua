--- ferry.eth -- EVM chains: reads through the provider pool, signing, and the send pipeline.
---
---   local eth = require "ferry.eth"
---   local chain = eth.chain "local"                 -- config.chains["local"]
---   local signer = chain:signer{env = "PAYER_KEY"}  -- or a 0x hex private key
---   local tx = signer:send{to = addr, value = eth.ether "0.5"}
---   local receipt = tx:wait{confirmations = 1, timeout = 60}
---
--- Byte strings in this API are 0x-hex text (data, hashes, raw transactions); amounts are
--- ferry.U256 values (Lua integers and decimal/hex strings are accepted where an amount goes
--- in). chain:call returns `nil, err` on failure like every primitive; the helpers above it
--- (balance, nonce, fees, send, wait ...) raise the same error tables.
local ferry = require "ferry"
local json = require "ferry.core.json"
local u256 = require "ferry.core.u256"
local keccak = require "ferry.core.keccak"
local secp = require "ferry.core.secp256k1"
local abic = require "ferry.core.abi"
local txc = require "ferry.core.tx"
local keyc = require "ferry.core.key"
local config = require "ferry.config"
local Pool = require "ferry.pool"
local Nonces = require "ferry.nonces"

local M = {}

local tohex, fromhex = keccak.tohex, keccak.fromhex
local raise = ferry.raise

-- U256 values encode to JSON as 0x quantities (RPC params).
debug.getregistry()["ferry.U256"].__tojson = function(v) return v:tohex() end

---------------------------------------------------------------------------------------------
-- Values and units
---------------------------------------------------------------------------------------------

--- eth.u256(x): from an integer >= 0, a decimal or 0x string, a U256, or a JSON big number.
function M.u256(x)
  if type(x) == "table" and json.is_number(x) then x = tostring(x) end
  return u256.new(x)
end
local U = M.u256

-- Arguments from the user: a bad one raises invalid_argument naming the call and the argument
-- ("signer:send: value: negative integer: -1"), not the binding or the line that caught it.
-- What is echoed goes through ferry.redact: a private key passed by mistake is not shown.
local function bad_arg(what, err, shown)
  local why = tostring(err):match("%((.*)%)$") or tostring(err):gsub("^[^:]*:%d+: ", "")
  raise("invalid_argument", ferry.redact(("%s: %s%s"):format(what, why, shown or "")), { argument = what })
end

-- f(...), with a failure raised as above
local function checked(what, f, ...)
  local ok, r = pcall(f, ...)
  if not ok then bad_arg(what, r) end
  return r
end

local function arg_address(v, what)
  local ok, r = pcall(secp.checksum, v)
  if not ok then   -- the binding's message does not show the value: add it (addresses are public)
    bad_arg(what, tostring(r):gsub("%(address: ", "("), (" (got %s)"):format(type(v) == "string" and ("%q"):format(v) or tostring(v)))
  end
  return r
end

local is_u256 = u256.is_u256
-- a U256 is already a valid amount: the common case (eth.ether, eth.gwei, fees) skips the pcall
local function arg_u256(v, what)
  if is_u256(v) then return v end
  return checked(what, M.u256, v)
end

local function units(decimals, name)
  return function(x)
    if u256.is_u256(x) then return x * u256.new(10) ^ decimals end
    if math.type(x) == "float" then x = ("%.18f"):format(x):gsub("0+$", ""):gsub("%.$", "") end
    return checked(name, u256.parse_units, tostring(x), decimals)
  end
end
M.ether = units(18, "eth.ether")     -- eth.ether "1.5"
M.gwei = units(9, "eth.gwei")        -- eth.gwei(30)
function M.wei(x) return U(x) end
M.parse_units = u256.parse_units     -- (text, decimals)
M.format_units = u256.format_units   -- (value, decimals) -> "1.5"
function M.format_ether(v) return u256.format_units(U(v), 18) end

--- bytes <-> 0x hex
function M.hex(bytes) return tohex(bytes) end
function M.bytes(hex) return fromhex(hex) end

--- keccak256 of raw bytes, or of 0x-hex input's bytes; returns 0x hex.
function M.keccak256(data)
  if type(data) == "string" and data:match("^0x%x*$") then data = fromhex(data) end
  return tohex(keccak.keccak256(data))
end

--- EIP-55 checksummed address (raises on bad length, hex or checksum).
M.address = secp.checksum
M.is_address = secp.is_address

-- 0x quantity -> integer (or U256 when it does not fit)
local function qty(v)
  if v == nil then return nil end
  if math.type(v) == "integer" then return v end
  local s = tostring(v)
  -- Lua wraps hex literals past 64 bits, so only short ones become integers
  local digits = s:match("^0x(%x+)$")
  if (digits and #digits <= 13) or (not digits and s:match("^%d+$") and #s <= 15) then
    return math.tointeger(tonumber(s))
  end
  return U(s)
end
M.quantity = qty

-- what: "signer:send: data", say (the call and the argument, for the error)
local function data_bytes(d, what)
  if d == nil or d == "" then return nil end
  if type(d) ~= "string" or not d:match("^0x%x*$") then
    raise("invalid_argument", ("%s must be 0x-prefixed hex"):format(what or "data"))
  end
  if #d % 2 == 1 then raise("invalid_argument", ("%s has an odd number of hex digits"):format(what or "data")) end
  return fromhex(d)
end

-- EIP-1559: a tip above the fee cap is refused by every node
local function check_tip(max_fee, tip, what)
  if not (max_fee and tip) then return end
  if not is_u256(tip) then tip = arg_u256(tip, what .. ": max_priority_fee") end
  if not is_u256(max_fee) then max_fee = arg_u256(max_fee, what .. ": max_fee") end
  if tip > max_fee then
    raise("invalid_argument", ("%s: max_priority_fee (%s) is above max_fee (%s)"):format(what, tostring(tip), tostring(max_fee)))
  end
end

---------------------------------------------------------------------------------------------
-- ABI (hex in, hex out)
---------------------------------------------------------------------------------------------

M.abi = {}
function M.abi.encode_call(sig, ...) return tohex(checked("eth.abi.encode_call", abic.encode_call, sig, ...)) end
function M.abi.encode(types, ...) return tohex(checked("eth.abi.encode", abic.encode, types, ...)) end
function M.abi.selector(sig) return tohex(checked("eth.abi.selector", abic.selector, sig)) end
local function raw(d) if type(d) == "string" and d:match("^0x%x*$") then return fromhex(d) end return d end
function M.abi.decode(types, data) return abic.decode(types, raw(data)) end
function M.abi.decode_revert(data) return abic.decode_revert(raw(data)) end

-- A reverted call's error table, with the decoded reason.
local function revert_error(err)
  local data = err.data
  if type(data) == "table" then data = data.data end
  local reason = err.message
  local fields = { rpc_code = err.rpc_code, provider = err.provider }
  if type(data) == "string" and data:match("^0x%x*$") and #data >= 10 then
    local r = abic.decode_revert(fromhex(data))
    if r then
      fields.revert = r
      if r.kind == "Error" then reason = r.reason
      elseif r.kind == "Panic" then reason = ("panic 0x%x: %s"):format(tonumber(tostring(r.code)) or 0, r.reason or "")
      elseif r.kind == "custom" then reason = ("custom error %s"):format(tohex(r.selector)) end
    end
    fields.data = data
  end
  fields.reason = reason
  return ferry.error("reverted", "execution reverted: " .. tostring(reason), fields)
end

---------------------------------------------------------------------------------------------
-- Chains
---------------------------------------------------------------------------------------------

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
function M.chain(name)
  local cfg = ferry.config()
  local c = chains[name]
  if c and c.cfg_root == cfg then return c end
  local cc = cfg.chains[name]
  if not cc then
    local names = {}
    for k in pairs(cfg.chains) do names[#names + 1] = k end
    table.sort(names)
    error(("eth.chain: no chain %q in %s (configured: %s)"):format(tostring(name), cfg.path or "config",
      #names > 0 and table.concat(names, ", ") or "none"), 2)
  end
  if cc.kind ~= "evm" then error(("eth.chain: %s is a %s chain"):format(name, cc.kind), 2) end
  if #cc.providers == 0 then
    local vars = {}
    for _, d in ipairs(cfg.dropped_providers and cfg.dropped_providers[name] or {}) do vars[#vars + 1] = d.env end
    local hint = #vars > 0 and (": set " .. table.concat(vars, " or ")) or ""
    error(("eth.chain: chain %s has no usable provider%s"):format(name, hint), 2)
  end
  c = setmetatable({ name = name, cfg = cc, cfg_root = cfg, chain_id = cc.chain_id,
                     confirmations = cc.confirmations, pool = Pool.new(name, cc, cfg),
                     nonces = {} }, Chain)
  chains[name] = c
  ferry.register_stats("pool:" .. name, function() return c.pool:stats() end)
  -- follow the head (new heads drop head-bound cache entries, reorgs drop what they
  -- replaced); a daemon task, so it never keeps a script alive. head_poll = 0 turns it off.
  if (cc.head_poll or 1) > 0 and ferry.current() then c.pool:track_heads(cc.head_poll or 1) end
  return c
end

--- A chain over explicit settings (tests, tools): eth.connect{chain_id =, providers = {...}},
--- with optional top-level config (limits, cache, rpc) as a second table.
function M.connect(spec, root)
  local tbl = { chains = { adhoc = spec } }
  for k, v in pairs(root or {}) do tbl[k] = v end
  local cfg = config.validate(tbl, "eth.connect")
  local cc = cfg.chains.adhoc
  return setmetatable({ name = spec.name or "adhoc", cfg = cc, cfg_root = cfg, chain_id = cc.chain_id,
                        confirmations = cc.confirmations, pool = Pool.new(spec.name or "adhoc", cc, cfg),
                        nonces = {} }, Chain)
end

--- chain:call(method, params, opts) -> result | nil, err (rate limit, cache, failover)
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

function Chain:pool_status() return self.pool:status() end
function Chain:stats() return self.pool:stats() end
function Chain:track_heads(interval) return self.pool:track_heads(interval) end
--- chain:close(): stop following the head and drop the cache (also `local c <close> = ...`).
--- A closed chain still answers calls; eth.chain(name) makes a new one.
function Chain:close()
  self.pool:close()
  if chains[self.name] == self then
    chains[self.name] = nil
    ferry.register_stats("pool:" .. self.name, nil)
  end
end
Chain.__close = Chain.close

function Chain:block_number() return qty(self:_must("eth_blockNumber")) end
function Chain:chain_id_remote() return qty(self:_must("eth_chainId")) end

--- balance(addr, block = "latest", {fresh = true}) -> U256
function Chain:balance(addr, block, opts)
  return U(self:_must("eth_getBalance", { arg_address(addr, "chain:balance"), block or "latest" }, opts))
end

--- nonce(addr, block = "pending") -> integer (always read fresh)
function Chain:nonce(addr, block)
  return qty(self:_must("eth_getTransactionCount", { arg_address(addr, "chain:nonce"), block or "pending" }, { fresh = true }))
end

function Chain:code(addr, block) return self:_must("eth_getCode", { arg_address(addr, "chain:code"), block or "latest" }) end
function Chain:gas_price() return U(self:_must("eth_gasPrice")) end

function Chain:block(n, full)
  local tag = n == nil and "latest" or (type(n) == "number" and ("0x%x"):format(n) or n)
  return self:_must("eth_getBlockByNumber", { tag, full and true or false })
end

--- receipt(hash) -> receipt table | nil while not mined
function Chain:receipt(hash) return self:_must("eth_getTransactionReceipt", { hash }, { fresh = true }) end

--- fees({fresh = bool}?) -> {base_fee, max_priority_fee, max_fee} from eth_feeHistory: the
--- next block's base fee and the chain's `fees.percentile` (50) of recent tips; max_fee =
--- base_multiplier (2) x base + tip. The history is cached until the next head (cache.ttl).
function Chain:fees(opts)
  local fc = self.cfg.fees or {}
  local pct = fc.percentile or 50
  local h = self:_must("eth_feeHistory", { ("0x%x"):format(fc.blocks or 5), "latest", json.array({ pct }) }, opts)
  local bases = h.baseFeePerGas
  if type(bases) ~= "table" or #bases == 0 then
    raise("bad_response", "eth_feeHistory without baseFeePerGas", { chain = self.name })
  end
  local base = U(bases[#bases])
  local tips = {}
  for _, r in ipairs(type(h.reward) == "table" and h.reward or {}) do
    local t = r[1] and U(r[1])
    if t and t > 0 then tips[#tips + 1] = t end
  end
  local tip
  if #tips > 0 then
    table.sort(tips, function(a, b) return a < b end)
    tip = tips[(#tips + 1) // 2]
  else
    local ok, v = pcall(self._must, self, "eth_maxPriorityFeePerGas")
    tip = ok and U(v) or M.gwei(1)
  end
  local permille = math.floor((fc.base_multiplier or 2) * 1000 + 0.5)
  local max_fee = base * permille // 1000 + tip
  return { base_fee = base, max_priority_fee = tip, max_fee = max_fee }
end

-- tx fields -> JSON-RPC call object
local function call_object(t)
  local o = json.object({})
  if t.from then o.from = t.from end
  if t.to then o.to = arg_address(t.to, "call: to") end
  local value = t.value and arg_u256(t.value, "call: value")
  if value and value > 0 then o.value = value:tohex() end
  if t.data and t.data ~= "0x" and t.data ~= "" then o.data = t.data end
  if t.gas then o.gas = ("0x%x"):format(t.gas) end
  return o
end

--- eth_call(tx, block = "latest") -> 0x result; raises {code = "reverted", reason =} on revert.
function Chain:eth_call(t, block, opts)
  local r, err = self:_call("eth_call", { call_object(t), block or "latest" }, opts)
  if err then
    if err.code == "reverted" then error(revert_error(err), 2) end
    error(err, 2)
  end
  return r
end

--- estimate_gas(tx) -> integer, with the chain's gas_margin (1.2) applied; raises on revert.
function Chain:estimate_gas(t, opts)
  local r, err = self:_call("eth_estimateGas", { call_object(t) }, opts or { fresh = true })
  if err then
    if err.code == "reverted" then error(revert_error(err), 2) end
    error(err, 2)
  end
  local g = qty(r)
  local margin = self.cfg.gas_margin or 1.2
  if g == 21000 and not (t.data and #t.data > 2) then return g end -- plain transfer: exact
  return math.ceil(g * margin)
end

---------------------------------------------------------------------------------------------
-- Per-address send state: nonces, gaps and funds in flight (ferry.nonces)
---------------------------------------------------------------------------------------------

-- broadcast errors that do not say whether the node got the transaction
local UNSURE = { timeout = true, provider_down = true, bad_response = true }

function Chain:_nonces(addr)
  local n = self.nonces[addr]
  if not n then
    n = Nonces.new(self, addr)
    self.nonces[addr] = n
  end
  return n
end

---------------------------------------------------------------------------------------------
-- Signers and the send pipeline
---------------------------------------------------------------------------------------------

local Signer = {}
Signer.__index = Signer
Signer.__tostring = function(s) return "ferry.Signer " .. s.address end
Signer.__name = "ferry.Signer"

-- -> a ferry.Key (ferry.core.key): the key's bytes live in guarded C memory from here on, and
-- no error shows them. {env = NAME} is parsed from the environment in C, so the key is never
-- a Lua string at all.
local function load_key(key)
  if keyc.is_key(key) then
    if key:is_closed() then raise("invalid_argument", "signer: the ferry.Key is closed", { argument = "key" }) end
    return key
  end
  if type(key) == "table" and type(key.env) == "string" then
    local k, why = keyc.from_env(key.env)
    if why == "unset" then
      raise("invalid_argument", ("signer: environment variable %s is not set"):format(key.env), { argument = "key", env = key.env })
    elseif not k then
      raise("invalid_argument", ("signer: %s does not hold a valid secp256k1 private key (expected 0x + 64 hex digits)")
        :format(key.env), { argument = "key", env = key.env })
    end
    return k
  end
  if type(key) ~= "string" then
    raise("invalid_argument", "signer: key must be 0x + 64 hex digits, 32 bytes, a ferry.Key or {env = NAME}", { argument = "key" })
  end
  local ok, k = pcall(keyc.new, key)
  if not ok then raise("invalid_argument", "signer: " .. tostring(k.message or k):gsub("^ferry%.Key: ", ""), { argument = "key" }) end
  return k
end

--- chain:signer(key | {env = NAME} | ferry.Key) -> signer with .address (EIP-55). The key is a
--- ferry.Key: its bytes stay in C memory (no field, upvalue or method returns them), so
--- printing the signer (REPL, logs) or walking it with the debug library cannot show them.
--- signer:close() (or `local s <close> = chain:signer(...)`) wipes them; a key passed in as a
--- ferry.Key is wiped with it.
function Chain:signer(key)
  local k = load_key(key)
  return setmetatable({ chain = self, address = k:address(), key = k }, Signer)
end

--- signer:close(): wipe the key. The signer cannot sign afterwards.
function Signer:close() self.key:close() end
Signer.__close = Signer.close

-- The fields signer:send{} and signer:sign{} read: a misspelt one (valeu = 1) would
-- otherwise be dropped and a transaction sent without it.
local SEND_FIELDS = { to = true, value = true, data = true, gas = true, max_fee = true,
                      max_priority_fee = true, gas_price = true, nonce = true, access_list = true }
local SIGN_FIELDS = { chain_id = true, type = true }
for k in pairs(SEND_FIELDS) do SIGN_FIELDS[k] = true end

local function check_fields(t, allowed, what)
  if type(t) ~= "table" then
    raise("invalid_argument", ("%s: expects a table of transaction fields, got %s"):format(what, type(t)))
  end
  local bad, shown = config.unknown_key(t, allowed)
  if bad ~= nil then raise("invalid_argument", ("%s: unknown field %s"):format(what, shown), { field = bad }) end
end

-- fields for ferry.core.tx from the user's table
local function tx_fields(self, t)
  check_fields(t, SIGN_FIELDS, "signer:sign")
  local f = {
    type = t.type or (t.gas_price and 0) or (self.chain.cfg.legacy and 0) or 2,
    chain_id = t.chain_id or self.chain.chain_id,
    nonce = t.nonce, gas = t.gas, to = t.to, value = t.value and arg_u256(t.value, "signer:sign: value") or nil,
    data = data_bytes(t.data, "signer:sign: data"),
    access_list = t.access_list,
  }
  if f.type == 0 then f.gas_price = t.gas_price or t.max_fee
  else
    check_tip(t.max_fee, t.max_priority_fee, "signer:sign")
    f.max_fee, f.max_priority_fee = t.max_fee, t.max_priority_fee
  end
  return f
end

--- signer:sign{to, value, data, nonce, gas, max_fee, max_priority_fee | gas_price, chain_id,
--- type, access_list} -> raw (0x hex), hash (0x hex). No I/O: every field must be given.
function Signer:sign(t)
  local ok, raw, hash = pcall(txc.sign, tx_fields(self, t), self.key, "hex")
  if not ok then
    if ferry.is_error(raw) then error(raw, 2) end
    bad_arg("signer:sign", (tostring(raw):gsub("^tx%.sign: ", "")))
  end
  return raw, hash
end

--- EIP-191 personal_sign -> 0x r||s||v (v = 27/28)
function Signer:personal_sign(msg)
  if type(msg) ~= "string" then
    raise("invalid_argument", ("signer:personal_sign: message must be a string, got %s"):format(type(msg)), { argument = "msg" })
  end
  return tohex(self.key:personal_sign(msg))
end

local Tx = {}
Tx.__index = Tx
Tx.__tostring = function(t) return ("ferry.Tx %s (nonce %d)"):format(t.hash, t.nonce) end

--- signer:send{to, value, data, gas?, max_fee?, max_priority_fee?, nonce?} -> tx (raises)
--- The pipeline: fill fees and gas (estimation doubles as the revert check) -> pre-flight
--- funds check on a fresh balance -> eth_call when gas was given (a revert is reported with
--- its reason before anything is signed) -> nonce -> sign -> broadcast on one provider's
--- view -> tx with :wait{}.
function Signer:send(t)
  local base = self.chain
  local chain = base:view()
  local from = self.address
  check_fields(t, SEND_FIELDS, "signer:send")
  if t.to == nil and (t.data == nil or t.data == "" or t.data == "0x") then
    raise("invalid_argument", "signer:send: no `to`, and no `data` to deploy (a contract creation needs its init code)")
  end
  local to = t.to ~= nil and arg_address(t.to, "signer:send: to") or nil   -- the caller's table is left as it is
  local value = t.value and arg_u256(t.value, "signer:send: value") or U(0)
  local data = t.data
  data_bytes(data, "signer:send: data") -- validates
  check_tip(t.max_fee, t.max_priority_fee, "signer:send")
  local legacy = t.gas_price ~= nil or chain.cfg.legacy
  -- 1. fill
  local max_fee = t.max_fee and arg_u256(t.max_fee, "signer:send: max_fee")
  local tip = t.max_priority_fee and arg_u256(t.max_priority_fee, "signer:send: max_priority_fee")
  local gas_price = t.gas_price and arg_u256(t.gas_price, "signer:send: gas_price")
  if legacy and not gas_price then gas_price = chain:gas_price() end
  if not legacy and not (max_fee and tip) then
    local f = chain:fees()
    tip = tip or f.max_priority_fee
    max_fee = max_fee or f.max_fee
    if tip > max_fee then tip = max_fee end
  end
  local cap = chain.cfg_root.limits and chain.cfg_root.limits.max_gas_price_gwei
  local price = legacy and gas_price or max_fee
  if cap and price > M.gwei(cap) then
    raise("policy_rejected", ("fee %s gwei is above the cap of %s gwei (limits.max_gas_price_gwei)")
      :format(u256.format_units(price, 9), tostring(cap)), { max_fee = price, cap_gwei = cap })
  end
  local simulated = false
  local gas = t.gas
  if not gas then
    gas = chain:estimate_gas({ from = from, to = to, value = value, data = data })
    simulated = true
  end
  -- 2. policies (before_send) come with the policy issue
  -- 3. pre-flight funds check: the mined balance, less what this address's sends that
  -- committed before this one still hold (see "Funds" above)
  local nonces = base:_nonces(from)
  local required = value + U(gas) * price
  local hold <close> = nonces:commit(required)
  local balance, ahead, n_ahead
  for _ = 1, 2 do
    local count
    count, balance = nonces:snapshot(hold)      -- registers the check in nonces.counts
    ahead, n_ahead = nonces:ahead_of(hold, count)
    if balance >= ahead + required or n_ahead == 0 then break end
  end
  nonces.counts[hold] = nil
  if balance < ahead + required then
    local available = balance > ahead and balance - ahead or U(0)
    local held = n_ahead > 0 and (" (balance %s, %s held by %d earlier send%s not mined yet)")
      :format(tostring(balance), tostring(ahead), n_ahead, n_ahead > 1 and "s" or "") or ""
    raise("insufficient_funds", ("%s has %s wei, needs %s wei (value %s + gas %d x %s)%s")
      :format(from, tostring(available), tostring(required), tostring(value), gas, tostring(price), held),
      { required = required, available = available, balance = balance, held = ahead, address = from })
  end
  -- 4. simulate when estimation did not already run the call
  if not simulated then chain:eth_call({ from = from, to = to, value = value, data = data, gas = gas }, "pending") end
  -- 5. nonce
  local session = chain.session
  for attempt = 1, 3 do
    local nonce = t.nonce or nonces:reserve()
    hold.nonce = nonce
    -- 6. sign
    local fields = { type = legacy and 0 or 2, chain_id = chain.chain_id, nonce = nonce, gas = gas,
                     to = to, value = value, data = data, access_list = t.access_list }
    if legacy then fields.gas_price = gas_price
    else fields.max_fee, fields.max_priority_fee = max_fee, tip end
    local ok, raw_tx, hash = pcall(self.sign, self, fields)
    if not ok then
      if not t.nonce then nonces:release(nonce, self) end
      error(raw_tx, 2)
    end
    -- 7. broadcast
    local r, err = session:call("eth_sendRawTransaction", { raw_tx })
    local unsure = err and UNSURE[err.code]
    if unsure then
      -- no clear answer: it may or may not have reached the node; ask before deciding. A
      -- "not there" settles it after a complete reply (5xx, garbage), not after a timeout: that
      -- request may still be on its way.
      local seen, lerr = chain:_call("eth_getTransactionByHash", { hash }, { fresh = true })
      if seen then err = nil
      elseif not lerr and err.code ~= "timeout" then unsure = false end
    end
    if err == nil or err.code == "already_known" or (r ~= nil and r == hash) then
      hold.sent = true                          -- held until mined (Nonces:ahead_of)
      if r ~= nil and r ~= hash then
        ferry.log.warn("node returned a different tx hash", { expected = hash, got = tostring(r) })
      end
      return setmetatable({ hash = hash, nonce = nonce, from = from, to = to, value = value,
                            data = data, access_list = t.access_list, legacy = legacy,
                            raw = raw_tx, chain = base, gas = gas, max_fee = max_fee,
                            max_priority_fee = tip, gas_price = gas_price, sent_at = ferry.now(),
                            hashes = { hash }, bumps = 0, signer = self, _hold = hold }, Tx)
    end
    if err.code == "nonce_too_low" and not t.nonce and attempt < 3 then
      nonces:resync()
    else
      -- refused: the nonce can be used again. Unsure (no answer, and no answer that settles
      -- it from the lookup either): the bytes may still arrive, so the nonce stays taken until
      -- the gap filler settles it, and the caller gets them (err.raw) to resend. See "Gaps".
      if not t.nonce then
        if unsure then hold.sent = true; nonces:unsure(nonce, self, hash, fields)
        else nonces:release(nonce, self) end
      end
      err.raw = raw_tx
      if err.code == "reverted" then error(revert_error(err), 2) end
      err.nonce = nonce
      err.hash = hash
      error(err, 2)
    end
  end
end

-- Fee bump: the same transaction (same nonce) with fees raised by at least 12.5% (geth
-- wants +10% on both; anvil only a higher max fee) or to what the chain asks now, whichever
-- is higher, never above limits.max_gas_price_gwei. -> true if a replacement was sent.
function Tx:_bump()
  local chain = self.chain
  local cap = chain.cfg_root.limits and chain.cfg_root.limits.max_gas_price_gwei
  local function up(v) return v + (v + 7) // 8 end
  local fields = { nonce = self.nonce, gas = self.gas, to = self.to, value = self.value, data = self.data,
                   access_list = self.access_list }
  local price
  if self.legacy then
    local now = chain:gas_price()
    fields.gas_price = up(self.gas_price)
    if now > fields.gas_price then fields.gas_price = now end
    price = fields.gas_price
  else
    local f = chain:fees({ fresh = true })      -- a bump answers what the chain asks now
    fields.max_fee, fields.max_priority_fee = up(self.max_fee), up(self.max_priority_fee)
    if f.max_fee > fields.max_fee then fields.max_fee = f.max_fee end
    if f.max_priority_fee > fields.max_priority_fee then fields.max_priority_fee = f.max_priority_fee end
    if fields.max_priority_fee > fields.max_fee then fields.max_priority_fee = fields.max_fee end
    price = fields.max_fee
  end
  if cap and price > M.gwei(cap) then
    ferry.log.warn("fee bump would pass the gas price cap; waiting instead",
      { hash = self.hash, nonce = self.nonce, cap_gwei = cap })
    return false
  end
  local raw_tx, hash = self.signer:sign(fields)
  -- the replacement may spend more: its hold grows before it is broadcast, so a send checking
  -- funds meanwhile counts the larger amount, and shrinks back if the node refuses it
  local hold = self._hold
  local held = hold and hold.amount
  if hold then
    local bigger = self.value + U(self.gas) * price
    if bigger > held then hold.amount = bigger end
  end
  local r, err = chain:call("eth_sendRawTransaction", { raw_tx })
  if err and err.code ~= "already_known" then
    if hold then hold.amount = held end
    ferry.log.warn("fee bump refused", { hash = self.hash, nonce = self.nonce, err = tostring(err) })
    return false
  end
  local _ = r
  ferry.log.info("fee bump", { nonce = self.nonce, old = self.hash, new = hash,
    max_fee_gwei = u256.format_units(price, 9) })
  self.raw, self.hash, self.bumps = raw_tx, hash, self.bumps + 1
  self.hashes[#self.hashes + 1] = hash
  if self.legacy then self.gas_price = fields.gas_price
  else self.max_fee, self.max_priority_fee = fields.max_fee, fields.max_priority_fee end
  return true
end

--- tx:wait{confirmations = chain's, timeout = 120, poll = adaptive, rebroadcast = 3,
---         stuck_after = chain's (12 s), max_bumps = 3} -> receipt
--- Raises {code = "reverted", receipt =} if it was mined but failed, "nonce_too_low" once its
--- nonce is used by a transaction that is not one of its versions, "timeout" if not mined in
--- time. While it waits:
---  * the signed bytes are sent again every `rebroadcast` seconds: a node that lost the
---    transaction from its pool (restart, eviction) gets it back; "already known" costs nothing;
---  * when it is next in line (the account's mined nonce equals its nonce) and still not mined
---    `stuck_after` seconds after it was sent or last bumped, it is replaced by the same
---    transaction with higher fees (tx.hash follows; tx.hashes keeps every version, and a
---    receipt for any of them ends the wait).
local WAIT_OPTIONS = { confirmations = true, timeout = true, poll = true, max_poll = true, rebroadcast = true,
                       stuck_after = true, max_bumps = true }

-- A receipt can only appear with a new block: after its first read, a waiting transaction reads
-- it again only once the pool's head has moved past the one it last read at (Pool:watch_heads
-- keeps the head fresh while anyone waits), or every RECHECK seconds should head reads fail.
local RECHECK = 15

function Tx:wait(opts)
  opts = opts or {}
  local bad, shown = config.unknown_key(opts, WAIT_OPTIONS)   -- {timout = 5}: 120 s
  if bad ~= nil then raise("invalid_argument", "tx:wait: unknown option " .. shown, { option = bad }) end
  local chain = self.chain
  local conf = opts.confirmations or chain.confirmations or 1
  local deadline = ferry.now() + (opts.timeout or 120)
  local poll = opts.poll or 0.02
  local every = opts.rebroadcast or 3
  local stuck_after = opts.stuck_after or chain.cfg.stuck_after or 12
  local max_bumps = opts.max_bumps or 3
  local next_send = ferry.now() + every
  local last_move = self.sent_at or ferry.now()
  local heads <close> = chain.pool:watch_heads()
  local asked_at, asked_head = nil, nil          -- when we last asked for a receipt, at which head
  local rc
  while true do
    local head = chain.pool.head
    if not rc or conf > 1 then
      if asked_at == nil or (head and head ~= asked_head) or ferry.now() - asked_at >= RECHECK then
        asked_at, asked_head = ferry.now(), head
        rc = nil
        for i = #self.hashes, 1, -1 do
          rc = chain:receipt(self.hashes[i])
          if rc then self.hash = self.hashes[i]; break end
        end
      end
    end
    if rc then
      local bn = qty(rc.blockNumber)
      local head = conf > 1 and chain:block_number() or bn
      if head - bn + 1 >= conf then
        self.receipt = rc
        if qty(rc.status) ~= 1 then
          raise("reverted", ("transaction %s was mined but reverted (block %d)"):format(self.hash, bn),
            { receipt = rc, hash = self.hash })
        end
        return rc
      end
    else
      local now = ferry.now()
      if stuck_after > 0 and self.bumps < max_bumps and self.signer and now - last_move >= stuck_after then
        last_move = now
        if chain:nonce(self.from, "latest") == self.nonce and self:_bump() then next_send = now + every end
      end
      if every > 0 and now >= next_send then
        local _, err = chain:call("eth_sendRawTransaction", { self.raw })
        ferry.log.debug("rebroadcast", { hash = self.hash, nonce = self.nonce, result = err and err.code or "sent" })
        self.rebroadcasts = (self.rebroadcasts or 0) + 1
        next_send = now + every
        if err and err.code == "nonce_too_low" then
          -- the nonce is used: by one of ours (its receipt says so) or by another transaction,
          -- and then no receipt of ours will ever come
          local mined
          for i = #self.hashes, 1, -1 do mined = mined or chain:receipt(self.hashes[i]) end
          if not mined then
            raise("nonce_too_low", ("transaction %s will not be mined: nonce %d of %s was used by another transaction")
              :format(self.hash, self.nonce, self.from), { hash = self.hash, hashes = self.hashes, nonce = self.nonce })
          end
        end
      end
    end
    if ferry.now() + poll > deadline then
      raise("timeout", ("transaction %s not %s within %ss"):format(self.hash, rc and "confirmed" or "mined",
        opts.timeout or 120), { hash = self.hash, hashes = self.hashes })
    end
    ferry.sleep(poll)
    poll = math.min(poll * 1.5, opts.max_poll or 1)
  end
end

---------------------------------------------------------------------------------------------
-- ERC-20
---------------------------------------------------------------------------------------------

local Token = {}
Token.__index = Token

--- chain:erc20(address) -> token with balance_of, allowance, transfer, approve, decimals, symbol
function Chain:erc20(address)
  return setmetatable({ chain = self, address = arg_address(address, "chain:erc20") }, Token)
end

local function read(tok, sig, ret, ...)
  local out = tok.chain:eth_call({ to = tok.address, data = M.abi.encode_call(sig, ...) })
  if out == "0x" then   -- what a call to an address without code returns
    raise("bad_response", ("%s: %s returned nothing: is there a contract at this address on chain %s?")
      :format(tok.address, sig, tok.chain.name), { address = tok.address })
  end
  local v = table.pack(M.abi.decode(ret, out))
  if v[1] == nil then raise("bad_response", ("%s: cannot decode %s: %s"):format(tok.address, sig, tostring(v[2] and v[2].message))) end
  return table.unpack(v, 1, v.n)
end

function Token:balance_of(owner) return (read(self, "balanceOf(address)", "uint256", arg_address(owner, "token:balance_of"))) end
function Token:allowance(owner, spender)
  return (read(self, "allowance(address,address)", "uint256", arg_address(owner, "token:allowance: owner"),
    arg_address(spender, "token:allowance: spender")))
end
function Token:decimals() return tonumber(tostring((read(self, "decimals()", "uint8")))) end
function Token:symbol() return (read(self, "symbol()", "string")) end
function Token:total_supply() return (read(self, "totalSupply()", "uint256")) end

-- send sig(address, uint256) to the token; extra: more send fields (gas, fees, nonce), copied
local function write(tok, signer, name, who, addr, amount, extra)
  local t = {}
  for k, v in pairs(extra or {}) do t[k] = v end
  t.to = tok.address
  t.data = M.abi.encode_call(name .. "(address,uint256)", arg_address(addr, ("token:%s: %s"):format(name, who)),
    arg_u256(amount, ("token:%s: amount"):format(name)))
  return signer:send(t)
end

function Token:transfer(signer, to, amount, extra) return write(self, signer, "transfer", "to", to, amount, extra) end
function Token:approve(signer, spender, amount, extra) return write(self, signer, "approve", "spender", spender, amount, extra) end

return M
