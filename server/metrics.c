/* metrics.c - Worker.ReportMetrics, a job's progress, and the epoch
 * results kept in SQLite.
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
 */
#include "ps/ps.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/nn/quant.h"
#include "../common/train/trainer.h"
#include "../common/util/log.h"
#include "../common/util/xalloc.h"

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

void job_progress_clear(struct job_progress *p)
{
    sat_free(p->quant);
    memset(p, 0, sizeof *p);
    p->test_acc = -1.0f;
    p->eta_s = -1.0;
}

/* ==== progress ============================================================= */

/* Per-layer alphas (from the parameters) and SAT factors (the PS model
 * never runs forward, so s is computed from its weights here). */
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
    struct job_quant *out = sat_calloc((size_t)(nq + nw ? nq + nw : 1), sizeof *out);
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
        out[k].is_alpha = true;
        out[k].value = qi[i].value;
        k++;
    }
    for (int i = 0; i < nw; i++) {
        model_weight_layer(m, i, &wl);
        if (!wl.sat)
            continue;
        const struct param_entry *e = &pt->e[wl.param_index];
        struct wquant q = {.bits = wl.bits, .clamp = wl.clamp, .sat = wl.sat, .fan = wl.fan};
        snprintf(out[k].name, sizeof out[k].name, "%s", wl.name);
        out[k].is_alpha = false;
        out[k].value = wquant_forward(weff, dfac, model_params(m) + e->offset, e->numel, &q, NULL);
        k++;
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

/* ==== JSON (the progress table) ============================================ */

static char *quant_json(const struct job_progress *p)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < p->nquant; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->quant[i].name);
        cJSON_AddStringToObject(o, "kind", p->quant[i].is_alpha ? "alpha" : "sat");
        cJSON_AddNumberToObject(o, "value", p->quant[i].value);
        cJSON_AddItemToArray(a, o);
    }
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

static char *progress_json(const struct job_progress *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "epoch", p->epoch);
    cJSON_AddNumberToObject(o, "epochs", p->epochs);
    cJSON_AddNumberToObject(o, "step", (double)p->step);
    cJSON_AddNumberToObject(o, "total_steps", (double)p->total_steps);
    cJSON_AddNumberToObject(o, "steps_per_epoch", (double)p->steps_per_epoch);
    cJSON_AddNumberToObject(o, "loss", p->loss);
    cJSON_AddNumberToObject(o, "train_acc", p->train_acc);
    cJSON_AddNumberToObject(o, "test_acc", p->test_acc);
    cJSON_AddNumberToObject(o, "test_epoch", p->test_epoch);
    cJSON_AddNumberToObject(o, "images_per_s", p->images_per_s);
    cJSON_AddNumberToObject(o, "lr", p->lr);
    cJSON_AddStringToObject(o, "param_digest", p->digest);
    cJSON_AddNumberToObject(o, "skipped_steps", (double)p->skipped);
    cJSON_AddNumberToObject(o, "elapsed_s", p->elapsed_s);
    cJSON_AddStringToObject(o, "model_path", p->model_path);
    cJSON *a = cJSON_AddArrayToObject(o, "quant");
    for (int i = 0; i < p->nquant; i++) {
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "name", p->quant[i].name);
        cJSON_AddStringToObject(q, "kind", p->quant[i].is_alpha ? "alpha" : "sat");
        cJSON_AddNumberToObject(q, "value", p->quant[i].value);
        cJSON_AddItemToArray(a, q);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static double num(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

static int progress_from_json(struct job_progress *p, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    if (!o)
        return SAT_EFORMAT;
    job_progress_clear(p);
    p->valid = true;
    p->epoch = (uint32_t)num(o, "epoch", 0);
    p->epochs = (uint32_t)num(o, "epochs", 0);
    p->step = (uint64_t)num(o, "step", 0);
    p->total_steps = (uint64_t)num(o, "total_steps", 0);
    p->steps_per_epoch = (uint64_t)num(o, "steps_per_epoch", 0);
    p->loss = (float)num(o, "loss", 0);
    p->train_acc = (float)num(o, "train_acc", 0);
    p->test_acc = (float)num(o, "test_acc", -1);
    p->test_epoch = (uint32_t)num(o, "test_epoch", 0);
    p->images_per_s = (float)num(o, "images_per_s", 0);
    p->lr = (float)num(o, "lr", 0);
    p->skipped = (uint64_t)num(o, "skipped_steps", 0);
    p->elapsed_s = num(o, "elapsed_s", 0);
    snprintf(p->digest, sizeof p->digest, "%s", str(o, "param_digest"));
    snprintf(p->model_path, sizeof p->model_path, "%s", str(o, "model_path"));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "quant");
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    if (n > 0) {
        p->quant = sat_calloc((size_t)n, sizeof *p->quant);
        for (int i = 0; p->quant && i < n; i++) {
            const cJSON *q = cJSON_GetArrayItem(a, i);
            snprintf(p->quant[i].name, sizeof p->quant[i].name, "%s", str(q, "name"));
            p->quant[i].is_alpha = strcmp(str(q, "kind"), "alpha") == 0;
            p->quant[i].value = (float)num(q, "value", 0);
        }
        p->nquant = p->quant ? n : 0;
    }
    cJSON_Delete(o);
    return 0;
}

