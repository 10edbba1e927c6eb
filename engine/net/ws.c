/*
** ws.c -- libwebsockets client on a foreign libuv loop.
**
** A connection is detached from its wsi (opaque user data cleared) the moment we report its
** end, so nothing lws does afterwards reaches us: lws may call back late (close, destroy) or
** not at all (a wsi killed during connect), and neither can touch freed memory. The struct
** itself is freed when three things are over: the owner released it, the wsi is detached, and
** its timer has closed.
*/
#include "net/ws.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_MESSAGE (16u << 20)
#define CLOSE_GRACE_S 2.0 /* a local close waits this long for the socket to go */

enum { S_CONNECTING, S_OPEN, S_CLOSING, S_CLOSED };
static const char *const state_names[] = {"connecting", "open", "closing", "closed"};

typedef struct msg {
  struct msg *next;
  size_t len;
  int binary;
  unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
} msg_t;

struct fy_ws {
  uv_loop_t *loop;
  uv_handle_t **own;   /* the handles lws made for its context (compared, never dereferenced) */
  size_t n_own;
  struct lws_context *ctx;
  fy_ws_conn_t *conns; /* every connection not yet freed */
  fy_ws_stats_t st;
};

struct fy_ws_conn {
  fy_ws_t *w;
  struct lws *wsi;              /* NULL once detached */
  fy_ws_cbs_t cbs;
  void *data;
  fy_ws_opts_t o;
  int state, why, peer_code;
  int released, reported, timer_open;
  int in_connect, sync_failed;  /* lws failed inside fy_ws_connect: reported from the loop */
  char peer_reason[124];
  uv_timer_t timer;
  double deadline_connect, last_rx, ping_at, close_at;
  int ping_out, want_ping, want_close, close_code;
  int background;               /* its socket and timer do not keep the loop alive */
  char close_reason[64];
  char *rx;                     /* the message being reassembled */
  size_t rx_len, rx_cap;
  int rx_binary, rx_drop;
  msg_t *out_head, *out_tail;
  fy_ws_conn_t *prev, *next;
};

static double now_s(fy_ws_conn_t *c) { return (double)uv_now(c->w->loop) / 1000.0; }

/* A background connection (a feed nobody reads) must not keep a finished script alive: its
 * timer and the poll handle lws made for its socket are unreferenced, as the context's own
 * handles are. lws keeps that handle private, so it is found by its file descriptor. */
typedef struct {
  int fd, background;
} keep_t;

static void keep_cb(uv_handle_t *h, void *arg) {
  keep_t *k = arg;
  uv_os_fd_t fd;
  if (h->type != UV_POLL || uv_is_closing(h) || uv_fileno(h, &fd) != 0 || (int)fd != k->fd) return;
  if (k->background) uv_unref(h);
  else uv_ref(h);
}

static void apply_keep(fy_ws_conn_t *c) {
  if (c->timer_open) {
    if (c->background) uv_unref((uv_handle_t *)&c->timer);
    else uv_ref((uv_handle_t *)&c->timer);
  }
  int fd = c->wsi ? (int)lws_get_socket_fd(c->wsi) : -1;
  if (fd < 0) return;
  keep_t k = {fd, c->background};
  uv_walk(c->w->loop, keep_cb, &k);
}

void fy_ws_keep_alive(fy_ws_conn_t *c, int on) {
  c->background = !on;
  apply_keep(c);
}

static void conn_unlink(fy_ws_conn_t *c) {
  if (!c->w) return;
  if (c->prev) c->prev->next = c->next;
  else c->w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void conn_free(fy_ws_conn_t *c) {
  conn_unlink(c);
  while (c->out_head) {
    msg_t *m = c->out_head;
    c->out_head = m->next;
    free(m);
  }
  free(c->rx);
  free(c);
}

static void timer_closed(uv_handle_t *h) {
  fy_ws_conn_t *c = h->data;
  c->timer_open = 0;
  if (c->released) conn_free(c);
}

static void maybe_free(fy_ws_conn_t *c) {
  if (!c->released || c->wsi) return;
  if (c->timer_open) {
    if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, timer_closed);
    return;
  }
  conn_free(c);
}

