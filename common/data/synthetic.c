/* synthetic.c - a learnable synthetic image data set for tests and smoke runs.
 *
 * Each (class, channel) has a template: a coarse SYNTH_GRID x SYNTH_GRID grid
 * of random levels, bilinearly upsampled to H x W, so neighbouring pixels are
 * correlated the way a convolution expects. An image is its class template
 * plus per-pixel noise, quantised to 0..255. The signal (template swing of
 * +-SYNTH_AMPLITUDE levels) dominates the noise (SYNTH_NOISE levels) over a
 * few pixels, so a linear model already separates the classes while a single
 * pixel does not.
 *
 * Everything is integer arithmetic (fixed point in 1/256 pixel levels), so
 * the data set is bit-identical on every platform and libm.
 */
#include "dataset.h"
#include "dataset_int.h"

#include "../util/xalloc.h"

#include <string.h>

#define SYNTH_GRID 4       /* template grid per axis (fewer when the image is smaller) */
#define SYNTH_AMPLITUDE 64 /* template means lie in 128 +- 64 levels */
#define SYNTH_NOISE 48     /* noise standard deviation, in levels */
#define SYNTH_MAX_CLASSES 256
/* The sum of the 8 bytes of a uniform u64 has mean 8 * 127.5 and standard
 * deviation sqrt(8 * (256^2 - 1) / 12) ~= 209: close to normal. */
#define BYTESUM_MEAN 1020
#define BYTESUM_SD 209

/* Sum of the 8 bytes of u, by adding byte pairs in 16-bit lanes. */
static int32_t bytesum(uint64_t u)
{
    uint64_t s = (u & 0x00ff00ff00ff00ffull) + ((u >> 8) & 0x00ff00ff00ff00ffull);
    return (int32_t)((s * 0x0001000100010001ull) >> 48);
}

/* Bilinear position of output coordinate y (of n) on a grid of g cells:
 * cell i0, next cell i1, and weight r/d of i1. */
static void grid_pos(int y, int n, int g, int *i0, int *i1, int64_t *r, int64_t *d)
{
    *d = n > 1 ? n - 1 : 1;
    int64_t num = (int64_t)y * (g - 1);
    *i0 = (int)(num / *d);
    *r = num % *d;
    *i1 = *i0 + 1 < g ? *i0 + 1 : *i0;
}

/* tmpl (nclass, c, h, w): template means in 1/256 levels. */
static void synth_templates(int32_t *tmpl, int c, int h, int w, int nclass, uint64_t seed)
{
    int gh = h < SYNTH_GRID ? h : SYNTH_GRID;
    int gw = w < SYNTH_GRID ? w : SYNTH_GRID;
    uint64_t tseed = data__stream_seed(seed, DATA__RNG_SYNTH_TEMPLATE);
    for (int k = 0; k < nclass; k++) {
        for (int ch = 0; ch < c; ch++) {
            struct sat_rng r;
            sat_rng_init(&r, sat_rng_key(tseed, (uint64_t)k, (uint64_t)ch, 0));
            int64_t g[SYNTH_GRID][SYNTH_GRID]; /* levels in [-128, 127] */
            for (int gy = 0; gy < gh; gy++)
                for (int gx = 0; gx < gw; gx++)
                    g[gy][gx] = (int64_t)(sat_rng_u64(&r) >> 56) - 128;
            int32_t *t = tmpl + ((size_t)k * c + ch) * h * w;
            for (int y = 0; y < h; y++) {
                int y0, y1, x0, x1;
                int64_t ry, dy, rx, dx;
                grid_pos(y, h, gh, &y0, &y1, &ry, &dy);
                for (int x = 0; x < w; x++) {
                    grid_pos(x, w, gw, &x0, &x1, &rx, &dx);
                    int64_t v = g[y0][x0] * (dy - ry) * (dx - rx) + g[y0][x1] * (dy - ry) * rx +
                                g[y1][x0] * ry * (dx - rx) + g[y1][x1] * ry * rx;
                    /* v / (dy dx) is in [-128, 127]; scale to +-AMPLITUDE levels. */
                    t[(size_t)y * w + x] =
                        (int32_t)(128 * 256 + v * (SYNTH_AMPLITUDE * 2) / (dy * dx));
                }
            }
        }
    }
}

int dataset_synthetic(struct dataset *ds, int n, int c, int h, int w, int nclass, uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    if (n < 1 || n > DATASET_MAX_IMAGES || c < 1 || c > DATASET_MAX_DIM || h < 1 ||
        h > DATASET_MAX_DIM || w < 1 || w > DATASET_MAX_DIM || nclass < 1 ||
        nclass > SYNTH_MAX_CLASSES)
        return SAT_EINVAL;
    size_t img = (size_t)c * h * w;
    int32_t *tmpl = sat_malloc((size_t)nclass * img * sizeof *tmpl);
    uint8_t *pixels = sat_malloc((size_t)n * img);
    uint8_t *labels = sat_malloc((size_t)n);
    if (!tmpl || !pixels || !labels) {
        sat_free(tmpl);
        sat_free(pixels);
        sat_free(labels);
        return SAT_ENOMEM;
    }
    synth_templates(tmpl, c, h, w, nclass, seed);

    uint64_t iseed = data__stream_seed(seed, DATA__RNG_SYNTH_IMAGE);
    for (int i = 0; i < n; i++) {
        int label = i % nclass;
        labels[i] = (uint8_t)label;
        /* Keyed by n too, so that train and test sets of one seed differ. */
        struct sat_rng r;
        sat_rng_init(&r, sat_rng_key(iseed, (uint64_t)n, (uint64_t)i, 0));
        const int32_t *t = tmpl + (size_t)label * img;
        uint8_t *p = pixels + (size_t)i * img;
        for (size_t k = 0; k < img; k++) {
            int32_t noise =
                (bytesum(sat_rng_u64(&r)) - BYTESUM_MEAN) * (SYNTH_NOISE * 256) / BYTESUM_SD;
            int32_t v = t[k] + noise + 128; /* + 1/2 level: round to nearest */
            p[k] = v <= 0 ? 0 : v >= 255 * 256 ? 255 : (uint8_t)(v >> 8);
        }
    }
    sat_free(tmpl);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclass = nclass;
    ds->pixels = pixels;
    ds->labels = labels;
    return 0;
}
