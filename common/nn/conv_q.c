/* conv_q.c - the integer forward of quantized dense convolutions
 * (conv_forward_q in conv.c; docs/training.md, "How a quantized convolution
 * computes its forward"). Shapes as conv_direct.c's; the tile geometry and
 * ISA macros are conv_tile.h's.
 */
#include "nn/conv_int.h"
#include "nn/conv_tile.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ==== The integer forward of quantized layers ============================= */

/* A W(k)A(j) layer multiplies two grids: its weights are s*(2r - wa)/wa, an
 * odd code in [-wa, wa] times s/wa (quant.h, wa = 2^k - 1), and the PACT
 * output it reads is al*q/aa, a code q in [0, aa] times al/aa. So
 *   out = (s*al/(wa*aa)) * sum (2r - wa)*q,
 * and the sum is an integer, exact in int32 and in a float (cq_ok bounds it
 * below 2^24) whatever order adds it. That is the numeric definition here:
 * the integer sum, converted to float, times the float scale
 * (float)(s*al/(wa*aa)) computed in double; one rounding, the same on
 * every machine, for any thread count and any of the versions below.
 *
 * The codes are read back from the float tensors (the quantizers wrote
 * exact grid points, up to a few ulps): rint(weff*wa/s) and rint(y*aa/al)
 * recover them exactly, since the error is below 1e-4 of a step.
 *
 * Layout, as the direct kernel's with four input channels per 32-bit word
 * (VNNI's vpdpbusd adds four u8*s8 products into each int32 lane):
 *   xq  padded image codes (IC/4, PH, PW, 4) u8;
 *   wq  packed weight codes (OC/(16V), IC/4, KH, KW, 16V, 4) s8.
 * Tiles of T pixels x 16V output channels as in the float kernel. */

static int cq_flat_ok(const struct conv_shape *s);
static size_t cq_flat_thread_floats(const struct conv_shape *s);

int conv_q_ok(const struct conv_shape *s, int wbits, int abits)
{
    /* the direct kernel's shapes, 1x1 included: with four channels a word
     * and, for stride 1, no transposed store, those gain too */
    if (s->groups != 1 || (s->stride != 1 && s->stride != 2) || s->oc % CD_LANES != 0 ||
        s->ic % 4 != 0 || s->kh > 7 || s->kw > 7 ||
        s->oh != (s->ih + 2 * s->pad - s->kh) / s->stride + 1 || wbits < 1 || wbits > 7 ||
        abits < 1 || abits > 8)
        return 0;
    const long long wa = (1LL << wbits) - 1, aa = (1LL << abits) - 1;
    /* AVX2's vpmaddubsw adds two products in int16 (saturating) */
    if (2 * wa * aa > 32767)
        return 0;
    return (long long)s->ic * s->kh * s->kw * wa * aa < (1LL << 24);
}

int conv_q_isa_available(enum conv_q_isa isa)
{
#if CD_HAVE_AVX512
    __builtin_cpu_init();
    if (isa == CONV_Q_VNNI)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
    if (isa == CONV_Q_AVX2)
        return __builtin_cpu_supports("avx2") != 0;
#endif
    return isa == CONV_Q_PORTABLE;
}

size_t conv_q_thread_floats(const struct conv_shape *s)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    /* the int32 tile, then the image's codes; or the stride-1 VNNI kernel's */
    const size_t tile = (size_t)CD_TMAX * 2 * CD_LANES + ((size_t)s->ic * g.ph * g.pw + 3) / 4;
    const size_t flat = cq_flat_ok(s) ? cq_flat_thread_floats(s) : 0;
    return tile > flat ? tile : flat;
}

/* wq (OC*IC*KH*KW bytes, the layout above) from weff (OC, IC, KH, KW):
 * code rint(weff*wa/s). */
