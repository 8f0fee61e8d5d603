/* test_quant.c - SAT weight quantization and PACT / CG-PACT against hand
 * cases, closed forms computed independently in double, and guards.
 *
 * Tolerances: float results that the spec defines by a float formula are
 * compared exactly or within 1 ulp-ish (1e-6 relative); gradients within
 * 1e-5 relative of the double-precision closed form.
 */
#include "check.h"
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
        double g_cg = pact_backward(dx, dy, x, N, alpha, bits, 1, 0);
        for (int i = 0; i < N; i++) {
            float want = (x[i] > 0 && x[i] < alpha) ? dy[i] : 0.0f;
            dx_ok &= dx[i] == want;
        }
        CHECK(dx_ok);
        CHECK(dx[0] == 0.0f);
        CHECK_CLOSE(g_cg, cg_ref, 1e-4, 1e-5);
        double g_p = pact_backward(NULL, dy, x, N, alpha, bits, 0, 0);
        CHECK_CLOSE(g_p, pact_ref, 1e-4, 1e-5);
        /* sign of the raw parameter */
        double g_neg = pact_backward(NULL, dy, x, N, -alpha, bits, 1, 0);
        CHECK_CLOSE(g_neg, -g_cg, 1e-9, 1e-9);
        /* The CG term is bounded by 1/(2a) per element. */
        CHECK(fabs(g_cg - g_p) <= N * (1.0 / (2 * a)) * 4.0);
    }
    /* accum adds into dx */
    for (int i = 0; i < N; i++)
        dx[i] = 1.0f;
    pact_backward(dx, dy, x, N, alpha, 4, 1, 1);
    int acc_ok = 1;
    for (int i = 0; i < N; i++)
        acc_ok &= dx[i] == 1.0f + ((x[i] > 0 && x[i] < alpha) ? dy[i] : 0.0f);
    CHECK(acc_ok);
    /* alpha near zero: finite everything */
    float y[N];
    pact_forward(y, x, N, 1e-12f, 4);
    double g = pact_backward(dx, dy, x, N, 0.0f, 4, 1, 0);
    CHECK(all_finite(y, N) && all_finite(dx, N) && isfinite(g));
}

int main(void)
{
    test_weight_levels();
    test_weight_backward();
    test_weight_guards();
    test_pact_values();
    test_pact_grads();
    return check_summary("quant");
}