/* Cut the link to the wsi: lws's later callbacks for it find no connection. */
static void detach(fy_ws_conn_t *c) {
  if (c->wsi) lws_set_opaque_user_data(c->wsi, NULL);
  c->wsi = NULL;
}

/* The connection is over: say so once, detach, stop the timer. */
static void conn_end(fy_ws_conn_t *c, int why, int code, const char *reason) {
  int was = c->state;
  c->state = S_CLOSED;
  detach(c);
  if (c->timer_open) uv_timer_stop(&c->timer);
  if (c->w) {
    if (was == S_CONNECTING) c->w->st.refused++;
    else c->w->st.closed++, c->w->st.open--;
    if (why == FY_WS_ESTALLED) c->w->st.stalls++;
    if (why == FY_WS_ETOOLARGE) c->w->st.too_large++;
  }
  if (!c->reported && !c->released && c->cbs.on_close) {
    c->reported = 1;
    c->cbs.on_close(c, why, code, reason ? reason : "", c->data);
  }
  c->reported = 1;
  maybe_free(c);
}

/* End now, without a close handshake: lws closes the socket on its next turn. */
static void conn_kill(fy_ws_conn_t *c, int why, int code, const char *reason) {
  struct lws *wsi = c->wsi;
  conn_end(c, why, code, reason);
  if (wsi) lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void arm(fy_ws_conn_t *c);

static void timer_cb(uv_timer_t *t) {
  fy_ws_conn_t *c = t->data;
  double now = now_s(c);
  switch (c->state) {
    case S_CONNECTING:
      if (c->sync_failed) { conn_kill(c, FY_WS_EREFUSED, 1006, "connection failed"); return; }
      if (now >= c->deadline_connect) { conn_kill(c, FY_WS_ECONNECT_TIMEOUT, 1006, "connect timed out"); return; }
      break;
    case S_OPEN:
      if (c->o.ping_interval <= 0) return;
      if (c->ping_out) {
        if (c->last_rx >= c->ping_at) c->ping_out = 0;          /* something came back */
        else if (now >= c->ping_at + c->o.pong_timeout) {
          conn_kill(c, FY_WS_ESTALLED, 1006, "no frame and no pong within the deadline");
          return;
        }
      }
      if (!c->ping_out && now >= c->last_rx + c->o.ping_interval) {
        c->ping_out = 1;
        c->ping_at = now;
        c->want_ping = 1;
        lws_callback_on_writable(c->wsi);
      }
      break;
    case S_CLOSING:
      if (now >= c->close_at) {
        conn_kill(c, c->why ? c->why : FY_WS_ELOCAL, c->why == FY_WS_ETOOLARGE ? 1009 : 1006, "closed");
        return;
      }
      break;
    default:
      return;
  }
  arm(c);
}

/* The timer for the next thing the connection waits on. */
static void arm(fy_ws_conn_t *c) {
  double at;
  switch (c->state) {
    case S_CONNECTING: at = c->deadline_connect; break;
    case S_OPEN:
      if (c->o.ping_interval <= 0) { uv_timer_stop(&c->timer); return; }
      at = c->ping_out ? c->ping_at + c->o.pong_timeout : c->last_rx + c->o.ping_interval;
      break;
    case S_CLOSING: at = c->close_at; break;
    default: uv_timer_stop(&c->timer); return;
  }
  double ms = (at - now_s(c)) * 1000.0;
  uv_timer_start(&c->timer, timer_cb, ms > 0 ? (uint64_t)ms + 1 : 0, 0);
}

/* Send a close frame from the next writeable callback; the socket goes within the grace. */
static void begin_close(fy_ws_conn_t *c, int why, int code, const char *reason) {
  c->why = why;
  c->state = S_CLOSING;
  c->want_close = 1;
  c->close_code = code;
  snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
  c->close_at = now_s(c) + CLOSE_GRACE_S;
  arm(c);
  lws_callback_on_writable(c->wsi);
}

static int write_one(fy_ws_conn_t *c, struct lws *wsi) {
  if (c->want_close) {
    lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)c->close_reason,
                     strlen(c->close_reason));
    return -1;                                          /* lws sends the close frame */
  }
  if (c->want_ping) {
    unsigned char buf[LWS_PRE + 1];
    c->want_ping = 0;
    if (lws_write(wsi, buf + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
    c->w->st.pings++;
  } else if (c->out_head) {
    msg_t *m = c->out_head;
    c->out_head = m->next;
    if (!c->out_head) c->out_tail = NULL;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    size_t len = m->len;
    free(m);
    if (n < (int)len) return -1;
    c->w->st.messages_out++;
    c->w->st.bytes_out += len;
  }
  if (c->want_ping || c->out_head) lws_callback_on_writable(wsi);
  return 0;
}

static int on_receive(fy_ws_conn_t *c, struct lws *wsi, const char *in, size_t len) {
  c->last_rx = now_s(c);
  if (lws_is_first_fragment(wsi)) {
    c->rx_len = 0;
    c->rx_binary = lws_frame_is_binary(wsi);
  }
  if (c->rx_drop) return 0;                            /* the rest of an oversized message */
  if (c->rx_len + len > c->o.max_message) {
    /* closed from the writeable callback, the one place lws takes a close well: returning
     * -1 here, in the middle of a frame, crashed lws 4.1.6 */
    c->rx_drop = 1;
    c->rx_len = 0;
    begin_close(c, FY_WS_ETOOLARGE, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
    return 0;
  }
  if (c->rx_len + len > c->rx_cap) {
    size_t cap = c->rx_cap ? c->rx_cap : 4096;
    while (cap < c->rx_len + len) cap *= 2;
    char *nb = realloc(c->rx, cap);
    if (!nb) { conn_end(c, FY_WS_ETOOLARGE, 1009, "out of memory"); return -1; }
    c->rx = nb;
    c->rx_cap = cap;
  }
  memcpy(c->rx + c->rx_len, in, len);
  c->rx_len += len;
  if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
    size_t n = c->rx_len;
    c->rx_len = 0;
    c->w->st.messages_in++;
    c->w->st.bytes_in += n;
    if (!c->released && c->cbs.on_message) c->cbs.on_message(c, c->rx, n, c->rx_binary, c->data);
    /* a big message's buffer is not kept for the life of the connection */
    if (c->rx_cap > 65536 && c->state == S_OPEN) { free(c->rx); c->rx = NULL; c->rx_cap = 0; }
  }
  return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  (void)user;
  fy_ws_conn_t *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
  if (!c) return 0;
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      if (c->in_connect) { c->sync_failed = 1; detach(c); return 0; }
      conn_end(c, FY_WS_EREFUSED, 1006, in && len ? (const char *)in : in ? (const char *)in : "connection failed");
      return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      c->state = S_OPEN;
      c->last_rx = now_s(c);
      c->w->st.opened++;
      c->w->st.open++;
      if (c->background) apply_keep(c);
      arm(c);
      if (c->out_head) lws_callback_on_writable(wsi);
      if (!c->released && c->cbs.on_open) c->cbs.on_open(c, c->data);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      return on_receive(c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
      c->last_rx = now_s(c);
      c->w->st.pongs++;
      return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
      return write_one(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (len >= 2) {
        const unsigned char *p = in;
        c->peer_code = (p[0] << 8) | p[1];
        size_t rl = len - 2 < sizeof c->peer_reason - 1 ? len - 2 : sizeof c->peer_reason - 1;
        memcpy(c->peer_reason, p + 2, rl);
        c->peer_reason[rl] = 0;
      } else {
        c->peer_code = 1005;                               /* a close frame without a code */
      }
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
      /* the peer's code as it sent it; 1006 when none came (anvil never answers a close).
       * An oversized message is reported with the 1009 we closed it with. */
      conn_end(c, c->why ? c->why : FY_WS_CLOSED,
               c->why == FY_WS_ETOOLARGE ? 1009 : c->peer_code ? c->peer_code : 1006,
               c->why == FY_WS_ETOOLARGE ? "message larger than max_message" : c->peer_reason);
      return 0;
    default:
      return 0;
  }
}

static const struct lws_protocols protocols[] = {
  {"ferry-ws", callback, 0, 0, 0, NULL, 0},
  {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The handles lws makes for its context (timers, idle) must not keep the engine alive: only
 * connections do, through their sockets. Those are the handles that were not there before. */
typedef struct walk walk_t;
struct walk {
  uv_handle_t **seen;
  size_t n, cap;
  int unref;
  walk_t *own;   /* with unref: the new handles are added here */
};

/* Is lws still closing things? A handle mid-close, or one of its own not yet closed. */
typedef struct {
  fy_ws_t *w;
  int busy;
} busy_t;

static void busy_cb(uv_handle_t *h, void *arg) {
  busy_t *b = arg;
  if (uv_is_closing(h)) { b->busy = 1; return; }
  for (size_t i = 0; i < b->w->n_own; i++) if (b->w->own[i] == h) { b->busy = 1; return; }
}

static void walk_cb(uv_handle_t *h, void *arg) {
  walk_t *w = arg;
  if (w->unref) {
    for (size_t i = 0; i < w->n; i++) if (w->seen[i] == h) return;
    uv_unref(h);
    w = w->own;
  }
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 64;
    uv_handle_t **nb = realloc(w->seen, cap * sizeof *nb);
    if (!nb) return;
    w->seen = nb;
    w->cap = cap;
  }
  w->seen[w->n++] = h;
}

fy_ws_t *fy_ws_new(uv_loop_t *loop) {
  fy_ws_t *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->loop = loop;
  lws_set_log_level(0, NULL); /* failures reach the caller through on_close, never stderr */
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {loop};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.foreign_loops = loops;
  walk_t before = {0}, own = {0};
  uv_walk(loop, walk_cb, &before);
  w->ctx = lws_create_context(&info);
  before.unref = 1;
  before.own = &own;
  if (w->ctx) uv_walk(loop, walk_cb, &before);
  free(before.seen);
  if (!w->ctx) { free(own.seen); free(w); return NULL; }
  w->own = own.seen;
  w->n_own = own.n;
  return w;
}

void fy_ws_free(fy_ws_t *w) {
  if (!w) return;
  while (w->conns) {
    fy_ws_conn_t *c = w->conns;
    conn_unlink(c);
    if (c->state != S_CLOSED) conn_kill(c, FY_WS_ESHUTDOWN, 1006, "engine closing");
    c->w = NULL;                                       /* no stats, no list from now on */
    if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer)) {
      uv_timer_stop(&c->timer);
      uv_close((uv_handle_t *)&c->timer, timer_closed); /* frees it if released */
    }
  }
  lws_context_destroy(w->ctx);
  /* with a foreign loop lws closes its handles in stages, from their callbacks: let it
   * finish before the engine closes whatever handles are left */
  for (int i = 0; i < 1000; i++) {
    busy_t b = {w, 0};
    uv_walk(w->loop, busy_cb, &b);
    if (!b.busy) break;
    uv_run(w->loop, UV_RUN_NOWAIT);
  }
  lws_context_destroy(w->ctx); /* a foreign loop's context is freed by this second call */
  free(w->own);
  free(w);
}

fy_ws_conn_t *fy_ws_connect(fy_ws_t *w, const char *url, const fy_ws_opts_t *opts,
                            const fy_ws_cbs_t *cbs, void *data, char *errbuf, size_t errlen) {
  char buf[1024], path[1024];
  const char *prot, *ads, *p;
  int port;
  if (strlen(url) >= sizeof buf) { snprintf(errbuf, errlen, "url too long"); return NULL; }
  strcpy(buf, url);
  if (lws_parse_uri(buf, &prot, &ads, &port, &p) || !ads[0]) {
    snprintf(errbuf, errlen, "not a ws:// or wss:// url");
    return NULL;
  }
  int tls = !strcmp(prot, "wss");
  if (!tls && strcmp(prot, "ws")) { snprintf(errbuf, errlen, "not a ws:// or wss:// url"); return NULL; }
  if (!strstr(url + strlen(prot) + 3, ":")) port = tls ? 443 : 80; /* lws_parse_uri defaults to 80 */
  while (*p == '/') p++;                                /* lws may or may not keep one */
  snprintf(path, sizeof path, "/%s", p);
  fy_ws_conn_t *c = calloc(1, sizeof *c);
  if (!c) { snprintf(errbuf, errlen, "out of memory"); return NULL; }
  c->w = w;
  c->cbs = *cbs;
  c->data = data;
  c->o = *opts;
  if (c->o.connect_timeout <= 0) c->o.connect_timeout = 10;
  if (c->o.pong_timeout <= 0) c->o.pong_timeout = 5;
  if (!c->o.max_message) c->o.max_message = DEFAULT_MAX_MESSAGE;
  uv_timer_init(w->loop, &c->timer);
  c->timer.data = c;
  c->timer_open = 1;
  c->background = opts->background;
  if (c->background) uv_unref((uv_handle_t *)&c->timer);
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  c->state = S_CONNECTING;
  c->deadline_connect = now_s(c) + c->o.connect_timeout;
  arm(c);
  w->st.connects++;

  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = w->ctx;
  ci.address = ads;
  ci.port = port;
  ci.path = path;
  char hostport[300];
  snprintf(hostport, sizeof hostport, "%s:%d", ads, port);
  ci.host = hostport;                                   /* a Host header with its port */
  ci.origin = NULL;                                     /* a node refuses an Origin it does not know */
  ci.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
  ci.local_protocol_name = protocols[0].name;
  ci.opaque_user_data = c;
  ci.pwsi = &c->wsi;
  c->in_connect = 1;
  struct lws *wsi = lws_client_connect_via_info(&ci);
  c->in_connect = 0;
  if (wsi && !c->sync_failed && c->background) apply_keep(c);
  if (!wsi || c->sync_failed) {
    /* failed before returning: reported from the loop like any later failure, so the
     * caller never sees a callback before it has the connection */
    if (wsi) lws_set_opaque_user_data(wsi, NULL);
    c->wsi = NULL;
    c->sync_failed = 1;
    uv_timer_start(&c->timer, timer_cb, 0, 0);
  }
  return c;
}

int fy_ws_send(fy_ws_conn_t *c, const char *p, size_t n, int binary) {
  if (c->state != S_OPEN && c->state != S_CONNECTING) return -1;
  msg_t *m = malloc(sizeof *m + LWS_PRE + n);
  if (!m) return -1;
  m->next = NULL;
  m->len = n;
  m->binary = binary;
  memcpy(m->buf + LWS_PRE, p, n);
  if (c->out_tail) c->out_tail->next = m;
  else c->out_head = m;
  c->out_tail = m;
  if (c->state == S_OPEN && c->wsi) lws_callback_on_writable(c->wsi);
  return 0;
}

void fy_ws_close(fy_ws_conn_t *c, int code, const char *reason) {
  if (c->state == S_CLOSED || c->state == S_CLOSING) return;
  if (c->state == S_CONNECTING || !c->wsi) { conn_kill(c, FY_WS_ELOCAL, 1006, "closed before it opened"); return; }
  begin_close(c, FY_WS_ELOCAL, code ? code : 1000, reason);
}

void fy_ws_release(fy_ws_conn_t *c) {
  c->released = 1;
  if (c->state == S_OPEN) fy_ws_close(c, 1000, "");
  else if (c->state == S_CONNECTING) conn_kill(c, FY_WS_ELOCAL, 1006, "released");
  maybe_free(c);
}

const char *fy_ws_state(fy_ws_conn_t *c) { return state_names[c->state]; }

const char *fy_ws_strerror(int why) {
  switch (why) {
    case FY_WS_CLOSED: return "closed";
    case FY_WS_EREFUSED: return "refused";
    case FY_WS_ECONNECT_TIMEOUT: return "connect_timeout";
    case FY_WS_ESTALLED: return "stalled";
    case FY_WS_ETOOLARGE: return "too_large";
    case FY_WS_EBACKLOG: return "backlog";
    case FY_WS_ELOCAL: return "local";
    case FY_WS_ESHUTDOWN: return "shutdown";
    default: return "error";
  }
}

void fy_ws_stats(fy_ws_t *w, fy_ws_stats_t *out) { *out = w->st; }