void conv_q_pack(int8_t *restrict wq, const float *restrict weff, float sat, int wbits,
                 const struct conv_shape *s)
{
    struct cd_geom g;
    cd_geom_init(&g, s);
    const int ov = g.v * CD_LANES, khw = s->kh * s->kw, k = s->ic * khw;
    const float wa = (float)((1 << wbits) - 1), f = wa / sat;
    int8_t *d = wq;
    for (int grp = 0; grp < s->oc / ov; grp++)
        for (int c4 = 0; c4 < s->ic; c4 += 4)
            for (int t = 0; t < khw; t++)
                for (int l = 0; l < ov; l++)
                    for (int c = c4; c < c4 + 4; c++) {
                        float r = rintf(weff[(size_t)(grp * ov + l) * k + (size_t)c * khw + t] * f);
                        r = r > -wa ? r : -wa; /* NaN -> -wa; the quantizer never makes one */
                        *d++ = (int8_t)(r < wa ? r : wa);
                    }
}

/* xq = image b of inp as codes rint(y*aa/al) in [0, aa], zero-padded. */
static void cq_pad(uint8_t *restrict xq, const float *restrict inp, const struct conv_shape *s,
                   const struct cd_geom *g, int b, float ainv, float aa)
{
    memset(xq, 0, (size_t)s->ic * g->ph * g->pw);
    for (int c = 0; c < s->ic; c++) {
        uint8_t *dc = xq + (size_t)(c / 4) * 4 * g->ph * g->pw + c % 4;
        for (int y = 0; y < s->ih; y++) {
            const float *src = inp + (((size_t)c * s->n + b) * s->ih + y) * s->iw;
            uint8_t *d = dc + ((size_t)(y + s->pad) * g->pw + s->pad) * 4;
            for (int x = 0; x < s->iw; x++) {
                float r = rintf(src[x] * ainv);
                r = r > 0.0f ? r : 0.0f; /* NaN -> 0 */
                d[(size_t)x * 4] = (uint8_t)(r < aa ? r : aa);
            }
        }
    }
}

/* tile (T, 16V) int32 = sum over c4, ki, kj of the four products
 * wq[c4][ki][kj][l][0..3] * xq[c4][ki][kj + t*st][0..3]; x is the padded
 * image's codes at the tile's first pixel (plane words per channel group,
 * rows of pw words). */
CD_INLINE void cq_tile_generic(int32_t *restrict tile, const uint8_t *restrict x,
                               const int8_t *restrict wq, int ic, int kh, int kw, size_t plane,
                               int pw, const int v, const int t, const int st)
{
    const int ov = v * CD_LANES;
    int32_t acc[CD_TMAX * 2 * CD_LANES];
    for (int i = 0; i < t * ov; i++)
        acc[i] = 0;
    for (int c4 = 0; c4 < ic / 4; c4++) {
        for (int ki = 0; ki < kh; ki++) {
            const uint8_t *xr = x + (c4 * plane + (size_t)ki * pw) * 4;
            for (int kj = 0; kj < kw; kj++, wq += 4 * ov) {
                for (int p = 0; p < t; p++) {
                    const uint8_t *xv = xr + (size_t)(kj + p * st) * 4;
                    const int x0 = xv[0], x1 = xv[1], x2 = xv[2], x3 = xv[3];
                    for (int l = 0; l < ov; l++)
                        acc[p * ov + l] += x0 * wq[4 * l] + x1 * wq[4 * l + 1] +
                                           x2 * wq[4 * l + 2] + x3 * wq[4 * l + 3];
                }
            }
        }
    }
    memcpy(tile, acc, (size_t)t * ov * sizeof(int32_t));
}

#if CD_HAVE_AVX512
#define CQ_VNNI __attribute__((target("avx512f,avx512vnni"))) CD_NO_PCOM
#define CQ_AVX2 __attribute__((target("avx2"))) CD_NO_PCOM

/* The same sums with vpdpbusd: one instruction adds a pixel's four
 * channels' products for 16 output channels. */
