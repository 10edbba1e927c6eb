// Shared helpers for the Node comparison benches: load libraries from the pinned test peers
// (tests/peers/node_modules, installed by `make peers`), time things, print one JSON line.
'use strict';
const path = require('path');
const MODULES = path.resolve(__dirname, '../../tests/peers/node_modules');

function peer(name) {
  try {
    return require(require.resolve(name, { paths: [MODULES] }));
  } catch (e) {
    console.error(`bench/compare: cannot load ${name} from ${MODULES} (run \`make peers\`): ${e.message}`);
    process.exit(2);
  }
}

const now = () => performance.now() / 1000;                       // seconds, monotonic
const round = (x, d = 0) => Number(x.toFixed(d));
const intArg = (i, def) => { const v = Number(process.argv[i]); return Number.isFinite(v) && v > 0 ? Math.floor(v) : def; };
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// best (shortest) of `runs` timings of an async or sync fn; returns seconds
async function best(runs, fn) {
  let b = Infinity;
  for (let r = 0; r < runs; r++) { const t0 = now(); await fn(r); b = Math.min(b, now() - t0); }
  return b;
}

// run fn(i) for i in [0,n) with at most `conc` in flight
async function pool(n, conc, fn) {
  let next = 0;
  const worker = async () => { while (next < n) { const i = next++; await fn(i); } };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

async function rpc(url, method, params) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) });
  const j = await r.json();
  if (j.error) throw new Error(`${method}: ${j.error.message}`);
  return j.result;
}

// Exit(1) with a message if the bench is still running after `seconds` (never hang a bench run).
// Seen with anvil 1.7.1 under 32 concurrent sends: rarely (~1 run in 10 of 200 txs) a tx whose
// nonce equals the account nonce stays in the "queued" pool forever, so every later nonce waits too.
// A run on anvil that is not done after `seconds` gives up with exit code 3: anvil 1.7.1 can
// leave the account's next nonce in `queued` for good under load, and bench/run.lua redoes such
// a run on a fresh anvil (it checks txpool_status itself).
function deadline(seconds, what) {
  setTimeout(() => {
    console.error(`${what}: not finished after ${seconds} s; giving up (stuck anvil tx pool? see txpool_status)`);
    process.exit(3);
  }, seconds * 1000).unref();
}

module.exports = { peer, now, round, intArg, emit, best, pool, rpc, deadline, MODULES };
