/* train_loop.c - a worker's training loop for one assignment (train_loop.h).
 *
 *   GetLayout (waits while saturnd loads the data set) -> FetchData (the
 *   rank's train shard and test split, in windows) -> trainer_init(rank,
 *   world) -> for each step from the rank's resume point:
 *       pull every shard (min_version = step) -> copy into the model ->
 *       train_compute(step) (THE step of saturn-train) -> push each
 *       shard's gradient slice (+ the BN buffers with shard 0)
 *   -> ReportMetrics every REPORT_EVERY steps; at an epoch end, pull the
 *   end-of-epoch parameters (exact), evaluate the rank's test split and
 *   report the epoch (train counts + eval counts).
 *
 * The step schedule (steps per epoch, total) is the PS's, which takes the
 * smallest shard, so every rank agrees. A worker that takes over the rank
 * of a lost one starts where the PS says the rank stands (GetLayout's
 * next_step, and eval_epoch when the evaluation of the epoch that just
 * ended is still owed); everything a step computes comes from the pulled
 * parameters and (seed, epoch, rank), so the rank goes on exactly as the
 * lost worker would have. The loop stops cleanly when the
 * session says so (run_ctl), when ReportMetrics answers stop, or when a PS
 * call says the job is gone (NOT_FOUND / FAILED_PRECONDITION). Every call
 * has a deadline; transient failures (UNAVAILABLE, DEADLINE_EXCEEDED) are
 * retried while the assignment lasts.
 *
 * When training ends by itself (all steps done, or saturnd says the job is
 * over) worker_run_assignment returns, the session reaps the runner and
 * keeps the lease: the worker is idle again once saturnd has ended the job.
 */
#include "train_loop.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "saturn.pb-c.h"

#include "../common/nn/threads.h"
#include "../common/train/trainer.h"
#include "../common/util/clock.h"
#include "../common/util/log.h"
#include "../common/util/xalloc.h"

#define REPORT_EVERY 20
#define LAYOUT_TIMEOUT_MS 15000
#define PULL_TIMEOUT_MS 15000
#define CALL_TIMEOUT_MS 30000
#define RETRY_PAUSE_MS 200
#define FETCH_WINDOW 0 /* 0: let saturnd size the window */

enum { CALL_OK = 0, CALL_RETRY = 1, CALL_STOP = 2, CALL_ERROR = 3 };

struct wt {
    struct rpc_client *rpc;
    const struct worker_assignment *a;
    struct run_ctl *ctl;
    struct job_spec spec;
    Saturn__V1__GetLayoutResponse *layout;
    struct trainer t;
    bool have_trainer;
    char *err;
};

/* Sorts a failed call: the job is gone (stop), a transient problem
 * (retry), or an error (the loop ends with it). */
static int classify(struct wt *w, const char *what, const struct rpc_status *st)
{
    switch (st->code) {
    case GRPC_STATUS_OK:
        return CALL_OK;
    case GRPC_STATUS_NOT_FOUND:
    case GRPC_STATUS_FAILED_PRECONDITION:
        log_info("train: %s: %s: %s; stopping", what, rpc_status_name(st->code), st->details);
        return CALL_STOP;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_CANCELLED:
        log_debug("train: %s: %s: %s; retrying", what, rpc_status_name(st->code), st->details);
        return run_ctl_wait(w->ctl, RETRY_PAUSE_MS) ? CALL_STOP : CALL_RETRY;
    default:
        snprintf(w->err, SAT_ERR_LEN, "%.40s: %.30s: %.160s", what, rpc_status_name(st->code),
                 st->details);
        return CALL_ERROR;
    }
}

/* A unary call retried while transient, whose response decodes with land
 * (NULL: none, see rpc_unary_into); returns CALL_OK with *resp, or
 * CALL_STOP / CALL_ERROR. */
static int call_into(struct wt *w, const char *what, const char *method,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *d,
                     struct rpc_land *land, ProtobufCMessage **resp, int timeout_ms)
{
    for (;;) {
        if (run_ctl_stopped(w->ctl))
            return CALL_STOP;
        struct rpc_status st;
        if (rpc_unary_into(w->rpc, method, req, d, land, resp, timeout_ms, &st) == 0)
            return CALL_OK;
        int k = classify(w, what, &st);
        if (k != CALL_RETRY)
            return k;
    }
}

static int call(struct wt *w, const char *what, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp, int timeout_ms)
{
    return call_into(w, what, method, req, d, NULL, resp, timeout_ms);
}

