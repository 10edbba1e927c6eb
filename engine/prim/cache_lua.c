/* ** cache_lua.c -- Lua binding for cache.c: module ferry.core.cache, userdata "ferry.Cache". */
#include "core/bind.h"
#include "prim/cache.h"

#include <lauxlib.h>
#include <lua.h>
#include <time.h>

#define CACHE_MT "ferry.Cache"

/* The cache lives inside the userdata (STYLE 3.5); user value 1 is an optional clock
 * function (tests). Otherwise the clock is CLOCK_MONOTONIC_COARSE: the same monotonic clock
 * as uv_hrtime() at tick resolution (1-4 ms), which is plenty for TTLs and costs a few ns
 * instead of ~50 (uv_hrtime under kvm-clock), half of a get from Lua otherwise. */
typedef struct l_cache {
  fy_cache_t c;
  int open;
  int has_clock;
} l_cache_t;


/* Methods carry the metatable as upvalue 1: comparing it is cheaper than luaL_checkudata's
 * registry lookup by name, and get/set are hot. may raise */
static l_cache_t *check_cache(lua_State *L) {
  l_cache_t *u = lua_touserdata(L, 1);
  if (u && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (!same) u = NULL;
  } else {
    u = NULL;
  }
  if (!u) u = fy_checkudata(L, 1, CACHE_MT);          /* raises the standard message */
  if (!u->open) fy_error(L, "attempt to use a closed " CACHE_MT);
  return u;
}


static double cache_now(lua_State *L, l_cache_t *u) {
  if (!u->has_clock) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
  }
  lua_getiuservalue(L, 1, 1);                           /* [..., clock] */
  lua_call(L, 0, 1);                                    /* [..., t] */
  double t = fy_checknumber(L, -1);
  lua_pop(L, 1);
  return t;
}


static size_t opt_size_field(lua_State *L, int idx, const char *name) {
  lua_getfield(L, idx, name);
  lua_Integer v = fy_optinteger(L, -1, 0);
  lua_pop(L, 1);
  if (v < 0) fy_error(L, "cache.new: %s must be >= 0", name);
  return (size_t)v;
}


/* cache.new{max_entries=, max_bytes=, clock=} -> ferry.Cache. 0 or absent = unbounded. */
static int l_cache_new(lua_State *L) {
  size_t max_entries = 0, max_bytes = 0;
  int has_clock = 0;
  if (!lua_isnoneornil(L, 1)) {
    fy_checktype(L, 1, LUA_TTABLE);
    max_entries = opt_size_field(L, 1, "max_entries");
    max_bytes = opt_size_field(L, 1, "max_bytes");
    has_clock = lua_getfield(L, 1, "clock") != LUA_TNIL;   /* [opts, clock] */
    if (has_clock) fy_checktype(L, -1, LUA_TFUNCTION);
  } else {
    lua_pushnil(L);
  }
  l_cache_t *u = lua_newuserdatauv(L, sizeof *u, 1);     /* [opts, clock, u] */
  u->open = 0;
  fy_cache_init(&u->c, max_entries, max_bytes);
  u->open = 1;
  u->has_clock = has_clock;
  lua_insert(L, -2);                                     /* [opts, u, clock] */
  lua_setiuservalue(L, -2, 1);                           /* [opts, u] */
  luaL_setmetatable(L, CACHE_MT);
  return 1;
}


/* c:get(key) -> value | nil */
static int l_cache_get(lua_State *L) {
  l_cache_t *u = check_cache(L);
  size_t klen, vlen;
  const char *key = fy_checklstring(L, 2, &klen), *val;
  if (fy_cache_get(&u->c, key, klen, cache_now(L, u), &val, &vlen))
    lua_pushlstring(L, val, vlen);
  else
    lua_pushnil(L);
  return 1;
}


/* c:set(key, value, ttl_s?, {head_bound = bool, block = n}?) -> true [, nil, forcible]
 * | nil, "too_large" | nil, "no_memory". ttl nil or <= 0: never expires. */
static int l_cache_set(lua_State *L) {
  l_cache_t *u = check_cache(L);
  size_t klen, vlen;
  const char *key = fy_checklstring(L, 2, &klen);
  const char *val = fy_checklstring(L, 3, &vlen);
  double ttl = fy_optnumber(L, 4, 0);
  unsigned flags = 0;
  lua_Integer block = -1;
  if (!lua_isnoneornil(L, 5)) {
    fy_checktype(L, 5, LUA_TTABLE);
    if (lua_getfield(L, 5, "head_bound") != LUA_TNIL && lua_toboolean(L, -1))
      flags |= FY_CACHE_HEAD_BOUND;
    if (lua_getfield(L, 5, "block") != LUA_TNIL) {
      int isint;
      block = lua_tointegerx(L, -1, &isint);
      if (!isint || block < 0) fy_argerror_msg(L, 5, "block must be an integer >= 0");
    }
    lua_pop(L, 2);
  }
  int forcible = 0;
  int rc = fy_cache_set(&u->c, key, klen, val, vlen, ttl, cache_now(L, u), flags, block,
                        &forcible);
  if (rc == FY_CACHE_ETOOBIG) {
    lua_pushnil(L);
    lua_pushliteral(L, "too_large");
    return 2;
  }
  if (rc == FY_CACHE_ENOMEM) {
    lua_pushnil(L);
    lua_pushliteral(L, "no_memory");
    return 2;
  }
  lua_pushboolean(L, 1);
  if (!forcible) return 1;
  lua_pushnil(L);
  lua_pushboolean(L, 1);
  return 3;
}


