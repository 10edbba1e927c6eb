--- ferry.sol.signer -- ed25519 signers: chain:signer(key), signer:sign{} (no I/O), and the send
--- pipeline signer:send{} / transfer{} / token_transfer{} / create_nonce_account{}.
---
---   local signer = chain:signer{env = "SOL_PAYER_KEY"}   -- or base58 text, 0x hex, {n, n, ...}
---   local wire, sig = signer:sign{instructions = {...}, recent_blockhash = h}
---   local tx = signer:send{instructions = {...}, compute_units =, priority_fee =, durable_nonce =}
---   tx:wait{commitment = "confirmed"}
---
--- send runs: validate -> lifetime (cached blockhash, or the nonce account read fresh) ->
--- budget (simulate: compute-unit limit = units consumed x margin; unit price from recent
--- prioritization fees, capped) -> sign (the 1,232-byte limit checked) -> broadcast -> the
--- ferry.sol.tx tracker. A simulation that fails raises simulation_failed with its logs, and
--- nothing is sent.
local ferry = require "ferry"
local json = require "ferry.core.json"
local core = require "ferry.core.sol"
local bytes = require "ferry.core.bytes"
local config = require "ferry.config"
local V = require "ferry.sol.values"
local B = require "ferry.sol.builders"
local C = require "ferry.sol.chain"
local Tx = require "ferry.sol.tx"

local M = {}
local raise = ferry.raise
local Chain = C.Chain

local Signer = {}
Signer.__index = Signer
Signer.__name = "ferry.sol.Signer"
Signer.__tostring = function(s) return "ferry.sol.Signer " .. s.address end
M.Signer = Signer

local MAX_UNITS = 1400000

-- Reads before anything is signed may be tried again: nothing has been sent. A provider that is
-- down for a moment (its breaker open, a 429, a timeout) delays the payment, not fail it.
local TRANSIENT = { timeout = true, provider_down = true, rate_limited = true, bad_response = true }
local PREPARE_PATIENCE = 30   -- seconds

local function patient(fn, ...)
  local deadline, wait = ferry.now() + PREPARE_PATIENCE, 0.05
  while true do
    local ok, r, r2 = pcall(fn, ...)
    if ok then return r, r2 end
    if not (type(r) == "table" and TRANSIENT[r.code]) or ferry.now() + wait >= deadline then error(r, 0) end
    ferry.sleep(wait)
    wait = math.min(1, wait * 2)
  end
end

-- ---- keys -------------------------------------------------------------------------------------

