--- ferry.eth.args -- how the EVM API reads its callers' arguments, and shapes its errors.
---
--- Internal to ferry.eth: a bad argument raises invalid_argument naming the call and the
--- argument ("signer:send: value: negative integer: -1"), never the binding or the line that
--- caught it; the bytes and address rules (see ferry.eth.values) are applied here, once.
local ferry = require "ferry"
local json = require "ferry.core.json"
local u256 = require "ferry.core.u256"
local keccak = require "ferry.core.keccak"
local secp = require "ferry.core.secp256k1"
local abic = require "ferry.core.abi"
local bytesc = require "ferry.core.bytes"
local config = require "ferry.config"

local A = {}
local fromhex = keccak.fromhex
local raise = ferry.raise

--- U(x): a U256 from an integer >= 0, a decimal or 0x string, a U256, or a JSON big number.
function A.U(x)
  if type(x) == "table" and json.is_number(x) then x = tostring(x) end
  return u256.new(x)
end
local U = A.U

-- Arguments from the user: a bad one raises invalid_argument naming the call and the argument
-- ("signer:send: value: negative integer: -1"), not the binding or the line that caught it.
-- What is echoed goes through ferry.redact: a private key passed by mistake is not shown.
function A.bad_arg(what, err, shown)
  local text = ferry.is_error(err) and tostring(err.message) or tostring(err)
  -- "bad argument #1 to 'new' (negative integer: -1)" -> "negative integer: -1"; any other
  -- message as it is, less a "file.lua:12: " position
  local why = text:match("^bad argument #%d+ to '[^']*' %((.*)%)$") or text:gsub("^[^:]*%.lua:%d+: ", "")
  raise("invalid_argument", ferry.redact(("%s: %s%s"):format(what, why, shown or "")), { argument = what })
end

-- f(...), with a failure raised as above
function A.checked(what, f, ...)
  local ok, r = pcall(f, ...)
  if not ok then A.bad_arg(what, r) end
  return r
end

-- An address is "0x" + 40 hex digits (EIP-55 checked when the case is mixed), or eth.raw of 20
-- bytes; the rule is the C bindings' own (secp_lua.c), so it is the same in every call.
function A.address(v, what)
  local ok, r = pcall(secp.checksum, v)
  if not ok then   -- the binding's message does not show the value: add it (addresses are public)
    local shown = type(v) == "string" and ("%q"):format(#v > 80 and v:sub(1, 80) .. "..." or v) or tostring(v)
    A.bad_arg(what, (ferry.is_error(r) and r.message or tostring(r)):gsub("%(address: ", "("), (" (got %s)"):format(shown))
  end
  return r
end

local is_u256 = u256.is_u256
-- a U256 is already a valid amount: the common case (eth.ether, eth.gwei, fees) skips the pcall
function A.u256(v, what)
  if is_u256(v) then return v end
  return A.checked(what, U, v)
end

-- the raw bytes of a bytes-like argument (the rule of ferry.eth.values); what: "eth.keccak256", say
function A.bytes(v, what)
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

-- 0x quantity -> integer (or U256 when it does not fit)
function A.qty(v)
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

-- what: "signer:send: data", say (the call and the argument, for the error)
function A.data(d, what)
  if d == nil or d == "" then return nil end
  if bytesc.is_raw(d) then return d:string() end
  if type(d) ~= "string" or not d:match("^0x%x*$") then
    raise("invalid_argument", ("%s must be 0x-prefixed hex"):format(what or "data"))
  end
  if #d % 2 == 1 then raise("invalid_argument", ("%s has an odd number of hex digits"):format(what or "data")) end
  return fromhex(d)
end

-- EIP-1559: a tip above the fee cap is refused by every node
function A.check_tip(max_fee, tip, what)
  if not (max_fee and tip) then return end
  if not is_u256(tip) then tip = A.u256(tip, what .. ": max_priority_fee") end
  if not is_u256(max_fee) then max_fee = A.u256(max_fee, what .. ": max_fee") end
  if tip > max_fee then
    raise("invalid_argument", ("%s: max_priority_fee (%s) is above max_fee (%s)"):format(what, tostring(tip), tostring(max_fee)))
  end
end


-- The fields signer:send{} and signer:sign{} read: a misspelt one (valeu = 1) would
-- otherwise be dropped and a transaction sent without it.
A.SEND_FIELDS = { to = true, value = true, data = true, gas = true, max_fee = true,
                      max_priority_fee = true, gas_price = true, nonce = true, access_list = true }
A.SIGN_FIELDS = { chain_id = true, type = true }
for k in pairs(A.SEND_FIELDS) do A.SIGN_FIELDS[k] = true end
A.SEND_FIELDS.id = true        -- signer:send's idempotency id (not a transaction field)

--- check_fields(t, allowed, what): a table of transaction fields with no unknown key (a
--- misspelt one, valeu = 1, would otherwise be dropped and a transaction sent without it).
function A.check_fields(t, allowed, what)
  if type(t) ~= "table" then
    raise("invalid_argument", ("%s: expects a table of transaction fields, got %s"):format(what, type(t)))
  end
  local bad, shown = config.unknown_key(t, allowed)
  if bad ~= nil then raise("invalid_argument", ("%s: unknown field %s"):format(what, shown), { field = bad }) end
end

-- A reverted call's error table, with the decoded reason.
function A.revert_error(err)
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
  -- the node's own text often is "execution reverted" or "execution reverted: why" already
  reason = tostring(reason):gsub("^execution reverted:?%s*", "")
  fields.reason = reason ~= "" and reason or tostring(err.message)
  return ferry.error("reverted", reason ~= "" and ("execution reverted: " .. reason) or "execution reverted", fields)
end

return A
