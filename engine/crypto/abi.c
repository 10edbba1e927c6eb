/* ** abi.c -- Solidity ABI type parser, encoder, strict decoder and revert decoding */
#include "crypto/abi.h"
#include "crypto/keccak.h"

#include <stdlib.h>
#include <string.h>

const char *fy_abi_strerror(int rc) {
  switch (rc) {
  case FY_ABI_OK: return "ok";
  case FY_ABI_ENOMEM: return "out of memory";
  case FY_ABI_ETYPE: return "malformed abi type";
  case FY_ABI_EDEPTH: return "abi type nested too deep";
  case FY_ABI_ESHORT: return "abi data too short";
  case FY_ABI_EOFFSET: return "abi offset or length out of range";
  case FY_ABI_EVALUE: return "abi value out of range for its type";
  case FY_ABI_ECOUNT: return "wrong number of abi items";
  case FY_ABI_ELIMIT: return "abi data or type too large";
  default: return "unknown abi error";
  }
}

/* ------------------------------------------------------------------ types */

void fy_abi_type_free(fy_abi_type_t *t) {
  if (!t) return;
  fy_abi_type_free(t->elem);
  if (t->fields) {
    for (uint32_t i = 0; i < t->size; i++) fy_abi_type_free(t->fields[i]);
    free(t->fields);
  }
  free(t);
}

static fy_abi_type_t *type_new(fy_abi_kind_t kind, uint32_t size) {
  fy_abi_type_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->kind = kind;
  t->size = size;
  t->head = 32;
  return t;
}

int fy_abi_tuple_new(fy_abi_type_t **fields, size_t n, fy_abi_type_t **out) {
  fy_abi_type_t *t = NULL;
  int rc = FY_ABI_ENOMEM;
  size_t head = 0;
  int dyn = 0;
  *out = NULL;
  if (n > FY_ABI_MAX_FIXED_LEN) { rc = FY_ABI_ELIMIT; goto fail; }
  for (size_t i = 0; i < n; i++) {
    dyn |= fields[i]->dynamic;
    head += fields[i]->head;
    if (head > FY_ABI_MAX_STATIC) { rc = FY_ABI_ELIMIT; goto fail; }
  }
  t = type_new(FY_ABI_TUPLE, (uint32_t)n);
  if (!t) goto fail;
  t->fields = calloc(n ? n : 1, sizeof *t->fields);
  if (!t->fields) { free(t); goto fail; }
  if (n) memcpy(t->fields, fields, n * sizeof *fields);
  t->dynamic = dyn;
  t->head = dyn ? 32 : head;
  *out = t;
  return FY_ABI_OK;
fail:
  for (size_t i = 0; i < n; i++) fy_abi_type_free(fields[i]);
  return rc;
}

typedef struct {
  const char *s, *end;
} lexer_t;

static void skip_ws(lexer_t *lx) {
  while (lx->s < lx->end && (*lx->s == ' ' || *lx->s == '\t' || *lx->s == '\n' || *lx->s == '\r'))
    lx->s++;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* decimal without leading zeros (except "0"), value <= max; -1 if none/invalid */
static long parse_num(lexer_t *lx, long max) {
  const char *p = lx->s;
  long v = 0;
  if (p >= lx->end || !is_digit(*p)) return -1;
  if (*p == '0' && p + 1 < lx->end && is_digit(p[1])) return -1;
  while (p < lx->end && is_digit(*p)) {
    v = v * 10 + (*p - '0');
    if (v > max) return -1;
    p++;
  }
  lx->s = p;
  return v;
}

static int parse_type(lexer_t *lx, int depth, fy_abi_type_t **out);

/* The items of a type list, each parsed at `depth`, separated by commas and ended by `closer`
 * (consumed), or by the end of the input when closer is 0. At least one item. */
static int parse_list(lexer_t *lx, int depth, char closer, fy_abi_type_t **out) {
  fy_abi_type_t **f = NULL, **nf;
  size_t n = 0, cap = 0;
  int rc;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4;
      nf = realloc(f, cap * sizeof *f);
      if (!nf) { rc = FY_ABI_ENOMEM; goto fail; }
      f = nf;
    }
    rc = parse_type(lx, depth, &f[n]);
    if (rc) goto fail;
    n++;
    if (n > FY_ABI_MAX_FIXED_LEN) { rc = FY_ABI_ELIMIT; goto fail; }
    skip_ws(lx);
    if (lx->s >= lx->end) {
      if (!closer) break;
      rc = FY_ABI_ETYPE;
      goto fail;
    }
    if (*lx->s == ',') { lx->s++; continue; }
    if (closer && *lx->s == closer) { lx->s++; break; }
    rc = FY_ABI_ETYPE;
    goto fail;
  }
  rc = fy_abi_tuple_new(f, n, out);
  free(f);
  return rc;
