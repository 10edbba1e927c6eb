/*
** engine.h -- the engine: one libuv loop, one Lua state, the task scheduler's queues.
**
** Provides: fy_engine_t and its life cycle (new, run, shutdown) and shutdown hooks for
** modules that own foreign contexts (curl...). It names no module below it: whoever makes the
** engine hands it the C modules to open (main.c: engine/modules.def).
** Depends on: libuv, Lua 5.4. Loop thread only.
**
** Calls go one way: engine.c starts and stops the scheduler (task.h); task.c uses the engine's
** state (this struct) and calls nothing in engine.c.
**
** Shutdown order (STYLE.md §4.4): stop accepting work -> cancel every task (their <close>
** variables run) -> module hooks destroy foreign contexts -> close every uv handle ->
** uv_run until uv_loop_close succeeds -> lua_close.
*/
#ifndef FY_ENGINE_H
#define FY_ENGINE_H

#include <lua.h>
#include <lauxlib.h>
#include <uv.h>
#include <stdint.h>

typedef struct fy_task fy_task_t;

typedef void (*fy_shutdown_fn)(void *data);

typedef struct fy_hook {
  fy_shutdown_fn fn;
  void *data;
  struct fy_hook *next;
} fy_hook_t;

typedef struct fy_engine {
  uv_loop_t loop;
  lua_State *L;
  uv_check_t drain;          /* the one drain point: resumes ready tasks */
  uv_idle_t spin;            /* active only while tasks are ready (keeps poll from blocking) */
  fy_task_t *ready_head, *ready_tail;
  fy_task_t *all;            /* every live task (for cancel-all and ferry.tasks()) */
  fy_task_t *current;        /* the task being resumed, or NULL */
  fy_hook_t *hooks;          /* run at shutdown, newest first */
  int closing;               /* set once shutdown starts: no new tasks, no new I/O */
  int exiting;               /* os.exit called: stop draining */
  int exit_code;
  uint64_t next_task_id;
  /* counters for ferry.stats() */
  uint64_t tasks_spawned, tasks_failed, tasks_cancelled, ops_started, ops_timed_out;
  int64_t tasks_alive, daemons_alive, ops_pending, refs;
} fy_engine_t;

/* The engine owning L (any thread of the state). */
static inline fy_engine_t *fy_engine(lua_State *L) {
  return *(fy_engine_t **)lua_getextraspace(L);
}

/* Create the loop and the state, open the standard libraries and put `modules` (a
 * {"ferry.core.name", luaopen_...} list ending in {NULL, NULL}) in package.preload; then
 * stdlib/ferry/boot.lua runs. NULL on failure. */
fy_engine_t *fy_engine_new(const luaL_Reg *modules);

/* Run the loop until no referenced handle or ready task is left, or os.exit was called. */
void fy_engine_run(fy_engine_t *E);

/* Orderly shutdown; frees E. Returns E->exit_code. */
int fy_engine_close(fy_engine_t *E);

/* Register a function to run at shutdown before handles are closed (newest first). */
void fy_engine_on_shutdown(fy_engine_t *E, fy_shutdown_fn fn, void *data);

#endif
