/*
** proc.c -- ferry.core.proc: child processes (test peers, the Node comparison benches).
**
** cwd() -> the working directory, absolute (or nil, message).
** spawn{file, arg1, ..., env = {K = V}, cwd =, stdout = "pipe"|"inherit"|"null",
**       stderr = "pipe"|"inherit"|"null"} -> Process
** Process: :pid(), :read_line([timeout]) -> line | nil, err, :read_all([timeout]) -> text,
**          :read_err() -> text of stderr so far, :kill([signal]) , :wait([timeout]) -> code, signal,
**          :close() (kills if still running). A process still running at shutdown is sent
**          SIGTERM, so peers never outlive the engine.
** The userdata is a box around malloc'd memory: libuv owns the handles until their close
** callbacks, which free it (STYLE.md 3.5).
*/
#include "core/bind.h"
#include "core/engine.h"
#include "core/task.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define PROC_MT "ferry.Process"
#define MAX_OUT (64u << 20)

typedef struct proc {
  uv_process_t proc;
  uv_pipe_t out, err;
  int has_out, has_err;
  int open_handles;
  int exited, out_eof, err_eof;
  int64_t exit_status;
  int term_signal;
  char *buf, *ebuf;
  size_t len, cap, elen, ecap;
  fy_op_t *reader;          /* a task waiting in read_line/read_all */
  int reader_all;
  fy_op_t *waiter;          /* a task waiting in wait() */
  int boxed;                /* the Lua box still points here */
  struct proc *prev, *next; /* live list for shutdown */
} proc_t;

static proc_t *live;
static int hook_installed;

static void proc_unlink(proc_t *p) {
  if (p->prev) p->prev->next = p->next;
  else if (live == p) live = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

static void on_closed(uv_handle_t *h) {
  proc_t *p = h->data;
  if (--p->open_handles == 0) {
    free(p->buf);
    free(p->ebuf);
    free(p);
  }
}

static void maybe_close(proc_t *p) {
  /* handles stay open while the Lua object exists and output may still be read */
  if (p->boxed || !p->exited) return;
  if (p->open_handles <= 0) return;
  proc_unlink(p);
  if (!uv_is_closing((uv_handle_t *)&p->proc)) uv_close((uv_handle_t *)&p->proc, on_closed);
  if (p->has_out && !uv_is_closing((uv_handle_t *)&p->out)) uv_close((uv_handle_t *)&p->out, on_closed);
  if (p->has_err && !uv_is_closing((uv_handle_t *)&p->err)) uv_close((uv_handle_t *)&p->err, on_closed);
}

/* Satisfy a pending reader if its condition holds. */
static void feed_reader(proc_t *p) {
  fy_op_t *op = p->reader;
  if (!op) return;
  char *nl = p->len ? memchr(p->buf, '\n', p->len) : NULL;
  if (p->reader_all ? !p->out_eof : (!nl && !p->out_eof)) return;
  p->reader = NULL;
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  if (p->reader_all) {
    lua_pushlstring(co, p->buf ? p->buf : "", p->len);
    p->len = 0;
    fy_op_ready(op, 1);
  } else if (nl) {
    size_t n = (size_t)(nl - p->buf);
    lua_pushlstring(co, p->buf, n && p->buf[n - 1] == '\r' ? n - 1 : n);
    memmove(p->buf, nl + 1, p->len - n - 1);
    p->len -= n + 1;
    fy_op_ready(op, 1);
  } else if (p->len) { /* last line without newline */
    lua_pushlstring(co, p->buf, p->len);
    p->len = 0;
    fy_op_ready(op, 1);
  } else {
    lua_pushnil(co);
    fy_push_error(co, "closed", "end of output");
    fy_op_ready(op, 2);
  }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char slab[65536];
  (void)h; (void)hint;
  b->base = slab;
  b->len = sizeof slab;
}

static int append(char **buf, size_t *len, size_t *cap, const char *d, size_t n) {
  if (*len + n > MAX_OUT) return -1;
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < *len + n) c *= 2;
    char *nb = realloc(*buf, c);
    if (!nb) return -1;
    *buf = nb;
    *cap = c;
  }
  memcpy(*buf + *len, d, n);
  *len += n;
  return 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  proc_t *p = s->data;
  int is_out = s == (uv_stream_t *)&p->out;
  if (n > 0) {
    if (is_out) append(&p->buf, &p->len, &p->cap, b->base, (size_t)n);
    else append(&p->ebuf, &p->elen, &p->ecap, b->base, (size_t)n);
  } else if (n < 0) {
    uv_read_stop(s);
    if (is_out) p->out_eof = 1;
    else p->err_eof = 1;
  }
  if (is_out) feed_reader(p);
}

