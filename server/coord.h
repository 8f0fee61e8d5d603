/* coord.h - saturnd's coordinator: the in-memory state and the interfaces
 * between saturnd's modules.
 *
 * One libuv loop thread owns everything declared here; nothing else touches
 * it, so there are no locks. Every function takes the `struct coord *`
 * explicitly; there are no globals (signal plumbing lives in main.c).
 *
 *   main.c          flags, start-up, signals, shutdown order
 *   rpc_dispatch.c  the method table: protobuf <-> coordinator operations
 *   jobs.c          job table, state transitions, gang scheduler
 *   workers.c       worker registry, heartbeats, leases, assignments
 *   events.c        job events: persisted, streamed to WatchJob callers
 *   store.c         SQLite persistence
 *   ps.c            the parameter server: one state per running job (ps.h)
 *   ps_setup.c      its set-up (thread pool) and teardown
 *   ps_data.c       Worker.FetchData: each rank's shard of the data set
 *   metrics.c       Worker.ReportMetrics, progress, epoch results, status
 *   export.c        Client.ExportModel
 *   http.c          --http: /healthz, /metrics, the dashboard (http.h), on
 *                   the loop thread; prom.c renders /metrics, dashboard.c
 *                   the HTML pages and SVG charts, webfmt.c their escaping
 *
 * A running job trains through the parameter server; when its last step
 * is applied and its last epoch evaluated it is `succeeded`.
 */
#ifndef SATURND_COORD_H
#define SATURND_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../common/rpc/rpc.h"
#include "../common/spec/jobspec.h"
#include "../common/util/err.h"
#include "store.h"

#define COORD_ID_LEN 32
#define COORD_REASON_LEN 256
#define COORD_PEER_LEN 64
#define COORD_VERSION_LEN 32
#define COORD_MAX_GANG 256          /* workers of one job (the spec's bound) */
#define COORD_MAX_ACTIVE_JOBS 10000 /* queued + running; more -> RESOURCE_EXHAUSTED */
#define COORD_MAX_WORKERS 1024      /* workers holding a lease */
#define COORD_MAX_DEAD_KEPT 256     /* lost/gone workers kept for ListWorkers */
#define COORD_MAX_WATCHERS 1024     /* concurrent WatchJob streams */
#define COORD_WATCH_REPLAY 500      /* events replayed at most when a watch starts */
#define COORD_MAX_ATTEMPTS 3        /* starts of one job across coordinator restarts */
#define COORD_HEARTBEAT_MS 1000     /* what workers are told */
#define COORD_LIST_DEFAULT 100
#define COORD_LIST_MAX 1000

/* Same numbers as saturn.v1.JobState / WorkerState. */
enum job_state {
    JOB_QUEUED = 1,
    JOB_RUNNING = 2,
    JOB_SUCCEEDED = 3,
    JOB_FAILED = 4,
    JOB_CANCELLED = 5,
};

enum worker_state {
    WORKER_IDLE = 1,
    WORKER_ASSIGNED = 2,
    WORKER_BUSY = 3,
    WORKER_LOST = 4,
    WORKER_GONE = 5,
};

struct worker;
struct watcher;
struct ps_job;

/* One quantizer's state (JobProgress.quant). */
struct job_quant {
    char name[64];
    bool is_alpha; /* else the SAT factor s of a layer's weights */
    float value;
};

/* A job's training progress and latest results (JobProgress in the
 * proto). Kept in memory, persisted (as JSON) at each epoch end and when
 * the job ends, loaded at start-up. */
struct job_progress {
    bool valid; /* training has started at least once */
    uint32_t epoch, epochs, test_epoch;
    uint64_t step, total_steps, steps_per_epoch, skipped;
    float loss, train_acc, test_acc, images_per_s, lr;
    double eta_s, elapsed_s, pull_s, compute_s, push_s;
    char digest[17];
    char model_path[1024];
    int nquant;
    struct job_quant *quant; /* (nquant), owned */
};

