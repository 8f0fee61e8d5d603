/* conv.c - dense convolutions of layers.h: im2col over chunks of the batch
 * plus cblas_sgemm, or the direct kernel of conv_direct.c where it fits and
 * the CPU runs it fast (conv_set_impl), and the plain-loop oracles that the
 * tests hold the dense and the depthwise kernels (dwconv.c) against.
 *
 * Layout reminder (layers.h): activations are CNHW, so one input channel of
 * the batch is a slab of N planes of (IH, IW), and the GEMM's output matrix
 * (OC, N*OH*OW) is already the CNHW output tensor.
 *
 * Padding is handled by ranges (conv_range, conv_int.h), so the inner loops
 * run over contiguous output rows without a bounds test per element.
 *
 * Every kernel here is deterministic: each output element is summed in one
 * fixed order, and the GEMMs are OpenBLAS's, which is deterministic for a
 * fixed thread count.
 */
#include "nn/layers.h"
#include "nn/conv_int.h"
#include "nn/vec.h"
#include "nn/threads.h"
#include "util/err.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ==== Shapes ============================================================= */

/* 1 when a*b*c fits in an int (all arguments positive). */
static int conv_fits_int(long long a, long long b, long long c)
{
    if (a > INT_MAX / b)
        return 0;
    a *= b;
    return a <= INT_MAX / c;
}

int conv_shape_init(struct conv_shape *s, int n, int ic, int ih, int iw, int oc, int kh, int kw,
                    int stride, int pad, int groups)
{
    if (n < 1 || ic < 1 || ih < 1 || iw < 1 || oc < 1 || kh < 1 || kw < 1 || stride < 1 || pad < 0)
        return SAT_EINVAL;
    if (groups != 1 && (groups != ic || oc != ic))
        return SAT_EINVAL;
    long long eh = (long long)ih + 2LL * pad - kh;
    long long ew = (long long)iw + 2LL * pad - kw;
    if (eh < 0 || ew < 0 || eh > INT_MAX || ew > INT_MAX)
        return SAT_EINVAL;
    int oh = (int)(eh / stride) + 1;
    int ow = (int)(ew / stride) + 1;
    /* cblas takes int dimensions and leading dimensions, and the kernels
     * index planes with int arithmetic: every matrix side and every tensor
     * must stay below INT_MAX elements. */
    if (!conv_fits_int(n, ih, iw) || !conv_fits_int(n, oh, ow) || !conv_fits_int(ic, kh, kw) ||
        !conv_fits_int((long long)n * ih * iw, ic, 1) ||
        !conv_fits_int((long long)n * oh * ow, oc, 1) ||
        !conv_fits_int((long long)ic * kh * kw, oc, 1))
        return SAT_EINVAL;
    s->n = n;
    s->ic = ic;
    s->ih = ih;
    s->iw = iw;
    s->oc = oc;
    s->oh = oh;
    s->ow = ow;
    s->kh = kh;
    s->kw = kw;
    s->stride = stride;
    s->pad = pad;
    s->groups = groups;
    s->threads = 0;
    return 0;
}

/* A 1x1, stride-1, pad-0 dense conv is a plain GEMM on the input itself. */
static int conv_is_pointwise(const struct conv_shape *s)
{
    return s->groups == 1 && s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}


/* ==== Kernel choice ======================================================= */

/* The resolved enum conv_impl, or -1 before first use. */
static int conv_impl_cur = -1;

/* The direct kernel's version that impl runs (impl is not GEMM). */
static enum conv_direct_isa conv_impl_isa(enum conv_impl impl)
{
    return impl == CONV_IMPL_AVX512 ? CONV_DIRECT_AVX512
           : impl == CONV_IMPL_AVX2 ? CONV_DIRECT_AVX2
                                    : CONV_DIRECT_PORTABLE;
}

static int conv_impl_runs(enum conv_impl impl)
{
    return impl == CONV_IMPL_GEMM || conv_direct_isa_available(conv_impl_isa(impl));
}

