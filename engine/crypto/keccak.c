/* ** keccak.c -- Keccak-256 sponge (rate 136, pad 0x01..0x80) over nettle's permutation. */
#include "crypto/keccak.h"

#include <string.h>

static uint64_t load64_le(const uint8_t *p)
{
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

void fy_keccak_init(fy_keccak_t *k)
{
  memset(k, 0, sizeof *k);
}

void fy_keccak_update(fy_keccak_t *k, const uint8_t *in, size_t len)
{
  /* Finish a partial block byte by byte. */
  while (len > 0 && k->pos != 0) {
    k->st.a[k->pos / 8] ^= (uint64_t)*in << (8 * (k->pos % 8));
    in++, len--;
    if (++k->pos == FY_KECCAK256_RATE) {
      sha3_permute(&k->st);
      k->pos = 0;
    }
  }
  /* Whole blocks, one lane at a time. */
  while (len >= FY_KECCAK256_RATE) {
    for (size_t i = 0; i < FY_KECCAK256_RATE / 8; i++)
      k->st.a[i] ^= load64_le(in + 8 * i);
    sha3_permute(&k->st);
    in += FY_KECCAK256_RATE;
    len -= FY_KECCAK256_RATE;
  }
  /* Tail. */
  for (size_t i = 0; i < len; i++, k->pos++)
    k->st.a[k->pos / 8] ^= (uint64_t)in[i] << (8 * (k->pos % 8));
}

void fy_keccak_final(fy_keccak_t *k, uint8_t out[32])
{
  /* Keccak (pre-SHA3) multi-rate padding: 0x01 at pos, 0x80 at the last byte of the block
   * (both land in the same byte when pos == RATE-1, giving 0x81). */
  k->st.a[k->pos / 8] ^= (uint64_t)0x01 << (8 * (k->pos % 8));
  k->st.a[(FY_KECCAK256_RATE - 1) / 8] ^= (uint64_t)0x80 << (8 * ((FY_KECCAK256_RATE - 1) % 8));
  sha3_permute(&k->st);
  for (size_t i = 0; i < 32; i++)
    out[i] = (uint8_t)(k->st.a[i / 8] >> (8 * (i % 8)));
  fy_keccak_init(k);
}

void fy_keccak256(const uint8_t *in, size_t len, uint8_t out[32])
{
  fy_keccak_t k;
  fy_keccak_init(&k);
  fy_keccak_update(&k, in, len);
  fy_keccak_final(&k, out);
}
