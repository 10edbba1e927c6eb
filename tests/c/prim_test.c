/* ** prim_test.c -- C tests for engine/prim ratelimit, cache and health (make ctest-prim). */
#include "prim/cache.h"
#include "prim/health.h"
#include "prim/ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) {            /* splitmix64: reproducible */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double rnd01(void) { return (double)(rng() >> 11) / 9007199254740992.0; }


/* ---- rate limiter ------------------------------------------------------------------------ */

/* Every window [times[i], times[j]] must hold <= rate * (times[j] - times[i]) + burst. */
static int window_ok(const double *t, int n, double rate, double burst, double *worst) {
  int ok = 1;
  *worst = 0;
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) {
      double excess = (j - i + 1) - (rate * (t[j] - t[i]) + burst);
      if (excess > *worst) *worst = excess;
      if (excess > 1e-6) ok = 0;
    }
  return ok;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_ratelimit_basic(void) {
  fy_ratelimit_t rl;
  CHECK(fy_ratelimit_init(&rl, 0, 5) == -1);
  CHECK(fy_ratelimit_init(&rl, 10, 0.5) == -1);
  CHECK(fy_ratelimit_init(&rl, 10, 3) == 0);
  CHECK(fy_ratelimit_try_take(&rl, 1, 100.0));
  CHECK(fy_ratelimit_try_take(&rl, 2, 100.0));
  CHECK(!fy_ratelimit_try_take(&rl, 1, 100.0));
  CHECK(NEAR(fy_ratelimit_wait_time(&rl, 1, 100.0), 0.1));
  CHECK(fy_ratelimit_try_take(&rl, 1, 100.1 + 1e-9));
  CHECK(fy_ratelimit_wait_time(&rl, 4, 100.2) == -1);       /* above burst: never */
  CHECK(!fy_ratelimit_try_take(&rl, 4, 200.0));
  CHECK(NEAR(fy_ratelimit_tokens(&rl, 300.0), 3));           /* capped at burst */
  CHECK(rl.stats.admitted == 3 && rl.stats.rejected == 2);

  /* reserve: FIFO waits of 1/rate each once the bucket is empty */
  fy_ratelimit_init(&rl, 10, 2);
  CHECK(fy_ratelimit_reserve(&rl, 1, 0) == 0);
  CHECK(fy_ratelimit_reserve(&rl, 1, 0) == 0);
  CHECK(NEAR(fy_ratelimit_reserve(&rl, 1, 0), 0.1));
  CHECK(NEAR(fy_ratelimit_reserve(&rl, 1, 0), 0.2));
  CHECK(NEAR(fy_ratelimit_tokens(&rl, 0), -2));
  CHECK(!fy_ratelimit_try_take(&rl, 1, 0.15));               /* waiters first: no starving */
  CHECK(fy_ratelimit_try_take(&rl, 1, 0.3 + 1e-9));
  CHECK(rl.stats.waited == 2 && NEAR(rl.stats.wait_total, 0.3));

  /* penalize: nothing before `until`; reservations are timed from its end */
  fy_ratelimit_init(&rl, 10, 2);
  fy_ratelimit_penalize(&rl, 5.0);
  CHECK(!fy_ratelimit_try_take(&rl, 1, 4.0));
  CHECK(NEAR(fy_ratelimit_wait_time(&rl, 1, 4.0), 1.0));
  CHECK(NEAR(fy_ratelimit_reserve(&rl, 1, 4.0), 1.0));
  CHECK(NEAR(fy_ratelimit_reserve(&rl, 1, 4.0), 1.0));
  CHECK(NEAR(fy_ratelimit_reserve(&rl, 1, 4.0), 1.1));       /* burst, then rate, after the block */
  fy_ratelimit_penalize(&rl, 3.0);                            /* never shortens */
  CHECK(rl.blocked_until == 5.0);
}

/* Random arrivals for 10 s at rate 25, burst 5, mixing try_take and reserve callers; the
 * admission times (now for try_take, now + wait for reserve) obey the window bound. */
