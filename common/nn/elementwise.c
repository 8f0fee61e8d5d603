/* elementwise.c - the element-wise kernels of layers.h: ReLU (plain and
 * through a BatchNorm view), the residual add and softmax cross-entropy.
 * They run in parallel over each thread's images of every channel where
 * model.c has set a layout (threads.h, NN_FOR_RANGES), else over fixed
 * blocks; every element's result is the same either way.
 */
#include "nn/layers.h"
#include "nn/bn_view.h"
#include "nn/lanes.h"
#include "nn/quant.h"
#include "nn/threads.h"
#include "nn/vec.h"

#include <math.h>
#include <string.h>

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

/* Element-wise ops run in parallel over the ranges of threads.h's
 * nn_ranges: each thread's own images in every channel when a layout is
 * set, else blocks of EW_BLK elements. Each element's result does not
 * depend on the cut. */
#define EW_BLK 16384

/* Element-wise ops on a BN view: ranges as above, each read in chunks of
 * BN_VIEW_CHUNK values materialised on the stack. */
void bn_view_values(float *out, const struct bn_view *v, int c)
{
    const size_t len = (size_t)c * v->m;
    NN_FOR_RANGES(lo, hi, len, EW_BLK)
    bn_view_fill(out + lo, v, lo, hi - lo);
    NN_END_RANGES
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
    const size_t len = (size_t)c * v->m;
    NN_FOR_RANGES(lo, hi, len, blk)
    float xs[BN_VIEW_CHUNK];
    for (size_t i = lo; i < hi; i += BN_VIEW_CHUNK) {
        const size_t n = hi - i < BN_VIEW_CHUNK ? hi - i : BN_VIEW_CHUNK;
        bn_view_fill(xs, v, i, n);
        fn(ctx, i, xs, n);
    }
    NN_END_RANGES
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
    const size_t len = (size_t)c * v->m;
    NN_FOR_RANGES(lo, hi, len, EW_BLK)
    fn(out, dout, v, lo, hi - lo, bwd, accum);
    NN_END_RANGES
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
    NN_FOR_RANGES(lo, hi, len, EW_BLK)
    relu_forward_range(out + lo, inp + lo, hi - lo);
    NN_END_RANGES
}

void relu_backward(float *dinp, const float *dout, const float *inp, size_t len, int accum)
{
    NN_FOR_RANGES(lo, hi, len, EW_BLK)
    relu_backward_range(dinp + lo, dout + lo, inp + lo, hi - lo, accum);
    NN_END_RANGES
}

void add_forward(float *out, const float *a, const float *b, size_t len)
{
    NN_FOR_RANGES(lo, hi, len, EW_BLK)
    add_forward_range(out + lo, a + lo, b + lo, hi - lo);
    NN_END_RANGES
}

/* One input's gradient of a residual add: din = dout (accum 0) or
 * din += dout (accum 1). */
void add_backward(float *din, const float *dout, size_t len, int accum)
{
    NN_FOR_RANGES(lo, hi, len, EW_BLK)
    if (accum)
        add_forward_range(din + lo, din + lo, dout + lo, hi - lo);
    else
        memcpy(din + lo, dout + lo, (hi - lo) * sizeof(float));
    NN_END_RANGES
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
