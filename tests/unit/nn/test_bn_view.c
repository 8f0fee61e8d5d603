/* test_bn_view.c - the fused BatchNorm + activation kernels (layers.h
 * struct bn_view, relu_*_bn, pact_*_bn, bn_stats_*) give bit for bit what
 * bn_forward_* followed by the plain activation gives: outputs, input
 * gradients, the alpha gradient, saved and running statistics, in train
 * and eval mode, on channel slabs that do and do not line up with the
 * kernels' blocks, with 1 and 3 threads; and a depthwise convolution reading
 * its input through an activation view (dwconv_*_act) gives what it gives on
 * the stored activation.
 */
#include "check.h"
#include "nn/layers.h"
#include "nn/quant.h"
#include "nn/threads.h"
#include "util/rng.h"

#include <stdlib.h>

struct bufs {
    float *x, *gamma, *beta, *rm, *rv, *rm2, *rv2, *mean, *invstd, *mean2, *invstd2;
    float *mu, *scale, *shift, *y, *dy, *out, *out2, *dx, *dx2;
};

static float *fill(size_t n, struct sat_rng *r, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)sat_rng_uniform(r);
    return p;
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* act: 0 ReLU, else PACT with that many bits. */
static void check_case(int c, size_t m, int act, int train, int threads)
{
    nn_set_threads(threads);
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(21, (uint64_t)c, (uint64_t)m, (uint64_t)act));
    const size_t len = (size_t)c * m;
    struct bufs b;
    b.x = fill(len, &r, -3.0f, 5.0f);
    b.dy = fill(len, &r, -1.0f, 1.0f);
    b.gamma = fill((size_t)c, &r, 0.5f, 2.0f);
    b.beta = fill((size_t)c, &r, -0.5f, 1.5f);
    b.rm = fill((size_t)c, &r, -0.1f, 0.1f);
    b.rv = fill((size_t)c, &r, 0.5f, 1.5f);
    b.rm2 = malloc((size_t)c * sizeof(float));
    b.rv2 = malloc((size_t)c * sizeof(float));
    memcpy(b.rm2, b.rm, (size_t)c * sizeof(float));
    memcpy(b.rv2, b.rv, (size_t)c * sizeof(float));
    float *bufs[] = {b.mean = calloc((size_t)c, 4),  b.invstd = calloc((size_t)c, 4),
                     b.mean2 = calloc((size_t)c, 4), b.invstd2 = calloc((size_t)c, 4),
                     b.mu = calloc((size_t)c, 4),    b.scale = calloc((size_t)c, 4),
                     b.shift = calloc((size_t)c, 4), b.y = calloc(len, 4),
                     b.out = calloc(len, 4),         b.out2 = calloc(len, 4),
                     b.dx = calloc(len, 4),          b.dx2 = calloc(len, 4)};
    const float alpha = 2.5f;

    /* reference: BN into y, then the plain activation */
    if (train)
        bn_forward_train(b.y, b.mean, b.invstd, b.x, b.gamma, b.beta, b.rm, b.rv, c, m, 1e-5f,
                         0.1f);
    else
        bn_forward_eval(b.y, b.x, b.gamma, b.beta, b.rm, b.rv, c, m, 1e-5f);
    double ga = 0, ga2 = 0;
    for (int accum = 0; accum < 2; accum++) {
        if (act == 0) {
            relu_forward(b.out, b.y, len);
            relu_backward(b.dx, b.dy, b.y, len, accum);
        } else {
            pact_forward(b.out, b.y, len, alpha, act);
            ga = pact_backward(b.dx, b.dy, b.y, c, m, alpha, act, 1, accum);
        }
    }

    /* fused: statistics only, the activation through the view */
    if (train)
        bn_stats_train(b.mu, b.scale, b.shift, b.mean2, b.invstd2, b.x, b.gamma, b.beta, b.rm2,
                       b.rv2, c, m, 1e-5f, 0.1f);
    else
        bn_stats_eval(b.mu, b.scale, b.shift, b.gamma, b.beta, b.rm2, b.rv2, c, 1e-5f);
    struct bn_view v = {.x = b.x, .mu = b.mu, .scale = b.scale, .shift = b.shift, .m = m};
    for (int accum = 0; accum < 2; accum++) {
        if (act == 0) {
            relu_forward_bn(b.out2, &v, c);
            relu_backward_bn(b.dx2, b.dy, &v, c, accum);
        } else {
            pact_forward_bn(b.out2, &v, c, alpha, act);
            ga2 = pact_backward_bn(b.dx2, b.dy, &v, c, alpha, act, 1, accum);
        }
    }
    float *vals = calloc(len, 4);
    bn_view_values(vals, &v, c);

    if (!same_bits(vals, b.y, len) || !same_bits(b.out, b.out2, len) ||
        !same_bits(b.dx, b.dx2, len) || memcmp(&ga, &ga2, sizeof ga) != 0 ||
        !same_bits(b.rm, b.rm2, (size_t)c) || !same_bits(b.rv, b.rv2, (size_t)c) ||
        (train &&
         (!same_bits(b.mean, b.mean2, (size_t)c) || !same_bits(b.invstd, b.invstd2, (size_t)c)))) {
        fprintf(stderr, "bn view c%d m%zu act%d train%d threads%d: differs\n", c, m, act, train,
                threads);
        CHECK(0);
    } else {
        CHECK(1);
    }
    free(vals);
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(b.x);
    free(b.dy);
    free(b.gamma);
    free(b.beta);
    free(b.rm);
    free(b.rv);
    free(b.rm2);
    free(b.rv2);
}