static void test_ratelimit_property(void) {
  enum { MAXN = 4000 };
  static double adm[MAXN];
  for (int round = 0; round < 40; round++) {
    fy_ratelimit_t rl;
    fy_ratelimit_init(&rl, 25, 5);
    int n = 0;
    double now = 0, mean_gap = 0.002 + rnd01() * 0.05;
    int mode = round % 3;            /* 0: try_take only, 1: reserve only, 2: mixed */
    while (now < 10 && n < MAXN) {
      now += rnd01() < 0.1 ? 0 : -log(1 - rnd01()) * mean_gap;   /* bursts of equal times */
      if (round % 4 == 3 && rnd01() < 0.01) fy_ratelimit_penalize(&rl, now + rnd01());
      int reserve = mode == 1 || (mode == 2 && (rng() & 1));
      if (reserve) {
        double w = fy_ratelimit_reserve(&rl, 1, now);
        CHECK(w >= 0);
        adm[n++] = now + w;
      } else if (fy_ratelimit_try_take(&rl, 1, now)) {
        adm[n++] = now;
      }
    }
    qsort(adm, n, sizeof adm[0], cmp_double);
    double worst;
    int ok = window_ok(adm, n, 25, 5, &worst);
    CHECK(ok);
    if (!ok) fprintf(stderr, "  round %d mode %d: %d admissions, worst excess %g\n", round, mode, n, worst);
    if (mode == 0) CHECK(n <= 25 * 10 + 5 + 1);
  }
}


/* ---- cache ------------------------------------------------------------------------------- */

static int get_str(fy_cache_t *c, const char *k, double now, char *out) {
  const char *v;
  size_t n;
  if (!fy_cache_get(c, k, strlen(k), now, &v, &n)) return 0;
  memcpy(out, v, n);
  out[n] = 0;
  return 1;
}

static int set_str(fy_cache_t *c, const char *k, const char *v, double ttl, double now,
                   unsigned flags, int64_t block) {
  return fy_cache_set(c, k, strlen(k), v, strlen(v), ttl, now, flags, block, NULL);
}

static void test_cache_basic(void) {
  fy_cache_t c;
  char buf[256];
  fy_cache_init(&c, 0, 0);
  CHECK(!get_str(&c, "a", 0, buf));
  CHECK(set_str(&c, "a", "1", 0, 0, 0, -1) == FY_CACHE_OK);
  CHECK(get_str(&c, "a", 0, buf) && strcmp(buf, "1") == 0);
  CHECK(set_str(&c, "a", "22", 0, 0, 0, -1) == FY_CACHE_OK);          /* resize */
  CHECK(get_str(&c, "a", 0, buf) && strcmp(buf, "22") == 0);
  CHECK(set_str(&c, "a", "33", 0, 0, 0, -1) == FY_CACHE_OK);          /* in place */
  CHECK(get_str(&c, "a", 0, buf) && strcmp(buf, "33") == 0);
  CHECK(c.stats.entries == 1 && c.stats.bytes == FY_CACHE_ENTRY_OVERHEAD + 3);
  CHECK(fy_cache_delete(&c, "a", 1) == 1 && fy_cache_delete(&c, "a", 1) == 0);
  CHECK(c.stats.entries == 0 && c.stats.bytes == 0);
  CHECK(c.stats.hits == 3 && c.stats.misses == 1);
  /* binary keys with NULs, empty key and value */
  CHECK(fy_cache_set(&c, "x\0y", 3, "", 0, 0, 0, 0, -1, NULL) == FY_CACHE_OK);
  const char *v;
  size_t n;
  CHECK(fy_cache_get(&c, "x\0y", 3, 0, &v, &n) && n == 0);
  CHECK(!fy_cache_get(&c, "x\0z", 3, 0, &v, &n));
  CHECK(fy_cache_set(&c, "", 0, "e", 1, 0, 0, 0, -1, NULL) == FY_CACHE_OK);
  CHECK(fy_cache_get(&c, "", 0, 0, &v, &n) && n == 1 && v[0] == 'e');
  /* many keys: growth and rehash keep every entry */
  for (int i = 0; i < 50000; i++) {
    char k[32], val[32];
    snprintf(k, sizeof k, "key:%d", i);
    snprintf(val, sizeof val, "v%d", i * 7);
    set_str(&c, k, val, 0, 0, 0, -1);
  }
  int good = 1;
  for (int i = 0; i < 50000; i++) {
    char k[32], val[32];
    snprintf(k, sizeof k, "key:%d", i);
    snprintf(val, sizeof val, "v%d", i * 7);
    good &= get_str(&c, k, 0, buf) && strcmp(buf, val) == 0;
  }
  CHECK(good);
  CHECK(c.stats.entries == 50002);
  fy_cache_flush(&c);
  CHECK(c.stats.entries == 0 && c.stats.bytes == 0 && !get_str(&c, "key:1", 0, buf));
  fy_cache_free(&c);
  fy_cache_free(&c);                                                   /* idempotent */
}

