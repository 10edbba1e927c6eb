/*
** db.c -- see db.h. Plain C over SQLite; no Lua, no libuv.
*/
#include "prim/db.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* Prepared statements, kept by their text: the journal's upserts are parsed and planned once,
 * not on every write (preparing one cost ~100 us, running it ~10 us). */
#define STMT_CACHE 64
typedef struct {
  char *sql;
  uint64_t hash, used;
  sqlite3_stmt *st;
} cached_t;

struct fy_db {
  sqlite3 *h;
  cached_t cache[STMT_CACHE];
  uint64_t tick;
};

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* A prepared statement for sql, from the cache or new (then cached, the least recently used
 * one evicted). *st NULL with SQLITE_OK: only a comment or whitespace. */
static int prepare(fy_db_t *db, const char *sql, sqlite3_stmt **st) {
  uint64_t h = fnv(sql);
  cached_t *lru = &db->cache[0];
  for (int i = 0; i < STMT_CACHE; i++) {
    cached_t *c = &db->cache[i];
    if (c->st && c->hash == h && strcmp(c->sql, sql) == 0) {
      c->used = ++db->tick;
      *st = c->st;
      return SQLITE_OK;
    }
    if (!c->st || c->used < lru->used) lru = c;
    if (!c->st) break;
  }
  int rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
  if (rc != SQLITE_OK || !*st) return rc;
  char *copy = malloc(strlen(sql) + 1);
  if (!copy) return SQLITE_OK;               /* used once, finalized by the caller */
  strcpy(copy, sql);
  if (lru->st) { sqlite3_finalize(lru->st); free(lru->sql); }
  lru->sql = copy;
  lru->hash = h;
  lru->st = *st;
  lru->used = ++db->tick;
  return SQLITE_OK;
}

static int is_cached(fy_db_t *db, sqlite3_stmt *st) {
  for (int i = 0; i < STMT_CACHE; i++) if (db->cache[i].st == st) return 1;
  return 0;
}

static char *dup_text(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

fy_db_t *fy_db_open(const char *path, int sync_full, char **err) {
  *err = NULL;
  fy_db_t *db = calloc(1, sizeof *db);
  if (!db) { *err = dup_text("out of memory"); return NULL; }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
    *err = dup_text(db->h ? sqlite3_errmsg(db->h) : "out of memory");
    sqlite3_close(db->h);
    free(db);
    return NULL;
  }
  sqlite3_busy_timeout(db->h, 5000);
  char *msg = NULL;
  const char *setup = sync_full ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
                                : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;";
  if (sqlite3_exec(db->h, setup, NULL, NULL, &msg) != SQLITE_OK) {
    *err = dup_text(msg ? msg : sqlite3_errmsg(db->h));
    sqlite3_free(msg);
    sqlite3_close(db->h);
    free(db);
    return NULL;
  }
  return db;
}

void fy_db_close(fy_db_t *db) {
  if (!db) return;
  for (int i = 0; i < STMT_CACHE; i++) {
    if (db->cache[i].st) sqlite3_finalize(db->cache[i].st);
    free(db->cache[i].sql);
  }
  sqlite3_close_v2(db->h);
  free(db);
}

static void val_free(fy_db_val_t *v) {
  if (v->type == FY_DB_TEXT || v->type == FY_DB_BLOB) free(v->s);
  v->s = NULL;
}

fy_db_job_t *fy_db_job_new(int n, int transaction) {
  fy_db_job_t *job = calloc(1, sizeof *job);
  if (!job) return NULL;
  job->stmts = calloc(n > 0 ? (size_t)n : 1, sizeof *job->stmts);
  if (!job->stmts) { free(job); return NULL; }
  job->nstmts = n;
  job->transaction = transaction;
  job->failed_at = -1;
  return job;
}

void fy_db_busy_timeout(fy_db_t *db, int ms) { sqlite3_busy_timeout(db->h, ms); }

int fy_db_is_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

static void results_free(fy_db_stmt_t *s) {
  for (size_t r = 0; r < s->nrows * (size_t)s->ncols; r++) val_free(&s->rows[r]);
  free(s->rows);
  for (int c = 0; c < s->ncols; c++) free(s->cols[c]);
  free(s->cols);
  s->rows = NULL;
  s->cols = NULL;
  s->nrows = s->cap = 0;
  s->ncols = 0;
  s->changes = 0;
}

void fy_db_job_reset(fy_db_job_t *job) {
  for (int i = 0; i < job->nstmts; i++) results_free(&job->stmts[i]);
  free(job->err);
  job->err = NULL;
  job->rc = 0;
  job->failed_at = -1;
}

void fy_db_job_free(fy_db_job_t *job) {
  if (!job) return;
  for (int i = 0; i < job->nstmts; i++) {
    fy_db_stmt_t *s = &job->stmts[i];
    free(s->sql);
    for (int p = 0; p < s->nparams; p++) val_free(&s->params[p]);
    free(s->params);
    results_free(s);
  }
  free(job->stmts);
  free(job->err);
  free(job);
}

