/*
** redact.c -- find and mask secret-looking hex runs (see redact.h).
*/
#include "core/redact.h"

#include <stdio.h>

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int fy_redact_find(const char *s, size_t n, size_t *at, size_t *len) {
  size_t i = 0;
  while (i < n) {
    if (!is_hex(s[i])) { i++; continue; }
    size_t start = i, digits = i;
    /* "0x" opens a run: its digits start after the x */
    if (s[i] == '0' && i + 2 < n && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex(s[i + 2])) digits = i + 2;
    size_t j = digits;
    while (j < n && is_hex(s[j])) j++;
    if (j - digits >= FY_REDACT_MIN_DIGITS) {
      *at = start;
      *len = j - start;
      return 1;
    }
    i = j > i ? j : i + 1;
  }
  return 0;
}

size_t fy_redact_mask(const char *s, size_t len, char *out, size_t cap) {
  size_t pre = len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 2 : 0;
  int k = snprintf(out, cap, "%s%.4s\xe2\x80\xa6(%zu hex digits, redacted)", pre ? "0x" : "", s + pre, len - pre);
  if (k < 0) { if (cap) out[0] = 0; return 0; }
  return (size_t)k < cap ? (size_t)k : cap - 1;
}
