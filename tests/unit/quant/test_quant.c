/* test_quant.c - SAT weight quantization and PACT / CG-PACT against hand
 * cases, closed forms computed independently in double, and guards.
 *
 * Tolerances: float results that the spec defines by a float formula are
 * compared exactly or within 1 ulp-ish (1e-6 relative); gradients within
 * 1e-5 relative of the double-precision closed form.
 */
#include "check.h"
#include "nn/layers.h"
#include "nn/quant.h"
#include "util/rng.h"

#include <float.h>
#include <stdlib.h>

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

static void test_weight_levels(void)
{
    /* 2-bit levels are -1, -1/3, 1/3, 1. */
    float w[4] = {-1.0f, -0.2f, 0.2f, 1.0f}, q[4], d[4];
    struct wquant wq = {.bits = 2, .clamp = 1, .sat = 0, .fan = 4};
    float s = wquant_forward(q, d, w, 4, &wq, NULL);
    CHECK_CLOSE(s, 1.0, 0, 0);
    CHECK_CLOSE(q[0], -1.0, 1e-7, 0);
    CHECK_CLOSE(q[1], -1.0 / 3, 1e-7, 0);
    CHECK_CLOSE(q[2], 1.0 / 3, 1e-7, 0);
    CHECK_CLOSE(q[3], 1.0, 1e-7, 0);

    /* Same tensor with SAT, n = 4: var_unbiased(Q) = (1 + 1/9 + 1/9 + 1)/3 = 20/27,
     * s = 1/sqrt(4 * 20/27) = sqrt(27/80). */
    wq.sat = 1;
    s = wquant_forward(q, d, w, 4, &wq, NULL);
    CHECK_CLOSE(s, sqrt(27.0 / 80.0), 0, 1e-6);
    CHECK_CLOSE(q[1], -sqrt(27.0 / 80.0) / 3, 0, 1e-6);

    /* Every k-bit value lies on the grid {-1 + 2j/a}. */
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(3, 0, 0, 0));
    float big[1000], qb[1000], db[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (float)(0.1 * sat_rng_normal(&r));
    for (int k = 2; k <= 8; k++) {
        struct wquant qk = {.bits = k, .clamp = 1, .sat = 0, .fan = 1};
        wquant_forward(qb, db, big, 1000, &qk, NULL);
        double a = (1 << k) - 1;
        int on_grid = 1, hit_max = 0;
        for (int i = 0; i < 1000; i++) {
            double j = (qb[i] + 1.0) * a / 2.0;
            on_grid &= fabs(j - rint(j)) < 1e-4 && j > -1e-4 && j < a + 1e-4;
            hit_max |= fabs(fabs(qb[i]) - 1.0) < 1e-6;
        }
        CHECK(on_grid);
        CHECK(hit_max); /* the arg-max element maps to +-1 */
    }
    /* Codes for export agree with Q = 2*code/a - 1. */
    int codes[1000];
    struct wquant q4 = {.bits = 4, .clamp = 1, .sat = 0, .fan = 1};
    wquant_forward(qb, db, big, 1000, &q4, NULL);
    wquant_codes(codes, big, 1000, 4);
    int agree = 1;
    for (int i = 0; i < 1000; i++)
        agree &= qb[i] == 2.0f * ((float)codes[i] / 15.0f) - 1.0f;
    CHECK(agree);
}

/* Backward: dW = g * s * (1 - tanh^2 W) / M with M and s constants, against
 * an independent double computation; and for the float clamp path against
 * finite differences of W -> s0 * tanh(W) / M0 with s0, M0 frozen. */
