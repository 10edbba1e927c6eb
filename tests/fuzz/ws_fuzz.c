/* ** ws_fuzz.c -- libFuzzer harness for the WebSocket message handler: frame text -> JSON-RPC
** dispatch (ferry.ws's M.dispatch, the real Lua code over the real JSON decoder).
** The Lua modules ferry.ws needs for a live connection (the engine, tasks, the C ws core) are
** replaced by small stand-ins: dispatch only decodes, routes replies to waiting calls by id and
** notifications to subscription functions. Any input must give nil or a reason string; a
** raised error, a crash or a sanitizer report aborts.
** Built by `make fuzz-ws` (mk/ws.mk); run from the repository root (it loads stdlib/). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_ferry_core_json(lua_State *L);

static lua_State *L;

static const char *SETUP =
  "package.path = 'stdlib/?.lua;stdlib/?/init.lua'\n"
  "local E = {}\n"
  "package.preload['ferry'] = function() return {\n"
  "  error = function(c, m, f) local e = f or {}; e.code, e.message = c, m; return e end,\n"
  "  raise = function(c, m) error(c .. ': ' .. tostring(m)) end,\n"
  "  is_error = function() return false end, now = os.clock, current = function() end,\n"
  "  register_stats = function() end, spawn = function() return {} end,\n"
  "  log = { error = function() end, warn = function() end, info = function() end, debug = function() end },\n"
  "} end\n"
  "package.preload['ferry.core.ws'] = function() return { stats = function() return {} end } end\n"
  "package.preload['ferry.core.task'] = function() return { queue = function()\n"
  "  return { put = function(q, v) q[#q + 1] = v end } end } end\n"
  "package.preload['ferry.rpc'] = function() return { DEFAULT_TIMEOUT = 10,\n"
  "  classify = function() return 'rpc_error' end, reveal = function(x) return x end,\n"
  "  redact_url = function(x) return x end } end\n"
  "local ws = require 'ferry.ws'\n"
  "local task = require 'ferry.core.task'\n"
  "local seen = 0\n"
  "return function(text)\n"
  "  local c = { name = 'fuzz', pending = { [1] = task.queue(), [2] = task.queue() },\n"
  "              subs = { ['0x1'] = function() seen = seen + 1 end, ['0x3'] = function() error('handler') end },\n"
  "              gone = { ['0x2'] = true } }\n"
  "  local err = ws.dispatch(c, text)\n"
  "  assert(err == nil or type(err) == 'string', 'dispatch answered a ' .. type(err))\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_ferry_core_json);
    lua_setfield(L, -2, "ferry.core.json");
    lua_pop(L, 1);
    if (luaL_dostring(L, SETUP) != LUA_OK) {
      fprintf(stderr, "ws_fuzz setup: %s\n", lua_tostring(L, -1));
      abort();
    }
    lua_setglobal(L, "fuzz_one");
  }
  lua_settop(L, 0);
  lua_getglobal(L, "fuzz_one");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "ws_fuzz: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
