-- ferry's default configuration. Loaded in a sandbox: env(name, default) reads the
-- environment (names as in .env.example); secrets never belong in this file.

-- The local node's WebSocket (the live feed, docs/ws.md): LOCAL_WS_URL, else the host:port of
-- LOCAL_RPC_URL (anvil and hardhat serve both on one port), never another node's; none when
-- that URL has a path (an endpoint that names its own ws).
local local_rpc = env("LOCAL_RPC_URL", "http://127.0.0.1:8545")
local tls, hostport = string.match(local_rpc, "^http(s?)://([^/]+)/?$")
local local_ws = env("LOCAL_WS_URL", hostport and ("ws" .. tls .. "://" .. hostport) or nil)

return {
  chains = {
    ["local"] = {
      kind = "evm", chain_id = env("LOCAL_CHAIN_ID", 31337), confirmations = 1,
      stuck_after = 3,   -- seconds next-in-line and unmined before a fee bump (blocks are instant here)
      providers = {
        { name = "anvil", url = local_rpc, ws = local_ws, weight = 1, priority = 1,
          rps = env("RPC_RATE_LIMIT_LOCAL", 1000) },
      },
    },
    mainnet = {
      kind = "evm", chain_id = 1, confirmations = env("MIN_CONFIRMATIONS_ETH", 12),
      simulation_required = true,
      providers = {
        { name = "alchemy", url = env "ETH_MAINNET_RPC_ALCHEMY", rps = env("RPC_RATE_LIMIT_ALCHEMY", 25), priority = 1 },
        { name = "infura", url = env "ETH_MAINNET_RPC_INFURA", rps = env("RPC_RATE_LIMIT_INFURA", 10), priority = 1 },
        { name = "quicknode", url = env "ETH_MAINNET_RPC_QUICKNODE", rps = env("RPC_RATE_LIMIT_QUICKNODE", 15), priority = 2 },
        { name = "public", url = env("ETH_MAINNET_RPC_PUBLIC", "https://ethereum-rpc.publicnode.com"),
          rps = env("RPC_RATE_LIMIT_PUBLIC", 5), priority = 3 },
      },
    },
    -- Solana (ferry.sol): SOL_RPC_URL defaults to a local test validator's port
    solana = {
      kind = "solana", confirmations = env("MIN_CONFIRMATIONS_SOL", 32),
      solana = { commitment = "confirmed", compute_margin = 1.05, priority_percentile = 75,
                 max_priority_fee = env("SOL_MAX_PRIORITY_FEE", 1000000) },
      providers = {
        { name = "solana", url = env("SOL_RPC_URL", "http://127.0.0.1:8899"), rps = env("RPC_RATE_LIMIT_SOL", 100) },
      },
    },
  },
  redis = { url = env "REDIS_URL" },
  data_dir = env("FERRY_DATA_DIR", ".ferry"),
  cache = { max_entries = 100000, ttl = { eth_getBalance = 30, eth_blockNumber = 12, eth_gasPrice = 15 } },
  -- policies/*.lua, hot-reloaded (docs/policies.md); settings: per policy, as ctx.settings
  policies = { dir = "policies", settings = { simulation = { required = env("SIMULATION_REQUIRED", false) } } },
  limits = { max_gas_price_gwei = env("MAX_GAS_PRICE_GWEI", 500), max_slippage_percent = env("MAX_SLIPPAGE_PERCENT", 2.0) },
  rpc = { timeout = env("RPC_TIMEOUT", 10) },
  -- simulation through Tenderly first when these are set (ferry.simulate); the node otherwise
  tenderly = { account = env "TENDERLY_ACCOUNT", project = env "TENDERLY_PROJECT", access_key = env "TENDERLY_API_KEY" },
}
