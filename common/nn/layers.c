/* layers.c - fully connected layers (one cblas_sgemm each way) and
 * BatchNorm over CNHW slabs, with the activation after it folded into its
 * backward (ReLU, add and softmax cross-entropy: elementwise.c; pooling and
 * flatten: pool.c).
 *
 * Reductions whose length grows with the batch (BN statistics, FC bias
 * gradient) are summed in double over eight fixed lanes (sum8_*): the order
 * is fixed, so results are bit-identical run to run, and the lanes break the
 * add-latency chain that a single accumulator would have.
 */
#include "nn/layers.h"
#include "nn/bn_view.h"
#include "nn/lanes.h"
#include "nn/quant.h"
#include "nn/vec.h"
#include "nn/threads.h"

#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <string.h>

/* ==== Lane sums ========================================================== */

/* Each sum is written once and compiled per element-wise ISA level (the
 * level of the PACT kernels, quant.h's pact_get_isa: SSE4.2, AVX2 or
 * AVX-512F; lanes.h), like quant.c's. The lanes are per-element double
 * operations in a fixed order (-ffp-contract=off: no fused multiply-add),
 * so every level gives the same bits; only the vector width changes. */

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

#if LANES_X86
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

/* BatchNorm's sums over a channel slab (m values, N*H*W) are taken in the
 * slab's fixed pieces (threads.h, nn_slab_pieces): each piece gives a lane
 * sum in double (sum8_*), and the pieces are added in order, so the
 * numbers depend on m only, never on the thread count. The passes run in
 * one parallel region over steps of a few channels (bn_step): each thread
 * sums the pieces of its own images (bn_piece_owner), meets the others at
 * a barrier, and makes the step's second pass while its share is still in
 * its cache. Every thread computes the step's totals itself, in the same
 * order; the thread a channel is dealt to (j % threads) stores them. */
#define BN_PARTS 2048              /* partial sums of one step (pieces x channels) */
#define BN_ALPHA_PARTS 4096        /* PACT's alpha terms of a folded backward (pieces x c) */
#define BN_STEP_MAX 128            /* channels of one step */
#define BN_STEP_BYTES (256 * 1024) /* a thread's share of a step's data */

/* Channels per step: the calling thread's share of them (the values of
 * `arrays` tensors) within BN_STEP_BYTES, 1 to BN_STEP_MAX. */
static int bn_step(size_t m, int pieces, int arrays)
{
    const size_t share = m / (size_t)nn_threads() * sizeof(float) * (size_t)arrays;
    size_t g = share ? BN_STEP_BYTES / share : BN_STEP_MAX;
    const size_t cap =
        BN_PARTS / (size_t)pieces < BN_STEP_MAX ? BN_PARTS / (size_t)pieces : BN_STEP_MAX;
    return g < 1 ? 1 : g > cap ? (int)cap : (int)g;
}

/* The thread that sums piece k of a slab: the owner of the piece's first
 * image in the layout, else the pieces dealt in order. */
static int bn_piece_owner(size_t m, int pieces, int k, int nt)
{
    const int n = nn_layout_images();
    if (n >= 1 && nn_layout_m() == m && m % (size_t)n == 0)
        return nn_share_owner(n, (int)(nn_slab_piece_lo(m, pieces, k) / (m / (size_t)n)), nt);
    return (int)((long long)k * nt / pieces);
}

/* From piece *k on, the next piece thread me of nt sums: its values
 * [*lo, *hi) of each channel slab; 0 when there is none. */
static int bn_own_piece(size_t m, int pieces, int me, int nt, int *k, size_t *lo, size_t *hi)
{
    for (; *k < pieces; ++*k) {
        if (bn_piece_owner(m, pieces, *k, nt) == me) {
            *lo = nn_slab_piece_lo(m, pieces, *k);
            *hi = nn_slab_piece_lo(m, pieces, *k + 1);
            return 1;
        }
    }
    return 0;
}

