/*
** abi.h -- Solidity ABI: type strings, selectors, encoder, strict decoder, revert data.
**
** Provides: a parser for type strings ("uint256", "(uint256,address[])[]") and function
** signatures ("transfer(address,uint256)" -> selector + argument tuple), the canonical type
** text, a one-pass encoder (heads and tails, nested dynamic tuples/arrays) and a strict,
** bounds-checked decoder that returns error codes on any malformed input (offsets and lengths
** outside the data, non-canonical padding, out-of-range values, too many items), plus revert
** data decoding: Error(string), Panic(uint256) with the meaning of the code, or custom errors.
** Depends on: keccak.h, buf.h (libc). No Lua; reentrant.
** Backs: ferry.core.abi (abi_lua.c): encode(types, ...), encode_call(sig, ...), decode(types|sig,
** data) -> values... | nil, err, selector(sig), decode_revert(data). In Lua, uint<M> decodes to
** a U256, int<M> to an integer (a decimal string when it does not fit in 64 bits), address to
** EIP-55 text, bytes<M>/bytes/string to raw strings, arrays and tuples to sequences.
**
** Values are trees of fy_abi_value_t. Static scalars (uint<M>, int<M>, address, bool,
** bytes<M>) carry their 32-byte ABI word: the encoder and the decoder both check that the
** word is canonical for the type (zero or sign-extended high bytes, bool 0/1, bytes<M>
** right-padded with zeros, address left-padded). fy_abi_word_* build such words.
*/
#ifndef FY_ABI_H
#define FY_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"

enum {
  FY_ABI_OK = 0,
  FY_ABI_ENOMEM = -1,  /* allocation failed */
  FY_ABI_ETYPE = -2,   /* malformed type or signature text */
  FY_ABI_EDEPTH = -3,  /* type nested deeper than FY_ABI_MAX_DEPTH */
  FY_ABI_ESHORT = -4,  /* data ends before a head, length word or content */
  FY_ABI_EOFFSET = -5, /* an offset or length word points outside the data */
  FY_ABI_EVALUE = -6,  /* a word that is not canonical for its type (range, padding, bool) */
  FY_ABI_ECOUNT = -7,  /* value has the wrong number of items for a T[k] or tuple */
  FY_ABI_ELIMIT = -8,  /* too many items (> 4096 + len/16 per decode), or a static type larger
                        * than FY_ABI_MAX_STATIC */
};

#define FY_ABI_MAX_DEPTH 32             /* nesting of arrays/tuples in one type */
#define FY_ABI_MAX_STATIC (1u << 24)    /* bytes a static type may occupy in a head */
#define FY_ABI_MAX_FIXED_LEN (1u << 20) /* k in T[k] */

typedef enum {
  FY_ABI_UINT,    /* size = bits, 8..256 step 8 */
  FY_ABI_INT,     /* size = bits, two's complement */
  FY_ABI_ADDRESS,
  FY_ABI_BOOL,
  FY_ABI_FBYTES,  /* bytes<M>, size = M, 1..32 */
  FY_ABI_BYTES,
  FY_ABI_STRING,
  FY_ABI_ARRAY,   /* T[] */
  FY_ABI_FARRAY,  /* T[k], size = k */
  FY_ABI_TUPLE,   /* size = number of fields */
} fy_abi_kind_t;

typedef struct fy_abi_type {
  fy_abi_kind_t kind;
  uint32_t size;                /* see fy_abi_kind_t */
  int dynamic;                  /* has a tail (bytes, string, T[], or contains one) */
  size_t head;                  /* bytes in the parent's head: 32 if dynamic, else static size */
  struct fy_abi_type *elem;     /* ARRAY / FARRAY */
  struct fy_abi_type **fields;  /* TUPLE: size entries */
} fy_abi_type_t;

typedef struct fy_abi_value {
  uint8_t word[32];             /* static scalars: the ABI word */
  const uint8_t *p;             /* BYTES / STRING content (borrowed) */
  size_t len;                   /* BYTES / STRING length */
  struct fy_abi_value *items;   /* ARRAY / FARRAY / TUPLE items */
  size_t n;                     /* number of items */
} fy_abi_value_t;

typedef struct {
  const char *name;             /* borrowed from the parsed text */
  size_t name_len;
  fy_abi_type_t *args;          /* a TUPLE; owned, freed by fy_abi_sig_free */
  uint8_t selector[4];
} fy_abi_sig_t;

/* Stable lowercase text for a FY_ABI_* code. Never NULL. */
const char *fy_abi_strerror(int rc);

/* Parse one type. Whitespace around tokens is ignored; "uint"/"int" mean 256 bits; an optional
** "tuple" keyword may precede "(...)". The empty tuple "()" and T[0] are rejected (only a
** signature's argument list may be empty), so every type occupies >= 32 bytes. On success *out is a new tree owned by the caller
** (fy_abi_type_free). Returns FY_ABI_OK, ETYPE, EDEPTH, ELIMIT or ENOMEM (*out = NULL). */
int fy_abi_type_parse(const char *s, size_t len, fy_abi_type_t **out);