/* ==== data ================================================================= */

/* Fetches one split of this rank into ds, (N, C, H, W) as the engine wants. */
static int fetch_split(struct wt *w, const char *split, struct dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    uint32_t got = 0, total = UINT32_MAX;
    size_t img = 0;
    while (got < total) {
        Saturn__V1__FetchDataRequest req = SATURN__V1__FETCH_DATA_REQUEST__INIT;
        req.worker_id = (char *)w->a->worker_id;
        req.job_id = (char *)w->a->job_id;
        req.attempt = w->a->attempt;
        req.split = (char *)split;
        req.rank = w->a->rank;
        req.world_size = w->a->world_size;
        req.first = got;
        req.max_examples = FETCH_WINDOW;
        struct rpc_stream *s;
        struct rpc_status st;
        if (rpc_stream_open(w->rpc, "/saturn.v1.Worker/FetchData", &req.base, CALL_TIMEOUT_MS * 4,
                            &s, &st) != 0) {
            int k = classify(w, "FetchData", &st);
            if (k == CALL_RETRY)
                continue;
            return k;
        }
        uint32_t before = got;
        int k = CALL_OK;
        for (;;) {
            ProtobufCMessage *m;
            int rc = rpc_stream_read(s, &saturn__v1__data_chunk__descriptor, &m, &st);
            if (rc == 0)
                break;
            if (rc < 0) {
                k = classify(w, "FetchData", &st);
                break;
            }
            const Saturn__V1__DataChunk *ch = (const Saturn__V1__DataChunk *)m;
            if (total == UINT32_MAX) {
                total = ch->total;
                ds->n = (int)total;
                ds->c = (int)ch->channels;
                ds->h = (int)ch->height;
                ds->w = (int)ch->width;
                ds->nclass = (int)ch->num_classes;
                img = (size_t)ds->c * ds->h * ds->w;
                if (ds->c < 1 || ds->c > 4 || ds->h < 1 || ds->h > DATASET_MAX_DIM || ds->w < 1 ||
                    ds->w > DATASET_MAX_DIM || total > DATASET_MAX_IMAGES || ds->nclass < 1) {
                    rpc_msg_free(m);
                    snprintf(w->err, SAT_ERR_LEN, "FetchData: implausible shape");
                    k = CALL_ERROR;
                    break;
                }
                ds->pixels = sat_malloc((size_t)(total ? total : 1) * img);
                ds->labels = sat_malloc(total ? total : 1);
                if (!ds->pixels || !ds->labels) {
                    rpc_msg_free(m);
                    snprintf(w->err, SAT_ERR_LEN, "out of memory for %" PRIu32 " images", total);
                    k = CALL_ERROR;
                    break;
                }
            }
            bool ok = ch->first == got && ch->count > 0 && got + ch->count <= total &&
                      ch->images.len == (size_t)ch->count * img && ch->labels.len == ch->count &&
                      ch->total == total && (int)ch->channels == ds->c;
            if (!ok) {
                rpc_msg_free(m);
                snprintf(w->err, SAT_ERR_LEN, "FetchData: chunk at %" PRIu32 " does not fit", got);
                k = CALL_ERROR;
                break;
            }
            size_t hw = (size_t)ds->h * ds->w;
            for (uint32_t i = 0; i < ch->count; i++) {
                const uint8_t *in = ch->images.data + (size_t)i * img; /* (H, W, C) */
                uint8_t *out = ds->pixels + (size_t)(got + i) * img;   /* (C, H, W) */
                for (size_t p = 0; p < hw; p++)
                    for (int c = 0; c < ds->c; c++)
                        out[(size_t)c * hw + p] = in[p * (size_t)ds->c + (size_t)c];
                uint8_t lab = ch->labels.data[i];
                if (lab >= ds->nclass) {
                    ok = false;
                    break;
                }
                ds->labels[got + i] = lab;
            }
            got += ch->count;
            rpc_msg_free(m);
            if (!ok) {
                snprintf(w->err, SAT_ERR_LEN, "FetchData: a label out of range");
                k = CALL_ERROR;
                break;
            }
        }
        rpc_stream_close(s);
        if (k == CALL_RETRY)
            continue;
        if (k != CALL_OK) {
            dataset_free(ds);
            return k;
        }
        if (total == UINT32_MAX) {
            total = 0; /* an empty split sends no chunk */
            ds->n = 0;
        }
        if (got == before && got < total) {
            dataset_free(ds);
            snprintf(w->err, SAT_ERR_LEN, "FetchData: no progress at %" PRIu32 "/%" PRIu32, got,
                     total);
            return CALL_ERROR;
        }
    }
    return CALL_OK;
}

