/* test_layers.c - the layer kernels of common/nn/layers.h.
 *
 * The convolutions have their own file (test_conv.c); the helpers both use
 * are layers_check.h. Three kinds of checks:
 *  1. the OpenBLAS kernel against its plain-loop oracle (fc_forward_naive)
 *     on many shapes, including accum 0/1 and a NULL dinp;
 *  2. every backward against central finite differences of the scalar loss
 *     L = sum(out * R) (R fixed and random), computed in double from the
 *     float forward, plus the accum contract (0 overwrites, 1 adds);
 *  3. hand cases with known answers (BN running statistics and eval mode,
 *     softmax-CE limits, maxpool ties).
 * Tolerances are stated next to each check. The exit status is the verdict.
 */
#include "layers_check.h"
#include "nn/quant.h"
#include "nn/threads.h"

#include <omp.h>

/* fc with bias */
struct fc_fd {
    int n, in, outf;
    float *inp, *w, *b, *out, *r;
};

static double fc_fd_loss(void *ctx)
{
    struct fc_fd *c = ctx;
    fc_forward(c->out, c->inp, c->w, c->b, c->n, c->in, c->outf);
    return dot_d(c->out, c->r, (size_t)c->outf * c->n);
}

static void test_fc(void)
{
    struct fc_fd c = {.n = 3, .in = 5, .outf = 4};
    const size_t nin = (size_t)c.in * c.n, nout = (size_t)c.outf * c.n;
    const size_t nw = (size_t)c.outf * c.in;
    c.inp = fvec(nin);
    c.w = fvec(nw);
    c.b = fvec(c.outf);
    c.out = fvec(nout);
    c.r = fvec(nout);
    fill_uniform(c.inp, nin, -1.0f, 1.0f);
    fill_uniform(c.w, nw, -1.0f, 1.0f);
    fill_uniform(c.b, c.outf, -1.0f, 1.0f);
    fill_uniform(c.r, nout, -1.0f, 1.0f);

    /* forward vs the oracle, with and without bias, on a bigger case too:
     * sums of IN terms of magnitude <= 1, 1e-6 per term plus 1e-5 rel. */
    float *ref = fvec(nout);
    fc_forward(c.out, c.inp, c.w, c.b, c.n, c.in, c.outf);
    fc_forward_naive(ref, c.inp, c.w, c.b, c.n, c.in, c.outf);
    CHECK_ARRAY("fc fwd bias", c.out, ref, nout, 1e-5, 1e-5);
    fill_const(c.out, nout, NAN);
    fc_forward(c.out, c.inp, c.w, NULL, c.n, c.in, c.outf);
    fc_forward_naive(ref, c.inp, c.w, NULL, c.n, c.in, c.outf);
    CHECK_ARRAY("fc fwd no bias", c.out, ref, nout, 1e-5, 1e-5);
    {
        const int n = 37, in = 130, outf = 70;
        float *x = fvec((size_t)in * n), *w = fvec((size_t)outf * in), *b = fvec(outf);
        float *o = fvec((size_t)outf * n), *o2 = fvec((size_t)outf * n);
        fill_uniform(x, (size_t)in * n, -1.0f, 1.0f);
        fill_uniform(w, (size_t)outf * in, -1.0f, 1.0f);
        fill_uniform(b, outf, -1.0f, 1.0f);
        fc_forward(o, x, w, b, n, in, outf);
        fc_forward_naive(o2, x, w, b, n, in, outf);
        CHECK_ARRAY("fc fwd 130->70", o, o2, (size_t)outf * n, 1e-6 * in, 1e-5);
    }

    float *dw = pgrad(nw), *db = pgrad(c.outf), *d0, *d1, *base;
    float *dw1 = pgrad(nw), *db1 = pgrad(c.outf);
    make_dinp_pair(nin, &d0, &d1, &base);
    fc_backward(d0, dw, db, c.r, c.inp, c.w, c.n, c.in, c.outf, 0);
    fc_backward(d1, dw1, db1, c.r, c.inp, c.w, c.n, c.in, c.outf, 1);
    unbase(dw, nw);
    unbase(db, c.outf);
    /* linear: eps 1e-2, atol 5e-4, rtol 1e-3 */
    check_fd("fc dinp vs FD", __LINE__, c.inp, nin, d0, fc_fd_loss, &c, 1e-2f, 5e-4, 1e-3);
    check_fd("fc dw vs FD", __LINE__, c.w, nw, dw, fc_fd_loss, &c, 1e-2f, 5e-4, 1e-3);
    check_fd("fc db vs FD", __LINE__, c.b, c.outf, db, fc_fd_loss, &c, 1e-2f, 5e-4, 1e-3);
    check_accum("fc accum", __LINE__, d1, base, d0, nin);
    /* NULL dinp and db are allowed and leave dw right */
    float *dw2 = pgrad(nw);
    fc_backward(NULL, dw2, NULL, c.r, c.inp, c.w, c.n, c.in, c.outf, 0);
    unbase(dw2, nw);
    CHECK_ARRAY("fc dw with NULL dinp/db", dw2, dw, nw, 0.0, 0.0);
}

