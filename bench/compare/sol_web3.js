// node bench/compare/sol_web3.js [N=2000]
// @solana/web3.js 1.98.4: a SOL transfer compiled with TransactionMessage.compileToLegacyMessage,
// signed by VersionedTransaction.sign and serialized, N times (a new blockhash each, keys made
// beforehand); and PublicKey.toBase58 of 32-byte keys. Best of 3 runs each.
'use strict';
const { peer, round, intArg, emit, best } = require('./_peers');
const web3 = peer('@solana/web3.js');

(async () => {
  const N = intArg(2, 2000);
  const payer = web3.Keypair.fromSeed(new Uint8Array(32).fill(1));
  const to = web3.Keypair.fromSeed(new Uint8Array(32).fill(2)).publicKey;
  const hashes = [];
  for (let i = 0; i < 256; i++) hashes.push(web3.Keypair.fromSeed(new Uint8Array(32).fill(i)).publicKey.toBase58());
  let sink = 0;
  const signS = await best(3, () => {
    for (let i = 0; i < N; i++) {
      const msg = new web3.TransactionMessage({ payerKey: payer.publicKey, recentBlockhash: hashes[i & 255],
        instructions: [web3.SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: to, lamports: 1000 + i })] })
        .compileToLegacyMessage();
      const tx = new web3.VersionedTransaction(msg);
      tx.sign([payer]);
      sink ^= tx.serialize()[70];
    }
  });
  const keys = hashes.map((h) => new web3.PublicKey(h));
  const K = N * 50;
  const b58S = await best(3, () => { for (let i = 0; i < K; i++) sink ^= keys[i & 255].toBase58().length; });
  emit({ lib: '@solana/web3.js', signs: N, signs_per_s: round(N / signS), b58: K, b58_per_s: round(K / b58S), sink });
})();
