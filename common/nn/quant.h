/* quant.h - SAT weight quantization and PACT / CG-PACT activation quantization.
 *
 * The formulas are spec/sat-numerics.md's, "Saturn's decisions", to the
 * letter:
 *
 * Weights (DoReFa "original" + SAT), per layer, over the whole tensor:
 *   T = tanh(W), M = max(max|T|, 1e-12)
 *   k < 32:  Q = 2*rint(a*(T/M + 1)/2)/a - 1,  a = 2^k - 1
 *   k = 32 with clamp: Q = T/M
 *   s = 1/sqrt(n * max(var(Q), 1e-12))  (unbiased variance, in double)
 *       when SAT applies to the layer, else s = 1
 *   Weff = s * Q
 *   backward (straight-through on rint; M and s constants):
 *   dW = dWeff * s * (1 - T^2) / M
 *
 * Activations (PACT forward; CG-PACT or PACT alpha gradient):
 *   al = max(|alpha_raw|, 1e-6), u = clip(x, 0, al)/al, q = rint(a*u)/a, y = al*q
 *   dx = dy * (0 < x < al)
 *   dalpha = sum dy * (x >= al ? 1 : x <= 0 ? 0 : (cg ? q - x/al : 0)), in double
 *   dalpha_raw = sign(alpha_raw) * dalpha
 * rintf under the default rounding mode (half to even), never roundf.
 */
#ifndef SATURN_QUANT_H
#define SATURN_QUANT_H

#include <stddef.h>

struct bn_view;

#define QUANT_M_EPS 1e-12f
#define QUANT_VAR_EPS 1e-12
#define QUANT_ALPHA_EPS 1e-6f

struct wquant {
    int bits;  /* 2..8, or 32 = float */
    int clamp; /* with bits 32: tanh clamp (otherwise the weights are used as they are) */
    int sat;   /* apply the SAT rescale */
    int fan;   /* n of the SAT factor (fan-in or fan-out, chosen by the caller) */
};

/* True when the weights pass through unchanged (bits 32 without clamp):
 * the caller may then use the latent weights directly. */
static inline int wquant_is_identity(const struct wquant *q)
{
    return q->bits >= 32 && !q->clamp;
}

/* weff (len) = quantized weights of w (len); dfac (len) = s*(1-T^2)/M, the
 * per-element backward factor. Returns the SAT factor s (1 when SAT is off);
 * *m_out (may be NULL) receives M. For the identity quantizer weff = w,
 * dfac = 1. */
float wquant_forward(float *weff, float *dfac, const float *w, size_t len, const struct wquant *q,
                     float *m_out);
/* The unbiased variance of x (len >= 2; 0 otherwise), in double: the
 * var(Q) of the SAT factor. */
double wquant_variance(const float *x, size_t len);
/* dw (len) += dweff * dfac. */
void wquant_backward(float *dw, const float *dweff, const float *dfac, size_t len);

/* Integer codes of the k-bit grid, for export: code = rint(a*(T/M+1)/2) in
 * [0, a], so Q = 2*code/a - 1 = (2*code - a)/a. Returns M. */
float wquant_codes(int *codes, const float *w, size_t len, int bits);

/* The clip value al of a raw alpha parameter: max(|alpha_raw|, 1e-6). */
static inline float pact_alpha(float alpha_raw)
{
    float a = alpha_raw < 0.0f ? -alpha_raw : alpha_raw;
    return a > QUANT_ALPHA_EPS ? a : QUANT_ALPHA_EPS;
}

/* PACT forward over len elements; y may alias x only if the caller keeps x
 * elsewhere (backward needs the pre-quantization x). */
void pact_forward(float *y, const float *x, size_t len, float alpha_raw, int bits);
/* Over x (C, M), c channels of m values: dx (may be NULL) = or += dy *
 * (0 < x < al) per `accum`; returns the gradient for alpha_raw (CG-PACT
 * when cg, else PACT), accumulated in double in an order fixed by (c, m). */
double pact_backward(float *dx, const float *dy, const float *x, int c, size_t m, float alpha_raw,
                     int bits, int cg, int accum);
/* pact_forward on a short run, single-threaded (for views). */
void pact_apply(float *y, const float *x, size_t len, float alpha_raw, int bits);
/* y (n) = pact_apply of a BatchNorm view's values (layers.h) at flat indices
 * [i0, i0 + n), bit-identical to it on the stored BN output; single-threaded. */
void pact_apply_bn(float *y, const struct bn_view *v, size_t i0, size_t n, float alpha_raw,
                   int bits);
/* The two above reading x (C, M) through a BatchNorm view (layers.h): the
 * same results, bit for bit, as on the stored BN output. */
void pact_forward_bn(float *y, const struct bn_view *v, int c, float alpha_raw, int bits);
double pact_backward_bn(float *dx, const float *dy, const struct bn_view *v, int c,
                        float alpha_raw, int bits, int cg, int accum);
/* The pieces pact_backward* cut each of c channel slabs of m values into
 * (threads.h's nn_slab_pieces(m), or fewer for many channels), and the
 * alpha-gradient term of one piece: the view's values at flat indices
 * [at, at + n) of one channel, dy at the same indices. pact_backward_bn
 * returns sign(alpha_raw) * the sum of these terms, channel by channel,
 * piece by piece, each added to a double starting at 0.0; a caller that
 * adds them in that order gets its bits (BatchNorm's folded backward). */
int pact_backward_pieces_of(int c, size_t m);
double pact_alpha_term_bn(const float *dy, const struct bn_view *v, size_t at, size_t n,
                          float alpha_raw, int bits, int cg);

/* The PACT kernels are compiled once per ISA level and chosen at run time.
 * Every level gives the same bits (element-wise IEEE operations, no
 * contraction, the same summation order); they differ in vector width only. */
enum pact_isa {
    PACT_ISA_AUTO = -1, /* SATURN_ACT_ISA=base|avx2|avx512 if available, else the widest */
    PACT_ISA_BASE,      /* the project's -march (x86-64-v2: SSE4.2) */
    PACT_ISA_AVX2,
    PACT_ISA_AVX512, /* AVX-512F */
};
/* 1 when this CPU (and build) can run level isa. */
int pact_isa_available(enum pact_isa isa);
/* Selects the level for all later PACT calls (process-wide; tests and
 * benchmarks). Returns 0, or SAT_EINVAL when the level is not available. */
int pact_set_isa(enum pact_isa isa);
/* The level in use (resolved as PACT_ISA_AUTO on first use). */
enum pact_isa pact_get_isa(void);

#endif
