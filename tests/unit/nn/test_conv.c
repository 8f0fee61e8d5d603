/* test_conv.c - the dense and depthwise convolutions of common/nn/layers.h
 * (conv.c, dwconv.c) against the plain-loop oracles conv_forward_naive and
 * conv_backward_naive on many shapes (accum 0/1, a NULL dinp, the smaller
 * scratch of conv_scratch_floats_nodinp), the shape rules, and every
 * backward against central finite differences. Tolerances are stated next
 * to each check; the helpers are layers_check.h. The exit status is the
 * verdict.
 */
#include "layers_check.h"
#include "nn/quant.h"
#include "nn/threads.h"

/* ==== Convolution against the oracles ==================================== */

struct conv_dims {
    int n, ic, ih, iw, oc, kh, kw, stride, pad;
};

/* Dense convs (groups 1): kernel 1/3/5, stride 1/2/3, pad 0/1/2, non-square
 * images and kernels, batch 1 to 4, sizes big enough for OpenBLAS's blocked
 * kernels (K = 144), taps that meet the image in a single row, and a 1x1
 * output. */
static const struct conv_dims dense_cases[] = {
    {2, 3, 7, 9, 4, 3, 3, 1, 1},     {3, 2, 8, 8, 5, 5, 5, 2, 2},   {2, 6, 5, 4, 3, 1, 1, 1, 0},
    {2, 4, 7, 7, 8, 1, 1, 2, 0},     {2, 3, 9, 6, 4, 3, 3, 2, 1},   {1, 2, 6, 7, 3, 3, 3, 1, 0},
    {2, 2, 5, 6, 3, 3, 3, 2, 2},     {2, 3, 6, 5, 2, 1, 3, 1, 1},   {2, 2, 10, 11, 3, 3, 3, 3, 1},
    {2, 16, 12, 12, 16, 3, 3, 1, 1}, {4, 1, 28, 28, 8, 3, 3, 1, 1}, {2, 3, 4, 4, 2, 5, 5, 1, 2},
    {2, 3, 3, 4, 2, 3, 3, 2, 1},     {2, 2, 3, 3, 3, 3, 3, 1, 0},
};

/* Shapes the direct kernel takes (OC a multiple of 16; conv_direct.c):
 * 1, 3, 5, 17 input channels, OC 16 / 32 / 48 (one or two 16-channel
 * vectors per tile), 1x1 with padding, 3x3 and 5x5, stride 1 and 2, rows of
 * whole and of partial 7- and 14-pixel tiles, and input gradients that the
 * direct kernel computes too (stride 1, IC a multiple of 16) or leaves to
 * the GEMM (IC 17, stride 2). */
static const struct conv_dims direct_cases[] = {
    {2, 1, 28, 28, 16, 3, 3, 1, 1},  {2, 3, 9, 9, 16, 3, 3, 1, 1},
    {3, 16, 7, 7, 16, 3, 3, 1, 1},   {2, 16, 14, 14, 32, 3, 3, 1, 1},
    {2, 32, 5, 6, 32, 3, 3, 1, 1},   {1, 17, 9, 17, 48, 3, 3, 1, 1},
    {2, 5, 6, 30, 16, 5, 5, 1, 2},   {2, 16, 5, 5, 16, 1, 1, 1, 1},
    {2, 16, 8, 8, 32, 3, 3, 1, 0},   {2, 32, 7, 7, 16, 3, 3, 1, 1},
    {2, 16, 9, 9, 32, 3, 3, 2, 1},   {1, 3, 3, 3, 16, 3, 3, 1, 1},
    {2, 16, 8, 8, 32, 1, 1, 2, 0},   {2, 3, 9, 10, 16, 3, 3, 2, 1},
    {1, 5, 11, 9, 16, 5, 5, 2, 2},   {1, 17, 7, 7, 48, 3, 3, 2, 1},
    {2, 16, 28, 28, 32, 3, 3, 2, 1}, {2, 1, 29, 31, 16, 3, 3, 2, 0},
};

/* Depthwise convs (groups == ic == oc): stride 1 and 2, pad 0/1/2, k 3/5, a
 * non-square kernel, single-row taps, a 1x1 output and "same" planes. */