local function key_of(spec)
  if type(spec) == "userdata" and getmetatable(spec) == "ferry.SolKey" then return spec end
  if type(spec) == "table" and spec.env then
    local k, why = core.key_from_env(spec.env)
    if not k then
      raise("invalid_argument", ("chain:signer: environment variable %s is %s (a Solana secret: base58, a JSON array "
        .. "of 64 numbers, or hex)"):format(spec.env, why), { argument = "key" })
    end
    return k
  end
  local raw
  if type(spec) == "table" then       -- the numbers of a keypair file (id.json)
    local ok, s = pcall(string.char, table.unpack(spec))
    raw = ok and s or nil
  elseif bytes.is_raw(spec) then
    raw = bytes.string(spec)
  elseif type(spec) == "string" and spec:match("^0[xX]") then
    local ok, s = pcall(require("ferry.core.keccak").fromhex, spec)
    raw = ok and s or nil
  elseif type(spec) == "string" then
    raw = core.b58decode(spec)
  end
  if not raw or (#raw ~= 32 and #raw ~= 64) then
    raise("invalid_argument", "chain:signer: expected a Solana secret: 64 or 32 bytes as base58, 0x hex, a list of numbers, "
      .. "or {env = NAME}", { argument = "key" })
  end
  return core.key(raw)
end

--- chain:signer(key | {env = NAME}) -> Signer with .address (base58)
---@param spec string|table|SolKey a key, or {env = NAME}
---@return Signer
function Chain:signer(spec)
  local key = key_of(spec)
  return setmetatable({ chain = self, key = key, address = V.address(key:public()) }, Signer)
end

--- sol.keypair() -> a fresh random signer key (a ferry.SolKey), e.g. for a new account
M.keygen = core.keygen

-- ---- compile and sign --------------------------------------------------------------------------

local function raw_instructions(list, what)
  if type(list) ~= "table" or #list == 0 then
    raise("invalid_argument", what .. ": instructions must be a non-empty list", { argument = "instructions" })
  end
  local out = {}
  for i, ix in ipairs(list) do out[i] = B.raw(ix, i) end
  return out
end

local function raw_tables(list)
  if list == nil then return nil end
  local out = {}
  for i, t in ipairs(list) do
    local addrs = {}
    for j, a in ipairs(t.addresses or {}) do addrs[j] = V.key(a, ("lookup_tables[%d].addresses[%d]"):format(i, j)) end
    out[i] = { key = V.key(t.key, ("lookup_tables[%d].key"):format(i)), addresses = addrs }
  end
  return out
end

-- the SolKeys that sign: this signer's, the fee payer's, then the others (each once)
local function keys_of(self, opts)
  local keys, seen = {}, {}
  local function add(s)
    local k = type(s) == "table" and s.key or s
    if type(k) ~= "userdata" then raise("invalid_argument", "signers: expected signers (chain:signer) or keys", { argument = "signers" }) end
    local pub = k:public()
    if not seen[pub] then seen[pub] = true; keys[#keys + 1] = k end
  end
  add(self)
  if opts.fee_payer and type(opts.fee_payer) == "table" and opts.fee_payer.key then add(opts.fee_payer) end
  for _, s in ipairs(opts.signers or {}) do add(s) end
  return keys
end

-- compile + sign; keys that the message does not need are left out (a fee payer that is not an
-- instruction's signer still signs). -> wire (raw), signatures
local function sign_raw(spec, keys)
  local ok, msg = pcall(core.compile, spec)
  if not ok then error(msg, 0) end
  local wire, sigs = core.sign(msg, keys, true)
  if not wire then
    raise("invalid_argument", ("transaction too large: over %d bytes (split it, or use a v0 message with lookup tables)")
      :format(core.PACKET_SIZE), { limit = core.PACKET_SIZE })
  end
  return wire, sigs
end

local SIGN_OPTIONS = { instructions = true, recent_blockhash = true, fee_payer = true, signers = true, version = true,
                       lookup_tables = true }

--- signer:sign{instructions, recent_blockhash, fee_payer =, signers =, version = "legacy" | 0,
--- lookup_tables =} -> wire (base64), signature (base58). No I/O.
---@param opts table
---@return string wire base64
---@return string signature base58
function Signer:sign(opts)
  local bad, shown = config.unknown_key(opts or {}, SIGN_OPTIONS)
  if bad ~= nil then raise("invalid_argument", "signer:sign: unknown option " .. shown, { option = bad }) end
  local payer = opts.fee_payer and V.key(opts.fee_payer, "fee_payer") or self.key:public()
  local version = opts.version
  if version ~= nil and version ~= "legacy" and version ~= 0 then
    raise("invalid_argument", "signer:sign: version must be \"legacy\" or 0", { argument = "version" })
  end
  if opts.lookup_tables and version ~= 0 then version = 0 end
  local wire, sigs = sign_raw({ payer = payer, blockhash = V.key(opts.recent_blockhash, "recent_blockhash"),
                                instructions = raw_instructions(opts.instructions, "signer:sign"),
                                version = version or "legacy", lookup_tables = raw_tables(opts.lookup_tables) },
                              keys_of(self, opts))
  return core.b64encode(wire), V.address(sigs[1])
end

-- ---- durable nonces ----------------------------------------------------------------------------

--- The value a nonce account stores (base58), read fresh: never from a cache.
---@param chain Chain
---@param account string base58
---@return string base58
function M.nonce_value(chain, account)
  local a = chain:account(account)
  local data = a and bytes.string(a.data)
  if not data or #data < 72 or string.unpack("<I4", data, 5) ~= 1 then
    raise("invalid_argument", ("%s is not an initialized nonce account"):format(tostring(account)), { argument = "durable_nonce" })
  end
  return V.address(data:sub(41, 72)), V.address(data:sub(9, 40))
end

--- signer:create_nonce_account{authority = <base58>?, lamports =?} -> the account's address once
--- created and initialized (waits for it), with this signer paying and as default authority.
---@param opts? table
---@return string account base58
function Signer:create_nonce_account(opts)
  opts = opts or {}
  local chain = self.chain
  local key = core.keygen()
  local addr = V.address(key:public())
  local lamports = opts.lamports or chain:rent_exempt(B.system.NONCE_SPACE)
  local tx = self:send{ instructions = {
      B.system.create_account{ from = self.address, new = addr, lamports = lamports, space = B.system.NONCE_SPACE,
                               owner = V.SYSTEM_PROGRAM },
      B.system.initialize_nonce{ nonce = addr, authority = opts.authority or self.address } },
    signers = { key }, priority_fee = opts.priority_fee }
  tx:wait{ commitment = "confirmed", timeout = opts.timeout }
  key:close()
  return addr
end

-- ---- the send pipeline -------------------------------------------------------------------------

local SEND_OPTIONS = { instructions = true, compute_units = true, priority_fee = true, durable_nonce = true,
                       nonce_authority = true, signers = true, version = true, lookup_tables = true, fee_payer = true }

-- simulate the instructions at the maximum limit -> units consumed; raises with the logs
local function simulate(ctx, build)
  local chain = ctx.chain
  chain.st.simulations = chain.st.simulations + 1
  local wire = build(MAX_UNITS)
  local r, err = chain:call("simulateTransaction", { wire, { encoding = "base64", sigVerify = false,
                                                            replaceRecentBlockhash = true, commitment = "processed" } },
                            { fresh = true })
  if err then error(err, 0) end
  local v = r.value
  if v.err ~= nil and v.err ~= json.null then
    local e = C.classify(ferry.error("simulation_failed", "simulation failed", { data = { err = v.err, logs = v.logs } }))
    e.message = ("simulation failed: %s%s"):format(C.explain(v.err), C.log_tail(v.logs))
    e.units_consumed = v.unitsConsumed
    error(e, 0)
  end
  return math.tointeger(v.unitsConsumed) or MAX_UNITS
end

--- signer:send{instructions, compute_units =, priority_fee = micro-lamports | false, durable_nonce =
--- <nonce account>, nonce_authority =, signers =, version =, lookup_tables =, fee_payer =}
--- -> a ferry.sol.Tx (tx:wait). compute_units absent: simulated and sized with the chain's
--- margin; priority_fee absent: from recent prioritization fees (0 adds no price instruction).
---@param opts table
---@return Tx
function Signer:send(opts)
  local bad, shown = config.unknown_key(opts or {}, SEND_OPTIONS)
  if bad ~= nil then raise("invalid_argument", "signer:send: unknown option " .. shown, { option = bad }) end
  local chain = self.chain
  local ixs = raw_instructions(opts.instructions, "signer:send")
  local payer = opts.fee_payer and V.key(opts.fee_payer, "fee_payer") or self.key:public()
  local keys = keys_of(self, opts)
  local version = opts.version or (opts.lookup_tables and 0) or "legacy"
  local tables = raw_tables(opts.lookup_tables)
  local ctx = { chain = chain }

  -- lifetime: a durable nonce (read fresh) or the cached blockhash
  local lifetime, advance
  if opts.durable_nonce then
    local account = V.address(V.key(opts.durable_nonce, "durable_nonce"))
    local value, authority = patient(M.nonce_value, chain, account)
    local auth = opts.nonce_authority and V.address(V.key(opts.nonce_authority, "nonce_authority")) or authority
    advance = B.raw(B.system.advance_nonce{ nonce = account, authority = auth }, 0)
    lifetime = { nonce = { account = account, value = value } }
  else
    local bh = patient(chain.blockhash, chain)
    lifetime = { blockhash = bh.blockhash, last_valid = bh.last_valid }
  end

  local price = opts.priority_fee
  if price == nil then
    -- fees paid lately to write the accounts this transaction writes (the RPC takes up to 128)
    local writable, seen = {}, {}
    for _, ix in ipairs(ixs) do
      for _, a in ipairs(ix.accounts) do
        if a.writable and not seen[a.pubkey] and #writable < 128 then
          seen[a.pubkey] = true
          writable[#writable + 1] = V.address(a.pubkey)
        end
      end
    end
    price = patient(chain.priority_fee, chain, writable)
  end
  price = price and V.amount(price, "priority_fee") or 0

  -- the instructions of a copy: [advance nonce], unit limit, [unit price], the caller's
  local function build_with(units, life)
    local all = {}
    if advance then all[#all + 1] = advance end
    all[#all + 1] = B.raw(B.compute_budget.unit_limit(units), 0)
    if price > 0 then all[#all + 1] = B.raw(B.compute_budget.unit_price(price), 0) end
    for _, ix in ipairs(ixs) do all[#all + 1] = ix end
    local hash = life.nonce and life.nonce.value or life.blockhash
    local wire, sigs = sign_raw({ payer = payer, blockhash = V.key(hash, "blockhash"), instructions = all,
                                  version = version, lookup_tables = tables }, keys)
    return core.b64encode(wire), V.address(sigs[1])
  end

  local units = opts.compute_units
  if units then
    units = V.amount(units, "compute_units", MAX_UNITS)
  else
    local used = patient(simulate, ctx, function(u) return (build_with(u, lifetime)) end)
    units = math.min(MAX_UNITS, math.ceil(used * chain.settings.compute_margin))
  end
  -- the salt (a payment identical to one already signed) raises the limit a unit at a time
  local tx = Tx.new(chain, function(life, salt) return build_with(math.min(MAX_UNITS, units + salt), life) end, lifetime)
  tx.compute_units, tx.priority_fee, tx.from = units, price, self.address
  return tx:_send_first()
end

--- signer:transfer{to, lamports, ...send options} -> Tx
---@param opts table {to, lamports, ...send options}
---@return Tx
function Signer:transfer(opts)
  local o = {}
  for k, v in pairs(opts) do if k ~= "to" and k ~= "lamports" then o[k] = v end end
  o.instructions = { B.system.transfer{ from = self.address, to = opts.to, lamports = opts.lamports } }
  return self:send(o)
end

--- signer:token_transfer{mint, to = <owner>, amount, decimals =?, program =?} -> Tx. The
--- recipient's associated token account is created in the same transaction when missing
--- (CreateIdempotent: a no-op when it exists).
---@param opts table
---@return Tx
function Signer:token_transfer(opts)
  local decimals = opts.decimals or self.chain:mint_decimals(opts.mint)
  local program = opts.program or V.TOKEN_PROGRAM
  local create, dest = B.token.create_ata_idempotent{ payer = self.address, owner = opts.to, mint = opts.mint, program = program }
  local source = B.token.ata(self.address, opts.mint, program)
  local o = {}
  for k, v in pairs(opts) do
    if k ~= "to" and k ~= "amount" and k ~= "mint" and k ~= "decimals" and k ~= "program" then o[k] = v end
  end
  o.instructions = { create, B.token.transfer_checked{ source = source, mint = opts.mint, destination = dest,
                                                       owner = self.address, amount = opts.amount, decimals = decimals,
                                                       program = program } }
  return self:send(o)
end

return M
