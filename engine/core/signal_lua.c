/*
** signal_lua.c -- process signals as something a task waits on (ferry.core.signal).
**
** Provides:
**   local w = signal.watch("INT")     -- catch SIGINT from now on (its default action is suspended)
**   w:wait([timeout]) -> "INT"         -- parks the task until one arrives; nil, {code="timeout"}
**                                        or nil, {code="closed"} otherwise
**   w.count                           -- how many arrived since watch (none is lost: an arrival
**                                        with no task waiting is kept for the next wait)
**   w:close()                         -- the default action is back (also on __gc / <close>)
**   signal.raise("USR1")              -- send one to this process
**   signal.pid(), signal.alive(pid)   -- this process's id; whether a process id exists
** Names: INT, TERM, HUP, USR1, USR2, QUIT. A watcher never keeps the engine alive: a script
** that is done exits even while it watches.
** Depends on: libuv (uv_signal: the handler only writes to libuv's pipe; the callback runs on
** the loop), task.h (fy_op), bind.h. Loop thread only.
**
** Why a watcher and not a callback: a shutdown or reload handler is a task that reads top to
** bottom (wait for the signal, then settle what is in flight, then wait for a second one), and
** an arrival between two waits must not fall through to the default action.
*/
#include "core/engine.h"
#include "core/task.h"
#include "core/bind.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SIGNAL_MT "ferry.Signal"

typedef struct watcher {
  uv_signal_t h;
  fy_engine_t *E;
  const char *name;
  int pending;        /* arrivals not yet taken by a wait */
  lua_Integer count;  /* arrivals since watch */
  fy_op_t *op;        /* the task waiting, if any */
  int closed;         /* w:close() (or __gc) ran: the handle is closing or closed */
} watcher_t;

/* The userdata holds a pointer: libuv owns the watcher's memory until the close callback. */
typedef struct { watcher_t *w; } watcher_box_t;

static const struct { const char *name; int signum; } NAMES[] = {
  {"INT", SIGINT}, {"TERM", SIGTERM}, {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"QUIT", SIGQUIT},
  {NULL, 0},
};

static void on_closed(uv_handle_t *h) { free(h->data); }

/* Settle a waiting task with nres values pushed by push(co). */
static void wake(watcher_t *w, int ok) {
  fy_op_t *op = w->op;
  if (!op) return;
  w->op = NULL;
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  if (ok) {
    lua_pushstring(co, w->name);
    fy_op_ready(op, 1);
  } else {
    lua_pushnil(co);
    fy_push_error(co, "closed", "signal watcher closed");
    fy_op_ready(op, 2);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  watcher_t *w = h->data;
  w->count++;
  if (w->op) wake(w, 1);
  else w->pending++;
}

static void on_cancel(fy_op_t *op, void *data) {
  (void)op;
  ((watcher_t *)data)->op = NULL;   /* the timeout or a cancel settled it: detach */
}

static watcher_t *check(lua_State *L) {
  watcher_box_t *b = fy_checkudata(L, 1, SIGNAL_MT);
  return b->w;
}

/* Close the box's watcher: its memory goes to libuv (freed in on_closed) and the box forgets
 * it. A handle the engine's shutdown already closed (close_walk, no callback) stays with the
 * box, and __gc frees it after the loop is closed. */
static void box_close(watcher_box_t *b) {
  watcher_t *w = b->w;
  if (!w) return;
  if (!w->closed) {
    w->closed = 1;
    wake(w, 0);
  }
  if (uv_is_closing((uv_handle_t *)&w->h)) return;
  b->w = NULL;
  uv_signal_stop(&w->h);
  uv_close((uv_handle_t *)&w->h, on_closed);
}

static int l_watch(lua_State *L) {
  const char *name = fy_checkstring(L, 1);
  int signum = 0;
  for (int i = 0; NAMES[i].name; i++)
    if (strcmp(NAMES[i].name, name) == 0) { signum = NAMES[i].signum; name = NAMES[i].name; break; }
  if (!signum) return fy_argerror(L, 1, "unknown signal '%s' (INT, TERM, HUP, USR1, USR2 or QUIT)", name);
  fy_engine_t *E = fy_engine(L);
  if (E->closing) return fy_raise(L, "closed", "signal.watch: the engine is shutting down");
  watcher_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->w = NULL;
  luaL_setmetatable(L, SIGNAL_MT);
  watcher_t *w = calloc(1, sizeof *w);
  if (!w) return fy_raise(L, "out_of_memory", "signal.watch: out of memory");
  w->E = E;
  w->name = name;
  if (uv_signal_init(&E->loop, &w->h) != 0) { free(w); return fy_raise(L, "io_error", "signal.watch: uv_signal_init failed"); }
  w->h.data = w;
  b->w = w;
  int rc = uv_signal_start(&w->h, on_signal, signum);
  if (rc != 0) {
    box_close(b);
    return fy_raise(L, "io_error", "signal.watch(%s): %s", name, uv_strerror(rc));
  }
  uv_unref((uv_handle_t *)&w->h);
  return 1;
}

/* raise(name): send the signal to this process (specs, and a script that stops itself) */
static int l_raise(lua_State *L) {
  const char *name = fy_checkstring(L, 1);
  for (int i = 0; NAMES[i].name; i++)
    if (strcmp(NAMES[i].name, name) == 0) {
      int rc = uv_kill(uv_os_getpid(), NAMES[i].signum);
      if (rc != 0) return fy_raise(L, "io_error", "signal.raise(%s): %s", name, uv_strerror(rc));
      return 0;
    }
  return fy_argerror(L, 1, "unknown signal '%s' (INT, TERM, HUP, USR1, USR2 or QUIT)", name);
}

/* pid() -> this process's id; alive(pid) -> whether a process with that id exists here (a
 * lease left by a process that died can be taken at once instead of after its TTL) */
static int l_pid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getpid());
  return 1;
}

