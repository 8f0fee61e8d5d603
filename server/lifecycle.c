/* lifecycle.c - the coordinator's life: start-up and shutdown, the one
 * periodic timer, and the deferred phase.
 *
 * The periodic timer (every lease_ms / 10, at least 50 ms) probes a store
 * that refused a write (health is NOT_SERVING until a write works), expires leases
 * (what a lost worker means for its job is jobs.c's), re-queues recovering
 * jobs whose lost rank found no worker in time, expires parked PS calls
 * and ends the scheduling hold after a restart.
 *
 * The deferred phase is a uv_prepare handle: libuv runs it once per loop
 * iteration, after the timers and the I/O callbacks of the previous
 * iteration and before the loop waits again (redis' beforeSleep). Handlers
 * and callbacks only mark what they decided (a job to end, "something
 * changed, schedule"); here the marked jobs are ended (their workers
 * released, their state stored, their parameter servers freed) and the
 * scheduler runs once. So no callback frees what is on its own stack, and
 * starting a job never re-enters the scheduler.
 */
#include "lifecycle.h"
#include "events.h"
#include "jobs.h"
#include "ps/ps.h"
#include "workers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../common/util/log.h"
#include "../common/util/xalloc.h"

#define SETTLE_ROUNDS 8 /* ends and schedules per phase; the rest waits one iteration */

static void on_tick(uv_timer_t *t)
{
    struct coord *c = t->data;
    uint64_t now = uv_now(c->loop);
    ps_tick(c);
    if (c->holding && now >= c->hold_until)
        c->sched_dirty = true; /* the restart hold is over */
    for (size_t i = 0; i < c->nworkers; i++) {
        struct worker *w = c->workers[i];
        if (!coord_worker_expired(c, w, now))
            continue;
        char why[COORD_REASON_LEN];
        snprintf(why, sizeof why, "no heartbeat for %" PRIu64 " ms (lease %u ms)",
                 now - w->last_seen_mono, c->lease_ms);
        coord_job_lose_worker(c, w, WORKER_LOST, why);
    }
    if (!store_writable(c->store) && store_probe(c->store) == 0)
        c->sched_dirty = true; /* writes work again: marked ends and starts go on */
    coord_jobs_check_recovery(c, now);
    coord_workers_prune(c);
}

/* Carries out the marked ends, then schedules once; a start that fails
 * marks another end, taken in the next round. */
static void on_deferred(uv_prepare_t *h)
{
    struct coord *c = h->data;
    for (int round = 0; round < SETTLE_ROUNDS && !c->stopping; round++) {
        if ((c->nend_pending == 0 || !store_writable(c->store)) && !c->sched_dirty)
            return;
        /* While the store refuses writes, marked ends wait (the timer
         * probes it): an end is shown only once it is stored. */
        for (size_t i = 0; i < c->njobs && c->nend_pending && store_writable(c->store); i++) {
            struct job *j = c->jobs[i];
            if (j->end_pending)
                coord_job_end(c, j, j->end_state, j->end_reason);
        }
        if (c->sched_dirty) {
            c->sched_dirty = false;
            coord_schedule(c);
        }
    }
}

int coord_init(struct coord *c, uv_loop_t *loop, const struct coord_opts *o, char err[SAT_ERR_LEN])
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->lease_ms = o->lease_ms;
    snprintf(c->state_dir, sizeof c->state_dir, "%s", o->state_dir);
    c->max_msg = o->max_msg ? o->max_msg : RPC_DEFAULT_MAX_MSG;
    c->shard_floats = o->shard_floats;
    c->next_job_seq = 1;
    c->stats.start_ms = coord_now_ms();
    int rc = coord_paths_init(&c->paths, o->data_roots, o->ndata_roots, o->import_dir,
                              o->state_dir, err);
    if (rc == 0)
        rc = store_open(&c->store, o->state_dir, err);
    if (rc != 0) {
        coord_paths_close(&c->paths);
        return rc;
    }
    rc = coord_jobs_load(c, err);
    if (rc != 0) {
        coord_close(c);
        return rc;
    }
    c->next_worker_seq = store_worker_max_seq(c->store) + 1;
    int nold = 0;
    if (store_workers_mark_lost(c->store, WORKER_LOST, WORKER_GONE, "coordinator restarted",
                                coord_now_ms(), &nold) != 0)
        log_warn("store: could not mark old workers lost");
    if (nold > 0) {
        /* Gang decisions taken while the pool is half back would start
         * small jobs on the first worker to return and starve big ones. */
        c->holding = true;
        c->hold_until = uv_now(loop) + c->lease_ms;
        log_info("scheduler: %d worker(s) held leases before the restart; scheduling waits %u ms "
                 "for them to re-register",
                 nold, c->lease_ms);
    }
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    unsigned every = c->lease_ms / 10;
    if (every < 50)
        every = 50;
    uv_timer_start(&c->tick, on_tick, every, every);
    uv_prepare_init(loop, &c->deferred);
    c->deferred.data = c;
    uv_prepare_start(&c->deferred, on_deferred);
    c->sched_dirty = true;
    return 0;
}

void coord_stop(struct coord *c)
{
    c->stopping = true;
    coord_watch_end_all(c);
    ps_stop_all(c);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_prepare_stop(&c->deferred);
    uv_close((uv_handle_t *)&c->deferred, NULL);
}

void coord_close(struct coord *c)
{
    coord_jobs_free(c);
    for (size_t i = 0; i < c->nworkers; i++)
        sat_free(c->workers[i]);
    sat_free(c->workers);
    store_close(c->store);
    coord_paths_close(&c->paths);
    c->store = NULL;
    c->workers = NULL;
    c->nworkers = 0;
}