fail:
  for (size_t i = 0; i < n; i++) fy_abi_type_free(f[i]);
  free(f);
  return rc;
}

/* "(" [type {"," type}] ")" -> TUPLE. The empty tuple is only allowed as a function's argument
 * list (allow_empty): Solidity has no empty structs, and keeping every type >= 32 bytes in the
 * head bounds the number of items any data can hold. */
static int parse_tuple(lexer_t *lx, int depth, int allow_empty, fy_abi_type_t **out) {
  lx->s++; /* '(' */
  skip_ws(lx);
  if (lx->s < lx->end && *lx->s == ')') {
    if (!allow_empty) return FY_ABI_ETYPE;
    lx->s++;
    return fy_abi_tuple_new(NULL, 0, out);
  }
  return parse_list(lx, depth + 1, ')', out);
}

static int parse_elementary(lexer_t *lx, fy_abi_type_t **out) {
  const char *w = lx->s;
  size_t wl = 0;
  long m = -1;
  fy_abi_kind_t kind;
  while (w + wl < lx->end && is_alpha(w[wl])) wl++;
  lx->s = w + wl;
#define IS(word) (wl == sizeof(word) - 1 && !memcmp(w, word, wl))
  if (IS("uint") || IS("int")) {
    kind = IS("uint") ? FY_ABI_UINT : FY_ABI_INT;
    if (lx->s < lx->end && is_digit(*lx->s)) {
      m = parse_num(lx, 256);
      if (m <= 0 || m % 8) return FY_ABI_ETYPE;
    } else {
      m = 256;
    }
  } else if (IS("bytes")) {
    if (lx->s < lx->end && is_digit(*lx->s)) {
      m = parse_num(lx, 32);
      if (m <= 0) return FY_ABI_ETYPE;
      kind = FY_ABI_FBYTES;
    } else {
      kind = FY_ABI_BYTES;
      m = 0;
    }
  } else if (IS("address")) {
    kind = FY_ABI_ADDRESS, m = 160;
  } else if (IS("bool")) {
    kind = FY_ABI_BOOL, m = 1;
  } else if (IS("string")) {
    kind = FY_ABI_STRING, m = 0;
  } else {
    return FY_ABI_ETYPE;
  }
#undef IS
  if (lx->s < lx->end && (is_alpha(*lx->s) || is_digit(*lx->s) || *lx->s == '_')) return FY_ABI_ETYPE;
  fy_abi_type_t *t = type_new(kind, (uint32_t)m);
  if (!t) return FY_ABI_ENOMEM;
  t->dynamic = kind == FY_ABI_BYTES || kind == FY_ABI_STRING;
  *out = t;
  return FY_ABI_OK;
}

