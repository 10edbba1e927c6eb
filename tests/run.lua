-- tests/run.lua -- run busted inside ferry: `./ferry tests/run.lua [busted options]`.
-- Every spec body runs in an engine task, so it may call ferry.sleep, RPC calls and
-- task:wait() directly. Peers (anvil, proxies) are started by tests/helpers/peers.lua.
package.path = "tests/?.lua;" .. package.path
-- busted reads its own name from arg[0] and options from arg[1..]
arg[0] = "busted"
require("busted.runner")({ standalone = false })
