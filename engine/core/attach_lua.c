/*
** attach_lua.c -- ferry.core.attach: the Unix socket `ferry repl --attach` talks to.
**
** Provides:
**   attach.listen(path) -> server | nil, err    -- a socket at path, mode 0600, in a directory
**                                                 that is ours and 0700 (made so if missing);
**                                                 a stale socket there is replaced
**   server:accept([timeout]) -> conn | nil, err -- parks until a peer with this process's uid
**                                                 connects; any other uid is answered with one
**                                                 refusal line and closed (server.refused counts)
**   attach.connect(path) -> conn                -- the client's side; conn:connected([timeout])
**                                                 -> true | nil, err parks until it is made
**   conn:read_line([timeout]) -> line | nil, err ("closed", "timeout")
**   conn:write(s)                               -- queued on the loop; false once closed
**   conn:ask_now(line, ms) -> answer | nil      -- one blocking round trip (Tab completion)
**   attach.pcall(conn, fn, budget) -> true, ... | false, err
**                                              -- fn in this task; while it runs without
**                                                 yielding, a line with "interrupt" arriving on
**                                                 conn (or `budget` instructions) stops it with
**                                                 "interrupted"; errors get a traceback
**   conn:close(), server:close()               (also __gc / <close>)
** Frames are lines of JSON (one object per line; JSON escapes newlines), kept by ferry.repl.
**
** Why the guard peeks at the socket: `while true do end` never gives the loop back, so an
** interrupt frame would wait in the kernel's buffer forever. A count hook on the evaluating
** thread looks there (recv MSG_PEEK, non-blocking) every few thousand instructions, as lua.c's
** SIGINT handler sets a hook (STYLE.md 3.9). Neither handle keeps the engine alive.
** Depends on: libuv (uv_pipe), task.h (fy_op), bind.h; Linux SO_PEERCRED. Loop thread only.
*/
#include "core/engine.h"
#include "core/task.h"
#include "core/bind.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SERVER_MT "ferry.AttachServer"
#define CONN_MT "ferry.AttachConn"
#define MAX_BACKLOG 16
#define MAX_LINE (4 << 20)
#define GUARD_EVERY 10000

typedef struct conn {
  uv_pipe_t h;
  char *buf;
  size_t len, cap;
  int eof, closed;
  fy_op_t *op;             /* a task waiting for a line, or for the connection */
  uv_connect_t creq;
  int connected;           /* client side: 1 ok, <0 error */
} conn_t;

typedef struct server {
  uv_pipe_t h;
  fy_engine_t *E;
  conn_t *queue[MAX_BACKLOG];
  int nqueue;
  fy_op_t *op;
  int closed;
  lua_Integer refused;
} server_t;

typedef struct { server_t *s; } server_box_t;
typedef struct { conn_t *c; } conn_box_t;

/* A write to a peer that closed (a refusal, an engine that stopped) is an error to handle,
 * not the end of the process. */
static void ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static void server_free_cb(uv_handle_t *h) { free(h->data); }

static void conn_free_cb(uv_handle_t *h) {
  conn_t *c = h->data;
  free(c->buf);
  free(c);
}

static void conn_close(conn_t *c) {
  if (!c || c->closed) return;
  c->closed = 1;
  if (c->op) {
    fy_op_t *op = c->op;
    c->op = NULL;
    if (fy_op_settle(op)) {
      lua_State *co = fy_op_thread(op);
      lua_pushnil(co);
      fy_push_error(co, "closed", "connection closed");
      fy_op_ready(op, 2);
    }
  }
  if (!uv_is_closing((uv_handle_t *)&c->h)) uv_close((uv_handle_t *)&c->h, conn_free_cb);
}

/* ------------------------------------------------------------------ reading lines */

static int push_line(lua_State *L, conn_t *c) {
  char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
  if (!nl) return 0;
  size_t n = (size_t)(nl - c->buf);
  lua_pushlstring(L, c->buf, n);
  memmove(c->buf, nl + 1, c->len - n - 1);
  c->len -= n + 1;
  return 1;
}

