/* epochs.c - a job's finished epochs for GetJob (epochs.h): every metrics
 * row of kind "epoch", oldest first, with the quantizer states stored with
 * it (a JSON array, job_progress_quant_json) turned into QuantStats.
 */
#include "epochs.h"
#include "progress.h"
#include "store.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../common/util/err.h"
#include "../common/util/xalloc.h"

static float finite_or(double v, float def)
{
    return isfinite(v) ? (float)v : def;
}

/* The quantizer states stored as JSON, as messages of slot s. */
static int quant_add(struct epoch_slot *s, const char *json)
{
    if (!json || !*json)
        return 0;
    cJSON *a = cJSON_Parse(json);
    int n = job_quant_from_json(a, &s->quant);
    cJSON_Delete(a);
    if (n == 0)
        return 0;
    s->qs = sat_calloc((size_t)n, sizeof *s->qs);
    s->qp = sat_calloc((size_t)n, sizeof *s->qp);
    if (!s->qs || !s->qp)
        return SAT_ENOMEM;
    job_quant_to_pb(s->quant, n, s->qs, s->qp);
    s->msg.n_quant = (size_t)n;
    s->msg.quant = s->qp;
    return 0;
}

static int on_row(void *arg, const struct store_metric *m)
{
    struct epoch_results *r = arg;
    if (strcmp(m->kind, "epoch") != 0)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct epoch_slot *p = sat_realloc(r->slots, cap * sizeof *p);
        if (!p)
            return SAT_ENOMEM;
        r->slots = p;
        r->cap = cap;
    }
    struct epoch_slot *s = &r->slots[r->n++];
    memset(s, 0, sizeof *s);
    Saturn__V1__EpochResult *e = &s->msg;
    saturn__v1__epoch_result__init(e);
    e->epoch = m->epoch > 0 && m->epoch <= UINT32_MAX ? (uint32_t)m->epoch : 0;
    e->step = m->step;
    e->time_ms = m->time_ms;
    e->loss = finite_or(m->loss, NAN);
    e->train_acc = finite_or(m->train_acc, 0.0f);
    e->test_acc = finite_or(m->test_acc, -1.0f);
    e->images_per_s = finite_or(m->images_per_s, 0.0f);
    e->lr = finite_or(m->lr, 0.0f);
    return quant_add(s, m->quant_json);
}

int epoch_results_load(struct store *st, const char *job_id, struct epoch_results *r)
{
    memset(r, 0, sizeof *r);
    int rc = store_metrics_load(st, job_id, on_row, r);
    if (rc != 0 || r->n == 0)
        return rc;
    r->ptrs = sat_calloc(r->n, sizeof *r->ptrs);
    if (!r->ptrs)
        return SAT_ENOMEM;
    for (size_t i = 0; i < r->n; i++)
        r->ptrs[i] = &r->slots[i].msg; /* now that slots no longer move */
    return 0;
}

void epoch_results_free(struct epoch_results *r)
{
    for (size_t i = 0; i < r->n; i++) {
        sat_free(r->slots[i].quant);
        sat_free(r->slots[i].qs);
        sat_free(r->slots[i].qp);
    }
    sat_free(r->slots);
    sat_free(r->ptrs);
    memset(r, 0, sizeof *r);
}
