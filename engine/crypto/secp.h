/*
** secp.h -- secp256k1 keys, Ethereum addresses, recoverable signatures, EIP-55, EIP-191.
**
** Provides: private key validation, key -> uncompressed public key -> address, EIP-55 checksum
** encode/parse, recoverable ECDSA over a 32-byte hash (RFC6979 nonces, low-S; byte-identical to
** cast/ethers), public key / address recovery, and EIP-191 personal_sign.
** Depends on: libsecp256k1 (>= 0.2, recovery module), nettle (HMAC-SHA256 for RFC6979),
** keccak.h, getrandom(2).
** Threads: one process-wide context, created once (pthread_once) and randomized with getrandom
** bytes; libsecp256k1 signing/recovery with a shared const context is thread-safe.
** Backs: ferry.core.secp256k1 (secp_lua.c): address, pubkey, sign, recover, personal_hash,
** personal_sign, personal_recover, checksum, is_address, is_valid_key.
**
** The file is named secp.h, not secp256k1.h, so that it never shadows the system header.
** Key material: functions never copy private keys beyond the call; any local copy is wiped
** (explicit_bzero) before returning. Error codes and strings never contain key bytes.
*/
#ifndef FY_SECP_H
#define FY_SECP_H

#include <stddef.h>
#include <stdint.h>

enum {
  FY_SECP_OK = 0,
  FY_SECP_EINIT = -1,     /* context creation or randomization failed */
  FY_SECP_EKEY = -2,      /* private key is 0 or >= n */
  FY_SECP_ESIG = -3,      /* r/s out of range, bad recovery id, or recovery failed */
  FY_SECP_EHEX = -4,      /* address text: wrong length, missing 0x, non-hex digit */
  FY_SECP_ECHECKSUM = -5, /* mixed-case address whose EIP-55 checksum is wrong */
};

/* Stable lowercase text for a FY_SECP_* code ("invalid private key", ...). Never NULL. */
const char *fy_secp_strerror(int rc);

/* Create the shared context if needed. Idempotent; every other function calls it.
** Returns FY_SECP_OK or FY_SECP_EINIT. */
int fy_secp_init(void);

/* 0 < key < n? Returns FY_SECP_OK or FY_SECP_EKEY. `key` is read only. */
int fy_secp_key_check(const uint8_t key[32]);

/* Uncompressed public key without the 0x04 prefix (X||Y, 64 bytes).
** Returns FY_SECP_OK, FY_SECP_EKEY or FY_SECP_EINIT; `pub` is untouched on error. */
int fy_secp_pubkey(const uint8_t key[32], uint8_t pub[64]);

/* address = keccak256(pub)[12..32]. Cannot fail. */
void fy_secp_pubkey_address(const uint8_t pub[64], uint8_t addr[20]);

/* address of a private key. Same errors as fy_secp_pubkey. */
int fy_secp_address(const uint8_t key[32], uint8_t addr[20]);

/* EIP-55 checksummed text "0x" + 40 hex digits, NUL-terminated (43 bytes). Cannot fail. */
void fy_secp_checksum(const uint8_t addr[20], char out[43]);

/* Parse an address text of exactly 42 chars "0x" + 40 hex digits (the one address parser of
** every binding; "0X" is refused like any other prefix). All-lower and
** all-upper digit strings are accepted as-is; mixed case must match EIP-55.
** Returns FY_SECP_OK, FY_SECP_EHEX or FY_SECP_ECHECKSUM. `addr` is untouched on error. */
int fy_secp_address_parse(const char *s, size_t len, uint8_t addr[20]);

/* The secp256k1 group order n, big-endian (the one definition; secp.c). */
extern const uint8_t fy_secp_order_n[32];

/* Recoverable signature of a 32-byte hash: r, s (big-endian, low-S) and yParity (0/1).
** Deterministic (RFC6979). Returns FY_SECP_OK, FY_SECP_EKEY or FY_SECP_EINIT; outputs are
** untouched on error. */
int fy_secp_sign(const uint8_t hash[32], const uint8_t key[32], uint8_t r[32], uint8_t s[32],
                 int *y_parity);

/* The RFC6979 nonce function fy_secp_sign uses (a secp256k1_nonce_function): equal to
** secp256k1_nonce_function_rfc6979, on nettle's faster SHA-256. Exposed for the tests. */
int fy_secp_nonce_rfc6979(unsigned char *nonce32, const unsigned char *msg32,
                          const unsigned char *key32, const unsigned char *algo16, void *data,
                          unsigned int counter);

/* 1 if s <= n/2 (EIP-2 "low S"), else 0. */
int fy_secp_is_low_s(const uint8_t s[32]);

/* Recover the 64-byte public key from hash and (r, s, yParity). High-S is accepted (like the
** ecrecover precompile); callers that need EIP-2 check fy_secp_is_low_s themselves.
** Returns FY_SECP_OK, FY_SECP_ESIG (r or s is 0 or >= n, y_parity not 0/1, no point), EINIT. */
int fy_secp_recover(const uint8_t hash[32], const uint8_t r[32], const uint8_t s[32],
                    int y_parity, uint8_t pub[64]);

/* fy_secp_recover followed by fy_secp_pubkey_address. Same errors. */
int fy_secp_recover_address(const uint8_t hash[32], const uint8_t r[32], const uint8_t s[32],
                            int y_parity, uint8_t addr[20]);

/* EIP-191 hash: keccak256("\x19Ethereum Signed Message:\n" + decimal(len) + msg). Cannot fail. */
void fy_secp_personal_hash(const uint8_t *msg, size_t len, uint8_t hash[32]);

/* EIP-191 personal_sign: 65 bytes r||s||v with v = 27 + yParity (what `cast wallet sign`
** prints). Same errors as fy_secp_sign. */
int fy_secp_personal_sign(const uint8_t *msg, size_t len, const uint8_t key[32], uint8_t sig[65]);

#endif
