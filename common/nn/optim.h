/* optim.h - SGD with momentum, Nesterov and weight decay by role, and the
 * per-iteration learning-rate schedule.
 *
 * The update is PyTorch's SGD, so that recipes carry over:
 *   g = grad + wd * w              (wd only for roles that decay)
 *   v = momentum * v + g
 *   g = nesterov ? g + momentum * v : v
 *   w = w - lr * g
 */
#ifndef SATURN_OPTIM_H
#define SATURN_OPTIM_H

#include <stddef.h>

#include "model.h"

struct sgd_cfg {
    float momentum;
    float weight_decay;
    int nesterov;
};

/* Applies one update to the parameter range [lo, hi) (in floats) of the
 * table's flat buffers: params, grads and the momentum buffer `mom`, all
 * laid out by `tab`. Returns SAT_ENAN and changes nothing when any gradient
 * in the range is not finite (the caller counts it as a skipped step). */
int sgd_update(float *params, const float *grads, float *mom, const struct param_table *tab,
               size_t lo, size_t hi, const struct sgd_cfg *cfg, float lr);

/* Checks that grads[lo, hi) are all finite; returns 0 or SAT_ENAN. */
int grads_finite(const float *grads, size_t lo, size_t hi);

/* Learning rate at iteration `it` (0-based) of `total`: linear warm-up over
 * the first `warmup` iterations from lr/warmup to lr, then cosine from lr to
 * 0 at iteration total: lr * (1 + cos(pi * (it - warmup) / (total - warmup))) / 2. */
float lr_at(long it, long total, long warmup, float lr);

#endif