/* BatchNorm, train mode */
struct bn_fd {
    int c;
    size_t m;
    float *inp, *gamma, *beta, *out, *r, *mean, *invstd;
};

static double bn_fd_loss(void *ctx)
{
    struct bn_fd *b = ctx;
    bn_forward_train(b->out, b->mean, b->invstd, b->inp, b->gamma, b->beta, NULL, NULL, b->c, b->m,
                     1e-5f, 0.1f);
    return dot_d(b->out, b->r, (size_t)b->c * b->m);
}

static void test_bn_fd(void)
{
    struct bn_fd b = {.c = 3, .m = 2 * 7}; /* N = 2, H*W = 7: vector body and scalar tail */
    const size_t len = (size_t)b.c * b.m;
    b.inp = fvec(len);
    b.gamma = fvec(b.c);
    b.beta = fvec(b.c);
    b.out = fvec(len);
    b.r = fvec(len);
    b.mean = fvec(b.c);
    b.invstd = fvec(b.c);
    fill_uniform(b.inp, len, -1.0f, 1.0f);
    for (int ch = 0; ch < b.c; ch++) /* give each channel its own offset and scale */
        for (size_t i = 0; i < b.m; i++)
            b.inp[ch * b.m + i] = b.inp[ch * b.m + i] * (1.0f + ch) + 0.5f * ch;
    fill_uniform(b.gamma, b.c, 0.5f, 1.5f);
    fill_uniform(b.beta, b.c, -0.5f, 0.5f);
    fill_uniform(b.r, len, -1.0f, 1.0f);

    bn_fd_loss(&b); /* saved mean/invstd of the unperturbed input */
    float *mean = copy_of(b.mean, b.c), *invstd = copy_of(b.invstd, b.c);
    float *dg = pgrad(b.c), *dbt = pgrad(b.c), *dg1 = pgrad(b.c), *dbt1 = pgrad(b.c);
    float *d0, *d1, *base;
    make_dinp_pair(len, &d0, &d1, &base);
    bn_backward(d0, dg, dbt, b.r, b.inp, mean, invstd, b.gamma, b.c, b.m, 0);
    bn_backward(d1, dg1, dbt1, b.r, b.inp, mean, invstd, b.gamma, b.c, b.m, 1);
    unbase(dg, b.c);
    unbase(dbt, b.c);
    /* Nonlinear in x: eps 1e-2 leaves an O(eps^2) truncation error (observed
     * <= 2e-5 here); with float rounding of the forward, atol 5e-4, rtol 2e-3. */
    check_fd("bn dinp vs FD", __LINE__, b.inp, len, d0, bn_fd_loss, &b, 1e-2f, 5e-4, 2e-3);
    check_fd("bn dgamma vs FD", __LINE__, b.gamma, b.c, dg, bn_fd_loss, &b, 1e-2f, 5e-4, 2e-3);
    check_fd("bn dbeta vs FD", __LINE__, b.beta, b.c, dbt, bn_fd_loss, &b, 1e-2f, 5e-4, 2e-3);
    check_accum("bn accum", __LINE__, d1, base, d0, len);
}

/* ReLU */
struct relu_fd {
    float *inp, *out, *r;
    size_t len;
};

static double relu_fd_loss(void *ctx)
{
    struct relu_fd *c = ctx;
    relu_forward(c->out, c->inp, c->len);
    return dot_d(c->out, c->r, c->len);
}

static void test_relu(void)
{
    struct relu_fd c = {.len = 41};
    c.inp = fvec(c.len);
    c.out = fvec(c.len);
    c.r = fvec(c.len);
    /* |x| >= 0.1, so a step of 1e-2 never crosses the kink at 0 */
    for (size_t i = 0; i < c.len; i++) {
        float v = 0.1f + (float)sat_rng_uniform(&rng);
        c.inp[i] = (i % 3 == 0) ? -v : v;
    }
    fill_uniform(c.r, c.len, -1.0f, 1.0f);
    float *d0, *d1, *base;
    make_dinp_pair(c.len, &d0, &d1, &base);
    relu_backward(d0, c.r, c.inp, c.len, 0);
    relu_backward(d1, c.r, c.inp, c.len, 1);
    check_fd("relu dinp vs FD", __LINE__, c.inp, c.len, d0, relu_fd_loss, &c, 1e-2f, 1e-4, 1e-3);
    check_accum("relu accum", __LINE__, d1, base, d0, c.len);

    /* in place, as layers.h allows */
    float *x = copy_of(c.inp, c.len);
    relu_forward(x, x, c.len);
    relu_forward(c.out, c.inp, c.len);
    CHECK(memcmp(x, c.out, c.len * sizeof(float)) == 0);
    CHECK(c.out[0] == 0.0f && c.out[1] == c.inp[1]);
    float *g = copy_of(c.r, c.len);
    relu_backward(g, g, c.inp, c.len, 0);
    CHECK(memcmp(g, d0, c.len * sizeof(float)) == 0);
}

/* max pooling */
struct pool_fd {
    int planes, ih, iw, k;
    float *inp, *out, *r;
    int32_t *arg;
    size_t nout;
};

