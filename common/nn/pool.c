/* pool.c - the pooling and reshaping kernels of layers.h: max pooling over
 * the (C, N) planes of a CNHW tensor (each thread its own images of every
 * channel, threads.h), global average pooling and flatten.
 */
#include "nn/layers.h"
#include "nn/threads.h"

#include <stdint.h>
#include <string.h>

/* ==== Pooling and reshaping ============================================== */

/* Each output scans its k x k window row by row and keeps the first strict
 * maximum. Rows and columns past (IH/k)*k, (IW/k)*k are not read. */
/* 2x2 windows, the common case: branch-free selects. */
static void maxpool2_plane(float *restrict o, int32_t *restrict a, const float *restrict in, int ih,
                           int iw)
{
    const int oh = ih / 2, ow = iw / 2;
    for (int y = 0; y < oh; y++) {
        const float *r0 = in + (size_t)(2 * y) * iw, *r1 = r0 + iw;
        const int32_t base = 2 * y * iw;
        for (int x = 0; x < ow; x++) {
            float bv = r0[2 * x];
            int32_t bi = base + 2 * x;
            float v = r0[2 * x + 1];
            int gt = v > bv;
            bv = gt ? v : bv;
            bi = gt ? base + 2 * x + 1 : bi;
            v = r1[2 * x];
            gt = v > bv;
            bv = gt ? v : bv;
            bi = gt ? base + iw + 2 * x : bi;
            v = r1[2 * x + 1];
            gt = v > bv;
            bv = gt ? v : bv;
            bi = gt ? base + iw + 2 * x + 1 : bi;
            o[y * ow + x] = bv;
            a[y * ow + x] = bi;
        }
    }
}

/* One plane, any k. */
static void maxpool_plane(float *restrict o, int32_t *restrict a, const float *restrict in, int ih,
                          int iw, int k)
{
    if (k == 2) {
        maxpool2_plane(o, a, in, ih, iw);
        return;
    }
    const int oh = ih / k, ow = iw / k;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int32_t best = (int32_t)(y * k * iw + x * k);
            float bv = in[best];
            for (int i = 0; i < k; i++) {
                const int row = (y * k + i) * iw + x * k;
                for (int j = 0; j < k; j++) {
                    if (in[row + j] > bv) {
                        bv = in[row + j];
                        best = row + j;
                    }
                }
            }
            o[y * ow + x] = bv;
            a[y * ow + x] = best;
        }
    }
}

/* The images per channel of `planes` (C, N) planes: the layout's N when it
 * fits, else all of them in one channel. */
static int planes_images(int planes)
{
    const int n = nn_layout_images();
    return n > 0 && planes % n == 0 ? n : planes;
}

void maxpool_forward(float *restrict out, int32_t *restrict argmax, const float *restrict inp,
                     int planes, int ih, int iw, int k)
{
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)(ih / k) * (iw / k);
    const int n = planes_images(planes);
    NN_FOR_PLANES(p, planes / n, n, planes > 8)
    maxpool_plane(out + (size_t)p * ohw, argmax + (size_t)p * ohw, inp + (size_t)p * ihw, ih, iw,
                  k);
    NN_END_PLANES
}

/* Windows do not overlap (stride k), so each input receives at most one
 * gradient and the scatter needs no ordering. */
void maxpool_backward(float *restrict dinp, const float *restrict dout,
                      const int32_t *restrict argmax, int planes, int ih, int iw, int k, int accum)
{
    const size_t ihw = (size_t)ih * iw, ohw = (size_t)(ih / k) * (iw / k);
    const int n = planes_images(planes);
    NN_FOR_PLANES(p, planes / n, n, planes > 8)
    float *d = dinp + (size_t)p * ihw;
    if (!accum)
        memset(d, 0, ihw * sizeof(float));
    const float *g = dout + (size_t)p * ohw;
    const int32_t *a = argmax + (size_t)p * ohw;
    for (size_t i = 0; i < ohw; i++)
        d[a[i]] += g[i];
    NN_END_PLANES
}

void gap_forward(float *restrict out, const float *restrict inp, int c, int n, int hw)
{
    const size_t planes = (size_t)c * n;
    for (size_t p = 0; p < planes; p++) {
        const float *x = inp + p * hw;
        double acc = 0.0;
        for (int i = 0; i < hw; i++)
            acc += x[i];
        out[p] = (float)(acc / hw);
    }
}

void gap_backward(float *restrict dinp, const float *restrict dout, int c, int n, int hw, int accum)
{
    const size_t planes = (size_t)c * n;
    const float inv = 1.0f / (float)hw;
    for (size_t p = 0; p < planes; p++) {
        float *d = dinp + p * hw;
        const float g = dout[p] * inv;
        if (accum) {
            for (int i = 0; i < hw; i++)
                d[i] += g;
        } else {
            for (int i = 0; i < hw; i++)
                d[i] = g;
        }
    }
}

/* Per channel, a transpose of (N, HW) into (HW, N). */
void flatten_forward(float *restrict out, const float *restrict inp, int c, int n, int hw)
{
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        const float *x = inp + (size_t)ch * n * hw;
        float *y = out + (size_t)ch * hw * n;
        for (int j = 0; j < n; j++)
            for (int p = 0; p < hw; p++)
                y[(size_t)p * n + j] = x[(size_t)j * hw + p];
    }
}

void flatten_backward(float *restrict dinp, const float *restrict dout, int c, int n, int hw,
                      int accum)
{
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (c > 1)
    for (int ch = 0; ch < c; ch++) {
        float *d = dinp + (size_t)ch * n * hw;
        const float *g = dout + (size_t)ch * hw * n;
        for (int j = 0; j < n; j++) {
            if (accum) {
                for (int p = 0; p < hw; p++)
                    d[(size_t)j * hw + p] += g[(size_t)p * n + j];
            } else {
                for (int p = 0; p < hw; p++)
                    d[(size_t)j * hw + p] = g[(size_t)p * n + j];
            }
        }
    }
}