static const struct conv_dims dw_cases[] = {
    {2, 3, 7, 9, 3, 3, 3, 1, 1},
    {2, 4, 8, 8, 4, 3, 3, 2, 1},
    {3, 2, 9, 7, 2, 5, 5, 2, 2},
    {2, 3, 6, 6, 3, 3, 3, 1, 0},
    {2, 2, 8, 7, 2, 3, 3, 2, 0},
    {2, 2, 5, 5, 2, 3, 3, 1, 2},
    {1, 3, 6, 8, 3, 3, 3, 2, 2},
    {2, 2, 6, 5, 2, 1, 3, 1, 1},
    {2, 5, 7, 7, 5, 3, 3, 2, 1},
    {2, 3, 3, 4, 3, 3, 3, 2, 1},
    {2, 2, 3, 3, 2, 3, 3, 1, 0},
    /* stride 1, output the input's size: the masked-span kernel, up to its
     * largest plane (32x32), and a plane just over it (the general kernel) */
    {2, 3, 6, 7, 3, 5, 5, 1, 2},
    {4, 3, 28, 28, 3, 3, 3, 1, 1},
    {1, 2, 32, 32, 2, 3, 3, 1, 1},
    {1, 2, 33, 32, 2, 3, 3, 1, 1},
    {3, 2, 1, 5, 2, 1, 3, 1, 1},
};

static void test_conv_vs_naive(const struct conv_dims *d, int groups)
{
    struct conv_shape s;
    int rc = conv_shape_init(&s, d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw, d->stride, d->pad,
                             groups);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        return;
    const int icg = d->ic / groups;
    const size_t nin = (size_t)d->ic * d->n * d->ih * d->iw;
    const size_t nout = (size_t)d->oc * d->n * s.oh * s.ow;
    const size_t nw = (size_t)d->oc * icg * d->kh * d->kw;
    float *inp = fvec(nin), *w = fvec(nw), *dout = fvec(nout);
    fill_uniform(inp, nin, -1.0f, 1.0f);
    fill_uniform(w, nw, -1.0f, 1.0f);
    fill_uniform(dout, nout, -1.0f, 1.0f);
    float *cols = fvec(conv_scratch_floats(&s));
    char what[160];

    /* Float sums of T terms of magnitude <= 1: allow 1e-6 per term plus
     * 1e-4 relative (the oracle sums in double). */
    const double t_fwd = (double)icg * d->kh * d->kw;
    const double t_dw = (double)d->n * s.oh * s.ow;
    const double t_din = (double)(d->oc / groups) * d->kh * d->kw;

    float *out = fvec(nout), *ref = fvec(nout);
    fill_const(out, nout, NAN); /* forward must write every output */
    if (groups == 1)
        conv_forward(out, inp, w, &s, cols);
    else
        dwconv_forward(out, inp, w, &s);
    conv_forward_naive(ref, inp, w, &s);
    snprintf(what, sizeof(what), "%s fwd n%d ic%d %dx%d oc%d k%dx%d s%d p%d",
             groups == 1 ? "conv" : "dwconv", d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw,
             d->stride, d->pad);
    CHECK_ARRAY(what, out, ref, nout, 1e-6 * t_fwd + 1e-6, 1e-4);

    /* backward, accum 0 (dinp starts as NaN) and accum 1 (random base) */
    for (int accum = 0; accum <= 1; accum++) {
        float *dw = pgrad(nw), *dwr = pgrad(nw);
        float *din = fvec(nin), *dinr = fvec(nin);
        if (accum) {
            fill_uniform(din, nin, -1.0f, 1.0f);
            memcpy(dinr, din, nin * sizeof(float));
        } else {
            fill_const(din, nin, NAN);
            fill_const(dinr, nin, NAN);
        }
        if (groups == 1)
            conv_backward(din, dw, dout, inp, w, &s, cols, accum);
        else
            dwconv_backward(din, dw, dout, inp, w, &s, accum);
        conv_backward_naive(dinr, dwr, dout, inp, w, &s, accum);
        snprintf(what, sizeof(what), "%s bwd dw accum%d n%d ic%d %dx%d oc%d k%dx%d s%d p%d",
                 groups == 1 ? "conv" : "dwconv", accum, d->n, d->ic, d->ih, d->iw, d->oc, d->kh,
                 d->kw, d->stride, d->pad);
        CHECK_ARRAY(what, dw, dwr, nw, 1e-6 * t_dw + 1e-6, 1e-4);
        snprintf(what, sizeof(what), "%s bwd dinp accum%d n%d ic%d %dx%d oc%d k%dx%d s%d p%d",
                 groups == 1 ? "conv" : "dwconv", accum, d->n, d->ic, d->ih, d->iw, d->oc, d->kh,
                 d->kw, d->stride, d->pad);
        CHECK_ARRAY(what, din, dinr, nin, 1e-6 * t_din + 1e-6, 1e-4);
    }

    /* dinp NULL: only dw, still correct, in the smaller scratch */
    float *dw = pgrad(nw), *dwr = pgrad(nw);
    float *cols0 = fvec(conv_scratch_floats_nodinp(&s));
    if (groups == 1)
        conv_backward(NULL, dw, dout, inp, w, &s, cols0, 0);
    else
        dwconv_backward(NULL, dw, dout, inp, w, &s, 0);
    conv_backward_naive(NULL, dwr, dout, inp, w, &s, 0);
    snprintf(what, sizeof(what), "%s bwd dinp=NULL dw n%d ic%d %dx%d oc%d k%dx%d s%d p%d",
             groups == 1 ? "conv" : "dwconv", d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw,
             d->stride, d->pad);
    CHECK_ARRAY(what, dw, dwr, nw, 1e-6 * t_dw + 1e-6, 1e-4);

    /* Determinism: the same call on the same inputs gives the same bits. */
    float *out2 = fvec(nout);
    float *dw1 = fvec(nw), *dw2 = fvec(nw), *din1 = fvec(nin), *din2 = fvec(nin);
    if (groups == 1) {
        conv_forward(out2, inp, w, &s, cols);
        conv_backward(din1, dw1, dout, inp, w, &s, cols, 0);
        conv_backward(din2, dw2, dout, inp, w, &s, cols, 0);
    } else {
        dwconv_forward(out2, inp, w, &s);
        dwconv_backward(din1, dw1, dout, inp, w, &s, 0);
        dwconv_backward(din2, dw2, dout, inp, w, &s, 0);
    }
    CHECK(memcmp(out, out2, nout * sizeof(float)) == 0);
    CHECK(memcmp(dw1, dw2, nw * sizeof(float)) == 0);
    CHECK(memcmp(din1, din2, nin * sizeof(float)) == 0);
}

