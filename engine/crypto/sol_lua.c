/*
** sol_lua.c -- ferry.core.sol: base58, ed25519 keys (ferry.SolKey), the message compiler,
** signing, the wire decoder and PDAs over base58.c, ed25519.c and sol.c.
**
** Keys, blockhashes and signatures are raw byte strings here (32 or 64 bytes); base58 text is
** stdlib/ferry/sol's business, which converts at its edge. Malformed input from outside (wire
** bytes, base58 text) is `nil, err`; a wrong argument from the caller raises invalid_argument.
** Decoded indices are the wire's, 0-based.
*/
#include "core/bind.h"
#include "crypto/base58.h"
#include "crypto/buf.h"
#include "crypto/ed25519.h"
#include "crypto/hex.h"
#include "crypto/sol.h"

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SOLKEY_MT "ferry.SolKey"

int luaopen_ferry_core_sol(lua_State *L);

static int push_fail(lua_State *L, const char *message) {
  lua_pushnil(L);
  fy_push_errorf(L, "invalid_argument", "%s", message);
  return 2;
}

/* exactly n raw bytes at arg */
static const uint8_t *check_raw(lua_State *L, int arg, size_t want, const char *what) {
  size_t n;
  const char *s = fy_checklstring(L, arg, &n);
  if (n != want) fy_argerror(L, arg, "%s must be %d bytes, got %d", what, (int)want, (int)n);
  return (const uint8_t *)s;
}

/* t[field] as exactly want raw bytes (t at idx); NULL when absent and optional */
static const uint8_t *field_raw(lua_State *L, int idx, const char *field, size_t want, int optional) {
  lua_getfield(L, idx, field);
  if (lua_isnil(L, -1) && optional) {
    lua_pop(L, 1);
    return NULL;
  }
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (!s || lua_type(L, -1) != LUA_TSTRING || n != want)
    fy_error(L, "'%s' must be %d raw bytes", field, (int)want);
  lua_pop(L, 1); /* the string stays alive: the caller's table holds it */
  return (const uint8_t *)s;
}

/* ---- base58 ------------------------------------------------------------------------------- */

static int l_b58encode(lua_State *L) {
  size_t n;
  const uint8_t *s = (const uint8_t *)fy_checklstring(L, 1, &n);
  if (n > FY_B58_MAX_IN) return fy_argerror(L, 1, "at most %d bytes", FY_B58_MAX_IN);
  char out[FY_B58_ENCODED_MAX(FY_B58_MAX_IN)];
  size_t len = fy_b58_encode(s, n, out, sizeof out);
  lua_pushlstring(L, out, len);
  return 1;
}

/* b58decode(text [, len]) -> bytes | nil, err. With len the decoded length must be exactly it. */
static int l_b58decode(lua_State *L) {
  size_t n, outlen, bad = 0;
  const char *s = fy_checklstring(L, 1, &n);
  lua_Integer want = fy_optinteger(L, 2, -1);
  uint8_t out[FY_B58_MAX_IN];
  int rc = fy_b58_decode(s, n, out, sizeof out, &outlen, &bad);
  if (rc == FY_B58_ECHAR) return push_fail(L, lua_pushfstring(L, "invalid base58 character at position %d", (int)bad + 1));
  if (rc == FY_B58_EEMPTY) return push_fail(L, "empty base58 text");
  if (rc) return push_fail(L, "base58 text too long");
  if (want >= 0 && (lua_Integer)outlen != want)
    return push_fail(L, lua_pushfstring(L, "base58 text decodes to %d bytes, expected %d", (int)outlen, (int)want));
  lua_pushlstring(L, (const char *)out, outlen);
  return 1;
}

/* ---- base64 (RPC bodies carry transactions and account data in it) ---------------------- */

static int l_b64encode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)fy_checklstring(L, 1, &n);
  size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, cap);
  sodium_bin2base64(out, cap, s, n, sodium_base64_VARIANT_ORIGINAL);
  luaL_pushresultsize(&b, cap - 1);
  return 1;
}

