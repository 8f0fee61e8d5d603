/* coord.h - saturnd's coordinator: the types every module shares.
 *
 * One libuv loop thread owns everything declared here; nothing else touches
 * it, so there are no locks. Every function takes the `struct coord *`
 * explicitly; there are no globals (signal plumbing lives in main.c).
 * This header holds types, limits and the state-name tables only; each
 * module declares its functions in its own header, so an #include line is a
 * dependency. The modules, top to bottom (none calls one above it):
 *
 *   main.c          flags, start-up, signals, shutdown order
 *   rpc_dispatch.c  the method table: protobuf <-> coordinator operations;
 *                   every lookup-or-reply (job, worker, running PS) and
 *                   the worker identity checks; each method's roles
 *   auth.c          role tokens and their files, worker session secrets,
 *                   HTTP credentials
 *   export.c        Client.ExportModel
 *   web/            --http: /healthz, /metrics, the dashboard (read-only)
 *   lifecycle.c     init/stop/close, the one periodic timer, and the
 *                   deferred phase that ends jobs and schedules once
 *   jobs.c          job table, state changes, gang scheduler
 *   recovery.c      what a lost, leaving or refusing worker means for its
 *                   job: RECOVERING, the rank's hand-over, the timeout
 *   ps/             the parameter server of each running job; reports the
 *                   end of training through a callback
 *   workers.c       worker registry, heartbeats, leases, assignments
 *   progress.c      struct job_progress as a value: JSON, protobuf, publish
 *   events.c        job events: persisted, streamed to WatchJob callers
 *   stats.c         counters and duration histograms
 *   store.c         SQLite persistence
 *   paths.c         data roots and the import dir: what a spec may read
 *
 * A running job trains through the parameter server; when its last step
 * is applied and its last epoch evaluated it is `succeeded`.
 */
#ifndef SATURND_COORD_H
#define SATURND_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "../common/rpc/rpc.h"
#include "../common/spec/jobspec.h"
#include "../common/util/clock.h"
#include "../common/util/err.h"
#include "paths.h"
#include "stats.h"
#include "store.h"

#define COORD_ID_LEN 32
#define COORD_REASON_LEN 256
#define COORD_PEER_LEN 64
#define COORD_VERSION_LEN 32
#define COORD_SESSION_LEN 40        /* a worker's session secret, hex + NUL (auth.h) */
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

/* Same numbers as saturn.v1.JobState / WorkerState: XX(NAME, value, text). */
#define JOB_STATE_MAP(XX)                                                                          \
    XX(QUEUED, 1, "queued")                                                                        \
    XX(RUNNING, 2, "running")                                                                      \
    XX(SUCCEEDED, 3, "succeeded")                                                                  \
    XX(FAILED, 4, "failed")                                                                        \
    XX(CANCELLED, 5, "cancelled")                                                                  \
    XX(RECOVERING, 6, "recovering")

#define WORKER_STATE_MAP(XX)                                                                       \
    XX(IDLE, 1, "idle")                                                                            \
    XX(ASSIGNED, 2, "assigned")                                                                    \
    XX(BUSY, 3, "busy")                                                                            \
    XX(LOST, 4, "lost")                                                                            \
    XX(GONE, 5, "gone")

#define XX(name, v, text) JOB_##name = v,
enum job_state { JOB_STATE_MAP(XX) };
#undef XX
#define XX(name, v, text) WORKER_##name = v,
enum worker_state { WORKER_STATE_MAP(XX) };
#undef XX

static inline const char *coord_job_state_name(enum job_state s)
{
    switch (s) {
#define XX(name, v, text)                                                                          \
    case JOB_##name:                                                                               \
        return text;
        JOB_STATE_MAP(XX)
#undef XX
    }
    return "unknown";
}

static inline bool coord_job_terminal(enum job_state s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

/* Training: running, or running with a rank waiting for a worker. */
static inline bool coord_job_training(enum job_state s)
{
    return s == JOB_RUNNING || s == JOB_RECOVERING;
}

static inline const char *coord_worker_state_name(enum worker_state s)
{
    switch (s) {
#define XX(name, v, text)                                                                          \
    case WORKER_##name:                                                                            \
        return text;
        WORKER_STATE_MAP(XX)
#undef XX
    }
    return "unknown";
}

static inline bool coord_worker_live(enum worker_state s)
{
    return s == WORKER_IDLE || s == WORKER_ASSIGNED || s == WORKER_BUSY;
}

/* Wall-clock milliseconds (times shown to people and stored). */
static inline int64_t coord_now_ms(void)
{
    return sat_wall_ms();
}

struct worker;
struct watcher;
struct ps_job;

/* What a job_quant measures (QuantStat.kind: job_quant_kind_name). */
enum job_quant_kind {
    JQ_ALPHA, /* PACT clipping level |alpha| of an activation quantizer */
    JQ_SAT,   /* SAT factor s of a layer's weights */
    JQ_WVAR,  /* variance of the last layer's effective weights s*Q */
    JQ_NKINDS
};

/* One quantizer's state (JobProgress.quant). */
struct job_quant {
    char name[64];
    enum job_quant_kind kind;
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
    struct job_spec *spec; /* parsed once (submit, load); NULL if it no longer parses */
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
    /* While running: ranks[i] is the worker of rank i (NULL while the rank
     * waits for a worker: state RECOVERING). rank_ids keeps the ids after
     * the job ends (for status); rank_names the names of the workers that
     * held them, so that a worker restarting under the same --name may take
     * its old rank back. Each holds `workers` entries. */
    struct worker **ranks;
    char (*rank_ids)[COORD_ID_LEN];
    char (*rank_names)[SPEC_NAME_LEN];
    uint64_t recover_until; /* RECOVERING: uv_now() by which a worker must come */
    int nranks; /* entries of rank_ids in use */
    struct watcher *watchers;
    struct ps_job *ps; /* the parameter server while running, else NULL */
    struct job_progress prog;
    /* An end decided by a handler or a callback, carried out by the
     * deferred phase (lifecycle.c) after the current callback returns;
     * end_state JOB_QUEUED re-queues the job (from its last checkpoint). */
    bool end_pending;
    enum job_state end_state;
    char end_reason[COORD_REASON_LEN];
};

/* The sweep j belongs to (the spec's "sweep"), "" for none. */
static inline const char *coord_job_sweep(const struct job *j)
{
    return j->spec ? j->spec->sweep : "";
}

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
    bool draining;           /* DrainWorker: no new assignment; told to leave */
    char reason[COORD_REASON_LEN];
    char session[COORD_SESSION_LEN]; /* secret proving this worker's calls (auth.c) */
};


struct auth;

struct coord {
    uv_loop_t *loop;
    const struct auth *auth; /* tokens and HTTP policy (auth.h); owned by main.c */
    struct store *store;
    char state_dir[512];
    size_t max_msg;
    size_t shard_floats;
    unsigned lease_ms;
    struct coord_paths paths; /* data roots and the import dir (paths.c) */
    uv_timer_t tick;        /* the one periodic timer (lifecycle.c) */
    uv_prepare_t deferred;  /* the deferred phase, before the loop sleeps */
    bool sched_dirty;       /* jobs or workers changed: schedule once */
    size_t nend_pending;    /* jobs with end_pending set */
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

#endif
