/* ** u256_lua.c -- ferry.core.u256: the "ferry.U256" userdata (checked 256-bit arithmetic). */
#include "core/bind.h"
#include "crypto/u256_lua.h"
#include "core/log.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

static void push_metatable(lua_State *L);

fy_u256_t *fy_u256_push(lua_State *L, const fy_u256_t *v) {
  fy_u256_t *u = lua_newuserdatauv(L, sizeof *u, 0); /* [u] */
  *u = *v;
  push_metatable(L);       /* [u, mt] */
  lua_setmetatable(L, -2); /* [u] */
  return u;
}

fy_u256_t *fy_u256_test(lua_State *L, int idx) { return luaL_testudata(L, idx, FY_U256_MT); }

/* Convert the value at idx; on failure returns a static reason (nothing pushed). */
static const char *to_u256(lua_State *L, int idx, fy_u256_t *out) {
  fy_u256_t *u;
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        if (i < 0) return "negative integer";
        fy_u256_from_u64(out, (uint64_t)i);
        return NULL;
      } else {
        double d = lua_tonumber(L, idx);
        if (isnan(d)) return "NaN";
        if (d < 0) return "negative number";
        if (isinf(d) || d >= 0x1p256) return "number too large";
        if (d != floor(d)) return "number has a fractional part";
        if (d < 0x1p63) {
          fy_u256_from_u64(out, (uint64_t)d);
        } else { /* exact: doubles >= 2^53 are whole, 53-bit mantissa */
          int e;
          double m = frexp(d, &e);                /* d = m * 2^e, 0.5 <= m < 1, e in 64..256 */
          uint64_t mant = (uint64_t)ldexp(m, 53); /* d = mant * 2^(e-53) */
          int sh = e - 53;
          fy_u256_from_u64(out, 0);
          out->w[sh / 64] = mant << (sh % 64);
          if (sh % 64 && sh / 64 < 3) out->w[sh / 64 + 1] = mant >> (64 - sh % 64);
        }
        return NULL;
      }
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      int rc = fy_u256_parse(out, s, n);
      if (rc == FY_U256_EOVERFLOW) return "number does not fit in 256 bits";
      if (rc) return "string is not a decimal or 0x-hex number";
      return NULL;
    }
    case LUA_TUSERDATA:
      if ((u = fy_u256_test(L, idx)) != NULL) {
        *out = *u;
        return NULL;
      }
      /* fall through */
    default: return "expected U256, non-negative integer or numeric string";
  }
}

int fy_u256_check(lua_State *L, int idx, fy_u256_t *out) {
  const char *why = to_u256(L, idx, out);
  if (why) {
    if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      lua_pushfstring(L, "%s: ", why);
      fy_push_redacted(L, s, n); /* a private key pasted as an amount is not shown */
      lua_concat(L, 2);
      return fy_argerror_msg(L, idx, lua_tostring(L, -1));
    }
    return fy_argerror_msg(L, idx, lua_pushfstring(L, "%s, got %s", why, luaL_typename(L, idx)));
  }
  return 0;
}

/* Operand of a metamethod: raises "ferry.U256: <op>: <reason>". may raise */
static void operand(lua_State *L, int idx, fy_u256_t *out, const char *op) {
  const char *why = to_u256(L, idx, out);
  if (why) fy_error(L, "ferry.U256: bad operand to '%s' (%s, got %s)", op, why, luaL_typename(L, idx));
}

static int arith(lua_State *L, const char *op, int (*fn)(fy_u256_t *, const fy_u256_t *, const fy_u256_t *)) {
  fy_u256_t a, b, r;
  operand(L, 1, &a, op);
  operand(L, 2, &b, op);
  int rc = fn(&r, &a, &b);
  if (rc) return fy_error(L, "ferry.U256: %s in '%s'", fy_u256_strerror(rc), op);
  fy_u256_push(L, &r);
  return 1;
}

static int div_only(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b) { return fy_u256_divmod(r, NULL, a, b); }
static int mod_only(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b) { return fy_u256_divmod(NULL, r, a, b); }

