/*
** db_lua.c -- ferry.core.db: SQLite for the store, with every statement run off the loop.
**
**   local db = require "ferry.core.db"
**   local c = db.open(path [, {sync = "full"}])   -- returns at once; the open is the first job
**   c:exec(sql, ...) -> rows, changes | nil, err   -- parks the task; rows = { {col = value}, ... }
**   c:batch{ {sql, ...}, ... } -> results | nil, err
**                                  -- one transaction (BEGIN IMMEDIATE); results[i] = {rows=, changes=};
**                                  -- on failure nothing of it is kept and err.statement says which
**   c:post(sql, ...)               -- queued, not waited for (a <close> handler cannot yield);
**   c:post{ {sql, ...}, ... }      -- the same for a transaction of several statements;
**                                  -- a failure is counted in c:stats() and logged
**   c:stats() -> {jobs, queued, failed, last_error}
**   c:close()                      -- after what is queued has run
**
** A job runs at once on the loop thread when nothing is queued for the worker and commits are
** not fsynced (sync = "normal": a WAL commit is a write(2) into the page cache); otherwise, or
** when another process holds the lock, it is queued for libuv's thread pool, where jobs run
** in the order they were queued and those queued together commit together (group commit).
** So a posted write and a later exec never overtake each other, and the loop thread never
** waits on an fsync or on another process's lock (busy timeout 5 s, on the worker).
** Checkpoints (which fsync) run on the worker, every 1000 commits.
** Values: integer, float, string (TEXT), boolean (0/1) and nil (NULL) in; integer, float,
** string, and a missing key for NULL out.
** Depends on: prim/db.h, task.h (fy_op), bind.h, log.h. Loop thread only (the workers run db.c).
*/
#include "prim/db.h"
#include "core/engine.h"
#include "core/task.h"
#include "core/bind.h"
#include "core/log.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define DB_MT "ferry.Db"
#define GROUP_MAX 256     /* jobs committed together at most (group commit) */
/* Checkpoints: wal_autocheckpoint is off (a commit on the loop thread must never become a
 * checkpoint's fsync); one is queued for the worker every CHECKPOINT_EVERY commits. */
#define CHECKPOINT_EVERY 1000

typedef struct conn conn_t;

typedef struct item {
  conn_t *c;
  fy_db_job_t *job;       /* NULL for the open */
  fy_op_t *op;            /* the task waiting, NULL for a post or once it went away */
  int batch;              /* results as a list of {rows, changes} */
  int ready;              /* db:ready(): true instead of rows */
  struct item *next;
} item_t;

struct conn {
  fy_engine_t *E;
  fy_db_t *db;
  char *path;
  int sync_full;
  char *open_err;         /* why the open failed: every later job fails with it */
  item_t *head, *tail;    /* the worker's queue, head first; the first `running` of them are running */
  item_t *dhead, *dtail;  /* posted and not run yet: flushed at the end of this loop iteration */
  struct conn *next_conn; /* every open connection of the engine (the flush hook walks them) */
  int running;            /* how many jobs the worker runs now (a group: one transaction) */
  uv_work_t req;          /* the worker's run */
  fy_db_job_t *group[GROUP_MAX];
  int released;           /* the Lua side let go (close or __gc): free once the queue is empty */
  uint64_t jobs, failed, inline_jobs, commits;
  char last_error[160];
};

typedef struct { conn_t *c; } box_t;

static void start_next(conn_t *c);
static void enqueue(conn_t *c, struct item *it);

static void flusher_remove(conn_t *c);

static void conn_free(conn_t *c) {
  flusher_remove(c);
  fy_db_close(c->db);
  free(c->path);
  free(c->open_err);
  free(c);
}

/* worker thread: SQLite only. The open runs alone; other jobs queued together are committed
 * together (one transaction, a savepoint each): under load the queue drains in a few disk
 * commits instead of one per write. */
static void work(uv_work_t *req) {
  conn_t *c = req->data;
  if (!c->head->job) {
    c->db = fy_db_open(c->path, c->sync_full, &c->open_err);
    return;
  }
  if (!c->db) return;     /* the open failed: after() reports it */
  fy_db_run_group(c->db, c->group, c->running);
}

