/* ** u256.c -- 256-bit unsigned arithmetic with overflow detection, parse and print. */
#include "crypto/u256.h"
#include "crypto/hex.h"

#include <string.h>

typedef unsigned __int128 u128;

void fy_u256_from_u64(fy_u256_t *r, uint64_t v) {
  r->w[0] = v;
  r->w[1] = r->w[2] = r->w[3] = 0;
}

int fy_u256_is_zero(const fy_u256_t *a) { return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0; }

int fy_u256_cmp(const fy_u256_t *a, const fy_u256_t *b) {
  for (int i = 3; i >= 0; i--)
    if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
  return 0;
}

int fy_u256_add(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b) {
  uint64_t carry = 0;
  for (int i = 0; i < 4; i++) {
    u128 s = (u128)a->w[i] + b->w[i] + carry;
    r->w[i] = (uint64_t)s;
    carry = (uint64_t)(s >> 64);
  }
  return carry ? FY_U256_EOVERFLOW : 0;
}

int fy_u256_sub(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b) {
  uint64_t borrow = 0;
  for (int i = 0; i < 4; i++) {
    uint64_t x = a->w[i], y = b->w[i];
    uint64_t d = x - y - borrow;
    borrow = (x < y) || (x == y && borrow);
    r->w[i] = d;
  }
  return borrow ? FY_U256_EUNDERFLOW : 0;
}

int fy_u256_mul(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b) {
  uint64_t p[8] = {0};
  for (int i = 0; i < 4; i++) {
    uint64_t carry = 0;
    if (a->w[i] == 0) continue;
    for (int j = 0; j < 4; j++) {
      u128 t = (u128)a->w[i] * b->w[j] + p[i + j] + carry;
      p[i + j] = (uint64_t)t;
      carry = (uint64_t)(t >> 64);
    }
    p[i + 4] = carry;
  }
  memcpy(r->w, p, sizeof r->w);
  return (p[4] | p[5] | p[6] | p[7]) ? FY_U256_EOVERFLOW : 0;
}

/* q = a / d for a one-limb divisor d != 0; returns the remainder. q may alias a. */
static uint64_t div_small(fy_u256_t *q, const fy_u256_t *a, uint64_t d) {
  u128 rem = 0;
  for (int i = 3; i >= 0; i--) {
    u128 cur = rem << 64 | a->w[i];
    q->w[i] = (uint64_t)(cur / d);
    rem = cur % d;
  }
  return (uint64_t)rem;
}

static int bit_length(const fy_u256_t *a) {
  for (int i = 3; i >= 0; i--)
    if (a->w[i]) return 64 * i + 64 - __builtin_clzll(a->w[i]);
  return 0;
}

static void shl1(fy_u256_t *a, int bit) {
  for (int i = 3; i > 0; i--) a->w[i] = a->w[i] << 1 | a->w[i - 1] >> 63;
  a->w[0] = a->w[0] << 1 | (uint64_t)bit;
}

int fy_u256_divmod(fy_u256_t *q, fy_u256_t *m, const fy_u256_t *a, const fy_u256_t *b) {
  if (fy_u256_is_zero(b)) return FY_U256_EDIVZERO;
  fy_u256_t quo = {{0}}, rem = {{0}};
  if ((b->w[1] | b->w[2] | b->w[3]) == 0) {
    fy_u256_from_u64(&rem, div_small(&quo, a, b->w[0]));
  } else {
    /* Restoring binary long division from the top set bit of a. The remainder stays below
     * b < 2^256, but shifting it left can carry out of bit 255: track that bit. */
    for (int i = bit_length(a) - 1; i >= 0; i--) {
      int top = (int)(rem.w[3] >> 63);
      shl1(&rem, (int)(a->w[i / 64] >> (i % 64) & 1));
      shl1(&quo, 0);
      if (top || fy_u256_cmp(&rem, b) >= 0) {
        fy_u256_sub(&rem, &rem, b);
        quo.w[0] |= 1;
      }
    }
  }
  if (q) *q = quo;
  if (m) *m = rem;
  return 0;
}

