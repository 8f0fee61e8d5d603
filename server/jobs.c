/* jobs.c - the job table, job state changes and the gang scheduler.
 *
 * Every state change is written to the store (job row + history entry +
 * event, in one transaction) before it is published to watchers and before
 * the RPC that caused it is answered. If the write fails the change still
 * happens in memory (a lost worker is lost whatever the disk says); the
 * error is logged and the next write of that job rewrites its whole row.
 *
 * Scheduling (coord_schedule): queued jobs are taken in priority order
 * (higher first), then submission order. A job starts only when `workers`
 * workers are free, all at once (gang start), on the longest-registered free
 * workers. A job that could run on the registered pool but must wait for
 * busy workers holds back every job behind it, so big jobs are not starved
 * by small ones. A job that needs more workers than are registered at all
 * blocks nobody and waits, with the reason "queued: needs N workers, M
 * free (only K registered)".
 *
 * Restart: jobs that were running when the previous saturnd died are
 * re-queued ("coordinator restarted while running"); issue 4 will resume
 * them from their last checkpoint. After COORD_MAX_ATTEMPTS starts a job
 * is failed instead, so a job that crashes the daemon cannot loop forever.
 * If workers held leases when the daemon died, scheduling waits one lease
 * time after start-up so that they re-register before any gang decision.
 */
#include "coord.h"
#include "ps/ps.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/util/log.h"
#include "../common/util/xalloc.h"

