/*
** ws_lua.c -- ferry.core.ws: WebSocket connections for tasks.
**
**   local c = ws.open(url, {timeout =, ping_interval =, pong_timeout =, max_message =,
**                                   max_backlog =})     -- connecting
**   c:wait_open() -> true | nil, err                    -- parks until open or failed
**   c:send(text [, "binary"]) -> true | nil, err        -- queued, never waits
**   c:recv([timeout]) -> message, "text" | "binary"     -- nil, err when closed or timed out
**   c:close([code, reason]); c:state(); c:close_info() -> why, code, reason
**   c:keep_alive(bool)      -- false: it does not keep the engine alive (opts.background too)
**
** Messages received and not yet taken wait in C, at most max_backlog bytes: past that the
** connection closes (a reader that never reads cannot grow memory without bound). A closed
** connection answers recv with nil, {code = "provider_down", close_code =, reason =, why =}
** once its queued messages are taken.
*/
#include "core/bind.h"
#include "core/engine.h"
#include "core/task.h"
#include "net/ws.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MT "ferry.WebSocket"
#define DEFAULT_BACKLOG (64u << 20)

static fy_ws_t *g_ws;

static void ws_shutdown(void *data) {
  (void)data;
  fy_ws_free(g_ws);
  g_ws = NULL;
}

static fy_ws_t *ws_get(lua_State *L) {
  if (!g_ws) {
    fy_engine_t *E = fy_engine(L);
    g_ws = fy_ws_new(&E->loop);
    if (!g_ws) fy_raise(L, "provider_down", "ws: cannot create the libwebsockets context");
    fy_engine_on_shutdown(E, ws_shutdown, NULL);
  }
  return g_ws;
}

typedef struct item {
  struct item *next;
  size_t len;
  int binary;
  char data[];
} item_t;

typedef struct {
  fy_ws_conn_t *c;      /* NULL once released */
  fy_op_t *op;          /* a task parked in wait_open or recv */
  int waits_open;       /* which of the two */
  item_t *head, *tail;
  size_t backlog, max_backlog;
  int open, closed, why, code;
  char reason[128];
} lconn_t;

static void drop_items(lconn_t *l) {
  while (l->head) {
    item_t *it = l->head;
    l->head = it->next;
    free(it);
  }
  l->tail = NULL;
  l->backlog = 0;
}

static void push_closed(lua_State *L, lconn_t *l) {
  lua_pushnil(L);
  fy_push_error(L, "provider_down", l->reason[0] ? l->reason : "websocket closed");
  lua_pushinteger(L, l->code);
  lua_setfield(L, -2, "close_code");
  lua_pushstring(L, fy_ws_strerror(l->why));
  lua_setfield(L, -2, "why");
}

/* Take the first queued message: pushes message, kind. */
static int pop_item(lua_State *L, lconn_t *l) {
  item_t *it = l->head;
  l->head = it->next;
  if (!l->head) l->tail = NULL;
  l->backlog -= it->len;
  lua_pushlstring(L, it->data, it->len);
  lua_pushstring(L, it->binary ? "binary" : "text");
  free(it);
  return 2;
}

/* Settle the parked op, if any, with what the connection says now. */
static void wake(lconn_t *l) {
  fy_op_t *op = l->op;
  if (!op) return;
  if (!l->head && !l->closed && !(l->waits_open && l->open)) return; /* nothing for it yet */
  l->op = NULL;
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  if (l->waits_open && l->open && !l->closed) {
    lua_pushboolean(co, 1);
    fy_op_ready(op, 1);
  } else if (l->head && !l->waits_open) {
    fy_op_ready(op, pop_item(co, l));
  } else if (l->closed) {
    push_closed(co, l);
    fy_op_ready(op, 2);
  }
}

static void on_open(fy_ws_conn_t *c, void *data) {
  lconn_t *l = data;
  (void)c;
  l->open = 1;
  wake(l);
}

