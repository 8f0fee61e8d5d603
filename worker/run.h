/* run.h - what a worker does with an assignment: the hook the trainer
 * plugs into.
 *
 * The session (session.c) acknowledges an assignment, then calls
 * worker_run_assignment on a runner thread of its own, and keeps the lease
 * with heartbeats on its thread meanwhile. When the coordinator revokes the
 * assignment, the lease is lost or the worker shuts down, the session sets
 * the stop flag of the run_ctl; worker_run_assignment must then return
 * promptly (check run_ctl_stopped between steps, or sleep in run_ctl_wait).
 *
 * worker_run_assignment trains the assignment (worker_train, the loop of
 * train_loop.c: pull -> forward/backward on the shard -> push), using
 * `rpc` for the ParameterServer and Worker.FetchData / ReportMetrics calls.
 */
#ifndef SATURN_WORKER_RUN_H
#define SATURN_WORKER_RUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/rpc/rpc.h"

#define WORKER_ID_LEN 64

struct worker_assignment {
    char worker_id[WORKER_ID_LEN];
    char job_id[WORKER_ID_LEN];
    uint32_t rank;       /* 0..world_size-1 */
    uint32_t world_size; /* 1..256 */
    uint32_t attempt;    /* (job_id, attempt) identifies the assignment */
    uint32_t threads;    /* math threads this worker offers */
    char *spec_json;     /* canonical job spec; owned by the session */
};

/* Shared by the session thread and the runner thread; guarded by lock. */
struct run_ctl {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop; /* set by the session: revoked, lease lost or shutting down */
};

/* Initializes ctl (its condition variable waits on CLOCK_MONOTONIC).
 * Returns 0 or SAT_ENOMEM. */
int run_ctl_init(struct run_ctl *ctl);
void run_ctl_destroy(struct run_ctl *ctl);
/* Sets (or clears, for the next run) the stop flag and wakes waiters. */
void run_ctl_set_stop(struct run_ctl *ctl, bool stop);
/* 1 once the session asked the run to stop. */
bool run_ctl_stopped(struct run_ctl *ctl);
/* Sleeps up to ms milliseconds or until stop is set; returns run_ctl_stopped. */
bool run_ctl_wait(struct run_ctl *ctl, unsigned ms);

/* Runs one assignment on the runner thread. Returns 0 when it stopped
 * because it was told to (or, issue 4, finished its work), else SAT_E* with
 * a reason in err (the session then logs it). `rpc` may be used from this
 * thread while the session heartbeats on the same client. */
int worker_run_assignment(struct rpc_client *rpc, const struct worker_assignment *a,
                          struct run_ctl *ctl, char err[SAT_ERR_LEN]);

/* The training loop (train_loop.c): sets the engine's thread count to
 * a->threads (nn_set_threads), fetches the rank's data from saturnd and
 * trains from the job's current step. Returns 0 when training is done or
 * the job is over (stopped by the session, by ReportMetrics, or by a PS
 * status saying the job is gone), else SAT_E* with err. */
int worker_train(struct rpc_client *rpc, const struct worker_assignment *a, struct run_ctl *ctl,
                 char err[SAT_ERR_LEN]);

#endif
