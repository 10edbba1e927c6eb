/* ** key_lua.c -- ferry.core.key: ferry.Key userdata over key.c (see key_lua.h) */
#include "crypto/key_lua.h"
#include "crypto/key.h"
#include "crypto/secp.h"
#include "crypto/secp_lua.h"

#include <lauxlib.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MT "ferry.Key"

typedef struct {
  fy_key_t *k; /* NULL once closed */
} key_box_t;

/* raise {code = "invalid_argument", message = msg} (a ferry.Error) */
static int raise_invalid(lua_State *L, const char *msg) {
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "invalid_argument");
  lua_setfield(L, -2, "code");
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  luaL_getmetatable(L, "ferry.Error");
  lua_setmetatable(L, -2);
  return lua_error(L);
}

static fy_key_t *check_open(lua_State *L, int idx) {
  key_box_t *b = luaL_checkudata(L, idx, KEY_MT);
  if (!b->k) raise_invalid(L, "ferry.Key: the key is closed (its bytes were wiped)");
  return b->k;
}

int fy_key_lua_export(lua_State *L, int idx, uint8_t out[32]) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !luaL_testudata(L, idx, KEY_MT)) return 0;
  fy_key_export(check_open(L, idx), out);
  return 1;
}

/* a closed box first (a failed allocation below then leaks nothing), then the key */
static key_box_t *box_new(lua_State *L) {
  key_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->k = NULL;
  luaL_setmetatable(L, KEY_MT);
  return b;
}

/* the new key is on the stack: return it, or raise for rc */
static int key_result(lua_State *L, int rc) {
  if (rc == FY_KEY_ENOMEM) return luaL_error(L, "ferry.Key: %s", fy_key_strerror(rc));
  if (rc) {
    lua_pushfstring(L, "ferry.Key: %s", fy_key_strerror(rc));
    return raise_invalid(L, lua_tostring(L, -1));
  }
  return 1;
}

/* key.new(s) -> Key: s is 32 raw bytes or 64 hex digits (0x optional). The error never
 * shows s. */
static int l_key_new(lua_State *L) {
  size_t n;
  if (lua_type(L, 1) != LUA_TSTRING) return raise_invalid(L, "ferry.Key: a private key is 32 bytes, or 64 hex digits (0x optional)");
  const char *s = lua_tolstring(L, 1, &n);
  key_box_t *b = box_new(L);
  return key_result(L, n == 32 ? fy_key_from_bytes((const uint8_t *)s, &b->k) : fy_key_from_hex(s, n, &b->k));
}

/* key.from_env(name) -> Key | nil, "unset" | "invalid". The variable's text never becomes a
 * Lua string: it is parsed from the environment straight into the key's page. */
static int l_key_from_env(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *v = getenv(name);
  if (!v || !*v) {
    lua_pushnil(L);
    lua_pushliteral(L, "unset");
    return 2;
  }
  key_box_t *b = box_new(L);
  int rc = fy_key_from_hex(v, strlen(v), &b->k);
  if (rc == FY_KEY_ENOMEM) return key_result(L, rc);
  if (rc) {
    lua_pushnil(L);
    lua_pushliteral(L, "invalid");
    return 2;
  }
  return 1;
}

static int l_key_is_key(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, KEY_MT) != NULL);
  return 1;
}

/* k:address() -> EIP-55 "0x..." */
static int l_key_address(lua_State *L) {
  fy_secp_push_address(L, fy_key_address(check_open(L, 1)));
  return 1;
}

/* k:personal_sign(msg) -> 65 bytes r||s||v (v = 27/28), as secp256k1.personal_sign */
static int l_key_personal_sign(lua_State *L) {
  fy_key_t *k = check_open(L, 1);
  size_t n;
  const char *m = luaL_checklstring(L, 2, &n);
  uint8_t sig[65];
  int rc = fy_key_personal_sign(k, (const uint8_t *)m, n, sig);
  if (rc) return luaL_error(L, "ferry.Key: %s", fy_secp_strerror(rc));
  lua_pushlstring(L, (const char *)sig, 65);
  return 1;
}

/* k:close(), __gc, __close: wipe and free; idempotent */
static int l_key_close(lua_State *L) {
  key_box_t *b = luaL_checkudata(L, 1, KEY_MT);
  fy_key_free(b->k);
  b->k = NULL;
  return 0;
}

static int l_key_is_closed(lua_State *L) {
  key_box_t *b = luaL_checkudata(L, 1, KEY_MT);
  lua_pushboolean(L, b->k == NULL);
  return 1;
}

static int l_key_tostring(lua_State *L) {
  key_box_t *b = luaL_checkudata(L, 1, KEY_MT);
  if (!b->k) {
    lua_pushliteral(L, "ferry.Key (closed)");
    return 1;
  }
  char text[43];
  fy_secp_checksum(fy_key_address(b->k), text);
  lua_pushfstring(L, "ferry.Key %s", text);
  return 1;
}

static const luaL_Reg key_methods[] = {
  {"address", l_key_address},
  {"personal_sign", l_key_personal_sign},
  {"close", l_key_close},
  {"is_closed", l_key_is_closed},
  {NULL, NULL},
};

static const luaL_Reg key_meta[] = {
  {"__gc", l_key_close},
  {"__close", l_key_close},
  {"__tostring", l_key_tostring},
  {NULL, NULL},
};

static const luaL_Reg key_funcs[] = {
  {"new", l_key_new},
  {"from_env", l_key_from_env},
  {"is_key", l_key_is_key},
  {NULL, NULL},
};

int luaopen_ferry_core_key(lua_State *L) {
  if (sodium_init() < 0) return luaL_error(L, "ferry.core.key: libsodium did not initialise");
  if (luaL_newmetatable(L, KEY_MT)) {  /* sets __name = "ferry.Key" */
    luaL_setfuncs(L, key_meta, 0);
    luaL_newlib(L, key_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, KEY_MT);       /* getmetatable(k) gives a name, not the table */
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, key_funcs);
  return 1;
}
