-- tests/helpers/with_anvil.lua -- run a ferry script against a fresh local anvil.
--
--   ./ferry tests/helpers/with_anvil.lua examples/batch_payouts.lua 200
-- Starts anvil on a free port, runs the script in a child ./ferry with LOCAL_RPC_URL and
-- PAYER_KEY (anvil's first dev account) set, stops anvil by its PID, exits with the
-- script's status.
package.path = "tests/?.lua;" .. package.path
local proc = require "ferry.core.proc"
local peers = require "helpers.peers"

local script = assert(arg[1], "usage: ferry tests/helpers/with_anvil.lua SCRIPT [ARGS...]")
local anvil <close> = peers.anvil()
io.stderr:write(("anvil %s (pid %d)\n"):format(anvil.url, anvil.pid))

local argv = { arg[-1] or "./ferry", script, stdout = "inherit", stderr = "inherit",
               env = { LOCAL_RPC_URL = anvil.url, LOCAL_WS_URL = anvil.ws,
                       PAYER_KEY = os.getenv("PAYER_KEY") or
                         "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" } }
for i = 2, #arg do argv[#argv + 1] = arg[i] end
local child = assert(proc.spawn(argv))
local code, sig = child:wait()
anvil:stop()
os.exit(sig ~= 0 and 1 or code)