/* The depthwise kernels give the same bits at every element-wise ISA
 * level: forward, input gradient (accum 0 and 1) and weight gradient. */
static void test_dw_isa(const struct conv_dims *d)
{
    struct conv_shape s;
    if (conv_shape_init(&s, d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw, d->stride, d->pad,
                        d->ic) != 0) {
        CHECK(0);
        return;
    }
    const size_t nin = (size_t)d->ic * d->n * d->ih * d->iw;
    const size_t nout = (size_t)d->oc * d->n * s.oh * s.ow, nw = (size_t)d->oc * d->kh * d->kw;
    float *inp = fvec(nin), *w = fvec(nw), *dout = fvec(nout), *base = fvec(nin);
    fill_uniform(inp, nin, -1.0f, 1.0f);
    fill_uniform(w, nw, -1.0f, 1.0f);
    fill_uniform(dout, nout, -1.0f, 1.0f);
    fill_uniform(base, nin, -1.0f, 1.0f);
    /* [level][0: out, 1: din accum 0, 2: din accum 1, 3: dw] */
    float *r[3][4] = {{NULL}};
    const enum pact_isa saved = pact_get_isa();
    for (int isa = PACT_ISA_BASE; isa <= PACT_ISA_AVX512; isa++) {
        if (pact_set_isa((enum pact_isa)isa) != 0)
            continue;
        float **v = r[isa];
        v[0] = fvec(nout);
        v[1] = fvec(nin);
        v[2] = fvec(nin);
        v[3] = pgrad(nw);
        memcpy(v[2], base, nin * sizeof(float));
        dwconv_forward(v[0], inp, w, &s);
        dwconv_backward(v[1], v[3], dout, inp, w, &s, 0);
        dwconv_backward(v[2], v[3], dout, inp, w, &s, 1); /* dw accumulates twice */
        if (isa == PACT_ISA_BASE)
            continue;
        char what[128];
        snprintf(what, sizeof what, "dwconv level %d vs base n%d ic%d %dx%d k%dx%d s%d p%d", isa,
                 d->n, d->ic, d->ih, d->iw, d->kh, d->kw, d->stride, d->pad);
        const size_t len[4] = {nout, nin, nin, nw};
        for (int k = 0; k < 4; k++)
            if (memcmp(v[k], r[PACT_ISA_BASE][k], len[k] * sizeof(float)) != 0) {
                printf("FAIL %s: output %d differs\n", what, k);
                CHECK(0);
            }
    }
    pact_set_isa(saved);
}