CQ_VNNI CD_INLINE void cq_tile_vnni(int32_t *restrict tile, const uint8_t *restrict x,
                                    const int8_t *restrict wq, int ic, int kh, int kw,
                                    size_t plane, int pw, const int v, const int t, const int st)
{
    __m512i acc[2 * CD_TMAX];
#pragma GCC unroll 28
    for (int i = 0; i < v * t; i++)
        acc[i] = _mm512_setzero_si512();
    const int32_t *x32 = (const int32_t *)(const void *)x;
    for (int c4 = 0; c4 < ic / 4; c4++) {
        for (int ki = 0; ki < kh; ki++) {
            const int32_t *xr = x32 + c4 * plane + (size_t)ki * pw;
            for (int kj = 0; kj < kw; kj++, wq += 4 * v * CD_LANES) {
                const __m512i w0 = _mm512_loadu_si512((const void *)wq);
                const __m512i w1 = v > 1 ? _mm512_loadu_si512((const void *)(wq + 64)) : w0;
#pragma GCC unroll 14
                for (int p = 0; p < t; p++) {
                    const __m512i b = _mm512_set1_epi32(xr[kj + p * st]);
                    acc[p] = _mm512_dpbusd_epi32(acc[p], b, w0);
                    if (v > 1)
                        acc[t + p] = _mm512_dpbusd_epi32(acc[t + p], b, w1);
                }
            }
        }
    }
#pragma GCC unroll 14
    for (int p = 0; p < t; p++) {
        _mm512_storeu_si512((void *)(tile + p * v * CD_LANES), acc[p]);
        if (v > 1)
            _mm512_storeu_si512((void *)(tile + p * v * CD_LANES + CD_LANES), acc[t + p]);
    }
}

CQ_VNNI static void cq_tile_vnni_vt(int32_t *tile, const uint8_t *x, const int8_t *wq,
                                    const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    CD_BY_KEY(g->key, cq_tile_vnni, tile, x, wq, s->ic, s->kh, s->kw, plane, g->pw);
}

/* The portable tile compiled for AVX2 (the compiler vectorises over l). */
CQ_AVX2 static void cq_tile_avx2_vt(int32_t *tile, const uint8_t *x, const int8_t *wq,
                                    const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    CD_BY_KEY(g->key, cq_tile_generic, tile, x, wq, s->ic, s->kh, s->kw, plane, g->pw);
}
#endif

CD_NO_PCOM static void cq_tile_generic_vt(int32_t *tile, const uint8_t *x, const int8_t *wq,
                                          const struct conv_shape *s, const struct cd_geom *g)
{
    const size_t plane = (size_t)g->ph * g->pw;
    CD_BY_KEY(g->key, cq_tile_generic, tile, x, wq, s->ic, s->kh, s->kw, plane, g->pw);
}

static void cq_tile(int32_t *tile, const uint8_t *x, const int8_t *wq, const struct conv_shape *s,
                    const struct cd_geom *g, enum conv_q_isa isa)
{
#if CD_HAVE_AVX512
    if (isa == CONV_Q_VNNI) {
        cq_tile_vnni_vt(tile, x, wq, s, g);
        return;
    }
    if (isa == CONV_Q_AVX2) {
        cq_tile_avx2_vt(tile, x, wq, s, g);
        return;
    }
#endif
    (void)isa;
    cq_tile_generic_vt(tile, x, wq, s, g);
}

/* out rows (16V channels of group grp, image b, row y, pixels x0..x0+nv) =
 * scale * the int32 tile (T, 16V), transposed. */
static void cq_scatter(float *restrict out, const int32_t *restrict tile,
                       const struct conv_shape *s, int ov, int grp, int b, int y, int x0, int nv,
                       float scale)
{
    const size_t ohw = (size_t)s->oh * s->ow;
    for (int l = 0; l < ov; l++) {
        float *d = out + ((size_t)(grp * ov + l) * s->n + b) * ohw + (size_t)y * s->ow + x0;
        for (int p = 0; p < nv; p++)
            d[p] = (float)tile[p * ov + l] * scale;
    }
}

/* ---- The flat kernels: output positions in the lanes ----
 *
 * Rows of 7 to 28 pixels fill 16-lane tiles badly and the tiles above end
 * in a transposed store; the VNNI and AVX2 kernels turn it around. For
 * stride 1 the padded image, rows of PW = IW + 2*pad words, is read as one
 * flat array: output (y, x) reads word (y + ki)*PW + x + kj, so consecutive
 * flat positions i = y*PW + x need one unaligned load per tap, for all 16
 * output channels of a group. Positions with x >= OW (the pad columns) are
 * computed and dropped: on 28-wide maps 2 lanes in 30, on 7-wide ones 2 in 9.
 *
 * Stride 2 becomes stride 1 on four phase images: phase (a, b) holds the
 * padded pixels (2r + a, 2c + b), rows of PW2 = ceil(PW/2) words, and output
 * (y, x) reads, for tap (ki, kj), phase (ki & 1, kj & 1) at flat position
 * (y + ki/2)*PW2 + x + kj/2. Each row of each channel then goes out with
 * one contiguous copy. */

