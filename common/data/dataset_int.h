/* dataset_int.h - internals shared by the files of common/data; not a public API.
 *
 * File access (open a regular file, read fully, close) and the purposes that
 * keep the data module's random streams apart from each other and from the
 * streams of other modules.
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

/* Opens `path` read-only and checks that it is a regular file. On success
 * *fd is owned by the caller (close it with close()) and *size holds the
 * file's size. On failure returns SAT_ENOENT / SAT_EIO with a message naming
 * the file, and no descriptor is left open. */
int data__open(const char *path, int *fd, uint64_t *size, char err[SAT_ERR_LEN]);

/* Reads up to len bytes, retrying short reads and EINTR; *got < len only at
 * end of file. Returns 0 or SAT_EIO with a message naming `path`. */
int data__read(int fd, const char *path, void *buf, size_t len, size_t *got, char err[SAT_ERR_LEN]);

#endif