static enum conv_impl conv_impl_resolve(enum conv_impl impl)
{
    if (impl != CONV_IMPL_AUTO)
        return impl;
    static const struct {
        const char *name;
        enum conv_impl impl;
    } env[] = {{"gemm", CONV_IMPL_GEMM},
               {"direct", CONV_IMPL_DIRECT},
               {"avx2", CONV_IMPL_AVX2},
               {"avx512", CONV_IMPL_AVX512}};
    const char *e = getenv("SATURN_CONV_IMPL");
    for (size_t i = 0; e && i < sizeof(env) / sizeof(env[0]); i++)
        if (strcmp(e, env[i].name) == 0 && conv_impl_runs(env[i].impl))
            return env[i].impl;
    /* The AVX2 version is slower than im2col + OpenBLAS (measured on Zen 4:
     * 25-46 GFLOP/s a core against 54-72), so it is not a default. */
    return conv_direct_isa_available(CONV_DIRECT_AVX512) ? CONV_IMPL_AVX512 : CONV_IMPL_GEMM;
}

int conv_set_impl(enum conv_impl impl)
{
    if (impl < CONV_IMPL_AUTO || impl > CONV_IMPL_AVX512 ||
        (impl != CONV_IMPL_AUTO && !conv_impl_runs(impl)))
        return SAT_EINVAL;
    __atomic_store_n(&conv_impl_cur, (int)conv_impl_resolve(impl), __ATOMIC_RELAXED);
    return 0;
}

enum conv_impl conv_get_impl(void)
{
    int cur = __atomic_load_n(&conv_impl_cur, __ATOMIC_RELAXED);
    if (cur < 0) {
        cur = (int)conv_impl_resolve(CONV_IMPL_AUTO);
        __atomic_store_n(&conv_impl_cur, cur, __ATOMIC_RELAXED);
    }
    return (enum conv_impl)cur;
}

/* 1 when s runs on the direct kernel: its shape fits and GEMM is not forced. */
static int conv_use_direct(const struct conv_shape *s)
{
    return conv_get_impl() != CONV_IMPL_GEMM && conv_direct_ok(s);
}

/* ==== im2col / col2im ===================================================== */

/* cols (IC*KH*KW, N*OH*OW) from inp (IC, N, IH, IW): row (c, ki, kj), column
 * (n, oy, ox) holds inp[c, n, oy*stride - pad + ki, ox*stride - pad + kj], or 0
 * in the padding. Loops run channel, image, tap, so one input plane stays in
 * L1 while its KH*KW segments of OH*OW are written, each sequentially. */
/* GCC would turn the short copy and zero loops below (1..OW floats) into
 * memcpy / memset calls, whose call overhead then costs more than the
 * stores; the attribute keeps them inline. Clang has no such attribute
 * (and warns about it), so its builds (the fuzz targets) go without. */
