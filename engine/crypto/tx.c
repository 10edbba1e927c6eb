/* ** tx.c -- legacy (EIP-155) and EIP-1559 transactions: RLP encode, sign, strict decode */
#include "crypto/tx.h"
#include "crypto/keccak.h"
#include "crypto/rlp.h"
#include "crypto/secp.h"

#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;


const char *fy_tx_strerror(int rc) {
  switch (rc) {
  case FY_TX_OK: return "ok";
  case FY_TX_ENOMEM: return "out of memory";
  case FY_TX_ETYPE: return "unsupported transaction type";
  case FY_TX_ERLP: return "malformed transaction rlp";
  case FY_TX_EFIELDS: return "wrong transaction fields";
  case FY_TX_EINT: return "non-canonical or out-of-range integer field";
  case FY_TX_ETO: return "bad address field";
  case FY_TX_EACCESS: return "malformed access list";
  case FY_TX_ESIG: return "invalid transaction signature";
  case FY_TX_EKEY: return "invalid private key";
  case FY_TX_EINVAL: return "invalid transaction";
  default: return "unknown transaction error";
  }
}

/* ------------------------------------------------------------------ encoding */

static int put_u256(fy_buf_t *b, const fy_u256_t *v) {
  uint8_t be[32];
  fy_u256_to_be(v, be);
  return fy_rlp_put_uint(b, be, 32);
}

static int put_u128(fy_buf_t *b, u128 v) {
  uint8_t be[16];
  for (int i = 0; i < 16; i++) be[15 - i] = (uint8_t)(v >> (8 * i));
  return fy_rlp_put_uint(b, be, 16);
}

/* the fields shared by both types from `to` through `data` */
static int put_to_value_data(fy_buf_t *b, const fy_tx_t *tx) {
  if (fy_rlp_put_bytes(b, tx->to, tx->has_to ? 20 : 0)) return -1;
  if (put_u256(b, &tx->value)) return -1;
  return fy_rlp_put_bytes(b, tx->data, tx->data_len);
}

static int put_access_list(fy_buf_t *b, const fy_tx_t *tx) {
  size_t outer = fy_rlp_list_begin(b);
  for (size_t i = 0; i < tx->access_len; i++) {
    const fy_tx_access_t *e = &tx->access_list[i];
    size_t m = fy_rlp_list_begin(b);
    if (fy_rlp_put_bytes(b, e->address, 20)) return -1;
    size_t k = fy_rlp_list_begin(b);
    for (size_t j = 0; j < e->n_keys; j++)
      if (fy_rlp_put_bytes(b, e->keys[j], 32)) return -1;
    if (fy_rlp_list_end(b, k) || fy_rlp_list_end(b, m)) return -1;
  }
  return fy_rlp_list_end(b, outer);
}

static int check_tx(const fy_tx_t *tx) {
  if (tx->type != FY_TX_LEGACY && tx->type != FY_TX_EIP1559) return FY_TX_EINVAL;
  if (tx->data_len && !tx->data) return FY_TX_EINVAL;
  if (tx->type == FY_TX_LEGACY && tx->access_len) return FY_TX_EINVAL;
  if (tx->access_len && !tx->access_list) return FY_TX_EINVAL;
  for (size_t i = 0; i < tx->access_len; i++)
    if (tx->access_list[i].n_keys && !tx->access_list[i].keys) return FY_TX_EINVAL;
  return FY_TX_OK;
}

