/*
** db.h -- an SQLite connection whose work runs off the loop thread, one job at a time.
**
** Provides: fy_db_t (open, close), fy_db_job_t (a list of statements with bound values, run in
** one transaction on a worker, results copied out as plain values). The binding (db_lua.c)
** queues jobs and runs them through libuv's thread pool in FIFO order, so a connection never
** runs two jobs at once and the loop thread never waits on the disk.
** Depends on: SQLite 3 (WAL), nothing of Lua or libuv. A job runs on any one thread at a time.
**
** Checkpoints are the caller's (wal_autocheckpoint is off): a commit never turns into a
** checkpoint's fsync on whatever thread made it.
**
** Durability: WAL with synchronous=NORMAL. A committed job survives the process being killed
** (SIGKILL, a crash); only an operating-system crash or power loss can lose the last commits
** (synchronous=FULL would fsync every commit; FY_DB_SYNC_FULL asks for it).
*/
#ifndef FY_DB_H
#define FY_DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_db fy_db_t;

enum { FY_DB_NULL = 0, FY_DB_INT, FY_DB_REAL, FY_DB_TEXT, FY_DB_BLOB };

typedef struct {
  int type;
  int64_t i;
  double d;
  char *s;        /* TEXT / BLOB bytes (malloc'd, NUL-terminated for convenience) */
  size_t n;
} fy_db_val_t;

typedef struct {
  char *sql;
  fy_db_val_t *params;
  int nparams;
  /* results */
  int ncols;
  char **cols;
  fy_db_val_t *rows;       /* nrows * ncols values, row-major */
  size_t nrows, cap;
  int64_t changes;
} fy_db_stmt_t;

typedef struct fy_db_job {
  fy_db_stmt_t *stmts;
  int nstmts;
  int transaction;         /* run the statements in BEGIN IMMEDIATE ... COMMIT */
  int rc;                  /* SQLite result code of the first failure, 0 when all ran */
  int failed_at;           /* index of the statement that failed */
  char *err;               /* its message */
} fy_db_job_t;

/* Open (creating) path in WAL mode with a busy timeout; NULL and *err (static text or the
 * SQLite message, to be freed with free()) on failure. */
fy_db_t *fy_db_open(const char *path, int sync_full, char **err);
void fy_db_close(fy_db_t *db);

/* A job with n statements; each statement's sql and params are set by the caller (malloc'd;
 * fy_db_job_free frees them). NULL on out of memory. */
fy_db_job_t *fy_db_job_new(int n, int transaction);
void fy_db_job_free(fy_db_job_t *job);

/* Run every statement in order (in one transaction if asked); on the first failure roll back
 * and stop. Returns job->rc. */
int fy_db_run(fy_db_t *db, fy_db_job_t *job);

/* How long a statement waits for another process's lock (ms); 0: SQLITE_BUSY at once. */
void fy_db_busy_timeout(fy_db_t *db, int ms);

/* Forget a job's results and error (to run it again after SQLITE_BUSY). */
void fy_db_job_reset(fy_db_job_t *job);

/* 1 when rc says another connection holds the lock */
int fy_db_is_busy(int rc);

/* Group commit: run n jobs in one transaction, each inside its own savepoint (a job that fails
 * is rolled back alone and gets its error; the others commit). Results land in each job, as
 * fy_db_run would leave them. A failed COMMIT fails every job. */
void fy_db_run_group(fy_db_t *db, fy_db_job_t **jobs, int n);

/* "store_busy" (another process holds the database lock past the busy timeout),
 * "constraint", "store_full", "store_error": the ferry error code for an SQLite result code. */
const char *fy_db_code(int rc);

#endif