static double pool_fd_loss(void *ctx)
{
    struct pool_fd *c = ctx;
    maxpool_forward(c->out, c->arg, c->inp, c->planes, c->ih, c->iw, c->k);
    return dot_d(c->out, c->r, c->nout);
}

static void test_maxpool(void)
{
    /* 5 x 7 planes with k = 2: the last row and column are not pooled
     * (their gradient must be 0) */
    struct pool_fd c = {.planes = 3, .ih = 5, .iw = 7, .k = 2};
    const size_t nin = (size_t)c.planes * c.ih * c.iw;
    c.nout = (size_t)c.planes * (c.ih / c.k) * (c.iw / c.k);
    c.inp = fvec(nin);
    c.out = fvec(c.nout);
    c.r = fvec(c.nout);
    c.arg = tmalloc(c.nout * sizeof(int32_t));
    /* distinct values 0.05 apart in shuffled order: no ties, and a step of
     * 1e-2 never changes a window's arg-max */
    uint32_t *perm = tmalloc(nin * sizeof(uint32_t));
    for (uint32_t i = 0; i < nin; i++)
        perm[i] = i;
    sat_rng_shuffle_u32(&rng, perm, (uint32_t)nin);
    for (size_t i = 0; i < nin; i++)
        c.inp[i] = 0.05f * (float)perm[i] - 2.0f;
    fill_uniform(c.r, c.nout, -1.0f, 1.0f);

    pool_fd_loss(&c);
    /* forward against a direct scan: value is the window max, arg points at it */
    int okv = 1;
    for (int p = 0; p < c.planes; p++)
        for (int y = 0; y < c.ih / 2; y++)
            for (int x = 0; x < c.iw / 2; x++) {
                const float *in = c.inp + (size_t)p * c.ih * c.iw;
                float m = fmaxf(
                    fmaxf(in[2 * y * c.iw + 2 * x], in[2 * y * c.iw + 2 * x + 1]),
                    fmaxf(in[(2 * y + 1) * c.iw + 2 * x], in[(2 * y + 1) * c.iw + 2 * x + 1]));
                size_t o = ((size_t)p * (c.ih / 2) + y) * (c.iw / 2) + x;
                okv &= c.out[o] == m && in[c.arg[o]] == m;
            }
    CHECK(okv);

    float *d0, *d1, *base;
    make_dinp_pair(nin, &d0, &d1, &base);
    maxpool_backward(d0, c.r, c.arg, c.planes, c.ih, c.iw, c.k, 0);
    maxpool_backward(d1, c.r, c.arg, c.planes, c.ih, c.iw, c.k, 1);
    check_fd("maxpool dinp vs FD", __LINE__, c.inp, nin, d0, pool_fd_loss, &c, 1e-2f, 1e-4, 1e-3);
    check_accum("maxpool accum", __LINE__, d1, base, d0, nin);

    /* ties: the first maximum in row-major window order wins */
    float tie[16] = {1, 3, 3, 0, 3, 2, 0, 0, 5, 5, 4, 4, 5, 5, 4, 4};
    float tout[4];
    int32_t targ[4];
    maxpool_forward(tout, targ, tie, 1, 4, 4, 2);
    CHECK_EQ_INT(targ[0], 1);
    CHECK_EQ_INT(targ[1], 2);
    CHECK_EQ_INT(targ[2], 8);
    CHECK_EQ_INT(targ[3], 10);
    CHECK(tout[0] == 3 && tout[1] == 3 && tout[2] == 5 && tout[3] == 4);
}

/* global average pooling */
struct gap_fd {
    int c, n, hw;
    float *inp, *out, *r;
};

static double gap_fd_loss(void *ctx)
{
    struct gap_fd *g = ctx;
    gap_forward(g->out, g->inp, g->c, g->n, g->hw);
    return dot_d(g->out, g->r, (size_t)g->c * g->n);
}

static void test_gap(void)
{
    struct gap_fd g = {.c = 3, .n = 2, .hw = 5};
    const size_t nin = (size_t)g.c * g.n * g.hw;
    g.inp = fvec(nin);
    g.out = fvec((size_t)g.c * g.n);
    g.r = fvec((size_t)g.c * g.n);
    fill_uniform(g.inp, nin, -1.0f, 1.0f);
    fill_uniform(g.r, (size_t)g.c * g.n, -1.0f, 1.0f);
    gap_fd_loss(&g);
    double m = 0;
    for (int i = 0; i < g.hw; i++)
        m += g.inp[g.hw + i]; /* plane (c 0, n 1) */
    CHECK_CLOSE(g.out[1], m / g.hw, 1e-6, 0);
    float *d0, *d1, *base;
    make_dinp_pair(nin, &d0, &d1, &base);
    gap_backward(d0, g.r, g.c, g.n, g.hw, 0);
    gap_backward(d1, g.r, g.c, g.n, g.hw, 1);
    check_fd("gap dinp vs FD", __LINE__, g.inp, nin, d0, gap_fd_loss, &g, 1e-2f, 1e-4, 1e-3);
    check_accum("gap accum", __LINE__, d1, base, d0, nin);
}

/* flatten */
struct flat_fd {
    int c, n, hw;
    float *inp, *out, *r;
};

