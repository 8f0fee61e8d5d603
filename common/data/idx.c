/* idx.c - reader for IDX image and label files (MNIST, Fashion-MNIST),
 * gzip-compressed or plain.
 *
 * Each file is validated in the order a hostile file would exploit it:
 * magic, then every dimension against the DATASET_MAX_* bounds, then the
 * declared payload against what the file can hold (exactly for plain files,
 * by deflate's maximum expansion for gzip), and only then is the payload
 * allocated and read straight into the dataset's buffers. After the payload
 * we read once more to prove the data ends there: that catches trailing
 * bytes and, for gzip, a stream cut before its CRC/length trailer.
 */
#include "dataset.h"

#include "../util/file.h"
#include "../util/xalloc.h"

#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u /* uint8, 3 dimensions (N, H, W) */
#define IDX_MAGIC_LABELS 0x00000801u /* uint8, 1 dimension (N) */
#define IDX_NCLASS 10

/* Deflate expands at most 1032:1 (zlib FAQ), so a gzip file of S bytes
 * inflates to at most about 1032 * S bytes; a little slack on top. */
#define GZIP_MAX_RATIO 1040u
#define GZIP_SLACK 4096u
#define GZIP_BUFFER (256u << 10)

/* One input file: a plain descriptor, or a zlib stream that owns it. */
struct idx_src {
    const char *path;
    int fd;           /* -1 once gz owns it or when closed */
    gzFile gz;        /* NULL for plain files */
    uint64_t size;    /* size on disk (compressed size for gzip) */
    int gz_truncated; /* zlib reported "unexpected end of file" */
};

/* ==== Source: plain or gzip =========================================== */

static void src_close(struct idx_src *s)
{
    if (s->gz)
        gzclose(s->gz); /* closes the descriptor too */
    else if (s->fd >= 0)
        close(s->fd);
    s->gz = NULL;
    s->fd = -1;
}

/* Opens path and detects gzip from its first two bytes (1f 8b). */
static int src_open(struct idx_src *s, const char *path, char err[SAT_ERR_LEN])
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->fd = -1;
    int rc = sat_file_open(path, &s->fd, &s->size, err);
    if (rc)
        return rc;
    uint8_t magic[2];
    ssize_t r = pread(s->fd, magic, sizeof magic, 0); /* leaves the offset at 0 */
    if (r == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        s->gz = gzdopen(s->fd, "rb");
        if (!s->gz) {
            src_close(s);
            return sat_errf(err, SAT_ENOMEM, "%s: cannot set up gzip decoding", path);
        }
        s->fd = -1;
        gzbuffer(s->gz, GZIP_BUFFER); /* before the first read, as zlib requires */
    }
    return 0;
}

/* Reads up to len payload bytes; *got < len only at the end of the data.
 * A gzip stream that ends early is not an error here (s->gz_truncated is
 * set and the caller reports the shortfall); corrupt data and I/O errors are. */
static int src_read(struct idx_src *s, void *buf, size_t len, size_t *got, char err[SAT_ERR_LEN])
{
    if (!s->gz)
        return sat_file_read_full(s->fd, s->path, buf, len, got, err);
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done;
        if (chunk > (size_t)1 << 30)
            chunk = (size_t)1 << 30;
        int r = gzread(s->gz, p + done, (unsigned)chunk);
        if (r <= 0)
            break;
        done += (size_t)r;
        if ((size_t)r < chunk)
            break;
    }
    *got = done;
    int zerr = Z_OK;
    const char *msg = gzerror(s->gz, &zerr);
    switch (zerr) {
    case Z_OK:
    case Z_STREAM_END:
        return 0;
    case Z_BUF_ERROR: /* "unexpected end of file" */
        s->gz_truncated = 1;
        return 0;
    case Z_MEM_ERROR:
        return sat_errf(err, SAT_ENOMEM, "%s: gzip: %s", s->path, msg);
    case Z_ERRNO:
        return sat_errf(err, SAT_EIO, "%s: read failed", s->path);
    default: /* Z_DATA_ERROR: bad deflate data, CRC or length */
        return sat_errf(err, SAT_EFORMAT, "%s: corrupt gzip stream: %s", s->path, msg);
    }
}