static void wake_reader(conn_t *c) {
  fy_op_t *op = c->op;
  if (!op) return;
  lua_State *co = fy_op_thread(op);
  char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
  if (!nl && !c->eof) return;
  c->op = NULL;
  if (!fy_op_settle(op)) return;
  if (push_line(co, c)) {
    fy_op_ready(op, 1);
  } else {
    lua_pushnil(co);
    fy_push_error(co, "closed", "the other side closed the connection");
    fy_op_ready(op, 2);
  }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn_t *c = h->data;
  if (c->cap - c->len < 4096) {
    size_t cap = c->cap ? c->cap * 2 : 8192;
    char *nb = cap <= MAX_LINE ? realloc(c->buf, cap) : NULL;
    if (nb) { c->buf = nb; c->cap = cap; }
  }
  (void)hint;
  b->base = c->buf ? c->buf + c->len : NULL;
  b->len = c->buf ? c->cap - c->len : 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *c = s->data;
  (void)b;
  if (n > 0) c->len += (size_t)n;
  else if (n < 0) {
    c->eof = 1;
    uv_read_stop(s);
  }
  if (!c->eof && c->len == c->cap && !memchr(c->buf, '\n', c->len)) {   /* a line past MAX_LINE */
    c->eof = 1;
    uv_read_stop(s);
  }
  wake_reader(c);
}

static void read_cancel(fy_op_t *op, void *data) {
  (void)op;
  ((conn_t *)data)->op = NULL;
}

static conn_t *check_conn(lua_State *L) {
  conn_box_t *b = fy_checkudata(L, 1, CONN_MT);
  return b->c;
}

static int l_read_line(lua_State *L) {
  conn_t *c = check_conn(L);
  double timeout = fy_optnumber(L, 2, 0);
  if (!c || c->closed) return fy_fail(L, "closed", "connection closed");
  if (push_line(L, c)) return 1;
  if (c->eof) return fy_fail(L, "closed", "the other side closed the connection");
  if (c->op) return fy_raise(L, "invalid_argument", "attach: another task is reading this connection");
  fy_op_t *op = fy_op_new(L, timeout, read_cancel, c);
  c->op = op;
  return fy_op_yield(L, op);
}

/* ------------------------------------------------------------------ writing */

typedef struct { uv_write_t req; char data[]; } wreq_t;

static void write_cb(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static int conn_write(conn_t *c, const char *s, size_t n) {
  if (!c || c->closed) return 0;
  wreq_t *w = malloc(sizeof *w + n);
  if (!w) return 0;
  memcpy(w->data, s, n);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, write_cb) != 0) {
    free(w);
    return 0;
  }
  return 1;
}

static int l_write(lua_State *L) {
  conn_t *c = check_conn(L);
  size_t n;
  const char *s = fy_checklstring(L, 2, &n);
  lua_pushboolean(L, conn_write(c, s, n));
  return 1;
}

/* conn:ask_now(line, timeout_ms) -> the answer line | nil: one request and its answer, blocking.
 * Only for the client's Tab completion, which libedit asks for outside any task and cannot
 * wait for; the client has nothing else to do while its user waits on the Tab. */
static int l_ask_now(lua_State *L) {
  conn_t *c = check_conn(L);
  size_t n;
  const char *s = fy_checklstring(L, 2, &n);
  int timeout = (int)fy_optinteger(L, 3, 300);
  uv_os_fd_t fd;
  if (!c || c->closed || c->eof || uv_fileno((uv_handle_t *)&c->h, &fd) != 0) return 0;
  size_t off = 0;
  while (off < n) {
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, timeout) <= 0) return 0;
    ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR) return 0;
    if (w > 0) off += (size_t)w;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout) <= 0) return 0;
    char tmp[4096];
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r == 0) return 0;
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return 0;
    }
    char *nl = memchr(tmp, '\n', (size_t)r);
    luaL_addlstring(&b, tmp, nl ? (size_t)(nl - tmp) : (size_t)r);
    if (nl) break;   /* nothing follows an answer while the client waits at its prompt */
  }
  luaL_pushresult(&b);
  return 1;
}

/* ------------------------------------------------------------------ interrupt guard */

/* One slot per evaluation running guarded: its thread, the connection's fd to peek at, and
 * what is left of its instruction budget. */
static struct { lua_State *thread; int fd; long long left; } guards[16];

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, stop_hook, LUA_MASKCOUNT, 1);   /* a pcall that catches it is stopped again */
  luaL_error(L, "interrupted");
}

