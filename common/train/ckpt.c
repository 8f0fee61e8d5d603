/* ckpt.c - model checkpoints in safetensors, and the parameter digest. */
#include "trainer.h"

#include "../ckpt/safetensors.h"
#include "../util/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_FORMAT "saturn-ckpt-1"

static void entry_tensor(struct st_tensor *st, const struct param_entry *e, const char *name,
                         const float *data)
{
    memset(st, 0, sizeof *st);
    st->name = name;
    st->dtype = ST_F32;
    st->ndim = e->ndim;
    for (int d = 0; d < e->ndim; d++)
        st->shape[d] = e->shape[d];
    st->data = data;
}

int ckpt_save(const char *path, struct model *m, const float *mom, const struct job_spec *spec,
              long step, char err[SAT_ERR_LEN])
{
    const struct param_table *pt = model_param_table(m), *bt = model_buffer_table(m);
    int n = pt->n * (mom ? 2 : 1) + bt->n;
    struct st_tensor *ts = sat_calloc((size_t)n, sizeof *ts);
    char(*names)[PARAM_NAME_LEN + 16] = sat_calloc((size_t)n, sizeof *names);
    char *spec_json = jobspec_to_json(spec);
    int rc;
    if (!ts || !names || !spec_json) {
        rc = sat_errf(err, SAT_ENOMEM, "out of memory");
        goto out;
    }
    int k = 0;
    for (int i = 0; i < pt->n; i++, k++) {
        snprintf(names[k], sizeof names[k], "%s", pt->e[i].name);
        entry_tensor(&ts[k], &pt->e[i], names[k], model_params(m) + pt->e[i].offset);
    }
    for (int i = 0; i < bt->n; i++, k++) {
        snprintf(names[k], sizeof names[k], "%s", bt->e[i].name);
        entry_tensor(&ts[k], &bt->e[i], names[k], model_buffers(m) + bt->e[i].offset);
    }
    for (int i = 0; mom && i < pt->n; i++, k++) {
        snprintf(names[k], sizeof names[k], "opt.momentum.%s", pt->e[i].name);
        entry_tensor(&ts[k], &pt->e[i], names[k], mom + pt->e[i].offset);
    }
    char step_s[32], seed_s[32];
    snprintf(step_s, sizeof step_s, "%ld", step);
    snprintf(seed_s, sizeof seed_s, "%" PRIu64, spec->seed);
    struct st_meta meta[] = {
        {"saturn.format", CKPT_FORMAT}, {"saturn.arch", model_get_cfg(m)->arch},
        {"saturn.step", step_s},        {"saturn.seed", seed_s},
        {"saturn.spec", spec_json},
    };
    rc = st_write(path, ts, n, meta, (int)(sizeof meta / sizeof meta[0]), err);
out:
    sat_free(ts);
    sat_free(names);
    sat_free(spec_json);
    return rc;
}

static int load_entry(const struct st_file *f, const struct param_entry *e, const char *name,
                      float *dst, const char *path, char err[SAT_ERR_LEN])
{
    const struct st_tensor *t = st_find(f, name);
    if (!t)
        return sat_errf(err, SAT_EFORMAT, "%s: checkpoint has no tensor \"%s\"", path, name);
    int ok = t->dtype == ST_F32 && t->ndim == e->ndim;
    for (int d = 0; ok && d < e->ndim; d++)
        ok = t->shape[d] == e->shape[d];
    if (!ok)
        return sat_errf(err, SAT_ESHAPE, "%s: tensor \"%s\" has another shape or type than the model's",
                        path, name);
    memcpy(dst, t->data, e->numel * sizeof(float));
    return 0;
}