static double bn_total(const double *part, int pieces)
{
    double t = 0.0;
    for (int k = 0; k < pieces; k++)
        t += part[k];
    return t;
}

/* Train mode over c channels: mean and biased var in double (two passes,
 * so no cancellation); the affine terms the output is made of,
 * out = (x - mean) * (gamma * invstd) + beta, into mu, scale (and shift =
 * beta); and out itself when it is not NULL. The running variance uses the
 * unbiased estimate; with m == 1 it is undefined (PyTorch refuses such a
 * batch), and the biased one (0) is used instead. */
static void bn_train(float *out, float *mu, float *scale, float *shift, float *mean, float *invstd,
                     const float *inp, const float *gamma, const float *beta, float *run_mean,
                     float *run_var, int c, size_t m, float eps, float momentum)
{
    const int pieces = nn_slab_pieces(m), step = bn_step(m, pieces, out ? 2 : 1);
    double part[BN_PARTS], part2[BN_PARTS];
#pragma omp parallel num_threads(nn_threads()) if (c > 1 && (size_t)c * m > 8192)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        double mu_l[BN_STEP_MAX], istd_l[BN_STEP_MAX];
        size_t lo, hi; /* the values of an own piece in each channel */
        for (int c0 = 0; c0 < c; c0 += step) {
            const int cn = c - c0 < step ? c - c0 : step;
            const float *x = inp + (size_t)c0 * m;
            for (int k = 0; bn_own_piece(m, pieces, me, nt, &k, &lo, &hi); k++) {
                for (int j = 0; j < cn; j++)
                    part[(size_t)j * pieces + k] = sum8(x + (size_t)j * m + lo, hi - lo);
            }
#pragma omp barrier
            for (int j = 0; j < cn; j++)
                mu_l[j] = bn_total(part + (size_t)j * pieces, pieces) / (double)m;
            for (int k = 0; bn_own_piece(m, pieces, me, nt, &k, &lo, &hi); k++) {
                for (int j = 0; j < cn; j++)
                    part2[(size_t)j * pieces + k] =
                        sumsq8(x + (size_t)j * m + lo, hi - lo, mu_l[j]);
            }
#pragma omp barrier
            for (int j = 0; j < cn; j++) {
                const int ch = c0 + j;
                const double var = bn_total(part2 + (size_t)j * pieces, pieces) / (double)m;
                istd_l[j] = 1.0 / sqrt(var + (double)eps);
                if (j % nt != me)
                    continue;
                mean[ch] = (float)mu_l[j];
                invstd[ch] = (float)istd_l[j];
                if (run_mean)
                    run_mean[ch] =
                        (float)((1.0 - momentum) * run_mean[ch] + (double)momentum * mu_l[j]);
                if (run_var) {
                    const double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
                    run_var[ch] =
                        (float)((1.0 - momentum) * run_var[ch] + (double)momentum * unbiased);
                }
                if (mu) {
                    mu[ch] = (float)mu_l[j];
                    scale[ch] = (float)(gamma[ch] * istd_l[j]);
                    shift[ch] = beta[ch];
                }
            }
            if (!out)
                continue;
            for (int k = 0; bn_own_piece(m, pieces, me, nt, &k, &lo, &hi); k++) {
                for (int j = 0; j < cn; j++) {
                    const size_t at = (size_t)(c0 + j) * m + lo;
                    bn_affine(out + at, inp + at, hi - lo, (float)mu_l[j],
                              (float)(gamma[c0 + j] * istd_l[j]), beta[c0 + j]);
                }
            }
        }
    }
}

void bn_forward_train(float *out, float *mean, float *invstd, const float *inp, const float *gamma,
                      const float *beta, float *run_mean, float *run_var, int c, size_t m,
                      float eps, float momentum)
{
    if (m == 0)
        return;
    bn_train(out, NULL, NULL, NULL, mean, invstd, inp, gamma, beta, run_mean, run_var, c, m, eps,
             momentum);
}