#if defined(__clang__)
#define CONV_KEEP_LOOPS
#else
#define CONV_KEEP_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
CONV_KEEP_LOOPS
static void im2col(float *restrict cols, const float *restrict inp, const struct conv_shape *s,
                   int b0, int b1)
{
    const int n = s->n, ih = s->ih, iw = s->iw, oh = s->oh, ow = s->ow;
    const int kh = s->kh, kw = s->kw, st = s->stride, pad = s->pad;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow, p = (size_t)(b1 - b0) * ohw;
    const int same = st == 1 && ow == iw; /* "same" padding, stride 1 */

    for (int c = 0; c < s->ic; c++) {
        for (int b = b0; b < b1; b++) {
            const float *plane = inp + ((size_t)c * n + b) * ihw;
            for (int ki = 0; ki < kh; ki++) {
                int ylo, yhi;
                conv_range(oh, ih, ki, st, pad, &ylo, &yhi);
                for (int kj = 0; kj < kw; kj++) {
                    int xlo, xhi;
                    conv_range(ow, iw, kj, st, pad, &xlo, &xhi);
                    float *dst = cols + ((size_t)(c * kh + ki) * kw + kj) * p + (b - b0) * ohw;
                    if (xlo == xhi || ylo == yhi) { /* the tap only ever sees padding */
                        memset(dst, 0, ohw * sizeof(float));
                        continue;
                    }
                    memset(dst, 0, (size_t)ylo * ow * sizeof(float));
                    memset(dst + (size_t)yhi * ow, 0, (size_t)(oh - yhi) * ow * sizeof(float));
                    /* first input row and column of the tap, both in range */
                    const float *src =
                        plane + (size_t)(ylo * st - pad + ki) * iw + (xlo * st - pad + kj);
                    if (same) {
                        /* Output (y, x) reads input (y - pad + ki, x - pad + kj):
                         * with OW == IW that is one constant shift of the
                         * linear index, so the tap's rows are one contiguous
                         * copy, after which the columns that the shift
                         * wrapped around are the padding's zeros. */
                        size_t a = (size_t)ylo * ow + xlo, e = (size_t)(yhi - 1) * ow + xhi;
                        memcpy(dst + a, src, (e - a) * sizeof(float));
                        for (int y = ylo; y < yhi; y++) {
                            float *d = dst + (size_t)y * ow;
                            for (int x = 0; x < xlo; x++)
                                d[x] = 0.0f;
                            for (int x = xhi; x < ow; x++)
                                d[x] = 0.0f;
                        }
                        continue;
                    }
                    for (int y = ylo; y < yhi; y++) {
                        const float *sy = src + (size_t)(y - ylo) * st * iw;
                        float *d = dst + (size_t)y * ow;
                        for (int x = 0; x < xlo; x++)
                            d[x] = 0.0f;
                        if (st == 1) {
                            /* rows are short (OW floats): an inline loop,
                             * not a memcpy call per row */
                            for (int i = 0; i < xhi - xlo; i++)
                                d[xlo + i] = sy[i];
                        } else {
                            for (int i = 0; i < xhi - xlo; i++)
                                d[xlo + i] = sy[i * st];
                        }
                        for (int x = xhi; x < ow; x++)
                            d[x] = 0.0f;
                    }
                }
            }
        }
    }
}

/* dinp (IC, N, IH, IW) = (accum 0) or += (accum 1) the adjoint of im2col
 * applied to cols (IC*KH*KW, N*OH*OW). Same loop order as im2col, so the
 * plane being summed into stays in L1; each input element receives its
 * contributions in (ki, kj, y) order, which is fixed. */
static void col2im(float *restrict dinp, const float *restrict cols, const struct conv_shape *s,
                   int accum, int b0, int b1)
{
    const int n = s->n, ih = s->ih, iw = s->iw, oh = s->oh, ow = s->ow;
    const int kh = s->kh, kw = s->kw, st = s->stride, pad = s->pad;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow, p = (size_t)(b1 - b0) * ohw;

    for (int c = 0; c < s->ic; c++) {
        for (int b = b0; b < b1; b++) {
            float *plane = dinp + ((size_t)c * n + b) * ihw;
            if (!accum)
                memset(plane, 0, ihw * sizeof(float));
            for (int ki = 0; ki < kh; ki++) {
                int ylo, yhi;
                conv_range(oh, ih, ki, st, pad, &ylo, &yhi);
                for (int kj = 0; kj < kw; kj++) {
                    int xlo, xhi;
                    conv_range(ow, iw, kj, st, pad, &xlo, &xhi);
                    if (xlo == xhi || ylo == yhi)
                        continue;
                    const float *src =
                        cols + ((size_t)(c * kh + ki) * kw + kj) * p + (b - b0) * ohw;
                    float *d = plane + (size_t)(ylo * st - pad + ki) * iw + (xlo * st - pad + kj);
                    for (int y = ylo; y < yhi; y++) {
                        float *dy = d + (size_t)(y - ylo) * st * iw;
                        const float *srow = src + (size_t)y * ow + xlo;
                        if (st == 1) {
                            vec_add(dy, srow, (size_t)(xhi - xlo));
                        } else {
                            for (int i = 0; i < xhi - xlo; i++)
                                dy[i * st] += srow[i];
                        }
                    }
                }
            }
        }
    }
}

