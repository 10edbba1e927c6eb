/* ** ratelimit_lua.c -- Lua binding for ratelimit.c: ferry.core.ratelimit, "ferry.RateLimit". */
#include "core/bind.h"
#include "prim/ratelimit.h"

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#define RL_MT "ferry.RateLimit"

/* The bucket lives inside the userdata (STYLE 3.5); user value 1 is an optional clock function
 * (tests), otherwise the clock is uv_hrtime() in seconds. */
typedef struct l_ratelimit {
  fy_ratelimit_t rl;
  int open;
  int has_clock;
} l_ratelimit_t;


static l_ratelimit_t *check_rl(lua_State *L) {   /* may raise */
  l_ratelimit_t *u = fy_checkudata(L, 1, RL_MT);
  if (!u->open) fy_error(L, "attempt to use a closed " RL_MT);
  return u;
}


static double rl_now(lua_State *L, l_ratelimit_t *u) {
  if (!u->has_clock) return (double)uv_hrtime() / 1e9;
  lua_getiuservalue(L, 1, 1);                     /* [..., clock] */
  lua_call(L, 0, 1);                              /* [..., t] */
  double t = fy_checknumber(L, -1);
  lua_pop(L, 1);
  return t;
}


/* ratelimit.new{rate = per_second, burst = n (default max(1, rate)), clock = fn?} */
static int l_ratelimit_new(lua_State *L) {
  fy_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "rate");
  if (!lua_isnumber(L, -1)) fy_error(L, "ratelimit.new: rate must be a number > 0");
  double rate = lua_tonumber(L, -1);
  lua_getfield(L, 1, "burst");
  double burst = fy_optnumber(L, -1, rate < 1 ? 1 : rate);
  lua_pop(L, 2);
  int has_clock = lua_getfield(L, 1, "clock") != LUA_TNIL;   /* [opts, clock] */
  if (has_clock) fy_checktype(L, -1, LUA_TFUNCTION);
  l_ratelimit_t *u = lua_newuserdatauv(L, sizeof *u, 1);     /* [opts, clock, u] */
  u->open = 0;
  if (fy_ratelimit_init(&u->rl, rate, burst) != 0)
    fy_error(L, "ratelimit.new: need rate > 0 and burst >= 1 (got %f, %f)", rate, burst);
  u->open = 1;
  u->has_clock = has_clock;
  lua_insert(L, -2);                                         /* [opts, u, clock] */
  lua_setiuservalue(L, -2, 1);                               /* [opts, u] */
  luaL_setmetatable(L, RL_MT);
  return 1;
}


/* rl:try_take(n = 1) -> boolean */
static int l_ratelimit_try_take(lua_State *L) {
  l_ratelimit_t *u = check_rl(L);
  double n = fy_optnumber(L, 2, 1);
  lua_pushboolean(L, fy_ratelimit_try_take(&u->rl, n, rl_now(L, u)));
  return 1;
}


static double check_n(lua_State *L, l_ratelimit_t *u) {
  double n = fy_optnumber(L, 2, 1);
  if (n > u->rl.burst) fy_argerror_msg(L, 2, "more tokens than the burst: can never be admitted");
  return n;
}


/* rl:reserve(n = 1) -> seconds to sleep before acting (0: go now). The tokens are booked. */
static int l_ratelimit_reserve(lua_State *L) {
  l_ratelimit_t *u = check_rl(L);
  double n = check_n(L, u);
  lua_pushnumber(L, fy_ratelimit_reserve(&u->rl, n, rl_now(L, u)));
  return 1;
}


/* rl:wait_time(n = 1) -> seconds until n tokens would be there (nothing booked) */
static int l_ratelimit_wait_time(lua_State *L) {
  l_ratelimit_t *u = check_rl(L);
  double n = check_n(L, u);
  lua_pushnumber(L, fy_ratelimit_wait_time(&u->rl, n, rl_now(L, u)));
  return 1;
}


/* rl:tokens() -> balance now (negative while waiters hold reservations) */
static int l_ratelimit_tokens(lua_State *L) {
  l_ratelimit_t *u = check_rl(L);
  lua_pushnumber(L, fy_ratelimit_tokens(&u->rl, rl_now(L, u)));
  return 1;
}


/* rl:penalize(seconds): admit nothing for that long (Retry-After) */
static int l_ratelimit_penalize(lua_State *L) {
  l_ratelimit_t *u = check_rl(L);
  double s = fy_checknumber(L, 2);
  fy_ratelimit_penalize(&u->rl, rl_now(L, u) + s);
  return 0;
}


/* rl:stats() -> {admitted, rejected, waited, wait_total, tokens, rate, burst, blocked_for} */
static int l_ratelimit_stats(lua_State *L) {
  l_ratelimit_t *u = check_rl(L);
  double now = rl_now(L, u);
  const fy_ratelimit_stats_t *s = &u->rl.stats;
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, (lua_Integer)s->admitted);
  lua_setfield(L, -2, "admitted");
  lua_pushinteger(L, (lua_Integer)s->rejected);
  lua_setfield(L, -2, "rejected");
  lua_pushinteger(L, (lua_Integer)s->waited);
  lua_setfield(L, -2, "waited");
  lua_pushnumber(L, s->wait_total);
  lua_setfield(L, -2, "wait_total");
  lua_pushnumber(L, fy_ratelimit_tokens(&u->rl, now));
  lua_setfield(L, -2, "tokens");
  lua_pushnumber(L, u->rl.rate);
  lua_setfield(L, -2, "rate");
  lua_pushnumber(L, u->rl.burst);
  lua_setfield(L, -2, "burst");
  lua_pushnumber(L, u->rl.blocked_until > now ? u->rl.blocked_until - now : 0);
  lua_setfield(L, -2, "blocked_for");
  return 1;
}


/* __gc, __close and :close(): nothing on the heap, so only marks it closed; idempotent. */
static int l_ratelimit_close(lua_State *L) {
  l_ratelimit_t *u = fy_checkudata(L, 1, RL_MT);
  u->open = 0;
  return 0;
}


static int l_ratelimit_tostring(lua_State *L) {
  l_ratelimit_t *u = fy_checkudata(L, 1, RL_MT);
  if (u->open)
    lua_pushfstring(L, RL_MT " (%f/s, burst %f): %p", u->rl.rate, u->rl.burst, (void *)u);
  else
    lua_pushfstring(L, RL_MT " (closed): %p", (void *)u);
  return 1;
}


static const luaL_Reg rl_methods[] = {
  {"try_take", l_ratelimit_try_take}, {"reserve", l_ratelimit_reserve},
  {"wait_time", l_ratelimit_wait_time}, {"tokens", l_ratelimit_tokens},
  {"penalize", l_ratelimit_penalize}, {"stats", l_ratelimit_stats},
  {"close", l_ratelimit_close}, {NULL, NULL}};

static const luaL_Reg rl_meta[] = {
  {"__gc", l_ratelimit_close}, {"__close", l_ratelimit_close},
  {"__tostring", l_ratelimit_tostring}, {NULL, NULL}};


int luaopen_ferry_core_ratelimit(lua_State *L) {
  luaL_newmetatable(L, RL_MT);                    /* [mt] */
  luaL_setfuncs(L, rl_meta, 0);
  luaL_newlib(L, rl_methods);                     /* [mt, methods] */
  lua_setfield(L, -2, "__index");                 /* [mt] */
  lua_pop(L, 1);
  lua_newtable(L);                                /* [M] */
  lua_pushcfunction(L, l_ratelimit_new);
  lua_setfield(L, -2, "new");
  return 1;
}
