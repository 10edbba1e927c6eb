/* ** abi_lua.c -- ferry.core.abi: Solidity ABI encode/decode for Lua (binding of abi.c) */
#include "core/bind.h"
#include "crypto/abi.h"
#include "crypto/keccak_lua.h"
#include "crypto/secp.h"
#include "crypto/secp_lua.h"
#include "crypto/u256_lua.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define ABI_TYPES_MT "ferry.AbiTypes"
#define ABI_BOX_MT "ferry.AbiBox"
#define CACHE_MAX 512

/* a parsed type list or signature; the GC owns it (freed in __gc) */
typedef struct {
  fy_abi_type_t *type; /* TUPLE */
  int has_sel;
  uint8_t sel[4];
} abi_types_t;

static int l_types_gc(lua_State *L) {
  abi_types_t *a = fy_checkudata(L, 1, ABI_TYPES_MT);
  fy_abi_type_free(a->type);
  a->type = NULL;
  return 0;
}

/* malloc'd results (encode buffer, decode tree) boxed so that a raise cannot leak them */
typedef struct {
  fy_buf_t buf;
  fy_abi_value_t *val;
} abi_box_t;

static int l_box_gc(lua_State *L) {
  abi_box_t *b = fy_checkudata(L, 1, ABI_BOX_MT);
  fy_buf_free(&b->buf);
  fy_abi_value_free(b->val);
  b->val = NULL;
  return 0;
}

static abi_box_t *box_new(lua_State *L) {
  abi_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, ABI_BOX_MT);
  return b;
}

static int push_fail(lua_State *L, const char *message) {
  lua_pushnil(L);
  fy_push_errorf(L, "invalid_argument", "%s", message);
  return 2;
}

static int looks_like_sig(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  size_t start = i;
  while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == '$' ||
                   (i > start && s[i] >= '0' && s[i] <= '9')))
    i++;
  if (i == start || (i - start == 5 && !memcmp(s + start, "tuple", 5))) return 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  return i < n && s[i] == '(';
}

/* Resolve the types argument at idx (a signature string, a "t1,t2" string or an array of type
** strings) to a cached abi_types_t. Pushes the userdata. may raise */
static abi_types_t *check_types(lua_State *L, int idx, int want_sig) {
  size_t n;
  const char *s;
  int rc;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE) {
    luaL_Buffer b;
    lua_Integer len = luaL_len(L, idx);
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= len; i++) {
      if (lua_geti(L, idx, i) != LUA_TSTRING) fy_error(L, "abi: type #%d is not a string", (int)i);
      if (i > 1) luaL_addchar(&b, ',');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);                                      /* [key] */
  } else {
    fy_checktype(L, idx, LUA_TSTRING);
    lua_pushvalue(L, idx);                                    /* [key] */
  }
  s = lua_tolstring(L, -1, &n);
  int sig = lua_type(L, idx) == LUA_TSTRING && looks_like_sig(s, n);
  if (want_sig && !sig) fy_argerror_msg(L, idx, "expected a function signature like \"transfer(address,uint256)\"");
  /* cache lookup: upvalue 1 is {count=, [key]=userdata} */
  lua_pushvalue(L, -1);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TUSERDATA) { /* [key, ud] */
    lua_remove(L, -2);
    return lua_touserdata(L, -1);
  }
  lua_pop(L, 1);                                              /* [key] */
  abi_types_t *a = lua_newuserdatauv(L, sizeof *a, 0);        /* [key, ud] */
  memset(a, 0, sizeof *a);
  luaL_setmetatable(L, ABI_TYPES_MT);
  if (sig) {
    fy_abi_sig_t sg;
    rc = fy_abi_sig_parse(s, n, &sg);
    if (rc == FY_ABI_OK) {
      a->type = sg.args;
      a->has_sel = 1;
      memcpy(a->sel, sg.selector, 4);
    }
  } else {
    rc = fy_abi_types_parse(s, n, &a->type);
  }
  if (rc) {
    if (rc == FY_ABI_ENOMEM) return luaL_error(L, "abi: out of memory"), NULL;
    lua_pushfstring(L, "%s: %s", fy_abi_strerror(rc), s);
    fy_argerror_msg(L, idx, lua_tostring(L, -1));
  }
  lua_getfield(L, lua_upvalueindex(1), "count");
  lua_Integer count = lua_tointeger(L, -1) + 1;
  lua_pop(L, 1);
  if (count > CACHE_MAX) { /* crude bound: start over */
    lua_newtable(L);
    lua_replace(L, lua_upvalueindex(1));
    count = 1;
  }
  lua_pushinteger(L, count);
  lua_setfield(L, lua_upvalueindex(1), "count");
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lua_rawset(L, lua_upvalueindex(1));                         /* cache[key] = ud */
  lua_remove(L, -2);                                          /* [ud] */
  return a;
}