struct cq_flat {
    int fw;        /* words per row of the flat output grid (and of a phase image) */
    int pw;        /* words per padded row */
    size_t pplane; /* words per phase image: the image, then zeros for the last vector's reach */
    size_t plane;  /* words per channel group: 1 or 4 phase images */
    size_t nflat;  /* flat output positions, rounded up to whole vectors */
};

static void cq_flat_init(struct cq_flat *f, const struct conv_shape *s)
{
    const int ph = s->ih + 2 * s->pad;
    f->pw = s->iw + 2 * s->pad;
    f->fw = s->stride == 1 ? f->pw : (f->pw + 1) / 2;
    const size_t rows = s->stride == 1 ? (size_t)ph : (size_t)(ph + 1) / 2;
    f->pplane = rows * f->fw + CD_LANES + (size_t)s->kw;
    f->plane = f->pplane * (s->stride == 1 ? 1 : 4);
    const size_t n = (size_t)s->oh * f->fw;
    f->nflat = (n + CD_LANES - 1) / CD_LANES * CD_LANES;
}

/* off[ki*KW + kj] = where tap (ki, kj) reads, from flat position 0. */
static void cq_flat_offsets(int *off, const struct conv_shape *s, const struct cq_flat *f)
{
    for (int ki = 0; ki < s->kh; ki++)
        for (int kj = 0; kj < s->kw; kj++)
            off[ki * s->kw + kj] =
                s->stride == 1 ? ki * f->pw + kj
                               : (int)(((ki & 1) * 2 + (kj & 1)) * f->pplane) +
                                     (ki >> 1) * f->fw + (kj >> 1);
}

static int cq_flat_ok(const struct conv_shape *s)
{
    return s->stride == 1 || s->stride == 2;
}

static size_t cq_flat_thread_floats(const struct conv_shape *s)
{
    struct cq_flat f;
    cq_flat_init(&f, s);
    /* the output block (16 channels, flat), a padded row, then the codes */
    return CD_LANES * f.nflat + (size_t)f.pw + CD_LANES + (size_t)s->ic / 4 * f.plane;
}

/* Padded row py (pw words, pad columns 0) into channel group xg's flat or
 * phase images. */
static void cq_put_row(int32_t *restrict xg, const int32_t *restrict row, int py,
                       const struct conv_shape *s, const struct cq_flat *f)
{
    if (s->stride == 1) {
        memcpy(xg + (size_t)py * f->pw, row, (size_t)f->pw * sizeof(int32_t));
        return;
    }
    int32_t *d0 = xg + (size_t)((py & 1) * 2) * f->pplane + (size_t)(py >> 1) * f->fw;
    int32_t *d1 = d0 + f->pplane;
    for (int c = 0; c + 1 < f->pw; c += 2) {
        d0[c >> 1] = row[c];
        d1[c >> 1] = row[c + 1];
    }
    if (f->pw & 1)
        d0[f->pw >> 1] = row[f->pw - 1];
}

#if CD_HAVE_AVX512
#define CQ_VNNI_BW __attribute__((target("avx512f,avx512bw,avx512vnni"))) CD_NO_PCOM

/* xq (IC/4, plane) = the codes of image b, four channels a word: for 16
 * pixels of a row of four channels, rint(min(max(y*ainv, 0), aa)) as int32
 * (cvtps2dq rounds half to even, as rintf; NaN goes to 0 through the max,
 * as in cq_pad), packed c0 | c1 << 8 | c2 << 16 | c3 << 24. */
