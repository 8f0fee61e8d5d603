/* store.c - SQLite persistence for saturnd (see store.h).
 *
 * Every statement is prepared once at open and reset after each use. States
 * are stored as the integers of the proto enums (JobState, WorkerState), so
 * that `sqlite3 saturnd.db` readers can use the .proto as the legend.
 */
#include "store.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "../common/util/log.h"
#include "../common/util/xalloc.h"

#define SCHEMA_VERSION 1

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  spec_json TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  workers INTEGER NOT NULL,"
    "  submit_ms INTEGER NOT NULL,"
    "  start_ms INTEGER NOT NULL DEFAULT 0,"
    "  end_ms INTEGER NOT NULL DEFAULT 0,"
    "  worker_ids TEXT NOT NULL DEFAULT '',"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  attempt INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS job_history("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS job_history_job ON job_history(job_id, id);"
    "CREATE TABLE IF NOT EXISTS workers("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  threads INTEGER NOT NULL,"
    "  version TEXT NOT NULL,"
    "  peer TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  registered_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL,"
    "  job_id TEXT NOT NULL DEFAULT '',"
    "  reason TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS events("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  message TEXT NOT NULL,"
    "  worker_id TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS events_job ON events(job_id, seq);"
    /* Training tables (additive: schema 1 databases gain them on open). */
    "CREATE TABLE IF NOT EXISTS metrics("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id TEXT NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  rank INTEGER NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  step INTEGER NOT NULL,"
    "  loss REAL, train_acc REAL, test_acc REAL, images_per_s REAL, lr REAL,"
    "  step_s REAL, pull_s REAL, compute_s REAL, push_s REAL,"
    "  quant TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS metrics_job ON metrics(job_id, id);"
    "CREATE TABLE IF NOT EXISTS progress(job_id TEXT PRIMARY KEY, json TEXT NOT NULL);";

enum stmt_id {
    S_BEGIN,
    S_PROBE,
    S_COMMIT,
    S_ROLLBACK,
    S_JOB_INSERT,
    S_JOB_UPDATE,
    S_HIST_ADD,
    S_EVENT_ADD,
    S_WORKER_PUT,
    S_JOBS_LOAD,
    S_HIST_LOAD,
    S_EVENTS_LOAD,
    S_WORKER_MAX,
    S_WORKERS_LOST,
    S_METRIC_ADD,
    S_PROGRESS_PUT,
    S_PROGRESS_LOAD,
    S_METRICS_LOAD,
    S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_PROBE] = "INSERT OR REPLACE INTO meta(key,value) VALUES('probe', strftime('%s','now'))",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_JOB_INSERT] = "INSERT INTO jobs(seq,id,name,spec_json,state,priority,workers,submit_ms,"
                     "start_ms,end_ms,worker_ids,reason,attempt) "
                     "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
    [S_JOB_UPDATE] = "UPDATE jobs SET state=?2, start_ms=?3, end_ms=?4, worker_ids=?5, "
                     "reason=?6, attempt=?7 WHERE id=?1",
    [S_HIST_ADD] = "INSERT INTO job_history(job_id,time_ms,state,reason) VALUES(?1,?2,?3,?4)",
    [S_EVENT_ADD] = "INSERT INTO events(job_id,time_ms,kind,state,message,worker_id) "
                    "VALUES(?1,?2,?3,?4,?5,?6)",
    [S_WORKER_PUT] = "INSERT INTO workers(seq,id,name,threads,version,peer,state,registered_ms,"
                     "last_seen_ms,job_id,reason) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) "
                     "ON CONFLICT(id) DO UPDATE SET state=excluded.state, "
                     "last_seen_ms=excluded.last_seen_ms, job_id=excluded.job_id, "
                     "reason=excluded.reason, peer=excluded.peer",
    [S_JOBS_LOAD] = "SELECT seq,id,name,spec_json,state,priority,workers,submit_ms,start_ms,"
                    "end_ms,worker_ids,reason,attempt FROM jobs ORDER BY seq",
    [S_HIST_LOAD] = "SELECT state,time_ms,reason FROM job_history WHERE job_id=?1 ORDER BY id",
    [S_EVENTS_LOAD] = "SELECT seq,job_id,time_ms,kind,state,message,worker_id FROM ("
                      "SELECT * FROM events WHERE job_id=?1 AND seq>?2 ORDER BY seq DESC "
                      "LIMIT ?3) ORDER BY seq",
    [S_WORKER_MAX] = "SELECT COALESCE(MAX(seq),0) FROM workers",
    [S_WORKERS_LOST] = "UPDATE workers SET state=?1, reason=?2, last_seen_ms=?3, job_id='' "
                       "WHERE state NOT IN (?1, ?4)",
    [S_METRIC_ADD] = "INSERT INTO metrics(job_id,time_ms,kind,rank,epoch,step,loss,train_acc,"
                     "test_acc,images_per_s,lr,step_s,pull_s,compute_s,push_s,quant) "
                     "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
    [S_PROGRESS_PUT] = "INSERT INTO progress(job_id,json) VALUES(?1,?2) "
                       "ON CONFLICT(job_id) DO UPDATE SET json=excluded.json",
    [S_PROGRESS_LOAD] = "SELECT job_id,json FROM progress",
    [S_METRICS_LOAD] = "SELECT job_id,time_ms,kind,rank,epoch,step,loss,train_acc,test_acc,"
                       "images_per_s,lr,step_s,pull_s,compute_s,push_s,quant FROM metrics "
                       "WHERE job_id=?1 ORDER BY id",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[S__COUNT];
    bool unwritable; /* the last write failed; cleared by the next one that works */
};

