/*
** secp_lua.h -- Lua-side helpers shared by the EVM bindings (addresses and private keys).
**
** Provides: reading an address argument (EIP-55 checked text or eth.raw of 20 bytes), pushing an
** address as checksummed text, and reading a private key argument into a caller buffer.
** Depends on: secp.h, Lua 5.4. Main Lua state / any task thread; no libuv.
** Backs: ferry.core.secp256k1 (luaopen_ferry_core_secp256k1 in secp_lua.c); used by abi_lua.c
** and tx_lua.c.
*/
#ifndef FY_SECP_LUA_H
#define FY_SECP_LUA_H

#include <lua.h>
#include <stdint.h>

/* The one address rule of every binding: "0x" + 40 hex digits (mixed case must match EIP-55),
** or a ferry.Bytes (eth.raw) of 20 bytes. Any other string (20 characters included: they were
** once taken as raw bytes) is refused. Returns NULL with out set, or the reason. */
const char *fy_secp_to_address(lua_State *L, int idx, uint8_t out[20]);

/* fy_secp_to_address or raise invalid_argument; what names the argument in the error
** ("to", "address"). may raise */
void fy_secp_check_address(lua_State *L, int idx, const char *what, uint8_t out[20]);

/* Push the EIP-55 checksummed "0x..." text of addr. may raise (memory) */
void fy_secp_push_address(lua_State *L, const uint8_t addr[20]);

/* Read a private key at idx (a ferry.Key, 32 raw bytes, or "0x" + 64 hex digits) into key. Does not check
** the range (0 < k < n): the signing call reports that. The error text never contains the
** argument. The caller must explicit_bzero(key) when done. may raise */
void fy_secp_check_key(lua_State *L, int idx, const char *what, uint8_t key[32]);

int luaopen_ferry_core_secp256k1(lua_State *L);

#endif
