/* layers.c - the non-convolution kernels of layers.h: fully connected (one
 * cblas_sgemm each way), BatchNorm over CNHW slabs, ReLU, max and global
 * average pooling, flatten, add and softmax cross-entropy.
 *
 * Reductions whose length grows with the batch (BN statistics, FC bias
 * gradient) are summed in double over eight fixed lanes (sum8_*): the order
 * is fixed, so results are bit-identical run to run, and the lanes break the
 * add-latency chain that a single accumulator would have.
 */
#include "nn/layers.h"
#include "nn/bn_view.h"
#include "nn/quant.h"
#include "nn/vec.h"
#include "nn/threads.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ==== Lane sums ========================================================== */

/* Each sum is written once and compiled per element-wise ISA level (the
 * level of the PACT kernels, quant.h's pact_get_isa: SSE4.2, AVX2 or
 * AVX-512F), like quant.c's. The lanes are per-element double operations
 * in a fixed order (-ffp-contract=off: no fused multiply-add), so every
 * level gives the same bits; only the vector width changes. */
#define LANES_INLINE static inline __attribute__((always_inline))

/* sum x[i], in double, eight lanes. */
LANES_INLINE double sum8_body(const float *restrict x, size_t m)
{
    double l[8] = {0};
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++)
            l[j] += x[i + j];
    for (; i < m; i++)
        l[0] += x[i];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* sum (x[i] - mu)^2, in double, eight lanes. */
LANES_INLINE double sumsq8_body(const float *restrict x, size_t m, double mu)
{
    double l[8] = {0};
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++) {
            double d = x[i + j] - mu;
            l[j] += d * d;
        }
    for (; i < m; i++) {
        double d = x[i] - mu;
        l[0] += d * d;
    }
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* sum g[i] and sum g[i] * (x[i] - mu), in double, eight lanes each. */
LANES_INLINE void sum8_dot_body(const float *restrict g, const float *restrict x, size_t m, double mu,
                     double *sg, double *sgx)
{
    double a[8] = {0}, b[8] = {0};
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++) {
            a[j] += g[i + j];
            b[j] += g[i + j] * (x[i + j] - mu);
        }
    for (; i < m; i++) {
        a[0] += g[i];
        b[0] += g[i] * (x[i] - mu);
    }
    *sg = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    *sgx = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

#if defined(__x86_64__) && defined(__GNUC__)
#define LANES_AVX2 __attribute__((target("avx2")))
#define LANES_AVX512 __attribute__((target("avx512f")))
LANES_AVX2 static double sum8_avx2(const float *x, size_t m) { return sum8_body(x, m); }
LANES_AVX512 static double sum8_avx512(const float *x, size_t m) { return sum8_body(x, m); }
LANES_AVX2 static double sumsq8_avx2(const float *x, size_t m, double mu)
{
    return sumsq8_body(x, m, mu);
}
LANES_AVX512 static double sumsq8_avx512(const float *x, size_t m, double mu)
{
    return sumsq8_body(x, m, mu);
}
LANES_AVX2 static void sum8_dot_avx2(const float *g, const float *x, size_t m, double mu,
                                     double *sg, double *sgx)
{
    sum8_dot_body(g, x, m, mu, sg, sgx);
}
LANES_AVX512 static void sum8_dot_avx512(const float *g, const float *x, size_t m, double mu,
                                         double *sg, double *sgx)
{
    sum8_dot_body(g, x, m, mu, sg, sgx);
}
#define LANES_X86 1
#else
#define LANES_X86 0
#endif

static double sum8(const float *x, size_t m)
{
#if LANES_X86
    switch (pact_get_isa()) {
    case PACT_ISA_AVX512: return sum8_avx512(x, m);
    case PACT_ISA_AVX2: return sum8_avx2(x, m);
    default: break;
    }
#endif
    return sum8_body(x, m);
}

static double sumsq8(const float *x, size_t m, double mu)
{
#if LANES_X86
    switch (pact_get_isa()) {
    case PACT_ISA_AVX512: return sumsq8_avx512(x, m, mu);
    case PACT_ISA_AVX2: return sumsq8_avx2(x, m, mu);
    default: break;
    }
#endif
    return sumsq8_body(x, m, mu);
}