static void test_weight_backward(void)
{
    enum { N = 64 };
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(5, 0, 0, 0));
    float w[N], q[N], d[N], g[N], dw[N];
    for (int i = 0; i < N; i++) {
        w[i] = (float)(0.5 * sat_rng_normal(&r));
        g[i] = (float)sat_rng_normal(&r);
    }
    for (int bits = 2; bits <= 32; bits = bits == 8 ? 32 : bits + 2) {
        struct wquant wq = {.bits = bits, .clamp = 1, .sat = 1, .fan = 16};
        float m = 0;
        float s = wquant_forward(q, d, w, N, &wq, &m);
        memset(dw, 0, sizeof dw);
        wquant_backward(dw, g, d, N);
        double mref = 0;
        for (int i = 0; i < N; i++)
            mref = fmax(mref, fabs(tanh((double)w[i])));
        CHECK_CLOSE(m, mref, 0, 1e-6);
        int ok = 1;
        for (int i = 0; i < N; i++) {
            double t = tanh((double)w[i]);
            double ref = g[i] * (double)s * (1 - t * t) / mref;
            ok &= fabs(dw[i] - ref) <= 1e-5 * fabs(ref) + 1e-7;
        }
        CHECK(ok);
        if (bits == 32) {
            /* finite differences, s and M frozen; eps 1e-3 in double */
            int fd_ok = 1;
            for (int i = 0; i < N; i++) {
                double e = 1e-3;
                double fp = g[i] * s * tanh((double)w[i] + e) / mref;
                double fm = g[i] * s * tanh((double)w[i] - e) / mref;
                double fd = (fp - fm) / (2 * e);
                fd_ok &= fabs(fd - dw[i]) <= 1e-4 * fabs(fd) + 1e-6;
            }
            CHECK(fd_ok);
        }
    }
    /* Accumulation: backward adds. */
    for (int i = 0; i < N; i++)
        dw[i] = 1.0f;
    struct wquant id = {.bits = 32, .clamp = 0};
    wquant_forward(q, d, w, N, &id, NULL);
    wquant_backward(dw, g, d, N);
    CHECK_CLOSE(dw[3], 1.0 + g[3], 1e-6, 0);
    CHECK(q[7] == w[7]);
}

static void test_weight_guards(void)
{
    float z[16] = {0}, q[16], d[16];
    struct wquant wq = {.bits = 4, .clamp = 1, .sat = 1, .fan = 16};
    float s = wquant_forward(q, d, z, 16, &wq, NULL); /* all zero: M guarded */
    CHECK(isfinite(s) && all_finite(q, 16) && all_finite(d, 16));
    float c[16];
    for (int i = 0; i < 16; i++)
        c[i] = 0.3f; /* constant: var(Q) = 0, guarded */
    s = wquant_forward(q, d, c, 16, &wq, NULL);
    CHECK(isfinite(s) && all_finite(q, 16) && all_finite(d, 16));
    float one = 0.7f, q1, d1; /* one element: unbiased variance undefined */
    s = wquant_forward(&q1, &d1, &one, 1, &wq, NULL);
    CHECK(isfinite(s) && isfinite(q1) && isfinite(d1));
    struct wquant w32 = {.bits = 32, .clamp = 1, .sat = 1, .fan = 4};
    s = wquant_forward(q, d, z, 16, &w32, NULL);
    CHECK(isfinite(s) && all_finite(q, 16) && all_finite(d, 16));
    float huge[4] = {1e30f, -1e30f, 50.0f, -3.0f}; /* saturated tanh */
    s = wquant_forward(q, d, huge, 4, &wq, NULL);
    CHECK(isfinite(s) && all_finite(q, 4) && all_finite(d, 4));
}

static void test_pact_values(void)
{
    /* alpha 1, 2 bits: levels 0, 1/3, 2/3, 1. */
    float x[8] = {-1.0f, 0.0f, 0.1f, 0.5f, 1.0f / 6.0f, 0.9f, 1.0f, 5.0f}, y[8];
    pact_forward(y, x, 8, 1.0f, 2);
    CHECK(y[0] == 0.0f);
    CHECK(y[1] == 0.0f);
    CHECK(y[2] == 0.0f);                            /* 0.3 -> 0 */
    CHECK_CLOSE(y[3], 2.0 / 3.0, 1e-7, 0);         /* 1.5 -> 2 (half to even) */
    CHECK(y[4] == 0.0f || fabsf(y[4] - 1.0f / 3.0f) < 1e-7f); /* 0.5 (+- 1 ulp) */
    CHECK_CLOSE(y[5], 1.0, 1e-7, 0);               /* 2.7 -> 3 */
    CHECK(y[6] == 1.0f);
    CHECK(y[7] == 1.0f);
    /* An exact tie at 2.5 rounds to 2, not 3 (rintf, not roundf): alpha 3, x 2.5, 2 bits:
     * a*x/al = 3*2.5/3 = 2.5 exactly. */
    float xt = 2.5f, yt;
    pact_forward(&yt, &xt, 1, 3.0f, 2);
    CHECK_CLOSE(yt, 2.0, 1e-6, 0);
    /* Negative raw alpha acts as |alpha|. */
    float yn;
    pact_forward(&yn, &x[5], 1, -1.0f, 2);
    CHECK_CLOSE(yn, 1.0, 1e-7, 0);
}