/* ==== Dense convolution =================================================== */

/* The batch is cut into chunks of conv_chunk_images() images. A chunk's
 * columns (K x nb*OH*OW) stay in cache between im2col and the GEMM, and the
 * chunks run in parallel, each thread with its own slice of the scratch and
 * single-threaded OpenBLAS calls; a thread takes the chunks of its own
 * images first (threads.h, nn_walk). The chunk size depends on the layer
 * only, never on the thread count, and every per-chunk result is combined
 * in chunk order, so results are bit-identical whatever the number of
 * threads. */
#define CONV_CHUNK_FLOATS (256 * 1024) /* target floats of one chunk's columns */

static int conv_chunk_images(const struct conv_shape *s)
{
    size_t per = (size_t)s->ic * s->kh * s->kw * s->oh * s->ow;
    size_t nb = per ? CONV_CHUNK_FLOATS / per : 1;
    return nb < 1 ? 1 : nb > 64 ? 64 : (int)nb;
}

/* Chunks at the current batch, and the images of chunk j. */
static int conv_chunks(const struct conv_shape *s)
{
    int nb = conv_chunk_images(s);
    return (s->n + nb - 1) / nb;
}

static void conv_chunk_range(const struct conv_shape *s, int j, int *b0, int *b1)
{
    int nb = conv_chunk_images(s);
    *b0 = j * nb;
    *b1 = *b0 + nb < s->n ? *b0 + nb : s->n;
}

/* Threads the scratch has slices for: those recorded in the shape when it
 * was sized (s->threads), else the engine's current count. */
static int conv_scratch_threads(const struct conv_shape *s)
{
    return s->threads > 0 ? s->threads : nn_threads();
}

/* Threads a kernel runs with: the engine's, never more than the scratch has
 * slices for (the chunks do not depend on it, so neither do the results). */
static int conv_threads(const struct conv_shape *s)
{
    const int t = nn_threads(), c = conv_scratch_threads(s);
    return t < c ? t : c;
}

/* A stride-1 convolution's input gradient is itself a convolution: of
 * dout, padded by k-1-pad, with the weights flipped and transposed,
 * w' (IC, OC, KH, KW) with w'[i][o][y][x] = w[o][i][KH-1-y][KW-1-x]. Computing
 * it as im2col(dout) + one GEMM with K = OC*KH*KW writes dinp directly,
 * instead of a GEMM with K = OC followed by a scatter-add (col2im). */
static int conv_transposed_ok(const struct conv_shape *s)
{
    return s->stride == 1 && s->pad <= s->kh - 1 && s->pad <= s->kw - 1 && s->kh - 1 - s->pad ==
           s->kw - 1 - s->pad;
}

static void conv_transposed_shape(struct conv_shape *t, const struct conv_shape *s)
{
    *t = *s;
    t->ic = s->oc;
    t->ih = s->oh;
    t->iw = s->ow;
    t->oc = s->ic;
    t->oh = s->ih;
    t->ow = s->iw;
    t->pad = s->kh - 1 - s->pad;
}

/* Per-thread columns: the forward's im2col, and for a backward that wants
 * the input gradient also the transposed convolution's. */
