/*
** http_lua.c -- ferry.core.http: request(url, opts) from a task, parked on an op.
*/
#include "core/engine.h"
#include "core/task.h"
#include "net/http.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

static fy_http_t *g_http;

static void http_shutdown(void *data) {
  (void)data;
  fy_http_close(g_http);
  g_http = NULL;
}

static fy_http_t *http_get(lua_State *L) {
  if (!g_http) {
    fy_engine_t *E = fy_engine(L);
    g_http = fy_http_new(&E->loop);
    if (!g_http) luaL_error(L, "http: cannot initialise libcurl");
    fy_engine_on_shutdown(E, http_shutdown, NULL);
  }
  return g_http;
}

typedef struct {
  fy_http_req_t *req;
  fy_op_t *op;
} call_t;

/* Push the header block as {lowercased-name = value}. */
static void push_headers(lua_State *L, const char *h, size_t n) {
  lua_newtable(L);
  const char *end = h + n;
  while (h < end) {
    const char *eol = memchr(h, '\n', (size_t)(end - h));
    if (!eol) eol = end;
    const char *colon = memchr(h, ':', (size_t)(eol - h));
    if (colon) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *p = h; p < colon; p++) luaL_addchar(&b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
      luaL_pushresult(&b);
      const char *v = colon + 1, *ve = eol;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
      lua_pushlstring(L, v, (size_t)(ve - v));
      lua_rawset(L, -3);
    }
    h = eol + 1;
  }
}

static void on_done(fy_http_req_t *req, int rc, void *data) {
  call_t *c = data;
  fy_op_t *op = c->op;
  free(c);
  if (!op || !fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  fy_http_result_t res;
  fy_http_result(req, &res);
  if (rc != FY_HTTP_OK) {
    const char *code = rc == FY_HTTP_ETIMEDOUT ? "timeout"
                     : rc == FY_HTTP_ETOOLARGE ? "bad_response" : "provider_down";
    lua_pushnil(co);
    fy_push_error(co, code, res.error && res.error[0] ? res.error : fy_http_strerror(rc));
    lua_pushstring(co, rc == FY_HTTP_EREFUSED ? "refused" : rc == FY_HTTP_ERESET ? "reset"
                       : rc == FY_HTTP_ETOOLARGE ? "too_large"
                       : rc == FY_HTTP_ETIMEDOUT ? "timeout" : rc == FY_HTTP_ERESOLVE ? "resolve" : "io");
    lua_setfield(co, -2, "transport");
    fy_op_ready(op, 2);
    return;
  }
  lua_pushinteger(co, res.status);
  lua_pushlstring(co, res.body, res.body_len);
  push_headers(co, res.headers, res.headers_len);
  fy_op_ready(op, 3);
}

static void on_cancel(fy_op_t *op, void *data) {
  call_t *c = data;
  (void)op;
  fy_http_cancel(c->req);
  free(c);
}

/* request(url, {method=, body=, headers={...}, timeout=, max_bytes=})
 *   -> status, body, headers | nil, err */
static int l_request(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  const char *method = NULL, *body = NULL;
  size_t body_len = 0, max_bytes = 0;
  double timeout = 30;
  const char *hdrs[33];
  int nh = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "method");
    method = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "body");
    body = luaL_optlstring(L, -1, NULL, &body_len);
    lua_getfield(L, 2, "timeout");
    timeout = luaL_optnumber(L, -1, 30);
    lua_getfield(L, 2, "max_bytes");
    max_bytes = (size_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 2, "headers"); /* {name = value} or {"Name: value"} */
    if (lua_istable(L, -1)) {
      int ht = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, ht)) {
        if (nh == 32) return luaL_error(L, "http.request: too many headers");
        if (lua_type(L, -2) == LUA_TSTRING) {
          hdrs[nh++] = lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), luaL_checkstring(L, -1));
          lua_insert(L, ht); /* keep the string alive below the iteration */
          ht++;
        } else {
          hdrs[nh++] = luaL_checkstring(L, -1);
        }
        lua_pop(L, 1);
      }
    }
  }
  hdrs[nh] = NULL;
  luaL_argcheck(L, timeout > 0, 2, "timeout must be > 0");
  fy_task_require(L, "http.request");
  fy_http_t *h = http_get(L);
  call_t *c = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "http.request: out of memory");
  fy_op_t *op = fy_op_new(L, timeout, on_cancel, c);
  int rc;
  c->op = op;
  c->req = fy_http_start(h, url, method, hdrs, body, body_len, max_bytes, timeout, on_done, c, &rc);
  if (!c->req) {
    free(c);
    fy_op_abort(op);
    return fy_fail(L, "provider_down", "http: %s", fy_http_strerror(rc));
  }
  return fy_op_yield(L, op);
}

static int l_stats(lua_State *L) {
  fy_http_stats_t st = {0};
  if (g_http) fy_http_stats(g_http, &st);
  lua_createtable(L, 0, 8);
#define F(n) (lua_pushinteger(L, (lua_Integer)st.n), lua_setfield(L, -2, #n))
  F(requests); F(ok); F(failed); F(cancelled); F(bytes_in); F(bytes_out); F(active); F(sockets);
#undef F
  return 1;
}

int luaopen_ferry_core_http(lua_State *L) {
  static const luaL_Reg f[] = {{"request", l_request}, {"stats", l_stats}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
