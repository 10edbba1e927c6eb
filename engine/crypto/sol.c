/* sol.c -- see sol.h. */
#include "crypto/sol.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ed25519.h"

#define MAX_KEYS 256 /* account indices are one byte */

const char *fy_sol_strerror(int rc) {
  switch (rc) {
  case FY_SOL_OK: return "ok";
  case FY_SOL_ENOMEM: return "out of memory";
  case FY_SOL_ETRUNC: return "truncated transaction";
  case FY_SOL_ESHORTVEC: return "malformed compact-u16 length";
  case FY_SOL_EVERSION: return "unsupported message version";
  case FY_SOL_EHEADER: return "message header does not fit its keys or signatures";
  case FY_SOL_EINDEX: return "instruction index out of range";
  case FY_SOL_ETRAILING: return "trailing bytes after the transaction";
  case FY_SOL_ETOOMANY: return "too many account keys (over 256) or lookup index over 255";
  case FY_SOL_ETOOBIG: return "transaction too large (over 1232 bytes)";
  case FY_SOL_EINVAL: return "invalid message: missing fee payer, blockhash or program, or lookup tables on a legacy message";
  case FY_SOL_ESEEDS: return "too many seeds (16 at most) or a seed over 32 bytes";
  case FY_SOL_EONCURVE: return "the seeds give an address on the ed25519 curve";
  case FY_SOL_ENOBUMP: return "no bump seed gives an address off the curve";
  case FY_SOL_ELOOKUP: return "an address-table lookup with no index";
  default: return "unknown solana error";
  }
}

/* ---- compact-u16 -------------------------------------------------------------------------- */

int fy_sol_shortvec_put(fy_buf_t *b, unsigned v) {
  if (v > 0xffff) return FY_SOL_EINVAL;
  uint8_t tmp[3];
  size_t n = 0;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    tmp[n++] = v ? (byte | 0x80) : byte;
  } while (v);
  return fy_buf_put(b, tmp, n) ? FY_SOL_ENOMEM : FY_SOL_OK;
}

int fy_sol_shortvec_get(const uint8_t *p, size_t n, size_t *pos, unsigned *v) {
  unsigned value = 0;
  for (unsigned i = 0; i < 3; i++) {
    if (*pos >= n) return FY_SOL_ETRUNC;
    uint8_t byte = p[(*pos)++];
    /* a zero continuation byte would give a second spelling of the same value */
    if (i > 0 && byte == 0) return FY_SOL_ESHORTVEC;
    value |= (unsigned)(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) {
      if (value > 0xffff) return FY_SOL_ESHORTVEC;
      *v = value;
      return FY_SOL_OK;
    }
    if (i == 2) return FY_SOL_ESHORTVEC; /* a third byte may not continue */
  }
  return FY_SOL_ESHORTVEC;
}

/* ---- the compiler ------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *key;
  int signer, writable, invoked, drained;
} keymeta_t;

typedef struct {
  keymeta_t *v;
  size_t n, cap;
} keys_t;

/* web3.js's CompiledKeys: a Map in insertion order, flags OR-ed across appearances. */
static keymeta_t *key_get(keys_t *ks, const uint8_t *key) {
  for (size_t i = 0; i < ks->n; i++)
    if (memcmp(ks->v[i].key, key, 32) == 0) return &ks->v[i];
  if (ks->n == ks->cap) {
    size_t cap = ks->cap ? ks->cap * 2 : 16;
    keymeta_t *v = realloc(ks->v, cap * sizeof *v);
    if (!v) return NULL;
    ks->v = v, ks->cap = cap;
  }
  keymeta_t *m = &ks->v[ks->n++];
  memset(m, 0, sizeof *m);
  m->key = key;
  return m;
}

static int collect_keys(const fy_sol_msg_spec_t *spec, keys_t *ks) {
  keymeta_t *payer = key_get(ks, spec->payer);
  if (!payer) return FY_SOL_ENOMEM;
  payer->signer = payer->writable = 1;
  for (size_t i = 0; i < spec->n_ixs; i++) {
    const fy_sol_ix_t *ix = &spec->ixs[i];
    if (!ix->program) return FY_SOL_EINVAL;
    keymeta_t *prog = key_get(ks, ix->program);
    if (!prog) return FY_SOL_ENOMEM;
    prog->invoked = 1;
    for (size_t j = 0; j < ix->n_accounts; j++) {
      keymeta_t *m = key_get(ks, ix->accounts[j].pubkey);
      if (!m) return FY_SOL_ENOMEM;
      m->signer |= !!ix->accounts[j].signer;
      m->writable |= !!ix->accounts[j].writable;
    }
  }
  return FY_SOL_OK;
}

