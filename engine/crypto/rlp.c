/* ** rlp.c -- RLP encoder (append to fy_buf_t) and strict, zero-copy decoder. */
#include "crypto/rlp.h"

#include <string.h>

/* Big-endian bytes of v without leading zeros into out[8]; returns the count (0 for 0). */
static size_t be_min(uint64_t v, uint8_t out[8]) {
  size_t n = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    uint8_t byte = (uint8_t)(v >> shift);
    if (n || byte) out[n++] = byte;
  }
  return n;
}

/* Write the header for a payload of len bytes (offset 0x80 strings, 0xc0 lists) into
 * hdr[9]; returns its size. */
static size_t make_header(uint8_t base, size_t len, uint8_t hdr[9]) {
  if (len < 56) {
    hdr[0] = (uint8_t)(base + len);
    return 1;
  }
  size_t ll = be_min((uint64_t)len, hdr + 1);
  hdr[0] = (uint8_t)(base + 55 + ll);
  return 1 + ll;
}

int fy_rlp_put_bytes(fy_buf_t *b, const uint8_t *p, size_t n) {
  if (n == 1 && p[0] < 0x80) return fy_buf_put(b, p, 1) ? FY_RLP_ENOMEM : 0;
  uint8_t hdr[9];
  size_t hl = make_header(0x80, n, hdr);
  if (n > SIZE_MAX - hl || fy_buf_reserve(b, hl + n) != 0) return FY_RLP_ENOMEM;
  fy_buf_put(b, hdr, hl); /* cannot fail: reserved */
  fy_buf_put(b, p, n);
  return 0;
}

int fy_rlp_put_uint(fy_buf_t *b, const uint8_t *be, size_t n) {
  while (n > 0 && be[0] == 0) be++, n--;
  return fy_rlp_put_bytes(b, be, n);
}

int fy_rlp_put_u64(fy_buf_t *b, uint64_t v) {
  uint8_t be[8];
  size_t n = be_min(v, be);
  return fy_rlp_put_bytes(b, be, n);
}

size_t fy_rlp_list_begin(fy_buf_t *b) { return b->len; }

int fy_rlp_list_end(fy_buf_t *b, size_t mark) {
  if (mark > b->len) return FY_RLP_EINVAL;
  size_t plen = b->len - mark;
  uint8_t hdr[9];
  size_t hl = make_header(0xc0, plen, hdr);
  if (fy_buf_reserve(b, hl) != 0) return FY_RLP_ENOMEM;
  if (plen) memmove(b->data + mark + hl, b->data + mark, plen);
  memcpy(b->data + mark, hdr, hl);
  b->len += hl;
  return 0;
}

int fy_rlp_decode(const uint8_t *in, size_t len, fy_rlp_item_t *item, size_t *consumed) {
  if (len == 0) return FY_RLP_EEMPTY;
  uint8_t b0 = in[0];
  size_t hl, plen;
  if (b0 < 0x80) { /* a single byte is its own payload */
    item->p = in;
    item->len = 1;
    item->is_list = 0;
    if (consumed) *consumed = 1;
    return 0;
  }
  int is_list = b0 >= 0xc0;
  uint8_t off = is_list ? 0xc0 : 0x80;
  if (b0 - off < 56) { /* short form */
    hl = 1;
    plen = (size_t)(b0 - off);
  } else { /* long form: 1..8 length bytes */
    size_t ll = (size_t)(b0 - off - 55);
    if (len - 1 < ll) return FY_RLP_ETRUNCATED;
    if (in[1] == 0) return FY_RLP_ELEADINGZERO;
    uint64_t v = 0;
    for (size_t i = 0; i < ll; i++) v = v << 8 | in[1 + i];
    if (v > SIZE_MAX) return FY_RLP_ETOOLARGE;
    if (v < 56) return FY_RLP_ENONCANONSIZE;
    hl = 1 + ll;
    plen = (size_t)v;
  }
  if (plen > len - hl) return FY_RLP_ETRUNCATED;
  if (!is_list && plen == 1 && in[hl] < 0x80) return FY_RLP_ESINGLEBYTE;
  item->p = in + hl;
  item->len = plen;
  item->is_list = is_list;
  if (consumed) *consumed = hl + plen;
  return 0;
}

int fy_rlp_decode_all(const uint8_t *in, size_t len, fy_rlp_item_t *item) {
  size_t used;
  int rc = fy_rlp_decode(in, len, item, &used);
  if (rc) return rc;
  return used == len ? 0 : FY_RLP_ETRAILING;
}

