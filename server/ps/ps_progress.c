/* ps_progress.c - Worker.ReportMetrics, a running job's progress and
 * epoch results, and the end of training.
 *
 * Ranks report every ~20 steps (a "window": mean loss, train correct/seen,
 * images/s and the pull / compute / push split) and at each epoch end
 * (the epoch's train counts and the evaluation of the rank's part of the
 * test set on the end-of-epoch parameters). Every report becomes a row of
 * the metrics table (kind "step", its rank). When every rank has reported
 * an epoch end, the epoch's results are one more row (kind "epoch", rank
 * -1): test accuracy = sum of the ranks' eval correct / sum seen, with the
 * per-layer alphas and SAT factors of the PS model; a "metrics" event
 * says so, and the progress is persisted. Watchers also get live
 * "progress" events (never stored) at most every PS_PROGRESS_EVERY_MS.
 * When the last step is applied and the last epoch evaluated, the final
 * model is written (ps_write.c), which then reports the job's end.
 */
#include "ps.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../common/nn/quant.h"
#include "../../common/train/trainer.h"
#include "../../common/util/log.h"
#include "../../common/util/xalloc.h"

/* ==== state ================================================================ */

int ps_metrics_init(struct ps_job *ps)
{
    int E = ps->spec.epochs, W = ps->world;
    ps->rstats = sat_calloc((size_t)W, sizeof *ps->rstats);
    ps->epochs = sat_calloc((size_t)E, sizeof *ps->epochs);
    ps->ep_reported = sat_calloc((size_t)E * (size_t)W, 1);
    if (!ps->rstats || !ps->epochs || !ps->ep_reported)
        return SAT_ENOMEM;
    return 0;
}

void ps_metrics_free(struct ps_job *ps)
{
    sat_free(ps->rstats);
    sat_free(ps->epochs);
    sat_free(ps->ep_reported);
    ps->rstats = NULL;
    ps->epochs = NULL;
    ps->ep_reported = NULL;
}

/* ==== progress ============================================================= */

/* Per-layer alphas (from the parameters), SAT factors and the variance of
 * the last layer's effective weights (the PS model never runs forward, so
 * both are computed from its weights here). */
static void quant_refresh(struct ps_job *ps, struct job_progress *p)
{
    struct model *m = ps->model;
    int nq = model_quant_info(m, NULL, 0);
    int nw = 0;
    size_t maxw = 0;
    struct wlayer_info wl;
    const struct param_table *pt = model_param_table(m);
    while (model_weight_layer(m, nw, &wl) == 0) {
        if (pt->e[wl.param_index].numel > maxw)
            maxw = pt->e[wl.param_index].numel;
        nw++;
    }
    struct quant_info *qi = sat_calloc((size_t)(nq ? nq : 1), sizeof *qi);
    struct job_quant *out = sat_calloc((size_t)(nq + nw + 1), sizeof *out);
    float *weff = sat_malloc((maxw ? maxw : 1) * sizeof(float));
    float *dfac = sat_malloc((maxw ? maxw : 1) * sizeof(float));
    if (!qi || !out || !weff || !dfac) {
        sat_free(qi);
        sat_free(out);
        sat_free(weff);
        sat_free(dfac);
        return; /* keep the previous values */
    }
    model_quant_info(m, qi, nq);
    int k = 0;
    for (int i = 0; i < nq; i++) {
        if (!qi[i].is_alpha)
            continue;
        snprintf(out[k].name, sizeof out[k].name, "%s", qi[i].name);
        out[k].kind = JQ_ALPHA;
        out[k].value = qi[i].value;
        k++;
    }
    for (int i = 0; i < nw; i++) {
        bool last = i == nw - 1;
        model_weight_layer(m, i, &wl);
        if (!wl.sat && !last)
            continue;
        const struct param_entry *e = &pt->e[wl.param_index];
        struct wquant q = {.bits = wl.bits, .clamp = wl.clamp, .sat = wl.sat, .fan = wl.fan};
        float s = wquant_forward(weff, dfac, model_params(m) + e->offset, e->numel, &q, NULL);
        if (wl.sat) {
            snprintf(out[k].name, sizeof out[k].name, "%s", wl.name);
            out[k].kind = JQ_SAT;
            out[k].value = s;
            k++;
        }
        if (last) {
            snprintf(out[k].name, sizeof out[k].name, "%s", wl.name);
            out[k].kind = JQ_WVAR;
            out[k].value = (float)wquant_variance(weff, e->numel);
            k++;
        }
    }
    sat_free(p->quant);
    p->quant = out;
    p->nquant = k;
    sat_free(qi);
    sat_free(weff);
    sat_free(dfac);
}