/* ------------------------------------------------------------------ Lua -> value */

typedef struct {
  lua_State *L;
  int anchor;         /* table keeping item arrays alive */
  lua_Integer nanchor;
  int argn;           /* value number in the call (for messages) */
} conv_t;

static void type_text(lua_State *L, const fy_abi_type_t *t) {
  fy_buf_t b = {0};
  if (fy_abi_type_canonical(t, &b) == FY_ABI_OK) {
    char tmp[128];
    size_t n = b.len < sizeof tmp - 4 ? b.len : sizeof tmp - 4;
    memcpy(tmp, b.data, n);
    if (n < b.len) memcpy(tmp + n, "...", 3), n += 3;
    fy_buf_free(&b);
    lua_pushlstring(L, tmp, n);
  } else {
    fy_buf_free(&b);
    lua_pushliteral(L, "?");
  }
}

static int conv_error(conv_t *c, const fy_abi_type_t *t, const char *why) {
  lua_State *L = c->L;
  type_text(L, t);
  return fy_error(L, "abi: value #%d (%s): %s", c->argn, lua_tostring(L, -1), why);
}

/* unsigned magnitude from U256 / integer >= 0 / decimal or 0x string; NULL reason on success */
static const char *to_u256(lua_State *L, int idx, fy_u256_t *out) {
  fy_u256_t *u = fy_u256_test(L, idx);
  if (u) { *out = *u; return NULL; }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int isint;
    lua_Integer i = lua_tointegerx(L, idx, &isint);
    if (!isint) return "expected an integer";
    if (i < 0) return "negative value for an unsigned type";
    fy_u256_from_u64(out, (uint64_t)i);
    return NULL;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    int rc = fy_u256_parse(out, s, n);
    return rc ? fy_u256_strerror(rc) : NULL;
  }
  return "expected U256, integer or numeric string";
}

static void to_value(conv_t *c, const fy_abi_type_t *t, int idx, fy_abi_value_t *v);

static void to_items(conv_t *c, const fy_abi_type_t *t, int idx, fy_abi_value_t *v) {
  lua_State *L = c->L;
  if (lua_type(L, idx) != LUA_TTABLE) conv_error(c, t, "expected a table");
  lua_Integer n = luaL_len(L, idx);
  size_t want = t->kind == FY_ABI_ARRAY ? (size_t)n : t->size;
  if (n < 0 || (size_t)n != want) {
    lua_pushfstring(L, "expected %d items, got %d", (int)want, (int)n);
    conv_error(c, t, lua_tostring(L, -1));
  }
  if ((size_t)n > FY_ABI_MAX_FIXED_LEN * 16) conv_error(c, t, "too many items");
  luaL_checkstack(L, 4, "abi: nesting too deep");
  v->n = (size_t)n;
  v->items = NULL;
  if (n) {
    v->items = lua_newuserdatauv(L, (size_t)n * sizeof *v->items, 0);
    memset(v->items, 0, (size_t)n * sizeof *v->items);
    lua_rawseti(L, c->anchor, ++c->nanchor);
  }
  for (lua_Integer i = 0; i < n; i++) {
    const fy_abi_type_t *et = t->kind == FY_ABI_TUPLE ? t->fields[i] : t->elem;
    lua_geti(L, idx, i + 1);
    to_value(c, et, lua_gettop(L), &v->items[i]);
    lua_pop(L, 1);
  }
}

