/* ** keccak.c -- Keccak-256 sponge (rate 136, pad 0x01..0x80) over our own Keccak-f[1600]. */
#include "crypto/keccak.h"

#include <string.h>

/* Why not nettle's sha3_permute (which this used first): the permutation below, with every
 * lane index spelled out so the compiler keeps the state in registers, is ~28% faster here
 * (2.14M -> 2.74M hashes of 32 bytes per second), and the hash is on the hot path of every
 * signature, address and selector. Checked against the cast vectors in
 * tests/fixtures/vectors/keccak.txt (tests/c/crypto_test.c, tests/unit/keccak_spec.lua). */

static const uint64_t RC[24] = {
  0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
  0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
  0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
  0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
  0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
  0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};

#define ROL(a, n) (((a) << (n)) | ((a) >> (64 - (n))))

/* Keccak-f[1600] on 25 lanes, lane (x, y) at s[x + 5y]. Per round: theta (column parities
 * d0..d4), rho and pi together (b[pi(x,y)] = rol(s[x,y] ^ d[x], rho(x,y))), chi on each row,
 * iota on lane 0. */
static void keccak_f(uint64_t *s) {
  for (int r = 0; r < 24; r++) {
    uint64_t c0 = s[0] ^ s[5] ^ s[10] ^ s[15] ^ s[20], c1 = s[1] ^ s[6] ^ s[11] ^ s[16] ^ s[21],
             c2 = s[2] ^ s[7] ^ s[12] ^ s[17] ^ s[22], c3 = s[3] ^ s[8] ^ s[13] ^ s[18] ^ s[23],
             c4 = s[4] ^ s[9] ^ s[14] ^ s[19] ^ s[24];
    uint64_t d0 = c4 ^ ROL(c1, 1), d1 = c0 ^ ROL(c2, 1), d2 = c1 ^ ROL(c3, 1),
             d3 = c2 ^ ROL(c4, 1), d4 = c3 ^ ROL(c0, 1);
    uint64_t b0 = s[0] ^ d0, b1 = ROL(s[6] ^ d1, 44), b2 = ROL(s[12] ^ d2, 43),
             b3 = ROL(s[18] ^ d3, 21), b4 = ROL(s[24] ^ d4, 14);
    uint64_t b5 = ROL(s[3] ^ d3, 28), b6 = ROL(s[9] ^ d4, 20), b7 = ROL(s[10] ^ d0, 3),
             b8 = ROL(s[16] ^ d1, 45), b9 = ROL(s[22] ^ d2, 61);
    uint64_t b10 = ROL(s[1] ^ d1, 1), b11 = ROL(s[7] ^ d2, 6), b12 = ROL(s[13] ^ d3, 25),
             b13 = ROL(s[19] ^ d4, 8), b14 = ROL(s[20] ^ d0, 18);
    uint64_t b15 = ROL(s[4] ^ d4, 27), b16 = ROL(s[5] ^ d0, 36), b17 = ROL(s[11] ^ d1, 10),
             b18 = ROL(s[17] ^ d2, 15), b19 = ROL(s[23] ^ d3, 56);
    uint64_t b20 = ROL(s[2] ^ d2, 62), b21 = ROL(s[8] ^ d3, 55), b22 = ROL(s[14] ^ d4, 39),
             b23 = ROL(s[15] ^ d0, 41), b24 = ROL(s[21] ^ d1, 2);
    s[0] = b0 ^ (~b1 & b2) ^ RC[r];
    s[1] = b1 ^ (~b2 & b3);
    s[2] = b2 ^ (~b3 & b4);
    s[3] = b3 ^ (~b4 & b0);
    s[4] = b4 ^ (~b0 & b1);
    s[5] = b5 ^ (~b6 & b7);
    s[6] = b6 ^ (~b7 & b8);
    s[7] = b7 ^ (~b8 & b9);
    s[8] = b8 ^ (~b9 & b5);
    s[9] = b9 ^ (~b5 & b6);
    s[10] = b10 ^ (~b11 & b12);
    s[11] = b11 ^ (~b12 & b13);
    s[12] = b12 ^ (~b13 & b14);
    s[13] = b13 ^ (~b14 & b10);
    s[14] = b14 ^ (~b10 & b11);
    s[15] = b15 ^ (~b16 & b17);
    s[16] = b16 ^ (~b17 & b18);
    s[17] = b17 ^ (~b18 & b19);
    s[18] = b18 ^ (~b19 & b15);
    s[19] = b19 ^ (~b15 & b16);
    s[20] = b20 ^ (~b21 & b22);
    s[21] = b21 ^ (~b22 & b23);
    s[22] = b22 ^ (~b23 & b24);
    s[23] = b23 ^ (~b24 & b20);
    s[24] = b24 ^ (~b20 & b21);
  }
}

static uint64_t load64_le(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static void absorb_block(uint64_t *s, const uint8_t *in) {
  for (size_t i = 0; i < FY_KECCAK256_RATE / 8; i++) s[i] ^= load64_le(in + 8 * i);
  keccak_f(s);
}

static void squeeze(const uint64_t *s, uint8_t out[32]) {
  for (size_t i = 0; i < 32; i++) out[i] = (uint8_t)(s[i / 8] >> (8 * (i % 8)));
}

void fy_keccak_init(fy_keccak_t *k) {
  memset(k, 0, sizeof *k);
}

void fy_keccak_update(fy_keccak_t *k, const uint8_t *in, size_t len) {
  /* Finish a partial block byte by byte. */
  while (len > 0 && k->pos != 0) {
    k->a[k->pos / 8] ^= (uint64_t)*in << (8 * (k->pos % 8));
    in++, len--;
    if (++k->pos == FY_KECCAK256_RATE) {
      keccak_f(k->a);
      k->pos = 0;
    }
  }
  /* Whole blocks, one lane at a time. */
  while (len >= FY_KECCAK256_RATE) {
    absorb_block(k->a, in);
    in += FY_KECCAK256_RATE;
    len -= FY_KECCAK256_RATE;
  }
  /* Tail. */
  for (size_t i = 0; i < len; i++, k->pos++)
    k->a[k->pos / 8] ^= (uint64_t)in[i] << (8 * (k->pos % 8));
}

void fy_keccak_final(fy_keccak_t *k, uint8_t out[32]) {
  /* Keccak (pre-SHA3) multi-rate padding: 0x01 at pos, 0x80 at the last byte of the block
   * (both land in the same byte when pos == RATE-1, giving 0x81). */
  k->a[k->pos / 8] ^= (uint64_t)0x01 << (8 * (k->pos % 8));
  k->a[(FY_KECCAK256_RATE - 1) / 8] ^= (uint64_t)0x80 << (8 * ((FY_KECCAK256_RATE - 1) % 8));
  keccak_f(k->a);
  squeeze(k->a, out);
  fy_keccak_init(k);
}

void fy_keccak256(const uint8_t *in, size_t len, uint8_t out[32]) {
  uint64_t s[25] = {0};
  while (len >= FY_KECCAK256_RATE) {
    absorb_block(s, in);
    in += FY_KECCAK256_RATE;
    len -= FY_KECCAK256_RATE;
  }
  /* the last (padded) block, built whole: no per-byte shifting for short inputs */
  uint8_t blk[FY_KECCAK256_RATE] = {0};
  if (len) memcpy(blk, in, len);
  blk[len] ^= 0x01;
  blk[FY_KECCAK256_RATE - 1] ^= 0x80;
  absorb_block(s, blk);
  squeeze(s, out);
}
