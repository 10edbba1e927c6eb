// node bench/compare/ethers_sign.js [N=2000]
// ethers v6: Wallet.signTransaction of N EIP-1559 txs (chainId 31337, nonce 0..N-1), and
// keccak256 of a 32-byte Uint8Array N times. Best of 3 runs each.
'use strict';
const { peer, round, intArg, emit, best } = require('./_peers');
const ethers = peer('ethers');

(async () => {
  const N = intArg(2, 2000);
  const wallet = new ethers.Wallet('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
  const tx = { type: 2, chainId: 31337, to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', value: 1n,
               gasLimit: 21000n, maxFeePerGas: 3000000000n, maxPriorityFeePerGas: 1000000000n, data: '0x' };
  const signS = await best(3, async () => {
    for (let i = 0; i < N; i++) await wallet.signTransaction({ ...tx, nonce: i });
  });
  const buf = new Uint8Array(32);
  const K = N * 50;  // keccak is much faster than signing; more iterations for a stable time
  let sink = 0;
  const keccakS = await best(3, () => {
    for (let i = 0; i < K; i++) { buf[0] = i & 255; buf[1] = (i >> 8) & 255; sink ^= ethers.keccak256(buf).charCodeAt(2); }
  });
  emit({ lib: 'ethers', version: ethers.version, signs: N, signs_per_s: round(N / signS),
         keccaks: K, keccak_per_s: round(K / keccakS), sink });
})();