/* signed = 0: unsigned payload; 1: with signature */
static int encode(const fy_tx_t *tx, int with_sig, fy_buf_t *b) {
  int rc = check_tx(tx);
  size_t mark;
  if (rc) return rc;
  if (with_sig && tx->y_parity != 0 && tx->y_parity != 1) return FY_TX_ESIG;
  if (tx->type == FY_TX_EIP1559) {
    static const uint8_t type2 = 0x02;
    if (fy_buf_put(b, &type2, 1)) return FY_TX_ENOMEM;
    mark = fy_rlp_list_begin(b);
    if (fy_rlp_put_u64(b, tx->chain_id) || fy_rlp_put_u64(b, tx->nonce) ||
        put_u256(b, &tx->max_priority_fee) || put_u256(b, &tx->max_fee) ||
        fy_rlp_put_u64(b, tx->gas) || put_to_value_data(b, tx) || put_access_list(b, tx))
      return FY_TX_ENOMEM;
    if (with_sig && (fy_rlp_put_u64(b, (uint64_t)tx->y_parity) || fy_rlp_put_uint(b, tx->r, 32) ||
                     fy_rlp_put_uint(b, tx->s, 32)))
      return FY_TX_ENOMEM;
  } else {
    mark = fy_rlp_list_begin(b);
    if (fy_rlp_put_u64(b, tx->nonce) || put_u256(b, &tx->gas_price) || fy_rlp_put_u64(b, tx->gas) ||
        put_to_value_data(b, tx))
      return FY_TX_ENOMEM;
    if (with_sig) {
      u128 v = tx->has_chain_id ? (u128)tx->chain_id * 2 + 35 + (unsigned)tx->y_parity
                                : (u128)(27 + tx->y_parity);
      if (put_u128(b, v) || fy_rlp_put_uint(b, tx->r, 32) || fy_rlp_put_uint(b, tx->s, 32))
        return FY_TX_ENOMEM;
    } else if (tx->has_chain_id) {
      if (fy_rlp_put_u64(b, tx->chain_id) || fy_rlp_put_u64(b, 0) || fy_rlp_put_u64(b, 0))
        return FY_TX_ENOMEM;
    }
  }
  return fy_rlp_list_end(b, mark) ? FY_TX_ENOMEM : FY_TX_OK;
}

int fy_tx_encode_unsigned(const fy_tx_t *tx, fy_buf_t *out) { return encode(tx, 0, out); }

int fy_tx_encode_signed(const fy_tx_t *tx, fy_buf_t *out) { return encode(tx, 1, out); }

int fy_tx_signing_hash(const fy_tx_t *tx, uint8_t hash[32]) {
  fy_buf_t b = {0};
  int rc = encode(tx, 0, &b);
  if (rc == FY_TX_OK) fy_keccak256(b.data, b.len, hash);
  fy_buf_free(&b);
  return rc;
}

int fy_tx_sign(fy_tx_t *tx, const uint8_t key[32], fy_buf_t *raw, uint8_t hash[32]) {
  uint8_t h[32];
  size_t start = raw->len;
  int rc = fy_tx_signing_hash(tx, h);
  if (rc) return rc;
  rc = fy_secp_sign(h, key, tx->r, tx->s, &tx->y_parity);
  if (rc) return rc == FY_SECP_EKEY ? FY_TX_EKEY : FY_TX_EINVAL;
  if ((rc = encode(tx, 1, raw))) return rc;
  if (hash) fy_keccak256(raw->data + start, raw->len - start, hash);
  return FY_TX_OK;
}

int fy_tx_sender(const fy_tx_t *tx, uint8_t addr[20]) {
  uint8_t h[32];
  int rc = fy_tx_signing_hash(tx, h);
  if (rc) return rc;
  return fy_secp_recover_address(h, tx->r, tx->s, tx->y_parity, addr) ? FY_TX_ESIG : FY_TX_OK;
}

/* ------------------------------------------------------------------ decoding */

void fy_tx_free(fy_tx_t *tx) {
  free(tx->owned_);
  tx->owned_ = NULL;
  tx->access_list = NULL;
  tx->access_len = 0;
}

static int map_rlp(int rc) {
  switch (rc) {
  case FY_RLP_ENOMEM: return FY_TX_ENOMEM;
  case FY_RLP_EEXPECTEDSTR: return FY_TX_EFIELDS;
  case FY_RLP_EINTZERO:
  case FY_RLP_EINTRANGE: return FY_TX_EINT;
  default: return FY_TX_ERLP;
  }
}

/* the next item of it, which must exist */
static int next(fy_rlp_iter_t *it, fy_rlp_item_t *out) {
  int rc = fy_rlp_iter_next(it, out);
  if (rc == 1) return FY_TX_OK;
  return rc == 0 ? FY_TX_EFIELDS : map_rlp(rc);
}

static int get_u64(fy_rlp_iter_t *it, uint64_t *v) {
  fy_rlp_item_t item;
  int rc = next(it, &item);
  if (rc) return rc;
  return (rc = fy_rlp_get_u64(&item, v)) ? map_rlp(rc) : FY_TX_OK;
}

