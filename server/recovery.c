/* recovery.c - what a lost worker means for its job (jobs.h).
 *
 * A worker that is lost (lease), leaves (Leave, SIGTERM) or is drained
 * leaves the pool; a training job it held goes to RECOVERING and its rank
 * waits for another worker. The scheduler (jobs.c) calls jobs__handover
 * before it starts queued jobs: an idle worker takes the rank, the one
 * with the lost worker's --name first, and when every rank has a worker
 * the job runs again. The parameter server keeps the job's state all the
 * while; the new worker resumes the rank where the PS says it stands. A
 * rank that finds no worker within the spec's recover_timeout_s re-queues
 * the job from its last checkpoint (coord_job_end_later with JOB_QUEUED).
 */
#include "events.h"
#include "jobs.h"
#include "jobs_int.h"
#include "workers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../common/util/utf8.h"

/* Where a job stands, for reasons: " at step N of T" or "". */
static void job_at(const struct job *j, char *buf, size_t cap)
{
    buf[0] = 0;
    if (j->ps && j->prog.valid)
        snprintf(buf, cap, " at step %" PRIu64 " of %" PRIu64, j->prog.step, j->prog.total_steps);
    else if (j->ps)
        snprintf(buf, cap, " before training started");
}

/* A running job with a rank that has no worker waits for one. If the
 * change cannot be stored, the job stays running with the empty rank and
 * the periodic check tries again (coord_jobs_check_recovery). */
static void job_to_recovering(struct coord *c, struct job *j, const char *worker_id,
                              const char *why)
{
    int timeout = j->spec->recover_timeout_s;
    j->recover_until = uv_now(c->loop) + (uint64_t)timeout * 1000;
    char msg[COORD_REASON_LEN];
    snprintf(msg, sizeof msg, "recovering: %.*s; waiting up to %d s for a worker",
             (int)sat_utf8_cut(why, 170), why, timeout);
    jobs__change(c, j, JOB_RECOVERING, "state", worker_id, msg);
}

void coord_job_lose_worker(struct coord *c, struct worker *w, enum worker_state st,
                           const char *why)
{
    struct job *j = w->job;
    uint32_t rank = w->rank;
    if (!j) {
        coord_worker_drop(c, w, st, why);
        c->sched_dirty = true; /* a blocked job's reason changes */
        return;
    }
    char reason[COORD_REASON_LEN + 128], at[64];
    job_at(j, at, sizeof at);
    snprintf(reason, sizeof reason, "worker %s (%s) %s%s (rank %" PRIu32 "): %.*s", w->id,
             w->name, st == WORKER_LOST ? "lost" : "left", at, rank,
             (int)sat_utf8_cut(why, 120), why);
    coord_event(c, j, st == WORKER_LOST ? "worker_lost" : "worker_left", w->id, "%s", reason);
    for (int i = 0; i < j->workers; i++)
        if (j->ranks[i] == w)
            j->ranks[i] = NULL;
    coord_worker_drop(c, w, st, why);
    c->sched_dirty = true;
    if (!coord_job_training(j->state) || j->end_pending || !j->spec)
        return;
    /* The rank waits for another worker (lifecycle's deferred phase hands
     * it over); the PS keeps the job's state and the other ranks wait in
     * their pulls. */
    if (j->state == JOB_RUNNING)
        job_to_recovering(c, j, w->id, reason);
}

/* Gives the ranks of a recovering job that have no worker to idle workers
 * (a worker with the name of the rank's last worker first: a restarted
 * worker takes its rank back); when every rank has one, the job runs
 * again. Returns the number of workers it took. */
size_t jobs__handover(struct coord *c, struct job *j)
{
    size_t took = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int r = 0; r < j->workers; r++) {
            if (j->ranks[r])
                continue;
            struct worker *w = NULL;
            for (size_t i = 0; i < c->nworkers && !w; i++) {
                struct worker *x = c->workers[i];
                if (x->state == WORKER_IDLE && !x->draining &&
                    (pass == 1 || strcmp(x->name, j->rank_names[r]) == 0))
                    w = x;
            }
            if (!w)
                continue;
            char at[64];
            job_at(j, at, sizeof at);
            j->ranks[r] = w;
            snprintf(j->rank_ids[r], COORD_ID_LEN, "%s", w->id);
            snprintf(j->rank_names[r], SPEC_NAME_LEN, "%s", w->name);
            coord_worker_assign(c, w, j, (uint32_t)r);
            coord_event(c, j, "handover", w->id, "rank %d handed over to %s (%s)%s", r, w->id,
                        w->name, at);
            took++;
        }
    for (int r = 0; r < j->workers; r++)
        if (!j->ranks[r])
            return took;
    char ids[COORD_ID_LEN * 8 + 64], reason[COORD_REASON_LEN];
    coord_job_worker_ids(j, ids, sizeof ids);
    snprintf(reason, sizeof reason, "recovered: every rank has a worker again: %.180s", ids);
    jobs__change(c, j, JOB_RUNNING, "state", "", reason);
    return took;
}

void coord_jobs_check_recovery(struct coord *c, uint64_t now)
{
    for (size_t i = 0; i < c->njobs; i++) {
        struct job *j = c->jobs[i];
        if (j->end_pending || !j->spec)
            continue;
        if (j->state == JOB_RUNNING && j->ps) {
            /* A loss whose RECOVERING could not be stored: again. */
            for (int r = 0; r < j->workers; r++)
                if (!j->ranks[r]) {
                    job_to_recovering(c, j, "", "a rank has no worker");
                    break;
                }
            continue;
        }
        if (j->state != JOB_RECOVERING)
            continue;
        c->sched_dirty |= !store_writable(c->store); /* a hand-over to store again */
        if (now < j->recover_until)
            continue;
        char missing[128] = "";
        size_t n = 0;
        for (int r = 0; r < j->workers && n < sizeof missing - 12; r++)
            if (!j->ranks[r])
                n += (size_t)snprintf(missing + n, sizeof missing - n, "%s%d", n ? "," : "", r);
        char reason[COORD_REASON_LEN];
        snprintf(reason, sizeof reason,
                 "no worker took rank %s within %d s; re-queued to resume from its last "
                 "checkpoint",
                 missing, j->spec ? j->spec->recover_timeout_s : 0);
        coord_job_end_later(c, j, JOB_QUEUED, reason);
    }
}

void coord_job_refused(struct coord *c, struct worker *w, const char *reason)
{
    struct job *j = w->job;
    if (!j)
        return;
    char why[COORD_REASON_LEN];
    const char *r = reason && *reason ? reason : "no reason given";
    snprintf(why, sizeof why, "worker %s (%s) refused rank %" PRIu32 ": %.*s", w->id, w->name,
             w->rank, (int)sat_utf8_cut(r, 120), r);
    coord_job_end_later(c, j, JOB_FAILED, why);
}

