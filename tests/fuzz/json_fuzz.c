/* ** json_fuzz.c -- libFuzzer harness for the JSON decoder (engine/core/json.c) through its Lua API.
** The decoder builds Lua values directly, so the harness runs one Lua state: decode the input
** at the deepest limit allowed (512); whatever decodes is written with json.canonical (sorted
** keys, so the text does not depend on table order), and that text must decode and give the
** same text again. A crash, a sanitizer report or a broken round trip aborts.
** Built by `make fuzz-json` (mk/core.mk). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int luaopen_ferry_core_json(lua_State *L);

static lua_State *L;

/* json.<fn>(arg at top, 512) in protected mode: 1 and the result on top, or 0 and nothing */
static int call(const char *fn) {
  lua_getfield(L, 1, fn);
  lua_insert(L, -2);
  lua_pushinteger(L, 512);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) { lua_pop(L, 1); return 0; }
  if (lua_isnil(L, -2)) { lua_pop(L, 2); return 0; }
  lua_pop(L, 1);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "json", luaopen_ferry_core_json, 0); /* [1] = json */
  }
  lua_settop(L, 1);
  lua_pushlstring(L, (const char *)data, size);
  if (!call("decode")) return 0;                         /* [json, v] */
  if (!call("canonical")) return 0;                      /* not expected to fail; kept lenient */
  size_t n1;
  const char *t1 = lua_tolstring(L, -1, &n1);            /* [json, text1] */
  lua_pushvalue(L, -1);
  if (!call("decode")) abort();                          /* what we wrote must read back */
  if (!call("canonical")) abort();
  size_t n2;
  const char *t2 = lua_tolstring(L, -1, &n2);            /* [json, text1, text2] */
  if (n1 != n2 || memcmp(t1, t2, n1) != 0) abort();
  lua_settop(L, 1);
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
