// node bench/compare/bottleneck.js [N=500]
// Bottleneck limiter admissions/s: no concurrency cap, minTime 0, N trivial jobs. Best of 3.
// The rate is bounded by timers, not CPU: Bottleneck's LocalDatastore awaits setTimeout(0)
// (>= 1 ms in Node) in each register/submit/free, and submissions go through a serial lock, so it
// tops out at ~350-400 admissions/s (same with {reservoir: 1e12}). Hence the small default N.
'use strict';
const { peer, round, intArg, emit, best } = require('./_peers');
const Bottleneck = peer('bottleneck');

(async () => {
  const N = intArg(2, 500);
  const seconds = await best(3, async () => {
    const limiter = new Bottleneck({ maxConcurrent: null, minTime: 0 });
    const ps = new Array(N);
    for (let i = 0; i < N; i++) ps[i] = limiter.schedule(() => Promise.resolve(i));
    await Promise.all(ps);
    await limiter.stop({ dropWaitingJobs: false });
  });
  emit({ lib: 'bottleneck', version: peer('bottleneck/package.json').version, jobs: N,
         seconds: round(seconds, 4), admissions_per_s: round(N / seconds),
         note: 'timer-bound: setTimeout(0) per datastore op' });
})();