/* b64decode(text) -> bytes | nil, err (strict: padding required, no whitespace) */
static int l_b64decode(lua_State *L) {
  size_t n, len;
  const char *s = fy_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
  const char *end;
  if (sodium_base642bin(out, n / 4 * 3 + 3, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 || end != s + n)
    return push_fail(L, "invalid base64 text");
  luaL_pushresultsize(&b, len);
  return 1;
}

/* ---- ferry.SolKey ------------------------------------------------------------------------- */

typedef struct {
  fy_ed25519_key_t *k; /* NULL once closed */
} solkey_box_t;

static fy_ed25519_key_t *check_key(lua_State *L, int idx) {
  solkey_box_t *b = fy_checkudata(L, idx, SOLKEY_MT);
  if (!b->k) fy_error(L, "ferry.SolKey: the key is closed (its bytes were wiped)");
  return b->k;
}

static solkey_box_t *box_new(lua_State *L) {
  solkey_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->k = NULL;
  luaL_setmetatable(L, SOLKEY_MT);
  return b;
}

static int key_result(lua_State *L, int rc) {
  if (rc == FY_ED_ENOMEM) return luaL_error(L, "ferry.SolKey: %s", fy_ed25519_strerror(rc));
  if (rc) return fy_error(L, "ferry.SolKey: %s", fy_ed25519_strerror(rc));
  return 1;
}

/* key(secret) -> SolKey: 32 raw bytes (a seed) or 64 (seed || public key). Errors never show it. */
static int l_key(lua_State *L) {
  size_t n;
  if (lua_type(L, 1) != LUA_TSTRING) return fy_error(L, "ferry.SolKey: %s", fy_ed25519_strerror(FY_ED_EFORMAT));
  const uint8_t *s = (const uint8_t *)lua_tolstring(L, 1, &n);
  solkey_box_t *b = box_new(L);
  return key_result(L, fy_ed25519_key_new(s, n, &b->k));
}

/* A secret as the Solana tools write it: a JSON array of 64 numbers (id.json), base58 of 64 or
** 32 bytes, or hex of 32/64 bytes. Returns its length, or 0. */
static size_t parse_secret(const char *s, uint8_t out[64]) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
  if (n && s[0] == '[') {
    size_t count = 0;
    const char *p = s + 1;
    for (;;) {
      while (*p == ' ' || *p == '\n') p++;
      if (*p < '0' || *p > '9') return 0;
      unsigned v = 0;
      while (*p >= '0' && *p <= '9') v = v * 10 + (unsigned)(*p++ - '0');
      if (v > 255 || count == 64) return 0;
      out[count++] = (uint8_t)v;
      while (*p == ' ' || *p == '\n') p++;
      if (*p == ']') return count;
      if (*p++ != ',') return 0;
    }
  }
  const char *h = s;
  size_t hn = n;
  if (hn > 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X')) h += 2, hn -= 2;
  if ((hn == 64 || hn == 128) && fy_hex_decode(h, hn / 2, out) < 0) return hn / 2;
  size_t len;
  if (fy_b58_decode(s, n, out, 64, &len, NULL) == FY_B58_OK && (len == 32 || len == 64)) return len;
  return 0;
}

/* keygen() -> SolKey from a random seed (libsodium's CSPRNG); the seed never leaves C. */
static int l_keygen(lua_State *L) {
  uint8_t seed[32];
  if (sodium_init() < 0) return luaL_error(L, "ferry.SolKey: libsodium failed to start");
  randombytes_buf(seed, sizeof seed);
  solkey_box_t *b = box_new(L);
  int rc = fy_ed25519_key_new(seed, sizeof seed, &b->k);
  sodium_memzero(seed, sizeof seed);
  return key_result(L, rc);
}

/* key_from_env(name) -> SolKey | nil, "unset" | "invalid". The text goes straight from the
** environment into the key's page; only a wiped stack buffer is in between. */
static int l_key_from_env(lua_State *L) {
  const char *v = getenv(fy_checkstring(L, 1));
  if (!v || !*v) {
    lua_pushnil(L);
    lua_pushliteral(L, "unset");
    return 2;
  }
  uint8_t secret[64];
  size_t n = parse_secret(v, secret);
  solkey_box_t *b = box_new(L);
  int rc = n ? fy_ed25519_key_new(secret, n, &b->k) : FY_ED_EFORMAT;
  sodium_memzero(secret, sizeof secret);
  if (rc == FY_ED_ENOMEM) return key_result(L, rc);
  if (rc) {
    lua_pushnil(L);
    lua_pushliteral(L, "invalid");
    return 2;
  }
  return 1;
}

static int l_key_public(lua_State *L) {
  lua_pushlstring(L, (const char *)fy_ed25519_key_public(check_key(L, 1)), 32);
  return 1;
}

static int l_key_sign(lua_State *L) {
  fy_ed25519_key_t *k = check_key(L, 1);
  size_t n;
  const uint8_t *msg = (const uint8_t *)fy_checklstring(L, 2, &n);
  uint8_t sig[64];
  fy_ed25519_key_sign(k, msg, n, sig);
  lua_pushlstring(L, (const char *)sig, 64);
  return 1;
}

static int l_key_close(lua_State *L) {
  solkey_box_t *b = fy_checkudata(L, 1, SOLKEY_MT);
  fy_ed25519_key_free(b->k);
  b->k = NULL;
  return 0;
}

static int l_key_tostring(lua_State *L) {
  solkey_box_t *b = fy_checkudata(L, 1, SOLKEY_MT);
  if (!b->k) {
    lua_pushliteral(L, "ferry.SolKey(closed)");
    return 1;
  }
  char addr[FY_B58_ENCODED_MAX(32)];
  fy_b58_encode(fy_ed25519_key_public(b->k), 32, addr, sizeof addr);
  lua_pushfstring(L, "ferry.SolKey(%s)", addr); /* the public key only */
  return 1;
}

static int l_verify(lua_State *L) {
  const uint8_t *pk = check_raw(L, 1, 32, "public key");
  size_t n;
  const uint8_t *msg = (const uint8_t *)fy_checklstring(L, 2, &n);
  const uint8_t *sig = check_raw(L, 3, 64, "signature");
  lua_pushboolean(L, fy_ed25519_verify(pk, msg, n, sig));
  return 1;
}

static int l_on_curve(lua_State *L) {
  lua_pushboolean(L, fy_ed25519_on_curve(check_raw(L, 1, 32, "address")));
  return 1;
}

/* ---- PDAs --------------------------------------------------------------------------------- */

/* seeds table at arg into ptrs/lens (the strings stay alive in the table) */
static size_t read_seeds(lua_State *L, int arg, const uint8_t **ptrs, size_t *lens) {
  fy_checktype(L, arg, LUA_TTABLE);
  size_t n = lua_rawlen(L, arg);
  if (n > FY_SOL_MAX_SEEDS) fy_argerror(L, arg, "at most %d seeds", FY_SOL_MAX_SEEDS);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, arg, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) fy_argerror(L, arg, "seed %d is not a string", (int)i + 1);
    ptrs[i] = (const uint8_t *)lua_tolstring(L, -1, &lens[i]);
    lua_pop(L, 1);
  }
  return n;
}

