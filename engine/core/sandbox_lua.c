/*
** sandbox_lua.c -- ferry.core.sandbox: evaluate config.lua in a lua_State of its own.
**
** Provides: sandbox.eval(src, chunkname, opts) -> true, value | false, kind, message.
** The chunk runs in a fresh state with its own allocator (opts.memory_mib, a hard cap) and a
** count hook (opts.instructions), and sees only env, tonumber, tostring, pairs, ipairs, type,
** error, assert, select, next and its own string, table and math libraries. Nothing it does
** can reach the engine's state: not its globals, not its string metatable, not the libraries
** the engine uses. Its result is copied across as plain data (tables, strings, numbers,
** booleans; a function or userdata is an error naming the key), and the state is closed.
** env(name, default) reads the environment: a number default makes the value a number, a
** boolean default a boolean ("1", "true", "yes"); unset with no default gives a marker table
** that the copy turns into setmetatable({name = name}, opts.missing).
** kind: "syntax", "runtime", "instructions", "memory" or "data" (the result is not plain data).
** Depends on: Lua 5.4, log.h (fy_push_redacted: env() errors do not echo a key). Loop thread.
*/
#include "core/log.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SANDBOX_MT "ferry.Sandbox"
#define MISSING_KEY "ferry.config.Missing"
#define HOOK_EVERY 1000
#define MAX_DEPTH 64

typedef struct {
  lua_State *S;                /* NULL once closed */
  size_t used, limit;          /* bytes */
  int over_memory, over_count;
  long long count, budget;     /* instructions */
} sandbox_t;

/* the allocator of the sandboxed state: refuses to pass the cap */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  sandbox_t *sb = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    sb->used -= old;
    return NULL;
  }
  if (nsize > old && sb->used - old + nsize > sb->limit) {
    sb->over_memory = 1;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) sb->used = sb->used - old + nsize;
  return p;
}

static void sb_hook(lua_State *S, lua_Debug *ar) {
  (void)ar;
  sandbox_t *sb = *(sandbox_t **)lua_getextraspace(S);
  sb->count += HOOK_EVERY;
  if (sb->count > sb->budget) {
    sb->over_count = 1;
    lua_sethook(S, sb_hook, LUA_MASKCOUNT, 1);   /* and at every instruction after this */
    luaL_error(S, "instruction budget spent");
  }
}