static void guard_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++) {
    if (guards[i].thread != L) continue;
    guards[i].left -= GUARD_EVERY;
    int stop = guards[i].left <= 0;
    char peek[4096];
    ssize_t n = guards[i].fd >= 0 ? recv(guards[i].fd, peek, sizeof peek - 1, MSG_PEEK | MSG_DONTWAIT) : 0;
    if (n > 0) {
      peek[n] = 0;
      stop = stop || strstr(peek, "\"interrupt\"") != NULL;
    }
    if (stop) {
      lua_sethook(L, stop_hook, LUA_MASKCOUNT, 1);
      luaL_error(L, "interrupted");
    }
    return;
  }
}

static void unguard(lua_State *L) {
  for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++)
    if (guards[i].thread == L) guards[i].thread = NULL;
  lua_sethook(L, NULL, 0, 0);
}

/* The message handler: error tables pass, an interrupt is said so, the rest gets a traceback.
 * C, so no Lua instruction runs (and no hook fires) between the error and the unguard. */
static int guarded_msgh(lua_State *L) {
  if (lua_istable(L, 1)) return 1;
  const char *m = lua_tostring(L, 1);
  if (m && strlen(m) >= 11 && strcmp(m + strlen(m) - 11, "interrupted") == 0) {
    lua_pushliteral(L, "interrupted");
    return 1;
  }
  luaL_traceback(L, L, m ? m : luaL_typename(L, 1), 1);
  return 1;
}

static int guarded_done(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  unguard(L);
  lua_pushboolean(L, status == LUA_OK || status == LUA_YIELD);
  lua_insert(L, 4);
  return lua_gettop(L) - 3;
}

/* attach.pcall(conn, fn, budget) -> true, results... | false, err. fn runs in this task (it
 * may wait on I/O); while it runs without yielding, an interrupt line on conn or the end of
 * `budget` instructions stops it with "interrupted". */
static int l_pcall(lua_State *L) {
  conn_box_t *b = fy_checkudata(L, 1, CONN_MT);
  fy_checktype(L, 2, LUA_TFUNCTION);
  long long budget = (long long)fy_optinteger(L, 3, 1000000000);
  lua_settop(L, 2);
  lua_pushcfunction(L, guarded_msgh);   /* 3 */
  uv_os_fd_t fd = -1;
  if (!b->c || b->c->closed || uv_fileno((uv_handle_t *)&b->c->h, &fd) != 0) fd = -1;
  for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++) {
    if (!guards[i].thread) {
      guards[i].thread = L;
      guards[i].fd = fd;
      guards[i].left = budget;
      lua_sethook(L, guard_hook, LUA_MASKCOUNT, GUARD_EVERY);
      break;
    }
  }
  lua_pushvalue(L, 2);
  return guarded_done(L, lua_pcallk(L, 0, LUA_MULTRET, 3, 0, guarded_done), 0);
}

/* ------------------------------------------------------------------ conn objects */

static conn_t *conn_new(fy_engine_t *E) {
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (uv_pipe_init(&E->loop, &c->h, 0) != 0) { free(c); return NULL; }
  c->h.data = c;
  return c;
}

static void push_conn(lua_State *L, conn_t *c) {
  conn_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->c = c;
  luaL_setmetatable(L, CONN_MT);
}

static int l_conn_close(lua_State *L) {
  conn_box_t *b = fy_checkudata(L, 1, CONN_MT);
  if (b->c) {
    uv_os_fd_t fd;
    if (!b->c->closed && uv_fileno((uv_handle_t *)&b->c->h, &fd) == 0)
      for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++)
        if (guards[i].fd == fd) guards[i].fd = -1;   /* the hook's peek fails from now on */
    conn_close(b->c);
    b->c = NULL;
  }
  return 0;
}

/* ------------------------------------------------------------------ server */

static uid_t peer_uid(uv_pipe_t *p, int *ok) {
  uv_os_fd_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  *ok = uv_fileno((uv_handle_t *)p, &fd) == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
  return *ok ? cred.uid : (uid_t)-1;
}

static void deliver(server_t *s) {
  while (s->op && s->nqueue > 0) {
    fy_op_t *op = s->op;
    s->op = NULL;
    conn_t *c = s->queue[0];
    memmove(s->queue, s->queue + 1, (size_t)(--s->nqueue) * sizeof s->queue[0]);
    if (!fy_op_settle(op)) { conn_close(c); continue; }
    lua_State *co = fy_op_thread(op);
    push_conn(co, c);
    fy_op_ready(op, 1);
  }
}