static void test_cache_lru(void) {
  fy_cache_t c;
  char buf[64];
  int forced;
  fy_cache_init(&c, 3, 0);
  set_str(&c, "a", "1", 0, 0, 0, -1);
  set_str(&c, "b", "2", 0, 0, 0, -1);
  set_str(&c, "c", "3", 0, 0, 0, -1);
  CHECK(get_str(&c, "a", 0, buf));                                     /* a is now MRU */
  CHECK(fy_cache_set(&c, "d", 1, "4", 1, 0, 0, 0, -1, &forced) == 0 && forced == 1);
  CHECK(!get_str(&c, "b", 0, buf));                                    /* b was LRU */
  CHECK(get_str(&c, "a", 0, buf) && get_str(&c, "c", 0, buf) && get_str(&c, "d", 0, buf));
  CHECK(c.stats.evictions == 1 && c.stats.entries == 3);
  fy_cache_free(&c);

  /* byte limit: room for exactly two entries of this size */
  size_t one = FY_CACHE_ENTRY_OVERHEAD + 2 + 10;
  fy_cache_init(&c, 0, 2 * one + 1);
  set_str(&c, "k1", "0123456789", 0, 0, 0, -1);
  set_str(&c, "k2", "0123456789", 0, 0, 0, -1);
  CHECK(c.stats.entries == 2 && c.stats.bytes == 2 * one);
  set_str(&c, "k3", "0123456789", 0, 0, 0, -1);
  CHECK(c.stats.entries == 2 && !get_str(&c, "k1", 0, buf) && get_str(&c, "k3", 0, buf));
  char big[512];
  memset(big, 'x', sizeof big);
  CHECK(fy_cache_set(&c, "k2", 2, big, sizeof big, 0, 0, 0, -1, NULL) == FY_CACHE_ETOOBIG);
  CHECK(!get_str(&c, "k2", 0, buf));                                   /* old value gone too */
  CHECK(c.stats.bytes <= 2 * one + 1);
  fy_cache_free(&c);
}

static void test_cache_ttl(void) {
  fy_cache_t c;
  char buf[64];
  fy_cache_init(&c, 0, 0);
  set_str(&c, "t", "v", 5, 100, 0, -1);
  set_str(&c, "forever", "v", 0, 100, 0, -1);
  CHECK(get_str(&c, "t", 104.9, buf));
  CHECK(!get_str(&c, "t", 105, buf));                                  /* lazily expired */
  CHECK(c.stats.expirations == 1 && c.stats.entries == 1);
  CHECK(get_str(&c, "forever", 1e9, buf));
  /* expired tail entries are reclaimed on set, at most FY_CACHE_EXPIRE_SCAN per set */
  fy_cache_flush(&c);
  for (int i = 0; i < 10; i++) {
    char k[16];
    snprintf(k, sizeof k, "e%d", i);
    set_str(&c, k, "v", 1, 0, 0, -1);
  }
  set_str(&c, "new", "v", 0, 10, 0, -1);
  CHECK(c.stats.entries == 10 - FY_CACHE_EXPIRE_SCAN + 1);
  fy_cache_free(&c);
}