void bn_stats_train(float *mu, float *scale, float *shift, float *mean, float *invstd,
                    const float *inp, const float *gamma, const float *beta, float *run_mean,
                    float *run_var, int c, size_t m, float eps, float momentum)
{
    if (m == 0)
        return;
    bn_train(NULL, mu, scale, shift, mean, invstd, inp, gamma, beta, run_mean, run_var, c, m, eps,
             momentum);
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

/* ---- BatchNorm's backward with the activation after it folded in ----
 *
 * The gradient BN's backward reads is then g = dy where the activation let
 * its input z = (x - vmu) * vscale + vshift through (the view's float
 * operations), else +0: z > 0 for ReLU, 0 < z < al for PACT; exactly the
 * values relu_backward_bn and pact_backward_bn store (NaN: +0). Computing
 * g where it is read saves that tensor's write and two reads. */
struct bn_gate_ch {
    float vmu, vscale, vshift, al;
};

static inline struct bn_gate_ch bn_gate_of(const struct bn_gate *g, int ch)
{
    return (struct bn_gate_ch){g->v.mu[ch], g->v.scale[ch], g->v.shift[ch], g->al};
}

LANES_INLINE float bn_gate_value(float dy, float x, const struct bn_gate_ch *k, const int pact)
{
    const float z = (x - k->vmu) * k->vscale + k->vshift;
    const int on = pact ? (z > 0.0f) & (z < k->al) : z > 0.0f;
    return on ? dy : 0.0f;
}

/* sum8_dot_body of the gated g. */
LANES_INLINE void sum8_dot_gate_body(const float *restrict dy, const float *restrict x, size_t m,
                                     double mu, const struct bn_gate_ch *k, const int pact,
                                     double *sg, double *sgx)
{
    double a[8] = {0}, b[8] = {0};
    size_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int j = 0; j < 8; j++) {
            const float g = bn_gate_value(dy[i + j], x[i + j], k, pact);
            a[j] += g;
            b[j] += g * (x[i + j] - mu);
        }
    for (; i < m; i++) {
        const float g = bn_gate_value(dy[i], x[i], k, pact);
        a[0] += g;
        b[0] += g * (x[i] - mu);
    }
    *sg = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    *sgx = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

/* bn_dinp_body of the gated g. */
LANES_INLINE void bn_dinp_gate_body(float *restrict d, const float *restrict dy,
                                    const float *restrict x, size_t m, float fk, float gmean,
                                    float kx, float fmu, const struct bn_gate_ch *k, const int pact,
                                    int accum)
{
    if (accum) {
        for (size_t i = 0; i < m; i++)
            d[i] += fk * (bn_gate_value(dy[i], x[i], k, pact) - gmean) - kx * (x[i] - fmu);
    } else {
        for (size_t i = 0; i < m; i++)
            d[i] = fk * (bn_gate_value(dy[i], x[i], k, pact) - gmean) - kx * (x[i] - fmu);
    }
}

/* Both passes of one ISA level, PACT's gate or ReLU's as a constant. */
#define BN_GATE_KERNELS(SUFFIX, ATTR)                                                              \
    ATTR static void sum8_dot_gate_##SUFFIX(const float *dy, const float *x, size_t m, double mu,  \
                                            const struct bn_gate_ch *k, int pact, double *sg,      \
                                            double *sgx)                                           \
    {                                                                                              \
        if (pact)                                                                                  \
            sum8_dot_gate_body(dy, x, m, mu, k, 1, sg, sgx);                                       \
        else                                                                                       \
            sum8_dot_gate_body(dy, x, m, mu, k, 0, sg, sgx);                                       \
    }                                                                                              \
    ATTR static void bn_dinp_gate_##SUFFIX(float *d, const float *dy, const float *x, size_t m,    \
                                           float fk, float gmean, float kx, float fmu,             \
                                           const struct bn_gate_ch *k, int pact, int accum)        \
    {                                                                                              \
        if (pact)                                                                                  \
            bn_dinp_gate_body(d, dy, x, m, fk, gmean, kx, fmu, k, 1, accum);                       \
        else                                                                                       \
            bn_dinp_gate_body(d, dy, x, m, fk, gmean, kx, fmu, k, 0, accum);                       \
    }

