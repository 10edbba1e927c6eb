/*
** redis.c -- one Redis connection on the libuv loop (see redis.h).
**
** Life of a connection: CONNECTING -> READY -> DEAD, or CONNECTING -> DEAD. hiredis owns the
** socket and its uv_poll (adapters/libuv.h); we own one uv_timer for the deadlines. Dropping
** the connection is always redisAsyncFree from outside any hiredis callback (a timer or
** fy_redis_close): hiredis then calls every pending command back with a NULL reply, which we
** turn into the reason we dropped it (drop_rc).
**
** The poll handle is referenced only while commands are pending, so an idle connection does
** not keep the engine alive, and a task waiting on a reply does.
*/
#include "net/redis.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fy_redis_cmd {
  fy_redis_t *r;
  fy_redis_cb cb; /* NULL once detached */
  void *data;
  double deadline; /* 0: none */
  fy_redis_cmd_t *prev, *next;
};

struct fy_redis {
  uv_loop_t *loop;
  redisAsyncContext *ac; /* NULL once the connection is gone */
  uv_timer_t timer;
  int state;
  int drop_rc;           /* why we dropped it ourselves (0: we did not) */
  double connect_deadline;
  fy_redis_cmd_t *head, *tail; /* pending, oldest first */
  char err[160];
  fy_redis_stats_t st;
};

/* --- the libuv adapter ---
 * <hiredis/adapters/libuv.h> as shipped with 0.14 returns early when uv_poll reports an error
 * status. libuv reports POLLERR that way (a refused connect, a reset) and stops the handle, so
 * a refused connection would never be noticed and its commands would wait forever. This is
 * that adapter with upstream's later fix: on an error status, let hiredis read/write the
 * socket, which finds the error and fails the context. */
typedef struct {
  redisAsyncContext *context;
  uv_poll_t handle;
  int events;
} uvev_t;

