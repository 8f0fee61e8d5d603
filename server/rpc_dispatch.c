/* rpc_dispatch.c - saturnd's method table: each handler turns a request
 * into a coordinator operation and the result into a response.
 *
 * Handlers run on the loop thread with an authenticated, unpacked request
 * (common/rpc). Errors are SAT_E* codes; rpc_reply_err maps them to gRPC
 * statuses in the one place that does (common/rpc/rpc_status.c).
 *
 * Every lookup-or-reply is here: a job (NOT_FOUND), a live worker
 * (NOT_FOUND: register again), the calling worker's identity, a running
 * job's parameter server
 * (FAILED_PRECONDITION when the job, or this attempt of it, is not
 * training). The ParameterServer service (GetLayout, Pull, Push),
 * Worker.FetchData and Worker.ReportMetrics are then served by the ps/
 * wing with the PS found here, Client.ExportModel by export.c. Pull is a
 * deferred reply: the PS keeps the call (rpc_call_on_cancel +
 * rpc_call_remaining_ms) and answers from the loop callback that raises
 * the shard's version.
 *
 * Worker identity: the RPC layer admits a Worker or ParameterServer call
 * only with the session secret of a live worker (auth_session_check);
 * here the worker is found again by that secret (auth.c), never by the id
 * the request names. A request naming another worker, or a job or rank
 * that is not that worker's assignment, is PERMISSION_DENIED before
 * anything changes. The table's last column says which token roles may
 * call each method (the client token may call all).
 *
 * Handlers change state through jobs.c and workers.c and only mark what
 * needs a scheduling pass (c->sched_dirty); lifecycle.c's deferred phase
 * runs it after the handler has returned.
 */
#include "rpc_dispatch.h"
#include "auth.h"
#include "epochs.h"
#include "events.h"
#include "export.h"
#include "jobs.h"
#include "progress.h"
#include "ps/ps.h"
#include "workers.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "health.pb-c.h"
#include "saturn.pb-c.h"

#include "../common/util/log.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

/* ==== conversions ========================================================== */

/* Fills m from j, pointing into j (valid until j changes: the response is
 * packed before the handler returns). ids receives the worker id pointers
 * (j->workers entries). */
static void job_to_pb(const struct job *j, Saturn__V1__Job *m, char **ids)
{
    saturn__v1__job__init(m);
    m->id = (char *)j->id;
    m->name = (char *)j->name;
    m->state = (Saturn__V1__JobState)j->state;
    m->priority = j->priority;
    m->workers = (uint32_t)j->workers;
    for (int i = 0; i < j->nranks; i++)
        ids[i] = (char *)j->rank_ids[i];
    m->n_worker_ids = (size_t)j->nranks;
    m->worker_ids = ids;
    m->reason = (char *)j->reason;
    m->submit_time_ms = j->submit_ms;
    m->start_time_ms = j->start_ms;
    m->end_time_ms = j->end_ms;
    m->attempt = j->attempt;
    m->consistency = (char *)j->consistency;
    m->model = (char *)j->model;
    m->dataset = (char *)j->dataset;
    m->sweep = (char *)coord_job_sweep(j);
}

static void worker_to_pb(const struct worker *w, Saturn__V1__WorkerInfo *m)
{
    saturn__v1__worker_info__init(m);
    m->id = (char *)w->id;
    m->name = (char *)w->name;
    m->threads = w->threads;
    m->version = (char *)w->version;
    m->state = (Saturn__V1__WorkerState)w->state;
    m->job_id = (char *)(w->job ? w->job->id : "");
    m->rank = w->rank;
    m->registered_ms = w->registered_ms;
    m->last_heartbeat_ms = w->last_seen_ms;
    m->peer = (char *)w->peer;
    m->reason = (char *)w->reason;
    m->draining = w->draining;
}

static struct job *find_job_or_reply(struct coord *c, struct rpc_call *call, const char *id)
{
    struct job *j = coord_job_find(c, id);
    if (!j)
        rpc_reply_err(call, SAT_ENOENT, "job \"%.*s\" not found", (int)sat_utf8_cut(id, 64), id);
    return j;
}

