/* run.h - an assignment as the session hands it to the runner thread, and
 * the run_ctl that tells the runner to stop.
 *
 * The session (session.c) acknowledges an assignment, then runs it
 * (worker_run_assignment, train_loop.h) on a runner thread of its own, and
 * keeps the lease with heartbeats on its thread meanwhile. When the
 * coordinator revokes the assignment, the lease is lost or the worker shuts
 * down, the session sets the stop flag of the run_ctl; the runner must then
 * return promptly (check run_ctl_stopped between steps, or sleep in
 * run_ctl_wait). This header is a leaf: it knows neither side.
 */
#ifndef SATURN_WORKER_RUN_H
#define SATURN_WORKER_RUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/util/err.h"

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

#endif
