/* test_calibrate.c - `alpha_init: calibrate` (common/train/calibrate.c):
 * the percentile is the exact nearest-rank order statistic; calibration
 * gives bit-identical alphas for 1 and 2 threads and leaves the BN running
 * statistics alone; the parameter server's path (calib_rank0, 2 workers)
 * calibrates on the batch rank 0's worker trains on first; and a 2-bit
 * preresnet20, whose FC input follows a global average pool that the fixed
 * alpha 10 rounds to 0 (every logit exactly 0 at the start), gets non-zero
 * logits once calibrated. (A 2-bit cnn-small, whose FC reads BN outputs
 * through max pooling, does not start at zero; it is checked for the rest.)
 */
#include "check.h"
#include "nn/threads.h"
#include "train/trainer.h"
#include "util/rng.h"
#include "util/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The percentile against a full sort, for percentiles whose rank is exact
 * in decimal (pct * n / 100 computed in integers). */
static void test_percentile(void)
{
    float v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = (float)((i * 7919) % 1000 + 1); /* 1..1000, shuffled */
    float w[1000];
    memcpy(w, v, sizeof v);
    CHECK(calib_percentile(w, 1000, 99.9f) == 999.0f);
    memcpy(w, v, sizeof v);
    CHECK(calib_percentile(w, 1000, 100.0f) == 1000.0f);
    memcpy(w, v, sizeof v);
    CHECK(calib_percentile(w, 1000, 50.0f) == 500.0f);
    memcpy(w, v, sizeof v);
    CHECK(calib_percentile(w, 1000, 50.05f) == 501.0f); /* rank ceil(500.5) */
    memcpy(w, v, sizeof v);
    CHECK(calib_percentile(w, 1000, 0.01f) == 1.0f); /* rank ceil(0.1) = 1 */
    float one = -3.5f;
    CHECK(calib_percentile(&one, 1, 99.9f) == -3.5f);
    float dup[] = {2, 2, 2, 1, 1, 3, 2, 2};
    CHECK(calib_percentile(dup, 8, 75.0f) == 2.0f);
    float bad[] = {1, NAN, 3};
    CHECK(isnan(calib_percentile(bad, 3, 50.0f)));
    float inf[] = {1, INFINITY, 3};
    CHECK(isnan(calib_percentile(inf, 3, 50.0f)));
    CHECK(isnan(calib_percentile(v, 0, 50.0f)));
    CHECK(isnan(calib_percentile(w, 10, 0.0f)));
    CHECK(isnan(calib_percentile(w, 10, 100.5f)));

    /* Random data, many sizes and percentiles, ties included. */
    struct sat_rng r;
    sat_rng_init(&r, 12345);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + (size_t)(sat_rng_below(&r, 3000));
        float *a = sat_malloc(n * sizeof *a), *s = sat_malloc(n * sizeof *s);
        int levels = trial % 3 == 0 ? 7 : 1 << 20; /* few distinct values: many ties */
        for (size_t i = 0; i < n; i++)
            a[i] = (float)((int)sat_rng_below(&r, (uint32_t)levels) - levels / 2) * 0.25f;
        memcpy(s, a, n * sizeof *a);
        qsort(s, n, sizeof *s, cmp_float);
        int pm = 1 + (int)sat_rng_below(&r, 1000); /* pct = pm / 10 */
        size_t rank = ((size_t)pm * n + 999) / 1000;
        if (rank < 1)
            rank = 1;
        float got = calib_percentile(a, n, (float)pm / 10.0f);
        if (got != s[rank - 1])
            fprintf(stderr, "  n %zu pct %g: %g, want %g\n", n, pm / 10.0, (double)got,
                    (double)s[rank - 1]);
        CHECK(got == s[rank - 1]);
        sat_free(a);
        sat_free(s);
    }
}

/* A 2-bit cnn-small trainer on Fashion-MNIST when it is installed (the
 * data the fixed FC alpha is too large for), else the synthetic set. */
static bool have_fmnist(void)
{
    return access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0 ||
           access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte", R_OK) == 0;
}

static int setup(struct trainer *t, const char *model, bool calibrate)
{
    char json[512], err[SAT_ERR_LEN];
    snprintf(json, sizeof json,
             "{\"model\":\"%s\",\"dataset\":\"%s\",\"train_limit\":256,\"test_limit\":64,"
             "\"epochs\":1,\"batch_size\":32,\"wbits\":2,\"abits\":2,\"seed\":5,"
             "\"alpha_init\":\"%s\"}",
             model, have_fmnist() ? "fashion-mnist" : "synthetic",
             calibrate ? "calibrate" : "fixed");
    struct job_spec spec;
    int rc = jobspec_parse(&spec, json, strlen(json), err);
    if (rc == 0)
        rc = trainer_init_local(t, &spec, err);
    if (rc)
        fprintf(stderr, "  setup: %s\n", err);
    return rc;
}

/* The alphas of m, in table order, into out (cap); returns how many. */
static int alphas(struct model *m, float *out, int cap)
{
    const struct param_table *pt = model_param_table(m);
    int n = 0;
    for (int i = 0; i < pt->n; i++)
        if (pt->e[i].role == ROLE_ALPHA && n < cap)
            out[n++] = model_params(m)[pt->e[i].offset];
    return n;
}

/* Logits of step 0's batch (train mode, as step 0 sees them) that are
 * exactly 0; *total receives their count. */
