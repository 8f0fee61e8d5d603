/* dataset_int.h - internals shared by the files of common/data; not a public API.
 *
 * The purposes that keep the data module's random streams apart from each
 * other and from the streams of other modules.
 */
#ifndef SATURN_DATASET_INT_H
#define SATURN_DATASET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"
#include "../util/rng.h"

/* Stream purposes ("data" in ASCII in the high half), folded into the job
 * seed by data__stream_seed before the stream's own counters are added. */
#define DATA__RNG_SHARD 0x6461746100000001ull
#define DATA__RNG_EPOCH 0x6461746100000002ull
#define DATA__RNG_AUGMENT 0x6461746100000003ull
#define DATA__RNG_SYNTH_TEMPLATE 0x6461746100000004ull
#define DATA__RNG_SYNTH_IMAGE 0x6461746100000005ull

static inline uint64_t data__stream_seed(uint64_t seed, uint64_t purpose)
{
    return sat_rng_key(seed, purpose, 0, 0);
}

#endif