static void ev_poll(uv_poll_t *handle, int status, int events) {
  uvev_t *p = handle->data;
  int ev = status ? p->events : events;
  if (p->context && (ev & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void ev_update(uvev_t *p) {
  if (p->events) uv_poll_start(&p->handle, p->events, ev_poll);
  else uv_poll_stop(&p->handle);
}
static void ev_add_read(void *d) { uvev_t *p = d; p->events |= UV_READABLE; ev_update(p); }
static void ev_del_read(void *d) { uvev_t *p = d; p->events &= ~UV_READABLE; ev_update(p); }
static void ev_add_write(void *d) { uvev_t *p = d; p->events |= UV_WRITABLE; ev_update(p); }
static void ev_del_write(void *d) { uvev_t *p = d; p->events &= ~UV_WRITABLE; ev_update(p); }
static void ev_closed(uv_handle_t *h) { free(h->data); }
static void ev_cleanup(void *d) {
  uvev_t *p = d;
  p->context = NULL;
  uv_close((uv_handle_t *)&p->handle, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  uvev_t *p = calloc(1, sizeof *p);
  if (!p) return REDIS_ERR;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    free(p);
    return REDIS_ERR;
  }
  p->handle.data = p;
  p->context = ac;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  ac->ev.data = p;
  return REDIS_OK;
}

static double now_s(uv_loop_t *loop) {
  uv_update_time(loop);
  return (double)uv_now(loop) / 1e3;
}

static uv_handle_t *poll_handle(fy_redis_t *r) {
  if (!r->ac || !r->ac->ev.data) return NULL;
  uvev_t *p = r->ac->ev.data;
  return p->context ? (uv_handle_t *)&p->handle : NULL;
}

/* Referenced handles while anything is pending: the replies (or the deadline) are what the
 * loop waits for. Idle, the connection does not keep the engine alive. */
static void update_ref(fy_redis_t *r) {
  uv_handle_t *h = poll_handle(r);
  if (r->st.pending > 0) {
    if (h) uv_ref(h);
    uv_ref((uv_handle_t *)&r->timer);
  } else {
    if (h) uv_unref(h);
    uv_unref((uv_handle_t *)&r->timer);
  }
}

static void set_err(fy_redis_t *r, const char *why) {
  if (!r->err[0]) snprintf(r->err, sizeof r->err, "%s", why && why[0] ? why : "connection closed");
}

static void unlink_cmd(fy_redis_t *r, fy_redis_cmd_t *c) {
  if (c->prev) c->prev->next = c->next;
  else r->head = c->next;
  if (c->next) c->next->prev = c->prev;
  else r->tail = c->prev;
  r->st.pending--;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  fy_redis_cmd_t *c = privdata;
  fy_redis_t *r = c->r;
  unlink_cmd(r, c);
  redisReply *rep = reply;
  int rc = FY_REDIS_OK;
  if (!rep) {
    rc = r->drop_rc ? r->drop_rc : FY_REDIS_EDOWN;
    set_err(r, ac->errstr[0] ? ac->errstr : NULL);
    r->st.failed++;
    if (rc == FY_REDIS_ETIMEOUT) r->st.timeouts++;
  } else {
    r->st.replies++;
    if (rep->type == REDIS_REPLY_ERROR) r->st.errors++;
  }
  if (c->cb) c->cb(rc, rep, rep ? NULL : r->err, c->data);
  free(c);
  update_ref(r);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  fy_redis_t *r = ac->data;
  if (status == REDIS_OK) {
    r->state = FY_REDIS_READY;
    return;
  }
  /* hiredis frees the context right after this returns, failing what was queued */
  set_err(r, ac->errstr);
  r->state = FY_REDIS_DEAD;
  r->ac = NULL;
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  fy_redis_t *r = ac->data;
  set_err(r, status == REDIS_OK ? "connection closed" : ac->errstr);
  r->state = FY_REDIS_DEAD;
  r->ac = NULL;
}

/* Drop the connection from outside hiredis: every pending command calls back with rc. */
static void drop(fy_redis_t *r, int rc, const char *why) {
  uv_timer_stop(&r->timer);
  if (!r->ac) return;
  r->drop_rc = rc;
  set_err(r, why);
  redisAsyncContext *ac = r->ac;
  redisAsyncFree(ac); /* runs on_reply(NULL) for each, then on_disconnect if it was up */
  r->ac = NULL;
  r->state = FY_REDIS_DEAD;
}

static void on_timer(uv_timer_t *t);

/* (Re)start the timer for the earliest deadline, or stop it when there is none. */
static void rearm(fy_redis_t *r) {
  double next = r->state == FY_REDIS_CONNECTING ? r->connect_deadline : 0;
  for (fy_redis_cmd_t *c = r->head; c; c = c->next)
    if (c->deadline > 0 && (next == 0 || c->deadline < next)) next = c->deadline;
  if (next == 0) {
    uv_timer_stop(&r->timer);
    return;
  }
  double now = now_s(r->loop);
  uint64_t ms = next > now ? (uint64_t)((next - now) * 1e3 + 0.999) : 0;
  uv_timer_start(&r->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  fy_redis_t *r = t->data;
  double now = now_s(r->loop);
  if (r->state == FY_REDIS_CONNECTING && r->connect_deadline > 0 && now >= r->connect_deadline) {
    drop(r, FY_REDIS_ETIMEOUT, "connect timed out");
    return;
  }
  for (fy_redis_cmd_t *c = r->head; c; c = c->next) {
    if (c->deadline > 0 && now >= c->deadline) {
      drop(r, FY_REDIS_ETIMEOUT, "no reply before the deadline");
      return;
    }
  }
  rearm(r);
}

fy_redis_t *fy_redis_new(uv_loop_t *loop, const char *ip, int port, double connect_timeout_s) {
  fy_redis_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  uv_timer_init(loop, &r->timer);
  uv_unref((uv_handle_t *)&r->timer); /* the poll's ref is what keeps the loop alive */
  r->timer.data = r;
  r->state = FY_REDIS_CONNECTING;
  redisAsyncContext *ac = redisAsyncConnect(ip, port);
  if (!ac) {
    r->state = FY_REDIS_DEAD;
    set_err(r, "out of memory");
    return r;
  }
  if (ac->err) {
    set_err(r, ac->errstr);
    redisAsyncFree(ac);
    r->state = FY_REDIS_DEAD;
    return r;
  }
  if (ev_attach(ac, loop) != REDIS_OK) {
    set_err(r, "cannot attach to the loop");
    redisAsyncFree(ac);
    r->state = FY_REDIS_DEAD;
    return r;
  }
  ac->data = r;
  r->ac = ac;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  update_ref(r);
  if (connect_timeout_s > 0) {
    r->connect_deadline = now_s(loop) + connect_timeout_s;
    rearm(r);
  }
  return r;
}

fy_redis_cmd_t *fy_redis_command(fy_redis_t *r, int argc, const char **argv, const size_t *argvlen,
                                 double timeout_s, fy_redis_cb cb, void *data, int *rc) {
  if (!r->ac || r->state == FY_REDIS_DEAD) {
    *rc = FY_REDIS_EDOWN; /* whatever killed it, what is left is no connection */
    return NULL;
  }
  fy_redis_cmd_t *c = calloc(1, sizeof *c);
  if (!c) {
    *rc = FY_REDIS_ENOMEM;
    return NULL;
  }
  c->r = r;
  c->cb = cb;
  c->data = data;
  if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
    free(c);
    *rc = FY_REDIS_EDOWN;
    return NULL;
  }
  c->prev = r->tail;
  if (r->tail) r->tail->next = c;
  else r->head = c;
  r->tail = c;
  r->st.pending++;
  r->st.sent++;
  update_ref(r);
  if (timeout_s > 0) {
    c->deadline = now_s(r->loop) + timeout_s;
    /* only an earlier deadline than the one armed needs the timer moved */
    uint64_t due = uv_timer_get_due_in(&r->timer);
    if (!uv_is_active((uv_handle_t *)&r->timer) || (double)due / 1e3 > timeout_s) rearm(r);
  }
  *rc = FY_REDIS_OK;
  return c;
}

void fy_redis_detach(fy_redis_cmd_t *cmd) { cmd->cb = NULL; }

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

void fy_redis_close(fy_redis_t *r) {
  drop(r, FY_REDIS_ECLOSED, "closed");
  uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

int fy_redis_state(const fy_redis_t *r) { return r->state; }

const char *fy_redis_error(const fy_redis_t *r) { return r->state == FY_REDIS_DEAD ? r->err : ""; }

const char *fy_redis_strerror(int rc) {
  switch (rc) {
  case FY_REDIS_OK: return "ok";
  case FY_REDIS_EDOWN: return "connection lost";
  case FY_REDIS_ETIMEOUT: return "timed out";
  case FY_REDIS_ECLOSED: return "closed";
  case FY_REDIS_ENOMEM: return "out of memory";
  default: return "unknown error";
  }
}

void fy_redis_stats(const fy_redis_t *r, fy_redis_stats_t *out) { *out = r->st; }