struct job {
    int64_t seq;
    char id[COORD_ID_LEN];
    char name[SPEC_NAME_LEN];
    char model[SPEC_NAME_LEN];
    char dataset[SPEC_NAME_LEN];
    char consistency[16];
    char *spec_json; /* canonical; owned */
    enum job_state state;
    int priority;
    int workers; /* gang size */
    int64_t submit_ms, start_ms, end_ms;
    uint32_t attempt;
    char reason[COORD_REASON_LEN];
    /* While running: ranks[i] is the worker of rank i. rank_ids keeps the
     * ids after the job ends (for status). Both hold `workers` entries. */
    struct worker **ranks;
    char (*rank_ids)[COORD_ID_LEN];
    int nranks; /* entries of rank_ids in use */
    struct watcher *watchers;
    struct ps_job *ps; /* the parameter server while running, else NULL */
    struct job_progress prog;
};

struct worker {
    int64_t seq;
    char id[COORD_ID_LEN];
    char name[SPEC_NAME_LEN];
    uint32_t threads;
    char version[COORD_VERSION_LEN];
    char peer[COORD_PEER_LEN];
    enum worker_state state;
    struct job *job; /* assignment, or NULL */
    uint32_t rank;
    int64_t registered_ms;
    int64_t last_seen_ms;    /* wall clock of the last heartbeat */
    uint64_t last_seen_mono; /* uv_now() of the last heartbeat (lease clock) */
    char reason[COORD_REASON_LEN];
};

/* A histogram of durations in seconds, for /metrics (prom.c). */
/* Finite buckets (their upper bounds, ascending); +Inf is `count`. */
#define COORD_HIST_NB 14
extern const double coord_hist_bounds[COORD_HIST_NB];
struct coord_hist {
    uint64_t bucket[COORD_HIST_NB]; /* observations in (bounds[i-1], bounds[i]] */
    uint64_t count;                 /* every observation */
    double sum;
};

/* Counters since start-up, kept on the loop thread (ps.c updates them). */
struct coord_stats {
    uint64_t pull_bytes;      /* parameter + BN bytes in Pull replies */
    uint64_t push_bytes;      /* gradient + BN bytes in Push requests */
    struct coord_hist pull_s; /* a Pull's arrival -> its reply (parked time included) */
    struct coord_hist push_s; /* the Push handler's time */
    int64_t start_ms;         /* wall clock at coord_init */
};

struct coord_opts {
    const char *state_dir;
    unsigned lease_ms; /* 500..600000 */
    size_t max_msg;    /* the RPC message cap (bytes): FetchData chunks fit in it */
    size_t shard_floats; /* parameter-server shard size cap in floats; 0 = default */
};

struct coord {
    uv_loop_t *loop;
    struct store *store;
    char state_dir[512];
    size_t max_msg;
    size_t shard_floats;
    unsigned lease_ms;
    uv_timer_t lease_timer;
    bool stopping;
    /* After a restart with workers that held leases, the scheduler waits
     * until this uv_now() time so that they can re-register first. */
    uint64_t hold_until;
    bool holding;

    struct job **jobs; /* every job, ascending seq */
    size_t njobs, cap_jobs;
    size_t nactive; /* queued + running */
    int64_t next_job_seq;

    struct worker **workers; /* registration order, live and recently dead */
    size_t nworkers, cap_workers;
    size_t nlive; /* idle/assigned/busy */
    int64_t next_worker_seq;

    size_t nwatchers;

    struct coord_stats stats;
};

/* ---- coord lifecycle (jobs.c) ---- */

/* Opens the store, loads every job (re-queueing those that were running
 * when the previous daemon died) and starts the lease timer. */
int coord_init(struct coord *c, uv_loop_t *loop, const struct coord_opts *o, char err[SAT_ERR_LEN]);
/* Ends every watch stream (UNAVAILABLE), stops the timer. The handles close
 * on the loop; coord_close then frees memory and closes the store. */
void coord_stop(struct coord *c);
void coord_close(struct coord *c);

int64_t coord_now_ms(void);

/* ---- jobs (jobs.c) ---- */

