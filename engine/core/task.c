/*
** task.c -- the scheduler: tasks (coroutines) parked on pending ops, one drain point.
**
** A task is a "ferry.Task" userdata whose first user value is its thread and whose second
** is its outcome ({n=, ...} results, or the error). While alive it is anchored by a
** registry ref; when it ends the ref is dropped and the thread released, so a finished
** task costs only its results. Completion callbacks never resume a task: they push the
** results on its thread and enqueue it; check_cb (a uv_check_t) resumes ready tasks.
*/
#include "core/bind.h"
#include "core/task.h"
#include "core/engine.h"
#include "core/log.h"

#include <lauxlib.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double fy_now(void) { return (double)uv_hrtime() / 1e9; }

int fy_ref(lua_State *L) {
  int r = luaL_ref(L, LUA_REGISTRYINDEX);
  if (r != LUA_REFNIL && r != LUA_NOREF) fy_engine(L)->refs++;
  return r;
}

void fy_unref(lua_State *L, int *ref) {
  if (*ref != LUA_REFNIL && *ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    fy_engine(L)->refs--;
  }
  *ref = LUA_NOREF;
}

#define TASK_MT "ferry.Task"

/* The value an engine yield carries so user coroutine wrappers can forward it. */
static char YIELD_TAG;
static char EXIT_TAG;

enum { T_READY, T_RUNNING, T_WAITING, T_DONE, T_FAILED, T_CANCELLED };
static const char *const state_names[] = {"ready", "running", "waiting", "done", "failed",
                                          "cancelled"};

struct fy_task {
  fy_engine_t *E;
  lua_State *co;
  int ref;                         /* anchors the userdata while alive */
  uint64_t id;
  int state;
  int queued;
  int nres;                        /* values waiting on co for the next resume */
  int detached;
  int daemon;                      /* its waits do not keep the loop alive */
  fy_op_t *op;                     /* the pending op, if waiting */
  fy_op_t *waiters;                /* ops of tasks blocked in :wait() on this one */
  fy_task_t *next_ready;
  fy_task_t *prev_all, *next_all;
  fy_task_t *parent, *children, *prev_sib, *next_sib;
  double started;
};

struct fy_op {
  fy_task_t *task;
  fy_op_cancel_fn cancel;
  void *data;
  uv_timer_t timer;
  int has_timer;
  int settled;
  int is_sleep;
  fy_op_t *prev_w, *next_w;        /* links in a waited-on task's waiters list */
};

/* ------------------------------------------------------------------------------------------
** Errors
** ---------------------------------------------------------------------------------------- */

void fy_push_error(lua_State *L, const char *code, const char *msg) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, msg ? msg : code);
  lua_setfield(L, -2, "message");
  if (luaL_getmetatable(L, "ferry.Error") == LUA_TTABLE) lua_setmetatable(L, -2);
  else lua_pop(L, 1);
}

int fy_fail(lua_State *L, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lua_pushnil(L);
  fy_push_error(L, code, msg);
  return 2;
}

/* ------------------------------------------------------------------------------------------
** Ready queue and task list
** ---------------------------------------------------------------------------------------- */

static void spin_cb(uv_idle_t *h) { (void)h; }

static void enqueue(fy_task_t *t) {
  fy_engine_t *E = t->E;
  if (t->queued) return;
  t->queued = 1;
  t->state = T_READY;
  t->next_ready = NULL;
  if (E->ready_tail) E->ready_tail->next_ready = t;
  else E->ready_head = t;
  E->ready_tail = t;
  if (!uv_is_active((uv_handle_t *)&E->spin)) uv_idle_start(&E->spin, spin_cb);
}

static void dequeue(fy_task_t *t) {
  fy_engine_t *E = t->E;
  if (!t->queued) return;
  fy_task_t **pp = &E->ready_head, *prev = NULL;
  while (*pp && *pp != t) { prev = *pp; pp = &(*pp)->next_ready; }
  if (*pp) {
    *pp = t->next_ready;
    if (E->ready_tail == t) E->ready_tail = prev;
  }
  t->queued = 0;
  t->next_ready = NULL;
}

