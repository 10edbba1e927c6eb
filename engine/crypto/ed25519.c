/* ed25519.c -- see ed25519.h. */
#include "crypto/ed25519.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct fy_ed25519_key {
  uint8_t *secret; /* 64 bytes (libsodium's seed || pk) in a guarded page, read-only */
  uint8_t pub[32];
};

const char *fy_ed25519_strerror(int rc) {
  switch (rc) {
  case FY_ED_OK: return "ok";
  case FY_ED_ENOMEM: return "out of memory";
  case FY_ED_EFORMAT: return "an ed25519 secret is 32 bytes (seed) or 64 bytes (seed and public key)";
  case FY_ED_EMISMATCH: return "the 64-byte secret's public half does not match its seed";
  default: return "unknown ed25519 error";
  }
}

int fy_ed25519_key_new(const uint8_t *secret, size_t n, fy_ed25519_key_t **out) {
  *out = NULL;
  if (n != 32 && n != 64) return FY_ED_EFORMAT;
  if (sodium_init() < 0) return FY_ED_ENOMEM;
  fy_ed25519_key_t *k = calloc(1, sizeof *k);
  if (!k) return FY_ED_ENOMEM;
  k->secret = sodium_malloc(crypto_sign_SECRETKEYBYTES);
  if (!k->secret) {
    free(k);
    return FY_ED_ENOMEM;
  }
  crypto_sign_seed_keypair(k->pub, k->secret, secret);
  if (n == 64 && sodium_memcmp(k->pub, secret + 32, 32) != 0) {
    fy_ed25519_key_free(k);
    return FY_ED_EMISMATCH;
  }
  sodium_mprotect_readonly(k->secret);
  *out = k;
  return FY_ED_OK;
}

const uint8_t *fy_ed25519_key_public(const fy_ed25519_key_t *k) { return k->pub; }

void fy_ed25519_key_sign(const fy_ed25519_key_t *k, const uint8_t *msg, size_t len, uint8_t sig[64]) {
  crypto_sign_detached(sig, NULL, msg, len, k->secret);
}

void fy_ed25519_key_free(fy_ed25519_key_t *k) {
  if (!k) return;
  sodium_free(k->secret); /* wipes before unmapping */
  free(k);
}

int fy_ed25519_verify(const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64]) {
  if (sodium_init() < 0) return 0;
  return crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

/* libsodium's is_valid_point also demands the prime-order subgroup, which 7 of 8 points on the
** curve fail; crypto_core_ed25519_add only decompresses its operands and checks the curve
** equation, which is the test PDAs are defined by. */
int fy_ed25519_on_curve(const uint8_t p[32]) {
  uint8_t sum[32];
  if (sodium_init() < 0) return 0;
  return crypto_core_ed25519_add(sum, p, p) == 0;
}
