/* safetensors.c - reading the safetensors format (see safetensors.h), and
 * the helpers the writer (safetensors_write.c) shares (safetensors_int.h).
 *
 * Reading takes the whole file into memory. The header is validated before
 * the data is read: its length against ST_MAX_HEADER and the file size, then
 * the JSON (strictly: UTF-8, no duplicate keys), every entry's dtype, shape
 * and offsets, and finally the offsets as a whole: sorted by offset, the
 * tensors must tile the data region exactly, with no hole and no overlap,
 * as the reference implementation requires. The data region lives in one
 * 64-byte-aligned buffer; a tensor whose offset is not a multiple of its
 * element size (possible in files from other writers) is copied to an
 * aligned arena so that callers may read it through a typed pointer.
 */
#include "safetensors_int.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../spec/json_strict.h"
#include "../util/file.h"
#include "../util/xalloc.h"

/* ==== Shared with the writer (safetensors_int.h) ==== */

const struct st__dtype st__dtypes[NDTYPES] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_I8] = {"I8", 1},   [ST_U8] = {"U8", 1},
    [ST_I16] = {"I16", 2}, [ST_I32] = {"I32", 4}, [ST_I64] = {"I64", 8},
};

struct span {
    uint64_t begin, end; /* offsets into the data region */
};

struct st_file {
    int n;
    struct st_tensor *t;              /* (n) in file order: ascending offsets */
    struct span *span;                /* (n) t[i]'s offsets */
    const struct st_tensor **by_name; /* (n) sorted by name, for st_find */
    int n_meta;
    struct st_meta *meta; /* (n_meta) in header order */
    char *strings;        /* names, keys and values, each NUL-terminated */
    void *data;           /* the data region, 64-byte aligned */
    void *arena;          /* aligned copies of misaligned tensors, or NULL */
};

size_t st_dtype_size(enum st_dtype dt)
{
    return (unsigned)dt < NDTYPES ? st__dtypes[dt].size : 0;
}

const char *st_dtype_name(enum st_dtype dt)
{
    return (unsigned)dt < NDTYPES ? st__dtypes[dt].name : "?";
}