CQ_VNNI_BW static void cq_pad_flat_avx512(int32_t *restrict xq, int32_t *restrict row,
                                          const float *restrict inp, const struct conv_shape *s,
                                          const struct cq_flat *f, int b, float ainv, float aa)
{
    const size_t ohw_in = (size_t)s->ih * s->iw;
    memset(xq, 0, (size_t)s->ic / 4 * f->plane * sizeof(int32_t));
    memset(row, 0, (size_t)f->pw * sizeof(int32_t));
    const __m512 vinv = _mm512_set1_ps(ainv), vaa = _mm512_set1_ps(aa), zero = _mm512_setzero_ps();
    for (int c4 = 0; c4 < s->ic / 4; c4++) {
        const float *src[4];
        for (int j = 0; j < 4; j++)
            src[j] = inp + ((size_t)(c4 * 4 + j) * s->n + b) * ohw_in;
        for (int y = 0; y < s->ih; y++) {
            /* stride 1: straight into the flat image (its pad columns stay 0) */
            int32_t *d = s->stride == 1
                             ? xq + c4 * f->plane + (size_t)(y + s->pad) * f->pw + s->pad
                             : row + s->pad;
            for (int x = 0; x < s->iw; x += CD_LANES) {
                const int nv = s->iw - x < CD_LANES ? s->iw - x : CD_LANES;
                const __mmask16 m = (__mmask16)((1u << nv) - 1);
                __m512i w = _mm512_setzero_si512();
                for (int j = 0; j < 4; j++) {
                    __m512 v = _mm512_maskz_loadu_ps(m, src[j] + (size_t)y * s->iw + x);
                    v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, vinv), zero), vaa);
                    w = _mm512_or_si512(w, _mm512_slli_epi32(_mm512_cvtps_epi32(v), 8 * j));
                }
                _mm512_mask_storeu_epi32(d + x, m, w);
            }
            if (s->stride != 1)
                cq_put_row(xq + c4 * f->plane, row, y + s->pad, s, f);
        }
    }
}

/* Output pixels (y, x < OW, y < OH) of the flat grid, vector by vector:
 * the mask of the lanes that are ones, and where the first of them goes in
 * a channel's plane. Dropping the pad columns leaves the kept positions in
 * plane order, so a vector's pixels go to consecutive places. */
struct cq_lanes {
    int y, x; /* the grid position of the vector's first lane */
};

static inline __mmask16 cq_lanes_next(struct cq_lanes *l, const struct conv_shape *s, int fw,
                                      size_t *at)
{
    *at = (size_t)l->y * s->ow + (size_t)(l->x < s->ow ? l->x : s->ow);
    unsigned m = 0;
    /* row by row: a run of the vector's lanes in one grid row keeps its
     * first ow - x (none past the last output row) */
    for (int j = 0; j < CD_LANES;) {
        const int run = fw - l->x < CD_LANES - j ? fw - l->x : CD_LANES - j;
        if (l->y < s->oh && l->x < s->ow) {
            const int keep = s->ow - l->x < run ? s->ow - l->x : run;
            m |= ((1u << keep) - 1u) << j;
        }
        j += run;
        l->x += run;
        if (l->x == fw) {
            l->x = 0;
            l->y++;
        }
    }
    return (__mmask16)m;
}

/* Channels sub..sub+15 of a packed group of ov (16 or 32), wq (IC/4, KH, KW,
 * ov, 4): the integer sums at every flat position, converted and scaled
 * ((float)sum * scale, as cq_image_flat's AVX2 path) and stored straight
 * into the output planes, out0 (channel sub's plane of the image) and the
 * next 15 cs floats apart. */