static void push_value(lua_State *L, const fy_db_val_t *v) {
  switch (v->type) {
    case FY_DB_INT: lua_pushinteger(L, (lua_Integer)v->i); break;
    case FY_DB_REAL: lua_pushnumber(L, v->d); break;
    case FY_DB_TEXT: case FY_DB_BLOB: lua_pushlstring(L, v->s, v->n); break;
    default: lua_pushnil(L);
  }
}

static void push_rows(lua_State *L, const fy_db_stmt_t *s) {
  lua_createtable(L, (int)s->nrows, 0);
  for (size_t r = 0; r < s->nrows; r++) {
    lua_createtable(L, 0, s->ncols);
    for (int col = 0; col < s->ncols; col++) {
      const fy_db_val_t *v = &s->rows[r * (size_t)s->ncols + (size_t)col];
      if (v->type == FY_DB_NULL) continue;
      push_value(L, v);
      lua_setfield(L, -2, s->cols[col]);
    }
    lua_rawseti(L, -2, (lua_Integer)r + 1);
  }
}

/* -> number of values pushed on L: the results, or nil, err */
static int push_results(lua_State *L, conn_t *c, item_t *it) {
  fy_db_job_t *job = it->job;
  if (!c->db) {
    lua_pushnil(L);
    fy_push_errorf(L, "store_unavailable", "cannot open %s: %s", c->path, c->open_err ? c->open_err : "?");
    return 2;
  }
  if (job->rc) {
    lua_pushnil(L);
    fy_push_errorf(L, fy_db_code(job->rc), "%s", job->err ? job->err : "sqlite error");
    if (it->batch && job->failed_at >= 0) {
      lua_pushinteger(L, job->failed_at + 1);
      lua_setfield(L, -2, "statement");
    }
    return 2;
  }
  if (!it->batch) {
    push_rows(L, &job->stmts[0]);
    lua_pushinteger(L, (lua_Integer)job->stmts[0].changes);
    return 2;
  }
  lua_createtable(L, job->nstmts, 0);
  for (int i = 0; i < job->nstmts; i++) {
    lua_createtable(L, 0, 2);
    push_rows(L, &job->stmts[i]);
    lua_setfield(L, -2, "rows");
    lua_pushinteger(L, (lua_Integer)job->stmts[i].changes);
    lua_setfield(L, -2, "changes");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* loop thread: one job's results to its task (if one waits) */
static void finish(conn_t *c, item_t *it) {
  if (it->job) {
    c->jobs++;
    if (!c->db || it->job->rc) {
      c->failed++;
      snprintf(c->last_error, sizeof c->last_error, "%s", !c->db ? (c->open_err ? c->open_err : "cannot open")
                                                             : (it->job->err ? it->job->err : "sqlite error"));
      if (!it->op) fy_log(FY_LOG_ERROR, "store write failed (%s): %s", c->path, c->last_error);
    }
  }
  fy_op_t *op = it->op;
  if (op && fy_op_settle(op)) {
    lua_State *co = fy_op_thread(op);
    int n = push_results(co, c, it);
    if (it->ready && n == 2 && !lua_isnil(co, -2)) { lua_pop(co, 2); lua_pushboolean(co, 1); n = 1; }
    fy_op_ready(op, n);
  }
  fy_db_job_free(it->job);
  free(it);
}

/* A job run here: its results pushed on L (nil, err on failure) and freed. -> count */
static int done_here(lua_State *L, conn_t *c, item_t *it, int posted) {
  c->jobs++;
  if (it->job->rc) {
    c->failed++;
    snprintf(c->last_error, sizeof c->last_error, "%s", it->job->err ? it->job->err : "sqlite error");
    if (posted) fy_log(FY_LOG_ERROR, "store write failed (%s): %s", c->path, c->last_error);
  }
  int n = push_results(L, c, it);
  if (it->ready && n == 2 && !lua_isnil(L, -2)) { lua_pop(L, 2); lua_pushboolean(L, 1); n = 1; }
  fy_db_job_free(it->job);
  free(it);
  return n;
}

static void count_commit(conn_t *c) {
  if (++c->commits % CHECKPOINT_EVERY) return;
  item_t *it = calloc(1, sizeof *it);
  fy_db_job_t *job = it ? fy_db_job_new(1, 0) : NULL;
  if (!job || !(job->stmts[0].sql = malloc(32))) { fy_db_job_free(job); free(it); return; }
  strcpy(job->stmts[0].sql, "PRAGMA wal_checkpoint(PASSIVE)");
  it->job = job;
  enqueue(c, it);
}

/* loop thread: the run is over: hand out its results in order, then run what queued meanwhile */
static void after(uv_work_t *req, int status) {
  (void)status;    /* runs are never cancelled once queued in libuv */
  conn_t *c = req->data;
  int n = c->running;
  c->running = 0;
  if (n && c->head->job) count_commit(c);
  for (int k = 0; k < n; k++) {
    item_t *it = c->head;
    c->head = it->next;
    if (!c->head) c->tail = NULL;
    finish(c, it);
  }
  start_next(c);
}

static void start_next(conn_t *c) {
  if (c->running) return;
  if (!c->head) {
    if (c->released) conn_free(c);
    return;
  }
  int n = 0;
  if (!c->head->job) n = 1;                       /* the open, alone */
  else
    for (item_t *it = c->head; it && it->job && n < GROUP_MAX; it = it->next) c->group[n++] = it->job;
  c->running = n;
  c->req.data = c;
  if (uv_queue_work(&c->E->loop, &c->req, work, after) != 0) {
    /* cannot happen with a live loop; run it here rather than lose a write */
    work(&c->req);
    after(&c->req, 0);
  }
}

static void enqueue(conn_t *c, item_t *it) {
  it->c = c;
  it->next = NULL;
  if (c->tail) c->tail->next = it;
  else c->head = it;
  c->tail = it;
  start_next(c);
}

static void on_cancel(fy_op_t *op, void *data) {
  (void)op;
  ((item_t *)data)->op = NULL;   /* the job still runs (a write is kept); its results are dropped */
}

/* ---- running jobs here, on the loop thread ----------------------------------------------
** A WAL commit with synchronous=NORMAL is a write(2) into the page cache (tens of
** microseconds), cheaper than a trip through the thread pool and back into the loop, which
** under load waited several milliseconds for its turn. So, when the worker has nothing queued
** or running (it could not be overtaken) and commits are not fsynced (sync = "full" always
** uses the worker), jobs run here:
**   - posted writes wait in `deferred` and are committed together once per loop iteration
**     (uv_prepare: just before the loop waits for I/O), or with the next exec/batch;
**   - an exec/batch commits what is deferred and itself in one transaction and returns at once.
** Another process's lock is never waited for here (busy timeout 0): the jobs then go to the
** worker, which waits for it. */

static struct {
  uv_prepare_t h;
  fy_engine_t *E;         /* the engine it belongs to (initialised once per engine) */
  conn_t *conns;          /* open connections */
  int active;
} flusher;

static int can_run_here(conn_t *c) {
  return c->db && !c->sync_full && !c->running && !c->head;
}

/* Run items (a list of n) here in one transaction. -> 1 when done, 0 when another process holds
 * the lock (nothing was run; the items are as they were) */
static int run_here(conn_t *c, item_t **items, int n) {
  fy_db_job_t *jobs[GROUP_MAX];
  for (int k = 0; k < n; k++) jobs[k] = items[k]->job;
  fy_db_busy_timeout(c->db, 0);
  fy_db_run_group(c->db, jobs, n);
  fy_db_busy_timeout(c->db, 5000);
  if (jobs[0]->rc && fy_db_is_busy(jobs[0]->rc)) {
    for (int k = 0; k < n; k++) fy_db_job_reset(jobs[k]);
    return 0;
  }
  c->inline_jobs += (uint64_t)n;
  count_commit(c);
  return 1;
}

/* The deferred writes go to the worker's queue, in order (it cannot run them here). */
static void defer_to_worker(conn_t *c) {
  item_t *it = c->dhead;
  c->dhead = c->dtail = NULL;
  while (it) {
    item_t *next = it->next;
    enqueue(c, it);
    it = next;
  }
}

/* Commit what is deferred, plus `last` (a job someone waits on) if given, here when possible.
 * -> 1 when `last` ran here (its results are in it), 0 when it must go to the worker */
static int flush(conn_t *c, item_t *last) {
  for (;;) {
    item_t *batch[GROUP_MAX];
    int n = 0;
    for (item_t *it = c->dhead; it && n < GROUP_MAX - 1; it = it->next) batch[n++] = it;
    int with_last = last && (!c->dhead || n == 0 || batch[n - 1]->next == NULL);
    if (with_last) batch[n++] = last;
    if (n == 0) return 0;
    if (!can_run_here(c) || !run_here(c, batch, n)) {
      defer_to_worker(c);
      return 0;
    }
    int posted = with_last ? n - 1 : n;
    for (int k = 0; k < posted; k++) {
      c->dhead = batch[k]->next;
      finish(c, batch[k]);
    }
    if (!c->dhead) c->dtail = NULL;
    if (with_last) return 1;
  }
}

static void on_prepare(uv_prepare_t *h) {
  (void)h;
  int pending = 0;
  for (conn_t *c = flusher.conns; c; c = c->next_conn) {
    flush(c, NULL);
    if (c->dhead) pending = 1;
  }
  if (!pending) {
    uv_prepare_stop(&flusher.h);
    flusher.active = 0;
  }
}

/* At shutdown (after every task's <close> ran, before the handles close): what is deferred
 * goes now, so the loop's last runs drain it. */
static void on_shutdown(void *data) {
  (void)data;
  for (conn_t *c = flusher.conns; c; c = c->next_conn) flush(c, NULL);
}

static void flusher_add(conn_t *c) {
  if (flusher.E != c->E) {
    memset(&flusher, 0, sizeof flusher);
    flusher.E = c->E;
    uv_prepare_init(&c->E->loop, &flusher.h);
    uv_unref((uv_handle_t *)&flusher.h);
    fy_engine_on_shutdown(c->E, on_shutdown, NULL);
  }
  c->next_conn = flusher.conns;
  flusher.conns = c;
}

static void flusher_remove(conn_t *c) {
  for (conn_t **p = &flusher.conns; *p; p = &(*p)->next_conn)
    if (*p == c) { *p = c->next_conn; return; }
}

static void post(conn_t *c, item_t *it) {
  it->c = c;
  it->next = NULL;
  if (c->dtail) c->dtail->next = it;
  else c->dhead = it;
  c->dtail = it;
  if (!flusher.active && !c->E->closing) {
    flusher.active = 1;
    uv_prepare_start(&flusher.h, on_prepare);
  } else if (c->E->closing) {
    flush(c, NULL);
  }
}

static conn_t *check_conn(lua_State *L) {
  box_t *b = fy_checkudata(L, 1, DB_MT);
  if (!b->c) fy_raise(L, "closed", "the store's database is closed");
  return b->c;
}

/* Copy the Lua value at idx into v. may raise */
static void take_param(lua_State *L, int idx, fy_db_val_t *v, int argn) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: v->type = FY_DB_NULL; break;
    case LUA_TBOOLEAN: v->type = FY_DB_INT; v->i = lua_toboolean(L, idx); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) { v->type = FY_DB_INT; v->i = (int64_t)lua_tointeger(L, idx); }
      else { v->type = FY_DB_REAL; v->d = lua_tonumber(L, idx); }
      break;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      v->s = malloc(n + 1);
      if (!v->s) fy_raise(L, "out_of_memory", "db: out of memory");
      memcpy(v->s, s, n + 1);
      v->n = n;
      v->type = FY_DB_TEXT;
      break;
    }
    default: fy_argerror(L, argn, "a value for SQL (nil, boolean, number or string) expected, got %s", luaL_typename(L, idx));
  }
}

