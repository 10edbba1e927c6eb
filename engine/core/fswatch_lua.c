/*
** fswatch_lua.c -- a directory's changes as something a task waits on (ferry.core.fswatch).
**
** Provides:
**   local w = fswatch.watch("policies")   -- watch a directory (uv_fs_event, not recursive)
**   w:wait([timeout]) -> "name.lua"       -- parks the task until something in it changes: the
**                                            name of the entry that changed; nil, {code="timeout"}
**                                            or nil, {code="closed"} otherwise
**   w.count                               -- how many events since watch
**   w:close()                             -- also on __gc / <close>
**   fswatch.list(dir) -> {"a.lua", ...}    -- the regular names in dir, sorted (nil, err if none);
**                                            a local directory of a few files, read at once
** Changes that arrive while no task waits are kept (the latest name, and that there were
** some), so the next wait returns at once: a reloader never misses an edit made while it was
** reloading. Why the directory and not each file: editors write a temp file and rename it
** over the old one, which a watch on the file itself loses (STYLE.md 3.7). Debouncing is the
** caller's (ferry.policy). A watcher never keeps the engine alive.
** Depends on: libuv (uv_fs_event), task.h (fy_op), bind.h. Loop thread only.
*/
#include "core/engine.h"
#include "core/task.h"
#include "core/bind.h"

#include <dirent.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define FSWATCH_MT "ferry.FsWatch"

typedef struct watcher {
  uv_fs_event_t h;
  int pending;           /* events not yet taken by a wait */
  char last[256];        /* the name of the latest entry that changed */
  lua_Integer count;
  fy_op_t *op;           /* the task waiting, if any */
  int closed;
} watcher_t;

typedef struct { watcher_t *w; } watcher_box_t;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void wake(watcher_t *w, int ok) {
  fy_op_t *op = w->op;
  if (!op) return;
  w->op = NULL;
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  if (ok) {
    lua_pushstring(co, w->last);
    fy_op_ready(op, 1);
  } else {
    lua_pushnil(co);
    fy_push_error(co, "closed", "fswatch watcher closed");
    fy_op_ready(op, 2);
  }
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status) {
  (void)events;
  watcher_t *w = h->data;
  if (status < 0) return;
  w->count++;
  snprintf(w->last, sizeof w->last, "%s", filename ? filename : "");
  if (w->op) wake(w, 1);
  else w->pending = 1;
}

static void on_cancel(fy_op_t *op, void *data) {
  (void)op;
  ((watcher_t *)data)->op = NULL;
}

static void box_close(watcher_box_t *b) {
  watcher_t *w = b->w;
  if (!w) return;
  if (!w->closed) {
    w->closed = 1;
    wake(w, 0);
  }
  if (uv_is_closing((uv_handle_t *)&w->h)) return;
  b->w = NULL;
  uv_fs_event_stop(&w->h);
  uv_close((uv_handle_t *)&w->h, on_closed);
}

static int l_watch(lua_State *L) {
  const char *path = fy_checklstring(L, 1, NULL);
  fy_engine_t *E = fy_engine(L);
  if (E->closing) return fy_raise(L, "closed", "fswatch.watch: the engine is shutting down");
  watcher_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->w = NULL;
  luaL_setmetatable(L, FSWATCH_MT);
  watcher_t *w = calloc(1, sizeof *w);
  if (!w) return fy_raise(L, "out_of_memory", "fswatch.watch: out of memory");
  if (uv_fs_event_init(&E->loop, &w->h) != 0) {
    free(w);
    return fy_raise(L, "io_error", "fswatch.watch: uv_fs_event_init failed");
  }
  w->h.data = w;
  b->w = w;
  int rc = uv_fs_event_start(&w->h, on_event, path, 0);
  if (rc != 0) {
    box_close(b);
    return fy_fail(L, rc == UV_ENOENT ? "not_found" : "io_error", "fswatch.watch(%s): %s", path, uv_strerror(rc));
  }
  uv_unref((uv_handle_t *)&w->h);
  return 1;
}

static int l_wait(lua_State *L) {
  watcher_box_t *b = fy_checkudata(L, 1, FSWATCH_MT);
  watcher_t *w = b->w;
  double timeout = fy_optnumber(L, 2, 0);
  if (!w || w->closed) return fy_fail(L, "closed", "fswatch watcher closed");
  if (w->pending) {
    w->pending = 0;
    lua_pushstring(L, w->last);
    return 1;
  }
  if (w->op) return fy_raise(L, "invalid_argument", "fswatch: another task is waiting on this watcher");
  fy_op_t *op = fy_op_new(L, timeout, on_cancel, w);
  w->op = op;
  return fy_op_yield(L, op);
}

static int l_close(lua_State *L) {
  box_close(fy_checkudata(L, 1, FSWATCH_MT));
  return 0;
}

static int l_gc(lua_State *L) {
  watcher_box_t *b = fy_checkudata(L, 1, FSWATCH_MT);
  watcher_t *w = b->w;
  if (w && uv_is_closing((uv_handle_t *)&w->h)) {   /* the engine's shutdown closed it */
    b->w = NULL;
    free(w);
    return 0;
  }
  box_close(b);
  return 0;
}

static int l_index(lua_State *L) {
  watcher_box_t *b = fy_checkudata(L, 1, FSWATCH_MT);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "count") == 0) {
    lua_pushinteger(L, b->w ? b->w->count : 0);
    return 1;
  }
  luaL_getmetatable(L, FSWATCH_MT);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int l_list(lua_State *L) {
  const char *path = fy_checklstring(L, 1, NULL);
  DIR *d = opendir(path);
  if (!d) return fy_fail(L, "not_found", "cannot read the directory %s", path);
  size_t n = 0, cap = 16;
  char **names = malloc(cap * sizeof *names);
  struct dirent *e;
  while (names && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      char **more = realloc(names, (cap *= 2) * sizeof *names);
      if (!more) break;
      names = more;
    }
    names[n] = strdup(e->d_name);
    if (names[n]) n++;
  }
  closedir(d);
  if (!names) return fy_raise(L, "out_of_memory", "fswatch.list: out of memory");
  qsort(names, n, sizeof *names, cmp_names);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    free(names[i]);
  }
  free(names);
  return 1;
}

int luaopen_ferry_core_fswatch(lua_State *L) {
  static const luaL_Reg methods[] = {{"wait", l_wait}, {"close", l_close}, {NULL, NULL}};
  luaL_newmetatable(L, FSWATCH_MT);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, l_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"watch", l_watch}, {"list", l_list}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