static void test_pact_grads(void)
{
    enum { N = 4096 };
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(9, 0, 0, 0));
    static float x[N], dy[N], dx[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(3.0 * sat_rng_normal(&r) + 2.0);
        dy[i] = (float)sat_rng_normal(&r);
    }
    x[0] = 4.0f; /* an exact tie x == alpha counts as clipped */
    const float alpha = 4.0f;
    for (int bits = 2; bits <= 8; bits++) {
        double a = (1 << bits) - 1;
        double cg_ref = 0, pact_ref = 0;
        int dx_ok = 1;
        for (int i = 0; i < N; i++) {
            double xi = x[i];
            if (xi >= alpha) {
                cg_ref += dy[i];
                pact_ref += dy[i];
            } else if (xi > 0) {
                float u = x[i] / alpha; /* the spec's float u */
                cg_ref += dy[i] * ((double)(rintf((float)a * u) / (float)a) - (double)u);
            }
        }
        double g_cg = pact_backward(dx, dy, x, 1, N, alpha, bits, 1, 0);
        for (int i = 0; i < N; i++) {
            float want = (x[i] > 0 && x[i] < alpha) ? dy[i] : 0.0f;
            dx_ok &= dx[i] == want;
        }
        CHECK(dx_ok);
        CHECK(dx[0] == 0.0f);
        CHECK_CLOSE(g_cg, cg_ref, 1e-4, 1e-5);
        double g_p = pact_backward(NULL, dy, x, 1, N, alpha, bits, 0, 0);
        CHECK_CLOSE(g_p, pact_ref, 1e-4, 1e-5);
        /* sign of the raw parameter */
        double g_neg = pact_backward(NULL, dy, x, 1, N, -alpha, bits, 1, 0);
        CHECK_CLOSE(g_neg, -g_cg, 1e-9, 1e-9);
        /* The CG term is bounded by 1/(2a) per element. */
        CHECK(fabs(g_cg - g_p) <= N * (1.0 / (2 * a)) * 4.0);
    }
    /* accum adds into dx */
    for (int i = 0; i < N; i++)
        dx[i] = 1.0f;
    pact_backward(dx, dy, x, 1, N, alpha, 4, 1, 1);
    int acc_ok = 1;
    for (int i = 0; i < N; i++)
        acc_ok &= dx[i] == 1.0f + ((x[i] > 0 && x[i] < alpha) ? dy[i] : 0.0f);
    CHECK(acc_ok);
    /* alpha near zero: finite everything */
    float y[N];
    pact_forward(y, x, N, 1e-12f, 4);
    double g = pact_backward(dx, dy, x, 1, N, 0.0f, 4, 1, 0);
    CHECK(all_finite(y, N) && all_finite(dx, N) && isfinite(g));
}

/* ---- ISA levels against a scalar oracle ----------------------------------
 * The PACT kernels are compiled per ISA level (quant.h, enum pact_isa) and
 * must all give the bits of the spec's scalar formulas, evaluated in the
 * documented order: fixed pieces of each channel, element i of a piece
 * into double lane i % 8, lanes added pairwise, pieces added channel by
 * channel, times sign(alpha_raw). The oracle below is that, written
 * plainly. */

static float oracle_pact(float v, float al, float a)
{
    float xc = v > 0.0f ? v : 0.0f;
    xc = xc < al ? xc : al;
    float u = xc / al;
    return al * (rintf(a * u) / a);
}

/* x (C, M), c channels of m values: dx = or += dy * (0 < x < al) (dx may
 * be NULL); returns the alpha_raw gradient, summed as quant.h defines it:
 * per channel, per fixed piece of the channel (16 pieces, halved until
 * each holds at least 512 values; piece k starts at (m*k/K) & ~7), eight
 * double lanes (element i of the piece into lane i % 8), the pieces' sums
 * added channel by channel, piece by piece. */
static double oracle_pact_backward(float *dx, const float *dy, const float *x, size_t c, size_t m,
                                   float alpha_raw, int bits, int cg, int accum)
{
    const float al = fmaxf(fabsf(alpha_raw), QUANT_ALPHA_EPS);
    const float a = (float)((1 << bits) - 1);
    size_t pieces = 16;
    while (pieces > 1 && m / pieces < 512)
        pieces /= 2;
    double total = 0.0;
    for (size_t ch = 0; ch < c; ch++) {
        for (size_t k = 0; k < pieces; k++) {
            const size_t lo = ch * m + ((m * k / pieces) & ~(size_t)7);
            const size_t hi = ch * m + (k + 1 == pieces ? m : (m * (k + 1) / pieces) & ~(size_t)7);
            double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t i = lo; i < hi; i++) {
                const float xi = x[i], g = dy[i];
                float ga;
                if (xi >= al)
                    ga = 1.0f;
                else if (xi > 0.0f && cg) {
                    const float u = xi / al;
                    ga = rintf(a * u) / a - u;
                } else
                    ga = 0.0f;
                lane[(i - lo) % 8] += (double)(g * ga);
                const float pd = xi > 0.0f && xi < al ? g : 0.0f;
                if (dx)
                    dx[i] = accum ? dx[i] + pd : pd;
            }
            total += ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
                     ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        }
    }
    return alpha_raw < 0.0f ? -total : total;
}

