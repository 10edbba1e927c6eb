/*
** hex.h -- hex digits, for the plain-C cores and the bindings alike (no Lua, no allocation).
**
** Provides: fy_hexval (one digit), fy_hex_decode (pairs of digits into bytes), fy_is_0x.
** Depends on: nothing. Header only: the cores that are tested and fuzzed alone (u256.c,
** secp.c, json.c) include it without linking anything more.
*/
#ifndef FY_HEX_H
#define FY_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
static inline int fy_hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* s[0..2n) (no prefix) into out[0..n). Returns -1 when every digit is hex, else the index in s
** of the first bad digit. out may be partly written on failure. */
static inline long fy_hex_decode(const char *s, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    int hi = fy_hexval((unsigned char)s[2 * i]), lo = fy_hexval((unsigned char)s[2 * i + 1]);
    if (hi < 0) return (long)(2 * i);
    if (lo < 0) return (long)(2 * i + 1);
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return -1;
}

/* Whether s[0..n) starts with the lowercase "0x" prefix that marks hex text in the API. */
static inline int fy_is_0x(const char *s, size_t n) { return n >= 2 && s[0] == '0' && s[1] == 'x'; }

#endif
