/*
** term.c -- ferry.core.term: line input for the REPL without blocking the loop.
**
** On a terminal, libedit's callback interface (history, line editing) is fed from a
** uv_poll_t on stdin; libedit is BSD-licensed, unlike GNU readline. On a pipe, lines are
** read from a uv_poll_t the same way; on a regular file, read() cannot block, so it is read
** directly. readline(prompt) -> line | nil at end of input.
*/
#include "core/engine.h"
#include "core/task.h"

#include <editline/readline.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct {
  uv_poll_t poll;
  int active, is_tty, eof, closed;
  fy_op_t *op;
  char *buf;            /* pipe mode: bytes not yet returned */
  size_t len, cap;
  char *line;           /* tty mode: the line libedit produced */
  int have_line;
  uv_poll_t sigpoll;       /* the read end of the SIGINT self-pipe */
  int sig_active;
  int active_closes;
  char prompt[64];
} term_t;

static term_t *T;

static void deliver(void);

static void line_handler(char *line) {
  rl_callback_handler_remove();
  if (!line) T->eof = 1;
  T->line = line;
  T->have_line = 1;
  deliver();
}

static void fill_pipe(void) {
  char tmp[4096];
  ssize_t n = read(0, tmp, sizeof tmp);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    T->eof = 1;
    return;
  }
  if (T->len + (size_t)n > T->cap) {
    size_t c = T->cap ? T->cap * 2 : 8192;
    while (c < T->len + (size_t)n) c *= 2;
    char *nb = realloc(T->buf, c);
    if (!nb) { T->eof = 1; return; }
    T->buf = nb;
    T->cap = c;
  }
  memcpy(T->buf + T->len, tmp, (size_t)n);
  T->len += (size_t)n;
}

/* Push the next complete line on L (1 value) or nil at end; 0 if none yet. */
static int take_line(lua_State *L) {
  if (T->is_tty) {
    if (!T->have_line) return 0;
    T->have_line = 0;
    if (T->line) {
      lua_pushstring(L, T->line);
      free(T->line);
      T->line = NULL;
    } else {
      lua_pushnil(L);
    }
    return 1;
  }
  char *nl = T->len ? memchr(T->buf, '\n', T->len) : NULL;
  if (nl) {
    size_t n = (size_t)(nl - T->buf);
    lua_pushlstring(L, T->buf, n);
    memmove(T->buf, nl + 1, T->len - n - 1);
    T->len -= n + 1;
    return 1;
  }
  if (!T->eof) return 0;
  if (T->len) {
    lua_pushlstring(L, T->buf, T->len);
    T->len = 0;
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

static void poll_stop(void) {
  if (T->active) { uv_poll_stop(&T->poll); T->active = 0; }
}

static int line_ready(void) {
  if (T->is_tty) return T->have_line;
  return T->eof || (T->len && memchr(T->buf, '\n', T->len));
}

static void deliver(void) {
  fy_op_t *op = T->op;
  if (!op || !line_ready()) return;
  lua_State *co = fy_op_thread(op);
  T->op = NULL;
  poll_stop();
  if (!fy_op_settle(op)) return;
  take_line(co);
  fy_op_ready(op, 1);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  (void)h; (void)events;
  if (status < 0) T->eof = 1;
  else if (T->is_tty) rl_callback_read_char();
  else fill_pipe();
  if (T->eof && T->is_tty && !T->have_line) { T->have_line = 1; T->line = NULL; }
  deliver();
}

static void read_cancel(fy_op_t *op, void *data) {
  (void)op; (void)data;
  T->op = NULL;
  poll_stop();
  if (T->is_tty) rl_callback_handler_remove();
}

static void term_closed(uv_handle_t *h) {
  term_t *t = h->data;
  if (--t->active_closes == 0) free(t);
}

static void term_shutdown(void *data) {
  (void)data;
  if (!T) return;
  if (T->is_tty) rl_callback_handler_remove();
  T->closed = 1;
  poll_stop();
  free(T->buf);
  free(T->line);
  T->active_closes = 1 + T->sig_active;
  if (T->sig_active) {
    signal(SIGINT, SIG_DFL);
    uv_close((uv_handle_t *)&T->sigpoll, term_closed);
  }
  uv_close((uv_handle_t *)&T->poll, term_closed);
  T = NULL;
}

/* Ctrl-C. A busy entry (`while true do end`) never returns to the loop, so the signal
 * handler itself stops it the way lua.c does: it sets a hook on the evaluating thread (the
 * Lua manual allows lua_sethook from a signal handler) that raises "interrupted". It also
 * writes to a self-pipe, so the prompt is redrawn from the loop, where libedit may run. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_count;
static lua_State *volatile eval_thread;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

static void on_sigint(int sig) {
  (void)sig;
  sig_count++;
  lua_State *L = eval_thread;
  if (L) lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
  char c = 1;
  ssize_t w = write(sig_pipe[1], &c, 1);
  (void)w;
}

static void sigpoll_cb(uv_poll_t *h, int status, int events) {
  (void)h; (void)status; (void)events;
  char buf[64];
  while (read(sig_pipe[0], buf, sizeof buf) > 0) {}
  if (T->is_tty && T->op) {
    /* Ctrl-C at the prompt: drop the partial line, show a fresh prompt (reinstalling the
     * handler resets libedit's line state; editing calls on it left the old text behind) */
    rl_callback_handler_remove();
    fputs("\n", stdout);
    fflush(stdout);
    rl_callback_handler_install(T->prompt, line_handler);
  }
}

