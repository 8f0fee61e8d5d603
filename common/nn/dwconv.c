/* dwconv.c - the depthwise convolution (groups == C) of layers.h: direct
 * loops over each (channel, image) plane, run in parallel over the planes
 * (output, input gradient) and over the channels (weight gradient). The
 * oracle it is tested against, conv_*_naive, is in conv.c.
 *
 * Two plane kernels. The general one (any stride, padding and kernel) adds
 * each tap over its output rectangle [ylo, yhi) x [xlo, xhi), row by row.
 * The "same" one serves stride 1 with OH == IH and OW == IW (the 3x3, pad 1
 * layers of the mobilenets): there output (y, x) reads input
 * (y + ki - pad, x + kj - pad), which is the output's linear index plus one
 * constant shift per tap. A tap is then one vector loop over the plane, from
 * its first valid output to its last; the positions of that span whose
 * column lies outside [xlo, xhi) (where the shift wrapped around a row end)
 * keep their value through a select on a per-column mask. A select, not an
 * added zero, so both kernels give bit-identical outputs and input
 * gradients: every element sums its taps in (ki, kj) order, starting at 0.
 *
 * The *_act twins read the input through an activation view (layers.h):
 * each plane's values are computed into a buffer on the stack just before
 * the plane kernel reads them, so the activation tensor is never stored.
 *
 * Determinism: outputs and input gradients are computed plane by plane in
 * tap order. The weight gradient of a channel is summed over its planes in
 * image order into one double per tap; within a plane, the "same" kernel
 * sums fixed blocks of DW_DOT_BLK positions in four float lanes, the general
 * kernel rows in four float lanes. Nothing depends on the thread count, and
 * the lanes are the v4f of vec.h on every CPU, so nothing depends on the
 * machine's vector width either.
 */
#include "nn/layers.h"
#include "nn/conv_int.h"
#include "nn/threads.h"
#include "nn/vec.h"

#include <string.h>

/* ==== The "same" kernel's spans and masks ================================== */

#define DW_KMAX 7         /* widest kernel the "same" kernel takes */
#define DW_PLANE_MAX 1024 /* largest plane (OH*OW) it takes: 32x32 */
#define DW_DOT_BLK 64     /* positions per float partial sum of the weight gradient */
#define DW_TAPS 64        /* taps whose weight gradients are summed together */

/* mask[kj][i] is all ones when output position i (linear in the plane) has
 * its column inside tap column kj's valid range, else 0. */
struct dw_masks {
    int32_t m[DW_KMAX][DW_PLANE_MAX];
};

static int dw_is_same(const struct conv_shape *s)
{
    return s->stride == 1 && s->oh == s->ih && s->ow == s->iw && s->kw <= DW_KMAX &&
           (size_t)s->oh * s->ow <= DW_PLANE_MAX;
}

static void dw_masks_init(struct dw_masks *mk, const struct conv_shape *s)
{
    const int ohw = s->oh * s->ow;
    for (int kj = 0; kj < s->kw; kj++) {
        int xlo, xhi;
        conv_range(s->ow, s->iw, kj, 1, s->pad, &xlo, &xhi);
        for (int i = 0; i < ohw; i++) {
            const int x = i % s->ow;
            mk->m[kj][i] = x >= xlo && x < xhi ? -1 : 0;
        }
    }
}

/* Tap (ki, kj) of a "same" plane covers output positions [*a, *e) (linear)
 * and reads input position i + *shift for output i. Returns 0 when the tap
 * only ever sees padding. Every input position i + shift, i in [a, e), lies
 * inside the plane, masked or not. */
static int dw_span(const struct conv_shape *s, int ki, int kj, int *a, int *e, int *shift)
{
    int ylo, yhi, xlo, xhi;
    conv_range(s->oh, s->ih, ki, 1, s->pad, &ylo, &yhi);
    conv_range(s->ow, s->iw, kj, 1, s->pad, &xlo, &xhi);
    if (ylo == yhi || xlo == xhi)
        return 0;
    *a = ylo * s->ow + xlo;
    *e = (yhi - 1) * s->ow + xhi;
    *shift = (ki - s->pad) * s->iw + (kj - s->pad);
    return 1;
}