BN_GATE_KERNELS(base, )
#if LANES_X86
BN_GATE_KERNELS(avx2, LANES_AVX2)
BN_GATE_KERNELS(avx512, LANES_AVX512)
#endif

static void sum8_dot_gate(const float *dy, const float *x, size_t m, double mu,
                          const struct bn_gate_ch *k, int pact, double *sg, double *sgx)
{
#if LANES_X86
    switch (pact_get_isa()) {
    case PACT_ISA_AVX512:
        sum8_dot_gate_avx512(dy, x, m, mu, k, pact, sg, sgx);
        return;
    case PACT_ISA_AVX2:
        sum8_dot_gate_avx2(dy, x, m, mu, k, pact, sg, sgx);
        return;
    default:
        break;
    }
#endif
    sum8_dot_gate_base(dy, x, m, mu, k, pact, sg, sgx);
}

static void bn_dinp_gate(float *d, const float *dy, const float *x, size_t m, float fk, float gmean,
                         float kx, float fmu, const struct bn_gate_ch *k, int pact, int accum)
{
#if LANES_X86
    switch (pact_get_isa()) {
    case PACT_ISA_AVX512:
        bn_dinp_gate_avx512(d, dy, x, m, fk, gmean, kx, fmu, k, pact, accum);
        return;
    case PACT_ISA_AVX2:
        bn_dinp_gate_avx2(d, dy, x, m, fk, gmean, kx, fmu, k, pact, accum);
        return;
    default:
        break;
    }
#endif
    bn_dinp_gate_base(d, dy, x, m, fk, gmean, kx, fmu, k, pact, accum);
}

/* With xhat = (x - mean) * invstd, sg = sum dout, sgx = sum dout*(x - mean):
 *   dbeta += sg, dgamma += invstd * sgx,
 *   dinp = gamma*invstd * (dout - sg/m - xhat * invstd*sgx/m)
 *        = k * (dout - sg/m) - k * invstd^2 * sgx/m * (x - mean),  k = gamma*invstd. */