static int zero_logits(struct trainer *t, int *total)
{
    double loss;
    int ok, z = 0;
    train_compute(t, 0, &loss, &ok);
    const float *lg = model_logits(t->model);
    *total = t->train.nclass * t->local_batch;
    for (int i = 0; i < *total; i++)
        z += lg[i] == 0.0f;
    return z;
}

/* Rank `rank` of `world`'s shard as a worker holds it: the images in shard
 * order (what saturnd streams). */
static void shard_copy(struct dataset *out, const struct dataset *ds, uint64_t seed, int rank,
                       int world)
{
    uint32_t n = dataset_shard_size((uint32_t)ds->n, rank, world);
    uint32_t *idx = sat_malloc(n * sizeof *idx);
    dataset_shard(idx, (uint32_t)ds->n, seed, rank, world);
    size_t img = (size_t)ds->c * ds->h * ds->w;
    *out = *ds;
    out->n = (int)n;
    out->pixels = sat_malloc(n * img);
    out->labels = sat_malloc(n);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(out->pixels + i * img, ds->pixels + idx[i] * img, img);
        out->labels[i] = ds->labels[idx[i]];
    }
    sat_free(idx);
}

static void test_cnn_small(void)
{
    struct trainer a, b, p, q;
    float aa[16], ab[16], ap[16], aq[16], fixed[16];
    CHECK_EQ_INT(setup(&a, "cnn-small", true), 0);
    CHECK_EQ_INT(setup(&b, "cnn-small", true), 0);
    CHECK_EQ_INT(setup(&p, "cnn-small", true), 0);
    CHECK_EQ_INT(setup(&q, "cnn-small", true), 0);
    int na = alphas(a.model, fixed, 16), total;
    CHECK(na == 2);
    int z0 = zero_logits(&a, &total);

    size_t nb = model_buffer_table(a.model)->total;
    float *bn = sat_malloc(nb * sizeof *bn);
    memcpy(bn, model_buffers(b.model), nb * sizeof *bn);
    char err[SAT_ERR_LEN];
    int set1 = 0, set2 = 0, setp = 0, setq = 0;
    nn_set_threads(1);
    CHECK_EQ_INT(trainer_calibrate(&a, &set1, err), 0);
    nn_set_threads(2);
    CHECK_EQ_INT(trainer_calibrate(&b, &set2, err), 0);
    CHECK_EQ_INT(set1, na);
    CHECK_EQ_INT(set2, na);
    CHECK_EQ_INT(alphas(a.model, aa, 16), na);
    CHECK_EQ_INT(alphas(b.model, ab, 16), na);
    CHECK(memcmp(aa, ab, (size_t)na * sizeof(float)) == 0);
    for (int i = 0; i < na; i++) {
        fprintf(stderr, "  cnn-small W2A2 alpha %d: fixed %g, calibrated %g\n", i, (double)fixed[i],
                (double)aa[i]);
        CHECK(aa[i] > 0 && aa[i] != fixed[i]);
    }
    CHECK(memcmp(bn, model_buffers(b.model), nb * sizeof *bn) == 0);
    int z1 = zero_logits(&a, &total);
    fprintf(stderr,
            "  cnn-small W2A2: %d of %d logits exactly 0 at step 0 (fixed), %d calibrated\n", z0,
            total, z1);
    CHECK(z1 < total);

    /* The parameter server's path with 2 workers: rank 0's step-0 batch as
     * that worker builds it from the shard saturnd streams to it. */
    struct model_cfg cfg = *model_get_cfg(p.model);
    CHECK_EQ_INT(calib_rank0(p.model, &cfg, &p.train, &p.spec, 2, &setp, err), 0);
    struct dataset sh;
    shard_copy(&sh, &q.train, q.spec.seed, 0, 2);
    CHECK_EQ_INT(calib_first_batch(q.model, &sh, q.all_idx, (uint32_t)sh.n, &q.spec,
                                   q.spec.batch_size / 2, 0, &setq, err),
                 0);
    CHECK_EQ_INT(setp, na);
    CHECK_EQ_INT(setq, na);
    CHECK_EQ_INT(alphas(p.model, ap, 16), na);
    CHECK_EQ_INT(alphas(q.model, aq, 16), na);
    CHECK(memcmp(ap, aq, (size_t)na * sizeof(float)) == 0);
    dataset_free(&sh);
    sat_free(bn);
    trainer_close(&a);
    trainer_close(&b);
    trainer_close(&p);
    trainer_close(&q);
}

/* A network whose FC input follows a global average pool: at 2 bits the
 * fixed alpha 10 rounds every pooled feature to 0. */
static void test_gap_model(void)
{
    if (!have_fmnist()) {
        fprintf(stderr, "  (Fashion-MNIST not installed: the all-zero start is not checked)\n");
        return;
    }
    struct trainer a;
    char err[SAT_ERR_LEN];
    CHECK_EQ_INT(setup(&a, "preresnet20", true), 0);
    int total, z0 = zero_logits(&a, &total);
    CHECK_EQ_INT(z0, total);
    int nset = 0;
    CHECK_EQ_INT(trainer_calibrate(&a, &nset, err), 0);
    int z1 = zero_logits(&a, &total);
    fprintf(stderr,
            "  preresnet20 W2A2: %d of %d logits exactly 0 at step 0 (fixed), %d calibrated "
            "(%d alphas)\n",
            z0, total, z1, nset);
    CHECK(z1 < total / 10);
    trainer_close(&a);
}

int main(void)
{
    test_percentile();
    test_cnn_small();
    test_gap_model();
    return check_summary("calibrate");
}
