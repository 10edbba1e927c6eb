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
**                                  -- a failure is counted in c:stats() and logged
**   c:stats() -> {jobs, queued, failed, last_error}
**   c:close()                      -- after what is queued has run
**
** Jobs of one connection run one at a time on libuv's thread pool in the order they were
** queued, so a posted write and a later exec never overtake each other, and the loop thread
** never waits on the disk (or on another process's lock: busy timeout 5 s, on the worker).
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

typedef struct conn conn_t;

typedef struct item {
  uv_work_t req;
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
  item_t *head, *tail;    /* queued, head first; head is running when `running` */
  int running;
  int released;           /* the Lua side let go (close or __gc): free once the queue is empty */
  uint64_t jobs, failed;
  char last_error[160];
};

typedef struct { conn_t *c; } box_t;

static void start_next(conn_t *c);

static void conn_free(conn_t *c) {
  fy_db_close(c->db);
  free(c->path);
  free(c->open_err);
  free(c);
}

/* worker thread: SQLite only */
static void work(uv_work_t *req) {
  item_t *it = req->data;
  conn_t *c = it->c;
  if (!it->job) {
    c->db = fy_db_open(c->path, c->sync_full, &c->open_err);
    return;
  }
  if (!c->db) return;     /* the open failed: after() reports it */
  fy_db_run(c->db, it->job);
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

/* loop thread: hand the results to the waiting task, then run the next job */
static void after(uv_work_t *req, int status) {
  (void)status;    /* jobs are never cancelled once queued in libuv */
  item_t *it = req->data;
  conn_t *c = it->c;
  c->head = it->next;
  if (!c->head) c->tail = NULL;
  c->running = 0;
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
  start_next(c);
}

static void start_next(conn_t *c) {
  if (c->running) return;
  if (!c->head) {
    if (c->released) conn_free(c);
    return;
  }
  c->running = 1;
  item_t *it = c->head;
  it->req.data = it;
  if (uv_queue_work(&c->E->loop, &it->req, work, after) != 0) {
    /* cannot happen with a live loop; run it here rather than lose a write */
    work(&it->req);
    after(&it->req, 0);
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

static int l_exec(lua_State *L) {
  conn_t *c = check_conn(L);
  int top = lua_gettop(L);
  fy_checkstring(L, 2);
  fy_task_require(L, "db:exec");
  holder_t *h = holder_new(L, 1, 0);
  take_stmt(L, &h->job->stmts[0], 2, top, 2);
  item_t *it = item_new(L, h);
  fy_op_t *op = fy_op_new(L, 0, on_cancel, it);
  it->op = op;
  enqueue(c, it);
  return fy_op_yield(L, op);
}

static int l_post(lua_State *L) {
  conn_t *c = check_conn(L);
  int top = lua_gettop(L);
  fy_checkstring(L, 2);
  holder_t *h = holder_new(L, 1, 0);
  take_stmt(L, &h->job->stmts[0], 2, top, 2);
  enqueue(c, item_new(L, h));
  return 0;
}

static int l_batch(lua_State *L) {
  conn_t *c = check_conn(L);
  fy_checktype(L, 2, LUA_TTABLE);
  fy_task_require(L, "db:batch");
  int n = (int)luaL_len(L, 2);
  if (n < 1) return fy_argerror(L, 2, "at least one statement expected");
  holder_t *h = holder_new(L, n, 1);
  int hidx = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (lua_type(L, -1) != LUA_TTABLE) return fy_argerror(L, 2, "statement %d: {sql, values...} expected", i + 1);
    int t = lua_gettop(L);
    lua_Integer len = luaL_len(L, t);
    lua_Integer nv = len;
    lua_getfield(L, t, "n");                          /* table.pack's n: trailing nils */
    if (lua_isinteger(L, -1)) nv = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (nv < 1) return fy_argerror(L, 2, "statement %d: no SQL", i + 1);
    for (lua_Integer k = 1; k <= nv; k++) lua_rawgeti(L, t, k);
    take_stmt(L, &h->job->stmts[i], t + 1, t + (int)nv, 2);
    lua_settop(L, hidx);
  }
  item_t *it = item_new(L, h);
  it->batch = 1;
  fy_op_t *op = fy_op_new(L, 0, on_cancel, it);
  it->op = op;
  enqueue(c, it);
  return fy_op_yield(L, op);
}

static int l_stats(lua_State *L) {
  conn_t *c = check_conn(L);
  size_t queued = 0;
  for (item_t *it = c->head; it; it = it->next) queued++;
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)c->jobs);
  lua_setfield(L, -2, "jobs");
  lua_pushinteger(L, (lua_Integer)queued);
  lua_setfield(L, -2, "queued");
  lua_pushinteger(L, (lua_Integer)c->failed);
  lua_setfield(L, -2, "failed");
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
  fy_op_t *op = fy_op_new(L, 0, on_cancel, it);
  it->op = op;
  enqueue(c, it);
  return fy_op_yield(L, op);
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