static int parse_type(lexer_t *lx, int depth, fy_abi_type_t **out) {
  fy_abi_type_t *t = NULL, *a;
  int rc;
  *out = NULL;
  if (depth > FY_ABI_MAX_DEPTH) return FY_ABI_EDEPTH;
  skip_ws(lx);
  if (lx->s >= lx->end) return FY_ABI_ETYPE;
  if (lx->end - lx->s >= 5 && !memcmp(lx->s, "tuple", 5)) {
    const char *save = lx->s;
    lx->s += 5;
    skip_ws(lx);
    if (lx->s >= lx->end || *lx->s != '(') lx->s = save;
  }
  rc = *lx->s == '(' ? parse_tuple(lx, depth, 0, &t) : parse_elementary(lx, &t);
  if (rc) return rc;
  for (;;) {
    skip_ws(lx);
    if (lx->s >= lx->end || *lx->s != '[') break;
    if (++depth > FY_ABI_MAX_DEPTH) { rc = FY_ABI_EDEPTH; goto fail; }
    lx->s++;
    skip_ws(lx);
    long k = -1;
    if (lx->s < lx->end && *lx->s != ']') {
      k = parse_num(lx, FY_ABI_MAX_FIXED_LEN);
      if (k <= 0) { rc = FY_ABI_ETYPE; goto fail; } /* T[0] does not exist in Solidity */
      skip_ws(lx);
    }
    if (lx->s >= lx->end || *lx->s != ']') { rc = FY_ABI_ETYPE; goto fail; }
    lx->s++;
    a = type_new(k < 0 ? FY_ABI_ARRAY : FY_ABI_FARRAY, k < 0 ? 0 : (uint32_t)k);
    if (!a) { rc = FY_ABI_ENOMEM; goto fail; }
    a->elem = t;
    t = a;
    if (k < 0) {
      t->dynamic = 1;
    } else {
      t->dynamic = t->elem->dynamic;
      if (!t->dynamic) {
        if ((uint64_t)k * t->elem->head > FY_ABI_MAX_STATIC) { rc = FY_ABI_ELIMIT; goto fail; }
        t->head = (size_t)k * t->elem->head;
      }
    }
  }
  *out = t;
  return FY_ABI_OK;
fail:
  fy_abi_type_free(t);
  return rc;
}

int fy_abi_type_parse(const char *s, size_t len, fy_abi_type_t **out) {
  lexer_t lx = {s, s + len};
  int rc = parse_type(&lx, 0, out);
  if (rc) return rc;
  skip_ws(&lx);
  if (lx.s != lx.end) {
    fy_abi_type_free(*out);
    *out = NULL;
    return FY_ABI_ETYPE;
  }
  return FY_ABI_OK;
}

int fy_abi_types_parse(const char *s, size_t len, fy_abi_type_t **out) {
  /* a tuple's items without the parentheses (no copy to wrap them in "(" ")") */
  lexer_t lx = {s, s + len};
  *out = NULL;
  skip_ws(&lx);
  if (lx.s == lx.end) return fy_abi_tuple_new(NULL, 0, out);
  return parse_list(&lx, 1, 0, out);
}

static int put_str(fy_buf_t *b, const char *s) {
  return fy_buf_put(b, s, strlen(s)) ? FY_ABI_ENOMEM : FY_ABI_OK;
}

static int put_num(fy_buf_t *b, unsigned long v) {
  char tmp[24];
  int i = sizeof tmp;
  tmp[--i] = '\0';
  do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  return put_str(b, tmp + i);
}

int fy_abi_type_canonical(const fy_abi_type_t *t, fy_buf_t *out) {
  int rc;
  switch (t->kind) {
  case FY_ABI_UINT: return (rc = put_str(out, "uint")) ? rc : put_num(out, t->size);
  case FY_ABI_INT: return (rc = put_str(out, "int")) ? rc : put_num(out, t->size);
  case FY_ABI_FBYTES: return (rc = put_str(out, "bytes")) ? rc : put_num(out, t->size);
  case FY_ABI_ADDRESS: return put_str(out, "address");
  case FY_ABI_BOOL: return put_str(out, "bool");
  case FY_ABI_BYTES: return put_str(out, "bytes");
  case FY_ABI_STRING: return put_str(out, "string");
  case FY_ABI_ARRAY:
    if ((rc = fy_abi_type_canonical(t->elem, out))) return rc;
    return put_str(out, "[]");
  case FY_ABI_FARRAY:
    if ((rc = fy_abi_type_canonical(t->elem, out))) return rc;
    if ((rc = put_str(out, "["))) return rc;
    if ((rc = put_num(out, t->size))) return rc;
    return put_str(out, "]");
  case FY_ABI_TUPLE:
    if ((rc = put_str(out, "("))) return rc;
    for (uint32_t i = 0; i < t->size; i++) {
      if (i && (rc = put_str(out, ","))) return rc;
      if ((rc = fy_abi_type_canonical(t->fields[i], out))) return rc;
    }
    return put_str(out, ")");
  }
  return FY_ABI_ETYPE;
}