static double flat_fd_loss(void *ctx)
{
    struct flat_fd *f = ctx;
    flatten_forward(f->out, f->inp, f->c, f->n, f->hw);
    return dot_d(f->out, f->r, (size_t)f->c * f->n * f->hw);
}

static void test_flatten(void)
{
    struct flat_fd f = {.c = 2, .n = 3, .hw = 4};
    const size_t len = (size_t)f.c * f.n * f.hw;
    f.inp = fvec(len);
    f.out = fvec(len);
    f.r = fvec(len);
    for (size_t i = 0; i < len; i++)
        f.inp[i] = (float)i; /* value = CNHW index */
    fill_uniform(f.r, len, -1.0f, 1.0f);
    flat_fd_loss(&f);
    /* out (C*HW, N): feature c*HW + p of sample n is inp[(c*N + n)*HW + p] */
    int ok = 1;
    for (int c = 0; c < f.c; c++)
        for (int n = 0; n < f.n; n++)
            for (int p = 0; p < f.hw; p++)
                ok &= f.out[(size_t)(c * f.hw + p) * f.n + n] == (float)((c * f.n + n) * f.hw + p);
    CHECK(ok);
    fill_uniform(f.inp, len, -1.0f, 1.0f);
    float *d0, *d1, *base;
    make_dinp_pair(len, &d0, &d1, &base);
    flatten_backward(d0, f.r, f.c, f.n, f.hw, 0);
    flatten_backward(d1, f.r, f.c, f.n, f.hw, 1);
    check_fd("flatten dinp vs FD", __LINE__, f.inp, len, d0, flat_fd_loss, &f, 1e-2f, 1e-4, 1e-3);
    check_accum("flatten accum", __LINE__, d1, base, d0, len);
}

/* softmax cross-entropy: the loss itself is the scalar */
struct ce_fd {
    int n, k;
    float *logits, *probs;
    int32_t *labels;
};

static double ce_fd_loss(void *ctx)
{
    struct ce_fd *c = ctx;
    return softmax_ce_forward(c->probs, NULL, c->logits, c->labels, c->n, c->k);
}

static void test_softmax_ce(void)
{
    struct ce_fd c = {.n = 3, .k = 5};
    const size_t len = (size_t)c.n * c.k;
    c.logits = fvec(len);
    c.probs = fvec(len);
    c.labels = tmalloc(c.n * sizeof(int32_t));
    fill_uniform(c.logits, len, -2.0f, 2.0f);
    for (int j = 0; j < c.n; j++)
        c.labels[j] = (int32_t)sat_rng_below(&rng, c.k);
    ce_fd_loss(&c);
    for (int j = 0; j < c.n; j++) { /* columns are distributions */
        double s = 0;
        for (int i = 0; i < c.k; i++)
            s += c.probs[i * c.n + j];
        CHECK_CLOSE(s, 1.0, 1e-6, 0);
    }
    float *dl = fvec(len);
    softmax_ce_backward(dl, c.probs, c.labels, c.n, c.k, 1.0f / c.n);
    /* smooth: eps 1e-2, truncation ~1e-5; atol 1e-4, rtol 1e-2 */
    check_fd("softmax-ce dlogits vs FD", __LINE__, c.logits, len, dl, ce_fd_loss, &c, 1e-2f, 1e-4,
             1e-2);

    /* uniform logits: loss log(K), probs 1/K */
    {
        enum { K = 10, N = 4 };
        float lg[K * N], pr[K * N];
        int32_t lab[N] = {0, 3, 9, 5};
        int correct = -1;
        fill_const(lg, K * N, 3.7f);
        double loss = softmax_ce_forward(pr, &correct, lg, lab, N, K);
        CHECK_CLOSE(loss, log(10.0), 1e-6, 0);
        CHECK_CLOSE(pr[7], 0.1, 1e-7, 0);
        CHECK_EQ_INT(correct, 1); /* arg-max is class 0 on ties: sample 0 only */
        /* huge logits: max-shift keeps everything finite */
        fill_const(lg, K * N, -1e4f);
        for (int j = 0; j < N; j++)
            lg[0 * N + j] = 1e4f; /* class 0 wins by 2e4 */
        loss = softmax_ce_forward(pr, &correct, lg, lab, N, K);
        CHECK(isfinite(loss));
        /* three samples with a wrong label lose 2e4 each, one loses ~0 */
        CHECK_CLOSE(loss, 3.0 * 2e4 / N, 1e-6, 1e-6);
        CHECK(isfinite(pr[0]) && pr[0] == 1.0f && pr[N] == 0.0f);
        CHECK_EQ_INT(correct, 1);
        fill_const(lg, K * N, 1e4f);
        loss = softmax_ce_forward(pr, NULL, lg, lab, N, K);
        CHECK_CLOSE(loss, log(10.0), 1e-6, 0);
    }
    /* correct count on a hand case: K = 3, N = 4, class-major */
    {
        /* samples:      0     1     2     3 */
        float lg[12] = {2.0f, 0.0f, 0.1f, 1.0f,  /* class 0 */
                        1.0f, 3.0f, 0.2f, 1.0f,  /* class 1 */
                        0.0f, 1.0f, 0.3f, 5.0f}; /* class 2 */
        int32_t lab[4] = {0, 2, 2, 1};           /* arg-max: 0, 1, 2, 2 */
        float pr[12], dlg[12];
        int correct = -1;
        double loss = softmax_ce_forward(pr, &correct, lg, lab, 4, 3);
        CHECK_EQ_INT(correct, 2);
        /* sample 0's loss by hand: log(e^2 + e^1 + e^0) - 2 */
        double l0 = log(exp(2.0) + exp(1.0) + 1.0) - 2.0;
        double l1 = log(exp(0.0) + exp(3.0) + exp(1.0)) - 1.0;
        double l2 = log(exp(0.1) + exp(0.2) + exp(0.3)) - 0.3;
        double l3 = log(exp(1.0) + exp(1.0) + exp(5.0)) - 1.0;
        CHECK_CLOSE(loss, (l0 + l1 + l2 + l3) / 4, 1e-6, 1e-6);
        softmax_ce_backward(dlg, pr, lab, 4, 3, 0.25f);
        CHECK_CLOSE(dlg[0], (pr[0] - 1.0) * 0.25, 1e-7, 0); /* (class 0, sample 0) is a label */
        CHECK_CLOSE(dlg[4], pr[4] * 0.25, 1e-7, 0);
    }
}

