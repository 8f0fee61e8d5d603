/* rng.h - counter-based random numbers.
 *
 * Every random draw in Saturn is a pure function of a key and a counter, so
 * that any position in a run can be reproduced without replaying it: the
 * key is derived from (seed, purpose, epoch, rank, ...) with sat_rng_key and
 * the stream's counter is its whole state. A checkpoint therefore needs only
 * (seed, epoch, step) to resume every stream exactly.
 */
#ifndef SATURN_RNG_H
#define SATURN_RNG_H

#include <stdint.h>

struct sat_rng {
    uint64_t key; /* derived from the seed and the purpose of the stream */
    uint64_t ctr; /* number of 64-bit words drawn so far */
};

/* splitmix64's finaliser: a bijective 64-bit mixer. */
static inline uint64_t sat_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Derives a stream key from a seed and up to three counters. */
static inline uint64_t sat_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t k = sat_mix64(seed);
    k = sat_mix64(k ^ sat_mix64(a + 0x243f6a8885a308d3ull));
    k = sat_mix64(k ^ sat_mix64(b + 0x13198a2e03707344ull));
    k = sat_mix64(k ^ sat_mix64(c + 0xa4093822299f31d0ull));
    return k;
}

static inline void sat_rng_init(struct sat_rng *r, uint64_t key)
{
    r->key = key;
    r->ctr = 0;
}

static inline uint64_t sat_rng_u64(struct sat_rng *r)
{
    return sat_mix64(r->key ^ sat_mix64(r->ctr++));
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double sat_rng_uniform(struct sat_rng *r)
{
    return (double)(sat_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n > 0, without modulo bias (Lemire). */
static inline uint32_t sat_rng_below(struct sat_rng *r, uint32_t n)
{
    uint64_t m = (uint64_t)(uint32_t)sat_rng_u64(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            m = (uint64_t)(uint32_t)sat_rng_u64(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* Standard normal by Box-Muller (uses two draws per value). */
double sat_rng_normal(struct sat_rng *r);

/* Fisher-Yates shuffle of idx[0..n) driven by r. */
void sat_rng_shuffle_u32(struct sat_rng *r, uint32_t *idx, uint32_t n);

#endif