static void sum8_dot(const float *g, const float *x, size_t m, double mu, double *sg, double *sgx)
{
#if LANES_X86
    switch (pact_get_isa()) {
    case PACT_ISA_AVX512: sum8_dot_avx512(g, x, m, mu, sg, sgx); return;
    case PACT_ISA_AVX2: sum8_dot_avx2(g, x, m, mu, sg, sgx); return;
    default: break;
    }
#endif
    sum8_dot_body(g, x, m, mu, sg, sgx);
}

/* ==== Fully connected ==================================================== */

/* out (OUT, N) = w (OUT, IN) * inp (IN, N) + b (OUT) broadcast over n. */
void fc_forward(float *restrict out, const float *restrict inp, const float *restrict w,
                const float *restrict b, int n, int in, int outf)
{
    if (b) {
        for (int o = 0; o < outf; o++)
            for (int j = 0; j < n; j++)
                out[(size_t)o * n + j] = b[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, outf, n, in, 1.0f, w, in, inp, n,
                b ? 1.0f : 0.0f, out, n);
}

/* dw (OUT, IN) += dout (OUT, N) * inp^T (N, IN); db (OUT) += row sums of dout;
 * dinp (IN, N) = or += w^T (IN, OUT) * dout (OUT, N). */
void fc_backward(float *restrict dinp, float *restrict dw, float *restrict db,
                 const float *restrict dout, const float *restrict inp, const float *restrict w,
                 int n, int in, int outf, int accum)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, outf, in, n, 1.0f, dout, n, inp, n, 1.0f,
                dw, in);
    if (db) {
        for (int o = 0; o < outf; o++)
            db[o] += (float)sum8(dout + (size_t)o * n, (size_t)n);
    }
    if (dinp) {
        /* beta 0 makes OpenBLAS store C without reading it. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, n, outf, 1.0f, w, in, dout, n,
                    accum ? 1.0f : 0.0f, dinp, n);
    }
}

void fc_forward_naive(float *out, const float *inp, const float *w, const float *b, int n, int in,
                      int outf)
{
    for (int o = 0; o < outf; o++) {
        for (int j = 0; j < n; j++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++)
                acc += (double)w[(size_t)o * in + i] * inp[(size_t)i * n + j];
            out[(size_t)o * n + j] = (float)acc;
        }
    }
}

/* ==== BatchNorm ========================================================== */

/* Per channel slab x (m): mean and biased var in double (two passes, so no
 * cancellation), then the affine terms the output is made of,
 * out = (x - mean) * (gamma * invstd) + beta. The running variance uses the
 * unbiased estimate; with m == 1 it is undefined (PyTorch refuses such a
 * batch), and the biased one (0) is used instead. */
static void bn_channel_train(float *mu_f, float *scale_f, float *mean, float *invstd,
                             const float *x, float gamma, float *run_mean, float *run_var,
                             size_t m, float eps, float momentum)
{
    const double mu = sum8(x, m) / (double)m;
    const double var = sumsq8(x, m, mu) / (double)m;
    const double istd = 1.0 / sqrt(var + (double)eps);
    *mean = (float)mu;
    *invstd = (float)istd;
    if (run_mean)
        *run_mean = (float)((1.0 - momentum) * *run_mean + (double)momentum * mu);
    if (run_var) {
        const double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
        *run_var = (float)((1.0 - momentum) * *run_var + (double)momentum * unbiased);
    }
    *mu_f = (float)mu;
    *scale_f = (float)(gamma * istd);
}

void bn_forward_train(float *out, float *mean, float *invstd, const float *inp, const float *gamma,
                      const float *beta, float *run_mean, float *run_var, int c, size_t m,
                      float eps, float momentum)
{
    if (m == 0)
        return;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1 && (size_t)c * m > 8192)
    for (int ch = 0; ch < c; ch++) {
        const float *x = inp + (size_t)ch * m;
        float mu, scale;
        bn_channel_train(&mu, &scale, mean + ch, invstd + ch, x, gamma[ch],
                         run_mean ? run_mean + ch : NULL, run_var ? run_var + ch : NULL, m, eps,
                         momentum);
        bn_affine(out + (size_t)ch * m, x, m, mu, scale, beta[ch]);
    }
}