static void test_conv_shapes(void)
{
    struct conv_shape s;
    /* stride 2: (28 + 2 - 3) / 2 + 1 = 14, (32 + 2 - 3) / 2 + 1 = 16 */
    CHECK_EQ_INT(conv_shape_init(&s, 128, 16, 28, 32, 32, 3, 3, 2, 1, 1), 0);
    CHECK_EQ_INT(s.oh, 14);
    CHECK_EQ_INT(s.ow, 16);
    /* scratch: per-thread chunk columns plus one dw partial per chunk */
    CHECK(conv_scratch_floats(&s) >= (size_t)16 * 9 * 14 * 16 + (size_t)32 * 16 * 9);
    CHECK_EQ_INT(conv_shape_init(&s, 4, 8, 7, 7, 16, 1, 1, 1, 0, 1), 0);
    /* pointwise reads its input: only the dw partials (one chunk here) */
    CHECK(conv_scratch_floats(&s) >= (size_t)16 * 8);
    CHECK_EQ_INT(conv_shape_init(&s, 4, 8, 7, 7, 16, 1, 1, 2, 0, 1), 0);
    CHECK_EQ_INT(s.oh, 4);
    CHECK(conv_scratch_floats(&s) >= (size_t)8 * 4 * 4 * 4 + 16 * 8); /* strided 1x1 needs cols */
    CHECK_EQ_INT(conv_shape_init(&s, 4, 8, 7, 7, 8, 3, 3, 1, 1, 8), 0);
    CHECK_EQ_INT(conv_scratch_floats(&s), 0);                                    /* depthwise */
    CHECK_EQ_INT(conv_shape_init(&s, 1, 3, 5, 5, 4, 3, 3, 0, 1, 1), SAT_EINVAL); /* stride 0 */
    CHECK_EQ_INT(conv_shape_init(&s, 1, 3, 5, 5, 4, 3, 3, 1, -1, 1), SAT_EINVAL);
    CHECK_EQ_INT(conv_shape_init(&s, 1, 3, 2, 5, 4, 5, 3, 1, 1, 1), SAT_EINVAL); /* kh > ih+2p */
    CHECK_EQ_INT(conv_shape_init(&s, 0, 3, 5, 5, 4, 3, 3, 1, 1, 1), SAT_EINVAL);
    CHECK_EQ_INT(conv_shape_init(&s, 1, 4, 5, 5, 4, 3, 3, 1, 1, 2), SAT_EINVAL); /* groups 2 */
    CHECK_EQ_INT(conv_shape_init(&s, 1, 4, 5, 5, 8, 3, 3, 1, 1, 4), SAT_EINVAL); /* oc != ic */
    CHECK_EQ_INT(conv_shape_init(&s, 65536, 64, 256, 256, 64, 3, 3, 1, 1, 1), SAT_EINVAL);
}

/* ==== The kernel versions against each other ============================== */

static const char *impl_name(enum conv_impl impl)
{
    static const char *const names[] = {"auto", "gemm", "direct", "avx2", "avx512"};
    return names[impl];
}

/* Forward and backward of one shape with the current kernel, fresh outputs. */
static void conv_run(float *out, float *din, float *dw, const float *inp, const float *w,
                     const float *dout, const struct conv_shape *s, float *cols)
{
    conv_forward(out, inp, w, s, cols);
    conv_backward(din, dw, dout, inp, w, s, cols, 0);
}

/* The direct versions this CPU runs give bit-identical outputs, input and
 * weight gradients (the same fused multiply-adds in the same order); they
 * match im2col + sgemm within float rounding (a different summation order:
 * the bound of the oracle checks, 1e-6 per term + 1e-4 relative); and the
 * direct kernels give the same bits with 1 and 3 threads. */
