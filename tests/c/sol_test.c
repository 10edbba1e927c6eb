/* sol_test.c -- the Solana cores alone (base58.c, ed25519.c, sol.c) against @solana/web3.js's
** vectors (tests/fixtures/solana/c_vectors.txt, written by gen_sol_vectors.js): base58 both ways,
** compact-u16 and the spellings it refuses, the curve test, PDAs, ATAs, and 300 signed wire
** transactions, each decoded, its signatures verified over its message, every truncation
** refused. Run under ASan+UBSan by `make ctest-sol`. */
#include "check.h"
#include "crypto/base58.h"
#include "crypto/ed25519.h"
#include "crypto/hex.h"
#include "crypto/sol.h"

#include <stdlib.h>
#include <string.h>

/* hex text ("-" is empty) into out; returns its length */
static size_t unhex(const char *s, uint8_t *out, size_t cap) {
  if (strcmp(s, "-") == 0) return 0;
  size_t n = strlen(s) / 2;
  if (n > cap || fy_hex_decode(s, n, out) >= 0) {
    fprintf(stderr, "bad hex in fixture: %s\n", s);
    exit(2);
  }
  return n;
}

static void b58_case(char *hexs, char *text) {
  static uint8_t bytes[1024], back[1024];
  char enc[FY_B58_ENCODED_MAX(1024)];
  size_t n = unhex(hexs, bytes, sizeof bytes), len = 0;
  if (strcmp(text, "-") == 0) text = "";
  size_t m = fy_b58_encode(bytes, n, enc, sizeof enc);
  CHECK(m == strlen(text) && memcmp(enc, text, m) == 0);
  if (*text) {
    CHECK(fy_b58_decode(text, strlen(text), back, sizeof back, &len, NULL) == FY_B58_OK);
    CHECK(len == n && memcmp(back, bytes, n) == 0);
  }
}

static void shortvec_case(unsigned value, const char *hexs) {
  uint8_t want[3];
  size_t n = unhex(hexs, want, sizeof want), pos = 0;
  fy_buf_t b = {0};
  CHECK(fy_sol_shortvec_put(&b, value) == FY_SOL_OK);
  CHECK(b.len == n && memcmp(b.data, want, n) == 0);
  unsigned got = 0;
  CHECK(fy_sol_shortvec_get(want, n, &pos, &got) == FY_SOL_OK && got == value && pos == n);
  fy_buf_free(&b);
}

static void tx_case(const char *hexs) {
  static uint8_t wire[2048];
  size_t n = unhex(hexs, wire, sizeof wire);
  fy_sol_tx_t tx;
  CHECK(n <= FY_SOL_PACKET);
  CHECK(fy_sol_tx_decode(wire, n, &tx) == FY_SOL_OK);
  for (size_t i = 0; i < tx.n_signatures; i++)
    CHECK(fy_ed25519_verify(tx.msg.keys + 32 * i, tx.message, tx.message_len, tx.signatures + 64 * i));
  fy_buf_t b = {0};
  CHECK(fy_sol_tx_assemble(tx.signatures, tx.n_signatures, tx.message, tx.message_len, &b) == FY_SOL_OK);
  CHECK(b.len == n && memcmp(b.data, wire, n) == 0);
  fy_buf_free(&b);
  fy_sol_tx_free(&tx);
  int refused = 0;
  for (size_t k = 0; k < n; k++) {
    fy_sol_tx_t t;
    if (fy_sol_tx_decode(wire, k, &t) == FY_SOL_OK) fy_sol_tx_free(&t);
    else refused++;
  }
  CHECK(refused == (int)n);
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "tests/fixtures/solana/c_vectors.txt";
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return 2;
  }
  static char line[8192];
  int counts[7] = {0};
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == '#' || !line[0]) continue;
    char *save, *kind = strtok_r(line, " ", &save), *a = strtok_r(NULL, " ", &save), *b = strtok_r(NULL, " ", &save);
    if (strcmp(kind, "b58") == 0) b58_case(a, b), counts[0]++;
    else if (strcmp(kind, "shortvec") == 0) shortvec_case((unsigned)atoi(a), b), counts[1]++;
    else if (strcmp(kind, "shortvec_bad") == 0) {
      uint8_t bytes[8];
      size_t n = unhex(a, bytes, sizeof bytes), pos = 0;
      unsigned v;
      CHECK(fy_sol_shortvec_get(bytes, n, &pos, &v) != FY_SOL_OK);
      counts[1]++;
    } else if (strcmp(kind, "curve") == 0) {
      uint8_t p[32];
      unhex(a, p, 32);
      CHECK(fy_ed25519_on_curve(p) == atoi(b));
      counts[2]++;
    } else if (strcmp(kind, "pda") == 0) {
      uint8_t program[32], want[32], got[32], seedbuf[16][32], bump;
      const uint8_t *seeds[16];
      size_t lens[16], ns = 0;
      unhex(a, program, 32);
      unhex(b, want, 32);
      int want_bump = atoi(strtok_r(NULL, " ", &save));
      for (char *sd; (sd = strtok_r(NULL, " ", &save)) && ns < 16; ns++) {
        lens[ns] = unhex(sd, seedbuf[ns], 32);
        seeds[ns] = seedbuf[ns];
      }
      CHECK(fy_sol_find_pda(seeds, lens, ns, program, got, &bump) == FY_SOL_OK);
      CHECK(memcmp(got, want, 32) == 0 && bump == want_bump);
      counts[3]++;
    } else if (strcmp(kind, "ata") == 0) {
      static const char TOKEN[] = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
      uint8_t owner[32], mint[32], want[32], got[32], token[32], bump;
      size_t tl;
      unhex(a, owner, 32);
      unhex(b, mint, 32);
      unhex(strtok_r(NULL, " ", &save), want, 32);
      int want_bump = atoi(strtok_r(NULL, " ", &save));
      CHECK(fy_b58_decode(TOKEN, strlen(TOKEN), token, 32, &tl, NULL) == FY_B58_OK && tl == 32);
      CHECK(fy_sol_ata(owner, mint, token, got, &bump) == FY_SOL_OK);
      CHECK(memcmp(got, want, 32) == 0 && bump == want_bump);
      counts[4]++;
    } else if (strcmp(kind, "tx") == 0) {
      tx_case(a);
      counts[5]++;
    }
  }
  fclose(f);
  /* libsodium's published seed 00..1f (PEERS.md §7) */
  uint8_t seed[32], sig[64];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i;
  fy_ed25519_key_t *k;
  CHECK(fy_ed25519_key_new(seed, 32, &k) == FY_ED_OK);
  CHECK(fy_ed25519_key_public(k)[0] == 0x03 && fy_ed25519_key_public(k)[31] == 0xb8);
  fy_ed25519_key_sign(k, (const uint8_t *)"hello", 5, sig);
  CHECK(sig[0] == 0xe1 && sig[63] == 0x0f);
  CHECK(fy_ed25519_verify(fy_ed25519_key_public(k), (const uint8_t *)"hello", 5, sig));
  fy_ed25519_key_free(k);
  CHECK(counts[0] > 200 && counts[1] > 10 && counts[2] > 100 && counts[3] == 100 && counts[4] == 50 && counts[5] == 300);
  printf("sol_test: %d checks, %d failures (b58 %d, shortvec %d, curve %d, pda %d, ata %d, tx %d)\n", checks, failures,
         counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
  return failures != 0;
}
