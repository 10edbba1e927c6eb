/* ** ratelimit.c -- token bucket with FIFO reservations (see ratelimit.h). */
#include "prim/ratelimit.h"

#include <math.h>


int fy_ratelimit_init(fy_ratelimit_t *rl, double rate, double burst) {
  if (!(isfinite(rate) && rate > 0) || !(isfinite(burst) && burst >= 1)) return -1;
  rl->rate = rate;
  rl->burst = burst;
  rl->tokens = burst;
  rl->last = NAN;
  rl->blocked_until = -INFINITY;
  rl->stats = (fy_ratelimit_stats_t){0};
  return 0;
}


/* Balance at `now` without touching the bucket. A clock that goes backwards adds nothing. */
static double peek_tokens(const fy_ratelimit_t *rl, double now) {
  if (isnan(rl->last) || now <= rl->last) return rl->tokens;
  double t = rl->tokens + (now - rl->last) * rl->rate;
  return t > rl->burst ? rl->burst : t;
}


static void refill(fy_ratelimit_t *rl, double now) {
  if (isnan(rl->last) || now > rl->last) {
    rl->tokens = peek_tokens(rl, now);
    rl->last = now;
  }
}


int fy_ratelimit_try_take(fy_ratelimit_t *rl, double n, double now) {
  if (n <= 0) { rl->stats.admitted++; return 1; }
  refill(rl, now);
  if (now < rl->blocked_until || n > rl->burst || rl->tokens < n) {
    rl->stats.rejected++;
    return 0;
  }
  rl->tokens -= n;
  rl->stats.admitted++;
  return 1;
}


double fy_ratelimit_wait_time(const fy_ratelimit_t *rl, double n, double now) {
  if (n > rl->burst) return -1;
  /* During a penalty nothing is admitted and the bucket keeps filling (up to burst), so the
   * earliest moment to look at is T = max(now, blocked_until). */
  double t = now < rl->blocked_until ? rl->blocked_until : now;
  double tokens = peek_tokens(rl, t);
  return (t - now) + (tokens >= n ? 0 : (n - tokens) / rl->rate);
}


double fy_ratelimit_reserve(fy_ratelimit_t *rl, double n, double now) {
  if (n > rl->burst) return -1;
  if (n < 0) n = 0;
  /* Refill to T = max(now, blocked_until): `last` may move into the future, after which
   * earlier `now`s add nothing (peek_tokens), which is exactly "frozen until the block ends". */
  double t = now < rl->blocked_until ? rl->blocked_until : now;
  refill(rl, t);
  double wait = (t - now) + (rl->tokens >= n ? 0 : (n - rl->tokens) / rl->rate);
  rl->tokens -= n;
  rl->stats.admitted++;
  if (wait > 0) {
    rl->stats.waited++;
    rl->stats.wait_total += wait;
  }
  return wait;
}


double fy_ratelimit_tokens(fy_ratelimit_t *rl, double now) {
  refill(rl, now);
  return rl->tokens;
}


void fy_ratelimit_penalize(fy_ratelimit_t *rl, double until) {
  if (until > rl->blocked_until) rl->blocked_until = until;
}