/* ==== BatchNorm hand cases =============================================== */

static void test_bn_hand(void)
{
    /* Running statistics: one channel x = {1, 2, 3, 4}: mean 2.5, biased var
     * 1.25 (normalises), unbiased 5/3 (running); momentum 0.1 from (1, 2):
     * run_mean = 0.9*1 + 0.1*2.5 = 1.15, run_var = 0.9*2 + 0.1*5/3. */
    float x[4] = {1, 2, 3, 4}, y[4], mean, invstd, g = 2.0f, b = 0.5f;
    float rm = 1.0f, rv = 2.0f;
    bn_forward_train(y, &mean, &invstd, x, &g, &b, &rm, &rv, 1, 4, 1e-5f, 0.1f);
    CHECK_CLOSE(mean, 2.5, 1e-7, 0);
    CHECK_CLOSE(invstd, 1.0 / sqrt(1.25 + 1e-5), 0, 1e-6);
    CHECK_CLOSE(rm, 1.15, 0, 1e-6);
    CHECK_CLOSE(rv, 0.9 * 2.0 + 0.1 * 5.0 / 3.0, 0, 1e-6);
    CHECK_CLOSE(y[0], (1.0 - 2.5) / sqrt(1.25 + 1e-5) * 2.0 + 0.5, 1e-6, 1e-6);
    CHECK_CLOSE(y[3], (4.0 - 2.5) / sqrt(1.25 + 1e-5) * 2.0 + 0.5, 1e-6, 1e-6);
    /* NULL running stats are allowed */
    bn_forward_train(y, &mean, &invstd, x, &g, &b, NULL, NULL, 1, 4, 1e-5f, 0.1f);
    CHECK_CLOSE(mean, 2.5, 1e-7, 0);

    /* Eval uses the running statistics, not the batch's: two channels of 3 */
    float xe[6] = {0.0f, 1.0f, 2.0f, -1.0f, 0.5f, 3.0f}, ye[6];
    float ge[2] = {2.0f, 0.5f}, be[2] = {0.5f, -1.0f};
    float rme[2] = {1.0f, -2.0f}, rve[2] = {4.0f, 0.25f};
    bn_forward_eval(ye, xe, ge, be, rme, rve, 2, 3, 1e-5f);
    int ok = 1;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) {
            double want = (xe[c * 3 + i] - rme[c]) / sqrt(rve[c] + 1e-5) * ge[c] + be[c];
            ok &= fabs(ye[c * 3 + i] - want) <= 1e-6 + 1e-6 * fabs(want);
        }
    CHECK(ok);
    /* in place, as layers.h allows */
    bn_forward_eval(xe, xe, ge, be, rme, rve, 2, 3, 1e-5f);
    CHECK(memcmp(xe, ye, sizeof(ye)) == 0);

    /* Determinism of the train forward on a larger slab */
    const size_t m = 4099;
    float *in = fvec(2 * m), *o1 = fvec(2 * m), *o2 = fvec(2 * m);
    float mm[2], is[2], gg[2] = {1, 1}, bb[2] = {0, 0};
    fill_uniform(in, 2 * m, -3.0f, 5.0f);
    bn_forward_train(o1, mm, is, in, gg, bb, NULL, NULL, 2, m, 1e-5f, 0.1f);
    bn_forward_train(o2, mm, is, in, gg, bb, NULL, NULL, 2, m, 1e-5f, 0.1f);
    CHECK(memcmp(o1, o2, 2 * m * sizeof(float)) == 0);
    /* normalised: mean ~0, biased var ~1 per channel (double check, 1e-5) */
    double s = 0, s2 = 0;
    for (size_t i = 0; i < m; i++) {
        s += o1[m + i];
        s2 += (double)o1[m + i] * o1[m + i];
    }
    CHECK_CLOSE(s / m, 0.0, 1e-5, 0);
    CHECK_CLOSE(s2 / m, 1.0, 1e-4, 0);
}

