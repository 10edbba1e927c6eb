/*
** key.h -- a private key that lives in guarded memory and never leaves it.
**
** Provides: fy_key_t, made from 32 bytes or from hex text (parsed straight into the guarded
** page), its address, signing of EVM transactions, EIP-191 messages and digests, and freeing (which
** wipes). The secret sits in its own sodium_malloc page (guard pages around it, locked out of
** swap and core dumps) that is read-only once filled (not PROT_NONE between signatures: two
** mprotect calls per signature cost a quarter of the signing speed). No function hands the
** bytes to a caller that could keep them except fy_key_export, which the bindings use for one
** call into a buffer they wipe.
** Depends on: libsodium (sodium_malloc, sodium_mprotect_*, sodium_memzero), secp.h, tx.h.
** No Lua. Any thread may sign with a key; only fy_key_free needs it to be the last user.
** Backs: ferry.Key (key_lua.c), which ferry.eth's signers hold instead of the key's bytes.
*/
#ifndef FY_KEY_H
#define FY_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"
#include "crypto/tx.h"

enum {
  FY_KEY_OK = 0,
  FY_KEY_ENOMEM = -1,   /* sodium_init or sodium_malloc failed */
  FY_KEY_EFORMAT = -2,  /* not 32 bytes, not (0x +) 64 hex digits */
  FY_KEY_EINVALID = -3, /* 0, or not below the curve order */
};

typedef struct fy_key fy_key_t;

/* Stable lowercase text for a FY_KEY_* code; never contains key material. */
const char *fy_key_strerror(int rc);

/* A key from 32 bytes (copied; the caller wipes its own copy). *out is NULL on error. */
int fy_key_from_bytes(const uint8_t secret[32], fy_key_t **out);

/* A key from text: 64 hex digits, with or without 0x / 0X. */
int fy_key_from_hex(const char *s, size_t n, fy_key_t **out);

/* The key's address (20 bytes), computed once. Always readable. */
const uint8_t *fy_key_address(const fy_key_t *k);

/* Copy the secret into out for one call; the caller wipes out when done. */
void fy_key_export(const fy_key_t *k, uint8_t out[32]);

/* Sign tx as fy_tx_sign does. Same return codes. */
int fy_key_sign_tx(const fy_key_t *k, fy_tx_t *tx, fy_buf_t *raw, uint8_t hash[32]);

/* EIP-191 personal_sign as fy_secp_personal_sign does (65 bytes, v = 27/28). FY_SECP_* codes. */
int fy_key_personal_sign(const fy_key_t *k, const uint8_t *msg, size_t len, uint8_t sig[65]);

/* Sign a 32-byte digest (EIP-712's, say): 65 bytes r||s||v with v = 27 + yParity, low-S,
** RFC 6979. FY_SECP_* codes. */
int fy_key_sign_hash(const fy_key_t *k, const uint8_t hash[32], uint8_t sig[65]);

/* Wipe and release. NULL is fine. */
void fy_key_free(fy_key_t *k);

#endif
