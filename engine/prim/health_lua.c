/* ** health_lua.c -- Lua binding for health.c: ferry.core.health, userdata "ferry.Health". */
#include "core/bind.h"
#include "prim/health.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdalign.h>
#include <uv.h>

#define HEALTH_MT "ferry.Health"

/* One userdata block: this header, then the fy_health_set_t (flexible array of providers).
 * User value 1: array of provider names; user value 2: optional clock function (tests),
 * otherwise the clock is uv_hrtime() in seconds. */
typedef struct l_health {
  fy_health_set_t *set;      /* points just past the header, inside the same block */
  int open;
  int has_clock;
} l_health_t;

#define HDR_SIZE ((sizeof(l_health_t) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))


static l_health_t *check_health(lua_State *L) {   /* may raise */
  l_health_t *u = fy_checkudata(L, 1, HEALTH_MT);
  if (!u->open) fy_error(L, "attempt to use a closed " HEALTH_MT);
  return u;
}


static double health_now(lua_State *L, l_health_t *u) {
  if (!u->has_clock) return (double)uv_hrtime() / 1e9;
  lua_getiuservalue(L, 1, 2);                     /* [..., clock] */
  lua_call(L, 0, 1);                              /* [..., t] */
  double t = fy_checknumber(L, -1);
  lua_pop(L, 1);
  return t;
}


/* 1-based provider index at arg -> 0-based. may raise */
static int check_index(lua_State *L, l_health_t *u, int arg) {
  lua_Integer i = fy_checkinteger(L, arg);
  fy_argcheck(L, i >= 1 && i <= u->set->n, arg, "no such provider");
  return (int)i - 1;
}


static double num_field(lua_State *L, int t, const char *k, double dflt) {
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1) && !lua_isnumber(L, -1))
    fy_error(L, "health.new: %s must be a number", k);
  double v = lua_isnil(L, -1) ? dflt : lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}


/* health.new{providers = {{name=, weight=1, priority=1}, ...}, failure_threshold=3,
 * error_rate_threshold=0.5, min_samples=10, cooldown=1, max_cooldown=30, probe_timeout=10,
 * rate_limited_block=1, max_lag=5, alpha=0.2, clock=fn?} -> ferry.Health */
static int l_health_new(lua_State *L) {
  fy_checktype(L, 1, LUA_TTABLE);
  fy_health_config_t c;
  fy_health_config_default(&c);
  c.failure_threshold = (int)num_field(L, 1, "failure_threshold", c.failure_threshold);
  c.error_rate_threshold = num_field(L, 1, "error_rate_threshold", c.error_rate_threshold);
  c.min_samples = (int)num_field(L, 1, "min_samples", c.min_samples);
  c.cooldown = num_field(L, 1, "cooldown", c.cooldown);
  c.max_cooldown = num_field(L, 1, "max_cooldown", c.max_cooldown);
  c.probe_timeout = num_field(L, 1, "probe_timeout", c.probe_timeout);
  c.rate_limited_block = num_field(L, 1, "rate_limited_block", c.rate_limited_block);
  c.max_lag = (int64_t)num_field(L, 1, "max_lag", (double)c.max_lag);
  c.alpha = num_field(L, 1, "alpha", c.alpha);

  if (lua_getfield(L, 1, "providers") != LUA_TTABLE)            /* [opts, providers] */
    fy_error(L, "health.new: providers must be a list of {name=, weight=, priority=}");
  int n = (int)luaL_len(L, 2);
  if (n < 1 || n > FY_HEALTH_MAX)
    fy_error(L, "health.new: between 1 and %d providers, got %d", FY_HEALTH_MAX, n);

  l_health_t *u = lua_newuserdatauv(L, HDR_SIZE + fy_health_sizeof(n), 2);  /* [opts, ps, u] */
  u->open = 0;
  u->set = (fy_health_set_t *)((char *)u + HDR_SIZE);
  if (fy_health_init(u->set, n, &c) != 0)
    fy_error(L, "health.new: invalid configuration");
  luaL_setmetatable(L, HEALTH_MT);
  lua_createtable(L, n, 0);                                      /* [opts, ps, u, names] */
  for (int i = 1; i <= n; i++) {
    if (lua_geti(L, 2, i) != LUA_TTABLE)                         /* [.., names, p] */
      fy_error(L, "health.new: providers[%d] must be a table", i);
    if (lua_getfield(L, -1, "name") == LUA_TNIL) {               /* [.., names, p, name] */
      lua_pop(L, 1);
      lua_pushfstring(L, "provider%d", i);
    } else if (!lua_isstring(L, -1)) {
      fy_error(L, "health.new: providers[%d].name must be a string", i);
    }
    lua_rawseti(L, -3, i);                                       /* [.., names, p] */
    double w = num_field(L, -1, "weight", 1);
    double prio = num_field(L, -1, "priority", 1);
    if (w < 0 || w > 1e6 || fy_health_set_provider(u->set, i - 1, (int)w, (int)prio) != 0)
      fy_error(L, "health.new: providers[%d].weight must be in [0, 1e6]", i);
    lua_pop(L, 1);                                               /* [.., names] */
  }
  lua_setiuservalue(L, -2, 1);                                   /* [opts, ps, u] */
  u->has_clock = lua_getfield(L, 1, "clock") != LUA_TNIL;        /* [opts, ps, u, clock] */
  if (u->has_clock) fy_checktype(L, -1, LUA_TFUNCTION);
  lua_setiuservalue(L, -2, 2);                                   /* [opts, ps, u] */
  u->open = 1;
  return 1;
}