static void list_add(fy_task_t *t) {
  fy_engine_t *E = t->E;
  t->prev_all = NULL;
  t->next_all = E->all;
  if (E->all) E->all->prev_all = t;
  E->all = t;
}

static void list_remove(fy_task_t *t) {
  fy_engine_t *E = t->E;
  if (t->prev_all) t->prev_all->next_all = t->next_all;
  else if (E->all == t) E->all = t->next_all;
  if (t->next_all) t->next_all->prev_all = t->prev_all;
  t->prev_all = t->next_all = NULL;
}

static void child_add(fy_task_t *parent, fy_task_t *t) {
  t->parent = parent;
  t->prev_sib = NULL;
  t->next_sib = parent->children;
  if (parent->children) parent->children->prev_sib = t;
  parent->children = t;
}

static void child_remove(fy_task_t *t) {
  if (!t->parent) return;
  if (t->prev_sib) t->prev_sib->next_sib = t->next_sib;
  else t->parent->children = t->next_sib;
  if (t->next_sib) t->next_sib->prev_sib = t->prev_sib;
  t->parent = t->prev_sib = t->next_sib = NULL;
}

/* ------------------------------------------------------------------------------------------
** Ops
** ---------------------------------------------------------------------------------------- */

static void op_free_cb(uv_handle_t *h) { free(h->data); }

static void op_release(fy_op_t *op) {
  fy_engine_t *E = op->task->E;
  E->ops_pending--;
  if (op->task->op == op) op->task->op = NULL;
  if (op->has_timer) {
    op->timer.data = op;
    uv_close((uv_handle_t *)&op->timer, op_free_cb);
  } else {
    free(op);
  }
}

fy_task_t *fy_task_current(lua_State *L) { return fy_engine(L)->current; }

fy_task_t *fy_task_require(lua_State *L, const char *what) {
  fy_engine_t *E = fy_engine(L);
  fy_task_t *t = E->current;
  if (!t || !lua_isyieldable(L))
    luaL_error(L, "%s: must be called from a task, and not across a C boundary "
                  "(table.sort comparator, metamethod, require'd chunk)", what);
  if (E->closing) luaL_error(L, "%s: the engine is shutting down", what);
  return t;
}

static void op_timer_cb(uv_timer_t *h) {
  fy_op_t *op = h->data;
  if (!fy_op_settle(op)) return;
  lua_State *co = op->task->co;
  if (op->is_sleep) {
    fy_op_ready(op, 0);
    return;
  }
  op->task->E->ops_timed_out++;
  if (op->cancel) op->cancel(op, op->data);
  lua_pushnil(co);
  fy_push_error(co, "timeout", "operation timed out");
  fy_op_ready(op, 2);
}

fy_op_t *fy_op_new(lua_State *L, double timeout_s, fy_op_cancel_fn cancel, void *data) {
  fy_task_t *t = fy_task_require(L, "ferry");
  fy_engine_t *E = t->E;
  if (t->op) luaL_error(L, "ferry: task already has a pending operation");
  fy_op_t *op = calloc(1, sizeof *op);
  if (!op) luaL_error(L, "ferry: out of memory");
  op->task = t;
  op->cancel = cancel;
  op->data = data;
  /* NaN, infinity and anything past ~31 years mean no deadline: (uint64_t) of them is undefined */
  if (timeout_s > 0 && timeout_s < 1e9) {
    /* the loop's cached time may be a whole iteration old: deadlines count from now */
    uv_update_time(&E->loop);
    uv_timer_init(&E->loop, &op->timer);
    op->timer.data = op;
    op->has_timer = 1;
    double ms = timeout_s * 1000.0;
    uv_timer_start(&op->timer, op_timer_cb, ms < 1 ? 1 : (uint64_t)(ms + 0.5), 0);
    if (t->daemon) uv_unref((uv_handle_t *)&op->timer);
  }
  t->op = op;
  E->ops_started++;
  E->ops_pending++;
  return op;
}

void fy_op_abort(fy_op_t *op) {
  op->settled = 1;
  if (op->has_timer) uv_timer_stop(&op->timer);
  op_release(op);
}

