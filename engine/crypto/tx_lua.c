/* ** tx_lua.c -- ferry.core.tx: sign/encode/decode EVM transactions from Lua (binding of tx.c) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero */
#endif
#include "core/bind.h"
#include "crypto/keccak.h"
#include "crypto/hex.h"
#include "crypto/keccak_lua.h"
#include "crypto/secp.h"
#include "crypto/secp_lua.h"
#include "crypto/tx.h"
#include "crypto/u256_lua.h"

#include <lauxlib.h>
#include <string.h>

#define TX_BOX_MT "ferry.TxBox"

/* malloc'd state (output buffer, decoded access list) boxed so that a raise cannot leak it */
typedef struct {
  fy_buf_t buf;
  fy_tx_t tx;
} tx_box_t;

static int l_box_gc(lua_State *L) {
  tx_box_t *b = fy_checkudata(L, 1, TX_BOX_MT);
  fy_buf_free(&b->buf);
  fy_tx_free(&b->tx);
  return 0;
}

static tx_box_t *box_new(lua_State *L) {
  tx_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, TX_BOX_MT);
  return b;
}

/* ------------------------------------------------------------------ Lua table -> fy_tx_t */

typedef struct {
  lua_State *L;
  const char *fn;  /* "sign", "encode_unsigned", ... for messages */
  int t;           /* the options table */
  int anchor;      /* keeps strings and arrays alive */
  lua_Integer nanchor;
} conv_t;

/* Move the top value into the anchor table, created on first use (most transactions, with no
 * access list, never need it: data stays alive on the stack). */
static void anchor_top(conv_t *c) {
  if (!c->anchor) {
    lua_createtable(c->L, 4, 0);
    lua_insert(c->L, -2);
    c->anchor = lua_gettop(c->L) - 1;
  }
  lua_rawseti(c->L, c->anchor, ++c->nanchor);
}

static int field_error(conv_t *c, const char *k, const char *why) {
  return fy_error(c->L, "tx.%s: field '%s': %s", c->fn, k, why);
}

/* push t[k]; returns its type */
static int get(conv_t *c, const char *k) { return lua_getfield(c->L, c->t, k); }

static void value_u256(conv_t *c, const char *k, int idx, fy_u256_t *out) {
  lua_State *L = c->L;
  fy_u256_t *u = fy_u256_test(L, idx);
  if (u) { *out = *u; return; }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int isint;
    lua_Integer i = lua_tointegerx(L, idx, &isint);
    if (!isint) field_error(c, k, "expected an integer");
    if (i < 0) field_error(c, k, "negative value");
    fy_u256_from_u64(out, (uint64_t)i);
    return;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    int rc = fy_u256_parse(out, s, n);
    if (rc) field_error(c, k, fy_u256_strerror(rc));
    return;
  }
  field_error(c, k, "expected U256, non-negative integer, or decimal/0x string");
}

/* numeric field; absent -> def (when allowed) */
static void opt_u256(conv_t *c, const char *k, int required, fy_u256_t *out) {
  if (get(c, k) == LUA_TNIL) {
    if (required) field_error(c, k, "required");
    fy_u256_from_u64(out, 0);
  } else {
    value_u256(c, k, lua_gettop(c->L), out);
  }
  lua_pop(c->L, 1);
}

static uint64_t opt_u64(conv_t *c, const char *k, int required) {
  fy_u256_t u;
  opt_u256(c, k, required, &u);
  if (u.w[1] || u.w[2] || u.w[3]) field_error(c, k, "out of range (max 2^64-1)");
  return u.w[0];
}

static void forbid(conv_t *c, const char *k, const char *why) {
  if (get(c, k) != LUA_TNIL) field_error(c, k, why);
  lua_pop(c->L, 1);
}

/* a storage key: 0x + 64 hex digits, eth.raw of 32 bytes, or (this binding being the raw layer,
 * as for data) a 32-byte string */
static const uint8_t *bytes32(conv_t *c, int idx, const char *k, uint8_t *tmp) {
  size_t n;
  const uint8_t *raw = fy_test_bytes(c->L, idx, &n);
  const char *s = raw ? NULL : lua_type(c->L, idx) == LUA_TSTRING ? lua_tolstring(c->L, idx, &n) : NULL;
  if (raw && n == 32) return raw;
  if (s && n == 32) return (const uint8_t *)s;
  if (s && n == 66 && fy_is_0x(s, n)) {
    if (fy_hex_decode(s + 2, 32, tmp) >= 0) field_error(c, k, "bad hex digit in storage key");
    return tmp;
  }
  return field_error(c, k, "storage keys must be 0x + 64 hex digits or 32 bytes"), NULL;
}

