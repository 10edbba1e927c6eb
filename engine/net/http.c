/*
** http.c -- libcurl multi on libuv: one uv_poll_t per socket curl hands us, one timer.
*/
#include "net/http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BYTES (64u << 20)

struct fy_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  int closing;
  int handles_open;        /* timer + polls not yet closed */
  fy_http_req_t *active;   /* doubly linked, for close-all */
  struct sock *socks;      /* open polls, for close-all */
  fy_http_stats_t st;
};

struct fy_http_req {
  fy_http_t *h;
  CURL *easy;
  struct curl_slist *hdrs;
  char *body_out;          /* our copy of the request body */
  char *buf;               /* response body */
  size_t len, cap, max;
  char *hbuf;              /* response headers (the last response's only) */
  size_t hlen, hcap;
  fy_http_cb cb;
  void *data;
  int too_large;
  fy_http_req_t *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
  int rc;
};

typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  fy_http_t *h;
  struct sock *prev, *next;  /* h->socks: polls still open */
} sock_t;

static void check_done(fy_http_t *h);

static void maybe_free(fy_http_t *h) {
  if (h->closing && h->handles_open == 0) free(h);
}

static void handle_closed(uv_handle_t *hd) {
  fy_http_t *h;
  if (hd->type == UV_POLL) {
    sock_t *s = hd->data;
    h = s->h;
    free(s);
  } else {
    h = hd->data;
  }
  h->handles_open--;
  maybe_free(h);
}

static void sock_close(fy_http_t *h, sock_t *s) {
  uv_poll_stop(&s->poll);
  if (s->prev) s->prev->next = s->next;
  else h->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_close((uv_handle_t *)&s->poll, handle_closed);
  h->st.sockets--;
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  sock_t *s = p->data;
  fy_http_t *h = s->h;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  check_done(h);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  fy_http_t *h = userp;
  sock_t *s = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(h->multi, fd, NULL);
      sock_close(h, s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->fd = fd;
    s->h = h;
    if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) { free(s); return -1; }
    s->poll.data = s;
    h->handles_open++;
    h->st.sockets++;
    s->next = h->socks;
    if (h->socks) h->socks->prev = s;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, poll_cb);
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  fy_http_t *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static int timeout_cb(CURLM *m, long ms, void *userp) {
  fy_http_t *h = userp;
  (void)m;
  if (ms < 0) uv_timer_stop(&h->timer);
  else uv_timer_start(&h->timer, timer_cb, (uint64_t)ms, 0);
  return 0;
}

fy_http_t *fy_http_new(uv_loop_t *loop) {
  static int global_init;
  if (!global_init) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
    global_init = 1;
  }
  fy_http_t *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->loop = loop;
  h->multi = curl_multi_init();
  if (!h->multi) { free(h); return NULL; }
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->handles_open = 1;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timeout_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  /* bound connections per host: more requests queue inside curl instead of opening
   * hundreds of sockets to one provider */
  curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 128L);
  return h;
}

static void req_unlink(fy_http_req_t *r) {
  fy_http_t *h = r->h;
  if (r->prev) r->prev->next = r->next;
  else if (h->active == r) h->active = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  h->st.active--;
}

static void req_free(fy_http_req_t *r) {
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  free(r->body_out);
  free(r->buf);
  free(r->hbuf);
  free(r);
}

static size_t write_cb(char *p, size_t sz, size_t n, void *ud) {
  fy_http_req_t *r = ud;
  size_t k = sz * n;
  if (r->len + k > r->max) { r->too_large = 1; return 0; }
  if (r->len + k > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + k) cap *= 2;
    if (cap > r->max) cap = r->max;
    char *nb = realloc(r->buf, cap);
    if (!nb) return 0;
    r->buf = nb;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, p, k);
  r->len += k;
  return k;
}

static size_t header_cb(char *p, size_t sz, size_t n, void *ud) {
  fy_http_req_t *r = ud;
  size_t k = sz * n;
  if (k >= 5 && memcmp(p, "HTTP/", 5) == 0) r->hlen = 0; /* a new response (after 100) */
  if (r->hlen + k > 64 * 1024) return k;                 /* ignore absurd header blocks */
  if (r->hlen + k > r->hcap) {
    size_t cap = r->hcap ? r->hcap * 2 : 1024;
    while (cap < r->hlen + k) cap *= 2;
    char *nb = realloc(r->hbuf, cap);
    if (!nb) return 0;
    r->hbuf = nb;
    r->hcap = cap;
  }
  memcpy(r->hbuf + r->hlen, p, k);
  r->hlen += k;
  return k;
}