void bn_stats_train(float *mu, float *scale, float *shift, float *mean, float *invstd,
                    const float *inp, const float *gamma, const float *beta, float *run_mean,
                    float *run_var, int c, size_t m, float eps, float momentum)
{
    if (m == 0)
        return;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1 && (size_t)c * m > 8192)
    for (int ch = 0; ch < c; ch++) {
        bn_channel_train(mu + ch, scale + ch, mean + ch, invstd + ch, inp + (size_t)ch * m,
                         gamma[ch], run_mean ? run_mean + ch : NULL, run_var ? run_var + ch : NULL,
                         m, eps, momentum);
        shift[ch] = beta[ch];
    }
}

/* The eval-mode scale of channel ch. */
static float bn_eval_scale(const float *gamma, const float *run_var, int ch, float eps)
{
    return (float)(gamma[ch] / sqrt((double)run_var[ch] + (double)eps));
}

void bn_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                     const float *run_mean, const float *run_var, int c, size_t m, float eps)
{
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1 && (size_t)c * m > 8192)
    for (int ch = 0; ch < c; ch++)
        bn_affine(out + (size_t)ch * m, inp + (size_t)ch * m, m, run_mean[ch],
                  bn_eval_scale(gamma, run_var, ch, eps), beta[ch]);
}

void bn_stats_eval(float *mu, float *scale, float *shift, const float *gamma, const float *beta,
                   const float *run_mean, const float *run_var, int c, float eps)
{
    for (int ch = 0; ch < c; ch++) {
        mu[ch] = run_mean[ch];
        scale[ch] = bn_eval_scale(gamma, run_var, ch, eps);
        shift[ch] = beta[ch];
    }
}

/* d (m) = or += fk * (g - gmean) - kx * (x - fmu): BN's input gradient of
 * one channel, per element-wise ISA level (the same float operations in
 * every lane, no contraction: the same bits at every width). */
LANES_INLINE void bn_dinp_body(float *restrict d, const float *restrict g,
                               const float *restrict x, size_t m, float fk, float gmean, float kx,
                               float fmu, int accum)
{
    if (accum) {
        for (size_t i = 0; i < m; i++)
            d[i] += fk * (g[i] - gmean) - kx * (x[i] - fmu);
    } else {
        for (size_t i = 0; i < m; i++)
            d[i] = fk * (g[i] - gmean) - kx * (x[i] - fmu);
    }
}

#if LANES_X86
LANES_AVX2 static void bn_dinp_avx2(float *d, const float *g, const float *x, size_t m, float fk,
                                    float gmean, float kx, float fmu, int accum)
{
    bn_dinp_body(d, g, x, m, fk, gmean, kx, fmu, accum);
}

LANES_AVX512 static void bn_dinp_avx512(float *d, const float *g, const float *x, size_t m,
                                        float fk, float gmean, float kx, float fmu, int accum)
{
    bn_dinp_body(d, g, x, m, fk, gmean, kx, fmu, accum);
}
#endif

static void bn_dinp(float *d, const float *g, const float *x, size_t m, float fk, float gmean,
                    float kx, float fmu, int accum)
{
#if LANES_X86
    switch (pact_get_isa()) {
    case PACT_ISA_AVX512: bn_dinp_avx512(d, g, x, m, fk, gmean, kx, fmu, accum); return;
    case PACT_ISA_AVX2: bn_dinp_avx2(d, g, x, m, fk, gmean, kx, fmu, accum); return;
    default: break;
    }
#endif
    bn_dinp_body(d, g, x, m, fk, gmean, kx, fmu, accum);
}

/* With xhat = (x - mean) * invstd, sg = sum dout, sgx = sum dout*(x - mean):
 *   dbeta += sg, dgamma += invstd * sgx,
 *   dinp = gamma*invstd * (dout - sg/m - xhat * invstd*sgx/m)
 *        = k * (dout - sg/m) - k * invstd^2 * sgx/m * (x - mean),  k = gamma*invstd. */
