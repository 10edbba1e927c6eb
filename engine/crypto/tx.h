/*
** tx.h -- EVM transactions: legacy (EIP-155) and EIP-1559 (type 2) encode, sign, decode.
**
** Provides: the unsigned payload and its signing hash, signing into raw bytes + tx hash
** (byte-identical to `cast mktx`), a strict decoder of raw signed transactions back to fields,
** and sender recovery.
** Depends on: rlp.h, buf.h, u256.h, keccak.h, secp.h. No Lua; reentrant.
** Backs: ferry.core.tx (tx_lua.c): encode_unsigned, signing_hash, sign, decode.
**
** Field ranges: chain id, nonce and gas are uint64 (as in every client); fees and value are
** full 256-bit. Legacy transactions with has_chain_id = 0 are pre-EIP-155 (v = 27/28); with
** has_chain_id = 1 they sign [nonce, gasPrice, gas, to, value, data, chainId, 0, 0] and carry
** v = chainId*2 + 35 + yParity (up to 2^65+36, so v is not limited to 64 bits).
*/
#ifndef FY_TX_H
#define FY_TX_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"
#include "crypto/u256.h"

enum {
  FY_TX_OK = 0,
  FY_TX_ENOMEM = -1,
  FY_TX_ETYPE = -2,    /* unsupported type byte (not legacy, not 0x02) */
  FY_TX_ERLP = -3,     /* malformed or non-canonical RLP, trailing bytes */
  FY_TX_EFIELDS = -4,  /* wrong number of fields, or a list where a value belongs */
  FY_TX_EINT = -5,     /* integer with leading zeros, or too large for its field */
  FY_TX_ETO = -6,      /* "to" neither empty nor 20 bytes; access-list address not 20 bytes */
  FY_TX_EACCESS = -7,  /* malformed access list (entry shape, storage key not 32 bytes) */
  FY_TX_ESIG = -8,     /* bad v/yParity, r or s zero or >= n, high s (EIP-2), no recovery */
  FY_TX_EKEY = -9,     /* invalid private key (sign) */
  FY_TX_EINVAL = -10,  /* caller error: unknown type, access list on legacy, NULL data */
};

#define FY_TX_LEGACY 0
#define FY_TX_EIP1559 2

typedef struct {
  uint8_t address[20];
  const uint8_t (*keys)[32];  /* storage keys (borrowed) */
  size_t n_keys;
} fy_tx_access_t;

typedef struct {
  int type;                          /* FY_TX_LEGACY or FY_TX_EIP1559 */
  int has_chain_id;                  /* legacy only: 0 = pre-EIP-155; type 2 always has one */
  uint64_t chain_id, nonce, gas;
  fy_u256_t gas_price;               /* legacy */
  fy_u256_t max_priority_fee, max_fee; /* type 2 */
  int has_to;                        /* 0 = contract creation */
  uint8_t to[20];
  fy_u256_t value;
  const uint8_t *data;               /* borrowed; may be NULL when data_len is 0 */
  size_t data_len;
  const fy_tx_access_t *access_list; /* type 2 only; borrowed */
  size_t access_len;
  /* signature (set by fy_tx_sign and fy_tx_decode) */
  int y_parity;
  uint8_t r[32], s[32];
  void *owned_;                      /* fy_tx_decode's allocation; release with fy_tx_free */
} fy_tx_t;

/* Stable lowercase text for a FY_TX_* code. Never NULL. */
const char *fy_tx_strerror(int rc);

/* Append the unsigned payload (type byte + RLP for type 2; the EIP-155 9-field RLP or the
** pre-155 6-field list for legacy) to out. Returns FY_TX_OK, EINVAL, ENOMEM; on error out may
** hold partial bytes (discard). tx is borrowed. */
int fy_tx_encode_unsigned(const fy_tx_t *tx, fy_buf_t *out);

/* keccak256 of the unsigned payload. Returns FY_TX_OK, EINVAL, ENOMEM. */
int fy_tx_signing_hash(const fy_tx_t *tx, uint8_t hash[32]);

/* Append the signed raw transaction using tx->y_parity/r/s. Same errors. */
int fy_tx_encode_signed(const fy_tx_t *tx, fy_buf_t *out);

/* Sign with key (32 bytes, read only, never copied): fills tx->y_parity/r/s, appends the raw
** transaction to raw and writes keccak256(raw) to hash (may be NULL).
** Returns FY_TX_OK, EKEY, EINVAL, ENOMEM. */
int fy_tx_sign(fy_tx_t *tx, const uint8_t key[32], fy_buf_t *raw, uint8_t hash[32]);

/* Strict decode of a signed raw transaction. Canonical RLP only (no leading zeros, minimal
** lengths, no trailing bytes), exact field counts, 20-byte addresses, 32-byte storage keys,
** yParity 0/1, 0 < r, s < n and s <= n/2. Pointers in *tx borrow raw; the access list is
** allocated: call fy_tx_free(tx) after a successful decode. Returns FY_TX_OK or a negative
** code (tx is then zeroed and owns nothing). */
int fy_tx_decode(const uint8_t *raw, size_t len, fy_tx_t *tx);

/* Release what fy_tx_decode allocated. Safe on a zeroed tx. */
void fy_tx_free(fy_tx_t *tx);

/* Recover the sender address of a signed tx (decoded or signed). Returns FY_TX_OK, ESIG,
** EINVAL, ENOMEM. */
int fy_tx_sender(const fy_tx_t *tx, uint8_t addr[20]);

#endif