/* ==== Client service ======================================================= */

static void h_submit(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__SubmitJobRequest *req = (const Saturn__V1__SubmitJobRequest *)msg;
    bool dry = req->flags & SATURN__V1__SUBMIT_FLAGS__SUBMIT_FLAGS_DRY_RUN;
    char err[SAT_ERR_LEN] = "";
    struct job *j;
    char *canon;
    int rc = coord_job_submit(c, req->spec_json, dry, &j, &canon, err);
    if (rc != 0) {
        log_info("rpc: SubmitJob from %s refused: %s", rpc_call_peer(call), err);
        rpc_reply_err(call, rc, "%s", err);
        return;
    }
    if (j)
        c->sched_dirty = true;
    Saturn__V1__SubmitJobResponse resp = SATURN__V1__SUBMIT_JOB_RESPONSE__INIT;
    resp.job_id = j ? j->id : "";
    resp.state = j ? (Saturn__V1__JobState)j->state : SATURN__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    resp.spec_json = canon;
    rpc_reply(call, &resp.base);
    sat_free(canon);
}

struct hist_acc {
    Saturn__V1__StateChange *items;
    Saturn__V1__StateChange **ptrs;
    char **reasons;
    size_t n, cap;
};

static int hist_add(void *arg, const struct store_change *ch)
{
    struct hist_acc *h = arg;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        Saturn__V1__StateChange *it = sat_realloc(h->items, cap * sizeof *it);
        if (it)
            h->items = it;
        char **rs = it ? sat_realloc(h->reasons, cap * sizeof *rs) : NULL;
        if (rs)
            h->reasons = rs;
        if (!it || !rs)
            return SAT_ENOMEM;
        h->cap = cap;
    }
    h->reasons[h->n] = sat_strdup(ch->reason);
    if (!h->reasons[h->n])
        return SAT_ENOMEM;
    sat_utf8_sanitize(h->reasons[h->n]); /* rows of older versions may be invalid */
    Saturn__V1__StateChange *m = &h->items[h->n];
    saturn__v1__state_change__init(m);
    m->state = (Saturn__V1__JobState)ch->state;
    m->time_ms = ch->time_ms;
    h->n++;
    return 0;
}

static void h_get(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__GetJobRequest *req = (const Saturn__V1__GetJobRequest *)msg;
    struct job *j = find_job_or_reply(c, call, req->job_id);
    if (!j)
        return;
    struct hist_acc h = {0};
    struct epoch_results ep = {0};
    int rc = store_history_load(c->store, j->id, hist_add, &h);
    if (rc == 0 && h.n) {
        h.ptrs = sat_malloc(h.n * sizeof *h.ptrs);
        rc = h.ptrs ? 0 : SAT_ENOMEM;
    }
    int erc = rc == 0 && req->epochs ? epoch_results_load(c->store, j->id, &ep) : 0;
    if (rc != 0) {
        rpc_reply_err(call, rc, "cannot read the history of %s", j->id);
    } else if (erc != 0) {
        rpc_reply_err(call, erc, "cannot read the epochs of %s", j->id);
    } else {
        char *ids[COORD_MAX_GANG];
        Saturn__V1__Job job;
        job_to_pb(j, &job, ids);
        job.spec_json = j->spec_json;
        Saturn__V1__JobProgress prog;
        Saturn__V1__QuantStat *qs = NULL;
        Saturn__V1__QuantStat **qp = NULL;
        if (j->prog.valid) {
            qs = sat_calloc((size_t)(j->prog.nquant ? j->prog.nquant : 1), sizeof *qs);
            qp = sat_calloc((size_t)(j->prog.nquant ? j->prog.nquant : 1), sizeof *qp);
            job_progress_to_pb(&j->prog, j->consistency, &prog, qs && qp ? qs : NULL,
                               qs && qp ? qp : NULL);
            job.progress = &prog;
        }
        for (size_t i = 0; i < h.n; i++) {
            h.items[i].reason = h.reasons[i];
            h.ptrs[i] = &h.items[i];
        }
        job.n_history = h.n;
        job.history = h.ptrs;
        job.n_epochs = ep.n;
        job.epochs = ep.ptrs;
        Saturn__V1__GetJobResponse resp = SATURN__V1__GET_JOB_RESPONSE__INIT;
        resp.job = &job;
        rpc_reply(call, &resp.base);
        sat_free(qs);
        sat_free(qp);
    }
    epoch_results_free(&ep);
    for (size_t i = 0; i < h.n; i++)
        sat_free(h.reasons[i]);
    sat_free(h.reasons);
    sat_free(h.items);
    sat_free(h.ptrs);
}

