/* base58.c -- see base58.h. */
#include "crypto/base58.h"

#include <string.h>

static const char ALPHABET[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* The digit value of c, or -1 (NUL is not a digit, though strchr finds the terminator). */
static int digit(unsigned char c) {
  const char *p = c ? strchr(ALPHABET, c) : NULL;
  return p ? (int)(p - ALPHABET) : -1;
}

size_t fy_b58_encode(const uint8_t *in, size_t n, char *out, size_t cap) {
  if (n > FY_B58_MAX_IN || cap < FY_B58_ENCODED_MAX(n)) return 0;
  size_t zeros = 0;
  while (zeros < n && in[zeros] == 0) zeros++;
  /* base-58 digits, least significant first */
  uint8_t digits[FY_B58_ENCODED_MAX(FY_B58_MAX_IN)];
  size_t nd = 0;
  for (size_t i = zeros; i < n; i++) {
    unsigned carry = in[i];
    for (size_t j = 0; j < nd; j++) {
      carry += (unsigned)digits[j] << 8;
      digits[j] = (uint8_t)(carry % 58);
      carry /= 58;
    }
    while (carry) {
      digits[nd++] = (uint8_t)(carry % 58);
      carry /= 58;
    }
  }
  size_t len = 0;
  for (size_t i = 0; i < zeros; i++) out[len++] = '1';
  while (nd) out[len++] = ALPHABET[digits[--nd]];
  out[len] = '\0';
  return len;
}

int fy_b58_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen, size_t *bad) {
  if (n == 0) return FY_B58_EEMPTY;
  if (n > FY_B58_ENCODED_MAX(FY_B58_MAX_IN)) return FY_B58_ELONG;
  size_t ones = 0;
  while (ones < n && s[ones] == '1') ones++;
  /* bytes of the value, least significant first */
  uint8_t bytes[FY_B58_MAX_IN + 1];
  size_t nb = 0;
  for (size_t i = ones; i < n; i++) {
    int d = digit((unsigned char)s[i]);
    if (d < 0) {
      if (bad) *bad = i;
      return FY_B58_ECHAR;
    }
    unsigned carry = (unsigned)d;
    for (size_t j = 0; j < nb; j++) {
      carry += (unsigned)bytes[j] * 58;
      bytes[j] = (uint8_t)carry;
      carry >>= 8;
    }
    while (carry) {
      if (nb == sizeof bytes) return FY_B58_ELONG;
      bytes[nb++] = (uint8_t)carry;
      carry >>= 8;
    }
  }
  if (ones + nb > cap) return FY_B58_ELONG;
  memset(out, 0, ones);
  for (size_t i = 0; i < nb; i++) out[ones + i] = bytes[nb - 1 - i];
  *outlen = ones + nb;
  return FY_B58_OK;
}