static int l_u256_add(lua_State *L) { return arith(L, "+", fy_u256_add); }
static int l_u256_sub(lua_State *L) { return arith(L, "-", fy_u256_sub); }
static int l_u256_mul(lua_State *L) { return arith(L, "*", fy_u256_mul); }
static int l_u256_idiv(lua_State *L) { return arith(L, "//", div_only); }
static int l_u256_mod(lua_State *L) { return arith(L, "%", mod_only); }
static int l_u256_pow(lua_State *L) { return arith(L, "^", fy_u256_pow); }

static int l_u256_div(lua_State *L) {
  return fy_error(L, "ferry.U256: '/' is float division; use '//' for integer division");
}

static int l_u256_unm(lua_State *L) { return fy_error(L, "ferry.U256: unary minus on an unsigned value"); }

static int l_u256_eq(lua_State *L) /* __eq (both userdata) and :eq(x) (anything U256-like) */
{
  fy_u256_t a, b;
  operand(L, 1, &a, "==");
  operand(L, 2, &b, "==");
  lua_pushboolean(L, fy_u256_cmp(&a, &b) == 0);
  return 1;
}

static int l_u256_lt(lua_State *L) {
  fy_u256_t a, b;
  operand(L, 1, &a, "<");
  operand(L, 2, &b, "<");
  lua_pushboolean(L, fy_u256_cmp(&a, &b) < 0);
  return 1;
}

static int l_u256_le(lua_State *L) {
  fy_u256_t a, b;
  operand(L, 1, &a, "<=");
  operand(L, 2, &b, "<=");
  lua_pushboolean(L, fy_u256_cmp(&a, &b) <= 0);
  return 1;
}

static int l_u256_tostring(lua_State *L) {
  fy_u256_t *u = fy_checkudata(L, 1, FY_U256_MT);
  char buf[FY_U256_DEC_SIZE];
  size_t n = fy_u256_to_dec(u, buf);
  lua_pushlstring(L, buf, n);
  return 1;
}

static int l_u256_concat(lua_State *L) {
  for (int i = 1; i <= 2; i++) {
    fy_u256_t *u = fy_u256_test(L, i);
    if (u) {
      char buf[FY_U256_DEC_SIZE];
      lua_pushlstring(L, buf, fy_u256_to_dec(u, buf));
    } else if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER) {
      lua_pushvalue(L, i);
    } else {
      return fy_error(L, "ferry.U256: attempt to concatenate a %s value", luaL_typename(L, i));
    }
  } /* [a, b, sa, sb] */
  lua_concat(L, 2);
  return 1;
}

static int l_u256_tohex(lua_State *L) {
  fy_u256_t *u = fy_checkudata(L, 1, FY_U256_MT);
  char buf[FY_U256_HEX_SIZE];
  lua_pushlstring(L, buf, fy_u256_to_hex(u, buf));
  return 1;
}

static int l_u256_tobytes(lua_State *L) {
  fy_u256_t *u = fy_checkudata(L, 1, FY_U256_MT);
  lua_Integer n = fy_optinteger(L, 2, 32);
  fy_argcheck(L, n >= 0 && n <= 32, 2, "byte count must be 0..32");
  uint8_t be[32];
  fy_u256_to_be(u, be);
  for (lua_Integer i = 0; i < 32 - n; i++)
    if (be[i]) return fy_error(L, "ferry.U256: value does not fit in %d bytes", (int)n);
  lua_pushlstring(L, (const char *)be + 32 - n, (size_t)n);
  return 1;
}

static int l_u256_tointeger(lua_State *L) {
  fy_u256_t *u = fy_checkudata(L, 1, FY_U256_MT);
  if (u->w[1] | u->w[2] | u->w[3] || u->w[0] > (uint64_t)LUA_MAXINTEGER)
    lua_pushnil(L);
  else
    lua_pushinteger(L, (lua_Integer)u->w[0]);
  return 1;
}

