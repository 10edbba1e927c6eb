/* ** keccak_lua.c -- ferry.core.keccak: keccak256 over raw strings, plus 0x-hex helpers. */
#include "core/bind.h"
#include <lauxlib.h>
#include "crypto/hex.h"
#include <lua.h>

#include "crypto/keccak.h"
#include "crypto/keccak_lua.h"

int luaopen_ferry_core_keccak(lua_State *L);

/* keccak256(bytes) -> 32 raw bytes */
static int l_keccak_keccak256(lua_State *L) {
  size_t n;
  const char *s = (const char *)fy_test_bytes(L, 1, &n); /* eth.raw(...) */
  if (!s) s = fy_checklstring(L, 1, &n);
  uint8_t out[32];
  fy_keccak256((const uint8_t *)s, n, out);
  lua_pushlstring(L, (const char *)out, sizeof out);
  return 1;
}

/* tohex(bytes) -> "0x" .. lowercase hex ("0x" for the empty string) */
static int l_keccak_tohex(lua_State *L) {
  size_t n;
  const uint8_t *s = (const uint8_t *)fy_checklstring(L, 1, &n);
  fy_push_hex(L, s, n);
  return 1;
}

/* fromhex("0x..") -> bytes. The 0x prefix is optional; odd length or a non-hex digit raises. */
static int l_keccak_fromhex(lua_State *L) {
  size_t n;
  const char *s = fy_checklstring(L, 1, &n);
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2, n -= 2;
  if (n % 2) return fy_argerror_msg(L, 1, "hex string has an odd number of digits");
  for (size_t i = 0; i < n; i++)
    if (fy_hexval(s[i]) < 0)
      return fy_argerror_msg(L, 1, lua_pushfstring(L, "invalid hex digit at position %d", (int)(i + 1)));
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n / 2);
  for (size_t i = 0; i < n / 2; i++) p[i] = (char)(fy_hexval(s[2 * i]) << 4 | fy_hexval(s[2 * i + 1]));
  luaL_pushresultsize(&b, n / 2);
  return 1;
}

static const luaL_Reg keccak_funcs[] = {
    {"keccak256", l_keccak_keccak256}, {"tohex", l_keccak_tohex}, {"fromhex", l_keccak_fromhex}, {NULL, NULL}};

int luaopen_ferry_core_keccak(lua_State *L) {
  luaL_newlib(L, keccak_funcs);
  return 1;
}