static inline v4i v4i_load(const int32_t *p)
{
    v4i v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Lane-wise m ? yes : no, for m all ones or all zeros. */
static inline v4f v4f_select(v4i m, v4f yes, v4f no)
{
    return (v4f)(((v4i)yes & m) | ((v4i)no & ~m));
}

/* d[i] = m[i] ? d[i] + w * x[i] : d[i], i < n */
static inline void masked_axpy(float *restrict d, float w, const float *restrict x,
                               const int32_t *restrict m, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const v4f dv = v4f_load(d + i);
        v4f_store(d + i, v4f_select(v4i_load(m + i), dv + w * v4f_load(x + i), dv));
    }
    for (; i < n; i++)
        if (m[i])
            d[i] += w * x[i];
}

/* sum of a[i] * b[i] over i < n with m[i] set: blocks of DW_DOT_BLK
 * positions, each summed in four float lanes (tail in lane 0) reduced as
 * (l0 + l1) + (l2 + l3), the blocks added in order into a double. */
static double masked_dot(const float *restrict a, const float *restrict b,
                         const int32_t *restrict m, size_t n)
{
    const v4f zero = {0.0f, 0.0f, 0.0f, 0.0f};
    double acc = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += DW_DOT_BLK) {
        const size_t e = n - i0 < DW_DOT_BLK ? n : i0 + DW_DOT_BLK;
        v4f l = zero;
        size_t i = i0;
        for (; i + 4 <= e; i += 4)
            l += v4f_select(v4i_load(m + i), v4f_load(a + i) * v4f_load(b + i), zero);
        for (; i < e; i++)
            if (m[i])
                l[0] += a[i] * b[i];
        acc += (double)((l[0] + l[1]) + (l[2] + l[3]));
    }
    return acc;
}

/* ==== Plane kernels ======================================================== */

/* Tap t = ki*KW + kj of the general kernel: its output rectangle
 * [ylo, yhi) x [xlo, xlo + nx) and the offset in0 of its first input
 * element (both coordinates in range). Returns 0 when the tap only ever
 * sees padding. */
struct dw_rect {
    int ylo, yhi, xlo, nx;
    size_t in0;
};

static int dw_rect_of(const struct conv_shape *s, int t, struct dw_rect *r)
{
    const int ki = t / s->kw, kj = t % s->kw;
    int xhi;
    conv_range(s->oh, s->ih, ki, s->stride, s->pad, &r->ylo, &r->yhi);
    conv_range(s->ow, s->iw, kj, s->stride, s->pad, &r->xlo, &xhi);
    r->nx = xhi - r->xlo;
    if (r->nx <= 0 || r->ylo >= r->yhi)
        return 0;
    r->in0 = (size_t)(r->ylo * s->stride - s->pad + ki) * s->iw +
             (size_t)(r->xlo * s->stride - s->pad + kj);
    return 1;
}

/* o (OH, OW) = the taps wc (KH, KW) over in (IH, IW), general kernel. */
static void dw_plane_forward(float *restrict o, const float *restrict in, const float *restrict wc,
                             const struct conv_shape *s)
{
    const int iw = s->iw, ow = s->ow, st = s->stride;
    memset(o, 0, (size_t)s->oh * ow * sizeof(float));
    for (int t = 0; t < s->kh * s->kw; t++) {
        struct dw_rect r;
        if (!dw_rect_of(s, t, &r))
            continue;
        for (int y = r.ylo; y < r.yhi; y++) {
            const float *irow = in + r.in0 + (size_t)(y - r.ylo) * st * iw;
            float *od = o + (size_t)y * ow + r.xlo;
            if (st == 1) {
                vec_axpy(od, wc[t], irow, (size_t)r.nx);
            } else {
                for (int i = 0; i < r.nx; i++)
                    od[i] += wc[t] * irow[i * st];
            }
        }
    }
}

