/* ** key_lua.c -- ferry.core.key: ferry.Key userdata over key.c (see key_lua.h) */
#include "crypto/key_lua.h"
#include "core/bind.h"
#include "core/engine.h"
#include "core/task.h"
#include "crypto/hex.h"
#include "crypto/key.h"
#include "crypto/keystore.h"
#include "crypto/secp.h"
#include "crypto/secp_lua.h"

#include <errno.h>
#include <lauxlib.h>
#include <sodium.h>
#include <stdio.h>
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

/* ---------------------------------------------------------------- keystores (v3) */

#define PW_MAX 4096   /* longer password files are refused, not cut */

typedef struct {
  uv_work_t req;
  fy_op_t *op;                 /* NULL once the task went away (cancelled) */
  fy_keystore_t ks;
  uint8_t *pw;                 /* sodium_malloc'd copy of the password */
  size_t pw_len;
  fy_key_t *key;               /* the result, handed to a ferry.Key box on the loop thread */
  int rc;
} ks_work_t;

static void ks_work_free(ks_work_t *w) {
  sodium_free(w->pw);
  fy_key_free(w->key);
  sodium_memzero(&w->ks, sizeof w->ks);
  free(w);
}

/* worker thread: the KDF, MAC check and decryption; no Lua */
static void ks_work(uv_work_t *req) {
  ks_work_t *w = req->data;
  w->rc = fy_keystore_open(&w->ks, w->pw, w->pw_len, &w->key);
  sodium_free(w->pw);
  w->pw = NULL;
}

/* loop thread: hand the key to the task (Key) or say why not (nil, err) */
static void ks_after(uv_work_t *req, int status) {
  ks_work_t *w = req->data;
  fy_op_t *op = w->op;
  if (!op || !fy_op_settle(op)) { ks_work_free(w); return; }   /* cancelled meanwhile */
  w->op = NULL;
  lua_State *co = fy_op_thread(op);
  int n = 1;
  if (status == 0 && w->rc == FY_KS_OK) {
    key_box_t *b = box_new(co);
    b->k = w->key;
    w->key = NULL;
  } else {
    lua_pushnil(co);
    fy_push_errorf(co, "invalid_argument", "%s",
                   status ? "the key derivation was cancelled" : fy_keystore_strerror(w->rc));
    n = 2;
  }
  ks_work_free(w);
  fy_op_ready(op, n);
}

static void ks_cancel(fy_op_t *op, void *data) {
  ks_work_t *w = data;
  w->op = NULL;
  uv_cancel((uv_req_t *)&w->req);   /* fails once running; ks_after frees either way */
}

/* t[field] as hex (no 0x needed, as keystores write it) of exactly want bytes, or 1..max when
** want is 0; returns the length. may raise */
static size_t field_hex(lua_State *L, int t, const char *field, uint8_t *out, size_t want, size_t max) {
  lua_getfield(L, t, field);
  size_t n;
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
  if (!s) fy_error(L, "%s: expected hex text", field);
  if (fy_is_0x(s, n)) { s += 2; n -= 2; }
  if (n % 2 || (want && n != 2 * want) || (!want && (n == 0 || n > 2 * max)))
    fy_error(L, want ? "%s: expected %d bytes of hex" : "%s: expected 1 to %d bytes of hex", field,
             (int)(want ? want : max));
  if (fy_hex_decode(s, n / 2, out) >= 0) fy_error(L, "%s: not hex", field);
  lua_pop(L, 1);
  return n / 2;
}

static lua_Integer field_int(lua_State *L, int t, const char *field, lua_Integer lo, lua_Integer hi) {
  lua_getfield(L, t, field);
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok || v < lo || v > hi) fy_error(L, "%s: expected an integer from %I to %I", field, lo, hi);
  lua_pop(L, 1);
  return v;
}