static size_t conv_cols_per_thread(const struct conv_shape *s, int with_dinp)
{
    /* the integer forward's buffers, where it may run (conv_q_ok's shapes) */
    size_t qfwd = conv_q_ok(s, 1, 1) ? conv_q_thread_floats(s) : 0;
    if (conv_is_pointwise(s))
        return qfwd;
    size_t nb = (size_t)conv_chunk_images(s);
    size_t fwd = (size_t)s->ic * s->kh * s->kw * nb * s->oh * s->ow;
    size_t bwd = with_dinp && conv_transposed_ok(s)
                     ? (size_t)s->oc * s->kh * s->kw * nb * s->ih * s->iw
                     : 0;
    /* the direct kernel's buffers, whichever kernel runs today, so that
     * conv_set_impl may change it later */
    size_t dfwd = conv_direct_ok(s) ? conv_direct_thread_floats(s) : 0;
    size_t dbwd = 0;
    if (with_dinp && conv_transposed_ok(s)) {
        struct conv_shape ts;
        conv_transposed_shape(&ts, s);
        dbwd = conv_direct_ok(&ts) ? conv_direct_thread_floats(&ts) : 0;
    }
    size_t m = fwd > bwd ? fwd : bwd;
    m = m > dfwd ? m : dfwd;
    m = m > qfwd ? m : qfwd;
    return m > dbwd ? m : dbwd;
}

static size_t conv_scratch(const struct conv_shape *s, int with_dinp)
{
    if (s->groups != 1)
        return 0;
    size_t k = (size_t)s->ic * s->kh * s->kw;
    size_t nb = (size_t)conv_chunk_images(s);
    size_t chunks = ((size_t)s->n + nb - 1) / nb;
    size_t wl = (size_t)s->oc * k;
    /* columns per thread, dw partials per chunk (the forward's packed
     * weights in the first), w' and w' packed */
    return conv_cols_per_thread(s, with_dinp) * (size_t)conv_scratch_threads(s) + chunks * wl +
           2 * wl;
}

size_t conv_scratch_floats(const struct conv_shape *s)
{
    return conv_scratch(s, 1);
}

size_t conv_scratch_floats_nodinp(const struct conv_shape *s)
{
    return conv_scratch(s, 0);
}

/* out (OC, N, OH, OW) = or += conv(inp, w) with the direct kernel, in
 * parallel over images; wp (OC*K) is packed into scratch after the
 * per-thread buffers of per_thread floats. */
static void conv_direct_run(float *restrict out, const float *restrict inp,
                            const float *restrict w, const struct conv_shape *s,
                            float *restrict scratch, size_t per_thread, float *restrict wp,
                            int accum)
{
    const enum conv_direct_isa isa = conv_impl_isa(conv_get_impl());
    conv_direct_pack(wp, w, s);
    NN_WALK_FOR(b, nn_items_images(s->n, 1, s->n), conv_threads(s), 1)
    conv_direct_image(out, inp, wp, s, b, scratch + per_thread * (size_t)nn_thread_id(), accum,
                      isa);
    NN_WALK_END
}

static void conv_forward_direct(float *restrict out, const float *restrict inp,
                                const float *restrict w, const struct conv_shape *s,
                                float *restrict scratch, size_t per_thread)
{
    float *wp = scratch + per_thread * (size_t)conv_scratch_threads(s); /* first dw partial */
    conv_direct_run(out, inp, w, s, scratch, per_thread, wp, 0);
}

/* ==== Integer forward of quantized layers ================================= */

int conv_forward_q_ok(const struct conv_shape *s, int wbits, int abits)
{
    return conv_q_ok(s, wbits, abits);
}

/* The integer kernel's version: the portable one when the portable direct
 * kernel is forced (tests), VNNI where the AVX-512 direct kernel runs and
 * the CPU has it, else AVX2 where present. All give the same integers. */
static enum conv_q_isa conv_q_isa_of(enum conv_impl impl)
{
    if (impl == CONV_IMPL_DIRECT)
        return CONV_Q_PORTABLE;
    if (impl == CONV_IMPL_AVX512 && conv_q_isa_available(CONV_Q_VNNI))
        return CONV_Q_VNNI;
    return conv_q_isa_available(CONV_Q_AVX2) ? CONV_Q_AVX2 : CONV_Q_PORTABLE;
}

