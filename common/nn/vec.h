/* vec.h - private to common/nn: four-float vectors for the hot row loops.
 *
 * The project builds with -O2, where GCC 12 vectorizes only loops that need
 * no scalar epilogue and no alias check, which leaves every row loop of the
 * kernels scalar. These helpers spell the vector code out with GCC/Clang
 * vector extensions (plain SSE2 on x86-64, NEON on arm64). Element-wise
 * helpers do exactly the scalar operation in each lane, so their results
 * are bit-identical to the scalar loop; vec_dot sums in four fixed lanes,
 * which is deterministic but not the scalar order.
 */
#ifndef SATURN_NN_VEC_H
#define SATURN_NN_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

/* Unaligned load and store (memcpy compiles to one movups). */
static inline v4f v4f_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void v4f_store(float *p, v4f v)
{
    memcpy(p, &v, sizeof(v));
}

/* d[i] += s[i], i < n */
static inline void vec_add(float *restrict d, const float *restrict s, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        v4f_store(d + i, v4f_load(d + i) + v4f_load(s + i));
    for (; i < n; i++)
        d[i] += s[i];
}

/* d[i] += a * s[i], i < n */
static inline void vec_axpy(float *restrict d, float a, const float *restrict s, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        v4f_store(d + i, v4f_load(d + i) + a * v4f_load(s + i));
    for (; i < n; i++)
        d[i] += a * s[i];
}

/* sum a[i] * b[i], i < n, in four float lanes (tail in lane 0), reduced as
 * (l0 + l1) + (l2 + l3). */
static inline float vec_dot(const float *restrict a, const float *restrict b, size_t n)
{
    v4f acc = {0.0f, 0.0f, 0.0f, 0.0f};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        acc += v4f_load(a + i) * v4f_load(b + i);
    for (; i < n; i++)
        acc[0] += a[i] * b[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

#endif
