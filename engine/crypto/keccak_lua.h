/*
** keccak_lua.h -- 0x-hex output for the C bindings (transactions, ABI, keccak's tohex).
**
** Provides: fy_push_hex (from core/bind.h). Depends on: Lua 5.4. Main Lua state / any task thread; no libuv.
** Backs: ferry.core.keccak's tohex (keccak_lua.c), tx.sign(..., "hex"), the ABI binding.
*/
#ifndef FY_KECCAK_LUA_H
#define FY_KECCAK_LUA_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* fy_push_hex lives in core/bind.c with the other helpers every binding shares. */
#include "core/bind.h"

#endif