/* Exclusion from a table: {[i] = true, ...} and/or a list {i, j, ...} (1-based). */
static uint64_t exclude_mask(lua_State *L, int arg, int n) {
  if (lua_isnoneornil(L, arg)) return 0;
  fy_checktype(L, arg, LUA_TTABLE);
  uint64_t mask = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {                                     /* [.., k, v] */
    lua_Integer i = 0;
    if (lua_isboolean(L, -1)) {
      if (lua_toboolean(L, -1) && lua_isinteger(L, -2)) i = lua_tointeger(L, -2);
    } else if (lua_isinteger(L, -1)) {
      i = lua_tointeger(L, -1);
    }
    if (i >= 1 && i <= n) mask |= (uint64_t)1 << (i - 1);
    lua_pop(L, 1);
  }
  return mask;
}


/* h:pick(exclude?) -> index | nil, seconds_until_one_may_be_free (nil: waiting won't help) */
static int l_health_pick(lua_State *L) {
  l_health_t *u = check_health(L);
  uint64_t mask = exclude_mask(L, 2, u->set->n);
  double now = health_now(L, u);
  int i = fy_health_pick(u->set, now, mask);
  if (i >= 0) {
    lua_pushinteger(L, i + 1);
    return 1;
  }
  double wait = fy_health_retry_in(u->set, now, mask);
  lua_pushnil(L);
  if (wait >= 0) lua_pushnumber(L, wait); else lua_pushnil(L);
  return 2;
}


/* h:report(i, outcome, latency_s?, retry_after_s?) with outcome one of "ok", "timeout",
 * "refused", "http_5xx", "rate_limited", "bad_response", "wrong_chain", "lagging",
 * "tx_error". retry_after_s blocks the provider that long (with rate_limited). */
static int l_health_report(lua_State *L) {
  static const char *const names[] = {
    "ok", "timeout", "refused", "http_5xx", "rate_limited", "bad_response", "wrong_chain",
    "lagging", "tx_error", NULL};
  l_health_t *u = check_health(L);
  int i = check_index(L, u, 2);
  int outcome = fy_checkoption(L, 3, NULL, names);
  double latency = fy_optnumber(L, 4, -1);
  double now = health_now(L, u);
  fy_health_report(u->set, i, (fy_health_outcome_t)outcome, latency, now);
  if (!lua_isnoneornil(L, 5)) fy_health_block(u->set, i, now + fy_checknumber(L, 5));
  return 0;
}


/* h:set_head(i, block_number) */
static int l_health_set_head(lua_State *L) {
  l_health_t *u = check_health(L);
  int i = check_index(L, u, 2);
  fy_health_set_head(u->set, i, fy_checkinteger(L, 3));
  return 0;
}


/* h:peek(exclude?) -> index | nil: the provider to pin to, taking nothing (fy_health_peek) */
static int l_health_peek(lua_State *L) {
  l_health_t *u = check_health(L);
  uint64_t mask = exclude_mask(L, 2, u->set->n);
  int i = fy_health_peek(u->set, health_now(L, u), mask);
  if (i < 0) return 0;
  lua_pushinteger(L, i + 1);
  return 1;
}

/* h:retry_in(exclude?) -> seconds until a provider may be picked (0: now), nil if never;
 * takes nothing, unlike pick */
static int l_health_retry_in(lua_State *L) {
  l_health_t *u = check_health(L);
  uint64_t mask = exclude_mask(L, 2, u->set->n);
  double wait = fy_health_retry_in(u->set, health_now(L, u), mask);
  if (wait < 0) return 0;
  lua_pushnumber(L, wait);
  return 1;
}

/* h:block(i, seconds): not picked for that long (Retry-After) */
static int l_health_block(lua_State *L) {
  l_health_t *u = check_health(L);
  int i = check_index(L, u, 2);
  double s = fy_checknumber(L, 3);
  fy_health_block(u->set, i, health_now(L, u) + s);
  return 0;
}


