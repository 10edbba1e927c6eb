/*
** redis_lua.c -- ferry.core.redis: one Redis connection per object, commands parked on ops.
**
**   local core = require "ferry.core.redis"
**   local ip = core.resolve("localhost", 5)       -- name -> IP without blocking the loop
**   local c = core.open(ip, 6379, 2)              -- connecting; commands may be sent at once
**   c:call(timeout, "SET", "k", 1)                -- -> reply | nil, err
**   c:state() -> "connecting" | "ready" | "dead", why;  c:close();  c:stats()
**   core.sha1(script) -> its EVALSHA name
**
** Replies: status -> its text ("OK"), bulk string -> string, integer -> integer, nil -> nil
** (false inside an array, as Redis's own Lua does), array -> table. A top-level error reply is
** nil, {code = "redis_error", message = <verbatim>}; one inside an array is that table.
** Failures: timeout (a deadline passed, the connection was dropped), unavailable (refused,
** reset, closed). ferry.redis adds the address, reconnects and keeps the deadlines.
*/
#include "core/bind.h"
#include "core/engine.h"
#include "core/task.h"
#include "net/redis.h"

#include <lauxlib.h>
#include <nettle/sha1.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MT "ferry.core.redis.Conn"
#define MAX_ARGS (1 << 20)
#define MAX_DEPTH 16

typedef struct conn_ud {
  fy_redis_t *r; /* NULL once closed */
  struct conn_ud *prev, *next;
} conn_ud_t;

static conn_ud_t *g_conns; /* every open connection, for engine shutdown */
static int g_hooked;

static void conn_unlink(conn_ud_t *u) {
  if (u->prev) u->prev->next = u->next;
  else if (g_conns == u) g_conns = u->next;
  if (u->next) u->next->prev = u->prev;
  u->prev = u->next = NULL;
}

static void conn_close(conn_ud_t *u) {
  if (!u->r) return;
  fy_redis_t *r = u->r;
  u->r = NULL;
  conn_unlink(u);
  fy_redis_close(r);
}

/* Engine shutdown: tasks are cancelled already (their commands detached); drop every socket. */
static void redis_shutdown(void *data) {
  (void)data;
  while (g_conns) conn_close(g_conns);
  g_hooked = 0;
}

static void push_reply(lua_State *L, const redisReply *r, int depth, int top) {
  switch (r->type) {
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_STRING: lua_pushlstring(L, r->str, r->len); break;
  case REDIS_REPLY_INTEGER: lua_pushinteger(L, (lua_Integer)r->integer); break;
  case REDIS_REPLY_NIL:
    if (top) lua_pushnil(L);
    else lua_pushboolean(L, 0);
    break;
  case REDIS_REPLY_ERROR: {
    lua_pushlstring(L, r->str, r->len);
    fy_push_error(L, "redis_error", lua_tostring(L, -1));
    lua_remove(L, -2);
    break;
  }
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)r->elements, 0);
    if (depth >= MAX_DEPTH) break; /* Redis nests a few levels at most (XREAD, EXEC) */
    for (size_t i = 0; i < r->elements; i++) {
      push_reply(L, r->element[i], depth + 1, 0);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  default: lua_pushnil(L); break;
  }
}

/* One command's link between its op and its place in the pipeline; freed by whichever of
 * the reply or the cancel comes first (a detached command never calls back). */
typedef struct {
  fy_op_t *op;
  fy_redis_cmd_t *cmd;
} call_t;

static void on_done(int rc, const redisReply *reply, const char *err, void *data) {
  call_t *c = data;
  fy_op_t *op = c->op;
  free(c);
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  if (rc != FY_REDIS_OK) {
    lua_pushnil(co);
    fy_push_error(co, rc == FY_REDIS_ETIMEOUT ? "timeout" : "unavailable", err ? err : fy_redis_strerror(rc));
    fy_op_ready(op, 2);
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    lua_pushnil(co);
    push_reply(co, reply, 0, 1);
    fy_op_ready(op, 2);
    return;
  }
  push_reply(co, reply, 0, 1);
  fy_op_ready(op, 1);
}

static void on_cancel(fy_op_t *op, void *data) {
  call_t *c = data;
  (void)op;
  fy_redis_detach(c->cmd);
  free(c);
}

static conn_ud_t *check_conn(lua_State *L) { return fy_checkudata(L, 1, CONN_MT); }

/* open(ip, port, connect_timeout) -> conn (connecting, or already dead: see conn:state()) */
static int l_open(lua_State *L) {
  const char *ip = fy_checkstring(L, 1);
  lua_Integer port = fy_checkinteger(L, 2);
  double ct = fy_optnumber(L, 3, 0);
  fy_argcheck(L, port > 0 && port < 65536, 2, "port out of range");
  fy_engine_t *E = fy_engine(L);
  if (E->closing) return fy_raise(L, "unavailable", "redis: the engine is shutting down");
  conn_ud_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, CONN_MT);
  u->r = fy_redis_new(&E->loop, ip, (int)port, ct);
  if (!u->r) return luaL_error(L, "redis: out of memory");
  u->next = g_conns;
  if (g_conns) g_conns->prev = u;
  g_conns = u;
  if (!g_hooked) {
    fy_engine_on_shutdown(E, redis_shutdown, NULL);
    g_hooked = 1;
  }
  return 1;
}