static void test_conv_impls(const struct conv_dims *d)
{
    struct conv_shape s;
    if (conv_shape_init(&s, d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw, d->stride, d->pad, 1)) {
        CHECK(!"bad shape");
        return;
    }
    s.threads = 3; /* scratch for up to 3 threads */
    const size_t nin = (size_t)d->ic * d->n * d->ih * d->iw;
    const size_t nout = (size_t)d->oc * d->n * s.oh * s.ow;
    const size_t nw = (size_t)d->oc * d->ic * d->kh * d->kw;
    float *inp = fvec(nin), *w = fvec(nw), *dout = fvec(nout),
          *cols = fvec(conv_scratch_floats(&s));
    fill_uniform(inp, nin, -1.0f, 1.0f);
    fill_uniform(w, nw, -1.0f, 1.0f);
    fill_uniform(dout, nout, -1.0f, 1.0f);
    const int saved_threads = nn_threads();
    const enum conv_impl saved = conv_get_impl();
    float *out[5], *din[5], *dw[5];
    char what[160];
    int ref = -1; /* first direct version run */
    for (int impl = CONV_IMPL_GEMM; impl <= CONV_IMPL_AVX512; impl++) {
        out[impl] = fvec(nout), din[impl] = fvec(nin), dw[impl] = fvec(nw);
        if (conv_set_impl((enum conv_impl)impl) != 0) {
            out[impl] = NULL; /* this CPU cannot run it */
            continue;
        }
        nn_set_threads(1);
        conv_run(out[impl], din[impl], dw[impl], inp, w, dout, &s, cols);
        if (impl == CONV_IMPL_GEMM)
            continue;
        /* 3 threads: the same bits */
        float *o3 = fvec(nout), *di3 = fvec(nin), *dw3 = fvec(nw);
        nn_set_threads(3);
        conv_run(o3, di3, dw3, inp, w, dout, &s, cols);
        snprintf(what, sizeof(what), "%s 1 vs 3 threads n%d ic%d %dx%d oc%d k%d s%d p%d",
                 impl_name((enum conv_impl)impl), d->n, d->ic, d->ih, d->iw, d->oc, d->kh,
                 d->stride, d->pad);
        CHECK(same_bits(what, "out", o3, out[impl], nout));
        CHECK(same_bits(what, "dinp", di3, din[impl], nin));
        CHECK(same_bits(what, "dw", dw3, dw[impl], nw));
        if (ref < 0) {
            ref = impl;
            continue;
        }
        snprintf(what, sizeof(what), "%s vs %s bits n%d ic%d %dx%d oc%d k%d s%d p%d",
                 impl_name((enum conv_impl)impl), impl_name((enum conv_impl)ref), d->n, d->ic,
                 d->ih, d->iw, d->oc, d->kh, d->stride, d->pad);
        CHECK(same_bits(what, "out", out[ref], out[impl], nout));
        CHECK(same_bits(what, "dinp", din[ref], din[impl], nin));
        CHECK(same_bits(what, "dw", dw[ref], dw[impl], nw));
    }
    nn_set_threads(saved_threads);
    conv_set_impl(saved);
    if (ref < 0)
        return;
    const double t_fwd = (double)d->ic * d->kh * d->kw, t_din = (double)d->oc * d->kh * d->kw;
    snprintf(what, sizeof(what), "direct vs gemm fwd n%d ic%d %dx%d oc%d k%d s%d p%d", d->n, d->ic,
             d->ih, d->iw, d->oc, d->kh, d->stride, d->pad);
    CHECK_ARRAY(what, out[ref], out[CONV_IMPL_GEMM], nout, 1e-6 * t_fwd + 1e-6, 1e-4);
    snprintf(what, sizeof(what), "direct vs gemm dinp n%d ic%d %dx%d oc%d k%d s%d p%d", d->n, d->ic,
             d->ih, d->iw, d->oc, d->kh, d->stride, d->pad);
    CHECK_ARRAY(what, din[ref], din[CONV_IMPL_GEMM], nin, 1e-6 * t_din + 1e-6, 1e-4);
    snprintf(what, sizeof(what), "direct vs gemm dw n%d ic%d %dx%d oc%d k%d s%d p%d", d->n, d->ic,
             d->ih, d->iw, d->oc, d->kh, d->stride, d->pad);
    CHECK_ARRAY(what, dw[ref], dw[CONV_IMPL_GEMM], nw, 1e-6 * (double)d->n * s.oh * s.ow + 1e-6,
                1e-4);
}

/* ==== The integer forward of quantized layers ============================= */

/* conv_forward_q against an oracle that never reads the float tensors'
 * values back: the weight codes from wquant_codes on the latent weights,
 * the activation codes rint(aa*clip(x, 0, al)/al) from PACT's input, the
 * integer sum in 64 bits by plain loops, times the scale of layers.h. Exact:
 * every version (portable, AVX2, VNNI) and 1 or 3 threads give these bits.
 * Against the float convolution of the quantized tensors it agrees within
 * float rounding (1e-6 per term + 1e-5 relative). */