/* The final account list: static keys in four groups, then every table's writable lookups,
** then every table's readonly lookups (MessageAccountKeys' order). */
typedef struct {
  const uint8_t *keys[MAX_KEYS];
  size_t n_static, n;
  unsigned n_sig, n_ro_signed, n_ro_unsigned;
} layout_t;

static int layout_push(layout_t *lo, const uint8_t *key) {
  if (lo->n == MAX_KEYS) return FY_SOL_ETOOMANY;
  lo->keys[lo->n++] = key;
  return FY_SOL_OK;
}

static int layout_static(const keys_t *ks, layout_t *lo) {
  int rc;
  for (int group = 0; group < 4; group++) {
    int signer = group < 2, writable = group % 2 == 0;
    for (size_t i = 0; i < ks->n; i++) {
      const keymeta_t *m = &ks->v[i];
      if (m->drained || m->signer != signer || m->writable != writable) continue;
      if ((rc = layout_push(lo, m->key))) return rc;
      if (group == 0 || group == 1) lo->n_sig++;
      if (group == 1) lo->n_ro_signed++;
      if (group == 3) lo->n_ro_unsigned++;
    }
  }
  lo->n_static = lo->n;
  return FY_SOL_OK;
}

typedef struct {
  uint8_t w[MAX_KEYS], r[MAX_KEYS];
  size_t nw, nr;
  const uint8_t *wkeys[MAX_KEYS], *rkeys[MAX_KEYS];
} drain_t;

/* drainKeysFoundInLookupTable: keys that are neither signers nor programs, matching writable,
** found in the table (first matching entry), leave the static list in map order. */
static int drain(keys_t *ks, const fy_sol_table_t *t, int writable, uint8_t *idx, const uint8_t **keys, size_t *n) {
  *n = 0;
  for (size_t i = 0; i < ks->n; i++) {
    keymeta_t *m = &ks->v[i];
    if (m->drained || m->signer || m->invoked || m->writable != writable) continue;
    for (size_t j = 0; j < t->n_addresses; j++) {
      if (memcmp(t->addresses[j], m->key, 32) != 0) continue;
      if (j > 255) return FY_SOL_ETOOMANY;
      idx[*n] = (uint8_t)j;
      keys[(*n)++] = m->key;
      m->drained = 1;
      break;
    }
  }
  return FY_SOL_OK;
}

static int key_index(const layout_t *lo, const uint8_t *key) {
  for (size_t i = 0; i < lo->n; i++)
    if (memcmp(lo->keys[i], key, 32) == 0) return (int)i;
  return -1;
}

static int put_ixs(const fy_sol_msg_spec_t *spec, const layout_t *lo, fy_buf_t *out) {
  int rc;
  if ((rc = fy_sol_shortvec_put(out, (unsigned)spec->n_ixs))) return rc;
  for (size_t i = 0; i < spec->n_ixs; i++) {
    const fy_sol_ix_t *ix = &spec->ixs[i];
    int p = key_index(lo, ix->program);
    if (p < 0) return FY_SOL_EINDEX;
    uint8_t pb = (uint8_t)p;
    if (fy_buf_put(out, &pb, 1)) return FY_SOL_ENOMEM;
    if ((rc = fy_sol_shortvec_put(out, (unsigned)ix->n_accounts))) return rc;
    for (size_t j = 0; j < ix->n_accounts; j++) {
      int a = key_index(lo, ix->accounts[j].pubkey);
      if (a < 0) return FY_SOL_EINDEX;
      uint8_t ab = (uint8_t)a;
      if (fy_buf_put(out, &ab, 1)) return FY_SOL_ENOMEM;
    }
    if (ix->data_len > 0xffff) return FY_SOL_ETOOBIG;
    if ((rc = fy_sol_shortvec_put(out, (unsigned)ix->data_len))) return rc;
    if (fy_buf_put(out, ix->data, ix->data_len)) return FY_SOL_ENOMEM;
  }
  return FY_SOL_OK;
}