void ps_progress_refresh(struct ps_job *ps, bool full)
{
    if (!ps->ready)
        return;
    struct job_progress *p = &ps->job->prog;
    p->valid = true;
    p->epochs = (uint32_t)ps->spec.epochs;
    p->total_steps = ps->total_steps;
    p->steps_per_epoch = ps->steps_per_epoch;
    p->step = ps->clock;
    uint64_t ep = ps->clock / ps->steps_per_epoch + 1;
    p->epoch = (uint32_t)(ep > (uint64_t)ps->spec.epochs ? (uint64_t)ps->spec.epochs : ep);
    p->skipped = ps->skipped;
    p->lr = ps->last_lr;
    double loss = 0, ips = 0, pull = 0, comp = 0, push = 0;
    uint64_t ok = 0, seen = 0;
    int n = 0;
    for (int r = 0; r < ps->world; r++) {
        const struct ps_rank_stats *s = &ps->rstats[r];
        if (!s->valid)
            continue;
        loss += s->loss;
        ips += s->ips;
        pull += s->pull_s;
        comp += s->compute_s;
        push += s->push_s;
        ok += s->correct;
        seen += s->seen;
        n++;
    }
    if (n) {
        p->loss = (float)(loss / n);
        p->images_per_s = (float)ips;
        p->pull_s = pull / n;
        p->compute_s = comp / n;
        p->push_s = push / n;
        p->train_acc = seen ? (float)((double)ok / (double)seen) : 0.0f;
    }
    p->elapsed_s = (double)(uv_now(ps->c->loop) - ps->t_start_ms) / 1000.0;
    uint64_t done = ps->clock - ps->start_step;
    p->eta_s =
        done > 0 ? p->elapsed_s * (double)(ps->total_steps - ps->clock) / (double)done : -1.0;
    if (full) {
        model_digest(ps->model, p->digest);
        quant_refresh(ps, p);
    }
}

/* ==== ReportMetrics ======================================================== */

static double nan_if(bool cond, double v)
{
    return cond ? v : NAN;
}

/* Every rank has reported epoch e: record the epoch's results. */
static void epoch_complete(struct ps_job *ps, int e)
{
    struct coord *c = ps->c;
    struct job *j = ps->job;
    const struct ps_epoch *ep = &ps->epochs[e];
    double test_acc = ep->eval_seen ? (double)ep->eval_correct / (double)ep->eval_seen : 0.0;
    double train_acc = ep->train_seen ? (double)ep->train_correct / (double)ep->train_seen : 0.0;
    double loss = ep->loss_sum / ps->world;
    ps_progress_refresh(ps, true);
    struct job_progress *p = &j->prog;
    p->test_acc = (float)test_acc;
    p->test_epoch = (uint32_t)e + 1;
    char *qj = job_progress_quant_json(p);
    struct store_metric row = {
        .job_id = j->id,
        .time_ms = coord_now_ms(),
        .kind = "epoch",
        .rank = -1,
        .epoch = e + 1,
        .step = (uint64_t)(e + 1) * ps->steps_per_epoch,
        .loss = loss,
        .train_acc = train_acc,
        .test_acc = test_acc,
        .images_per_s = ep->ips_sum,
        .lr = p->lr,
        .step_s = NAN,
        .pull_s = NAN,
        .compute_s = NAN,
        .push_s = NAN,
        .quant_json = qj ? qj : "",
    };
    if (store_metric_add(c->store, &row) != 0)
        log_error("metrics: %s: epoch %d not persisted", j->id, e + 1);
    if (qj)
        cJSON_free(qj);
    coord_progress_save(c, j);
    coord_event(c, j, "metrics", "",
                "epoch %d/%d: loss %.4f, train accuracy %.2f%%, test accuracy %.2f%% (%" PRIu64
                "/%" PRIu64 "), %.0f images/s, lr %.4g, digest %s",
                e + 1, ps->spec.epochs, loss, 100.0 * train_acc, 100.0 * test_acc, ep->eval_correct,
                ep->eval_seen, ep->ips_sum, p->lr, p->digest);
    coord_progress_publish(c, j);
    ps->last_progress_ms = uv_now(c->loop);
}

