/*
** health.h -- provider health and selection: the deterministic core of the provider pool.
**
** Provides: fy_health_set_t, a fixed set of up to FY_HEALTH_MAX providers, each with
**   a latency EWMA, an error-rate EWMA, head lag against the best known head, a count of
**   consecutive failures, a retry_after block (HTTP 429) and a circuit breaker:
**     CLOSED --(failure_threshold consecutive hard failures, or error EWMA >= error_rate_threshold
**              after min_samples reports, or one WRONG_CHAIN)--> OPEN
**     OPEN   --(cooldown elapsed; checked lazily)--> HALF_OPEN: exactly one probe may be picked
**     HALF_OPEN --probe OK--> CLOSED (cooldown back to its base)
**     HALF_OPEN --probe hard failure--> OPEN for twice the previous cooldown, capped
**   and a selector: smooth weighted round-robin (nginx's) over the eligible providers of the
**   best (lowest number) priority tier that has one.
**   Outcomes: OK and TX_ERROR (nonce too low, revert, "already known": they describe the tx,
**   not the provider) count as successes. TIMEOUT, REFUSED, HTTP_5XX, BAD_RESPONSE are hard
**   failures. WRONG_CHAIN opens the breaker at once for max_cooldown. RATE_LIMITED blocks the
**   provider (rate_limited_block, or use fy_health_block with the Retry-After) and is not a
**   failure. LAGGING raises the error rate but not the consecutive-failure count.
** Depends on: libc only. No Lua, no clock: calls take `now` (monotonic seconds). No heap: the
**   set is one block of fy_health_sizeof(n) bytes owned by the caller. Loop thread only.
** Backs: ferry.core.health (health_lua.c): health.new{providers = {{name=, weight=,
**   priority=}...}, ...} -> "ferry.Health" with :pick, :report, :set_head, :block, :status.
*/
#ifndef FY_HEALTH_H
#define FY_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#define FY_HEALTH_MAX 64        /* exclude masks are 64-bit */

typedef enum fy_health_outcome {
  FY_HEALTH_OK,
  FY_HEALTH_TIMEOUT,
  FY_HEALTH_REFUSED,
  FY_HEALTH_HTTP_5XX,
  FY_HEALTH_RATE_LIMITED,
  FY_HEALTH_BAD_RESPONSE,
  FY_HEALTH_WRONG_CHAIN,
  FY_HEALTH_LAGGING,
  FY_HEALTH_TX_ERROR,
  FY_HEALTH_OUTCOME_COUNT
} fy_health_outcome_t;

typedef enum fy_health_state {
  FY_HEALTH_CLOSED,
  FY_HEALTH_OPEN,
  FY_HEALTH_HALF_OPEN
} fy_health_state_t;

typedef struct fy_health_config {
  int failure_threshold;        /* 3: consecutive hard failures that open the breaker */
  double error_rate_threshold;  /* 0.5: error EWMA that opens it ... */
  int min_samples;              /* 10: ... once this many reports came in since it closed */
  double cooldown;              /* 1 s: first open period */
  double max_cooldown;          /* 30 s: cap; each failed probe doubles the period */
  double probe_timeout;         /* 10 s: a half-open probe never reported frees its slot */
  double rate_limited_block;    /* 1 s: block after RATE_LIMITED without a Retry-After */
  int64_t max_lag;              /* 5 blocks behind the best head and it is not picked */
  double alpha;                 /* 0.2: EWMA weight of the newest sample */
} fy_health_config_t;

typedef struct fy_health_provider {
  int weight;                   /* >= 0; 0 = never picked */
  int priority;                 /* lower is preferred */
  int64_t current;              /* smooth WRR state */
  fy_health_state_t state;
  int consecutive_failures;
  int probe_inflight;           /* HALF_OPEN: the one probe has been handed out */
  uint32_t samples;             /* reports since the breaker last closed */
  double cooldown;              /* length of the current/next open period */
  double open_until;
  double probe_started;
  double blocked_until;
  double latency;               /* EWMA seconds; < 0 until the first sample */
  double error_rate;            /* EWMA in [0, 1] */
  int64_t head;                 /* < 0 unknown */
  uint64_t picks, reports, failures, rate_limited, opened;
} fy_health_provider_t;

typedef struct fy_health_set {
  fy_health_config_t cfg;
  int n;
  int64_t best_head;            /* < 0 unknown */
  fy_health_provider_t p[];     /* n of them */
} fy_health_set_t;

/* Fill cfg with the defaults above. */
void fy_health_config_default(fy_health_config_t *cfg);

/* Bytes to allocate for a set of n providers. */
size_t fy_health_sizeof(int n);

/* Set up n providers (weight 1, priority 1, closed, no samples) in s, which must hold
 * fy_health_sizeof(n) bytes. cfg NULL = defaults. Returns 0, or -1 if n is not in
 * [1, FY_HEALTH_MAX] or cfg has a non-positive threshold, cooldown or alpha outside (0, 1]. */
int fy_health_init(fy_health_set_t *s, int n, const fy_health_config_t *cfg);

/* Set provider i's weight (>= 0) and priority. Returns 0, or -1 on a bad index or weight. */
int fy_health_set_provider(fy_health_set_t *s, int i, int weight, int priority);

/* Pick a provider for a request at now: smooth WRR over the eligible providers of the best
 * priority tier. Eligible: bit i of exclude_mask clear, weight > 0, not blocked, lag <= max_lag,
 * and breaker CLOSED or HALF_OPEN with its probe slot free (picking takes the slot).
 * Returns the index, or -1 if none is eligible. */
int fy_health_pick(fy_health_set_t *s, double now, uint64_t exclude_mask);

/* The provider a caller would pin to (best tier, then weight) among the usable CLOSED ones,
 * without picking it: no round-robin turn and no half-open probe is taken. -1 if none. */
int fy_health_peek(fy_health_set_t *s, double now, uint64_t exclude_mask);

/* Seconds from now until some provider outside exclude_mask may become eligible through time
 * alone (breaker cooldown, block, probe timeout): 0 if one is eligible now, -1 if waiting
 * cannot help (all excluded, weight 0 or lagging). */
double fy_health_retry_in(fy_health_set_t *s, double now, uint64_t exclude_mask);

/* Record the result of a request to provider i that took latency_s seconds (< 0: unknown).
 * Returns 0, or -1 on a bad index or outcome. */
int fy_health_report(fy_health_set_t *s, int i, fy_health_outcome_t outcome, double latency_s,
                     double now);

/* Provider i saw head block number `head`; updates the best head and so every lag. */
int fy_health_set_head(fy_health_set_t *s, int i, int64_t head);

/* Do not pick provider i before `until` (absolute; only ever extends). For Retry-After. */
int fy_health_block(fy_health_set_t *s, int i, double until);

/* Breaker state at now (moves OPEN to HALF_OPEN when the cooldown is over). */
fy_health_state_t fy_health_state(fy_health_set_t *s, int i, double now);

/* Blocks behind the best known head (0 if either is unknown). */
int64_t fy_health_lag(const fy_health_set_t *s, int i);

/* Display score in [0, 1]: 0 when open; falls with error rate, latency, lag, blocks. */
double fy_health_score(fy_health_set_t *s, int i, double now);

/* Stable lowercase names ("ok", "timeout", ..., "closed", "open", "half_open"), and back:
 * fy_health_outcome_parse returns -1 for an unknown name. */
const char *fy_health_outcome_name(fy_health_outcome_t o);
int fy_health_outcome_parse(const char *name);
const char *fy_health_state_name(fy_health_state_t st);

#endif