static void to_value(conv_t *c, const fy_abi_type_t *t, int idx, fy_abi_value_t *v) {
  lua_State *L = c->L;
  const char *why;
  fy_u256_t u;
  size_t n;
  const char *s;
  switch (t->kind) {
  case FY_ABI_UINT:
    if ((why = to_u256(L, idx, &u))) conv_error(c, t, why);
    fy_u256_to_be(&u, v->word);
    break;
  case FY_ABI_INT:
    if (lua_isinteger(L, idx)) {
      fy_abi_word_i64(lua_tointeger(L, idx), v->word);
    } else if (lua_type(L, idx) == LUA_TSTRING && (s = lua_tolstring(L, idx, &n)) && n > 1 && s[0] == '-') {
      uint8_t be[32];
      int rc = fy_u256_parse(&u, s + 1, n - 1);
      if (rc) conv_error(c, t, fy_u256_strerror(rc));
      fy_u256_to_be(&u, be);
      if (be[0] & 0x80 && !(be[0] == 0x80 && !memcmp(be + 1, (uint8_t[31]){0}, 31))) conv_error(c, t, "out of range");
      fy_abi_word_neg(be, 32, v->word);
    } else {
      if ((why = to_u256(L, idx, &u))) conv_error(c, t, why);
      fy_u256_to_be(&u, v->word);
      if (v->word[0] & 0x80) conv_error(c, t, "out of range");
    }
    break;
  case FY_ABI_ADDRESS: {
    uint8_t a[20];
    if ((why = fy_secp_to_address(L, idx, a))) conv_error(c, t, why);
    fy_abi_word_address(a, v->word);
    break;
  }
  case FY_ABI_BOOL:
    if (!lua_isboolean(L, idx)) conv_error(c, t, "expected a boolean");
    memset(v->word, 0, 32);
    v->word[31] = (uint8_t)lua_toboolean(L, idx);
    break;
  case FY_ABI_FBYTES: {
    const uint8_t *p;
    if ((why = fy_to_bytes(L, idx, &p, &n))) conv_error(c, t, why);
    if (n != t->size) {
      lua_pushfstring(L, "expected %d bytes (0x + %d hex digits), got %d", (int)t->size, (int)(2 * t->size), (int)n);
      conv_error(c, t, lua_tostring(L, -1));
    }
    fy_abi_word_fbytes(p, n, v->word);
    break;
  }
  case FY_ABI_BYTES:                                          /* 0x-hex text or eth.raw */
    if ((why = fy_to_bytes(L, idx, &v->p, &v->len))) conv_error(c, t, why);
    lua_pushvalue(L, idx);                                    /* keep the bytes alive */
    lua_rawseti(L, c->anchor, ++c->nanchor);
    return;
  case FY_ABI_STRING:                                         /* text, as it is */
    if (lua_type(L, idx) != LUA_TSTRING) conv_error(c, t, "expected a string");
    v->p = (const uint8_t *)lua_tolstring(L, idx, &v->len);
    lua_pushvalue(L, idx);                                    /* keep the string alive */
    lua_rawseti(L, c->anchor, ++c->nanchor);
    return;
  case FY_ABI_ARRAY:
  case FY_ABI_FARRAY:
  case FY_ABI_TUPLE:
    to_items(c, t, idx, v);
    return;
  }
  if (fy_abi_word_check(t, v->word) != FY_ABI_OK) conv_error(c, t, "out of range");
}

/* encode the values at first..top against a->type into a boxed buffer; pushes the box */
static abi_box_t *encode_args(lua_State *L, const abi_types_t *a, int first, int with_sel) {
  int top = lua_gettop(L);
  int nvals = top - first + 1;
  fy_abi_value_t root;
  conv_t c = {L, 0, 0, 0};
  if (nvals < 0) nvals = 0;
  if ((uint32_t)nvals != a->type->size)
    fy_error(L, "abi: expected %d values, got %d", (int)a->type->size, nvals);
  lua_newtable(L);
  c.anchor = lua_gettop(L);
  root.n = (size_t)nvals;
  root.items = NULL;
  if (nvals) {
    root.items = lua_newuserdatauv(L, (size_t)nvals * sizeof *root.items, 0);
    memset(root.items, 0, (size_t)nvals * sizeof *root.items);
    lua_rawseti(L, c.anchor, ++c.nanchor);
  }
  for (int i = 0; i < nvals; i++) {
    c.argn = i + 1;
    to_value(&c, a->type->fields[i], first + i, &root.items[i]);
  }
  abi_box_t *b = box_new(L);                                 /* [..., anchor, box] */
  if (with_sel && fy_buf_put(&b->buf, a->sel, 4)) luaL_error(L, "abi: out of memory");
  int rc = fy_abi_encode(a->type, &root, &b->buf);
  if (rc) fy_error(L, "abi: %s", fy_abi_strerror(rc));     /* the checks above make this rare */
  return b;
}

