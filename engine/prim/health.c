/* ** health.c -- provider breaker, EWMAs, lag and smooth weighted round-robin (see health.h). */
#include "prim/health.h"

#include <math.h>
#include <string.h>

static const char *const outcome_names[FY_HEALTH_OUTCOME_COUNT] = {
  "ok", "timeout", "refused", "http_5xx", "rate_limited", "bad_response", "wrong_chain",
  "lagging", "tx_error",
};


void fy_health_config_default(fy_health_config_t *cfg) {
  *cfg = (fy_health_config_t){
    .failure_threshold = 3,
    .error_rate_threshold = 0.5,
    .min_samples = 10,
    .cooldown = 1.0,
    .max_cooldown = 30.0,
    .probe_timeout = 10.0,
    .rate_limited_block = 1.0,
    .max_lag = 5,
    .alpha = 0.2,
  };
}


size_t fy_health_sizeof(int n) {
  return sizeof(fy_health_set_t) + (size_t)(n > 0 ? n : 0) * sizeof(fy_health_provider_t);
}


int fy_health_init(fy_health_set_t *s, int n, const fy_health_config_t *cfg) {
  fy_health_config_t c;
  if (cfg) c = *cfg; else fy_health_config_default(&c);
  if (n < 1 || n > FY_HEALTH_MAX || c.failure_threshold < 1 || !(c.cooldown > 0) ||
      !(c.max_cooldown >= c.cooldown) || !(c.alpha > 0 && c.alpha <= 1) ||
      !(c.error_rate_threshold > 0) || c.min_samples < 0 || !(c.probe_timeout > 0) ||
      !(c.rate_limited_block >= 0) || c.max_lag < 0)
    return -1;
  memset(s, 0, fy_health_sizeof(n));
  s->cfg = c;
  s->n = n;
  s->best_head = -1;
  for (int i = 0; i < n; i++) {
    fy_health_provider_t *p = &s->p[i];
    p->weight = 1;
    p->priority = 1;
    p->state = FY_HEALTH_CLOSED;
    p->cooldown = c.cooldown;
    p->blocked_until = -INFINITY;
    p->latency = -1;
    p->head = -1;
  }
  return 0;
}


int fy_health_set_provider(fy_health_set_t *s, int i, int weight, int priority) {
  if (i < 0 || i >= s->n || weight < 0) return -1;
  s->p[i].weight = weight;
  s->p[i].priority = priority;
  return 0;
}


/* Time-driven transitions: OPEN -> HALF_OPEN, and a lost probe frees its slot. */
static void advance(fy_health_set_t *s, fy_health_provider_t *p, double now) {
  if (p->state == FY_HEALTH_OPEN && now >= p->open_until) {
    p->state = FY_HEALTH_HALF_OPEN;
    p->probe_inflight = 0;
  }
  if (p->state == FY_HEALTH_HALF_OPEN && p->probe_inflight &&
      now - p->probe_started >= s->cfg.probe_timeout)
    p->probe_inflight = 0;
}


int64_t fy_health_lag(const fy_health_set_t *s, int i) {
  if (i < 0 || i >= s->n) return 0;
  const fy_health_provider_t *p = &s->p[i];
  if (p->head < 0 || s->best_head < 0 || p->head >= s->best_head) return 0;
  return s->best_head - p->head;
}


static int eligible(fy_health_set_t *s, int i, double now, uint64_t exclude) {
  fy_health_provider_t *p = &s->p[i];
  if ((exclude >> i) & 1 || p->weight <= 0) return 0;
  advance(s, p, now);
  if (now < p->blocked_until || fy_health_lag(s, i) > s->cfg.max_lag) return 0;
  return p->state == FY_HEALTH_CLOSED || (p->state == FY_HEALTH_HALF_OPEN && !p->probe_inflight);
}