static int l_find_pda(lua_State *L) {
  const uint8_t *ptrs[FY_SOL_MAX_SEEDS];
  size_t lens[FY_SOL_MAX_SEEDS];
  size_t n = read_seeds(L, 1, ptrs, lens);
  const uint8_t *program = check_raw(L, 2, 32, "program id");
  uint8_t out[32], bump;
  int rc = fy_sol_find_pda(ptrs, lens, n, program, out, &bump);
  if (rc) return push_fail(L, fy_sol_strerror(rc));
  lua_pushlstring(L, (const char *)out, 32);
  lua_pushinteger(L, bump);
  return 2;
}

static int l_create_pda(lua_State *L) {
  const uint8_t *ptrs[FY_SOL_MAX_SEEDS];
  size_t lens[FY_SOL_MAX_SEEDS];
  size_t n = read_seeds(L, 1, ptrs, lens);
  const uint8_t *program = check_raw(L, 2, 32, "program id");
  uint8_t out[32];
  int rc = fy_sol_create_pda(ptrs, lens, n, program, out);
  if (rc) return push_fail(L, fy_sol_strerror(rc));
  lua_pushlstring(L, (const char *)out, 32);
  return 1;
}

static int l_ata(lua_State *L) {
  uint8_t out[32], bump;
  int rc = fy_sol_ata(check_raw(L, 1, 32, "owner"), check_raw(L, 2, 32, "mint"),
                      check_raw(L, 3, 32, "token program"), out, &bump);
  if (rc) return push_fail(L, fy_sol_strerror(rc));
  lua_pushlstring(L, (const char *)out, 32);
  lua_pushinteger(L, bump);
  return 2;
}