static void test_add(void)
{
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -2, 1e-3f, 0, 7}, o[5];
    add_forward(o, a, b, 5);
    CHECK(o[0] == 1.5f && o[1] == 0.0f && o[2] == 3.001f && o[3] == 4.0f && o[4] == 12.0f);
    add_forward(a, a, b, 5); /* in place */
    CHECK(memcmp(a, o, sizeof(o)) == 0);
}

/* The BN statistics and backward sums are compiled per element-wise ISA
 * level (pact_set_isa): every level this CPU runs gives the base level's
 * bits, on slabs of odd lengths (the lanes' tail) and with a NaN in one
 * channel. */
static void test_bn_isa(void)
{
    const int c = 3;
    const size_t ms[] = {1, 7, 8, 9, 1001, 100352};
    const enum pact_isa saved = pact_get_isa();
    for (size_t k = 0; k < sizeof(ms) / sizeof(ms[0]); k++) {
        const size_t m = ms[k], n = (size_t)c * m;
        float *x = fvec(n), *g = fvec(n);
        fill_uniform(x, n, -0.7f, 1.3f);
        fill_uniform(g, n, -0.5f, 0.5f);
        if (m > 8)
            x[2 * m + 5] = NAN;
        float ref[8 * 3], got[8 * 3];
        float *dref = fvec(n), *d = fvec(n);
        for (int isa = PACT_ISA_BASE; isa <= PACT_ISA_AVX512; isa++) {
            if (pact_set_isa((enum pact_isa)isa) != 0)
                continue;
            float gm[3] = {1.0f, 0.5f, 2.0f}, bt[3] = {0.1f, -0.2f, 0.0f};
            float rm[3] = {0.0f, 0.1f, 0.2f}, rv[3] = {1.0f, 0.5f, 2.0f};
            float mu[3], sc[3], sh[3], mean[3], istd[3], dg[3] = {0}, db[3] = {0};
            bn_stats_train(mu, sc, sh, mean, istd, x, gm, bt, rm, rv, c, m, 1e-5f, 0.1f);
            bn_backward(isa == PACT_ISA_BASE ? dref : d, dg, db, g, x, mean, istd, gm, c, m, 0);
            float *o = isa == PACT_ISA_BASE ? ref : got;
            memcpy(o, mu, sizeof mu), memcpy(o + 3, sc, sizeof sc), memcpy(o + 6, mean, sizeof mean);
            memcpy(o + 9, istd, sizeof istd), memcpy(o + 12, rm, sizeof rm);
            memcpy(o + 15, rv, sizeof rv), memcpy(o + 18, dg, sizeof dg), memcpy(o + 21, db, sizeof db);
            if (isa == PACT_ISA_BASE)
                continue;
            CHECK(memcmp(o, ref, sizeof got) == 0);
            CHECK(memcmp(d, dref, n * sizeof(float)) == 0);
        }
    }
    pact_set_isa(saved);
}

/* ==== Owned pieces (threads.h) ============================================ */

/* The image shares cover [0, n) in order, and nn_share_owner names the
 * share each image is in. A walk gives every piece to exactly one thread,
 * with claim flags (stealing) and without (each thread its own pieces). */
static void test_walk(void)
{
    int ok = 1;
    for (int nt = 1; nt <= 8; nt++)
        for (int n = 1; n <= 300; n++)
            for (int i = 0; i < n; i++) {
                const int t = nn_share_owner(n, i, nt);
                ok &=
                    t >= 0 && t < nt && nn_share_lo(n, t, nt) <= i && i < nn_share_lo(n, t + 1, nt);
            }
    CHECK(ok);
    CHECK(nn_share_lo(128, 0, 2) == 0 && nn_share_lo(128, 1, 2) == 64 &&
          nn_share_lo(128, 2, 2) == 128);

    const int saved = nn_threads();
    const int counts[] = {0, 1, 7, 128, 300, NN_WALK_MAX + 5};
    for (int th = 1; th <= 3; th++) {
        nn_set_threads(th);
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            const int count = counts[k];
            int *who = tmalloc(((size_t)count + 1) * sizeof(int));
            int *hits = tmalloc(((size_t)count + 1) * sizeof(int));
            const struct nn_items it = nn_items_images(count, 1, count > 0 ? count : 1);
            atomic_uchar buf[NN_WALK_MAX];
            atomic_uchar *flag = nn_walk_flags(buf, count);
            CHECK((flag == NULL) == (count > NN_WALK_MAX));
#pragma omp parallel num_threads(nn_threads())
            {
                struct nn_walk w = nn_walk_begin(&it, flag);
                for (int i; (i = nn_walk_next(&w)) >= 0;) {
#pragma omp atomic
                    hits[i]++;
                    who[i] = omp_get_thread_num();
                }
            }
            int once = 1, own = 1;
            for (int i = 0; i < count; i++) {
                once &= hits[i] == 1;
                own &= who[i] == nn_share_owner(count, i, th);
            }
            CHECK(once);
            if (!flag)
                CHECK(own); /* without flags, each thread exactly its own */
        }
    }
    nn_set_threads(saved);
}

