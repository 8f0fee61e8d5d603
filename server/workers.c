/* workers.c - the worker registry: registration, heartbeats, leases and
 * assignments.
 *
 * A worker holds a lease by heartbeating (every COORD_HEARTBEAT_MS). The
 * lease clock is the loop's monotonic clock (uv_now). Whether a lease has
 * expired is a query (coord_worker_expired); the periodic timer
 * (lifecycle.c) asks it, and what a lost or leaving worker means for its
 * job is decided in jobs.c, which then takes the worker out of the pool
 * here (coord_worker_drop). A lost worker that heartbeats again gets
 * NOT_FOUND and registers anew under a new id, so an id never comes back
 * from the dead. This file calls nothing above it: no jobs, no PS.
 *
 * Assignments are declarative: the heartbeat response always states what
 * the worker should be running (see saturn.proto, HeartbeatResponse).
 */
#include "workers.h"
#include "events.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../common/util/log.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

size_t coord_workers_idle(const struct coord *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nworkers; i++)
        n += c->workers[i]->state == WORKER_IDLE && !c->workers[i]->draining;
    return n;
}

struct worker *coord_worker_find(struct coord *c, const char *id)
{
    for (size_t i = 0; i < c->nworkers; i++)
        if (strcmp(c->workers[i]->id, id) == 0)
            return c->workers[i];
    return NULL;
}

/* Writes the worker's row; a failure is logged, not fatal (the registry in
 * memory is the truth while the daemon runs; rows are for after). */
static void worker_persist(struct coord *c, const struct worker *w)
{
    struct store_worker row = {
        .seq = w->seq,
        .id = w->id,
        .name = w->name,
        .threads = w->threads,
        .version = w->version,
        .peer = w->peer,
        .state = w->state,
        .registered_ms = w->registered_ms,
        .last_seen_ms = w->last_seen_ms,
        .job_id = w->job ? w->job->id : "",
        .reason = w->reason,
    };
    if (store_worker_put(c->store, &row) != 0)
        log_error("workers: %s: state %s not persisted", w->id, coord_worker_state_name(w->state));
}

void coord_workers_prune(struct coord *c)
{
    size_t dead = c->nworkers - c->nlive;
    if (dead <= COORD_MAX_DEAD_KEPT)
        return;
    size_t drop = dead - COORD_MAX_DEAD_KEPT, o = 0;
    for (size_t i = 0; i < c->nworkers; i++) {
        struct worker *w = c->workers[i];
        if (drop && !coord_worker_live(w->state)) {
            sat_free(w);
            drop--;
            continue;
        }
        c->workers[o++] = w;
    }
    c->nworkers = o;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SPEC_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

int coord_worker_register(struct coord *c, const char *name, uint32_t threads, const char *version,
                          const char *peer, struct worker **out, char err[SAT_ERR_LEN])
{
    *out = NULL;
    if (!name_ok(name))
        return sat_errf(err, SAT_EINVAL,
                        "field \"name\": must be 1..%d characters of [A-Za-z0-9._-]",
                        SPEC_NAME_LEN - 1);
    if (threads < 1 || threads > 1024)
        return sat_errf(err, SAT_EINVAL, "field \"threads\": %" PRIu32 " is out of range (1..1024)",
                        threads);
    if (strlen(version) >= COORD_VERSION_LEN)
        return sat_errf(err, SAT_EINVAL, "field \"version\": longer than %d bytes",
                        COORD_VERSION_LEN - 1);
    if (c->nlive >= COORD_MAX_WORKERS)
        return sat_errf(err, SAT_ETOOBIG, "too many workers (%d registered)", COORD_MAX_WORKERS);
    if (c->nworkers == c->cap_workers) {
        size_t cap = c->cap_workers ? c->cap_workers * 2 : 16;
        struct worker **n = sat_realloc(c->workers, cap * sizeof *n);
        if (!n)
            return sat_errf(err, SAT_ENOMEM, "out of memory");
        c->workers = n;
        c->cap_workers = cap;
    }
    struct worker *w = sat_calloc(1, sizeof *w);
    if (!w)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    w->seq = c->next_worker_seq++;
    snprintf(w->id, sizeof w->id, "w-%" PRId64, w->seq);
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->version, sizeof w->version, "%s", version);
    snprintf(w->peer, sizeof w->peer, "%s", peer);
    w->threads = threads;
    w->state = WORKER_IDLE;
    w->registered_ms = w->last_seen_ms = coord_now_ms();
    w->last_seen_mono = uv_now(c->loop);
    c->workers[c->nworkers++] = w;
    c->nlive++;
    worker_persist(c, w);
    log_info("worker %s: registered (name %s, %" PRIu32 " threads, version %s, peer %s)", w->id,
             w->name, w->threads, w->version, w->peer);
    coord_workers_prune(c);
    *out = w;
    return 0;
}

