/* ps.c - the parameter server of a running job (see ps.h): parked calls,
 * layout, Pull, Push and the optimizer step. The set-up and teardown of a
 * job's state are in ps_setup.c, the writes in ps_write.c, the metrics and
 * the end of training in ps_progress.c.
 *
 * Statuses (saturn.proto conventions): an unknown job is NOT_FOUND; a job
 * that is not running, a wrong attempt or a state not ready yet is
 * FAILED_PRECONDITION; a malformed request (wrong tensor size, shard or
 * rank out of range, a batch size other than the local batch) is
 * INVALID_ARGUMENT; a step outside what the consistency mode allows is
 * OUT_OF_RANGE. A refused push changes nothing.
 */
#include "ps.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/train/trainer.h"
#include "../../common/util/log.h"
#include "../../common/util/xalloc.h"

/* ==== parked calls ========================================================= */

void ps__wait_unlink(struct ps_wait *w)
{
    struct ps_job *ps = w->ps;
    if (w->prev)
        w->prev->next = w->next;
    else
        ps->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

void ps__wait_finish(struct ps_wait *w, int sat_err, const char *msg)
{
    ps__wait_unlink(w);
    rpc_reply_err(w->call, sat_err, "%s", msg);
    sat_free(w);
}

static void on_wait_cancel(struct rpc_call *call, void *arg)
{
    (void)call;
    ps__wait_finish(arg, SAT_ECANCELLED, "client went away");
}

static int wait_park(struct ps_job *ps, struct rpc_call *call, int kind, uint32_t shard,
                     uint32_t rank, uint64_t min_version, bool exact, uint64_t t_arrival)
{
    struct ps_wait *w = sat_calloc(1, sizeof *w);
    if (!w)
        return SAT_ENOMEM;
    int64_t left = rpc_call_remaining_ms(call);
    if (left > PS_PULL_MAX_WAIT_MS)
        left = PS_PULL_MAX_WAIT_MS;
    w->ps = ps;
    w->call = call;
    w->kind = kind;
    w->shard = shard;
    w->rank = rank;
    w->min_version = min_version;
    w->exact = exact;
    w->t_arrival = t_arrival;
    w->deadline = uv_now(ps->c->loop) + (uint64_t)left;
    w->next = ps->waits;
    if (ps->waits)
        ps->waits->prev = w;
    ps->waits = w;
    rpc_call_on_cancel(call, on_wait_cancel, w);
    return 0;
}

void ps_tick(struct coord *c)
{
    uint64_t now = uv_now(c->loop);
    for (size_t i = 0; i < c->njobs; i++) {
        struct ps_job *ps = c->jobs[i]->ps;
        if (!ps)
            continue;
        ps_write_retry(ps, now);
        for (struct ps_wait *w = ps->waits, *n; w; w = n) {
            n = w->next;
            if (now < w->deadline)
                continue;
            char msg[200];
            if (w->kind == 1)
                snprintf(msg, sizeof msg, "job %s: the parameter server is still being set up",
                         c->jobs[i]->id);
            else
                snprintf(msg, sizeof msg,
                         "pull of shard %" PRIu32 " waited for step %" PRIu64
                         " (the slowest rank is at step %" PRIu64 ")",
                         w->shard, w->min_version, ps->shards[w->shard].clock);
            ps__wait_finish(w, SAT_ETIMEOUT, msg);
        }
    }
}

/* ==== GetLayout ============================================================ */

void ps__reply_layout(struct ps_job *ps, struct rpc_call *call, uint32_t rank)
{
    const struct param_table *pt = model_param_table(ps->model);
    Saturn__V1__ShardInfo *si = sat_calloc((size_t)ps->nshards, sizeof *si);
    Saturn__V1__ShardInfo **sp = sat_calloc((size_t)ps->nshards, sizeof *sp);
    Saturn__V1__TensorInfo *ti = sat_calloc((size_t)(pt->n ? pt->n : 1), sizeof *ti);
    Saturn__V1__TensorInfo **tp = sat_calloc((size_t)(pt->n ? pt->n : 1), sizeof *tp);
    uint32_t *shapes = sat_calloc((size_t)(pt->n ? pt->n : 1) * 4, sizeof *shapes);
    if (!si || !sp || !ti || !tp || !shapes) {
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
        goto out;
    }
    uint64_t next = UINT64_MAX;
    for (int s = 0; s < ps->nshards; s++) {
        saturn__v1__shard_info__init(&si[s]);
        si[s].id = (uint32_t)s;
        si[s].offset = ps->shards[s].off;
        si[s].count = ps->shards[s].n;
        sp[s] = &si[s];
        uint64_t p = ps->shards[s].pushed[rank];
        if (p < next)
            next = p;
    }
    for (int i = 0; i < pt->n; i++) {
        saturn__v1__tensor_info__init(&ti[i]);
        ti[i].name = (char *)pt->e[i].name;
        for (int d = 0; d < pt->e[i].ndim; d++)
            shapes[i * 4 + d] = (uint32_t)pt->e[i].shape[d];
        ti[i].n_shape = (size_t)pt->e[i].ndim;
        ti[i].shape = &shapes[i * 4];
        ti[i].offset = pt->e[i].offset;
        ti[i].count = pt->e[i].numel;
        tp[i] = &ti[i];
    }
    Saturn__V1__GetLayoutResponse r = SATURN__V1__GET_LAYOUT_RESPONSE__INIT;
    r.shard_count = (uint32_t)ps->nshards;
    r.n_shards = (size_t)ps->nshards;
    r.shards = sp;
    r.param_count = ps->param_count;
    r.bn_count = ps->bn_count;
    r.n_tensors = (size_t)pt->n;
    r.tensors = tp;
    r.consistency = ps->job->consistency;
    r.version = ps->clock;
    r.steps_per_epoch = ps->steps_per_epoch;
    r.total_steps = ps->total_steps;
    r.next_step = next;
    r.staleness = ps->staleness > 0 ? (uint32_t)ps->staleness : 0;
    /* A rank taken over at an epoch end whose evaluation its last worker
     * did not report: the new worker evaluates it first. */
    if (next > 0 && next != UINT64_MAX && next % ps->steps_per_epoch == 0) {
        uint64_t e = next / ps->steps_per_epoch - 1;
        if (!ps->ep_reported[e * (uint64_t)ps->world + rank])
            r.eval_epoch = (uint32_t)(e + 1);
    }
    rpc_reply(call, &r.base);
out:
    sat_free(si);
    sat_free(sp);
    sat_free(ti);
    sat_free(tp);
    sat_free(shapes);
}

/* Refuses (INVALID_ARGUMENT, naming the field) a shard or rank out of range. */
static bool shard_rank_ok(const struct ps_job *ps, struct rpc_call *call, uint32_t shard,
                          uint32_t rank)
{
    if (shard >= (uint32_t)ps->nshards) {
        rpc_reply_err(call, SAT_EINVAL, "field \"shard\": %" PRIu32 " is out of range (0..%d)",
                      shard, ps->nshards - 1);
        return false;
    }
    if (rank >= (uint32_t)ps->world) {
        rpc_reply_err(call, SAT_EINVAL, "field \"rank\": %" PRIu32 " is out of range (0..%d)",
                      rank, ps->world - 1);
        return false;
    }
    return true;
}

void ps_get_layout(struct ps_job *ps, struct rpc_call *call,
                   const Saturn__V1__GetLayoutRequest *req)
{
    if (req->rank >= (uint32_t)ps->world) {
        rpc_reply_err(call, SAT_EINVAL, "field \"rank\": %" PRIu32 " is out of range (0..%d)",
                      req->rank, ps->world - 1);
        return;
    }
    if (ps->ready) {
        ps__reply_layout(ps, call, req->rank);
        return;
    }
    /* Still loading: answer when the set-up is done (or the deadline). */
    if (wait_park(ps, call, 1, 0, req->rank, 0, false, uv_hrtime()) != 0)
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
}

/* ==== Pull ================================================================= */

static bool pull_ready(const struct ps_job *ps, uint32_t shard, uint64_t min_version, bool exact)
{
    if (ps->paused)
        return false; /* a checkpoint could not be written: the workers wait */
    uint64_t clock = ps->shards[shard].clock;
    if (exact || ps->staleness == 0)
        return clock >= min_version;
    if (ps->staleness < 0)
        return true;
    return clock + (uint64_t)ps->staleness >= min_version;
}

/* Answers a Pull with the shard's values and counts it in the coordinator's
 * statistics: the reply's bytes and the time since the call arrived
 * (t_arrival, uv_hrtime() ns), parked time included. */
static void reply_pull(struct ps_job *ps, struct rpc_call *call, uint32_t shard, uint64_t t_arrival)
{
    const struct ps_shard *sh = &ps->shards[shard];
    Saturn__V1__PullResponse r = SATURN__V1__PULL_RESPONSE__INIT;
    r.version = ps->staleness == 0 ? sh->clock : sh->version;
    /* The bytes are sent from the parameter storage itself (ps_store.c);
     * without a hold, rpc_reply packs a copy of them now. */
    r.values.data = (uint8_t *)(model_params(ps->model) + sh->off);
    r.values.len = sh->n * sizeof(float);
    if (shard == 0) {
        r.bn_buffers.data = (uint8_t *)model_buffers(ps->model);
        r.bn_buffers.len = ps->bn_count * sizeof(float);
    }
    struct rpc_hold *hold = ps__store_hold(ps);
    if (hold)
        rpc_reply_held(call, &r.base, hold);
    else
    rpc_reply(call, &r.base);
    struct coord_stats *st = &ps->c->stats;
    st->pull_bytes += r.values.len + r.bn_buffers.len;
    coord_hist_observe(&st->pull_s, (double)(uv_hrtime() - t_arrival) * 1e-9);
}

/* Answers the parked pulls whose condition now holds. */
void ps__wake_pulls(struct ps_job *ps)
{
    for (struct ps_wait *w = ps->waits, *n; w; w = n) {
        n = w->next;
        if (w->kind != 0 || !pull_ready(ps, w->shard, w->min_version, w->exact))
            continue;
        struct rpc_call *call = w->call;
        uint32_t shard = w->shard;
        uint64_t t_arrival = w->t_arrival;
        ps__wait_unlink(w);
        sat_free(w);
        reply_pull(ps, call, shard, t_arrival);
    }
}

void ps_pull(struct ps_job *ps, struct rpc_call *call, const Saturn__V1__PullRequest *req)
{
    uint64_t t_arrival = uv_hrtime();
    if (!ps->ready) {
        rpc_reply_err(call, SAT_ESTATE,
                      "job %s: the parameter server is being set up; call "
                      "GetLayout first",
                      ps->job->id);
        return;
    }
    if (!shard_rank_ok(ps, call, req->shard, req->rank))
        return;
    if (req->min_version > ps->total_steps) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "min_version %" PRIu64 " is past the job's last step (%" PRIu64 " steps)",
                 req->min_version, ps->total_steps);
        rpc_reply_status(call, GRPC_STATUS_OUT_OF_RANGE, msg);
        return;
    }
    if (pull_ready(ps, req->shard, req->min_version, req->exact)) {
        reply_pull(ps, call, req->shard, t_arrival);
        return;
    }
    if (wait_park(ps, call, 0, req->shard, req->rank, req->min_version, req->exact, t_arrival) != 0)
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
}

