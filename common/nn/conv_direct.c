/* conv_direct.c - the direct dense convolution that conv.c runs instead of
 * im2col + sgemm where it fits (conv_direct_ok: stride 1 or 2, OC a
 * multiple of 16, not 1x1), one image at a time: the forward; for stride 1
 * the input gradient, as the transposed convolution; and for 3x3 kernels
 * the weight gradient.
 *
 * Why: the 16- to 64-channel 3x3 layers of the small zoo models make GEMMs
 * with M = OC = 16..64, where im2col and OpenBLAS's packing of the (K, P)
 * columns cost as much as the multiply. Here the image is copied once into
 * a zero-padded buffer and each output tile is computed in registers.
 *
 * The tile: T output pixels of one row (T = 7 or 14) times 16*V output
 * channels (V = 1 or 2), held as V*T vectors of 16 lanes, one lane per
 * output channel. For each input channel c and tap (ki, kj), the tile adds
 * w[oc][c][ki][kj] (16*V weights, one vector load from the packed weights)
 * times x[c][y*st + ki][x*st + kj] (one broadcast per pixel). The tile is
 * then written out transposed, as rows of the CNHW output.
 *
 * The weight gradient of one image: dout transposed to (OH*OW, OC), then
 * per input channel 9*V vectors, one per tap, each summing
 * dout[:][y][x] * x[c][y*st + ki][x*st + kj] over the pixels in row-major
 * order.
 *
 * Numerics: every output element is acc = fma(w, x, acc) from acc = 0 over
 * (c, ki, kj) in that order, and every weight gradient of an image is the
 * same over pixels, each step one IEEE fused multiply-add (exactly rounded,
 * so the same bits whatever computes it). The AVX-512 kernel, the
 * same portable C compiled for AVX2+FMA, and the portable C with libm's
 * fmaf give bit-identical results on every machine; they differ from the
 * im2col path by float rounding only (another summation order, and fused
 * steps). Each output element, and each image's weight gradient, is
 * computed by one thread, so nothing depends on the thread count (conv.c
 * sums the images' weight gradients in its fixed chunks, as for the GEMM).
 *
 * Shapes: inp (IC, N, IH, IW), w (OC, IC, KH, KW), out (OC, N, OH, OW);
 * packed weights wp (OC/(16V), IC, KH, KW, 16V); the per-thread buffer holds
 * the padded image xp (IC, PH, PW), then the tile (T, 16V) or dout^T
 * (OH*OW, OC).
 */
#include "nn/conv_int.h"
#include "nn/conv_tile.h"
#include "nn/layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int conv_direct_ok(const struct conv_shape *s)
{
    /* 1x1 kernels stay GEMMs: with one tap per channel the tile's transposed
     * store costs more than the multiply (measured: a 1x1 stride-2 16->32
     * layer took 1.09 ms against im2col + sgemm's 0.63). */
    return s->groups == 1 && (s->stride == 1 || s->stride == 2) && s->oc % CD_LANES == 0 &&
           s->kh * s->kw > 1 && s->kh <= 7 && s->kw <= 7 &&
           s->oh == (s->ih + 2 * s->pad - s->kh) / s->stride + 1;
}

size_t conv_direct_thread_floats(const struct conv_shape *s)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    /* the padded image, then the tile or the weight gradient's dout^T */
    size_t tail = (size_t)s->oh * s->ow * s->oc;
    if (tail < (size_t)CD_TMAX * 2 * CD_LANES)
        tail = (size_t)CD_TMAX * 2 * CD_LANES;
    return (size_t)s->ic * g.ph * g.pw + tail;
}

int conv_direct_dw_ok(const struct conv_shape *s)
{
    /* With very few input channels, transposing dout costs more than the
     * GEMM's im2col (the 1-channel first layers: 1.38 ms against 1.09). */
    return conv_direct_ok(s) && s->kh == 3 && s->kw == 3 && s->ic >= 8;
}

size_t conv_direct_packed_index(const struct conv_shape *s, int o, int i)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    const int ov = g.v * CD_LANES, k = s->ic * s->kh * s->kw;
    return ((size_t)(o / ov) * k + i) * ov + o % ov;
}

/* wp (OC/(16V), IC, KH, KW, 16V) from w (OC, IC, KH, KW). */
void conv_direct_pack(float *restrict wp, const float *restrict w, const struct conv_shape *s)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    const int ov = g.v * CD_LANES, k = s->ic * s->kh * s->kw;
    for (int grp = 0; grp < s->oc / ov; grp++)
        for (int i = 0; i < k; i++)
            for (int l = 0; l < ov; l++)
                wp[((size_t)grp * k + i) * ov + l] = w[(size_t)(grp * ov + l) * k + i];
}

