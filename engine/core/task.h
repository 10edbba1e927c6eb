/*
** task.h -- tasks (coroutines owned by the scheduler) and pending operations.
**
** Provides: the scheduler that runs every script, REPL line and handler as a task on the
** one libuv loop, and fy_op_t, the "pending operation" every async primitive uses to park
** a task until its I/O completes, times out or is cancelled.
** Depends on: libuv, Lua 5.4. Loop thread only.
** Backs: ferry.spawn, task:wait, task:cancel, ferry.sleep (ferry.core.task).
**
** How an async binding looks (the cosocket pattern, STYLE.md 3.6):
**
**   static int l_thing_read(lua_State *L) {
**     ... check every argument first (raise on misuse) ...
**     fy_op_t *op = fy_op_new(L, timeout_s, my_cancel, my_io);  // raises outside a task
**     my_io->op = op;                      // the I/O keeps the op to report back
**     if (start_io(my_io) != 0) { fy_op_abort(op); return push_fail(L); }   // no yield
**     return fy_op_yield(L, op);           // results are what the completer pushes
**   }
**   static void on_io_done(my_io_t *io, ...) {
**     fy_op_t *op = io->op;
**     if (!op) { free late resources; return; }       // detached by timeout/cancel
**     io->op = NULL;
**     if (!fy_op_settle(op)) return;                  // cannot happen once detached, kept for clarity
**     lua_State *co = fy_op_thread(op);               // push results here, nothing else
**     lua_pushinteger(co, 42);
**     fy_op_ready(op, 1);                             // enqueue; the drain point resumes
**   }
**   static void my_cancel(fy_op_t *op, void *data) {  // timeout or task:cancel won the race
**     my_io_t *io = data; io->op = NULL; stop_io(io);   // detach: never touch op again
**   }
**
** An op settles exactly once. On timeout the task resumes with nil, {code="timeout"}; on
** cancel it does not resume at all (its <close> variables run instead).
*/
#ifndef FY_TASK_H
#define FY_TASK_H

#include <lua.h>
#include <uv.h>

typedef struct fy_task fy_task_t;
typedef struct fy_op fy_op_t;
struct fy_engine;

/* The scheduler's life, driven by engine.c: set up its handles; cancel every task at shutdown. */
void fy__sched_init(struct fy_engine *E);
void fy__sched_cancel_all(struct fy_engine *E);

/* Monotonic seconds. */
double fy_now(void);

/* Counted registry refs (ferry.stats().refs must return to its baseline). */
int fy_ref(lua_State *L);
void fy_unref(lua_State *L, int *ref);

/* Called once when a timeout or cancel settles the op before its I/O did. It must detach
 * the I/O from the op (the op is freed right after) and stop the I/O. No Lua here. */
typedef void (*fy_op_cancel_fn)(fy_op_t *op, void *data);

/* The task running on L, or NULL when L is not a task thread. */
fy_task_t *fy_task_current(lua_State *L);

/* The running task; raises "<what>: must be called from a task" when there is none or it
 * cannot yield (inside a C boundary such as table.sort or a metamethod). may raise */
fy_task_t *fy_task_require(lua_State *L, const char *what);

/* Begin a pending operation for the task running on L. timeout_s <= 0 means no deadline.
 * The op is owned by the scheduler. may raise (outside a task) */
fy_op_t *fy_op_new(lua_State *L, double timeout_s, fy_op_cancel_fn cancel, void *data);

/* Drop an op whose I/O failed to start (before fy_op_yield). The cancel fn is not called. */
void fy_op_abort(fy_op_t *op);

/* Park the task until the op settles; `return fy_op_yield(L, op);` from a lua_CFunction. */
int fy_op_yield(lua_State *L, fy_op_t *op);

/* PENDING -> DONE. Returns 1 for the caller that won, 0 if the op had already settled. */
int fy_op_settle(fy_op_t *op);

/* The task's thread: push the results here after winning fy_op_settle. */
lua_State *fy_op_thread(fy_op_t *op);

/* Mark the task ready with nres values pushed on fy_op_thread(op); frees the op later. */
void fy_op_ready(fy_op_t *op, int nres);

/* Push an error table {code=code, message=msg} on L (helper for completers). */
void fy_push_error(lua_State *L, const char *code, const char *msg);

/* Push nil, {code, message}; returns 2 (for `return fy_fail(L, ...)`). */
int fy_fail(lua_State *L, const char *code, const char *fmt, ...);

#endif
