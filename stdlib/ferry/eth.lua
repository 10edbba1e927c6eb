--- ferry.eth -- EVM chains: reads through the provider pool, signing, and the send pipeline.
---
---   local eth = require "ferry.eth"
---   local chain = eth.chain "local"                 -- config.chains["local"]
---   local signer = chain:signer{env = "PAYER_KEY"}  -- or a 0x hex private key
---   local tx = signer:send{to = addr, value = eth.ether "0.5"}
---   local receipt = tx:wait{confirmations = 1, timeout = 60}
---
--- Byte strings in this API are 0x-hex text (data, hashes, raw transactions); raw binary goes
--- in through eth.raw(bytes) (a ferry.Bytes), and a plain string where bytes are expected is
--- refused with invalid_argument, never guessed (see "Values and units"). Amounts are
--- ferry.U256 values (Lua integers and decimal/hex strings are accepted where an amount goes
--- in). chain:call returns `nil, err` on failure like every primitive; the helpers above it
--- (balance, nonce, fees, send, wait ...) raise the same error tables.
local ferry = require "ferry"
local json = require "ferry.core.json"
local u256 = require "ferry.core.u256"
local keccak = require "ferry.core.keccak"
local secp = require "ferry.core.secp256k1"
local abic = require "ferry.core.abi"
local bytesc = require "ferry.core.bytes"
local txc = require "ferry.core.tx"
local config = require "ferry.config"
local Pool = require "ferry.pool"
local Nonces = require "ferry.nonces"
local replies = require "ferry.eth.replies"

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
local function bad_arg(what, err, shown)
  local text = ferry.is_error(err) and tostring(err.message) or tostring(err)
  local why = text:match("^bad argument #%d+ to '[^']*' %((.*)%)$") or text:match("%((.*)%)$") or text:gsub("^[^:]*:%d+: ", "")
  raise("invalid_argument", ("%s: %s%s"):format(what, why, shown or ""), { argument = what })
end

-- f(...), with a failure raised as above
local function checked(what, f, ...)
  local ok, r = pcall(f, ...)
  if not ok then bad_arg(what, r) end
  return r
end