void conv_forward_q(float *restrict out, const float *restrict inp, const float *restrict w,
                    float sat, int wbits, float alpha, int abits, const struct conv_shape *s,
                    float *restrict scratch)
{
    assert(s->groups == 1 && conv_q_ok(s, wbits, abits));
    const size_t per_thread = conv_cols_per_thread(s, 0);
    int8_t *wq = (int8_t *)(void *)(scratch + per_thread * (size_t)conv_scratch_threads(s));
    const double wa = (double)((1 << wbits) - 1), aa = (double)((1 << abits) - 1);
    const struct conv_q_scale q = {.scale = (float)((double)sat * alpha / (wa * aa)),
                                   .ainv = (float)(aa / alpha),
                                   .aa = (float)aa};
    const enum conv_q_isa isa = conv_q_isa_of(conv_get_impl());
    conv_q_pack(wq, w, sat, wbits, s);
    NN_WALK_FOR(b, nn_items_images(s->n, 1, s->n), conv_threads(s), 1)
    conv_q_image(out, inp, wq, s, b, scratch + per_thread * (size_t)nn_thread_id(), &q, isa);
    NN_WALK_END
}

/* out (OC, N*OH*OW) = w (OC, K) * cols (K, N*OH*OW), K = IC*KH*KW. */
void conv_forward(float *restrict out, const float *restrict inp, const float *restrict w,
                  const struct conv_shape *s, float *restrict scratch)
{
    assert(s->groups == 1);
    const int k = s->ic * s->kh * s->kw;
    const int ohw = s->oh * s->ow, p = s->n * ohw;
    const int pointwise = conv_is_pointwise(s);
    const size_t per_thread = conv_cols_per_thread(s, 0);
    const int chunks = conv_chunks(s);
    if (conv_use_direct(s)) {
        conv_forward_direct(out, inp, w, s, scratch, per_thread);
        return;
    }
    NN_WALK_FOR(j, nn_items_images(chunks, conv_chunk_images(s), s->n), conv_threads(s), 1)
    int b0, b1;
    conv_chunk_range(s, j, &b0, &b1);
    const int pc = (b1 - b0) * ohw;
    const float *b;
    int ldb;
    if (pointwise) {
        b = inp + (size_t)b0 * ohw; /* (K, P): the input itself */
        ldb = p;
    } else {
        float *cols = scratch + per_thread * (size_t)nn_thread_id();
        im2col(cols, inp, s, b0, b1);
        b = cols;
        ldb = pc;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, pc, k, 1.0f, w, k, b, ldb, 0.0f,
                out + (size_t)b0 * ohw, p);
    NN_WALK_END
}

/* Per chunk: dw_j (OC, K) = dout_j (OC, P_j) * cols_j^T (P_j, K), added into
 * dw in chunk order. dinp: for a pointwise conv w^T dout_j; for a stride-1
 * conv the transposed convolution above; otherwise dcols_j (K, P_j) =
 * w^T (K, OC) * dout_j (OC, P_j), then col2im. */