/* The password from {password_env = NAME} or {password_file = PATH} into guarded memory;
** returns NULL with a message pushed (which never holds the password). */
static uint8_t *read_password(lua_State *L, int opts, size_t *len) {
  *len = 0;
  lua_getfield(L, opts, "password_env");
  lua_getfield(L, opts, "password_file");
  const char *env = lua_tostring(L, -2), *path = lua_tostring(L, -1);
  if (!env == !path) {
    lua_pushliteral(L, "give exactly one of password_env = NAME or password_file = PATH");
    return NULL;
  }
  uint8_t *pw = sodium_malloc(PW_MAX + 1);
  if (!pw) { lua_pushliteral(L, "cannot allocate guarded memory for the password"); return NULL; }
  if (env) {
    const char *v = getenv(env);
    size_t n = v ? strlen(v) : 0;
    if (!v) lua_pushfstring(L, "environment variable %s is not set", env);
    else if (n > PW_MAX) lua_pushfstring(L, "environment variable %s is longer than %d bytes", env, PW_MAX);
    else { memcpy(pw, v, n); *len = n; return pw; }
  } else {
    FILE *f = fopen(path, "rb");
    if (!f) lua_pushfstring(L, "password_file %s: %s", path, strerror(errno));
    else {
      size_t n = fread(pw, 1, PW_MAX + 1, f);
      int err = ferror(f);
      fclose(f);
      if (err) lua_pushfstring(L, "password_file %s: cannot read it", path);
      else if (n > PW_MAX) lua_pushfstring(L, "password_file %s: longer than %d bytes", path, PW_MAX);
      else {
        /* one trailing line end is not part of the password (echo pw > file) */
        if (n && pw[n - 1] == '\n') n--;
        if (n && pw[n - 1] == '\r') n--;
        *len = n;
        return pw;
      }
    }
  }
  sodium_free(pw);
  return NULL;
}

/* key.from_keystore(crypto, opts) -> Key | nil, err. crypto is the decoded "crypto" object
** of a v3 keystore with kdf and kdfparams flattened in Lua: {kdf = "scrypt"|"pbkdf2", n, r, p
** | c, salt, iv, ciphertext, mac} (hex, 0x optional). opts = {password_env = NAME} or
** {password_file = PATH}: the password is read in C and never becomes a Lua string. The KDF runs
** on the libuv thread pool while the task waits. Bad parameters raise invalid_argument; a
** wrong password is nil, {code = "invalid_argument", message = "wrong password (MAC mismatch)"}. */
static int l_key_from_keystore(lua_State *L) {
  fy_checktype(L, 1, LUA_TTABLE);
  fy_checktype(L, 2, LUA_TTABLE);
  fy_task_require(L, "keystore");    /* raise now, before anything below needs freeing */
  fy_keystore_t ks;
  memset(&ks, 0, sizeof ks);
  lua_getfield(L, 1, "kdf");
  const char *kdf = lua_tostring(L, -1);
  if (kdf && strcmp(kdf, "scrypt") == 0) {
    ks.kdf = FY_KS_SCRYPT;
    ks.n = (uint64_t)field_int(L, 1, "n", 2, (lua_Integer)1 << 32);
    ks.r = (uint32_t)field_int(L, 1, "r", 1, 1 << 20);
    ks.p = (uint32_t)field_int(L, 1, "p", 1, 1 << 20);
  } else if (kdf && strcmp(kdf, "pbkdf2") == 0) {
    ks.kdf = FY_KS_PBKDF2;
    ks.c = (uint32_t)field_int(L, 1, "c", 1, FY_KS_PBKDF2_MAX_C);
  } else return fy_error(L, "kdf: expected \"scrypt\" or \"pbkdf2\"");
  lua_pop(L, 1);
  ks.salt_len = field_hex(L, 1, "salt", ks.salt, 0, sizeof ks.salt);
  field_hex(L, 1, "iv", ks.iv, 16, 0);
  field_hex(L, 1, "ciphertext", ks.ciphertext, 32, 0);
  field_hex(L, 1, "mac", ks.mac, 32, 0);
  const char *why;
  if (fy_keystore_check(&ks, &why)) return fy_error(L, "%s", why);

  ks_work_t *w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "ferry.Key: out of memory");
  w->ks = ks;
  sodium_memzero(&ks, sizeof ks);
  w->pw = read_password(L, 2, &w->pw_len);
  if (!w->pw) { ks_work_free(w); return fy_error(L, "%s", lua_tostring(L, -1)); }
  fy_op_t *op = fy_op_new(L, 0, ks_cancel, w);
  w->op = op;
  w->req.data = w;
  if (uv_queue_work(&fy_engine(L)->loop, &w->req, ks_work, ks_after) != 0) {
    fy_op_abort(op);
    ks_work_free(w);
    return fy_fail(L, "invalid_argument", "keystore: cannot start the key derivation");
  }
  return fy_op_yield(L, op);
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

/* k:sign_hash(digest32) -> 65 bytes r||s||v (v = 27/28): the digest is signed as it is, so
 * callers hash first (EIP-712's \x19\x01 digest, say) */
static int l_key_sign_hash(lua_State *L) {
  fy_key_t *k = check_open(L, 1);
  size_t n;
  const char *h = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : NULL;
  if (!h || n != 32) return raise_invalid(L, "ferry.Key: sign_hash takes a 32-byte digest");
  uint8_t sig[65];
  int rc = fy_key_sign_hash(k, (const uint8_t *)h, sig);
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
  {"sign_hash", l_key_sign_hash},
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
  {"from_keystore", l_key_from_keystore},
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