/* The job matches the request's filters: one of its states (none: all)
 * and its sweep ("": any). */
static bool job_wanted(const Saturn__V1__ListJobsRequest *req, const struct job *j)
{
    if (*req->sweep && strcmp(coord_job_sweep(j), req->sweep) != 0)
        return false;
    if (req->n_states == 0)
        return true;
    for (size_t i = 0; i < req->n_states; i++)
        if ((int)req->states[i] == (int)j->state)
            return true;
    return false;
}

static void h_list(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__ListJobsRequest *req = (const Saturn__V1__ListJobsRequest *)msg;
    if (*req->sweep && !jobspec_sweep_id_ok(req->sweep)) {
        rpc_reply_err(call, SAT_EINVAL,
                      "field \"sweep\": expected 1..%d bytes of A-Z a-z 0-9 . _ -",
                      SPEC_SWEEP_LEN - 1);
        return;
    }
    size_t limit = req->limit ? req->limit : COORD_LIST_DEFAULT;
    if (limit > COORD_LIST_MAX)
        limit = COORD_LIST_MAX;
    size_t total = 0;
    for (size_t i = 0; i < c->njobs; i++)
        total += job_wanted(req, c->jobs[i]);
    size_t n = total < limit ? total : limit;
    Saturn__V1__Job *jobs = sat_calloc(n ? n : 1, sizeof *jobs);
    Saturn__V1__Job **ptrs = sat_calloc(n ? n : 1, sizeof *ptrs);
    size_t nids = 0;
    for (size_t i = c->njobs, k = 0; i-- > 0 && k < n;)
        if (job_wanted(req, c->jobs[i])) {
            nids += (size_t)c->jobs[i]->workers;
            k++;
        }
    char **ids = sat_calloc(nids ? nids : 1, sizeof *ids);
    if (!jobs || !ptrs || !ids) {
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
    } else {
        size_t k = 0, off = 0;
        for (size_t i = c->njobs; i-- > 0 && k < n;) {
            struct job *j = c->jobs[i];
            if (!job_wanted(req, j))
                continue;
            job_to_pb(j, &jobs[k], ids + off);
            off += (size_t)j->workers;
            ptrs[k] = &jobs[k];
            k++;
        }
        Saturn__V1__ListJobsResponse resp = SATURN__V1__LIST_JOBS_RESPONSE__INIT;
        resp.n_jobs = k;
        resp.jobs = ptrs;
        resp.total = (uint32_t)total;
        rpc_reply(call, &resp.base);
    }
    sat_free(jobs);
    sat_free(ptrs);
    sat_free(ids);
}

static void h_cancel(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__CancelJobRequest *req = (const Saturn__V1__CancelJobRequest *)msg;
    struct job *j = find_job_or_reply(c, call, req->job_id);
    if (!j)
        return;
    if (sat_utf8_chars(req->reason) > 200) {
        rpc_reply_err(call, SAT_EINVAL, "field \"reason\": longer than 200 characters");
        return;
    }
    char err[SAT_ERR_LEN] = "";
    int rc = coord_job_cancel(c, j, req->reason, err);
    if (rc != 0) {
        rpc_reply_err(call, rc, "%s", err);
        return;
    }
    char *ids[COORD_MAX_GANG];
    Saturn__V1__Job job;
    job_to_pb(j, &job, ids);
    Saturn__V1__CancelJobResponse resp = SATURN__V1__CANCEL_JOB_RESPONSE__INIT;
    resp.job = &job;
    rpc_reply(call, &resp.base);
}