static int bind_params(sqlite3_stmt *st, fy_db_stmt_t *s) {
  for (int p = 0; p < s->nparams; p++) {
    fy_db_val_t *v = &s->params[p];
    int rc;
    switch (v->type) {
      case FY_DB_INT: rc = sqlite3_bind_int64(st, p + 1, v->i); break;
      case FY_DB_REAL: rc = sqlite3_bind_double(st, p + 1, v->d); break;
      case FY_DB_TEXT: rc = sqlite3_bind_text(st, p + 1, v->s, (int)v->n, SQLITE_STATIC); break;
      case FY_DB_BLOB: rc = sqlite3_bind_blob(st, p + 1, v->s, (int)v->n, SQLITE_STATIC); break;
      default: rc = sqlite3_bind_null(st, p + 1); break;
    }
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* Copy the current row out; SQLITE_NOMEM on out of memory. */
static int take_row(sqlite3_stmt *st, fy_db_stmt_t *s) {
  if (s->nrows == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    fy_db_val_t *rows = realloc(s->rows, cap * (size_t)s->ncols * sizeof *rows);
    if (!rows) return SQLITE_NOMEM;
    s->rows = rows;
    s->cap = cap;
  }
  fy_db_val_t *row = &s->rows[s->nrows * (size_t)s->ncols];
  memset(row, 0, (size_t)s->ncols * sizeof *row);
  s->nrows++;
  for (int c = 0; c < s->ncols; c++) {
    fy_db_val_t *v = &row[c];
    switch (sqlite3_column_type(st, c)) {
      case SQLITE_INTEGER: v->type = FY_DB_INT; v->i = sqlite3_column_int64(st, c); break;
      case SQLITE_FLOAT: v->type = FY_DB_REAL; v->d = sqlite3_column_double(st, c); break;
      case SQLITE_NULL: v->type = FY_DB_NULL; break;
      default: {
        int blob = sqlite3_column_type(st, c) == SQLITE_BLOB;
        const void *p = blob ? sqlite3_column_blob(st, c) : (const void *)sqlite3_column_text(st, c);
        size_t n = (size_t)sqlite3_column_bytes(st, c);
        v->s = malloc(n + 1);
        if (!v->s) return SQLITE_NOMEM;
        if (n) memcpy(v->s, p, n);
        v->s[n] = 0;
        v->n = n;
        v->type = blob ? FY_DB_BLOB : FY_DB_TEXT;
      }
    }
  }
  return SQLITE_OK;
}

/* Done with st: a cached one is reset for its next use, any other finalized. */
static void release(fy_db_t *db, sqlite3_stmt *st) {
  if (is_cached(db, st)) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  } else {
    sqlite3_finalize(st);
  }
}

static int run_one(fy_db_t *db, fy_db_stmt_t *s) {
  sqlite3 *h = db->h;
  sqlite3_stmt *st = NULL;
  int rc = prepare(db, s->sql, &st);
  if (rc != SQLITE_OK) return rc;
  if (!st) return SQLITE_OK;                                   /* only a comment or whitespace */
  if (sqlite3_bind_parameter_count(st) > s->nparams) { release(db, st); return SQLITE_RANGE; }
  rc = bind_params(st, s);
  if (rc == SQLITE_OK) {
    s->ncols = sqlite3_column_count(st);
    if (s->ncols > 0) {
      s->cols = calloc((size_t)s->ncols, sizeof *s->cols);
      if (!s->cols) rc = SQLITE_NOMEM;
      for (int c = 0; rc == SQLITE_OK && c < s->ncols; c++)
        if (!(s->cols[c] = dup_text(sqlite3_column_name(st, c)))) rc = SQLITE_NOMEM;
    }
  }
  while (rc == SQLITE_OK) {
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) rc = take_row(st, s);
    else if (step == SQLITE_DONE) break;
    else rc = step;
  }
  if (rc == SQLITE_OK) s->changes = sqlite3_changes(h);
  release(db, st);
  return rc;
}

static void fail(fy_db_t *db, fy_db_job_t *job, int i, int rc) {
  job->rc = rc;
  job->failed_at = i;
  job->err = dup_text(rc == SQLITE_RANGE ? "fewer values than the statement's parameters" : sqlite3_errmsg(db->h));
}

int fy_db_run(fy_db_t *db, fy_db_job_t *job) {
  if (job->transaction) {
    int rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) { fail(db, job, -1, rc); return rc; }
  }
  for (int i = 0; i < job->nstmts; i++) {
    int rc = run_one(db, &job->stmts[i]);
    if (rc != SQLITE_OK) {
      fail(db, job, i, rc);
      if (job->transaction || !sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
  }
  if (job->transaction) {
    int rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      fail(db, job, job->nstmts, rc);
      sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
  }
  return 0;
}

void fy_db_run_group(fy_db_t *db, fy_db_job_t **jobs, int n) {
  if (n == 1) { fy_db_run(db, jobs[0]); return; }
  int rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    for (int k = 0; k < n; k++) fail(db, jobs[k], -1, rc);
    return;
  }
  for (int k = 0; k < n; k++) {
    fy_db_job_t *job = jobs[k];
    sqlite3_exec(db->h, "SAVEPOINT job", NULL, NULL, NULL);
    for (int i = 0; i < job->nstmts; i++) {
      int src = run_one(db, &job->stmts[i]);
      if (src != SQLITE_OK) {
        fail(db, job, i, src);
        sqlite3_exec(db->h, "ROLLBACK TO job", NULL, NULL, NULL);
        break;
      }
    }
    sqlite3_exec(db->h, "RELEASE job", NULL, NULL, NULL);
  }
  rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    for (int k = 0; k < n; k++) {
      if (jobs[k]->rc) continue;
      fail(db, jobs[k], jobs[k]->nstmts, rc);
    }
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
  }
}

const char *fy_db_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY: case SQLITE_LOCKED: return "store_busy";
    case SQLITE_CONSTRAINT: return "constraint";
    case SQLITE_FULL: return "store_full";
    case SQLITE_ERROR: case SQLITE_RANGE: return "invalid_argument";   /* bad SQL: the caller's bug */
    default: return "store_error";
  }
}
