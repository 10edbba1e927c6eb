/* ** tx_fuzz.c -- libFuzzer: strict tx decoder; anything accepted re-encodes to the same bytes */
#include "crypto/tx.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fy_tx_t tx;
  fy_buf_t b = {0};
  uint8_t from[20];
  if (fy_tx_decode(data, size, &tx) != FY_TX_OK) return 0;
  if (fy_tx_encode_signed(&tx, &b) != FY_TX_OK) abort();
  if (b.len != size || memcmp(b.data, data, size)) abort(); /* strict => canonical => identical */
  (void)fy_tx_sender(&tx, from);                             /* may fail (no point), never crash */
  fy_tx_free(&tx);
  fy_buf_free(&b);
  return 0;
}
