/* onnx_build.h - internal to common/export: a small builder for ONNX
 * protobuf-c messages (onnx.pb-c.h, generated from Debian's onnx.proto).
 *
 * Every piece of the message tree (strings, pointer arrays, tensor bytes)
 * comes from one arena owned by struct ox and is freed by ox__free in one
 * sweep; nothing is freed piecemeal. The builder records its first failure
 * (SAT_ENOMEM, or SAT_EINTERNAL when a fixed capacity is exceeded) in rc,
 * with a message in err, and every helper is a no-op once rc is set, so a
 * caller can issue a run of calls and check rc once. Helpers that return a
 * pointer return NULL after a failure. Names passed in are copied.
 * Tensor bytes are little-endian whatever the host (ONNX raw_data).
 */
#ifndef SATURN_ONNX_BUILD_H
#define SATURN_ONNX_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export/onnx.pb-c.h"

union ablk {
    union ablk *next;
    max_align_t align;
};

/* The builder. The caller zeroes it, sets err (may be NULL) and the three
 * capacities, and allocates the three arrays with ox__alloc. */
struct ox {
    union ablk *blocks; /* every allocation, newest first */
    int rc;             /* first error (0: none yet) */
    char *err;
    Onnx__NodeProto **node;
    size_t n_node, cap_node;
    Onnx__TensorProto **init;
    size_t n_init, cap_init;
    Onnx__StringStringEntryProto **meta;
    size_t n_meta, cap_meta;
};

#define NODE_MAX_ATTRS 6

static inline void ox__put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void ox__put_f32le(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    ox__put_u32le(p, u);
}

int ox__fail(struct ox *b, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* n zeroed bytes from the arena, or NULL (and the builder fails). */
void *ox__alloc(struct ox *b, size_t n);
/* Frees every allocation of the arena. */
void ox__free(struct ox *b);
char *ox__printf(struct ox *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a metadata_props entry (nothing when value is NULL). */
void ox__meta(struct ox *b, const char *key, const char *value);
/* Appends a node with nin inputs and one output, room for NODE_MAX_ATTRS
 * attributes. NULL on failure. */
Onnx__NodeProto *ox__node(struct ox *b, const char *op, const char *name, int nin,
                          const char *const *in, const char *out);
/* Attributes and doc_string of a node (nd NULL: nothing happens). */
void ox__attr_int(struct ox *b, Onnx__NodeProto *nd, const char *name, int64_t v);
void ox__attr_float(struct ox *b, Onnx__NodeProto *nd, const char *name, float v);
void ox__attr_ints(struct ox *b, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v);
void ox__doc(struct ox *b, Onnx__NodeProto *nd, const char *doc);
/* Appends an initializer of `dtype` and shape (ndim, shape) whose bytes are
 * raw[0 .. bytes), an arena buffer that the tensor takes over. */
void ox__init(struct ox *b, const char *name, int dtype, int ndim, const int *shape, uint8_t *raw,
              size_t bytes);
void ox__init_f32(struct ox *b, const char *name, int ndim, const int *shape, const float *v,
                  size_t n);
void ox__scalar_f32(struct ox *b, const char *name, float v);
/* A scalar of dtype UINT8, INT8 or INT32 (zero points). */
void ox__scalar_int(struct ox *b, const char *name, int dtype, int32_t v);
/* A float tensor type for graph inputs/outputs; dims[i] < 0 is the symbolic
 * batch "N". NULL on failure. */
Onnx__ValueInfoProto *ox__value_info(struct ox *b, const char *name, int ndim, const int64_t *dims);

#endif