/* conn:call(timeout, cmd, ...) -> reply | nil, err. Numbers are sent as their text. */
static int l_call(lua_State *L) {
  conn_ud_t *u = check_conn(L);
  double timeout = fy_checknumber(L, 2);
  int argc = lua_gettop(L) - 2;
  fy_argcheck(L, argc >= 1, 3, "a command is required");
  fy_argcheck(L, argc <= MAX_ARGS, 3, "too many arguments");
  /* the pointers live in a scratch userdata (GC'd whatever raises): a script's arguments
   * may be many (a batch of reservations) */
  const char **argv = lua_newuserdatauv(L, (size_t)argc * (sizeof *argv + sizeof(size_t)), 0);
  size_t *lens = (size_t *)(argv + argc);
  for (int i = 0; i < argc; i++) {
    int t = lua_type(L, i + 3);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      fy_argerror(L, i + 3, "string or number expected, got %s", luaL_typename(L, i + 3));
    argv[i] = lua_tolstring(L, i + 3, &lens[i]); /* converts numbers in place: fine, our slots */
  }
  fy_task_require(L, "redis call");
  if (!u->r) return fy_fail(L, "unavailable", "closed");
  call_t *c = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "redis: out of memory");
  fy_op_t *op = fy_op_new(L, 0, on_cancel, c); /* the deadline is the connection's timer */
  int rc;
  c->op = op;
  c->cmd = fy_redis_command(u->r, argc, argv, lens, timeout, on_done, c, &rc);
  if (!c->cmd) {
    free(c);
    fy_op_abort(op);
    const char *why = fy_redis_error(u->r);
    return fy_fail(L, rc == FY_REDIS_ETIMEOUT ? "timeout" : "unavailable", "%s", why[0] ? why : fy_redis_strerror(rc));
  }
  return fy_op_yield(L, op);
}

static int l_state(lua_State *L) {
  conn_ud_t *u = check_conn(L);
  if (!u->r) {
    lua_pushliteral(L, "dead");
    lua_pushliteral(L, "closed");
    return 2;
  }
  int st = fy_redis_state(u->r);
  lua_pushstring(L, st == FY_REDIS_READY ? "ready" : st == FY_REDIS_CONNECTING ? "connecting" : "dead");
  if (st != FY_REDIS_DEAD) return 1;
  lua_pushstring(L, fy_redis_error(u->r));
  return 2;
}

static int l_close(lua_State *L) {
  conn_close(check_conn(L));
  return 0;
}

static int l_conn_stats(lua_State *L) {
  conn_ud_t *u = check_conn(L);
  fy_redis_stats_t st = {0};
  if (u->r) fy_redis_stats(u->r, &st);
  lua_createtable(L, 0, 6);
#define F(n) (lua_pushinteger(L, (lua_Integer)st.n), lua_setfield(L, -2, #n))
  F(sent); F(replies); F(errors); F(failed); F(timeouts); F(pending);
#undef F
  return 1;
}

/* --- resolve(host, timeout) -> ip | nil, err: getaddrinfo on libuv's pool (hiredis would
 * block the loop on it) --- */
typedef struct {
  uv_getaddrinfo_t req;
  fy_op_t *op; /* NULL once the op timed out or was cancelled */
} resolve_t;

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_t *rs = req->data;
  fy_op_t *op = rs->op;
  free(rs);
  if (op && fy_op_settle(op)) {
    lua_State *co = fy_op_thread(op);
    char ip[64] = "";
    if (status == 0 && res) {
      if (res->ai_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
      else if (res->ai_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
    }
    if (ip[0]) {
      lua_pushstring(co, ip);
      fy_op_ready(op, 1);
    } else {
      lua_pushnil(co);
      fy_push_error(co, "unavailable", status ? uv_strerror(status) : "no address");
      fy_op_ready(op, 2);
    }
  }
  uv_freeaddrinfo(res);
}

static void on_resolve_cancel(fy_op_t *op, void *data) {
  resolve_t *rs = data;
  (void)op;
  rs->op = NULL;
  uv_cancel((uv_req_t *)&rs->req); /* if it already runs, on_resolved frees rs later */
}

static int l_resolve(lua_State *L) {
  const char *host = fy_checkstring(L, 1);
  double timeout = fy_optnumber(L, 2, 5);
  fy_task_require(L, "redis resolve");
  resolve_t *rs = calloc(1, sizeof *rs);
  if (!rs) return luaL_error(L, "redis: out of memory");
  rs->req.data = rs;
  fy_op_t *op = fy_op_new(L, timeout, on_resolve_cancel, rs);
  rs->op = op;
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(&fy_engine(L)->loop, &rs->req, on_resolved, host, NULL, &hints);
  if (rc != 0) {
    free(rs);
    fy_op_abort(op);
    return fy_fail(L, "unavailable", "%s: %s", host, uv_strerror(rc));
  }
  return fy_op_yield(L, op);
}

/* sha1(s) -> 40 lowercase hex digits: a script's EVALSHA name, known without asking Redis. */
static int l_sha1(lua_State *L) {
  size_t n;
  const char *s = fy_checklstring(L, 1, &n);
  struct sha1_ctx ctx;
  uint8_t d[SHA1_DIGEST_SIZE];
  char hex[2 * SHA1_DIGEST_SIZE];
  sha1_init(&ctx);
  sha1_update(&ctx, n, (const uint8_t *)s);
  sha1_digest(&ctx, sizeof d, d);
  for (int i = 0; i < SHA1_DIGEST_SIZE; i++) {
    hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
    hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
  }
  lua_pushlstring(L, hex, sizeof hex);
  return 1;
}

int luaopen_ferry_core_redis(lua_State *L) {
  static const luaL_Reg m[] = {{"call", l_call},   {"state", l_state},       {"close", l_close},
                               {"stats", l_conn_stats}, {"__gc", l_close}, {"__close", l_close},
                               {NULL, NULL}};
  static const luaL_Reg f[] = {{"open", l_open}, {"resolve", l_resolve}, {"sha1", l_sha1}, {NULL, NULL}};
  if (luaL_newmetatable(L, CONN_MT)) {
    luaL_setfuncs(L, m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, f);
  return 1;
}
