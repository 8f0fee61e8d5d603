/* optim.c - see optim.h. */
#include "optim.h"

#include <math.h>

int grads_finite(const float *grads, size_t lo, size_t hi)
{
    /* Any NaN or Inf makes the sum non-finite; one vectorisable pass. */
    float acc = 0.0f;
    for (size_t i = lo; i < hi; i++)
        acc += grads[i] * 0.0f;
    return acc == 0.0f ? 0 : SAT_ENAN;
}

int sgd_update(float *params, const float *grads, float *mom, const struct param_table *tab,
               size_t lo, size_t hi, const struct sgd_cfg *cfg, float lr)
{
    if (grads_finite(grads, lo, hi) != 0)
        return SAT_ENAN;
    const float mu = cfg->momentum;
    for (int e = 0; e < tab->n; e++) {
        const struct param_entry *pe = &tab->e[e];
        size_t a = pe->offset, b = pe->offset + pe->numel;
        if (b <= lo || a >= hi)
            continue;
        a = a < lo ? lo : a;
        b = b > hi ? hi : b;
        const float wd = param_role_decays(pe->role) ? cfg->weight_decay : 0.0f;
        for (size_t i = a; i < b; i++) {
            float g = grads[i] + wd * params[i];
            float v = mu * mom[i] + g;
            mom[i] = v;
            float step = cfg->nesterov ? g + mu * v : v;
            params[i] -= lr * step;
        }
    }
    return 0;
}

float lr_at(long it, long total, long warmup, float lr)
{
    if (total <= 0)
        return lr;
    if (warmup > 0 && it < warmup)
        return lr * (float)(it + 1) / (float)warmup;
    if (it >= total)
        return 0.0f;
    double p = (double)(it - warmup) / (double)(total - warmup);
    return (float)(lr * 0.5 * (1.0 + cos(M_PI * p)));
}