static void test_conv_q(const struct conv_dims *d, int wbits, int abits, int sat)
{
    struct conv_shape s;
    if (conv_shape_init(&s, d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw, d->stride, d->pad, 1)) {
        CHECK(!"bad shape");
        return;
    }
    s.threads = 3;
    CHECK(conv_forward_q_ok(&s, wbits, abits));
    const size_t nin = (size_t)d->ic * d->n * d->ih * d->iw;
    const size_t nout = (size_t)d->oc * d->n * s.oh * s.ow;
    const size_t k = (size_t)d->ic * d->kh * d->kw, nw = (size_t)d->oc * k;
    float *x = fvec(nin), *y = fvec(nin), *wl = fvec(nw), *weff = fvec(nw), *dfac = fvec(nw);
    float *cols = fvec(conv_scratch_floats(&s)), *ref = fvec(nout), *fl = fvec(nout);
    const float alpha_raw = -2.5f; /* a negative raw alpha: al = 2.5 */
    const float al = pact_alpha(alpha_raw);
    fill_uniform(x, nin, -1.0f, 3.5f); /* below 0, inside, above al */
    x[0] = 0.0f, x[1] = al, x[nin - 1] = al * 0.5f;
    fill_uniform(wl, nw, -0.4f, 0.4f);
    pact_forward(y, x, nin, alpha_raw, abits);
    const struct wquant wq = {.bits = wbits, .sat = sat, .fan = (int)k};
    const float sf = wquant_forward(weff, dfac, wl, nw, &wq, NULL);
    int *wc = tmalloc(nw * sizeof(int));
    wquant_codes(wc, wl, nw, wbits);
    const int wa = (1 << wbits) - 1, aa = (1 << abits) - 1;
    const float scale = (float)((double)sf * al / ((double)wa * aa));
    for (int b = 0; b < d->n; b++)
        for (int o = 0; o < d->oc; o++)
            for (int oy = 0; oy < s.oh; oy++)
                for (int ox = 0; ox < s.ow; ox++) {
                    long long sum = 0;
                    for (int c = 0; c < d->ic; c++)
                        for (int ki = 0; ki < d->kh; ki++)
                            for (int kj = 0; kj < d->kw; kj++) {
                                int iy = oy * d->stride - d->pad + ki;
                                int ix = ox * d->stride - d->pad + kj;
                                if (iy < 0 || iy >= d->ih || ix < 0 || ix >= d->iw)
                                    continue;
                                float v = x[(((size_t)c * d->n + b) * d->ih + iy) * d->iw + ix];
                                v = v > 0.0f ? (v < al ? v : al) : 0.0f;
                                long long q = (long long)rint((double)aa * (double)(v / al));
                                int r = wc[(size_t)o * k + ((size_t)c * d->kh + ki) * d->kw + kj];
                                sum += (long long)(2 * r - wa) * q;
                            }
                    ref[(((size_t)o * d->n + b) * s.oh + oy) * s.ow + ox] = (float)sum * scale;
                }
    conv_forward_naive(fl, y, weff, &s);
    const int saved_threads = nn_threads();
    const enum conv_impl saved = conv_get_impl();
    char what[160];
    for (int impl = CONV_IMPL_GEMM; impl <= CONV_IMPL_AVX512; impl++) {
        if (conv_set_impl((enum conv_impl)impl) != 0)
            continue;
        for (int th = 1; th <= 3; th += 2) {
            float *out = fvec(nout);
            fill_const(out, nout, NAN); /* every element written */
            nn_set_threads(th);
            conv_forward_q(out, y, weff, sf, wbits, al, abits, &s, cols);
            snprintf(what, sizeof(what),
                     "q W%dA%d sat%d %s %d threads n%d ic%d %dx%d oc%d k%d s%d p%d", wbits, abits,
                     sat, impl_name((enum conv_impl)impl), th, d->n, d->ic, d->ih, d->iw, d->oc,
                     d->kh, d->stride, d->pad);
            CHECK(same_bits(what, "out", out, ref, nout));
        }
    }
    nn_set_threads(saved_threads);
    conv_set_impl(saved);
    snprintf(what, sizeof(what), "q W%dA%d vs float n%d ic%d oc%d k%d s%d", wbits, abits, d->n,
             d->ic, d->oc, d->kh, d->stride);
    CHECK_ARRAY(what, ref, fl, nout, 1e-6 * (double)k + 1e-6, 1e-5);
    free_all(); /* nothing allocated before is used after */
}

static void test_conv_q_shapes(void)
{
    /* the integer forward takes what the direct kernel takes with IC % 4 == 0
     * and sums below 2^24; nothing else */
    struct conv_shape s;
    conv_shape_init(&s, 2, 16, 8, 8, 16, 3, 3, 1, 1, 1);
    CHECK(conv_forward_q_ok(&s, 4, 4));
    CHECK(conv_forward_q_ok(&s, 6, 8));
    CHECK(!conv_forward_q_ok(&s, 7, 8));  /* 2*127*255: past AVX2's int16 pair sums */
    CHECK(!conv_forward_q_ok(&s, 8, 4));  /* weight codes past s8 */
    CHECK(!conv_forward_q_ok(&s, 4, 9));  /* activation codes past u8 */
    CHECK(!conv_forward_q_ok(&s, 32, 4)); /* float weights */
    conv_shape_init(&s, 2, 6, 8, 8, 16, 3, 3, 1, 1, 1);
    CHECK(!conv_forward_q_ok(&s, 4, 4)); /* IC not a multiple of 4 */
    conv_shape_init(&s, 2, 16, 8, 8, 8, 3, 3, 1, 1, 1);
    CHECK(!conv_forward_q_ok(&s, 4, 4)); /* OC not a multiple of 16 */
    conv_shape_init(&s, 2, 16, 8, 8, 16, 1, 1, 1, 0, 1);
    CHECK(conv_forward_q_ok(&s, 4, 4)); /* 1x1 too */
    conv_shape_init(&s, 2, 16, 8, 8, 16, 3, 3, 3, 1, 1);
    CHECK(!conv_forward_q_ok(&s, 4, 4)); /* stride 3 */
    conv_shape_init(&s, 2, 1024, 8, 8, 16, 3, 3, 1, 1, 1);
    CHECK(!conv_forward_q_ok(&s, 6, 8)); /* 9216*63*255 >= 2^24 */
}