void coord_worker_assign(struct coord *c, struct worker *w, struct job *j, uint32_t rank)
{
    w->job = j;
    w->rank = rank;
    w->state = WORKER_ASSIGNED;
    worker_persist(c, w);
    log_info("worker %s: assigned %s rank %" PRIu32 "/%d (attempt %u)", w->id, j->id, rank,
             j->workers, j->attempt);
}

void coord_worker_release(struct coord *c, struct worker *w)
{
    w->job = NULL;
    w->rank = 0;
    if (coord_worker_live(w->state)) {
        w->state = WORKER_IDLE;
        worker_persist(c, w);
    }
}

/* Marks an ASSIGNED worker BUSY; when the whole gang is busy the job's
 * event stream says so. */
static void worker_acked(struct coord *c, struct worker *w)
{
    struct job *j = w->job;
    w->state = WORKER_BUSY;
    worker_persist(c, w);
    coord_event(c, j, "acked", w->id, "%s (%s) acknowledged rank %" PRIu32 " of %d", w->id, w->name,
                w->rank, j->workers);
    for (int i = 0; i < j->workers; i++)
        if (!j->ranks[i] || j->ranks[i]->state != WORKER_BUSY)
            return;
    coord_event(c, j, "started", "", "all %d worker%s acknowledged (attempt %u)", j->workers,
                j->workers == 1 ? "" : "s", j->attempt);
}

int coord_worker_heartbeat(struct coord *c, struct worker *w, bool running, const char *job_id,
                           uint32_t attempt)
{
    w->last_seen_mono = uv_now(c->loop);
    w->last_seen_ms = coord_now_ms();
    /* The acknowledgement may have been lost on the way: a worker that
     * reports running its assignment has evidently accepted it. */
    if (w->state == WORKER_ASSIGNED && running && w->job && strcmp(w->job->id, job_id) == 0 &&
        w->job->attempt == attempt)
        worker_acked(c, w);
    return 0;
}

bool coord_worker_ack(struct coord *c, struct worker *w, const char *job_id, uint32_t attempt,
                      bool accepted)
{
    w->last_seen_mono = uv_now(c->loop);
    w->last_seen_ms = coord_now_ms();
    struct job *j = w->job;
    if (!j || strcmp(j->id, job_id) != 0 || j->attempt != attempt)
        return false; /* revoked meanwhile: the next heartbeat tells the worker */
    if (accepted && w->state == WORKER_ASSIGNED)
        worker_acked(c, w);
    return true;
}

struct job *coord_worker_drop(struct coord *c, struct worker *w, enum worker_state st,
                              const char *why)
{
    struct job *j = w->job;
    w->state = st;
    snprintf(w->reason, sizeof w->reason, "%s", why);
    sat_utf8_trim(w->reason);
    c->nlive--;
    w->job = NULL;
    worker_persist(c, w);
    log_warn("worker %s (%s): %s: %s", w->id, w->name, coord_worker_state_name(st), why);
    return j;
}

bool coord_worker_expired(const struct coord *c, const struct worker *w, uint64_t now)
{
    return coord_worker_live(w->state) && now - w->last_seen_mono >= c->lease_ms;
}
