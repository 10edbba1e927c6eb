/*
** http_lua.c -- ferry.core.http: request(url, opts) from a task, parked on an op.
*/
#include "core/bind.h"
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

#define MAX_HEADERS 64

/* One header line from the headers table's key k and value v (absolute indices): pushes
 * "Name: value" (name = value form) or the value itself (array form, numbers taken as text).
 * A value that is not text, or holds a line break, is refused: curl would send it as it is. */
static void push_header_line(lua_State *L, int k, int v) {
  int tv = lua_type(L, v);
  if (tv != LUA_TSTRING && tv != LUA_TNUMBER)
    fy_argerror(L, 2, "http.request: headers: a value must be a string or a number, got %s", luaL_typename(L, v));
  if (lua_type(L, k) == LUA_TSTRING) {
    lua_pushvalue(L, v);
    const char *val = lua_tostring(L, -1); /* converts the copy, never the table's value */
    lua_pushfstring(L, "%s: %s", lua_tostring(L, k), val);
    lua_remove(L, -2);
  } else {
    lua_pushvalue(L, v);
    lua_tostring(L, -1);
  }
  size_t n;
  const char *line = lua_tolstring(L, -1, &n);
  if (memchr(line, '\r', n) || memchr(line, '\n', n) || strlen(line) != n)
    fy_argerror(L, 2, "http.request: headers: a header may not hold a line break or a NUL byte");
}

/* request(url, {timeout=, method=, body=, headers={...}, max_bytes=}): timeout (seconds) is required
 *   -> status, body, headers | nil, err
 * The header lines live in a table on the stack (one slot, however many headers) until curl
 * has copied them: fy_http_start returns only after curl_slist_append did. */
static int l_request(lua_State *L) {
  const char *url = fy_checkstring(L, 1);
  const char *method = NULL, *body = NULL;
  size_t body_len = 0, max_bytes = 0;
  double timeout = 0;                     /* required: the one default lives in ferry.rpc */
  const char *hdrs[MAX_HEADERS + 1];
  int nh = 0;
  lua_settop(L, 2);
  lua_createtable(L, 8, 0);                                   /* [3] the header lines */
  {
    fy_checktype(L, 2, LUA_TTABLE);                           /* options: timeout is required */
    lua_getfield(L, 2, "method");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) fy_argerror(L, 2, "http.request: method: expected a string");
    method = lua_tostring(L, -1);
    lua_getfield(L, 2, "body");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) fy_argerror(L, 2, "http.request: body: expected a string");
    body = lua_tolstring(L, -1, &body_len);
    lua_getfield(L, 2, "timeout");
    int isnum;
    timeout = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(timeout > 0) || timeout > 1e9) fy_argerror(L, 2, "http.request: timeout: expected a number of seconds > 0");
    lua_getfield(L, 2, "max_bytes");
    if (!lua_isnil(L, -1)) {
      int isint;
      lua_Integer mb = lua_tointegerx(L, -1, &isint);
      if (!isint || mb < 0) fy_argerror(L, 2, "http.request: max_bytes: expected an integer >= 0");
      max_bytes = (size_t)mb;
    }
    lua_getfield(L, 2, "headers"); /* {name = value} or {"Name: value"} */
    int ht = lua_gettop(L);
    if (lua_istable(L, ht)) {
      lua_pushnil(L);
      while (lua_next(L, ht)) {                                /* [..., key, value] */
        if (nh == MAX_HEADERS) fy_argerror(L, 2, "http.request: headers: more than %d", MAX_HEADERS);
        push_header_line(L, lua_gettop(L) - 1, lua_gettop(L));
        lua_rawseti(L, 3, ++nh);
        lua_pop(L, 1);                                         /* [..., key] */
      }
    } else if (!lua_isnil(L, ht)) {
      fy_argerror(L, 2, "http.request: headers: expected a table");
    }
  }
  for (int i = 0; i < nh; i++) {
    lua_rawgeti(L, 3, i + 1);
    hdrs[i] = lua_tostring(L, -1);                             /* kept alive by the table at 3 */
    lua_pop(L, 1);
  }
  hdrs[nh] = NULL;
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