/* BN (train) -> act (bits 0: ReLU) -> depthwise conv k x k, stride st. */
static void check_dw(int c, int n, int h, int w, int k, int st, int bits)
{
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(22, (uint64_t)c, (uint64_t)h, (uint64_t)bits));
    struct conv_shape s;
    CHECK_EQ_INT(conv_shape_init(&s, n, c, h, w, c, k, k, st, k / 2, c), 0);
    CHECK(dwconv_act_ok(&s));
    const size_t m = (size_t)n * h * w, len = (size_t)c * m;
    const size_t olen = (size_t)c * n * s.oh * s.ow, wl = (size_t)c * k * k;
    float *x = fill(len, &r, -2.0f, 4.0f), *wt = fill(wl, &r, -1.0f, 1.0f);
    float *gamma = fill((size_t)c, &r, 0.5f, 2.0f), *beta = fill((size_t)c, &r, -0.5f, 1.0f);
    float *dout = fill(olen, &r, -1.0f, 1.0f);
    float *mean = calloc((size_t)c, 4), *invstd = calloc((size_t)c, 4);
    float *mu = calloc((size_t)c, 4), *scale = calloc((size_t)c, 4), *shift = calloc((size_t)c, 4);
    float *y = calloc(len, 4), *a = calloc(len, 4), *o1 = calloc(olen, 4), *o2 = calloc(olen, 4);
    float *dw1 = calloc(wl, 4), *dw2 = calloc(wl, 4), *di1 = calloc(len, 4), *di2 = calloc(len, 4);
    const float alpha = 1.75f;
    bn_forward_train(y, mean, invstd, x, gamma, beta, NULL, NULL, c, m, 1e-5f, 0.1f);
    if (bits)
        pact_forward(a, y, len, alpha, bits);
    else
        relu_forward(a, y, len);
    dwconv_forward(o1, a, wt, &s);
    dwconv_backward(di1, dw1, dout, a, wt, &s, 0);
    bn_stats_train(mu, scale, shift, mean, invstd, x, gamma, beta, NULL, NULL, c, m, 1e-5f, 0.1f);
    struct act_view av = {
        .bn = {.x = x, .mu = mu, .scale = scale, .shift = shift, .m = m},
        .bits = bits,
        .alpha_raw = alpha,
    };
    dwconv_forward_act(o2, &av, wt, &s);
    dwconv_backward_act(di2, dw2, dout, &av, wt, &s, 0);
    float *vals = calloc(len, 4);
    act_view_fill(vals, &av, 0, len);
    if (!same_bits(a, vals, len) || !same_bits(o1, o2, olen) || !same_bits(dw1, dw2, wl) ||
        !same_bits(di1, di2, len)) {
        fprintf(stderr, "dwconv act view c%d n%d %dx%d k%d s%d bits%d: differs\n", c, n, h, w, k,
                st, bits);
        CHECK(0);
    } else {
        CHECK(1);
    }
    float *all[] = {x, wt, gamma, beta, dout, mean, invstd, mu,  scale, shift,
                    y, a,  o1,    o2,   dw1,  dw2,  di1,    di2, vals};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

int main(void)
{
    /* slabs shorter than a chunk, not a multiple of 4 or 64, and a tensor
     * of several element-wise blocks (16384) whose channels straddle them */
    static const struct {
        int c;
        size_t m;
    } shapes[] = {{1, 1}, {3, 5}, {5, 67}, {7, 196}, {40, 1001}, {3, 16384}};
    /* at every element-wise ISA level this CPU runs (the view kernels are
     * compiled per level; the stored-output reference is not) */
    const enum pact_isa saved = pact_get_isa();
    for (int isa = PACT_ISA_BASE; isa <= PACT_ISA_AVX512; isa++) {
        if (pact_set_isa((enum pact_isa)isa) != 0)
            continue;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int act = 0; act <= 4; act += 2)
                for (int train = 0; train < 2; train++)
                    for (int t = 1; t <= 3; t += 2)
                        check_case(shapes[i].c, shapes[i].m, act, train, t);
    }
    pact_set_isa(saved);
    for (int bits = 0; bits <= 4; bits += 4) {
        check_dw(3, 2, 7, 7, 3, 1, bits);
        check_dw(5, 3, 14, 14, 3, 2, bits);
        check_dw(2, 2, 28, 28, 3, 1, bits);
        check_dw(2, 2, 6, 9, 5, 1, bits);
    }
    return check_summary("bn_view");
}
