/*
** keccak.h -- Keccak-256 (the original Keccak padding used by Ethereum, not SHA3-256).
**
** Provides: one-shot fy_keccak256() and an incremental hasher (fy_keccak_t).
** Depends on: nothing (its own Keccak-f[1600], see keccak.c for why). No Lua, no libuv;
**             pure functions, safe from any thread (a fy_keccak_t is not shared).
** Backs: ferry.core.keccak (keccak256, tohex, fromhex) through keccak_lua.c.
*/
#ifndef FY_KECCAK_H
#define FY_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define FY_KECCAK256_RATE 136   /* bytes absorbed per permutation: (1600 - 2*256) / 8 */
#define FY_KECCAK256_SIZE 32

typedef struct {
  uint64_t a[25];         /* the state: 25 little-endian 64-bit lanes, lane (x, y) at a[x + 5y] */
  size_t pos;             /* bytes absorbed into the current block, 0..RATE-1 */
} fy_keccak_t;

/* Hash len bytes at in into out. in may be NULL when len is 0. Cannot fail. */
void fy_keccak256(const uint8_t *in, size_t len, uint8_t out[32]);

/* Reset k to the empty state. Cannot fail; k is caller-owned (no heap inside). */
void fy_keccak_init(fy_keccak_t *k);

/* Absorb len more bytes (in may be NULL when len is 0). Cannot fail. */
void fy_keccak_update(fy_keccak_t *k, const uint8_t *in, size_t len);

/* Pad, squeeze the 32-byte digest into out, and leave k re-initialised (ready for reuse). */
void fy_keccak_final(fy_keccak_t *k, uint8_t out[32]);

#endif
