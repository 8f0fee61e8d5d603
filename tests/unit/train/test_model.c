/* test_model.c - whole-model checks for every zoo model: it builds for
 * 1x28x28 and 3x32x32 with the normative structure (parameter counts), and
 * its backward matches central finite differences of the loss.
 *
 * Finite differences: FP32 models in train mode (BN batch statistics) on a
 * small input; each sampled parameter is perturbed by eps = 1e-2 (float32
 * forward, loss accumulated in double); the check passes when
 * |fd - analytic| <= 3e-3 + 5e-2 * |fd|. Kinks of ReLU / max pool can move a
 * few samples; at most 5% of the sampled parameters may miss.
 *
 * Threads: one training step's loss, gradients and running statistics are
 * bit-identical with 1 and with 3 engine threads, also when the model was
 * built with 1 and stepped with 3, for each conv model in FP32 and W4A4 at a
 * batch large enough that every kernel splits its work.
 */
#include "check.h"
#include "nn/model.h"
#include "nn/threads.h"
#include "util/rng.h"

#include <stdlib.h>

static double loss_at(struct model *m, const float *x, const int32_t *y, int n)
{
    return model_forward(m, x, y, n, 1, NULL);
}

static void fd_check(const char *arch, int c, int hw, int n)
{
    struct model_cfg cfg;
    model_cfg_defaults(&cfg, arch, c, hw, hw, 10, n);
    cfg.seed = 11;
    struct model *m = NULL;
    char err[SAT_ERR_LEN];
    int rc = model_new(&m, &cfg, err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        return;
    size_t img = (size_t)c * hw * hw;
    float *x = malloc(img * n * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(12, 0, 0, 0));
    for (size_t i = 0; i < img * n; i++)
        x[i] = (float)sat_rng_uniform(&r);
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)(i % 10);
    /* Bigger FC weights than the 0.01 init, so that gradients upstream of the
     * head are not tiny. */
    const struct param_table *pt = model_param_table(m);
    float *p = model_params(m);
    for (int e = 0; e < pt->n; e++)
        if (pt->e[e].role == ROLE_FC_W)
            for (size_t j = 0; j < pt->e[e].numel; j++)
                p[pt->e[e].offset + j] *= getenv("FD_SCALE") ? (float)atof(getenv("FD_SCALE")) : 1.0f;
    float *bufs = model_buffers(m);
    size_t nb = model_buffer_table(m)->total;
    float *bsave = malloc(nb * sizeof(float));
    memcpy(bsave, bufs, nb * sizeof(float));

    loss_at(m, x, y, n);
    model_zero_grad(m);
    model_backward(m, 1.0f / n);
    float *g = malloc(pt->total * sizeof(float));
    memcpy(g, model_grads(m), pt->total * sizeof(float));

    int tried = 0, missed = 0;
    for (int e = 0; e < pt->n; e++) {
        /* a few elements of every tensor */
        for (int s = 0; s < 3 && s < (int)pt->e[e].numel; s++) {
            size_t j = pt->e[e].offset + (size_t)sat_rng_below(&r, (uint32_t)pt->e[e].numel);
            const double eps = getenv("FD_EPS") ? atof(getenv("FD_EPS")) : 1e-3;
            float keep = p[j];
            p[j] = keep + (float)eps;
            double lp = loss_at(m, x, y, n);
            p[j] = keep - (float)eps;
            double lm = loss_at(m, x, y, n);
            p[j] = keep;
            double fd = (lp - lm) / (2 * eps);
            tried++;
            if (!(fabs(fd - g[j]) <= 3e-3 + 5e-2 * fabs(fd))) {
                missed++;
                fprintf(stderr, "  %s %s[%zu]: fd %.6g analytic %.6g\n", arch, pt->e[e].name,
                        j - pt->e[e].offset, fd, g[j]);
            }
        }
    }
    memcpy(bufs, bsave, nb * sizeof(float));
    fprintf(stderr, "%s: %d of %d sampled gradients off\n", arch, missed, tried);
    CHECK(tried > 10);
    CHECK(missed <= tried / 20);
    free(g);
    free(bsave);
    free(x);
    free(y);
    model_free(m);
}

