/* safetensors_write.c - writing the safetensors format (see safetensors.h).
 *
 * The arguments are checked first (names UTF-8 and unique, dtypes, shapes,
 * sizes). The JSON header is then built with a capped buffer
 * (json_strict.h) and padded with spaces to a multiple of 8 so that the
 * data starts 8-aligned, and the file is replaced atomically (util/file.h:
 * a temporary file, fsync, rename, fsync of the directory).
 */
#include "safetensors_int.h"

#include <inttypes.h>
#include <string.h>

#include "../spec/json_strict.h"
#include "../util/file.h"
#include "../util/xalloc.h"

/* Checks the arguments of st_write; fills bytes[i] with tensor i's size. */
static int check_write_args(const struct st_tensor *t, int n, const struct st_meta *meta,
                            int n_meta, uint64_t *bytes, const char **scratch, const char *label,
                            char *err)
{
    char shown[64];
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        const struct st_tensor *x = &t[i];
        if (!x->name)
            return st__err(err, SAT_EINVAL, label, "tensor %d has no name", i);
        const char *nm = json_strict_show(x->name, 40, shown, sizeof(shown));
        if (!json_strict_utf8_valid(x->name, strlen(x->name)))
            return st__err(err, SAT_EINVAL, label, "tensor name \"%s\" is not UTF-8", nm);
        if (strcmp(x->name, META_KEY) == 0)
            return st__err(err, SAT_EINVAL, label, "\"%s\" cannot name a tensor", META_KEY);
        if ((unsigned)x->dtype >= NDTYPES)
            return st__err(err, SAT_EINVAL, label, "tensor \"%s\": invalid dtype %d", nm,
                           (int)x->dtype);
        if (x->ndim < 0 || x->ndim > ST_MAX_DIMS)
            return st__err(err, SAT_EINVAL, label, "tensor \"%s\": ndim %d is out of range (0..%d)",
                           nm, x->ndim, ST_MAX_DIMS);
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] < 0 || (uint64_t)x->shape[d] > MAX_EXACT)
                return st__err(err, SAT_EINVAL, label, "tensor \"%s\": dimension %d is %" PRId64,
                               nm, d, x->shape[d]);
        if (!st__shape_bytes((int)x->dtype, x->ndim, x->shape, &bytes[i]) ||
            total + bytes[i] > MAX_EXACT)
            return st__err(err, SAT_ETOOBIG, label, "tensor \"%s\" is too large", nm);
        total += bytes[i];
        if (bytes[i] > 0 && !x->data)
            return st__err(err, SAT_EINVAL, label, "tensor \"%s\" has no data", nm);
        scratch[i] = x->name;
    }
    const char *dup = st__find_duplicate(scratch, (size_t)n);
    if (dup)
        return st__err(err, SAT_EINVAL, label, "tensor name \"%s\" given twice",
                       json_strict_show(dup, 40, shown, sizeof(shown)));
    for (int i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (!k || !v)
            return st__err(err, SAT_EINVAL, label, "metadata entry %d has no %s", i,
                           k ? "value" : "key");
        if (!json_strict_utf8_valid(k, strlen(k)) || !json_strict_utf8_valid(v, strlen(v)))
            return st__err(err, SAT_EINVAL, label, "metadata \"%s\" is not UTF-8",
                           json_strict_show(k, 40, shown, sizeof(shown)));
        scratch[i] = k;
    }
    dup = st__find_duplicate(scratch, (size_t)n_meta);
    if (dup)
        return st__err(err, SAT_EINVAL, label, "metadata key \"%s\" given twice",
                       json_strict_show(dup, 40, shown, sizeof(shown)));
    return 0;
}

/* The header text: JSON padded with spaces to a multiple of 8 bytes. */
static char *build_header(const struct st_tensor *t, int n, const struct st_meta *meta, int n_meta,
                          const uint64_t *bytes, size_t *len, int *code)
{
    struct json_buf b;
    json_buf_init(&b, ST_MAX_HEADER);
    json_buf_puts(&b, "{");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i)
            json_buf_puts(&b, ",");
        json_buf_string(&b, t[i].name);
        json_buf_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[", st__dtypes[t[i].dtype].name);
        for (int d = 0; d < t[i].ndim; d++)
            json_buf_printf(&b, "%s%" PRId64, d ? "," : "", t[i].shape[d]);
        json_buf_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes[i]);
        off += bytes[i];
    }
    if (n_meta > 0) {
        json_buf_puts(&b, n ? ",\"" META_KEY "\":{" : "\"" META_KEY "\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                json_buf_puts(&b, ",");
            json_buf_string(&b, meta[i].key);
            json_buf_puts(&b, ":");
            json_buf_string(&b, meta[i].value);
        }
        json_buf_puts(&b, "}");
    }
    json_buf_puts(&b, "}");
    while (!b.err && b.len % 8)
        json_buf_puts(&b, " ");
    *len = b.len;
    *code = b.err;
    return json_buf_take(&b);
}

/* Writes the file atomically: length, header, data. */
static int write_file(const char *path, const char *hdr, size_t hlen, const struct st_tensor *t,
                      int n, const uint64_t *bytes, char err[SAT_ERR_LEN])
{
    struct sat_file_atomic a;
    int rc = sat_file_atomic_begin(&a, path, 0644, err);
    if (rc != 0)
        return rc;
    uint64_t h = hlen;
    unsigned char le[8];
    memcpy(le, &h, 8); /* little-endian host (static assert above) */
    sat_file_atomic_write(&a, le, 8, NULL);
    sat_file_atomic_write(&a, hdr, hlen, NULL);
    for (int i = 0; i < n; i++)
        if (bytes[i] > 0)
            sat_file_atomic_write(&a, t[i].data, (size_t)bytes[i], NULL);
    return sat_file_atomic_commit(&a, err);
}

int st_write(const char *path, const struct st_tensor *t, int n, const struct st_meta *meta,
             int n_meta, char err[SAT_ERR_LEN])
{
    char label[112];
    if (!path || !*path)
        return sat_errf(err, SAT_EINVAL, "safetensors: no path to write to");
    json_strict_show(path, 100, label, sizeof(label));
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta))
        return st__err(err, SAT_EINVAL, label, "bad tensor or metadata list");

    int rc;
    char *hdr = NULL;
    uint64_t *bytes = sat_malloc((size_t)n * sizeof(*bytes));
    const char **scratch = sat_malloc((size_t)(n > n_meta ? n : n_meta) * sizeof(*scratch));
    if (!bytes || !scratch) {
        rc = st__err(err, SAT_ENOMEM, label, "out of memory");
        goto out;
    }
    rc = check_write_args(t, n, meta, n_meta, bytes, scratch, label, err);
    if (rc != 0)
        goto out;
    size_t hlen;
    int code;
    hdr = build_header(t, n, meta, n_meta, bytes, &hlen, &code);
    if (!hdr) {
        rc = code == SAT_ETOOBIG ? st__err(err, SAT_ETOOBIG, label,
                                           "header over the limit of %u bytes", ST_MAX_HEADER)
                                 : st__err(err, SAT_ENOMEM, label, "out of memory");
        goto out;
    }
    char msg[SAT_ERR_LEN];
    rc = write_file(path, hdr, hlen, t, n, bytes, msg);
    if (rc != 0)
        sat_errf(err, rc, "safetensors: %s", msg);
out:
    sat_free(bytes);
    sat_free(scratch);
    sat_free(hdr);
    return rc;
}