static int compile_into(const fy_sol_msg_spec_t *spec, keys_t *ks, fy_buf_t *out, unsigned *n_signers) {
  int rc;
  if (!spec->payer || !spec->blockhash) return FY_SOL_EINVAL;
  if (spec->version != FY_SOL_LEGACY && spec->version != 0) return FY_SOL_EVERSION;
  if (spec->version == FY_SOL_LEGACY && spec->n_tables) return FY_SOL_EINVAL;
  if ((rc = collect_keys(spec, ks))) return rc;

  /* lookups first: they take keys out of the static list */
  size_t n_lookups = 0;
  drain_t *dr = spec->n_tables ? calloc(spec->n_tables, sizeof *dr) : NULL;
  if (spec->n_tables && !dr) return FY_SOL_ENOMEM;
  for (size_t t = 0; t < spec->n_tables && !rc; t++) {
    rc = drain(ks, &spec->tables[t], 1, dr[t].w, dr[t].wkeys, &dr[t].nw);
    if (!rc) rc = drain(ks, &spec->tables[t], 0, dr[t].r, dr[t].rkeys, &dr[t].nr);
  }
  layout_t *lo = rc ? NULL : calloc(1, sizeof *lo);
  if (!rc && !lo) rc = FY_SOL_ENOMEM;
  if (!rc) rc = layout_static(ks, lo);
  for (size_t t = 0; t < spec->n_tables && !rc; t++)
    for (size_t i = 0; i < dr[t].nw && !rc; i++) rc = layout_push(lo, dr[t].wkeys[i]);
  for (size_t t = 0; t < spec->n_tables && !rc; t++)
    for (size_t i = 0; i < dr[t].nr && !rc; i++) rc = layout_push(lo, dr[t].rkeys[i]);

  if (!rc) {
    if (spec->version == 0) {
      uint8_t prefix = 0x80;
      if (fy_buf_put(out, &prefix, 1)) rc = FY_SOL_ENOMEM;
    }
    uint8_t header[3] = {(uint8_t)lo->n_sig, (uint8_t)lo->n_ro_signed, (uint8_t)lo->n_ro_unsigned};
    if (!rc && fy_buf_put(out, header, 3)) rc = FY_SOL_ENOMEM;
    if (!rc) rc = fy_sol_shortvec_put(out, (unsigned)lo->n_static);
    for (size_t i = 0; i < lo->n_static && !rc; i++)
      if (fy_buf_put(out, lo->keys[i], 32)) rc = FY_SOL_ENOMEM;
    if (!rc && fy_buf_put(out, spec->blockhash, 32)) rc = FY_SOL_ENOMEM;
    if (!rc) rc = put_ixs(spec, lo, out);
  }
  if (!rc && spec->version == 0) {
    for (size_t t = 0; t < spec->n_tables; t++) n_lookups += dr[t].nw + dr[t].nr > 0;
    rc = fy_sol_shortvec_put(out, (unsigned)n_lookups);
    for (size_t t = 0; t < spec->n_tables && !rc; t++) {
      if (dr[t].nw + dr[t].nr == 0) continue; /* a table that gave nothing is left out */
      if (fy_buf_put(out, spec->tables[t].key, 32)) rc = FY_SOL_ENOMEM;
      if (!rc) rc = fy_sol_shortvec_put(out, (unsigned)dr[t].nw);
      if (!rc && fy_buf_put(out, dr[t].w, dr[t].nw)) rc = FY_SOL_ENOMEM;
      if (!rc) rc = fy_sol_shortvec_put(out, (unsigned)dr[t].nr);
      if (!rc && fy_buf_put(out, dr[t].r, dr[t].nr)) rc = FY_SOL_ENOMEM;
    }
  }
  if (!rc && n_signers) *n_signers = lo->n_sig;
  free(lo);
  free(dr);
  return rc;
}

int fy_sol_compile(const fy_sol_msg_spec_t *spec, fy_buf_t *out, unsigned *n_signers) {
  keys_t ks = {0};
  size_t start = out->len;
  int rc = compile_into(spec, &ks, out, n_signers);
  free(ks.v);
  if (rc) out->len = start; /* nothing half-written stays behind */
  return rc;
}

/* ---- the decoder -------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *p;
  size_t n, pos;
} reader_t;

static int take(reader_t *r, size_t len, const uint8_t **out) {
  if (r->n - r->pos < len) return FY_SOL_ETRUNC;
  *out = r->p + r->pos;
  r->pos += len;
  return FY_SOL_OK;
}

static int take_vec(reader_t *r, size_t elem, const uint8_t **out, size_t *count) {
  unsigned c;
  int rc = fy_sol_shortvec_get(r->p, r->n, &r->pos, &c);
  if (rc) return rc;
  *count = c;
  return take(r, (size_t)c * elem, out);
}

static int decode_ixs(reader_t *r, fy_sol_message_t *m) {
  unsigned n;
  int rc = fy_sol_shortvec_get(r->p, r->n, &r->pos, &n);
  if (rc) return rc;
  if (n > r->n - r->pos) return FY_SOL_ETRUNC; /* each instruction takes 3 bytes at least */
  m->ixs = n ? calloc(n, sizeof *m->ixs) : NULL;
  if (n && !m->ixs) return FY_SOL_ENOMEM;
  m->n_ixs = n;
  for (unsigned i = 0; i < n; i++) {
    const uint8_t *pi;
    if ((rc = take(r, 1, &pi))) return rc;
    m->ixs[i].program_index = *pi;
    if ((rc = take_vec(r, 1, &m->ixs[i].accounts, &m->ixs[i].n_accounts))) return rc;
    if ((rc = take_vec(r, 1, &m->ixs[i].data, &m->ixs[i].data_len))) return rc;
  }
  return FY_SOL_OK;
}

