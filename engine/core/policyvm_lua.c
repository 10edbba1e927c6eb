/*
** policyvm_lua.c -- ferry.core.policyvm: one policy file, alive in a lua_State of its own.
**
** Provides:
**   local vm = policyvm.new{instructions = 100000, memory_mib = 16}
**   vm:load(src, "@policies/x.lua") -> true, shape | false, kind, message
**       runs the chunk (text only) and keeps the table it returns; shape describes that table:
**       {fields = {name = "x", ...plain top-level values}, functions = {before_send = true, ...}}
**   vm:call("before_send", a, b) -> true, r1, r2, r3 | false, kind, message
**       calls the kept table's function with copies of a and b (plain data), seen inside as
**       read-only views; its first three results are copied back (plain data only)
**   vm:memory() -> bytes the state holds;  vm:close()  (also __gc)
** kind: "syntax", "runtime", "instructions", "memory", "data" (a value that is not plain data).
**
** Why a state of its own and not an env in the engine's: the memory cap is per policy (a
** counting allocator; `("x"):rep(1e9)` in the engine's state could not be refused), a runaway
** loop is stopped by a count hook that the engine's tasks never see, and nothing the policy
** does (a global write, a patched string library) can reach the engine or another policy.
** Calls are plain lua_pcall: a policy cannot yield, so a decision never spans two loop
** iterations, and one call's budget is the instruction budget (STYLE.md 3.8).
**
** The env (allow-list): assert error ipairs next pairs pcall select tonumber tostring type
** rawequal rawlen, string (without dump), table, math, utf8, os.time and os.clock. Global
** writes raise. Depends on: Lua 5.4, bind.h. Loop thread only.
*/
#include "core/bind.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VM_MT "ferry.PolicyVM"
#define HOOK_EVERY 1000
#define MAX_DEPTH 32
#define POLICY_KEY "ferry.policy"   /* S's registry: the table the chunk returned */

typedef struct {
  lua_State *S;              /* NULL once closed */
  size_t used, limit;        /* bytes */
  int over_memory, over_count;
  long long count, budget;   /* instructions of the current call */
  long long load_budget;     /* instructions the chunk itself may run */
  lua_State *caller;         /* during a call: the engine's thread holding the viewed tables */
  int handles;               /* ... at this index of caller's stack: {table, ...} this call views */
  int nhandles;
  lua_Integer gen;           /* the call's number: a view kept past its call is refused */
} vm_t;

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  vm_t *vm = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    vm->used -= old;
    return NULL;
  }
  if (nsize > old && vm->used - old + nsize > vm->limit) {
    vm->over_memory = 1;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) vm->used = vm->used - old + nsize;
  return p;
}

/* The count hook: past the budget it fires at every instruction, so a pcall inside the
 * policy that catches the kill is killed again at its next instruction. */
static void vm_hook(lua_State *S, lua_Debug *ar) {
  (void)ar;
  vm_t *vm = *(vm_t **)lua_getextraspace(S);
  vm->count += HOOK_EVERY;
  if (vm->count > vm->budget) {
    vm->over_count = 1;
    lua_sethook(S, vm_hook, LUA_MASKCOUNT, 1);
    luaL_error(S, "instruction budget spent");
  }
}

/* ------------------------------------------------------------------ the env */

static int ro_error(lua_State *S) { return luaL_error(S, "read-only: policies see the engine through ctx, and cannot change it"); }
static int global_write(lua_State *S) {
  return luaL_error(S, "global write to '%s': a policy keeps its state in locals", luaL_optstring(S, 2, "?"));
}

/* ------------------------------------------------------------------ read-only views
 * A view is an empty table in S with the shared VIEW metatable; the weak VIEWS map of S's
 * registry gives its handle: call generation * 2^24 + the index of the engine-side table in
 * the call's handle list. A field is read across at the moment it is read (a scalar is copied,
 * a table becomes one more view), so a decision pays only for what the policy looks at, and
 * nothing it holds after its call reaches the engine's tables. */
#define VIEW_MT "ferry.view"
#define VIEWS "ferry.views"
#define HANDLE_BITS 24

static vm_t *vm_of(lua_State *S) { return *(vm_t **)lua_getextraspace(S); }

static int push_view(lua_State *S, vm_t *vm, int lidx);

