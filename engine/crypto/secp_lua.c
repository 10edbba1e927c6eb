/* ** secp_lua.c -- ferry.core.secp256k1: keys, addresses, signatures for Lua (binding of secp.c) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero */
#endif
#include "core/bind.h"
#include "crypto/secp_lua.h"
#include "crypto/hex.h"
#include "crypto/key_lua.h"
#include "crypto/secp.h"

#include <lauxlib.h>
#include <string.h>

const char *fy_secp_to_address(lua_State *L, int idx, uint8_t out[20]) {
  size_t n;
  const uint8_t *raw = fy_test_bytes(L, idx, &n);
  if (raw) {
    if (n != 20) return "eth.raw(...) holds an address only when it is 20 bytes";
    memcpy(out, raw, 20);
    return NULL;
  }
  if (lua_type(L, idx) != LUA_TSTRING) return "expected an address: 0x + 40 hex digits";
  const char *s = lua_tolstring(L, idx, &n);
  int rc = fy_secp_address_parse(s, n, out);
  if (rc == FY_SECP_EHEX && n == 20) return "invalid address (want 0x + 40 hex digits; 20 raw bytes go through eth.raw)";
  return rc == FY_SECP_OK ? NULL : fy_secp_strerror(rc);
}

void fy_secp_check_address(lua_State *L, int idx, const char *what, uint8_t out[20]) {
  const char *why = fy_secp_to_address(L, idx, out);
  if (why) fy_argerror(L, idx, "%s: %s", what, why);
}

void fy_secp_push_address(lua_State *L, const uint8_t addr[20]) {
  char text[43];
  fy_secp_checksum(addr, text);
  lua_pushlstring(L, text, 42);
}

void fy_secp_check_key(lua_State *L, int idx, const char *what, uint8_t key[32]) {
  size_t n;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n) : NULL;
  uint8_t tmp[32];
  int ok = 0;
  if (fy_key_lua_export(L, idx, key)) return;   /* a ferry.Key: its bytes, for this call only */
  if (s && n == 32) {
    memcpy(key, s, 32);
    return;
  }
  if (s && n == 66 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    ok = 1;
    for (int i = 0; i < 32 && ok; i++) {
      int hi = fy_hexval(s[2 + 2 * i]), lo = fy_hexval(s[3 + 2 * i]);
      if (hi < 0 || lo < 0) ok = 0;
      else tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    if (ok) memcpy(key, tmp, 32);
    explicit_bzero(tmp, sizeof tmp);
  }
  if (!ok) {
    lua_pushfstring(L, "%s must be 32 raw bytes or 0x + 64 hex digits", what);
    fy_argerror_msg(L, idx, lua_tostring(L, -1));
  }
}

/* raise for a bad key without ever printing it */
static int key_error(lua_State *L, int idx, int rc) {
  return fy_argerror_msg(L, idx, fy_secp_strerror(rc));
}

static const uint8_t *check_bytes(lua_State *L, int idx, size_t want, const char *what) {
  size_t n;
  const char *s = fy_checklstring(L, idx, &n);
  if (n != want) {
    lua_pushfstring(L, "%s must be %d raw bytes (got %d)", what, (int)want, (int)n);
    fy_argerror_msg(L, idx, lua_tostring(L, -1));
  }
  return (const uint8_t *)s;
}

/* data-level failure: nil, ferry.Error{code=, message=} */
static int push_fail(lua_State *L, const char *code, const char *message) {
  lua_pushnil(L);
  fy_push_errorf(L, code, "%s", message);
  return 2;
}

/* secp.address(key) -> "0x..." */
static int l_secp_address(lua_State *L) {
  uint8_t key[32], addr[20];
  fy_secp_check_key(L, 1, "private key", key);
  int rc = fy_secp_address(key, addr);
  explicit_bzero(key, sizeof key);
  if (rc) return key_error(L, 1, rc);
  fy_secp_push_address(L, addr);
  return 1;
}

/* secp.pubkey(key) -> 64 raw bytes (X||Y) */
static int l_secp_pubkey(lua_State *L) {
  uint8_t key[32], pub[64];
  fy_secp_check_key(L, 1, "private key", key);
  int rc = fy_secp_pubkey(key, pub);
  explicit_bzero(key, sizeof key);
  if (rc) return key_error(L, 1, rc);
  lua_pushlstring(L, (const char *)pub, 64);
  return 1;
}

/* secp.sign(hash32, key) -> r, s, y_parity (0/1) */
static int l_secp_sign(lua_State *L) {
  const uint8_t *h = check_bytes(L, 1, 32, "hash");
  uint8_t key[32], r[32], s[32];
  int y = 0;
  fy_secp_check_key(L, 2, "private key", key);
  int rc = fy_secp_sign(h, key, r, s, &y);
  explicit_bzero(key, sizeof key);
  if (rc) return key_error(L, 2, rc);
  lua_pushlstring(L, (const char *)r, 32);
  lua_pushlstring(L, (const char *)s, 32);
  lua_pushinteger(L, y);
  return 3;
}