/* Parse a list of types "a,b,c" (possibly empty) as a TUPLE. Same contract. */
int fy_abi_types_parse(const char *s, size_t len, fy_abi_type_t **out);

/* Build a TUPLE from n parsed types; takes ownership of each fields[i] (even on error) but
** not of the fields array. Returns FY_ABI_OK, ELIMIT or ENOMEM. */
int fy_abi_tuple_new(fy_abi_type_t **fields, size_t n, fy_abi_type_t **out);

/* Free a type tree (NULL is fine). */
void fy_abi_type_free(fy_abi_type_t *t);

/* Append the canonical text of t ("uint256", "(address,bytes32)[2]") to out.
** Returns FY_ABI_OK or ENOMEM. */
int fy_abi_type_canonical(const fy_abi_type_t *t, fy_buf_t *out);

/* Parse "name(type,...)": name is [A-Za-z_$][A-Za-z0-9_$]*, the selector is keccak256 of the
** canonical text. sig->name borrows s. Returns FY_ABI_OK, ETYPE, EDEPTH, ELIMIT, ENOMEM;
** on error sig->args is NULL. Free with fy_abi_sig_free. */
int fy_abi_sig_parse(const char *s, size_t len, fy_abi_sig_t *sig);
void fy_abi_sig_free(fy_abi_sig_t *sig);

/* Append the encoding of v (typed t) to out. A TUPLE encodes as function arguments do;
** any other type encodes as its bare content (a dynamic type without a leading offset).
** Returns FY_ABI_OK, EVALUE (non-canonical word), ECOUNT (T[k]/tuple item count), ENOMEM.
** On error out may hold a partial encoding: discard it. t and v are borrowed. */
int fy_abi_encode(const fy_abi_type_t *t, const fy_abi_value_t *v, fy_buf_t *out);

/* Decode data as the encoding of t (the counterpart of fy_abi_encode; bytes after the encoding
** are ignored, as Solidity does; bytes/string content must be followed by its padding to a
** word boundary, as ethers requires; padding bytes are not checked). On success *out is a new tree owned by the caller
** (fy_abi_value_free) whose BYTES/STRING pointers borrow data. Returns FY_ABI_OK, ESHORT,
** EOFFSET, EVALUE, ELIMIT (more items than the data can hold) or ENOMEM; *out = NULL then. */
int fy_abi_decode(const fy_abi_type_t *t, const uint8_t *data, size_t len, fy_abi_value_t **out);

/* Free a tree returned by fy_abi_decode (NULL is fine). */
void fy_abi_value_free(fy_abi_value_t *v);

/* Is word canonical for the static scalar type t? FY_ABI_OK or FY_ABI_EVALUE. */
int fy_abi_word_check(const fy_abi_type_t *t, const uint8_t word[32]);

/* Word builders. be/n: big-endian unsigned magnitude of n bytes (n <= 32). */
void fy_abi_word_uint(const uint8_t *be, size_t n, uint8_t word[32]);
/* Two's complement of -magnitude (magnitude as be/n); n <= 32. */
void fy_abi_word_neg(const uint8_t *be, size_t n, uint8_t word[32]);
void fy_abi_word_i64(int64_t v, uint8_t word[32]);
void fy_abi_word_address(const uint8_t addr[20], uint8_t word[32]);
void fy_abi_word_fbytes(const uint8_t *p, size_t n, uint8_t word[32]); /* n <= 32, right pad */

/* ---- revert data */
typedef enum {
  FY_ABI_REVERT_EMPTY,  /* no data (revert() or require(false) without a reason) */
  FY_ABI_REVERT_ERROR,  /* Error(string): reason/reason_len */
  FY_ABI_REVERT_PANIC,  /* Panic(uint256): code, fy_abi_panic_reason(code) */
  FY_ABI_REVERT_CUSTOM, /* anything else with >= 4 bytes: selector + data/data_len (args) */
} fy_abi_revert_kind_t;

typedef struct {
  fy_abi_revert_kind_t kind;
  const uint8_t *reason;        /* borrowed from the input */
  size_t reason_len;
  uint8_t code[32];             /* Panic code word */
  uint8_t selector[4];
  const uint8_t *data;          /* CUSTOM: bytes after the selector (borrowed) */
  size_t data_len;
} fy_abi_revert_t;

/* Classify revert data. Returns FY_ABI_OK, or ESHORT (1..3 bytes) / a decode error for a
** malformed Error or Panic payload (the reason string only has to fit, its padding may be
** missing). Nothing is allocated. */
int fy_abi_decode_revert(const uint8_t *data, size_t len, fy_abi_revert_t *out);

/* Meaning of a Panic code ("assertion failed", "arithmetic overflow or underflow", ...), or
** "unknown panic code". Static string. */
const char *fy_abi_panic_reason(const uint8_t code[32]);

#endif
