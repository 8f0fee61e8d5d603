/* jobs.c - the job table, job state changes and the gang scheduler.
 *
 * Every state change is written to the store (job row + history entry +
 * event, in one transaction) before it is published to watchers and before
 * the RPC that caused it is answered. If the write fails, nothing changes
 * in memory (jobs__change) and the caller gets SAT_EUNAVAIL: a cancel or a
 * submit is refused, a marked end or a start waits for the store.
 *
 * What a lost worker means for its job (recovery) is in recovery.c.
 *
 * Ends. A client's cancel ends a job at once (the reply tells the truth).
 * Every other end is decided inside some callback (the PS reports the end
 * of training, a worker is lost or refuses its rank, a PS cannot start)
 * and only marked there (coord_job_end_later); lifecycle.c's deferred
 * phase carries the marks out after that callback has returned, frees the
 * parameter servers and runs the scheduler once. So nothing here frees an
 * object whose callback is on the stack, and the scheduler never recurses.
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
 * re-queued ("coordinator restarted while running") and resume from their
 * last checkpoint when they start again. After COORD_MAX_ATTEMPTS starts a job
 * is failed instead, so a job that crashes the daemon cannot loop forever.
 * If workers held leases when the daemon died, scheduling waits one lease
 * time after start-up so that they re-register before any gang decision.
 */
#include "jobs.h"
#include "jobs_int.h"
#include "events.h"
#include "progress.h"
#include "ps/ps.h"
#include "workers.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util/log.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

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
    sat_free(j->spec);
    sat_free(j->spec_json);
    sat_free(j->ranks);
    sat_free(j->rank_ids);
    sat_free(j->rank_names);
    sat_free(j);
}

/* Keeps the parsed spec (the only parse of it in saturnd) and fills the
 * fields that come from it. Returns 0 or SAT_ENOMEM. */