/* Fill statement s from the Lua values sql, p1..pn at [first, last]. may raise (the job is
 * owned by a to-be-freed holder on the stack) */
static void take_stmt(lua_State *L, fy_db_stmt_t *s, int first, int last, int argn) {
  size_t n;
  const char *sql = lua_tolstring(L, first, &n);
  if (!sql) fy_argerror(L, argn, "SQL text expected");
  s->sql = malloc(n + 1);
  if (!s->sql) fy_raise(L, "out_of_memory", "db: out of memory");
  memcpy(s->sql, sql, n + 1);
  int np = last - first;
  if (np > 0) {
    s->params = calloc((size_t)np, sizeof *s->params);
    if (!s->params) fy_raise(L, "out_of_memory", "db: out of memory");
    for (int i = 0; i < np; i++) {
      take_param(L, first + 1 + i, &s->params[i], argn);
      s->nparams = i + 1;
    }
  }
}

/* A job under construction, freed by __gc if building it raises */
typedef struct { fy_db_job_t *job; } holder_t;
static int holder_gc(lua_State *L) {
  holder_t *h = lua_touserdata(L, 1);
  fy_db_job_free(h->job);
  h->job = NULL;
  return 0;
}
static holder_t *holder_new(lua_State *L, int n, int transaction) {
  holder_t *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->job = NULL;
  if (luaL_newmetatable(L, "ferry.DbJob")) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  h->job = fy_db_job_new(n, transaction);
  if (!h->job) fy_raise(L, "out_of_memory", "db: out of memory");
  return h;
}