/* ---- compile ------------------------------------------------------------------------------ */

/* Everything compile borrows, freed by __gc if a Lua error unwinds through it. */
typedef struct {
  fy_sol_ix_t *ixs;
  fy_sol_meta_t *metas;
  fy_sol_table_t *tables;
  uint8_t (*addrs)[32];
  fy_buf_t out;
} scratch_t;

static int scratch_gc(lua_State *L) {
  scratch_t *s = lua_touserdata(L, 1);
  free(s->ixs), free(s->metas), free(s->tables), free(s->addrs);
  fy_buf_free(&s->out);
  memset(s, 0, sizeof *s);
  return 0;
}

static scratch_t *scratch_new(lua_State *L) {
  scratch_t *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  if (luaL_newmetatable(L, "ferry.sol.scratch")) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return s;
}

static void *xcalloc(lua_State *L, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) luaL_error(L, "out of memory");
  return p;
}

/* count the account metas of every instruction (spec.instructions at idx) */
static size_t count_metas(lua_State *L, int ixs, size_t n_ixs) {
  size_t total = 0;
  for (size_t i = 1; i <= n_ixs; i++) {
    if (lua_rawgeti(L, ixs, (lua_Integer)i) != LUA_TTABLE) fy_error(L, "instruction %d is not a table", (int)i);
    if (lua_getfield(L, -1, "accounts") == LUA_TTABLE) total += lua_rawlen(L, -1);
    else if (!lua_isnil(L, -1)) fy_error(L, "instruction %d: 'accounts' must be a list", (int)i);
    lua_pop(L, 2);
  }
  return total;
}

static void read_ix(lua_State *L, int ix, fy_sol_ix_t *out, fy_sol_meta_t *metas) {
  out->program = field_raw(L, ix, "program", 32, 0);
  out->accounts = metas;
  if (lua_getfield(L, ix, "accounts") == LUA_TTABLE) {
    int acc = lua_gettop(L);
    out->n_accounts = lua_rawlen(L, acc);
    for (size_t j = 0; j < out->n_accounts; j++) {
      if (lua_rawgeti(L, acc, (lua_Integer)j + 1) != LUA_TTABLE) fy_error(L, "account %d is not a table", (int)j + 1);
      metas[j].pubkey = field_raw(L, -1, "pubkey", 32, 0);
      lua_getfield(L, -1, "signer");
      metas[j].signer = lua_toboolean(L, -1);
      lua_getfield(L, -2, "writable");
      metas[j].writable = lua_toboolean(L, -1);
      lua_pop(L, 3);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, ix, "data");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) fy_error(L, "instruction 'data' must be raw bytes");
    out->data = (const uint8_t *)lua_tolstring(L, -1, &out->data_len);
  }
  lua_pop(L, 1); /* held by the instruction table */
}

