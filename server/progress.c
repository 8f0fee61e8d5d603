/* progress.c - a job's training progress (struct job_progress) as a value:
 * cleared, written to and read from the store as JSON, turned into the
 * protobuf JobProgress, and published to watchers as a live "progress"
 * event. Who computes it is the parameter server's business (ps/); this
 * file only moves it around (progress.h).
 */
#include "progress.h"
#include "events.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "saturn.pb-c.h"

#include "../common/util/log.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

void job_progress_clear(struct job_progress *p)
{
    sat_free(p->quant);
    memset(p, 0, sizeof *p);
    p->test_acc = -1.0f;
    p->eta_s = -1.0;
}

/* ==== quantizer states ===================================================== */

static const char *const quant_kind_names[JQ_NKINDS] = {
    [JQ_ALPHA] = "alpha",
    [JQ_SAT] = "sat",
    [JQ_WVAR] = "wvar",
};

const char *job_quant_kind_name(enum job_quant_kind k)
{
    return (unsigned)k < JQ_NKINDS ? quant_kind_names[k] : "unknown";
}

int job_quant_kind_parse(const char *s)
{
    for (int k = 0; k < JQ_NKINDS; k++)
        if (strcmp(s, quant_kind_names[k]) == 0)
            return k;
    return -1;
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

int job_quant_from_json(const cJSON *a, struct job_quant **out)
{
    *out = NULL;
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    if (n <= 0)
        return 0;
    struct job_quant *q = sat_calloc((size_t)n, sizeof *q);
    if (!q)
        return 0;
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        int kind = job_quant_kind_parse(str(it, "kind"));
        if (kind < 0)
            continue; /* a kind of a later version */
        snprintf(q[k].name, sizeof q[k].name, "%s", str(it, "name"));
        sat_utf8_sanitize(q[k].name); /* stored rows may come from older versions */
        q[k].kind = (enum job_quant_kind)kind;
        q[k].value = (float)num(it, "value", 0);
        k++;
    }
    *out = q;
    return k;
}

void job_quant_to_pb(const struct job_quant *q, int n, Saturn__V1__QuantStat *qs,
                     Saturn__V1__QuantStat **qp)
{
    for (int i = 0; i < n; i++) {
        saturn__v1__quant_stat__init(&qs[i]);
        qs[i].name = (char *)q[i].name;
        qs[i].kind = (char *)job_quant_kind_name(q[i].kind);
        qs[i].value = q[i].value;
        qp[i] = &qs[i];
    }
}

/* ==== JSON (the progress table) ============================================ */

/* The quantizer states as a JSON array [{name, kind, value}] added to a
 * (NULL: a new array). */
static cJSON *quant_array(const struct job_progress *p, cJSON *a)
{
    if (!a)
        a = cJSON_CreateArray();
    for (int i = 0; a && i < p->nquant; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->quant[i].name);
        cJSON_AddStringToObject(o, "kind", job_quant_kind_name(p->quant[i].kind));
        cJSON_AddNumberToObject(o, "value", p->quant[i].value);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

char *job_progress_quant_json(const struct job_progress *p)
{
    cJSON *a = quant_array(p, NULL);
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
    quant_array(p, cJSON_AddArrayToObject(o, "quant"));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int job_progress_from_json(struct job_progress *p, const char *json)
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
    p->nquant = job_quant_from_json(cJSON_GetObjectItemCaseSensitive(o, "quant"), &p->quant);
    /* Stored by an older version, possibly not UTF-8: repair for replies. */
    sat_utf8_sanitize(p->digest);
    sat_utf8_sanitize(p->model_path);
    cJSON_Delete(o);
    return 0;
}

void coord_progress_save(struct coord *c, struct job *j)
{
    if (!j->prog.valid)
        return;
    char *s = progress_json(&j->prog);
    if (!s || store_progress_put(c->store, j->id, s) != 0)
        log_error("progress: %s: not persisted", j->id);
    if (s)
        cJSON_free(s);
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
        job_quant_to_pb(p->quant, p->nquant, quant, quant_ptrs);
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