static item_t *item_new(lua_State *L, holder_t *h) {
  item_t *it = calloc(1, sizeof *it);
  if (!it) fy_raise(L, "out_of_memory", "db: out of memory");
  it->job = h->job;
  h->job = NULL;
  return it;
}

/* A job someone waits on: run here with what is deferred when possible (its results returned
 * at once), else queued for the worker with the task parked until it ran. */
static int run_or_wait(lua_State *L, conn_t *c, item_t *it) {
  it->c = c;
  if (flush(c, it)) return done_here(L, c, it, 0);
  fy_op_t *op = fy_op_new(L, 0, on_cancel, it);
  it->op = op;
  enqueue(c, it);
  return fy_op_yield(L, op);
}

static int l_exec(lua_State *L) {
  conn_t *c = check_conn(L);
  int top = lua_gettop(L);
  fy_checkstring(L, 2);
  fy_task_require(L, "db:exec");
  holder_t *h = holder_new(L, 1, 0);
  take_stmt(L, &h->job->stmts[0], 2, top, 2);
  item_t *it = item_new(L, h);
  return run_or_wait(L, c, it);
}

static item_t *batch_item(lua_State *L);

static int l_post(lua_State *L) {
  conn_t *c = check_conn(L);
  item_t *it;
  if (lua_type(L, 2) == LUA_TTABLE) {      /* a list of statements: one transaction */
    it = batch_item(L);
  } else {
    int top = lua_gettop(L);
    fy_checkstring(L, 2);
    holder_t *h = holder_new(L, 1, 0);
    take_stmt(L, &h->job->stmts[0], 2, top, 2);
    it = item_new(L, h);
  }
  post(c, it);
  return 0;
}

