--- ferry.eth.eip712 -- EIP-712 typed structured data: the digest a wallet signs.
---
---   eth.typed_data_hash(domain, types, value) -> 0x digest
---   signer:sign_typed_data(domain, types, value) -> 0x r||s||v (v = 27/28)
---
--- `types` is ethers' form: { Mail = { {name = "from", type = "Person"}, ... }, Person = ... }.
--- The primary type is the one no other type refers to (exactly one, as ethers requires). An
--- EIP712Domain entry may be given (as cast's JSON has it) and then lists the domain's fields;
--- without it the domain type is made from the fields the domain has, in the order of EIP-712:
--- name, version, chainId, verifyingContract, salt.
---
--- Values follow the rest of ferry.eth: `bytes`/`bytesN`/`address` are 0x hex or eth.raw (a
--- plain string where bytes go is refused, never hashed as text), `string` is text as it is,
--- numbers are integers, decimal or 0x strings, U256 or JSON big numbers, `bool` is a boolean,
--- arrays are Lua sequences and structs are tables with exactly the struct's fields. A bad value
--- raises invalid_argument naming the call and the path to the value ("Mail.to[2].wallet").
local ferry = require "ferry"
local json = require "ferry.core.json"
local keccak = require "ferry.core.keccak"
local abic = require "ferry.core.abi"
local A = require "ferry.eth.args"

local M = {}
local raise, k256, tohex = ferry.raise, keccak.keccak256, keccak.tohex

local DOMAIN_FIELDS = {
  { name = "name", type = "string" }, { name = "version", type = "string" }, { name = "chainId", type = "uint256" },
  { name = "verifyingContract", type = "address" }, { name = "salt", type = "bytes32" },
}

local function fail(call, msg) raise("invalid_argument", ("%s: %s"):format(call, msg), { argument = call }) end

-- "Person[][3]" -> "Person[]", 3 ; "Person[]" -> "Person", nil ; "uint8" -> nil
local function array_of(t)
  local inner, len = t:match("^(.+)%[(%d*)%]$")
  if not inner then return nil end
  return inner, len ~= "" and tonumber(len) or nil
end

local function base_of(t)
  return (t:match("^([^%[]+)")) or t
end

local function is_atomic(t)
  if t == "bool" or t == "address" or t == "string" or t == "bytes" then return true end
  local bits = t:match("^u?int(%d+)$")
  if bits then bits = tonumber(bits); return bits >= 8 and bits <= 256 and bits % 8 == 0 end
  local n = t:match("^bytes(%d+)$")
  return n ~= nil and tonumber(n) >= 1 and tonumber(n) <= 32
end

-- check the shape of every type and that every field's type is known
local function check_types(call, types)
  if type(types) ~= "table" then fail(call, "types: expected a table of struct definitions") end
  for name, fields in pairs(types) do
    if type(name) ~= "string" or not name:match("^[%a_$][%w_$]*$") then
      fail(call, ("types: bad type name %s"):format(tostring(name)))
    end
    if type(fields) ~= "table" then fail(call, ("types.%s: expected a list of {name, type}"):format(name)) end
    local seen = {}
    for i, fld in ipairs(fields) do
      if type(fld) ~= "table" or type(fld.name) ~= "string" or type(fld.type) ~= "string" then
        fail(call, ("types.%s[%d]: expected {name = ..., type = ...}"):format(name, i))
      end
      if seen[fld.name] then fail(call, ("types.%s: field %s appears twice"):format(name, fld.name)) end
      seen[fld.name] = true
      local b = base_of(fld.type)
      if not is_atomic(b) and not types[b] then fail(call, ("types.%s.%s: unknown type %s"):format(name, fld.name, b)) end
    end
  end
end

-- the struct types `name` refers to, directly or not, into found (name itself included)
local function deps(types, name, found)
  if found[name] then return found end
  found[name] = true
  for _, fld in ipairs(types[name]) do
    local b = base_of(fld.type)
    if types[b] then deps(types, b, found) end
  end
  return found
end

local function struct_sig(types, name)
  local parts = {}
  for i, fld in ipairs(types[name]) do parts[i] = fld.type .. " " .. fld.name end
  return name .. "(" .. table.concat(parts, ",") .. ")"
end

--- encode_type(types, primary) -> "Mail(Person from,...)Person(...)": the primary type, then
--- every type it refers to, sorted by name (EIP-712 encodeType)
---@param types table struct name -> {{name =, type =}...}
---@param primary string the primary type
---@return string
function M.encode_type(types, primary)
  local others = {}
  for name in pairs(deps(types, primary, {})) do
    if name ~= primary then others[#others + 1] = name end
  end
  table.sort(others)
  local out = { struct_sig(types, primary) }
  for _, name in ipairs(others) do out[#out + 1] = struct_sig(types, name) end
  return table.concat(out)
end

local encode_data

-- the 32-byte word of one value of type t at path
local function encode_value(ctx, t, v, path)
  local call = ctx.call
  if v == nil or v == json.null then fail(call, path .. ": missing value") end
  local inner, len = array_of(t)
  if inner then
    if type(v) ~= "table" then fail(call, ("%s: expected an array (%s), got %s"):format(path, t, type(v))) end
    local n = #v
    if len and n ~= len then fail(call, ("%s: expected %d elements, got %d"):format(path, len, n)) end
    local words = {}
    for i = 1, n do words[i] = encode_value(ctx, inner, v[i], ("%s[%d]"):format(path, i)) end
    return k256(table.concat(words))
  end
  if ctx.types[t] then return k256(encode_data(ctx, t, v, path)) end
  if t == "string" then
    if type(v) ~= "string" then fail(call, ("%s: expected a string, got %s"):format(path, type(v))) end
    return k256(v)
  end
  if t == "bytes" then return k256(A.bytes(v, call .. ": " .. path)) end
  if type(v) == "table" and json.is_number(v) then v = tostring(v) end
  local ok, word = pcall(abic.encode, { t }, v)
  if not ok then
    local why = ferry.is_error(word) and word.message or tostring(word)
    fail(call, ("%s: %s"):format(path, (why:gsub("^abi: value #1 %([^)]*%): ", ""))))
  end
  return word
end

-- typeHash ++ the fields' words (EIP-712 encodeData)
function encode_data(ctx, name, v, path)
  local call = ctx.call
  if type(v) ~= "table" or json.is_number(v) then fail(call, ("%s: expected a table (%s), got %s"):format(path, name, type(v))) end
  local fields, known = ctx.types[name], {}
  for _, fld in ipairs(fields) do known[fld.name] = true end
  for k in pairs(v) do
    if not known[k] then fail(call, ("%s: unknown field %s (%s has no such field)"):format(path, tostring(k), name)) end
  end
  local words = { ctx.type_hash(name) }
  for i, fld in ipairs(fields) do
    if v[fld.name] == nil then fail(call, ("%s: missing field %s"):format(path, fld.name)) end
    words[i + 1] = encode_value(ctx, fld.type, v[fld.name], path .. "." .. fld.name)
  end
  return table.concat(words)
end

local function context(call, types)
  local ctx = { call = call, types = types, hashes = {} }
  function ctx.type_hash(name)
    local h = ctx.hashes[name]
    if not h then h = k256(M.encode_type(types, name)); ctx.hashes[name] = h end
    return h
  end
  return ctx
end

-- the one type no other type refers to
local function primary_type(call, types)
  local referred = {}
  for _, fields in pairs(types) do
    for _, fld in ipairs(fields) do referred[base_of(fld.type)] = true end
  end
  local roots = {}
  for name in pairs(types) do if not referred[name] then roots[#roots + 1] = name end end
  table.sort(roots)
  if #roots == 0 then fail(call, "types: no primary type (every type is referred to by another)") end
  if #roots > 1 then fail(call, "types: more than one primary type: " .. table.concat(roots, ", ")) end
  return roots[1]
end

--- digest(call, domain, types, value) -> the 32-byte digest (raw). call names the caller in errors.
---@param call string the caller, for errors
---@param domain table
---@param types table
---@param value table
---@return string digest 32 raw bytes
function M.digest(call, domain, types, value)
  if type(domain) ~= "table" then fail(call, "domain: expected a table") end
  check_types(call, types)
  local own, dfields = {}, types.EIP712Domain
  for k, v in pairs(types) do if k ~= "EIP712Domain" then own[k] = v end end
  if dfields == nil then
    dfields = {}
    for _, fld in ipairs(DOMAIN_FIELDS) do
      if domain[fld.name] ~= nil then dfields[#dfields + 1] = fld end
    end
  end
  local allowed = {}
  for _, fld in ipairs(dfields) do allowed[fld.name] = true end
  for k in pairs(domain) do
    if not allowed[k] then
      fail(call, ("domain: unknown field %s (EIP-712 names: name, version, chainId, verifyingContract, salt)"):format(tostring(k)))
    end
  end
  local primary = primary_type(call, own)
  local dctx = context(call, { EIP712Domain = dfields })
  local separator = k256(encode_data(dctx, "EIP712Domain", domain, "domain"))
  local ctx = context(call, own)
  local struct_hash = k256(encode_data(ctx, primary, value, primary))
  return k256("\25\1" .. separator .. struct_hash)
end

--- eth.typed_data_hash(domain, types, value) -> 0x digest
---@param domain table
---@param types table
---@param value table
---@return string digest 0x hex
function M.hash(domain, types, value)
  return tohex(M.digest("eth.typed_data_hash", domain, types, value))
end

return M
