-- tests/helpers/with_solana.lua -- run a ferry script against a fresh Solana peer.
--
--   ./ferry tests/helpers/with_solana.lua examples/sol_batch_payouts.lua 200
-- Starts tests/peers/solana.js (litesvm) on a free port, funds the payer (SOL_PAYER_KEY, or a
-- fixed development key) with 1,000 SOL, runs the script in a child ./ferry with SOL_RPC_URL
-- and SOL_PAYER_KEY set, stops the peer by its PID, exits with the script's status.
package.path = "tests/?.lua;" .. package.path
local ferry = require "ferry"
local proc = require "ferry.core.proc"
local sol = require "ferry.sol"
local peers = require "helpers.peers"

-- a development key (base58 of 32 bytes of 7s): never holds anything outside a test peer
local DEV_KEY = "US517G5965aydkZ46HS38QLi7UQiSojurfbQfKCELFx"

local script = arg[1]
if not script then
  io.stderr:write("usage: ferry tests/helpers/with_solana.lua SCRIPT [ARGS...]\n")
  os.exit(2)
end

local key = os.getenv("SOL_PAYER_KEY") or DEV_KEY
local t0 = ferry.now()
local peer <close> = peers.solana{ slot_ms = 100 }
io.stderr:write(("solana peer %s (pid %d, started in %.1f s)\n"):format(peer.url, peer.pid, ferry.now() - t0))
local chain = sol.connect{ providers = { { url = peer.url } } }
peer:airdrop(chain:signer(key).address, 1000 * sol.LAMPORTS_PER_SOL)

local argv = { arg[-1] or "./ferry", script, stdout = "inherit", stderr = "inherit",
               env = { SOL_RPC_URL = peer.url, SOL_PAYER_KEY = key } }
for i = 2, #arg do argv[#argv + 1] = arg[i] end
local child = assert(proc.spawn(argv))
local code, sig = child:wait()
peer:stop()
os.exit(sig ~= 0 and 1 or code)