int st__err(char *err, int code, const char *label, const char *fmt, ...)
{
    if (err) {
        char msg[SAT_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        sat_errf(err, code, "safetensors: %s: %s", label, msg);
    }
    return code;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts v (n strings) and returns one that occurs twice, or NULL. */
const char *st__find_duplicate(const char **v, size_t n)
{
    if (n < 2)
        return NULL;
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            return v[i];
    return NULL;
}

/* Byte size of a tensor of dtype dt and the given shape; false on overflow
 * past 2^53 (no file can hold it, and offsets above it are not exact). */
bool st__shape_bytes(int dt, int ndim, const int64_t *shape, uint64_t *out)
{
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0)
            n = 0;
    for (int d = 0; n && d < ndim; d++) {
        if (__builtin_mul_overflow(n, (uint64_t)shape[d], &n) || n > MAX_EXACT)
            return false;
    }
    if (__builtin_mul_overflow(n, (uint64_t)st__dtypes[dt].size, &n) || n > MAX_EXACT)
        return false;
    *out = n;
    return true;
}

/* ==== Reading: the header ==== */

/* A JSON number that is an integer in 0..2^53. */
static bool get_u53(const cJSON *it, uint64_t *out)
{
    if (!cJSON_IsNumber(it))
        return false;
    double d = it->valuedouble;
    if (!(d >= 0 && d <= (double)MAX_EXACT) || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

/* One tensor entry of the header, before it is placed. */
struct entry {
    const char *name; /* in the cJSON tree */
    int dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    struct span span;
    int order; /* position in the header, to keep sorting stable */
};

static int parse_entry(const cJSON *obj, struct entry *e, const char *label, char *err)
{
    char nm[64], shown[64];
    json_strict_show(obj->string, 40, nm, sizeof(nm));
    if (!cJSON_IsObject(obj))
        return st__err(err, SAT_EFORMAT, label, "tensor \"%s\": expected an object, got %s", nm,
                       json_strict_type_name(obj));
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dt
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot)
            return st__err(err, SAT_EFORMAT, label, "tensor \"%s\": unknown key \"%s\"", nm,
                           json_strict_show(c->string, 40, shown, sizeof(shown)));
        if (*slot)
            return st__err(err, SAT_EFORMAT, label, "tensor \"%s\": key \"%s\" given twice", nm,
                           c->string);
        *slot = c;
    }
    if (!dt || !shape || !offs)
        return st__err(err, SAT_EFORMAT, label, "tensor \"%s\" has no \"%s\"", nm,
                       !dt      ? "dtype"
                       : !shape ? "shape"
                                : "data_offsets");

    e->name = obj->string;
    e->dtype = -1;
    for (int k = 0; cJSON_IsString(dt) && k < NDTYPES; k++)
        if (strcmp(dt->valuestring, st__dtypes[k].name) == 0)
            e->dtype = k;
    if (e->dtype < 0)
        return st__err(
            err, SAT_EFORMAT, label,
            "tensor \"%s\": unsupported dtype \"%s\" (F32, F64, I8, U8, I16, I32, I64)", nm,
            cJSON_IsString(dt) ? json_strict_show(dt->valuestring, 16, shown, sizeof(shown))
                               : "(not a string)");

    int nd = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || nd > ST_MAX_DIMS)
        return st__err(err, SAT_EFORMAT, label,
                       "tensor \"%s\": shape must be an array of at most %d integers", nm,
                       ST_MAX_DIMS);
    e->ndim = 0;
    for (const cJSON *c = shape->child; c; c = c->next) {
        uint64_t v;
        if (!get_u53(c, &v))
            return st__err(err, SAT_EFORMAT, label,
                           "tensor \"%s\": shape entries must be integers in 0..2^53", nm);
        e->shape[e->ndim++] = (int64_t)v;
    }

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !get_u53(offs->child, &e->span.begin) || !get_u53(offs->child->next, &e->span.end) ||
        e->span.begin > e->span.end)
        return st__err(err, SAT_EFORMAT, label,
                       "tensor \"%s\": data_offsets must be [begin, end] with 0 <= begin <= end",
                       nm);
    uint64_t bytes;
    if (!st__shape_bytes(e->dtype, e->ndim, e->shape, &bytes))
        return st__err(err, SAT_EFORMAT, label, "tensor \"%s\": shape too large", nm);
    if (bytes != e->span.end - e->span.begin)
        return st__err(err, SAT_EFORMAT, label,
                       "tensor \"%s\": its shape and dtype make %" PRIu64
                       " bytes but data_offsets span %" PRIu64,
                       nm, bytes, e->span.end - e->span.begin);
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->span.begin != y->span.begin)
        return x->span.begin < y->span.begin ? -1 : 1;
    if (x->span.end != y->span.end)
        return x->span.end < y->span.end ? -1 : 1;
    return x->order - y->order;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const struct st_tensor *x = *(const struct st_tensor *const *)a;
    const struct st_tensor *y = *(const struct st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Validates the metadata object; returns the number of pairs or an error. */
static int check_meta(const cJSON *m, const char *label, char *err)
{
    char shown[64];
    if (!cJSON_IsObject(m))
        return st__err(err, SAT_EFORMAT, label, "%s must be an object, got %s", META_KEY,
                       json_strict_type_name(m));
    int n = 0;
    for (const cJSON *c = m->child; c; c = c->next, n++)
        if (!cJSON_IsString(c))
            return st__err(err, SAT_EFORMAT, label, "metadata \"%s\": expected a string, got %s",
                           json_strict_show(c->string, 40, shown, sizeof(shown)),
                           json_strict_type_name(c));
    const char **keys = sat_malloc((size_t)n * sizeof(*keys));
    if (!keys)
        return st__err(err, SAT_ENOMEM, label, "out of memory");
    int i = 0;
    for (const cJSON *c = m->child; c; c = c->next)
        keys[i++] = c->string;
    const char *dup = st__find_duplicate(keys, (size_t)n);
    int rc = dup ? st__err(err, SAT_EFORMAT, label, "metadata key \"%s\" given twice",
                           json_strict_show(dup, 40, shown, sizeof(shown)))
                 : n;
    sat_free(keys);
    return rc;
}

/* Copies the validated entries and metadata into a new st_file (data not
 * attached yet). */
static int build_file(struct st_file **out, struct entry *ents, int n, const cJSON *meta,
                      int n_meta, const char *label, char *err)
{
    size_t pool = 1;
    for (int i = 0; i < n; i++)
        pool += strlen(ents[i].name) + 1;
    for (const cJSON *c = meta ? meta->child : NULL; c; c = c->next)
        pool += strlen(c->string) + strlen(c->valuestring) + 2;
    struct st_file *f = sat_calloc(1, sizeof(*f));
    if (!f)
        return st__err(err, SAT_ENOMEM, label, "out of memory");
    f->t = sat_calloc((size_t)n, sizeof(*f->t));
    f->span = sat_calloc((size_t)n, sizeof(*f->span));
    f->by_name = sat_calloc((size_t)n, sizeof(*f->by_name));
    f->meta = sat_calloc((size_t)n_meta, sizeof(*f->meta));
    f->strings = sat_malloc(pool);
    if (!f->t || !f->span || !f->by_name || !f->meta || !f->strings) {
        st_close(f);
        return st__err(err, SAT_ENOMEM, label, "out of memory");
    }
    char *s = f->strings;
    for (int i = 0; i < n; i++) {
        struct st_tensor *t = &f->t[i];
        size_t len = strlen(ents[i].name) + 1;
        memcpy(s, ents[i].name, len);
        t->name = s;
        s += len;
        t->dtype = (enum st_dtype)ents[i].dtype;
        t->ndim = ents[i].ndim;
        memcpy(t->shape, ents[i].shape, sizeof(t->shape));
        f->span[i] = ents[i].span;
        f->by_name[i] = t;
    }
    f->n = n;
    for (const cJSON *c = meta ? meta->child : NULL; c; c = c->next) {
        struct st_meta *m = &f->meta[f->n_meta++];
        size_t kl = strlen(c->string) + 1, vl = strlen(c->valuestring) + 1;
        memcpy(s, c->string, kl);
        m->key = s;
        s += kl;
        memcpy(s, c->valuestring, vl);
        m->value = s;
        s += vl;
    }
    qsort(f->by_name, (size_t)n, sizeof(*f->by_name), cmp_tensor_name);
    *out = f;
    return 0;
}

/* Validates the header text (hlen bytes, the data region being dlen bytes)
 * and returns a new st_file without its data. */
static int parse_header(struct st_file **out, const char *hdr, size_t hlen, uint64_t dlen,
                        const char *label, char *err)
{
    char nm[64];
    *out = NULL;
    if (hlen == 0 || hdr[0] != '{')
        return st__err(err, SAT_EFORMAT, label, "header does not start with '{'");
    const char *why;
    size_t off;
    cJSON *root = json_strict_parse(hdr, hlen, &why, &off);
    if (!root)
        return st__err(err, SAT_EFORMAT, label, "header is not valid JSON at byte %zu: %s", 8 + off,
                       why);
    int rc = 0, n = 0, n_meta = 0;
    struct entry *ents = NULL;
    const cJSON *meta = NULL;
    if (!cJSON_IsObject(root)) {
        rc = st__err(err, SAT_EFORMAT, label, "header is not a JSON object");
        goto out;
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, META_KEY) != 0) {
            n++;
        } else if (meta) {
            rc = st__err(err, SAT_EFORMAT, label, "%s given twice", META_KEY);
            goto out;
        } else {
            meta = c;
        }
    }
    if (meta) {
        rc = check_meta(meta, label, err);
        if (rc < 0)
            goto out;
        n_meta = rc;
        rc = 0;
    }
    ents = sat_calloc((size_t)n, sizeof(*ents));
    if (!ents) {
        rc = st__err(err, SAT_ENOMEM, label, "out of memory");
        goto out;
    }
    int i = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta)
            continue;
        ents[i].order = i;
        rc = parse_entry(c, &ents[i++], label, err);
        if (rc != 0)
            goto out;
    }
    /* The tensors, in offset order, must tile [0, dlen) exactly. */
    qsort(ents, (size_t)n, sizeof(*ents), cmp_entry);
    uint64_t pos = 0;
    for (i = 0; i < n; i++) {
        const struct span *sp = &ents[i].span;
        if (sp->begin != pos) {
            json_strict_show(ents[i].name, 40, nm, sizeof(nm));
            rc = st__err(err, SAT_EFORMAT, label,
                         sp->begin < pos ? "tensor \"%s\" at offset %" PRIu64 " overlaps the one "
                                           "before it (ending at %" PRIu64 ")"
                                         : "tensor \"%s\" at offset %" PRIu64 " leaves a hole "
                                           "after offset %" PRIu64,
                         nm, sp->begin, pos);
            goto out;
        }
        pos = sp->end;
    }
    if (pos != dlen) {
        rc = st__err(err, SAT_EFORMAT, label,
                     pos > dlen ? "tensors need %" PRIu64 " data bytes but the file has %" PRIu64
                                  " (truncated?)"
                                : "tensors cover %" PRIu64 " data bytes but the file has %" PRIu64,
                     pos, dlen);
        goto out;
    }
    struct st_file *f = NULL;
    rc = build_file(&f, ents, n, meta, n_meta, label, err);
    if (rc != 0)
        goto out;
    for (i = 1; i < n; i++) {
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
            rc = st__err(err, SAT_EFORMAT, label, "tensor \"%s\" appears twice",
                         json_strict_show(f->by_name[i]->name, 40, nm, sizeof(nm)));
            st_close(f);
            goto out;
        }
    }
    *out = f;