int fy_health_pick(fy_health_set_t *s, double now, uint64_t exclude_mask) {
  uint64_t ok = 0;
  int tier = 0, found = 0;
  for (int i = 0; i < s->n; i++) {
    if (!eligible(s, i, now, exclude_mask)) continue;
    ok |= (uint64_t)1 << i;
    if (!found || s->p[i].priority < tier) tier = s->p[i].priority;
    found = 1;
  }
  if (!found) return -1;

  /* nginx ngx_http_upstream_get_peer: everyone gains its weight, the leader pays the total. */
  int best = -1;
  int64_t total = 0;
  for (int i = 0; i < s->n; i++) {
    fy_health_provider_t *p = &s->p[i];
    if (!((ok >> i) & 1) || p->priority != tier) continue;
    p->current += p->weight;
    total += p->weight;
    if (best < 0 || p->current > s->p[best].current) best = i;
  }
  fy_health_provider_t *b = &s->p[best];
  b->current -= total;
  b->picks++;
  if (b->state == FY_HEALTH_HALF_OPEN) {
    b->probe_inflight = 1;
    b->probe_started = now;
  }
  return best;
}


int fy_health_peek(fy_health_set_t *s, double now, uint64_t exclude_mask) {
  int best = -1;
  for (int i = 0; i < s->n; i++) {
    fy_health_provider_t *p = &s->p[i];
    if (!eligible(s, i, now, exclude_mask) || p->state != FY_HEALTH_CLOSED) continue;
    if (best < 0 || p->priority < s->p[best].priority ||
        (p->priority == s->p[best].priority && p->weight > s->p[best].weight))
      best = i;
  }
  return best;
}

double fy_health_retry_in(fy_health_set_t *s, double now, uint64_t exclude_mask) {
  double best = -1;
  for (int i = 0; i < s->n; i++) {
    fy_health_provider_t *p = &s->p[i];
    if ((exclude_mask >> i) & 1 || p->weight <= 0 || fy_health_lag(s, i) > s->cfg.max_lag)
      continue;
    advance(s, p, now);
    double at = p->blocked_until;
    if (p->state == FY_HEALTH_OPEN && p->open_until > at) at = p->open_until;
    if (p->state == FY_HEALTH_HALF_OPEN && p->probe_inflight &&
        p->probe_started + s->cfg.probe_timeout > at)
      at = p->probe_started + s->cfg.probe_timeout;
    double wait = at > now ? at - now : 0;
    if (best < 0 || wait < best) best = wait;
  }
  return best;
}


static void ewma(double *v, double x, double alpha) {
  *v = *v < 0 ? x : *v + alpha * (x - *v);
}


static void trip(fy_health_set_t *s, fy_health_provider_t *p, double now, double cooldown) {
  p->state = FY_HEALTH_OPEN;
  p->cooldown = cooldown > s->cfg.max_cooldown ? s->cfg.max_cooldown : cooldown;
  p->open_until = now + p->cooldown;
  p->probe_inflight = 0;
  p->opened++;
}


