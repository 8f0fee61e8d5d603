/* safetensors.h - reading and writing the safetensors format.
 *
 * Layout: 8-byte little-endian header length H, then H bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * (padded with spaces to a multiple of 8), then the raw little-endian
 * tensor bytes; offsets are relative to the end of the header.
 *
 * Writes are atomic (util/file.h): the file is written to "PATH.tmp.PID.N", fsync'ed, and
 * renamed over PATH, then the directory is fsync'ed; a crash leaves either
 * the old file or the new one. Reads validate everything (header length
 * against file size, JSON, dtypes, shape products against offsets, offsets
 * in bounds, ascending and non-overlapping, covering the data exactly) and
 * refuse a truncated or corrupt file with SAT_EFORMAT and a message naming
 * the file.
 */
#ifndef SATURN_SAFETENSORS_H
#define SATURN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (16u << 20) /* bytes of JSON header we accept */

enum st_dtype { ST_F32, ST_F64, ST_I8, ST_U8, ST_I16, ST_I32, ST_I64 };

struct st_tensor {
    const char *name;
    enum st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* little-endian values, product(shape) * dtype size bytes */
};

struct st_meta {
    const char *key;
    const char *value;
};

/* Size in bytes of one element of dtype. */
size_t st_dtype_size(enum st_dtype dt);
const char *st_dtype_name(enum st_dtype dt);

/* Writes n tensors and n_meta metadata pairs to path atomically. */
int st_write(const char *path, const struct st_tensor *t, int n, const struct st_meta *meta,
             int n_meta, char err[SAT_ERR_LEN]);

/* An opened file: all tensors loaded in memory. */
struct st_file;
int st_open(struct st_file **out, const char *path, char err[SAT_ERR_LEN]);
/* Same, from a buffer (copied). */
int st_open_mem(struct st_file **out, const void *buf, size_t len, char err[SAT_ERR_LEN]);
int st_count(const struct st_file *f);
/* The i-th tensor in file order (ascending data offsets; for files written
 * by st_write, the order given to it); its name and data stay valid until
 * st_close, and data is aligned to the element size. */
const struct st_tensor *st_get(const struct st_file *f, int i);
/* NULL when absent. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);
/* Metadata value for key, or NULL. */
const char *st_meta_get(const struct st_file *f, const char *key);
void st_close(struct st_file *f);

#endif
