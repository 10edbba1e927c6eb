/* redis_test.c -- C tests for engine/net/redis.c against a real redis-server (make ctest-redis).
** The server is started here on a free port (no persistence, DEBUG allowed) and killed at the
** end. Covered: a refused connect, every reply kind, 1,000 pipelined commands in order, a
** deadline dropping the connection with every pending command, close with commands pending
** (and a detached one), an idle connection not keeping the loop alive, uv_loop_close at the end. */
#include "net/redis.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

static uv_loop_t loop;

typedef struct {
  int calls, rc, type;
  long long integer;
  char str[256];
} got_t;

static void on_reply(int rc, const redisReply *r, const char *err, void *data) {
  got_t *g = data;
  g->calls++;
  g->rc = rc;
  g->type = r ? r->type : -1;
  if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR))
    snprintf(g->str, sizeof g->str, "%.*s", (int)r->len, r->str);
  else if (!r)
    snprintf(g->str, sizeof g->str, "%s", err ? err : "");
  if (r && r->type == REDIS_REPLY_INTEGER) g->integer = r->integer;
}

static fy_redis_cmd_t *cmd(fy_redis_t *r, double timeout, got_t *g, int argc, const char **argv) {
  int rc;
  fy_redis_cmd_t *c = fy_redis_command(r, argc, argv, NULL, timeout, on_reply, g, &rc);
  CHECK(c != NULL);
  return c;
}
#define CMD(r, t, g, ...) cmd((r), (t), (g), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)), \
                              (const char *[]){__VA_ARGS__})

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the server ---- */
static pid_t server;
static int port;

static int start_server(void) {
  srand((unsigned)getpid() ^ (unsigned)time(NULL));
  for (int attempt = 0; attempt < 5; attempt++) {
    port = 20000 + rand() % 40000;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char *argv[] = {"redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--enable-debug-command", "local", "--logfile", "/dev/null", NULL};
    if (posix_spawnp(&server, "redis-server", NULL, NULL, argv, environ) != 0) return -1;
    for (int i = 0; i < 100; i++) { /* up to 5 s to answer PING */
      usleep(50000);
      redisContext *c = redisConnect("127.0.0.1", port);
      if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        redisFree(c);
        if (ok) return 0;
      } else if (c) {
        redisFree(c);
      }
      if (waitpid(server, NULL, WNOHANG) == server) break; /* exited: the port was taken */
    }
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
  }
  return -1;
}

static void stop_server(void) {
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);
}

/* ---- the tests ---- */

static void test_refused(void) {
  fy_redis_t *r = fy_redis_new(&loop, "127.0.0.1", 1, 2);
  got_t g = {0};
  CMD(r, 2, &g, "PING");
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(g.calls == 1);
  CHECK(g.rc == FY_REDIS_EDOWN);
  CHECK(strstr(g.str, "refused") != NULL);
  CHECK(fy_redis_state(r) == FY_REDIS_DEAD);
  int rc = 0;
  CHECK(fy_redis_command(r, 1, (const char *[]){"PING"}, NULL, 1, on_reply, &g, &rc) == NULL);
  CHECK(rc == FY_REDIS_EDOWN);
  fy_redis_close(r);
  uv_run(&loop, UV_RUN_DEFAULT);
}

static void test_replies(fy_redis_t *r) {
  got_t a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
  CMD(r, 2, &a, "SET", "k", "v");
  CMD(r, 2, &b, "GET", "k");
  CMD(r, 2, &c, "INCRBY", "n", "7");
  CMD(r, 2, &d, "GET", "missing");
  CMD(r, 2, &e, "NOSUCHCOMMAND");
  uv_run(&loop, UV_RUN_DEFAULT); /* returns: the idle connection keeps nothing alive */
  CHECK(a.rc == 0 && a.type == REDIS_REPLY_STATUS && strcmp(a.str, "OK") == 0);
  CHECK(b.type == REDIS_REPLY_STRING && strcmp(b.str, "v") == 0);
  CHECK(c.type == REDIS_REPLY_INTEGER && c.integer == 7);
  CHECK(d.rc == 0 && d.type == REDIS_REPLY_NIL);
  CHECK(e.rc == 0 && e.type == REDIS_REPLY_ERROR && strncmp(e.str, "ERR unknown command", 19) == 0);
  CHECK(fy_redis_state(r) == FY_REDIS_READY);
}

#define NPIPE 1000
static long long order[NPIPE];
static int norder;
static void on_incr(int rc, const redisReply *r, const char *err, void *data) {
  (void)err; (void)data;
  if (rc == 0 && r->type == REDIS_REPLY_INTEGER && norder < NPIPE) order[norder++] = r->integer;
}

static void test_pipeline(fy_redis_t *r) {
  got_t del = {0};
  CMD(r, 2, &del, "DEL", "ctr");
  for (int i = 0; i < NPIPE; i++) {
    int rc;
    CHECK(fy_redis_command(r, 2, (const char *[]){"INCR", "ctr"}, NULL, 5, on_incr, NULL, &rc) != NULL);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(norder == NPIPE);
  int in_order = 1;
  for (int i = 0; i < norder; i++) in_order &= order[i] == i + 1;
  CHECK(in_order);
  fy_redis_stats_t st;
  fy_redis_stats(r, &st);
  CHECK(st.pending == 0);
}

static void test_deadline(void) {
  fy_redis_t *r = fy_redis_new(&loop, "127.0.0.1", port, 2);
  got_t slow = {0}, ping = {0};
  CMD(r, 3, &slow, "DEBUG", "SLEEP", "0.5");
  double t0 = now();
  CMD(r, 0.1, &ping, "PING");
  uv_run(&loop, UV_RUN_DEFAULT);
  double dt = now() - t0;
  CHECK(slow.rc == FY_REDIS_ETIMEOUT);
  CHECK(ping.rc == FY_REDIS_ETIMEOUT);
  CHECK(dt >= 0.09 && dt < 0.3);
  CHECK(fy_redis_state(r) == FY_REDIS_DEAD);
  fy_redis_stats_t st;
  fy_redis_stats(r, &st);
  CHECK(st.timeouts == 2 && st.pending == 0);
  fy_redis_close(r);
  uv_run(&loop, UV_RUN_DEFAULT);
  usleep(500000); /* the server wakes up before the next test */
}

static fy_redis_t *to_close;
static void close_cb(uv_timer_t *t) {
  fy_redis_close(to_close);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_close_pending(void) {
  fy_redis_t *r = fy_redis_new(&loop, "127.0.0.1", port, 2);
  got_t b[3] = {{0}};
  got_t detached = {0};
  for (int i = 0; i < 3; i++) CMD(r, 0, &b[i], "BLPOP", "nothing", "0");
  fy_redis_detach(CMD(r, 0, &detached, "BLPOP", "nothing", "0"));
  to_close = r;
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, close_cb, 50, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 3; i++) CHECK(b[i].calls == 1 && b[i].rc == FY_REDIS_ECLOSED);
  CHECK(detached.calls == 0);
}

int main(void) {
  uv_loop_init(&loop);
  if (start_server() != 0) {
    fprintf(stderr, "redis_test: could not start redis-server (make deps installs it)\n");
    return 1;
  }
  test_refused();
  fy_redis_t *r = fy_redis_new(&loop, "127.0.0.1", port, 2);
  test_replies(r);
  test_pipeline(r);
  fy_redis_close(r);
  uv_run(&loop, UV_RUN_DEFAULT);
  test_deadline();
  test_close_pending();
  stop_server();
  CHECK(uv_loop_close(&loop) == 0); /* every handle closed, every allocation freed (ASan) */
  printf("redis_test: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}