int fy_op_yield(lua_State *L, fy_op_t *op) {
  (void)op;
  lua_pushlightuserdata(L, &YIELD_TAG);
  return lua_yield(L, 1);
}

int fy_op_settle(fy_op_t *op) {
  if (op->settled) return 0;
  op->settled = 1;
  if (op->has_timer) uv_timer_stop(&op->timer);
  return 1;
}

lua_State *fy_op_thread(fy_op_t *op) { return op->task->co; }

void fy_op_ready(fy_op_t *op, int nres) {
  fy_task_t *t = op->task;
  t->nres = nres;
  op_release(op);
  enqueue(t);
}

/* Settle and release a waiting task's op without resuming it (cancel, shutdown). */
static void op_cancel(fy_op_t *op) {
  if (fy_op_settle(op) && op->cancel) op->cancel(op, op->data);
  op_release(op);
}

/* ------------------------------------------------------------------------------------------
** Task end: results, waiters, release
** ---------------------------------------------------------------------------------------- */

static void push_task(lua_State *L, fy_task_t *t) { lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref); }

/* Push `ok, ...` for a finished task from its outcome table onto L; returns the count. */
static int push_outcome(lua_State *L, fy_task_t *t, int udidx) {
  lua_getiuservalue(L, udidx, 2); /* [outcome] */
  if (t->state == T_DONE) {
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 2, "too many results");
    lua_pushboolean(L, 1);
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -2 - (i - 1), i);
    lua_remove(L, -(n + 2)); /* drop outcome table */
    return n + 1;
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2); /* [false, err] */
  return 2;
}

static void wake_waiters(fy_task_t *t) {
  lua_State *L = t->E->L;
  push_task(L, t); /* [ud] */
  int ud = lua_gettop(L);
  while (t->waiters) {
    fy_op_t *op = t->waiters;
    t->waiters = op->next_w;
    op->next_w = op->prev_w = NULL;
    if (!fy_op_settle(op)) continue;
    int n = push_outcome(L, t, ud);
    lua_xmove(L, op->task->co, n);
    fy_op_ready(op, n);
  }
  lua_settop(L, ud - 1);
}

static void task_finish(fy_task_t *t, int state) {
  fy_engine_t *E = t->E;
  lua_State *L = E->L;
  t->state = state;
  dequeue(t);
  /* orphan children: they keep running, detached */
  while (t->children) child_remove(t->children);
  child_remove(t);
  list_remove(t);
  E->tasks_alive--;
  if (t->daemon) E->daemons_alive--;
  if (state == T_FAILED) E->tasks_failed++;
  if (state == T_CANCELLED) E->tasks_cancelled++;
  wake_waiters(t);
  push_task(L, t);
  lua_pushnil(L);
  lua_setiuservalue(L, -2, 1); /* release the thread */
  lua_pop(L, 1);
  t->co = NULL;
  fy_unref(L, &t->ref);
}

/* Store the error at the top of L as t's outcome. */
static void set_outcome_from_top(lua_State *L, fy_task_t *t) {
  push_task(L, t);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 2);
  lua_pop(L, 1);
}

/* Cancel t (never the running task): settle its op, cancel its children, run <close>. */
static void task_cancel(fy_task_t *t, const char *reason) {
  fy_engine_t *E = t->E;
  lua_State *L = E->L;
  if (t->state >= T_DONE) return;
  while (t->children) {
    fy_task_t *c = t->children;
    if (c->detached) child_remove(c);
    else task_cancel(c, reason);
  }
  if (t->op) op_cancel(t->op);
  dequeue(t);
  t->state = T_CANCELLED;
  fy_push_error(L, "cancelled", reason ? reason : "task cancelled");
  set_outcome_from_top(L, t);
  if (t->co) {
    fy_task_t *saved = E->current;
    E->current = NULL; /* <close> handlers run outside any task: they cannot wait */
    int st = lua_resetthread(t->co);
    E->current = saved;
    if (st != LUA_OK) {
      fy_log(FY_LOG_ERROR, "task %llu: error in <close> while cancelling: %s",
             (unsigned long long)t->id, lua_tostring(t->co, -1));
    }
  }
  task_finish(t, T_CANCELLED);
}

