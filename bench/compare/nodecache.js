// node bench/compare/nodecache.js [N=100000] [clones=1] [passes=1]
// clones=1 (the default) measures node-cache as users get it out of the box (useClones: true:
// values are deep-copied on set and get); clones=0 measures {useClones: false}.
// node-cache: set then get N entries (keys "k"+i, 8-byte string values); ops/s for each (best of
// 5 or 15, keys and values built before timing). passes > 1 reads the N keys that many times per run:
// with a small N that is a hot working set in CPU cache, where the per-call cost shows; a single
// pass over 100k keys is bound by memory latency on both sides. Also heap bytes per entry:
// heapUsed delta / N, after a full GC, for a fresh cache filled with freshly built keys and
// values (so the key and value strings are counted, as a cache that copies its inputs would
// count them).
'use strict';
const { peer, round, intArg, emit, now } = require('./_peers');
const NodeCache = peer('node-cache');

function gc() {
  if (!global.gc) {  // not started with --expose-gc: enable it at runtime
    require('v8').setFlagsFromString('--expose-gc');
    global.gc = require('vm').runInNewContext('gc');
  }
  global.gc(); global.gc();
}

const N = intArg(2, 100000);
const useClones = process.argv[3] !== '0';
const passes = intArg(4, 1);
let misses = 0;
// memory first, before anything else is allocated that a GC could free during the measurement
function bytesPerEntry() {
  gc();
  const h0 = process.memoryUsage().heapUsed;
  const cache = new NodeCache({ useClones, checkperiod: 0 });
  for (let i = 0; i < N; i++) cache.set('k' + i, String(i % 100000000).padStart(8, '0'));
  gc();
  const bytes = (process.memoryUsage().heapUsed - h0) / N;
  if (cache.get('k' + (N - 1)) === undefined) misses++;   // keeps the cache alive until here
  cache.close();
  return bytes;
}
const bytes = bytesPerEntry();
const keys = Array.from({ length: N }, (_, i) => 'k' + i);
const vals = Array.from({ length: N }, (_, i) => String(i % 100000000).padStart(8, '0'));
let setS = Infinity, getS = Infinity;
// best of 5 (of 15 for a hot set, whose short runs V8 optimizes differently from one to the
// next: 4.5-11.5M gets/s): V8 tiers the loop up during the first runs
const rounds = passes > 1 ? 15 : 5;
for (let r = 0; r < rounds; r++) {
  gc();
  const cache = new NodeCache({ useClones, checkperiod: 0 });
  let t0 = now();
  for (let i = 0; i < N; i++) cache.set(keys[i], vals[i]);
  setS = Math.min(setS, now() - t0);
  t0 = now();
  for (let p = 0; p < passes; p++)
    for (let i = 0; i < N; i++) if (cache.get(keys[i]) === undefined) misses++;
  getS = Math.min(getS, now() - t0);
  cache.close();
}
emit({ lib: 'node-cache', version: peer('node-cache/package.json').version, entries: N, use_clones: useClones,
       passes,
       set_per_s: round(N / setS), get_per_s: round(N * passes / getS), bytes_per_entry: round(bytes, 1), misses });