/* Opens a checkpoint and checks that it is Saturn's and of m's model. */
static int ckpt_open_for(struct st_file **out, const char *path, const struct model *m,
                         char err[SAT_ERR_LEN])
{
    struct st_file *f = NULL;
    int rc = st_open(&f, path, err);
    if (rc != 0)
        return rc;
    const char *fmt = st_meta_get(f, "saturn.format");
    const char *arch = st_meta_get(f, "saturn.arch");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !arch || !st_meta_get(f, "saturn.step"))
        rc = sat_errf(err, SAT_EFORMAT, "%s: not a Saturn checkpoint (metadata missing)", path);
    else if (strcmp(arch, model_get_cfg(m)->arch) != 0)
        rc = sat_errf(err, SAT_ESHAPE, "%s: checkpoint is of model %s, not %s", path, arch,
                      model_get_cfg(m)->arch);
    if (rc != 0) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Loads every parameter and buffer of m; with keep_missing_alphas, an
 * alpha the file lacks (a float checkpoint) keeps its current value. */
static int load_model_tensors(const struct st_file *f, struct model *m, int keep_missing_alphas,
                              const char *path, char err[SAT_ERR_LEN])
{
    const struct param_table *pt = model_param_table(m), *bt = model_buffer_table(m);
    int rc = 0;
    for (int i = 0; i < pt->n && rc == 0; i++) {
        if (keep_missing_alphas && pt->e[i].role == ROLE_ALPHA && !st_find(f, pt->e[i].name))
            continue;
        rc = load_entry(f, &pt->e[i], pt->e[i].name, model_params(m) + pt->e[i].offset, path, err);
    }
    for (int i = 0; i < bt->n && rc == 0; i++)
        rc = load_entry(f, &bt->e[i], bt->e[i].name, model_buffers(m) + bt->e[i].offset, path,
                        err);
    return rc;
}

int ckpt_load(const char *path, struct model *m, float *mom, long *step, char err[SAT_ERR_LEN])
{
    struct st_file *f = NULL;
    int rc = ckpt_open_for(&f, path, m, err);
    if (rc != 0)
        return rc;
    const struct param_table *pt = model_param_table(m);
    rc = load_model_tensors(f, m, 0, path, err);
    if (rc == 0 && mom) {
        char name[PARAM_NAME_LEN + 16];
        snprintf(name, sizeof name, "opt.momentum.%s", pt->n ? pt->e[0].name : "");
        if (st_find(f, name)) {
            for (int i = 0; i < pt->n && rc == 0; i++) {
                snprintf(name, sizeof name, "opt.momentum.%s", pt->e[i].name);
                rc = load_entry(f, &pt->e[i], name, mom + pt->e[i].offset, path, err);
            }
        } else {
            memset(mom, 0, pt->total * sizeof(float));
        }
    }
    if (rc == 0 && step) {
        const char *st = st_meta_get(f, "saturn.step");
        char *end = NULL;
        long v = strtol(st, &end, 10);
        if (!end || *end || v < 0)
            rc = sat_errf(err, SAT_EFORMAT, "%s: bad saturn.step \"%s\"", path, st);
        else
            *step = v;
    }
    st_close(f);
    return rc;
}

int ckpt_load_init(const char *path, struct model *m, char err[SAT_ERR_LEN])
{
    struct st_file *f = NULL;
    int rc = ckpt_open_for(&f, path, m, err);
    if (rc != 0)
        return rc;
    rc = load_model_tensors(f, m, 1, path, err);
    st_close(f);
    return rc;
}

int ckpt_read_spec(const char *path, struct job_spec *spec, char err[SAT_ERR_LEN])
{
    struct st_file *f = NULL;
    int rc = st_open(&f, path, err);
    if (rc != 0)
        return rc;
    const char *js = st_meta_get(f, "saturn.spec");
    if (!js)
        rc = sat_errf(err, SAT_EFORMAT, "%s: checkpoint carries no spec", path);
    else
        rc = jobspec_parse(spec, js, strlen(js), err);
    st_close(f);
    return rc;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void param_digest(const float *params, size_t nparams, const float *buffers, size_t nbuffers,
                  char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, params, nparams * sizeof(float));
    h = fnv1a(h, buffers, nbuffers * sizeof(float));
    snprintf(out, 17, "%016" PRIx64, h);
}

void model_digest(struct model *m, char out[17])
{
    param_digest(model_params(m), model_param_table(m)->total, model_buffers(m),
                 model_buffer_table(m)->total, out);
}
