/* export.c - Client.ExportModel: the trained model of a succeeded job as a
 * file streamed in chunks.
 *
 * "safetensors": every parameter (latent float weights, PACT alphas, BN
 * affine) and BN buffer under its model name, as in a checkpoint (so the
 * engine reads it back: saturn-train --eval FILE), plus for each conv/FC
 * layer "<layer>.weight_codes" (int32, the k-bit grid codes of
 * wquant_codes), "<layer>.weight_scale" (M) and "<layer>.weight_sat" (the
 * SAT factor s), with __metadata__ saying how to read them. The file is
 * written once to STATE_DIR/jobs/<id>/export.safetensors and streamed from
 * there.
 *
 * "onnx": the graph of common/export/onnx.h (opset 13, weights as integer
 * codes with DequantizeLinear, scale s/a with the SAT factor folded in;
 * PACT as Clip + QuantizeLinear/DequantizeLinear; BN kept), written once to
 * STATE_DIR/jobs/<id>/export.onnx and streamed the same way.
 */
#include "export.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/ckpt/safetensors.h"
#include "../common/data/dataset.h"
#include "../common/export/onnx.h"
#include "../common/nn/quant.h"
#include "../common/train/trainer.h"
#include "../common/util/log.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

#define EXPORT_CHUNK (1u << 20)
#define EXPORT_MAX_BYTES ((size_t)2 << 30)

static const char formula[] =
    "Weights of layer L with b = L.weight_bits < 32: a = 2^b - 1, code = L.weight_codes in "
    "[0, a], Q = (2*code - a) / a, effective weight = s * Q with s = L.weight_sat (1 when SAT "
    "does not apply). L.weight_scale is M = max|tanh(W)| of the latent weights W = L.weight, "
    "from which code = rint(a * (tanh(W)/M + 1) / 2). b = 32: effective weight = s * W (or s * "
    "tanh(W)/M with clamp). Activations A with bits k < 32: alpha = max(|A.alpha|, 1e-6), y = "
    "alpha * rint((2^k - 1) * clip(x, 0, alpha) / alpha) / (2^k - 1); without an alpha: ReLU. "
    "BatchNorm uses running_mean / running_var (eps 1e-5) at inference.";

/* Builds j's model (batch capacity 1) with the trained values of
 * model_path; spec and cfg are filled for the caller. */
static int export_load(struct job *j, const char *model_path, struct job_spec *spec,
                       struct model_cfg *cfg, struct model **res, char err[SAT_ERR_LEN])
{
    *res = NULL;
    if (!j->spec)
        return sat_errf(err, SAT_EINVAL, "the stored spec of %s no longer parses", j->id);
    *spec = *j->spec;
    int rc;
    int ch, h, w, ncls;
    if (dataset_named_shape(spec->dataset, &ch, &h, &w, &ncls) != 0)
        return sat_errf(err, SAT_EINVAL, "unknown data set %s", spec->dataset);
    trainer_model_cfg(cfg, spec, ch, h, w, ncls, 1);
    struct model *m = NULL;
    rc = model_new(&m, cfg, err);
    if (rc != 0)
        return rc;
    rc = ckpt_load(model_path, m, NULL, NULL, err);
    if (rc != 0) {
        model_free(m);
        return rc;
    }
    *res = m;
    return 0;
}

/* Writes j's model m as an ONNX graph (common/export/onnx.h) at `out`. */
static int write_onnx(struct job *j, struct model *m, const struct job_spec *spec,
                      const char *out, char err[SAT_ERR_LEN])
{
    char *spec_json = jobspec_to_json(spec);
    struct onnx_export_opts o = {
        .job = j->id,
        .spec_json = spec_json,
        .step = (long)j->prog.total_steps,
        .graph_name = NULL,
    };
    int rc = spec_json ? onnx_export(m, out, &o, err) : sat_errf(err, SAT_ENOMEM, "out of memory");
    sat_free(spec_json);
    return rc;
}

