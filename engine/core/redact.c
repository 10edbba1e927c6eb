/*
** redact.c -- find what to hide in a text: key-shaped hex runs, URL paths (see redact.h).
*/
#include "core/redact.h"

#include <stdio.h>
#include <string.h>

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int is_scheme(char c) { return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'; }

/* where a URL ends inside a text */
static int url_end(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '<' ||
         c == '>' || c == '`' || (unsigned char)c < 0x20;
}

/* the first key-shaped hex run at or after s: 1 with *sp, or 0 */
static int next_hex(const char *s, size_t n, fy_redact_span_t *sp) {
  size_t i = 0;
  while (i < n) {
    if (!is_hex(s[i])) { i++; continue; }
    size_t start = i, digits = i;
    /* "0x" opens a run: its digits start after the x */
    if (s[i] == '0' && i + 2 < n && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex(s[i + 2])) digits = i + 2;
    size_t j = digits;
    while (j < n && is_hex(s[j])) j++;
    if (j - digits >= FY_REDACT_MIN_DIGITS) {
      int k = snprintf(sp->text, sizeof sp->text, "%s%.4s\xe2\x80\xa6(%zu hex digits, redacted)",
                       digits > start ? "0x" : "", s + digits, j - digits);
      sp->at = start;
      sp->len = j - start;
      sp->text_len = k > 0 ? (size_t)k : 0;
      return 1;
    }
    i = j > i ? j : i + 1;
  }
  return 0;
}

/* the first URL at or after s with something to hide: 1 with *sp, or 0 */
static int next_url(const char *s, size_t n, fy_redact_span_t *sp) {
  for (size_t i = 1; i + 3 <= n; i++) {
    if (memcmp(s + i, "://", 3) != 0) continue;
    size_t start = i;
    while (start > 0 && is_scheme(s[start - 1])) start--;
    while (start < i && !is_alpha(s[start])) start++;        /* a scheme starts with a letter */
    if (start == i) continue;
    size_t host = i + 3, j = host, user_end = 0;
    while (j < n && !url_end(s[j]) && s[j] != '/' && s[j] != '?' && s[j] != '#') {
      if (s[j] == '@') user_end = j + 1;
      j++;
    }
    size_t end = j;
    while (end < n && !url_end(s[end])) end++;
    int path = end > j && !(end == j + 1 && s[j] == '/');
    if (!path && !user_end) { i = end; continue; }
    size_t hs = user_end ? user_end : host;
    if ((i - start) + 3 + (j - hs) >= sizeof sp->text) { hs = j; }   /* an absurd host: drop it too */
    int k = snprintf(sp->text, sizeof sp->text, "%.*s://%.*s", (int)(i - start), s + start, (int)(j - hs), s + hs);
    sp->at = start;
    sp->len = end - start;
    sp->text_len = k > 0 ? (size_t)k : 0;
    if (sp->text_len > sp->len) sp->text_len = sp->len;
    return 1;
  }
  return 0;
}

int fy_redact_next(const char *s, size_t n, fy_redact_span_t *sp) {
  fy_redact_span_t h, u;
  int fh = next_hex(s, n, &h), fu = next_url(s, n, &u);
  if (!fh && !fu) return 0;
  /* the one that starts first; a URL holding a hex run hides it with the rest of its path */
  if (fu && (!fh || u.at <= h.at || (h.at < u.at + u.len && u.at < h.at + h.len))) *sp = u;
  else *sp = h;
  return 1;
}
