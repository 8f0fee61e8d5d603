/* quant.c - SAT weight quantization and PACT / CG-PACT, see quant.h. */
#include "quant.h"

#include "threads.h"
#include "bn_view.h"

#include <math.h>

/* Two passes (quant.h). */
double wquant_variance(const float *v, size_t len)
{
    if (len < 2)
        return 0.0;
    double sum = 0.0;
    for (size_t i = 0; i < len; i++)
        sum += v[i];
    double mean = sum / (double)len;
    double ss = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = v[i] - mean;
        ss += d * d;
    }
    return ss / (double)(len - 1);
}

float wquant_forward(float *weff, float *dfac, const float *w, size_t len, const struct wquant *q,
                     float *m_out)
{
    if (wquant_is_identity(q)) {
        for (size_t i = 0; i < len; i++) {
            weff[i] = w[i];
            dfac[i] = 1.0f;
        }
        if (m_out)
            *m_out = 1.0f;
        return 1.0f;
    }
    /* Pass 1: T = tanh(W) into dfac (as scratch), M = max|T|. */
    float m = 0.0f;
    for (size_t i = 0; i < len; i++) {
        float t = tanhf(w[i]);
        dfac[i] = t;
        float at = fabsf(t);
        m = at > m ? at : m;
    }
    m = fmaxf(m, QUANT_M_EPS);
    /* Pass 2: Q into weff. */
    if (q->bits < 32) {
        const float a = (float)((1 << q->bits) - 1);
        for (size_t i = 0; i < len; i++) {
            float wt = (dfac[i] / m + 1.0f) / 2.0f; /* in [0, 1] exactly (t/m <= 1 in IEEE) */
            weff[i] = 2.0f * (rintf(a * wt) / a) - 1.0f;
        }
    } else {
        for (size_t i = 0; i < len; i++)
            weff[i] = dfac[i] / m;
    }
    float s = 1.0f;
    if (q->sat) {
        double v = wquant_variance(weff, len);
        if (v < QUANT_VAR_EPS)
            v = QUANT_VAR_EPS;
        s = (float)(1.0 / sqrt((double)q->fan * v));
        for (size_t i = 0; i < len; i++)
            weff[i] *= s;
    }
    /* Pass 3: backward factor s*(1-T^2)/M. */
    for (size_t i = 0; i < len; i++) {
        float t = dfac[i];
        dfac[i] = s * (1.0f - t * t) / m;
    }
    if (m_out)
        *m_out = m;
    return s;
}

void wquant_backward(float *dw, const float *dweff, const float *dfac, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dw[i] += dweff[i] * dfac[i];
}

float wquant_codes(int *codes, const float *w, size_t len, int bits)
{
    float m = 0.0f;
    for (size_t i = 0; i < len; i++)
        m = fmaxf(m, fabsf(tanhf(w[i])));
    m = fmaxf(m, QUANT_M_EPS);
    const float a = (float)((1 << bits) - 1);
    for (size_t i = 0; i < len; i++) {
        float wt = (tanhf(w[i]) / m + 1.0f) / 2.0f;
        codes[i] = (int)rintf(a * wt);
    }
    return m;
}

static inline float alpha_of(float alpha_raw)
{
    return fmaxf(fabsf(alpha_raw), QUANT_ALPHA_EPS);
}

/* PACT runs over fixed blocks of PACT_BLK elements in parallel. The alpha
 * gradient of each block is summed in eight double lanes (element i into
 * lane i % 8, lanes added in order), the blocks' sums are stored and added
 * in block order: a fixed summation order, so the result is the same for
 * any thread count. */
#define PACT_BLK 16384
#define PACT_MAX_BLOCKS 4096 /* larger tensors use proportionally larger blocks */

static void pact_forward_range(float *restrict y, const float *restrict x, size_t len, float al,
                               float a)
{
    for (size_t i = 0; i < len; i++) {
        float v = x[i];
        float xc = v > 0.0f ? v : 0.0f; /* NaN -> 0 */
        xc = xc < al ? xc : al;
        float u = xc / al;
        float q = rintf(a * u) / a;
        y[i] = al * q;
    }
}

void pact_forward(float *y, const float *x, size_t len, float alpha_raw, int bits)
{
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    const size_t nb = (len + PACT_BLK - 1) / PACT_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * PACT_BLK, hi = lo + PACT_BLK < len ? lo + PACT_BLK : len;
        pact_forward_range(y + lo, x + lo, hi - lo, al, a);
    }
}

