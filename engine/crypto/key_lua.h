/*
** key_lua.h -- ferry.core.key: private keys as ferry.Key userdata (binding of key.c).
**
** Provides: the ferry.Key type (new, from_env, from_keystore, is_key; k:address(),
** k:personal_sign(msg), k:sign_hash(digest),
** k:close(), tostring "ferry.Key 0xADDRESS"), and fy_key_lua_export for the bindings that
** take a key argument (tx.sign, secp256k1.sign/personal_sign/address/pubkey).
** No method or metamethod returns the key's bytes; __gc and __close wipe them.
** Depends on: key.h, secp_lua.h, Lua 5.4. Main Lua state / any task thread.
*/
#ifndef FY_KEY_LUA_H
#define FY_KEY_LUA_H

#include <lua.h>
#include <stdint.h>

/* If the value at idx is a ferry.Key: copy its secret into out (the caller wipes it) and
** return 1; raise if the key was closed. Any other value: return 0 and touch nothing. */
int fy_key_lua_export(lua_State *L, int idx, uint8_t out[32]);

int luaopen_ferry_core_key(lua_State *L);

#endif
