/*
** engine.c -- create the loop and the Lua state, register modules, shut down in order.
*/
#include "core/engine.h"
#include "core/task.h"
#include "core/bind.h"
#include "core/log.h"

#include <lauxlib.h>
#include <lualib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fy_engine_on_shutdown(fy_engine_t *E, fy_shutdown_fn fn, void *data) {
  fy_hook_t *h = malloc(sizeof *h);
  if (!h) abort();
  h->fn = fn;
  h->data = data;
  h->next = E->hooks;
  E->hooks = h;
}

static int at_panic(lua_State *L) {
  fprintf(stderr, "ferry: unprotected Lua error: %s\n", lua_tostring(L, -1));
  fflush(stderr);
  abort();
}

/* "code: message"; a field that is not text shows as its type (a raise must not fail to print) */
static int error_tostring(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE) { lua_pushliteral(L, "error"); return 1; }
  lua_rawget(L, (lua_pushliteral(L, "code"), 1));
  lua_rawget(L, (lua_pushliteral(L, "message"), 1));
  const char *code = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "error";
  const char *msg = lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                  : lua_isnil(L, -1) ? "" : luaL_typename(L, -1);
  lua_pushfstring(L, "%s: %s", code, msg);
  return 1;
}

/* The folder holding stdlib/: FERRY_HOME, or the executable's folder or one of its parents
 * (./ferry and build/asan/ferry both find the repository's stdlib). */
static void find_home(char *out, size_t n) {
  const char *env = getenv("FERRY_HOME");
  if (env && *env) { snprintf(out, n, "%s", env); return; }
  char exe[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k <= 0) { snprintf(out, n, "."); return; }
  exe[k] = 0;
  for (int up = 0; up < 4; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash) break;
    *slash = 0;
    char probe[PATH_MAX + 48];
    snprintf(probe, sizeof probe, "%s/stdlib/ferry/init.lua", exe);
    if (access(probe, R_OK) == 0) { snprintf(out, n, "%s", exe); return; }
    /* make install: PREFIX/bin/ferry with PREFIX/share/ferry/stdlib */
    snprintf(probe, sizeof probe, "%s/share/ferry/stdlib/ferry/init.lua", exe);
    if (access(probe, R_OK) == 0) {
      int w = snprintf(out, n, "%s/share/ferry", exe);
      if (w > 0 && (size_t)w < n) return;
    }
  }
  snprintf(out, n, ".");
}

/* [-0, +0] boot(modules): the state's libraries, package paths, the C modules in preload,
 * the error metatable, then stdlib/ferry/boot.lua */
static int boot(lua_State *L) {
  const luaL_Reg *modules = lua_touserdata(L, 1);
  char home[PATH_MAX];
  find_home(home, sizeof home);
  luaL_openlibs(L);
  /* [package] */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/stdlib/?.lua;%s/stdlib/?/init.lua;./?.lua;./?/init.lua;"
                     "/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua", home, home);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/local/lib/lua/5.4/?.so;./?.so");
  lua_setfield(L, -2, "cpath");
  lua_getfield(L, -1, "preload");
  luaL_setfuncs(L, modules, 0);
  lua_pop(L, 2);
  lua_pushstring(L, home);
  lua_setfield(L, LUA_REGISTRYINDEX, "ferry.home");
  luaL_newmetatable(L, "ferry.Error");
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  fy_bytes_init(L);
  /* stdlib/ferry/boot.lua: coroutine forwarding, os.exit, print */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ferry.boot");
  lua_call(L, 1, 0);
  return 0;
}

fy_engine_t *fy_engine_new(const luaL_Reg *modules) {
  fy_engine_t *E = calloc(1, sizeof *E);
  if (!E) return NULL;
  if (uv_loop_init(&E->loop) != 0) { free(E); return NULL; }
  lua_State *L = luaL_newstate();
  if (!L) { uv_loop_close(&E->loop); free(E); return NULL; }
  *(fy_engine_t **)lua_getextraspace(L) = E;
  E->L = L;
  lua_atpanic(L, at_panic);
  const char *gc = getenv("FERRY_GC");
  if (gc && strcmp(gc, "aggressive") == 0) lua_gc(L, LUA_GCINC, 50, 400, 0);
  const char *lv = getenv("FERRY_LOG");
  if (lv && fy_log_configure(lv) != 0) fprintf(stderr, "ferry: ignoring FERRY_LOG=%s\n", lv);
  fy__sched_init(E);
  lua_pushcfunction(L, boot);
  lua_pushlightuserdata(L, (void *)modules);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "ferry: cannot start: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    fy_engine_close(E);
    return NULL;
  }
  return E;
}

void fy_engine_run(fy_engine_t *E) {
  if (!E->exiting) uv_run(&E->loop, UV_RUN_DEFAULT);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int fy_engine_close(fy_engine_t *E) {
  int code = E->exit_code;
  E->closing = 1;
  fy__sched_cancel_all(E);
  while (E->hooks) {
    fy_hook_t *h = E->hooks;
    E->hooks = h->next;
    h->fn(h->data);
    free(h);
  }
  /* handles owned by modules close themselves through their hooks; the rest (the
   * scheduler's own) are closed here */
  uv_walk(&E->loop, close_walk, NULL);
  while (uv_loop_close(&E->loop) == UV_EBUSY) uv_run(&E->loop, UV_RUN_ONCE);
  lua_close(E->L);
  free(E);
  return code;
}
