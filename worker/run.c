/* run.c - the run_ctl plumbing between the session and the runner thread
 * (see run.h). */
#include "run.h"

#include <errno.h>
#include <time.h>

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
