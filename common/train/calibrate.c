/* calibrate.c - `alpha_init: calibrate`: each PACT alpha set, once before
 * step 0, from a percentile of its input on the first training batch.
 *
 * The quantizers are calibrated in forward order, each on a forward pass
 * that already uses the alphas calibrated before it, so a layer sees the
 * inputs it will see at step 0. The forwards run in training mode (BN on
 * the batch's statistics, as in the step itself); the BN running
 * statistics they update are restored afterwards, so calibration changes
 * the alphas and nothing else. The percentile is an exact order statistic
 * (nearest rank, found by selection), and the engine's forward pass is
 * bit-identical for any thread count, so the result depends on the batch
 * and the percentile alone.
 */
#include "trainer.h"

#include <math.h>
#include <string.h>

#include "../nn/quant.h"
#include "../util/xalloc.h"

/* ==== the percentile ======================================================= */

static void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest (0-based) of v[0..n), by Hoare selection with a
 * median-of-three pivot (deterministic); v is reordered. The three are
 * sorted in place first, so both scans stop inside [lo, hi]. */
static float select_kth(float *v, size_t n, size_t k)
{
    long lo = 0, hi = (long)n - 1, kk = (long)k;
    while (hi > lo) {
        long mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swapf(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swapf(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swapf(&v[hi], &v[mid]);
        float pivot = v[mid];
        long i = lo, j = hi;
        do {
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j) {
                swapf(&v[i], &v[j]);
                i++;
                j--;
            }
        } while (i <= j);
        /* Now [lo, j] <= pivot <= [i, hi], and (j, i) holds the pivot. */
        if (kk <= j)
            hi = j;
        else if (kk >= i)
            lo = i;
        else
            return v[kk];
    }
    return v[kk];
}

float calib_percentile(float *v, size_t n, float pct)
{
    if (n == 0 || !(pct > 0) || !(pct <= 100))
        return NAN;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return NAN;
    /* The rank ceil(pct/100 * n), with pct read to 4 decimals so that the
     * float 99.9f (99.9000015...) means 99.9: in integers, exactly. */
    uint64_t pm = (uint64_t)llround((double)pct * 1e4); /* <= 1e6 */
    uint64_t rank = (pm * (uint64_t)n + 999999u) / 1000000u;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return select_kth(v, n, (size_t)(rank - 1));
}

/* ==== calibration of a model on a batch ==================================== */

int calib_alphas(struct model *m, const float *x, const int32_t *y, int n, float pct, int *nset,
                 char err[SAT_ERR_LEN])
{
    const struct param_table *bt = model_buffer_table(m);
    float *saved = sat_malloc((bt->total ? bt->total : 1) * sizeof(float));
    float *scratch = NULL;
    size_t scap = 0;
    int rc = 0, set = 0;
    if (!saved) {
        rc = sat_errf(err, SAT_ENOMEM, "calibrate: out of memory");
        goto out;
    }
    memcpy(saved, model_buffers(m), bt->total * sizeof(float));
    const struct param_table *pt = model_param_table(m);
    float *params = model_params(m);
    for (int i = 0; i < model_node_count(m); i++) {
        struct model_node_desc d;
        if (model_node_get(m, i, &d) != 0 || d.kind != MODEL_NODE_ACT || d.act_bits >= 32 ||
            d.alpha_param < 0)
            continue;
        model_forward(m, x, y, n, 1, NULL);
        const float *in = model_tensor_values(m, d.in);
        size_t len = (size_t)d.in_c * (size_t)n * (size_t)d.in_h * (size_t)d.in_w;
        if (!in || len == 0)
            continue;
        if (len > scap) {
            sat_free(scratch);
            scratch = sat_malloc(len * sizeof(float));
            scap = scratch ? len : 0;
            if (!scratch) {
                rc = sat_errf(err, SAT_ENOMEM, "calibrate: out of memory (%zu values)", len);
                goto out;
            }
        }
        memcpy(scratch, in, len * sizeof(float));
        float a = calib_percentile(scratch, len, pct);
        /* An input that is never positive (or not finite) keeps the fixed
         * init: alpha must be a positive clip level. */
        if (isfinite(a) && a > QUANT_ALPHA_EPS) {
            params[pt->e[d.alpha_param].offset] = a;
            set++;
        }
    }
out:
    if (saved)
        memcpy(model_buffers(m), saved, bt->total * sizeof(float));
    sat_free(saved);
    sat_free(scratch);
    if (nset)
        *nset = set;
    return rc;
}

/* ==== the first batch ====================================================== */

int calib_first_batch(struct model *m, const struct dataset *ds, const uint32_t *shard,
                      uint32_t len, const struct job_spec *spec, int local_batch, int rank,
                      int *nset, char err[SAT_ERR_LEN])
{
    if (len < (uint32_t)local_batch || local_batch < 1)
        return sat_errf(err, SAT_EINVAL, "calibrate: %u images, fewer than a batch of %d", len,
                        local_batch);
    size_t img = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    uint32_t *order = sat_malloc((size_t)len * sizeof *order);
    float *x = sat_malloc_aligned((size_t)local_batch * img * sizeof(float));
    int32_t *y = sat_malloc((size_t)local_batch * sizeof *y);
    int rc;
    if (!order || !x || !y) {
        rc = sat_errf(err, SAT_ENOMEM, "calibrate: out of memory");
    } else {
        /* Step 0's batch, built as train_compute builds it. */
        dataset_epoch_order(order, shard, len, spec->seed, 0, rank);
        struct augment aug = train_augment(spec);
        loader_fill(x, y, ds, order, local_batch, &aug, spec->seed, 0, rank, 0);
        rc = calib_alphas(m, x, y, local_batch, spec->alpha_percentile, nset, err);
    }
    sat_free(order);
    sat_free(x);
    sat_free(y);
    return rc;
}

int trainer_calibrate(struct trainer *t, int *nset, char err[SAT_ERR_LEN])
{
    return calib_first_batch(t->model, &t->train, t->all_idx, (uint32_t)t->train.n, &t->spec,
                             t->local_batch, t->rank, nset, err);
}

int calib_rank0(struct model *dst, const struct model_cfg *cfg, const struct dataset *train,
                const struct job_spec *spec, int world, int *nset, char err[SAT_ERR_LEN])
{
    int local_batch = spec->batch_size / world;
    struct model_cfg c = *cfg;
    c.batch = local_batch;
    struct model *m = NULL;
    uint32_t n = dataset_shard_size((uint32_t)train->n, 0, world);
    uint32_t *shard = sat_malloc((size_t)(n ? n : 1) * sizeof *shard);
    int rc = shard ? model_new(&m, &c, err) : sat_errf(err, SAT_ENOMEM, "out of memory");
    if (rc == 0) {
        const struct param_table *pt = model_param_table(m), *bt = model_buffer_table(m);
        memcpy(model_params(m), model_params(dst), pt->total * sizeof(float));
        memcpy(model_buffers(m), model_buffers(dst), bt->total * sizeof(float));
        dataset_shard(shard, (uint32_t)train->n, spec->seed, 0, world);
        rc = calib_first_batch(m, train, shard, n, spec, local_batch, 0, nset, err);
    }
    if (rc == 0) {
        /* Only the alphas changed: copy them back. */
        const struct param_table *pt = model_param_table(m);
        for (int i = 0; i < pt->n; i++)
            if (pt->e[i].role == ROLE_ALPHA)
                memcpy(model_params(dst) + pt->e[i].offset, model_params(m) + pt->e[i].offset,
                       pt->e[i].numel * sizeof(float));
    }
    model_free(m);
    sat_free(shard);
    return rc;
}