static void read_access_list(conv_t *c, fy_tx_t *tx) {
  lua_State *L = c->L;
  if (get(c, "access_list") == LUA_TNIL) { lua_pop(L, 1); return; }
  int al = lua_gettop(L);
  if (!lua_istable(L, al)) field_error(c, "access_list", "expected a table");
  lua_Integer n = luaL_len(L, al);
  if (n < 0 || n > (1 << 20)) field_error(c, "access_list", "too many entries");
  fy_tx_access_t *entries = NULL;
  if (n) {
    entries = lua_newuserdatauv(L, (size_t)n * sizeof *entries, 0);
    anchor_top(c);
  }
  for (lua_Integer i = 1; i <= n; i++) {
    fy_tx_access_t *e = &entries[i - 1];
    if (lua_geti(L, al, i) != LUA_TTABLE) field_error(c, "access_list", "entries must be tables");
    int ei = lua_gettop(L);
    if (lua_getfield(L, ei, "address") == LUA_TNIL) { lua_pop(L, 1); lua_geti(L, ei, 1); }
    const char *why = fy_secp_to_address(L, lua_gettop(L), e->address);
    if (why) field_error(c, "access_list", lua_pushfstring(L, "address: %s", why));
    lua_pop(L, 1);
    if (lua_getfield(L, ei, "storage_keys") == LUA_TNIL) {
      lua_pop(L, 1);
      if (lua_getfield(L, ei, "storageKeys") == LUA_TNIL) { lua_pop(L, 1); lua_geti(L, ei, 2); }
    }
    int ki = lua_gettop(L);
    e->keys = NULL;
    e->n_keys = 0;
    if (!lua_isnil(L, ki)) {
      if (!lua_istable(L, ki)) field_error(c, "access_list", "storage_keys must be a table");
      lua_Integer nk = luaL_len(L, ki);
      if (nk < 0 || nk > (1 << 20)) field_error(c, "access_list", "too many storage keys");
      if (nk) {
        uint8_t (*keys)[32] = lua_newuserdatauv(L, (size_t)nk * 32, 0);
        anchor_top(c);
        for (lua_Integer j = 1; j <= nk; j++) {
          lua_geti(L, ki, j);
          const uint8_t *k = bytes32(c, lua_gettop(L), "access_list", keys[j - 1]);
          if (k != keys[j - 1]) memcpy(keys[j - 1], k, 32);
          lua_pop(L, 1);
        }
        e->keys = (const uint8_t(*)[32])keys;
        e->n_keys = (size_t)nk;
      }
    }
    lua_pop(L, 2); /* keys, entry */
  }
  /* the list and the anchor (above it, made for `entries`) stay on the stack */
  tx->access_list = entries;
  tx->access_len = (size_t)n;
}

/* fill *tx from the options table at idx; may raise. Leaves what keeps its strings and arrays
 * alive on the stack (the data string, an anchor table): callers pop nothing before using tx. */
static void check_tx(lua_State *L, int idx, const char *fn, fy_tx_t *tx) {
  conv_t c = {L, fn, lua_absindex(L, idx), 0, 0};
  lua_Integer type = 2;
  fy_checktype(L, c.t, LUA_TTABLE);
  memset(tx, 0, sizeof *tx);
  if (get(&c, "type") != LUA_TNIL) {
    int isint;
    type = lua_tointegerx(L, -1, &isint);
    if (!isint || (type != 0 && type != 2)) field_error(&c, "type", "must be 2 (EIP-1559) or 0 (legacy)");
  }
  lua_pop(L, 1);
  tx->type = (int)type;
  tx->chain_id = opt_u64(&c, "chain_id", 1);
  tx->has_chain_id = 1;
  tx->nonce = opt_u64(&c, "nonce", 1);
  tx->gas = opt_u64(&c, "gas", 1);
  opt_u256(&c, "value", 0, &tx->value);
  if (type == 2) {
    opt_u256(&c, "max_fee", 1, &tx->max_fee);
    opt_u256(&c, "max_priority_fee", 1, &tx->max_priority_fee);
    forbid(&c, "gas_price", "only for legacy (type 0); use max_fee/max_priority_fee");
    read_access_list(&c, tx);
  } else {
    opt_u256(&c, "gas_price", 1, &tx->gas_price);
    forbid(&c, "max_fee", "only for type 2; use gas_price");
    forbid(&c, "max_priority_fee", "only for type 2; use gas_price");
    forbid(&c, "access_list", "not supported on legacy (type 0) transactions");
  }
  if (get(&c, "to") != LUA_TNIL) {
    const char *why = fy_secp_to_address(L, lua_gettop(L), tx->to);
    if (why) field_error(&c, "to", why);
    tx->has_to = 1;
  }
  lua_pop(L, 1);
  if (get(&c, "data") != LUA_TNIL) {
    tx->data = fy_test_bytes(L, -1, &tx->data_len);                     /* eth.raw(...) */
    if (!tx->data) {
      if (lua_type(L, -1) != LUA_TSTRING) field_error(&c, "data", "expected a raw byte string or eth.raw(...)");
      tx->data = (const uint8_t *)lua_tolstring(L, -1, &tx->data_len); /* stays on the stack */
    }
  } else {
    lua_pop(L, 1);
  }
}

