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
 * On CPUs with AVX-512F (and the element-wise ISA level at avx512, quant.h's
 * pact_get_isa) the "same" forward and input gradient run another kernel
 * of the same numerics: 16 positions of a plane in one register, every tap
 * added to it in (ki, kj) order under a per-tap bit mask of the positions
 * where the tap is valid (struct dw_plan), the input gradient gathered
 * (each input position sums the taps that reach it, in tap order) instead
 * of scattered. Each element sees the same IEEE multiplies and adds in the
 * same order as in the four-lane kernel, so the bits are the same.
 *
 * The *_act twins read the input through an activation view (layers.h):
 * each plane's values are computed into a buffer on the stack just before
 * the plane kernel reads them, so the activation tensor is never stored.
 *
 * Determinism: outputs and input gradients are computed plane by plane in
 * tap order. The weight gradient of a channel is summed over its planes in
 * image order into one double per tap. Within a plane, the general kernel
 * sums rows in four float lanes; the "same" kernel sums blocks of
 * DW_DOT_BLK positions from the plane's start in sixteen float lanes (lane
 * l takes the block's valid positions p with p % 16 == l, in order),
 * reduced as lane l + lane l+8, then + lane l+4, then (0 + 1) + (2 + 3),
 * each block added in order into a double. The portable code keeps the
 * sixteen lanes as four four-lane vectors, the AVX-512 code as one
 * register: the same operations in the same order. Nothing depends on the
 * thread count or on the machine's vector width.
 */
#include "nn/layers.h"
#include "nn/conv_int.h"
#include "nn/conv_tile.h"
#include "nn/quant.h"
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
    return s->stride == 1 && s->oh == s->ih && s->ow == s->iw && s->kh <= DW_KMAX &&
           s->kw <= DW_KMAX && (size_t)s->oh * s->ow <= DW_PLANE_MAX;
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

/* The 16-lane "same" kernel's view of a layer: per tap t = ki*KW + kj its
 * input shift and, per block of 16 positions, bit masks of where it is
 * valid: fm by output position (i in the tap's span, column in range), bm
 * by input position j (the output j - shift is one of fm's). */
#define DW_BLK 16
#define DW_NBLK (DW_PLANE_MAX / DW_BLK)
struct dw_plan {
    int ntaps, nblk, ohw;
    int pad; /* margin of the portable weight gradient's input copy: max |shift| + 16 */
    int shift[DW_KMAX * DW_KMAX];
    uint16_t fm[DW_KMAX * DW_KMAX][DW_NBLK], bm[DW_KMAX * DW_KMAX][DW_NBLK];
};

static int dw_use_wide(const struct conv_shape *s)
{
#if CD_HAVE_AVX512
    return dw_is_same(s) && pact_get_isa() == PACT_ISA_AVX512;
#else
    (void)s;
    return 0;
#endif
}

static void dw_plan_init(struct dw_plan *pl, const struct conv_shape *s, const struct dw_masks *mk)
{
    const int ohw = s->oh * s->ow;
    memset(pl, 0, sizeof *pl);
    pl->ntaps = s->kh * s->kw;
    pl->nblk = (ohw + DW_BLK - 1) / DW_BLK;
    pl->ohw = ohw;
    for (int t = 0; t < pl->ntaps; t++) {
        const int kj = t % s->kw;
        int a, e, shift;
        if (!dw_span(s, t / s->kw, kj, &a, &e, &shift))
            continue;
        pl->shift[t] = shift;
        const int m = (shift < 0 ? -shift : shift) + DW_BLK;
        pl->pad = m > pl->pad ? m : pl->pad;
        for (int i = a; i < e; i++)
            if (mk->m[kj][i]) {
                pl->fm[t][i / DW_BLK] |= (uint16_t)(1u << (i % DW_BLK));
                const int j = i + shift; /* inside the plane (dw_span) */
                pl->bm[t][j / DW_BLK] |= (uint16_t)(1u << (j % DW_BLK));
            }
    }
}

#if CD_HAVE_AVX512
/* o (OH, OW) = the taps wc over in, 16 positions at a time. A masked-off
 * lane loads nothing (no fault), so reads before or past the plane at the
 * shifted positions are never made. */
