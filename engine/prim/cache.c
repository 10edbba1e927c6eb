/* ** cache.c -- TTL + LRU byte-string cache, one allocation per entry (see cache.h). */
#include "prim/cache.h"

#include <stdlib.h>
#include <string.h>

/* private flags next to FY_CACHE_HEAD_BOUND; they also say which optional fields an entry has */
enum { HAS_BLOCK = 2, HAS_TTL = 4 };
enum { HAS_MARK = FY_CACHE_HEAD_BOUND | HAS_BLOCK, LAYOUT = HAS_TTL | HAS_MARK };

/* One allocation per entry: the optional fields an entry uses come first, then the 35-byte
 * fixed header (LP64) that entry pointers point at, then the key and the value:
 *   [mark: uint64, if HAS_MARK][expires: double, if HAS_TTL] header key[klen] value[vlen]
 *   ^ allocation (entry_base)                                 ^ fy_cache_entry_t *
 * so lookups, key compares and value reads see the same fixed offsets as when every entry had
 * both fields, the fields share the header's cache line, and only free/relayout need the
 * allocation start (entry - opt_len(flags)). Both fields are 8 bytes, so the header stays
 * 8-aligned. mark is the generation if HEAD_BOUND, the block number if HAS_BLOCK (HEAD_BOUND
 * wins when set() gets both, as before). A 10-byte key and an 8-byte value with neither field
 * is a 53-byte request, glibc's 64-byte chunk (61 or 69 bytes, an 80-byte chunk, with one or
 * both fields), plus 8 bytes of bucket pointer per entry. */
struct fy_cache_entry {
  fy_cache_entry_t *hnext;       /* hash chain */
  fy_cache_entry_t *prev, *next; /* LRU list: prev is towards the head (more recent) */
  uint32_t hash;
  uint32_t vlen;
  uint16_t klen;
  uint8_t flags;                 /* FY_CACHE_HEAD_BOUND | HAS_BLOCK | HAS_TTL */
  char data[];                   /* key[klen] value[vlen] */
};

#define HEADER offsetof(struct fy_cache_entry, data)

/* Accounted as if both optional fields were present (51 on LP64, the size of the former fixed
 * header), so byte budgets and stats do not depend on which options an entry uses. */
const size_t FY_CACHE_ENTRY_OVERHEAD = HEADER + sizeof(double) + sizeof(uint64_t);

#define INITIAL_BUCKETS 16

enum { ALIVE, EXPIRED, STALE };


static inline uint64_t mix64(uint64_t k) {
  k ^= k >> 32;
  k *= 0xd6e8feb86659fd93ULL;
  k ^= k >> 32;
  return k;
}


static inline uint64_t load64(const unsigned char *s) {
  uint64_t k;
  memcpy(&k, s, 8);
  return k;
}


static inline uint32_t load32(const unsigned char *s) {
  uint32_t k;
  memcpy(&k, s, 4);
  return k;
}


/* 8 bytes at a time; the last (partial) word is read overlapping the previous one, or from
 * two overlapping 4-byte loads, so there is no variable-length memcpy on the hot path. */
static uint32_t hash_key(const fy_cache_t *c, const void *key, size_t len) {
  const unsigned char *s = key;
  size_t n = len;
  uint64_t h = c->seed ^ (len * 0x9e3779b97f4a7c15ULL), k;
  while (n > 8) {
    h = (h ^ mix64(load64(s))) * 0xbf58476d1ce4e5b9ULL;
    s += 8;
    n -= 8;
  }
  if (len >= 8) k = load64(s + n - 8);
  else if (n >= 4) k = ((uint64_t)load32(s) << 32) | load32(s + n - 4);
  else if (n > 0) k = ((uint64_t)s[0] << 16) | ((uint64_t)s[n >> 1] << 8) | s[n - 1];
  else k = 0;
  h = (h ^ mix64(k)) * 0x94d049bb133111ebULL;
  h = mix64(h);
  return (uint32_t)(h ^ (h >> 32));
}