/* ==== pull / push / report ================================================= */

/* Pulls every shard into the model's parameters and BN buffers. The
 * values are copied once, from the received slices straight into the
 * parameters (rpc_land), and only from a response that decoded whole. */
static int pull_all(struct wt *w, uint64_t min_version, bool exact)
{
    float *params = model_params(w->t.model), *bufs = model_buffers(w->t.model);
    size_t nbn = model_buffer_table(w->t.model)->total;
    for (size_t s = 0; s < w->layout->n_shards; s++) {
        const Saturn__V1__ShardInfo *si = w->layout->shards[s];
        Saturn__V1__PullRequest req = SATURN__V1__PULL_REQUEST__INIT;
        req.job_id = (char *)w->a->job_id;
        req.shard = si->id;
        req.min_version = min_version;
        req.rank = w->a->rank;
        req.exact = exact;
        req.attempt = w->a->attempt;
        size_t want = si->count * sizeof(float);
        struct rpc_land land = {.field = 2 /* values */, .dst = params + si->offset, .len = want};
        ProtobufCMessage *m;
        int k = call_into(w, "Pull", "/saturn.v1.ParameterServer/Pull", &req.base,
                          &saturn__v1__pull_response__descriptor, &land, &m, PULL_TIMEOUT_MS);
        if (k != CALL_OK)
            return k;
        const Saturn__V1__PullResponse *r = (const Saturn__V1__PullResponse *)m;
        bool ok = (land.landed || r->values.len == want) &&
                  (si->id != 0 || r->bn_buffers.len == nbn * sizeof(float));
        if (ok) {
            if (!land.landed && want) /* short values are not read in place */
                memcpy(params + si->offset, r->values.data, want);
            if (si->id == 0 && nbn)
                memcpy(bufs, r->bn_buffers.data, r->bn_buffers.len);
        }
        rpc_msg_free(m);
        if (!ok) {
            snprintf(w->err, SAT_ERR_LEN, "Pull: shard %" PRIu32 " has the wrong size", si->id);
            return CALL_ERROR;
        }
    }
    return CALL_OK;
}

static int push_all(struct wt *w, uint64_t step)
{
    const float *grads = model_grads(w->t.model), *bufs = model_buffers(w->t.model);
    size_t nbn = model_buffer_table(w->t.model)->total;
    for (size_t s = 0; s < w->layout->n_shards; s++) {
        const Saturn__V1__ShardInfo *si = w->layout->shards[s];
        Saturn__V1__PushRequest req = SATURN__V1__PUSH_REQUEST__INIT;
        req.job_id = (char *)w->a->job_id;
        req.shard = si->id;
        req.rank = w->a->rank;
        req.step = step;
        req.gradient.data = (uint8_t *)(grads + si->offset);
        req.gradient.len = si->count * sizeof(float);
        req.batch_size = (uint32_t)w->t.local_batch;
        if (si->id == 0) {
            req.bn_stats.data = (uint8_t *)bufs;
            req.bn_stats.len = nbn * sizeof(float);
        }
        req.attempt = w->a->attempt;
        ProtobufCMessage *m;
        int k = call(w, "Push", "/saturn.v1.ParameterServer/Push", &req.base,
                     &saturn__v1__push_response__descriptor, &m, CALL_TIMEOUT_MS);
        if (k != CALL_OK)
            return k;
        rpc_msg_free(m);
    }
    return CALL_OK;
}

/* Training counts over a window of steps (or a whole epoch). */
struct window {
    int steps;
    double loss_sum, pull, compute, push, t0, last_step;
    uint64_t correct, seen;
};

static void window_reset(struct window *x)
{
    memset(x, 0, sizeof *x);
    x->t0 = sat_mono_s();
}

