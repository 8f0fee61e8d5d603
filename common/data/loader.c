/* loader.c - shards, per-epoch order and batch filling with augmentation.
 *
 * Every random choice here is a pure function of the job seed and a
 * position, drawn from counter-based streams (util/rng.h):
 *  - shard:    a keyed permutation of 0..n-1, evaluated position by position
 *              (a Feistel network with cycle walking), so every rank computes
 *              its own slice in O(shard) time and no memory;
 *  - epoch:    a Fisher-Yates shuffle of the shard keyed by (seed, epoch, rank);
 *  - augment:  one stream per image keyed by (seed, epoch, rank, position).
 */
#include "dataset.h"
#include "dataset_int.h"

#include <assert.h>
#include <string.h>

/* ==== Shards ========================================================== */

#define PERM_ROUNDS 6

/* A keyed bijection of [0, n): a balanced Feistel network on the smallest
 * domain 4^k >= n, iterated until the value falls back into [0, n) (cycle
 * walking; at most 4 iterations expected since the domain is < 4n). */
struct perm {
    uint32_t n;
    unsigned half; /* bits per Feistel half */
    uint32_t mask; /* (1 << half) - 1 */
    uint64_t key[PERM_ROUNDS];
};

static void perm_init(struct perm *p, uint32_t n, uint64_t seed)
{
    unsigned bits = 2;
    while (bits < 32 && ((uint64_t)1 << bits) < n)
        bits += 2;
    p->n = n;
    p->half = bits / 2;
    p->mask = ((uint32_t)1 << p->half) - 1;
    struct sat_rng r;
    sat_rng_init(&r, data__stream_seed(seed, DATA__RNG_SHARD));
    for (int i = 0; i < PERM_ROUNDS; i++)
        p->key[i] = sat_rng_u64(&r);
}

static uint32_t perm_apply(const struct perm *p, uint32_t x)
{
    do {
        uint32_t l = x >> p->half, r = x & p->mask;
        for (int i = 0; i < PERM_ROUNDS; i++) {
            uint32_t t = l ^ ((uint32_t)sat_mix64(p->key[i] ^ r) & p->mask);
            l = r;
            r = t;
        }
        x = l << p->half | r;
    } while (x >= p->n);
    return x;
}

uint32_t dataset_shard_size(uint32_t n, int rank, int world)
{
    if (world <= 0 || rank < 0 || rank >= world)
        return 0;
    uint64_t lo = (uint64_t)rank * n / (uint64_t)world;
    uint64_t hi = (uint64_t)(rank + 1) * n / (uint64_t)world;
    return (uint32_t)(hi - lo);
}

uint32_t dataset_shard(uint32_t *idx, uint32_t n, uint64_t seed, int rank, int world)
{
    uint32_t len = dataset_shard_size(n, rank, world);
    if (len == 0)
        return 0;
    uint32_t lo = (uint32_t)((uint64_t)rank * n / (uint64_t)world);
    struct perm p;
    perm_init(&p, n, seed);
    for (uint32_t i = 0; i < len; i++)
        idx[i] = perm_apply(&p, lo + i);
    return len;
}

void dataset_epoch_order(uint32_t *order, const uint32_t *shard, uint32_t len, uint64_t seed,
                         int epoch, int rank)
{
    if (order != shard)
        memmove(order, shard, (size_t)len * sizeof *order);
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(data__stream_seed(seed, DATA__RNG_EPOCH), (uint64_t)(int64_t)epoch,
                                 (uint64_t)(int64_t)rank, 0));
    sat_rng_shuffle_u32(&r, order, len);
}

/* ==== Batches ========================================================= */

/* out (H, W) = augmented in (H, W), in one pass:
 * out(h, w) = in(h + dy, (flip ? W-1-w : w) + dx) / 255, or 0 outside. */
static void augment_plane(float *out, const uint8_t *in, int H, int W, int dx, int dy, int flip,
                          const float *lut)
{
    /* Columns [lo, hi) read a source pixel; the others are padding. */
    int lo = flip ? dx : -dx;
    int hi = flip ? W + dx : W - dx;
    lo = lo < 0 ? 0 : lo;
    hi = hi > W ? W : hi;
    hi = hi < lo ? lo : hi;
    for (int h = 0; h < H; h++) {
        float *o = out + (size_t)h * W;
        int sy = h + dy;
        if (sy < 0 || sy >= H || lo == hi) {
            memset(o, 0, (size_t)W * sizeof *o);
            continue;
        }
        const uint8_t *s = in + (size_t)sy * W;
        for (int w = 0; w < lo; w++)
            o[w] = 0.0f;
        if (flip) {
            const int base = W - 1 + dx;
            for (int w = lo; w < hi; w++)
                o[w] = lut[s[base - w]];
        } else {
            for (int w = lo; w < hi; w++)
                o[w] = lut[s[w + dx]];
        }
        for (int w = hi; w < W; w++)
            o[w] = 0.0f;
    }
}

void loader_fill(float *x, int32_t *y, const struct dataset *ds, const uint32_t *idx, int b,
                 const struct augment *aug, uint64_t seed, int epoch, int rank, uint64_t pos0)
{
    /* pixel / 255.0f exactly (a table is both exact and cheaper than a divide). */
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = (float)i / 255.0f;

    const int C = ds->c, H = ds->h, W = ds->w;
    const size_t hw = (size_t)H * W, img = (size_t)C * hw;
    const int on = aug && aug->enabled && (aug->pad > 0 || aug->flip);
    const int pad = !on || aug->pad <= 0         ? 0
                    : aug->pad > DATASET_MAX_DIM ? DATASET_MAX_DIM
                                                 : aug->pad;
    const uint64_t aseed = data__stream_seed(seed, DATA__RNG_AUGMENT);

    for (int j = 0; j < b; j++) {
        assert(idx[j] < (uint32_t)ds->n);
        const uint8_t *src = ds->pixels + (size_t)idx[j] * img;
        y[j] = ds->labels[idx[j]];
        if (!on) {
            for (int c = 0; c < C; c++) {
                float *o = x + ((size_t)c * b + j) * hw;
                const uint8_t *s = src + (size_t)c * hw;
                for (size_t k = 0; k < hw; k++)
                    o[k] = lut[s[k]];
            }
            continue;
        }
        /* Fixed draw order (flip word, then dy, dx when padding) so that the
         * flip does not depend on pad nor the crop on whether flip is on. */
        struct sat_rng r;
        sat_rng_init(&r, sat_rng_key(aseed, (uint64_t)(int64_t)epoch, (uint64_t)(int64_t)rank,
                                     pos0 + (uint64_t)j));
        int flip = (int)(sat_rng_u64(&r) >> 63) & (aug->flip != 0);
        int dy = 0, dx = 0;
        if (pad > 0) {
            dy = (int)sat_rng_below(&r, 2 * (uint32_t)pad + 1) - pad;
            dx = (int)sat_rng_below(&r, 2 * (uint32_t)pad + 1) - pad;
        }
        for (int c = 0; c < C; c++)
            augment_plane(x + ((size_t)c * b + j) * hw, src + (size_t)c * hw, H, W, dx, dy, flip,
                          lut);
    }
}