int fy_health_report(fy_health_set_t *s, int i, fy_health_outcome_t outcome, double latency_s,
                     double now) {
  if (i < 0 || i >= s->n || (unsigned)outcome >= FY_HEALTH_OUTCOME_COUNT) return -1;
  fy_health_provider_t *p = &s->p[i];
  const fy_health_config_t *c = &s->cfg;
  advance(s, p, now);
  p->reports++;

  switch (outcome) {
  case FY_HEALTH_OK:
  case FY_HEALTH_TX_ERROR:
    if (latency_s >= 0) ewma(&p->latency, latency_s, c->alpha);
    ewma(&p->error_rate, 0, c->alpha);
    p->consecutive_failures = 0;
    p->samples++;
    if (p->state == FY_HEALTH_HALF_OPEN) {
      p->state = FY_HEALTH_CLOSED;
      p->cooldown = c->cooldown;
      p->probe_inflight = 0;
      p->samples = 0;
      p->error_rate = 0;
    }
    return 0;

  case FY_HEALTH_RATE_LIMITED:
    p->rate_limited++;
    if (now + c->rate_limited_block > p->blocked_until) p->blocked_until = now + c->rate_limited_block;
    if (p->state == FY_HEALTH_HALF_OPEN) p->probe_inflight = 0;   /* it says nothing; probe again */
    return 0;

  case FY_HEALTH_WRONG_CHAIN:
    p->failures++;
    ewma(&p->error_rate, 1, c->alpha);
    trip(s, p, now, c->max_cooldown);
    return 0;

  case FY_HEALTH_LAGGING:
    ewma(&p->error_rate, 1, c->alpha);
    p->samples++;
    if (p->state == FY_HEALTH_HALF_OPEN) p->probe_inflight = 0;
    else if (p->state == FY_HEALTH_CLOSED && p->samples >= (uint32_t)c->min_samples &&
             p->error_rate >= c->error_rate_threshold)
      trip(s, p, now, c->cooldown);
    return 0;

  default:   /* TIMEOUT, REFUSED, HTTP_5XX, BAD_RESPONSE */
    p->failures++;
    if (outcome == FY_HEALTH_TIMEOUT && latency_s > 0) ewma(&p->latency, latency_s, c->alpha);
    ewma(&p->error_rate, 1, c->alpha);
    p->consecutive_failures++;
    p->samples++;
    if (p->state == FY_HEALTH_HALF_OPEN)
      trip(s, p, now, p->cooldown * 2);
    else if (p->state == FY_HEALTH_CLOSED &&
             (p->consecutive_failures >= c->failure_threshold ||
              (p->samples >= (uint32_t)c->min_samples && p->error_rate >= c->error_rate_threshold)))
      trip(s, p, now, c->cooldown);
    return 0;
  }
}


int fy_health_set_head(fy_health_set_t *s, int i, int64_t head) {
  if (i < 0 || i >= s->n) return -1;
  int64_t old = s->p[i].head;
  s->p[i].head = head;
  if (head > s->best_head) {
    s->best_head = head;
  } else if (old == s->best_head && head < old) {   /* the leader went back (reorg): recompute */
    s->best_head = -1;
    for (int k = 0; k < s->n; k++)
      if (s->p[k].head > s->best_head) s->best_head = s->p[k].head;
  }
  return 0;
}


int fy_health_block(fy_health_set_t *s, int i, double until) {
  if (i < 0 || i >= s->n) return -1;
  if (until > s->p[i].blocked_until) s->p[i].blocked_until = until;
  return 0;
}


fy_health_state_t fy_health_state(fy_health_set_t *s, int i, double now) {
  if (i < 0 || i >= s->n) return FY_HEALTH_OPEN;
  advance(s, &s->p[i], now);
  return s->p[i].state;
}


double fy_health_score(fy_health_set_t *s, int i, double now) {
  if (i < 0 || i >= s->n) return 0;
  fy_health_provider_t *p = &s->p[i];
  advance(s, p, now);
  if (p->state == FY_HEALTH_OPEN || p->weight <= 0) return 0;
  double score = 1 - p->error_rate;
  if (p->latency >= 0) score *= 1 / (1 + p->latency / 0.5);   /* 0.5 s halves it */
  int64_t lag = fy_health_lag(s, i);
  score *= lag > s->cfg.max_lag ? 0 : 1 - (double)lag / (double)(s->cfg.max_lag + 1);
  if (p->state == FY_HEALTH_HALF_OPEN) score *= 0.5;
  if (now < p->blocked_until) score *= 0.5;
  return score < 0 ? 0 : score > 1 ? 1 : score;
}


const char *fy_health_outcome_name(fy_health_outcome_t o) {
  return (unsigned)o < FY_HEALTH_OUTCOME_COUNT ? outcome_names[o] : "?";
}


int fy_health_outcome_parse(const char *name) {
  for (int i = 0; i < FY_HEALTH_OUTCOME_COUNT; i++)
    if (strcmp(name, outcome_names[i]) == 0) return i;
  return -1;
}


const char *fy_health_state_name(fy_health_state_t st) {
  switch (st) {
  case FY_HEALTH_CLOSED: return "closed";
  case FY_HEALTH_OPEN: return "open";
  case FY_HEALTH_HALF_OPEN: return "half_open";
  }
  return "?";
}
