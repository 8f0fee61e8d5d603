/* store.h - saturnd's durable state: one SQLite database in WAL mode.
 *
 * Tables: jobs (full spec, state, priority, times, worker ids, reason,
 * attempt), job_history (every state change with its reason and time),
 * workers (every registration and its last known state) and events (what
 * WatchJob replays). The store knows rows, not the coordinator's structs:
 * callers pass plain values. Every function runs on the loop thread and
 * returns 0 or SAT_E*; SQLite's message goes to the log.
 *
 * Durability: synchronous=FULL, so a change is on disk before the RPC that
 * made it is answered; a SIGKILL never loses an acknowledged change.
 */
#ifndef SATURND_STORE_H
#define SATURND_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/util/err.h"

struct store;

/* A job row. Strings are borrowed from the caller (writes) or valid only
 * during the callback (reads). */
struct store_job {
    int64_t seq;
    const char *id;
    const char *name;
    const char *spec_json;
    int state; /* enum job_state */
    int priority;
    int workers;
    int64_t submit_ms, start_ms, end_ms;
    const char *worker_ids; /* comma-separated, rank order; "" when none */
    const char *reason;
    uint32_t attempt;
};

struct store_worker {
    int64_t seq;
    const char *id;
    const char *name;
    uint32_t threads;
    const char *version;
    const char *peer;
    int state; /* enum worker_state */
    int64_t registered_ms, last_seen_ms;
    const char *job_id;
    const char *reason;
};

struct store_event {
    uint64_t seq; /* assigned by store_event_add */
    const char *job_id;
    int64_t time_ms;
    const char *kind;
    int state;
    const char *message;
    const char *worker_id;
};

struct store_change {
    int state;
    int64_t time_ms;
    const char *reason;
};

/* Opens (creating if needed) DIR/saturnd.db. Returns 0 or SAT_E* with err. */
int store_open(struct store **res, const char *dir, char err[SAT_ERR_LEN]);
/* Finalizes every statement and closes the database (checkpointing the
 * WAL). NULL is a no-op. */
void store_close(struct store *st);

/* Transactions group the writes of one change (row + history + event). */
/* Whether the last write worked (a failed write makes the store
 * unwritable until a later one commits). */
bool store_writable(const struct store *st);
/* While unwritable: tries one small write. Returns 0 once writes work. */
int store_probe(struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);

int store_job_insert(struct store *st, const struct store_job *j);
/* Updates state, reason, times, worker ids and attempt of job j->id. */
int store_job_update(struct store *st, const struct store_job *j);
int store_history_add(struct store *st, const char *job_id, const struct store_change *c);
/* Appends an event and sets ev->seq. */
int store_event_add(struct store *st, struct store_event *ev);
/* Inserts or updates a worker row (by id). */
int store_worker_put(struct store *st, const struct store_worker *w);

/* Reads every job in seq order. cb returns 0 to go on, else stops with it. */
int store_jobs_load(struct store *st, int (*cb)(void *arg, const struct store_job *j), void *arg);
/* A job's state history, oldest first. */
int store_history_load(struct store *st, const char *job_id,
                       int (*cb)(void *arg, const struct store_change *c), void *arg);
/* A job's events with seq > after_seq, oldest first, at most `limit` (the
 * most recent ones when there are more). */
int store_events_load(struct store *st, const char *job_id, uint64_t after_seq, unsigned limit,
                      int (*cb)(void *arg, const struct store_event *e), void *arg);
/* Highest worker seq ever stored (0 if none). */
int64_t store_worker_max_seq(struct store *st);
/* Sets every worker row whose state is neither lost_state nor gone_state to
 * lost_state with a reason (used at start-up: no lease survives a restart);
 * *changed is the number of rows marked. */
int store_workers_mark_lost(struct store *st, int lost_state, int gone_state, const char *reason,
                            int64_t now_ms, int *changed);

/* ---- training metrics and progress ---- */

/* One row of the metrics table: a rank's report (kind "step", rank >= 0)
 * or an epoch's aggregate (kind "epoch", rank -1). NaN = not measured
 * (stored as NULL). */
struct store_metric {
    const char *job_id;
    int64_t time_ms;
    const char *kind;
    int rank;
    int64_t epoch;
    uint64_t step;
    double loss, train_acc, test_acc, images_per_s, lr;
    double step_s, pull_s, compute_s, push_s;
    const char *quant_json; /* per-layer alpha / SAT factor, "" when absent */
};

int store_metric_add(struct store *st, const struct store_metric *m);
/* Reads a job's metrics rows in insertion order (oldest first). The row
 * and its strings are valid only during the callback; columns stored as
 * NULL are NaN. cb returns 0 to go on, else the read stops and returns
 * that value (the HTTP dashboard's charts). */
int store_metrics_load(struct store *st, const char *job_id,
                       int (*cb)(void *arg, const struct store_metric *m), void *arg);
/* Inserts or replaces a job's progress (a JSON object). */
int store_progress_put(struct store *st, const char *job_id, const char *json);
/* Reads every job's progress. */
int store_progress_load(struct store *st,
                        int (*cb)(void *arg, const char *job_id, const char *json), void *arg);

#endif
