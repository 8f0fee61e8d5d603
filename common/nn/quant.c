/* quant.c - SAT weight quantization and PACT / CG-PACT, see quant.h. */
#include "quant.h"

#include "threads.h"
#include "bn_view.h"
#include "util/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Two passes (quant.h). */
double wquant_variance(const float *v, size_t len)
{
    if (len < 2)
        return 0.0;
    double sum = 0.0;
    for (size_t i = 0; i < len; i++)
        sum += v[i];
    double mean = sum / (double)len;
    double ss = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = v[i] - mean;
        ss += d * d;
    }
    return ss / (double)(len - 1);
}

float wquant_forward(float *weff, float *dfac, const float *w, size_t len, const struct wquant *q,
                     float *m_out)
{
    if (wquant_is_identity(q)) {
        for (size_t i = 0; i < len; i++) {
            weff[i] = w[i];
            dfac[i] = 1.0f;
        }
        if (m_out)
            *m_out = 1.0f;
        return 1.0f;
    }
    /* Pass 1: T = tanh(W) into dfac (as scratch), M = max|T|. */
    float m = 0.0f;
    for (size_t i = 0; i < len; i++) {
        float t = tanhf(w[i]);
        dfac[i] = t;
        float at = fabsf(t);
        m = at > m ? at : m;
    }
    m = fmaxf(m, QUANT_M_EPS);
    /* Pass 2: Q into weff. */
    if (q->bits < 32) {
        const float a = (float)((1 << q->bits) - 1);
        for (size_t i = 0; i < len; i++) {
            float wt = (dfac[i] / m + 1.0f) / 2.0f; /* in [0, 1] exactly (t/m <= 1 in IEEE) */
            weff[i] = 2.0f * (rintf(a * wt) / a) - 1.0f;
        }
    } else {
        for (size_t i = 0; i < len; i++)
            weff[i] = dfac[i] / m;
    }
    float s = 1.0f;
    if (q->sat) {
        double v = wquant_variance(weff, len);
        if (v < QUANT_VAR_EPS)
            v = QUANT_VAR_EPS;
        s = (float)(1.0 / sqrt((double)q->fan * v));
        for (size_t i = 0; i < len; i++)
            weff[i] *= s;
    }
    /* Pass 3: backward factor s*(1-T^2)/M. */
    for (size_t i = 0; i < len; i++) {
        float t = dfac[i];
        dfac[i] = s * (1.0f - t * t) / m;
    }
    if (m_out)
        *m_out = m;
    return s;
}

void wquant_backward(float *dw, const float *dweff, const float *dfac, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dw[i] += dweff[i] * dfac[i];
}

float wquant_codes(int *codes, const float *w, size_t len, int bits)
{
    float m = 0.0f;
    for (size_t i = 0; i < len; i++)
        m = fmaxf(m, fabsf(tanhf(w[i])));
    m = fmaxf(m, QUANT_M_EPS);
    const float a = (float)((1 << bits) - 1);
    for (size_t i = 0; i < len; i++) {
        float wt = (tanhf(w[i]) / m + 1.0f) / 2.0f;
        codes[i] = (int)rintf(a * wt);
    }
    return m;
}

/* ==== PACT / CG-PACT ===================================================== */

static inline float alpha_of(float alpha_raw)
{
    return fmaxf(fabsf(alpha_raw), QUANT_ALPHA_EPS);
}

/* PACT's forward runs in parallel over threads.h's element-wise ranges
 * (blocks of PACT_BLK elements without a layout). Its backward runs over
 * the fixed pieces of each channel slab (threads.h, nn_slab_pieces; fewer
 * when there would be more than PACT_MAX_PARTS): the alpha gradient of
 * each piece is summed in eight double lanes (element i of the piece into
 * lane i % 8, lanes added in order), and the pieces' sums are stored and
 * added channel by channel, piece by piece: a fixed summation order that
 * depends on the shape only, so the result is the same for any thread
 * count. */
#define PACT_BLK 16384
#define PACT_MAX_PARTS 4096 /* partial sums of one backward (on the stack) */
/* Elements per chunk of the backward's staging buffer t (on the stack). A
 * multiple of 8, so that element i of a block still lands in lane i % 8. */
#define PACT_CHUNK 256

