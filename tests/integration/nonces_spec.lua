-- The nonce contract against the in-process (memory) backend; the stores issue runs the same
-- contract against SQLite and Redis.
local Nonces = require "ferry.nonces"

require("helpers.nonce_contract")(_ENV, "memory", function(chain, addr) return Nonces.new(chain, addr) end)
