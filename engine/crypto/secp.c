/* ** secp.c -- secp256k1 keys, addresses, recoverable signatures (libsecp256k1 + keccak) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* explicit_bzero, getrandom */
#endif
#include "crypto/secp.h"
#include "crypto/hex.h"
#include "crypto/keccak.h"

#include <nettle/hmac.h>
#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static secp256k1_context *ctx;
static int ctx_rc = FY_SECP_EINIT;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

/* n/2, big-endian: the largest low-S value (EIP-2) */
static const uint8_t half_n[32] = {
  0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};

const char *fy_secp_strerror(int rc) {
  switch (rc) {
  case FY_SECP_OK: return "ok";
  case FY_SECP_EINIT: return "secp256k1 context unavailable";
  case FY_SECP_EKEY: return "invalid private key";
  case FY_SECP_ESIG: return "invalid signature";
  case FY_SECP_EHEX: return "invalid address (want 0x + 40 hex digits)";
  case FY_SECP_ECHECKSUM: return "bad address checksum (EIP-55)";
  default: return "unknown secp256k1 error";
  }
}

static void ctx_create(void) {
  uint8_t seed[32];
  ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  if (!ctx) return;
  if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed ||
      !secp256k1_context_randomize(ctx, seed)) {
    explicit_bzero(seed, sizeof seed);
    secp256k1_context_destroy(ctx);
    ctx = NULL;
    return;
  }
  explicit_bzero(seed, sizeof seed);
  ctx_rc = FY_SECP_OK;
}

int fy_secp_init(void) {
  pthread_once(&ctx_once, ctx_create);
  return ctx_rc;
}

int fy_secp_key_check(const uint8_t key[32]) {
  if (fy_secp_init() != FY_SECP_OK) return FY_SECP_EINIT;
  return secp256k1_ec_seckey_verify(ctx, key) ? FY_SECP_OK : FY_SECP_EKEY;
}

int fy_secp_pubkey(const uint8_t key[32], uint8_t pub[64]) {
  secp256k1_pubkey pk;
  uint8_t ser[65];
  size_t n = sizeof ser;
  if (fy_secp_init() != FY_SECP_OK) return FY_SECP_EINIT;
  if (!secp256k1_ec_pubkey_create(ctx, &pk, key)) return FY_SECP_EKEY;
  secp256k1_ec_pubkey_serialize(ctx, ser, &n, &pk, SECP256K1_EC_UNCOMPRESSED);
  memcpy(pub, ser + 1, 64);
  return FY_SECP_OK;
}

void fy_secp_pubkey_address(const uint8_t pub[64], uint8_t addr[20]) {
  uint8_t h[32];
  fy_keccak256(pub, 64, h);
  memcpy(addr, h + 12, 20);
}

int fy_secp_address(const uint8_t key[32], uint8_t addr[20]) {
  uint8_t pub[64];
  int rc = fy_secp_pubkey(key, pub);
  if (rc == FY_SECP_OK) fy_secp_pubkey_address(pub, addr);
  return rc;
}

static const char hexdig[] = "0123456789abcdef";

void fy_secp_checksum(const uint8_t addr[20], char out[43]) {
  char low[40];
  uint8_t h[32];
  for (int i = 0; i < 20; i++) {
    low[2 * i] = hexdig[addr[i] >> 4];
    low[2 * i + 1] = hexdig[addr[i] & 15];
  }
  fy_keccak256((const uint8_t *)low, sizeof low, h);
  out[0] = '0';
  out[1] = 'x';
  for (int i = 0; i < 40; i++) {
    int nib = (i & 1) ? (h[i / 2] & 15) : (h[i / 2] >> 4);
    char c = low[i];
    out[2 + i] = (c >= 'a' && nib >= 8) ? (char)(c - 'a' + 'A') : c;
  }
  out[42] = '\0';
}