/* Key equality without a libc call for the usual short keys (overlapping word compares). */
static inline int key_eq(const char *a, const char *b, size_t n) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  if (n >= 8 && n <= 16)
    return load64(x) == load64(y) && load64(x + n - 8) == load64(y + n - 8);
  if (n >= 4 && n < 8)
    return load32(x) == load32(y) && load32(x + n - 4) == load32(y + n - 4);
  return memcmp(a, b, n) == 0;
}


static inline size_t entry_size(size_t klen, size_t vlen) {
  return FY_CACHE_ENTRY_OVERHEAD + klen + vlen;
}


/* Bytes of optional fields in front of the header for a layout (flags & LAYOUT). */
static inline size_t opt_len(unsigned flags) {
  return (flags & HAS_TTL ? sizeof(double) : 0) + (flags & HAS_MARK ? sizeof(uint64_t) : 0);
}

static inline size_t alloc_size(unsigned flags, size_t klen, size_t vlen) {
  return opt_len(flags) + HEADER + klen + vlen;
}

/* Where e's allocation starts (what malloc returned; what free takes). */
static inline void *entry_base(fy_cache_entry_t *e) { return (char *)e - opt_len(e->flags); }

static inline double *expires_of(fy_cache_entry_t *e) {        /* HAS_TTL only */
  return (double *)(void *)((char *)e - sizeof(double));
}

static inline uint64_t *mark_of(fy_cache_entry_t *e) {         /* HAS_MARK only */
  return (uint64_t *)(void *)((char *)e - opt_len(e->flags));
}


static inline int entry_state(const fy_cache_t *c, fy_cache_entry_t *e, double now) {
  if ((e->flags & FY_CACHE_HEAD_BOUND) && *mark_of(e) != c->generation) return STALE;
  if ((e->flags & HAS_TTL) && *expires_of(e) <= now) return EXPIRED;
  return ALIVE;
}


static inline void lru_unlink(fy_cache_t *c, fy_cache_entry_t *e) {
  if (e->prev) e->prev->next = e->next; else c->lru_head = e->next;
  if (e->next) e->next->prev = e->prev; else c->lru_tail = e->prev;
}


static inline void lru_push_front(fy_cache_t *c, fy_cache_entry_t *e) {
  e->prev = NULL;
  e->next = c->lru_head;
  if (c->lru_head) c->lru_head->prev = e; else c->lru_tail = e;
  c->lru_head = e;
}


static inline void lru_touch(fy_cache_t *c, fy_cache_entry_t *e) {
  if (c->lru_head != e) {
    lru_unlink(c, e);
    lru_push_front(c, e);
  }
}


/* Unlink e from its chain and the LRU list, free it, fix the accounting. */
static void cache_remove(fy_cache_t *c, fy_cache_entry_t *e) {
  fy_cache_entry_t **pp = &c->buckets[e->hash & c->mask];
  while (*pp != e) pp = &(*pp)->hnext;
  *pp = e->hnext;
  lru_unlink(c, e);
  c->stats.entries--;
  c->stats.bytes -= entry_size(e->klen, e->vlen);
  free(entry_base(e));
}


/* Remove e and count it under the reason it is going. */
static void cache_drop(fy_cache_t *c, fy_cache_entry_t *e, double now) {
  switch (entry_state(c, e, now)) {
  case EXPIRED: c->stats.expirations++; break;
  case STALE: c->stats.invalidations++; break;
  default: c->stats.evictions++; break;
  }
  cache_remove(c, e);
}


/* inline: the call's frame setup was ~10% of a get, more than the optional fields add to a set */
static inline fy_cache_entry_t *cache_find(const fy_cache_t *c, const void *key, size_t klen,
                                           uint32_t h) {
  if (!c->buckets) return NULL;
  for (fy_cache_entry_t *e = c->buckets[h & c->mask]; e; e = e->hnext)
    if (e->hash == h && e->klen == klen && key_eq(e->data, key, klen)) return e;
  return NULL;
}


/* Double the table; on allocation failure keep the old one (chains just get longer). */
static void cache_grow(fy_cache_t *c) {
  size_t n = (c->mask + 1) * 2;
  fy_cache_entry_t **nb = calloc(n, sizeof *nb);
  if (!nb) return;
  for (size_t i = 0; i <= c->mask; i++) {
    fy_cache_entry_t *e = c->buckets[i], *next;
    for (; e; e = next) {
      next = e->hnext;
      e->hnext = nb[e->hash & (n - 1)];
      nb[e->hash & (n - 1)] = e;
    }
  }
  free(c->buckets);
  c->buckets = nb;
  c->mask = n - 1;
}