CQ_VNNI static void cq_flat_vnni(float *restrict out0, size_t cs, float scale,
                                 const int32_t *restrict xq, const int8_t *restrict wq, int ov,
                                 int sub, const struct conv_shape *s, const struct cq_flat *f,
                                 const int *off)
{
    const int taps = s->kh * s->kw;
    const int32_t *w32 = (const int32_t *)(const void *)wq + sub;
    const __m512 vscale = _mm512_set1_ps(scale);
    struct cq_lanes lanes = {0, 0};
    for (size_t i0 = 0; i0 < f->nflat; i0 += CD_LANES) {
        __m512i acc[CD_LANES];
#pragma GCC unroll 16
        for (int o = 0; o < CD_LANES; o++)
            acc[o] = _mm512_setzero_si512();
        const int32_t *wk = w32;
        for (int c4 = 0; c4 < s->ic / 4; c4++) {
            const int32_t *xc = xq + c4 * f->plane + i0;
            for (int t = 0; t < taps; t++, wk += ov) {
                const __m512i a = _mm512_loadu_si512((const void *)(xc + off[t]));
#pragma GCC unroll 16
                for (int o = 0; o < CD_LANES; o++)
                    acc[o] = _mm512_dpbusd_epi32(acc[o], a, _mm512_set1_epi32(wk[o]));
            }
        }
        size_t at;
        const __mmask16 keep = cq_lanes_next(&lanes, s, f->fw, &at);
        const int n = __builtin_popcount(keep);
        const __mmask16 first = (__mmask16)(n == CD_LANES ? 0xffffu : (1u << n) - 1u);
#pragma GCC unroll 16
        for (int o = 0; o < CD_LANES; o++) {
            const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[o]), vscale);
            _mm512_mask_storeu_ps(out0 + (size_t)o * cs + at, first,
                                  _mm512_maskz_compress_ps(keep, v));
        }
    }
}

/* The sums of cq_flat_vnni with AVX2, into ob (16, nflat) int32 (the
 * caller converts them): 8 positions a vector, 8 channels at a time.
 * vpmaddubsw adds the products of channels (0, 1) and (2, 3) into int16
 * (exact: conv_q_ok keeps 2*wa*aa below 2^15), vpmaddwd by ones adds the
 * two pairs into int32. */
CQ_AVX2 static void cq_flat_avx2(int32_t *restrict ob, const int32_t *restrict xq,
                                 const int8_t *restrict wq, int ov, int sub,
                                 const struct conv_shape *s, const struct cq_flat *f,
                                 const int *off)
{
    const int taps = s->kh * s->kw;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int o0 = 0; o0 < CD_LANES; o0 += 8) {
        const int32_t *w32 = (const int32_t *)(const void *)wq + sub + o0;
        for (size_t i0 = 0; i0 < f->nflat; i0 += 8) {
            __m256i acc[8];
#pragma GCC unroll 8
            for (int o = 0; o < 8; o++)
                acc[o] = _mm256_setzero_si256();
            const int32_t *wk = w32;
            for (int c4 = 0; c4 < s->ic / 4; c4++) {
                const int32_t *xc = xq + c4 * f->plane + i0;
                for (int t = 0; t < taps; t++, wk += ov) {
                    const __m256i a = _mm256_loadu_si256((const void *)(xc + off[t]));
#pragma GCC unroll 8
                    for (int o = 0; o < 8; o++) {
                        const __m256i p = _mm256_maddubs_epi16(a, _mm256_set1_epi32(wk[o]));
                        acc[o] = _mm256_add_epi32(acc[o], _mm256_madd_epi16(p, ones));
                    }
                }
            }
#pragma GCC unroll 8
            for (int o = 0; o < 8; o++)
                _mm256_storeu_si256((void *)(ob + (size_t)(o0 + o) * f->nflat + i0), acc[o]);
        }
    }
}
#endif

/* xq (IC/4, plane) = the codes of image b as in cq_pad, laid out flat: the
 * same words as cq_pad_flat_avx512. */
static void cq_pad_flat(int32_t *restrict xq, int32_t *restrict row, const float *restrict inp,
                        const struct conv_shape *s, const struct cq_flat *f, int b, float ainv,
                        float aa)
{
    const size_t hw = (size_t)s->ih * s->iw;
    memset(xq, 0, (size_t)s->ic / 4 * f->plane * sizeof(int32_t));
    memset(row, 0, (size_t)f->pw * sizeof(int32_t));
    for (int c4 = 0; c4 < s->ic / 4; c4++) {
        for (int y = 0; y < s->ih; y++) {
            int32_t *d = row + s->pad;
            for (int x = 0; x < s->iw; x++)
                d[x] = 0;
            for (int j = 0; j < 4; j++) {
                const float *src = inp + ((size_t)(c4 * 4 + j) * s->n + b) * hw + (size_t)y * s->iw;
                for (int x = 0; x < s->iw; x++) {
                    float r = rintf(src[x] * ainv);
                    r = r > 0.0f ? r : 0.0f; /* NaN -> 0 */
                    d[x] |= (int32_t)((uint32_t)(r < aa ? r : aa) << (8 * j));
                }
            }
            cq_put_row(xq + c4 * f->plane, row, y + s->pad, s, f);
        }
    }
}