static int is_ident(char c, int first) {
  return is_alpha(c) || c == '_' || c == '$' || (!first && is_digit(c));
}

int fy_abi_sig_parse(const char *s, size_t len, fy_abi_sig_t *sig) {
  lexer_t lx = {s, s + len};
  fy_buf_t canon = {0};
  int rc;
  memset(sig, 0, sizeof *sig);
  skip_ws(&lx);
  if (lx.s >= lx.end || !is_ident(*lx.s, 1)) return FY_ABI_ETYPE;
  sig->name = lx.s;
  while (lx.s < lx.end && is_ident(*lx.s, 0)) lx.s++;
  sig->name_len = (size_t)(lx.s - sig->name);
  skip_ws(&lx);
  if (lx.s >= lx.end || *lx.s != '(') return FY_ABI_ETYPE;
  rc = parse_tuple(&lx, 0, 1, &sig->args);
  if (rc) { sig->args = NULL; return rc; }
  skip_ws(&lx);
  if (lx.s != lx.end) { rc = FY_ABI_ETYPE; goto fail; }
  if (fy_buf_put(&canon, sig->name, sig->name_len)) { rc = FY_ABI_ENOMEM; goto fail; }
  if ((rc = fy_abi_type_canonical(sig->args, &canon))) goto fail;
  uint8_t h[32];
  fy_keccak256(canon.data, canon.len, h);
  memcpy(sig->selector, h, 4);
  fy_buf_free(&canon);
  return FY_ABI_OK;
fail:
  fy_buf_free(&canon);
  fy_abi_type_free(sig->args);
  sig->args = NULL;
  return rc;
}

void fy_abi_sig_free(fy_abi_sig_t *sig) {
  fy_abi_type_free(sig->args);
  sig->args = NULL;
}

/* ------------------------------------------------------------------ words */