static int check_v(lua_State *L, int idx) {
  lua_Integer v = fy_checkinteger(L, idx);
  if (v == 0 || v == 1) return (int)v;
  if (v == 27 || v == 28) return (int)(v - 27);
  return fy_argerror_msg(L, idx, "v must be 0, 1, 27 or 28");
}

/* secp.recover(hash32, r, s, v) -> address | nil, err */
static int l_secp_recover(lua_State *L) {
  const uint8_t *h = check_bytes(L, 1, 32, "hash");
  const uint8_t *r = check_bytes(L, 2, 32, "r");
  const uint8_t *s = check_bytes(L, 3, 32, "s");
  int y = check_v(L, 4);
  uint8_t addr[20];
  int rc = fy_secp_recover_address(h, r, s, y, addr);
  if (rc) return push_fail(L, "invalid_signature", fy_secp_strerror(rc));
  fy_secp_push_address(L, addr);
  return 1;
}

/* secp.personal_hash(msg) -> 32 bytes (EIP-191) */
static int l_secp_personal_hash(lua_State *L) {
  size_t n;
  const char *m = fy_checklstring(L, 1, &n);
  uint8_t h[32];
  fy_secp_personal_hash((const uint8_t *)m, n, h);
  lua_pushlstring(L, (const char *)h, 32);
  return 1;
}

/* secp.personal_sign(msg, key) -> 65 bytes r||s||v (v = 27/28) */
static int l_secp_personal_sign(lua_State *L) {
  size_t n;
  const char *m = fy_checklstring(L, 1, &n);
  uint8_t key[32], sig[65];
  fy_secp_check_key(L, 2, "private key", key);
  int rc = fy_secp_personal_sign((const uint8_t *)m, n, key, sig);
  explicit_bzero(key, sizeof key);
  if (rc) return key_error(L, 2, rc);
  lua_pushlstring(L, (const char *)sig, 65);
  return 1;
}

/* secp.personal_recover(msg, sig65) -> address | nil, err */
static int l_secp_personal_recover(lua_State *L) {
  size_t n;
  const char *m = fy_checklstring(L, 1, &n);
  const uint8_t *sig = check_bytes(L, 2, 65, "signature");
  uint8_t h[32], addr[20];
  int v = sig[64];
  if (v >= 27) v -= 27;
  fy_secp_personal_hash((const uint8_t *)m, n, h);
  int rc = fy_secp_recover_address(h, sig, sig + 32, v, addr);
  if (rc) return push_fail(L, "invalid_signature", fy_secp_strerror(rc));
  fy_secp_push_address(L, addr);
  return 1;
}

/* secp.checksum(addr) -> "0x..." (raises on bad length/hex/checksum) */
static int l_secp_checksum(lua_State *L) {
  uint8_t addr[20];
  fy_secp_check_address(L, 1, "address", addr);
  fy_secp_push_address(L, addr);
  return 1;
}

/* secp.is_address(s) -> boolean (0x + 40 hex, EIP-55 valid if mixed case) */
static int l_secp_is_address(lua_State *L) {
  size_t n;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
  uint8_t addr[20];
  lua_pushboolean(L, s && fy_secp_address_parse(s, n, addr) == FY_SECP_OK);
  return 1;
}

/* secp.is_valid_key(key) -> boolean (32 bytes, 0 < k < n) */
static int l_secp_is_valid_key(lua_State *L) {
  size_t n;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
  lua_pushboolean(L, s && n == 32 && fy_secp_key_check((const uint8_t *)s) == FY_SECP_OK);
  return 1;
}

static const luaL_Reg secp_funcs[] = {
  {"address", l_secp_address},
  {"pubkey", l_secp_pubkey},
  {"sign", l_secp_sign},
  {"recover", l_secp_recover},
  {"personal_hash", l_secp_personal_hash},
  {"personal_sign", l_secp_personal_sign},
  {"personal_recover", l_secp_personal_recover},
  {"checksum", l_secp_checksum},
  {"is_address", l_secp_is_address},
  {"is_valid_key", l_secp_is_valid_key},
  {NULL, NULL},
};

int luaopen_ferry_core_secp256k1(lua_State *L) {
  if (fy_secp_init() != FY_SECP_OK) return fy_error(L, "ferry.secp256k1: %s", fy_secp_strerror(FY_SECP_EINIT));
  luaL_newlib(L, secp_funcs);
  return 1;
}
