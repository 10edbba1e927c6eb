-- tests/helpers/with_anvil.lua -- run a ferry script against a fresh local node.
--
--   ./ferry tests/helpers/with_anvil.lua examples/batch_payouts.lua 200
--   ./ferry tests/helpers/with_anvil.lua --peer hardhat examples/batch_payouts.lua 200
-- Starts the node (anvil unless --peer says hardhat) on a free port, runs the script in a
-- child ./ferry with LOCAL_RPC_URL and PAYER_KEY (the dev accounts' first key, the same on
-- both) set, stops the node by its PID, exits with the script's status.
package.path = "tests/?.lua;" .. package.path
local ferry = require "ferry"
local proc = require "ferry.core.proc"
local peers = require "helpers.peers"

local USAGE = "usage: ferry tests/helpers/with_anvil.lua [--peer anvil|hardhat] SCRIPT [ARGS...]"
local START = { anvil = peers.anvil, hardhat = function() return peers.hardhat() end }

local function usage(msg)
  io.stderr:write(("with_anvil: %s\n%s\n"):format(msg, USAGE))
  os.exit(2)
end

local first, peer = 1, "anvil"
if arg[1] == "--peer" then
  peer = arg[2]
  if peer == nil or peer == "" then usage("--peer needs a node name") end
  first = 3
elseif arg[1] and arg[1]:match("^%-%-peer=") then
  peer, first = arg[1]:sub(8), 2
end
if not START[peer] then usage(("unknown peer %q (anvil or hardhat)"):format(peer)) end
if not peers.have(peer) then usage(("%s is not installed: run `make peers`"):format(peer)) end
local script = arg[first]
if not script then usage("no script given") end

local t0 = ferry.now()
local node <close> = START[peer]()
io.stderr:write(("%s %s (pid %d, started in %.1f s)\n"):format(peer, node.url, node.pid, ferry.now() - t0))

local argv = { arg[-1] or "./ferry", script, stdout = "inherit", stderr = "inherit",
               env = { LOCAL_RPC_URL = node.url, LOCAL_WS_URL = node.ws,
                       PAYER_KEY = os.getenv("PAYER_KEY") or
                         "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" } }
for i = first + 1, #arg do argv[#argv + 1] = arg[i] end
local child = assert(proc.spawn(argv))
local code, sig = child:wait()
node:stop()
os.exit(sig ~= 0 and 1 or code)
