/*
** u256.h -- unsigned 256-bit integers (EVM word): checked arithmetic, parsing, formatting.
**
** Provides: fy_u256_t (four 64-bit limbs, w[0] least significant), add/sub/mul/pow with
** overflow detection, divmod, compare, big-endian byte conversion, decimal and 0x-hex parsing
** and printing, and fixed-point "units" parsing/formatting (ether <-> wei).
** Depends on: libc only (uses the GCC/Clang unsigned __int128). No Lua; pure functions,
** thread-safe. Backs: ferry.core.u256 (the "ferry.U256" userdata) through u256_lua.c.
**
** Conventions: result pointers may alias operands. Status-returning functions return 0 or a
** negative FY_U256_E* code (fy_u256_strerror); on error the result is as documented per
** function (never uninitialised).
*/
#ifndef FY_U256_H
#define FY_U256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t w[4];   /* w[0] least significant */
} fy_u256_t;

enum {
  FY_U256_OK = 0,
  FY_U256_EOVERFLOW = -1,   /* result >= 2^256 */
  FY_U256_EUNDERFLOW = -2,  /* result < 0 */
  FY_U256_EDIVZERO = -3,    /* division or modulo by zero */
  FY_U256_ESYNTAX = -4,     /* not a decimal / 0x-hex number (empty, sign, space, bad digit) */
  FY_U256_EDECIMALS = -5,   /* more fractional digits than the unit has */
  FY_U256_ERANGE = -6       /* an argument out of range (decimals > 77, output too small) */
};

#define FY_U256_DEC_SIZE 79   /* 78 digits of 2^256-1 + NUL */
#define FY_U256_HEX_SIZE 67   /* "0x" + 64 digits + NUL */
#define FY_U256_MAX_DECIMALS 77

void fy_u256_from_u64(fy_u256_t *r, uint64_t v);
int fy_u256_is_zero(const fy_u256_t *a);

/* -1, 0 or 1 as a <, ==, > b. */
int fy_u256_cmp(const fy_u256_t *a, const fy_u256_t *b);

/* r = a + b. Returns 0 or FY_U256_EOVERFLOW (r then holds the result mod 2^256). */
int fy_u256_add(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b);

/* r = a - b. Returns 0 or FY_U256_EUNDERFLOW (r then holds the result mod 2^256). */
int fy_u256_sub(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b);

/* r = a * b. Returns 0 or FY_U256_EOVERFLOW (r then holds the low 256 bits). */
int fy_u256_mul(fy_u256_t *r, const fy_u256_t *a, const fy_u256_t *b);

/* q = a / b and m = a % b (either may be NULL). Returns 0 or FY_U256_EDIVZERO (q, m untouched). */
int fy_u256_divmod(fy_u256_t *q, fy_u256_t *m, const fy_u256_t *a, const fy_u256_t *b);

/* r = base ^ exp (0^0 = 1). Returns 0 or FY_U256_EOVERFLOW (r then unspecified but set). */
int fy_u256_pow(fy_u256_t *r, const fy_u256_t *base, const fy_u256_t *exp);

/* Big-endian 32 bytes <-> value. Cannot fail. */
void fy_u256_from_be(fy_u256_t *r, const uint8_t be[32]);
void fy_u256_to_be(const fy_u256_t *a, uint8_t be[32]);

/* Big-endian of any length n (leading zero bytes allowed; n == 0 is 0). Returns 0 or
 * FY_U256_EOVERFLOW when the value needs more than 32 bytes (r = 0 then). */
int fy_u256_from_be_n(fy_u256_t *r, const uint8_t *be, size_t n);

/* Parse s[0..n): decimal digits, or "0x"/"0X" followed by hex digits (either case). Leading
 * zeros are allowed; signs, spaces, underscores, "0x" alone and the empty string are not.
 * Returns 0, FY_U256_ESYNTAX or FY_U256_EOVERFLOW (r = 0 on error). */
int fy_u256_parse(fy_u256_t *r, const char *s, size_t n);

/* Decimal digits of a into out[FY_U256_DEC_SIZE], NUL-terminated; returns the length. */
size_t fy_u256_to_dec(const fy_u256_t *a, char out[FY_U256_DEC_SIZE]);

/* Minimal lowercase "0x..." ("0x0" for zero) into out[FY_U256_HEX_SIZE]; returns the length. */
size_t fy_u256_to_hex(const fy_u256_t *a, char out[FY_U256_HEX_SIZE]);

/* Parse a decimal amount with up to `decimals` fractional digits, scaled by 10^decimals
 * ("1.5", 18 -> 1500000000000000000). Form: digits [ "." digits ]. Trailing zeros past the
 * unit are accepted ("1.50" with 1 decimal); any other extra digit gives FY_U256_EDECIMALS.
 * Returns 0, FY_U256_ESYNTAX, FY_U256_EDECIMALS, FY_U256_EOVERFLOW or FY_U256_ERANGE
 * (decimals > 77); r = 0 on error. */
int fy_u256_parse_units(fy_u256_t *r, const char *s, size_t n, unsigned decimals);

/* Format a / 10^decimals as decimal with the fraction's trailing zeros removed and no "."
 * when it is whole ("1.5", "1", "0.000001"). out needs FY_U256_DEC_SIZE + 2 bytes; returns
 * the length, or 0 with out = "" when decimals > 77. */
size_t fy_u256_format_units(const fy_u256_t *a, unsigned decimals, char out[FY_U256_DEC_SIZE + 2]);

/* A static lowercase message for rc. */
const char *fy_u256_strerror(int rc);

#endif