/* abi.encode(types, values...) -> bytes */
static int l_abi_encode(lua_State *L) {
  abi_types_t *a = check_types(L, 1, 0);
  lua_insert(L, 2);                                           /* keep the types alive at 2 */
  abi_box_t *b = encode_args(L, a, 3, 0);
  lua_pushlstring(L, (const char *)b->buf.data, b->buf.len);
  return 1;
}

/* abi.encode_call(sig, values...) -> selector .. bytes */
static int l_abi_encode_call(lua_State *L) {
  abi_types_t *a = check_types(L, 1, 1);
  lua_insert(L, 2);
  abi_box_t *b = encode_args(L, a, 3, 1);
  lua_pushlstring(L, (const char *)b->buf.data, b->buf.len);
  return 1;
}

/* abi.selector(sig) -> 4 raw bytes */
static int l_abi_selector(lua_State *L) {
  abi_types_t *a = check_types(L, 1, 1);
  lua_pushlstring(L, (const char *)a->sel, 4);
  return 1;
}

/* ------------------------------------------------------------------ value -> Lua */

static void push_value(lua_State *L, const fy_abi_type_t *t, const fy_abi_value_t *v) {
  fy_u256_t u;
  luaL_checkstack(L, 4, "abi: nesting too deep");
  switch (t->kind) {
  case FY_ABI_UINT:
    fy_u256_from_be(&u, v->word);
    fy_u256_push(L, &u);
    return;
  case FY_ABI_INT: {
    int neg = v->word[0] & 0x80;
    int fits = 1;
    for (int i = 0; i < 24; i++) fits &= v->word[i] == (neg ? 0xff : 0x00);
    fits &= !!(v->word[24] & 0x80) == !!neg;
    if (fits) {
      uint64_t x = 0;
      for (int i = 24; i < 32; i++) x = x << 8 | v->word[i];
      lua_pushinteger(L, (lua_Integer)x);
    } else {
      char dec[FY_U256_DEC_SIZE + 1];
      uint8_t mag[32];
      if (neg) fy_abi_word_neg(v->word, 32, mag); /* -x as two's complement = |x| */
      else memcpy(mag, v->word, 32);
      fy_u256_from_be(&u, mag);
      dec[0] = '-';
      size_t n = fy_u256_to_dec(&u, dec + 1);
      if (neg) lua_pushlstring(L, dec, n + 1);
      else lua_pushlstring(L, dec + 1, n);
    }
    return;
  }
  case FY_ABI_ADDRESS: fy_secp_push_address(L, v->word + 12); return;
  case FY_ABI_BOOL: lua_pushboolean(L, v->word[31]); return;
  case FY_ABI_FBYTES: fy_push_hex(L, v->word, t->size); return;             /* 0x hex, as ethers */
  case FY_ABI_BYTES: fy_push_hex(L, v->p, v->len); return;
  case FY_ABI_STRING: lua_pushlstring(L, (const char *)v->p, v->len); return;
  case FY_ABI_ARRAY:
  case FY_ABI_FARRAY:
  case FY_ABI_TUPLE:
    lua_createtable(L, v->n < 1u << 20 ? (int)v->n : 0, 0);
    for (size_t i = 0; i < v->n; i++) {
      push_value(L, t->kind == FY_ABI_TUPLE ? t->fields[i] : t->elem, &v->items[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return;
  }
}

/* abi.decode(types_or_sig, data) -> values... | nil, err */
/* call data at idx: raw bytes, as a string (this binding's encode gives one) or a ferry.Bytes.
 * (ferry.eth reads 0x text and refuses plain strings before it gets here.) may raise */
static const uint8_t *check_data(lua_State *L, int idx, size_t *n) {
  const uint8_t *p = fy_test_bytes(L, idx, n);
  if (p) return p;
  if (lua_type(L, idx) != LUA_TSTRING) fy_typeerror(L, idx, "string or ferry.Bytes");
  return (const uint8_t *)lua_tolstring(L, idx, n);
}

static int l_abi_decode(lua_State *L) {
  size_t n;
  abi_types_t *a = check_types(L, 1, 0);                      /* [types, data, ud] */
  const uint8_t *d = check_data(L, 2, &n);
  if (a->has_sel) {
    if (n < 4) return push_fail(L, fy_abi_strerror(FY_ABI_ESHORT));
    if (memcmp(d, a->sel, 4)) return push_fail(L, "selector mismatch");
    d += 4, n -= 4;
  }
  abi_box_t *b = box_new(L);                                  /* [types, data, ud, box] */
  int rc = fy_abi_decode(a->type, d, n, &b->val);
  if (rc == FY_ABI_ENOMEM) return luaL_error(L, "abi: out of memory");
  if (rc) return push_fail(L, fy_abi_strerror(rc));
  int base = lua_gettop(L);
  luaL_checkstack(L, (int)b->val->n + 4, "abi: too many values");
  for (size_t i = 0; i < b->val->n; i++) push_value(L, a->type->fields[i], &b->val->items[i]);
  return lua_gettop(L) - base;
}

/* abi.decode_revert(data) -> {kind="Error"|"Panic"|"custom"|"empty", ...} | nil, err */
static int l_abi_decode_revert(lua_State *L) {
  size_t n;
  const uint8_t *d = check_data(L, 1, &n);
  fy_abi_revert_t rv;
  int rc = fy_abi_decode_revert(d, n, &rv);
  if (rc) return push_fail(L, fy_abi_strerror(rc));
  lua_createtable(L, 0, 4);
  switch (rv.kind) {
  case FY_ABI_REVERT_EMPTY:
    lua_pushliteral(L, "empty");
    lua_setfield(L, -2, "kind");
    break;
  case FY_ABI_REVERT_ERROR:
    lua_pushliteral(L, "Error");
    lua_setfield(L, -2, "kind");
    lua_pushlstring(L, (const char *)rv.reason, rv.reason_len);
    lua_setfield(L, -2, "reason");
    break;
  case FY_ABI_REVERT_PANIC: {
    fy_u256_t u;
    lua_pushliteral(L, "Panic");
    lua_setfield(L, -2, "kind");
    fy_u256_from_be(&u, rv.code);
    if (!u.w[1] && !u.w[2] && !u.w[3] && u.w[0] <= (uint64_t)LUA_MAXINTEGER) lua_pushinteger(L, (lua_Integer)u.w[0]);
    else fy_u256_push(L, &u);
    lua_setfield(L, -2, "code");
    lua_pushstring(L, fy_abi_panic_reason(rv.code));
    lua_setfield(L, -2, "reason");
    break;
  }
  case FY_ABI_REVERT_CUSTOM:
    lua_pushliteral(L, "custom");
    lua_setfield(L, -2, "kind");
    fy_push_hex(L, rv.selector, 4);
    lua_setfield(L, -2, "selector");
    fy_push_hex(L, rv.data, rv.data_len);
    lua_setfield(L, -2, "data");
    break;
  }
  return 1;
}

static const luaL_Reg abi_funcs[] = {
  {"encode", l_abi_encode},
  {"encode_call", l_abi_encode_call},
  {"decode", l_abi_decode},
  {"selector", l_abi_selector},
  {"decode_revert", l_abi_decode_revert},
  {NULL, NULL},
};

int luaopen_ferry_core_abi(lua_State *L) {
  if (luaL_newmetatable(L, ABI_TYPES_MT)) {
    lua_pushcfunction(L, l_types_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, ABI_BOX_MT)) {
    lua_pushcfunction(L, l_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlibtable(L, abi_funcs);
  lua_newtable(L);                                            /* upvalue: parsed-type cache */
  luaL_setfuncs(L, abi_funcs, 1);
  return 1;
}