static int decode_lookups(reader_t *r, fy_sol_message_t *m) {
  unsigned n;
  int rc = fy_sol_shortvec_get(r->p, r->n, &r->pos, &n);
  if (rc) return rc;
  if (n > r->n - r->pos) return FY_SOL_ETRUNC;
  m->lookups = n ? calloc(n, sizeof *m->lookups) : NULL;
  if (n && !m->lookups) return FY_SOL_ENOMEM;
  m->n_lookups = n;
  for (unsigned i = 0; i < n; i++) {
    fy_sol_lookup_t *l = &m->lookups[i];
    if ((rc = take(r, 32, &l->key))) return rc;
    if ((rc = take_vec(r, 1, &l->writable, &l->n_writable))) return rc;
    if ((rc = take_vec(r, 1, &l->readonly, &l->n_readonly))) return rc;
    if (l->n_writable + l->n_readonly == 0) return FY_SOL_ELOOKUP;
  }
  return FY_SOL_OK;
}

/* A validator's sanitize: counts that fit, the payer a writable signer, every index in range,
** no program at index 0 (the payer). */
static int sanitize(const fy_sol_message_t *m) {
  size_t total = m->n_keys;
  for (size_t i = 0; i < m->n_lookups; i++) total += m->lookups[i].n_writable + m->lookups[i].n_readonly;
  if (total > MAX_KEYS) return FY_SOL_ETOOMANY;
  if (m->n_signatures == 0 || m->n_readonly_signed >= m->n_signatures ||
      (size_t)m->n_signatures + m->n_readonly_unsigned > m->n_keys)
    return FY_SOL_EHEADER;
  for (size_t i = 0; i < m->n_ixs; i++) {
    const fy_sol_cix_t *ix = &m->ixs[i];
    /* programs are static keys: a lookup cannot name one */
    if (ix->program_index == 0 || ix->program_index >= m->n_keys) return FY_SOL_EINDEX;
    for (size_t j = 0; j < ix->n_accounts; j++)
      if (ix->accounts[j] >= total) return FY_SOL_EINDEX;
  }
  return FY_SOL_OK;
}

static int message_read(reader_t *r, fy_sol_message_t *m) {
  memset(m, 0, sizeof *m);
  m->version = FY_SOL_LEGACY;
  const uint8_t *b;
  int rc;
  if ((rc = take(r, 1, &b))) return rc;
  if (*b & 0x80) {
    if ((*b & 0x7f) != 0) return FY_SOL_EVERSION;
    m->version = 0;
  } else {
    r->pos--; /* a legacy message starts with its header */
  }
  if ((rc = take(r, 3, &b))) return rc;
  m->n_signatures = b[0], m->n_readonly_signed = b[1], m->n_readonly_unsigned = b[2];
  if ((rc = take_vec(r, 32, &m->keys, &m->n_keys))) return rc;
  if ((rc = take(r, 32, &m->blockhash))) return rc;
  if ((rc = decode_ixs(r, m))) return rc;
  if (m->version == 0 && (rc = decode_lookups(r, m))) return rc;
  return sanitize(m);
}

int fy_sol_message_decode(const uint8_t *p, size_t n, fy_sol_message_t *m) {
  reader_t r = {p, n, 0};
  int rc = message_read(&r, m);
  if (!rc && r.pos != n) rc = FY_SOL_ETRAILING;
  if (rc) fy_sol_message_free(m);
  return rc;
}

void fy_sol_message_free(fy_sol_message_t *m) {
  free(m->ixs);
  free(m->lookups);
  m->ixs = NULL, m->lookups = NULL;
  m->n_ixs = m->n_lookups = 0;
}

