/* ** crypto_test.c -- unit test of the Lua-free crypto cores: keccak, rlp, u256.
** Usage: crypto_test [vectors-dir]   (default tests/fixtures/vectors; run from the repo root)
** Exit status 0 when every check passes. Built and run by `make ctest-crypto` (mk/crypto.mk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keccak.h"
#include "crypto/rlp.h"
#include "crypto/u256.h"

static int failures, checks;

#define CHECK(cond, ...) do {                                              \
    checks++;                                                              \
    if (!(cond)) {                                                         \
      failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
    }                                                                      \
  } while (0)

static int hexval(int c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode "0x..." into a malloc'd buffer (caller frees); returns NULL on bad hex. */
static uint8_t *unhex(const char *s, size_t *n)
{
  if (s[0] == '0' && s[1] == 'x')
    s += 2;
  size_t len = strlen(s);
  if (len % 2)
    return NULL;
  uint8_t *out = malloc(len / 2 + 1);
  for (size_t i = 0; i < len / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(out);
      return NULL;
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  *n = len / 2;
  return out;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
  out += sprintf(out, "0x");
  for (size_t i = 0; i < n; i++)
    out += sprintf(out, "%02x", p[i]);
}

/* Read a fixture file of "<a> <b>" lines; calls fn for each. Returns the line count. */
static int each_line(const char *dir, const char *file, void (*fn)(char *a, char *b))
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot open %s", path);
  if (!f)
    return 0;
  size_t cap = 1 << 20;
  char *line = malloc(cap);
  int count = 0;
  while (fgets(line, (int)cap, f)) {
    line[strcspn(line, "\r\n")] = 0;
    char *sp = strchr(line, ' ');
    if (!sp)
      continue;
    *sp = 0;
    fn(line, sp + 1);
    count++;
  }
  free(line);
  fclose(f);
  return count;
}

/* ---- keccak */
static void keccak_vector(char *in_hex, char *digest_hex)
{
  size_t n, dn;
  uint8_t *in = unhex(in_hex, &n), *want = unhex(digest_hex, &dn), got[32];
  char buf[80];
  fy_keccak256(in, n, got);
  tohex(got, 32, buf);
  CHECK(dn == 32 && memcmp(got, want, 32) == 0, "keccak(%.20s..) = %s, want %s", in_hex, buf, digest_hex);
  /* incremental, in uneven chunks */
  fy_keccak_t k;
  fy_keccak_init(&k);
  for (size_t i = 0, step = 1; i < n; i += step, step = step * 3 % 151 + 1)
    fy_keccak_update(&k, in + i, i + step > n ? n - i : step);
  fy_keccak_final(&k, got);
  CHECK(memcmp(got, want, 32) == 0, "incremental keccak(%.20s..) differs", in_hex);
  free(in);
  free(want);
}


static void rlp_valid(char *name, char *hex)
{
  size_t n;
  uint8_t *in = unhex(hex, &n);
  fy_rlp_item_t it;
  int rc = fy_rlp_decode_all(in, n, &it);
  CHECK(rc == 0, "%s: decode_all: %s", name, fy_rlp_strerror(rc));
  CHECK(fy_rlp_validate(&it, FY_RLP_MAX_DEPTH) == 0, "%s: validate", name);
  fy_buf_t b = {0};
  rc = fy_rlp_reencode(&b, &it);
  CHECK(rc == 0 && b.len == n && memcmp(b.data, in, n) == 0, "%s: re-encoding differs (rc %d)", name, rc);
  fy_buf_free(&b);
  free(in);
}

static void rlp_invalid(char *name, char *hex)
{
  size_t n;
  uint8_t *in = unhex(hex, &n);
  fy_rlp_item_t it;
  int rc = fy_rlp_decode_all(in, n, &it);
  if (rc == 0)
    rc = fy_rlp_validate(&it, FY_RLP_MAX_DEPTH);
  CHECK(rc < 0, "%s: accepted invalid input %s", name, hex);
  CHECK(strcmp(fy_rlp_strerror(rc), "unknown rlp error") != 0, "%s: rc %d has no message", name, rc);
  free(in);
}

