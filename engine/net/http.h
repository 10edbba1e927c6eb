/*
** http.h -- HTTP client: libcurl multi driven by the libuv loop.
**
** Provides: fy_http_t (one curl multi handle, a uv_poll_t per socket, one uv_timer_t) and
** requests that complete through a callback on the loop thread. Connections are kept alive
** and reused by the multi handle's connection cache.
** Depends on: libcurl, libuv. Loop thread only. Knows nothing of Lua (http_lua.c binds it).
** Backs: ferry.core.http (request), and through it ferry.rpc.
*/
#ifndef FY_HTTP_H
#define FY_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef struct fy_http fy_http_t;
typedef struct fy_http_req fy_http_req_t;

enum {
  FY_HTTP_OK = 0,
  FY_HTTP_EREFUSED = -1,  /* no connection: nothing of the request was sent */
  FY_HTTP_ETIMEDOUT = -2, /* curl's own deadline (the op deadline normally fires first) */
  FY_HTTP_ETOOLARGE = -3, /* body larger than max_bytes */
  FY_HTTP_ERESOLVE = -4,  /* host name did not resolve */
  FY_HTTP_EIO = -5,       /* any other transfer error (see errbuf) */
  FY_HTTP_ENOMEM = -6,
  FY_HTTP_ERESET = -7,    /* connected, then reset or closed before a whole reply: the request
                           * may have been sent and acted on */
};

typedef void (*fy_http_cb)(fy_http_req_t *req, int rc, void *data);

/* What a finished request holds. Pointers are owned by the request. */
typedef struct {
  long status;          /* HTTP status, 0 when no reply */
  const char *body;     /* not NUL-terminated */
  size_t body_len;
  const char *headers;  /* raw header block of the final response */
  size_t headers_len;
  const char *error;    /* text for rc < 0 */
  double seconds;       /* total transfer time */
} fy_http_result_t;

fy_http_t *fy_http_new(uv_loop_t *loop);
/* Abort every request (no callbacks), destroy the multi handle, close the handles; the
 * memory is freed in the last close callback. */
void fy_http_close(fy_http_t *h);

/* Start a request. method NULL means POST when body is set, else GET. headers: NULL or a
 * NULL-terminated array of "Name: value". max_bytes 0 = 64 MiB. timeout_s <= 0 = none.
 * Returns the request (owned by h until cb has run or fy_http_cancel), or NULL with *rc set.
 * cb runs exactly once, from the loop, unless the request is cancelled first. */
fy_http_req_t *fy_http_start(fy_http_t *h, const char *url, const char *method,
                             const char *const *headers, const char *body, size_t body_len,
                             size_t max_bytes, double timeout_s, fy_http_cb cb, void *data, int *rc);

/* Stop a request that has not called back; its connection is closed, never reused. */
void fy_http_cancel(fy_http_req_t *req);

/* Inside cb: the outcome. Valid until cb returns. */
void fy_http_result(fy_http_req_t *req, fy_http_result_t *out);

const char *fy_http_strerror(int rc);

typedef struct {
  unsigned long long requests, ok, failed, cancelled, bytes_in, bytes_out;
  long active, sockets;
} fy_http_stats_t;
void fy_http_stats(fy_http_t *h, fy_http_stats_t *out);

#endif