/* ==== Finite-difference checks =========================================== */

/* conv (dense or depthwise) */
struct conv_fd {
    struct conv_shape s;
    float *inp, *w, *out, *r, *cols;
    size_t nout;
};

static double conv_fd_loss(void *ctx)
{
    struct conv_fd *c = ctx;
    if (c->s.groups == 1)
        conv_forward(c->out, c->inp, c->w, &c->s, c->cols);
    else
        dwconv_forward(c->out, c->inp, c->w, &c->s);
    return dot_d(c->out, c->r, c->nout);
}

static void test_conv_fd(const struct conv_dims *d, int groups, int line)
{
    struct conv_fd c;
    if (conv_shape_init(&c.s, d->n, d->ic, d->ih, d->iw, d->oc, d->kh, d->kw, d->stride, d->pad,
                        groups)) {
        CHECK(!"bad shape");
        return;
    }
    const size_t nin = (size_t)d->ic * d->n * d->ih * d->iw;
    const size_t nw = (size_t)d->oc * (d->ic / groups) * d->kh * d->kw;
    c.nout = (size_t)d->oc * d->n * c.s.oh * c.s.ow;
    c.inp = fvec(nin);
    c.w = fvec(nw);
    c.out = fvec(c.nout);
    c.r = fvec(c.nout);
    c.cols = fvec(conv_scratch_floats(&c.s));
    fill_uniform(c.inp, nin, -1.0f, 1.0f);
    fill_uniform(c.w, nw, -1.0f, 1.0f);
    fill_uniform(c.r, c.nout, -1.0f, 1.0f);

    float *dw = pgrad(nw), *d0, *d1, *base, *dw1 = pgrad(nw);
    make_dinp_pair(nin, &d0, &d1, &base);
    if (groups == 1) {
        conv_backward(d0, dw, c.r, c.inp, c.w, &c.s, c.cols, 0);
        conv_backward(d1, dw1, c.r, c.inp, c.w, &c.s, c.cols, 1);
    } else {
        dwconv_backward(d0, dw, c.r, c.inp, c.w, &c.s, 0);
        dwconv_backward(d1, dw1, c.r, c.inp, c.w, &c.s, 1);
    }
    unbase(dw, nw);
    /* The loss is linear in each element, so central differences are exact
     * up to float rounding of the forward (observed <= 1e-4): eps 1e-2,
     * atol 5e-4, rtol 1e-3. */
    check_fd(groups == 1 ? "conv dinp vs FD" : "dwconv dinp vs FD", line, c.inp, nin, d0,
             conv_fd_loss, &c, 1e-2f, 5e-4, 1e-3);
    check_fd(groups == 1 ? "conv dw vs FD" : "dwconv dw vs FD", line, c.w, nw, dw, conv_fd_loss, &c,
             1e-2f, 5e-4, 1e-3);
    check_accum(groups == 1 ? "conv accum" : "dwconv accum", line, d1, base, d0, nin);
}

