// node bench/compare/ethers_transfers.js URL [N=200] [POLL_MS=250]
// ethers v6 JsonRpcProvider + Wallet (anvil key0) sending N transfers of 1 wei to distinct fresh
// addresses, up to 32 in flight. ethers fills fees, gas limit and chain id itself; nonces are
// explicit, counting up from getTransactionCount("pending") (read before the clock starts), so
// sends can overlap. Timed: first send .. every receipt seen (tx.wait()).
// tx.wait() falls back to polling when a receipt is not there at once (e.g. a tx that arrived
// before its predecessor). ethers' default pollingInterval of 4000 ms made 200 transfers take
// 2.2 s or 5.4 s depending on whether a poll was hit; 250 ms is a fair setting for a local node.
// Pass POLL_MS=4000 for ethers' out-of-the-box behaviour.
'use strict';
const { peer, now, round, intArg, emit, pool, deadline } = require('./_peers');
const ethers = peer('ethers');
const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

(async () => {
  const url = process.argv[2];
  if (!url) { console.error('usage: ethers_transfers.js URL [N]'); process.exit(2); }
  const N = intArg(3, 200), CONC = 32;
  deadline(10 + N / 20, 'ethers_transfers.js');
  const POLL_MS = intArg(4, 250);
  const provider = new ethers.JsonRpcProvider(url);
  provider.pollingInterval = POLL_MS;
  const wallet = new ethers.Wallet(KEY0, provider);
  const to = Array.from({ length: N }, () => ethers.getAddress(ethers.hexlify(ethers.randomBytes(20))));
  const nonce0 = await provider.getTransactionCount(wallet.address, 'pending');

  const t0 = now();
  let failed = 0;
  await pool(N, CONC, async (i) => {
    const tx = await wallet.sendTransaction({ to: to[i], value: 1n, nonce: nonce0 + i });
    const rc = await tx.wait();
    if (!rc || rc.status !== 1) failed++;
  });
  const seconds = now() - t0;
  provider.destroy();
  emit({ lib: 'ethers', version: ethers.version, transfers: N, concurrency: CONC, polling_ms: POLL_MS, failed,
         seconds: round(seconds, 3), transfers_per_s: round(N / seconds, 1) });
})().catch((e) => { console.error(e); process.exit(1); });