/* The same for a "same" plane, one masked span per tap. */
static void dw_plane_forward_same(float *restrict o, const float *restrict in,
                                  const float *restrict wc, const struct conv_shape *s,
                                  const struct dw_masks *mk)
{
    memset(o, 0, (size_t)s->oh * s->ow * sizeof(float));
    for (int ki = 0; ki < s->kh; ki++)
        for (int kj = 0; kj < s->kw; kj++) {
            int a, e, shift;
            if (dw_span(s, ki, kj, &a, &e, &shift))
                masked_axpy(o + a, wc[ki * s->kw + kj], in + a + shift, mk->m[kj] + a,
                            (size_t)(e - a));
        }
}

/* din (IH, IW) = or += the scatter of wc * g (OH, OW), taps in (ki, kj)
 * order, general kernel. */
static void dw_plane_backward(float *restrict din, const float *restrict g,
                              const float *restrict wc, const struct conv_shape *s, int accum)
{
    const int iw = s->iw, ow = s->ow, st = s->stride;
    if (!accum)
        memset(din, 0, (size_t)s->ih * iw * sizeof(float));
    for (int t = 0; t < s->kh * s->kw; t++) {
        struct dw_rect r;
        if (!dw_rect_of(s, t, &r))
            continue;
        for (int y = r.ylo; y < r.yhi; y++) {
            float *drow = din + r.in0 + (size_t)(y - r.ylo) * st * iw;
            const float *gs = g + (size_t)y * ow + r.xlo;
            if (st == 1) {
                vec_axpy(drow, wc[t], gs, (size_t)r.nx);
            } else {
                for (int i = 0; i < r.nx; i++)
                    drow[i * st] += wc[t] * gs[i];
            }
        }
    }
}