int64_t coord_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *coord_job_state_name(enum job_state s)
{
    switch (s) {
    case JOB_QUEUED:
        return "queued";
    case JOB_RUNNING:
        return "running";
    case JOB_SUCCEEDED:
        return "succeeded";
    case JOB_FAILED:
        return "failed";
    case JOB_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

bool coord_job_terminal(enum job_state s)
{
    return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

void coord_job_worker_ids(const struct job *j, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < j->nranks && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", j->rank_ids[i]);
}

/* ==== the table ============================================================ */

static void job_free(struct job *j)
{
    if (!j)
        return;
    job_progress_clear(&j->prog);
    sat_free(j->spec_json);
    sat_free(j->ranks);
    sat_free(j->rank_ids);
    sat_free(j);
}

/* Fills the fields that come from the spec. A spec that no longer parses
 * (written by another version) leaves them empty; the job is kept. */
static void job_fill_from_spec(struct job *j)
{
    struct job_spec spec;
    char err[SAT_ERR_LEN];
    if (jobspec_parse(&spec, j->spec_json, strlen(j->spec_json), err) != 0) {
        log_warn("jobs: %s: stored spec no longer parses: %s", j->id, err);
        return;
    }
    snprintf(j->name, sizeof j->name, "%s", spec.name);
    snprintf(j->model, sizeof j->model, "%s", spec.model);
    snprintf(j->dataset, sizeof j->dataset, "%s", spec.dataset);
    jobspec_consistency_str(&spec, j->consistency, sizeof j->consistency);
}

static struct job *job_new(int64_t seq, const char *spec_json, int workers)
{
    struct job *j = sat_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->seq = seq;
    job_progress_clear(&j->prog);
    snprintf(j->id, sizeof j->id, "job-%" PRId64, seq);
    j->workers = workers;
    j->spec_json = sat_strdup(spec_json);
    j->ranks = sat_calloc((size_t)workers, sizeof *j->ranks);
    j->rank_ids = sat_calloc((size_t)workers, sizeof *j->rank_ids);
    if (!j->spec_json || !j->ranks || !j->rank_ids) {
        job_free(j);
        return NULL;
    }
    return j;
}

static int jobs_append(struct coord *c, struct job *j)
{
    if (c->njobs == c->cap_jobs) {
        size_t cap = c->cap_jobs ? c->cap_jobs * 2 : 64;
        struct job **n = sat_realloc(c->jobs, cap * sizeof *n);
        if (!n)
            return SAT_ENOMEM;
        c->jobs = n;
        c->cap_jobs = cap;
    }
    c->jobs[c->njobs++] = j;
    if (!coord_job_terminal(j->state))
        c->nactive++;
    return 0;
}

struct job *coord_job_find(struct coord *c, const char *id)
{
    /* Ids are "job-<seq>" and the table is sorted by seq. */
    if (strncmp(id, "job-", 4) != 0)
        return NULL;
    char *end;
    long long seq = strtoll(id + 4, &end, 10);
    if (*end || end == id + 4 || seq <= 0)
        return NULL;
    size_t lo = 0, hi = c->njobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->jobs[mid]->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->njobs && c->jobs[lo]->seq == seq && strcmp(c->jobs[lo]->id, id) == 0)
        return c->jobs[lo];
    return NULL;
}

/* ==== state changes ======================================================== */

/* Moves j to state `to` with a reason, persisting row, history and event in
 * one transaction, then publishes the event. The caller has already set
 * the other fields that change with it (times, attempt, ranks). */
static int job_change(struct coord *c, struct job *j, enum job_state to, const char *kind,
                      const char *worker_id, const char *reason)
{
    enum job_state from = j->state;
    if (coord_job_terminal(from) != coord_job_terminal(to)) {
        if (coord_job_terminal(to))
            c->nactive--;
        else
            c->nactive++;
    }
    j->state = to;
    snprintf(j->reason, sizeof j->reason, "%s", reason);
    int64_t now = coord_now_ms();
    char ids[COORD_ID_LEN * 8 + 64];
    coord_job_worker_ids(j, ids, sizeof ids);
    struct store_job row = {
        .id = j->id,
        .state = to,
        .start_ms = j->start_ms,
        .end_ms = j->end_ms,
        .worker_ids = ids,
        .reason = j->reason,
        .attempt = j->attempt,
    };
    struct store_change ch = {.state = to, .time_ms = now, .reason = j->reason};
    struct store_event ev = {
        .job_id = j->id,
        .time_ms = now,
        .kind = kind,
        .state = to,
        .message = j->reason,
        .worker_id = worker_id,
    };
    int rc = store_begin(c->store);
    if (rc == 0)
        rc = store_job_update(c->store, &row);
    if (rc == 0)
        rc = store_history_add(c->store, j->id, &ch);
    if (rc == 0)
        rc = store_event_add(c->store, &ev);
    if (rc == 0)
        rc = store_commit(c->store);
    else
        store_rollback(c->store);
    if (rc != 0)
        log_error("jobs: %s: %s -> %s not persisted: %s", j->id, coord_job_state_name(from),
                  coord_job_state_name(to), sat_strerror(rc));
    log_info("job %s: %s -> %s: %s", j->id, coord_job_state_name(from), coord_job_state_name(to),
             j->reason);
    coord_event_publish(c, j, &ev);
    return rc;
}

/* Takes every worker of a running job back. */
static void job_release_workers(struct coord *c, struct job *j)
{
    for (int i = 0; i < j->workers; i++) {
        struct worker *w = j->ranks[i];
        j->ranks[i] = NULL;
        if (w && w->job == j)
            coord_worker_release(c, w);
    }
}

int coord_job_end(struct coord *c, struct job *j, enum job_state st, const char *reason)
{
    if (coord_job_terminal(j->state))
        return SAT_ESTATE;
    job_release_workers(c, j);
    j->end_ms = coord_now_ms();
    if (j->ps && j->ps->ready)
        ps_progress_refresh(j->ps, true);
    int rc = job_change(c, j, st, "state", "", reason);
    /* After the change, so that parked calls are told the final state. */
    ps_job_stop(c, j);
    coord_progress_save(c, j);
    coord_schedule(c);
    return rc;
}

int coord_job_cancel(struct coord *c, struct job *j, const char *why, char err[SAT_ERR_LEN])
{
    if (j->state == JOB_CANCELLED)
        return 0;
    if (coord_job_terminal(j->state))
        return sat_errf(err, SAT_ESTATE, "job %s already %s", j->id,
                        coord_job_state_name(j->state));
    char reason[COORD_REASON_LEN];
    snprintf(reason, sizeof reason, "cancelled%s%.200s", why && *why ? ": " : " by a client",
             why ? why : "");
    int rc = coord_job_end(c, j, JOB_CANCELLED, reason);
    if (rc != 0)
        return sat_errf(err, rc, "cancel of %s not persisted", j->id);
    return 0;
}

int coord_job_submit(struct coord *c, const char *spec_json, bool dry_run, struct job **out,
                     char **canon, char err[SAT_ERR_LEN])
{
    *out = NULL;
    *canon = NULL;
    struct job_spec spec;
    int rc = jobspec_parse(&spec, spec_json, strlen(spec_json), err);
    if (rc != 0)
        return rc;
    char *json = jobspec_to_json(&spec);
    if (!json)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    if (dry_run) {
        *canon = json;
        return 0;
    }
    if (c->nactive >= COORD_MAX_ACTIVE_JOBS) {
        sat_free(json);
        return sat_errf(err, SAT_ETOOBIG, "too many active jobs (%d queued or running)",
                        COORD_MAX_ACTIVE_JOBS);
    }
    if (spec.workers < 1 || spec.workers > COORD_MAX_GANG) {
        sat_free(json);
        return sat_errf(err, SAT_EINVAL, "field \"workers\": %d is out of range (1..%d)",
                        spec.workers, COORD_MAX_GANG);
    }
    if (spec.batch_size % spec.workers != 0) {
        sat_free(json);
        return sat_errf(err, SAT_EINVAL,
                        "field \"batch_size\": %d is the global batch and must be divisible by "
                        "\"workers\" (%d)",
                        spec.batch_size, spec.workers);
    }
    struct job *j = job_new(c->next_job_seq, json, spec.workers);
    if (!j) {
        sat_free(json);
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    }
    j->state = JOB_QUEUED;
    j->priority = spec.priority;
    j->submit_ms = coord_now_ms();
    snprintf(j->reason, sizeof j->reason, "submitted");
    job_fill_from_spec(j);

    struct store_job row = {
        .seq = j->seq,
        .id = j->id,
        .name = j->name,
        .spec_json = j->spec_json,
        .state = j->state,
        .priority = j->priority,
        .workers = j->workers,
        .submit_ms = j->submit_ms,
        .worker_ids = "",
        .reason = j->reason,
    };
    struct store_change ch = {.state = JOB_QUEUED, .time_ms = j->submit_ms, .reason = "submitted"};
    char msg[COORD_REASON_LEN];
    snprintf(msg, sizeof msg, "submitted: %s on %s, %d worker%s, priority %d, %s", j->model,
             j->dataset, j->workers, j->workers == 1 ? "" : "s", j->priority, j->consistency);
    struct store_event ev = {.job_id = j->id,
                             .time_ms = j->submit_ms,
                             .kind = "submitted",
                             .state = JOB_QUEUED,
                             .message = msg,
                             .worker_id = ""};
    rc = store_begin(c->store);
    if (rc == 0)
        rc = store_job_insert(c->store, &row);
    if (rc == 0)
        rc = store_history_add(c->store, j->id, &ch);
    if (rc == 0)
        rc = store_event_add(c->store, &ev);
    if (rc == 0)
        rc = store_commit(c->store);
    else
        store_rollback(c->store);
    if (rc == 0)
        rc = jobs_append(c, j);
    if (rc != 0) {
        job_free(j);
        sat_free(json);
        return sat_errf(err, rc == SAT_ENOMEM ? SAT_ENOMEM : SAT_EIO,
                        "the job could not be stored (see saturnd's log)");
    }
    c->next_job_seq++;
    log_info("job %s: submitted (%s, %s, %d worker%s, priority %d)", j->id, j->model, j->dataset,
             j->workers, j->workers == 1 ? "" : "s", j->priority);
    coord_event_publish(c, j, &ev);
    *out = j;
    *canon = json;
    return 0;
}

/* ==== the gang scheduler =================================================== */

static int cmp_queue(const void *a, const void *b)
{
    const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void job_start(struct coord *c, struct job *j)
{
    int r = 0;
    for (size_t i = 0; i < c->nworkers && r < j->workers; i++) {
        struct worker *w = c->workers[i];
        if (w->state != WORKER_IDLE)
            continue;
        j->ranks[r] = w;
        snprintf(j->rank_ids[r], COORD_ID_LEN, "%s", w->id);
        r++;
    }
    j->nranks = r;
    j->attempt++;
    j->start_ms = coord_now_ms();
    for (int i = 0; i < r; i++)
        coord_worker_assign(c, j->ranks[i], j, (uint32_t)i);
    char ids[COORD_ID_LEN * 8 + 64];
    coord_job_worker_ids(j, ids, sizeof ids);
    char reason[COORD_REASON_LEN];
    snprintf(reason, sizeof reason, "scheduled on %d worker%s: %.180s (attempt %u)", r,
             r == 1 ? "" : "s", ids, j->attempt);
    job_change(c, j, JOB_RUNNING, "state", "", reason);
    char err[SAT_ERR_LEN];
    if (ps_job_start(c, j, err) != 0) {
        char why[COORD_REASON_LEN];
        snprintf(why, sizeof why, "cannot start training: %.200s", err);
        coord_job_end(c, j, JOB_FAILED, why);
    }
}

void coord_schedule(struct coord *c)
{
    if (c->stopping)
        return;
    if (c->holding && uv_now(c->loop) < c->hold_until) {
        for (size_t i = 0; i < c->njobs; i++)
            if (c->jobs[i]->state == JOB_QUEUED)
                snprintf(c->jobs[i]->reason, sizeof c->jobs[i]->reason,
                         "queued: coordinator restarted; waiting %u ms for workers to re-register",
                         c->lease_ms);
        return;
    }
    c->holding = false;
    size_t nq = 0;
    for (size_t i = 0; i < c->njobs; i++)
        nq += c->jobs[i]->state == JOB_QUEUED;
    if (nq == 0)
        return;
    struct job **q = sat_malloc(nq * sizeof *q);
    if (!q) {
        log_error("scheduler: out of memory; will retry on the next change");
        return;
    }
    nq = 0;
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state == JOB_QUEUED)
            q[nq++] = c->jobs[i];
    qsort(q, nq, sizeof *q, cmp_queue);

    size_t nfree = coord_workers_free(c);
    const struct job *blocker = NULL;
    for (size_t i = 0; i < nq; i++) {
        struct job *j = q[i];
        /* A job that could not start training is ended from job_start,
         * which schedules again: skip what that pass already decided. */
        if (j->state != JOB_QUEUED)
            continue;
        if (blocker) {
            snprintf(j->reason, sizeof j->reason, "queued: waiting behind %s (priority %d)",
                     blocker->id, blocker->priority);
            continue;
        }
        if ((size_t)j->workers <= nfree) {
            job_start(c, j);
            nfree = coord_workers_free(c);
            continue;
        }
        if ((size_t)j->workers <= c->nlive) {
            snprintf(j->reason, sizeof j->reason, "queued: needs %d workers, %zu free", j->workers,
                     nfree);
            blocker = j;
        } else {
            snprintf(j->reason, sizeof j->reason,
                     "queued: needs %d workers, %zu free (only %zu registered)", j->workers, nfree,
                     c->nlive);
        }
    }
    sat_free(q);
}

/* ==== start-up and shutdown ================================================ */

static int load_job(void *arg, const struct store_job *r)
{
    struct coord *c = arg;
    if (r->workers < 1 || r->workers > COORD_MAX_GANG) {
        log_warn("jobs: %s: bad gang size %d in the store; skipped", r->id, r->workers);
        return 0;
    }
    struct job *j = job_new(r->seq, r->spec_json, r->workers);
    if (!j)
        return SAT_ENOMEM;
    snprintf(j->id, sizeof j->id, "%s", r->id);
    j->state = (enum job_state)r->state;
    j->priority = r->priority;
    j->submit_ms = r->submit_ms;
    j->start_ms = r->start_ms;
    j->end_ms = r->end_ms;
    j->attempt = r->attempt;
    snprintf(j->reason, sizeof j->reason, "%s", r->reason);
    /* Worker ids of the last run, for status. */
    const char *p = r->worker_ids;
    while (*p && j->nranks < j->workers) {
        size_t n = strcspn(p, ",");
        snprintf(j->rank_ids[j->nranks++], COORD_ID_LEN, "%.*s", (int)n, p);
        p += n + (p[n] == ',');
    }
    job_fill_from_spec(j);
    if (j->state < JOB_QUEUED || j->state > JOB_CANCELLED) {
        log_warn("jobs: %s: unknown state %d in the store; marked failed", j->id, r->state);
        j->state = JOB_FAILED;
    }
    int rc = jobs_append(c, j);
    if (rc != 0) {
        job_free(j);
        return rc;
    }
    if (r->seq >= c->next_job_seq)
        c->next_job_seq = r->seq + 1;
    return 0;
}

/* Jobs that were running when the previous daemon died have no workers
 * now: re-queue them (or fail them after COORD_MAX_ATTEMPTS starts). */
static void recover_running(struct coord *c)
{
    for (size_t i = 0; i < c->njobs; i++) {
        struct job *j = c->jobs[i];
        if (j->state != JOB_RUNNING)
            continue;
        char reason[COORD_REASON_LEN];
        if (j->attempt >= COORD_MAX_ATTEMPTS) {
            snprintf(reason, sizeof reason,
                     "coordinator restarted while the job was running; failed after %u attempts",
                     j->attempt);
            j->end_ms = coord_now_ms();
            job_change(c, j, JOB_FAILED, "state", "", reason);
        } else {
            snprintf(reason, sizeof reason,
                     "coordinator restarted while the job was running (attempt %u); re-queued",
                     j->attempt);
            j->nranks = 0; /* a queued job has no workers; the history keeps them */
            job_change(c, j, JOB_QUEUED, "state", "", reason);
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
    int rc = store_open(&c->store, o->state_dir, err);
    if (rc != 0)
        return rc;
    rc = store_jobs_load(c->store, load_job, c);
    if (rc != 0) {
        coord_close(c);
        return sat_errf(err, rc, "cannot load jobs from the store");
    }
    if (coord_progress_load(c) != 0)
        log_warn("store: could not load the jobs' progress");
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
    recover_running(c);
    size_t nq = 0;
    for (size_t i = 0; i < c->njobs; i++)
        nq += c->jobs[i]->state == JOB_QUEUED;
    log_info("store: %zu job(s) loaded, %zu queued; next job id job-%" PRId64, c->njobs, nq,
             c->next_job_seq);
    coord_leases_start(c);
    return 0;
}

void coord_stop(struct coord *c)
{
    c->stopping = true;
    coord_watch_end_all(c);
    ps_stop_all(c);
    uv_timer_stop(&c->lease_timer);
    uv_close((uv_handle_t *)&c->lease_timer, NULL);
}

void coord_close(struct coord *c)
{
    for (size_t i = 0; i < c->njobs; i++) {
        if (c->jobs[i]->ps)
            ps_job_stop(c, c->jobs[i]);
        job_free(c->jobs[i]);
    }
    sat_free(c->jobs);
    for (size_t i = 0; i < c->nworkers; i++)
        sat_free(c->workers[i]);
    sat_free(c->workers);
    store_close(c->store);
    c->store = NULL;
    c->jobs = NULL;
    c->workers = NULL;
    c->njobs = c->nworkers = 0;
}