static size_t count_params(const char *arch, int c, int hw, int wbits)
{
    struct model_cfg cfg;
    model_cfg_defaults(&cfg, arch, c, hw, hw, 10, 2);
    cfg.wbits = cfg.abits = cfg.last_abits = wbits;
    if (wbits < 32)
        cfg.first_wbits = cfg.last_wbits = 8;
    struct model *m = NULL;
    char err[SAT_ERR_LEN];
    if (model_new(&m, &cfg, err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 0;
    }
    size_t n = model_param_table(m)->total;
    /* a forward pass on zeros works and gives finite loss */
    float *x = calloc((size_t)c * hw * hw * 2, sizeof(float));
    int32_t y[2] = {0, 1};
    double l = model_forward(m, x, y, 2, 1, NULL);
    CHECK(isfinite(l));
    model_zero_grad(m);
    model_backward(m, 0.5f);
    free(x);
    model_free(m);
    return n;
}

/* Loss, gradients and buffers of one train step with `threads` threads. */
struct step_result {
    double loss;
    float *g, *b; /* malloc'd copies, freed by the caller */
    size_t ng, nb;
};

/* The model is built with `threads_new` engine threads and stepped with
 * `threads`: more threads than at model_new must stay safe (the conv
 * scratch is sized for the former). */
static void step_with_threads(struct step_result *res, const char *arch, int bits,
                              int threads_new, int threads)
{
    const int n = 12, hw = 28;
    struct model_cfg cfg;
    model_cfg_defaults(&cfg, arch, 1, hw, hw, 10, n);
    if (bits < 32) {
        cfg.wbits = cfg.abits = cfg.last_abits = bits;
        cfg.first_wbits = cfg.last_wbits = 8;
    }
    memset(res, 0, sizeof *res);
    nn_set_threads(threads_new);
    struct model *m = NULL;
    char err[SAT_ERR_LEN];
    if (model_new(&m, &cfg, err) != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    nn_set_threads(threads);
    float *x = malloc((size_t)n * hw * hw * sizeof(float));
    int32_t y[12];
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(13, 0, 0, 0));
    for (size_t i = 0; i < (size_t)n * hw * hw; i++)
        x[i] = (float)sat_rng_uniform(&r);
    for (int i = 0; i < n; i++)
        y[i] = (int32_t)(i % 10);
    res->loss = model_forward(m, x, y, n, 1, NULL);
    model_zero_grad(m);
    model_backward(m, 1.0f / n);
    res->ng = model_param_table(m)->total;
    res->nb = model_buffer_table(m)->total;
    res->g = malloc(res->ng * sizeof(float));
    res->b = malloc(res->nb * sizeof(float));
    memcpy(res->g, model_grads(m), res->ng * sizeof(float));
    memcpy(res->b, model_buffers(m), res->nb * sizeof(float));
    free(x);
    model_free(m);
}

static void threads_check(const char *arch, int bits)
{
    const int saved = nn_threads();
    struct step_result r[3];
    step_with_threads(&r[0], arch, bits, 1, 1);
    step_with_threads(&r[1], arch, bits, 3, 3);
    step_with_threads(&r[2], arch, bits, 1, 3);
    nn_set_threads(saved);
    for (int k = 1; k < 3; k++) {
        CHECK(r[0].g && r[k].g);
        if (!r[0].g || !r[k].g)
            continue;
        if (memcmp(&r[0].loss, &r[k].loss, sizeof r[0].loss) != 0 ||
            memcmp(r[0].g, r[k].g, r[0].ng * sizeof(float)) != 0 ||
            memcmp(r[0].b, r[k].b, r[0].nb * sizeof(float)) != 0) {
            fprintf(stderr, "%s bits %d: run %d differs from 1 thread\n", arch, bits, k);
            CHECK(0);
        }
    }
    for (int k = 0; k < 3; k++) {
        free(r[k].g);
        free(r[k].b);
    }
}

int main(void)
{
    /* Parameter counts of the normative structures (weights + BN affine +
     * FC bias; FP32 has no alphas), computed by hand from spec/models.md. */
    /* mlp: 784*256 + 2*256 + 256*10 + 10 */
    CHECK_EQ_INT(count_params("mlp", 1, 28, 32), 784 * 256 + 256 + 512 + 2560 + 10);
    /* cnn-small: 9*16 + 32 + 16*32*9 + 64 + 1568*10 + 10 */
    CHECK_EQ_INT(count_params("cnn-small", 1, 28, 32), 144 + 32 + 4608 + 64 + 15680 + 10);
    /* cnn-small W4A4 adds two alphas */
    CHECK_EQ_INT(count_params("cnn-small", 1, 28, 4), 144 + 32 + 4608 + 64 + 15680 + 10 + 2);
    /* preresnet20 for 3 channels: the well-known ~0.27M */
    size_t pr = count_params("preresnet20", 3, 32, 32);
    CHECK(pr > 260000 && pr < 285000);
    CHECK(count_params("preresnet20", 1, 28, 4) > 0);
    CHECK(count_params("mobilenetv1", 1, 28, 32) > 0);
    CHECK(count_params("mobilenetv1", 3, 32, 4) > 0);
    CHECK(count_params("mobilenetv2", 1, 28, 32) > 0);
    CHECK(count_params("mobilenetv2", 3, 32, 4) > 0);
    CHECK(count_params("mlp", 3, 32, 2) > 0);

    struct model *bad = NULL;
    struct model_cfg cfg;
    char err[SAT_ERR_LEN];
    model_cfg_defaults(&cfg, "resnet1000", 1, 28, 28, 10, 4);
    CHECK_EQ_INT(model_new(&bad, &cfg, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "unknown model");

    fd_check("mlp", 1, 8, 6);
    fd_check("cnn-small", 1, 8, 6);
    fd_check("preresnet20", 2, 8, 4);
    fd_check("mobilenetv1", 1, 16, 8);
    fd_check("mobilenetv2", 1, 16, 4);

    static const char *const conv_models[] = {"cnn-small", "preresnet20", "mobilenetv1",
                                              "mobilenetv2"};
    for (int i = 0; i < 4; i++) {
        threads_check(conv_models[i], 32);
        threads_check(conv_models[i], 4);
    }
    return check_summary("model");
}
