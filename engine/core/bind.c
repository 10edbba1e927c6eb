/*
** bind.c -- ferry.Error from C, argument checks that raise it, ferry.Bytes (see bind.h).
*/
#include "core/bind.h"
#include "crypto/hex.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <string.h>

static void set_error_mt(lua_State *L) {
  if (luaL_getmetatable(L, "ferry.Error") == LUA_TTABLE) lua_setmetatable(L, -2);
  else lua_pop(L, 1);
}

/* [msg] -> [error table] */
static void error_from_top(lua_State *L, const char *code) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_rotate(L, -2, 1);
  lua_setfield(L, -2, "message");
  set_error_mt(L);
}

void fy_push_errorf(lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  error_from_top(L, code);
}

int fy_raise(lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  error_from_top(L, code);
  return lua_error(L);
}

int fy_argerror(lua_State *L, int arg, const char *fmt, ...) {
  lua_Debug ar;
  const char *name = "?";
  va_list ap;
  va_start(ap, fmt);
  const char *why = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  if (lua_getstack(L, 0, &ar)) {
    lua_getinfo(L, "n", &ar);
    if (ar.namewhat && strcmp(ar.namewhat, "method") == 0 && --arg == 0) {
      lua_pushfstring(L, "calling '%s' on bad self (%s)", ar.name ? ar.name : "?", why);
      error_from_top(L, "invalid_argument");
      return lua_error(L);
    }
    if (ar.name) name = ar.name;
  }
  lua_pushfstring(L, "bad argument #%d to '%s' (%s)", arg, name, why);
  error_from_top(L, "invalid_argument");
  lua_pushinteger(L, arg);
  lua_setfield(L, -2, "argument");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "call");
  return lua_error(L);
}

int fy_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA) got = "light userdata";
  else got = luaL_typename(L, arg);
  return fy_argerror(L, arg, "%s expected, got %s", tname, got);
}

const char *fy_checklstring(lua_State *L, int arg, size_t *len) {
  int t = lua_type(L, arg);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) fy_typeerror(L, arg, "string");
  return lua_tolstring(L, arg, len);
}

const char *fy_optlstring(lua_State *L, int arg, const char *def, size_t *len) {
  if (lua_isnoneornil(L, arg)) {
    if (len) *len = def ? strlen(def) : 0;
    return def;
  }
  return fy_checklstring(L, arg, len);
}

lua_Integer fy_checkinteger(lua_State *L, int arg) {
  int ok;
  lua_Integer v = lua_tointegerx(L, arg, &ok);
  if (!ok) {
    if (lua_isnumber(L, arg)) fy_argerror(L, arg, "number has no integer representation");
    else fy_typeerror(L, arg, "number");
  }
  return v;
}

lua_Integer fy_optinteger(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : fy_checkinteger(L, arg);
}

lua_Number fy_checknumber(lua_State *L, int arg) {
  int ok;
  lua_Number v = lua_tonumberx(L, arg, &ok);
  if (!ok) fy_typeerror(L, arg, "number");
  return v;
}

lua_Number fy_optnumber(lua_State *L, int arg, lua_Number def) {
  return lua_isnoneornil(L, arg) ? def : fy_checknumber(L, arg);
}

void fy_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) fy_typeerror(L, arg, lua_typename(L, t));
}

void fy_checkany(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNONE) fy_argerror(L, arg, "value expected");
}

int fy_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]) {
  const char *name = def && lua_isnoneornil(L, arg) ? def : fy_checkstring(L, arg);
  for (int i = 0; lst[i]; i++)
    if (strcmp(lst[i], name) == 0) return i;
  return fy_argerror(L, arg, "invalid option '%s'", name);
}

void *fy_checkudata(lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (!p) fy_typeerror(L, arg, tname);
  return p;
}

/* ------------------------------------------------------------------------------------------
** ferry.Bytes: raw bytes said to be raw (eth.raw). A full userdata {size_t n; bytes}.
** ---------------------------------------------------------------------------------------- */

typedef struct {
  size_t n;
  uint8_t p[];
} bytes_t;

void fy_push_bytes(lua_State *L, const uint8_t *p, size_t n) {
  bytes_t *b = lua_newuserdatauv(L, sizeof *b + n, 0);
  b->n = n;
  if (n) memcpy(b->p, p, n);
  luaL_setmetatable(L, FY_BYTES_MT);
}

const uint8_t *fy_test_bytes(lua_State *L, int idx, size_t *n) {
  bytes_t *b = luaL_testudata(L, idx, FY_BYTES_MT);
  if (!b) return NULL;
  *n = b->n;
  return b->p;
}