static void on_connection(uv_stream_t *srv, int status) {
  server_t *s = srv->data;
  if (status < 0 || s->closed) return;
  conn_t *c = conn_new(s->E);
  if (!c) return;
  if (uv_accept(srv, (uv_stream_t *)&c->h) != 0) { conn_close(c); return; }
  int ok;
  uid_t uid = peer_uid(&c->h, &ok);
  if (!ok || uid != geteuid()) {
    s->refused++;
    static const char no[] = "{\"ok\":false,\"err\":\"refused: this engine's REPL takes only its own user\"}\n";
    conn_write(c, no, sizeof no - 1);
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb);
  uv_unref((uv_handle_t *)&c->h);
  if (s->nqueue == MAX_BACKLOG) { conn_close(c); return; }
  s->queue[s->nqueue++] = c;
  deliver(s);
}

static void accept_cancel(fy_op_t *op, void *data) {
  (void)op;
  ((server_t *)data)->op = NULL;
}

/* The socket's directory: ours, and nobody else's to enter (0700); made so when missing. */
static int check_dir(const char *path, char *msg, size_t n) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  struct stat st;
  if (stat(dir, &st) != 0) {
    for (char *p = dir + 1; *p; p++) {              /* the parents too (0700: only we need them) */
      if (*p != '/') continue;
      *p = 0;
      if (mkdir(dir, 0700) != 0 && errno != EEXIST) break;
      *p = '/';
    }
    if (mkdir(dir, 0700) != 0 || stat(dir, &st) != 0) {
      snprintf(msg, n, "cannot make the directory %.300s: %s", dir, strerror(errno));
      return -1;
    }
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    snprintf(msg, n, "%.300s must be a directory of this user with mode 0700 (it has %03o)", dir, st.st_mode & 0777);
    return -1;
  }
  return 0;
}

static int l_listen(lua_State *L) {
  const char *path = fy_checklstring(L, 1, NULL);
  fy_engine_t *E = fy_engine(L);
  char msg[512];
  if (check_dir(path, msg, sizeof msg) != 0) return fy_fail(L, "io_error", "%s", msg);
  ignore_sigpipe();
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return fy_fail(L, "io_error", "%s exists and is not a socket", path);
    unlink(path);                                   /* a socket left by an engine that died */
  }
  server_box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->s = NULL;
  luaL_setmetatable(L, SERVER_MT);
  server_t *s = calloc(1, sizeof *s);
  if (!s) return fy_raise(L, "out_of_memory", "attach.listen: out of memory");
  if (uv_pipe_init(&E->loop, &s->h, 0) != 0) { free(s); return fy_fail(L, "io_error", "uv_pipe_init failed"); }
  s->h.data = s;
  s->E = E;
  b->s = s;
  mode_t old = umask(0177);                         /* born 0600: no moment when others may connect */
  int rc = uv_pipe_bind(&s->h, path);
  umask(old);
  if (rc == 0) rc = chmod(path, 0600) == 0 ? 0 : uv_translate_sys_error(errno);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->h, 8, on_connection);
  if (rc != 0) {
    s->closed = 1;
    uv_close((uv_handle_t *)&s->h, server_free_cb);
    b->s = NULL;
    return fy_fail(L, "io_error", "attach.listen(%s): %s", path, uv_strerror(rc));
  }
  uv_unref((uv_handle_t *)&s->h);
  return 1;
}

static int l_accept(lua_State *L) {
  server_box_t *b = fy_checkudata(L, 1, SERVER_MT);
  server_t *s = b->s;
  double timeout = fy_optnumber(L, 2, 0);
  if (!s || s->closed) return fy_fail(L, "closed", "server closed");
  if (s->nqueue > 0) {
    conn_t *c = s->queue[0];
    memmove(s->queue, s->queue + 1, (size_t)(--s->nqueue) * sizeof s->queue[0]);
    push_conn(L, c);
    return 1;
  }
  if (s->op) return fy_raise(L, "invalid_argument", "attach: another task is accepting");
  fy_op_t *op = fy_op_new(L, timeout, accept_cancel, s);
  s->op = op;
  return fy_op_yield(L, op);
}

static void server_close(server_box_t *b) {
  server_t *s = b->s;
  if (!s) return;
  b->s = NULL;
  s->closed = 1;
  if (s->op) {
    fy_op_t *op = s->op;
    s->op = NULL;
    if (fy_op_settle(op)) {
      lua_State *co = fy_op_thread(op);
      lua_pushnil(co);
      fy_push_error(co, "closed", "server closed");
      fy_op_ready(op, 2);
    }
  }
  for (int i = 0; i < s->nqueue; i++) conn_close(s->queue[i]);
  s->nqueue = 0;
  if (!uv_is_closing((uv_handle_t *)&s->h)) uv_close((uv_handle_t *)&s->h, server_free_cb);
}

