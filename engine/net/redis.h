/*
** redis.h -- one Redis connection: hiredis async on the engine's libuv loop.
**
** Provides: fy_redis_t (one hiredis async context attached with <hiredis/adapters/libuv.h>)
** and commands that complete through a callback on the loop thread. Commands may be sent
** before the connection is up (hiredis queues them) and many may be in flight at once
** (pipelining: replies come back in order).
** Deadlines: hiredis 0.14 has no async timeouts, so one uv timer per connection watches the
** connect deadline and every pending command's deadline. When one passes, the connection is
** dropped and every command pending on it fails with FY_REDIS_ETIMEOUT: a stuck server
** (SIGSTOP) leaves nothing to wait for on that socket. A dead connection stays dead; whoever
** owns it opens a new one (ferry.redis reconnects with backoff).
** Depends on: hiredis 0.14, libuv. Loop thread only. Knows nothing of Lua (redis_lua.c binds it).
** Backs: ferry.core.redis, and through it ferry.redis.
*/
#ifndef FY_REDIS_H
#define FY_REDIS_H

#include <stddef.h>
#include <uv.h>
#include <hiredis/hiredis.h>

typedef struct fy_redis fy_redis_t;
typedef struct fy_redis_cmd fy_redis_cmd_t;

enum {
  FY_REDIS_OK = 0,
  FY_REDIS_EDOWN = -1,    /* refused, reset or closed by the server: the connection is gone */
  FY_REDIS_ETIMEOUT = -2, /* a deadline passed: the connection was dropped */
  FY_REDIS_ECLOSED = -3,  /* fy_redis_close (ours) */
  FY_REDIS_ENOMEM = -4,
};

enum { FY_REDIS_CONNECTING, FY_REDIS_READY, FY_REDIS_DEAD };

/* rc FY_REDIS_OK: reply is hiredis's (valid until cb returns; may be a REDIS_REPLY_ERROR).
 * rc < 0: reply is NULL and err says why (the server's address is not in it). */
typedef void (*fy_redis_cb)(int rc, const redisReply *reply, const char *err, void *data);

/* Start connecting to host:port (an IP address: hiredis resolves names with a blocking
 * getaddrinfo, so the binding resolves them first). connect_timeout_s <= 0: none. Returns the
 * connection, which may already be DEAD (see fy_redis_error), or NULL when out of memory. */
fy_redis_t *fy_redis_new(uv_loop_t *loop, const char *ip, int port, double connect_timeout_s);

/* Send one command (argv copied before return). timeout_s <= 0: no deadline. cb runs exactly
 * once from the loop, never from inside this call, unless fy_redis_detach is called first.
 * Returns the command, or NULL with *rc set (the connection is dead: nothing was sent). */
fy_redis_cmd_t *fy_redis_command(fy_redis_t *r, int argc, const char **argv, const size_t *argvlen,
                                 double timeout_s, fy_redis_cb cb, void *data, int *rc);

/* The caller no longer wants the reply (its task was cancelled). The command stays in the
 * pipeline (its reply is read and dropped); its deadline still holds the connection to account. */
void fy_redis_detach(fy_redis_cmd_t *cmd);

/* Drop the connection if it is up (pending commands call back with FY_REDIS_ECLOSED), close
 * the timer; the memory is freed in its close callback. r must not be used afterwards. */
void fy_redis_close(fy_redis_t *r);

int fy_redis_state(const fy_redis_t *r);
/* Why the connection is dead ("" while it is not). */
const char *fy_redis_error(const fy_redis_t *r);
const char *fy_redis_strerror(int rc);

typedef struct {
  unsigned long long sent, replies, errors, failed, timeouts;
  long pending;
} fy_redis_stats_t;
void fy_redis_stats(const fy_redis_t *r, fy_redis_stats_t *out);

#endif
