/*
** json.c -- JSON <-> Lua values, directly, with a depth limit and exact integers.
**
** Why not cJSON: cJSON stores every number as a double, exact only to 2^53, and Solana
** balances and slots are JSON numbers up to 2^64-1. Going straight from text to Lua values
** also skips an intermediate tree. So:
**   - an integer literal that fits a Lua integer becomes one;
**   - a larger integer literal becomes a json.Number (digits kept; tostring gives them back,
**     encode writes them back unchanged, eth.u256 accepts it);
**   - anything with a fraction or exponent becomes a float.
** null: dropped from objects (so `if r.contractAddress then` means what it says), kept as
** json.null inside arrays (positions matter). Empty objects decode with the json.object
** metatable and empty arrays with json.array, so they encode back the same way.
** Depth: 128 by default; max_depth may be 1..512 (FY_JSON_MAX_DEPTH: decode and encode
** recurse on the C stack, one frame per level, and 512 frames is far below any thread's stack;
** no JSON-RPC reply nests that deep). Anything else is invalid_argument.
** Lua API (ferry.core.json): decode(text [, max_depth]) -> value | nil, err;
**   encode(value [, max_depth]) -> text (raises on values JSON cannot hold);
**   null, array(t), object(t), number(digits), is_number(v).
*/
#include "core/bind.h"
#include "core/utf8.h"
#include "crypto/hex.h"
#include <lauxlib.h>
#include <lua.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_MT "ferry.json.array"
#define OBJECT_MT "ferry.json.object"
#define NUMBER_MT "ferry.json.Number"
#define DEFAULT_DEPTH 128
#define FY_JSON_MAX_DEPTH 512

/* ------------------------------------------------------------------------------------------
** Decoder
** ---------------------------------------------------------------------------------------- */

typedef struct {
  const char *s, *p, *end;
  int depth, max_depth;
  char err[160];
} dec_t;

static int dec_fail(dec_t *d, const char *what) {
  if (!d->err[0]) {
    if (d->p >= d->end)
      snprintf(d->err, sizeof d->err, "json: %s at end of input (truncated?)", what);
    else
      snprintf(d->err, sizeof d->err, "json: %s at byte %ld", what, (long)(d->p - d->s) + 1);
  }
  return -1;
}