/* BatchNorm's statistics and gradients, and PACT's alpha gradient, do not
 * depend on the thread count or on the layout (which only decides which
 * thread sums which piece): slabs of 8 pieces at 1, 2 and 3 threads, with
 * and without the layout of 128 images, give the same bits; and the
 * statistics match a naive double sum. */
static void test_bn_threads(void)
{
    const int c = 5, images = 128;
    const size_t m = (size_t)images * 49, len = (size_t)c * m;
    float *x = fvec(len), *g = fvec(len);
    fill_uniform(x, len, -0.7f, 1.3f);
    fill_uniform(g, len, -0.5f, 0.5f);
    const int saved = nn_threads();
    float ref[8 * 5];
    float *dref = fvec(len), *d = fvec(len), *pref = fvec(len), *pd = fvec(len);
    double gref = 0;
    int first = 1;
    for (int th = 1; th <= 3; th++)
        for (int lay = 0; lay < 2; lay++) {
            nn_set_threads(th);
            nn_set_layout(lay ? images : 0, lay ? m : 0);
            float gm[5] = {1.0f, 0.5f, 2.0f, 1.5f, 0.25f}, bt[5] = {0.1f, -0.2f, 0.0f, 1, -1};
            float rm[5] = {0}, rv[5] = {1, 1, 1, 1, 1};
            float mu[5], sc[5], sh[5], mean[5], istd[5], dg[5] = {0}, db[5] = {0}, got[8 * 5];
            bn_stats_train(mu, sc, sh, mean, istd, x, gm, bt, rm, rv, c, m, 1e-5f, 0.1f);
            bn_backward(first ? dref : d, dg, db, g, x, mean, istd, gm, c, m, 0);
            /* PACT's alpha gradient through the view is summed in the same pieces */
            const struct bn_view v = {.x = x, .mu = mu, .scale = sc, .shift = sh, .m = m};
            const double ga = pact_backward_bn(first ? pref : pd, g, &v, c, 2.0f, 4, 1, 0);
            if (first)
                gref = ga;
            else
                CHECK(memcmp(&ga, &gref, sizeof ga) == 0 &&
                      memcmp(pd, pref, len * sizeof(float)) == 0);
            float *o = first ? ref : got;
            memcpy(o, mu, sizeof mu), memcpy(o + 5, sc, sizeof sc),
                memcpy(o + 10, mean, sizeof mean);
            memcpy(o + 15, istd, sizeof istd), memcpy(o + 20, rm, sizeof rm);
            memcpy(o + 25, rv, sizeof rv), memcpy(o + 30, dg, sizeof dg),
                memcpy(o + 35, db, sizeof db);
            if (first) {
                first = 0;
                continue;
            }
            CHECK(memcmp(got, ref, sizeof got) == 0);
            CHECK(memcmp(d, dref, len * sizeof(float)) == 0);
        }
    nn_set_layout(0, 0);
    nn_set_threads(saved);
    for (int ch = 0; ch < c; ch++) {
        double s = 0, s2 = 0, sg = 0;
        for (size_t i = 0; i < m; i++)
            s += x[(size_t)ch * m + i];
        const double mu = s / (double)m;
        for (size_t i = 0; i < m; i++) {
            const double dx = x[(size_t)ch * m + i] - mu;
            s2 += dx * dx;
            sg += g[(size_t)ch * m + i];
        }
        CHECK_CLOSE(ref[10 + ch], mu, 1e-7, 1e-6);
        CHECK_CLOSE(ref[15 + ch], 1.0 / sqrt(s2 / (double)m + 1e-5), 0, 1e-6);
        CHECK_CLOSE(ref[35 + ch], sg, 1e-4, 1e-5);
    }
}

/* One check of bn_backward_gated against the two steps it replaces:
 * ReLU's (mode 0), CG-PACT's (1) or plain PACT's (2) backward through the
 * view storing the gradient, then bn_backward. Returns 1 when dinp, dgamma,
 * dbeta and (PACT) alpha's gradient all have the same bits. */
