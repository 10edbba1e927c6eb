/*
** buf.h -- a growable byte buffer shared by the encoders (RLP, transactions, ABI).
**
** Provides: fy_buf_t and reserve/put/free. Depends on: libc only. No Lua; not thread-safe
** (one owner at a time). Backs no Lua API directly; rlp_lua.c keeps one inside a userdata.
**
** A zero-initialised fy_buf_t ({0}) is a valid empty buffer. data is heap memory owned by
** the buffer; fy_buf_free releases it. Pointers into data are invalidated by any call that
** can grow the buffer (reserve, put, and every encoder built on them).
*/
#ifndef FY_BUF_H
#define FY_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t *data;
  size_t len, cap;
} fy_buf_t;

/* Ensure room for `extra` more bytes past len. Returns 0, or -1 on ENOMEM or size overflow
 * (the buffer is left unchanged). */
int fy_buf_reserve(fy_buf_t *b, size_t extra);

/* Append n bytes copied from p (p may be NULL when n is 0). Returns 0, or -1 on ENOMEM
 * (nothing appended). p must not point into b->data. */
int fy_buf_put(fy_buf_t *b, const void *p, size_t n);

/* Release the heap memory and reset b to {0}. Safe on a zeroed or already freed buffer. */
void fy_buf_free(fy_buf_t *b);

#endif