fy_http_req_t *fy_http_start(fy_http_t *h, const char *url, const char *method,
                             const char *const *headers, const char *body, size_t body_len,
                             size_t max_bytes, double timeout_s, fy_http_cb cb, void *data,
                             int *rc) {
  *rc = FY_HTTP_ENOMEM;
  if (h->closing) { *rc = FY_HTTP_EIO; return NULL; }
  fy_http_req_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->h = h;
  r->cb = cb;
  r->data = data;
  r->max = max_bytes ? max_bytes : DEFAULT_MAX_BYTES;
  r->easy = curl_easy_init();
  if (!r->easy) goto fail;
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max);
  if (timeout_s > 0) {
    /* not a second default: the op deadline (the caller's timeout) ends the request, and
     * curl's own deadline is only a backstop 250 ms after it */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000) + 250);
  }
  if (body) {
    r->body_out = malloc(body_len ? body_len : 1);
    if (!r->body_out) goto fail;
    memcpy(r->body_out, body, body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_out);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  }
  if (method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  /* no "Expect: 100-continue" round trip on large POSTs */
  r->hdrs = curl_slist_append(NULL, "Expect:");
  for (const char *const *p = headers; p && *p; p++) {
    struct curl_slist *n = curl_slist_append(r->hdrs, *p);
    if (!n) goto fail;
    r->hdrs = n;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  if (curl_multi_add_handle(h->multi, e) != CURLM_OK) { *rc = FY_HTTP_EIO; goto fail; }
  r->next = h->active;
  if (h->active) h->active->prev = r;
  h->active = r;
  h->st.active++;
  h->st.requests++;
  h->st.bytes_out += body_len;
  *rc = FY_HTTP_OK;
  return r;
fail:
  req_free(r);
  return NULL;
}

void fy_http_cancel(fy_http_req_t *r) {
  fy_http_t *h = r->h;
  /* removing an unfinished transfer makes curl close its connection: a timed-out
   * connection is never handed back to the pool (STYLE.md §4.10) */
  curl_multi_remove_handle(h->multi, r->easy);
  req_unlink(r);
  h->st.cancelled++;
  req_free(r);
}

static int map_error(fy_http_req_t *r, CURLcode cc) {
  if (cc == CURLE_OK) return FY_HTTP_OK;
  if (r->too_large || cc == CURLE_FILESIZE_EXCEEDED) return FY_HTTP_ETOOLARGE;
  switch (cc) {
    case CURLE_COULDNT_CONNECT: return FY_HTTP_EREFUSED;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return FY_HTTP_ERESET;
    case CURLE_OPERATION_TIMEDOUT: return FY_HTTP_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return FY_HTTP_ERESOLVE;
    case CURLE_OUT_OF_MEMORY: return FY_HTTP_ENOMEM;
    default: return FY_HTTP_EIO;
  }
}

static void check_done(fy_http_t *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    fy_http_req_t *r = NULL;
    CURLcode cc = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(h->multi, m->easy_handle);
    req_unlink(r);
    r->rc = map_error(r, cc);
    if (r->rc == FY_HTTP_OK) h->st.ok++;
    else h->st.failed++;
    h->st.bytes_in += r->len;
    if (r->rc != FY_HTTP_OK && !r->errbuf[0])
      snprintf(r->errbuf, sizeof r->errbuf, "%s", curl_easy_strerror(cc));
    r->cb(r, r->rc, r->data);
    req_free(r);
  }
}

void fy_http_result(fy_http_req_t *r, fy_http_result_t *out) {
  memset(out, 0, sizeof *out);
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &out->status);
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &out->seconds);
  out->body = r->buf ? r->buf : "";
  out->body_len = r->len;
  out->headers = r->hbuf ? r->hbuf : "";
  out->headers_len = r->hlen;
  out->error = r->rc ? (r->rc == FY_HTTP_ETOOLARGE ? "response body too large" : r->errbuf) : NULL;
}

const char *fy_http_strerror(int rc) {
  switch (rc) {
    case FY_HTTP_OK: return "ok";
    case FY_HTTP_EREFUSED: return "connection refused";
    case FY_HTTP_ERESET: return "connection reset before a whole reply";
    case FY_HTTP_ETIMEDOUT: return "timed out";
    case FY_HTTP_ETOOLARGE: return "response body too large";
    case FY_HTTP_ERESOLVE: return "could not resolve host";
    case FY_HTTP_ENOMEM: return "out of memory";
    default: return "transfer failed";
  }
}

void fy_http_stats(fy_http_t *h, fy_http_stats_t *out) { *out = h->st; }

void fy_http_close(fy_http_t *h) {
  if (!h || h->closing) return;
  h->closing = 1;
  while (h->active) {
    fy_http_req_t *r = h->active;
    curl_multi_remove_handle(h->multi, r->easy);
    req_unlink(r);
    req_free(r);
  }
  /* cleanup makes curl close its cached connections, which calls socket_cb(REMOVE) */
  curl_multi_cleanup(h->multi);
  h->multi = NULL;
  while (h->socks) sock_close(h, h->socks);
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, handle_closed);
}
