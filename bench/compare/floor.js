// node bench/compare/floor.js URL [N=200]
// The node's own floor for N transfers: N transfers of 1 wei are pre-signed offline with ethers
// (not timed). Then only the sending is timed: eth_sendRawTransaction with 32 in flight (plain
// fetch), then polling eth_getTransactionReceipt until every tx has a receipt.
'use strict';
const { peer, now, round, intArg, emit, pool, deadline, rpc } = require('./_peers');
const ethers = peer('ethers');
const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';

(async () => {
  const url = process.argv[2];
  if (!url) { console.error('usage: floor.js URL [N]'); process.exit(2); }
  const N = intArg(3, 200), CONC = 32;
  deadline(10 + N / 20, 'floor.js');
  const wallet = new ethers.Wallet(KEY0);
  const chainId = BigInt(await rpc(url, 'eth_chainId', []));
  const nonce0 = Number(await rpc(url, 'eth_getTransactionCount', [wallet.address, 'pending']));
  const gasPrice = BigInt(await rpc(url, 'eth_gasPrice', []));
  const tip = 1000000000n;
  const maxFee = 2n * gasPrice + tip;  // same headroom ethers uses (2 * baseFee + tip)
  const raws = [];
  for (let i = 0; i < N; i++) {
    raws.push(await wallet.signTransaction({ type: 2, chainId, nonce: nonce0 + i, value: 1n, gasLimit: 21000n,
      to: ethers.getAddress(ethers.hexlify(ethers.randomBytes(20))), maxFeePerGas: maxFee, maxPriorityFeePerGas: tip }));
  }

  const t0 = now();
  const hashes = new Array(N);
  await pool(N, CONC, async (i) => { hashes[i] = await rpc(url, 'eth_sendRawTransaction', [raws[i]]); });
  let failed = 0;
  await pool(N, CONC, async (i) => {
    for (;;) {
      const rc = await rpc(url, 'eth_getTransactionReceipt', [hashes[i]]);
      if (rc) { if (rc.status !== '0x1') failed++; return; }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  const seconds = now() - t0;
  emit({ lib: 'raw', transfers: N, concurrency: CONC, failed, floor_seconds: round(seconds, 3),
         transfers_per_s: round(N / seconds, 1) });
})().catch((e) => { console.error(e); process.exit(1); });