/* env(name, default) inside the sandbox */
static int sb_env(lua_State *S) {
  if (lua_type(S, 1) != LUA_TSTRING) return luaL_error(S, "env(name, default): name must be a string");
  const char *name = lua_tostring(S, 1);
  const char *v = getenv(name);
  int dt = lua_type(S, 2);
  if (!v || !*v) {
    if (dt != LUA_TNONE && dt != LUA_TNIL) {
      lua_settop(S, 2);
      return 1;
    }
    lua_createtable(S, 0, 1);
    lua_pushvalue(S, 1);
    lua_setfield(S, -2, "name");
    luaL_setmetatable(S, MISSING_KEY);
    return 1;
  }
  if (dt == LUA_TNUMBER) {
    if (lua_stringtonumber(S, v) == 0) {
      luaL_where(S, 1);
      lua_pushfstring(S, "env %s: expected a number, got \"", name);
      fy_push_redacted(S, v, strlen(v));
      lua_pushliteral(S, "\"");
      lua_concat(S, 4);
      return lua_error(S);
    }
    return 1;
  }
  if (dt == LUA_TBOOLEAN) {
    lua_pushboolean(S, strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
    return 1;
  }
  lua_pushstring(S, v);
  return 1;
}

static int missing_tostring(lua_State *S) {
  lua_getfield(S, 1, "name");
  lua_pushfstring(S, "env %s (unset)", luaL_optstring(S, -1, "?"));
  return 1;
}

/* Open what the chunk may use and nothing else. Runs in protected mode (may raise). */
static int sb_open(lua_State *S) {
  static const char *const keep[] = {"tonumber", "tostring", "pairs", "ipairs", "type", "error",
                                     "assert", "select", "next", "string", "table", "math", NULL};
  luaL_requiref(S, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(S, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(S, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(S, LUA_MATHLIBNAME, luaopen_math, 1);
  lua_settop(S, 0);
  /* a fresh globals table holding only the allowed names */
  lua_pushglobaltable(S);
  lua_createtable(S, 0, 16);
  for (int i = 0; keep[i]; i++) {
    lua_getfield(S, 1, keep[i]);
    lua_setfield(S, 2, keep[i]);
  }
  lua_pushcfunction(S, sb_env);
  lua_setfield(S, 2, "env");
  lua_rawseti(S, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  /* package.loaded still names the libraries; nothing in the chunk can reach it */
  if (luaL_newmetatable(S, MISSING_KEY)) {
    lua_pushvalue(S, -1);
    lua_setfield(S, -2, "__index");
    lua_pushcfunction(S, missing_tostring);
    lua_setfield(S, -2, "__tostring");
  }
  return 0;
}

/* ------------------------------------------------------------------ copy out */

typedef struct {
  lua_State *S, *L;
  int memo;        /* L: table, S table pointer -> copy */
  int missing;     /* L: metatable for env markers, or 0 */
  char bad[160];   /* the first key path that is not plain data */
} copy_t;

static void path_key(lua_State *S, int idx, const char *path, char *out, size_t n) {
  if (lua_type(S, idx) == LUA_TSTRING) snprintf(out, n, "%s%s%s", path, *path ? "." : "", lua_tostring(S, idx));
  else if (lua_isinteger(S, idx)) snprintf(out, n, "%s[%lld]", path, (long long)lua_tointeger(S, idx));
  else snprintf(out, n, "%s[%s]", path, luaL_typename(S, idx));
}

/* Push onto c->L a copy of S's value at idx. Returns 0, or -1 with c->bad set. */
static int copy(copy_t *c, int idx, const char *path, int depth) {
  lua_State *S = c->S, *L = c->L;
  idx = lua_absindex(S, idx);
  luaL_checkstack(L, 6, "config copy");
  switch (lua_type(S, idx)) {
  case LUA_TNIL: lua_pushnil(L); return 0;
  case LUA_TBOOLEAN: lua_pushboolean(L, lua_toboolean(S, idx)); return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(S, idx)) lua_pushinteger(L, lua_tointeger(S, idx));
    else lua_pushnumber(L, lua_tonumber(S, idx));
    return 0;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(S, idx, &n);
    lua_pushlstring(L, s, n);
    return 0;
  }
  case LUA_TTABLE: break;
  default:
    snprintf(c->bad, sizeof c->bad, "%s: a %s cannot be part of the configuration (plain values and tables only)",
             *path ? path : "(result)", luaL_typename(S, idx));
    return -1;
  }
  if (depth > MAX_DEPTH) {
    snprintf(c->bad, sizeof c->bad, "%s: nested more than %d tables deep", path, MAX_DEPTH);
    return -1;
  }
  const void *p = lua_topointer(S, idx);
  lua_pushlightuserdata(L, (void *)p);
  if (lua_rawget(L, c->memo) != LUA_TNIL) return 0;   /* shared (or cyclic): one copy */
  lua_pop(L, 1);
  int is_missing = 0;
  if (lua_getmetatable(S, idx)) {
    luaL_getmetatable(S, MISSING_KEY);
    is_missing = lua_rawequal(S, -1, -2);
    lua_pop(S, 2);
  }
  lua_newtable(L);
  lua_pushlightuserdata(L, (void *)p);
  lua_pushvalue(L, -2);
  lua_rawset(L, c->memo);
  if (is_missing) {
    lua_getfield(S, idx, "name");
    lua_pushstring(L, luaL_optstring(S, -1, "?"));
    lua_pop(S, 1);
    lua_setfield(L, -2, "name");
    if (c->missing) {
      lua_pushvalue(L, c->missing);
      lua_setmetatable(L, -2);
    }
    return 0;
  }
  luaL_checkstack(S, 4, "config copy");
  lua_pushnil(S);
  while (lua_next(S, idx)) {
    char sub[160];
    int kt = lua_type(S, -2);
    path_key(S, -2, path, sub, sizeof sub);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) {
      snprintf(c->bad, sizeof c->bad, "%s: a %s cannot be a key of the configuration", *path ? path : "(result)",
               luaL_typename(S, -2));
      lua_pop(S, 2);
      return -1;
    }
    if (copy(c, -2, path, depth + 1) || copy(c, -1, sub, depth + 1)) {
      lua_pop(S, 2);
      return -1;
    }
    lua_rawset(L, -3);
    lua_pop(S, 1);
  }
  return 0;
}

/* ------------------------------------------------------------------ eval */

static int sandbox_close(lua_State *L) {
  sandbox_t *sb = luaL_checkudata(L, 1, SANDBOX_MT);
  if (sb->S) {
    lua_close(sb->S);
    sb->S = NULL;
  }
  return 0;
}

static int fail(lua_State *L, sandbox_t *sb, const char *kind, const char *msg) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, kind);
  lua_pushstring(L, msg);
  if (sb->S) {
    lua_close(sb->S);
    sb->S = NULL;
  }
  return 3;
}