void conv_backward(float *restrict dinp, float *restrict dw, const float *restrict dout,
                   const float *restrict inp, const float *restrict w, const struct conv_shape *s,
                   float *restrict scratch, int accum)
{
    assert(s->groups == 1);
    const int k = s->ic * s->kh * s->kw;
    const int ohw = s->oh * s->ow, p = s->n * ohw;
    const int ihw = s->ih * s->iw, pin = s->n * ihw;
    const int pointwise = conv_is_pointwise(s);
    const int transposed = !pointwise && conv_transposed_ok(s);
    const size_t per_thread = conv_cols_per_thread(s, dinp != NULL);
    const int chunks = conv_chunks(s);
    const size_t wl = (size_t)s->oc * k;
    float *dwpart = scratch + per_thread * (size_t)conv_scratch_threads(s);
    float *wt = dwpart + (size_t)chunks * wl; /* w' (IC, OC*KH*KW) */
    struct conv_shape ts;
    const int kt = s->oc * s->kh * s->kw;
    int direct = 0; /* the input gradient by the direct kernel, after the chunks */
    const int dw_direct = conv_use_direct(s) && conv_direct_dw_ok(s);
    const enum conv_direct_isa isa = conv_impl_isa(conv_get_impl());
    if (transposed && dinp) {
        conv_transposed_shape(&ts, s);
        direct = conv_use_direct(&ts);
        const int khw = s->kh * s->kw;
        for (int o = 0; o < s->oc; o++)
            for (int i = 0; i < s->ic; i++)
                for (int t = 0; t < khw; t++)
                    wt[((size_t)i * s->oc + o) * khw + (khw - 1 - t)] =
                        w[((size_t)o * s->ic + i) * khw + t];
    }
    NN_WALK_FOR(j, nn_items_images(chunks, conv_chunk_images(s), s->n), conv_threads(s), 1)
    int b0, b1;
    conv_chunk_range(s, j, &b0, &b1);
    const int pc = (b1 - b0) * ohw;
    const float *dchunk = dout + (size_t)b0 * ohw;
    float *cols = scratch + per_thread * (size_t)nn_thread_id();
    const float *b;
    int ldb;
    if (dw_direct) {
        /* dw_j in the direct kernel's packed order, summed image by image */
        memset(dwpart + (size_t)j * wl, 0, wl * sizeof(float));
        for (int im = b0; im < b1; im++)
            conv_direct_dw_image(dwpart + (size_t)j * wl, dout, inp, s, im, cols, isa);
    } else {
        if (pointwise) {
            b = inp + (size_t)b0 * ohw;
            ldb = p;
        } else {
            im2col(cols, inp, s, b0, b1);
            b = cols;
            ldb = pc;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, k, pc, 1.0f, dchunk, p, b, ldb,
                    0.0f, dwpart + (size_t)j * wl, k);
    }
    if (!dinp || direct)
        continue;
    if (pointwise) {
        /* dinp (IC, P_j) = or += w^T dout_j directly; OpenBLAS stores (does
         * not scale) C when beta is 0, so stale contents never leak in. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, pc, s->oc, 1.0f, w, k, dchunk, p,
                    accum ? 1.0f : 0.0f, dinp + (size_t)b0 * ohw, p);
    } else if (transposed) {
        const int pic = (b1 - b0) * ihw;
        im2col(cols, dout, &ts, b0, b1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->ic, pic, kt, 1.0f, wt, kt, cols,
                    pic, accum ? 1.0f : 0.0f, dinp + (size_t)b0 * ihw, pin);
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, pc, s->oc, 1.0f, w, k, dchunk, p,
                    0.0f, cols, pc);
        col2im(dinp, cols, s, accum, b0, b1);
    }
    NN_WALK_END
    if (direct)
        conv_direct_run(dinp, dout, wt, &ts, scratch, per_thread, wt + wl, accum);
    /* dw += sum_j dw_j, in chunk order (parallel over the elements of dw). */
#pragma omp parallel for schedule(static) num_threads(conv_threads(s))
    for (size_t i = 0; i < wl; i++) {
        const size_t at = dw_direct ? conv_direct_packed_index(s, (int)(i / k), (int)(i % k)) : i;
        float acc = dw[i];
        for (int j = 0; j < chunks; j++)
            acc += dwpart[(size_t)j * wl + at];
        dw[i] = acc;
    }
}

/* ==== Oracles ============================================================= */

/* Direct definition of a grouped convolution (any groups dividing IC and
 * OC), summed in double. Slow; for tests only. */
void conv_forward_naive(float *out, const float *inp, const float *w, const struct conv_shape *s)
{
    const int icg = s->ic / s->groups, ocg = s->oc / s->groups;
    for (int o = 0; o < s->oc; o++) {
        const int g = o / ocg;
        for (int b = 0; b < s->n; b++) {
            for (int y = 0; y < s->oh; y++) {
                for (int x = 0; x < s->ow; x++) {
                    double acc = 0.0;
                    for (int j = 0; j < icg; j++) {
                        const int c = g * icg + j;
                        for (int ki = 0; ki < s->kh; ki++) {
                            const int iy = y * s->stride - s->pad + ki;
                            if (iy < 0 || iy >= s->ih)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                const int ix = x * s->stride - s->pad + kj;
                                if (ix < 0 || ix >= s->iw)
                                    continue;
                                acc +=
                                    (double)w[((size_t)(o * icg + j) * s->kh + ki) * s->kw + kj] *
                                    inp[(((size_t)c * s->n + b) * s->ih + iy) * s->iw + ix];
                            }
                        }
                    }
                    out[(((size_t)o * s->n + b) * s->oh + y) * s->ow + x] = (float)acc;
                }
            }
        }
    }
}