static void exit_cb(uv_process_t *h, int64_t status, int sig) {
  proc_t *p = h->data;
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = sig;
  fy_op_t *op = p->waiter;
  p->waiter = NULL;
  if (op && fy_op_settle(op)) {
    lua_State *co = fy_op_thread(op);
    lua_pushinteger(co, status);
    lua_pushinteger(co, sig);
    fy_op_ready(op, 2);
  }
  maybe_close(p);
}

static void shutdown_hook(void *data) {
  (void)data;
  for (proc_t *p = live; p; p = p->next)
    if (!p->exited) uv_process_kill(&p->proc, SIGTERM);
  while (live) {
    proc_t *p = live;
    p->boxed = 0;
    p->exited = 1;
    maybe_close(p);
  }
}

static proc_t *check_proc(lua_State *L) {
  proc_t **box = luaL_checkudata(L, 1, PROC_MT);
  if (!*box) luaL_error(L, "attempt to use a closed process");
  return *box;
}

static int stdio_mode(lua_State *L, const char *field, const char *def) {
  lua_getfield(L, 1, field);
  const char *m = luaL_optstring(L, -1, def);
  lua_pop(L, 1);
  if (strcmp(m, "pipe") == 0) return 2;
  if (strcmp(m, "inherit") == 0) return 1;
  if (strcmp(m, "null") == 0) return 0;
  return luaL_error(L, "proc.spawn: %s must be \"pipe\", \"inherit\" or \"null\"", field);
}