static void skip_ws(dec_t *d) {
  while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

static int dec_value(lua_State *L, dec_t *d);

static int read_u4(dec_t *d, unsigned *out) {
  if (d->end - d->p < 4) return dec_fail(d, "short \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = fy_hexval((unsigned char)d->p[i]);
    if (h < 0) return dec_fail(d, "bad \\u escape");
    v = v << 4 | (unsigned)h;
  }
  d->p += 4;
  *out = v;
  return 0;
}

static void put_utf8(luaL_Buffer *b, unsigned cp) {
  char u[4];
  int n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  luaL_addlstring(b, u, (size_t)n);
}

/* Push the string starting after the opening quote. */
static int dec_string(lua_State *L, dec_t *d) {
  const char *start = d->p;
  /* fast path: no escapes, well-formed UTF-8 */
  while (d->p < d->end && *d->p != '"' && *d->p != '\\') {
    unsigned char c = (unsigned char)*d->p;
    if (c < 0x20) return dec_fail(d, "control character in string");
    if (c >= 0x80) {
      size_t k = fy_utf8_len((const unsigned char *)d->p, (size_t)(d->end - d->p));
      if (!k) break;                      /* the slow path replaces it */
      d->p += k;
      continue;
    }
    d->p++;
  }
  if (d->p >= d->end) return dec_fail(d, "unterminated string");
  if (*d->p == '"') {
    lua_pushlstring(L, start, (size_t)(d->p - start));
    d->p++;
    return 0;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, start, (size_t)(d->p - start));
  while (d->p < d->end && *d->p != '"') {
    unsigned char c = (unsigned char)*d->p;
    if (c < 0x20) { luaL_pushresult(&b); lua_pop(L, 1); return dec_fail(d, "control character in string"); }
    if (c >= 0x80) {
      /* decoded strings are always UTF-8 (so they encode again): a malformed byte becomes U+FFFD */
      size_t k = fy_utf8_len((const unsigned char *)d->p, (size_t)(d->end - d->p));
      if (k) luaL_addlstring(&b, d->p, k); else put_utf8(&b, 0xFFFD);
      d->p += k ? k : 1;
      continue;
    }
    if (c != '\\') { luaL_addchar(&b, (char)c); d->p++; continue; }
    d->p++;
    if (d->p >= d->end) break;
    char e = *d->p++;
    switch (e) {
      case '"': luaL_addchar(&b, '"'); break;
      case '\\': luaL_addchar(&b, '\\'); break;
      case '/': luaL_addchar(&b, '/'); break;
      case 'b': luaL_addchar(&b, '\b'); break;
      case 'f': luaL_addchar(&b, '\f'); break;
      case 'n': luaL_addchar(&b, '\n'); break;
      case 'r': luaL_addchar(&b, '\r'); break;
      case 't': luaL_addchar(&b, '\t'); break;
      case 'u': {
        unsigned cp, lo;
        if (read_u4(d, &cp)) { luaL_pushresult(&b); lua_pop(L, 1); return -1; }
        if (cp >= 0xD800 && cp < 0xDC00 && d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u') {
          d->p += 2;
          if (read_u4(d, &lo)) { luaL_pushresult(&b); lua_pop(L, 1); return -1; }
          if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          else { put_utf8(&b, 0xFFFD); cp = lo >= 0xD800 && lo < 0xE000 ? 0xFFFD : lo; }
        } else if (cp >= 0xD800 && cp < 0xE000) {
          cp = 0xFFFD;
        }
        put_utf8(&b, cp);
        break;
      }
      default:
        luaL_pushresult(&b);
        lua_pop(L, 1);
        d->p--;
        return dec_fail(d, "bad escape in string");
    }
  }
  if (d->p >= d->end) { luaL_pushresult(&b); lua_pop(L, 1); return dec_fail(d, "unterminated string"); }
  d->p++;
  luaL_pushresult(&b);
  return 0;
}

static void push_bignum(lua_State *L, const char *s, size_t n) {
  lua_createtable(L, 0, 1);
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, "digits");
  luaL_setmetatable(L, NUMBER_MT);
}

static int dec_number(lua_State *L, dec_t *d) {
  const char *start = d->p;
  int is_float = 0;
  if (d->p < d->end && *d->p == '-') d->p++;
  if (d->p >= d->end || *d->p < '0' || *d->p > '9') return dec_fail(d, "bad number");
  if (*d->p == '0' && d->p + 1 < d->end && d->p[1] >= '0' && d->p[1] <= '9')
    return dec_fail(d, "leading zero in number");
  while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
  if (d->p < d->end && *d->p == '.') {
    is_float = 1;
    d->p++;
    if (d->p >= d->end || *d->p < '0' || *d->p > '9') return dec_fail(d, "bad number");
    while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
  }
  if (d->p < d->end && (*d->p == 'e' || *d->p == 'E')) {
    is_float = 1;
    d->p++;
    if (d->p < d->end && (*d->p == '+' || *d->p == '-')) d->p++;
    if (d->p >= d->end || *d->p < '0' || *d->p > '9') return dec_fail(d, "bad number");
    while (d->p < d->end && *d->p >= '0' && *d->p <= '9') d->p++;
  }
  size_t n = (size_t)(d->p - start);
  char tmp[64];
  if (!is_float) {
    int neg = start[0] == '-';
    const char *q = start + neg;
    size_t nd = n - (size_t)neg;
    if (nd <= 18) {
      int64_t v = 0;
      for (size_t i = 0; i < nd; i++) v = v * 10 + (q[i] - '0');
      lua_pushinteger(L, neg ? -v : v);
      return 0;
    }
    /* 19 digits may or may not fit: compare against the int64 bounds as text */
    const char *lim = neg ? "9223372036854775808" : "9223372036854775807";
    if (nd == 19 && strncmp(q, lim, 19) <= 0) {
      uint64_t v = 0;
      for (size_t i = 0; i < nd; i++) v = v * 10 + (uint64_t)(q[i] - '0');
      lua_pushinteger(L, neg ? (lua_Integer)(0 - v) : (lua_Integer)v);
      return 0;
    }
    push_bignum(L, start, n);
    return 0;
  }
  if (n >= sizeof tmp) {
    char *big = malloc(n + 1);
    if (!big) return dec_fail(d, "out of memory");
    memcpy(big, start, n);
    big[n] = 0;
    lua_pushnumber(L, strtod(big, NULL));
    free(big);
  } else {
    memcpy(tmp, start, n);
    tmp[n] = 0;
    lua_pushnumber(L, strtod(tmp, NULL));
  }
  return 0;
}