static void test_cache_head_and_reorg(void) {
  fy_cache_t c;
  char buf[64];
  fy_cache_init(&c, 0, 0);
  set_str(&c, "bal@latest", "100", 0, 0, FY_CACHE_HEAD_BOUND, -1);
  set_str(&c, "block#10", "x", 0, 0, 0, 10);
  set_str(&c, "block#11", "y", 0, 0, 0, 11);
  set_str(&c, "block#12", "z", 0, 0, 0, 12);
  set_str(&c, "chain_id", "1", 0, 0, 0, -1);
  CHECK(get_str(&c, "bal@latest", 0, buf));
  fy_cache_new_head(&c);
  CHECK(!get_str(&c, "bal@latest", 0, buf));
  CHECK(c.stats.invalidations == 1);
  set_str(&c, "bal@latest", "101", 0, 0, FY_CACHE_HEAD_BOUND, -1);   /* stored at the new head */
  CHECK(get_str(&c, "bal@latest", 0, buf) && strcmp(buf, "101") == 0);
  CHECK(fy_cache_drop_from_block(&c, 11) == 2);
  CHECK(get_str(&c, "block#10", 0, buf) && !get_str(&c, "block#11", 0, buf) &&
        !get_str(&c, "block#12", 0, buf) && get_str(&c, "chain_id", 0, buf));
  CHECK(!get_str(&c, "bal@latest", 0, buf));                          /* a reorg is a new head */
  CHECK(c.stats.entries == 2);
  fy_cache_free(&c);
}


/* Entries carry the expiry and the head/block mark only when they use them (cache.c keeps them
 * in front of the header), so every combination, and overwrites that add, drop or swap them,
 * must behave as if all entries had both. */
enum { L_TTL = 1, L_HEAD = 2, L_BLOCK = 4 };

static int set_kind(fy_cache_t *c, const char *k, const char *v, int kind, double now,
                    int64_t block) {
  return set_str(c, k, v, kind & L_TTL ? 10 : 0, now, kind & L_HEAD ? FY_CACHE_HEAD_BOUND : 0,
                 kind & L_BLOCK ? block : -1);
}