int fy_cache_init(fy_cache_t *c, size_t max_entries, size_t max_bytes) {
  memset(c, 0, sizeof *c);
  c->max_entries = max_entries;
  c->max_bytes = max_bytes;
  c->seed = 0x2545f4914f6cdd1dULL ^ (uint64_t)(uintptr_t)c;
  return FY_CACHE_OK;
}


void fy_cache_flush(fy_cache_t *c) {
  fy_cache_entry_t *e = c->lru_head, *next;
  for (; e; e = next) {
    next = e->next;
    free(entry_base(e));
  }
  c->lru_head = c->lru_tail = NULL;
  if (c->buckets) memset(c->buckets, 0, (c->mask + 1) * sizeof *c->buckets);
  c->stats.entries = 0;
  c->stats.bytes = 0;
}


void fy_cache_free(fy_cache_t *c) {
  fy_cache_flush(c);
  free(c->buckets);
  c->buckets = NULL;
  c->mask = 0;
}


int fy_cache_get(fy_cache_t *c, const void *key, size_t klen, double now,
                 const char **val, size_t *vlen) {
  fy_cache_entry_t *e = klen <= FY_CACHE_MAX_KEY ? cache_find(c, key, klen, hash_key(c, key, klen))
                                                 : NULL;
  if (e && entry_state(c, e, now) != ALIVE) {
    cache_drop(c, e, now);
    e = NULL;
  }
  if (!e) {
    c->stats.misses++;
    return 0;
  }
  c->stats.hits++;
  lru_touch(c, e);
  *val = e->data + e->klen;
  *vlen = e->vlen;
  return 1;
}


/* The entry flags for set()'s arguments: HEAD_BOUND, else HAS_BLOCK if block >= 0; HAS_TTL if
 * ttl > 0. */
static inline unsigned layout_of(double ttl, unsigned flags, int64_t block) {
  unsigned f = flags & FY_CACHE_HEAD_BOUND ? FY_CACHE_HEAD_BOUND : block >= 0 ? HAS_BLOCK : 0;
  return ttl > 0 ? f | HAS_TTL : f;
}


/* Give e the layout (its allocation must have room for it) and write its optional fields and
 * value. The layout is a parameter, not re-read from e, to keep the set path in registers. */
static inline void fill(fy_cache_t *c, fy_cache_entry_t *e, unsigned layout, const void *val,
                        size_t vlen, double ttl, double now, int64_t block) {
  uint64_t *opt = (uint64_t *)(void *)e;                 /* opt[-1], opt[-2]: see the layout */
  e->flags = (uint8_t)layout;
  if (layout & HAS_TTL) {
    double expires = now + ttl;
    if (expires == 0) expires = 1e-300;                  /* now + ttl == 0: already due */
    memcpy(opt - 1, &expires, sizeof expires);
    opt--;
  }
  if (layout & HAS_MARK)
    opt[-1] = layout & FY_CACHE_HEAD_BOUND ? c->generation : (uint64_t)block;
  e->vlen = (uint32_t)vlen;
  memcpy(e->data + e->klen, val, vlen);
}


/* Overwrite of an entry whose accounted size stays the same but whose optional fields change
 * in size: a new allocation takes old's place in its chain and the LRU list, so to the rest of
 * the cache (accounting, eviction, tail reclaim) it is the same in-place rewrite as when the
 * fields do not change. On allocation failure old is removed (set's contract), NULL returned. */
static fy_cache_entry_t *relayout(fy_cache_t *c, fy_cache_entry_t *old, unsigned layout) {
  char *base = malloc(alloc_size(layout, old->klen, old->vlen));
  if (!base) {
    cache_remove(c, old);
    return NULL;
  }
  fy_cache_entry_t *e = (fy_cache_entry_t *)(void *)(base + opt_len(layout));
  memcpy(e, old, HEADER + old->klen);                    /* links, hash, lengths, key */
  e->flags = (uint8_t)layout;
  fy_cache_entry_t **pp = &c->buckets[old->hash & c->mask];
  while (*pp != old) pp = &(*pp)->hnext;
  *pp = e;
  if (e->prev) e->prev->next = e; else c->lru_head = e;
  if (e->next) e->next->prev = e; else c->lru_tail = e;
  free(entry_base(old));
  return e;
}


