/* quant.c - SAT weight quantization and PACT / CG-PACT, see quant.h. */
#include "quant.h"

#include <math.h>

/* Unbiased variance of v (len) in double, two passes; 0 for len < 2. */
static double var_unbiased(const float *v, size_t len)
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
        double v = var_unbiased(weff, len);
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

void pact_forward(float *y, const float *x, size_t len, float alpha_raw, int bits)
{
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    for (size_t i = 0; i < len; i++) {
        float xc = fminf(fmaxf(x[i], 0.0f), al);
        float u = xc / al;
        float q = rintf(a * u) / a;
        y[i] = al * q;
    }
}

/* Elements are processed in blocks whose partial alpha sums are kept in
 * float (so the inner loop vectorises) and added into a double total;
 * a block's sum is bounded by BLK * |dy|max, far from float's range. */
#define PACT_BLK 256

double pact_backward(float *dx, const float *dy, const float *x, size_t len, float alpha_raw,
                     int bits, int cg, int accum)
{
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    double total = 0.0;
    for (size_t b0 = 0; b0 < len; b0 += PACT_BLK) {
        size_t b1 = b0 + PACT_BLK < len ? b0 + PACT_BLK : len;
        float part = 0.0f;
        for (size_t i = b0; i < b1; i++) {
            float xi = x[i], g = dy[i];
            int pass = xi > 0.0f && xi < al;
            float ga;
            if (xi >= al) {
                ga = 1.0f;
            } else if (pass && cg) {
                float u = xi / al;
                ga = rintf(a * u) / a - u;
            } else {
                ga = 0.0f;
            }
            part += g * ga;
            if (dx) {
                float d = pass ? g : 0.0f;
                dx[i] = accum ? dx[i] + d : d;
            }
        }
        total += part;
    }
    return alpha_raw < 0.0f ? -total : total;
}