static int raise_rc(lua_State *L, const char *fn, int rc) {
  if (rc == FY_TX_ENOMEM) return luaL_error(L, "tx.%s: out of memory", fn);
  return fy_error(L, "tx.%s: %s", fn, fy_tx_strerror(rc));
}

/* tx.encode_unsigned(t) -> bytes (the payload whose keccak is signed) */
static int l_tx_encode_unsigned(lua_State *L) {
  fy_tx_t tx;
  check_tx(L, 1, "encode_unsigned", &tx);
  tx_box_t *b = box_new(L);
  int rc = fy_tx_encode_unsigned(&tx, &b->buf);
  if (rc) return raise_rc(L, "encode_unsigned", rc);
  lua_pushlstring(L, (const char *)b->buf.data, b->buf.len);
  return 1;
}

/* tx.signing_hash(t) -> 32 bytes */
static int l_tx_signing_hash(lua_State *L) {
  fy_tx_t tx;
  uint8_t h[32];
  check_tx(L, 1, "signing_hash", &tx);
  int rc = fy_tx_signing_hash(&tx, h);
  if (rc) return raise_rc(L, "signing_hash", rc);
  lua_pushlstring(L, (const char *)h, 32);
  return 1;
}

/* tx.sign(t [, key [, "hex"]]) -> raw, hash. key: 32 raw bytes or 0x + 64 hex digits, or
 * t.key when not given. "hex": both as 0x-hex text rather than bytes (what signer:sign returns,
 * without two more strings and calls). */
static int l_tx_sign(lua_State *L) {
  fy_tx_t tx;
  uint8_t key[32], h[32];
  int hex = 0;
  lua_settop(L, 3);                                   /* check_tx leaves its anchors above these */
  if (!lua_isnil(L, 3)) {
    const char *opt = fy_checkstring(L, 3);
    if (strcmp(opt, "hex") != 0) return fy_argerror_msg(L, 3, "expected \"hex\" or nothing");
    hex = 1;
  }
  check_tx(L, 1, "sign", &tx);
  tx_box_t *b = box_new(L);
  int k = 2;
  if (lua_isnil(L, 2)) {
    lua_getfield(L, 1, "key");
    if (lua_isnil(L, -1)) return fy_error(L, "tx.sign: field 'key': required");
    k = lua_gettop(L);
  }
  fy_secp_check_key(L, k, "key", key);                          /* last check: no raise until wiped */
  int rc = fy_tx_sign(&tx, key, &b->buf, h);
  explicit_bzero(key, sizeof key);
  if (rc == FY_TX_EKEY) return fy_error(L, "tx.sign: %s: invalid private key", k == 2 ? "key" : "field 'key'");
  if (rc) return raise_rc(L, "sign", rc);
  if (hex) {
    fy_push_hex(L, b->buf.data, b->buf.len);
    fy_push_hex(L, h, 32);
  } else {
    lua_pushlstring(L, (const char *)b->buf.data, b->buf.len);
    lua_pushlstring(L, (const char *)h, 32);
  }
  return 2;
}

/* ------------------------------------------------------------------ decode */

static void push_u64(lua_State *L, uint64_t v) {
  if (v <= (uint64_t)LUA_MAXINTEGER) {
    lua_pushinteger(L, (lua_Integer)v);
  } else {
    fy_u256_t u;
    fy_u256_from_u64(&u, v);
    fy_u256_push(L, &u);
  }
}

static void set_u256(lua_State *L, const char *k, const fy_u256_t *v) {
  fy_u256_push(L, v);
  lua_setfield(L, -2, k);
}

static int push_fail(lua_State *L, const char *message) {
  lua_pushnil(L);
  fy_push_errorf(L, "invalid_argument", "%s", message);
  return 2;
}

