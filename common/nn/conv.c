/* conv.c - convolutions of layers.h: dense convolution as im2col over the
 * whole batch plus one cblas_sgemm, depthwise convolution as direct loops,
 * and the plain-loop oracles that the tests hold both against.
 *
 * Layout reminder (layers.h): activations are CNHW, so one input channel of
 * the batch is a slab of N planes of (IH, IW), and the GEMM's output matrix
 * (OC, N*OH*OW) is already the CNHW output tensor.
 *
 * Padding is handled by ranges: for kernel offset k, the output positions
 * whose input position o*stride - pad + k falls inside the image form one
 * interval [lo, hi) (conv_range), so the inner loops run over contiguous
 * output rows without a bounds test per element.
 *
 * Every kernel here is deterministic: each output element is summed in one
 * fixed order, and the GEMMs are OpenBLAS's, which is deterministic for a
 * fixed thread count.
 */
#include "nn/layers.h"
#include "nn/vec.h"
#include "util/err.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
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
    return 0;
}

/* A 1x1, stride-1, pad-0 dense conv is a plain GEMM on the input itself. */
static int conv_is_pointwise(const struct conv_shape *s)
{
    return s->groups == 1 && s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

size_t conv_scratch_floats(const struct conv_shape *s)
{
    if (s->groups != 1 || conv_is_pointwise(s))
        return 0;
    return (size_t)s->ic * s->kh * s->kw * ((size_t)s->n * s->oh * s->ow);
}

/* Output positions o in [0, on) whose input position o*stride - pad + k lies
 * in [0, in) form the interval [*lo, *hi) (empty when *lo == *hi). */
static inline void conv_range(int on, int in, int k, int stride, int pad, int *lo, int *hi)
{
    int a = pad - k; /* o*stride >= a */
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int b = in - 1 + pad - k; /* o*stride <= b */
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > on)
        h = on;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* ==== im2col / col2im ===================================================== */

/* cols (IC*KH*KW, N*OH*OW) from inp (IC, N, IH, IW): row (c, ki, kj), column
 * (n, oy, ox) holds inp[c, n, oy*stride - pad + ki, ox*stride - pad + kj], or 0
 * in the padding. Loops run channel, image, tap, so one input plane stays in
 * L1 while its KH*KW segments of OH*OW are written, each sequentially. */
static void im2col(float *restrict cols, const float *restrict inp, const struct conv_shape *s)
{
    const int n = s->n, ih = s->ih, iw = s->iw, oh = s->oh, ow = s->ow;
    const int kh = s->kh, kw = s->kw, st = s->stride, pad = s->pad;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow, p = (size_t)n * ohw;

    for (int c = 0; c < s->ic; c++) {
        for (int b = 0; b < n; b++) {
            const float *plane = inp + ((size_t)c * n + b) * ihw;
            for (int ki = 0; ki < kh; ki++) {
                int ylo, yhi;
                conv_range(oh, ih, ki, st, pad, &ylo, &yhi);
                for (int kj = 0; kj < kw; kj++) {
                    int xlo, xhi;
                    conv_range(ow, iw, kj, st, pad, &xlo, &xhi);
                    float *dst = cols + ((size_t)(c * kh + ki) * kw + kj) * p + b * ohw;
                    if (xlo == xhi || ylo == yhi) { /* the tap only ever sees padding */
                        memset(dst, 0, ohw * sizeof(float));
                        continue;
                    }
                    memset(dst, 0, (size_t)ylo * ow * sizeof(float));
                    memset(dst + (size_t)yhi * ow, 0, (size_t)(oh - yhi) * ow * sizeof(float));
                    /* first input row and column of the tap, both in range */
                    const float *src =
                        plane + (size_t)(ylo * st - pad + ki) * iw + (xlo * st - pad + kj);
                    for (int y = ylo; y < yhi; y++) {
                        const float *sy = src + (size_t)(y - ylo) * st * iw;
                        float *d = dst + (size_t)y * ow;
                        for (int x = 0; x < xlo; x++)
                            d[x] = 0.0f;
                        if (st == 1) {
                            memcpy(d + xlo, sy, (size_t)(xhi - xlo) * sizeof(float));
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
                   int accum)
{
    const int n = s->n, ih = s->ih, iw = s->iw, oh = s->oh, ow = s->ow;
    const int kh = s->kh, kw = s->kw, st = s->stride, pad = s->pad;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow, p = (size_t)n * ohw;

    for (int c = 0; c < s->ic; c++) {
        for (int b = 0; b < n; b++) {
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
                    const float *src = cols + ((size_t)(c * kh + ki) * kw + kj) * p + b * ohw;
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

/* out (OC, N*OH*OW) = w (OC, K) * cols (K, N*OH*OW), K = IC*KH*KW. */
void conv_forward(float *restrict out, const float *restrict inp, const float *restrict w,
                  const struct conv_shape *s, float *restrict cols)
{
    assert(s->groups == 1);
    const int k = s->ic * s->kh * s->kw;
    const int p = s->n * s->oh * s->ow;
    const float *b = inp; /* (K, P): the input itself for a pointwise conv */
    if (!conv_is_pointwise(s)) {
        im2col(cols, inp, s);
        b = cols;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, p, k, 1.0f, w, k, b, p, 0.0f, out,
                p);
}

/* dw (OC, K) += dout (OC, P) * cols^T (P, K);
 * dcols (K, P) = w^T (K, OC) * dout (OC, P), then col2im into dinp.
 * cols first holds im2col(inp) for dw, then is overwritten by dcols. */
void conv_backward(float *restrict dinp, float *restrict dw, const float *restrict dout,
                   const float *restrict inp, const float *restrict w, const struct conv_shape *s,
                   float *restrict cols, int accum)
{
    assert(s->groups == 1);
    const int k = s->ic * s->kh * s->kw;
    const int p = s->n * s->oh * s->ow;
    const int pointwise = conv_is_pointwise(s);
    const float *b = inp;
    if (!pointwise) {
        im2col(cols, inp, s);
        b = cols;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, k, p, 1.0f, dout, p, b, p, 1.0f, dw,
                k);
    if (!dinp)
        return;
    if (pointwise) {
        /* dinp (IC, P) = or += w^T dout directly; OpenBLAS stores (does not
         * scale) C when beta is 0, so stale contents never leak in. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, s->oc, 1.0f, w, k, dout, p,
                    accum ? 1.0f : 0.0f, dinp, p);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, s->oc, 1.0f, w, k, dout, p, 0.0f,
                cols, p);
    col2im(dinp, cols, s, accum);
}

/* ==== Depthwise convolution =============================================== */

/* out (C, N, OH, OW) from inp (C, N, IH, IW) and w (C, 1, KH, KW). Per plane:
 * zero the output, then for each tap add w * (input rows, strided) over the
 * tap's output rectangle [ylo, yhi) x [xlo, xhi). Every output element thus
 * sums its taps in (ki, kj) order. */
void dwconv_forward(float *restrict out, const float *restrict inp, const float *restrict w,
                    const struct conv_shape *s)
{
    const int n = s->n, ih = s->ih, iw = s->iw, oh = s->oh, ow = s->ow;
    const int kh = s->kh, kw = s->kw, st = s->stride, pad = s->pad;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow;

    for (int c = 0; c < s->ic; c++) {
        const float *wc = w + (size_t)c * kh * kw;
        for (int b = 0; b < n; b++) {
            const float *in = inp + ((size_t)c * n + b) * ihw;
            float *o = out + ((size_t)c * n + b) * ohw;
            memset(o, 0, ohw * sizeof(float));
            for (int ki = 0; ki < kh; ki++) {
                int ylo, yhi;
                conv_range(oh, ih, ki, st, pad, &ylo, &yhi);
                for (int kj = 0; kj < kw; kj++) {
                    int xlo, xhi;
                    conv_range(ow, iw, kj, st, pad, &xlo, &xhi);
                    if (xlo == xhi || ylo == yhi)
                        continue;
                    const float wv = wc[ki * kw + kj];
                    /* first input row and column of the tap, both in range */
                    const float *i0 =
                        in + (size_t)(ylo * st - pad + ki) * iw + (xlo * st - pad + kj);
                    const int nx = xhi - xlo;
                    for (int y = ylo; y < yhi; y++) {
                        const float *irow = i0 + (size_t)(y - ylo) * st * iw;
                        float *od = o + (size_t)y * ow + xlo;
                        if (st == 1) {
                            vec_axpy(od, wv, irow, (size_t)nx);
                        } else {
                            for (int i = 0; i < nx; i++)
                                od[i] += wv * irow[i * st];
                        }
                    }
                }
            }
        }
    }
}

/* sum a[i] * b[i*stride], i < len, in four fixed float lanes. */
static inline float dot_strided(const float *restrict a, const float *restrict b, int len,
                                int stride)
{
    if (stride == 1)
        return vec_dot(a, b, (size_t)len);
    float l0 = 0.0f, l1 = 0.0f, l2 = 0.0f, l3 = 0.0f;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
        l0 += a[i] * b[(size_t)i * stride];
        l1 += a[i + 1] * b[(size_t)(i + 1) * stride];
        l2 += a[i + 2] * b[(size_t)(i + 2) * stride];
        l3 += a[i + 3] * b[(size_t)(i + 3) * stride];
    }
    for (; i < len; i++)
        l0 += a[i] * b[(size_t)i * stride];
    return (l0 + l1) + (l2 + l3);
}

/* dw (C, 1, KH, KW) += sum over (n, y, x) of dout * inp: one double
 * accumulator per tap, fed with per-row float partial sums;
 * dinp (C, N, IH, IW) = or += the scatter of w * dout, taps in (ki, kj) order. */
void dwconv_backward(float *restrict dinp, float *restrict dw, const float *restrict dout,
                     const float *restrict inp, const float *restrict w, const struct conv_shape *s,
                     int accum)
{
    const int n = s->n, ih = s->ih, iw = s->iw, oh = s->oh, ow = s->ow;
    const int kh = s->kh, kw = s->kw, st = s->stride, pad = s->pad;
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)oh * ow;

    for (int c = 0; c < s->ic; c++) {
        for (int ki = 0; ki < kh; ki++) {
            int ylo, yhi;
            conv_range(oh, ih, ki, st, pad, &ylo, &yhi);
            for (int kj = 0; kj < kw; kj++) {
                int xlo, xhi;
                conv_range(ow, iw, kj, st, pad, &xlo, &xhi);
                double acc = 0.0;
                if (xlo < xhi && ylo < yhi) {
                    const size_t in0 = (size_t)(ylo * st - pad + ki) * iw + (xlo * st - pad + kj);
                    for (int b = 0; b < n; b++) {
                        const float *i0 = inp + ((size_t)c * n + b) * ihw + in0;
                        const float *g = dout + ((size_t)c * n + b) * ohw + xlo;
                        for (int y = ylo; y < yhi; y++)
                            acc += dot_strided(g + (size_t)y * ow, i0 + (size_t)(y - ylo) * st * iw,
                                               xhi - xlo, st);
                    }
                }
                dw[((size_t)c * kh + ki) * kw + kj] += (float)acc;
            }
        }
    }
    if (!dinp)
        return;
    for (int c = 0; c < s->ic; c++) {
        const float *wc = w + (size_t)c * kh * kw;
        for (int b = 0; b < n; b++) {
            float *din = dinp + ((size_t)c * n + b) * ihw;
            const float *g = dout + ((size_t)c * n + b) * ohw;
            if (!accum)
                memset(din, 0, ihw * sizeof(float));
            for (int ki = 0; ki < kh; ki++) {
                int ylo, yhi;
                conv_range(oh, ih, ki, st, pad, &ylo, &yhi);
                for (int kj = 0; kj < kw; kj++) {
                    int xlo, xhi;
                    conv_range(ow, iw, kj, st, pad, &xlo, &xhi);
                    if (xlo == xhi || ylo == yhi)
                        continue;
                    const float wv = wc[ki * kw + kj];
                    float *d0 = din + (size_t)(ylo * st - pad + ki) * iw + (xlo * st - pad + kj);
                    const int nx = xhi - xlo;
                    for (int y = ylo; y < yhi; y++) {
                        float *drow = d0 + (size_t)(y - ylo) * st * iw;
                        const float *gs = g + (size_t)y * ow + xlo;
                        if (st == 1) {
                            vec_axpy(drow, wv, gs, (size_t)nx);
                        } else {
                            for (int i = 0; i < nx; i++)
                                drow[i * st] += wv * gs[i];
                        }
                    }
                }
            }
        }
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