/* ==== IDX structure =================================================== */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens an IDX file, checks its magic and dimensions (dims[0] = N, then
 * H, W for images) and leaves the source at the start of the payload. */
static int idx_open(struct idx_src *s, const char *path, uint32_t magic, uint32_t *dims,
                    char err[SAT_ERR_LEN])
{
    const char *kind = magic == IDX_MAGIC_IMAGES ? "uint8 images (N, H, W)" : "uint8 labels (N)";
    int ndim = (int)(magic & 0xff);
    uint8_t hdr[16];
    size_t got;
    int rc = src_open(s, path, err);
    if (!rc)
        rc = src_read(s, hdr, 4, &got, err);
    if (rc)
        return rc;
    if (got < 4)
        return sat_errf(err, SAT_EFORMAT, "%s: truncated: expected a 4-byte IDX magic, got %zu",
                        path, got);
    if (be32(hdr) != magic)
        return sat_errf(err, SAT_EFORMAT, "%s: bad magic 0x%08x, expected 0x%08x (IDX %s)", path,
                        be32(hdr), magic, kind);
    rc = src_read(s, hdr + 4, 4 * (size_t)ndim, &got, err);
    if (rc)
        return rc;
    if (got < 4 * (size_t)ndim)
        return sat_errf(err, SAT_EFORMAT,
                        "%s: truncated header: expected %d dimension bytes, got %zu", path,
                        4 * ndim, got);
    for (int i = 0; i < ndim; i++) {
        uint32_t d = be32(hdr + 4 + 4 * i);
        uint32_t max = i == 0 ? DATASET_MAX_IMAGES : DATASET_MAX_DIM;
        if (d == 0)
            return sat_errf(err, SAT_EFORMAT, "%s: dimension %d is 0", path, i);
        if (d > max)
            return sat_errf(err, SAT_ETOOBIG, "%s: dimension %d is %u, over the limit of %u", path,
                            i, d, max);
        dims[i] = d;
    }
    return 0;
}

/* Checks, before allocating, that the file can hold `payload` bytes after
 * its header: exactly for plain files, within deflate's expansion for gzip. */
static int idx_check_size(const struct idx_src *s, uint64_t hdr, uint64_t payload, const char *what,
                          char err[SAT_ERR_LEN])
{
    if (s->gz) {
        uint64_t most = s->size * GZIP_MAX_RATIO + GZIP_SLACK;
        if (s->size < (UINT64_MAX - GZIP_SLACK) / GZIP_MAX_RATIO && hdr + payload > most)
            return sat_errf(err, SAT_EFORMAT,
                            "%s: truncated: header declares %llu %s bytes, more than a "
                            "%llu-byte gzip file can hold",
                            s->path, (unsigned long long)payload, what,
                            (unsigned long long)s->size);
        return 0;
    }
    uint64_t have = s->size > hdr ? s->size - hdr : 0;
    if (have < payload)
        return sat_errf(err, SAT_EFORMAT, "%s: truncated: expected %llu %s bytes, got %llu",
                        s->path, (unsigned long long)payload, what, (unsigned long long)have);
    if (have > payload)
        return sat_errf(err, SAT_EFORMAT, "%s: %llu trailing bytes after the %llu %s bytes",
                        s->path, (unsigned long long)(have - payload), (unsigned long long)payload,
                        what);
    return 0;
}

/* Reads exactly len payload bytes, keeping the first `keep` in buf (the
 * rest passes through a small buffer, still checked), and proves that the
 * data ends there. */