/* ==== applying steps ======================================================= */

/* Runs after a shard's clock moved: the job's clock, its progress,
 * checkpoints and the end of training. */
static void clock_moved(struct ps_job *ps)
{
    uint64_t clock = UINT64_MAX;
    for (int s = 0; s < ps->nshards; s++)
        if (ps->shards[s].clock < clock)
            clock = ps->shards[s].clock;
    if (clock == ps->clock)
        return;
    ps->clock = clock;
    ps_progress_refresh(ps, false);
    bool epoch_end = clock % ps->steps_per_epoch == 0;
    bool every = ps->spec.checkpoint_every > 0 && clock % (uint64_t)ps->spec.checkpoint_every == 0;
    if ((epoch_end || every) && clock != ps->last_ckpt_step && clock < ps->total_steps)
        ps_write_checkpoint(ps);
    ps_maybe_finish(ps);
}

/* bsp: every rank has pushed step ps->clock of every shard: sum in rank
 * order, check, update, average BN buffers, advance. */
static void bsp_apply(struct ps_job *ps)
{
    const struct param_table *pt = model_param_table(ps->model);
    float *g = model_grads(ps->model);
    int W = ps->world;
    for (int s = 0; s < ps->nshards; s++) {
        struct ps_shard *sh = &ps->shards[s];
        float *dst = g + sh->off;
        memcpy(dst, sh->slots, sh->n * sizeof(float));
        for (int r = 1; r < W; r++) {
            const float *src = sh->slots + (size_t)r * sh->n;
            for (size_t i = 0; i < sh->n; i++)
                dst[i] += src[i];
        }
    }
    uint64_t t = ps->clock;
    float lr = lr_at((long)t, (long)ps->total_steps, (long)ps->warmup_steps, ps->spec.lr);
    size_t nb = ps->bn_count;
    if (grads_finite(g, 0, ps->param_count) != 0) {
        ps__step_skipped(ps, t, "the summed gradient is not finite");
    } else if (ps__store_own(ps) != 0) {
        ps__step_skipped(ps, t, "out of memory copying parameters a Pull reply is sending");
    } else {
        ps__guard_save(ps, 0, ps->param_count, nb > 0);
        sgd_update(model_params(ps->model), g, ps->mom, pt, 0, ps->param_count, &ps->sgd, lr);
        /* BN running statistics: the mean of the ranks' (rank order). */
        float *bn = model_buffers(ps->model);
        if (nb) {
            memcpy(bn, ps->bn_slots, nb * sizeof(float));
            for (int r = 1; r < W; r++)
                for (size_t i = 0; i < nb; i++)
                    bn[i] += ps->bn_slots[(size_t)r * nb + i];
            float inv = 1.0f / (float)W;
            for (size_t i = 0; i < nb; i++)
                bn[i] *= inv;
        }
        if (!ps__guard_check(ps, 0, ps->param_count, nb > 0))
            ps__step_skipped(ps, t, "the update would make a parameter non-finite");
    }
    ps->last_lr = lr;
    for (int s = 0; s < ps->nshards; s++) {
        struct ps_shard *sh = &ps->shards[s];
        memset(sh->have, 0, (size_t)W);
        sh->nhave = 0;
        sh->clock = t + 1;
        sh->version = t + 1;
        sh->applied += (uint64_t)W;
    }
}