int fy_u256_pow(fy_u256_t *r, const fy_u256_t *base, const fy_u256_t *exp) {
  /* Left-to-right square-and-multiply: the partial result only grows toward the final
   * value when base >= 2, so any intermediate overflow is a real overflow. */
  fy_u256_t acc, b = *base;
  fy_u256_from_u64(&acc, 1);
  int rc = 0;
  for (int i = bit_length(exp) - 1; i >= 0; i--) {
    if (fy_u256_mul(&acc, &acc, &acc)) rc = FY_U256_EOVERFLOW;
    if ((exp->w[i / 64] >> (i % 64) & 1) && fy_u256_mul(&acc, &acc, &b)) rc = FY_U256_EOVERFLOW;
    if (rc) break;
  }
  *r = acc;
  return rc;
}

void fy_u256_from_be(fy_u256_t *r, const uint8_t be[32]) {
  for (int i = 0; i < 4; i++) {
    uint64_t v = 0;
    for (int j = 0; j < 8; j++) v = v << 8 | be[(3 - i) * 8 + j];
    r->w[i] = v;
  }
}

void fy_u256_to_be(const fy_u256_t *a, uint8_t be[32]) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++) be[(3 - i) * 8 + j] = (uint8_t)(a->w[i] >> (56 - 8 * j));
}

int fy_u256_from_be_n(fy_u256_t *r, const uint8_t *be, size_t n) {
  uint8_t buf[32] = {0};
  while (n > 32 && be[0] == 0) be++, n--;
  if (n > 32) {
    fy_u256_from_u64(r, 0);
    return FY_U256_EOVERFLOW;
  }
  if (n) memcpy(buf + 32 - n, be, n);
  fy_u256_from_be(r, buf);
  return 0;
}

/* r = r * mul + add; returns nonzero on overflow. */
static int mul_add_small(fy_u256_t *r, uint64_t mul, uint64_t add) {
  u128 carry = add;
  for (int i = 0; i < 4; i++) {
    u128 t = (u128)r->w[i] * mul + carry;
    r->w[i] = (uint64_t)t;
    carry = t >> 64;
  }
  return carry != 0;
}

static int parse_dec(fy_u256_t *r, const char *s, size_t n) {
  fy_u256_from_u64(r, 0);
  if (n == 0) return FY_U256_ESYNTAX;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return FY_U256_ESYNTAX;
  for (size_t i = 0; i < n; i++)
    if (mul_add_small(r, 10, (uint64_t)(s[i] - '0'))) {
      fy_u256_from_u64(r, 0);
      return FY_U256_EOVERFLOW;
    }
  return 0;
}

int fy_u256_parse(fy_u256_t *r, const char *s, size_t n) {
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2, n -= 2;
    fy_u256_from_u64(r, 0);
    if (n == 0) return FY_U256_ESYNTAX;
    for (size_t i = 0; i < n; i++)
      if (fy_hexval(s[i]) < 0) return FY_U256_ESYNTAX;
    while (n > 0 && s[0] == '0') s++, n--;
    if (n > 64) return FY_U256_EOVERFLOW;
    for (size_t i = 0; i < n; i++) {
      size_t bit = 4 * (n - 1 - i);
      r->w[bit / 64] |= (uint64_t)fy_hexval(s[i]) << (bit % 64);
    }
    return 0;
  }
  return parse_dec(r, s, n);
}

size_t fy_u256_to_dec(const fy_u256_t *a, char out[FY_U256_DEC_SIZE]) {
  char tmp[FY_U256_DEC_SIZE];
  size_t n = 0;
  fy_u256_t v = *a;
  /* 10^19 is the largest power of ten in a limb: peel 19 digits per division. */
  do {
    uint64_t chunk = div_small(&v, &v, 10000000000000000000ull);
    int last = fy_u256_is_zero(&v);
    for (int i = 0; i < 19 && (!last || chunk); i++) {
      tmp[n++] = (char)('0' + chunk % 10);
      chunk /= 10;
    }
  } while (!fy_u256_is_zero(&v));
  if (n == 0) tmp[n++] = '0';
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = 0;
  return n;
}

