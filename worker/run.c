/* run.c - worker_run_assignment: the trainer's hook (see run.h), and the
 * run_ctl plumbing between the session and the runner thread.
 *
 * An assignment is trained by worker_train (train_loop.c). When training
 * ends by itself (all steps done, or saturnd says the job is over) the
 * function returns, the session reaps the runner and keeps the lease: the
 * worker is idle again once saturnd has ended the job. */
#include "run.h"

#include <errno.h>
#include <time.h>

#include "../common/util/log.h"

int run_ctl_init(struct run_ctl *ctl)
{
    ctl->stop = false;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return SAT_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&ctl->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return SAT_ENOMEM;
    if (pthread_mutex_init(&ctl->lock, NULL) != 0) {
        pthread_cond_destroy(&ctl->cond);
        return SAT_ENOMEM;
    }
    return 0;
}

void run_ctl_destroy(struct run_ctl *ctl)
{
    pthread_cond_destroy(&ctl->cond);
    pthread_mutex_destroy(&ctl->lock);
}

void run_ctl_set_stop(struct run_ctl *ctl, bool stop)
{
    pthread_mutex_lock(&ctl->lock);
    ctl->stop = stop;
    pthread_cond_broadcast(&ctl->cond);
    pthread_mutex_unlock(&ctl->lock);
}

bool run_ctl_stopped(struct run_ctl *ctl)
{
    pthread_mutex_lock(&ctl->lock);
    bool s = ctl->stop;
    pthread_mutex_unlock(&ctl->lock);
    return s;
}

bool run_ctl_wait(struct run_ctl *ctl, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ctl->lock);
    while (!ctl->stop)
        if (pthread_cond_timedwait(&ctl->cond, &ctl->lock, &until) == ETIMEDOUT)
            break;
    bool s = ctl->stop;
    pthread_mutex_unlock(&ctl->lock);
    return s;
}

int worker_run_assignment(struct rpc_client *rpc, const struct worker_assignment *a,
                          struct run_ctl *ctl, char err[SAT_ERR_LEN])
{
    log_info("run: training %s rank %u/%u (attempt %u)", a->job_id, a->rank, a->world_size,
             a->attempt);
    int rc = worker_train(rpc, a, ctl, err);
    log_info("run: %s rank %u %s", a->job_id, a->rank,
             rc != 0 ? "failed" : run_ctl_stopped(ctl) ? "stopped" : "done");
    return rc;
}