static void rlp_api(void)
{
  fy_buf_t b = {0};
  char hex[256];
  /* the doc example: [ "0xdeadbeef", [ "", [ 0x7f ] ] ] */
  size_t outer = fy_rlp_list_begin(&b);
  fy_rlp_put_bytes(&b, (const uint8_t *)"\xde\xad\xbe\xef", 4);
  size_t inner = fy_rlp_list_begin(&b);
  fy_rlp_put_bytes(&b, NULL, 0);
  size_t inner2 = fy_rlp_list_begin(&b);
  fy_rlp_put_u64(&b, 0x7f);
  CHECK(fy_rlp_list_end(&b, inner2) == 0, "list_end");
  CHECK(fy_rlp_list_end(&b, inner) == 0, "list_end");
  CHECK(fy_rlp_list_end(&b, outer) == 0, "list_end");
  tohex(b.data, b.len, hex);
  CHECK(strcmp(hex, "0xc984deadbeefc380c17f") == 0, "nested list = %s", hex);
  CHECK(fy_rlp_list_end(&b, b.len + 1) == FY_RLP_EINVAL, "mark past end");

  /* integers */
  b.len = 0;
  fy_rlp_put_u64(&b, 0);
  fy_rlp_put_u64(&b, 127);
  fy_rlp_put_u64(&b, 128);
  fy_rlp_put_u64(&b, UINT64_MAX);
  fy_rlp_put_uint(&b, (const uint8_t *)"\x00\x00\x04\x00", 4);
  fy_rlp_put_uint(&b, (const uint8_t *)"\x00\x00", 2);
  tohex(b.data, b.len, hex);
  CHECK(strcmp(hex, "0x807f818088ffffffffffffffff82040080") == 0, "integers = %s", hex);

  /* a long list (payload >= 56) gets a long header; memmove keeps the items */
  b.len = 0;
  size_t m = fy_rlp_list_begin(&b);
  for (int i = 0; i < 30; i++)
    fy_rlp_put_bytes(&b, (const uint8_t *)"ab", 2);
  fy_rlp_list_end(&b, m);
  CHECK(b.len == 92 && b.data[0] == 0xf8 && b.data[1] == 90 && b.data[2] == 0x82, "long list header");

  /* decode + iterate + get_uint */
  fy_rlp_item_t list, item;
  b.len = 0;
  m = fy_rlp_list_begin(&b);
  fy_rlp_put_u64(&b, 1024);
  fy_rlp_put_u64(&b, 0);
  fy_rlp_put_bytes(&b, (const uint8_t *)"\x00\x01", 2);   /* leading zero: not an integer */
  fy_rlp_list_end(&b, m);
  CHECK(fy_rlp_decode_all(b.data, b.len, &list) == 0 && list.is_list, "decode list");
  fy_rlp_iter_t it;
  fy_rlp_iter_init(&it, &list);
  uint8_t be[32];
  size_t n;
  uint64_t v;
  CHECK(fy_rlp_iter_next(&it, &item) == 1 && fy_rlp_get_u64(&item, &v) == 0 && v == 1024, "1024");
  CHECK(fy_rlp_iter_next(&it, &item) == 1 && fy_rlp_get_uint(&item, be, 32, &n) == 0 && n == 0, "0");
  CHECK(fy_rlp_iter_next(&it, &item) == 1 && fy_rlp_get_uint(&item, be, 32, &n) == FY_RLP_EINTZERO, "leading zero int");
  CHECK(fy_rlp_iter_next(&it, &item) == 0, "end of list");
  CHECK(fy_rlp_get_uint(&list, be, 32, &n) == FY_RLP_EEXPECTEDSTR, "list as int");
  item.p = (const uint8_t *)"\x01\x02\x03";
  item.len = 3;
  item.is_list = 0;
  CHECK(fy_rlp_get_uint(&item, be, 2, &n) == FY_RLP_EINTRANGE, "int too big");
  CHECK(fy_rlp_decode(b.data, 0, &item, NULL) == FY_RLP_EEMPTY, "empty");

  /* depth: 65 levels of lists fail validation at 64 */
  b.len = 0;
  size_t marks[65];
  for (int i = 0; i < 65; i++)
    marks[i] = fy_rlp_list_begin(&b);
  for (int i = 64; i >= 0; i--)
    fy_rlp_list_end(&b, marks[i]);
  CHECK(fy_rlp_decode_all(b.data, b.len, &list) == 0, "deep decode (shallow)");
  CHECK(fy_rlp_validate(&list, 64) == FY_RLP_EDEPTH, "deep validate");
  CHECK(fy_rlp_validate(&list, 65) == 0, "deep validate 65");
  fy_buf_free(&b);
}

/* ---- u256 */
static fy_u256_t U(const char *s)
{
  fy_u256_t r;
  int rc = fy_u256_parse(&r, s, strlen(s));
  CHECK(rc == 0, "parse %s: %s", s, fy_u256_strerror(rc));
  return r;
}