static void read_tables(lua_State *L, int spec, scratch_t *s, fy_sol_msg_spec_t *m) {
  if (lua_getfield(L, spec, "lookup_tables") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int tabs = lua_gettop(L);
  m->n_tables = lua_rawlen(L, tabs);
  size_t total = 0;
  for (size_t t = 1; t <= m->n_tables; t++) {
    if (lua_rawgeti(L, tabs, (lua_Integer)t) != LUA_TTABLE) fy_error(L, "lookup table %d is not a table", (int)t);
    if (lua_getfield(L, -1, "addresses") != LUA_TTABLE) fy_error(L, "lookup table %d: 'addresses' must be a list", (int)t);
    total += lua_rawlen(L, -1);
    lua_pop(L, 2);
  }
  s->tables = xcalloc(L, m->n_tables, sizeof *s->tables);
  s->addrs = xcalloc(L, total, sizeof *s->addrs);
  size_t at = 0;
  for (size_t t = 0; t < m->n_tables; t++) {
    lua_rawgeti(L, tabs, (lua_Integer)t + 1);
    s->tables[t].key = field_raw(L, -1, "key", 32, 0);
    lua_getfield(L, -1, "addresses");
    s->tables[t].addresses = (const uint8_t(*)[32])&s->addrs[at];
    s->tables[t].n_addresses = lua_rawlen(L, -1);
    for (size_t j = 1; j <= s->tables[t].n_addresses; j++) {
      lua_rawgeti(L, -1, (lua_Integer)j);
      size_t n;
      const char *a = lua_tolstring(L, -1, &n);
      if (!a || n != 32) fy_error(L, "lookup table %d: address %d must be 32 raw bytes", (int)t + 1, (int)j);
      memcpy(s->addrs[at++], a, 32);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  m->tables = s->tables;
  lua_pop(L, 1);
}

/* compile{payer=, blockhash=, instructions={...}, version="legacy"|0, lookup_tables={{key=,
** addresses={}}}} -> message bytes, number of signers. Raises on a malformed spec. */
static int l_compile(lua_State *L) {
  fy_checktype(L, 1, LUA_TTABLE);
  scratch_t *s = scratch_new(L);
  fy_sol_msg_spec_t m = {.version = FY_SOL_LEGACY};
  m.payer = field_raw(L, 1, "payer", 32, 0);
  m.blockhash = field_raw(L, 1, "blockhash", 32, 0);
  lua_getfield(L, 1, "version");
  if (lua_isinteger(L, -1) && lua_tointeger(L, -1) == 0) m.version = 0;
  else if (!lua_isnil(L, -1) && !(lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "legacy") == 0))
    return fy_error(L, "'version' must be \"legacy\" or 0");
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "instructions") != LUA_TTABLE) return fy_error(L, "'instructions' must be a list");
  int ixs = lua_gettop(L);
  m.n_ixs = lua_rawlen(L, ixs);
  s->metas = xcalloc(L, count_metas(L, ixs, m.n_ixs), sizeof *s->metas);
  s->ixs = xcalloc(L, m.n_ixs, sizeof *s->ixs);
  size_t at = 0;
  for (size_t i = 0; i < m.n_ixs; i++) {
    lua_rawgeti(L, ixs, (lua_Integer)i + 1);
    read_ix(L, lua_gettop(L), &s->ixs[i], s->metas + at);
    at += s->ixs[i].n_accounts;
    lua_pop(L, 1);
  }
  m.ixs = s->ixs;
  if (m.version == 0) read_tables(L, 1, s, &m);
  else {
    lua_getfield(L, 1, "lookup_tables");
    if (!lua_isnil(L, -1)) return fy_error(L, "lookup tables need a version 0 message");
    lua_pop(L, 1);
  }
  unsigned n_signers;
  int rc = fy_sol_compile(&m, &s->out, &n_signers);
  if (rc == FY_SOL_ENOMEM) return luaL_error(L, "out of memory");
  if (rc) return fy_error(L, "%s", fy_sol_strerror(rc));
  lua_pushlstring(L, (const char *)s->out.data, s->out.len);
  lua_pushinteger(L, n_signers);
  return 2;
}

/* ---- sign / assemble / decode ------------------------------------------------------------- */

