/*
** keccak_lua.h -- 0x-hex output for the C bindings (transactions, ABI, keccak's tohex).
**
** Provides: fy_push_hex. Depends on: Lua 5.4. Main Lua state / any task thread; no libuv.
** Backs: ferry.core.keccak's tohex (keccak_lua.c), tx.sign(..., "hex"), the ABI binding.
*/
#ifndef FY_KECCAK_LUA_H
#define FY_KECCAK_LUA_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* Push "0x" followed by the 2n lowercase hex digits of p[0..n). may raise (memory error only) */
void fy_push_hex(lua_State *L, const uint8_t *p, size_t n);

#endif