static int all_bytes(const uint8_t *p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

int fy_abi_word_check(const fy_abi_type_t *t, const uint8_t w[32]) {
  size_t nb;
  switch (t->kind) {
  case FY_ABI_UINT:
    return all_bytes(w, 32 - t->size / 8, 0) ? FY_ABI_OK : FY_ABI_EVALUE;
  case FY_ABI_INT:
    nb = t->size / 8;
    if (nb == 32) return FY_ABI_OK;
    return all_bytes(w, 32 - nb, (w[32 - nb] & 0x80) ? 0xff : 0x00) ? FY_ABI_OK : FY_ABI_EVALUE;
  case FY_ABI_ADDRESS:
    return all_bytes(w, 12, 0) ? FY_ABI_OK : FY_ABI_EVALUE;
  case FY_ABI_BOOL:
    return all_bytes(w, 31, 0) && w[31] <= 1 ? FY_ABI_OK : FY_ABI_EVALUE;
  case FY_ABI_FBYTES:
    return all_bytes(w + t->size, 32 - t->size, 0) ? FY_ABI_OK : FY_ABI_EVALUE;
  default:
    return FY_ABI_EVALUE;
  }
}

void fy_abi_word_uint(const uint8_t *be, size_t n, uint8_t word[32]) {
  memset(word, 0, 32);
  memcpy(word + 32 - n, be, n);
}

void fy_abi_word_neg(const uint8_t *be, size_t n, uint8_t word[32]) {
  unsigned carry = 1;
  fy_abi_word_uint(be, n, word);
  for (int i = 31; i >= 0; i--) { /* ~x + 1 */
    unsigned v = (uint8_t)~word[i] + carry;
    word[i] = (uint8_t)v;
    carry = v >> 8;
  }
}

void fy_abi_word_i64(int64_t v, uint8_t word[32]) {
  uint64_t u = (uint64_t)v;
  memset(word, v < 0 ? 0xff : 0, 24);
  for (int i = 0; i < 8; i++) word[31 - i] = (uint8_t)(u >> (8 * i));
}

void fy_abi_word_address(const uint8_t addr[20], uint8_t word[32]) {
  memset(word, 0, 12);
  memcpy(word + 12, addr, 20);
}

void fy_abi_word_fbytes(const uint8_t *p, size_t n, uint8_t word[32]) {
  memset(word, 0, 32);
  memcpy(word, p, n);
}

static void word_size(size_t v, uint8_t w[32]) {
  memset(w, 0, 32);
  for (int i = 0; i < 8 && i < (int)sizeof(size_t); i++) w[31 - i] = (uint8_t)((uint64_t)v >> (8 * i));
}

/* ------------------------------------------------------------------ encoder */

static int enc_content(const fy_abi_type_t *t, const fy_abi_value_t *v, fy_buf_t *b);

/* write the static value v of static type t at b->data[at ...] (space already reserved) */
static int enc_static(const fy_abi_type_t *t, const fy_abi_value_t *v, fy_buf_t *b, size_t at) {
  int rc;
  switch (t->kind) {
  case FY_ABI_FARRAY:
    if (v->n != t->size) return FY_ABI_ECOUNT;
    for (size_t i = 0; i < v->n; i++)
      if ((rc = enc_static(t->elem, &v->items[i], b, at + i * t->elem->head))) return rc;
    return FY_ABI_OK;
  case FY_ABI_TUPLE:
    if (v->n != t->size) return FY_ABI_ECOUNT;
    for (size_t i = 0; i < v->n; i++) {
      if ((rc = enc_static(t->fields[i], &v->items[i], b, at))) return rc;
      at += t->fields[i]->head;
    }
    return FY_ABI_OK;
  default:
    if ((rc = fy_abi_word_check(t, v->word))) return rc;
    memcpy(b->data + at, v->word, 32);
    return FY_ABI_OK;
  }
}

/* heads then tails for n children; child i has type types[i] (or elem for all when types NULL) */
static int enc_block(fy_abi_type_t *const *types, const fy_abi_type_t *elem, const fy_abi_value_t *items,
                     size_t n, fy_buf_t *b) {
  size_t start = b->len, head = 0, at;
  int rc;
  for (size_t i = 0; i < n; i++) {
    head += types ? types[i]->head : elem->head;
    if (head > SIZE_MAX / 2) return FY_ABI_ELIMIT;
  }
  if (fy_buf_reserve(b, head)) return FY_ABI_ENOMEM;
  memset(b->data + start, 0, head);
  b->len += head;
  at = start;
  for (size_t i = 0; i < n; i++) {
    const fy_abi_type_t *t = types ? types[i] : elem;
    if (!t->dynamic && (rc = enc_static(t, &items[i], b, at))) return rc;
    at += t->head;
  }
  at = start;
  for (size_t i = 0; i < n; i++) {
    const fy_abi_type_t *t = types ? types[i] : elem;
    if (t->dynamic) {
      word_size(b->len - start, b->data + at);
      if ((rc = enc_content(t, &items[i], b))) return rc;
    }
    at += t->head;
  }
  return FY_ABI_OK;
}

static int enc_content(const fy_abi_type_t *t, const fy_abi_value_t *v, fy_buf_t *b) {
  uint8_t w[32];
  size_t at;
  switch (t->kind) {
  case FY_ABI_BYTES:
  case FY_ABI_STRING: {
    size_t pad = (32 - v->len % 32) % 32;
    word_size(v->len, w);
    if (v->len > SIZE_MAX - 64 || fy_buf_reserve(b, 32 + v->len + pad)) return FY_ABI_ENOMEM;
    fy_buf_put(b, w, 32);
    fy_buf_put(b, v->p, v->len);
    memset(b->data + b->len, 0, pad);
    b->len += pad;
    return FY_ABI_OK;
  }
  case FY_ABI_ARRAY:
    word_size(v->n, w);
    if (fy_buf_put(b, w, 32)) return FY_ABI_ENOMEM;
    return enc_block(NULL, t->elem, v->items, v->n, b);
  case FY_ABI_FARRAY:
    if (v->n != t->size) return FY_ABI_ECOUNT;
    if (t->dynamic) return enc_block(NULL, t->elem, v->items, v->n, b);
    break;
  case FY_ABI_TUPLE:
    if (v->n != t->size) return FY_ABI_ECOUNT;
    if (t->dynamic) return enc_block(t->fields, NULL, v->items, v->n, b);
    break;
  default:
    break;
  }
  at = b->len;
  if (!t->head) return FY_ABI_OK;             /* () has no head: b->data may still be NULL */
  if (fy_buf_reserve(b, t->head)) return FY_ABI_ENOMEM;
  memset(b->data + at, 0, t->head);
  b->len += t->head;
  return enc_static(t, v, b, at);
}

int fy_abi_encode(const fy_abi_type_t *t, const fy_abi_value_t *v, fy_buf_t *out) {
  return enc_content(t, v, out);
}

/* ------------------------------------------------------------------ decoder */

typedef struct {
  const uint8_t *d;
  size_t len;
  size_t budget; /* items left that we may allocate */
} dec_t;

/* read a size word: must fit in 63 bits and be <= limit */
static int read_size(const dec_t *dc, size_t pos, size_t limit, size_t *out) {
  const uint8_t *w;
  uint64_t v = 0;
  if (pos > dc->len || dc->len - pos < 32) return FY_ABI_ESHORT;
  w = dc->d + pos;
  if (!all_bytes(w, 24, 0)) return FY_ABI_EOFFSET;
  for (int i = 24; i < 32; i++) v = (v << 8) | w[i];
  if (v > limit) return FY_ABI_EOFFSET;
  *out = (size_t)v;
  return FY_ABI_OK;
}

static int dec_content(dec_t *dc, const fy_abi_type_t *t, size_t pos, fy_abi_value_t *v);

static int alloc_items(dec_t *dc, fy_abi_value_t *v, size_t n) {
  if (n > dc->budget) return FY_ABI_ELIMIT;
  dc->budget -= n;
  v->n = n;
  if (!n) return FY_ABI_OK;
  v->items = calloc(n, sizeof *v->items);
  return v->items ? FY_ABI_OK : FY_ABI_ENOMEM;
}

static void free_items(fy_abi_value_t *v) {
  for (size_t i = 0; v->items && i < v->n; i++) free_items(&v->items[i]);
  free(v->items);
  v->items = NULL;
  v->n = 0;
}

/* a block of n heads starting at start; dynamic children are at start + offset */
static int dec_block(dec_t *dc, fy_abi_type_t *const *types, const fy_abi_type_t *elem, size_t n,
                     size_t start, fy_abi_value_t *v) {
  size_t at = start;
  int rc = alloc_items(dc, v, n);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) {
    const fy_abi_type_t *t = types ? types[i] : elem;
    if (t->dynamic) {
      size_t off;
      if ((rc = read_size(dc, at, dc->len - start, &off))) return rc;
      if ((rc = dec_content(dc, t, start + off, &v->items[i]))) return rc;
    } else {
      if ((rc = dec_content(dc, t, at, &v->items[i]))) return rc;
    }
    at += t->head;
  }
  return FY_ABI_OK;
}