/* Describe the error value at index 1 as text (protected: __tostring may raise). */
static int describe_error(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "message");
    if (lua_type(L, 2) == LUA_TSTRING && lua_type(L, 3) == LUA_TSTRING) {
      lua_pushfstring(L, "%s: %s", lua_tostring(L, 2), lua_tostring(L, 3));
      return 1;
    }
    lua_settop(L, 1);
  }
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Log the error at the top of co with a traceback, unless someone is waiting for it.
 * Leaves co's stack as it was. */
static void report_failure(fy_task_t *t) {
  fy_engine_t *E = t->E;
  lua_State *L = E->L, *co = t->co;
  lua_pushcfunction(L, describe_error);
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "(error object is not printable)");
  }
  luaL_traceback(L, co, lua_tostring(L, -1), 0);
  lua_remove(L, -2);
  if (!t->waiters)
    fy_log(FY_LOG_ERROR, "task %llu failed: %s", (unsigned long long)t->id, lua_tostring(L, -1));
  /* keep the formatted text for whoever wants the last failure */
  lua_setfield(L, LUA_REGISTRYINDEX, "ferry.last_error");
}

static void task_resume(fy_engine_t *E, fy_task_t *t) {
  lua_State *co = t->co;
  int nres = t->nres, nout = 0;
  t->nres = 0;
  t->state = T_RUNNING;
  E->current = t;
  int st = lua_resume(co, E->L, nres, &nout);
  E->current = NULL;
  if (st == LUA_YIELD) {
    int tag = nout > 0 ? (lua_touserdata(co, -1) == &YIELD_TAG ? 1
                          : lua_touserdata(co, -1) == &EXIT_TAG ? 2 : 0) : 0;
    lua_pop(co, nout);
    if (tag == 2) { t->state = T_WAITING; return; } /* os.exit: cancelled at shutdown */
    if (t->op) { t->state = T_WAITING; return; }
    enqueue(t);          /* a plain coroutine.yield at task level: run again next tick */
    return;
  }
  if (st == LUA_OK) {
    lua_State *L = E->L;
    lua_createtable(L, nout, 1);
    lua_pushinteger(L, nout);
    lua_setfield(L, -2, "n");
    for (int i = nout; i >= 1; i--) {
      lua_pushvalue(co, -1);
      lua_xmove(co, L, 1);
      lua_rawseti(L, -2, i);
      lua_pop(co, 1);
    }
    set_outcome_from_top(L, t);
    task_finish(t, T_DONE);
    return;
  }
  if (st == LUA_ERRMEM) {
    fy_log(FY_LOG_ERROR, "task %llu: out of memory", (unsigned long long)t->id);
    abort();
  }
  /* error: the error object is on co; the stack is still there for the traceback */
  report_failure(t);
  lua_State *L = E->L;
  lua_xmove(co, L, 1);             /* the original error object */
  set_outcome_from_top(L, t);
  lua_resetthread(co);             /* runs pending <close> variables */
  task_finish(t, T_FAILED);
}

static void drain_cb(uv_check_t *h) {
  fy_engine_t *E = h->data;
  /* run only the tasks ready now; tasks readied meanwhile go next iteration */
  fy_task_t *last = E->ready_tail;
  while (E->ready_head && !E->exiting) {
    fy_task_t *t = E->ready_head;
    E->ready_head = t->next_ready;
    if (!E->ready_head) E->ready_tail = NULL;
    t->queued = 0;
    t->next_ready = NULL;
    task_resume(E, t);
    if (t == last) break;
  }
  if (!E->ready_head && uv_is_active((uv_handle_t *)&E->spin)) uv_idle_stop(&E->spin);
  /* only daemons left (a head tracker in the middle of a request, say): the work is done,
   * and their pending I/O must not keep the engine alive */
  if (E->tasks_alive > 0 && E->tasks_alive == E->daemons_alive) uv_stop(&E->loop);
}