/* ==== Tiles =============================================================== */

/* tile (T, 16V) = sum over c, ki, kj of wp[c][ki][kj][:] * x[c][ki][kj + t*st],
 * x the padded image at the tile's first pixel (plane floats per channel,
 * rows of pw floats). V, T and the stride st are constants after inlining. */
CD_INLINE void cd_tile_generic(float *restrict tile, const float *restrict x,
                               const float *restrict wp, int ic, int kh, int kw, size_t plane,
                               int pw, const int v, const int t, const int st)
{
    const int ov = v * CD_LANES;
    float acc[CD_TMAX * 2 * CD_LANES];
    for (int i = 0; i < t * ov; i++)
        acc[i] = 0.0f;
    for (int c = 0; c < ic; c++) {
        for (int ki = 0; ki < kh; ki++) {
            const float *xr = x + c * plane + (size_t)ki * pw;
            for (int kj = 0; kj < kw; kj++, wp += ov) {
                for (int p = 0; p < t; p++) {
                    const float xv = xr[kj + p * st];
                    for (int l = 0; l < ov; l++)
                        acc[p * ov + l] = fmaf(wp[l], xv, acc[p * ov + l]);
                }
            }
        }
    }
    memcpy(tile, acc, (size_t)t * ov * sizeof(float));
}

#if CD_HAVE_AVX512
/* The same sums, lane for lane, with the tile in V*T zmm registers. */
CD_AVX512 CD_INLINE void cd_tile_avx512(float *restrict tile, const float *restrict x,
                                        const float *restrict wp, int ic, int kh, int kw,
                                        size_t plane, int pw, const int v, const int t,
                                        const int st)
{
    __m512 acc[2 * CD_TMAX];
#pragma GCC unroll 28
    for (int i = 0; i < v * t; i++)
        acc[i] = _mm512_setzero_ps();
    for (int c = 0; c < ic; c++) {
        for (int ki = 0; ki < kh; ki++) {
            const float *xr = x + c * plane + (size_t)ki * pw;
            for (int kj = 0; kj < kw; kj++, wp += v * CD_LANES) {
                const __m512 w0 = _mm512_loadu_ps(wp);
                const __m512 w1 = v > 1 ? _mm512_loadu_ps(wp + CD_LANES) : w0;
#pragma GCC unroll 14
                for (int p = 0; p < t; p++) {
                    const __m512 b = _mm512_set1_ps(xr[kj + p * st]);
                    acc[p] = _mm512_fmadd_ps(w0, b, acc[p]);
                    if (v > 1)
                        acc[t + p] = _mm512_fmadd_ps(w1, b, acc[t + p]);
                }
            }
        }
    }
#pragma GCC unroll 14
    for (int p = 0; p < t; p++) {
        _mm512_storeu_ps(tile + p * v * CD_LANES, acc[p]);
        if (v > 1)
            _mm512_storeu_ps(tile + p * v * CD_LANES + CD_LANES, acc[t + p]);
    }
}
#endif

/* ==== One image =========================================================== */

/* xp (IC, PH, PW) = image b of inp, zero-padded. */
static void cd_pad(float *restrict xp, const float *restrict inp, const struct conv_shape *s,
                   const struct cd_geom *g, int b)
{
    memset(xp, 0, (size_t)s->ic * g->ph * g->pw * sizeof(float));
    for (int c = 0; c < s->ic; c++)
        for (int y = 0; y < s->ih; y++)
            memcpy(xp + ((size_t)c * g->ph + y + s->pad) * g->pw + s->pad,
                   inp + (((size_t)c * s->n + b) * s->ih + y) * s->iw,
                   (size_t)s->iw * sizeof(float));
}

/* out rows (16V channels of group grp, image b, row y, pixels x0..x0+nv) = or
 * += the tile (T, 16V), transposed. */
static void cd_scatter(float *restrict out, const float *restrict tile, const struct conv_shape *s,
                       int ov, int grp, int b, int y, int x0, int nv, int accum)
{
    const size_t ohw = (size_t)s->oh * s->ow;
    for (int l = 0; l < ov; l++) {
        float *d = out + ((size_t)(grp * ov + l) * s->n + b) * ohw + (size_t)y * s->ow + x0;
        if (accum) {
            for (int p = 0; p < nv; p++)
                d[p] += tile[p * ov + l];
        } else {
            for (int p = 0; p < nv; p++)
                d[p] = tile[p * ov + l];
        }
    }
}