void pact_apply(float *y, const float *x, size_t len, float alpha_raw, int bits)
{
    pact_forward_range(y, x, len, alpha_of(alpha_raw), (float)((1 << bits) - 1));
}

/* The arguments of pact_forward_bn for its runs. */
struct pact_bn_ctx {
    float *y;
    float al, a;
};

static void pact_forward_run(void *ctx, size_t i, const float *xs, size_t n)
{
    const struct pact_bn_ctx *p = ctx;
    pact_forward_range(p->y + i, xs, n, p->al, p->a);
}

void pact_forward_bn(float *y, const struct bn_view *v, int c, float alpha_raw, int bits)
{
    struct pact_bn_ctx p = {.y = y, .al = alpha_of(alpha_raw), .a = (float)((1 << bits) - 1)};
    bn_view_foreach(v, c, PACT_BLK, pact_forward_run, &p);
}

/* One block: writes dx, returns sum dy * dalpha in the block's fixed order:
 * element i goes into double lane i % 8, lanes are added pairwise at the
 * end. The element-wise part runs over sub-blocks of 64 so that it
 * vectorises (selects, roundps); the double accumulation then reads them.
 * With a view v, x is not read: the sub-block's inputs are the view's
 * values at flat index base + i0 on. */
static double pact_backward_range(float *restrict dx, const float *restrict dy,
                                  const float *restrict x, const struct bn_view *v, size_t base,
                                  size_t len, float al, float a, int cg, int accum)
{
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float cgf = cg ? 1.0f : 0.0f;
    float t[64], pd[64], xv[64];
    for (size_t i0 = 0; i0 < len; i0 += 64) {
        const size_t n = len - i0 < 64 ? len - i0 : 64;
        const float *xs = xv, *gs = dy + i0;
        if (v) /* x through the BN view: flat index base + i0 on */
            bn_view_fill(xv, v, base + i0, n);
        else
            xs = x + i0;
        for (size_t l = 0; l < n; l++) {
            float xi = xs[l], g = gs[l];
            float u = xi / al;
            float rerr = (rintf(a * u) / a - u) * cgf;
            float mid = xi > 0.0f ? rerr : 0.0f;
            float ga = xi >= al ? 1.0f : mid;
            t[l] = g * ga;
            float gp = xi < al ? g : 0.0f;
            pd[l] = xi > 0.0f ? gp : 0.0f;
        }
        for (size_t l = n; l < 64; l++)
            t[l] = 0.0f;
        if (dx) {
            float *d = dx + i0;
            if (accum)
                for (size_t l = 0; l < n; l++)
                    d[l] += pd[l];
            else
                for (size_t l = 0; l < n; l++)
                    d[l] = pd[l];
        }
        for (size_t j = 0; j < 64; j += 8)
            for (size_t l = 0; l < 8; l++)
                lanes[l] += (double)t[j + l];
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
           ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

/* The blocks of pact_backward (x) and pact_backward_bn (v): the same sums
 * in the same order. */
static double pact_backward_blocks(float *dx, const float *dy, const float *x,
                                   const struct bn_view *v, size_t len, float alpha_raw, int bits,
                                   int cg, int accum)
{
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    size_t blk = PACT_BLK;
    while ((len + blk - 1) / blk > PACT_MAX_BLOCKS)
        blk *= 2;
    const size_t nb = (len + blk - 1) / blk;
    double part[PACT_MAX_BLOCKS];
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * blk, hi = lo + blk < len ? lo + blk : len;
        part[b] = pact_backward_range(dx ? dx + lo : NULL, dy + lo, x ? x + lo : NULL, v, lo,
                                      hi - lo, al, a, cg, accum);
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++)
        total += part[b];
    return alpha_raw < 0.0f ? -total : total;
}

double pact_backward(float *dx, const float *dy, const float *x, size_t len, float alpha_raw,
                     int bits, int cg, int accum)
{
    return pact_backward_blocks(dx, dy, x, NULL, len, alpha_raw, bits, cg, accum);
}

double pact_backward_bn(float *dx, const float *dy, const struct bn_view *v, int c,
                        float alpha_raw, int bits, int cg, int accum)
{
    return pact_backward_blocks(dx, dy, NULL, v, (size_t)c * v->m, alpha_raw, bits, cg, accum);
}