int fy_secp_address_parse(const char *s, size_t len, uint8_t addr[20]) {
  uint8_t a[20];
  int lower = 0, upper = 0;
  char sum[43];
  if (len != 42 || s[0] != '0' || s[1] != 'x') return FY_SECP_EHEX;
  for (int i = 0; i < 40; i++) {
    char c = s[2 + i];
    int v = fy_hexval(c);
    if (v < 0) return FY_SECP_EHEX;
    if (c >= 'a' && c <= 'f') lower = 1;
    if (c >= 'A' && c <= 'F') upper = 1;
    if (i & 1) a[i / 2] |= (uint8_t)v;
    else a[i / 2] = (uint8_t)(v << 4);
  }
  if (lower && upper) {
    fy_secp_checksum(a, sum);
    if (memcmp(sum + 2, s + 2, 40) != 0) return FY_SECP_ECHECKSUM;
  }
  memcpy(addr, a, 20);
  return FY_SECP_OK;
}

/* the group order n, big-endian: the one definition (tx.c uses it too) */
const uint8_t fy_secp_order_n[32] = {
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
  0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

/* HMAC-SHA256 keyed with 32 zero bytes (RFC 6979's first K): its two key blocks are hashed once */
static struct hmac_sha256_ctx hmac_zero_key;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_zero_key_init(void) {
  static const uint8_t zero[32];
  hmac_sha256_set_key(&hmac_zero_key, 32, zero);
}

/* out = HMAC(a || sep || b) under h's key; sep < 0 and b == NULL leave them out. nettle's digest
 * leaves h ready for another message under the same key. */
static void mac(struct hmac_sha256_ctx *h, uint8_t out[32], const uint8_t a[32], int sep,
                const uint8_t *b, size_t blen) {
  hmac_sha256_update(h, 32, a);
  if (sep >= 0) {
    uint8_t c = (uint8_t)sep;
    hmac_sha256_update(h, 1, &c);
  }
  if (b) hmac_sha256_update(h, blen, b);
  hmac_sha256_digest(h, 32, out);
}

/* RFC 6979 (3.2 b-h, 3.4 retries) with HMAC-SHA256: the nonce libsecp256k1's default function
 * derives, byte for byte, for its input key || (msg mod n) with no extra data. Ours runs on
 * nettle's SHA-256, which uses the CPU's SHA extensions where there are any, and hashes each K's
 * key blocks once for the two messages under it; libsecp256k1's portable SHA-256 was 15% of a
 * signature here (3.7 of 25 us; this takes 1). Anything else (extra data, an algorithm tag) goes
 * to libsecp256k1's own function. evm_test.c compares the two on random and edge inputs, and the
 * signatures are checked against cast's. */
int fy_secp_nonce_rfc6979(unsigned char *nonce32, const unsigned char *msg32,
                          const unsigned char *key32, const unsigned char *algo16, void *data,
                          unsigned int counter) {
  if (algo16 || data)
    return secp256k1_nonce_function_rfc6979(nonce32, msg32, key32, algo16, data, counter);
  struct hmac_sha256_ctx h;
  uint8_t kd[64], K[32], V[32];
  memcpy(kd, key32, 32);
  memcpy(kd + 32, msg32, 32);
  if (memcmp(msg32, fy_secp_order_n, 32) >= 0) {                   /* bits2octets: msg - n, once */
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
      int d = kd[32 + i] - fy_secp_order_n[i] - borrow;
      borrow = d < 0;
      kd[32 + i] = (uint8_t)(d + (borrow << 8));
    }
  }
  pthread_once(&hmac_once, hmac_zero_key_init);
  h = hmac_zero_key;                                       /* K = 0x00 * 32 */
  memset(V, 0x01, 32);
  mac(&h, K, V, 0x00, kd, 64);                             /* K = HMAC_K(V || 0 || kd) */
  hmac_sha256_set_key(&h, 32, K);
  mac(&h, V, V, -1, NULL, 0);                              /* V = HMAC_K(V) */
  mac(&h, K, V, 0x01, kd, 64);                             /* K = HMAC_K(V || 1 || kd) */
  hmac_sha256_set_key(&h, 32, K);
  mac(&h, V, V, -1, NULL, 0);
  for (unsigned int i = 0; i <= counter; i++) {
    if (i > 0) {                                           /* candidate rejected: next one */
      mac(&h, K, V, 0x00, NULL, 0);
      hmac_sha256_set_key(&h, 32, K);
      mac(&h, V, V, -1, NULL, 0);
    }
    mac(&h, V, V, -1, NULL, 0);
  }
  memcpy(nonce32, V, 32);
  explicit_bzero(&h, sizeof h);
  explicit_bzero(kd, sizeof kd);
  explicit_bzero(K, sizeof K);
  explicit_bzero(V, sizeof V);
  return 1;
}

