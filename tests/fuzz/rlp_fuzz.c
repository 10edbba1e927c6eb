/* ** rlp_fuzz.c -- libFuzzer harness: strict decode, then re-encode must reproduce the input.
** Any input the decoder fully accepts is canonical, so encoding its items again must give
** back the same bytes. Built by `make fuzz-rlp` (mk/crypto.mk). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/rlp.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fy_rlp_item_t item;
  if (fy_rlp_decode_all(data, size, &item) != 0)
    return 0;
  int valid = fy_rlp_validate(&item, FY_RLP_MAX_DEPTH) == 0;
  fy_buf_t b = {0};
  int rc = fy_rlp_reencode(&b, &item);
  if ((rc == 0) != valid)            /* validate and a full walk must agree */
    abort();
  if (rc == 0 && (b.len != size || memcmp(b.data, data, size) != 0))
    abort();
  fy_buf_free(&b);
  return 0;
}