/* One tile of V vectors and T pixels with each kernel; the switch gives
 * each (V, T) its own fully unrolled copy. */
#if CD_HAVE_AVX512
CD_AVX512 static void cd_tile_avx512_vt(float *tile, const float *x, const float *wp,
                                        const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    CD_BY_KEY(g->key, cd_tile_avx512, tile, x, wp, s->ic, s->kh, s->kw, plane, g->pw);
}
#endif

CD_NO_PCOM static void cd_tile_generic_vt(float *tile, const float *x, const float *wp,
                                          const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    CD_BY_KEY(g->key, cd_tile_generic, tile, x, wp, s->ic, s->kh, s->kw, plane, g->pw);
}

#if CD_HAVE_AVX512
/* The portable tile compiled for AVX2 + FMA (fmaf becomes vfmadd). */
CD_AVX2 static void cd_tile_avx2_vt(float *tile, const float *x, const float *wp,
                                    const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    CD_BY_KEY(g->key, cd_tile_generic, tile, x, wp, s->ic, s->kh, s->kw, plane, g->pw);
}
#endif

static void cd_tile(float *tile, const float *x, const float *wp, const struct conv_shape *s,
                    const struct cd_geom *g, enum conv_direct_isa isa)
{
#if CD_HAVE_AVX512
    if (isa == CONV_DIRECT_AVX512) {
        cd_tile_avx512_vt(tile, x, wp, s, g);
        return;
    }
    if (isa == CONV_DIRECT_AVX2) {
        cd_tile_avx2_vt(tile, x, wp, s, g);
        return;
    }
#endif
    (void)isa;
    cd_tile_generic_vt(tile, x, wp, s, g);
}

void conv_direct_image(float *restrict out, const float *restrict inp, const float *restrict wp,
                       const struct conv_shape *s, int b, float *restrict buf, int accum,
                       enum conv_direct_isa isa)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    const int ov = g.v * CD_LANES;
    const size_t wgroup = (size_t)s->ic * s->kh * s->kw * ov;
    float *xp = buf, *tile = buf + (size_t)s->ic * g.ph * g.pw;
    cd_pad(xp, inp, s, &g, b);
    for (int grp = 0; grp < s->oc / ov; grp++) {
        for (int y = 0; y < s->oh; y++) {
            for (int tx = 0; tx < g.ntx; tx++) {
                const int x0 = tx * g.t, nv = s->ow - x0 < g.t ? s->ow - x0 : g.t;
                cd_tile(tile, xp + (size_t)y * s->stride * g.pw + (size_t)x0 * s->stride,
                        wp + grp * wgroup, s, &g, isa);
                cd_scatter(out, tile, s, ov, grp, b, y, x0, nv, accum);
            }
        }
    }
}

/* ==== Weight gradient ===================================================== */

/* dwp (IC, 9, 16V) += for each input channel c and tap (ki, kj) the sum over
 * the image's pixels (y, x), in that order from 0, of
 * dt[y][x][:] * x[c][y + ki][x + kj]: 9*V accumulators per channel, one
 * vector load of dt and 9 broadcasts per pixel. dt (OH*OW, OC) is dout^T at
 * the group's first channel, x the padded image. */
CD_INLINE void cd_dw_generic(float *restrict dwp, const float *restrict dt, int oc,
                             const float *restrict x, int ic, int oh, int ow, size_t plane,
                             int pw, const int v, const int st)
{
    const int ov = v * CD_LANES;
    for (int c = 0; c < ic; c++) {
        float acc[9 * 2 * CD_LANES];
        for (int i = 0; i < 9 * ov; i++)
            acc[i] = 0.0f;
        for (int y = 0; y < oh; y++) {
            const float *xr = x + c * plane + (size_t)y * st * pw, *d = dt + (size_t)y * ow * oc;
            for (int px = 0; px < ow; px++, d += oc)
                for (int tap = 0; tap < 9; tap++) {
                    const float xv = xr[(tap / 3) * pw + tap % 3 + px * st];
                    for (int l = 0; l < ov; l++)
                        acc[tap * ov + l] = fmaf(d[l], xv, acc[tap * ov + l]);
                }
        }
        for (int i = 0; i < 9 * ov; i++)
            dwp[(size_t)c * 9 * ov + i] += acc[i];
    }
}

