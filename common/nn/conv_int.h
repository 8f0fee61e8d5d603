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

#endif
