/* ** rlp_fuzz.c -- libFuzzer harness: strict decode, then re-encode must reproduce the input.
** Any input the decoder fully accepts is canonical, so encoding its items again must give
** back the same bytes. Built by `make fuzz-rlp` (mk/crypto.mk). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/rlp.h"

/* Re-encode it into b; returns 0, or a decode error met inside a nested list. */
static int reencode(const fy_rlp_item_t *it, fy_buf_t *b, int depth)
{
  if (!it->is_list)
    return fy_rlp_put_bytes(b, it->p, it->len);
  if (depth >= FY_RLP_MAX_DEPTH)
    return FY_RLP_EDEPTH;
  size_t mark = fy_rlp_list_begin(b);
  fy_rlp_iter_t iter;
  fy_rlp_item_t sub;
  int rc;
  fy_rlp_iter_init(&iter, it);
  while ((rc = fy_rlp_iter_next(&iter, &sub)) == 1)
    if ((rc = reencode(&sub, b, depth + 1)) != 0)
      return rc;
  return rc ? rc : fy_rlp_list_end(b, mark);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fy_rlp_item_t item;
  if (fy_rlp_decode_all(data, size, &item) != 0)
    return 0;
  int valid = fy_rlp_validate(&item, FY_RLP_MAX_DEPTH) == 0;
  fy_buf_t b = {0};
  int rc = reencode(&item, &b, 0);
  if ((rc == 0) != valid)            /* validate and a full walk must agree */
    abort();
  if (rc == 0 && (b.len != size || memcmp(b.data, data, size) != 0))
    abort();
  fy_buf_free(&b);
  return 0;
}
