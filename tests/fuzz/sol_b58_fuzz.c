/* ** sol_b58_fuzz.c -- libFuzzer: base58 decode is strict and bijective (what it accepts encodes
** back to the same text), and any bytes encode and decode back to themselves. */
#include "crypto/base58.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t bytes[FY_B58_MAX_IN];
  static char text[FY_B58_ENCODED_MAX(FY_B58_MAX_IN)];
  size_t len;
  if (fy_b58_decode((const char *)data, size, bytes, sizeof bytes, &len, NULL) == FY_B58_OK) {
    size_t n = fy_b58_encode(bytes, len, text, sizeof text);
    if (n != size || memcmp(text, data, size)) abort();
  }
  if (size > 0 && size <= FY_B58_MAX_IN) {
    size_t n = fy_b58_encode(data, size, text, sizeof text);
    if (n == 0) abort();
    if (fy_b58_decode(text, n, bytes, sizeof bytes, &len, NULL) != FY_B58_OK) abort();
    if (len != size || memcmp(bytes, data, size)) abort();
  }
  return 0;
}