void bn_backward(float *restrict dinp, float *restrict dgamma, float *restrict dbeta,
                 const float *restrict dout, const float *restrict inp, const float *restrict mean,
                 const float *restrict invstd, const float *restrict gamma, int c, size_t m,
                 int accum)
{
    if (m == 0)
        return;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1 && (size_t)c * m > 8192)
    for (int ch = 0; ch < c; ch++) {
        const float *x = inp + (size_t)ch * m;
        const float *g = dout + (size_t)ch * m;
        const double mu = mean[ch], istd = invstd[ch];
        double sg, sgx;
        sum8_dot(g, x, m, mu, &sg, &sgx);
        dbeta[ch] += (float)sg;
        dgamma[ch] += (float)(sgx * istd);
        if (!dinp)
            continue;
        float *d = dinp + (size_t)ch * m;
        const double k = gamma[ch] * istd;
        const float fk = (float)k;
        const float gmean = (float)(sg / (double)m);
        const float kx = (float)(k * istd * istd * sgx / (double)m);
        bn_dinp(d, g, x, m, fk, gmean, kx, (float)mu, accum);
    }
}

/* ==== Element-wise ======================================================= */

/* The vector forms select with the all-ones mask of (x > 0), which gives
 * exactly the scalar result: +0 when x <= 0, x is -0 or x is NaN. In-place
 * calls are safe: every vector is loaded before it is stored. */
static inline v4f relu_mask(v4f x, v4f v)
{
    return (v4f)((v4i)(x > 0.0f) & (v4i)v);
}

static void relu_forward_range(float *out, const float *inp, size_t len)
{
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        const v4f x = v4f_load(inp + i);
        v4f_store(out + i, relu_mask(x, x));
    }
    for (; i < len; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

static void relu_backward_range(float *dinp, const float *dout, const float *inp, size_t len,
                                int accum)
{
    size_t i = 0;
    if (accum) {
        for (; i + 4 <= len; i += 4)
            v4f_store(dinp + i,
                      v4f_load(dinp + i) + relu_mask(v4f_load(inp + i), v4f_load(dout + i)));
        for (; i < len; i++)
            dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
    } else {
        for (; i + 4 <= len; i += 4)
            v4f_store(dinp + i, relu_mask(v4f_load(inp + i), v4f_load(dout + i)));
        for (; i < len; i++)
            dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
    }
}

static void add_forward_range(float *out, const float *a, const float *b, size_t len)
{
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        v4f_store(out + i, v4f_load(a + i) + v4f_load(b + i));
    for (; i < len; i++)
        out[i] = a[i] + b[i];
}

/* Element-wise ops run over fixed blocks of EW_BLK elements in parallel;
 * each element's result does not depend on the blocking. */
#define EW_BLK 16384

/* Element-wise ops on a BN view: fixed blocks as above, each read in
 * chunks of BN_VIEW_CHUNK values materialised on the stack. */
void bn_view_values(float *out, const struct bn_view *v, int c)
{
    const size_t len = (size_t)c * v->m, nb = (len + EW_BLK - 1) / EW_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * EW_BLK, hi = lo + EW_BLK < len ? lo + EW_BLK : len;
        bn_view_fill(out + lo, v, lo, hi - lo);
    }
}

/* PACT reads the view itself (pact_apply_bn, no staging); ReLU stages
 * chunks of BN_VIEW_CHUNK values on the stack. */
void act_view_fill(float *dst, const struct act_view *a, size_t i0, size_t n)
{
    if (a->bits != 0) {
        pact_apply_bn(dst, &a->bn, i0, n, a->alpha_raw, a->bits);
        return;
    }
    float xs[BN_VIEW_CHUNK];
    for (size_t j = 0; j < n; j += BN_VIEW_CHUNK) {
        const size_t k = n - j < BN_VIEW_CHUNK ? n - j : BN_VIEW_CHUNK;
        bn_view_fill(xs, &a->bn, i0 + j, k);
        relu_forward_range(dst + j, xs, k);
    }
}