CD_AVX512 static void dw_plane_forward_wide(float *restrict o, const float *restrict in,
                                            const float *restrict wc, const struct dw_plan *pl)
{
    for (int b = 0; b < pl->nblk; b++) {
        const ptrdiff_t i0 = (ptrdiff_t)b * DW_BLK;
        __m512 acc = _mm512_setzero_ps();
        for (int t = 0; t < pl->ntaps; t++) {
            const __mmask16 k = pl->fm[t][b];
            if (!k)
                continue;
            const __m512 x = _mm512_maskz_loadu_ps(k, in + i0 + pl->shift[t]);
            acc = _mm512_mask_add_ps(acc, k, acc, _mm512_mul_ps(_mm512_set1_ps(wc[t]), x));
        }
        const int left = pl->ohw - (int)i0;
        _mm512_mask_storeu_ps(o + i0, left >= DW_BLK ? 0xffff : (__mmask16)((1u << left) - 1), acc);
    }
}

/* din (IH, IW) = or += the taps' contributions of g (OH, OW), gathered:
 * input position j sums wc[t] * g[j - shift_t] over the taps t valid
 * there, in tap order, as the scatter adds them. */
CD_AVX512 static void dw_plane_backward_wide(float *restrict din, const float *restrict g,
                                             const float *restrict wc, const struct dw_plan *pl,
                                             int accum)
{
    for (int b = 0; b < pl->nblk; b++) {
        const ptrdiff_t j0 = (ptrdiff_t)b * DW_BLK;
        const int left = pl->ohw - (int)j0;
        const __mmask16 tail = left >= DW_BLK ? 0xffff : (__mmask16)((1u << left) - 1);
        __m512 acc = accum ? _mm512_maskz_loadu_ps(tail, din + j0) : _mm512_setzero_ps();
        for (int t = 0; t < pl->ntaps; t++) {
            const __mmask16 k = pl->bm[t][b];
            if (!k)
                continue;
            const __m512 x = _mm512_maskz_loadu_ps(k, g + j0 - pl->shift[t]);
            acc = _mm512_mask_add_ps(acc, k, acc, _mm512_mul_ps(_mm512_set1_ps(wc[t]), x));
        }
        _mm512_mask_storeu_ps(din + j0, tail, acc);
    }
}
#endif

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

/* The sixteen lanes of one block reduced (see Determinism): l + l+8, then
 * + l+4, then (0 + 1) + (2 + 3). q[0..3] hold lanes 0-3, 4-7, 8-11, 12-15. */
static inline float dw_lanes_sum(const v4f q[4])
{
    const v4f u = (q[0] + q[2]) + (q[1] + q[3]);
    return (u[0] + u[1]) + (u[2] + u[3]);
}

/* Lane masks of a four-bit group: all ones where the bit is set. */
#define DW_NIB(n)                                                                                  \
    {                                                                                              \
        -((n)&1), -((n) >> 1 & 1), -((n) >> 2 & 1), -((n) >> 3 & 1)                                \
    }
static const v4i dw_nib[16] = {
    DW_NIB(0), DW_NIB(1), DW_NIB(2),  DW_NIB(3),  DW_NIB(4),  DW_NIB(5),  DW_NIB(6),  DW_NIB(7),
    DW_NIB(8), DW_NIB(9), DW_NIB(10), DW_NIB(11), DW_NIB(12), DW_NIB(13), DW_NIB(14), DW_NIB(15)};

/* acc[t - t0] += the weight gradient of taps t in [t0, t1) from one "same"
 * plane: g (OH, OW) against in (IH, IW), blocks of DW_DOT_BLK positions in
 * sixteen lanes under the taps' masks. A four-lane group whose reads all
 * lie in the plane runs as vectors (a select keeps the invalid lanes); one
 * at the plane's edges, lane by lane (only valid positions are read). */
/* The portable weight gradient reads g and the input from copies with
 * zeroed margins (pl->pad floats before and after the input), so that
 * every four-lane group can be loaded whole and the invalid lanes dropped
 * by a select, without branches. The largest shift of a "same" plane of
 * at most DW_PLANE_MAX positions is (KH/2)*IW + KW/2 <= 3*1024 + 3, and a
 * block reads up to 16 past it: DW_WPAD bounds the margin. */
#define DW_WPAD (3 * DW_PLANE_MAX + 32)

/* acc[t - t0] += the weight gradient of taps t in [t0, t1) from one "same"
 * plane: g (OH, OW) against in (IH, IW), blocks of DW_DOT_BLK positions in
 * sixteen lanes under the taps' masks (see Determinism). gb and xb are
 * scratch: DW_PLANE_MAX + 16 and DW_PLANE_MAX + 2 * DW_WPAD floats. */