/* the engine-side table of the view at idx, pushed on vm->caller */
static lua_State *view_target(lua_State *S, int idx) {
  vm_t *vm = vm_of(S);
  lua_getfield(S, LUA_REGISTRYINDEX, VIEWS);
  lua_pushvalue(S, idx);
  lua_rawget(S, -2);
  lua_Integer h = lua_tointeger(S, -1);
  lua_pop(S, 2);
  if (!vm->caller || h >> HANDLE_BITS != vm->gen) luaL_error(S, "a view of ctx is only good during the call it came with");
  lua_State *L = vm->caller;
  lua_rawgeti(L, vm->handles, h & ((1 << HANDLE_BITS) - 1));
  return L;
}

/* Push onto S the value at the top of L (popped): a scalar, or a view of a table. */
static int cross(lua_State *S, vm_t *vm, lua_State *L) {
  switch (lua_type(L, -1)) {
  case LUA_TNIL: lua_pushnil(S); break;
  case LUA_TBOOLEAN: lua_pushboolean(S, lua_toboolean(L, -1)); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) lua_pushinteger(S, lua_tointeger(L, -1));
    else lua_pushnumber(S, lua_tonumber(L, -1));
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *p = lua_tolstring(L, -1, &n);
    lua_pushlstring(S, p, n);
    break;
  }
  case LUA_TTABLE: return push_view(S, vm, lua_gettop(L));   /* pops it */
  default: lua_pop(L, 1); return luaL_error(S, "a %s is not plain data", luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return 1;
}

/* Push a key of S (at idx) onto L; 0 when it cannot be a key of plain data. */
static int key_across(lua_State *S, int idx, lua_State *L) {
  switch (lua_type(S, idx)) {
  case LUA_TSTRING: {
    size_t n;
    const char *p = lua_tolstring(S, idx, &n);
    lua_pushlstring(L, p, n);
    return 1;
  }
  case LUA_TNUMBER:
    if (lua_isinteger(S, idx)) lua_pushinteger(L, lua_tointeger(S, idx));
    else lua_pushnumber(L, lua_tonumber(S, idx));
    return 1;
  case LUA_TBOOLEAN: lua_pushboolean(L, lua_toboolean(S, idx)); return 1;
  default: return 0;
  }
}

static int view_index(lua_State *S) {
  lua_State *L = view_target(S, 1);
  if (!key_across(S, 2, L)) { lua_pop(L, 1); lua_pushnil(S); return 1; }
  lua_rawget(L, -2);
  lua_remove(L, -2);
  return cross(S, vm_of(S), L);
}

static int view_len(lua_State *S) {
  lua_State *L = view_target(S, 1);
  lua_pushinteger(S, (lua_Integer)lua_rawlen(L, -1));
  lua_pop(L, 1);
  return 1;
}

static int view_next(lua_State *S) {   /* next over the viewed table, for pairs(view) */
  lua_settop(S, 2);
  vm_t *vm = vm_of(S);
  lua_State *L = view_target(S, 1);    /* L: T */
  if (lua_isnil(S, 2)) lua_pushnil(L);
  else if (!key_across(S, 2, L)) {
    lua_pop(L, 1);
    return luaL_error(S, "invalid key to 'next'");
  }
  if (!lua_next(L, -2)) {
    lua_pop(L, 1);
    lua_pushnil(S);
    return 1;
  }                                    /* L: T, k, v */
  lua_pushvalue(L, -2);
  cross(S, vm, L);                     /* the key into S; L: T, k, v */
  cross(S, vm, L);                     /* the value into S; L: T, k */
  lua_pop(L, 2);
  return 2;
}

/* A view of the table at the top of vm->caller (popped), pushed on S. */
static int push_view(lua_State *S, vm_t *vm, int lidx) {
  lua_State *L = vm->caller;
  (void)lidx;
  if (vm->nhandles + 1 >= 1 << HANDLE_BITS) return luaL_error(S, "too many views in one call");
  lua_rawseti(L, vm->handles, ++vm->nhandles);
  lua_createtable(S, 0, 0);
  luaL_setmetatable(S, VIEW_MT);
  lua_getfield(S, LUA_REGISTRYINDEX, VIEWS);
  lua_pushvalue(S, -2);
  lua_pushinteger(S, (vm->gen << HANDLE_BITS) | vm->nhandles);
  lua_rawset(S, -3);
  lua_pop(S, 1);
  return 1;
}

static int view_pairs(lua_State *S) {
  lua_pushcfunction(S, view_next);
  lua_pushvalue(S, 1);
  lua_pushnil(S);
  return 3;
}

static int os_time(lua_State *S) { lua_pushinteger(S, (lua_Integer)time(NULL)); return 1; }
static int os_clock(lua_State *S) { lua_pushnumber(S, (lua_Number)clock() / CLOCKS_PER_SEC); return 1; }