static void test_cache_layouts(void) {
  fy_cache_t c;
  char buf[64];
  /* each kind alone: lookups, expiry, head, block, accounting */
  for (int kind = 0; kind < 8; kind++) {
    fy_cache_init(&c, 0, 0);
    CHECK(set_kind(&c, "key0000001", "value__8", kind, 100, 7) == FY_CACHE_OK);
    CHECK(c.stats.bytes == FY_CACHE_ENTRY_OVERHEAD + 10 + 8);
    CHECK(get_str(&c, "key0000001", 109.9, buf) && strcmp(buf, "value__8") == 0);
    int alive = get_str(&c, "key0000001", 110, buf);
    CHECK(alive == !(kind & L_TTL));
    if (alive) {
      fy_cache_new_head(&c);
      alive = get_str(&c, "key0000001", 0, buf);
      CHECK(alive == !(kind & L_HEAD));
    }
    if (alive) {
      CHECK(fy_cache_drop_from_block(&c, 8) == 0);
      CHECK(fy_cache_drop_from_block(&c, 7) == ((kind & (L_HEAD | L_BLOCK)) == L_BLOCK));
    }
    fy_cache_free(&c);
  }

  /* same-size overwrites from every kind to every kind: the value, the new kind's behaviour,
   * LRU order and accounting are as for an in-place rewrite, and dead tail entries are not
   * reclaimed by it (a same-size overwrite never was) */
  for (int from = 0; from < 8; from++) {
    for (int to = 0; to < 8; to++) {
      fy_cache_init(&c, 4, 0);
      set_str(&c, "dead", "x", 35, 0, 0, -1);                /* expired from now = 35 on */
      set_kind(&c, "a", "1111", from, 30, 3);
      set_kind(&c, "b", "2222", from, 30, 3);
      set_kind(&c, "c", "3333", from, 30, 3);
      CHECK(c.stats.entries == 4);
      CHECK(set_kind(&c, "b", "BBBB", to, 36, 5) == FY_CACHE_OK);    /* middle of the LRU */
      CHECK(set_kind(&c, "a", "AAAA", to, 36, 5) == FY_CACHE_OK);    /* tail side */
      CHECK(c.stats.entries == 4 && c.stats.expirations == 0);
      CHECK(c.stats.bytes == 4 * FY_CACHE_ENTRY_OVERHEAD + 4 * 5);
      /* LRU is now a, b, c, dead: a new entry reclaims dead first, then evicts c */
      int forced = -1;
      CHECK(fy_cache_set(&c, "d", 1, "4", 1, 0, 36, 0, -1, &forced) == FY_CACHE_OK);
      CHECK(c.stats.expirations == 1 && forced == 0 && c.stats.entries == 4);
      CHECK(fy_cache_set(&c, "e", 1, "5", 1, 0, 36, 0, -1, &forced) == FY_CACHE_OK);
      CHECK(forced == 1 && !get_str(&c, "c", 36, buf));
      CHECK(get_str(&c, "b", 36, buf) && strcmp(buf, "BBBB") == 0);
      CHECK(get_str(&c, "a", 36, buf) && strcmp(buf, "AAAA") == 0);
      /* the new kind decides expiry, head and block */
      CHECK(get_str(&c, "a", 60, buf) == !(to & L_TTL));
      fy_cache_new_head(&c);
      CHECK(get_str(&c, "b", 0, buf) == !(to & L_HEAD));
      /* block 5 entries left: a unless it expired above, b (a head-bound one is gone) */
      size_t want = (to & (L_HEAD | L_BLOCK)) == L_BLOCK ? (to & L_TTL ? 1 : 2) : 0;
      CHECK(fy_cache_drop_from_block(&c, 5) == want);
      CHECK(get_str(&c, "d", 1e9, buf) && get_str(&c, "e", 1e9, buf));
      fy_cache_free(&c);
    }
  }

  /* a relayout of the most recent entry (no in-place move to the front follows to repair its
   * neighbour's back link) and of the only entry */
  for (int to = 1; to < 8; to++) {
    fy_cache_init(&c, 0, 0);
    set_kind(&c, "x", "xx", 0, 0, 1);
    set_kind(&c, "y", "yy", 0, 0, 1);
    CHECK(set_kind(&c, "y", "YY", to, 0, 1) == FY_CACHE_OK);         /* head, x behind it */
    CHECK(get_str(&c, "x", 0, buf) && strcmp(buf, "xx") == 0);        /* x to the front */
    CHECK(get_str(&c, "y", 0, buf) && strcmp(buf, "YY") == 0);
    CHECK(fy_cache_delete(&c, "x", 1) == 1);
    CHECK(set_kind(&c, "y", "yy", 0, 0, 1) == FY_CACHE_OK);          /* the only entry */
    CHECK(set_kind(&c, "z", "zz", 0, 0, 1) == FY_CACHE_OK);
    CHECK(fy_cache_delete(&c, "y", 1) == 1 && get_str(&c, "z", 0, buf));
    fy_cache_free(&c);
  }

  /* overwrites that change the size and the kind, across table growth and long chains:
   * relayouts must keep every chain and the LRU list intact */
  fy_cache_init(&c, 0, 0);
  int good = 1;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 3000; i++) {
      char k[40], v[40];
      snprintf(k, sizeof k, "%.*s%d", i % 23, "kkkkkkkkkkkkkkkkkkkkkkk", i);
      snprintf(v, sizeof v, round & 1 ? "v%06d" : "w%06d", i);     /* same size each round */
      if (round == 3) snprintf(v, sizeof v, "longer-%d", i);
      good &= set_kind(&c, k, v, (i + round) % 8, 50, i) == FY_CACHE_OK;
    }
    for (int i = 0; i < 3000; i++) {
      char k[40], v[40];
      snprintf(k, sizeof k, "%.*s%d", i % 23, "kkkkkkkkkkkkkkkkkkkkkkk", i);
      snprintf(v, sizeof v, round & 1 ? "v%06d" : "w%06d", i);
      if (round == 3) snprintf(v, sizeof v, "longer-%d", i);
      good &= get_str(&c, k, 55, buf) && strcmp(buf, v) == 0;
    }
    good &= c.stats.entries == 3000;
  }
  CHECK(good);
  /* round 3: kinds (i + 3) % 8; drop_from_block(0) takes the block-only ones (with or without
   * TTL) that are not head-bound: kinds 4 and 5, i.e. i % 8 == 1 or 2 */
  CHECK(fy_cache_drop_from_block(&c, 0) == 750);
  /* and the head-bound ones are stale now: kinds 2, 3, 6, 7 */
  int live = 0;
  for (int i = 0; i < 3000; i++) {
    char k[40];
    snprintf(k, sizeof k, "%.*s%d", i % 23, "kkkkkkkkkkkkkkkkkkkkkkk", i);
    live += get_str(&c, k, 55, buf);
  }
  CHECK(live == 750 && c.stats.entries == 750);
  fy_cache_flush(&c);
  CHECK(c.stats.entries == 0 && c.stats.bytes == 0 && c.lru_head == NULL && c.lru_tail == NULL);
  fy_cache_free(&c);
}