/* ssp/asp: applies one rank's push to one shard at once. */
static void async_apply(struct ps_job *ps, struct ps_shard *sh, int shard, uint32_t rank,
                        const float *grad, const float *bn_in)
{
    const struct param_table *pt = model_param_table(ps->model);
    float *g = model_grads(ps->model) + sh->off;
    /* The pushed gradient is already this rank's share of a global step
     * (its sum over the local batch / the global batch), so W pushes move
     * the parameters about as far as one bsp step. Scaling each push by W
     * (the rank's mean gradient at the full learning rate) would double
     * the effective learning rate with 2 workers; measured, it cost 10-17
     * points of test accuracy against bsp (docs/training.md). */
    memcpy(g, grad, sh->n * sizeof(float));
    uint64_t pos = sh->applied / (uint64_t)ps->world;
    if (pos >= ps->total_steps)
        pos = ps->total_steps - 1;
    float lr = lr_at((long)pos, (long)ps->total_steps, (long)ps->warmup_steps, ps->spec.lr);
    bool bn_too = shard == 0 && ps->bn_count;
    bool skip = grads_finite(model_grads(ps->model), sh->off, sh->off + sh->n) != 0;
    if (skip) {
        ps__step_skipped(ps, pos, "a pushed gradient is not finite");
    } else if (ps__store_own(ps) != 0) {
        skip = true;
        ps__step_skipped(ps, pos, "out of memory copying parameters a Pull reply is sending");
    } else {
        ps__guard_save(ps, sh->off, sh->off + sh->n, bn_too);
        sgd_update(model_params(ps->model), model_grads(ps->model), ps->mom, pt, sh->off,
                   sh->off + sh->n, &ps->sgd, lr);
    }
    ps->last_lr = lr;
    sh->applied++;
    sh->version = sh->applied / (uint64_t)ps->world;
    if (!skip && bn_too) {
        size_t nb = ps->bn_count;
        memcpy(ps->bn_slots + (size_t)rank * nb, bn_in, nb * sizeof(float));
        ps->bn_have[rank] = 1;
        float *bn = model_buffers(ps->model);
        int k = 0;
        for (int r = 0; r < ps->world; r++) {
            if (!ps->bn_have[r])
                continue;
            const float *src = ps->bn_slots + (size_t)r * nb;
            if (k++ == 0)
                memcpy(bn, src, nb * sizeof(float));
            else
                for (size_t i = 0; i < nb; i++)
                    bn[i] += src[i];
        }
        float inv = 1.0f / (float)k;
        for (size_t i = 0; i < nb; i++)
            bn[i] *= inv;
    }
    if (!skip && !ps__guard_check(ps, sh->off, sh->off + sh->n, bn_too))
        ps__step_skipped(ps, pos, "the update would make a parameter non-finite");
}