static int report(struct wt *w, uint64_t step, int epoch, const struct window *x, bool epoch_end,
                  long eval_correct, long eval_seen)
{
    Saturn__V1__ReportMetricsRequest req = SATURN__V1__REPORT_METRICS_REQUEST__INIT;
    req.worker_id = (char *)w->a->worker_id;
    req.job_id = (char *)w->a->job_id;
    req.attempt = w->a->attempt;
    req.rank = w->a->rank;
    req.step = step;
    req.epoch = (uint32_t)epoch;
    double dt = sat_mono_s() - x->t0;
    if (x->steps > 0) {
        req.loss = (float)(x->loss_sum / x->steps);
        req.train_correct = x->correct;
        req.train_seen = x->seen;
        req.window_steps = (uint32_t)x->steps;
        req.step_seconds = x->last_step;
        req.pull_seconds = x->pull / x->steps;
        req.compute_seconds = x->compute / x->steps;
        req.push_seconds = x->push / x->steps;
        req.images_per_second = dt > 0 ? (double)x->seen / dt : 0;
    }
    req.epoch_end = epoch_end;
    req.eval_correct = (uint64_t)(eval_correct > 0 ? eval_correct : 0);
    req.eval_seen = (uint64_t)(eval_seen > 0 ? eval_seen : 0);
    ProtobufCMessage *m;
    int k = call(w, "ReportMetrics", "/saturn.v1.Worker/ReportMetrics", &req.base,
                 &saturn__v1__report_metrics_response__descriptor, &m, CALL_TIMEOUT_MS);
    if (k != CALL_OK)
        return k;
    bool stop = ((const Saturn__V1__ReportMetricsResponse *)m)->stop;
    rpc_msg_free(m);
    if (stop) {
        log_info("train: %s: saturnd says the job is over; stopping", w->a->job_id);
        return CALL_STOP;
    }
    return CALL_OK;
}

/* Pulls the parameters at the end of epoch `epoch` (exact), evaluates this
 * rank's test split and reports the epoch. */
static int epoch_end(struct wt *w, uint64_t next_step, int epoch, const struct window *ep)
{
    int k = pull_all(w, next_step, true);
    if (k != CALL_OK)
        return k;
    double ls = 0;
    long ok = 0, cnt = 0;
    if (w->t.test.n > 0)
        train_evaluate(&w->t, &ls, &ok, &cnt);
    log_info("train: %s rank %" PRIu32 ": epoch %d/%d: loss %.4f, train accuracy %.4f, test "
             "accuracy on this rank's %ld images %.4f",
             w->a->job_id, w->a->rank, epoch + 1, w->spec.epochs,
             ep->steps ? ep->loss_sum / ep->steps : NAN,
             ep->seen ? (double)ep->correct / (double)ep->seen : 0.0, cnt,
             cnt ? (double)ok / (double)cnt : 0.0);
    return report(w, next_step, epoch, ep, true, ok, cnt);
}

/* ==== the loop ============================================================= */

static int train(struct wt *w)
{
    struct trainer *t = &w->t;
    uint64_t spe = w->layout->steps_per_epoch, total = w->layout->total_steps;
    uint64_t it = w->layout->next_step;
    uint64_t held = UINT64_MAX; /* the model holds exactly version `held` (exact pull) */
    struct window win, ep;
    window_reset(&win);
    window_reset(&ep);
    log_info("train: %s rank %" PRIu32 "/%" PRIu32 ": %" PRIu64 " steps/epoch, %" PRIu64
             " steps, starting at step %" PRIu64 " (%s, %d threads)",
             w->a->job_id, w->a->rank, w->a->world_size, spe, total, it, w->layout->consistency,
             nn_threads());
    if (w->layout->eval_epoch > 0) {
        /* Taken over from a worker that pushed the epoch's last step but
         * did not report its evaluation: evaluate it now. */
        log_info("train: %s rank %" PRIu32 ": evaluating epoch %" PRIu32
                 " for the worker this rank was taken over from",
                 w->a->job_id, w->a->rank, w->layout->eval_epoch);
        int k = epoch_end(w, it, (int)w->layout->eval_epoch - 1, &ep);
        if (k != CALL_OK)
            return k;
        held = it;
    }
    while (it < total) {
        if (run_ctl_stopped(w->ctl))
            return CALL_STOP;
        double t0 = sat_mono_s();
        int k = CALL_OK;
        if (held != it)
            k = pull_all(w, it, false);
        if (k != CALL_OK)
            return k;
        held = UINT64_MAX;
        double t1 = sat_mono_s();
        double loss;
        int correct;
        train_compute(t, (long)it, &loss, &correct);
        double t2 = sat_mono_s();
        k = push_all(w, it);
        if (k != CALL_OK)
            return k;
        double t3 = sat_mono_s();
        struct window *xs[2] = {&win, &ep};
        for (int i = 0; i < 2; i++) {
            struct window *x = xs[i];
            x->steps++;
            x->loss_sum += loss;
            x->correct += (uint64_t)correct;
            x->seen += (uint64_t)t->local_batch;
            x->pull += t1 - t0;
            x->compute += t2 - t1;
            x->push += t3 - t2;
            x->last_step = t3 - t0;
        }
        it++;
        int epoch = (int)((it - 1) / spe);
        bool end = it % spe == 0;
        if (win.steps >= REPORT_EVERY || end) {
            k = report(w, it, epoch, &win, false, 0, 0);
            if (k != CALL_OK)
                return k;
            window_reset(&win);
        }
        if (end) {
            k = epoch_end(w, it, epoch, &ep);
            if (k != CALL_OK)
                return k;
            held = it;
            window_reset(&ep);
        }
    }
    return CALL_OK;
}