/* c:delete(key) -> true if it was there */
static int l_cache_delete(lua_State *L) {
  l_cache_t *u = check_cache(L);
  size_t klen;
  const char *key = fy_checklstring(L, 2, &klen);
  lua_pushboolean(L, fy_cache_delete(&u->c, key, klen));
  return 1;
}


static int l_cache_new_head(lua_State *L) {
  fy_cache_new_head(&check_cache(L)->c);
  return 0;
}


/* c:drop_from_block(n) -> number of entries dropped by block */
static int l_cache_drop_from_block(lua_State *L) {
  l_cache_t *u = check_cache(L);
  lua_Integer n = fy_checkinteger(L, 2);
  lua_pushinteger(L, (lua_Integer)fy_cache_drop_from_block(&u->c, n));
  return 1;
}


static int l_cache_flush(lua_State *L) {
  fy_cache_flush(&check_cache(L)->c);
  return 0;
}


static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}


/* c:stats() -> {hits, misses, evictions, expirations, invalidations, entries, bytes, hit_rate,
 * max_entries, max_bytes} */
static int l_cache_stats(lua_State *L) {
  l_cache_t *u = check_cache(L);
  const fy_cache_stats_t *s = &u->c.stats;
  lua_createtable(L, 0, 10);
  set_int(L, "hits", s->hits);
  set_int(L, "misses", s->misses);
  set_int(L, "evictions", s->evictions);
  set_int(L, "expirations", s->expirations);
  set_int(L, "invalidations", s->invalidations);
  set_int(L, "entries", s->entries);
  set_int(L, "bytes", s->bytes);
  set_int(L, "max_entries", u->c.max_entries);
  set_int(L, "max_bytes", u->c.max_bytes);
  uint64_t lookups = s->hits + s->misses;
  lua_pushnumber(L, lookups ? (double)s->hits / (double)lookups : 0);
  lua_setfield(L, -2, "hit_rate");
  return 1;
}


/* __gc, __close and :close(): free the entries; idempotent. */
static int l_cache_close(lua_State *L) {
  l_cache_t *u = fy_checkudata(L, 1, CACHE_MT);
  if (u->open) {
    u->open = 0;
    fy_cache_free(&u->c);
  }
  return 0;
}


static int l_cache_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_cache(L)->c.stats.entries);
  return 1;
}


static int l_cache_tostring(lua_State *L) {
  l_cache_t *u = fy_checkudata(L, 1, CACHE_MT);
  if (u->open)
    lua_pushfstring(L, CACHE_MT " (%d entries): %p", (int)u->c.stats.entries, (void *)u);
  else
    lua_pushfstring(L, CACHE_MT " (closed): %p", (void *)u);
  return 1;
}


static const luaL_Reg cache_methods[] = {
  {"get", l_cache_get}, {"set", l_cache_set}, {"delete", l_cache_delete},
  {"new_head", l_cache_new_head}, {"drop_from_block", l_cache_drop_from_block},
  {"flush", l_cache_flush}, {"stats", l_cache_stats}, {"close", l_cache_close},
  {NULL, NULL}};

static const luaL_Reg cache_meta[] = {
  {"__gc", l_cache_close}, {"__close", l_cache_close}, {"__tostring", l_cache_tostring},
  {NULL, NULL}};


int luaopen_ferry_core_cache(lua_State *L) {
  luaL_newmetatable(L, CACHE_MT);                 /* [mt] */
  luaL_setfuncs(L, cache_meta, 0);
  lua_newtable(L);                                /* [mt, methods] */
  lua_pushvalue(L, -2);                           /* [mt, methods, mt] */
  luaL_setfuncs(L, cache_methods, 1);             /* [mt, methods] */
  lua_setfield(L, -2, "__index");                 /* [mt] */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_cache_len, 1);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
  lua_newtable(L);                                /* [M] */
  lua_pushcfunction(L, l_cache_new);
  lua_setfield(L, -2, "new");
  lua_pushinteger(L, (lua_Integer)FY_CACHE_ENTRY_OVERHEAD);
  lua_setfield(L, -2, "ENTRY_OVERHEAD");
  return 1;
}
