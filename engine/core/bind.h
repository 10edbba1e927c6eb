/*
** bind.h -- what every C binding shares: ferry.Error tables raised from C, argument checks that
** raise them, and ferry.Bytes, the explicit wrapper for raw bytes.
**
** Provides: fy_raise / fy_argerror (a ferry.Error with a code, never a raw string: the
** luaL_check* family raises strings, so bindings use the fy_check* twins below), the
** bytes-like argument rule (fy_to_bytes), and the ferry.core.bytes module (raw, is_raw, hex).
** Depends on: Lua 5.4, crypto/hex.h. Any thread of the state; no libuv.
**
** The bytes rule, everywhere a binding takes bytes from a user (ABI bytes/bytesN/address,
** eth.keccak256, eth.abi.decode's data): a string must be "0x" + hex digits and is read as hex
** (as JSON-RPC, ethers and viem read it); raw binary is a ferry.Bytes made by eth.raw(s); any
** other string is refused with invalid_argument, never guessed.
*/
#ifndef FY_BIND_H
#define FY_BIND_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define FY_BYTES_MT "ferry.Bytes"

/* Push a ferry.Error {code = code, message = <fmt...>} (lua_pushfstring formats). */
void fy_push_errorf(lua_State *L, const char *code, const char *fmt, ...);

/* Raise a ferry.Error {code, message}. Never returns (`return fy_raise(...)` for the compiler). */
int fy_raise(lua_State *L, const char *code, const char *fmt, ...);

/* Raise invalid_argument "bad argument #arg to 'name' (<fmt...>)" with fields argument = arg and
** call = name (the message has luaL_argerror's shape, so callers that quote it keep working).
** Never returns. */
int fy_argerror(lua_State *L, int arg, const char *fmt, ...);

/* "<tname> expected, got <type of arg>" through fy_argerror. Never returns. */
int fy_typeerror(lua_State *L, int arg, const char *tname);

/* luaL_check* / luaL_opt* that raise ferry.Error invalid_argument. may raise */
const char *fy_checklstring(lua_State *L, int arg, size_t *len);
const char *fy_optlstring(lua_State *L, int arg, const char *def, size_t *len);
lua_Integer fy_checkinteger(lua_State *L, int arg);
lua_Integer fy_optinteger(lua_State *L, int arg, lua_Integer def);
lua_Number fy_checknumber(lua_State *L, int arg);
lua_Number fy_optnumber(lua_State *L, int arg, lua_Number def);
void fy_checktype(lua_State *L, int arg, int t);
void fy_checkany(lua_State *L, int arg);
void *fy_checkudata(lua_State *L, int arg, const char *tname);
#define fy_checkstring(L, a) (fy_checklstring(L, (a), NULL))
#define fy_optstring(L, a, d) (fy_optlstring(L, (a), (d), NULL))
#define fy_argerror_msg(L, arg, msg) (fy_argerror(L, (arg), "%s", (msg)))
/* luaL_error's twin: invalid_argument with a formatted message. Never returns. */
#define fy_error(L, ...) (fy_raise(L, "invalid_argument", __VA_ARGS__))
int fy_checkoption(lua_State *L, int arg, const char *def, const char *const lst[]);
#define fy_argcheck(L, cond, arg, msg) ((void)((cond) || fy_argerror(L, (arg), "%s", (msg))))

/* Push "0x" followed by the 2n lowercase hex digits of p[0..n). may raise (memory error only) */
void fy_push_hex(lua_State *L, const uint8_t *p, size_t n);

/* Register the ferry.Bytes metatable (engine boot, before any binding runs). */
void fy_bytes_init(lua_State *L);

/* Push a new ferry.Bytes holding a copy of p[0..n). may raise (memory) */
void fy_push_bytes(lua_State *L, const uint8_t *p, size_t n);

/* The bytes of the ferry.Bytes at idx (and its length), or NULL when it is something else. */
const uint8_t *fy_test_bytes(lua_State *L, int idx, size_t *n);

/* The bytes rule: a ferry.Bytes, or "0x" + an even number of hex digits, whose decoded bytes
** replace the string in its stack slot (so they live as long as the slot). Returns NULL with
** *p, *n set, or a reason for the caller's message. may raise (memory) */
const char *fy_to_bytes(lua_State *L, int idx, const uint8_t **p, size_t *n);

/* fy_to_bytes or raise invalid_argument "bad argument #arg to 'call' (what: reason)". */
const uint8_t *fy_check_bytes(lua_State *L, int arg, const char *what, size_t *n);

int luaopen_ferry_core_bytes(lua_State *L);

#endif