/* Same bits, or both NaN (a NaN's payload may depend on operand order). */
static int same_f(float a, float b)
{
    return memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b));
}

static int same_d(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0 || (isnan(a) && isnan(b));
}

static int same_all(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!same_f(a[i], b[i])) {
            fprintf(stderr, "  element %zu: %a vs %a\n", i, (double)a[i], (double)b[i]);
            return 0;
        }
    return 1;
}

/* x (len): a mix of the cases the kernels branch on, for alpha al and a
 * levels: the grid points k*al/a and the midpoints between them (ties of
 * rint), al itself and its neighbours, 0, -0, negatives, values above al,
 * NaN, infinities, subnormals, and plain random values. */
static void pact_inputs(float *x, size_t len, struct sat_rng *r, float al, float a)
{
    for (size_t i = 0; i < len; i++) {
        const float k = (float)sat_rng_below(r, (uint32_t)a + 1);
        switch (sat_rng_below(r, 12)) {
        case 0:
            x[i] = k * al / a;
            break;
        case 1:
            x[i] = (k + 0.5f) * al / a;
            break;
        case 2:
            x[i] = al;
            break;
        case 3:
            x[i] = nextafterf(al, sat_rng_below(r, 2) ? INFINITY : 0.0f);
            break;
        case 4:
            x[i] = sat_rng_below(r, 2) ? 0.0f : -0.0f;
            break;
        case 5:
            x[i] = -(float)(3.0 * sat_rng_uniform(r));
            break;
        case 6:
            x[i] = al * (float)(1.0 + 4.0 * sat_rng_uniform(r));
            break;
        case 7:
            x[i] = sat_rng_below(r, 4) ? NAN : sat_rng_below(r, 2) ? INFINITY : -INFINITY;
            break;
        case 8:
            x[i] = (float)sat_rng_below(r, 100) * FLT_TRUE_MIN;
            break;
        default:
            x[i] = (float)(3.0 * sat_rng_normal(r) + 1.0);
            break;
        }
    }
}

/* Every entry point at the current level against the oracle, on len
 * elements; the view entry points on a view of c channels of m (identity
 * scale on a shifted copy, so that the view's values are known exactly). */
