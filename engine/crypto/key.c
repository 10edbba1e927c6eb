/*
** key.c -- private keys in guarded memory (see key.h).
*/
#include "crypto/key.h"
#include "crypto/secp.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct fy_key {
  uint8_t *secret;       /* 32 bytes in a sodium_malloc page, read-only once filled */
  uint8_t address[20];
};

const char *fy_key_strerror(int rc) {
  switch (rc) {
  case FY_KEY_OK: return "ok";
  case FY_KEY_ENOMEM: return "cannot allocate guarded memory for a key";
  case FY_KEY_EFORMAT: return "a private key is 32 bytes, or 64 hex digits (0x optional)";
  case FY_KEY_EINVALID: return "not a valid secp256k1 private key";
  default: return "unknown key error";
  }
}

/* The page stays readable: making it PROT_NONE between signatures costs two mprotect calls
 * each, which took signer:sign from 27k to 20k per second on the bench machine (25%). Guard
 * pages, mlock and read-only already keep it from overflows, writes, swap and core dumps. */

/* A key whose secret page is writable, for the caller to fill; then finish(). */
static fy_key_t *key_alloc(void) {
  if (sodium_init() < 0) return NULL;
  fy_key_t *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->secret = sodium_malloc(32);
  if (!k->secret) { free(k); return NULL; }
  return k;
}

/* Check the filled secret, derive the address, seal the page. Frees k on error. */
static int finish(fy_key_t *k, fy_key_t **out) {
  int rc = fy_secp_address(k->secret, k->address);
  if (rc != FY_SECP_OK) {
    fy_key_free(k);
    return rc == FY_SECP_EKEY ? FY_KEY_EINVALID : FY_KEY_ENOMEM;
  }
  sodium_mprotect_readonly(k->secret);
  *out = k;
  return FY_KEY_OK;
}

int fy_key_from_bytes(const uint8_t secret[32], fy_key_t **out) {
  *out = NULL;
  fy_key_t *k = key_alloc();
  if (!k) return FY_KEY_ENOMEM;
  memcpy(k->secret, secret, 32);
  return finish(k, out);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int fy_key_from_hex(const char *s, size_t n, fy_key_t **out) {
  *out = NULL;
  if (n == 66 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { s += 2; n -= 2; }
  if (n != 64) return FY_KEY_EFORMAT;
  for (size_t i = 0; i < 64; i++)
    if (hexval(s[i]) < 0) return FY_KEY_EFORMAT;
  fy_key_t *k = key_alloc();
  if (!k) return FY_KEY_ENOMEM;
  for (int i = 0; i < 32; i++) k->secret[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
  return finish(k, out);
}

const uint8_t *fy_key_address(const fy_key_t *k) { return k->address; }

void fy_key_export(const fy_key_t *k, uint8_t out[32]) {
  memcpy(out, k->secret, 32);
}

int fy_key_sign_tx(const fy_key_t *k, fy_tx_t *tx, fy_buf_t *raw, uint8_t hash[32]) {
  return fy_tx_sign(tx, k->secret, raw, hash);
}

int fy_key_personal_sign(const fy_key_t *k, const uint8_t *msg, size_t len, uint8_t sig[65]) {
  return fy_secp_personal_sign(msg, len, k->secret, sig);
}

int fy_key_sign_hash(const fy_key_t *k, const uint8_t hash[32], uint8_t sig[65]) {
  int parity;
  int rc = fy_secp_sign(hash, k->secret, sig, sig + 32, &parity);
  if (rc == FY_SECP_OK) sig[64] = (uint8_t)(27 + parity);
  return rc;
}

void fy_key_free(fy_key_t *k) {
  if (!k) return;
  sodium_free(k->secret);              /* makes the page writable, zeroes it, unmaps it */
  sodium_memzero(k->address, sizeof k->address);
  free(k);
}
