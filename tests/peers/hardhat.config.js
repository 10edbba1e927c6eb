// Hardhat's node as ferry's second test peer (tests/helpers/peers.lua starts it from here:
// hardhat 2 must run from a folder whose node_modules holds it). Chain id as anvil's.
module.exports = { networks: { hardhat: { chainId: 31337 } } };