static int db_fail(struct store *st, const char *what)
{
    log_error("store: %s: %s", what, sqlite3_errmsg(st->db));
    return SAT_EIO;
}

/* Records what a write statement did to the store's health. */
static void write_result(struct store *st, sqlite3_stmt *s, int ok)
{
    if (!ok) {
        if (!st->unwritable)
            log_error("store: writes fail: the state is not being saved (health NOT_SERVING)");
        st->unwritable = true;
        return;
    }
    /* A write is done when it commits: COMMIT, or any change outside a
     * transaction. */
    bool done = s == st->stmt[S_COMMIT] || (!sqlite3_stmt_readonly(s) && sqlite3_get_autocommit(st->db));
    if (done && st->unwritable) {
        log_info("store: writes work again (health SERVING)");
        st->unwritable = false;
    }
}


/* Runs a prepared statement that returns no rows, then resets it. */
static int run(struct store *st, enum stmt_id id)
{
    sqlite3_stmt *s = st->stmt[id];
    int rc = sqlite3_step(s);
    int out = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        out = db_fail(st, stmt_sql[id]);
    write_result(st, s, out == 0);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return out;
}

bool store_writable(const struct store *st)
{
    return !st->unwritable;
}

int store_probe(struct store *st)
{
    if (!st->unwritable)
        return 0;
    int rc = run(st, S_PROBE);
    return rc;
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
    sqlite3_bind_text(s, i, t ? t : "", -1, SQLITE_STATIC);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

int store_open(struct store **res, const char *dir, char err[SAT_ERR_LEN])
{
    *res = NULL;
    char path[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/saturnd.db", dir) >= sizeof path)
        return sat_errf(err, SAT_EINVAL, "state dir path too long");
    struct store *st = sat_calloc(1, sizeof *st);
    if (!st)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    int out = SAT_EIO;
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sat_errf(err, SAT_EIO, "cannot open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 2000);
    char *emsg = NULL;
    /* WAL: readers (sqlite3 CLI, backups) never block the daemon.
     * synchronous=FULL: a commit is durable when it returns. */
    const char *pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                          "PRAGMA foreign_keys=ON;";
    if (sqlite3_exec(st->db, pragmas, NULL, NULL, &emsg) != SQLITE_OK ||
        sqlite3_exec(st->db, schema_sql, NULL, NULL, &emsg) != SQLITE_OK) {
        sat_errf(err, SAT_EIO, "cannot set up %s: %s", path, emsg ? emsg : "?");
        sqlite3_free(emsg);
        goto fail;
    }
    char ver[128];
    snprintf(ver, sizeof ver, "INSERT OR IGNORE INTO meta(key,value) VALUES('schema','%d')",
             SCHEMA_VERSION);
    if (sqlite3_exec(st->db, ver, NULL, NULL, &emsg) != SQLITE_OK) {
        sat_errf(err, SAT_EIO, "cannot write schema version: %s", emsg ? emsg : "?");
        sqlite3_free(emsg);
        goto fail;
    }
    sqlite3_stmt *vs = NULL;
    int schema = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key='schema'", -1, &vs, NULL) ==
            SQLITE_OK &&
        sqlite3_step(vs) == SQLITE_ROW)
        schema = sqlite3_column_int(vs, 0);
    sqlite3_finalize(vs);
    if (schema != SCHEMA_VERSION) {
        out = sat_errf(err, SAT_EFORMAT, "%s has schema version %d; this saturnd knows %d", path,
                       schema, SCHEMA_VERSION);
        goto fail;
    }
    for (int i = 0; i < S__COUNT; i++) {
        if (sqlite3_prepare_v2(st->db, stmt_sql[i], -1, &st->stmt[i], NULL) != SQLITE_OK) {
            sat_errf(err, SAT_EIO, "cannot prepare \"%s\": %s", stmt_sql[i],
                     sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    *res = st;
    return 0;
fail:
    store_close(st);
    return out;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (int i = 0; i < S__COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db) {
        int rc = sqlite3_close(st->db);
        if (rc != SQLITE_OK)
            log_error("store: close: %s", sqlite3_errstr(rc));
    }
    sat_free(st);
}

int store_begin(struct store *st)
{
    return run(st, S_BEGIN);
}

int store_commit(struct store *st)
{
    int rc = run(st, S_COMMIT);
    if (rc != 0)
        store_rollback(st);
    return rc;
}

void store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)run(st, S_ROLLBACK);
}

static void bind_job(sqlite3_stmt *s, const struct store_job *j)
{
    sqlite3_bind_int64(s, 1, j->seq);
    bind_text(s, 2, j->id);
    bind_text(s, 3, j->name);
    bind_text(s, 4, j->spec_json);
    sqlite3_bind_int(s, 5, j->state);
    sqlite3_bind_int(s, 6, j->priority);
    sqlite3_bind_int(s, 7, j->workers);
    sqlite3_bind_int64(s, 8, j->submit_ms);
    sqlite3_bind_int64(s, 9, j->start_ms);
    sqlite3_bind_int64(s, 10, j->end_ms);
    bind_text(s, 11, j->worker_ids);
    bind_text(s, 12, j->reason);
    sqlite3_bind_int64(s, 13, j->attempt);
}

int store_job_insert(struct store *st, const struct store_job *j)
{
    bind_job(st->stmt[S_JOB_INSERT], j);
    return run(st, S_JOB_INSERT);
}

int store_job_update(struct store *st, const struct store_job *j)
{
    sqlite3_stmt *s = st->stmt[S_JOB_UPDATE];
    bind_text(s, 1, j->id);
    sqlite3_bind_int(s, 2, j->state);
    sqlite3_bind_int64(s, 3, j->start_ms);
    sqlite3_bind_int64(s, 4, j->end_ms);
    bind_text(s, 5, j->worker_ids);
    bind_text(s, 6, j->reason);
    sqlite3_bind_int64(s, 7, j->attempt);
    int rc = run(st, S_JOB_UPDATE);
    if (rc == 0 && sqlite3_changes(st->db) != 1)
        rc = SAT_ENOENT;
    return rc;
}

int store_history_add(struct store *st, const char *job_id, const struct store_change *c)
{
    sqlite3_stmt *s = st->stmt[S_HIST_ADD];
    bind_text(s, 1, job_id);
    sqlite3_bind_int64(s, 2, c->time_ms);
    sqlite3_bind_int(s, 3, c->state);
    bind_text(s, 4, c->reason);
    return run(st, S_HIST_ADD);
}

int store_event_add(struct store *st, struct store_event *ev)
{
    sqlite3_stmt *s = st->stmt[S_EVENT_ADD];
    bind_text(s, 1, ev->job_id);
    sqlite3_bind_int64(s, 2, ev->time_ms);
    bind_text(s, 3, ev->kind);
    sqlite3_bind_int(s, 4, ev->state);
    bind_text(s, 5, ev->message);
    bind_text(s, 6, ev->worker_id);
    int rc = run(st, S_EVENT_ADD);
    if (rc == 0)
        ev->seq = (uint64_t)sqlite3_last_insert_rowid(st->db);
    return rc;
}

int store_worker_put(struct store *st, const struct store_worker *w)
{
    sqlite3_stmt *s = st->stmt[S_WORKER_PUT];
    sqlite3_bind_int64(s, 1, w->seq);
    bind_text(s, 2, w->id);
    bind_text(s, 3, w->name);
    sqlite3_bind_int64(s, 4, w->threads);
    bind_text(s, 5, w->version);
    bind_text(s, 6, w->peer);
    sqlite3_bind_int(s, 7, w->state);
    sqlite3_bind_int64(s, 8, w->registered_ms);
    sqlite3_bind_int64(s, 9, w->last_seen_ms);
    bind_text(s, 10, w->job_id);
    bind_text(s, 11, w->reason);
    return run(st, S_WORKER_PUT);
}

/* Steps a SELECT, handing each row to `row`; resets the statement. */
static int each_row(struct store *st, enum stmt_id id, int (*row)(sqlite3_stmt *s, void *ctx),
                    void *ctx)
{
    sqlite3_stmt *s = st->stmt[id];
    int out = 0;
    for (;;) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            out = db_fail(st, stmt_sql[id]);
            break;
        }
        out = row(s, ctx);
        if (out != 0)
            break;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return out;
}

struct cb_ctx {
    int (*job)(void *arg, const struct store_job *j);
    int (*change)(void *arg, const struct store_change *c);
    int (*event)(void *arg, const struct store_event *e);
    void *arg;
};

static int job_row(sqlite3_stmt *s, void *ctx)
{
    struct cb_ctx *c = ctx;
    struct store_job j = {
        .seq = sqlite3_column_int64(s, 0),
        .id = col_text(s, 1),
        .name = col_text(s, 2),
        .spec_json = col_text(s, 3),
        .state = sqlite3_column_int(s, 4),
        .priority = sqlite3_column_int(s, 5),
        .workers = sqlite3_column_int(s, 6),
        .submit_ms = sqlite3_column_int64(s, 7),
        .start_ms = sqlite3_column_int64(s, 8),
        .end_ms = sqlite3_column_int64(s, 9),
        .worker_ids = col_text(s, 10),
        .reason = col_text(s, 11),
        .attempt = (uint32_t)sqlite3_column_int64(s, 12),
    };
    return c->job(c->arg, &j);
}

int store_jobs_load(struct store *st, int (*cb)(void *arg, const struct store_job *j), void *arg)
{
    struct cb_ctx c = {.job = cb, .arg = arg};
    return each_row(st, S_JOBS_LOAD, job_row, &c);
}

static int hist_row(sqlite3_stmt *s, void *ctx)
{
    struct cb_ctx *c = ctx;
    struct store_change ch = {
        .state = sqlite3_column_int(s, 0),
        .time_ms = sqlite3_column_int64(s, 1),
        .reason = col_text(s, 2),
    };
    return c->change(c->arg, &ch);
}

int store_history_load(struct store *st, const char *job_id,
                       int (*cb)(void *arg, const struct store_change *c), void *arg)
{
    bind_text(st->stmt[S_HIST_LOAD], 1, job_id);
    struct cb_ctx c = {.change = cb, .arg = arg};
    return each_row(st, S_HIST_LOAD, hist_row, &c);
}

static int event_row(sqlite3_stmt *s, void *ctx)
{
    struct cb_ctx *c = ctx;
    struct store_event e = {
        .seq = (uint64_t)sqlite3_column_int64(s, 0),
        .job_id = col_text(s, 1),
        .time_ms = sqlite3_column_int64(s, 2),
        .kind = col_text(s, 3),
        .state = sqlite3_column_int(s, 4),
        .message = col_text(s, 5),
        .worker_id = col_text(s, 6),
    };
    return c->event(c->arg, &e);
}

int store_events_load(struct store *st, const char *job_id, uint64_t after_seq, unsigned limit,
                      int (*cb)(void *arg, const struct store_event *e), void *arg)
{
    sqlite3_stmt *s = st->stmt[S_EVENTS_LOAD];
    bind_text(s, 1, job_id);
    sqlite3_bind_int64(s, 2, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
    sqlite3_bind_int64(s, 3, limit);
    struct cb_ctx c = {.event = cb, .arg = arg};
    return each_row(st, S_EVENTS_LOAD, event_row, &c);
}

static int max_row(sqlite3_stmt *s, void *ctx)
{
    *(int64_t *)ctx = sqlite3_column_int64(s, 0);
    return 0;
}

int64_t store_worker_max_seq(struct store *st)
{
    int64_t v = 0;
    (void)each_row(st, S_WORKER_MAX, max_row, &v);
    return v;
}

int store_workers_mark_lost(struct store *st, int lost_state, int gone_state, const char *reason,
                            int64_t now_ms, int *changed)
{
    sqlite3_stmt *s = st->stmt[S_WORKERS_LOST];
    sqlite3_bind_int(s, 1, lost_state);
    bind_text(s, 2, reason);
    sqlite3_bind_int64(s, 3, now_ms);
    sqlite3_bind_int(s, 4, gone_state);
    int rc = run(st, S_WORKERS_LOST);
    *changed = rc == 0 ? sqlite3_changes(st->db) : 0;
    return rc;
}

/* ==== metrics and progress ================================================= */

static void bind_real_or_null(sqlite3_stmt *s, int i, double v)
{
    if (v != v) /* NaN: not measured */
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_double(s, i, v);
}

int store_metric_add(struct store *st, const struct store_metric *m)
{
    sqlite3_stmt *s = st->stmt[S_METRIC_ADD];
    bind_text(s, 1, m->job_id);
    sqlite3_bind_int64(s, 2, m->time_ms);
    bind_text(s, 3, m->kind);
    sqlite3_bind_int(s, 4, m->rank);
    sqlite3_bind_int64(s, 5, m->epoch);
    sqlite3_bind_int64(s, 6, (int64_t)m->step);
    bind_real_or_null(s, 7, m->loss);
    bind_real_or_null(s, 8, m->train_acc);
    bind_real_or_null(s, 9, m->test_acc);
    bind_real_or_null(s, 10, m->images_per_s);
    bind_real_or_null(s, 11, m->lr);
    bind_real_or_null(s, 12, m->step_s);
    bind_real_or_null(s, 13, m->pull_s);
    bind_real_or_null(s, 14, m->compute_s);
    bind_real_or_null(s, 15, m->push_s);
    bind_text(s, 16, m->quant_json);
    return run(st, S_METRIC_ADD);
}

int store_progress_put(struct store *st, const char *job_id, const char *json)
{
    sqlite3_stmt *s = st->stmt[S_PROGRESS_PUT];
    bind_text(s, 1, job_id);
    bind_text(s, 2, json);
    return run(st, S_PROGRESS_PUT);
}

struct progress_ctx {
    int (*cb)(void *arg, const char *job_id, const char *json);
    void *arg;
};

static int progress_row(sqlite3_stmt *s, void *ctx)
{
    struct progress_ctx *c = ctx;
    return c->cb(c->arg, col_text(s, 0), col_text(s, 1));
}

int store_progress_load(struct store *st,
                        int (*cb)(void *arg, const char *job_id, const char *json), void *arg)
{
    struct progress_ctx c = {.cb = cb, .arg = arg};
    return each_row(st, S_PROGRESS_LOAD, progress_row, &c);
}

static double col_real(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

struct metrics_ctx {
    int (*cb)(void *arg, const struct store_metric *m);
    void *arg;
};

static int metric_row(sqlite3_stmt *s, void *ctx)
{
    struct metrics_ctx *c = ctx;
    struct store_metric m = {
        .job_id = col_text(s, 0),
        .time_ms = sqlite3_column_int64(s, 1),
        .kind = col_text(s, 2),
        .rank = sqlite3_column_int(s, 3),
        .epoch = sqlite3_column_int64(s, 4),
        .step = (uint64_t)sqlite3_column_int64(s, 5),
        .loss = col_real(s, 6),
        .train_acc = col_real(s, 7),
        .test_acc = col_real(s, 8),
        .images_per_s = col_real(s, 9),
        .lr = col_real(s, 10),
        .step_s = col_real(s, 11),
        .pull_s = col_real(s, 12),
        .compute_s = col_real(s, 13),
        .push_s = col_real(s, 14),
        .quant_json = col_text(s, 15),
    };
    return c->cb(c->arg, &m);
}

int store_metrics_load(struct store *st, const char *job_id,
                       int (*cb)(void *arg, const struct store_metric *m), void *arg)
{
    bind_text(st->stmt[S_METRICS_LOAD], 1, job_id);
    struct metrics_ctx c = {.cb = cb, .arg = arg};
    return each_row(st, S_METRICS_LOAD, metric_row, &c);
}