static void dw_plane_wgrad_same(double *acc, const float *restrict g, const float *restrict in,
                                const struct dw_plan *pl, int t0, int t1, float *restrict gb,
                                float *restrict xb)
{
    const int per = DW_DOT_BLK / DW_BLK, n = pl->ohw, nb = pl->nblk * DW_BLK;
    memcpy(gb, g, (size_t)n * sizeof(float));
    memset(gb + n, 0, (size_t)(nb - n) * sizeof(float));
    memset(xb, 0, (size_t)pl->pad * sizeof(float));
    memcpy(xb + pl->pad, in, (size_t)n * sizeof(float));
    memset(xb + pl->pad + n, 0, (size_t)pl->pad * sizeof(float));
    for (int t = t0; t < t1; t++) {
        const float *x = xb + pl->pad + pl->shift[t];
        double sum = 0.0;
        for (int b0 = 0; b0 < pl->nblk; b0 += per) {
            v4f q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};
            for (int b = b0; b < b0 + per && b < pl->nblk; b++) {
                const unsigned k = pl->fm[t][b];
                if (!k)
                    continue;
                const int i = b * DW_BLK;
                q0 = v4f_select(dw_nib[k & 15u], q0 + v4f_load(gb + i) * v4f_load(x + i), q0);
                q1 = v4f_select(dw_nib[k >> 4 & 15u],
                                q1 + v4f_load(gb + i + 4) * v4f_load(x + i + 4), q1);
                q2 = v4f_select(dw_nib[k >> 8 & 15u],
                                q2 + v4f_load(gb + i + 8) * v4f_load(x + i + 8), q2);
                q3 = v4f_select(dw_nib[k >> 12 & 15u],
                                q3 + v4f_load(gb + i + 12) * v4f_load(x + i + 12), q3);
            }
            const v4f q[4] = {q0, q1, q2, q3};
            sum += (double)dw_lanes_sum(q);
        }
        acc[t - t0] += sum;
    }
}

#if CD_HAVE_AVX512
/* The same with the sixteen lanes as two eight-lane AVX2 registers; masked
 * loads (which never fault on a dropped lane) instead of the copies. */
__attribute__((target("avx2"))) static void
dw_plane_wgrad_avx2(double *acc, const float *restrict g, const float *restrict in,
                    const struct dw_plan *pl, int t0, int t1)
{
    const int per = DW_DOT_BLK / DW_BLK;
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int t = t0; t < t1; t++) {
        const float *x = in + pl->shift[t];
        double sum = 0.0;
        for (int b0 = 0; b0 < pl->nblk; b0 += per) {
            __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
            for (int b = b0; b < b0 + per && b < pl->nblk; b++) {
                const unsigned k = pl->fm[t][b];
                if (!k)
                    continue;
                const ptrdiff_t i = (ptrdiff_t)b * DW_BLK;
                const __m256i ml = _mm256_cmpeq_epi32(
                    _mm256_and_si256(_mm256_set1_epi32((int)(k & 255u)), bits), bits);
                const __m256i mh = _mm256_cmpeq_epi32(
                    _mm256_and_si256(_mm256_set1_epi32((int)(k >> 8)), bits), bits);
                const __m256 pl8 =
                    _mm256_mul_ps(_mm256_maskload_ps(g + i, ml), _mm256_maskload_ps(x + i, ml));
                const __m256 ph8 = _mm256_mul_ps(_mm256_maskload_ps(g + i + 8, mh),
                                                 _mm256_maskload_ps(x + i + 8, mh));
                lo = _mm256_blendv_ps(lo, _mm256_add_ps(lo, pl8), _mm256_castsi256_ps(ml));
                hi = _mm256_blendv_ps(hi, _mm256_add_ps(hi, ph8), _mm256_castsi256_ps(mh));
            }
            const __m256 h = _mm256_add_ps(lo, hi);
            v4f u;
            _mm_storeu_ps((float *)&u,
                          _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
            sum += (double)((u[0] + u[1]) + (u[2] + u[3]));
        }
        acc[t - t0] += sum;
    }
}