static void shard_update_clock(struct ps_job *ps, struct ps_shard *sh)
{
    uint64_t m = UINT64_MAX;
    for (int r = 0; r < ps->world; r++)
        if (sh->pushed[r] < m)
            m = sh->pushed[r];
    sh->clock = m;
}

/* ==== Push ================================================================= */

static void reply_push(struct rpc_call *call, uint64_t version, bool dup)
{
    Saturn__V1__PushResponse r = SATURN__V1__PUSH_RESPONSE__INIT;
    r.version = version;
    r.duplicate = dup;
    rpc_reply(call, &r.base);
}

static void out_of_range(struct rpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_of_range(struct rpc_call *call, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rpc_reply_status(call, GRPC_STATUS_OUT_OF_RANGE, msg);
}

static void push_handle(struct ps_job *ps, struct rpc_call *call,
                        const Saturn__V1__PushRequest *req);

void ps_land_push(struct ps_job *ps, struct rpc_land *land, const Saturn__V1__PushRequest *req)
{
    if (!ps->ready || ps->staleness != 0 || req->shard >= (uint32_t)ps->nshards ||
        req->rank >= (uint32_t)ps->world)
        return;
    struct ps_shard *sh = &ps->shards[req->shard];
    if (req->step != ps->clock || sh->have[req->rank] || sh->n == 0)
        return;
    land->field = 5; /* PushRequest.gradient */
    land->dst = sh->slots + (size_t)req->rank * sh->n;
    land->len = sh->n * sizeof(float);
}

/* The gradient of a push: in its slot when it landed there as it was
 * decoded (ps_land_push), else in the request; *len is its byte count. */
static const float *push_gradient(const struct ps_job *ps, struct rpc_call *call,
                                  const Saturn__V1__PushRequest *req, size_t *len)
{
    if (rpc_call_landed(call)) {
        const struct ps_shard *sh = &ps->shards[req->shard];
        *len = sh->n * sizeof(float);
        return sh->slots + (size_t)req->rank * sh->n;
    }
    *len = req->gradient.len;
    return (const float *)(const void *)req->gradient.data;
}

/* Every Push that reaches the handler counts in the statistics, refused
 * ones included (their bytes crossed the wire too): its payload bytes and
 * the handler's time, which includes applying a step (checkpoints and the
 * final model are written in the thread pool). */
void ps_push(struct ps_job *ps, struct rpc_call *call, const Saturn__V1__PushRequest *req)
{
    struct coord *c = ps->c;
    uint64_t t0 = uv_hrtime();
    size_t glen;
    push_gradient(ps, call, req, &glen);
    size_t bytes = glen + req->bn_stats.len;
    push_handle(ps, call, req);
    c->stats.push_bytes += bytes;
    coord_hist_observe(&c->stats.push_s, (double)(uv_hrtime() - t0) * 1e-9);
}

static void push_handle(struct ps_job *ps, struct rpc_call *call,
                        const Saturn__V1__PushRequest *req)
{
    if (!ps->ready) {
        rpc_reply_err(call, SAT_ESTATE, "job %s: the parameter server is being set up",
                      ps->job->id);
        return;
    }
    /* Validate everything before touching anything: a refused push
     * changes nothing. */
    if (!shard_rank_ok(ps, call, req->shard, req->rank))
        return;
    struct ps_shard *sh = &ps->shards[req->shard];
    size_t glen;
    const float *grad = push_gradient(ps, call, req, &glen);
    if (glen != sh->n * sizeof(float)) {
        rpc_reply_err(call, SAT_EINVAL,
                      "field \"gradient\": %zu bytes; shard %" PRIu32 " needs %zu (%zu float32)",
                      glen, req->shard, sh->n * sizeof(float), sh->n);
        return;
    }
    size_t bn_want = req->shard == 0 ? ps->bn_count * sizeof(float) : 0;
    if (req->bn_stats.len != bn_want) {
        rpc_reply_err(call, SAT_EINVAL,
                      "field \"bn_stats\": %zu bytes; shard %" PRIu32 " needs %zu",
                      req->bn_stats.len, req->shard, bn_want);
        return;
    }
    if (req->batch_size != (uint32_t)ps->local_batch) {
        rpc_reply_err(call, SAT_EINVAL,
                      "field \"batch_size\": %" PRIu32 " is not the job's local batch %d",
                      req->batch_size, ps->local_batch);
        return;
    }
    if (req->step >= ps->total_steps) {
        out_of_range(call, "step %" PRIu64 " is out of range: the job has %" PRIu64 " steps",
                     req->step, ps->total_steps);
        return;
    }
    uint32_t r = req->rank;
    /* The bytes are little-endian float32; so is every host saturnd runs
     * on (x86-64, aarch64). */
    const float *bn_in = (const float *)(const void *)req->bn_stats.data;
    char why[SAT_ERR_LEN];
    if (ps__check_push(ps, grad, sh->n, bn_in, bn_want / sizeof(float), why) != 0) {
        rpc_reply_err(call, SAT_EINVAL, "%s", why);
        return;
    }
    if (ps->staleness == 0) {
        if (req->step < ps->clock || (req->step == ps->clock && sh->have[r])) {
            reply_push(call, ps->clock, true);
            return;
        }
        if (req->step > ps->clock) {
            out_of_range(call,
                         "step %" PRIu64 " is ahead of the job's version %" PRIu64
                         " (bsp: pull version %" PRIu64 " first)",
                         req->step, ps->clock, req->step);
            return;
        }
        if (!rpc_call_landed(call)) /* else the gradient is in the slot already */
            memcpy(sh->slots + (size_t)r * sh->n, grad, sh->n * sizeof(float));
        if (req->shard == 0 && ps->bn_count)
            memcpy(ps->bn_slots + (size_t)r * ps->bn_count, bn_in, ps->bn_count * sizeof(float));
        sh->have[r] = 1;
        sh->nhave++;
        sh->pushed[r] = req->step + 1;
        bool all = true;
        for (int s = 0; s < ps->nshards && all; s++)
            all = ps->shards[s].nhave == ps->world;
        if (all)
            bsp_apply(ps);
        reply_push(call, sh->clock, false);
        if (all) {
            ps__wake_pulls(ps);
            clock_moved(ps);
        }
        return;
    }
    /* ssp / asp: each rank pushes its steps in order. */
    if (req->step < sh->pushed[r]) {
        reply_push(call, sh->version, true);
        return;
    }
    if (req->step > sh->pushed[r]) {
        out_of_range(call,
                     "rank %" PRIu32 " pushed step %" PRIu64 " of shard %" PRIu32
                     " before step %" PRIu64,
                     r, req->step, req->shard, sh->pushed[r]);
        return;
    }
    if (ps->staleness > 0 && req->step > sh->clock + (uint64_t)ps->staleness) {
        out_of_range(
            call, "step %" PRIu64 " is more than %d steps ahead of the slowest rank (%" PRIu64 ")",
            req->step, ps->staleness, sh->clock);
        return;
    }
    async_apply(ps, sh, (int)req->shard, r, grad, bn_in);
    sh->pushed[r] = req->step + 1;
    uint64_t before = sh->clock;
    shard_update_clock(ps, sh);
    reply_push(call, sh->version, false);
    ps__wake_pulls(ps);
    if (sh->clock != before)
        clock_moved(ps);
}
