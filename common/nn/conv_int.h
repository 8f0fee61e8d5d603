/* conv_int.h - private to common/nn: the padding-range helper that the
 * dense (conv.c) and depthwise (dwconv.c) convolutions share.
 *
 * Padding is handled by ranges: for kernel offset k, the output positions
 * whose input position o*stride - pad + k falls inside the image form one
 * interval [lo, hi), so the inner loops run over contiguous output rows
 * without a bounds test per element.
 */
#ifndef SATURN_NN_CONV_INT_H
#define SATURN_NN_CONV_INT_H

#include <stddef.h>
#include <stdint.h>

struct conv_shape;

/* Output positions o in [0, on) whose input position o*stride - pad + k lies
 * in [0, in) form the interval [*lo, *hi) (empty when *lo == *hi). */
static inline void conv_range(int on, int in, int k, int stride, int pad, int *lo, int *hi)
{
    int a = pad - k; /* o*stride >= a */
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int b = in - 1 + pad - k; /* o*stride <= b */
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > on)
        h = on;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* ---- The direct dense convolution (conv_direct.c) ---- */

/* 1 when the direct kernel takes s's forward: dense, stride 1 or 2, OC a
 * multiple of 16, kernel from 2 taps to 7x7 (1x1 kernels stay GEMMs). */
int conv_direct_ok(const struct conv_shape *s);
/* Floats of per-thread buffer conv_direct_image needs for s. */
size_t conv_direct_thread_floats(const struct conv_shape *s);
/* wp (OC*IC*KH*KW floats, the kernel's packed order) from w (OC, IC, KH, KW). */
void conv_direct_pack(float *wp, const float *w, const struct conv_shape *s);
/* The direct kernel's versions; all give bit-identical results. */
enum conv_direct_isa { CONV_DIRECT_PORTABLE, CONV_DIRECT_AVX2, CONV_DIRECT_AVX512 };
/* 1 when this CPU runs the given version (the portable one always). */
int conv_direct_isa_available(enum conv_direct_isa isa);
/* Image b of out (OC, N, OH, OW) = (accum 0) or += (accum 1) the convolution
 * of image b of inp (IC, N, IH, IW) with the packed weights wp. buf is the
 * calling thread's buffer of conv_direct_thread_floats(s); isa one that
 * conv_direct_isa_available() accepts. */
void conv_direct_image(float *out, const float *inp, const float *wp, const struct conv_shape *s,
                       int b, float *buf, int accum, enum conv_direct_isa isa);

/* 1 when the direct kernel also takes s's weight gradient (3x3 kernels,
 * at least 8 input channels). */
int conv_direct_dw_ok(const struct conv_shape *s);
/* Where weight (o, i), i = (c*KH + ki)*KW + kj, sits in the packed order. */
size_t conv_direct_packed_index(const struct conv_shape *s, int o, int i);
/* dwp (OC*IC*9, packed order) += the weight gradient of image b: per weight
 * the sum over the image's pixels in row-major order, from 0, of fused
 * multiply-adds of dout (OC, N, OH, OW) and inp (IC, N, IH, IW). */
void conv_direct_dw_image(float *dwp, const float *dout, const float *inp,
                          const struct conv_shape *s, int b, float *buf, enum conv_direct_isa isa);

/* ---- The integer forward of quantized layers (conv_q.c) ---- */

/* 1 when the integer kernel takes the forward of s with wbits-bit weights
 * and abits-bit activation codes: conv_direct_ok, IC a multiple of 4, the
 * codes fit u8 / s8 (abits <= 8, wbits <= 7), two products fit int16
 * (2*wa*aa < 2^15, for AVX2) and every sum is below 2^24. */
int conv_q_ok(const struct conv_shape *s, int wbits, int abits);
/* Its versions; all give the same integers, so the same bits. */
enum conv_q_isa { CONV_Q_PORTABLE, CONV_Q_AVX2, CONV_Q_VNNI };
int conv_q_isa_available(enum conv_q_isa isa);
/* Floats of per-thread buffer conv_q_image needs (at most
 * conv_direct_thread_floats(s)). */
size_t conv_q_thread_floats(const struct conv_shape *s);
/* wq (OC*IC*KH*KW bytes, packed) = the weight codes rint(weff*wa/sat),
 * wa = 2^wbits - 1. */
void conv_q_pack(int8_t *wq, const float *weff, float sat, int wbits, const struct conv_shape *s);
/* What turns codes into values: scale = (float)(sat*al/(wa*aa)) for the
 * output; activation code = rint(y*ainv), ainv = aa/al, clamped to [0, aa]. */
struct conv_q_scale {
    float scale, ainv, aa;
};
/* Image b of out (OC, N, OH, OW) = scale * the integer convolution of the
 * codes of image b of inp (IC, N, IH, IW) with wq. */
void conv_q_image(float *out, const float *inp, const int8_t *wq, const struct conv_shape *s,
                  int b, float *buf, const struct conv_q_scale *q, enum conv_q_isa isa);

#endif