void fy__sched_init(fy_engine_t *E) {
  uv_check_init(&E->loop, &E->drain);
  E->drain.data = E;
  uv_check_start(&E->drain, drain_cb);
  uv_unref((uv_handle_t *)&E->drain);
  uv_idle_init(&E->loop, &E->spin);
  E->spin.data = E;
}

void fy__sched_cancel_all(fy_engine_t *E) {
  while (E->all) {
    fy_task_t *t = E->all;
    /* cancel roots first so children go with their parent */
    while (t->parent) t = t->parent;
    task_cancel(t, "engine shutting down");
  }
}

/* ------------------------------------------------------------------------------------------
** Lua API: ferry.core.task
** ---------------------------------------------------------------------------------------- */

static fy_task_t *check_task(lua_State *L, int idx) { return fy_checkudata(L, idx, TASK_MT); }

/* spawn(fn, ...) -> task */
static int l_spawn(lua_State *L) {
  fy_engine_t *E = fy_engine(L);
  fy_checktype(L, 1, LUA_TFUNCTION);
  if (E->closing) return luaL_error(L, "ferry.spawn: the engine is shutting down");
  int nargs = lua_gettop(L) - 1;
  fy_task_t *t = lua_newuserdatauv(L, sizeof *t, 2); /* [fn, args..., ud] */
  memset(t, 0, sizeof *t);
  t->E = E;
  t->ref = LUA_NOREF;
  luaL_setmetatable(L, TASK_MT);
  lua_State *co = lua_newthread(L);                  /* [fn, args..., ud, co] */
  lua_setiuservalue(L, -2, 1);                       /* [fn, args..., ud] */
  lua_insert(L, 1);                                  /* [ud, fn, args...] */
  lua_xmove(L, co, nargs + 1);                       /* [ud] */
  t->co = co;
  t->id = ++E->next_task_id;
  t->nres = nargs;
  t->started = fy_now();
  lua_pushvalue(L, 1);
  t->ref = fy_ref(L);
  list_add(t);
  if (E->current) child_add(E->current, t);
  E->tasks_spawned++;
  E->tasks_alive++;
  t->state = T_READY;
  enqueue(t);
  return 1;
}

/* Unlink a waiting op from the list whose head is *data (a task's or a queue's waiters). */
static void wait_cancel(fy_op_t *op, void *data) {
  fy_op_t **head = data;
  if (op->prev_w) op->prev_w->next_w = op->next_w;
  else if (*head == op) *head = op->next_w;
  if (op->next_w) op->next_w->prev_w = op->prev_w;
  op->prev_w = op->next_w = NULL;
}

/* Append op to the waiters list at *head (FIFO). */
static void wait_push(fy_op_t **head, fy_op_t *op) {
  fy_op_t **pp = head, *prev = NULL;
  while (*pp) { prev = *pp; pp = &(*pp)->next_w; }
  *pp = op;
  op->prev_w = prev;
  op->next_w = NULL;
}

/* task:wait([timeout]) -> true, results... | false, err */
static int l_task_wait(lua_State *L) {
  fy_task_t *t = check_task(L, 1);
  double timeout = fy_optnumber(L, 2, 0);
  if (t->state >= T_DONE) return push_outcome(L, t, 1);
  fy_task_t *self = fy_task_require(L, "task:wait");
  if (self == t) return luaL_error(L, "task:wait: a task cannot wait for itself");
  fy_op_t *op = fy_op_new(L, timeout, wait_cancel, &t->waiters);
  wait_push(&t->waiters, op);
  return fy_op_yield(L, op);
}

/* task:cancel([reason]) -> true if it was running */
/* ------------------------------------------------------------------------------------------
** Queue: an unbounded mailbox between tasks. put(v) never waits; get([timeout]) waits for a
** value (FIFO among getters) -> v | nil, {code="timeout"}. Buffered values live in the
** userdata's user value (a table used as a ring).
** ---------------------------------------------------------------------------------------- */

#define QUEUE_MT "ferry.Queue"

typedef struct {
  fy_op_t *getters;
  lua_Integer head, tail; /* buffered values are [head, tail) in the user value table */
} queue_t;

static int l_queue_new(lua_State *L) {
  queue_t *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, QUEUE_MT);
  return 1;
}