void fy_rlp_iter_init(fy_rlp_iter_t *it, const fy_rlp_item_t *list) {
  it->p = list->p;
  it->end = list->p + list->len;
}

int fy_rlp_iter_next(fy_rlp_iter_t *it, fy_rlp_item_t *out) {
  if (it->p == it->end) return 0;
  size_t used;
  int rc = fy_rlp_decode(it->p, (size_t)(it->end - it->p), out, &used);
  if (rc) return rc;
  it->p += used;
  return 1;
}

int fy_rlp_get_uint(const fy_rlp_item_t *it, uint8_t *be, size_t max, size_t *n) {
  if (it->is_list) return FY_RLP_EEXPECTEDSTR;
  if (it->len > 0 && it->p[0] == 0) return FY_RLP_EINTZERO;
  if (it->len > max) return FY_RLP_EINTRANGE;
  if (it->len) memcpy(be, it->p, it->len);
  *n = it->len;
  return 0;
}

int fy_rlp_get_u64(const fy_rlp_item_t *it, uint64_t *v) {
  uint8_t be[8];
  size_t n;
  int rc = fy_rlp_get_uint(it, be, sizeof be, &n);
  if (rc) return rc;
  *v = 0;
  for (size_t i = 0; i < n; i++) *v = *v << 8 | be[i];
  return 0;
}

static int validate(const fy_rlp_item_t *item, int depth) {
  if (!item->is_list) return 0;
  if (depth <= 0) return FY_RLP_EDEPTH;
  fy_rlp_iter_t it;
  fy_rlp_item_t sub;
  int rc;
  fy_rlp_iter_init(&it, item);
  while ((rc = fy_rlp_iter_next(&it, &sub)) == 1) {
    if ((rc = validate(&sub, depth - 1)) != 0) return rc;
  }
  return rc;
}

int fy_rlp_validate(const fy_rlp_item_t *item, int max_depth) { return validate(item, max_depth); }

static const struct {
  int rc;
  const char *name, *msg;
} errors[] = {
    {FY_RLP_OK, "ok", "ok"},
    {FY_RLP_ENOMEM, "enomem", "out of memory"},
    {FY_RLP_EEMPTY, "eempty", "empty input where an item was expected"},
    {FY_RLP_ETRUNCATED, "etruncated", "length runs past the end of the input"},
    {FY_RLP_ESINGLEBYTE, "esinglebyte", "single byte below 0x80 must be encoded as itself"},
    {FY_RLP_ENONCANONSIZE, "enoncansize", "long length form used for a payload under 56 bytes"},
    {FY_RLP_ELEADINGZERO, "eleadingzero", "leading zero byte in a long length"},
    {FY_RLP_ETRAILING, "etrailing", "trailing bytes after the item"},
    {FY_RLP_EEXPECTEDSTR, "eexpectedstr", "expected a string item, got a list"},
    {FY_RLP_EINTZERO, "eintzero", "integer has leading zero bytes"},
    {FY_RLP_EINTRANGE, "eintrange", "integer too large"},
    {FY_RLP_EDEPTH, "edepth", "nesting too deep"},
    {FY_RLP_EINVAL, "einval", "invalid argument"},
    {FY_RLP_ETOOLARGE, "etoolarge", "length does not fit in memory"},
};

const char *fy_rlp_strerror(int rc) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].rc == rc) return errors[i].msg;
  return "unknown rlp error";
}

const char *fy_rlp_err_name(int rc) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].rc == rc) return errors[i].name;
  return "eunknown";
}

static int reencode(fy_buf_t *b, const fy_rlp_item_t *it, int depth) {
  if (!it->is_list) return fy_rlp_put_bytes(b, it->p, it->len);
  if (depth >= FY_RLP_MAX_DEPTH) return FY_RLP_EDEPTH;
  size_t mark = fy_rlp_list_begin(b);
  fy_rlp_iter_t iter;
  fy_rlp_item_t sub;
  int rc;
  fy_rlp_iter_init(&iter, it);
  while ((rc = fy_rlp_iter_next(&iter, &sub)) == 1)
    if ((rc = reencode(b, &sub, depth + 1)) != 0) return rc;
  return rc ? rc : fy_rlp_list_end(b, mark);
}

int fy_rlp_reencode(fy_buf_t *b, const fy_rlp_item_t *item) { return reencode(b, item, 0); }