/* sign(message, {SolKey...} [, extra_ok]) -> wire bytes, {signature...} | nil, err. Each
** required signer of the message must be among the keys (raises naming the missing one); keys
** no signer needs are refused too, as web3.js does, unless extra_ok. nil, err when the
** transaction is over 1,232 bytes. */
static int l_sign(lua_State *L) {
  size_t mlen;
  const uint8_t *msg = (const uint8_t *)fy_checklstring(L, 1, &mlen);
  fy_checktype(L, 2, LUA_TTABLE);
  int extra_ok = lua_toboolean(L, 3);
  lua_settop(L, 2); /* the scratch and the keys go above */
  fy_sol_message_t m;
  int rc = fy_sol_message_decode(msg, mlen, &m);
  if (rc) return fy_argerror(L, 1, "not a message: %s", fy_sol_strerror(rc));
  fy_sol_message_free(&m);
  size_t n_keys = lua_rawlen(L, 2);
  scratch_t *s = scratch_new(L);
  uint8_t *sigs = xcalloc(L, m.n_signatures, 64);
  s->addrs = (uint8_t(*)[32])sigs; /* freed with the scratch */
  for (size_t k = 1; k <= n_keys; k++) {
    lua_rawgeti(L, 2, (lua_Integer)k);
    fy_ed25519_key_t *key = check_key(L, -1);
    const uint8_t *pub = fy_ed25519_key_public(key);
    unsigned i = 0;
    while (i < m.n_signatures && memcmp(m.keys + 32 * i, pub, 32) != 0) i++;
    if (i == m.n_signatures && extra_ok) {
      lua_pop(L, 1);
      continue;
    }
    if (i == m.n_signatures) {
      char a[FY_B58_ENCODED_MAX(32)];
      fy_b58_encode(pub, 32, a, sizeof a);
      return fy_error(L, "unknown signer %s: the message does not need its signature", a);
    }
    fy_ed25519_key_sign(key, msg, mlen, sigs + 64 * i);
    lua_pop(L, 1);
  }
  static const uint8_t zero[64];
  for (unsigned i = 0; i < m.n_signatures; i++)
    if (memcmp(sigs + 64 * i, zero, 64) == 0) {
      char a[FY_B58_ENCODED_MAX(32)];
      fy_b58_encode(m.keys + 32 * i, 32, a, sizeof a);
      return fy_error(L, "missing signature for %s", a);
    }
  rc = fy_sol_tx_assemble(sigs, m.n_signatures, msg, mlen, &s->out);
  if (rc == FY_SOL_ENOMEM) return luaL_error(L, "out of memory");
  if (rc) return push_fail(L, fy_sol_strerror(rc));
  lua_pushlstring(L, (const char *)s->out.data, s->out.len);
  lua_createtable(L, (int)m.n_signatures, 0);
  for (unsigned i = 0; i < m.n_signatures; i++) {
    lua_pushlstring(L, (const char *)sigs + 64 * i, 64);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}

/* assemble({signature...}, message) -> wire | nil, err (signatures made elsewhere) */
static int l_assemble(lua_State *L) {
  fy_checktype(L, 1, LUA_TTABLE);
  size_t mlen;
  const uint8_t *msg = (const uint8_t *)fy_checklstring(L, 2, &mlen);
  size_t n = lua_rawlen(L, 1);
  scratch_t *s = scratch_new(L);
  uint8_t *sigs = xcalloc(L, n, 64);
  s->addrs = (uint8_t(*)[32])sigs;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    size_t len;
    const char *sig = lua_tolstring(L, -1, &len);
    if (!sig || len != 64) return fy_argerror(L, 1, "signature %d must be 64 raw bytes", (int)i + 1);
    memcpy(sigs + 64 * i, sig, 64);
    lua_pop(L, 1);
  }
  int rc = fy_sol_tx_assemble(sigs, n, msg, mlen, &s->out);
  if (rc == FY_SOL_ENOMEM) return luaL_error(L, "out of memory");
  if (rc) return push_fail(L, fy_sol_strerror(rc));
  lua_pushlstring(L, (const char *)s->out.data, s->out.len);
  return 1;
}

static void push_index_list(lua_State *L, const uint8_t *p, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, p[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static void push_message(lua_State *L, const fy_sol_message_t *m) {
  lua_createtable(L, 0, 8);
  if (m->version == FY_SOL_LEGACY) lua_pushliteral(L, "legacy");
  else lua_pushinteger(L, m->version);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, m->n_signatures);
  lua_setfield(L, -2, "num_required_signatures");
  lua_pushinteger(L, m->n_readonly_signed);
  lua_setfield(L, -2, "num_readonly_signed");
  lua_pushinteger(L, m->n_readonly_unsigned);
  lua_setfield(L, -2, "num_readonly_unsigned");
  lua_createtable(L, (int)m->n_keys, 0);
  for (size_t i = 0; i < m->n_keys; i++) {
    lua_pushlstring(L, (const char *)m->keys + 32 * i, 32);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "keys");
  lua_pushlstring(L, (const char *)m->blockhash, 32);
  lua_setfield(L, -2, "blockhash");
  lua_createtable(L, (int)m->n_ixs, 0);
  for (size_t i = 0; i < m->n_ixs; i++) {
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, m->ixs[i].program_index);
    lua_setfield(L, -2, "program_index");
    push_index_list(L, m->ixs[i].accounts, m->ixs[i].n_accounts);
    lua_setfield(L, -2, "accounts");
    lua_pushlstring(L, (const char *)m->ixs[i].data, m->ixs[i].data_len);
    lua_setfield(L, -2, "data");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "instructions");
  lua_createtable(L, (int)m->n_lookups, 0);
  for (size_t i = 0; i < m->n_lookups; i++) {
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, (const char *)m->lookups[i].key, 32);
    lua_setfield(L, -2, "key");
    push_index_list(L, m->lookups[i].writable, m->lookups[i].n_writable);
    lua_setfield(L, -2, "writable");
    push_index_list(L, m->lookups[i].readonly, m->lookups[i].n_readonly);
    lua_setfield(L, -2, "readonly");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "lookups");
}