int fy_cache_set(fy_cache_t *c, const void *key, size_t klen, const void *val, size_t vlen,
                 double ttl, double now, unsigned flags, int64_t block, int *forcible) {
  int forced = 0;
  if (forcible) *forcible = 0;
  if (!c->buckets) {
    c->buckets = calloc(INITIAL_BUCKETS, sizeof *c->buckets);
    if (!c->buckets) return FY_CACHE_ENOMEM;
    c->mask = INITIAL_BUCKETS - 1;
  }
  size_t size = entry_size(klen, vlen);
  unsigned layout = layout_of(ttl, flags, block);
  int toobig = klen > FY_CACHE_MAX_KEY || vlen > UINT32_MAX ||
               (c->max_bytes && size > c->max_bytes);
  uint32_t h = toobig && klen > FY_CACHE_MAX_KEY ? 0 : hash_key(c, key, klen);
  fy_cache_entry_t *old = toobig && klen > FY_CACHE_MAX_KEY ? NULL : cache_find(c, key, klen, h);

  if (old && !toobig && old->vlen == vlen) {          /* same size: rewrite in place */
    if (old->flags != layout && opt_len(old->flags) != opt_len(layout)) {
      old = relayout(c, old, layout);
      if (!old) return FY_CACHE_ENOMEM;
    }
    fill(c, old, layout, val, vlen, ttl, now, block);
    lru_touch(c, old);
    return FY_CACHE_OK;
  }
  if (old) cache_remove(c, old);
  if (toobig) return FY_CACHE_ETOOBIG;

  /* Reclaim a few dead entries from the tail, stopping at the first live one. */
  for (int i = 0; i < FY_CACHE_EXPIRE_SCAN && c->lru_tail; i++) {
    if (entry_state(c, c->lru_tail, now) == ALIVE) break;
    cache_drop(c, c->lru_tail, now);
  }
  while (c->lru_tail && ((c->max_entries && c->stats.entries + 1 > c->max_entries) ||
                         (c->max_bytes && c->stats.bytes + size > c->max_bytes))) {
    if (entry_state(c, c->lru_tail, now) == ALIVE) forced++;
    cache_drop(c, c->lru_tail, now);
  }
  if (forcible) *forcible = forced;

  char *base = malloc(alloc_size(layout, klen, vlen));
  if (!base) return FY_CACHE_ENOMEM;
  fy_cache_entry_t *e = (fy_cache_entry_t *)(void *)(base + opt_len(layout));
  e->hash = h;
  e->klen = (uint16_t)klen;
  memcpy(e->data, key, klen);
  fill(c, e, layout, val, vlen, ttl, now, block);
  fy_cache_entry_t **b = &c->buckets[h & c->mask];
  e->hnext = *b;
  *b = e;
  lru_push_front(c, e);
  c->stats.entries++;
  c->stats.bytes += size;
  if (c->stats.entries > c->mask + 1) cache_grow(c);
  return FY_CACHE_OK;
}


int fy_cache_delete(fy_cache_t *c, const void *key, size_t klen) {
  if (klen > FY_CACHE_MAX_KEY) return 0;
  fy_cache_entry_t *e = cache_find(c, key, klen, hash_key(c, key, klen));
  if (!e) return 0;
  cache_remove(c, e);
  return 1;
}


void fy_cache_new_head(fy_cache_t *c) {
  c->generation++;
}


size_t fy_cache_drop_from_block(fy_cache_t *c, int64_t n) {
  size_t dropped = 0;
  c->generation++;
  if (n < 0) n = 0;
  fy_cache_entry_t *e = c->lru_head, *next;
  for (; e; e = next) {
    next = e->next;
    if ((e->flags & HAS_BLOCK) && *mark_of(e) >= (uint64_t)n) {
      c->stats.invalidations++;
      cache_remove(c, e);
      dropped++;
    }
  }
  return dropped;
}