static void push_provider(lua_State *L, l_health_t *u, int i, double now) {
  const fy_health_provider_t *p = &u->set->p[i];
  fy_health_state_t st = fy_health_state(u->set, i, now);
  lua_createtable(L, 0, 16);
  lua_getiuservalue(L, 1, 1);
  lua_rawgeti(L, -1, i + 1);
  lua_setfield(L, -3, "name");
  lua_pop(L, 1);
  lua_pushstring(L, fy_health_state_name(st));
  lua_setfield(L, -2, "state");
  lua_pushnumber(L, fy_health_score(u->set, i, now));
  lua_setfield(L, -2, "score");
  if (p->latency >= 0) {
    lua_pushnumber(L, p->latency * 1000);
    lua_setfield(L, -2, "latency_ms");
  }
  lua_pushnumber(L, p->error_rate);
  lua_setfield(L, -2, "error_rate");
  lua_pushinteger(L, fy_health_lag(u->set, i));
  lua_setfield(L, -2, "lag");
  if (p->head >= 0) {
    lua_pushinteger(L, p->head);
    lua_setfield(L, -2, "head");
  }
  lua_pushinteger(L, p->consecutive_failures);
  lua_setfield(L, -2, "failures");
  lua_pushinteger(L, p->weight);
  lua_setfield(L, -2, "weight");
  lua_pushinteger(L, p->priority);
  lua_setfield(L, -2, "priority");
  lua_pushnumber(L, p->blocked_until > now ? p->blocked_until - now : 0);
  lua_setfield(L, -2, "blocked_for");
  if (st == FY_HEALTH_OPEN) {
    lua_pushnumber(L, p->open_until - now);
    lua_setfield(L, -2, "open_for");
  }
  lua_pushinteger(L, (lua_Integer)p->picks);
  lua_setfield(L, -2, "picks");
  lua_pushinteger(L, (lua_Integer)p->reports);
  lua_setfield(L, -2, "reports");
  lua_pushinteger(L, (lua_Integer)p->failures);
  lua_setfield(L, -2, "failures_total");
  lua_pushinteger(L, (lua_Integer)p->rate_limited);
  lua_setfield(L, -2, "rate_limited");
  lua_pushinteger(L, (lua_Integer)p->opened);
  lua_setfield(L, -2, "opened");
}


/* h:status() -> {{name, state = "closed"|"open"|"half_open", score, latency_ms, error_rate,
 * lag, head, failures, weight, priority, blocked_for, open_for, picks, reports,
 * failures_total, rate_limited, opened}, ...} */
static int l_health_status(lua_State *L) {
  l_health_t *u = check_health(L);
  double now = health_now(L, u);
  lua_createtable(L, u->set->n, 0);
  for (int i = 0; i < u->set->n; i++) {
    push_provider(L, u, i, now);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}


/* h:state(i) -> "closed" | "open" | "half_open" */
static int l_health_state(lua_State *L) {
  l_health_t *u = check_health(L);
  int i = check_index(L, u, 2);
  lua_pushstring(L, fy_health_state_name(fy_health_state(u->set, i, health_now(L, u))));
  return 1;
}


/* h:name(i) -> the provider's name */
static int l_health_name(lua_State *L) {
  l_health_t *u = check_health(L);
  int i = check_index(L, u, 2);
  lua_getiuservalue(L, 1, 1);
  lua_rawgeti(L, -1, i + 1);
  return 1;
}


/* __gc, __close and :close(): no heap of its own; marks it closed. Idempotent. */
static int l_health_close(lua_State *L) {
  l_health_t *u = fy_checkudata(L, 1, HEALTH_MT);
  u->open = 0;
  return 0;
}


static int l_health_len(lua_State *L) {
  lua_pushinteger(L, check_health(L)->set->n);
  return 1;
}


static int l_health_tostring(lua_State *L) {
  l_health_t *u = fy_checkudata(L, 1, HEALTH_MT);
  if (u->open)
    lua_pushfstring(L, HEALTH_MT " (%d providers): %p", u->set->n, (void *)u);
  else
    lua_pushfstring(L, HEALTH_MT " (closed): %p", (void *)u);
  return 1;
}


static const luaL_Reg health_methods[] = {
  {"pick", l_health_pick}, {"peek", l_health_peek}, {"retry_in", l_health_retry_in}, {"report", l_health_report}, {"set_head", l_health_set_head},
  {"block", l_health_block}, {"status", l_health_status}, {"state", l_health_state},
  {"name", l_health_name}, {"close", l_health_close}, {NULL, NULL}};

static const luaL_Reg health_meta[] = {
  {"__gc", l_health_close}, {"__close", l_health_close}, {"__len", l_health_len},
  {"__tostring", l_health_tostring}, {NULL, NULL}};


int luaopen_ferry_core_health(lua_State *L) {
  luaL_newmetatable(L, HEALTH_MT);                /* [mt] */
  luaL_setfuncs(L, health_meta, 0);
  luaL_newlib(L, health_methods);                 /* [mt, methods] */
  lua_setfield(L, -2, "__index");                 /* [mt] */
  lua_pop(L, 1);
  lua_newtable(L);                                /* [M] */
  lua_pushcfunction(L, l_health_new);
  lua_setfield(L, -2, "new");
  return 1;
}