#if CD_HAVE_AVX512
CD_AVX512 CD_INLINE void cd_dw_avx512(float *restrict dwp, const float *restrict dt, int oc,
                                      const float *restrict x, int ic, int oh, int ow,
                                      size_t plane, int pw, const int v, const int st)
{
    for (int c = 0; c < ic; c++) {
        __m512 acc[9 * 2];
#pragma GCC unroll 18
        for (int i = 0; i < 9 * v; i++)
            acc[i] = _mm512_setzero_ps();
        for (int y = 0; y < oh; y++) {
            const float *xr = x + c * plane + (size_t)y * st * pw, *d = dt + (size_t)y * ow * oc;
            for (int px = 0; px < ow; px++, d += oc) {
                const __m512 d0 = _mm512_loadu_ps(d);
                const __m512 d1 = v > 1 ? _mm512_loadu_ps(d + CD_LANES) : d0;
#pragma GCC unroll 9
                for (int tap = 0; tap < 9; tap++) {
                    const __m512 b = _mm512_set1_ps(xr[(tap / 3) * pw + tap % 3 + px * st]);
                    acc[tap] = _mm512_fmadd_ps(d0, b, acc[tap]);
                    if (v > 1)
                        acc[9 + tap] = _mm512_fmadd_ps(d1, b, acc[9 + tap]);
                }
            }
        }
        float *dc = dwp + (size_t)c * 9 * v * CD_LANES;
#pragma GCC unroll 9
        for (int tap = 0; tap < 9; tap++) {
            float *d0 = dc + tap * v * CD_LANES;
            _mm512_storeu_ps(d0, _mm512_add_ps(_mm512_loadu_ps(d0), acc[tap]));
            if (v > 1)
                _mm512_storeu_ps(d0 + CD_LANES,
                                 _mm512_add_ps(_mm512_loadu_ps(d0 + CD_LANES), acc[9 + tap]));
        }
    }
}

CD_AVX512 static void cd_dw_avx512_v(float *dwp, const float *dt, const float *x,
                                     const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    switch ((g->v == 2) * 2 + (s->stride == 2)) {
    case 0: cd_dw_avx512(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 1, 1); return;
    case 1: cd_dw_avx512(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 1, 2); return;
    case 2: cd_dw_avx512(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 2, 1); return;
    default: cd_dw_avx512(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 2, 2); return;
    }
}

CD_AVX2 static void cd_dw_avx2_v(float *dwp, const float *dt, const float *x,
                                 const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    switch ((g->v == 2) * 2 + (s->stride == 2)) {
    case 0: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 1, 1); return;
    case 1: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 1, 2); return;
    case 2: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 2, 1); return;
    default: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 2, 2); return;
    }
}
#endif

CD_NO_PCOM static void cd_dw_generic_v(float *dwp, const float *dt, const float *x,
                                       const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    switch ((g->v == 2) * 2 + (s->stride == 2)) {
    case 0: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 1, 1); return;
    case 1: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 1, 2); return;
    case 2: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 2, 1); return;
    default: cd_dw_generic(dwp, dt, s->oc, x, s->ic, s->oh, s->ow, plane, g->pw, 2, 2); return;
    }
}

void conv_direct_dw_image(float *restrict dwp, const float *restrict dout,
                          const float *restrict inp, const struct conv_shape *s, int b,
                          float *restrict buf, enum conv_direct_isa isa)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    const int ov = g.v * CD_LANES;
    const size_t ohw = (size_t)s->oh * s->ow, wgroup = (size_t)s->ic * 9 * ov;
    float *xp = buf, *dt = buf + (size_t)s->ic * g.ph * g.pw;
    cd_pad(xp, inp, s, &g, b);
    /* dt (OH*OW, OC) = image b of dout, transposed */
    for (int o = 0; o < s->oc; o++) {
        const float *d = dout + ((size_t)o * s->n + b) * ohw;
        for (size_t p = 0; p < ohw; p++)
            dt[p * s->oc + o] = d[p];
    }
    for (int grp = 0; grp < s->oc / ov; grp++) {
        float *dg = dwp + grp * wgroup;
        const float *tg = dt + grp * ov;
#if CD_HAVE_AVX512
        if (isa == CONV_DIRECT_AVX512) {
            cd_dw_avx512_v(dg, tg, xp, s, &g);
            continue;
        }
        if (isa == CONV_DIRECT_AVX2) {
            cd_dw_avx2_v(dg, tg, xp, s, &g);
            continue;
        }
#endif
        cd_dw_generic_v(dg, tg, xp, s, &g);
    }
}

int conv_direct_isa_available(enum conv_direct_isa isa)
{
#if CD_HAVE_AVX512
    __builtin_cpu_init();
    if (isa == CONV_DIRECT_AVX512)
        return __builtin_cpu_supports("avx512f") != 0;
    if (isa == CONV_DIRECT_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == CONV_DIRECT_PORTABLE;
}