out:
    sat_free(ents);
    cJSON_Delete(root);
    return rc;
}

/* Points every tensor into data (the data region, 64-byte aligned, owned by
 * f from now on); tensors misaligned for their type are copied to an arena. */
static int attach_data(struct st_file *f, void *data, const char *label, char *err)
{
    f->data = data;
    size_t extra = 0;
    for (int i = 0; i < f->n; i++) {
        size_t bytes = (size_t)(f->span[i].end - f->span[i].begin);
        if (bytes && f->span[i].begin % st_dtype_size(f->t[i].dtype))
            extra += (bytes + 63) & ~(size_t)63;
    }
    if (extra) {
        f->arena = sat_malloc_aligned(extra);
        if (!f->arena)
            return st__err(err, SAT_ENOMEM, label, "out of memory");
    }
    size_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        size_t bytes = (size_t)(f->span[i].end - f->span[i].begin);
        char *src = (char *)data + f->span[i].begin;
        if (bytes && f->span[i].begin % st_dtype_size(f->t[i].dtype)) {
            char *dst = (char *)f->arena + pos;
            memcpy(dst, src, bytes);
            f->t[i].data = dst;
            pos += (bytes + 63) & ~(size_t)63;
        } else {
            f->t[i].data = bytes ? src : data;
        }
    }
    return 0;
}