static int l_alive(lua_State *L) {
  lua_Integer pid = fy_checkinteger(L, 1);
  int rc = pid > 0 ? uv_kill((int)pid, 0) : UV_ESRCH;
  lua_pushboolean(L, rc == 0 || rc == UV_EPERM);
  return 1;
}

static int l_wait(lua_State *L) {
  watcher_t *w = check(L);
  double timeout = fy_optnumber(L, 2, 0);
  if (!w || w->closed) return fy_fail(L, "closed", "signal watcher closed");
  if (w->pending > 0) {
    w->pending--;
    lua_pushstring(L, w->name);
    return 1;
  }
  if (w->op) return fy_raise(L, "invalid_argument", "signal %s: another task is waiting on this watcher", w->name);
  fy_op_t *op = fy_op_new(L, timeout, on_cancel, w);
  w->op = op;
  return fy_op_yield(L, op);
}

static int l_close(lua_State *L) {
  box_close(fy_checkudata(L, 1, SIGNAL_MT));
  return 0;
}

/* __gc: close if still open; a handle the engine closed at shutdown is freed here */
static int l_gc(lua_State *L) {
  watcher_box_t *b = fy_checkudata(L, 1, SIGNAL_MT);
  watcher_t *w = b->w;
  if (w && uv_is_closing((uv_handle_t *)&w->h)) {
    b->w = NULL;
    free(w);
    return 0;
  }
  box_close(b);
  return 0;
}

static int l_index(lua_State *L) {
  watcher_t *w = check(L);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "count") == 0) { lua_pushinteger(L, w ? w->count : 0); return 1; }
  if (k && strcmp(k, "name") == 0) { lua_pushstring(L, w ? w->name : "?"); return 1; }
  luaL_getmetatable(L, SIGNAL_MT);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int l_tostring(lua_State *L) {
  watcher_t *w = check(L);
  lua_pushfstring(L, "signal watcher (%s, %s)", w ? w->name : "?", w && !w->closed ? "open" : "closed");
  return 1;
}

int luaopen_ferry_core_signal(lua_State *L) {
  static const luaL_Reg methods[] = {{"wait", l_wait}, {"close", l_close}, {NULL, NULL}};
  luaL_newmetatable(L, SIGNAL_MT);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, l_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"watch", l_watch}, {"raise", l_raise}, {"pid", l_pid}, {"alive", l_alive}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