/* tx.decode(raw) -> {type, chain_id, nonce, gas, ..., from, hash} | nil, err */
static int l_tx_decode(lua_State *L) {
  size_t n;
  const uint8_t *raw = (const uint8_t *)fy_checklstring(L, 1, &n);
  tx_box_t *b = box_new(L);
  fy_tx_t *tx = &b->tx;
  uint8_t from[20], h[32];
  int rc = fy_tx_decode(raw, n, tx);
  if (rc == FY_TX_ENOMEM) return luaL_error(L, "tx.decode: out of memory");
  if (rc) return push_fail(L, fy_tx_strerror(rc));
  rc = fy_tx_sender(tx, from);
  if (rc == FY_TX_ENOMEM) return luaL_error(L, "tx.decode: out of memory");
  if (rc) return push_fail(L, fy_tx_strerror(rc));
  fy_keccak256(raw, n, h);
  lua_createtable(L, 0, 18);
  lua_pushinteger(L, tx->type);
  lua_setfield(L, -2, "type");
  if (tx->has_chain_id) {
    push_u64(L, tx->chain_id);
    lua_setfield(L, -2, "chain_id");
  }
  push_u64(L, tx->nonce);
  lua_setfield(L, -2, "nonce");
  push_u64(L, tx->gas);
  lua_setfield(L, -2, "gas");
  if (tx->type == FY_TX_EIP1559) {
    set_u256(L, "max_fee", &tx->max_fee);
    set_u256(L, "max_priority_fee", &tx->max_priority_fee);
  } else {
    set_u256(L, "gas_price", &tx->gas_price);
  }
  if (tx->has_to) {
    fy_secp_push_address(L, tx->to);
    lua_setfield(L, -2, "to");
  }
  set_u256(L, "value", &tx->value);
  lua_pushlstring(L, (const char *)tx->data, tx->data_len);
  lua_setfield(L, -2, "data");
  if (tx->type == FY_TX_EIP1559) {
    lua_createtable(L, (int)(tx->access_len < (1u << 20) ? tx->access_len : 0), 0);
    for (size_t i = 0; i < tx->access_len; i++) {
      const fy_tx_access_t *e = &tx->access_list[i];
      lua_createtable(L, 0, 2);
      fy_secp_push_address(L, e->address);
      lua_setfield(L, -2, "address");
      lua_createtable(L, (int)(e->n_keys < (1u << 20) ? e->n_keys : 0), 0);
      for (size_t j = 0; j < e->n_keys; j++) {
        lua_pushlstring(L, (const char *)e->keys[j], 32);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
      }
      lua_setfield(L, -2, "storage_keys");
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "access_list");
  } else {
    /* v = chainId*2 + 35 + yParity (EIP-155) or 27 + yParity */
    fy_u256_t v, t;
    fy_u256_from_u64(&v, tx->has_chain_id ? tx->chain_id : 0);
    fy_u256_add(&v, &v, &v);
    fy_u256_from_u64(&t, (uint64_t)(tx->has_chain_id ? 35 : 27) + (uint64_t)tx->y_parity);
    if (!tx->has_chain_id) fy_u256_from_u64(&v, 0);
    fy_u256_add(&v, &v, &t);
    if (!v.w[1] && !v.w[2] && !v.w[3] && v.w[0] <= (uint64_t)LUA_MAXINTEGER) lua_pushinteger(L, (lua_Integer)v.w[0]);
    else fy_u256_push(L, &v);
    lua_setfield(L, -2, "v");
  }
  lua_pushinteger(L, tx->y_parity);
  lua_setfield(L, -2, "y_parity");
  lua_pushlstring(L, (const char *)tx->r, 32);
  lua_setfield(L, -2, "r");
  lua_pushlstring(L, (const char *)tx->s, 32);
  lua_setfield(L, -2, "s");
  fy_secp_push_address(L, from);
  lua_setfield(L, -2, "from");
  lua_pushlstring(L, (const char *)h, 32);
  lua_setfield(L, -2, "hash");
  return 1;
}

static const luaL_Reg tx_funcs[] = {
  {"sign", l_tx_sign},
  {"encode_unsigned", l_tx_encode_unsigned},
  {"signing_hash", l_tx_signing_hash},
  {"decode", l_tx_decode},
  {NULL, NULL},
};

int luaopen_ferry_core_tx(lua_State *L) {
  if (luaL_newmetatable(L, TX_BOX_MT)) {
    lua_pushcfunction(L, l_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, tx_funcs);
  return 1;
}