static int dec_literal(dec_t *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) return dec_fail(d, "unexpected word");
  d->p += n;
  return 0;
}

static int dec_array(lua_State *L, dec_t *d) {
  lua_newtable(L);
  lua_Integer i = 0;
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    luaL_setmetatable(L, ARRAY_MT);
    return 0;
  }
  for (;;) {
    if (dec_value(L, d)) return -1;
    lua_rawseti(L, -2, ++i);
    skip_ws(d);
    if (d->p >= d->end) return dec_fail(d, "unterminated array");
    if (*d->p == ',') { d->p++; continue; }
    if (*d->p == ']') { d->p++; return 0; }
    return dec_fail(d, "expected ',' or ']'");
  }
}

static int dec_object(lua_State *L, dec_t *d) {
  lua_newtable(L);
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    luaL_setmetatable(L, OBJECT_MT);
    return 0;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return dec_fail(d, "expected a string key");
    d->p++;
    if (dec_string(L, d)) return -1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') { lua_pop(L, 1); return dec_fail(d, "expected ':'"); }
    d->p++;
    if (dec_value(L, d)) { lua_pop(L, 1); return -1; }
    if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == NULL) lua_pop(L, 2); /* null member */
    else lua_rawset(L, -3);
    skip_ws(d);
    if (d->p >= d->end) return dec_fail(d, "unterminated object");
    if (*d->p == ',') { d->p++; continue; }
    if (*d->p == '}') { d->p++; return 0; }
    return dec_fail(d, "expected ',' or '}'");
  }
}

static int dec_value(lua_State *L, dec_t *d) {
  skip_ws(d);
  if (d->p >= d->end) return dec_fail(d, "unexpected end");
  switch (*d->p) {
    case '{':
    case '[': {
      if (++d->depth > d->max_depth) return dec_fail(d, "nesting too deep");
      if (!lua_checkstack(L, 4)) return dec_fail(d, "nesting too deep for the Lua stack");
      int open = *d->p++;
      int rc = open == '{' ? dec_object(L, d) : dec_array(L, d);
      if (rc) { lua_pop(L, 1); return -1; }
      d->depth--;
      return 0;
    }
    case '"':
      d->p++;
      return dec_string(L, d);
    case 't':
      if (dec_literal(d, "true", 4)) return -1;
      lua_pushboolean(L, 1);
      return 0;
    case 'f':
      if (dec_literal(d, "false", 5)) return -1;
      lua_pushboolean(L, 0);
      return 0;
    case 'n':
      if (dec_literal(d, "null", 4)) return -1;
      lua_pushlightuserdata(L, NULL);
      return 0;
    default:
      return dec_number(L, d);
  }
}

