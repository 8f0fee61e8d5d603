/* jobs.h - the job table, job state changes and the gang scheduler
 * (jobs.c). Below lifecycle and the dispatcher; uses the PS, workers,
 * progress, events and the store.
 */
#ifndef SATURND_JOBS_H
#define SATURND_JOBS_H

#include "coord.h"

struct job *coord_job_find(struct coord *c, const char *id);
/* Validates spec_json and stores a new queued job (or, with dry_run, only
 * validates). On success *out is the job (NULL for a dry run) and *canon
 * the canonical JSON (caller frees with sat_free). On a bad spec returns
 * SAT_EINVAL/SAT_ETOOBIG with the field named in err. */
int coord_job_submit(struct coord *c, const char *spec_json, bool dry_run, struct job **out,
                     char **canon, char err[SAT_ERR_LEN]);
/* Cancels a queued or running job, at once. SAT_ESTATE if it already
 * ended (cancelling a cancelled job is OK and changes nothing). */
int coord_job_cancel(struct coord *c, struct job *j, const char *why, char err[SAT_ERR_LEN]);
/* Ends a job now: frees its workers, records the change, stops its PS and
 * asks for a scheduling pass. Never call it from inside a PS callback:
 * use coord_job_end_later there. */
int coord_job_end(struct coord *c, struct job *j, enum job_state st, const char *reason);
/* Marks j to be ended by the deferred phase (lifecycle.c); the first mark
 * wins, a job that has ended is left alone. st JOB_QUEUED re-queues it
 * (a new attempt, resumed from its last checkpoint; failed when its
 * attempts are spent). */
void coord_job_end_later(struct coord *c, struct job *j, enum job_state st, const char *reason);
/* A worker is lost (lease expired) or gone (Leave, drain): it leaves the
 * pool; a training job it held goes to RECOVERING and its rank waits up to
 * the spec's recover_timeout_s for another worker (the scheduler hands it
 * over), after which the job is re-queued from its last checkpoint. */
void coord_job_lose_worker(struct coord *c, struct worker *w, enum worker_state st,
                           const char *why);
/* Re-queues (from the last checkpoint) every recovering job whose rank
 * waited recover_timeout_s for a worker in vain (now: uv_now). */
void coord_jobs_check_recovery(struct coord *c, uint64_t now);
/* w refused its rank: its job is failed. */
void coord_job_refused(struct coord *c, struct worker *w, const char *reason);
/* Starts every queued job whose gang fits, in priority then submission
 * order; refreshes queued jobs' reasons. Called once per deferred phase
 * when something changed (c->sched_dirty). */
void coord_schedule(struct coord *c);
/* Writes the comma-separated worker ids of j into buf. */
void coord_job_worker_ids(const struct job *j, char *buf, size_t cap);

/* Loads every job and its progress (start-up), re-queueing those that
 * were running when the previous daemon died. */
int coord_jobs_load(struct coord *c, char err[SAT_ERR_LEN]);
/* Frees every job (and what is left of their parameter servers). */
void coord_jobs_free(struct coord *c);

#endif
