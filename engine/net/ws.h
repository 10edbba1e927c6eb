/*
** ws.h -- WebSocket client: libwebsockets on the engine's libuv loop.
**
** Provides: fy_ws_t (one lws context on a foreign libuv loop) and connections to ws:// and
** wss:// URLs with a connect deadline, messages reassembled from fragments up to a size cap,
** client pings every ping_interval with a pong deadline (a stall closes the connection), and
** the close code reported as the peer sent it (1006 when none came: anvil never answers a
** close frame). Everything completes through callbacks on the loop thread.
** Depends on: libwebsockets 4.1 (LWS_WITH_LIBUV, evlib plugin), libuv. Loop thread only.
** Knows nothing of Lua (ws_lua.c binds it).
** Backs: ferry.core.ws, and through it ferry.ws and chain:subscribe.
*/
#ifndef FY_WS_H
#define FY_WS_H

#include <stddef.h>
#include <uv.h>

typedef struct fy_ws fy_ws_t;
typedef struct fy_ws_conn fy_ws_conn_t;

/* Why a connection ended (besides the close code). */
enum {
  FY_WS_CLOSED = 0,        /* a close frame or the socket closing: see code */
  FY_WS_EREFUSED = -1,     /* the connection or the upgrade failed: nothing was open */
  FY_WS_ECONNECT_TIMEOUT = -2,
  FY_WS_ESTALLED = -3,     /* no frame and no pong within ping_interval + pong_timeout */
  FY_WS_ETOOLARGE = -4,    /* a message larger than max_message (closed with 1009) */
  FY_WS_EBACKLOG = -5,     /* more than max_backlog bytes received and not taken */
  FY_WS_ELOCAL = -6,       /* fy_ws_close */
  FY_WS_ESHUTDOWN = -7,    /* the engine is closing */
};

typedef struct {
  double connect_timeout;  /* seconds; <= 0: 10 */
  double ping_interval;    /* seconds of silence before a ping; <= 0: no pings */
  int background;          /* from the start, as after fy_ws_keep_alive(c, 0) */
  double pong_timeout;     /* seconds a ping may go unanswered; <= 0: 5 */
  size_t max_message;      /* bytes; 0: 16 MiB */
} fy_ws_opts_t;

typedef struct {
  void (*on_open)(fy_ws_conn_t *c, void *data);
  /* one whole message; p is valid during the call only */
  void (*on_message)(fy_ws_conn_t *c, const char *p, size_t n, int binary, void *data);
  /* exactly once per connection (after on_open or instead of it), unless released first.
   * why: FY_WS_*; code: the peer's close code, or 1006 when it sent none. */
  void (*on_close)(fy_ws_conn_t *c, int why, int code, const char *reason, void *data);
} fy_ws_cbs_t;

fy_ws_t *fy_ws_new(uv_loop_t *loop);
/* Close every connection (on_close with FY_WS_ESHUTDOWN) and destroy the lws context; the
 * loop must then run until its handles are closed (the engine's close does). */
void fy_ws_free(fy_ws_t *w);

/* Start connecting. Returns NULL with errbuf set when the URL is not ws:// or wss:// or memory
 * runs out; any later failure comes through on_close. */
fy_ws_conn_t *fy_ws_connect(fy_ws_t *w, const char *url, const fy_ws_opts_t *opts,
                            const fy_ws_cbs_t *cbs, void *data, char *errbuf, size_t errlen);

/* Queue one text (binary = 0) or binary message. 0, or -1 when the connection is not open. */
int fy_ws_send(fy_ws_conn_t *c, const char *p, size_t n, int binary);

/* Close with a code (1000 normal) and reason; on_close follows with FY_WS_ELOCAL. */
void fy_ws_close(fy_ws_conn_t *c, int code, const char *reason);

/* The owner lets go: no more callbacks; the connection is closed if open and freed once lws
 * is done with it. */
void fy_ws_release(fy_ws_conn_t *c);

/* on = 0: the connection no longer keeps the loop alive (its timer and socket handle are
 * unreferenced: a background feed nobody reads); on = 1 (the default): it does again. */
void fy_ws_keep_alive(fy_ws_conn_t *c, int on);

/* "connecting" | "open" | "closing" | "closed" */
const char *fy_ws_state(fy_ws_conn_t *c);
const char *fy_ws_strerror(int why);

typedef struct {
  unsigned long long connects, opened, refused, closed, stalls, too_large, pings, pongs;
  unsigned long long messages_in, messages_out, bytes_in, bytes_out;
  long open;
} fy_ws_stats_t;
void fy_ws_stats(fy_ws_t *w, fy_ws_stats_t *out);

#endif