/* Build a transaction job from the statement list at index 2. may raise */
static item_t *batch_item(lua_State *L) {
  int n = (int)luaL_len(L, 2);
  if (n < 1) fy_argerror(L, 2, "at least one statement expected");
  holder_t *h = holder_new(L, n, 1);
  int hidx = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (lua_type(L, -1) != LUA_TTABLE) fy_argerror(L, 2, "statement %d: {sql, values...} expected", i + 1);
    int t = lua_gettop(L);
    lua_Integer nv = luaL_len(L, t);
    lua_getfield(L, t, "n");                          /* table.pack's n: trailing nils */
    if (lua_isinteger(L, -1)) nv = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (nv < 1) fy_argerror(L, 2, "statement %d: no SQL", i + 1);
    luaL_checkstack(L, (int)nv + 4, "db: too many values");
    for (lua_Integer k = 1; k <= nv; k++) lua_rawgeti(L, t, k);
    take_stmt(L, &h->job->stmts[i], t + 1, t + (int)nv, 2);
    lua_settop(L, hidx);
  }
  item_t *it = item_new(L, h);
  it->batch = 1;
  return it;
}

static int l_batch(lua_State *L) {
  conn_t *c = check_conn(L);
  fy_checktype(L, 2, LUA_TTABLE);
  fy_task_require(L, "db:batch");
  item_t *it = batch_item(L);
  return run_or_wait(L, c, it);
}