static void h_watch(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__WatchJobRequest *req = (const Saturn__V1__WatchJobRequest *)msg;
    struct job *j = find_job_or_reply(c, call, req->job_id);
    /* A job in training: where it stands now, for the progress bar. */
    if (j && coord_watch_start(c, call, j, req->after_seq) && j->ps && j->prog.valid)
        coord_progress_publish(c, j);
}

static void h_workers(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__ListWorkersRequest *req = (const Saturn__V1__ListWorkersRequest *)msg;
    Saturn__V1__WorkerInfo *ws = sat_calloc(c->nworkers ? c->nworkers : 1, sizeof *ws);
    Saturn__V1__WorkerInfo **ptrs = sat_calloc(c->nworkers ? c->nworkers : 1, sizeof *ptrs);
    if (!ws || !ptrs) {
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
    } else {
        size_t n = 0;
        for (size_t i = 0; i < c->nworkers; i++) {
            const struct worker *w = c->workers[i];
            bool dead = w->state == WORKER_LOST || w->state == WORKER_GONE;
            if (dead && !req->include_lost)
                continue;
            worker_to_pb(w, &ws[n]);
            ptrs[n] = &ws[n];
            n++;
        }
        Saturn__V1__ListWorkersResponse resp = SATURN__V1__LIST_WORKERS_RESPONSE__INIT;
        resp.n_workers = n;
        resp.workers = ptrs;
        resp.free = (uint32_t)coord_workers_idle(c);
        rpc_reply(call, &resp.base);
    }
    sat_free(ws);
    sat_free(ptrs);
}

static void h_drain(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__DrainWorkerRequest *req = (const Saturn__V1__DrainWorkerRequest *)msg;
    struct worker *w = coord_worker_find(c, req->worker_id);
    if (!w || !coord_worker_live(w->state)) {
        rpc_reply_err(call, SAT_ENOENT, "no live worker \"%.*s\"",
                      (int)sat_utf8_cut(req->worker_id, 40), req->worker_id);
        return;
    }
    if (sat_utf8_chars(req->reason) > 200) {
        rpc_reply_err(call, SAT_EINVAL, "field \"reason\": longer than 200 characters");
        return;
    }
    if (!w->draining) {
        w->draining = true;
        log_info("worker %s (%s): drain requested%s%.*s", w->id, w->name,
                 *req->reason ? ": " : "", (int)sat_utf8_cut(req->reason, 400), req->reason);
        if (w->job)
            coord_event(c, w->job, "drain", w->id,
                        "%s (%s) asked to drain: it leaves after its current step", w->id,
                        w->name);
        c->sched_dirty = true; /* it no longer counts as free */
    }
    Saturn__V1__WorkerInfo info;
    worker_to_pb(w, &info);
    Saturn__V1__DrainWorkerResponse resp = SATURN__V1__DRAIN_WORKER_RESPONSE__INIT;
    resp.worker = &info;
    rpc_reply(call, &resp.base);
}

/* ==== Worker service ======================================================= */