#if CD_HAVE_AVX512
/* The flat kernels on VNNI or AVX2: per 16-channel group the flat sums,
 * then each row out (VNNI: stored as they are made). */
static void cq_image_flat(float *restrict out, const float *restrict inp,
                          const int8_t *restrict wq, const struct conv_shape *s, int b,
                          float *restrict buf, const struct conv_q_scale *q, int vnni)
{
    struct cd_geom g;
    struct cq_flat f;
    cd_geom_init(&g, s);
    cq_flat_init(&f, s);
    int off[49];
    cq_flat_offsets(off, s, &f);
    const int ov = g.v * CD_LANES; /* the packing's group */
    const size_t ohw = (size_t)s->oh * s->ow;
    const size_t wgroup = (size_t)s->ic * s->kh * s->kw * ov;
    int32_t *ob = (int32_t *)(void *)buf, *row = ob + CD_LANES * f.nflat;
    int32_t *xq = row + f.pw + CD_LANES;
    if (vnni)
        cq_pad_flat_avx512(xq, row, inp, s, &f, b, q->ainv, q->aa);
    else
        cq_pad_flat(xq, row, inp, s, &f, b, q->ainv, q->aa);
    for (int g16 = 0; g16 < s->oc / CD_LANES; g16++) {
        const int oc0 = g16 * CD_LANES;
        if (vnni) {
            cq_flat_vnni(out + ((size_t)oc0 * s->n + b) * ohw, (size_t)s->n * ohw, q->scale, xq,
                         wq + (size_t)(oc0 / ov) * wgroup, ov, oc0 % ov, s, &f, off);
            continue;
        }
        cq_flat_avx2(ob, xq, wq + (size_t)(oc0 / ov) * wgroup, ov, oc0 % ov, s, &f, off);
        for (int o = 0; o < CD_LANES; o++) {
            float *d = out + ((size_t)(oc0 + o) * s->n + b) * ohw;
            const int32_t *r = ob + (size_t)o * f.nflat;
            for (int y = 0; y < s->oh; y++)
                for (int x = 0; x < s->ow; x++)
                    d[(size_t)y * s->ow + x] = (float)r[(size_t)y * f.fw + x] * q->scale;
        }
    }
}
#endif

void conv_q_image(float *restrict out, const float *restrict inp, const int8_t *restrict wq,
                  const struct conv_shape *s, int b, float *restrict buf,
                  const struct conv_q_scale *q, enum conv_q_isa isa)
{
#if CD_HAVE_AVX512
    if (isa != CONV_Q_PORTABLE && cq_flat_ok(s)) {
        cq_image_flat(out, inp, wq, s, b, buf, q, isa == CONV_Q_VNNI);
        return;
    }
#endif
    struct cd_geom g;
    cd_geom_init(&g, s);
    const int ov = g.v * CD_LANES;
    const size_t wgroup = (size_t)s->ic * s->kh * s->kw * ov;
    int32_t *tile = (int32_t *)(void *)buf;
    uint8_t *xq = (uint8_t *)(buf + (size_t)CD_TMAX * 2 * CD_LANES);
    cq_pad(xq, inp, s, &g, b, q->ainv, q->aa);
    for (int grp = 0; grp < s->oc / ov; grp++) {
        for (int y = 0; y < s->oh; y++) {
            for (int tx = 0; tx < g.ntx; tx++) {
                const int x0 = tx * g.t, nv = s->ow - x0 < g.t ? s->ow - x0 : g.t;
                cq_tile(tile, xq + ((size_t)y * s->stride * g.pw + (size_t)x0 * s->stride) * 4,
                        wq + grp * wgroup, s, &g, isa);
                cq_scatter(out, tile, s, ov, grp, b, y, x0, nv, q->scale);
            }
        }
    }
}