/* ---- Element-wise bodies -------------------------------------------------
 * Each kernel is written once, as plain loops, and compiled once per ISA
 * level: always_inline bodies expanded into wrappers that carry a target
 * attribute, so the vectoriser gives each its own width (4 floats at the
 * project's -march=x86-64-v2, 8 with AVX2, 16 with AVX-512). The choice is
 * made at run time (pact_get_isa), so the binary still runs on any
 * x86-64-v2 machine. Every level computes the same bits: the element-wise
 * operations are IEEE ones that do not depend on the vector width (compare,
 * select, sub, mul, div, rint as roundps / vrndscaleps under the current
 * rounding mode), -ffp-contract=off forbids fusing them (the AVX-512 level
 * has FMA instructions available, and must not use them), and the one
 * reduction, the alpha gradient's eight double lanes, adds each lane's
 * elements in program order, which no vectoriser may reorder without
 * -fassociative-math. tests/unit/quant checks the levels against each other
 * and against a scalar oracle. */
#define PACT_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PACT_HAVE_X86 1
#define PACT_AVX2 __attribute__((target("avx2")))
#define PACT_AVX512 __attribute__((target("avx512f")))
#else
#define PACT_HAVE_X86 0
#endif

/* ---- The alpha gradient's eight double lanes ------------------------------
 * pact_lanes_sum_*(l, t, n8): l[k] += (double)t[j + k], k < 8, for j = 0,
 * 8, .. < n8 (n8 a multiple of 8), each lane a plain sum of its own
 * elements in order. One version per level, because t was just stored by
 * that level's vector loop: loads as wide as those stores are forwarded
 * from them, while narrower loads of a wider store stall (measured on Zen 4:
 * 16-byte loads of the AVX-512 loop's t made this loop 70% of the
 * backward). Out of line, so that the lanes stay in registers: inlined into
 * the large backward bodies, the allocator spilled a lane pair and the add
 * chain waited on a store every 8 elements. */
typedef void (*pact_lanes_fn)(double l[8], const float *t, size_t n8);

#if PACT_HAVE_X86
static __attribute__((noinline)) void pact_lanes_sum_base(double l[8], const float *t, size_t n8)
{
    __m128d l01 = _mm_loadu_pd(l), l23 = _mm_loadu_pd(l + 2);
    __m128d l45 = _mm_loadu_pd(l + 4), l67 = _mm_loadu_pd(l + 6);
    for (size_t j = 0; j < n8; j += 8) {
        const __m128 a = _mm_loadu_ps(t + j), b = _mm_loadu_ps(t + j + 4);
        l01 = _mm_add_pd(l01, _mm_cvtps_pd(a));
        l23 = _mm_add_pd(l23, _mm_cvtps_pd(_mm_movehl_ps(a, a)));
        l45 = _mm_add_pd(l45, _mm_cvtps_pd(b));
        l67 = _mm_add_pd(l67, _mm_cvtps_pd(_mm_movehl_ps(b, b)));
    }
    _mm_storeu_pd(l, l01);
    _mm_storeu_pd(l + 2, l23);
    _mm_storeu_pd(l + 4, l45);
    _mm_storeu_pd(l + 6, l67);
}

PACT_AVX2 static __attribute__((noinline)) void pact_lanes_sum_avx2(double l[8], const float *t,
                                                                    size_t n8)
{
    __m256d l0 = _mm256_loadu_pd(l), l4 = _mm256_loadu_pd(l + 4); /* lanes 0..3, 4..7 */
    for (size_t j = 0; j < n8; j += 8) {
        const __m256 a = _mm256_loadu_ps(t + j);
        l0 = _mm256_add_pd(l0, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
        l4 = _mm256_add_pd(l4, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    }
    _mm256_storeu_pd(l, l0);
    _mm256_storeu_pd(l + 4, l4);
}

PACT_AVX512 static __attribute__((noinline)) void pact_lanes_sum_avx512(double l[8], const float *t,
                                                                        size_t n8)
{
    __m512d acc = _mm512_loadu_pd(l); /* lanes 0..7 */
    size_t j = 0;
    for (; j + 16 <= n8; j += 16) { /* t[j .. j+8) then t[j+8 .. j+16), in that order */
        const __m512 a = _mm512_loadu_ps(t + j);
        const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(hi));
    }
    if (j < n8)
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_loadu_ps(t + j)));
    _mm512_storeu_pd(l, acc);
}
#else
static void pact_lanes_sum_base(double l[8], const float *t, size_t n8)
{
    for (size_t j = 0; j < n8; j += 8)
        for (int k = 0; k < 8; k++)
            l[k] += (double)t[j + k];
}
#endif