static void on_message(fy_ws_conn_t *c, const char *p, size_t n, int binary, void *data) {
  lconn_t *l = data;
  if (l->closed) return;
  item_t *it = malloc(sizeof *it + n);
  if (!it || l->backlog + n > l->max_backlog) {
    free(it);
    fy_ws_close(c, 1008, "reader too slow");
    l->why = FY_WS_EBACKLOG;                             /* kept over ELOCAL in on_close */
    return;
  }
  it->next = NULL;
  it->len = n;
  it->binary = binary;
  memcpy(it->data, p, n);
  if (l->tail) l->tail->next = it;
  else l->head = it;
  l->tail = it;
  l->backlog += n;
  wake(l);
}

static void on_close(fy_ws_conn_t *c, int why, int code, const char *reason, void *data) {
  lconn_t *l = data;
  (void)c;
  l->closed = 1;
  if (l->why != FY_WS_EBACKLOG) l->why = why;
  l->code = code;
  snprintf(l->reason, sizeof l->reason, "websocket %s (%d)%s%s", fy_ws_strerror(l->why), code,
           reason && reason[0] ? ": " : "", reason ? reason : "");
  wake(l);
}

static void op_cancel(fy_op_t *op, void *data) {
  lconn_t *l = data;
  (void)op;
  l->op = NULL;                                          /* the connection stays as it is */
}

static lconn_t *check_conn(lua_State *L) { return fy_checkudata(L, 1, CONN_MT); }

static double opt_field(lua_State *L, int t, const char *k, double def) {
  lua_getfield(L, t, k);
  double v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tonumberx(L, -1, &ok);
    if (!ok || v < 0) fy_argerror(L, t, "ws.connect: %s: expected a number >= 0", k);
  }
  lua_pop(L, 1);
  return v;
}

/* open(url, opts) -> conn, connecting (wait_open parks until it is open or failed) */
static int l_open(lua_State *L) {
  const char *url = fy_checkstring(L, 1);
  lua_settop(L, 2);
  if (lua_isnil(L, 2)) lua_newtable(L), lua_replace(L, 2);
  fy_checktype(L, 2, LUA_TTABLE);
  fy_ws_opts_t o = {0};
  o.connect_timeout = opt_field(L, 2, "timeout", 10);
  o.ping_interval = opt_field(L, 2, "ping_interval", 0);
  o.pong_timeout = opt_field(L, 2, "pong_timeout", 5);
  o.max_message = (size_t)opt_field(L, 2, "max_message", 0);
  lua_getfield(L, 2, "background");
  o.background = lua_toboolean(L, -1);
  lua_pop(L, 1);
  size_t backlog = (size_t)opt_field(L, 2, "max_backlog", DEFAULT_BACKLOG);
  fy_ws_t *w = ws_get(L);
  lconn_t *l = lua_newuserdatauv(L, sizeof *l, 0);
  memset(l, 0, sizeof *l);
  l->max_backlog = backlog ? backlog : DEFAULT_BACKLOG;
  static const fy_ws_cbs_t cbs = {on_open, on_message, on_close};
  char err[160];
  l->c = fy_ws_connect(w, url, &o, &cbs, l, err, sizeof err);
  if (!l->c) return fy_raise(L, "invalid_argument", "ws.open: %s", err);
  luaL_setmetatable(L, CONN_MT);                        /* only now: __gc needs l->c */
  return 1;
}

/* keep_alive(bool): does this connection keep the engine alive? (true unless opened with
 * background = true; a feed nobody reads turns it off, its first reader on) */
static int l_keep_alive(lua_State *L) {
  lconn_t *l = check_conn(L);
  if (l->c) fy_ws_keep_alive(l->c, lua_toboolean(L, 2));
  return 0;
}