static int get_u256(fy_rlp_iter_t *it, fy_u256_t *v) {
  fy_rlp_item_t item;
  uint8_t be[32];
  size_t n;
  int rc = next(it, &item);
  if (rc) return rc;
  if ((rc = fy_rlp_get_uint(&item, be, 32, &n))) return map_rlp(rc);
  fy_u256_from_be_n(v, be, n);
  return FY_TX_OK;
}

/* r or s: canonical integer, 1..n-1, left-padded to 32 bytes */
static int get_sig_word(fy_rlp_iter_t *it, uint8_t w[32]) {
  fy_rlp_item_t item;
  uint8_t be[32];
  size_t n;
  int rc = next(it, &item);
  if (rc) return rc;
  if ((rc = fy_rlp_get_uint(&item, be, 32, &n))) return rc == FY_RLP_EINTRANGE ? FY_TX_ESIG : map_rlp(rc);
  if (n == 0) return FY_TX_ESIG;
  memset(w, 0, 32);
  memcpy(w + 32 - n, be, n);
  return memcmp(w, fy_secp_order_n, 32) < 0 ? FY_TX_OK : FY_TX_ESIG;
}

static int get_to_value_data(fy_rlp_iter_t *it, fy_tx_t *tx) {
  fy_rlp_item_t item;
  int rc = next(it, &item);
  if (rc) return rc;
  if (item.is_list) return FY_TX_EFIELDS;
  if (item.len == 20) {
    tx->has_to = 1;
    memcpy(tx->to, item.p, 20);
  } else if (item.len != 0) {
    return FY_TX_ETO;
  }
  if ((rc = get_u256(it, &tx->value))) return rc;
  if ((rc = next(it, &item))) return rc;
  if (item.is_list) return FY_TX_EFIELDS;
  tx->data = item.len ? item.p : NULL;
  tx->data_len = item.len;
  return FY_TX_OK;
}

/* two passes over the access list: count, then fill one allocation */
static int get_access_list(fy_rlp_iter_t *it, fy_tx_t *tx) {
  fy_rlp_item_t list, entry, addr, keys, key;
  fy_rlp_iter_t ie, ik, ikk;
  size_t n_entries = 0, n_keys = 0;
  int rc = next(it, &list);
  if (rc) return rc;
  if (!list.is_list) return FY_TX_EACCESS;
  for (int pass = 0; pass < 2; pass++) {
    fy_tx_access_t *entries = tx->owned_;
    uint8_t (*keybuf)[32] = entries ? (uint8_t(*)[32])(entries + n_entries) : NULL;
    size_t ei = 0, ki = 0;
    fy_rlp_iter_init(&ie, &list);
    while ((rc = fy_rlp_iter_next(&ie, &entry)) == 1) {
      if (!entry.is_list) return FY_TX_EACCESS;
      fy_rlp_iter_init(&ik, &entry);
      if (fy_rlp_iter_next(&ik, &addr) != 1 || addr.is_list || addr.len != 20) return FY_TX_EACCESS;
      if (fy_rlp_iter_next(&ik, &keys) != 1 || !keys.is_list) return FY_TX_EACCESS;
      if (fy_rlp_iter_next(&ik, &key) != 0) return FY_TX_EACCESS;
      size_t first = ki;
      fy_rlp_iter_init(&ikk, &keys);
      while ((rc = fy_rlp_iter_next(&ikk, &key)) == 1) {
        if (key.is_list || key.len != 32) return FY_TX_EACCESS;
        if (entries) memcpy(keybuf[ki], key.p, 32);
        ki++;
      }
      if (rc < 0) return FY_TX_EACCESS;
      if (entries) {
        memcpy(entries[ei].address, addr.p, 20);
        entries[ei].keys = (const uint8_t(*)[32])(ki > first ? keybuf[first] : NULL);
        entries[ei].n_keys = ki - first;
      }
      ei++;
    }
    if (rc < 0) return FY_TX_EACCESS;
    if (pass == 0) {
      n_entries = ei;
      n_keys = ki;
      if (!n_entries) break;
      /* sizes are bounded by the input length, no overflow */
      tx->owned_ = malloc(n_entries * sizeof(fy_tx_access_t) + n_keys * 32);
      if (!tx->owned_) return FY_TX_ENOMEM;
    }
  }
  tx->access_list = tx->owned_;
  tx->access_len = n_entries;
  return FY_TX_OK;
}