static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  fy_engine_t *E = fy_engine(L);
  if (E->closing) return luaL_error(L, "proc.spawn: the engine is shutting down");
  int n = (int)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1, 1, "needs the program as its first element");
  int out_mode = stdio_mode(L, "stdout", "pipe"), err_mode = stdio_mode(L, "stderr", "inherit");
  /* every string handed to uv_spawn lives in the anchor table at 2 (one stack slot, however
   * many arguments and variables there are) */
  lua_settop(L, 1);
  lua_newtable(L);
  int anchor = 2, nanchor = 0;
  char **args = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  lua_rawseti(L, anchor, ++nanchor);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      fy_argerror(L, 1, "proc.spawn: argument %d is a %s, not a string", i, luaL_typename(L, -1));
    args[i - 1] = (char *)lua_tostring(L, -1);
    lua_rawseti(L, anchor, ++nanchor);
  }
  args[n] = NULL;
  /* environment: ours plus env = {K = V} */
  extern char **environ;
  char **envp = NULL;
  lua_getfield(L, 1, "env");
  if (lua_istable(L, -1)) {
    int et = lua_gettop(L), cnt = 0, k = 0;
    for (char **e = environ; *e; e++) cnt++;
    lua_pushnil(L);
    while (lua_next(L, et)) { cnt++; lua_pop(L, 1); }
    envp = lua_newuserdatauv(L, sizeof(char *) * (size_t)(cnt + 1), 0);
    lua_rawseti(L, anchor, ++nanchor);
    lua_pushnil(L);
    while (lua_next(L, et)) {
      if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
        fy_argerror(L, 1, "proc.spawn: env: names and values must be strings");
      lua_pushvalue(L, -1);
      const char *s = lua_pushfstring(L, "%s=%s", lua_tostring(L, -3), lua_tostring(L, -1));
      envp[k++] = (char *)s;
      lua_rawseti(L, anchor, ++nanchor);
      lua_pop(L, 2);
    }
    for (char **e = environ; *e; e++) envp[k++] = *e; /* ours come last: env wins */
    envp[k] = NULL;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "cwd");
  const char *cwd = luaL_optstring(L, -1, NULL);

  proc_t *p = calloc(1, sizeof *p);
  if (!p) return luaL_error(L, "proc.spawn: out of memory");
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  if (out_mode == 2) {
    uv_pipe_init(&E->loop, &p->out, 0);
    p->out.data = p;
    p->has_out = 1;
    p->open_handles++;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
  } else if (out_mode == 1) {
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
  } else {
    stdio[1].flags = UV_IGNORE;
  }
  if (err_mode == 2) {
    uv_pipe_init(&E->loop, &p->err, 0);
    p->err.data = p;
    p->has_err = 1;
    p->open_handles++;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&p->err;
  } else if (err_mode == 1) {
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
  } else {
    stdio[2].flags = UV_IGNORE;
  }
  if (!p->has_out) p->out_eof = 1;
  uv_process_options_t o = {0};
  o.file = args[0];
  o.args = args;
  o.env = envp;
  o.cwd = cwd;
  o.exit_cb = exit_cb;
  o.stdio_count = 3;
  o.stdio = stdio;
  p->proc.data = p;
  int rc = uv_spawn(&E->loop, &p->proc, &o);
  p->open_handles++; /* the process handle must be closed even when spawn failed */
  if (rc != 0) {
    p->exited = 1;
    maybe_close(p);
    lua_pushnil(L);
    fy_push_error(L, "invalid_argument", uv_strerror(rc));
    lua_pushfstring(L, "cannot start %s: %s", args[0], uv_strerror(rc));
    lua_setfield(L, -2, "message");
    return 2;
  }
  if (p->has_out) uv_read_start((uv_stream_t *)&p->out, alloc_cb, read_cb);
  if (p->has_err) uv_read_start((uv_stream_t *)&p->err, alloc_cb, read_cb);
  p->boxed = 1;
  p->next = live;
  if (live) live->prev = p;
  live = p;
  if (!hook_installed) {
    fy_engine_on_shutdown(E, shutdown_hook, NULL);
    hook_installed = 1;
  }
  proc_t **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = p;
  luaL_setmetatable(L, PROC_MT);
  return 1;
}

static int l_pid(lua_State *L) {
  lua_pushinteger(L, check_proc(L)->proc.pid);
  return 1;
}

static void reader_cancel(fy_op_t *op, void *data) {
  proc_t *p = data;
  (void)op;
  p->reader = NULL;
}

static int do_read(lua_State *L, int all) {
  proc_t *p = check_proc(L);
  double timeout = luaL_optnumber(L, 2, 0);
  if (!p->has_out) return luaL_error(L, "process: stdout is not a pipe");
  if (p->reader) return luaL_error(L, "process: another task is reading");
  char *nl = p->len ? memchr(p->buf, '\n', p->len) : NULL;
  if (all ? p->out_eof : (nl || p->out_eof)) {
    /* already satisfied: answer now, without parking the task */
    if (all || (!nl && p->len)) {
      lua_pushlstring(L, p->buf ? p->buf : "", p->len);
      p->len = 0;
      return 1;
    }
    if (!nl) return fy_fail(L, "closed", "end of output");
    size_t n = (size_t)(nl - p->buf);
    lua_pushlstring(L, p->buf, n && p->buf[n - 1] == '\r' ? n - 1 : n);
    memmove(p->buf, nl + 1, p->len - n - 1);
    p->len -= n + 1;
    return 1;
  }
  fy_op_t *op = fy_op_new(L, timeout, reader_cancel, p);
  p->reader = op;
  p->reader_all = all;
  return fy_op_yield(L, op);
}