static void dw_plane_backward_same(float *restrict din, const float *restrict g,
                                   const float *restrict wc, const struct conv_shape *s,
                                   const struct dw_masks *mk, int accum)
{
    if (!accum)
        memset(din, 0, (size_t)s->ih * s->iw * sizeof(float));
    for (int ki = 0; ki < s->kh; ki++)
        for (int kj = 0; kj < s->kw; kj++) {
            int a, e, shift;
            if (dw_span(s, ki, kj, &a, &e, &shift))
                masked_axpy(din + a + shift, wc[ki * s->kw + kj], g + a, mk->m[kj] + a,
                            (size_t)(e - a));
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

/* acc[t - t0] += the weight gradient of taps t in [t0, t1) (t = ki*KW + kj)
 * from one plane: g (OH, OW) against in (IH, IW), one row partial sum at a
 * time, general kernel. */
static void dw_plane_wgrad(double *acc, const float *restrict g, const float *restrict in,
                           const struct conv_shape *s, int t0, int t1)
{
    const int iw = s->iw, ow = s->ow, st = s->stride;
    for (int t = t0; t < t1; t++) {
        struct dw_rect r;
        if (!dw_rect_of(s, t, &r))
            continue;
        double sum = 0.0;
        for (int y = r.ylo; y < r.yhi; y++)
            sum += dot_strided(g + (size_t)y * ow + r.xlo,
                               in + r.in0 + (size_t)(y - r.ylo) * st * iw, r.nx, st);
        acc[t - t0] += sum;
    }
}

static void dw_plane_wgrad_same(double *acc, const float *restrict g, const float *restrict in,
                                const struct conv_shape *s, const struct dw_masks *mk, int t0,
                                int t1)
{
    for (int t = t0; t < t1; t++) {
        const int kj = t % s->kw;
        int a, e, shift;
        if (dw_span(s, t / s->kw, kj, &a, &e, &shift))
            acc[t - t0] += masked_dot(g + a, in + a + shift, mk->m[kj] + a, (size_t)(e - a));
    }
}

/* ==== Layer ================================================================ */

/* The input plane p (IH, IW): inp's, or the view's values written into buf
 * (DW_PLANE_MAX floats). */
static const float *dw_input_plane(const float *inp, const struct act_view *av, size_t p,
                                   size_t ihw, float *buf)
{
    if (!av)
        return inp + p * ihw;
    act_view_fill(buf, av, p * ihw, ihw);
    return buf;
}

/* out (C, N, OH, OW) from the input (C, N, IH, IW), inp or av, and
 * w (C, 1, KH, KW), in parallel over the C*N planes. */
static void dw_forward(float *restrict out, const float *inp, const struct act_view *av,
                       const float *restrict w, const struct conv_shape *s)
{
    const int n = s->n, planes = s->ic * n, same = dw_is_same(s);
    const size_t ihw = (size_t)s->ih * s->iw, ohw = (size_t)s->oh * s->ow;
    struct dw_masks mk;
    if (same)
        dw_masks_init(&mk, s);
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (planes > 1)
    for (int p = 0; p < planes; p++) {
        float buf[DW_PLANE_MAX];
        const float *wc = w + (size_t)(p / n) * s->kh * s->kw;
        const float *in = dw_input_plane(inp, av, (size_t)p, ihw, buf);
        if (same)
            dw_plane_forward_same(out + (size_t)p * ohw, in, wc, s, &mk);
        else
            dw_plane_forward(out + (size_t)p * ohw, in, wc, s);
    }
}

/* dw (C, 1, KH, KW) += sum over (n, y, x) of dout * input, in parallel over
 * the channels, one double per tap fed in image order; dinp (C, N, IH, IW)
 * = or += the scatter of w * dout, in parallel over the planes. */
static void dw_backward(float *restrict dinp, float *restrict dw, const float *restrict dout,
                        const float *inp, const struct act_view *av, const float *restrict w,
                        const struct conv_shape *s, int accum)
{
    const int n = s->n, khw = s->kh * s->kw, same = dw_is_same(s);
    const size_t ihw = (size_t)s->ih * s->iw, ohw = (size_t)s->oh * s->ow;
    struct dw_masks mk;
    if (same)
        dw_masks_init(&mk, s);
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (s->ic > 1)
    for (int c = 0; c < s->ic; c++) {
        /* taps in groups of DW_TAPS, each group over all the channel's planes */
        double acc[DW_TAPS];
        float buf[DW_PLANE_MAX];
        for (int t0 = 0; t0 < khw; t0 += DW_TAPS) {
            const int t1 = khw - t0 < DW_TAPS ? khw : t0 + DW_TAPS;
            memset(acc, 0, sizeof acc);
            for (int b = 0; b < n; b++) {
                const size_t p = (size_t)c * n + b;
                const float *in = dw_input_plane(inp, av, p, ihw, buf);
                if (same)
                    dw_plane_wgrad_same(acc, dout + p * ohw, in, s, &mk, t0, t1);
                else
                    dw_plane_wgrad(acc, dout + p * ohw, in, s, t0, t1);
            }
            for (int t = t0; t < t1; t++)
                dw[(size_t)c * khw + t] += (float)acc[t - t0];
        }
    }
    if (!dinp)
        return;
    const int planes = s->ic * n;
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (planes > 1)
    for (int p = 0; p < planes; p++) {
        const float *wc = w + (size_t)(p / n) * khw;
        if (same)
            dw_plane_backward_same(dinp + (size_t)p * ihw, dout + (size_t)p * ohw, wc, s, &mk,
                                   accum);
        else
            dw_plane_backward(dinp + (size_t)p * ihw, dout + (size_t)p * ohw, wc, s, accum);
    }
}

void dwconv_forward(float *restrict out, const float *restrict inp, const float *restrict w,
                    const struct conv_shape *s)
{
    dw_forward(out, inp, NULL, w, s);
}

void dwconv_backward(float *restrict dinp, float *restrict dw, const float *restrict dout,
                     const float *restrict inp, const float *restrict w, const struct conv_shape *s,
                     int accum)
{
    dw_backward(dinp, dw, dout, inp, NULL, w, s, accum);
}

int dwconv_act_ok(const struct conv_shape *s)
{
    return (size_t)s->ih * s->iw <= DW_PLANE_MAX;
}

void dwconv_forward_act(float *out, const struct act_view *in, const float *w,
                        const struct conv_shape *s)
{
    dw_forward(out, NULL, in, w, s);
}

void dwconv_backward_act(float *dinp, float *dw, const float *dout, const struct act_view *in,
                         const float *w, const struct conv_shape *s, int accum)
{
    dw_backward(dinp, dw, dout, NULL, in, w, s, accum);
}