static int l_u256_new(lua_State *L) {
  fy_u256_t v;
  fy_checkany(L, 1);
  fy_u256_check(L, 1, &v);
  fy_u256_push(L, &v);
  return 1;
}

static int l_u256_from_bytes(lua_State *L) {
  size_t n;
  const char *s = fy_checklstring(L, 1, &n);
  fy_u256_t v;
  if (fy_u256_from_be_n(&v, (const uint8_t *)s, n)) return fy_argerror_msg(L, 1, "more than 32 significant bytes");
  fy_u256_push(L, &v);
  return 1;
}

static int l_u256_is(lua_State *L) {
  lua_pushboolean(L, fy_u256_test(L, 1) != NULL);
  return 1;
}

static unsigned check_decimals(lua_State *L, int idx) {
  lua_Integer d = fy_checkinteger(L, idx);
  fy_argcheck(L, d >= 0 && d <= FY_U256_MAX_DECIMALS, idx, "decimals must be 0..77");
  return (unsigned)d;
}

static int l_u256_parse_units(lua_State *L) {
  size_t n;
  const char *s = fy_checklstring(L, 1, &n);
  unsigned dec = check_decimals(L, 2);
  fy_u256_t v;
  int rc = fy_u256_parse_units(&v, s, n, dec);
  if (rc) {
    lua_pushliteral(L, "ferry.U256: parse_units(\"");
    fy_push_redacted(L, s, n); /* the same for a key pasted as a decimal */
    lua_pushfstring(L, "\", %d): %s", (int)dec, fy_u256_strerror(rc));
    lua_concat(L, 3);
    return fy_error(L, "%s", lua_tostring(L, -1));
  }
  fy_u256_push(L, &v);
  return 1;
}

static int l_u256_format_units(lua_State *L) {
  fy_u256_t v;
  fy_u256_check(L, 1, &v);
  unsigned dec = check_decimals(L, 2);
  char buf[FY_U256_DEC_SIZE + 2];
  lua_pushlstring(L, buf, fy_u256_format_units(&v, dec, buf));
  return 1;
}

static const luaL_Reg u256_meta[] = {
    {"__add", l_u256_add},       {"__sub", l_u256_sub}, {"__mul", l_u256_mul}, {"__idiv", l_u256_idiv},
    {"__mod", l_u256_mod},       {"__pow", l_u256_pow}, {"__div", l_u256_div}, {"__unm", l_u256_unm},
    {"__eq", l_u256_eq},         {"__lt", l_u256_lt},   {"__le", l_u256_le},   {"__tostring", l_u256_tostring},
    {"__concat", l_u256_concat}, {NULL, NULL}};

static const luaL_Reg u256_methods[] = {{"tohex", l_u256_tohex},         {"tobytes", l_u256_tobytes},
                                        {"tointeger", l_u256_tointeger}, {"eq", l_u256_eq},
                                        {"tostring", l_u256_tostring},   {NULL, NULL}};

static const luaL_Reg u256_funcs[] = {{"new", l_u256_new},
                                      {"from_bytes", l_u256_from_bytes},
                                      {"is_u256", l_u256_is},
                                      {"parse_units", l_u256_parse_units},
                                      {"format_units", l_u256_format_units},
                                      {NULL, NULL}};

/* Push the (shared, registry-held) metatable, creating it on first use. */
static void push_metatable(lua_State *L) {
  if (luaL_newmetatable(L, FY_U256_MT)) { /* [mt]; also sets mt.__name */
    luaL_setfuncs(L, u256_meta, 0);
    luaL_newlib(L, u256_methods);   /* [mt, methods] */
    lua_setfield(L, -2, "__index"); /* [mt] */
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
}

int luaopen_ferry_core_u256(lua_State *L) {
  luaL_checkversion(L);
  push_metatable(L);
  lua_pop(L, 1);
  luaL_newlib(L, u256_funcs); /* [M] */
  fy_u256_t max = {{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};
  fy_u256_push(L, &max); /* [M, max] */
  lua_setfield(L, -2, "MAX");
  return 1;
}
