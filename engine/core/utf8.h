/*
** utf8.h -- one UTF-8 check for the JSON codec and the JSON log lines.
**
** fy_utf8_len(s, n): length (1..4) of the well-formed UTF-8 sequence at s[0..n), or 0 if there
** is none there (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). n >= 1.
*/
#ifndef FY_UTF8_H
#define FY_UTF8_H

#include <stddef.h>

static inline size_t fy_utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t k;
  unsigned lo = 0x80, hi = 0xBF;              /* bounds of the second byte */
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) k = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    if (c == 0xE0) lo = 0xA0;                 /* overlong */
    if (c == 0xED) hi = 0x9F;                 /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    if (c == 0xF0) lo = 0x90;                 /* overlong */
    if (c == 0xF4) hi = 0x8F;                 /* above U+10FFFF */
  } else {
    return 0;
  }
  if (n < k || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return k;
}

#endif