int fy_secp_sign(const uint8_t hash[32], const uint8_t key[32], uint8_t r[32], uint8_t s[32],
                 int *y_parity) {
  secp256k1_ecdsa_recoverable_signature sig;
  uint8_t compact[64];
  int recid = 0;
  if (fy_secp_init() != FY_SECP_OK) return FY_SECP_EINIT;
  /* RFC6979 nonces; libsecp256k1 always produces low-S */
  if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, hash, key, fy_secp_nonce_rfc6979, NULL))
    return FY_SECP_EKEY;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, compact, &recid, &sig);
  memcpy(r, compact, 32);
  memcpy(s, compact + 32, 32);
  *y_parity = recid;
  return FY_SECP_OK;
}

int fy_secp_is_low_s(const uint8_t s[32]) {
  return memcmp(s, half_n, 32) <= 0;
}

int fy_secp_recover(const uint8_t hash[32], const uint8_t r[32], const uint8_t s[32],
                    int y_parity, uint8_t pub[64]) {
  secp256k1_ecdsa_recoverable_signature sig;
  secp256k1_pubkey pk;
  uint8_t compact[64], ser[65];
  size_t n = sizeof ser;
  static const uint8_t zero[32];
  if (fy_secp_init() != FY_SECP_OK) return FY_SECP_EINIT;
  if (y_parity != 0 && y_parity != 1) return FY_SECP_ESIG;
  if (!memcmp(r, zero, 32) || !memcmp(s, zero, 32)) return FY_SECP_ESIG;
  memcpy(compact, r, 32);
  memcpy(compact + 32, s, 32);
  /* parse_compact rejects r or s >= n */
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, compact, y_parity))
    return FY_SECP_ESIG;
  if (!secp256k1_ecdsa_recover(ctx, &pk, &sig, hash)) return FY_SECP_ESIG;
  secp256k1_ec_pubkey_serialize(ctx, ser, &n, &pk, SECP256K1_EC_UNCOMPRESSED);
  memcpy(pub, ser + 1, 64);
  return FY_SECP_OK;
}

int fy_secp_recover_address(const uint8_t hash[32], const uint8_t r[32], const uint8_t s[32],
                            int y_parity, uint8_t addr[20]) {
  uint8_t pub[64];
  int rc = fy_secp_recover(hash, r, s, y_parity, pub);
  if (rc == FY_SECP_OK) fy_secp_pubkey_address(pub, addr);
  return rc;
}

void fy_secp_personal_hash(const uint8_t *msg, size_t len, uint8_t hash[32]) {
  static const char prefix[] = "\x19" "Ethereum Signed Message:\n";
  char num[24];
  int k = snprintf(num, sizeof num, "%zu", len);
  fy_keccak_t st;
  fy_keccak_init(&st);
  fy_keccak_update(&st, (const uint8_t *)prefix, sizeof prefix - 1);
  fy_keccak_update(&st, (const uint8_t *)num, (size_t)k);
  if (len) fy_keccak_update(&st, msg, len);
  fy_keccak_final(&st, hash);
}

int fy_secp_personal_sign(const uint8_t *msg, size_t len, const uint8_t key[32], uint8_t sig[65]) {
  uint8_t h[32], r[32], s[32];
  int y = 0;
  fy_secp_personal_hash(msg, len, h);
  int rc = fy_secp_sign(h, key, r, s, &y);
  if (rc != FY_SECP_OK) return rc;
  memcpy(sig, r, 32);
  memcpy(sig + 32, s, 32);
  sig[64] = (uint8_t)(27 + y);
  return FY_SECP_OK;
}
