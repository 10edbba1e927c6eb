/*
** base58.h -- Bitcoin-alphabet base58, as Solana writes keys, signatures and blockhashes.
**
** Provides: encode, and a strict decode (only alphabet characters, no whitespace, the decoded
** length checked by the caller's expectation). Depends on: libc only. No Lua; reentrant.
** Backs: ferry.core.sol (sol_lua.c): b58encode, b58decode; fuzzed by tests/fuzz/sol_b58_fuzz.c.
**
** Leading '1's stand for leading zero bytes, as everywhere base58 is used. Inputs are small
** (keys, signatures, at most a few hundred bytes), so the quadratic textbook algorithm is fine.
*/
#ifndef FY_BASE58_H
#define FY_BASE58_H

#include <stddef.h>
#include <stdint.h>

#define FY_B58_MAX_IN 1024 /* longest byte string either direction accepts */

/* Room enough for encoding n bytes, NUL included. */
#define FY_B58_ENCODED_MAX(n) ((n) * 138 / 100 + 2)

/* Encode in[0..n) into out (NUL-terminated). Returns the length written, or 0 when n is over
** FY_B58_MAX_IN or cap is too small (the empty input encodes as "" and also returns 0). */
size_t fy_b58_encode(const uint8_t *in, size_t n, char *out, size_t cap);

enum {
  FY_B58_OK = 0,
  FY_B58_ECHAR = -1,   /* a character outside the alphabet (0, O, I, l, space, ...) */
  FY_B58_ELONG = -2,   /* the decoded value does not fit in cap bytes / input too long */
  FY_B58_EEMPTY = -3,  /* empty text */
};

/* Decode s[0..n) into out[0..cap). On success *outlen is the byte length. On FY_B58_ECHAR,
** *bad (when not NULL) is the 0-based position of the first bad character. */
int fy_b58_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen, size_t *bad);

#endif
