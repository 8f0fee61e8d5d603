/* test_sched.c - saturnd's job lifecycle without gRPC (saturnd_core): the
 * gang scheduler (priority, then submission order; a blocked job holds back
 * the ones behind it), a lost worker's rank handed to another worker (the
 * job goes running -> recovering -> running and keeps its attempt), the
 * recovery timeout re-queueing the job, a cancel, and the deferred end
 * mark. A real SQLite store in a temporary dir and a real libuv loop; the
 * parameter servers set up in the loop's thread pool are torn down at the
 * end.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs.h"
#include "lifecycle.h"
#include "workers.h"

#include "../common/util/log.h"

static struct worker *reg(struct coord *c, const char *name)
{
    struct worker *w = NULL;
    char err[SAT_ERR_LEN];
    int rc = coord_worker_register(c, name, 1, "test", "ipv4:127.0.0.1:1", &w, err);
    CHECK_EQ_INT(rc, 0);
    return w;
}

static struct job *submit(struct coord *c, int workers, int priority, const char *extra)
{
    char spec[512], err[SAT_ERR_LEN];
    snprintf(spec, sizeof spec,
             "{\"model\": \"mlp\", \"dataset\": \"synthetic\", \"workers\": %d, \"priority\": %d, "
             "\"batch_size\": 64, \"train_limit\": 512, \"test_limit\": 64, \"epochs\": 1000%s}",
             workers, priority, extra);
    struct job *j = NULL;
    char *canon = NULL;
    int rc = coord_job_submit(c, spec, false, &j, &canon, err);
    if (rc != 0)
        fprintf(stderr, "submit: %s\n", err);
    CHECK_EQ_INT(rc, 0);
    free(canon);
    return j;
}

static int nstate(const struct coord *c, enum worker_state st)
{
    int n = 0;
    for (size_t i = 0; i < c->nworkers; i++)
        n += c->workers[i]->state == st;
    return n;
}

int main(void)
{
    sat_log_set_level(SAT_LOG_OFF);
    char dir[] = "/tmp/saturn-sched.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct coord c;
    struct coord_opts o = {.state_dir = dir, .lease_ms = 5000};
    char err[SAT_ERR_LEN];
    CHECK_EQ_INT(coord_init(&c, &loop, &o, err), 0);

    struct worker *w1 = reg(&c, "one"), *w2 = reg(&c, "two"), *w3 = reg(&c, "three");
    struct job *a = submit(&c, 2, 0, "");
    struct job *b = submit(&c, 2, 0, "");
    struct job *hi = submit(&c, 1, 5, "");
    CHECK(a && b && hi);
    coord_schedule(&c);
    /* Priority first: hi takes the longest-registered worker, a the next two. */
    CHECK_EQ_INT(hi->state, JOB_RUNNING);
    CHECK(hi->ranks[0] == w1);
    CHECK_EQ_INT(a->state, JOB_RUNNING);
    CHECK(a->ranks[0] == w2 && a->ranks[1] == w3);
    CHECK_EQ_INT(b->state, JOB_QUEUED);
    CHECK(strstr(b->reason, "needs 2 workers, 0 free") != NULL);
    CHECK_EQ_INT(nstate(&c, WORKER_ASSIGNED), 3);
    CHECK_EQ_INT(a->attempt, 1);

    /* a's rank 1 loses its worker: recovering, not failed, the other rank
     * keeps its worker, and nothing else starts on the freed capacity. */
    coord_job_lose_worker(&c, w3, WORKER_LOST, "no heartbeat (test)");
    CHECK_EQ_INT(a->state, JOB_RECOVERING);
    CHECK(a->ranks[0] == w2 && a->ranks[1] == NULL);
    CHECK(strstr(a->reason, "lost") != NULL && strstr(a->reason, "rank 1") != NULL);
    CHECK(!a->end_pending);
    coord_schedule(&c);
    CHECK_EQ_INT(a->state, JOB_RECOVERING);
    CHECK_EQ_INT(b->state, JOB_QUEUED);

    /* A worker restarting under the lost one's name takes its rank back,
     * before any queued job; the attempt does not change. */
    struct worker *w4 = reg(&c, "other");
    struct worker *w5 = reg(&c, "three");
    coord_schedule(&c);
    CHECK_EQ_INT(a->state, JOB_RUNNING);
    CHECK(a->ranks[1] == w5);
    CHECK_EQ_INT(w5->rank, 1);
    CHECK_EQ_INT(a->attempt, 1);
    CHECK(strcmp(a->rank_ids[1], w5->id) == 0);
    CHECK_EQ_INT(w4->state, WORKER_IDLE); /* b needs 2: blocked, w4 stays free */
    CHECK_EQ_INT(b->state, JOB_QUEUED);

    /* A rank that finds no worker in time re-queues the job (a new attempt
     * later, from its checkpoint); the end is carried out by the deferred
     * phase, here called by hand as lifecycle.c would. */
    coord_job_lose_worker(&c, w2, WORKER_GONE, "left (test)");
    CHECK_EQ_INT(a->state, JOB_RECOVERING);
    a->recover_until = 0; /* as if recover_timeout_s had passed */
    /* w4 is idle: the scheduler would hand the rank over; take it away */
    coord_job_lose_worker(&c, w4, WORKER_LOST, "gone too (test)");
    coord_jobs_check_recovery(&c, uv_now(&loop) + 1);
    CHECK(a->end_pending);
    CHECK_EQ_INT(a->end_state, JOB_QUEUED);
    CHECK_EQ_INT(coord_job_end(&c, a, a->end_state, a->end_reason), 0);
    CHECK_EQ_INT(a->state, JOB_QUEUED);
    CHECK(!a->end_pending);
    CHECK_EQ_INT(c.nend_pending, 0);
    CHECK(a->ps == NULL);
    CHECK_EQ_INT(w5->state, WORKER_IDLE); /* a's remaining worker was released */

    /* A cancel is immediate; cancelling it again changes nothing. */
    CHECK_EQ_INT(coord_job_cancel(&c, b, "test", err), 0);
    CHECK_EQ_INT(b->state, JOB_CANCELLED);
    CHECK_EQ_INT(coord_job_cancel(&c, b, "again", err), 0);
    CHECK(coord_job_cancel(&c, hi, "", err) == 0 && hi->state == JOB_CANCELLED);
    CHECK_EQ_INT(w1->state, WORKER_IDLE);

    coord_stop(&c);
    uv_run(&loop, UV_RUN_DEFAULT); /* the thread pool's set-ups return, handles close */
    coord_close(&c);
    uv_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
    return check_summary("sched");
}
