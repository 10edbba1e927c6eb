--- ferry.eth.erc20 -- chain:erc20(address): reads (balance_of, allowance, decimals, symbol,
--- total_supply) and writes (transfer, approve) through the send pipeline.
local ferry = require "ferry"
local abi = require "ferry.eth.abi"
local A = require "ferry.eth.args"
local Chain = require("ferry.eth.chain").Chain

local raise = ferry.raise

local Token = {}
Token.__index = Token

--- chain:erc20(address) -> token with balance_of, allowance, transfer, approve, decimals, symbol
---@param address string the token contract
---@return Token
function Chain:erc20(address)
  return setmetatable({ chain = self, address = A.address(address, "chain:erc20") }, Token)
end

local function read(tok, sig, ret, ...)
  local out = tok.chain:eth_call({ to = tok.address, data = abi.encode_call(sig, ...) })
  if out == "0x" then   -- what a call to an address without code returns
    raise("bad_response", ("%s: %s returned nothing: is there a contract at this address on chain %s?")
      :format(tok.address, sig, tok.chain.name), { address = tok.address })
  end
  local v = table.pack(abi.decode(ret, out))
  if v[1] == nil then raise("bad_response", ("%s: cannot decode %s: %s"):format(tok.address, sig, tostring(v[2] and v[2].message))) end
  return table.unpack(v, 1, v.n)
end

--- balance_of(owner) -> the token balance, in the token's smallest unit
---@param owner string an address
---@return U256
function Token:balance_of(owner) return (read(self, "balanceOf(address)", "uint256", A.address(owner, "token:balance_of"))) end
--- allowance(owner, spender) -> what spender may still take from owner
---@param owner string
---@param spender string
---@return U256
function Token:allowance(owner, spender)
  return (read(self, "allowance(address,address)", "uint256", A.address(owner, "token:allowance: owner"),
    A.address(spender, "token:allowance: spender")))
end
--- decimals() -> the token's decimals
---@return integer
function Token:decimals() return tonumber(tostring((read(self, "decimals()", "uint8")))) end
--- symbol() -> the token's symbol
---@return string
function Token:symbol() return (read(self, "symbol()", "string")) end
--- total_supply() -> the token's total supply
---@return U256
function Token:total_supply() return (read(self, "totalSupply()", "uint256")) end

-- send sig(address, uint256) to the token; extra: more send fields (gas, fees, nonce), copied
local function write(tok, signer, name, who, addr, amount, extra)
  local t = {}
  for k, v in pairs(extra or {}) do t[k] = v end
  t.to = tok.address
  t.data = abi.encode_call(name .. "(address,uint256)", A.address(addr, ("token:%s: %s"):format(name, who)),
    A.u256(amount, ("token:%s: amount"):format(name)))
  return signer:send(t)
end

--- transfer(signer, to, amount, extra?) -> tx: transfer(to, amount) sent by signer
---@param signer Signer
---@param to string
---@param amount integer|string|U256 smallest units
---@param extra? table more send fields (gas, fees, nonce, id)
---@return Tx
function Token:transfer(signer, to, amount, extra) return write(self, signer, "transfer", "to", to, amount, extra) end
-- A new non-zero allowance over a non-zero one goes through 0 first, mined before the new
-- amount is sent: USDT-style tokens revert the direct change (policies/approvals.lua refuses
-- it too). Not with an explicit nonce: the caller orders its own transactions then.
--- approve(signer, spender, amount, extra?) -> tx (through 0 first when an allowance is set, above)
---@param signer Signer
---@param spender string
---@param amount integer|string|U256
---@param extra? table more send fields
---@return Tx
function Token:approve(signer, spender, amount, extra)
  local a = A.u256(amount, "token:approve: amount")
  if a > A.U(0) and not (extra and extra.nonce) then
    local current = self:allowance(signer.address, spender)
    if current > A.U(0) then
      write(self, signer, "approve", "spender", spender, 0, extra):wait{ timeout = 120 }
    end
  end
  return write(self, signer, "approve", "spender", spender, amount, extra)
end

return Token