/* dw += sum dout * inp and dinp = or += sum w * dout, each element gathered
 * from its definition and summed in double. */
void conv_backward_naive(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const struct conv_shape *s, int accum)
{
    const int icg = s->ic / s->groups, ocg = s->oc / s->groups;
    for (int o = 0; o < s->oc; o++) {
        const int g = o / ocg;
        for (int j = 0; j < icg; j++) {
            const int c = g * icg + j;
            for (int ki = 0; ki < s->kh; ki++) {
                for (int kj = 0; kj < s->kw; kj++) {
                    double acc = 0.0;
                    for (int b = 0; b < s->n; b++) {
                        for (int y = 0; y < s->oh; y++) {
                            const int iy = y * s->stride - s->pad + ki;
                            if (iy < 0 || iy >= s->ih)
                                continue;
                            for (int x = 0; x < s->ow; x++) {
                                const int ix = x * s->stride - s->pad + kj;
                                if (ix < 0 || ix >= s->iw)
                                    continue;
                                acc +=
                                    (double)dout[(((size_t)o * s->n + b) * s->oh + y) * s->ow + x] *
                                    inp[(((size_t)c * s->n + b) * s->ih + iy) * s->iw + ix];
                            }
                        }
                    }
                    dw[((size_t)(o * icg + j) * s->kh + ki) * s->kw + kj] += (float)acc;
                }
            }
        }
    }
    if (!dinp)
        return;
    for (int c = 0; c < s->ic; c++) {
        const int g = c / icg, j = c - g * icg;
        for (int b = 0; b < s->n; b++) {
            for (int iy = 0; iy < s->ih; iy++) {
                for (int ix = 0; ix < s->iw; ix++) {
                    double acc = 0.0;
                    for (int ol = 0; ol < ocg; ol++) {
                        const int o = g * ocg + ol;
                        for (int ki = 0; ki < s->kh; ki++) {
                            const int ty = iy + s->pad - ki;
                            if (ty < 0 || ty % s->stride || ty / s->stride >= s->oh)
                                continue;
                            for (int kj = 0; kj < s->kw; kj++) {
                                const int tx = ix + s->pad - kj;
                                if (tx < 0 || tx % s->stride || tx / s->stride >= s->ow)
                                    continue;
                                acc +=
                                    (double)w[((size_t)(o * icg + j) * s->kh + ki) * s->kw + kj] *
                                    dout[(((size_t)o * s->n + b) * s->oh + ty / s->stride) * s->ow +
                                         tx / s->stride];
                            }
                        }
                    }
                    float *d = &dinp[(((size_t)c * s->n + b) * s->ih + iy) * s->iw + ix];
                    *d = accum ? *d + (float)acc : (float)acc;
                }
            }
        }
    }
}