static int l_queue_put(lua_State *L) {
  queue_t *q = fy_checkudata(L, 1, QUEUE_MT);
  fy_checkany(L, 2);
  lua_settop(L, 2);
  while (q->getters) {
    fy_op_t *op = q->getters;
    wait_cancel(op, &q->getters);
    if (!fy_op_settle(op)) continue;
    lua_pushvalue(L, 2);
    lua_xmove(L, fy_op_thread(op), 1);
    fy_op_ready(op, 1);
    return 0;
  }
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, q->tail++);
  return 0;
}

static int l_queue_get(lua_State *L) {
  queue_t *q = fy_checkudata(L, 1, QUEUE_MT);
  double timeout = fy_optnumber(L, 2, 0);
  if (q->head < q->tail) {
    lua_getiuservalue(L, 1, 1);
    lua_rawgeti(L, -1, q->head);
    lua_pushnil(L);
    lua_rawseti(L, -3, q->head++);
    return 1;
  }
  fy_op_t *op = fy_op_new(L, timeout, wait_cancel, &q->getters);
  wait_push(&q->getters, op);
  return fy_op_yield(L, op);
}

static int l_queue_len(lua_State *L) {
  queue_t *q = fy_checkudata(L, 1, QUEUE_MT);
  lua_pushinteger(L, q->tail - q->head);
  return 1;
}

static int l_task_cancel(lua_State *L) {
  fy_task_t *t = check_task(L, 1);
  const char *reason = fy_optstring(L, 2, "task cancelled");
  if (t->state >= T_DONE) { lua_pushboolean(L, 0); return 1; }
  if (t == fy_engine(L)->current || t->state == T_RUNNING)
    return luaL_error(L, "task:cancel: a task cannot cancel itself (raise an error instead)");
  task_cancel(t, reason);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_task_close(lua_State *L) {
  fy_task_t *t = check_task(L, 1);
  if (t->state < T_DONE && t != fy_engine(L)->current && t->state != T_RUNNING)
    task_cancel(t, "task handle closed");
  return 0;
}

static int l_task_detach(lua_State *L) {
  fy_task_t *t = check_task(L, 1);
  t->detached = 1;
  child_remove(t);
  lua_settop(L, 1);
  return 1;
}

/* task:daemon(): a background task (head tracker, ticker) that must not keep a script's
 * engine alive; it is cancelled at shutdown like any other. Implies detach. */
static int l_task_daemon(lua_State *L) {
  fy_task_t *t = check_task(L, 1);
  if (!t->daemon && t->state < T_DONE) fy_engine(L)->daemons_alive++;
  t->daemon = 1;
  t->detached = 1;
  child_remove(t);
  if (t->op && t->op->has_timer) uv_unref((uv_handle_t *)&t->op->timer);
  lua_settop(L, 1);
  return 1;
}

static int l_task_status(lua_State *L) {
  lua_pushstring(L, state_names[check_task(L, 1)->state]);
  return 1;
}

static int l_task_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_task(L, 1)->id);
  return 1;
}

static int l_task_tostring(lua_State *L) {
  fy_task_t *t = check_task(L, 1);
  lua_pushfstring(L, "ferry.Task %I (%s)", (lua_Integer)t->id, state_names[t->state]);
  return 1;
}

/* sleep(seconds) */
static int l_sleep(lua_State *L) {
  double s = fy_checknumber(L, 1);
  fy_argcheck(L, s >= 0, 1, "must be >= 0");
  fy_op_t *op = fy_op_new(L, s > 0 ? s : 1e-9, NULL, NULL);
  op->is_sleep = 1;
  return fy_op_yield(L, op);
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, fy_now());
  return 1;
}

/* wall() -> seconds since the epoch, to the microsecond (times compared across processes:
 * journal rows, leases); now() is the monotonic clock for durations */
static int l_wall(lua_State *L) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0) return fy_raise(L, "io_error", "task.wall: gettimeofday failed");
  lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
  return 1;
}

