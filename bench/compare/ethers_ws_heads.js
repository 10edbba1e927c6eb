// ethers v6 WebSocketProvider on the same anvil: head latency (evm_mine returning over HTTP ->
// the 'block' listener running; the block counted, not asked for) over N blocks, then
// notifications delivered per second for a burst of M blocks (anvil_mine). One JSON line.
//   node bench/compare/ethers_ws_heads.js HTTP_URL WS_URL N M
'use strict';
const { peer, now, emit, rpc, deadline } = require('./_peers');
const { WebSocketProvider } = peer('ethers');

(async () => {
  const [url, wsUrl] = [process.argv[2], process.argv[3]];
  const N = Number(process.argv[4]) || 200, M = Number(process.argv[5]) || 500;
  deadline(240, 'ethers_ws_heads');
  const p = new WebSocketProvider(wsUrl);
  await p.getBlockNumber();
  const woke = new Map();
  let count = 0;
  p.on('block', (n) => { woke.set(n, now()); count++; });
  await new Promise((r) => setTimeout(r, 300));                 // its subscription is up
  // evm_mine mines exactly one block: the block waited for is counted, not asked for (an
  // eth_blockNumber in flight would be served by the same event loop meanwhile), as ferry's side
  const lat = [];
  const top = Number(await rpc(url, 'eth_blockNumber', []));
  for (let i = 1; i <= N; i++) {
    await rpc(url, 'evm_mine', []);
    const back = now();
    while (!woke.has(top + i)) await new Promise((r) => setImmediate(r));
    lat.push(Math.max(0, woke.get(top + i) - back));
  }
  lat.sort((a, b) => a - b);
  const pct = (q) => lat[Math.max(0, Math.ceil(lat.length * q) - 1)];
  const start = Number(await rpc(url, 'eth_blockNumber', []));
  const c0 = count, t0 = now();
  await rpc(url, 'anvil_mine', ['0x' + M.toString(16)]);
  while (!woke.has(start + M)) await new Promise((r) => setImmediate(r));
  const rate = (count - c0) / (now() - t0);
  emit({ p50_ms: pct(0.5) * 1000, p99_ms: pct(0.99) * 1000, per_s: rate, delivered: count - c0 });
  p.destroy().catch(() => {});
  process.exit(0);
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