int main(void)
{
    sat_rng_init(&rng, sat_rng_key(20240611, 1, 0, 0));

    test_conv_shapes();
    /* every dense shape against the oracle with each kernel this CPU runs */
    const enum conv_impl saved = conv_get_impl();
    for (int impl = CONV_IMPL_GEMM; impl <= CONV_IMPL_AVX512; impl++) {
        if (conv_set_impl((enum conv_impl)impl) != 0) {
            printf("test_conv: this CPU does not run the %s kernel; skipped\n",
                   impl_name((enum conv_impl)impl));
            continue;
        }
        for (size_t i = 0; i < sizeof(dense_cases) / sizeof(dense_cases[0]); i++)
            test_conv_vs_naive(&dense_cases[i], 1);
        for (size_t i = 0; i < sizeof(direct_cases) / sizeof(direct_cases[0]); i++)
            test_conv_vs_naive(&direct_cases[i], 1);
    }
    conv_set_impl(saved);
    for (size_t i = 0; i < sizeof(direct_cases) / sizeof(direct_cases[0]); i++)
        test_conv_impls(&direct_cases[i]);
    /* depthwise: against the oracle at every element-wise ISA level this
     * CPU runs (the "same" planes have a 16-lane kernel at avx512 and a
     * weight gradient of their own at avx2), and the same bits at each */
    const enum pact_isa isa_saved = pact_get_isa();
    for (int isa = PACT_ISA_BASE; isa <= PACT_ISA_AVX512; isa++) {
        if (pact_set_isa((enum pact_isa)isa) != 0) {
            printf("test_conv: this CPU does not run element-wise level %d; skipped\n", isa);
            continue;
        }
        for (size_t i = 0; i < sizeof(dw_cases) / sizeof(dw_cases[0]); i++) {
            test_conv_vs_naive(&dw_cases[i], dw_cases[i].ic);
            free_all(); /* each case's buffers are its own */
        }
    }
    pact_set_isa(isa_saved);
    for (size_t i = 0; i < sizeof(dw_cases) / sizeof(dw_cases[0]); i++) {
        test_dw_isa(&dw_cases[i]);
        free_all();
    }

    /* the integer forward: 4 to 96 channels in, 16/32/48 out, 1x1 (stride 1,
     * 2, padded), 3x3 and 5x5,
     * stride 1 and 2, whole and partial tiles, W2A2 to W6A8, SAT on and off */
    test_conv_q_shapes();
    const struct conv_dims q_cases[] = {
        {2, 16, 28, 28, 16, 3, 3, 1, 1}, {2, 4, 9, 9, 16, 3, 3, 1, 1},
        {3, 16, 7, 7, 32, 3, 3, 1, 1},   {2, 32, 14, 14, 64, 3, 3, 2, 1},
        {1, 8, 11, 9, 48, 5, 5, 2, 2},   {2, 16, 9, 17, 32, 3, 3, 1, 0},
        {2, 96, 14, 14, 32, 1, 1, 1, 0}, {2, 16, 15, 15, 32, 1, 1, 2, 0},
        {1, 12, 5, 5, 16, 1, 1, 1, 1},
    };
    const int q_bits[][3] = {{4, 4, 1}, {2, 2, 1}, {3, 3, 0}, {6, 8, 1}, {4, 2, 0}, {2, 8, 1}};
    for (size_t i = 0; i < sizeof(q_cases) / sizeof(q_cases[0]); i++)
        for (size_t j = 0; j < sizeof(q_bits) / sizeof(q_bits[0]); j++)
            test_conv_q(&q_cases[i], q_bits[j][0], q_bits[j][1], q_bits[j][2]);

    /* finite differences: dense 3x3 s2 p1, pointwise, 1x1 s2, 5x5 p2; depthwise s1 and s2 */
    const struct conv_dims fd_dense[] = {
        {2, 2, 5, 4, 3, 3, 3, 2, 1},
        {2, 3, 4, 3, 2, 1, 1, 1, 0},
        {2, 2, 5, 5, 3, 1, 1, 2, 0},
        {1, 2, 4, 5, 2, 5, 5, 1, 2},
    };
    for (size_t i = 0; i < sizeof(fd_dense) / sizeof(fd_dense[0]); i++)
        test_conv_fd(&fd_dense[i], 1, __LINE__);
    /* the direct kernel (with AUTO on an AVX-512 CPU, else the portable one):
     * 3x3, 5x5 with a 2-pixel pad, 3x3 stride 2 */
    const struct conv_dims fd_direct[] = {
        {2, 16, 5, 4, 16, 3, 3, 1, 1},
        {1, 3, 6, 5, 16, 5, 5, 1, 2},
        {2, 2, 6, 5, 16, 3, 3, 2, 1},
    };
    if (conv_get_impl() == CONV_IMPL_GEMM)
        conv_set_impl(CONV_IMPL_DIRECT);
    for (size_t i = 0; i < sizeof(fd_direct) / sizeof(fd_direct[0]); i++)
        test_conv_fd(&fd_direct[i], 1, __LINE__);
    conv_set_impl(saved);
    const struct conv_dims fd_dw[] = {
        {2, 3, 5, 6, 3, 3, 3, 1, 1},
        {2, 2, 6, 5, 2, 3, 3, 2, 1},
        {1, 2, 5, 5, 2, 3, 3, 2, 0},
    };
    for (size_t i = 0; i < sizeof(fd_dw) / sizeof(fd_dw[0]); i++)
        test_conv_fd(&fd_dw[i], fd_dw[i].ic, __LINE__);

    free_all();
    return check_summary("test_conv");
}
