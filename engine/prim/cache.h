/*
** cache.h -- TTL + LRU cache of byte strings (the OpenResty shdict model, in process).
**
** Provides: fy_cache_t, a chained hash map keyed by byte strings whose entries are single
**   allocations (header + key + value inline) that also carry an intrusive doubly linked LRU
**   node and, only when used (cache.c: the fields sit in front of the header), an absolute
**   expiry and either a head generation or a block number:
**   - FY_CACHE_HEAD_BOUND entries ("read at latest") die when fy_cache_new_head() bumps the
**     generation: O(1), checked lazily on get and reclaimed from the LRU tail on set;
**   - entries stored with a block number >= n are dropped by fy_cache_drop_from_block(n)
**     (a reorg at fork point n): O(entries) scan, which is rare and bounded by max_entries.
**   Expired entries go lazily on get; each set reclaims at most a few dead entries from the
**   LRU tail, then force-evicts LRU entries while over max_entries or max_bytes.
**   Accounted size of an entry = FY_CACHE_ENTRY_OVERHEAD + key length + value length.
** Depends on: libc only. Knows nothing of Lua or the clock: calls take `now` (monotonic
**   seconds). Not thread-safe; loop thread only.
** Backs: ferry.core.cache (cache_lua.c): cache.new{max_entries=, max_bytes=} -> "ferry.Cache"
**   with :get, :set, :delete, :new_head, :drop_from_block, :flush, :stats, :close.
*/
#ifndef FY_CACHE_H
#define FY_CACHE_H

#include <stddef.h>
#include <stdint.h>

enum {
  FY_CACHE_HEAD_BOUND = 1,   /* set() flag: entry is invalid once fy_cache_new_head() runs */
};

enum {
  FY_CACHE_OK = 0,
  FY_CACHE_ENOMEM = -1,      /* allocation failed (the old entry for the key is gone) */
  FY_CACHE_ETOOBIG = -2,     /* key longer than FY_CACHE_MAX_KEY, or entry > max_bytes */
};

#define FY_CACHE_MAX_KEY 65535
#define FY_CACHE_EXPIRE_SCAN 3     /* dead tail entries reclaimed per set, at most */

typedef struct fy_cache_entry fy_cache_entry_t;   /* private to cache.c */

typedef struct fy_cache_stats {
  uint64_t hits, misses;
  uint64_t evictions;        /* live entries pushed out by max_entries / max_bytes */
  uint64_t expirations;      /* entries reclaimed because their TTL passed */
  uint64_t invalidations;    /* head-bound entries after new_head, drop_from_block victims */
  size_t   entries;
  size_t   bytes;            /* accounted bytes of the live entries (see above) */
} fy_cache_stats_t;

typedef struct fy_cache {
  fy_cache_entry_t **buckets;    /* NULL until the first set, and after fy_cache_free */
  size_t mask;                   /* bucket count - 1 (a power of two) */
  fy_cache_entry_t *lru_head;    /* most recently used */
  fy_cache_entry_t *lru_tail;    /* least recently used */
  size_t max_entries;            /* 0 = unbounded */
  size_t max_bytes;              /* 0 = unbounded */
  uint64_t generation;           /* bumped by new_head (and drop_from_block) */
  uint64_t seed;                 /* hash seed */
  fy_cache_stats_t stats;
} fy_cache_t;

/* Accounted per-entry overhead in bytes: the header with both optional fields (expiry, mark;
 * 51 on LP64) whether or not an entry uses them, without the allocator's own word. */
extern const size_t FY_CACHE_ENTRY_OVERHEAD;

/* Set up an empty cache; 0 limits mean unbounded. Allocates nothing yet. Always returns 0. */
int fy_cache_init(fy_cache_t *c, size_t max_entries, size_t max_bytes);

/* Free every entry and the table. Idempotent; the cache may be re-initialised afterwards. */
void fy_cache_free(fy_cache_t *c);

/* Look key up at time now. Returns 1 and sets *val, *vlen (borrowed: valid until the next call
 * that mutates the cache) on a hit, which also makes the entry most recently used; returns 0
 * on a miss (absent, expired, or stale head-bound -- the dead entry is freed then). */
int fy_cache_get(fy_cache_t *c, const void *key, size_t klen, double now,
                 const char **val, size_t *vlen);

/* Store a copy of key and val. ttl > 0: expires at now + ttl; ttl <= 0: never.
 * flags: FY_CACHE_HEAD_BOUND or 0. block >= 0: the block the data belongs to, dropped by
 * drop_from_block(n <= block); block < 0: none. Replaces an existing entry (its position
 * becomes most recently used). Returns FY_CACHE_OK, FY_CACHE_ENOMEM or FY_CACHE_ETOOBIG (the
 * old entry for key, if any, is then removed, so a get never returns outdated data). If
 * `forcible` is not NULL it gets the number of live entries force-evicted to make room. */
int fy_cache_set(fy_cache_t *c, const void *key, size_t klen, const void *val, size_t vlen,
                 double ttl, double now, unsigned flags, int64_t block, int *forcible);

/* Remove key. Returns 1 if it was there (dead or alive), 0 if not. */
int fy_cache_delete(fy_cache_t *c, const void *key, size_t klen);

/* A new chain head: every FY_CACHE_HEAD_BOUND entry becomes invalid. O(1). */
void fy_cache_new_head(fy_cache_t *c);

/* A reorg from block n: drop every entry stored with block >= n, and (as a reorg brings a new
 * head) every head-bound entry. Returns the number of entries dropped by block. O(entries). */
size_t fy_cache_drop_from_block(fy_cache_t *c, int64_t n);

/* Remove every entry (stats counters other than entries/bytes are kept). Keeps the table. */
void fy_cache_flush(fy_cache_t *c);

#endif
