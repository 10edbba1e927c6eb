/*
** keystore.h -- Web3 Secret Storage v3 (the JSON keystores geth and `cast wallet import` write).
**
** Provides: fy_keystore_t (the crypto section's parameters, already decoded from hex by the
** caller) and fy_keystore_open: KDF (scrypt or pbkdf2-hmac-sha256), the MAC check
** keccak256(dk[16..32) ++ ciphertext), aes-128-ctr decryption, straight into a fy_key_t.
** The derived key and the decrypted secret live only in sodium_malloc'd scratch that is wiped
** before return; the password is the caller's (read-only here).
** Depends on: libsodium (scrypt, guarded memory), nettle (pbkdf2, aes, ctr), keccak.h, key.h.
** No Lua, no loop: safe on a libuv worker thread (keystore_lua.c runs it there).
*/
#ifndef FY_KEYSTORE_H
#define FY_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"

enum {
  FY_KS_OK = 0,
  FY_KS_ENOMEM = -1,   /* guarded memory, or scrypt could not get its memory */
  FY_KS_EPARAM = -2,   /* kdf parameters out of range (see fy_keystore_check) */
  FY_KS_EMAC = -3,     /* MAC mismatch: wrong password (or a damaged file) */
  FY_KS_EKEY = -4,     /* decrypts, but not to a valid secp256k1 key */
};

enum { FY_KS_SCRYPT = 1, FY_KS_PBKDF2 = 2 };

/* Upper bounds that keep a hostile file from asking for unbounded time or memory:
** scrypt 128*r*n bytes <= 1 GiB (geth's "standard" n=2^18, r=8 is 256 MiB), pbkdf2 c <= 10M. */
#define FY_KS_SCRYPT_MAX_MEM ((uint64_t)1 << 30)
#define FY_KS_PBKDF2_MAX_C 10000000u

typedef struct {
  int kdf;                       /* FY_KS_SCRYPT or FY_KS_PBKDF2 */
  uint64_t n;                    /* scrypt: a power of 2, > 1 */
  uint32_t r, p;                 /* scrypt */
  uint32_t c;                    /* pbkdf2 iterations */
  uint8_t salt[64];
  size_t salt_len;               /* 1..64 */
  uint8_t iv[16];
  uint8_t ciphertext[32];        /* the private key, encrypted: exactly 32 bytes */
  uint8_t mac[32];
} fy_keystore_t;

/* Stable text for a FY_KS_* code; never contains secret material. */
const char *fy_keystore_strerror(int rc);

/* FY_KS_OK, or FY_KS_EPARAM with *why set to what is wrong (static text). */
int fy_keystore_check(const fy_keystore_t *ks, const char **why);

/* Derive, check the MAC, decrypt into a new key. *out is NULL on error. Takes as long as the
** KDF asks (cast's scrypt n=8192: tens of ms; geth's standard: about a second). */
int fy_keystore_open(const fy_keystore_t *ks, const uint8_t *password, size_t password_len,
                     fy_key_t **out);

#endif