static int l_stats(lua_State *L) {
  conn_t *c = check_conn(L);
  size_t queued = 0;
  for (item_t *it = c->head; it; it = it->next) queued++;
  queued -= (size_t)c->running;
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)c->jobs);
  lua_setfield(L, -2, "jobs");
  lua_pushinteger(L, (lua_Integer)queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, (lua_Integer)c->failed);
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, (lua_Integer)c->inline_jobs);
  lua_setfield(L, -2, "inline");
  if (c->last_error[0]) {
    lua_pushstring(L, c->last_error);
    lua_setfield(L, -2, "last_error");
  }
  lua_pushstring(L, c->path);
  lua_setfield(L, -2, "path");
  return 1;
}

/* close / __gc: the Lua side lets go; queued jobs still run, then the connection closes */
static int l_close(lua_State *L) {
  box_t *b = fy_checkudata(L, 1, DB_MT);
  conn_t *c = b->c;
  if (!c) return 0;
  b->c = NULL;
  c->released = 1;
  if (c->dhead && !c->running && !c->head && c->db && c->E->closing) {
    /* the loop may be closed already (lua_close): what is still deferred is written here */
    for (item_t *it = c->dhead; it; it = it->next) fy_db_run(c->db, it->job);
    while (c->dhead) {
      item_t *it = c->dhead;
      c->dhead = it->next;
      finish(c, it);
    }
    c->dtail = NULL;
  }
  flush(c, NULL);
  if (!c->running && !c->head) conn_free(c);
  return 0;
}

static int l_open(lua_State *L) {
  size_t n;
  const char *path = fy_checklstring(L, 1, &n);
  int sync_full = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "sync");
    const char *s = lua_tostring(L, -1);
    if (s && strcmp(s, "full") == 0) sync_full = 1;
    else if (s && strcmp(s, "normal") != 0) return fy_argerror(L, 2, "sync: \"normal\" or \"full\" expected");
    lua_pop(L, 1);
  }
  fy_engine_t *E = fy_engine(L);
  if (E->closing) return fy_raise(L, "closed", "db.open: the engine is shutting down");
  box_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->c = NULL;
  luaL_setmetatable(L, DB_MT);
  conn_t *c = calloc(1, sizeof *c);
  if (!c || !(c->path = malloc(n + 1))) { free(c); return fy_raise(L, "out_of_memory", "db: out of memory"); }
  memcpy(c->path, path, n + 1);
  c->E = E;
  c->sync_full = sync_full;
  b->c = c;
  flusher_add(c);
  item_t *it = calloc(1, sizeof *it);   /* the open: job NULL */
  if (!it) return fy_raise(L, "out_of_memory", "db: out of memory");
  enqueue(c, it);
  return 1;
}

/* c:ready() -> true | nil, err: whether the database opened (after the jobs queued before) */
static int l_ready(lua_State *L) {
  conn_t *c = check_conn(L);
  fy_task_require(L, "db:ready");
  holder_t *h = holder_new(L, 1, 0);
  take_stmt(L, &h->job->stmts[0], (lua_pushliteral(L, "SELECT 1"), lua_gettop(L)), lua_gettop(L), 1);
  item_t *it = item_new(L, h);
  it->ready = 1;
  return run_or_wait(L, c, it);
}

static int l_tostring(lua_State *L) {
  box_t *b = fy_checkudata(L, 1, DB_MT);
  if (b->c) lua_pushfstring(L, "db (%s)", b->c->path);
  else lua_pushliteral(L, "db (closed)");
  return 1;
}

int luaopen_ferry_core_db(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"exec", l_exec}, {"post", l_post}, {"batch", l_batch}, {"stats", l_stats}, {"close", l_close},
    {"ready", l_ready}, {NULL, NULL},
  };
  luaL_newmetatable(L, DB_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"open", l_open}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