/* Writes j's model m as the safetensors export file at `out`. */
static int write_safetensors(struct job *j, struct model *m, const struct job_spec *spec,
                             const struct model_cfg *cfg, const char *out, char err[SAT_ERR_LEN])
{
    int rc = 0;
    const struct param_table *pt = model_param_table(m), *bt = model_buffer_table(m);
    int nl = 0;
    struct wlayer_info wl;
    while (model_weight_layer(m, nl, &wl) == 0)
        nl++;
    int cap = pt->n + bt->n + 3 * nl;
    struct st_tensor *ts = sat_calloc((size_t)cap, sizeof *ts);
    char(*names)[PARAM_NAME_LEN + 16] = sat_calloc((size_t)(nl ? nl : 1) * 3, sizeof *names);
    int32_t **codes = sat_calloc((size_t)(nl ? nl : 1), sizeof *codes);
    float *scal = sat_calloc((size_t)(nl ? nl : 1) * 2, sizeof *scal);
    cJSON *layers = cJSON_CreateArray();
    char *spec_json = jobspec_to_json(spec), *layers_s = NULL;
    if (!ts || !names || !codes || !scal || !layers || !spec_json) {
        rc = sat_errf(err, SAT_ENOMEM, "out of memory");
        goto out;
    }
    int k = 0;
    for (int i = 0; i < pt->n; i++, k++) {
        ts[k].name = pt->e[i].name;
        ts[k].dtype = ST_F32;
        ts[k].ndim = pt->e[i].ndim;
        for (int d = 0; d < pt->e[i].ndim; d++)
            ts[k].shape[d] = pt->e[i].shape[d];
        ts[k].data = model_params(m) + pt->e[i].offset;
    }
    for (int i = 0; i < bt->n; i++, k++) {
        ts[k].name = bt->e[i].name;
        ts[k].dtype = ST_F32;
        ts[k].ndim = bt->e[i].ndim;
        for (int d = 0; d < bt->e[i].ndim; d++)
            ts[k].shape[d] = bt->e[i].shape[d];
        ts[k].data = model_buffers(m) + bt->e[i].offset;
    }
    size_t maxw = 0;
    for (int i = 0; i < nl; i++) {
        model_weight_layer(m, i, &wl);
        if (pt->e[wl.param_index].numel > maxw)
            maxw = pt->e[wl.param_index].numel;
    }
    float *weff = sat_malloc((maxw ? maxw : 1) * sizeof(float));
    float *dfac = sat_malloc((maxw ? maxw : 1) * sizeof(float));
    if (!weff || !dfac) {
        sat_free(weff);
        sat_free(dfac);
        rc = sat_errf(err, SAT_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nl && rc == 0; i++) {
        model_weight_layer(m, i, &wl);
        const struct param_entry *e = &pt->e[wl.param_index];
        const float *wt = model_params(m) + e->offset;
        struct wquant q = {.bits = wl.bits, .clamp = wl.clamp, .sat = wl.sat, .fan = wl.fan};
        float M = 0.0f;
        float s = wquant_forward(weff, dfac, wt, e->numel, &q, &M);
        scal[2 * i] = M;
        scal[2 * i + 1] = s;
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "layer", wl.name);
        cJSON_AddStringToObject(lo, "weight", e->name);
        cJSON_AddNumberToObject(lo, "bits", wl.bits);
        cJSON_AddBoolToObject(lo, "sat", wl.sat);
        cJSON_AddNumberToObject(lo, "sat_n", wl.fan);
        cJSON_AddBoolToObject(lo, "clamp", wl.clamp);
        cJSON_AddNumberToObject(lo, "scale", M);
        cJSON_AddNumberToObject(lo, "sat_factor", s);
        if (wl.bits < 32) {
            codes[i] = sat_malloc(e->numel * sizeof(int32_t));
            if (!codes[i]) {
                rc = sat_errf(err, SAT_ENOMEM, "out of memory");
                cJSON_Delete(lo);
                break;
            }
            scal[2 * i] = wquant_codes((int *)codes[i], wt, e->numel, wl.bits);
            snprintf(names[3 * i], sizeof names[0], "%s.weight_codes", wl.name);
            ts[k].name = names[3 * i];
            ts[k].dtype = ST_I32;
            ts[k].ndim = e->ndim;
            for (int d = 0; d < e->ndim; d++)
                ts[k].shape[d] = e->shape[d];
            ts[k].data = codes[i];
            k++;
            cJSON_AddStringToObject(lo, "codes", names[3 * i]);
        }
        snprintf(names[3 * i + 1], sizeof names[0], "%s.weight_scale", wl.name);
        ts[k].name = names[3 * i + 1];
        ts[k].dtype = ST_F32;
        ts[k].ndim = 1;
        ts[k].shape[0] = 1;
        ts[k].data = &scal[2 * i];
        k++;
        snprintf(names[3 * i + 2], sizeof names[0], "%s.weight_sat", wl.name);
        ts[k].name = names[3 * i + 2];
        ts[k].dtype = ST_F32;
        ts[k].ndim = 1;
        ts[k].shape[0] = 1;
        ts[k].data = &scal[2 * i + 1];
        k++;
        cJSON_AddItemToArray(layers, lo);
    }
    sat_free(weff);
    sat_free(dfac);
    if (rc != 0)
        goto out;
    layers_s = cJSON_PrintUnformatted(layers);
    char dig[17], step_s[32], seed_s[32];
    model_digest(m, dig);
    snprintf(step_s, sizeof step_s, "%" PRIu64, j->prog.total_steps);
    snprintf(seed_s, sizeof seed_s, "%" PRIu64, spec->seed);
    struct st_meta meta[] = {
        {"saturn.format", "saturn-ckpt-1"},
        {"saturn.export", "saturn-export-1"},
        {"saturn.arch", cfg->arch},
        {"saturn.step", step_s},
        {"saturn.seed", seed_s},
        {"saturn.spec", spec_json},
        {"saturn.job", j->id},
        {"saturn.param_digest", dig},
        {"saturn.layers", layers_s ? layers_s : "[]"},
        {"saturn.formula", formula},
    };
    rc = st_write(out, ts, k, meta, (int)(sizeof meta / sizeof meta[0]), err);
out:
    for (int i = 0; codes && i < nl; i++)
        sat_free(codes[i]);
    sat_free(codes);
    sat_free(scal);
    sat_free(names);
    sat_free(ts);
    sat_free(spec_json);
    if (layers_s)
        cJSON_free(layers_s);
    cJSON_Delete(layers);
    return rc;
}

