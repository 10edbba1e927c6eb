/*
** keystore_test.c -- keystore.c alone (make ctest-keystore, ASan+UBSan): the fixtures of
** tests/fixtures/keystore (cast's scrypt keystore and a pbkdf2 one; cast read both back) open to
** anvil's dev key 0; a wrong password, a changed ciphertext byte and out-of-range parameters
** are refused with their codes.
*/
#include "crypto/keystore.h"
#include "crypto/secp.h"
#include "crypto/hex.h"

#include <stdio.h>
#include <string.h>

#include "check.h"

static const char *PW = "correct horse battery staple";
static const char *ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/* tests/fixtures/keystore/cast_scrypt.json */
static const char *CAST_SCRYPT[] = {"d79ea72f488f10b5f2c39ee92afd197e1a48dc7ebf84c539ef22e17ef5fb8960", "6cd1f8982e486dbc25afca26280e6ace",
  "3e0425f3208e00a91161a737ec79e7d6e714c7b6be35656c18587deba82e667d",
  "e9aa45c9e33f92cfddb3eadb20bbc9653daab841c670364ee4d3664ee0ccac5f"};
/* tests/fixtures/keystore/pbkdf2.json */
static const char *PBKDF2[] = {"d34c815338b40b5ad3ff76d8ece8ef4ee4793c99711f3143f1ce1025ba2869c6", "a539ab864a77821e3abd0052b02b8aec",
  "0284b4e76ab11d096ec13ca65862088c0133af78b1c50974f7758f30193a8833",
  "e05f1864cae3e68302512b5a31e0fe5792fe8ec33591721d4d0c106f57bbfdb7"};

static void fill(fy_keystore_t *ks, const char *const f[4]) {
  memset(ks, 0, sizeof *ks);
  ks->salt_len = strlen(f[0]) / 2;
  fy_hex_decode(f[0], ks->salt_len, ks->salt);
  fy_hex_decode(f[1], 16, ks->iv);
  fy_hex_decode(f[2], 32, ks->ciphertext);
  fy_hex_decode(f[3], 32, ks->mac);
}

static void opens_to_anvil0(const fy_keystore_t *ks) {
  fy_key_t *k = NULL;
  CHECK(fy_keystore_open(ks, (const uint8_t *)PW, strlen(PW), &k) == FY_KS_OK);
  CHECK(k != NULL);
  if (!k) return;
  char text[43];
  fy_secp_checksum(fy_key_address(k), text);
  CHECK(strcmp(text, ADDR0) == 0);
  fy_key_free(k);
}

int main(void) {
  fy_keystore_t ks;
  fy_key_t *k = (fy_key_t *)&ks;   /* any non-NULL: must come back NULL on error */
  const char *why;

  fill(&ks, CAST_SCRYPT);
  ks.kdf = FY_KS_SCRYPT; ks.n = 8192; ks.r = 8; ks.p = 1;
  opens_to_anvil0(&ks);
  CHECK(fy_keystore_open(&ks, (const uint8_t *)"hunter2", 7, &k) == FY_KS_EMAC && k == NULL);
  ks.ciphertext[31] ^= 1;
  CHECK(fy_keystore_open(&ks, (const uint8_t *)PW, strlen(PW), &k) == FY_KS_EMAC && k == NULL);
  ks.ciphertext[31] ^= 1;
  ks.n = 1000;
  CHECK(fy_keystore_check(&ks, &why) == FY_KS_EPARAM && strstr(why, "power of 2"));
  ks.n = (uint64_t)1 << 21;   /* 128 * 8 * 2^21 = 2 GiB */
  CHECK(fy_keystore_check(&ks, &why) == FY_KS_EPARAM && strstr(why, "1 GiB"));
  CHECK(fy_keystore_open(&ks, (const uint8_t *)PW, strlen(PW), &k) == FY_KS_EPARAM && k == NULL);
  ks.n = 8192; ks.r = 0;
  CHECK(fy_keystore_check(&ks, &why) == FY_KS_EPARAM);

  fill(&ks, PBKDF2);
  ks.kdf = FY_KS_PBKDF2; ks.c = 4096;
  opens_to_anvil0(&ks);
  CHECK(fy_keystore_open(&ks, (const uint8_t *)PW, strlen(PW) - 1, &k) == FY_KS_EMAC && k == NULL);
  ks.c = 0;
  CHECK(fy_keystore_check(&ks, &why) == FY_KS_EPARAM);
  ks.c = 4096; ks.salt_len = 0;
  CHECK(fy_keystore_check(&ks, &why) == FY_KS_EPARAM);
  ks.salt_len = 32; ks.kdf = 9;
  CHECK(fy_keystore_check(&ks, &why) == FY_KS_EPARAM && strstr(why, "scrypt or pbkdf2"));
  CHECK(strcmp(fy_keystore_strerror(FY_KS_EMAC), "wrong password (MAC mismatch)") == 0);

  printf("keystore_test: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