static int decode_1559(const fy_rlp_item_t *list, fy_tx_t *tx) {
  fy_rlp_iter_t it;
  fy_rlp_item_t extra;
  uint64_t yp;
  int rc;
  tx->type = FY_TX_EIP1559;
  tx->has_chain_id = 1;
  fy_rlp_iter_init(&it, list);
  if ((rc = get_u64(&it, &tx->chain_id)) || (rc = get_u64(&it, &tx->nonce)) ||
      (rc = get_u256(&it, &tx->max_priority_fee)) || (rc = get_u256(&it, &tx->max_fee)) ||
      (rc = get_u64(&it, &tx->gas)) || (rc = get_to_value_data(&it, tx)) ||
      (rc = get_access_list(&it, tx)))
    return rc;
  if ((rc = get_u64(&it, &yp))) return rc == FY_TX_EINT ? FY_TX_ESIG : rc;
  if (yp > 1) return FY_TX_ESIG;
  tx->y_parity = (int)yp;
  if ((rc = get_sig_word(&it, tx->r)) || (rc = get_sig_word(&it, tx->s))) return rc;
  rc = fy_rlp_iter_next(&it, &extra);
  return rc == 0 ? FY_TX_OK : rc == 1 ? FY_TX_EFIELDS : map_rlp(rc);
}

static int decode_legacy(const fy_rlp_item_t *list, fy_tx_t *tx) {
  fy_rlp_iter_t it;
  fy_rlp_item_t item;
  uint8_t be[32];
  size_t n;
  u128 v = 0;
  int rc;
  tx->type = FY_TX_LEGACY;
  fy_rlp_iter_init(&it, list);
  if ((rc = get_u64(&it, &tx->nonce)) || (rc = get_u256(&it, &tx->gas_price)) ||
      (rc = get_u64(&it, &tx->gas)) || (rc = get_to_value_data(&it, tx)))
    return rc;
  if ((rc = next(&it, &item))) return rc;
  if ((rc = fy_rlp_get_uint(&item, be, 32, &n))) return rc == FY_RLP_EINTRANGE ? FY_TX_ESIG : map_rlp(rc);
  if (n > 16) return FY_TX_ESIG;
  for (size_t i = 0; i < n; i++) v = v << 8 | be[i];
  if (v == 27 || v == 28) {
    tx->has_chain_id = 0;
    tx->y_parity = (int)(v - 27);
  } else if (v >= 35) {
    u128 c = (v - 35) / 2;
    if (c > UINT64_MAX) return FY_TX_ESIG;
    tx->has_chain_id = 1;
    tx->chain_id = (uint64_t)c;
    tx->y_parity = (int)((v - 35) & 1);
  } else {
    return FY_TX_ESIG;
  }
  if ((rc = get_sig_word(&it, tx->r)) || (rc = get_sig_word(&it, tx->s))) return rc;
  rc = fy_rlp_iter_next(&it, &item);
  return rc == 0 ? FY_TX_OK : rc == 1 ? FY_TX_EFIELDS : map_rlp(rc);
}

int fy_tx_decode(const uint8_t *raw, size_t len, fy_tx_t *tx) {
  fy_rlp_item_t list;
  int rc;
  memset(tx, 0, sizeof *tx);
  if (len == 0) return FY_TX_ERLP;
  if (raw[0] == 0x02) {
    if ((rc = fy_rlp_decode_all(raw + 1, len - 1, &list))) return map_rlp(rc);
    if (!list.is_list) return FY_TX_ERLP;
    rc = decode_1559(&list, tx);
  } else if (raw[0] >= 0xc0) {
    if ((rc = fy_rlp_decode_all(raw, len, &list))) return map_rlp(rc);
    rc = decode_legacy(&list, tx);
  } else {
    return FY_TX_ETYPE;
  }
  if (rc == FY_TX_OK && !fy_secp_is_low_s(tx->s)) rc = FY_TX_ESIG;
  if (rc) {
    fy_tx_free(tx);
    memset(tx, 0, sizeof *tx);
  }
  return rc;
}