/* ---- health ------------------------------------------------------------------------------ */

static fy_health_set_t *new_set(int n) {
  fy_health_set_t *s = malloc(fy_health_sizeof(n));
  CHECK(fy_health_init(s, n, NULL) == 0);
  return s;
}

static void test_health_breaker(void) {
  fy_health_set_t *s = new_set(1);
  double t = 1000;
  CHECK(fy_health_state(s, 0, t) == FY_HEALTH_CLOSED);
  fy_health_report(s, 0, FY_HEALTH_TIMEOUT, 2, t);
  fy_health_report(s, 0, FY_HEALTH_TX_ERROR, 0.1, t);                 /* resets the streak */
  fy_health_report(s, 0, FY_HEALTH_REFUSED, -1, t);
  fy_health_report(s, 0, FY_HEALTH_HTTP_5XX, 0.1, t);
  CHECK(fy_health_state(s, 0, t) == FY_HEALTH_CLOSED);
  fy_health_report(s, 0, FY_HEALTH_BAD_RESPONSE, 0.1, t);              /* third in a row */
  CHECK(fy_health_state(s, 0, t) == FY_HEALTH_OPEN);
  CHECK(fy_health_pick(s, t, 0) == -1);
  CHECK(NEAR(fy_health_retry_in(s, t, 0), 1.0));
  CHECK(fy_health_score(s, 0, t) == 0);
  CHECK(fy_health_state(s, 0, t + 0.999) == FY_HEALTH_OPEN);
  CHECK(fy_health_state(s, 0, t + 1) == FY_HEALTH_HALF_OPEN);
  /* exactly one probe */
  CHECK(fy_health_pick(s, t + 1, 0) == 0);
  CHECK(fy_health_pick(s, t + 1, 0) == -1);
  /* probe fails: open for 2 s, then 4, 8, 16, 30 (cap) */
  double expect[] = {2, 4, 8, 16, 30, 30};
  double now = t + 1;
  for (int k = 0; k < 6; k++) {
    fy_health_report(s, 0, FY_HEALTH_TIMEOUT, 5, now);
    CHECK(fy_health_state(s, 0, now) == FY_HEALTH_OPEN);
    CHECK(NEAR(s->p[0].open_until - now, expect[k]));
    now += expect[k];
    CHECK(fy_health_pick(s, now, 0) == 0);
  }
  /* probe succeeds: closed, cooldown back to 1 s */
  fy_health_report(s, 0, FY_HEALTH_OK, 0.05, now);
  CHECK(fy_health_state(s, 0, now) == FY_HEALTH_CLOSED);
  CHECK(fy_health_pick(s, now, 0) == 0 && fy_health_pick(s, now, 0) == 0);
  for (int k = 0; k < 3; k++) fy_health_report(s, 0, FY_HEALTH_TIMEOUT, 1, now);
  CHECK(NEAR(s->p[0].open_until - now, 1.0));
  /* a lost probe frees its slot after probe_timeout */
  now += 1;
  CHECK(fy_health_pick(s, now, 0) == 0 && fy_health_pick(s, now + 9.9, 0) == -1);
  CHECK(fy_health_pick(s, now + 10, 0) == 0);
  /* rate limited during the probe: slot freed, provider blocked, breaker untouched */
  fy_health_report(s, 0, FY_HEALTH_RATE_LIMITED, 0.1, now + 10);
  CHECK(fy_health_state(s, 0, now + 10) == FY_HEALTH_HALF_OPEN);
  CHECK(fy_health_pick(s, now + 10.5, 0) == -1 && fy_health_pick(s, now + 11, 0) == 0);
  free(s);

  /* error-rate trip without a streak: alternate fail/ok until the EWMA crosses 0.5 */
  s = new_set(1);
  s->cfg.error_rate_threshold = 0.4;
  int opened_at = -1;
  for (int k = 0; k < 40 && opened_at < 0; k++) {
    fy_health_report(s, 0, k % 3 == 2 ? FY_HEALTH_OK : FY_HEALTH_TIMEOUT, 0.1, 0);
    if (fy_health_state(s, 0, 0) == FY_HEALTH_OPEN) opened_at = k;
  }
  CHECK(opened_at >= s->cfg.min_samples - 1);
  free(s);

  /* TX errors never count; wrong chain opens at once for max_cooldown */
  s = new_set(1);
  for (int k = 0; k < 100; k++) fy_health_report(s, 0, FY_HEALTH_TX_ERROR, 0.1, 0);
  CHECK(fy_health_state(s, 0, 0) == FY_HEALTH_CLOSED && s->p[0].error_rate == 0);
  fy_health_report(s, 0, FY_HEALTH_WRONG_CHAIN, 0.1, 0);
  CHECK(fy_health_state(s, 0, 0) == FY_HEALTH_OPEN && NEAR(s->p[0].open_until, 30));
  free(s);
}