struct job *coord_job_find(struct coord *c, const char *id);
/* Validates spec_json and stores a new queued job (or, with dry_run, only
 * validates). On success *out is the job (NULL for a dry run) and *canon
 * the canonical JSON (caller frees with sat_free). On a bad spec returns
 * SAT_EINVAL/SAT_ETOOBIG with the field named in err. */
int coord_job_submit(struct coord *c, const char *spec_json, bool dry_run, struct job **out,
                     char **canon, char err[SAT_ERR_LEN]);
/* Cancels a queued or running job. SAT_ESTATE if it already ended
 * (cancelling a cancelled job is OK and changes nothing). */
int coord_job_cancel(struct coord *c, struct job *j, const char *why, char err[SAT_ERR_LEN]);
/* Ends a running job: frees its workers and records the change. */
int coord_job_end(struct coord *c, struct job *j, enum job_state st, const char *reason);
/* Starts every queued job whose gang fits, in priority then submission
 * order; refreshes queued jobs' reasons. Run after any change of jobs or
 * workers. */
void coord_schedule(struct coord *c);
const char *coord_job_state_name(enum job_state s);
bool coord_job_terminal(enum job_state s);
/* Writes the comma-separated worker ids of j into buf. */
void coord_job_worker_ids(const struct job *j, char *buf, size_t cap);

/* ---- workers (workers.c) ---- */

struct worker *coord_worker_find(struct coord *c, const char *id);
int coord_worker_register(struct coord *c, const char *name, uint32_t threads, const char *version,
                          const char *peer, struct worker **out, char err[SAT_ERR_LEN]);
/* Renews the lease. Reports what the worker runs; an ASSIGNED worker that
 * reports running its assignment counts as having acknowledged it. */
int coord_worker_heartbeat(struct coord *c, struct worker *w, bool running, const char *job_id,
                           uint32_t attempt);
int coord_worker_ack(struct coord *c, struct worker *w, const char *job_id, uint32_t attempt,
                     bool accepted, const char *reason, bool *still_assigned,
                     char err[SAT_ERR_LEN]);
void coord_worker_leave(struct coord *c, struct worker *w, const char *reason);
/* Gives w rank `rank` of job j (state ASSIGNED) / takes it back (IDLE). */
void coord_worker_assign(struct coord *c, struct worker *w, struct job *j, uint32_t rank);
void coord_worker_release(struct coord *c, struct worker *w);
size_t coord_workers_free(const struct coord *c);
const char *coord_worker_state_name(enum worker_state s);
/* Starts the lease timer (every lease_ms / 4). */
void coord_leases_start(struct coord *c);

/* ---- events (events.c) ---- */

/* Sends a recorded event (store_event_add has given it its seq) to j's
 * watchers; when j is terminal their streams then end with OK. */
void coord_event_publish(struct coord *c, struct job *j, const struct store_event *ev);
/* Records and publishes one event for j outside a state change (kinds
 * "acked", "started", ...). The state recorded is j's current state. */
int coord_event(struct coord *c, struct job *j, const char *kind, const char *worker_id,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends a prebuilt event (e.g. a live "progress" event, seq 0, not
 * stored) to j's watchers. */
struct Saturn__V1__JobEvent;
void coord_event_send_pb(struct coord *c, struct job *j, const struct Saturn__V1__JobEvent *m);
/* Starts a WatchJob stream: replays up to COORD_WATCH_REPLAY stored events
 * after after_seq, then follows the job live until it ends. Takes
 * ownership of the call. */
void coord_watch_start(struct coord *c, struct rpc_call *call, struct job *j, uint64_t after_seq);
/* Ends every stream (shutdown) with UNAVAILABLE. */
void coord_watch_end_all(struct coord *c);

/* ---- statistics (prom.c) ---- */

/* Counts one observation of `seconds` in h. */
void coord_hist_observe(struct coord_hist *h, double seconds);

/* ---- rpc (rpc_dispatch.c) ---- */

extern const struct rpc_method coord_methods[];
extern const size_t coord_nmethods;

#endif
