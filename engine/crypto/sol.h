/*
** sol.h -- Solana transactions: compact-u16, the message compiler (legacy and v0 with address
** lookup tables), the wire format with its 1,232-byte limit, a strict decoder, and
** program-derived addresses.
**
** Provides: fy_sol_shortvec_*; fy_sol_compile (instructions -> message bytes, accounts in the
** order `@solana/web3.js` 1.98's TransactionMessage.compileToLegacyMessage/compileToV0Message
** give); fy_sol_tx_assemble (signatures + message -> wire bytes); fy_sol_message_decode and
** fy_sol_tx_decode (wire -> fields, refusing what a validator's sanitize refuses);
** fy_sol_create_pda / fy_sol_find_pda / fy_sol_ata.
** Depends on: buf.h, ed25519.h (curve test), libsodium (SHA-256). No Lua; reentrant.
** Backs: ferry.core.sol (sol_lua.c); tested by tests/unit/sol_tx_spec.lua against web3.js
** vectors, fuzzed by tests/fuzz/sol_tx_fuzz.c.
**
** Keys are 32 raw bytes everywhere (base58 is the binding's business). Inputs are borrowed;
** decoded fields point into the caller's bytes, which must outlive them.
*/
#ifndef FY_SOL_H
#define FY_SOL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/buf.h"

#define FY_SOL_PACKET 1232 /* a transaction must fit one IPv6 UDP packet (PACKET_DATA_SIZE) */
#define FY_SOL_MAX_SEEDS 16
#define FY_SOL_MAX_SEED_LEN 32

enum {
  FY_SOL_OK = 0,
  FY_SOL_ENOMEM = -1,
  FY_SOL_ETRUNC = -2,     /* the bytes end inside a field */
  FY_SOL_ESHORTVEC = -3,  /* a compact-u16 that is over 3 bytes, over 0xffff or not minimal */
  FY_SOL_EVERSION = -4,   /* a versioned message other than v0 */
  FY_SOL_EHEADER = -5,    /* header counts that do not fit the keys or the signatures */
  FY_SOL_EINDEX = -6,     /* an instruction's program or account index out of range */
  FY_SOL_ETRAILING = -7,  /* bytes after the end of the transaction */
  FY_SOL_ETOOMANY = -8,   /* over 256 account keys, or a lookup index over 255 */
  FY_SOL_ETOOBIG = -9,    /* over FY_SOL_PACKET bytes on the wire */
  FY_SOL_EINVAL = -10,    /* caller error: no payer, lookup tables on a legacy message, ... */
  FY_SOL_ESEEDS = -11,    /* over 16 seeds, or a seed over 32 bytes */
  FY_SOL_EONCURVE = -12,  /* the seeds hash to a point on the curve (no PDA there) */
  FY_SOL_ENOBUMP = -13,   /* no bump in 255..0 gives an off-curve address */
  FY_SOL_ELOOKUP = -14,   /* an address-table lookup with no index at all */
};

/* Stable lowercase text for a FY_SOL_* code. */
const char *fy_sol_strerror(int rc);

/* compact-u16: 7 bits a byte, least significant first, at most 3 bytes. */
int fy_sol_shortvec_put(fy_buf_t *b, unsigned v);
/* Read one at p[*pos..n), advancing *pos. FY_SOL_ETRUNC or FY_SOL_ESHORTVEC on bad input. */
int fy_sol_shortvec_get(const uint8_t *p, size_t n, size_t *pos, unsigned *v);

typedef struct {
  const uint8_t *pubkey; /* 32 bytes */
  int signer, writable;
} fy_sol_meta_t;

typedef struct {
  const uint8_t *program; /* 32 bytes */
  const fy_sol_meta_t *accounts;
  size_t n_accounts;
  const uint8_t *data;
  size_t data_len;
} fy_sol_ix_t;

typedef struct {
  const uint8_t *key;              /* the table account */
  const uint8_t (*addresses)[32];  /* its addresses, in table order */
  size_t n_addresses;
} fy_sol_table_t;

#define FY_SOL_LEGACY (-1)

typedef struct {
  int version;                /* FY_SOL_LEGACY or 0 */
  const uint8_t *payer;       /* 32 bytes, the fee payer (always the first signer) */
  const uint8_t *blockhash;   /* 32 bytes: a recent blockhash or a durable nonce value */
  const fy_sol_ix_t *ixs;
  size_t n_ixs;
  const fy_sol_table_t *tables; /* v0 only */
  size_t n_tables;
} fy_sol_msg_spec_t;

/* Compile spec into message bytes appended to out. The signer keys are the first
** out_n_signers static keys of the message (*out_n_signers may be NULL). */
int fy_sol_compile(const fy_sol_msg_spec_t *spec, fy_buf_t *out, unsigned *out_n_signers);

typedef struct {
  unsigned program_index;
  const uint8_t *accounts; /* n_accounts one-byte indices */
  size_t n_accounts;
  const uint8_t *data;
  size_t data_len;
} fy_sol_cix_t;

typedef struct {
  const uint8_t *key;
  const uint8_t *writable, *readonly; /* one-byte indices into the table */
  size_t n_writable, n_readonly;
} fy_sol_lookup_t;

typedef struct {
  int version; /* FY_SOL_LEGACY or 0 */
  unsigned n_signatures, n_readonly_signed, n_readonly_unsigned;
  const uint8_t *keys; /* n_keys * 32 bytes, the static keys */
  size_t n_keys;
  const uint8_t *blockhash;
  fy_sol_cix_t *ixs; /* heap arrays: fy_sol_message_free */
  size_t n_ixs;
  fy_sol_lookup_t *lookups;
  size_t n_lookups;
} fy_sol_message_t;

/* Decode a message from p[0..n) (all of it: trailing bytes are an error). */
int fy_sol_message_decode(const uint8_t *p, size_t n, fy_sol_message_t *m);
void fy_sol_message_free(fy_sol_message_t *m);

typedef struct {
  const uint8_t *signatures; /* n_signatures * 64 bytes */
  size_t n_signatures;
  const uint8_t *message;    /* the signed bytes */
  size_t message_len;
  fy_sol_message_t msg;
} fy_sol_tx_t;

/* Decode wire bytes; the signature count must equal the header's. fy_sol_tx_free after. */
int fy_sol_tx_decode(const uint8_t *p, size_t n, fy_sol_tx_t *tx);
void fy_sol_tx_free(fy_sol_tx_t *tx);

/* Wire bytes: compact-u16 count, n_sigs signatures (64 bytes each), the message. Appended to
** out; FY_SOL_ETOOBIG (nothing appended) when they would exceed FY_SOL_PACKET. */
int fy_sol_tx_assemble(const uint8_t *sigs, size_t n_sigs, const uint8_t *msg, size_t msg_len, fy_buf_t *out);

/* sha256(seeds || program || "ProgramDerivedAddress"), refused when on the curve. */
int fy_sol_create_pda(const uint8_t *const *seeds, const size_t *lens, size_t n_seeds,
                      const uint8_t program[32], uint8_t out[32]);

/* The first bump from 255 down whose address is off the curve (find_program_address). */
int fy_sol_find_pda(const uint8_t *const *seeds, const size_t *lens, size_t n_seeds,
                    const uint8_t program[32], uint8_t out[32], uint8_t *bump);

/* The associated token account of (owner, mint) under token_program (SPL Token or Token-2022). */
int fy_sol_ata(const uint8_t owner[32], const uint8_t mint[32], const uint8_t token_program[32],
               uint8_t out[32], uint8_t *bump);

#endif
