--- ferry.journal -- what this engine's store knows of every transaction, for scripts and the
--- REPL (the rows of ferry.store.journal: id, state, chain, address, nonce, hash, hashes, raw,
--- fields, block, error, owner, created, updated).
---
---   local journal = require "ferry.journal"
---   journal.get("payout-42")             journal.by_hash("0x…")
---   journal.pending()                    journal.by_address("0x…" [, state])
---   journal.by_state("failed")           journal.events("payout-42")
---
--- With redis.url set, get and by_hash answer for every process on that Redis (the rows are
--- shared there: ferry.store.redis_journal); pending, by_address, by_state and events read
--- this process's own journal.
local store = require "ferry.store"

local M = {}

local function j() return store.get().journal end

--- get(id) -> row | nil (any process's, when the journal is shared on Redis)
---@param id string an idempotency id
---@return table|nil row
function M.get(id) return j():get(id) end
--- by_hash(hash) -> row | nil (any version's hash: a fee bump's too; any process's when shared)
---@param hash string a transaction hash
---@return table|nil row
function M.by_hash(hash) return j():by_hash(hash) end
--- pending() -> rows still on their way (new, reserved, signed, sent, unsure), oldest first
function M.pending() return j():pending() end
--- by_address(address, state?) -> rows, oldest first
---@param address string
---@param state? string new, reserved, signed, sent, unsure, confirmed, reverted, failed or taken
---@return table[] rows
function M.by_address(address, state) return j():find({ address = require("ferry.eth").address(address), state = state }) end
--- by_state(state) -> rows, oldest first
---@param state string
---@return table[] rows
function M.by_state(state) return j():find({ state = state }) end
--- events(id) -> the pipeline steps of that transaction, in order
---@param id string
---@return table[] events
function M.events(id) return j():events(id) end

return M