size_t fy_u256_to_hex(const fy_u256_t *a, char out[FY_U256_HEX_SIZE]) {
  static const char digits[] = "0123456789abcdef";
  size_t n = 0;
  out[n++] = '0';
  out[n++] = 'x';
  int started = 0;
  for (int i = 63; i >= 0; i--) {
    int d = (int)(a->w[i / 16] >> (4 * (i % 16)) & 0xf);
    if (d || started || i == 0) {
      out[n++] = digits[d];
      started = 1;
    }
  }
  out[n] = 0;
  return n;
}

int fy_u256_parse_units(fy_u256_t *r, const char *s, size_t n, unsigned decimals) {
  fy_u256_from_u64(r, 0);
  if (decimals > FY_U256_MAX_DECIMALS) return FY_U256_ERANGE;
  const char *dot = memchr(s, '.', n);
  size_t ilen = dot ? (size_t)(dot - s) : n;
  size_t flen = dot ? n - ilen - 1 : 0;
  const char *frac = dot ? dot + 1 : NULL;
  if (ilen == 0 || (dot && flen == 0)) return FY_U256_ESYNTAX;
  for (size_t i = 0; i < ilen; i++)
    if (s[i] < '0' || s[i] > '9') return FY_U256_ESYNTAX;
  for (size_t i = 0; i < flen; i++)
    if (frac[i] < '0' || frac[i] > '9') return FY_U256_ESYNTAX;
  while (flen > decimals && frac[flen - 1] == '0') flen--;
  if (flen > decimals) return FY_U256_EDECIMALS;
  /* Accumulate integer digits, then fraction digits, then pad with zeros. */
  for (size_t i = 0; i < ilen; i++)
    if (mul_add_small(r, 10, (uint64_t)(s[i] - '0'))) goto overflow;
  for (size_t i = 0; i < flen; i++)
    if (mul_add_small(r, 10, (uint64_t)(frac[i] - '0'))) goto overflow;
  for (size_t i = flen; i < decimals; i++)
    if (mul_add_small(r, 10, 0)) goto overflow;
  return 0;
overflow:
  fy_u256_from_u64(r, 0);
  return FY_U256_EOVERFLOW;
}

size_t fy_u256_format_units(const fy_u256_t *a, unsigned decimals, char out[FY_U256_DEC_SIZE + 2]) {
  if (decimals > FY_U256_MAX_DECIMALS) {
    out[0] = 0;
    return 0;
  }
  char dec[FY_U256_DEC_SIZE];
  size_t n = fy_u256_to_dec(a, dec);
  size_t o = 0;
  if (n <= decimals) { /* 0.000ddd */
    out[o++] = '0';
    size_t zeros = decimals - n, flen = decimals;
    char frac[FY_U256_DEC_SIZE];
    memset(frac, '0', zeros);
    memcpy(frac + zeros, dec, n);
    while (flen > 0 && frac[flen - 1] == '0') flen--;
    if (flen) {
      out[o++] = '.';
      memcpy(out + o, frac, flen);
      o += flen;
    }
  } else {
    size_t ilen = n - decimals, flen = decimals;
    memcpy(out, dec, ilen);
    o = ilen;
    while (flen > 0 && dec[ilen + flen - 1] == '0') flen--;
    if (flen) {
      out[o++] = '.';
      memcpy(out + o, dec + ilen, flen);
      o += flen;
    }
  }
  out[o] = 0;
  return o;
}

const char *fy_u256_strerror(int rc) {
  switch (rc) {
    case FY_U256_OK: return "ok";
    case FY_U256_EOVERFLOW: return "overflow";
    case FY_U256_EUNDERFLOW: return "underflow";
    case FY_U256_EDIVZERO: return "division by zero";
    case FY_U256_ESYNTAX: return "invalid number";
    case FY_U256_EDECIMALS: return "too many decimal places";
    case FY_U256_ERANGE: return "argument out of range";
    default: return "unknown u256 error";
  }
}