void coord_progress_save(struct coord *c, struct job *j)
{
    if (!j->prog.valid)
        return;
    char *s = progress_json(&j->prog);
    if (!s || store_progress_put(c->store, j->id, s) != 0)
        log_error("metrics: %s: progress not persisted", j->id);
    if (s)
        cJSON_free(s);
}

static int progress_row(void *arg, const char *job_id, const char *json)
{
    struct coord *c = arg;
    struct job *j = coord_job_find(c, job_id);
    if (j && progress_from_json(&j->prog, json) != 0)
        log_warn("metrics: %s: stored progress does not parse; ignored", job_id);
    return 0;
}

int coord_progress_load(struct coord *c)
{
    return store_progress_load(c->store, progress_row, c);
}

/* ==== protobuf ============================================================= */

void job_progress_to_pb(const struct job_progress *p, const char *consistency,
                        Saturn__V1__JobProgress *m, Saturn__V1__QuantStat *quant,
                        Saturn__V1__QuantStat **quant_ptrs)
{
    saturn__v1__job_progress__init(m);
    m->epoch = p->epoch;
    m->epochs = p->epochs;
    m->step = p->step;
    m->total_steps = p->total_steps;
    m->steps_per_epoch = p->steps_per_epoch;
    m->loss = p->loss;
    m->train_acc = p->train_acc;
    m->test_acc = p->test_acc;
    m->test_epoch = p->test_epoch;
    m->images_per_s = p->images_per_s;
    m->lr = p->lr;
    m->param_digest = (char *)p->digest;
    m->skipped_steps = p->skipped;
    m->eta_s = p->eta_s;
    m->elapsed_s = p->elapsed_s;
    m->model_path = (char *)p->model_path;
    m->consistency = (char *)consistency;
    m->pull_s = p->pull_s;
    m->compute_s = p->compute_s;
    m->push_s = p->push_s;
    if (quant && quant_ptrs) {
        for (int i = 0; i < p->nquant; i++) {
            saturn__v1__quant_stat__init(&quant[i]);
            quant[i].name = (char *)p->quant[i].name;
            quant[i].kind = p->quant[i].is_alpha ? "alpha" : "sat";
            quant[i].value = p->quant[i].value;
            quant_ptrs[i] = &quant[i];
        }
        m->n_quant = (size_t)p->nquant;
        m->quant = quant_ptrs;
    }
}

void coord_progress_publish(struct coord *c, struct job *j)
{
    if (!j->watchers || !j->prog.valid)
        return;
    Saturn__V1__JobProgress pm;
    job_progress_to_pb(&j->prog, j->consistency, &pm, NULL, NULL);
    Saturn__V1__JobEvent ev = SATURN__V1__JOB_EVENT__INIT;
    ev.seq = 0;
    ev.job_id = j->id;
    ev.time_ms = coord_now_ms();
    ev.kind = "progress";
    ev.state = (Saturn__V1__JobState)j->state;
    ev.message = "";
    ev.worker_id = "";
    ev.progress = &pm;
    coord_event_send_pb(c, j, &ev);
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
    char *qj = quant_json(p);
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

void ps_report_metrics(struct coord *c, struct rpc_call *call,
                       const Saturn__V1__ReportMetricsRequest *req)
{
    struct job *j = coord_job_find(c, req->job_id);
    if (!j) {
        rpc_reply_err(call, SAT_ENOENT, "job \"%.64s\" not found", req->job_id);
        return;
    }
    Saturn__V1__ReportMetricsResponse resp = SATURN__V1__REPORT_METRICS_RESPONSE__INIT;
    struct ps_job *ps = j->ps;
    if (j->state != JOB_RUNNING || !ps || (req->attempt && req->attempt != j->attempt)) {
        resp.stop = true; /* the job (this attempt of it) is over */
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
        ps_maybe_finish(ps); /* may end the job and free ps */
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (now - ps->last_progress_ms >= PS_PROGRESS_EVERY_MS) {
        ps_progress_refresh(ps, false);
        coord_progress_publish(c, j);
        ps->last_progress_ms = now;
    }
}
