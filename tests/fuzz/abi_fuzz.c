/* ** abi_fuzz.c -- libFuzzer: ABI type parser, strict decoder, decode->encode->decode stability */
#include "crypto/abi.h"

#include <stdlib.h>
#include <string.h>

static const char *const types[] = {
  "uint256,uint256,address[],address,uint256",
  "(uint256,address[])[],string,int8,bytes3,bool,uint16[2]",
  "bytes,string,bytes32[]",
  "(uint8,(bytes,int64)[2])[][],bool",
  "string[3],uint256[][2]",
  "uint256[][],bytes[2][],(bool)[1]",
  "int256,int24,uint160,bytes1",
};
#define NTYPES (sizeof types / sizeof *types)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fy_abi_type_t *t = NULL;
  fy_abi_value_t *v = NULL, *v2 = NULL;
  fy_buf_t b = {0}, b2 = {0};
  fy_abi_revert_t rv;
  if (size == 0) return 0;
  if (data[0] == 0xff) { /* type / signature text */
    fy_abi_sig_t sig;
    if (fy_abi_type_parse((const char *)data + 1, size - 1, &t) == FY_ABI_OK) {
      if (fy_abi_type_canonical(t, &b) == FY_ABI_OK) {
        fy_abi_type_t *t2 = NULL;
        /* the canonical text parses back to the same canonical text */
        if (fy_abi_type_parse((const char *)b.data, b.len, &t2) != FY_ABI_OK) abort();
        if (fy_abi_type_canonical(t2, &b2) != FY_ABI_OK || b2.len != b.len || memcmp(b.data, b2.data, b.len)) abort();
        fy_abi_type_free(t2);
      }
      fy_abi_type_free(t);
    }
    if (fy_abi_sig_parse((const char *)data + 1, size - 1, &sig) == FY_ABI_OK) fy_abi_sig_free(&sig);
    goto out;
  }
  if (data[0] == 0xfe) {
    if (fy_abi_decode_revert(data + 1, size - 1, &rv) == FY_ABI_OK && rv.kind == FY_ABI_REVERT_PANIC)
      (void)fy_abi_panic_reason(rv.code);
    goto out;
  }
  const char *ts = types[data[0] % NTYPES];
  if (fy_abi_types_parse(ts, strlen(ts), &t) != FY_ABI_OK) abort();
  if (fy_abi_decode(t, data + 1, size - 1, &v) == FY_ABI_OK) {
    /* anything accepted re-encodes; the canonical form is a fixed point */
    if (fy_abi_encode(t, v, &b) != FY_ABI_OK) abort();
    if (fy_abi_decode(t, b.data, b.len, &v2) != FY_ABI_OK) abort();
    if (fy_abi_encode(t, v2, &b2) != FY_ABI_OK) abort();
    if (b.len != b2.len || memcmp(b.data, b2.data, b.len)) abort();
  }
  fy_abi_value_free(v);
  fy_abi_value_free(v2);
  fy_abi_type_free(t);
out:
  fy_buf_free(&b);
  fy_buf_free(&b2);
  return 0;
}