static void u256_api(void)
{
  const char *MAX = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
  char dec[FY_U256_DEC_SIZE], hex[FY_U256_HEX_SIZE], units[FY_U256_DEC_SIZE + 2];
  fy_u256_t max = U(MAX), one = U("1"), zero = U("0"), r, q, m;
  fy_u256_to_dec(&max, dec);
  CHECK(strcmp(dec, MAX) == 0, "max dec = %s", dec);
  fy_u256_to_hex(&max, hex);
  CHECK(strcmp(hex, "0x" "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff") == 0, "hex %s", hex);
  fy_u256_to_hex(&zero, hex);
  CHECK(strcmp(hex, "0x0") == 0, "zero hex %s", hex);
  fy_u256_to_dec(&zero, dec);
  CHECK(strcmp(dec, "0") == 0, "zero dec %s", dec);
  CHECK(fy_u256_add(&r, &max, &one) == FY_U256_EOVERFLOW && fy_u256_is_zero(&r), "max+1 wraps and reports");
  CHECK(fy_u256_sub(&r, &zero, &one) == FY_U256_EUNDERFLOW && fy_u256_cmp(&r, &max) == 0, "0-1");
  CHECK(fy_u256_mul(&r, &max, &max) == FY_U256_EOVERFLOW, "max*max");
  CHECK(fy_u256_mul(&r, &max, &one) == 0 && fy_u256_cmp(&r, &max) == 0, "max*1");
  CHECK(fy_u256_divmod(&q, &m, &max, &zero) == FY_U256_EDIVZERO, "div by zero");
  fy_u256_t big = U("0x100000000000000000000000000000001");   /* 2^128 + 1 */
  CHECK(fy_u256_divmod(&q, &m, &max, &big) == 0, "divmod");
  fy_u256_t back;
  fy_u256_mul(&back, &q, &big);
  fy_u256_add(&back, &back, &m);
  CHECK(fy_u256_cmp(&back, &max) == 0 && fy_u256_cmp(&m, &big) < 0, "q*b+m == a");
  fy_u256_t two = U("2"), e255 = U("255"), e256 = U("256");
  CHECK(fy_u256_pow(&r, &two, &e255) == 0 && r.w[3] == (uint64_t)1 << 63, "2^255");
  CHECK(fy_u256_pow(&r, &two, &e256) == FY_U256_EOVERFLOW, "2^256");
  CHECK(fy_u256_parse(&r, "0x", 2) == FY_U256_ESYNTAX, "0x alone");
  CHECK(fy_u256_parse(&r, "", 0) == FY_U256_ESYNTAX, "empty");
  CHECK(fy_u256_parse(&r, "-1", 2) == FY_U256_ESYNTAX, "negative");
  CHECK(fy_u256_parse(&r, "115792089237316195423570985008687907853269984665640564039457584007913129639936", 78)
        == FY_U256_EOVERFLOW, "2^256 dec");
  uint8_t be[32];
  fy_u256_to_be(&big, be);
  fy_u256_from_be(&r, be);
  CHECK(fy_u256_cmp(&r, &big) == 0 && be[15] == 1 && be[31] == 1, "be round trip");
  CHECK(fy_u256_parse_units(&r, "1.5", 3, 18) == 0, "parse_units");
  fy_u256_to_dec(&r, dec);
  CHECK(strcmp(dec, "1500000000000000000") == 0, "1.5 ether = %s", dec);
  fy_u256_format_units(&r, 18, units);
  CHECK(strcmp(units, "1.5") == 0, "format_units = %s", units);
  CHECK(fy_u256_parse_units(&r, "1.0000000000000000001", 21, 18) == FY_U256_EDECIMALS, "too many decimals");
  fy_u256_format_units(&max, 77, units);
  CHECK(strcmp(units, "1.15792089237316195423570985008687907853269984665640564039457584007913129639935") == 0,
        "format max/1e77 = %s", units);
  fy_u256_format_units(&one, 77, units);
  CHECK(strlen(units) == 79 && units[78] == '1', "format 1e-77 = %s", units);
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : "tests/fixtures/vectors";
  CHECK(each_line(dir, "keccak.txt", keccak_vector) >= 10, "keccak vectors");
  CHECK(each_line(dir, "rlp_valid.txt", rlp_valid) >= 30, "rlp valid vectors");
  CHECK(each_line(dir, "rlp_invalid.txt", rlp_invalid) >= 20, "rlp invalid vectors");
  rlp_api();
  u256_api();
  printf("crypto_test: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
