/*
** keystore.c -- Web3 Secret Storage v3 decryption (see keystore.h).
*/
#include "crypto/keystore.h"
#include "crypto/keccak.h"

#include <nettle/aes.h>
#include <nettle/ctr.h>
#include <nettle/pbkdf2.h>
#include <sodium.h>
#include <string.h>

const char *fy_keystore_strerror(int rc) {
  switch (rc) {
  case FY_KS_OK: return "ok";
  case FY_KS_ENOMEM: return "cannot allocate memory for the key derivation";
  case FY_KS_EPARAM: return "unsupported key derivation parameters";
  case FY_KS_EMAC: return "wrong password (MAC mismatch)";
  case FY_KS_EKEY: return "the decrypted key is not a valid secp256k1 private key";
  default: return "unknown keystore error";
  }
}

int fy_keystore_check(const fy_keystore_t *ks, const char **why) {
  *why = NULL;
  if (ks->salt_len < 1 || ks->salt_len > sizeof ks->salt) *why = "salt must be 1 to 64 bytes";
  else if (ks->kdf == FY_KS_SCRYPT) {
    if (ks->n < 2 || (ks->n & (ks->n - 1))) *why = "scrypt n must be a power of 2 above 1";
    else if (ks->r < 1 || ks->p < 1) *why = "scrypt r and p must be at least 1";
    else if ((uint64_t)ks->r * ks->p >= ((uint64_t)1 << 30)) *why = "scrypt r * p is too large";
    else if (ks->n > FY_KS_SCRYPT_MAX_MEM / 128 / ks->r) *why = "scrypt 128 * r * n is above 1 GiB";
  } else if (ks->kdf == FY_KS_PBKDF2) {
    if (ks->c < 1 || ks->c > FY_KS_PBKDF2_MAX_C) *why = "pbkdf2 c must be 1 to 10000000";
  } else *why = "kdf must be scrypt or pbkdf2";
  return *why ? FY_KS_EPARAM : FY_KS_OK;
}

int fy_keystore_open(const fy_keystore_t *ks, const uint8_t *password, size_t password_len,
                     fy_key_t **out) {
  *out = NULL;
  const char *why;
  if (fy_keystore_check(ks, &why)) return FY_KS_EPARAM;
  if (sodium_init() < 0) return FY_KS_ENOMEM;
  /* scratch: derived key (32), then the decrypted secret (32), in one guarded page */
  uint8_t *scratch = sodium_malloc(64);
  if (!scratch) return FY_KS_ENOMEM;
  uint8_t *dk = scratch, *secret = scratch + 32;
  int rc = FY_KS_OK;

  if (ks->kdf == FY_KS_SCRYPT) {
    if (crypto_pwhash_scryptsalsa208sha256_ll(password, password_len, ks->salt, ks->salt_len,
                                              ks->n, ks->r, ks->p, dk, 32) != 0) {
      rc = FY_KS_ENOMEM;
      goto done;
    }
  } else {
    pbkdf2_hmac_sha256(password_len, password, ks->c, ks->salt_len, ks->salt, 32, dk);
  }

  uint8_t mac[32];
  fy_keccak_t h;
  fy_keccak_init(&h);
  fy_keccak_update(&h, dk + 16, 16);
  fy_keccak_update(&h, ks->ciphertext, sizeof ks->ciphertext);
  fy_keccak_final(&h, mac);
  sodium_memzero(&h, sizeof h);
  if (sodium_memcmp(mac, ks->mac, 32) != 0) { rc = FY_KS_EMAC; goto done; }

  struct aes128_ctx aes;
  uint8_t ctr[16];
  memcpy(ctr, ks->iv, 16);
  aes128_set_encrypt_key(&aes, dk);
  ctr_crypt(&aes, (nettle_cipher_func *)aes128_encrypt, AES_BLOCK_SIZE, ctr,
            sizeof ks->ciphertext, secret, ks->ciphertext);
  sodium_memzero(&aes, sizeof aes);
  sodium_memzero(ctr, sizeof ctr);

  int krc = fy_key_from_bytes(secret, out);
  if (krc == FY_KEY_ENOMEM) rc = FY_KS_ENOMEM;
  else if (krc) rc = FY_KS_EKEY;
done:
  sodium_free(scratch);                /* zeroes dk and secret */
  return rc;
}
