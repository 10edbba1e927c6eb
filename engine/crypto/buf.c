/* ** buf.c -- growable byte buffer (doubling growth, overflow-checked). */
#include "crypto/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int fy_buf_reserve(fy_buf_t *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return -1;
  size_t need = b->len + extra;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  uint8_t *d = realloc(b->data, cap);
  if (!d) return -1;
  b->data = d;
  b->cap = cap;
  return 0;
}

int fy_buf_put(fy_buf_t *b, const void *p, size_t n) {
  if (n == 0) return 0;
  if (fy_buf_reserve(b, n) != 0) return -1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void fy_buf_free(fy_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