static int l_read_line(lua_State *L) { return do_read(L, 0); }
static int l_read_all(lua_State *L) { return do_read(L, 1); }

static int l_read_err(lua_State *L) {
  proc_t *p = check_proc(L);
  lua_pushlstring(L, p->ebuf ? p->ebuf : "", p->elen);
  return 1;
}

static int parse_signal(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return SIGTERM;
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx);
  const char *s = luaL_checkstring(L, idx);
  static const struct { const char *n; int s; } sigs[] = {
    {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"STOP", SIGSTOP},
    {"CONT", SIGCONT}, {"HUP", SIGHUP}, {NULL, 0}};
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (int i = 0; sigs[i].n; i++)
    if (strcmp(s, sigs[i].n) == 0) return sigs[i].s;
  return luaL_argerror(L, idx, "unknown signal");
}

static int l_kill(lua_State *L) {
  proc_t *p = check_proc(L);
  int sig = parse_signal(L, 2);
  if (p->exited) { lua_pushboolean(L, 0); return 1; }
  lua_pushboolean(L, uv_process_kill(&p->proc, sig) == 0);
  return 1;
}

static void waiter_cancel(fy_op_t *op, void *data) {
  (void)op;
  ((proc_t *)data)->waiter = NULL;
}

static int l_wait(lua_State *L) {
  proc_t *p = check_proc(L);
  double timeout = luaL_optnumber(L, 2, 0);
  if (p->exited) {
    lua_pushinteger(L, p->exit_status);
    lua_pushinteger(L, p->term_signal);
    return 2;
  }
  if (p->waiter) return luaL_error(L, "process: another task is waiting");
  fy_op_t *op = fy_op_new(L, timeout, waiter_cancel, p);
  p->waiter = op;
  return fy_op_yield(L, op);
}

static int l_running(lua_State *L) {
  lua_pushboolean(L, !check_proc(L)->exited);
  return 1;
}

/* A task parked on this process (read_line, read_all, wait) when it is closed: answered
 * nil, "closed" now. Left parked, its op would still point at p, freed once the handles are
 * closed, and its timeout or cancel would write there. */
static void fail_parked(fy_op_t **slot) {
  fy_op_t *op = *slot;
  if (!op) return;
  *slot = NULL;
  if (!fy_op_settle(op)) return;
  lua_State *co = fy_op_thread(op);
  lua_pushnil(co);
  fy_push_error(co, "closed", "the process was closed");
  fy_op_ready(op, 2);
}

static int l_close(lua_State *L) {
  proc_t **box = luaL_checkudata(L, 1, PROC_MT);
  proc_t *p = *box;
  *box = NULL;
  /* at shutdown the hook has already closed every process; p may be gone */
  if (!p || fy_engine(L)->closing) return 0;
  if (!p->exited && !fy_engine(L)->closing) uv_process_kill(&p->proc, SIGKILL);
  fail_parked(&p->reader);
  fail_parked(&p->waiter);
  p->boxed = 0;
  if (p->exited) maybe_close(p);
  return 0;
}

/* proc.cwd() -> the working directory (absolute), or nil, message */
static int l_cwd(lua_State *L) {
  char buf[4096];
  size_t n = sizeof buf;
  int rc = uv_cwd(buf, &n);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, uv_strerror(rc));
    return 2;
  }
  lua_pushlstring(L, buf, n);
  return 1;
}

int luaopen_ferry_core_proc(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"pid", l_pid}, {"read_line", l_read_line}, {"read_all", l_read_all},
    {"read_err", l_read_err}, {"kill", l_kill}, {"wait", l_wait}, {"running", l_running},
    {"close", l_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, PROC_MT)) {
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  static const luaL_Reg f[] = {{"spawn", l_spawn}, {"cwd", l_cwd}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