/* Open what a policy may use and nothing else. Runs in protected mode (may raise). */
static int vm_open(lua_State *S) {
  static const char *const keep[] = {"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                                     "tostring", "type", "rawequal", "rawlen", "string", "table", "math", "utf8", NULL};
  luaL_requiref(S, LUA_GNAME, luaopen_base, 1);
  luaL_requiref(S, LUA_STRLIBNAME, luaopen_string, 1);
  luaL_requiref(S, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(S, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(S, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_settop(S, 0);
  /* string.dump hands out bytecode; it goes from the library the string metatable uses too */
  lua_getglobal(S, "string");
  lua_pushnil(S);
  lua_setfield(S, -2, "dump");
  lua_pop(S, 1);
  lua_pushglobaltable(S);                 /* 1: the full globals */
  lua_createtable(S, 0, 20);              /* 2: the env */
  for (int i = 0; keep[i]; i++) {
    lua_getfield(S, 1, keep[i]);
    lua_setfield(S, 2, keep[i]);
  }
  lua_createtable(S, 0, 2);
  lua_pushcfunction(S, os_time);
  lua_setfield(S, -2, "time");
  lua_pushcfunction(S, os_clock);
  lua_setfield(S, -2, "clock");
  lua_setfield(S, 2, "os");
  lua_createtable(S, 0, 2);               /* the env's own metatable: no global writes */
  lua_pushcfunction(S, global_write);
  lua_setfield(S, -2, "__newindex");
  lua_pushboolean(S, 0);
  lua_setfield(S, -2, "__metatable");
  lua_setmetatable(S, 2);
  lua_pushvalue(S, 2);
  lua_rawseti(S, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  /* the views' metatable, and the weak map from a view to its handle */
  luaL_newmetatable(S, VIEW_MT);
  lua_pushcfunction(S, view_index);
  lua_setfield(S, -2, "__index");
  lua_pushcfunction(S, ro_error);
  lua_setfield(S, -2, "__newindex");
  lua_pushcfunction(S, view_len);
  lua_setfield(S, -2, "__len");
  lua_pushcfunction(S, view_pairs);
  lua_setfield(S, -2, "__pairs");
  lua_pushboolean(S, 0);
  lua_setfield(S, -2, "__metatable");
  lua_pop(S, 1);
  lua_newtable(S);
  lua_createtable(S, 0, 1);
  lua_pushliteral(S, "k");
  lua_setfield(S, -2, "__mode");
  lua_setmetatable(S, -2);
  lua_setfield(S, LUA_REGISTRYINDEX, VIEWS);
  return 0;
}

/* ------------------------------------------------------------------ copies */

/* Push onto `to` a copy of from's plain value at idx; read-only views when `ro`. Returns 0, or
 * -1 with msg set. Shared or cyclic tables are not followed past MAX_DEPTH. */
static int copy(lua_State *from, lua_State *to, int idx, int ro, int depth, char *msg, size_t n) {
  idx = lua_absindex(from, idx);
  if (!lua_checkstack(to, 8) || !lua_checkstack(from, 4)) {
    snprintf(msg, n, "value too deep to copy");
    return -1;
  }
  switch (lua_type(from, idx)) {
  case LUA_TNIL: lua_pushnil(to); return 0;
  case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(from, idx)) lua_pushinteger(to, lua_tointeger(from, idx));
    else lua_pushnumber(to, lua_tonumber(from, idx));
    return 0;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(from, idx, &len);
    lua_pushlstring(to, s, len);
    return 0;
  }
  case LUA_TTABLE: break;
  default: snprintf(msg, n, "a %s is not plain data", luaL_typename(from, idx)); return -1;
  }
  if (depth > MAX_DEPTH) {
    snprintf(msg, n, "nested more than %d tables deep", MAX_DEPTH);
    return -1;
  }
  lua_newtable(to);
  int t = lua_gettop(to);
  lua_pushnil(from);
  while (lua_next(from, idx)) {
    int kt = lua_type(from, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) {
      lua_pop(from, 2);
      snprintf(msg, n, "a %s key is not plain data", lua_typename(from, kt));
      return -1;
    }
    if (copy(from, to, -2, ro, depth + 1, msg, n) || copy(from, to, -1, ro, depth + 1, msg, n)) {
      lua_pop(from, 2);
      return -1;
    }
    lua_rawset(to, t);
    lua_pop(from, 1);
  }
  return 0;
}

/* ------------------------------------------------------------------ the box */

static vm_t *check_vm(lua_State *L) {
  vm_t *vm = fy_checkudata(L, 1, VM_MT);
  if (!vm->S) fy_raise(L, "closed", "policy vm is closed");
  return vm;
}

static int fail(lua_State *L, const char *kind, const char *msg) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, kind);
  lua_pushstring(L, msg);
  return 3;
}

/* After a failed pcall in S: the kind, and the message pushed on L. Leaves S's stack at top. */
static int failed(lua_State *L, vm_t *vm, int rc, int top) {
  lua_State *S = vm->S;
  int r;
  if (vm->over_count) r = fail(L, "instructions", "instruction budget spent");
  else if (rc == LUA_ERRMEM || vm->over_memory) r = fail(L, "memory", "memory cap reached");
  else {
    size_t saved = vm->limit;
    vm->limit = (size_t)-1;                /* room to turn the error value into text */
    const char *m = lua_type(S, -1) == LUA_TSTRING ? lua_tostring(S, -1) : luaL_typename(S, -1);
    r = fail(L, "runtime", m ? m : "error");
    vm->limit = saved;
  }
  lua_settop(S, top);
  lua_gc(S, LUA_GCCOLLECT);
  return r;
}

static void arm(vm_t *vm, long long budget) {
  vm->count = 0;
  vm->budget = budget;
  vm->over_count = vm->over_memory = 0;
  lua_sethook(vm->S, vm_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static void disarm(vm_t *vm) { lua_sethook(vm->S, NULL, 0, 0); }

static lua_Integer opt_field(lua_State *L, int t, const char *k, lua_Integer def) {
  lua_getfield(L, t, k);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

/* new{instructions =, memory_mib =, load_instructions =} */
static int l_new(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) fy_checktype(L, 1, LUA_TTABLE);
  else lua_newtable(L), lua_replace(L, 1);
  lua_Integer budget = opt_field(L, 1, "instructions", 1000000);
  lua_Integer load_budget = opt_field(L, 1, "load_instructions", 10000000);
  lua_Integer mib = opt_field(L, 1, "memory_mib", 16);
  if (budget <= 0 || load_budget <= 0 || mib <= 0 || mib >= 1 << 20)
    return fy_argerror(L, 1, "instructions, load_instructions and memory_mib must be > 0");
  vm_t *vm = lua_newuserdatauv(L, sizeof *vm, 0);
  memset(vm, 0, sizeof *vm);
  luaL_setmetatable(L, VM_MT);
  vm->limit = (size_t)mib << 20;
  vm->budget = budget;
  vm->load_budget = load_budget;
  vm->S = lua_newstate(vm_alloc, vm);
  if (!vm->S) return fy_raise(L, "out_of_memory", "policyvm.new: cannot create a state");
  *(vm_t **)lua_getextraspace(vm->S) = vm;
  lua_pushcfunction(vm->S, vm_open);
  if (lua_pcall(vm->S, 0, 0, 0) != LUA_OK) {
    lua_close(vm->S);
    vm->S = NULL;
    return fy_raise(L, "out_of_memory", "policyvm.new: cannot open the libraries under the memory cap");
  }
  return 1;
}

/* The shape of the table a chunk returned: plain top-level fields and the names of its
 * functions, so the loader can validate it without reaching into S. */
static void push_shape(lua_State *L, lua_State *S, int t) {
  lua_createtable(L, 0, 3);
  lua_newtable(L);   /* fields */
  lua_newtable(L);   /* functions */
  lua_newtable(L);   /* other: key -> type name */
  lua_pushnil(S);
  while (lua_next(S, t)) {
    if (lua_type(S, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(S, -2);
      int vt = lua_type(S, -1);
      if (vt == LUA_TFUNCTION) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -3, k);
      } else if (vt == LUA_TSTRING || vt == LUA_TNUMBER || vt == LUA_TBOOLEAN) {
        char msg[8];
        copy(S, L, -1, 0, 0, msg, sizeof msg);
        lua_setfield(L, -4, k);
      } else {
        lua_pushstring(L, lua_typename(S, vt));
        lua_setfield(L, -2, k);
      }
    }
    lua_pop(S, 1);
  }
  lua_setfield(L, -4, "other");
  lua_setfield(L, -3, "functions");
  lua_setfield(L, -2, "fields");
}

/* vm:load(src, chunkname) */
static int l_load(lua_State *L) {
  vm_t *vm = check_vm(L);
  size_t n;
  const char *src = fy_checklstring(L, 2, &n);
  const char *chunkname = fy_optlstring(L, 3, "=policy", NULL);
  lua_State *S = vm->S;
  int top = lua_gettop(S);
  vm->over_memory = 0;
  int rc = luaL_loadbufferx(S, src, n, chunkname, "t");
  if (rc != LUA_OK) {
    if (vm->over_memory || rc == LUA_ERRMEM) return lua_settop(S, top), fail(L, "memory", "memory cap reached");
    fail(L, "syntax", lua_tostring(S, -1) ? lua_tostring(S, -1) : "syntax error");
    lua_settop(S, top);
    return 3;
  }
  arm(vm, vm->load_budget);
  rc = lua_pcall(S, 0, 1, 0);
  disarm(vm);
  if (rc != LUA_OK || vm->over_count) return failed(L, vm, rc, top);
  if (!lua_istable(S, -1)) {
    lua_pushfstring(L, "%s must return a table, got %s", chunkname[0] == '@' ? chunkname + 1 : chunkname,
                    luaL_typename(S, -1));
    lua_settop(S, top);
    return fail(L, "data", lua_tostring(L, -1));
  }
  lua_pushvalue(S, -1);
  lua_setfield(S, LUA_REGISTRYINDEX, POLICY_KEY);
  lua_pushboolean(L, 1);
  push_shape(L, S, lua_gettop(S));
  lua_settop(S, top);
  return 2;
}

/* vm:call(name, ...) -> true, up to 3 results | false, kind, message */
static int l_call(lua_State *L) {
  vm_t *vm = check_vm(L);
  const char *name = fy_checklstring(L, 2, NULL);
  int nargs = lua_gettop(L) - 2;
  if (nargs > 4) return fy_argerror(L, 7, "at most 4 arguments");
  lua_State *S = vm->S;
  int top = lua_gettop(S);
  char msg[128];
  vm->over_memory = 0;
  if (!lua_checkstack(S, nargs + 8)) return fail(L, "memory", "memory cap reached");
  if (lua_getfield(S, LUA_REGISTRYINDEX, POLICY_KEY) != LUA_TTABLE) {
    lua_settop(S, top);
    return fy_raise(L, "invalid_argument", "policy vm: nothing loaded");
  }
  if (lua_getfield(S, -1, name) != LUA_TFUNCTION) {
    lua_settop(S, top);
    return fail(L, "data", "no such function");
  }
  lua_remove(S, -2);
  /* tables go in as views (read when read), anything else as a copy; outside the protected
   * call, so without the cap (a raise here would find no handler): a few small objects */
  size_t cap = vm->limit;
  vm->limit = (size_t)-1;
  lua_createtable(L, 8, 0);
  vm->caller = L;
  vm->handles = lua_gettop(L);
  vm->nhandles = 0;
  vm->gen = (vm->gen + 1) & 0x3fffffff;
  for (int i = 0; i < nargs; i++) {
    if (lua_istable(L, 3 + i)) {
      lua_pushvalue(L, 3 + i);
      push_view(S, vm, lua_gettop(L));
    } else if (copy(L, S, 3 + i, 0, 0, msg, sizeof msg)) {
      vm->caller = NULL;
      vm->limit = cap;
      lua_settop(S, top);
      lua_pushfstring(L, "argument %d: %s", i + 1, msg);
      return fail(L, "data", lua_tostring(L, -1));
    }
  }
  vm->limit = cap;
  arm(vm, vm->budget);
  int rc = lua_pcall(S, nargs, 3, 0);
  disarm(vm);
  vm->caller = NULL;                     /* views kept past here are refused */
  lua_remove(L, vm->handles);
  /* a kill the policy caught with pcall is still a kill */
  if (rc != LUA_OK || vm->over_count) return failed(L, vm, rc, top);
  lua_settop(L, 0);
  lua_pushboolean(L, 1);
  size_t limit = vm->limit;
  vm->limit = (size_t)-1;   /* a copy out only reads S */
  for (int i = 1; i <= 3; i++) {
    if (copy(S, L, top + i, 0, 0, msg, sizeof msg)) {
      vm->limit = limit;
      lua_settop(S, top);
      lua_settop(L, 0);
      lua_pushfstring(L, "result %d: %s", i, msg);
      return fail(L, "data", lua_tostring(L, -1));
    }
  }
  vm->limit = limit;
  lua_settop(S, top);
  return 4;
}

static int l_memory(lua_State *L) {
  vm_t *vm = check_vm(L);
  lua_pushinteger(L, (lua_Integer)vm->used);
  return 1;
}

static int l_close(lua_State *L) {
  vm_t *vm = fy_checkudata(L, 1, VM_MT);
  if (vm->S) {
    lua_close(vm->S);
    vm->S = NULL;
  }
  return 0;
}

int luaopen_ferry_core_policyvm(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"load", l_load}, {"call", l_call}, {"memory", l_memory}, {"close", l_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, VM_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg f[] = {{"new", l_new}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