static int l_current(lua_State *L) {
  fy_task_t *t = fy_engine(L)->current;
  if (!t) { lua_pushnil(L); return 1; }
  push_task(L, t);
  return 1;
}

/* tasks() -> array of {id, status, age, waiting} for the REPL */
static int l_tasks(lua_State *L) {
  fy_engine_t *E = fy_engine(L);
  lua_newtable(L);
  int i = 0;
  double now = fy_now();
  for (fy_task_t *t = E->all; t; t = t->next_all) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)t->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, state_names[t->state]);
    lua_setfield(L, -2, "status");
    lua_pushnumber(L, now - t->started);
    lua_setfield(L, -2, "age");
    lua_pushinteger(L, t->parent ? (lua_Integer)t->parent->id : 0);
    lua_setfield(L, -2, "parent");
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

static int l_stats(lua_State *L) {
  fy_engine_t *E = fy_engine(L);
  lua_createtable(L, 0, 10);
#define F(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
  F("spawned", E->tasks_spawned);
  F("alive", E->tasks_alive);
  F("failed", E->tasks_failed);
  F("cancelled", E->tasks_cancelled);
  F("ops_started", E->ops_started);
  F("ops_pending", E->ops_pending);
  F("ops_timed_out", E->ops_timed_out);
  F("refs", E->refs);
  int ready = 0;
  for (fy_task_t *t = E->ready_head; t; t = t->next_ready) ready++;
  F("ready", ready);
#undef F
  return 1;
}

/* heap() -> bytes in use in the C heap (malloc'd, Lua's own objects included): what a
 * structure really costs, whatever the allocator kept from freed garbage (RSS does not
 * shrink after a collection, so RSS deltas over-count). */
static int l_heap(lua_State *L) {
  struct mallinfo2 mi = mallinfo2();
  lua_pushinteger(L, (lua_Integer)(mi.uordblks + mi.hblkhd));
  return 1;
}

/* exit(code): stop the loop and park the task; the engine shuts down in order. */
static int l_exit(lua_State *L) {
  fy_engine_t *E = fy_engine(L);
  int code;
  if (lua_isboolean(L, 1)) code = lua_toboolean(L, 1) ? 0 : 1;
  else code = (int)fy_optinteger(L, 1, 0);
  E->exit_code = code;
  E->exiting = 1;
  uv_stop(&E->loop);
  if (E->current && lua_isyieldable(L)) {
    lua_pushlightuserdata(L, &EXIT_TAG);
    return lua_yield(L, 1);
  }
  return 0; /* called outside a task: the loop stops after this callback */
}

static const luaL_Reg task_methods[] = {
  {"wait", l_task_wait}, {"cancel", l_task_cancel}, {"detach", l_task_detach}, {"daemon", l_task_daemon},
  {"status", l_task_status}, {"id", l_task_id}, {NULL, NULL}};

static const luaL_Reg task_meta[] = {
  {"__tostring", l_task_tostring}, {"__close", l_task_close}, {NULL, NULL}};

static const luaL_Reg task_funcs[] = {
  {"spawn", l_spawn}, {"sleep", l_sleep}, {"now", l_now}, {"wall", l_wall}, {"current", l_current},
  {"tasks", l_tasks}, {"stats", l_stats}, {"exit", l_exit}, {"queue", l_queue_new},
  {"heap", l_heap},
  {NULL, NULL}};

int luaopen_ferry_core_task(lua_State *L) {
  if (luaL_newmetatable(L, TASK_MT)) {
    luaL_setfuncs(L, task_meta, 0);
    luaL_newlib(L, task_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, QUEUE_MT)) {
    static const luaL_Reg qm[] = {{"put", l_queue_put}, {"get", l_queue_get}, {NULL, NULL}};
    luaL_newlib(L, qm);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_queue_len);
    lua_setfield(L, -2, "__len");
  }
  lua_pop(L, 1);
  luaL_newlib(L, task_funcs);
  lua_pushlightuserdata(L, &YIELD_TAG);
  lua_setfield(L, -2, "YIELD_TAG");
  lua_pushlightuserdata(L, &EXIT_TAG);
  lua_setfield(L, -2, "EXIT_TAG");
  return 1;
}