static int job_set_spec(struct job *j, const struct job_spec *spec)
{
    j->spec = sat_malloc(sizeof *j->spec);
    if (!j->spec)
        return SAT_ENOMEM;
    *j->spec = *spec;
    snprintf(j->name, sizeof j->name, "%s", spec->name);
    snprintf(j->model, sizeof j->model, "%s", spec->model);
    snprintf(j->dataset, sizeof j->dataset, "%s", spec->dataset);
    jobspec_consistency_str(spec, j->consistency, sizeof j->consistency);
    return 0;
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
    j->rank_names = sat_calloc((size_t)workers, sizeof *j->rank_names);
    if (!j->spec_json || !j->ranks || !j->rank_ids || !j->rank_names) {
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
int jobs__change(struct coord *c, struct job *j, enum job_state to, const char *kind,
                 const char *worker_id, const char *reason)
{
    enum job_state from = j->state;
    char old_reason[COORD_REASON_LEN];
    memcpy(old_reason, j->reason, sizeof old_reason);
    j->state = to;
    snprintf(j->reason, sizeof j->reason, "%s", reason);
    sat_utf8_trim(j->reason);
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
    if (rc != 0) {
        /* Not stored, so not shown: nothing changes in memory. */
        j->state = from;
        memcpy(j->reason, old_reason, sizeof old_reason);
        log_error("jobs: %s: %s -> %s not stored (%s); nothing changed", j->id,
                  coord_job_state_name(from), coord_job_state_name(to), sat_strerror(rc));
        return SAT_EUNAVAIL;
    }
    if (coord_job_terminal(from) != coord_job_terminal(to)) {
        if (coord_job_terminal(to))
            c->nactive--;
        else
            c->nactive++;
    }
    log_info("job %s: %s -> %s: %s", j->id, coord_job_state_name(from), coord_job_state_name(to),
             j->reason);
    coord_event_publish(c, j, &ev);
    return 0;
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
    char why[COORD_REASON_LEN];
    snprintf(why, sizeof why, "%s", reason);
    if (st == JOB_QUEUED && j->attempt >= COORD_MAX_ATTEMPTS) {
        st = JOB_FAILED;
        snprintf(why, sizeof why, "%.*s; failed after %u attempts",
                 (int)sat_utf8_cut(reason, 180), reason, j->attempt);
    }
    int nranks = j->nranks;
    int64_t end_ms = j->end_ms;
    if (st == JOB_QUEUED)
        j->nranks = 0; /* a queued job has no workers; the history keeps them */
    else
        j->end_ms = coord_now_ms();
    int rc = jobs__change(c, j, st, "state", "", why);
    if (rc != 0) {
        /* Not stored: the job stays as it was (a marked end is retried). */
        j->nranks = nranks;
        j->end_ms = end_ms;
        return rc;
    }
    if (j->end_pending) {
        j->end_pending = false;
        c->nend_pending--;
    }
    job_release_workers(c, j);
    /* After the change, so that parked calls are told the final state;
     * the PS refreshes the progress a last time. */
    ps_job_stop(c, j);
    coord_progress_save(c, j);
    c->sched_dirty = true;
    return 0;
}

void coord_job_end_later(struct coord *c, struct job *j, enum job_state st, const char *reason)
{
    if (coord_job_terminal(j->state) || j->end_pending)
        return;
    j->end_pending = true;
    j->end_state = st;
    snprintf(j->end_reason, sizeof j->end_reason, "%s", reason);
    sat_utf8_trim(j->end_reason);
    c->nend_pending++;
}

/* The PS's end callback (ps_end_cb). */
static void on_ps_end(struct coord *c, struct job *j, enum job_state st, const char *reason)
{
    coord_job_end_later(c, j, st, reason);
}

int coord_job_cancel(struct coord *c, struct job *j, const char *why, char err[SAT_ERR_LEN])
{
    if (j->state == JOB_CANCELLED)
        return 0;
    if (coord_job_terminal(j->state))
        return sat_errf(err, SAT_ESTATE, "job %s already %s", j->id,
                        coord_job_state_name(j->state));
    char reason[COORD_REASON_LEN];
    const char *w = why ? why : "";
    snprintf(reason, sizeof reason, "cancelled%s%.*s", *w ? ": " : " by a client",
             (int)sat_utf8_cut(w, 200), w);
    int rc = coord_job_end(c, j, JOB_CANCELLED, reason);
    if (rc != 0)
        return sat_errf(err, SAT_EUNAVAIL,
                        "the cancellation of %s could not be stored (saturnd's state dir refuses "
                        "writes); the job is unchanged",
                        j->id);
    return 0;
}

int coord_job_submit(struct coord *c, const char *spec_json, bool dry_run, struct job **out,
                     char **canon, char err[SAT_ERR_LEN])
{
    *out = NULL;
    *canon = NULL;
    struct job_spec spec;
    int rc = jobspec_parse(&spec, spec_json, strlen(spec_json), err);
    if (rc == 0)
        rc = coord_paths_check_spec(&c->paths, &spec, err);
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
    if (!j || job_set_spec(j, &spec) != 0) {
        job_free(j);
        sat_free(json);
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    }
    j->state = JOB_QUEUED;
    j->priority = spec.priority;
    j->submit_ms = coord_now_ms();
    snprintf(j->reason, sizeof j->reason, "submitted");

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
        return sat_errf(err, rc == SAT_ENOMEM ? SAT_ENOMEM : SAT_EUNAVAIL,
                        "the job could not be stored (saturnd's state dir refuses writes); "
                        "nothing was submitted");
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

/* Opens what init_from names (paths.c): a job id is that job's final model
 * in the state dir; anything else is a file name in the import dir, opened
 * without following links. *fd is -1 when there is no init_from. */
static int resolve_init(struct coord *c, const struct job *j, int *fd, char err[SAT_ERR_LEN])
{
    const char *from = j->spec ? j->spec->init_from : "";
    *fd = -1;
    if (!from[0])
        return 0;
    if (!coord_paths_is_job_id(from))
        return coord_paths_open_import(&c->paths, from, fd, err);
    struct job *src = coord_job_find(c, from);
    if (!src)
        return sat_errf(err, SAT_ENOENT, "init_from: there is no job %s", from);
    if (src->state != JOB_SUCCEEDED)
        return sat_errf(err, SAT_ESTATE, "init_from: job %s has not succeeded (%s)", src->id,
                        coord_job_state_name(src->state));
    char path[sizeof c->state_dir + 64];
    snprintf(path, sizeof path, "%s/jobs/%s/model.safetensors", c->state_dir, src->id);
    struct stat st;
    *fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0 || fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return sat_errf(err, SAT_ENOENT, "init_from: job %s left no model", src->id);
    }
    return 0;
}

/* Starts j on the first j->workers idle workers. Returns false when the
 * change could not be stored (nothing changed then). */
static bool job_start(struct coord *c, struct job *j)
{
    int nranks = j->nranks;
    char(*ids_before)[COORD_ID_LEN] = sat_malloc((size_t)j->workers * COORD_ID_LEN);
    if (!ids_before)
        return false;
    memcpy(ids_before, j->rank_ids, (size_t)j->workers * COORD_ID_LEN);
    int r = 0;
    for (size_t i = 0; i < c->nworkers && r < j->workers; i++) {
        struct worker *w = c->workers[i];
        if (w->state != WORKER_IDLE || w->draining)
            continue;
        j->ranks[r] = w;
        snprintf(j->rank_ids[r], COORD_ID_LEN, "%s", w->id);
        r++;
    }
    j->nranks = r;
    j->attempt++;
    int64_t start_ms = j->start_ms;
    j->start_ms = coord_now_ms();
    char ids[COORD_ID_LEN * 8 + 64];
    coord_job_worker_ids(j, ids, sizeof ids);
    char reason[COORD_REASON_LEN];
    snprintf(reason, sizeof reason, "scheduled on %d worker%s: %.*s (attempt %u)", r,
             r == 1 ? "" : "s", (int)sat_utf8_cut(ids, 180), ids, j->attempt);
    if (jobs__change(c, j, JOB_RUNNING, "state", "", reason) != 0) {
        /* Not stored: the job stays queued, its workers idle. */
        for (int i = 0; i < r; i++)
            j->ranks[i] = NULL;
        memcpy(j->rank_ids, ids_before, (size_t)j->workers * COORD_ID_LEN);
        sat_free(ids_before);
        j->nranks = nranks;
        j->attempt--;
        j->start_ms = start_ms;
        return false;
    }
    sat_free(ids_before);
    for (int i = 0; i < r; i++) {
        snprintf(j->rank_names[i], SPEC_NAME_LEN, "%s", j->ranks[i]->name);
        coord_worker_assign(c, j->ranks[i], j, (uint32_t)i);
    }
    char err[SAT_ERR_LEN];
    int init_fd;
    if (resolve_init(c, j, &init_fd, err) != 0 ||
        ps_job_start(c, j, init_fd, on_ps_end, err) != 0) {
        char why[COORD_REASON_LEN];
        snprintf(why, sizeof why, "cannot start training: %.*s", (int)sat_utf8_cut(err, 200),
                 err);
        coord_job_end_later(c, j, JOB_FAILED, why);
    }
    return true;
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
    /* Recovering jobs hold their other ranks' workers: they come first. */
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state == JOB_RECOVERING && !c->jobs[i]->end_pending)
            jobs__handover(c, c->jobs[i]);
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

    size_t nfree = coord_workers_idle(c);
    const struct job *blocker = NULL;
    for (size_t i = 0; i < nq; i++) {
        struct job *j = q[i];
        if (blocker) {
            snprintf(j->reason, sizeof j->reason, "queued: waiting behind %s (priority %d)",
                     blocker->id, blocker->priority);
            continue;
        }
        if ((size_t)j->workers <= nfree) {
            if (!job_start(c, j))
                break; /* the store refuses writes: try again later */
            nfree = coord_workers_idle(c);
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
    struct job_spec spec;
    char err[SAT_ERR_LEN];
    if (jobspec_parse(&spec, j->spec_json, strlen(j->spec_json), err) != 0)
        log_warn("jobs: %s: stored spec no longer parses: %s", j->id, err);
    else if (job_set_spec(j, &spec) != 0) {
        job_free(j);
        return SAT_ENOMEM;
    }
    /* Worker ids of the last run, for status. */
    const char *p = r->worker_ids;
    while (*p && j->nranks < j->workers) {
        size_t n = strcspn(p, ",");
        snprintf(j->rank_ids[j->nranks++], COORD_ID_LEN, "%.*s", (int)n, p);
        p += n + (p[n] == ',');
    }
    /* Rows written by older versions may hold invalid UTF-8: repair what
     * replies carry, so that strict clients can decode them. */
    sat_utf8_sanitize(j->reason);
    sat_utf8_sanitize(j->name);
    sat_utf8_sanitize(j->spec_json);
    for (int i = 0; i < j->nranks; i++)
        sat_utf8_sanitize(j->rank_ids[i]);
    if (j->state < JOB_QUEUED || j->state > JOB_RECOVERING) {
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
        if (!coord_job_training(j->state))
            continue;
        char reason[COORD_REASON_LEN];
        if (j->attempt >= COORD_MAX_ATTEMPTS) {
            snprintf(reason, sizeof reason,
                     "coordinator restarted while the job was running; failed after %u attempts",
                     j->attempt);
            j->end_ms = coord_now_ms();
            jobs__change(c, j, JOB_FAILED, "state", "", reason);
        } else {
            snprintf(reason, sizeof reason,
                     "coordinator restarted while the job was running (attempt %u); re-queued",
                     j->attempt);
            j->nranks = 0; /* a queued job has no workers; the history keeps them */
            jobs__change(c, j, JOB_QUEUED, "state", "", reason);
        }
    }
}

static int progress_row(void *arg, const char *job_id, const char *json)
{
    struct coord *c = arg;
    struct job *j = coord_job_find(c, job_id);
    if (j && job_progress_from_json(&j->prog, json) != 0)
        log_warn("jobs: %s: stored progress does not parse; ignored", job_id);
    return 0;
}

int coord_jobs_load(struct coord *c, char err[SAT_ERR_LEN])
{
    int rc = store_jobs_load(c->store, load_job, c);
    if (rc != 0)
        return sat_errf(err, rc, "cannot load jobs from the store");
    if (store_progress_load(c->store, progress_row, c) != 0)
        log_warn("store: could not load the jobs' progress");
    recover_running(c);
    size_t nq = 0;
    for (size_t i = 0; i < c->njobs; i++)
        nq += c->jobs[i]->state == JOB_QUEUED;
    log_info("store: %zu job(s) loaded, %zu queued; next job id job-%" PRId64, c->njobs, nq,
             c->next_job_seq);
    return 0;
}

void coord_jobs_free(struct coord *c)
{
    for (size_t i = 0; i < c->njobs; i++) {
        if (c->jobs[i]->ps)
            ps_job_stop(c, c->jobs[i]);
        job_free(c->jobs[i]);
    }
    sat_free(c->jobs);
    c->jobs = NULL;
    c->njobs = 0;
}