/* decode(wire) -> {signatures, message, version, keys, blockhash, instructions, lookups, ...}
** | nil, err */
static int l_decode(lua_State *L) {
  size_t n;
  const uint8_t *p = (const uint8_t *)fy_checklstring(L, 1, &n);
  fy_sol_tx_t tx;
  int rc = fy_sol_tx_decode(p, n, &tx);
  if (rc == FY_SOL_ENOMEM) return luaL_error(L, "out of memory");
  if (rc) return push_fail(L, lua_pushfstring(L, "malformed solana transaction: %s", fy_sol_strerror(rc)));
  push_message(L, &tx.msg); /* cannot raise past a leak: only memory errors, like any table */
  fy_sol_tx_free(&tx);
  lua_createtable(L, (int)tx.n_signatures, 0);
  for (size_t i = 0; i < tx.n_signatures; i++) {
    lua_pushlstring(L, (const char *)tx.signatures + 64 * i, 64);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "signatures");
  lua_pushlstring(L, (const char *)tx.message, tx.message_len);
  lua_setfield(L, -2, "message");
  return 1;
}

static int l_decode_message(lua_State *L) {
  size_t n;
  const uint8_t *p = (const uint8_t *)fy_checklstring(L, 1, &n);
  fy_sol_message_t m;
  int rc = fy_sol_message_decode(p, n, &m);
  if (rc == FY_SOL_ENOMEM) return luaL_error(L, "out of memory");
  if (rc) return push_fail(L, lua_pushfstring(L, "malformed solana message: %s", fy_sol_strerror(rc)));
  push_message(L, &m);
  fy_sol_message_free(&m);
  return 1;
}

/* shortvec(n) -> bytes; shortvec_decode(bytes) -> n, length used | nil, err */
static int l_shortvec(lua_State *L) {
  lua_Integer v = fy_checkinteger(L, 1);
  fy_argcheck(L, v >= 0 && v <= 0xffff, 1, "compact-u16 holds 0..65535");
  fy_buf_t b = {0};
  if (fy_sol_shortvec_put(&b, (unsigned)v)) return luaL_error(L, "out of memory");
  lua_pushlstring(L, (const char *)b.data, b.len);
  fy_buf_free(&b);
  return 1;
}

static int l_shortvec_decode(lua_State *L) {
  size_t n, pos = 0;
  const uint8_t *p = (const uint8_t *)fy_checklstring(L, 1, &n);
  unsigned v;
  int rc = fy_sol_shortvec_get(p, n, &pos, &v);
  if (rc) return push_fail(L, fy_sol_strerror(rc));
  lua_pushinteger(L, v);
  lua_pushinteger(L, (lua_Integer)pos);
  return 2;
}

static const luaL_Reg key_methods[] = {
    {"public", l_key_public}, {"sign", l_key_sign}, {"close", l_key_close}, {NULL, NULL}};

static const luaL_Reg sol_funcs[] = {
    {"b58encode", l_b58encode}, {"b58decode", l_b58decode}, {"b64encode", l_b64encode},
    {"b64decode", l_b64decode}, {"key", l_key}, {"keygen", l_keygen},
    {"key_from_env", l_key_from_env}, {"verify", l_verify}, {"on_curve", l_on_curve},
    {"find_pda", l_find_pda}, {"create_pda", l_create_pda}, {"ata", l_ata},
    {"compile", l_compile}, {"sign", l_sign}, {"assemble", l_assemble}, {"decode", l_decode},
    {"decode_message", l_decode_message}, {"shortvec", l_shortvec},
    {"shortvec_decode", l_shortvec_decode}, {NULL, NULL}};

int luaopen_ferry_core_sol(lua_State *L) {
  if (luaL_newmetatable(L, SOLKEY_MT)) {
    luaL_newlib(L, key_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_key_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_key_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "ferry.SolKey"); /* getmetatable(key) shows no method to dump the secret */
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  luaL_newlib(L, sol_funcs);
  lua_pushinteger(L, FY_SOL_PACKET);
  lua_setfield(L, -2, "PACKET_SIZE");
  return 1;
}