-- An address is "0x" + 40 hex digits (EIP-55 checked when the case is mixed), or eth.raw of 20
-- bytes; the rule is the C bindings' own (secp_lua.c), so it is the same in every call.
local function arg_address(v, what)
  local ok, r = pcall(secp.checksum, v)
  if not ok then   -- the binding's message does not show the value: add it (addresses are public)
    local shown = type(v) == "string" and ("%q"):format(#v > 80 and v:sub(1, 80) .. "..." or v) or tostring(v)
    bad_arg(what, (ferry.is_error(r) and r.message or tostring(r)):gsub("%(address: ", "("), (" (got %s)"):format(shown))
  end
  return r
end

local is_u256 = u256.is_u256
-- a U256 is already a valid amount: the common case (eth.ether, eth.gwei, fees) skips the pcall
local function arg_u256(v, what)
  if is_u256(v) then return v end
  return checked(what, M.u256, v)
end

-- A Lua float as the decimal it prints as ("%.14g": 0.3 is "0.3", never 0.29999999999999998),
-- written out without an exponent. A float that is not exactly that decimal (0.1 + 0.2, or
-- more digits than a double keeps) is refused: an amount is never off by a few wei.
local function float_decimal(x, what)
  if x ~= x or x == math.huge or x == -math.huge then
    raise("invalid_argument", ("%s: %s is not an amount"):format(what, tostring(x)))
  end
  local s = ("%.14g"):format(x)
  if tonumber(s) ~= x then
    raise("invalid_argument", ("%s: the float %.17g is not exactly a decimal number; pass the amount as a string, such as %q")
      :format(what, x, s), { argument = what })
  end
  local sign, int, frac, e = s:match("^(-?)(%d+)%.?(%d*)e([-+]%d+)$")
  if not sign then return s end
  local digits, point = int .. frac, #int + tonumber(e)
  if point <= 0 then return sign .. "0." .. ("0"):rep(-point) .. digits end
  if point >= #digits then return sign .. digits .. ("0"):rep(point - #digits) end
  return sign .. digits:sub(1, point) .. "." .. digits:sub(point + 1)
end

local function units(decimals, name)
  return function(x)
    if u256.is_u256(x) then return x * u256.new(10) ^ decimals end
    if math.type(x) == "float" then x = float_decimal(x, name) end
    return checked(name, u256.parse_units, tostring(x), decimals)
  end
end
M.ether = units(18, "eth.ether")     -- eth.ether "1.5"
M.gwei = units(9, "eth.gwei")        -- eth.gwei(30)
function M.wei(x) return U(x) end
M.parse_units = u256.parse_units     -- (text, decimals)
M.format_units = u256.format_units   -- (value, decimals) -> "1.5"
function M.format_ether(v) return u256.format_units(U(v), 18) end

--- Bytes. One rule for every bytes-like value in this API (ABI bytes, bytesN and address
--- values, eth.keccak256's input, eth.abi.decode's data, signer data): a string is "0x" + hex
--- digits and is read as hex, as JSON-RPC, ethers and viem read it; raw binary is said to be
--- raw with eth.raw(bytes), a ferry.Bytes (#b, b:hex(), b:string()); any other string is
--- refused with invalid_argument naming the call, never taken as raw bytes.
---   eth.keccak256("0x1234")            -- the two bytes 0x12 0x34
---   eth.keccak256(eth.raw("hello"))    -- the five bytes of the text
---   eth.keccak256("hello")             -- invalid_argument
M.raw = bytesc.raw
M.is_raw = bytesc.is_raw

--- bytes <-> 0x hex: eth.hex(raw string or eth.raw) -> "0x..."; eth.bytes("0x...") -> raw string
function M.hex(b)
  if bytesc.is_raw(b) then return b:hex() end
  return checked("eth.hex", tohex, b)
end
function M.bytes(hex)
  if type(hex) ~= "string" or not hex:match("^0x") then
    raise("invalid_argument", ("eth.bytes: expected 0x-hex text, got %s"):format(type(hex) == "string" and "a plain string" or type(hex)))
  end
  return checked("eth.bytes", fromhex, hex)
end

-- the raw bytes of a bytes-like argument (the rule above); what: "eth.keccak256", say
local function arg_bytes(v, what)
  if bytesc.is_raw(v) then return v:string() end
  if type(v) ~= "string" then
    raise("invalid_argument", ("%s: expected 0x-hex text or eth.raw(bytes), got %s"):format(what, type(v)), { argument = what })
  end
  if not v:match("^0x") then
    raise("invalid_argument", ("%s: expected 0x-hex text, got a plain string (raw bytes go through eth.raw)"):format(what),
      { argument = what })
  end
  if #v % 2 == 1 or not v:match("^0x%x*$") then
    raise("invalid_argument", ("%s: %s"):format(what, #v % 2 == 1 and "odd number of hex digits" or "bad hex digit"),
      { argument = what })
  end
  return fromhex(v)
end

--- keccak256 of 0x-hex input's bytes or of eth.raw(bytes); returns 0x hex.
function M.keccak256(data)
  return tohex(keccak.keccak256(arg_bytes(data, "eth.keccak256")))
end

--- EIP-55 checksummed address from "0x" + 40 hex digits or eth.raw(20 bytes); raises
--- invalid_argument on anything else (a 20-character string included).
function M.address(v) return arg_address(v, "eth.address") end
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
  if bytesc.is_raw(d) then return d:string() end
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
--
-- Values follow the bytes rule above: `bytes`, `bytesN` and `address` take "0x" hex text or
-- eth.raw(bytes), and refuse any other string (eth.abi.encode({"bytes"}, "0x1234") is the two
-- bytes 0x12 0x34, never the six characters); `string` takes text as it is. Numbers take a
-- U256, an integer or a decimal/0x string. eth.abi.decode's data is 0x hex or eth.raw, and it
-- returns bytes/bytesN as 0x hex and addresses EIP-55 checksummed (as ethers does). Encoding
-- returns 0x hex. A bad argument raises invalid_argument naming the call; data that does not
-- decode gives nil, err.
---------------------------------------------------------------------------------------------

M.abi = {}
function M.abi.encode_call(sig, ...) return tohex(checked("eth.abi.encode_call", abic.encode_call, sig, ...)) end
function M.abi.encode(types, ...) return tohex(checked("eth.abi.encode", abic.encode, types, ...)) end
function M.abi.selector(sig) return tohex(checked("eth.abi.selector", abic.selector, sig)) end
function M.abi.decode(types, data)
  local d = arg_bytes(data, "eth.abi.decode: data")
  local r = table.pack(pcall(abic.decode, types, d))       -- a bad type list raises; bad data: nil, err
  if not r[1] then bad_arg("eth.abi.decode", r[2]) end
  return table.unpack(r, 2, r.n)
end
function M.abi.decode_revert(data)
  return abic.decode_revert(arg_bytes(data, "eth.abi.decode_revert: data"))
end

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
      elseif r.kind == "custom" then reason = ("custom error %s"):format(r.selector) end   -- already 0x hex
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
                     confirmations = cc.confirmations, pool = Pool.new(name, cc, cfg, replies.check),
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
                        confirmations = cc.confirmations, pool = Pool.new(spec.name or "adhoc", cc, cfg, replies.check),
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

-- Delivery. Once signed bytes may have reached a node, the payment is bound to their nonce
-- and hash. It ends mined, replaced by a fee bump of itself, or proven absent with its nonce
-- taken by another transaction; it is never signed again at another nonce. A broadcast ends
-- in one of four outcomes:
--  "sent"     the node has it (accepted, "already known", or found by its hash);
--  "unsure"   no answer settles it (a timeout, a cut reply, a 5xx after the request went
--             out), and its hash is not found: the bytes may still arrive. The caller gets
--             the tx all the same; tx:wait (and a tracker when nobody waits) sends the same
--             bytes again until it is mined or proven absent;
--  "taken"    its nonce is mined by another transaction and its hash is nowhere: nothing
--             was paid, and nothing will be. The caller gets nonce_too_low;
--  "refused"  every node that answered refused it (underpriced, insufficient funds, revert)
--             and no attempt can have been delivered: the nonce is free again.
-- A "nonce too low" is never taken at its word: the hash is looked up first (a cut reply to
-- the first copy makes its retry meet "nonce too low"), then the mined count must show the
-- nonce used.

-- Is a transaction with this hash known to the node (pending or mined)? -> true | false | nil
-- (nil: the lookup itself failed)
local function known(chain, hash)
  local seen, err = chain:_call("eth_getTransactionByHash", { hash }, { fresh = true })
  if err then return nil end
  if seen then return true end
  local rc, rerr = chain:_call("eth_getTransactionReceipt", { hash }, { fresh = true })
  if rerr then return nil end
  return rc ~= nil
end

-- Broadcast tx.raw and settle what its answer means. -> outcome, err
local function deliver(chain, tx)
  local r, err = chain:_call("eth_sendRawTransaction", { tx.raw })
  if err == nil or err.code == "already_known" then
    if r ~= nil and r ~= tx.hash then
      ferry.log.warn("node returned a different tx hash", { expected = tx.hash, got = tostring(r) })
    end
    return "sent"
  end
  local maybe = err.maybe_sent       -- set by the pool: an attempt may have been delivered
  if not maybe and err.code ~= "nonce_too_low" then return "refused", err end
  local seen = known(chain, tx.hash)
  if seen then return "sent" end
  if err.code == "nonce_too_low" then
    local ok, mined = pcall(chain.nonce, chain, tx.from, "latest")
    if seen == false and ok and mined > tx.nonce then
      err.message = ("nonce %d of %s was taken by another transaction; this one (%s) was not sent and nothing was paid")
        :format(tx.nonce, tx.from, tx.hash)
      return "taken", err
    end
    -- the node's story does not hold (the nonce is not used, or we cannot tell): it may be ours
  end
  ferry.log.warn("broadcast not answered; the payment stays bound to its nonce and hash and is sent again until it is mined or proven absent",
    { hash = tx.hash, nonce = tx.nonce, from = tx.from, err = tostring(err) })
  return "unsure", err
end

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

local function load_key(key)
  if type(key) == "table" and key.env then
    local v = os.getenv(key.env)
    if not v or v == "" then error(("signer: environment variable %s is not set"):format(key.env), 3) end
    if not v:match("^0x%x+$") and v:match("^%x+$") then v = "0x" .. v end
    if not (v:match("^0x%x+$") and #v == 66) or not secp.is_valid_key(fromhex(v)) then
      error(("signer: %s does not hold a valid secp256k1 private key (expected 0x + 64 hex digits)"):format(key.env), 3)
    end
    return fromhex(v)
  end
  if type(key) ~= "string" then error("signer: key must be 0x + 64 hex digits or {env = NAME}", 3) end
  if key:match("^0x") then
    if #key ~= 66 or not key:match("^0x%x+$") then
      error("signer: a private key is 0x + 64 hex digits", 3)
    end
    key = fromhex(key)
  end
  if #key ~= 32 or not secp.is_valid_key(key) then error("signer: not a valid secp256k1 private key", 3) end
  return key
end

--- chain:signer(key | {env = NAME}) -> signer with .address (EIP-55). The key is kept in a
--- closure, never in a field, so printing the signer (REPL, logs) cannot show it.
function Chain:signer(key)
  local k = load_key(key)
  local s = setmetatable({ chain = self, address = secp.address(k) }, Signer)
  s._sign = function(t) local ok, a, b = pcall(txc.sign, t, k, "hex")
    if not ok then error(a, 3) end
    return a, b end
  s._personal = function(msg) return secp.personal_sign(msg, k) end
  return s
end

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
-- signer.sign(x) instead of signer:sign(x): say so rather than fail on the field read
local function check_signer(self, what)
  if getmetatable(self) ~= Signer then
    raise("invalid_argument", ("%s: called without a signer (use signer:%s)"):format(what, what:match(":(.*)")))
  end
end

function Signer:sign(t)
  check_signer(self, "signer:sign")
  return self._sign(tx_fields(self, t))
end

--- EIP-191 personal_sign of the message's bytes (text as it is) -> 0x r||s||v (v = 27/28)
function Signer:personal_sign(msg)
  check_signer(self, "signer:personal_sign")
  return tohex(checked("signer:personal_sign", self._personal, msg))
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
  local hold <close> = nonces:hold(required)
  local balance, ahead, n_ahead = nonces:funds(hold)
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
  -- 5. nonce, 6. sign
  local nonce = t.nonce or nonces:reserve()
  nonces:assign(hold, nonce)
  local function fill(n) return self:send{ to = from, value = 0, nonce = n } end
  local fields = { type = legacy and 0 or 2, chain_id = chain.chain_id, nonce = nonce, gas = gas,
                   to = to, value = value, data = data, access_list = t.access_list }
  if legacy then fields.gas_price = gas_price
  else fields.max_fee, fields.max_priority_fee = max_fee, tip end
  local ok, raw_tx, hash = pcall(self.sign, self, fields)
  if not ok then
    if not t.nonce then nonces:release(nonce, fill) end
    error(raw_tx, 2)
  end
  -- 7. broadcast: from here on the payment is bound to this nonce and hash (see "Delivery")
  local tx = setmetatable({ hash = hash, nonce = nonce, from = from, to = to, value = value,
                            data = data, access_list = t.access_list, legacy = legacy,
                            raw = raw_tx, chain = base, gas = gas, max_fee = max_fee,
                            max_priority_fee = tip, gas_price = gas_price, sent_at = ferry.now(),
                            hashes = { hash }, bumps = 0, signer = self, _hold = hold }, Tx)
  local outcome, err = deliver(chain, tx)
  if outcome == "sent" or outcome == "unsure" then
    nonces:sent(hold)                           -- held until mined (Nonces:ahead_of)
    if outcome == "unsure" then
      tx.unsure = err
      nonces:bind(tx)
    end
    return tx
  end
  if outcome == "taken" then
    nonces:resync()                             -- the next send starts above what was taken
  elseif not t.nonce then
    nonces:release(nonce, fill)                 -- refused: no node will mine these bytes
  end
  err.nonce, err.hash, err.raw = nonce, hash, raw_tx
  if err.code == "reverted" then error(revert_error(err), 2) end
  error(err, 2)
end

-- Fee bump: the same transaction (same nonce) with fees raised by at least 12.5% (geth
-- wants +10% on both; anvil only a higher max fee) or to what the chain asks now, whichever
-- is higher, never above limits.max_gas_price_gwei. -> true if a replacement was sent.
function Tx:_bump()
  if self._bumping then return false end        -- a second waiter on the same tx
  self._bumping = true
  local ok, r = pcall(self._bump_once, self)
  self._bumping = nil
  if not ok then error(r, 0) end
  return r
end

function Tx:_bump_once()
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
  local nonces, hold = chain:_nonces(self.from), self._hold
  local held = hold and hold.amount
  local bigger = self.value + U(self.gas) * price
  if hold and bigger > held then nonces:resize(hold, bigger) end
  -- the replacement is one more version of the same payment: once it may have reached a
  -- node, a receipt for it ends the wait like one for the original (see "Delivery")
  local outcome, err = deliver(chain, { raw = raw_tx, hash = hash, nonce = self.nonce, from = self.from })
  if outcome == "refused" or outcome == "taken" then
    if hold then nonces:resize(hold, held) end
    ferry.log.warn("fee bump refused", { hash = self.hash, nonce = self.nonce, err = tostring(err) })
    return false
  end
  ferry.log.info("fee bump", { nonce = self.nonce, old = self.hash, new = hash, outcome = outcome,
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
-- it again only once the chain's head (pool.heads) has moved past the one it last read at
-- (Pool:watch_heads keeps the head fresh while anyone waits; heads:wait wakes it), or every
-- RECHECK seconds should head reads fail.
local RECHECK = 15

-- Errors that say a provider could not answer now, not that the transaction failed: a wait
-- rides them out (until its timeout), as a payment in flight does not fail with its provider.
local TRANSIENT = { timeout = true, provider_down = true, rate_limited = true, bad_response = true }

-- f(...) -> its result, or nil, err when it failed for a passing reason; other errors raise
local function transient(f, ...)
  local ok, r = pcall(f, ...)
  if ok then return r end
  if type(r) == "table" and TRANSIENT[r.code] then return nil, r end
  error(r, 0)
end

-- The newest receipt among the tx's versions. -> receipt | nil, err (a read failed)
function Tx:_receipt()
  for i = #self.hashes, 1, -1 do
    local rc, err = transient(self.chain.receipt, self.chain, self.hashes[i])
    if err then return nil, err end
    if rc then self.hash = self.hashes[i]; return rc end
  end
  return nil
end

-- Proven absent: no version of it is known to the node, and its nonce is mined. -> bool
function Tx:_taken()
  for i = #self.hashes, 1, -1 do
    if known(self.chain, self.hashes[i]) ~= false then return false end
  end
  local mined = transient(self.chain.nonce, self.chain, self.from, "latest")
  return mined ~= nil and mined > self.nonce
end

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
  local watching <close> = chain.pool:watch_heads()
  local heads = chain.pool.heads
  local asked_at, asked_head = nil, nil          -- when we last asked for a receipt, at which head
  local rc, last_err
  while true do
    local head = heads.number
    if not rc or conf > 1 then
      if asked_at == nil or (head and head ~= asked_head) or ferry.now() - asked_at >= RECHECK then
        local err
        rc, err = self:_receipt()
        if err then last_err = err else asked_at, asked_head = ferry.now(), head end
      end
    end
    if rc then
      local bn = qty(rc.blockNumber)
      local top = bn
      if conf > 1 then top, last_err = transient(chain.block_number, chain) end
      if top and top - bn + 1 >= conf then
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
        if transient(chain.nonce, chain, self.from, "latest") == self.nonce and transient(self._bump, self) then
          next_send = now + every
        end
      end
      if every > 0 and now >= next_send then
        local _, err = chain:call("eth_sendRawTransaction", { self.raw })
        ferry.log.debug("rebroadcast", { hash = self.hash, nonce = self.nonce, result = err and err.code or "sent" })
        self.rebroadcasts = (self.rebroadcasts or 0) + 1
        next_send = now + every
        -- its nonce is used: by one of its versions (a receipt will say so), or by another
        -- transaction, and then none of its receipts will ever come
        if err and err.code == "nonce_too_low" and self:_taken() then
          raise("nonce_too_low", ("transaction %s will not be mined: nonce %d of %s was used by another transaction")
            :format(self.hash, self.nonce, self.from), { hash = self.hash, hashes = self.hashes, nonce = self.nonce })
        end
      end
    end
    if ferry.now() + poll > deadline then
      raise("timeout", ("transaction %s not %s within %ss%s"):format(self.hash, rc and "confirmed" or "mined",
        opts.timeout or 120, last_err and ("; last error: " .. tostring(last_err)) or ""),
        { hash = self.hash, hashes = self.hashes, last_error = last_err })
    end
    -- until a new head, or the next thing to do (a rebroadcast, a stuck check, a recheck)
    heads:wait(asked_head, poll)
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