static void check_pact_level(enum pact_isa isa, size_t len, int with_nan_dy)
{
    CHECK_EQ_INT(pact_set_isa(isa), 0);
    CHECK_EQ_INT(pact_get_isa(), isa);
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(31, len, (uint64_t)with_nan_dy, 0));
    float *x = malloc(len * sizeof(float)), *dy = malloc(len * sizeof(float));
    float *y = malloc(len * sizeof(float)), *y0 = malloc(len * sizeof(float));
    float *dx = malloc(len * sizeof(float)), *dx0 = malloc(len * sizeof(float));
    const float alphas[] = {2.5f, -1.75f, 1e-9f};
    const int bitss[] = {2, 4, 8};
    for (size_t ai = 0; ai < sizeof(alphas) / sizeof(alphas[0]); ai++) {
        for (size_t bi = 0; bi < sizeof(bitss) / sizeof(bitss[0]); bi++) {
            const float alpha = alphas[ai], al = fmaxf(fabsf(alpha), QUANT_ALPHA_EPS);
            const int bits = bitss[bi];
            pact_inputs(x, len, &r, al, (float)((1 << bits) - 1));
            for (size_t i = 0; i < len; i++) {
                dy[i] = (float)sat_rng_normal(&r);
                if (with_nan_dy && sat_rng_below(&r, 997) == 0)
                    dy[i] = sat_rng_below(&r, 2) ? NAN : INFINITY;
            }
            /* forward, plain and short-run */
            for (size_t i = 0; i < len; i++)
                y0[i] = oracle_pact(x[i], al, (float)((1 << bits) - 1));
            pact_forward(y, x, len, alpha, bits);
            CHECK(same_all(y, y0, len));
            const size_t o = len > 3 ? 3 : 0; /* a run that starts off the blocks */
            memset(y, 0, len * sizeof(float));
            pact_apply(y + o, x + o, len - o, alpha, bits);
            CHECK(same_all(y + o, y0 + o, len - o));
            /* backward: dx set, added, absent; CG-PACT and PACT */
            for (int cg = 0; cg <= 1; cg++) {
                for (int mode = 0; mode < 3; mode++) {
                    for (size_t i = 0; i < len; i++)
                        dx[i] = dx0[i] = (float)i * 0.25f;
                    float *d = mode == 2 ? NULL : dx, *d0 = mode == 2 ? NULL : dx0;
                    const double g0 =
                        oracle_pact_backward(d0, dy, x, 1, len, alpha, bits, cg, mode);
                    const double g = pact_backward(d, dy, x, 1, len, alpha, bits, cg, mode);
                    if (!same_d(g, g0))
                        fprintf(stderr, "  isa %d len %zu bits %d cg %d mode %d: %a vs %a\n",
                                (int)isa, len, bits, cg, mode, g, g0);
                    CHECK(same_d(g, g0));
                    CHECK(same_all(dx, dx0, len));
                }
            }
            /* Through a BN view of c channels of 37: the oracle runs on the
             * view's values as bn_view_values stores them (the stored BN
             * output the view stands for); runs start inside a channel. */
            const size_t m = 37, c = len / m, vlen = c * m;
            float mu[64], scale[64], shift[64];
            for (size_t ch = 0; ch < c && ch < 64; ch++) {
                mu[ch] = (float)(0.1 * sat_rng_normal(&r));
                scale[ch] = (float)(0.5 + sat_rng_uniform(&r));
                shift[ch] = (float)(sat_rng_normal(&r));
            }
            if (c == 0 || c > 64)
                continue;
            struct bn_view v = {.x = x, .mu = mu, .scale = scale, .shift = shift, .m = m};
            float *xv = malloc(vlen * sizeof(float));
            bn_view_values(xv, &v, (int)c);
            for (size_t i = 0; i < vlen; i++)
                y0[i] = oracle_pact(xv[i], al, (float)((1 << bits) - 1));
            pact_forward_bn(y, &v, (int)c, alpha, bits);
            CHECK(same_all(y, y0, vlen));
            memset(y, 0, len * sizeof(float));
            pact_apply_bn(y + 5, &v, 5, vlen - 5, alpha, bits);
            CHECK(same_all(y + 5, y0 + 5, vlen - 5));
            for (int mode = 0; mode < 3; mode++) {
                for (size_t i = 0; i < vlen; i++)
                    dx[i] = dx0[i] = -(float)i;
                float *d = mode == 2 ? NULL : dx, *d0 = mode == 2 ? NULL : dx0;
                const double g0 = oracle_pact_backward(d0, dy, xv, c, m, alpha, bits, 1, mode);
                const double g = pact_backward_bn(d, dy, &v, (int)c, alpha, bits, 1, mode);
                CHECK(same_d(g, g0));
                CHECK(same_all(dx, dx0, vlen));
            }
            free(xv);
        }
    }
    free(x);
    free(dy);
    free(y);
    free(y0);
    free(dx);
    free(dx0);
}

static void test_pact_isa_levels(void)
{
    const enum pact_isa levels[] = {PACT_ISA_BASE, PACT_ISA_AVX2, PACT_ISA_AVX512};
    /* lengths: shorter than a chunk and odd; several chunks with a tail; one
     * block exactly; three blocks, the last partial */
    const size_t lens[] = {1, 7, 37 * 7 + 3, 1000, 16384, 37 * 1200 + 11};
    CHECK_EQ_INT(pact_isa_available(PACT_ISA_BASE), 1);
    for (size_t li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
        if (!pact_isa_available(levels[li])) {
            CHECK(pact_set_isa(levels[li]) != 0);
            fprintf(stderr, "test_quant: ISA level %d not available here, skipped\n",
                    (int)levels[li]);
            continue;
        }
        for (size_t n = 0; n < sizeof(lens) / sizeof(lens[0]); n++) {
            check_pact_level(levels[li], lens[n], 0);
            check_pact_level(levels[li], lens[n], 1);
        }
    }
    CHECK_EQ_INT(pact_set_isa(PACT_ISA_AUTO), 0);
}

int main(void)
{
    test_weight_levels();
    test_weight_backward();
    test_weight_guards();
    test_pact_values();
    test_pact_grads();
    test_pact_isa_levels();
    return check_summary("quant");
}