/* PACT of one value: al * (rint(a * u) / a), u = clip(v, 0, al) / al. */
PACT_INLINE float pact_value(float v, float al, float a)
{
    float xc = v > 0.0f ? v : 0.0f; /* NaN -> 0 */
    xc = xc < al ? xc : al;
    float u = xc / al;
    float q = rintf(a * u) / a;
    return al * q;
}

/* y (n) = PACT of x (n). */
PACT_INLINE void pact_fwd_body(float *restrict y, const float *restrict x, size_t n, float al,
                               float a)
{
    for (size_t i = 0; i < n; i++)
        y[i] = pact_value(x[i], al, a);
}

/* y (n) = PACT of the view's values at flat indices [i0, i0 + n), one run
 * per channel. Each value is (x - mu) * scale + shift, the float operations
 * of bn_affine (bn_view.h), computed where it is used: no staging buffer. */
PACT_INLINE void pact_fwd_view_body(float *restrict y, const struct bn_view *v, size_t i0, size_t n,
                                    float al, float a)
{
    const size_t end = i0 + n;
    for (size_t i = i0, c, ce; i < end; i = ce) {
        ce = bn_view_run(v, i, end, &c);
        const float mu = v->mu[c], sc = v->scale[c], sh = v->shift[c];
        const float *restrict x = v->x + i;
        float *restrict yc = y + (i - i0);
        for (size_t l = 0; l < ce - i; l++)
            yc[l] = pact_value((x[l] - mu) * sc + sh, al, a);
    }
}

/* What the backward does with the input gradient pd: nothing (dx NULL),
 * dx = pd, or dx += pd. */
enum pact_dx { PACT_DX_NONE, PACT_DX_SET, PACT_DX_ADD };

/* One run of n elements: t (n) = dy * dalpha per element; dx (n) receives
 * pd = dy * (0 < x < al) per mode. With bn, the inputs are BN values
 * (x - mu) * sc + sh of one channel's run x (n), as in pact_fwd_view_body.
 * mode, bn and cg are constants in every expansion, so each expansion is
 * one straight loop.
 *
 * Plain PACT (cg 0) skips the rounding error and its two divisions: main
 * computed it and multiplied it by 0, which gives +-0 where this gives +0,
 * and t = g * (+-0) then differs at most in the sign of a zero (or is the
 * same NaN when g is not finite). Adding a zero of either sign leaves every
 * lane unchanged, since a lane starts at +0 and can never become -0, so the
 * alpha gradient keeps its bits; tests/unit/quant checks it against the
 * oracle. */
PACT_INLINE void pact_bwd_run(float *restrict t, float *restrict dx, const float *restrict dy,
                              const float *restrict x, size_t n, int bn, float mu, float sc,
                              float sh, float al, float a, int cg, enum pact_dx mode)
{
    for (size_t l = 0; l < n; l++) {
        const float xi = bn ? (x[l] - mu) * sc + sh : x[l];
        const float g = dy[l];
        float mid = 0.0f;
        if (cg) {
            float u = xi / al;
            float rerr = rintf(a * u) / a - u;
            mid = xi > 0.0f ? rerr : 0.0f;
        }
        float ga = xi >= al ? 1.0f : mid;
        t[l] = g * ga;
        float gp = xi < al ? g : 0.0f;
        float pd = xi > 0.0f ? gp : 0.0f;
        if (mode == PACT_DX_SET)
            dx[l] = pd;
        else if (mode == PACT_DX_ADD)
            dx[l] += pd;
    }
}

/* One block of len elements at flat index base: writes dx (len) per mode,
 * returns sum dy * dalpha in the block's fixed order: element i goes into
 * double lane i % 8, lanes are added pairwise at the end. Chunks of
 * PACT_CHUNK stage the per-element terms in t, which the lanes then read 8
 * at a time; the last chunk is padded with +0.0, which leaves every lane
 * unchanged (a lane starts at +0.0 and so can never be -0.0). Without bn,
 * x (len) holds the inputs; with bn, they are the view's values at
 * flat index base on. */