static int idx_read_payload(struct idx_src *s, void *buf, size_t keep, size_t len,
                            const char *what, char err[SAT_ERR_LEN])
{
    size_t got;
    int rc = src_read(s, buf, keep, &got, err);
    if (rc)
        return rc;
    uint8_t drain[65536];
    while (got == keep && keep < len) {
        size_t n = len - keep < sizeof drain ? len - keep : sizeof drain, g;
        rc = src_read(s, drain, n, &g, err);
        if (rc)
            return rc;
        keep += g;
        got += g;
        if (g < n)
            break;
    }
    if (got < len)
        return sat_errf(err, SAT_EFORMAT, "%s: truncated: expected %zu %s bytes, got %zu%s",
                        s->path, len, what, got, s->gz_truncated ? " (gzip stream cut short)" : "");
    uint8_t extra;
    rc = src_read(s, &extra, 1, &got, err);
    if (rc)
        return rc;
    if (got)
        return sat_errf(err, SAT_EFORMAT, "%s: trailing bytes after the %zu %s bytes", s->path, len,
                        what);
    if (s->gz_truncated)
        return sat_errf(err, SAT_EFORMAT, "%s: truncated: gzip stream ends before its trailer",
                        s->path);
    return 0;
}

/* ==== Public ========================================================== */

int dataset_load_idx(struct dataset *ds, const char *images_path, const char *labels_path,
                     char err[SAT_ERR_LEN])
{
    return dataset_load_idx_n(ds, images_path, labels_path, 0, err);
}

int dataset_load_idx_n(struct dataset *ds, const char *images_path, const char *labels_path,
                       int max_images, char err[SAT_ERR_LEN])
{
    memset(ds, 0, sizeof *ds);
    struct idx_src im = {.fd = -1}, lb = {.fd = -1};
    uint32_t dims[3], nlab;
    uint8_t *pixels = NULL, *labels = NULL;

    int rc = idx_open(&im, images_path, IDX_MAGIC_IMAGES, dims, err);
    if (!rc)
        rc = idx_open(&lb, labels_path, IDX_MAGIC_LABELS, &nlab, err);
    if (rc)
        goto out;
    if (dims[0] != nlab) {
        rc = sat_errf(err, SAT_EFORMAT, "%s has %u images but %s has %u labels", images_path,
                      dims[0], labels_path, nlab);
        goto out;
    }
    /* At most 1e7 * 4096 * 4096 bytes: no overflow in 64 bits. */
    uint64_t npix = (uint64_t)dims[0] * dims[1] * dims[2];
    rc = idx_check_size(&im, 16, npix, "pixel", err);
    if (!rc)
        rc = idx_check_size(&lb, 8, nlab, "label", err);
    if (rc)
        goto out;
    if (npix > SIZE_MAX) {
        rc = sat_errf(err, SAT_ETOOBIG, "%s: %llu pixel bytes do not fit in memory", images_path,
                      (unsigned long long)npix);
        goto out;
    }

    uint32_t nkeep = max_images > 0 && (uint32_t)max_images < dims[0] ? (uint32_t)max_images
                                                                       : dims[0];
    uint64_t nkeep_pix = (uint64_t)nkeep * dims[1] * dims[2];
    pixels = sat_malloc(nkeep_pix ? (size_t)nkeep_pix : 1);
    labels = sat_malloc(nlab ? nlab : 1);
    if (!pixels || !labels) {
        rc = sat_errf(err, SAT_ENOMEM, "%s: cannot allocate %llu pixel bytes", images_path,
                      (unsigned long long)npix);
        goto out;
    }
    rc = idx_read_payload(&im, pixels, (size_t)nkeep_pix, (size_t)npix, "pixel", err);
    if (!rc)
        rc = idx_read_payload(&lb, labels, nlab, nlab, "label", err);
    if (rc)
        goto out;
    for (uint32_t i = 0; i < nlab; i++) {
        if (labels[i] >= IDX_NCLASS) {
            rc = sat_errf(err, SAT_EFORMAT, "%s: label %u at index %u is out of range [0, %d)",
                          labels_path, labels[i], i, IDX_NCLASS);
            goto out;
        }
    }

    ds->n = (int)nkeep;
    ds->c = 1;
    ds->h = (int)dims[1];
    ds->w = (int)dims[2];
    ds->nclass = IDX_NCLASS;
    ds->pixels = pixels;
    ds->labels = labels;
    pixels = labels = NULL;
out:
    src_close(&im);
    src_close(&lb);
    sat_free(pixels);
    sat_free(labels);
    return rc;
}