int fy_sol_tx_decode(const uint8_t *p, size_t n, fy_sol_tx_t *tx) {
  memset(tx, 0, sizeof *tx);
  reader_t r = {p, n, 0};
  int rc = take_vec(&r, 64, &tx->signatures, &tx->n_signatures);
  if (rc) return rc;
  tx->message = p + r.pos;
  tx->message_len = n - r.pos;
  if ((rc = fy_sol_message_decode(tx->message, tx->message_len, &tx->msg))) return rc;
  if (tx->msg.n_signatures != tx->n_signatures) {
    fy_sol_message_free(&tx->msg);
    return FY_SOL_EHEADER;
  }
  return FY_SOL_OK;
}

void fy_sol_tx_free(fy_sol_tx_t *tx) { fy_sol_message_free(&tx->msg); }

int fy_sol_tx_assemble(const uint8_t *sigs, size_t n_sigs, const uint8_t *msg, size_t msg_len, fy_buf_t *out) {
  if (n_sigs > 255) return FY_SOL_EHEADER;
  size_t total = (n_sigs < 128 ? 1 : 2) + 64 * n_sigs + msg_len;
  if (total > FY_SOL_PACKET) return FY_SOL_ETOOBIG;
  size_t start = out->len;
  int rc = fy_sol_shortvec_put(out, (unsigned)n_sigs);
  if (!rc && (fy_buf_put(out, sigs, 64 * n_sigs) || fy_buf_put(out, msg, msg_len))) rc = FY_SOL_ENOMEM;
  if (rc) out->len = start;
  return rc;
}

/* ---- program-derived addresses ------------------------------------------------------------ */

static const char PDA_MARKER[] = "ProgramDerivedAddress";

static void pda_hash(const uint8_t *const *seeds, const size_t *lens, size_t n_seeds, const uint8_t *bump,
                     const uint8_t program[32], uint8_t out[32]) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (size_t i = 0; i < n_seeds; i++) crypto_hash_sha256_update(&st, seeds[i], lens[i]);
  if (bump) crypto_hash_sha256_update(&st, bump, 1);
  crypto_hash_sha256_update(&st, program, 32);
  crypto_hash_sha256_update(&st, (const uint8_t *)PDA_MARKER, sizeof PDA_MARKER - 1);
  crypto_hash_sha256_final(&st, out);
}

static int seeds_ok(const size_t *lens, size_t n_seeds, size_t room) {
  if (n_seeds > room) return 0;
  for (size_t i = 0; i < n_seeds; i++)
    if (lens[i] > FY_SOL_MAX_SEED_LEN) return 0;
  return 1;
}

int fy_sol_create_pda(const uint8_t *const *seeds, const size_t *lens, size_t n_seeds,
                      const uint8_t program[32], uint8_t out[32]) {
  if (!seeds_ok(lens, n_seeds, FY_SOL_MAX_SEEDS)) return FY_SOL_ESEEDS;
  pda_hash(seeds, lens, n_seeds, NULL, program, out);
  return fy_ed25519_on_curve(out) ? FY_SOL_EONCURVE : FY_SOL_OK;
}

int fy_sol_find_pda(const uint8_t *const *seeds, const size_t *lens, size_t n_seeds,
                    const uint8_t program[32], uint8_t out[32], uint8_t *bump) {
  if (!seeds_ok(lens, n_seeds, FY_SOL_MAX_SEEDS - 1)) return FY_SOL_ESEEDS; /* the bump is a seed */
  for (int b = 255; b >= 0; b--) {
    uint8_t bb = (uint8_t)b;
    pda_hash(seeds, lens, n_seeds, &bb, program, out);
    if (!fy_ed25519_on_curve(out)) {
      *bump = bb;
      return FY_SOL_OK;
    }
  }
  return FY_SOL_ENOBUMP;
}

/* ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL */
static const uint8_t ATA_PROGRAM[32] = {0x8c, 0x97, 0x25, 0x8f, 0x4e, 0x24, 0x89, 0xf1, 0xbb, 0x3d, 0x10,
                                        0x29, 0x14, 0x8e, 0x0d, 0x83, 0x0b, 0x5a, 0x13, 0x99, 0xda, 0xff,
                                        0x10, 0x84, 0x04, 0x8e, 0x7b, 0xd8, 0xdb, 0xe9, 0xf8, 0x59};

int fy_sol_ata(const uint8_t owner[32], const uint8_t mint[32], const uint8_t token_program[32],
               uint8_t out[32], uint8_t *bump) {
  const uint8_t *seeds[3] = {owner, token_program, mint};
  const size_t lens[3] = {32, 32, 32};
  return fy_sol_find_pda(seeds, lens, 3, ATA_PROGRAM, out, bump);
}