static int dec_content(dec_t *dc, const fy_abi_type_t *t, size_t pos, fy_abi_value_t *v) {
  size_t n;
  int rc;
  if (pos > dc->len) return FY_ABI_EOFFSET;
  switch (t->kind) {
  case FY_ABI_BYTES:
  case FY_ABI_STRING:
    if ((rc = read_size(dc, pos, dc->len, &n))) return rc;
    /* the content and its zero padding to a word boundary must be inside the data */
    if (n > dc->len - pos - 32 || (n + 31) / 32 * 32 > dc->len - pos - 32) return FY_ABI_EOFFSET;
    v->p = dc->d + pos + 32;
    v->len = n;
    return FY_ABI_OK;
  case FY_ABI_ARRAY:
    if ((rc = read_size(dc, pos, dc->len, &n))) return rc;
    pos += 32;
    /* every element needs its head inside the data */
    if (t->elem->head && n > (dc->len - pos) / t->elem->head) return FY_ABI_ESHORT;
    return dec_block(dc, NULL, t->elem, n, pos, v);
  case FY_ABI_FARRAY:
    if (!t->dynamic && dc->len - pos < t->head) return FY_ABI_ESHORT;
    return dec_block(dc, NULL, t->elem, t->size, pos, v);
  case FY_ABI_TUPLE:
    if (!t->dynamic && dc->len - pos < t->head) return FY_ABI_ESHORT;
    return dec_block(dc, t->fields, NULL, t->size, pos, v);
  default:
    if (dc->len - pos < 32) return FY_ABI_ESHORT;
    if ((rc = fy_abi_word_check(t, dc->d + pos))) return rc;
    memcpy(v->word, dc->d + pos, 32);
    return FY_ABI_OK;
  }
}