static void test_health_pick(void) {
  fy_health_set_t *s = new_set(4);
  fy_health_set_provider(s, 0, 5, 1);
  fy_health_set_provider(s, 1, 1, 1);
  fy_health_set_provider(s, 2, 1, 1);
  fy_health_set_provider(s, 3, 1, 2);                                  /* backup tier */
  int count[4] = {0};
  char seq[8];
  for (int k = 0; k < 7; k++) {
    int i = fy_health_pick(s, 0, 0);
    count[i]++;
    seq[k] = (char)('a' + i);
  }
  /* nginx's example for weights 5,1,1: a a b a c a a */
  CHECK(memcmp(seq, "aabacaa", 7) == 0);
  for (int k = 0; k < 7000 - 7; k++) count[fy_health_pick(s, 0, 0)]++;
  CHECK(count[0] == 5000 && count[1] == 1000 && count[2] == 1000 && count[3] == 0);

  /* exclusion (failover within a request) and tier fallback */
  CHECK(fy_health_pick(s, 0, 0x1) != 0);
  CHECK(fy_health_pick(s, 0, 0x7) == 3);
  CHECK(fy_health_pick(s, 0, 0xf) == -1);
  CHECK(fy_health_retry_in(s, 0, 0xf) == -1);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 3; k++) fy_health_report(s, i, FY_HEALTH_TIMEOUT, 1, 0);
  CHECK(fy_health_pick(s, 0.5, 0) == 3);                               /* tier 1 all open */
  CHECK(NEAR(fy_health_retry_in(s, 0.5, 0), 0));
  CHECK(NEAR(fy_health_retry_in(s, 0.5, 0x8), 0.5));
  /* half-open probes in tier 1 win back the traffic */
  int p1 = fy_health_pick(s, 1.0, 0);
  CHECK(p1 >= 0 && p1 < 3);
  fy_health_report(s, p1, FY_HEALTH_OK, 0.05, 1.0);
  for (int k = 0; k < 5; k++) {
    int i = fy_health_pick(s, 1.0, 0);
    CHECK(i >= 0 && i < 3);                                            /* the other probes or p1 */
  }

  /* retry_after block and head lag */
  free(s);
  s = new_set(3);
  fy_health_block(s, 0, 10);
  for (int k = 0; k < 6; k++) CHECK(fy_health_pick(s, 5, 0) != 0);
  CHECK(fy_health_pick(s, 10, 0x6) == 0);
  fy_health_set_head(s, 0, 100);
  fy_health_set_head(s, 1, 95);                                        /* lag 5: still ok */
  fy_health_set_head(s, 2, 94);                                        /* lag 6: skipped */
  CHECK(fy_health_lag(s, 2) == 6);
  int seen[3] = {0};
  for (int k = 0; k < 30; k++) seen[fy_health_pick(s, 20, 0)]++;
  CHECK(seen[0] == 15 && seen[1] == 15 && seen[2] == 0);
  fy_health_set_head(s, 0, 90);                                        /* leader reorged back */
  CHECK(s->best_head == 95 && fy_health_lag(s, 2) == 1);
  CHECK(fy_health_score(s, 1, 20) == 1.0 && fy_health_score(s, 2, 20) < 1.0);
  CHECK(fy_health_outcome_parse("http_5xx") == FY_HEALTH_HTTP_5XX);
  CHECK(fy_health_outcome_parse("nope") == -1);
  free(s);
}


int main(void) {
  test_ratelimit_basic();
  test_ratelimit_property();
  test_cache_basic();
  test_cache_lru();
  test_cache_ttl();
  test_cache_head_and_reorg();
  test_cache_layouts();
  test_health_breaker();
  test_health_pick();
  printf("prim_test: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