void bn_view_foreach(const struct bn_view *v, int c, size_t blk, bn_view_fn fn, void *ctx)
{
    const size_t len = (size_t)c * v->m, nb = (len + blk - 1) / blk;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * blk, hi = lo + blk < len ? lo + blk : len;
        float xs[BN_VIEW_CHUNK];
        for (size_t i = lo; i < hi; i += BN_VIEW_CHUNK) {
            const size_t n = hi - i < BN_VIEW_CHUNK ? hi - i : BN_VIEW_CHUNK;
            bn_view_fill(xs, v, i, n);
            fn(ctx, i, xs, n);
        }
    }
}

/* ReLU through a BN view, one run per channel inside each block: the value
 * (x - mu) * scale + shift of bn_affine, then x > 0 ? x : +0 (forward) or
 * x > 0 ? dout : +0 (backward, set or added), as relu_mask computes them.
 * Written once and compiled per element-wise ISA level (pact_get_isa),
 * like the lane sums: plain per-element IEEE operations, so every level
 * gives the same bits. */
LANES_INLINE void relu_view_body(float *restrict out, const float *restrict dout,
                                 const struct bn_view *v, size_t i0, size_t n, int bwd, int accum)
{
    const size_t end = i0 + n;
    for (size_t i = i0, c, ce; i < end; i = ce) {
        ce = bn_view_run(v, i, end, &c);
        const float mu = v->mu[c], sc = v->scale[c], sh = v->shift[c];
        const float *restrict x = v->x + i;
        float *restrict o = out + i;
        const float *restrict g = bwd ? dout + i : NULL;
        const size_t k = ce - i;
        if (!bwd) {
            for (size_t l = 0; l < k; l++) {
                const float xv = (x[l] - mu) * sc + sh;
                o[l] = xv > 0.0f ? xv : 0.0f;
            }
        } else if (accum) {
            for (size_t l = 0; l < k; l++) {
                const float xv = (x[l] - mu) * sc + sh;
                o[l] += xv > 0.0f ? g[l] : 0.0f;
            }
        } else {
            for (size_t l = 0; l < k; l++) {
                const float xv = (x[l] - mu) * sc + sh;
                o[l] = xv > 0.0f ? g[l] : 0.0f;
            }
        }
    }
}

static void relu_view_base(float *out, const float *dout, const struct bn_view *v, size_t i0,
                           size_t n, int bwd, int accum)
{
    relu_view_body(out, dout, v, i0, n, bwd, accum);
}

#if LANES_X86
LANES_AVX2 static void relu_view_avx2(float *out, const float *dout, const struct bn_view *v,
                                      size_t i0, size_t n, int bwd, int accum)
{
    relu_view_body(out, dout, v, i0, n, bwd, accum);
}

LANES_AVX512 static void relu_view_avx512(float *out, const float *dout, const struct bn_view *v,
                                          size_t i0, size_t n, int bwd, int accum)
{
    relu_view_body(out, dout, v, i0, n, bwd, accum);
}
#endif

/* Over the view's c*m values in fixed blocks of EW_BLK, in parallel. */
static void relu_view(float *out, const float *dout, const struct bn_view *v, int c, int bwd,
                      int accum)
{
    void (*fn)(float *, const float *, const struct bn_view *, size_t, size_t, int, int) =
        relu_view_base;
#if LANES_X86
    const enum pact_isa isa = pact_get_isa();
    fn = isa == PACT_ISA_AVX512 ? relu_view_avx512 : isa == PACT_ISA_AVX2 ? relu_view_avx2 : fn;
#endif
    const size_t len = (size_t)c * v->m, nb = (len + EW_BLK - 1) / EW_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * EW_BLK, hi = lo + EW_BLK < len ? lo + EW_BLK : len;
        fn(out, dout, v, lo, hi - lo, bwd, accum);
    }
}

void relu_forward_bn(float *out, const struct bn_view *v, int c)
{
    relu_view(out, NULL, v, c, 0, 0);
}

void relu_backward_bn(float *dinp, const float *dout, const struct bn_view *v, int c, int accum)
{
    relu_view(dinp, dout, v, c, 1, accum);
}

void relu_forward(float *out, const float *inp, size_t len)
{
    const size_t nb = (len + EW_BLK - 1) / EW_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * EW_BLK, hi = lo + EW_BLK < len ? lo + EW_BLK : len;
        relu_forward_range(out + lo, inp + lo, hi - lo);
    }
}

