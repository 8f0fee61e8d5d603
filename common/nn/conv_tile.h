/* conv_tile.h - private to common/nn: what the direct float kernel
 * (conv_direct.c) and the integer forward of quantized layers (conv_q.c)
 * share: the ISA attribute macros and the tile geometry (T output pixels of
 * one row x 16V output channels).
 */
#ifndef SATURN_NN_CONV_TILE_H
#define SATURN_NN_CONV_TILE_H

#include "nn/layers.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CD_HAVE_AVX512 1
#define CD_AVX512 __attribute__((target("avx512f"))) CD_NO_PCOM
#define CD_AVX2 __attribute__((target("avx2,fma"))) CD_NO_PCOM
#else
#define CD_HAVE_AVX512 0
#endif

#define CD_LANES 16 /* output channels per vector */
#define CD_TMAX 14  /* widest tile, in pixels */
#define CD_INLINE static inline __attribute__((always_inline))
/* GCC's predictive commoning carries x[kj + p] over to the next kj through
 * scalar copies on the stack; the tile wants plain broadcasts from memory.
 * Clang has no such pass (and warns about the attribute). */
#if defined(__clang__)
#define CD_NO_PCOM
#else
#define CD_NO_PCOM __attribute__((optimize("no-predictive-commoning")))
#endif

/* ==== Geometry ============================================================ */

struct cd_geom {
    int v;      /* vectors of output channels per tile: 1 or 2 */
    int t;      /* pixels per tile: 7 or 14 */
    int ntx;    /* tiles per output row */
    int ph, pw; /* padded image: IH + 2*pad rows, at least IW + 2*pad columns */
    int key;    /* which unrolled tile: (V, T) 0 = (1, 7), 1 = (1, 14), 2 = (2, 7); times 2, + stride 2 */
};

static inline void cd_geom_init(struct cd_geom *g, const struct conv_shape *s)
{
    g->v = s->oc % (2 * CD_LANES) == 0 ? 2 : 1;
    /* 14-pixel tiles where a row holds whole ones and one vector of
     * channels leaves the registers for them; else 7 (the 7x7 maps) */
    g->t = g->v == 1 && (s->ow % 14 == 0 || s->ow % 7 != 0) && s->ow > 7 ? 14 : 7;
    g->ntx = (s->ow + g->t - 1) / g->t;
    g->ph = s->ih + 2 * s->pad;
    const int wide = (g->ntx * g->t - 1) * s->stride + s->kw; /* the last tile's reach */
    g->pw = s->iw + 2 * s->pad > wide ? s->iw + 2 * s->pad : wide;
    g->key = (g->v == 2 ? 2 : g->t == 14 ? 1 : 0) * 2 + (s->stride == 2); /* V = 2 has T = 7 only */
}

/* Calls TILE(args..., V, T, stride) for the (V, T, stride) of a geometry's
 * key and returns: the switch gives each its own fully unrolled copy of
 * the tile (the constants fold after inlining). */
#define CD_BY_KEY(key, TILE, ...)                                                                  \
    switch (key) {                                                                                 \
    case 0: TILE(__VA_ARGS__, 1, 7, 1); return;                                                    \
    case 1: TILE(__VA_ARGS__, 1, 7, 2); return;                                                    \
    case 2: TILE(__VA_ARGS__, 1, 14, 1); return;                                                   \
    case 3: TILE(__VA_ARGS__, 1, 14, 2); return;                                                   \
    case 4: TILE(__VA_ARGS__, 2, 7, 1); return;                                                    \
    default: TILE(__VA_ARGS__, 2, 7, 2); return;                                                   \
    }

#endif