/* Checks the header length h of a file of `size` bytes. */
static int check_hlen(uint64_t h, uint64_t size, const char *label, char *err)
{
    if (h > ST_MAX_HEADER)
        return st__err(err, SAT_EFORMAT, label, "header length %" PRIu64 " is over the limit of %u",
                       h, ST_MAX_HEADER);
    if (h > size - 8)
        return st__err(err, SAT_EFORMAT, label,
                       "header length %" PRIu64 " runs past the end of the file (%" PRIu64
                       " bytes; truncated?)",
                       h, size);
    return 0;
}

/* ==== Reading: entry points ==== */

int st_open_mem(struct st_file **out, const void *buf, size_t len, char err[SAT_ERR_LEN])
{
    const char *label = "(buffer)";
    *out = NULL;
    if (!buf && len)
        return st__err(err, SAT_EINVAL, label, "NULL buffer");
    if (len < 8)
        return st__err(err, SAT_EFORMAT, label,
                       "%zu bytes, too short for the 8-byte header length (truncated?)", len);
    uint64_t h;
    memcpy(&h, buf, 8);
    int rc = check_hlen(h, len, label, err);
    if (rc != 0)
        return rc;
    struct st_file *f = NULL;
    uint64_t dlen = len - 8 - h;
    rc = parse_header(&f, (const char *)buf + 8, (size_t)h, dlen, label, err);
    if (rc != 0)
        return rc;
    void *data = sat_malloc_aligned((size_t)dlen);
    if (!data) {
        st_close(f);
        return st__err(err, SAT_ENOMEM, label, "out of memory");
    }
    memcpy(data, (const char *)buf + 8 + h, (size_t)dlen);
    rc = attach_data(f, data, label, err);
    if (rc != 0) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Reads exactly n bytes: 0, SAT_EIO (a read error) or SAT_EFORMAT (the file
 * ended early, as it may when it shrinks while being read). */
static int read_exact(int fd, const char *path, void *p, size_t n, const char *label,
                      char err[SAT_ERR_LEN])
{
    char msg[SAT_ERR_LEN];
    size_t got;
    int rc = sat_file_read_full(fd, path, p, n, &got, msg);
    if (rc != 0)
        return sat_errf(err, rc, "safetensors: %s", msg);
    if (got != n)
        return st__err(err, SAT_EFORMAT, label, "file shrank while being read");
    return 0;
}

int st_open(struct st_file **out, const char *path, char err[SAT_ERR_LEN])
{
    char label[112], msg[SAT_ERR_LEN];
    *out = NULL;
    if (!path)
        return sat_errf(err, SAT_EINVAL, "safetensors: no path to read");
    json_strict_show(path, 100, label, sizeof(label));
    int fd;
    uint64_t size;
    int rc = sat_file_open(path, &fd, &size, msg);
    if (rc != 0)
        return sat_errf(err, rc, "safetensors: %s", msg);
    char *hdr = NULL;
    void *data = NULL;
    struct st_file *f = NULL;
    if (size < 8) {
        rc =
            st__err(err, SAT_EFORMAT, label,
                    "%" PRIu64 " bytes, too short for the 8-byte header length (truncated?)", size);
        goto out;
    }
    unsigned char le[8];
    rc = read_exact(fd, path, le, 8, label, err);
    if (rc != 0)
        goto out;
    uint64_t h;
    memcpy(&h, le, 8);
    rc = check_hlen(h, size, label, err);
    if (rc != 0)
        goto out;
    hdr = sat_malloc((size_t)h);
    if (!hdr) {
        rc = st__err(err, SAT_ENOMEM, label, "out of memory");
        goto out;
    }
    uint64_t dlen = size - 8 - h;
    rc = read_exact(fd, path, hdr, (size_t)h, label, err);
    if (rc == 0)
        rc = parse_header(&f, hdr, (size_t)h, dlen, label, err);
    if (rc != 0)
        goto out;
    data = sat_malloc_aligned((size_t)dlen);
    if (!data) {
        rc = st__err(err, SAT_ENOMEM, label, "out of memory (%" PRIu64 " data bytes)", dlen);
        goto out;
    }
    rc = read_exact(fd, path, data, (size_t)dlen, label, err);
    if (rc != 0)
        goto out;
    rc = attach_data(f, data, label, err);
    data = NULL; /* f owns it now */
    if (rc != 0)
        goto out;
    *out = f;
    f = NULL;
out:
    close(fd);
    sat_free(hdr);
    sat_free(data);
    st_close(f);
    return rc;
}

/* ==== Access ==== */

int st_count(const struct st_file *f)
{
    return f ? f->n : 0;
}

const struct st_tensor *st_get(const struct st_file *f, int i)
{
    return f && i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const char *st_meta_get(const struct st_file *f, const char *key)
{
    for (int i = 0; f && key && i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

void st_close(struct st_file *f)
{
    if (!f)
        return;
    sat_free(f->t);
    sat_free(f->span);
    sat_free(f->by_name);
    sat_free(f->meta);
    sat_free(f->strings);
    sat_free(f->data);
    sat_free(f->arena);
    sat_free(f);
}
