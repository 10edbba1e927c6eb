--- ferry.sol.builders -- instructions of the native programs as plain tables.
---
---   sol.system.transfer{from =, to =, lamports =}
---   sol.system.create_account{from =, new =, lamports =, space =, owner =}
---   sol.system.initialize_nonce{nonce =, authority =}; sol.system.advance_nonce{nonce =, authority =}
---   sol.compute_budget.unit_limit(n); sol.compute_budget.unit_price(micro_lamports)
---   sol.token.transfer_checked{source =, mint =, destination =, owner =, amount =, decimals =}
---   sol.token.create_ata_idempotent{payer =, owner =, mint =}; sol.token.ata(owner, mint)
---   sol.token.initialize_mint{mint =, decimals =, authority =}; sol.token.mint_to{mint =, destination =, authority =, amount =}
---
--- An instruction is {program = <base58>, accounts = {{pubkey =, signer =, writable =}, ...},
--- data = <bytes: a ferry.Bytes (sol.raw) or 0x hex>}: what signer:sign and signer:send take. Layouts are the programs' own
--- (bincode u32 indices for System, one-byte tags for ComputeBudget and SPL Token).
local ferry = require "ferry"
local core = require "ferry.core.sol"
local bytes = require "ferry.core.bytes"
local V = require "ferry.sol.values"

local M = { system = {}, compute_budget = {}, token = {} }

local function meta(pubkey, signer, writable, what)
  V.key(pubkey, what)  -- checked here, so a typo names the builder's field
  if type(pubkey) == "table" then pubkey = pubkey.address end
  return { pubkey = pubkey, signer = signer, writable = writable }
end

local U64 = math.maxinteger
local raw = bytes.raw

--- system.transfer{from, to, lamports} -> a System Transfer instruction
---@param a table
---@return table instruction
function M.system.transfer(a)
  return { program = V.SYSTEM_PROGRAM, data = raw(string.pack("<I4i8", 2, V.amount(a.lamports, "transfer.lamports", U64))),
           accounts = { meta(a.from, true, true, "transfer.from"), meta(a.to, false, true, "transfer.to") } }
end

--- system.create_account{from, new, lamports, space, owner} -> CreateAccount
---@param a table
---@return table instruction
function M.system.create_account(a)
  return { program = V.SYSTEM_PROGRAM,
           data = raw(string.pack("<I4i8i8", 0, V.amount(a.lamports, "create_account.lamports", U64),
                                  V.amount(a.space, "create_account.space", 10 * 1024 * 1024)) .. V.key(a.owner, "create_account.owner")),
           accounts = { meta(a.from, true, true, "create_account.from"), meta(a.new, true, true, "create_account.new") } }
end

--- InitializeNonceAccount (index 6): the account must already exist with 80 bytes, owned by System.
---@param a table
---@return table instruction
function M.system.initialize_nonce(a)
  return { program = V.SYSTEM_PROGRAM, data = raw(string.pack("<I4", 6) .. V.key(a.authority, "initialize_nonce.authority")),
           accounts = { meta(a.nonce, false, true, "initialize_nonce.nonce"),
                        meta(V.RECENT_BLOCKHASHES_SYSVAR, false, false), meta(V.RENT_SYSVAR, false, false) } }
end

--- AdvanceNonceAccount (index 4): first in a durable-nonce transaction.
---@param a table
---@return table instruction
function M.system.advance_nonce(a)
  return { program = V.SYSTEM_PROGRAM, data = raw(string.pack("<I4", 4)),
           accounts = { meta(a.nonce, false, true, "advance_nonce.nonce"),
                        meta(V.RECENT_BLOCKHASHES_SYSVAR, false, false),
                        meta(a.authority, true, false, "advance_nonce.authority") } }
end

--- The nonce account's size (Versions::Current: version, state, authority, nonce, fee calculator).
M.system.NONCE_SPACE = 80

--- compute_budget.unit_limit(units) -> SetComputeUnitLimit
---@param units integer
---@return table instruction
function M.compute_budget.unit_limit(units)
  return { program = V.COMPUTE_BUDGET_PROGRAM, accounts = {},
           data = raw(string.pack("<BI4", 2, V.amount(units, "unit_limit", 0xffffffff))) }
end