/* Decode [s, s+n) and push the value; on failure push nothing and return an error text. */
const char *fy_json_decode(lua_State *L, const char *s, size_t n, int max_depth, char *err, size_t errlen) {
  if (max_depth <= 0) max_depth = DEFAULT_DEPTH;
  if (max_depth > FY_JSON_MAX_DEPTH) max_depth = FY_JSON_MAX_DEPTH;
  dec_t d = {.s = s, .p = s, .end = s + n, .max_depth = max_depth};
  d.err[0] = 0;
  int top = lua_gettop(L);
  if (dec_value(L, &d) == 0) {
    skip_ws(&d);
    if (d.p == d.end) return NULL;
    dec_fail(&d, "trailing characters");
  }
  lua_settop(L, top);
  snprintf(err, errlen, "%s", d.err);
  return err;
}

/* the max_depth argument at idx: absent -> 128; 1..512, else invalid_argument */
static int check_depth(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx)) return DEFAULT_DEPTH;
  int isint = 0;
  lua_Integer d = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
  if (!isint || d < 1 || d > FY_JSON_MAX_DEPTH)
    fy_argerror(L, idx, "%s: max_depth must be an integer from 1 to %d", fn, FY_JSON_MAX_DEPTH);
  return (int)d;
}

static int l_decode(lua_State *L) {
  size_t n;
  const char *s = fy_checklstring(L, 1, &n);
  int depth = check_depth(L, 2, "json.decode");
  char err[160];
  if (fy_json_decode(L, s, n, depth, err, sizeof err)) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/* ------------------------------------------------------------------------------------------
** Encoder
** ---------------------------------------------------------------------------------------- */

typedef struct {
  char *b;
  size_t len, cap;
  int depth, max_depth;
  int sort_keys;           /* canonical form: object keys in byte order (cache keys) */
} enc_t;

typedef struct { const char *s; size_t n; } key_t_;

static int key_cmp(const void *a, const void *b) {
  const key_t_ *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

static void enc_grow(lua_State *L, enc_t *e, size_t need) {
  if (e->len + need <= e->cap) return;
  size_t cap = e->cap ? e->cap : 256;
  while (cap < e->len + need) cap *= 2;
  char *nb = realloc(e->b, cap);
  if (!nb) luaL_error(L, "json.encode: out of memory");
  e->b = nb;
  e->cap = cap;
}

static void enc_put(lua_State *L, enc_t *e, const char *s, size_t n) {
  enc_grow(L, e, n);
  memcpy(e->b + e->len, s, n);
  e->len += n;
}

static void enc_string(lua_State *L, enc_t *e, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  enc_grow(L, e, n + 2);
  e->b[e->len++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      /* JSON text is UTF-8: raw bytes would make a reply no node can parse */
      size_t k = fy_utf8_len((const unsigned char *)s + i, n - i);
      if (!k) {
        char b[3] = {hex[c >> 4], hex[c & 15], 0};   /* lua_pushfstring has no %x */
        fy_error(L, "json.encode: string is not valid UTF-8 (byte %d is 0x%s); hex-encode binary data",
                   (int)i + 1, b);
      }
      enc_put(L, e, s + i, k);
      i += k - 1;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      enc_grow(L, e, 2);
      e->b[e->len++] = (char)c;
      continue;
    }
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t k = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      default:
        esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
        k = 6;
    }
    enc_put(L, e, esc, k);
  }
  enc_put(L, e, "\"", 1);
}

static int has_mt(lua_State *L, int idx, const char *name) {
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, name);
  int eq = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return eq;
}

static void enc_value(lua_State *L, enc_t *e, int idx);

