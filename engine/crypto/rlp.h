/*
** rlp.h -- Ethereum RLP (Recursive Length Prefix): streaming encoder and strict decoder.
**
** Provides: encoders that append to a fy_buf_t (strings, canonical integers, lists via a
** mark), a zero-copy strict decoder (items point into the caller's input), a list iterator
** and canonical-integer extraction. Error codes are negative FY_RLP_E* (fy_rlp_strerror).
** Depends on: buf.h (libc). No Lua; not thread-safe per buffer, otherwise reentrant.
** Backs: ferry.core.rlp (encode, decode) through rlp_lua.c; used by the transaction encoder.
**
** Decoding is shallow: fy_rlp_decode/decode_all check the header of ONE item and that its
** payload fits in the input; items inside a list are checked when iterated (fy_rlp_iter_next)
** or all at once with fy_rlp_validate. Iterate a list until it returns 0 to be sure it holds
** no extra items.
*/
#ifndef FY_RLP_H
#define FY_RLP_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"

enum {
  FY_RLP_OK = 0,
  FY_RLP_ENOMEM = -1,        /* same value as fy_buf_* failures */
  FY_RLP_EEMPTY = -2,        /* no input where an item was expected */
  FY_RLP_ETRUNCATED = -3,    /* header or payload runs past the end of the input */
  FY_RLP_ESINGLEBYTE = -4,   /* a single byte < 0x80 encoded as 0x81 xx */
  FY_RLP_ENONCANONSIZE = -5, /* long length form used for a payload shorter than 56 bytes */
  FY_RLP_ELEADINGZERO = -6,  /* a long length starts with a zero byte */
  FY_RLP_ETRAILING = -7,     /* bytes left after the top-level item */
  FY_RLP_EEXPECTEDSTR = -8,  /* a list where a string (integer) was required */
  FY_RLP_EINTZERO = -9,      /* an integer with leading zero bytes (0 must be 0x80) */
  FY_RLP_EINTRANGE = -10,    /* an integer larger than the caller's buffer */
  FY_RLP_EDEPTH = -11,       /* nesting deeper than the limit */
  FY_RLP_EINVAL = -12,       /* bad argument (e.g. a list mark past the buffer end) */
  FY_RLP_ETOOLARGE = -13     /* a length that does not fit in size_t */
};

#define FY_RLP_MAX_DEPTH 64      /* default nesting limit for recursive walkers */

/* ---- encoding: every function appends to b and returns 0 or FY_RLP_ENOMEM; on error b
 * keeps what was written before the failing call (discard it). b is caller-owned. */

/* A string item. A single byte < 0x80 is written as itself; p may be NULL when n is 0 and
 * must not point into b->data. */
int fy_rlp_put_bytes(fy_buf_t *b, const uint8_t *p, size_t n);

/* A big-endian unsigned integer of n bytes: leading zeros are stripped, 0 encodes as 0x80. */
int fy_rlp_put_uint(fy_buf_t *b, const uint8_t *be, size_t n);

/* An unsigned 64-bit integer (canonical, as fy_rlp_put_uint). */
int fy_rlp_put_u64(fy_buf_t *b, uint64_t v);

/* Start a list: returns a mark (the current length). Put the items, then fy_rlp_list_end.
 * Cannot fail. Marks nest; end inner lists before outer ones. */
size_t fy_rlp_list_begin(fy_buf_t *b);

/* Close the list started at mark: inserts its header before everything written since mark.
 * Returns 0, FY_RLP_ENOMEM, or FY_RLP_EINVAL if mark > b->len. */
int fy_rlp_list_end(fy_buf_t *b, size_t mark);

/* ---- decoding. p/len are the payload (for a list: the concatenated encoded items). Item
 * pointers borrow the input: valid as long as the input bytes are. */
typedef struct {
  const uint8_t *p;
  size_t len;
  int is_list;
} fy_rlp_item_t;

/* Decode the item at the start of in[0..len). Strict: rejects non-canonical length prefixes,
 * single bytes < 0x80 encoded as 0x81xx, leading zero bytes in long lengths, and lengths past
 * the input. On success fills *item, sets *consumed (header + payload; may be NULL) and
 * returns 0; otherwise a negative FY_RLP_E*, and item and consumed are unspecified. Shallow:
 * the contents of a list are not checked here. */
int fy_rlp_decode(const uint8_t *in, size_t len, fy_rlp_item_t *item, size_t *consumed);

/* As fy_rlp_decode, and the item must span the whole input (FY_RLP_ETRAILING otherwise). */
int fy_rlp_decode_all(const uint8_t *in, size_t len, fy_rlp_item_t *item);

/* Walk the items of a list. */
typedef struct {
  const uint8_t *p, *end;
} fy_rlp_iter_t;

/* Start iterating list (which must have is_list set; a string iterates its payload bytes as
 * if they were items, which is rarely what you want). Cannot fail. */
void fy_rlp_iter_init(fy_rlp_iter_t *it, const fy_rlp_item_t *list);

/* Next item into *out: returns 1, 0 at the end of the list, or a negative FY_RLP_E* for a
 * malformed item (the iterator then stays on it). */
int fy_rlp_iter_next(fy_rlp_iter_t *it, fy_rlp_item_t *out);

/* Copy a canonical integer item (a string, no leading zero bytes; the empty string is 0) to
 * be[0..*n), big-endian and minimal (*n == 0 for zero). Returns 0, FY_RLP_EEXPECTEDSTR,
 * FY_RLP_EINTZERO, or FY_RLP_EINTRANGE when it has more than max bytes. */
int fy_rlp_get_uint(const fy_rlp_item_t *it, uint8_t *be, size_t max, size_t *n);

/* As fy_rlp_get_uint into a uint64_t (at most 8 bytes). */
int fy_rlp_get_u64(const fy_rlp_item_t *it, uint64_t *v);

/* Check an item recursively: every nested item well-formed and lists exactly filled, no
 * deeper than max_depth list levels (FY_RLP_EDEPTH). Returns 0 or a negative FY_RLP_E*. */
int fy_rlp_validate(const fy_rlp_item_t *item, int max_depth);

/* Encode a decoded item again, canonically, into b (nested lists are decoded on the way).
 * Returns 0, FY_RLP_ENOMEM, or the decode error met inside a nested list (FY_RLP_EDEPTH past
 * FY_RLP_MAX_DEPTH). The strict decoder's oracle: canonical input re-encodes to itself. */
int fy_rlp_reencode(fy_buf_t *b, const fy_rlp_item_t *item);

/* A static, lowercase message for rc ("ok" for 0, "unknown rlp error" for other values). */
const char *fy_rlp_strerror(int rc);

/* A short stable name for rc: "ok", "enomem", "etruncated", ... ("eunknown" otherwise). */
const char *fy_rlp_err_name(int rc);

#endif