void relu_backward(float *dinp, const float *dout, const float *inp, size_t len, int accum)
{
    const size_t nb = (len + EW_BLK - 1) / EW_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * EW_BLK, hi = lo + EW_BLK < len ? lo + EW_BLK : len;
        relu_backward_range(dinp + lo, dout + lo, inp + lo, hi - lo, accum);
    }
}

void add_forward(float *out, const float *a, const float *b, size_t len)
{
    const size_t nb = (len + EW_BLK - 1) / EW_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t k = 0; k < nb; k++) {
        size_t lo = k * EW_BLK, hi = lo + EW_BLK < len ? lo + EW_BLK : len;
        add_forward_range(out + lo, a + lo, b + lo, hi - lo);
    }
}

/* One input's gradient of a residual add: din = dout (accum 0) or
 * din += dout (accum 1). */
void add_backward(float *din, const float *dout, size_t len, int accum)
{
    const size_t nb = (len + EW_BLK - 1) / EW_BLK;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (nb > 1)
    for (size_t k = 0; k < nb; k++) {
        size_t lo = k * EW_BLK, hi = lo + EW_BLK < len ? lo + EW_BLK : len;
        if (accum)
            add_forward_range(din + lo, din + lo, dout + lo, hi - lo);
        else
            memcpy(din + lo, dout + lo, (hi - lo) * sizeof(float));
    }
}

/* ==== Pooling and reshaping ============================================== */

/* Each output scans its k x k window row by row and keeps the first strict
 * maximum. Rows and columns past (IH/k)*k, (IW/k)*k are not read. */
/* 2x2 windows, the common case: branch-free selects. */
static void maxpool2_plane(float *restrict o, int32_t *restrict a, const float *restrict in, int ih,
                           int iw)
{
    const int oh = ih / 2, ow = iw / 2;
    for (int y = 0; y < oh; y++) {
        const float *r0 = in + (size_t)(2 * y) * iw, *r1 = r0 + iw;
        const int32_t base = 2 * y * iw;
        for (int x = 0; x < ow; x++) {
            float bv = r0[2 * x];
            int32_t bi = base + 2 * x;
            float v = r0[2 * x + 1];
            int gt = v > bv;
            bv = gt ? v : bv;
            bi = gt ? base + 2 * x + 1 : bi;
            v = r1[2 * x];
            gt = v > bv;
            bv = gt ? v : bv;
            bi = gt ? base + iw + 2 * x : bi;
            v = r1[2 * x + 1];
            gt = v > bv;
            bv = gt ? v : bv;
            bi = gt ? base + iw + 2 * x + 1 : bi;
            o[y * ow + x] = bv;
            a[y * ow + x] = bi;
        }
    }
}

void maxpool_forward(float *restrict out, int32_t *restrict argmax, const float *restrict inp,
                     int planes, int ih, int iw, int k)
{
    const int oh = ih / k, ow = iw / k;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (planes > 8)
    for (int p = 0; p < planes; p++) {
        const float *in = inp + (size_t)p * ih * iw;
        float *o = out + (size_t)p * oh * ow;
        int32_t *a = argmax + (size_t)p * oh * ow;
        if (k == 2) {
            maxpool2_plane(o, a, in, ih, iw);
            continue;
        }
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                int32_t best = (int32_t)(y * k * iw + x * k);
                float bv = in[best];
                for (int i = 0; i < k; i++) {
                    const int row = (y * k + i) * iw + x * k;
                    for (int j = 0; j < k; j++) {
                        if (in[row + j] > bv) {
                            bv = in[row + j];
                            best = row + j;
                        }
                    }
                }
                o[y * ow + x] = bv;
                a[y * ow + x] = best;
            }
        }
    }
}

/* Windows do not overlap (stride k), so each input receives at most one
 * gradient and the scatter needs no ordering. */
void maxpool_backward(float *restrict dinp, const float *restrict dout,
                      const int32_t *restrict argmax, int planes, int ih, int iw, int k, int accum)
{
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)(ih / k) * (iw / k);
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (planes > 8)
    for (int p = 0; p < planes; p++) {
        float *d = dinp + (size_t)p * ihw;
        if (!accum)
            memset(d, 0, ihw * sizeof(float));
        const float *g = dout + (size_t)p * ohw;
        const int32_t *a = argmax + (size_t)p * ohw;
        for (size_t i = 0; i < ohw; i++)
            d[a[i]] += g[i];
    }
}