static void enc_table(lua_State *L, enc_t *e, int idx) {
  if (++e->depth > e->max_depth) fy_error(L, "json.encode: nesting deeper than %d (cycle?)", e->max_depth);
  luaL_checkstack(L, 6, "json.encode");
  if (has_mt(L, idx, NUMBER_MT)) {
    lua_getfield(L, idx, "digits");
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (!s) fy_error(L, "json.encode: malformed json.Number");
    enc_put(L, e, s, n);
    lua_pop(L, 1);
    e->depth--;
    return;
  }
  int as_object = has_mt(L, idx, OBJECT_MT);
  int as_array = !as_object && has_mt(L, idx, ARRAY_MT);
  lua_Unsigned len = lua_rawlen(L, idx);
  if (!as_object && !as_array) {
    if (len > 0) {
      /* an array only if the keys are exactly 1..len (a stray t[0] or t.x makes it an object) */
      lua_Unsigned count = 0;
      int other = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_isinteger(L, -1)) {
          lua_Integer k = lua_tointeger(L, -1);
          if (k >= 1 && (lua_Unsigned)k <= len) { count++; continue; }
        }
        other = 1;
        lua_pop(L, 1);
        break;
      }
      as_array = !other && count == len;
    }
  }
  if (as_array) {
    enc_put(L, e, "[", 1);
    for (lua_Unsigned i = 1; i <= len; i++) {
      if (i > 1) enc_put(L, e, ",", 1);
      lua_rawgeti(L, idx, (lua_Integer)i);
      enc_value(L, e, lua_gettop(L));
      lua_pop(L, 1);
    }
    enc_put(L, e, "]", 1);
  } else if (e->sort_keys) {
    size_t nk = 0, cap = 8;
    key_t_ *keys = malloc(cap * sizeof *keys);
    if (!keys) luaL_error(L, "json.encode: out of memory");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING) { free(keys); fy_error(L, "json.canonical: object keys must be strings"); }
      if (nk == cap) {
        key_t_ *nb = realloc(keys, (cap *= 2) * sizeof *keys);
        if (!nb) { free(keys); luaL_error(L, "json.encode: out of memory"); }
        keys = nb;
      }
      keys[nk].s = lua_tolstring(L, -1, &keys[nk].n); /* anchored by the table itself */
      nk++;
    }
    qsort(keys, nk, sizeof *keys, key_cmp);
    enc_put(L, e, "{", 1);
    for (size_t i = 0; i < nk; i++) {
      if (i) enc_put(L, e, ",", 1);
      enc_string(L, e, keys[i].s, keys[i].n);
      enc_put(L, e, ":", 1);
      lua_pushlstring(L, keys[i].s, keys[i].n);
      lua_rawget(L, idx);
      enc_value(L, e, lua_gettop(L));
      lua_pop(L, 1);
    }
    enc_put(L, e, "}", 1);
    free(keys);
  } else {
    int first = 1;
    enc_put(L, e, "{", 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int kt = lua_type(L, -2);
      if (!first) enc_put(L, e, ",", 1);
      first = 0;
      if (kt == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, -2, &n);
        enc_string(L, e, k, n);
      } else if (kt == LUA_TNUMBER) {
        lua_pushvalue(L, -2);
        size_t n;
        const char *k = lua_tolstring(L, -1, &n);
        enc_string(L, e, k, n);
        lua_pop(L, 1);
      } else {
        fy_error(L, "json.encode: object keys must be strings or numbers, got %s", luaL_typename(L, -2));
      }
      enc_put(L, e, ":", 1);
      enc_value(L, e, lua_gettop(L));
      lua_pop(L, 1);
    }
    enc_put(L, e, "}", 1);
  }
  e->depth--;
}