/* Loads j's trained model once and writes it in the asked format. */
static int export_write(struct job *j, const char *model_path, const char *out, bool onnx,
                        char err[SAT_ERR_LEN])
{
    struct job_spec spec;
    struct model_cfg cfg;
    struct model *m = NULL;
    int rc = export_load(j, model_path, &spec, &cfg, &m, err);
    if (rc != 0)
        return rc;
    rc = onnx ? write_onnx(j, m, &spec, out, err) : write_safetensors(j, m, &spec, &cfg, out, err);
    model_free(m);
    return rc;
}

/* Streams the export file `out` of job_id on call (1 MiB chunks). */
static void export_stream(struct rpc_call *call, const char *job_id, const char *out,
                          const char *fmt)
{
    struct stat st;
    FILE *f = fopen(out, "rb");
    if (!f || fstat(fileno(f), &st) != 0 || (size_t)st.st_size > EXPORT_MAX_BYTES) {
        if (f)
            fclose(f);
        rpc_reply_err(call, SAT_EIO, "cannot read %s", out);
        return;
    }
    uint8_t *buf = sat_malloc(EXPORT_CHUNK);
    if (!buf) {
        fclose(f);
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
        return;
    }
    uint64_t total = (uint64_t)st.st_size, off = 0;
    int rc = 0;
    while (off < total && rc == 0) {
        size_t n = fread(buf, 1, EXPORT_CHUNK, f);
        if (n == 0) {
            rc = SAT_EIO;
            break;
        }
        Saturn__V1__ModelChunk m = SATURN__V1__MODEL_CHUNK__INIT;
        m.offset = off;
        m.data.data = buf;
        m.data.len = n;
        m.total_size = total;
        m.format = (char *)fmt;
        rc = rpc_stream_send(call, &m.base);
        off += n;
    }
    fclose(f);
    sat_free(buf);
    if (rc == 0 || rc == SAT_ECANCELLED)
        rpc_stream_end(call);
    else
        rpc_reply_err(call, rc, "export of %s: %s", job_id, sat_strerror(rc));
}

