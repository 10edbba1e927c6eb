/*
** ratelimit.h -- token bucket rate limiter with FIFO reservations and penalty blocks.
**
** Provides: fy_ratelimit_t, a plain-data token bucket (rate tokens/s, capacity `burst`).
**   try_take   admit now or refuse (never waits);
**   reserve    admit now or book the tokens now (the balance may go negative) and tell the
**              caller how long to sleep until they are paid for. Because every waiter books
**              in call order, waiters are served FIFO and a stream of try_take callers cannot
**              starve them (try_take fails while the balance is below n). Admissions in ANY
**              window of length t stay <= rate*t + burst (this is GCRA in bucket form);
**   penalize   refuse everything until a time (HTTP 429 Retry-After).
** Depends on: libc only. Knows nothing of Lua or the clock: every call takes `now`, monotonic
**   seconds, so tests and benchmarks are deterministic. Not thread-safe; loop thread only.
** Backs: ferry.core.ratelimit (ratelimit_lua.c): ratelimit.new{rate=, burst=} ->
**   "ferry.RateLimit" with :try_take(n), :reserve(n), :wait_time(n), :tokens(),
**   :penalize(seconds), :stats(), :close().
*/
#ifndef FY_RATELIMIT_H
#define FY_RATELIMIT_H

#include <stdint.h>

typedef struct fy_ratelimit_stats {
  uint64_t admitted;      /* try_take successes + reservations (admitted now or later) */
  uint64_t rejected;      /* try_take refusals */
  uint64_t waited;        /* reservations that had to wait (> 0 s) */
  double   wait_total;    /* sum of the waits handed out by reserve, seconds */
} fy_ratelimit_stats_t;

typedef struct fy_ratelimit {
  double rate;            /* tokens per second, > 0 */
  double burst;           /* bucket capacity, >= 1 */
  double tokens;          /* balance at `last`; negative = booked by waiters */
  double last;            /* time of the last refill; NaN until first use */
  double blocked_until;   /* penalize(): nothing is admitted before this time */
  fy_ratelimit_stats_t stats;
} fy_ratelimit_t;

/* Set up a full bucket. Returns 0, or -1 (rl untouched) if rate <= 0, burst < 1 or either is
 * not finite. No allocation: nothing to free. */
int fy_ratelimit_init(fy_ratelimit_t *rl, double rate, double burst);

/* Take n tokens now if they are there and no penalty is running: 1 admitted, 0 refused
 * (counted in stats.rejected; the bucket is unchanged). n <= 0 is admitted and takes nothing.
 * n > burst is always refused. */
int fy_ratelimit_try_take(fy_ratelimit_t *rl, double n, double now);

/* Seconds from `now` until n tokens would be available to a reserve/try_take made then
 * (0 if available now; includes any penalty). Does not change the bucket. Returns -1 if
 * n > burst (never satisfiable). */
double fy_ratelimit_wait_time(const fy_ratelimit_t *rl, double n, double now);

/* Book n tokens now and return the seconds the caller must sleep before acting (0 = go now).
 * Waits are FIFO: each reservation's end time is >= the previous one's. Returns -1 without
 * booking if n > burst. */
double fy_ratelimit_reserve(fy_ratelimit_t *rl, double n, double now);

/* Current balance (refilled to `now`; may be negative while waiters hold reservations). */
double fy_ratelimit_tokens(fy_ratelimit_t *rl, double now);

/* Admit nothing before `until` (absolute, same clock as now). Only ever extends a block. The
 * bucket keeps filling (up to burst) meanwhile; reservations made during the block are timed
 * from its end. Reservations handed out before the call keep their times (cannot be revoked). */
void fy_ratelimit_penalize(fy_ratelimit_t *rl, double until);

#endif