static int bn_gated_case(const char *what, const float *x, const float *dy, int c, size_t m,
                         int mode, int accum, long regions[3])
{
    const size_t len = (size_t)c * m;
    float *t = fvec(len), *dref = fvec(len), *d = fvec(len);
    float *gm = fvec((size_t)c), *bt = fvec((size_t)c), *rm = fvec((size_t)c);
    float *rv = fvec((size_t)c), *mu = fvec((size_t)c), *sc = fvec((size_t)c);
    float *sh = fvec((size_t)c), *mean = fvec((size_t)c), *istd = fvec((size_t)c);
    float *dg = fvec((size_t)c), *db = fvec((size_t)c), *dg2 = fvec((size_t)c);
    float *db2 = fvec((size_t)c);
    for (int ch = 0; ch < c; ch++) {
        gm[ch] = ch % 4 == 3 ? -1.5f : 0.5f + 0.5f * (float)(ch % 4);
        bt[ch] = 0.1f * (float)(ch % 5) - 0.2f;
        rm[ch] = 0.0f, rv[ch] = 1.0f;
        dg[ch] = dg2[ch] = 0.5f, db[ch] = db2[ch] = -0.5f;
    }
    const float alpha_raw = -0.9f; /* al 0.9: some values above it */
    bn_stats_train(mu, sc, sh, mean, istd, x, gm, bt, rm, rv, c, m, 1e-5f, 0.1f);
    const struct bn_view v = {.x = x, .mu = mu, .scale = sc, .shift = sh, .m = m};
    for (size_t i = 0; i < len; i++)
        dref[i] = d[i] = 0.25f * (float)(i % 7);
    for (size_t i = 0; regions && i < len; i++) {
        const size_t ch = i / m;
        const float z = (x[i] - mu[ch]) * sc[ch] + sh[ch];
        regions[z <= 0.0f ? 0 : z < pact_alpha(alpha_raw) ? 1 : 2]++;
    }
    double ga = 0.0, gg = -1.0;
    if (mode)
        ga = pact_backward_bn(t, dy, &v, c, alpha_raw, 4, mode == 1, 0);
    else
        relu_backward_bn(t, dy, &v, c, 0);
    bn_backward(dref, dg, db, t, x, mean, istd, gm, c, m, accum);
    const struct bn_gate gate = {.v = v,
                                 .pact = mode != 0,
                                 .al = pact_alpha(alpha_raw),
                                 .alpha_grad = mode ? &gg : NULL,
                                 .alpha_raw = alpha_raw,
                                 .bits = 4,
                                 .cg = mode == 1};
    bn_backward_gated(d, dg2, db2, dy, x, mean, istd, gm, c, m, accum, &gate);
    int ok = same_bits(what, "dinp", d, dref, len) && same_bits(what, "dgamma", dg2, dg, c) &&
             same_bits(what, "dbeta", db2, db, c);
    if (mode && memcmp(&gg, &ga, sizeof ga) != 0) {
        fprintf(stderr, "%s: alpha gradient %.17g != %.17g\n", what, gg, ga);
        ok = 0;
    }
    return ok;
}

/* BatchNorm's backward with the activation after it folded in
 * (bn_backward_gated) gives the bits of the two steps it replaces, alpha's
 * gradient included: at 1, 2 and 3 threads, at every ISA level this CPU
 * runs, overwriting and accumulating, on slabs of one piece with a tail
 * (m = 7*61) and of four pieces (m = 64*49), with values below 0, between
 * 0 and al, above al, and -0 gradients; and with so many channels (520 x
 * 8 pieces) that PACT sums fewer pieces than BN, where alpha's gradient
 * comes from a pass of its own. */
static void test_bn_gated(void)
{
    const int saved_threads = nn_threads();
    const enum pact_isa saved_isa = pact_get_isa();
    long regions[3] = {0}; /* PACT's inputs: z <= 0, 0 < z < al, z >= al */
    const size_t ms[] = {7 * 61, 64 * 49};
    for (size_t k = 0; k < sizeof ms / sizeof ms[0]; k++) {
        const int c = 4;
        const size_t m = ms[k], len = (size_t)c * m;
        float *x = fvec(len), *dy = fvec(len);
        fill_uniform(x, len, -1.0f, 2.0f);
        fill_uniform(dy, len, -0.5f, 0.5f);
        for (size_t i = 0; i < len; i += 97)
            dy[i] = -0.0f;
        for (int mode = 0; mode <= 2; mode++)
            for (int accum = 0; accum <= 1; accum++)
                for (int th = 1; th <= 3; th++)
                    for (int isa = PACT_ISA_BASE; isa <= PACT_ISA_AVX512; isa++) {
                        if (pact_set_isa((enum pact_isa)isa) != 0)
                            continue;
                        nn_set_threads(th);
                        char what[96];
                        snprintf(what, sizeof what,
                                 "gated m %zu mode %d accum %d threads %d isa %d", m, mode, accum,
                                 th, isa);
                        CHECK(bn_gated_case(what, x, dy, c, m, mode, accum,
                                            th == 1 && mode == 1 ? regions : NULL));
                    }
    }
    pact_set_isa(saved_isa);
    nn_set_threads(2);
    const int c = 520;
    const size_t m = 128 * 49, len = (size_t)c * m;
    CHECK(pact_backward_pieces_of(c, m) < nn_slab_pieces(m));
    float *x = fvec(len), *dy = fvec(len);
    fill_uniform(x, len, -1.0f, 2.0f);
    fill_uniform(dy, len, -0.5f, 0.5f);
    CHECK(bn_gated_case("gated, 520 channels", x, dy, c, m, 1, 0, NULL));
    nn_set_threads(saved_threads);
    CHECK(regions[0] > 0 && regions[1] > 0 && regions[2] > 0);
    free_all();
}

int main(void)
{
    sat_rng_init(&rng, sat_rng_key(20240611, 1, 0, 0));

    test_fc();
    test_bn_fd();
    test_bn_hand();
    test_bn_isa();
    test_bn_threads();
    test_bn_gated();
    test_walk();
    test_relu();
    test_maxpool();
    test_gap();
    test_flatten();
    test_softmax_ce();
    test_add();

    free_all();
    return check_summary("test_layers");
}
