/* bn_view.h - private to common/nn: the BatchNorm affine map, shared by
 * bn_forward_* (layers.c) and by what reads a BN output through a struct
 * bn_view (the activations in elementwise.c and quant.c, BN's backward
 * with its activation folded in, layers.c), so that all compute every
 * value with the same float operations: (x - mu) * scale + shift, in vector
 * lanes or in the scalar tail alike (no contraction: -ffp-contract=off).
 */
#ifndef SATURN_NN_BN_VIEW_H
#define SATURN_NN_BN_VIEW_H

#include "nn/layers.h"
#include "nn/vec.h"

/* Values per chunk that the view kernels materialise at a time (on the stack). */
#define BN_VIEW_CHUNK 64

/* y[i] = (x[i] - mu) * scale + shift, i < m; y may be x (each vector is
 * loaded before it is stored). */
static inline void bn_affine(float *y, const float *x, size_t m, float mu, float scale, float shift)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4)
        v4f_store(y + i, (v4f_load(x + i) - mu) * scale + shift);
    for (; i < m; i++)
        y[i] = (x[i] - mu) * scale + shift;
}

/* The view's values come in runs of one channel each: the run from flat
 * index i (before end) is channel *c = i / m, up to the returned index
 * (the channel's end, or end). Every kernel reading a view walks it so. */
static inline size_t bn_view_run(const struct bn_view *v, size_t i, size_t end, size_t *c)
{
    *c = i / v->m;
    const size_t ce = (*c + 1) * v->m;
    return ce < end ? ce : end;
}

/* dst[j] = the view's value at flat index i0 + j, j < n (channel (i0+j) / m). */
static inline void bn_view_fill(float *restrict dst, const struct bn_view *v, size_t i0, size_t n)
{
    const size_t end = i0 + n;
    for (size_t i = i0, c, ce; i < end; i = ce) {
        ce = bn_view_run(v, i, end, &c);
        bn_affine(dst + (i - i0), v->x + i, ce - i, v->mu[c], v->scale[c], v->shift[c]);
    }
}

/* Calls fn(ctx, i, xs, n) for consecutive runs of the view's c*m values:
 * xs holds the values at flat indices [i, i + n), n <= BN_VIEW_CHUNK. The
 * runs lie in ranges that run in parallel (threads.h, nn_ranges: blocks
 * of blk values without a layout), so fn must only touch indices
 * [i, i + n) of what it writes. */
typedef void (*bn_view_fn)(void *ctx, size_t i, const float *xs, size_t n);
void bn_view_foreach(const struct bn_view *v, int c, size_t blk, bn_view_fn fn, void *ctx);

#endif