void fy_abi_value_free(fy_abi_value_t *v) {
  if (!v) return;
  free_items(v);
  free(v);
}

int fy_abi_decode(const fy_abi_type_t *t, const uint8_t *data, size_t len, fy_abi_value_t **out) {
  dec_t dc = {data, len, 0};
  fy_abi_value_t *v;
  int rc;
  /* every type takes >= 32 bytes (no "()" or T[0] below the top level), so canonical data
   * holds at most len/32 items; offsets that alias one another could claim far more: cap it */
  dc.budget = 4096 + len / 16;
  *out = NULL;
  v = calloc(1, sizeof *v);
  if (!v) return FY_ABI_ENOMEM;
  rc = dec_content(&dc, t, 0, v);
  if (rc) {
    free_items(v);
    free(v);
    return rc;
  }
  *out = v;
  return FY_ABI_OK;
}

/* ------------------------------------------------------------------ revert data */

static const uint8_t sel_error[4] = {0x08, 0xc3, 0x79, 0xa0};
static const uint8_t sel_panic[4] = {0x4e, 0x48, 0x7b, 0x71};

int fy_abi_decode_revert(const uint8_t *data, size_t len, fy_abi_revert_t *out) {
  memset(out, 0, sizeof *out);
  if (len == 0) {
    out->kind = FY_ABI_REVERT_EMPTY;
    return FY_ABI_OK;
  }
  if (len < 4) return FY_ABI_ESHORT;
  memcpy(out->selector, data, 4);
  out->data = data + 4;
  out->data_len = len - 4;
  if (!memcmp(data, sel_error, 4)) {
    dec_t dc = {data + 4, len - 4, 0};
    size_t off, n;
    int rc;
    if ((rc = read_size(&dc, 0, dc.len, &off))) return rc;
    if ((rc = read_size(&dc, off, dc.len, &n))) return rc;
    if (n > dc.len - off - 32) return FY_ABI_EOFFSET;
    out->kind = FY_ABI_REVERT_ERROR;
    out->reason = dc.d + off + 32;
    out->reason_len = n;
    return FY_ABI_OK;
  }
  if (!memcmp(data, sel_panic, 4)) {
    if (len - 4 < 32) return FY_ABI_ESHORT;
    out->kind = FY_ABI_REVERT_PANIC;
    memcpy(out->code, data + 4, 32);
    return FY_ABI_OK;
  }
  out->kind = FY_ABI_REVERT_CUSTOM;
  return FY_ABI_OK;
}

const char *fy_abi_panic_reason(const uint8_t code[32]) {
  if (!all_bytes(code, 31, 0)) return "unknown panic code";
  switch (code[31]) {
  case 0x00: return "generic compiler panic";
  case 0x01: return "assertion failed";
  case 0x11: return "arithmetic overflow or underflow";
  case 0x12: return "division or modulo by zero";
  case 0x21: return "invalid enum value";
  case 0x22: return "incorrectly encoded storage byte array";
  case 0x31: return "pop on empty array";
  case 0x32: return "array index out of bounds";
  case 0x41: return "out of memory (too much memory allocated)";
  case 0x51: return "call to a zero-initialized internal function";
  default: return "unknown panic code";
  }
}