static int l_server_close(lua_State *L) {
  server_close(fy_checkudata(L, 1, SERVER_MT));
  return 0;
}

static int l_server_index(lua_State *L) {
  server_box_t *b = fy_checkudata(L, 1, SERVER_MT);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "refused") == 0) {
    lua_pushinteger(L, b->s ? b->s->refused : 0);
    return 1;
  }
  luaL_getmetatable(L, SERVER_MT);
  lua_getfield(L, -1, "methods");
  lua_getfield(L, -1, k ? k : "");
  return 1;
}

/* ------------------------------------------------------------------ client */

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->handle->data;
  c->connected = status == 0 ? 1 : status;
  fy_op_t *op = c->op;
  if (status == 0) uv_read_start((uv_stream_t *)&c->h, alloc_cb, read_cb);
  if (!op) return;
  c->op = NULL;
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  if (status == 0) { lua_pushboolean(co, 1); fy_op_ready(op, 1); return; }
  lua_pushnil(co);
  fy_push_errorf(co, status == UV_EACCES ? "refused" : "io_error", "cannot connect: %s", uv_strerror(status));
  fy_op_ready(op, 2);
}

static int l_connect(lua_State *L) {
  const char *path = fy_checklstring(L, 1, NULL);
  fy_engine_t *E = fy_engine(L);
  ignore_sigpipe();
  conn_t *c = conn_new(E);
  if (!c) return fy_raise(L, "out_of_memory", "attach.connect: out of memory");
  push_conn(L, c);
  uv_pipe_connect(&c->creq, &c->h, path, on_connect);
  return 1;
}

/* conn:connected([timeout]) -> true | nil, err: a client's connection, once it is made */
static int l_connected(lua_State *L) {
  conn_t *c = check_conn(L);
  double timeout = fy_optnumber(L, 2, 10);
  if (!c || c->closed) return fy_fail(L, "closed", "connection closed");
  if (c->connected == 1) { lua_pushboolean(L, 1); return 1; }
  if (c->connected < 0)
    return fy_fail(L, c->connected == UV_EACCES ? "refused" : "io_error", "cannot connect: %s", uv_strerror(c->connected));
  if (c->op) return fy_raise(L, "invalid_argument", "attach: another task waits on this connection");
  fy_op_t *op = fy_op_new(L, timeout, read_cancel, c);
  c->op = op;
  return fy_op_yield(L, op);
}

/* connect's continuation lives in Lua (ferry.repl): it calls connect, then checks. */

/* __gc: close if still open. A handle the engine's shutdown closed (its close walk, no
 * callback) stays with the box, and is freed here, after the loop is closed. */
static int l_conn_gc(lua_State *L) {
  conn_box_t *b = fy_checkudata(L, 1, CONN_MT);
  conn_t *c = b->c;
  if (c && !c->closed && uv_is_closing((uv_handle_t *)&c->h)) {
    b->c = NULL;
    free(c->buf);
    free(c);
    return 0;
  }
  return l_conn_close(L);
}

static int l_server_gc(lua_State *L) {
  server_box_t *b = fy_checkudata(L, 1, SERVER_MT);
  server_t *s = b->s;
  if (s && !s->closed && uv_is_closing((uv_handle_t *)&s->h)) {
    b->s = NULL;
    for (int i = 0; i < s->nqueue; i++) { free(s->queue[i]->buf); free(s->queue[i]); }
    free(s);
    return 0;
  }
  return l_server_close(L);
}

int luaopen_ferry_core_attach(lua_State *L) {
  static const luaL_Reg cm[] = {{"read_line", l_read_line}, {"write", l_write}, {"connected", l_connected}, {"ask_now", l_ask_now},
                                {"close", l_conn_close}, {NULL, NULL}};
  luaL_newmetatable(L, CONN_MT);
  luaL_newlib(L, cm);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_conn_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_conn_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  static const luaL_Reg sm[] = {{"accept", l_accept}, {"close", l_server_close}, {NULL, NULL}};
  luaL_newmetatable(L, SERVER_MT);
  luaL_newlib(L, sm);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, l_server_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_server_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_server_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  static const luaL_Reg f[] = {{"listen", l_listen}, {"connect", l_connect}, {"pcall", l_pcall}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
