/* layers_check.h - the helpers the layer tests share (test_layers.c,
 * test_conv.c): tracked allocations, seeded fills, array comparison with
 * stated tolerances, central finite differences of L = sum(out * R) and
 * the accum contract. Test-only, included by each test's one .c file, as
 * check.h is. */
#ifndef SATURN_LAYERS_CHECK_H
#define SATURN_LAYERS_CHECK_H

#include "check.h"
#include "nn/layers.h"
#include "util/err.h"
#include "util/rng.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Helpers ============================================================ */

static struct sat_rng rng;
static void *allocs[4096];
static int nallocs;

/* Zeroed buffer, freed by free_all() so the sanitizer build sees no leak. */
static inline void *tmalloc(size_t bytes)
{
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p || nallocs == (int)(sizeof(allocs) / sizeof(allocs[0]))) {
        fprintf(stderr, "test_layers: out of memory or allocation slots\n");
        exit(2);
    }
    allocs[nallocs++] = p;
    return p;
}

static inline float *fvec(size_t len)
{
    return tmalloc(len * sizeof(float));
}

static inline void free_all(void)
{
    while (nallocs > 0)
        free(allocs[--nallocs]);
}

static inline void fill_uniform(float *x, size_t len, float lo, float hi)
{
    for (size_t i = 0; i < len; i++)
        x[i] = lo + (hi - lo) * (float)sat_rng_uniform(&rng);
}

static inline void fill_const(float *x, size_t len, float v)
{
    for (size_t i = 0; i < len; i++)
        x[i] = v;
}

/* 1 when a and b hold the same bits; else prints the first difference. */
static inline int same_bits(const char *what, const char *which, const float *a, const float *b,
                            size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            fprintf(stderr, "%s %s: [%zu] %.9g != %.9g\n", what, which, i, (double)a[i],
                    (double)b[i]);
            return 0;
        }
    }
    return 1;
}

static inline float *copy_of(const float *x, size_t len)
{
    float *y = fvec(len);
    memcpy(y, x, len * sizeof(float));
    return y;
}

static inline double dot_d(const float *a, const float *b, size_t len)
{
    double s = 0.0;
    for (size_t i = 0; i < len; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* One check over a whole array: every element must satisfy
 * |got - ref| <= atol + rtol * |ref| (NaN fails); reports the worst one. */
#define CHECK_ARRAY(what, got, ref, len, atol, rtol)                                               \
    check_array(__FILE__, __LINE__, what, got, ref, len, atol, rtol)

static inline void check_array(const char *file, int line, const char *what, const float *got,
                               const float *ref, size_t len, double atol, double rtol)
{
    size_t bad = 0, worst = 0;
    double wex = -INFINITY;
    for (size_t i = 0; i < len; i++) {
        double ex = fabs((double)got[i] - ref[i]) - (atol + rtol * fabs((double)ref[i]));
        if (!(ex <= 0.0)) {
            if (bad == 0 || ex > wex || isnan(ex)) {
                wex = isnan(ex) ? INFINITY : ex;
                worst = i;
            }
            bad++;
        }
    }
    check_count++;
    if (bad) {
        check_failures++;
        fprintf(stderr,
                "%s:%d: %s: %zu of %zu elements off, worst [%zu] %.9g vs %.9g (atol %g rtol %g)\n",
                file, line, what, bad, len, worst, (double)got[worst], (double)ref[worst], atol,
                rtol);
    }
}

/* The accum contract: got1 was computed with accum 1 on top of base, got0
 * with accum 0 on top of NaN; got1 - base must equal got0 to rounding. */
static inline void check_accum(const char *what, int line, const float *got1, const float *base,
                               const float *got0, size_t len)
{
    float *diff = fvec(len);
    for (size_t i = 0; i < len; i++)
        diff[i] = got1[i] - base[i];
    /* one float rounding of the sum: 1e-6 abs (|base| <= 1) plus 1e-6 rel */
    check_array(__FILE__, line, what, diff, got0, len, 1e-6, 1e-6);
}

/* ==== Finite differences ================================================= */

/* Runs the forward of one case with the current contents of its buffers and
 * returns the scalar loss in double. */
typedef double (*loss_fn)(void *ctx);

/* Central differences of f over every element of x against the analytic
 * gradient `grad`: num = (f(x + e) - f(x - e)) / ((x + e) - (x - e)), with
 * the step measured in float so that rounding of x +- e does not bias it. */
static inline void check_fd(const char *what, int line, float *x, size_t len, const float *grad,
                            loss_fn f, void *ctx, float eps, double atol, double rtol)
{
    float *num = fvec(len);
    for (size_t i = 0; i < len; i++) {
        const float save = x[i];
        const float hi = save + eps, lo = save - eps;
        x[i] = hi;
        const double fp = f(ctx);
        x[i] = lo;
        const double fm = f(ctx);
        x[i] = save;
        num[i] = (float)((fp - fm) / ((double)hi - (double)lo));
    }
    check_array(__FILE__, line, what, grad, num, len, atol, rtol);
}

/* Buffers of a gradient check that writes an input gradient. Returns two
 * buffers: d0 prefilled with NaN (for accum 0) and d1 with a random base. */
static inline void make_dinp_pair(size_t len, float **d0, float **d1, float **base)
{
    *d0 = fvec(len);
    fill_const(*d0, len, NAN);
    *base = fvec(len);
    fill_uniform(*base, len, -1.0f, 1.0f);
    *d1 = copy_of(*base, len);
}

/* Parameter gradients accumulate: they start at this value and the check
 * subtracts it (exactly representable, so the subtraction is exact up to
 * one rounding of the sum). */
#define PGRAD_BASE 0.25f

static inline float *pgrad(size_t len)
{
    float *g = fvec(len);
    fill_const(g, len, PGRAD_BASE);
    return g;
}

static inline void unbase(float *g, size_t len)
{
    for (size_t i = 0; i < len; i++)
        g[i] -= PGRAD_BASE;
}

#endif