static void deny(struct rpc_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void deny(struct rpc_call *call, const char *fmt, ...)
{
    char msg[SAT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_info("rpc: %s from %s denied: %s", rpc_call_method(call), rpc_call_peer(call), msg);
    rpc_reply_status(call, GRPC_STATUS_PERMISSION_DENIED, msg);
}

/* The live worker whose session secret the call presents (NOT_FOUND:
 * register again), which must be worker `id` when id is not NULL
 * (PERMISSION_DENIED). */
static struct worker *find_worker_or_reply(struct coord *c, struct rpc_call *call, const char *id)
{
    struct worker *w = auth_session_worker(c, rpc_call_session(call));
    if (!w) {
        rpc_reply_err(call, SAT_ENOENT,
                      "unknown worker session (lease expired or coordinator restarted): "
                      "register again");
        return NULL;
    }
    if (id && strcmp(w->id, id) != 0) {
        deny(call, "the session of %s may not act for worker \"%.*s\"", w->id,
             (int)sat_utf8_cut(id, 40), id);
        return NULL;
    }
    return w;
}

/* The calling worker holds rank `rank` of running job j (a rank out of
 * range is left to the parameter server, which refuses it), or the call
 * is answered PERMISSION_DENIED and false returned. */
static bool rank_holder_or_reply(struct coord *c, struct rpc_call *call, struct job *j,
                                 uint32_t rank)
{
    struct worker *w = find_worker_or_reply(c, call, NULL);
    if (!w)
        return false;
    if (w->job != j || (rank < (uint32_t)j->workers && j->ranks && j->ranks[rank] != w)) {
        deny(call, "%s does not hold rank %u of job %s", w->id, (unsigned)rank, j->id);
        return false;
    }
    return true;
}

static void h_register(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__RegisterRequest *req = (const Saturn__V1__RegisterRequest *)msg;
    char err[SAT_ERR_LEN] = "";
    struct worker *w;
    int rc = coord_worker_register(c, req->name, req->threads, req->version, rpc_call_peer(call),
                                   &w, err);
    if (rc != 0) {
        rpc_reply_err(call, rc, "%s", err);
        return;
    }
    if (auth_session_new(w->session) != 0) {
        coord_job_lose_worker(c, w, WORKER_GONE, "no randomness for a session secret");
        rpc_reply_err(call, SAT_EINTERNAL, "cannot make a session secret");
        return;
    }
    Saturn__V1__RegisterResponse resp = SATURN__V1__REGISTER_RESPONSE__INIT;
    resp.worker_id = w->id;
    resp.session = w->session;
    resp.lease_ms = c->lease_ms;
    resp.heartbeat_ms = COORD_HEARTBEAT_MS;
    rpc_reply(call, &resp.base);
    c->sched_dirty = true;
}

static void h_heartbeat(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__HeartbeatRequest *req = (const Saturn__V1__HeartbeatRequest *)msg;
    struct worker *w = find_worker_or_reply(c, call, req->worker_id);
    if (!w)
        return;
    bool running = req->activity == SATURN__V1__WORKER_ACTIVITY__WORKER_ACTIVITY_RUNNING;
    coord_worker_heartbeat(c, w, running, req->job_id, req->attempt);
    Saturn__V1__HeartbeatResponse resp = SATURN__V1__HEARTBEAT_RESPONSE__INIT;
    Saturn__V1__Assignment a = SATURN__V1__ASSIGNMENT__INIT;
    resp.lease_ms = c->lease_ms;
    resp.drain = w->draining;
    if (w->job) {
        a.job_id = w->job->id;
        a.rank = w->rank;
        a.world_size = (uint32_t)w->job->workers;
        a.spec_json = w->job->spec_json;
        a.attempt = w->job->attempt;
        resp.assignment = &a;
    }
    rpc_reply(call, &resp.base);
}

static void h_ack(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__AckAssignmentRequest *req = (const Saturn__V1__AckAssignmentRequest *)msg;
    struct worker *w = find_worker_or_reply(c, call, req->worker_id);
    if (!w)
        return;
    if (sat_utf8_chars(req->reason) > 200) {
        rpc_reply_err(call, SAT_EINVAL, "field \"reason\": longer than 200 characters");
        return;
    }
    bool still = coord_worker_ack(c, w, req->job_id, req->attempt, req->accepted);
    if (still && !req->accepted) {
        coord_job_refused(c, w, req->reason);
        still = false;
    }
    Saturn__V1__AckAssignmentResponse resp = SATURN__V1__ACK_ASSIGNMENT_RESPONSE__INIT;
    resp.still_assigned = still;
    rpc_reply(call, &resp.base);
}

static void h_leave(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__LeaveRequest *req = (const Saturn__V1__LeaveRequest *)msg;
    struct worker *w = find_worker_or_reply(c, call, req->worker_id);
    if (!w)
        return;
    char why[COORD_REASON_LEN];
    const char *r = *req->reason ? req->reason : "no reason given";
    snprintf(why, sizeof why, "%.*s", (int)sat_utf8_cut(r, 200), r);
    coord_job_lose_worker(c, w, WORKER_GONE, why);
    Saturn__V1__LeaveResponse resp = SATURN__V1__LEAVE_RESPONSE__INIT;
    rpc_reply(call, &resp.base);
}

/* ==== training: the ps/ wing and export.c ================================= */

/* The parameter server of a job that is training (attempt 0: any), or the
 * call is answered (NOT_FOUND, FAILED_PRECONDITION) and NULL returned. */
static struct ps_job *find_ps_or_reply(struct coord *c, struct rpc_call *call, const char *job_id,
                                       uint32_t attempt, uint32_t rank)
{
    struct job *j = find_job_or_reply(c, call, job_id);
    if (!j)
        return NULL;
    if (!coord_job_training(j->state) || !j->ps) {
        rpc_reply_err(call, SAT_ESTATE, "job %s is not running (%s: %.*s)", j->id,
                      coord_job_state_name(j->state), (int)sat_utf8_cut(j->reason, 180), j->reason);
        return NULL;
    }
    if (attempt != 0 && attempt != j->attempt) {
        rpc_reply_err(call, SAT_ESTATE, "job %s: attempt %u is over (now attempt %u)", j->id,
                      (unsigned)attempt, j->attempt);
        return NULL;
    }
    if (j->ps->finishing) {
        rpc_reply_err(call, SAT_ESTATE, "job %s has finished training", j->id);
        return NULL;
    }
    if (!rank_holder_or_reply(c, call, j, rank))
        return NULL;
    return j->ps;
}

static void h_fetch_data(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    const Saturn__V1__FetchDataRequest *req = (const Saturn__V1__FetchDataRequest *)msg;
    if (!find_worker_or_reply(ud, call, req->worker_id))
        return;
    struct ps_job *ps = find_ps_or_reply(ud, call, req->job_id, req->attempt, req->rank);
    if (ps)
        ps_fetch_data(ps, call, req);
}

static void h_report_metrics(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__ReportMetricsRequest *req = (const Saturn__V1__ReportMetricsRequest *)msg;
    struct job *j = find_job_or_reply(c, call, req->job_id);
    if (!j)
        return;
    if (!coord_job_training(j->state) || !j->ps || (req->attempt && req->attempt != j->attempt)) {
        Saturn__V1__ReportMetricsResponse resp = SATURN__V1__REPORT_METRICS_RESPONSE__INIT;
        resp.stop = true; /* the job (this attempt of it) is over */
        rpc_reply(call, &resp.base);
        return;
    }
    if (!find_worker_or_reply(c, call, req->worker_id) ||
        !rank_holder_or_reply(c, call, j, req->rank))
        return;
    ps_report_metrics(j->ps, call, req);
}

static void h_get_layout(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    const Saturn__V1__GetLayoutRequest *req = (const Saturn__V1__GetLayoutRequest *)msg;
    struct ps_job *ps = find_ps_or_reply(ud, call, req->job_id, req->attempt, req->rank);
    if (ps)
        ps_get_layout(ps, call, req);
}

static void h_pull(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    const Saturn__V1__PullRequest *req = (const Saturn__V1__PullRequest *)msg;
    struct ps_job *ps = find_ps_or_reply(ud, call, req->job_id, req->attempt, req->rank);
    if (ps)
        ps_pull(ps, call, req);
}

static void h_push(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    const Saturn__V1__PushRequest *req = (const Saturn__V1__PushRequest *)msg;
    struct ps_job *ps = find_ps_or_reply(ud, call, req->job_id, req->attempt, req->rank);
    if (ps)
        ps_push(ps, call, req);
}

/* A Push's gradient may go straight where its job's parameter server
 * keeps it (ps_land_push); every other bytes field stays in its request. */
void coord_land(struct rpc_land *land, const ProtobufCMessage *req, void *ud)
{
    if (req->descriptor != &saturn__v1__push_request__descriptor)
        return;
    const Saturn__V1__PushRequest *p = (const Saturn__V1__PushRequest *)req;
    struct job *j = coord_job_find(ud, p->job_id);
    if (j && j->ps)
        ps_land_push(j->ps, land, p);
}

static void h_export(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Saturn__V1__ExportModelRequest *req = (const Saturn__V1__ExportModelRequest *)msg;
    struct job *j = find_job_or_reply(c, call, req->job_id);
    if (j)
        coord_export_model(c, j, call, req);
}

/* ==== grpc.health.v1 ======================================================= */

static void h_health(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct coord *c = ud;
    const Grpc__Health__V1__HealthCheckRequest *req =
        (const Grpc__Health__V1__HealthCheckRequest *)msg;
    static const char *const services[] = {"", "saturn.v1.Client", "saturn.v1.Worker",
                                           "saturn.v1.ParameterServer"};
    bool known = false;
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        known |= strcmp(req->service, services[i]) == 0;
    if (!known) {
        rpc_reply_err(call, SAT_ENOENT, "unknown service \"%.*s\"",
                      (int)sat_utf8_cut(req->service, 64), req->service);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    /* NOT_SERVING while shutting down, and while the store refuses writes
     * (nothing saturnd decides could be kept). */
    resp.status = c->stopping || !store_writable(c->store)
                      ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_reply(call, &resp.base);
}

/* ==== the table ============================================================ */

#define C "/saturn.v1.Client/"
#define W "/saturn.v1.Worker/"
#define P "/saturn.v1.ParameterServer/"

/* Roles: V = read-only (viewer), K = the Worker and ParameterServer
 * services (worker); the client token may call every method. S = the call
 * must carry a live worker's session secret (checked before the message is
 * read). */
#define V (RPC_R_CLIENT | RPC_R_VIEWER)
#define K (RPC_R_CLIENT | RPC_R_WORKER)
#define S (RPC_SESSION)

const struct rpc_method coord_methods[] = {
    /* path, request type, handler, flags, roles */
    {C "SubmitJob", &saturn__v1__submit_job_request__descriptor, h_submit, 0, RPC_R_CLIENT},
    {C "GetJob", &saturn__v1__get_job_request__descriptor, h_get, 0, V},
    {C "ListJobs", &saturn__v1__list_jobs_request__descriptor, h_list, 0, V},
    {C "CancelJob", &saturn__v1__cancel_job_request__descriptor, h_cancel, 0, RPC_R_CLIENT},
    {C "WatchJob", &saturn__v1__watch_job_request__descriptor, h_watch, RPC_STREAM, V},
    {C "ListWorkers", &saturn__v1__list_workers_request__descriptor, h_workers, 0, V},
    {C "ExportModel", &saturn__v1__export_model_request__descriptor, h_export, RPC_STREAM, V},
    {C "DrainWorker", &saturn__v1__drain_worker_request__descriptor, h_drain, 0, RPC_R_CLIENT},
    {W "RegisterWorker", &saturn__v1__register_request__descriptor, h_register, 0, K},
    {W "Heartbeat", &saturn__v1__heartbeat_request__descriptor, h_heartbeat, S, K},
    {W "AckAssignment", &saturn__v1__ack_assignment_request__descriptor, h_ack, S, K},
    {W "Leave", &saturn__v1__leave_request__descriptor, h_leave, S, K},
    {W "FetchData", &saturn__v1__fetch_data_request__descriptor, h_fetch_data, RPC_STREAM | S, K},
    {W "ReportMetrics", &saturn__v1__report_metrics_request__descriptor, h_report_metrics, S, K},
    {P "GetLayout", &saturn__v1__get_layout_request__descriptor, h_get_layout, S, K},
    {P "Pull", &saturn__v1__pull_request__descriptor, h_pull, S, K},
    {P "Push", &saturn__v1__push_request__descriptor, h_push, S, K},
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor, h_health,
     RPC_NO_AUTH, 0},
};

const size_t coord_nmethods = sizeof coord_methods / sizeof coord_methods[0];