/* The same in one sixteen-lane register per block. */
CD_AVX512 static void dw_plane_wgrad_wide(double *acc, const float *restrict g,
                                          const float *restrict in, const struct dw_plan *pl,
                                          int t0, int t1)
{
    const int per = DW_DOT_BLK / DW_BLK;
    for (int t = t0; t < t1; t++) {
        const float *x = in + pl->shift[t];
        double sum = 0.0;
        for (int b0 = 0; b0 < pl->nblk; b0 += per) {
            __m512 q = _mm512_setzero_ps();
            for (int b = b0; b < b0 + per && b < pl->nblk; b++) {
                const __mmask16 k = pl->fm[t][b];
                if (!k)
                    continue;
                const ptrdiff_t i = (ptrdiff_t)b * DW_BLK;
                const __m512 p =
                    _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), _mm512_maskz_loadu_ps(k, x + i));
                q = _mm512_mask_add_ps(q, k, q, p);
            }
            const __m256 h =
                _mm256_add_ps(_mm512_castps512_ps256(q),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1)));
            v4f u;
            _mm_storeu_ps((float *)&u,
                          _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
            sum += (double)((u[0] + u[1]) + (u[2] + u[3]));
        }
        acc[t - t0] += sum;
    }
}
#endif

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
    const int n = s->n, planes = s->ic * n, same = dw_is_same(s), wide = dw_use_wide(s);
    const size_t ihw = (size_t)s->ih * s->iw, ohw = (size_t)s->oh * s->ow;
    struct dw_masks mk;
    struct dw_plan pl;
    if (same)
        dw_masks_init(&mk, s);
    if (wide)
        dw_plan_init(&pl, s, &mk);
    /* each thread its own images of every channel (threads.h) */
    NN_FOR_PLANES(p, s->ic, n, planes > 1)
    float buf[DW_PLANE_MAX];
    const float *wc = w + (size_t)(p / n) * s->kh * s->kw;
    const float *in = dw_input_plane(inp, av, (size_t)p, ihw, buf);
#if CD_HAVE_AVX512
    if (wide) {
        dw_plane_forward_wide(out + (size_t)p * ohw, in, wc, &pl);
        continue;
    }
#endif
    if (same)
        dw_plane_forward_same(out + (size_t)p * ohw, in, wc, s, &mk);
    else
        dw_plane_forward(out + (size_t)p * ohw, in, wc, s);
    NN_END_PLANES
}

/* dw (C, 1, KH, KW) += sum over (n, y, x) of dout * input, in parallel over
 * the channels, one double per tap fed in image order; dinp (C, N, IH, IW)
 * = or += the scatter of w * dout, in parallel over the planes. */
static void dw_backward(float *restrict dinp, float *restrict dw, const float *restrict dout,
                        const float *inp, const struct act_view *av, const float *restrict w,
                        const struct conv_shape *s, int accum)
{
    const int n = s->n, khw = s->kh * s->kw, same = dw_is_same(s);
#if CD_HAVE_AVX512
    const int wide = dw_use_wide(s), avx2 = same && pact_get_isa() == PACT_ISA_AVX2;
#endif
    const size_t ihw = (size_t)s->ih * s->iw, ohw = (size_t)s->oh * s->ow;
    struct dw_masks mk;
    struct dw_plan pl;
    if (same) {
        dw_masks_init(&mk, s);
        dw_plan_init(&pl, s, &mk);
    }
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (s->ic > 1)
    for (int c = 0; c < s->ic; c++) {
        /* taps in groups of DW_TAPS, each group over all the channel's planes */
        double acc[DW_TAPS];
        float buf[DW_PLANE_MAX];
        float gb[DW_PLANE_MAX + DW_BLK], xb[DW_PLANE_MAX + 2 * DW_WPAD];
        for (int t0 = 0; t0 < khw; t0 += DW_TAPS) {
            const int t1 = khw - t0 < DW_TAPS ? khw : t0 + DW_TAPS;
            memset(acc, 0, sizeof acc);
            for (int b = 0; b < n; b++) {
                const size_t p = (size_t)c * n + b;
                const float *in = dw_input_plane(inp, av, p, ihw, buf);
#if CD_HAVE_AVX512
                if (wide) {
                    dw_plane_wgrad_wide(acc, dout + p * ohw, in, &pl, t0, t1);
                    continue;
                }
                if (avx2) {
                    dw_plane_wgrad_avx2(acc, dout + p * ohw, in, &pl, t0, t1);
                    continue;
                }
#endif
                if (same)
                    dw_plane_wgrad_same(acc, dout + p * ohw, in, &pl, t0, t1, gb, xb);
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
    NN_FOR_PLANES(p, s->ic, n, planes > 1)
    const float *wc = w + (size_t)(p / n) * khw;
#if CD_HAVE_AVX512
    if (wide) {
        dw_plane_backward_wide(dinp + (size_t)p * ihw, dout + (size_t)p * ohw, wc, &pl, accum);
        continue;
    }
#endif
    if (same)
        dw_plane_backward_same(dinp + (size_t)p * ihw, dout + (size_t)p * ohw, wc, s, &mk, accum);
    else
        dw_plane_backward(dinp + (size_t)p * ihw, dout + (size_t)p * ohw, wc, s, accum);
    NN_END_PLANES
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