/* wait_open() -> true | nil, err (the connect deadline is the connection's own) */
static int l_wait_open(lua_State *L) {
  lconn_t *l = check_conn(L);
  if (l->open && !l->closed) { lua_pushboolean(L, 1); return 1; }
  if (l->closed || !l->c) { push_closed(L, l); return 2; }
  if (l->op) return fy_raise(L, "invalid_argument", "ws: another task is already waiting on this connection");
  l->op = fy_op_new(L, 0, op_cancel, l);
  l->waits_open = 1;
  return fy_op_yield(L, l->op);
}

static int l_send(lua_State *L) {
  lconn_t *l = check_conn(L);
  size_t n;
  const char *p = fy_checklstring(L, 2, &n);
  int binary = lua_isstring(L, 3) && !strcmp(lua_tostring(L, 3), "binary");
  if (!l->c || l->closed || !l->open || fy_ws_send(l->c, p, n, binary) != 0) {
    if (l->closed) { push_closed(L, l); return 2; }
    return fy_fail(L, "provider_down", "websocket not open");
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_recv(lua_State *L) {
  lconn_t *l = check_conn(L);
  double timeout = fy_optnumber(L, 2, 0);
  if (l->op) return fy_raise(L, "invalid_argument", "ws: another task is already reading this connection");
  fy_task_require(L, "ws:recv");
  if (l->head) return pop_item(L, l);
  if (l->closed || !l->c) { push_closed(L, l); return 2; }
  l->op = fy_op_new(L, timeout, op_cancel, l);
  l->waits_open = 0;
  return fy_op_yield(L, l->op);
}

static int l_close(lua_State *L) {
  lconn_t *l = check_conn(L);
  int code = (int)fy_optinteger(L, 2, 1000);
  const char *reason = fy_optstring(L, 3, "");
  if (l->c && !l->closed) fy_ws_close(l->c, code, reason);
  return 0;
}

static int l_gc(lua_State *L) {
  lconn_t *l = check_conn(L);
  if (l->c) fy_ws_release(l->c);
  l->c = NULL;
  if (!l->closed) {
    l->closed = 1;
    l->why = FY_WS_ELOCAL;
    l->code = 1006;
    snprintf(l->reason, sizeof l->reason, "websocket released");
  }
  drop_items(l);
  return 0;
}

static int l_state(lua_State *L) {
  lconn_t *l = check_conn(L);
  lua_pushstring(L, l->closed ? "closed" : l->c ? fy_ws_state(l->c) : "closed");
  return 1;
}

/* close_info() -> why, code, reason (nil while open) */
static int l_close_info(lua_State *L) {
  lconn_t *l = check_conn(L);
  if (!l->closed) return 0;
  lua_pushstring(L, fy_ws_strerror(l->why));
  lua_pushinteger(L, l->code);
  lua_pushstring(L, l->reason);
  return 3;
}

static int l_pending(lua_State *L) {
  lconn_t *l = check_conn(L);
  lua_pushinteger(L, (lua_Integer)l->backlog);
  return 1;
}

static int l_stats(lua_State *L) {
  fy_ws_stats_t st = {0};
  if (g_ws) fy_ws_stats(g_ws, &st);
  lua_createtable(L, 0, 14);
#define F(n) (lua_pushinteger(L, (lua_Integer)st.n), lua_setfield(L, -2, #n))
  F(connects); F(opened); F(refused); F(closed); F(stalls); F(too_large); F(pings); F(pongs);
  F(messages_in); F(messages_out); F(bytes_in); F(bytes_out); F(open);
#undef F
  return 1;
}

int luaopen_ferry_core_ws(lua_State *L) {
  static const luaL_Reg m[] = {
    {"send", l_send}, {"recv", l_recv}, {"close", l_close}, {"state", l_state},
    {"close_info", l_close_info}, {"backlog", l_pending}, {"wait_open", l_wait_open},
    {"keep_alive", l_keep_alive}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, CONN_MT)) {
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__close");
    lua_pushstring(L, CONN_MT);
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  static const luaL_Reg f[] = {{"open", l_open}, {"stats", l_stats}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