int worker_train(struct rpc_client *rpc, const struct worker_assignment *a, struct run_ctl *ctl,
                 char err[SAT_ERR_LEN])
{
    struct wt w = {.rpc = rpc, .a = a, .ctl = ctl, .err = err};
    err[0] = 0;
    int rc = jobspec_parse(&w.spec, a->spec_json, strlen(a->spec_json), err);
    if (rc != 0)
        return rc;
    nn_set_threads((int)a->threads);

    Saturn__V1__GetLayoutRequest lreq = SATURN__V1__GET_LAYOUT_REQUEST__INIT;
    lreq.job_id = (char *)a->job_id;
    lreq.rank = a->rank;
    lreq.attempt = a->attempt;
    ProtobufCMessage *lm = NULL;
    int k = call(&w, "GetLayout", "/saturn.v1.ParameterServer/GetLayout", &lreq.base,
                 &saturn__v1__get_layout_response__descriptor, &lm, LAYOUT_TIMEOUT_MS);
    if (k != CALL_OK)
        return k == CALL_ERROR ? SAT_EINTERNAL : 0;
    w.layout = (Saturn__V1__GetLayoutResponse *)lm;
    if (w.layout->steps_per_epoch == 0 || w.layout->n_shards == 0) {
        rpc_msg_free(lm);
        return sat_errf(err, SAT_EFORMAT, "GetLayout: empty schedule or no shards");
    }

    struct dataset train_ds, test_ds;
    double f0 = sat_mono_s();
    k = fetch_split(&w, "train", &train_ds);
    if (k == CALL_OK) {
        k = fetch_split(&w, "test", &test_ds);
        if (k != CALL_OK)
            dataset_free(&train_ds);
    }
    if (k != CALL_OK) {
        rpc_msg_free(lm);
        return k == CALL_ERROR ? SAT_EIO : 0;
    }
    log_info("train: %s rank %" PRIu32 ": %d training and %d test images fetched in %.2f s",
             a->job_id, a->rank, train_ds.n, test_ds.n, sat_mono_s() - f0);
    rc = trainer_init(&w.t, &w.spec, &train_ds, &test_ds, (int)a->rank, (int)a->world_size, err);
    if (rc != 0) {
        rpc_msg_free(lm);
        return rc;
    }
    w.have_trainer = true;
    size_t np = model_param_table(w.t.model)->total, nb = model_buffer_table(w.t.model)->total;
    if (np != w.layout->param_count || nb != w.layout->bn_count) {
        rc = sat_errf(err, SAT_ESHAPE,
                      "the model has %zu parameters and %zu BN values; saturnd's has %" PRIu64
                      " and %" PRIu64,
                      np, nb, w.layout->param_count, w.layout->bn_count);
    } else {
        /* The PS's schedule: the smallest shard sets the steps per epoch. */
        w.t.steps_per_epoch = (long)w.layout->steps_per_epoch;
        w.t.total_steps = (long)w.layout->total_steps;
        k = train(&w);
        if (k == CALL_ERROR)
            rc = SAT_EINTERNAL;
        else if (k == CALL_OK)
            log_info("train: %s rank %" PRIu32 ": all %" PRIu64 " steps done", a->job_id, a->rank,
                     w.layout->total_steps);
    }
    trainer_close(&w.t);
    rpc_msg_free(lm);
    return rc;
}

int worker_run_assignment(struct rpc_client *rpc, const struct worker_assignment *a,
                          struct run_ctl *ctl, char err[SAT_ERR_LEN])
{
    log_info("run: training %s rank %u/%u (attempt %u)", a->job_id, a->rank, a->world_size,
             a->attempt);
    int rc = worker_train(rpc, a, ctl, err);
    log_info("run: %s rank %u %s", a->job_id, a->rank,
             rc != 0                ? "failed"
             : run_ctl_stopped(ctl) ? "stopped"
                                    : "done");
    return rc;
}