static lua_Integer opt_field(lua_State *L, int t, const char *k, lua_Integer def) {
  lua_getfield(L, t, k);
  lua_Integer v = luaL_optinteger(L, -1, def);
  lua_pop(L, 1);
  return v;
}

/* eval(src, chunkname, {instructions =, memory_mib =, missing = mt}) */
static int l_eval(lua_State *L) {
  size_t n;
  const char *src = luaL_checklstring(L, 1, &n);
  const char *chunkname = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer budget = opt_field(L, 3, "instructions", 10000000);
  lua_Integer mib = opt_field(L, 3, "memory_mib", 64);
  luaL_argcheck(L, budget > 0 && mib > 0 && mib < 1 << 20, 3, "instructions and memory_mib must be > 0");
  lua_getfield(L, 3, "missing");
  int missing = lua_istable(L, -1) ? lua_gettop(L) : 0;

  /* a closed box first: a raise below closes the state through __gc */
  sandbox_t *sb = lua_newuserdatauv(L, sizeof *sb, 0);
  memset(sb, 0, sizeof *sb);
  luaL_setmetatable(L, SANDBOX_MT);
  sb->limit = (size_t)mib << 20;
  sb->budget = budget;
  sb->S = lua_newstate(sb_alloc, sb);
  if (!sb->S) return fail(L, sb, "memory", "cannot create the sandbox state");
  lua_State *S = sb->S;
  *(sandbox_t **)lua_getextraspace(S) = sb;

  lua_pushcfunction(S, sb_open);
  if (lua_pcall(S, 0, 0, 0) != LUA_OK) return fail(L, sb, sb->over_memory ? "memory" : "runtime", "cannot open the sandbox's libraries");

  int rc = luaL_loadbufferx(S, src, n, chunkname, "t");
  if (rc != LUA_OK) {
    if (sb->over_memory) return fail(L, sb, "memory", "");
    lua_pushstring(L, lua_tostring(S, -1) ? lua_tostring(S, -1) : "syntax error");
    return fail(L, sb, "syntax", lua_tostring(L, -1));
  }
  lua_sethook(S, sb_hook, LUA_MASKCOUNT, HOOK_EVERY);
  rc = lua_pcall(S, 0, 1, 0);
  lua_sethook(S, NULL, 0, 0);
  if (sb->over_count) return fail(L, sb, "instructions", "");
  if (rc == LUA_ERRMEM || (rc != LUA_OK && sb->over_memory)) return fail(L, sb, "memory", "");
  if (rc != LUA_OK) {
    sb->limit = (size_t)-1;              /* room to turn the error value into text */
    const char *m = luaL_tolstring(S, -1, NULL);
    lua_pushstring(L, m);
    return fail(L, sb, "runtime", lua_tostring(L, -1));
  }
  sb->limit = (size_t)-1;                /* the copy reads only; nothing more is kept */
  copy_t c = {S, L, 0, missing, {0}};
  lua_newtable(L);
  c.memo = lua_gettop(L);
  if (copy(&c, -1, "", 0)) return fail(L, sb, "data", c.bad);
  lua_close(S);
  sb->S = NULL;
  lua_pushboolean(L, 1);
  lua_insert(L, -2);
  return 2;
}

int luaopen_ferry_core_sandbox(lua_State *L) {
  if (luaL_newmetatable(L, SANDBOX_MT)) {
    lua_pushcfunction(L, sandbox_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg f[] = {{"eval", l_eval}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