PACT_INLINE double pact_bwd_body(float *restrict dx, const float *restrict dy,
                                 const float *restrict x, const struct bn_view *v, size_t base,
                                 size_t len, float al, float a, int cg, enum pact_dx mode, int bn,
                                 pact_lanes_fn lanes_sum)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float t[PACT_CHUNK];
    for (size_t i0 = 0; i0 < len; i0 += PACT_CHUNK) {
        const size_t n = len - i0 < PACT_CHUNK ? len - i0 : PACT_CHUNK;
        if (bn) {
            /* One run per channel; o is the offset in the block. */
            const size_t end = base + i0 + n;
            for (size_t i = base + i0, c, ce; i < end; i = ce) {
                ce = bn_view_run(v, i, end, &c);
                const size_t o = i - base;
                pact_bwd_run(t + (o - i0), mode == PACT_DX_NONE ? NULL : dx + o, dy + o, v->x + i,
                             ce - i, 1, v->mu[c], v->scale[c], v->shift[c], al, a, cg, mode);
            }
        } else {
            pact_bwd_run(t, mode == PACT_DX_NONE ? NULL : dx + i0, dy + i0, x + i0, n, 0, 0.0f,
                         0.0f, 0.0f, al, a, cg, mode);
        }
        const size_t n8 = (n + 7) & ~(size_t)7;
        for (size_t l = n; l < n8; l++)
            t[l] = 0.0f;
        lanes_sum(lane, t, n8);
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
           ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* pact_bwd_body with its run-time switches (view or not, CG-PACT or PACT,
 * dx mode) turned into constants: twelve straight expansions. */
PACT_INLINE double pact_bwd_mode(float *dx, const float *dy, const float *x,
                                 const struct bn_view *v, size_t base, size_t len, float al,
                                 float a, int cg, enum pact_dx mode, pact_lanes_fn lanes_sum)
{
    if (mode == PACT_DX_NONE)
        return pact_bwd_body(dx, dy, x, v, base, len, al, a, cg, PACT_DX_NONE, v != NULL,
                             lanes_sum);
    if (mode == PACT_DX_SET)
        return pact_bwd_body(dx, dy, x, v, base, len, al, a, cg, PACT_DX_SET, v != NULL, lanes_sum);
    return pact_bwd_body(dx, dy, x, v, base, len, al, a, cg, PACT_DX_ADD, v != NULL, lanes_sum);
}

PACT_INLINE double pact_bwd_select(float *dx, const float *dy, const float *x,
                                   const struct bn_view *v, size_t base, size_t len, float al,
                                   float a, int cg, int accum, pact_lanes_fn lanes_sum)
{
    const enum pact_dx mode = !dx ? PACT_DX_NONE : accum ? PACT_DX_ADD : PACT_DX_SET;
    if (v) {
        if (cg)
            return pact_bwd_mode(dx, dy, NULL, v, base, len, al, a, 1, mode, lanes_sum);
        return pact_bwd_mode(dx, dy, NULL, v, base, len, al, a, 0, mode, lanes_sum);
    }
    if (cg)
        return pact_bwd_mode(dx, dy, x, NULL, base, len, al, a, 1, mode, lanes_sum);
    return pact_bwd_mode(dx, dy, x, NULL, base, len, al, a, 0, mode, lanes_sum);
}

/* ---- One set of kernels per ISA level ------------------------------------ */

/* The kernels of one level. fwd: y (n) = PACT of x (n). fwd_view: y (n) =
 * PACT of the view's values at [i0, i0 + n). bwd: one block of
 * pact_backward_blocks, x (len) or the view's values at [base, base + len). */
struct pact_kernels {
    void (*fwd)(float *y, const float *x, size_t n, float al, float a);
    void (*fwd_view)(float *y, const struct bn_view *v, size_t i0, size_t n, float al, float a);
    double (*bwd)(float *dx, const float *dy, const float *x, const struct bn_view *v, size_t base,
                  size_t len, float al, float a, int cg, int accum);
};

static void pact_fwd_base(float *y, const float *x, size_t n, float al, float a)
{
    pact_fwd_body(y, x, n, al, a);
}

static void pact_fwd_view_base(float *y, const struct bn_view *v, size_t i0, size_t n, float al,
                               float a)
{
    pact_fwd_view_body(y, v, i0, n, al, a);
}

static double pact_bwd_base(float *dx, const float *dy, const float *x, const struct bn_view *v,
                            size_t base, size_t len, float al, float a, int cg, int accum)
{
    return pact_bwd_select(dx, dy, x, v, base, len, al, a, cg, accum, pact_lanes_sum_base);
}

#if PACT_HAVE_X86
PACT_AVX2 static void pact_fwd_avx2(float *y, const float *x, size_t n, float al, float a)
{
    pact_fwd_body(y, x, n, al, a);
}

PACT_AVX2 static void pact_fwd_view_avx2(float *y, const struct bn_view *v, size_t i0, size_t n,
                                         float al, float a)
{
    pact_fwd_view_body(y, v, i0, n, al, a);
}

PACT_AVX2 static double pact_bwd_avx2(float *dx, const float *dy, const float *x,
                                      const struct bn_view *v, size_t base, size_t len, float al,
                                      float a, int cg, int accum)
{
    return pact_bwd_select(dx, dy, x, v, base, len, al, a, cg, accum, pact_lanes_sum_avx2);
}

PACT_AVX512 static void pact_fwd_avx512(float *y, const float *x, size_t n, float al, float a)
{
    pact_fwd_body(y, x, n, al, a);
}

PACT_AVX512 static void pact_fwd_view_avx512(float *y, const struct bn_view *v, size_t i0, size_t n,
                                             float al, float a)
{
    pact_fwd_view_body(y, v, i0, n, al, a);
}

PACT_AVX512 static double pact_bwd_avx512(float *dx, const float *dy, const float *x,
                                          const struct bn_view *v, size_t base, size_t len,
                                          float al, float a, int cg, int accum)
{
    return pact_bwd_select(dx, dy, x, v, base, len, al, a, cg, accum, pact_lanes_sum_avx512);
}
#endif

/* Indexed by enum pact_isa; a level without kernels has NULL entries. */
static const struct pact_kernels pact_kernels_of[] = {
    [PACT_ISA_BASE] = {pact_fwd_base, pact_fwd_view_base, pact_bwd_base},
#if PACT_HAVE_X86
    [PACT_ISA_AVX2] = {pact_fwd_avx2, pact_fwd_view_avx2, pact_bwd_avx2},
    [PACT_ISA_AVX512] = {pact_fwd_avx512, pact_fwd_view_avx512, pact_bwd_avx512},
#endif
};

int pact_isa_available(enum pact_isa isa)
{
    if (isa == PACT_ISA_BASE)
        return 1;
#if PACT_HAVE_X86
    __builtin_cpu_init();
    if (isa == PACT_ISA_AVX2)
        return __builtin_cpu_supports("avx2") != 0;
    if (isa == PACT_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") != 0;
#endif
    return 0;
}

/* The level in use, -1 until the first call resolves it. */
static int pact_isa_cur = -1;

/* SATURN_ACT_ISA (base, avx2, avx512) when set and available, else the
 * widest level the CPU has. */
static enum pact_isa pact_isa_resolve(void)
{
    static const struct {
        const char *name;
        enum pact_isa isa;
    } env[] = {{"base", PACT_ISA_BASE}, {"avx2", PACT_ISA_AVX2}, {"avx512", PACT_ISA_AVX512}};
    const char *e = getenv("SATURN_ACT_ISA");
    for (size_t i = 0; e && i < sizeof(env) / sizeof(env[0]); i++)
        if (strcmp(e, env[i].name) == 0 && pact_isa_available(env[i].isa))
            return env[i].isa;
    return pact_isa_available(PACT_ISA_AVX512) ? PACT_ISA_AVX512
           : pact_isa_available(PACT_ISA_AVX2) ? PACT_ISA_AVX2
                                               : PACT_ISA_BASE;
}

int pact_set_isa(enum pact_isa isa)
{
    if (isa == PACT_ISA_AUTO)
        isa = pact_isa_resolve();
    if (isa < PACT_ISA_BASE || isa > PACT_ISA_AVX512 || !pact_isa_available(isa))
        return SAT_EINVAL;
    __atomic_store_n(&pact_isa_cur, (int)isa, __ATOMIC_RELAXED);
    return 0;
}

enum pact_isa pact_get_isa(void)
{
    int cur = __atomic_load_n(&pact_isa_cur, __ATOMIC_RELAXED);
    if (cur < 0) {
        cur = (int)pact_isa_resolve();
        __atomic_store_n(&pact_isa_cur, cur, __ATOMIC_RELAXED);
    }
    return (enum pact_isa)cur;
}

static const struct pact_kernels *pact_kernels(void)
{
    return &pact_kernels_of[pact_get_isa()];
}

/* ---- Entry points ---------------------------------------------------------- */

void pact_forward(float *y, const float *x, size_t len, float alpha_raw, int bits)
{
    const struct pact_kernels *k = pact_kernels();
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    NN_FOR_RANGES(lo, hi, len, PACT_BLK)
    k->fwd(y + lo, x + lo, hi - lo, al, a);
    NN_END_RANGES
}

void pact_apply(float *y, const float *x, size_t len, float alpha_raw, int bits)
{
    pact_kernels()->fwd(y, x, len, alpha_of(alpha_raw), (float)((1 << bits) - 1));
}

void pact_apply_bn(float *y, const struct bn_view *v, size_t i0, size_t n, float alpha_raw,
                   int bits)
{
    pact_kernels()->fwd_view(y, v, i0, n, alpha_of(alpha_raw), (float)((1 << bits) - 1));
}

void pact_forward_bn(float *y, const struct bn_view *v, int c, float alpha_raw, int bits)
{
    const struct pact_kernels *k = pact_kernels();
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    const size_t len = (size_t)c * v->m;
    NN_FOR_RANGES(lo, hi, len, PACT_BLK)
    k->fwd_view(y + lo, v, lo, hi - lo, al, a);
    NN_END_RANGES
}

int pact_backward_pieces_of(int c, size_t m)
{
    int pieces = nn_slab_pieces(m);
    while (pieces > 1 && (size_t)c * (size_t)pieces > PACT_MAX_PARTS)
        pieces /= 2;
    return pieces;
}

double pact_alpha_term_bn(const float *dy, const struct bn_view *v, size_t at, size_t n,
                          float alpha_raw, int bits, int cg)
{
    return pact_kernels()->bwd(NULL, dy, NULL, v, at, n, alpha_of(alpha_raw),
                               (float)((1 << bits) - 1), cg, 0);
}

/* The pieces of pact_backward (x) and pact_backward_bn (v): the same sums
 * in the same order. */
static double pact_backward_pieces(float *dx, const float *dy, const float *x,
                                   const struct bn_view *v, int c, size_t m, float alpha_raw,
                                   int bits, int cg, int accum)
{
    if (c <= 0 || m == 0)
        return 0.0;
    const struct pact_kernels *k = pact_kernels();
    const float al = alpha_of(alpha_raw);
    const float a = (float)((1 << bits) - 1);
    const int pieces = pact_backward_pieces_of(c, m);
    /* more channels than parts: runs of whole channels, piece = channel group */
    const int cper =
        (size_t)c * (size_t)pieces > PACT_MAX_PARTS ? (c + PACT_MAX_PARTS - 1) / PACT_MAX_PARTS : 1;
    const int groups = (c + cper - 1) / cper;
    double part[PACT_MAX_PARTS];
    NN_WALK_FOR(p, nn_items_slab(pieces, m / (size_t)pieces, m), nn_threads(),
                (size_t)c * m > PACT_BLK)
    const size_t lo = nn_slab_piece_lo(m, pieces, p), hi = nn_slab_piece_lo(m, pieces, p + 1);
    for (int g = 0; g < groups; g++) {
        double sum = 0.0;
        for (int ch = g * cper; ch < c && ch < (g + 1) * cper; ch++) {
            const size_t at = (size_t)ch * m + lo;
            sum += k->bwd(dx ? dx + at : NULL, dy + at, x ? x + at : NULL, v, at, hi - lo, al, a,
                          cg, accum);
        }
        part[(size_t)g * pieces + p] = sum;
    }
    NN_WALK_END
    double total = 0.0;
    for (int i = 0; i < groups * pieces; i++)
        total += part[i];
    return alpha_raw < 0.0f ? -total : total;
}

double pact_backward(float *dx, const float *dy, const float *x, int c, size_t m, float alpha_raw,
                     int bits, int cg, int accum)
{
    return pact_backward_pieces(dx, dy, x, NULL, c, m, alpha_raw, bits, cg, accum);
}

double pact_backward_bn(float *dx, const float *dy, const struct bn_view *v, int c, float alpha_raw,
                        int bits, int cg, int accum)
{
    return pact_backward_pieces(dx, dy, NULL, v, c, v->m, alpha_raw, bits, cg, accum);
}