--- compute_budget.unit_price(micro_lamports) -> SetComputeUnitPrice
---@param micro_lamports integer per compute unit
---@return table instruction
function M.compute_budget.unit_price(micro_lamports)
  return { program = V.COMPUTE_BUDGET_PROGRAM, accounts = {},
           data = raw(string.pack("<Bi8", 3, V.amount(micro_lamports, "unit_price", U64))) }
end

--- The associated token account of owner for mint (base58), and its bump.
---@param owner string base58
---@param mint string base58
---@param program? string the token program
---@return string address
---@return integer bump
function M.token.ata(owner, mint, program)
  local addr, bump = core.ata(V.key(owner, "ata.owner"), V.key(mint, "ata.mint"),
                              V.key(program or V.TOKEN_PROGRAM, "ata.program"))
  return V.address(addr), bump
end

--- token.transfer_checked{source, mint, destination, owner, amount, decimals, program?} -> TransferChecked
---@param a table
---@return table instruction
function M.token.transfer_checked(a)
  local amount = V.amount(a.amount, "transfer_checked.amount", U64)
  local decimals = V.amount(a.decimals, "transfer_checked.decimals", 255)
  return { program = a.program or V.TOKEN_PROGRAM, data = raw(string.pack("<Bi8B", 12, amount, decimals)),
           accounts = { meta(a.source, false, true, "transfer_checked.source"),
                        meta(a.mint, false, false, "transfer_checked.mint"),
                        meta(a.destination, false, true, "transfer_checked.destination"),
                        meta(a.owner, true, false, "transfer_checked.owner") } }
end

--- InitializeMint2 (index 20): a mint account (82 bytes, owned by the token program) with no
--- freeze authority.
M.token.MINT_SPACE = 82
---@param a table {mint, decimals, authority, program?}
---@return table instruction
function M.token.initialize_mint(a)
  return { program = a.program or V.TOKEN_PROGRAM,
           data = raw(string.pack("<BB", 20, V.amount(a.decimals, "initialize_mint.decimals", 255))
                      .. V.key(a.authority, "initialize_mint.authority") .. "\0"),
           accounts = { meta(a.mint, false, true, "initialize_mint.mint") } }
end

--- MintTo (index 7)
---@param a table {mint, destination, authority, amount, program?}
---@return table instruction
function M.token.mint_to(a)
  return { program = a.program or V.TOKEN_PROGRAM, data = raw(string.pack("<Bi8", 7, V.amount(a.amount, "mint_to.amount", U64))),
           accounts = { meta(a.mint, false, true, "mint_to.mint"), meta(a.destination, false, true, "mint_to.destination"),
                        meta(a.authority, true, false, "mint_to.authority") } }
end

--- CreateIdempotent (ATA program instruction 1): a no-op when the account already exists.
---@param a table {payer, owner, mint, program?}
---@return table instruction
function M.token.create_ata_idempotent(a)
  local program = a.program or V.TOKEN_PROGRAM
  local ata = M.token.ata(a.owner, a.mint, program)
  return { program = V.ATA_PROGRAM, data = raw("\1"),
           accounts = { meta(a.payer, true, true, "create_ata.payer"), meta(ata, false, true),
                        meta(a.owner, false, false, "create_ata.owner"), meta(a.mint, false, false, "create_ata.mint"),
                        meta(V.SYSTEM_PROGRAM, false, false), meta(program, false, false) } }, ata
end

--- An instruction as the user wrote it -> the raw form ferry.core.sol compiles; raises naming
--- the instruction and field that is wrong.
---@param ix table an instruction
---@param i? integer its index, for errors
---@return table
function M.raw(ix, i)
  local where = ("instructions[%d]"):format(i)
  if type(ix) ~= "table" then
    ferry.raise("invalid_argument", where .. ": expected an instruction table", { argument = where })
  end
  local accounts = {}
  for j, a in ipairs(ix.accounts or {}) do
    accounts[j] = { pubkey = V.key(a.pubkey, ("%s.accounts[%d].pubkey"):format(where, j)),
                    signer = a.signer == true, writable = a.writable == true }
  end
  return { program = V.key(ix.program, where .. ".program"), accounts = accounts,
           data = V.data(ix.data, where .. ".data") }
end

return M
