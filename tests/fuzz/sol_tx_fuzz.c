/* ** sol_tx_fuzz.c -- libFuzzer: the Solana wire decoder is strict, so anything it accepts
** re-encodes from its fields to the very same bytes. */
#include "crypto/sol.h"

#include <stdlib.h>
#include <string.h>

static void put(fy_buf_t *b, const void *p, size_t n) {
  if (fy_buf_put(b, p, n)) abort();
}

static void vec(fy_buf_t *b, size_t n) {
  if (fy_sol_shortvec_put(b, (unsigned)n)) abort();
}

static void encode(const fy_sol_tx_t *tx, fy_buf_t *b) {
  const fy_sol_message_t *m = &tx->msg;
  vec(b, tx->n_signatures);
  put(b, tx->signatures, 64 * tx->n_signatures);
  if (m->version == 0) put(b, "\x80", 1);
  uint8_t header[3] = {(uint8_t)m->n_signatures, (uint8_t)m->n_readonly_signed, (uint8_t)m->n_readonly_unsigned};
  put(b, header, 3);
  vec(b, m->n_keys);
  put(b, m->keys, 32 * m->n_keys);
  put(b, m->blockhash, 32);
  vec(b, m->n_ixs);
  for (size_t i = 0; i < m->n_ixs; i++) {
    uint8_t p = (uint8_t)m->ixs[i].program_index;
    put(b, &p, 1);
    vec(b, m->ixs[i].n_accounts);
    put(b, m->ixs[i].accounts, m->ixs[i].n_accounts);
    vec(b, m->ixs[i].data_len);
    put(b, m->ixs[i].data, m->ixs[i].data_len);
  }
  if (m->version != 0) return;
  vec(b, m->n_lookups);
  for (size_t i = 0; i < m->n_lookups; i++) {
    put(b, m->lookups[i].key, 32);
    vec(b, m->lookups[i].n_writable);
    put(b, m->lookups[i].writable, m->lookups[i].n_writable);
    vec(b, m->lookups[i].n_readonly);
    put(b, m->lookups[i].readonly, m->lookups[i].n_readonly);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fy_sol_tx_t tx;
  if (fy_sol_tx_decode(data, size, &tx) != FY_SOL_OK) return 0;
  fy_buf_t b = {0};
  encode(&tx, &b);
  if (b.len != size || memcmp(b.data, data, size)) abort();
  fy_sol_tx_free(&tx);
  fy_buf_free(&b);
  return 0;
}