static void enc_value(lua_State *L, enc_t *e, int idx) {
  char num[64];
  switch (lua_type(L, idx)) {
    case LUA_TNIL: enc_put(L, e, "null", 4); return;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) enc_put(L, e, "true", 4);
      else enc_put(L, e, "false", 5);
      return;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        int n = snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, idx));
        enc_put(L, e, num, (size_t)n);
      } else {
        double v = lua_tonumber(L, idx);
        if (!isfinite(v)) fy_error(L, "json.encode: cannot encode %f", v);
        int n = snprintf(num, sizeof num, "%.17g", v);
        /* keep it a float when decoded again: 1.0 is "1.0", not "1" */
        if (!strpbrk(num, ".eE")) n += snprintf(num + n, sizeof num - (size_t)n, ".0");
        enc_put(L, e, num, (size_t)n);
      }
      return;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      enc_string(L, e, s, n);
      return;
    }
    case LUA_TTABLE: enc_table(L, e, idx); return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) { enc_put(L, e, "null", 4); return; }
      break;
    case LUA_TUSERDATA:
      /* values that know their JSON form (u256 -> "0x..") provide __tojson */
      if (luaL_getmetafield(L, idx, "__tojson") != LUA_TNIL) {
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        enc_value(L, e, lua_gettop(L));
        lua_pop(L, 1);
        return;
      }
      break;
  }
  fy_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
}

static int enc_run(lua_State *L) {
  enc_t *e = lua_touserdata(L, 2);
  enc_value(L, e, 1);
  return 0;
}

static int encode(lua_State *L, int sort_keys) {
  fy_checkany(L, 1);
  enc_t e = {0};
  e.max_depth = check_depth(L, 2, "json.encode");
  e.sort_keys = sort_keys;
  lua_settop(L, 1);
  /* run protected so the buffer is freed when encoding raises */
  lua_pushcfunction(L, enc_run);
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, &e);
  int st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK) {
    free(e.b);
    return lua_error(L);
  }
  lua_pushlstring(L, e.b ? e.b : "", e.len);
  free(e.b);
  return 1;
}

static int l_encode(lua_State *L) { return encode(L, 0); }
/* canonical(v): the same text for equal values whatever the table insertion order */
static int l_canonical(lua_State *L) { return encode(L, 1); }

static int set_marker(lua_State *L, const char *mt) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  else fy_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, mt);
  return 1;
}
static int l_array(lua_State *L) { return set_marker(L, ARRAY_MT); }
static int l_object(lua_State *L) { return set_marker(L, OBJECT_MT); }

static int l_number(lua_State *L) {
  size_t n;
  const char *s = fy_checklstring(L, 1, &n);
  size_t i = s[0] == '-' ? 1 : 0;
  fy_argcheck(L, n > i, 1, "expected decimal digits");
  for (; i < n; i++) fy_argcheck(L, s[i] >= '0' && s[i] <= '9', 1, "expected decimal digits");
  push_bignum(L, s, n);
  return 1;
}

static int l_is_number(lua_State *L) {
  lua_pushboolean(L, lua_istable(L, 1) && has_mt(L, 1, NUMBER_MT));
  return 1;
}

static int l_number_tostring(lua_State *L) {
  lua_getfield(L, 1, "digits");
  return 1;
}

static int l_number_eq(lua_State *L) {
  lua_getfield(L, 1, "digits");
  lua_getfield(L, 2, "digits");
  lua_pushboolean(L, lua_rawequal(L, -1, -2));
  return 1;
}

static int l_number_concat(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  luaL_tolstring(L, 2, NULL);
  lua_concat(L, 2);
  return 1;
}

int luaopen_ferry_core_json(lua_State *L) {
  luaL_newmetatable(L, ARRAY_MT);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  luaL_newmetatable(L, OBJECT_MT);
  lua_pushliteral(L, "object");
  lua_setfield(L, -2, "__jsontype");
  luaL_newmetatable(L, NUMBER_MT);
  lua_pushcfunction(L, l_number_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, l_number_eq);
  lua_setfield(L, -2, "__eq");
  lua_pushcfunction(L, l_number_concat);
  lua_setfield(L, -2, "__concat");
  lua_pop(L, 3);
  static const luaL_Reg f[] = {{"decode", l_decode}, {"encode", l_encode}, {"canonical", l_canonical}, {"array", l_array},
                               {"object", l_object}, {"number", l_number},
                               {"is_number", l_is_number}, {NULL, NULL}};
  luaL_newlib(L, f);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
