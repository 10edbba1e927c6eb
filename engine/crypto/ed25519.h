/*
** ed25519.h -- Solana's signatures: ed25519 keys in guarded memory, sign, verify, and the
** curve test that program-derived addresses need.
**
** Provides: fy_ed25519_key_t from a 32-byte seed or a 64-byte secret (seed || public key, the
** layout of Solana's keypair files), its public key, detached signatures, verification, and
** fy_ed25519_on_curve. Depends on: libsodium. No Lua; any thread may sign with a key.
** Backs: ferry.SolKey and sign/verify/on_curve in ferry.core.sol (sol_lua.c).
**
** The secret sits in a sodium_malloc page (guard pages, no swap, no core dumps) made
** read-only once filled, as key.h does for secp256k1 keys.
*/
#ifndef FY_ED25519_H
#define FY_ED25519_H

#include <stddef.h>
#include <stdint.h>

enum {
  FY_ED_OK = 0,
  FY_ED_ENOMEM = -1,    /* sodium_init or sodium_malloc failed */
  FY_ED_EFORMAT = -2,   /* neither a 32-byte seed nor a 64-byte secret */
  FY_ED_EMISMATCH = -3, /* a 64-byte secret whose second half is not its seed's public key */
};

typedef struct fy_ed25519_key fy_ed25519_key_t;

/* Stable text for a FY_ED_* code; never contains key material. */
const char *fy_ed25519_strerror(int rc);

/* A key from 32 bytes (a seed) or 64 bytes (seed || public key). *out is NULL on error. */
int fy_ed25519_key_new(const uint8_t *secret, size_t n, fy_ed25519_key_t **out);

/* The key's 32-byte public key (its Solana address). */
const uint8_t *fy_ed25519_key_public(const fy_ed25519_key_t *k);

/* A detached 64-byte signature of msg. */
void fy_ed25519_key_sign(const fy_ed25519_key_t *k, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* Wipe and release. NULL is fine. */
void fy_ed25519_key_free(fy_ed25519_key_t *k);

/* 1 when sig is pk's signature of msg. */
int fy_ed25519_verify(const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64]);

/* 1 when p decompresses to a point of the curve (any subgroup: the test Solana's
** find_program_address applies, curve25519-dalek's `decompress().is_some()`). */
int fy_ed25519_on_curve(const uint8_t p[32]);

#endif
