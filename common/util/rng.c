/* rng.c - the parts of the counter-based generator that are not inline. */
#include "rng.h"

#include <math.h>

double sat_rng_normal(struct sat_rng *r)
{
    double u1 = sat_rng_uniform(r);
    double u2 = sat_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void sat_rng_shuffle_u32(struct sat_rng *r, uint32_t *idx, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = sat_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