static term_t *term_get(lua_State *L) {
  if (T) return T;
  fy_engine_t *E = fy_engine(L);
  T = calloc(1, sizeof *T);
  if (!T) luaL_error(L, "term: out of memory");
  T->is_tty = isatty(0);
  if (uv_poll_init(&E->loop, &T->poll, 0) != 0) {
    /* a regular file: reads never block */
    free(T);
    T = NULL;
    return NULL;
  }
  T->poll.data = T;
  if (T->is_tty && (sig_pipe[0] >= 0 || pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) == 0)) {
    uv_poll_init(&E->loop, &T->sigpoll, sig_pipe[0]);
    T->sigpoll.data = T;
    uv_poll_start(&T->sigpoll, UV_READABLE, sigpoll_cb);
    uv_unref((uv_handle_t *)&T->sigpoll);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    T->sig_active = 1;
  }
  fy_engine_on_shutdown(E, term_shutdown, NULL);
  return T;
}

static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  fy_task_require(L, "term.readline");
  term_t *t = term_get(L);
  if (!t) { /* regular file on stdin */
    luaL_Buffer b;
    int c, any = 0;
    luaL_buffinit(L, &b);
    while ((c = getchar()) != EOF && c != '\n') { luaL_addchar(&b, (char)c); any = 1; }
    luaL_pushresult(&b);
    if (c == EOF && !any) lua_pushnil(L);
    return 1;
  }
  if (t->op) return luaL_error(L, "term.readline: another task is reading");
  if (take_line(L)) return 1;
  if (t->is_tty) {
    snprintf(t->prompt, sizeof t->prompt, "%s", prompt);
    rl_callback_handler_install(t->prompt, line_handler);
  }
  fy_op_t *op = fy_op_new(L, 0, read_cancel, NULL);
  t->op = op;
  uv_poll_start(&t->poll, UV_READABLE, poll_cb);
  t->active = 1;
  return fy_op_yield(L, op);
}

/* Tab completion: complete(fn) makes fn(line_to_cursor, word) -> {candidate...} the source of
 * the candidates (ferry.repl.complete, or a remote engine's over attach). libedit calls it from
 * the stdin poll callback, outside any task: fn runs on the main thread and may not yield. */
static int complete_ref = LUA_NOREF;
static lua_State *complete_L;
static char **matches;
static size_t nmatches, match_next;

static void drop_matches(void) {
  for (size_t i = 0; i < nmatches; i++) free(matches[i]);
  free(matches);
  matches = NULL;
  nmatches = match_next = 0;
}

static char *next_match(const char *text, int state) {
  (void)text;
  if (state == 0) match_next = 0;
  return match_next < nmatches ? strdup(matches[match_next++]) : NULL;
}

static char **attempt_completion(const char *text, int start, int end) {
  (void)start;
  rl_attempted_completion_over = 1;      /* no file names when there is nothing to offer */
  rl_completion_append_character = '\0'; /* a name is often followed by . : or ( */
  drop_matches();
  if (complete_ref == LUA_NOREF || !complete_L) return NULL;
  lua_State *L = complete_L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, complete_ref);
  lua_pushlstring(L, rl_line_buffer, end > 0 ? (size_t)end : 0);
  lua_pushstring(L, text);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    size_t n = lua_rawlen(L, -1);
    matches = n ? calloc(n, sizeof *matches) : NULL;
    for (size_t i = 1; matches && i <= n; i++) {
      const char *m = (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING) ? lua_tostring(L, -1) : NULL;
      if (m && (matches[nmatches] = strdup(m))) nmatches++;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return nmatches ? rl_completion_matches(text, next_match) : NULL;
}

static int l_complete(lua_State *L) {
  fy_engine_t *E = fy_engine(L);
  if (complete_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, complete_ref);
  complete_ref = LUA_NOREF;
  if (lua_isfunction(L, 1)) {
    lua_pushvalue(L, 1);
    complete_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    complete_L = E->L;
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";   /* '.' and ':' stay in a word */
    rl_attempted_completion_function = attempt_completion;
  } else {
    rl_attempted_completion_function = NULL;
    drop_matches();
  }
  return 0;
}

static int l_add_history(lua_State *L) {
  add_history(luaL_checkstring(L, 1));
  return 0;
}

static int l_load_history(lua_State *L) {
  read_history(luaL_checkstring(L, 1));
  return 0;
}

static int l_save_history(lua_State *L) {
  write_history(luaL_checkstring(L, 1));
  return 0;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 0)));
  return 1;
}

static int l_width(lua_State *L) {
  struct winsize ws;
  int fd = (int)luaL_optinteger(L, 1, 2);
  lua_pushinteger(L, ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80);
  return 1;
}

/* Ctrl-C presses since the last call (the REPL cancels an entry that waits on I/O on one). */
static int l_interrupts(lua_State *L) {
  static int seen;
  int now = (int)sig_count, n = now - seen;
  seen = now;
  lua_pushinteger(L, n);
  return 1;
}

/* watch([thread]): Ctrl-C interrupts this thread even while it runs without yielding;
 * watch() with no thread stops watching (and clears a hook that may have been set). */
static int l_watch(lua_State *L) {
  lua_State *old = eval_thread;
  if (lua_isthread(L, 1)) {
    eval_thread = lua_tothread(L, 1);
  } else {
    eval_thread = NULL;
    if (old) lua_sethook(old, NULL, 0, 0);
  }
  return 0;
}

int luaopen_ferry_core_term(lua_State *L) {
  static const luaL_Reg f[] = {
    {"readline", l_readline}, {"add_history", l_add_history}, {"load_history", l_load_history},
    {"save_history", l_save_history}, {"isatty", l_isatty}, {"width", l_width},
    {"interrupts", l_interrupts}, {"watch", l_watch}, {"complete", l_complete}, {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