void gap_forward(float *restrict out, const float *restrict inp, int c, int n, int hw)
{
    const size_t planes = (size_t)c * n;
    for (size_t p = 0; p < planes; p++) {
        const float *x = inp + p * hw;
        double acc = 0.0;
        for (int i = 0; i < hw; i++)
            acc += x[i];
        out[p] = (float)(acc / hw);
    }
}

void gap_backward(float *restrict dinp, const float *restrict dout, int c, int n, int hw, int accum)
{
    const size_t planes = (size_t)c * n;
    const float inv = 1.0f / (float)hw;
    for (size_t p = 0; p < planes; p++) {
        float *d = dinp + p * hw;
        const float g = dout[p] * inv;
        if (accum) {
            for (int i = 0; i < hw; i++)
                d[i] += g;
        } else {
            for (int i = 0; i < hw; i++)
                d[i] = g;
        }
    }
}

/* Per channel, a transpose of (N, HW) into (HW, N). */
void flatten_forward(float *restrict out, const float *restrict inp, int c, int n, int hw)
{
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        const float *x = inp + (size_t)ch * n * hw;
        float *y = out + (size_t)ch * hw * n;
        for (int j = 0; j < n; j++)
            for (int p = 0; p < hw; p++)
                y[(size_t)p * n + j] = x[(size_t)j * hw + p];
    }
}

void flatten_backward(float *restrict dinp, const float *restrict dout, int c, int n, int hw,
                      int accum)
{
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        float *d = dinp + (size_t)ch * n * hw;
        const float *g = dout + (size_t)ch * hw * n;
        for (int j = 0; j < n; j++) {
            if (accum) {
                for (int p = 0; p < hw; p++)
                    d[(size_t)j * hw + p] += g[(size_t)p * n + j];
            } else {
                for (int p = 0; p < hw; p++)
                    d[(size_t)j * hw + p] = g[(size_t)p * n + j];
            }
        }
    }
}

/* ==== Softmax cross-entropy ============================================== */

/* Per sample j (a strided column of the class-major logits): shift by the
 * column maximum, so exp never overflows and the largest term is exp(0) = 1
 * (the sum is >= 1 and its log is finite); the maximum starts at -INFINITY
 * so that any finite logit replaces it. loss_j = log(sum) - (l[label] - max). */
double softmax_ce_forward(float *restrict probs, int *restrict correct,
                          const float *restrict logits, const int32_t *restrict labels, int n,
                          int k)
{
    double total = 0.0;
    int right = 0;
    for (int j = 0; j < n; j++) {
        float mx = -INFINITY;
        int arg = 0;
        for (int i = 0; i < k; i++) {
            const float v = logits[(size_t)i * n + j];
            if (v > mx) {
                mx = v;
                arg = i;
            }
        }
        double sum = 0.0;
        for (int i = 0; i < k; i++)
            sum += exp((double)logits[(size_t)i * n + j] - mx);
        const double inv = 1.0 / sum;
        for (int i = 0; i < k; i++)
            probs[(size_t)i * n + j] = (float)(exp((double)logits[(size_t)i * n + j] - mx) * inv);
        const int32_t lab = labels[j];
        total += log(sum) - ((double)logits[(size_t)lab * n + j] - mx);
        right += arg == lab;
    }
    if (correct)
        *correct = right;
    return n > 0 ? total / n : 0.0;
}

void softmax_ce_backward(float *restrict dlogits, const float *restrict probs,
                         const int32_t *restrict labels, int n, int k, float scale)
{
    for (int i = 0; i < k; i++)
        for (int j = 0; j < n; j++)
            dlogits[(size_t)i * n + j] = probs[(size_t)i * n + j] * scale;
    for (int j = 0; j < n; j++) {
        const size_t at = (size_t)labels[j] * n + j;
        dlogits[at] = (probs[at] - 1.0f) * scale;
    }
}
