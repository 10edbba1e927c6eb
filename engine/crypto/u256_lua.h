/*
** u256_lua.h -- the "ferry.U256" userdata, for other C bindings (transactions, ABI, RPC).
**
** Provides: push a fy_u256_t as a U256 value, and read any U256-like Lua value as one.
** Depends on: u256.h, Lua 5.4. Main Lua state / any task thread; no libuv.
** Backs: ferry.core.u256 (luaopen_ferry_core_u256 in u256_lua.c). fy_u256_push works even if
** the module was never required: it creates the metatable on first use.
*/
#ifndef FY_U256_LUA_H
#define FY_U256_LUA_H

#include <lua.h>

#include "crypto/u256.h"

#define FY_U256_MT "ferry.U256"

/* Push a new U256 userdata holding *v (copied) and return its payload (owned by the GC).
 * may raise (memory error only) */
fy_u256_t *fy_u256_push(lua_State *L, const fy_u256_t *v);

/* Read the value at idx into *out: a U256 userdata, an integer >= 0, a float that is a
 * whole non-negative number below 2^256, or a decimal / "0x" hex string. Returns 0; on
 * anything else raises an argument error naming idx ("expected U256, non-negative integer or
 * numeric string"). may raise */
int fy_u256_check(lua_State *L, int idx, fy_u256_t *out);

/* The payload if idx holds a U256 userdata, else NULL. Does not raise. */
fy_u256_t *fy_u256_test(lua_State *L, int idx);

int luaopen_ferry_core_u256(lua_State *L);

#endif
