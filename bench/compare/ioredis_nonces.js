// node bench/compare/ioredis_nonces.js PORT [N=20000] [INFLIGHT=64]
// An ioredis Lua-script nonce manager doing what ferry.store.redis's reserve does: one script
// per reservation (drop free nonces below the floor, take the lowest free one or next, record
// it as reserved with a lease on Redis's clock), run by EVALSHA through defineCommand, N
// reservations with INFLIGHT awaiting at once on one connection. Counts duplicates.
'use strict';
const { peer, round, intArg, emit, best, pool } = require('./_peers');
const Redis = peer('ioredis');

const RESERVE = `
local floor, owner, lease_ms = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. floor)
local n = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if n then
  n = tonumber(n)
  redis.call('ZREM', KEYS[2], n)
else
  n = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), floor)
  redis.call('SET', KEYS[1], n + 1)
end
redis.call('HSET', KEYS[3], n, owner)
redis.call('ZADD', KEYS[4], now + lease_ms, n)
return n`;

(async () => {
  const port = intArg(2, 6379), N = intArg(3, 20000), inflight = intArg(4, 64);
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: false });
  r.defineCommand('reserve', { numberOfKeys: 4, lua: RESERVE });
  let dups = 0, round_ = 0;
  const seconds = await best(3, async () => {
    const tag = `{31337:node${round_++}}`;
    const keys = ['next', 'free', 'res', 'exp'].map((k) => `bench:${tag}:${k}`);
    const seen = new Set();
    await pool(N, inflight, async () => {
      const n = await r.reserve(...keys, 0, 'node', 30000);
      if (seen.has(n)) dups++;
      seen.add(n);
    });
    if (seen.size !== N - dups) dups++;
  });
  await r.quit();
  emit({ lib: 'ioredis', version: peer('ioredis/package.json').version, reservations: N, inflight,
         seconds: round(seconds, 4), reserves_per_s: round(N / seconds), duplicates: dups });
})();