void ps_report_metrics(struct ps_job *ps, struct rpc_call *call,
                       const Saturn__V1__ReportMetricsRequest *req)
{
    struct coord *c = ps->c;
    struct job *j = ps->job;
    Saturn__V1__ReportMetricsResponse resp = SATURN__V1__REPORT_METRICS_RESPONSE__INIT;
    if (ps->finishing) {
        resp.stop = true; /* training is over */
        rpc_reply(call, &resp.base);
        return;
    }
    if (!ps->ready) {
        rpc_reply(call, &resp.base);
        return;
    }
    if (req->rank >= (uint32_t)ps->world) {
        rpc_reply_err(call, SAT_EINVAL, "field \"rank\": %" PRIu32 " is out of range (0..%d)",
                      req->rank, ps->world - 1);
        return;
    }
    if (req->epoch >= (uint32_t)ps->spec.epochs || req->step > ps->total_steps) {
        rpc_reply_err(call, SAT_EINVAL,
                      "epoch %" PRIu32 " / step %" PRIu64 " out of range (%d epochs, %" PRIu64
                      " steps)",
                      req->epoch, req->step, ps->spec.epochs, ps->total_steps);
        return;
    }
    char why[SAT_ERR_LEN];
    if (ps__check_metrics(req, why) != 0) {
        rpc_reply_err(call, SAT_EINVAL, "%s", why);
        return;
    }
    uint32_t r = req->rank;
    bool has_train = req->window_steps > 0 && req->train_seen > 0;
    if (has_train && !req->epoch_end) {
        struct ps_rank_stats *s = &ps->rstats[r];
        s->valid = true;
        s->loss = req->loss;
        s->ips = req->images_per_second;
        s->pull_s = req->pull_seconds;
        s->compute_s = req->compute_seconds;
        s->push_s = req->push_seconds;
        s->step_s = req->step_seconds;
        s->correct = req->train_correct;
        s->seen = req->train_seen;
    }
    struct store_metric row = {
        .job_id = j->id,
        .time_ms = coord_now_ms(),
        .kind = req->epoch_end ? "rank_epoch" : "step",
        .rank = (int)r,
        .epoch = req->epoch + 1,
        .step = req->step,
        .loss = nan_if(has_train, req->loss),
        .train_acc =
            nan_if(has_train, has_train ? (double)req->train_correct / (double)req->train_seen : 0),
        .test_acc = nan_if(req->eval_seen > 0,
                           req->eval_seen ? (double)req->eval_correct / (double)req->eval_seen : 0),
        .images_per_s = nan_if(has_train, req->images_per_second),
        .lr = ps->last_lr,
        .step_s = nan_if(has_train, req->step_seconds),
        .pull_s = nan_if(has_train, req->pull_seconds),
        .compute_s = nan_if(has_train, req->compute_seconds),
        .push_s = nan_if(has_train, req->push_seconds),
        .quant_json = "",
    };
    if (store_metric_add(c->store, &row) != 0)
        log_error("metrics: %s: report of rank %" PRIu32 " not persisted", j->id, r);
    int complete = -1;
    if (req->epoch_end) {
        size_t k = (size_t)req->epoch * (size_t)ps->world + r;
        if (!ps->ep_reported[k]) {
            ps->ep_reported[k] = 1;
            struct ps_epoch *ep = &ps->epochs[req->epoch];
            ep->nreported++;
            ep->eval_correct += req->eval_correct;
            ep->eval_seen += req->eval_seen;
            ep->train_correct += req->train_correct;
            ep->train_seen += req->train_seen;
            ep->loss_sum += req->loss;
            ep->ips_sum += req->images_per_second;
            if (ep->nreported == ps->world)
                complete = (int)req->epoch;
        }
    }
    rpc_reply(call, &resp.base);
    if (complete >= 0) {
        epoch_complete(ps, complete);
        ps_maybe_finish(ps);
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (now - ps->last_progress_ms >= PS_PROGRESS_EVERY_MS) {
        ps_progress_refresh(ps, false);
        coord_progress_publish(c, j);
        ps->last_progress_ms = now;
    }
}

/* ==== the end ============================================================== */

void ps_maybe_finish(struct ps_job *ps)
{
    if (ps->finishing || !ps->ready || ps->clock < ps->total_steps)
        return;
    if (ps->epochs[ps->spec.epochs - 1].nreported < ps->world)
        return; /* the last evaluation is not in yet */
    ps->finishing = true;
    ps_write_final(ps);
}