/* An export written in the thread pool: the model is loaded and the file
 * written off the loop thread, then streamed from the loop. The job is a
 * copy: a succeeded job's id, spec and progress no longer change. */
struct export_work {
    uv_work_t work;
    struct rpc_call *call;
    struct job job;
    char model_path[700], out[700], fmt[16];
    bool onnx;
    int rc;
    char err[SAT_ERR_LEN];
};

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static void export_work(uv_work_t *w)
{
    struct export_work *x = container_of(w, struct export_work, work);
    x->rc = export_write(&x->job, x->model_path, x->out, x->onnx, x->err);
}

static void export_done(uv_work_t *w, int status)
{
    struct export_work *x = container_of(w, struct export_work, work);
    if (status != 0 && x->rc == 0)
        x->rc = sat_errf(x->err, SAT_EINTERNAL, "the export was cancelled");
    if (x->rc != 0) {
        log_error("export %s: %s", x->job.id, x->err);
        rpc_reply_err(x->call, x->rc, "export of %s failed: %s", x->job.id, x->err);
    } else {
        export_stream(x->call, x->job.id, x->out, x->fmt);
    }
    sat_free(x);
}

void coord_export_model(struct coord *c, struct job *j, struct rpc_call *call,
                        const Saturn__V1__ExportModelRequest *req)
{
    const char *fmt = req->format[0] ? req->format : "safetensors";
    bool onnx = strcmp(fmt, "onnx") == 0;
    if (!onnx && strcmp(fmt, "safetensors") != 0) {
        rpc_reply_err(call, SAT_EINVAL,
                      "field \"format\": \"%.*s\" is not \"safetensors\" or "
                      "\"onnx\"",
                      (int)sat_utf8_cut(fmt, 32), fmt);
        return;
    }
    if (j->state != JOB_SUCCEEDED) {
        rpc_reply_err(call, SAT_ESTATE, "job %s is %s: only a succeeded job has a trained model",
                      j->id, coord_job_state_name(j->state));
        return;
    }
    char out[700];
    snprintf(out, sizeof out, "%s/jobs/%s/export.%s", c->state_dir, j->id, fmt);
    struct stat st;
    if (stat(out, &st) == 0) {
        export_stream(call, j->id, out, fmt);
        return;
    }
    struct export_work *x = sat_calloc(1, sizeof *x);
    if (!x) {
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
        return;
    }
    x->call = call;
    x->job = *j;
    x->onnx = onnx;
    snprintf(x->fmt, sizeof x->fmt, "%s", fmt);
    snprintf(x->out, sizeof x->out, "%s", out);
    snprintf(x->model_path, sizeof x->model_path, "%s/jobs/%s/model.safetensors", c->state_dir,
             j->id);
    int rc = uv_queue_work(c->loop, &x->work, export_work, export_done);
    if (rc != 0) {
        rpc_reply_err(call, SAT_EINTERNAL, "uv_queue_work: %s", uv_strerror(rc));
        sat_free(x);
    }
}
