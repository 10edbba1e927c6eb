/* ** rlp_lua.c -- ferry.core.rlp: encode nested Lua values to RLP bytes, decode strictly. */
#include "core/bind.h"
#include <lauxlib.h>
#include <lua.h>

#include "crypto/rlp.h"
#include "crypto/u256_lua.h"

#define RLP_LUA_MAX_DEPTH 64
#define RLP_BUF_MT        "ferry.rlp.buf"

int luaopen_ferry_core_rlp(lua_State *L);

/* The encoder's scratch buffer lives in a userdata so that a raise mid-encode (bad value,
 * depth, memory) cannot leak it: __gc frees it. */
static int l_rlp_buf_gc(lua_State *L) {
  fy_buf_free(fy_checkudata(L, 1, RLP_BUF_MT));
  return 0;
}

static void enc_fail(lua_State *L, int rc) { fy_error(L, "ferry.rlp: encode: %s", fy_rlp_strerror(rc)); }

/* Encode the value at the top of the stack. may raise */
static void encode_value(lua_State *L, fy_buf_t *b, int depth) {
  int rc = 0;
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      rc = fy_rlp_put_bytes(b, (const uint8_t *)s, n);
      break;
    }
    case LUA_TNUMBER:
    case LUA_TUSERDATA: { /* integers >= 0 and U256: canonical big-endian */
      fy_u256_t v;
      uint8_t be[32];
      if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1))
        fy_error(L, "ferry.rlp: encode: floats are not encodable (use an integer)");
      if (lua_type(L, -1) == LUA_TUSERDATA && !fy_u256_test(L, -1))
        fy_error(L, "ferry.rlp: encode: cannot encode a userdata that is not a U256");
      if (lua_type(L, -1) == LUA_TNUMBER && lua_tointeger(L, -1) < 0)
        fy_error(L, "ferry.rlp: encode: negative integers are not encodable");
      fy_u256_check(L, lua_gettop(L), &v);
      fy_u256_to_be(&v, be);
      rc = fy_rlp_put_uint(b, be, sizeof be);
      break;
    }
    case LUA_TTABLE: {
      if (depth >= RLP_LUA_MAX_DEPTH)
        fy_error(L, "ferry.rlp: encode: nesting deeper than %d (cyclic table?)", RLP_LUA_MAX_DEPTH);
      luaL_checkstack(L, 2, "ferry.rlp: encode");
      size_t mark = fy_rlp_list_begin(b);
      lua_Unsigned n = lua_rawlen(L, -1);
      for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i); /* [..., list, item] */
        if (lua_isnil(L, -1)) fy_error(L, "ferry.rlp: encode: list has a hole at index %d", (int)i);
        encode_value(L, b, depth + 1);
        lua_pop(L, 1); /* [..., list] */
      }
      rc = fy_rlp_list_end(b, mark);
      break;
    }
    default:
      fy_error(L,
               "ferry.rlp: encode: cannot encode a %s value (want string, integer, U256 "
               "or array table)",
               luaL_typename(L, -1));
  }
  if (rc) enc_fail(L, rc);
}

/* encode(value) -> bytes. value: a string (bytes), a non-negative integer or U256 (canonical
 * integer), or an array table of values. Raises on anything else. */
static int l_rlp_encode(lua_State *L) {
  fy_checkany(L, 1);
  lua_settop(L, 1);
  fy_buf_t *b = lua_newuserdatauv(L, sizeof *b, 0); /* [v, ud] */
  *b = (fy_buf_t){0};
  luaL_setmetatable(L, RLP_BUF_MT);
  lua_pushvalue(L, 1); /* [v, ud, v] */
  encode_value(L, b, 0);
  lua_pushlstring(L, (const char *)b->data, b->len); /* [v, ud, v, bytes] */
  fy_buf_free(b);
  return 1;
}

/* Push the decoded item (string, or table of items). Returns 0 or a negative rc with
 * *where set to the failing offset; the stack is unchanged on failure. may raise (memory) */
static int decode_push(lua_State *L, const uint8_t *base, const fy_rlp_item_t *item, int depth, size_t *where) {
  if (!item->is_list) {
    lua_pushlstring(L, (const char *)item->p, item->len);
    return 0;
  }
  if (depth >= RLP_LUA_MAX_DEPTH) {
    *where = (size_t)(item->p - base);
    return FY_RLP_EDEPTH;
  }
  luaL_checkstack(L, 3, "ferry.rlp: decode");
  lua_newtable(L); /* [..., t] */
  fy_rlp_iter_t it;
  fy_rlp_item_t sub;
  int rc;
  lua_Integer i = 0;
  fy_rlp_iter_init(&it, item);
  for (;;) {
    const uint8_t *at = it.p;
    rc = fy_rlp_iter_next(&it, &sub);
    if (rc == 0) break;
    if (rc < 0) {
      *where = (size_t)(at - base);
      break;
    }
    if ((rc = decode_push(L, base, &sub, depth + 1, where)) != 0) break;
    lua_rawseti(L, -2, ++i); /* [..., t] */
  }
  if (rc) lua_pop(L, 1);
  return rc;
}

/* decode(bytes) -> value | nil, {code="invalid_argument", message=..., offset=...}.
 * Strings come back as strings, lists as array tables. Raises only on a non-string. */
static int l_rlp_decode(lua_State *L) {
  size_t n;
  const uint8_t *s = (const uint8_t *)fy_checklstring(L, 1, &n);
  fy_rlp_item_t item;
  size_t where = 0;
  int rc = fy_rlp_decode_all(s, n, &item);
  if (rc == FY_RLP_ETRAILING) where = (size_t)(item.p - s) + item.len;
  if (rc == 0) rc = decode_push(L, s, &item, 0, &where);
  if (rc == 0) return 1;
  lua_pushnil(L);
  fy_push_errorf(L, "invalid_argument", "rlp: %s at offset %d", fy_rlp_strerror(rc), (int)where);
  lua_pushstring(L, fy_rlp_err_name(rc));
  lua_setfield(L, -2, "reason");
  lua_pushinteger(L, (lua_Integer)where);
  lua_setfield(L, -2, "offset");
  return 2;
}

static const luaL_Reg rlp_funcs[] = {{"encode", l_rlp_encode}, {"decode", l_rlp_decode}, {NULL, NULL}};

int luaopen_ferry_core_rlp(lua_State *L) {
  if (luaL_newmetatable(L, RLP_BUF_MT)) {
    lua_pushcfunction(L, l_rlp_buf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, rlp_funcs);
  lua_pushinteger(L, RLP_LUA_MAX_DEPTH);
  lua_setfield(L, -2, "MAX_DEPTH");
  return 1;
}
