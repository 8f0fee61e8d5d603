/* safetensors_int.h - what the reader (safetensors.c) and the writer
 * (safetensors_write.c) of the safetensors format share; not a public API.
 */
#ifndef SATURN_SAFETENSORS_INT_H
#define SATURN_SAFETENSORS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors stores and reads tensors in host order, which must be little-endian");

#define NDTYPES 7
#define MAX_EXACT (1ULL << 53) /* integers above this do not survive a JSON double */
#define META_KEY "__metadata__"

/* The dtypes by enum st_dtype: name in the header, element size. */
struct st__dtype {
    const char *name;
    size_t size;
};
extern const struct st__dtype st__dtypes[NDTYPES];

/* Fills err with "safetensors: LABEL: message" (LABEL is the file, or
 * "(buffer)") and returns code. err may be NULL. */
int st__err(char *err, int code, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sorts v (n strings) and returns one that occurs twice, or NULL. */
const char *st__find_duplicate(const char **v, size_t n);

/* Byte size of a tensor of dtype dt and the given shape into *out; false on
 * overflow past 2^53 (no file can hold it, and offsets above it are not
 * exact). */
bool st__shape_bytes(int dt, int ndim, const int64_t *shape, uint64_t *out);

#endif