const char *fy_to_bytes(lua_State *L, int idx, const uint8_t **p, size_t *n) {
  idx = lua_absindex(L, idx);
  const uint8_t *raw = fy_test_bytes(L, idx, n);
  if (raw) { *p = raw; return NULL; }
  if (lua_type(L, idx) != LUA_TSTRING) return "expected 0x-hex text or eth.raw(bytes)";
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (!fy_is_0x(s, len)) return "expected 0x-hex text (raw bytes go through eth.raw), got a plain string";
  if (len % 2) return "odd number of hex digits";
  size_t m = (len - 2) / 2;
  luaL_Buffer b;
  uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &b, m);
  long bad = fy_hex_decode(s + 2, m, out);
  if (bad >= 0) {
    lua_pop(L, 1); /* the buffer's box, if it made one: nothing else was pushed */
    return "bad hex digit";
  }
  luaL_pushresultsize(&b, m);
  lua_replace(L, idx);
  *p = (const uint8_t *)lua_tolstring(L, idx, n);
  return NULL;
}

const uint8_t *fy_check_bytes(lua_State *L, int arg, const char *what, size_t *n) {
  const uint8_t *p;
  const char *why = fy_to_bytes(L, arg, &p, n);
  if (why) fy_argerror(L, arg, "%s: %s", what, why);
  return p;
}

static int l_bytes_len(lua_State *L) {
  bytes_t *b = fy_checkudata(L, 1, FY_BYTES_MT);
  lua_pushinteger(L, (lua_Integer)b->n);
  return 1;
}

void fy_push_hex(lua_State *L, const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  luaL_Buffer b;
  char *o = luaL_buffinitsize(L, &b, 2 + 2 * n);
  o[0] = '0';
  o[1] = 'x';
  for (size_t i = 0; i < n; i++) {
    o[2 + 2 * i] = digits[p[i] >> 4];
    o[3 + 2 * i] = digits[p[i] & 15];
  }
  luaL_pushresultsize(&b, 2 + 2 * n);
}

/* tostring: "ferry.Bytes(0x...)", the first 32 bytes shown */
static int l_bytes_tostring(lua_State *L) {
  bytes_t *b = fy_checkudata(L, 1, FY_BYTES_MT);
  fy_push_hex(L, b->p, b->n > 32 ? 32 : b->n);
  lua_pushfstring(L, "ferry.Bytes(%s%s)", lua_tostring(L, -1), b->n > 32 ? "..." : "");
  return 1;
}

static int l_bytes_eq(lua_State *L) {
  bytes_t *a = luaL_testudata(L, 1, FY_BYTES_MT), *b = luaL_testudata(L, 2, FY_BYTES_MT);
  lua_pushboolean(L, a && b && a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0));
  return 1;
}

/* bytes.raw(s) -> ferry.Bytes (a ferry.Bytes is returned as it is) */
static int l_bytes_raw(lua_State *L) {
  size_t n;
  if (fy_test_bytes(L, 1, &n)) { lua_settop(L, 1); return 1; }
  if (lua_type(L, 1) != LUA_TSTRING) return fy_typeerror(L, 1, "string");
  const char *s = lua_tolstring(L, 1, &n);
  fy_push_bytes(L, (const uint8_t *)s, n);
  return 1;
}

/* bytes.is_raw(v) -> boolean */
static int l_bytes_is_raw(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, FY_BYTES_MT) != NULL);
  return 1;
}

/* bytes.hex(b) / b:hex() -> "0x..." */
static int l_bytes_hex(lua_State *L) {
  bytes_t *b = fy_checkudata(L, 1, FY_BYTES_MT);
  fy_push_hex(L, b->p, b->n);
  return 1;
}

/* bytes.string(b) / b:string() -> the raw bytes as a Lua string */
static int l_bytes_string(lua_State *L) {
  bytes_t *b = fy_checkudata(L, 1, FY_BYTES_MT);
  lua_pushlstring(L, (const char *)b->p, b->n);
  return 1;
}

void fy_bytes_init(lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__len", l_bytes_len}, {"__tostring", l_bytes_tostring}, {"__eq", l_bytes_eq}, {NULL, NULL}};
  static const luaL_Reg methods[] = {{"hex", l_bytes_hex}, {"string", l_bytes_string}, {NULL, NULL}};
  if (luaL_newmetatable(L, FY_BYTES_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

int luaopen_ferry_core_bytes(lua_State *L) {
  static const luaL_Reg f[] = {{"raw", l_bytes_raw}, {"is_raw", l_bytes_is_raw}, {"hex", l_bytes_hex},
                               {"string", l_bytes_string}, {NULL, NULL}};
  fy_bytes_init(L);
  luaL_newlib(L, f);
  return 1;
}
