// node bench/compare/plimit.js [N=100000] [C=16]
// p-limit(C) running N trivial async tasks; best of 3 runs.
'use strict';
const { peer, round, intArg, emit, best } = require('./_peers');
const pLimit = peer('p-limit');   // v3: CommonJS

(async () => {
  const N = intArg(2, 100000), C = intArg(3, 16);
  const seconds = await best(3, async () => {
    const limit = pLimit(C);
    const ps = new Array(N);
    for (let i = 0; i < N; i++) ps[i] = limit(() => Promise.resolve(i));
    await Promise.all(ps);
  });
  emit({ lib: 'p-limit', version: peer('p-limit/package.json').version, tasks: N, concurrency: C,
         seconds: round(seconds, 4), tasks_per_s: round(N / seconds) });
})();
