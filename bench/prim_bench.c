/* ** prim_bench.c -- micro benchmarks for engine/prim: limiter, cache ops/s, bytes per entry. */
#include "prim/cache.h"
#include "prim/health.h"
#include "prim/ratelimit.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NKEYS 1000000
#define KEYLEN 10
#define VALLEN 8

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * 4;
}

static volatile size_t sink;

int main(void) {
  /* limiter: try_take with plenty of tokens */
  fy_ratelimit_t rl;
  fy_ratelimit_init(&rl, 1e15, 1e15);
  long n = 100000000;
  double t0 = mono(), now = 0;
  size_t ok = 0;
  for (long i = 0; i < n; i++) {
    now += 1e-9;
    ok += (size_t)fy_ratelimit_try_take(&rl, 1, now);
  }
  double dt = mono() - t0;
  sink = ok;
  printf("ratelimit try_take        %8.1f M admissions/s  (%ld calls, %.3f s)\n", n / dt / 1e6, n, dt);

  /* health pick over 8 providers in 2 tiers */
  fy_health_set_t *hs = malloc(fy_health_sizeof(8));
  fy_health_init(hs, 8, NULL);
  for (int i = 0; i < 8; i++) fy_health_set_provider(hs, i, 1 + i % 3, i < 4 ? 1 : 2);
  n = 10000000;
  t0 = mono();
  for (long i = 0; i < n; i++) ok += (size_t)fy_health_pick(hs, 1.0, 0);
  dt = mono() - t0;
  sink = ok;
  printf("health pick (8 providers) %8.1f M picks/s\n", n / dt / 1e6);
  free(hs);

  /* cache: 1e6 entries of 10-byte keys and 8-byte values */
  char (*keys)[KEYLEN + 1] = malloc((size_t)NKEYS * sizeof *keys);
  for (int i = 0; i < NKEYS; i++) snprintf(keys[i], sizeof keys[i], "key:%06d", i);
  unsigned *order = malloc(NKEYS * sizeof *order);
  for (unsigned i = 0; i < NKEYS; i++) order[i] = i;
  srand(42);
  for (unsigned i = NKEYS - 1; i > 0; i--) {
    unsigned j = (unsigned)rand() % (i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  struct mallinfo2 m0 = mallinfo2();
  long r0 = rss_kb();
  fy_cache_t c;
  fy_cache_init(&c, 0, 0);
  t0 = mono();
  for (int i = 0; i < NKEYS; i++)
    fy_cache_set(&c, keys[i], KEYLEN, "12345678", VALLEN, 60, 1.0, 0, -1, NULL);
  dt = mono() - t0;
  struct mallinfo2 m1 = mallinfo2();
  long r1 = rss_kb();
  printf("cache set (insert)        %8.2f M ops/s\n", NKEYS / dt / 1e6);

  t0 = mono();
  for (int i = 0; i < NKEYS; i++) {
    const char *v;
    size_t vl;
    ok += (size_t)fy_cache_get(&c, keys[order[i]], KEYLEN, 2.0, &v, &vl);
  }
  dt = mono() - t0;
  printf("cache get (hit, random)   %8.2f M ops/s\n", NKEYS / dt / 1e6);

  t0 = mono();
  for (int i = 0; i < NKEYS; i++)
    fy_cache_set(&c, keys[order[i]], KEYLEN, "87654321", VALLEN, 60, 2.0, 0, -1, NULL);
  dt = mono() - t0;
  printf("cache set (overwrite)     %8.2f M ops/s\n", NKEYS / dt / 1e6);

  /* a hot working set: 10k entries, 10M random gets (what a busy RPC cache mostly sees) */
  fy_cache_t hot;
  fy_cache_init(&hot, 0, 0);
  for (int i = 0; i < 10000; i++)
    fy_cache_set(&hot, keys[i], KEYLEN, "12345678", VALLEN, 60, 1.0, 0, -1, NULL);
  long hn = 10000000;
  t0 = mono();
  for (long i = 0; i < hn; i++) {
    const char *v;
    size_t vl;
    ok += (size_t)fy_cache_get(&hot, keys[order[i % NKEYS] % 10000], KEYLEN, 2.0, &v, &vl);
  }
  dt = mono() - t0;
  printf("cache get (hit, 10k hot)  %8.2f M ops/s\n", hn / dt / 1e6);
  t0 = mono();
  for (long i = 0; i < hn; i++)
    fy_cache_set(&hot, keys[order[i % NKEYS] % 10000], KEYLEN, "87654321", VALLEN, 60, 2.0, 0, -1, NULL);
  dt = mono() - t0;
  printf("cache set (10k hot)       %8.2f M ops/s\n", hn / dt / 1e6);
  fy_cache_free(&hot);

  fy_cache_t small;
  fy_cache_init(&small, 100000, 0);
  t0 = mono();
  for (int i = 0; i < NKEYS; i++)
    fy_cache_set(&small, keys[order[i]], KEYLEN, "12345678", VALLEN, 0, 2.0, 0, -1, NULL);
  dt = mono() - t0;
  printf("cache set (evicting, 1e5) %8.2f M ops/s  (%llu evictions)\n", NKEYS / dt / 1e6,
         (unsigned long long)small.stats.evictions);
  fy_cache_free(&small);

  /* the same fill without a TTL (the layout bench/run.lua's bytes-per-entry line measures):
   * entries carry the expiry and the head/block mark only when they use them */
  struct mallinfo2 m2 = mallinfo2();
  fy_cache_t plain;
  fy_cache_init(&plain, 0, 0);
  t0 = mono();
  for (int i = 0; i < NKEYS; i++)
    fy_cache_set(&plain, keys[i], KEYLEN, "12345678", VALLEN, 0, 1.0, 0, -1, NULL);
  dt = mono() - t0;
  struct mallinfo2 m3 = mallinfo2();
  printf("cache set (insert, no TTL)%8.2f M ops/s  %.1f allocator bytes/entry\n",
         NKEYS / dt / 1e6, (double)(m3.uordblks - m2.uordblks) / NKEYS);
  fy_cache_free(&plain);

  printf("cache bytes/entry         %8.1f allocator (mallinfo2), %.1f RSS, %.1f accounted"
         "  (%d entries, %d-byte keys, %d-byte values, 60 s TTL)\n",
         (double)(m1.uordblks - m0.uordblks) / NKEYS, (double)(r1 - r0) * 1024 / NKEYS,
         (double)c.stats.bytes / NKEYS, NKEYS, KEYLEN, VALLEN);
  sink = ok;
  fy_cache_free(&c);
  free(order);
  free(keys);
  return 0;
}