static void bn_backward_impl(float *restrict dinp, float *restrict dgamma, float *restrict dbeta,
                             const float *restrict dout, const float *restrict inp,
                             const float *restrict mean, const float *restrict invstd,
                             const float *restrict gamma, int c, size_t m, int accum,
                             const struct bn_gate *gate)
{
    if (m == 0) {
        if (gate && gate->pact && gate->alpha_grad)
            *gate->alpha_grad = 0.0; /* as pact_backward_bn */
        return;
    }
    const int pieces = nn_slab_pieces(m), step = bn_step(m, pieces, dinp ? 3 : 2);
    /* two sets, by step parity: a thread may start the next step's sums
     * while another still reads this step's */
    double pg[2][BN_PARTS], pgx[2][BN_PARTS];
    /* PACT's alpha terms, channel by channel, piece by piece, summed in
     * pass 1 when its pieces are BN's (pact_alpha_term_bn) */
    double pa[BN_ALPHA_PARTS];
    const int want_alpha = gate && gate->pact && gate->alpha_grad;
    const int fold_alpha = want_alpha && pact_backward_pieces_of(c, m) == pieces &&
                           (size_t)c * (size_t)pieces <= BN_ALPHA_PARTS;
#pragma omp parallel num_threads(nn_threads()) if (c > 1 && (size_t)c * m > 8192)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        float fk[BN_STEP_MAX], gmean[BN_STEP_MAX], kx[BN_STEP_MAX];
        size_t lo, hi; /* the values of an own piece in each channel */
        for (int c0 = 0, par = 0; c0 < c; c0 += step, par ^= 1) {
            const int cn = c - c0 < step ? c - c0 : step;
            const float *x = inp + (size_t)c0 * m, *g = dout + (size_t)c0 * m;
            for (int k = 0; bn_own_piece(m, pieces, me, nt, &k, &lo, &hi); k++) {
                for (int j = 0; j < cn; j++) {
                    const size_t at = (size_t)j * m + lo, p = (size_t)j * pieces + k;
                    if (gate) {
                        const struct bn_gate_ch gk = bn_gate_of(gate, c0 + j);
                        sum8_dot_gate(g + at, x + at, hi - lo, mean[c0 + j], &gk, gate->pact,
                                      &pg[par][p], &pgx[par][p]);
                        if (fold_alpha) /* the piece is still in this core's cache */
                            pa[(size_t)(c0 + j) * pieces + k] =
                                0.0 + pact_alpha_term_bn(g + at, &gate->v, (size_t)c0 * m + at,
                                                         hi - lo, gate->alpha_raw, gate->bits,
                                                         gate->cg);
                    } else {
                        sum8_dot(g + at, x + at, hi - lo, mean[c0 + j], &pg[par][p], &pgx[par][p]);
                    }
                }
            }
#pragma omp barrier
            for (int j = 0; j < cn; j++) {
                const int ch = c0 + j;
                const double sg = bn_total(pg[par] + (size_t)j * pieces, pieces);
                const double sgx = bn_total(pgx[par] + (size_t)j * pieces, pieces);
                const double istd = invstd[ch], k = gamma[ch] * istd;
                if (j % nt == me) {
                    dbeta[ch] += (float)sg;
                    dgamma[ch] += (float)(sgx * istd);
                }
                fk[j] = (float)k;
                gmean[j] = (float)(sg / (double)m);
                kx[j] = (float)(k * istd * istd * sgx / (double)m);
            }
            if (!dinp)
                continue;
            for (int k = 0; bn_own_piece(m, pieces, me, nt, &k, &lo, &hi); k++) {
                for (int j = 0; j < cn; j++) {
                    const size_t at = (size_t)(c0 + j) * m + lo;
                    if (gate) {
                        const struct bn_gate_ch gk = bn_gate_of(gate, c0 + j);
                        bn_dinp_gate(dinp + at, dout + at, inp + at, hi - lo, fk[j], gmean[j],
                                     kx[j], mean[c0 + j], &gk, gate->pact, accum);
                    } else {
                        bn_dinp(dinp + at, dout + at, inp + at, hi - lo, fk[j], gmean[j], kx[j],
                                mean[c0 + j], accum);
                    }
                }
            }
        }
    }
    if (fold_alpha) {
        /* pact_backward_bn's order: channel by channel, piece by piece */
        double total = 0.0;
        for (size_t i = 0; i < (size_t)c * (size_t)pieces; i++)
            total += pa[i];
        *gate->alpha_grad = gate->alpha_raw < 0.0f ? -total : total;
    } else if (want_alpha) {
        *gate->alpha_grad =
            pact_backward_bn(NULL, dout, &gate->v, c, gate->alpha_raw, gate->bits, gate->cg, 0);
    }
}

void bn_backward(float *restrict dinp, float *restrict dgamma, float *restrict dbeta,
                 const float *restrict dout, const float *restrict inp, const float *restrict mean,
                 const float *restrict invstd, const float *restrict gamma, int c, size_t m,
                 int accum)
{
    bn_backward_impl(dinp, dgamma, dbeta, dout, inp, mean, invstd, gamma, c, m, accum, NULL);
}

void bn_backward_gated(float *dinp, float *dgamma, float *dbeta, const float *dy, const float *inp,
                       const float *mean, const float *invstd, const float *gamma, int c, size_t m,
                       int accum, const struct bn_gate *gate)
{
    bn_backward_impl(dinp, dgamma, dbeta, dy, inp, mean, invstd, gamma, c, m, accum, gate);
}
