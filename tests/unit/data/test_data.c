/* test_data.c - data set readers, shards, epoch order and batch filling.
 *
 * Small IDX and CIFAR files are written to a private temporary directory,
 * good and broken in every way the readers must refuse. The real
 * Fashion-MNIST under /usr/share/datasets is required (CI installs it): its
 * absence is a failure, not a skip.
 */
#include "check.h"
#include "data/dataset.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/xalloc.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ==== Temporary files ================================================= */

#define MAX_TMP_FILES 128

static char tmp_dir[256];
static char tmp_files[MAX_TMP_FILES][PATH_MAX];
static int tmp_nfiles;

/* Returns dir/name in a static slot that stays valid for the whole run. */
static const char *tmp_path(const char *name)
{
    if (tmp_nfiles == MAX_TMP_FILES) {
        fprintf(stderr, "too many temporary files\n");
        exit(2);
    }
    char *p = tmp_files[tmp_nfiles++];
    snprintf(p, PATH_MAX, "%s/%s", tmp_dir, name);
    return p;
}

/* Newest first, so that files go before the folders that hold them. */
static void tmp_cleanup(void)
{
    for (int i = tmp_nfiles - 1; i >= 0; i--) {
        unlink(tmp_files[i]);
        rmdir(tmp_files[i]);
    }
    rmdir(tmp_dir);
}

/* Writes len bytes to name (gzip-compressed if gz); returns the path. */
static const char *write_file(const char *name, const void *data, size_t len, int gz)
{
    const char *path = tmp_path(name);
    int ok;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ok = f && (len == 0 || gzwrite(f, data, (unsigned)len) == (int)len);
        ok = f && gzclose(f) == Z_OK && ok;
    } else {
        FILE *f = fopen(path, "wb");
        ok = f && fwrite(data, 1, len, f) == len;
        ok = f && fclose(f) == 0 && ok;
    }
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    return path;
}

/* Reads a whole file into a malloc'd buffer (test-only, plain libc). */
static uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX image file in memory: header declaring (n, h, w) followed by
 * `payload` bytes of pixels (pattern or random), then `extra` bytes. */
static uint8_t *idx_images(uint32_t magic, uint32_t n, uint32_t h, uint32_t w, size_t payload,
                           size_t extra, int random_pixels, size_t *len)
{
    *len = 16 + payload + extra;
    uint8_t *b = malloc(*len);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, h);
    put_be32(b + 12, w);
    uint64_t s = 12345;
    for (size_t i = 0; i < payload + extra; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        b[16 + i] = random_pixels ? (uint8_t)(s >> 56) : (uint8_t)(i * 7 + 3);
    }
    return b;
}

static uint8_t *idx_labels(uint32_t magic, uint32_t n, size_t payload, size_t *len)
{
    *len = 8 + payload;
    uint8_t *b = malloc(*len);
    put_be32(b, magic);
    put_be32(b + 4, n);
    for (size_t i = 0; i < payload; i++)
        b[8 + i] = (uint8_t)(i % 10);
    return b;
}

static int ds_empty(const struct dataset *ds)
{
    return ds->n == 0 && ds->pixels == NULL && ds->labels == NULL;
}

/* Loads and checks that the load fails with `code` and a message naming
 * `names` (the file) and containing `what`; the same when only the first
 * image is kept (the rest of the file is still checked). */
static void expect_idx_fail(const char *images, const char *labels, int code, const char *names,
                            const char *what)
{
    for (int keep = 0; keep <= 1; keep++) {
        struct dataset ds;
        char err[SAT_ERR_LEN] = "";
        int rc = keep ? dataset_load_idx_n(&ds, images, labels, 1, err)
                      : dataset_load_idx(&ds, images, labels, err);
        CHECK_EQ_INT(rc, code);
        CHECK(ds_empty(&ds));
        CHECK_STR_CONTAINS(err, names);
        CHECK_STR_CONTAINS(err, what);
        if (rc == 0)
            dataset_free(&ds);
    }
}

/* ==== IDX ============================================================= */

static void test_idx_good(void)
{
    const uint32_t n = 5, h = 3, w = 4;
    size_t ilen, llen;
    uint8_t *im = idx_images(0x803, n, h, w, n * h * w, 0, 0, &ilen);
    uint8_t *lb = idx_labels(0x801, n, n, &llen);
    const char *paths[][2] = {
        {write_file("good-im", im, ilen, 0), write_file("good-lb", lb, llen, 0)},
        {write_file("good-im.gz", im, ilen, 1), write_file("good-lb.gz", lb, llen, 1)},
        {tmp_path("good-im.gz"), tmp_path("good-lb")}, /* mixed */
        /* detection is by content: a plain file named .gz still loads */
        {write_file("plain-named.gz", im, ilen, 0), tmp_path("good-lb.gz")},
    };
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        struct dataset ds;
        char err[SAT_ERR_LEN] = "";
        int rc = dataset_load_idx(&ds, paths[k][0], paths[k][1], err);
        CHECK_EQ_INT(rc, 0);
        if (rc) {
            fprintf(stderr, "  %s\n", err);
            continue;
        }
        CHECK_EQ_INT(ds.n, n);
        CHECK_EQ_INT(ds.c, 1);
        CHECK_EQ_INT(ds.h, h);
        CHECK_EQ_INT(ds.w, w);
        CHECK_EQ_INT(ds.nclass, 10);
        CHECK(memcmp(ds.pixels, im + 16, n * h * w) == 0);
        CHECK(memcmp(ds.labels, lb + 8, n) == 0);
        dataset_truncate(&ds, 2);
        CHECK_EQ_INT(ds.n, 2);
        CHECK(memcmp(ds.pixels, im + 16, 2 * h * w) == 0);
        CHECK(memcmp(ds.labels, lb + 8, 2) == 0);
        dataset_truncate(&ds, 7); /* larger: no change */
        CHECK_EQ_INT(ds.n, 2);
        dataset_free(&ds);
        CHECK(ds_empty(&ds));
        dataset_free(&ds); /* freeing an empty set is harmless */
        /* keeping the first images only: the same images, the rest dropped */
        for (int keep = 0; keep <= 9; keep += 3) {
            rc = dataset_load_idx_n(&ds, paths[k][0], paths[k][1], keep, err);
            CHECK_EQ_INT(rc, 0);
            if (rc)
                continue;
            int want = keep > 0 && keep < (int)n ? keep : (int)n;
            CHECK_EQ_INT(ds.n, want);
            CHECK(memcmp(ds.pixels, im + 16, (size_t)want * h * w) == 0);
            CHECK(memcmp(ds.labels, lb + 8, (size_t)want) == 0);
            dataset_free(&ds);
        }
    }
    free(im);
    free(lb);
}

static void test_idx_errors(void)
{
    size_t ilen, llen, blen;
    uint8_t *lb = idx_labels(0x801, 5, 5, &llen);
    const char *lb5 = write_file("e-lb5", lb, llen, 0);
    const char *lb5gz = write_file("e-lb5.gz", lb, llen, 1);
    uint8_t *im = idx_images(0x803, 5, 3, 4, 60, 0, 0, &ilen);
    const char *im5 = write_file("e-im5", im, ilen, 0);
    free(im);
    free(lb);

    /* Missing file. */
    const char *missing = tmp_path("no-such-file");
    expect_idx_fail(missing, lb5, SAT_ENOENT, missing, "No such file");
    expect_idx_fail(im5, missing, SAT_ENOENT, missing, "No such file");

    /* A directory is not a data file. */
    expect_idx_fail(tmp_dir, lb5, SAT_EIO, tmp_dir, "not a regular file");

    /* Truncated plain image file: declares 1000 28x28 images, holds 1000 bytes. */
    uint8_t *b = idx_images(0x803, 1000, 28, 28, 1000, 0, 0, &blen);
    const char *p = write_file("e-trunc", b, blen, 0);
    lb = idx_labels(0x801, 1000, 1000, &llen);
    const char *lb1000 = write_file("e-lb1000", lb, llen, 0);
    free(lb);
    expect_idx_fail(p, lb1000, SAT_EFORMAT, p, "truncated: expected 784000 pixel bytes, got 1000");
    free(b);

    /* Truncated gzip stream: 200 random (incompressible) images cut in half,
     * so the size precheck passes and zlib meets the early end. */
    b = idx_images(0x803, 200, 28, 28, 200 * 784, 0, 1, &blen);
    const char *full = write_file("e-rand.gz", b, blen, 1);
    lb = idx_labels(0x801, 200, 200, &llen);
    const char *lb200 = write_file("e-lb200", lb, llen, 0);
    free(lb);
    free(b);
    size_t zlen;
    uint8_t *z = read_whole(full, &zlen);
    CHECK(z && zlen > 100000);
    p = write_file("e-cut.gz", z, zlen / 2, 0);
    expect_idx_fail(p, lb200, SAT_EFORMAT, p, "gzip stream cut short");
    expect_idx_fail(p, lb200, SAT_EFORMAT, p, "truncated: expected 156800 pixel bytes");
    /* All the data but not the CRC/length trailer. */
    p = write_file("e-notrailer.gz", z, zlen - 8, 0);
    expect_idx_fail(p, lb200, SAT_EFORMAT, p, "truncated");
    /* A wrong CRC in the trailer. */
    z[zlen - 8] ^= 0x55;
    p = write_file("e-badcrc.gz", z, zlen, 0);
    expect_idx_fail(p, lb200, SAT_EFORMAT, p, "corrupt gzip stream");
    free(z);
    /* And the intact file loads. */
    {
        struct dataset ds;
        char err[SAT_ERR_LEN] = "";
        CHECK_EQ_INT(dataset_load_idx(&ds, full, lb200, err), 0);
        CHECK_EQ_INT(ds.n, 200);
        dataset_free(&ds);
    }

    /* Wrong magic: a label file given as images and vice versa, and a
     * non-uint8 type. */
    expect_idx_fail(lb5, lb5, SAT_EFORMAT, lb5, "bad magic 0x00000801, expected 0x00000803");
    expect_idx_fail(im5, im5, SAT_EFORMAT, im5, "bad magic 0x00000803, expected 0x00000801");
    b = idx_images(0x0d03, 5, 3, 4, 60, 0, 0, &blen);
    p = write_file("e-float.gz", b, blen, 1);
    expect_idx_fail(p, lb5, SAT_EFORMAT, p, "bad magic 0x00000d03");
    free(b);

    /* Label out of range. */
    lb = idx_labels(0x801, 5, 5, &llen);
    lb[8 + 3] = 10;
    p = write_file("e-lb-range.gz", lb, llen, 1);
    expect_idx_fail(im5, p, SAT_EFORMAT, p, "label 10 at index 3 is out of range");
    free(lb);

    /* Mismatched N. */
    lb = idx_labels(0x801, 4, 4, &llen);
    p = write_file("e-lb4", lb, llen, 0);
    expect_idx_fail(im5, p, SAT_EFORMAT, p, "has 5 images but");
    expect_idx_fail(im5, p, SAT_EFORMAT, "has 4 labels", im5);
    free(lb);

    /* Trailing garbage, plain (exact count) and gzip. */
    b = idx_images(0x803, 5, 3, 4, 60, 3, 0, &blen);
    p = write_file("e-trail", b, blen, 0);
    expect_idx_fail(p, lb5, SAT_EFORMAT, p, "3 trailing bytes");
    p = write_file("e-trail.gz", b, blen, 1);
    expect_idx_fail(p, lb5gz, SAT_EFORMAT, p, "trailing bytes");
    free(b);
    lb = idx_labels(0x801, 5, 6, &llen);
    p = write_file("e-lb-trail.gz", lb, llen, 1);
    expect_idx_fail(im5, p, SAT_EFORMAT, p, "trailing bytes");
    free(lb);

    /* Short headers and empty files. */
    b = idx_images(0x803, 5, 3, 4, 0, 0, 0, &blen);
    p = write_file("e-shorthdr", b, 10, 0);
    expect_idx_fail(p, lb5, SAT_EFORMAT, p, "truncated header");
    p = write_file("e-empty", b, 0, 0);
    expect_idx_fail(p, lb5, SAT_EFORMAT, p, "truncated");
    p = write_file("e-empty.gz", b, 0, 1);
    expect_idx_fail(p, lb5, SAT_EFORMAT, p, "truncated");
    free(b);
    b = idx_images(0x803, 5, 0, 4, 0, 0, 0, &blen);
    p = write_file("e-zero", b, blen, 0);
    expect_idx_fail(p, lb5, SAT_EFORMAT, p, "dimension 1 is 0");
    free(b);

    /* Huge declared dimensions are refused before anything is allocated:
     * with every allocation failing, the error is still the format's. */
    sat_alloc_fail_after(0);
    b = idx_images(0x803, DATASET_MAX_IMAGES + 1, 28, 28, 100, 0, 0, &blen);
    p = write_file("e-huge-n", b, blen, 0);
    expect_idx_fail(p, lb5, SAT_ETOOBIG, p, "dimension 0 is 10000001, over the limit");
    free(b);
    b = idx_images(0x803, 5, 28, DATASET_MAX_DIM + 1, 100, 0, 0, &blen);
    p = write_file("e-huge-w.gz", b, blen, 1);
    expect_idx_fail(p, lb5, SAT_ETOOBIG, p, "dimension 2 is 4097");
    free(b);
    /* Within the per-dimension bounds but 1.6e14 bytes: refused from the
     * file size, plain and gzip (labels declare the same N). */
    b = idx_images(0x803, DATASET_MAX_IMAGES, DATASET_MAX_DIM, DATASET_MAX_DIM, 100, 0, 0, &blen);
    lb = idx_labels(0x801, DATASET_MAX_IMAGES, 10, &llen);
    const char *lbbig = write_file("e-lb-big", lb, llen, 0);
    p = write_file("e-huge", b, blen, 0);
    expect_idx_fail(p, lbbig, SAT_EFORMAT, p, "truncated: expected 167772160000000 pixel bytes");
    p = write_file("e-huge.gz", b, blen, 1);
    expect_idx_fail(p, lbbig, SAT_EFORMAT, p, "more than a");
    free(b);
    free(lb);
    sat_alloc_fail_after(-1);
}

/* Every allocation of a load fails in turn: each failure is SAT_ENOMEM with
 * nothing left allocated (ASan checks the leaks), and the walk ends in success. */
static void test_alloc_faults(void)
{
    size_t ilen, llen;
    uint8_t *im = idx_images(0x803, 5, 3, 4, 60, 0, 0, &ilen);
    uint8_t *lb = idx_labels(0x801, 5, 5, &llen);
    const char *ip = write_file("f-im.gz", im, ilen, 1);
    const char *lp = write_file("f-lb.gz", lb, llen, 1);
    free(im);
    free(lb);
    for (int which = 0; which < 2; which++) {
        int nomem = 0, ok = 0;
        for (long k = 0; k < 20 && !ok; k++) {
            struct dataset ds;
            char err[SAT_ERR_LEN];
            sat_alloc_fail_after(k);
            int rc = which == 0 ? dataset_load_idx(&ds, ip, lp, err)
                                : dataset_synthetic(&ds, 10, 1, 8, 8, 3, 1);
            sat_alloc_fail_after(-1);
            if (rc == 0) {
                ok = 1;
                dataset_free(&ds);
            } else {
                CHECK_EQ_INT(rc, SAT_ENOMEM);
                CHECK(ds_empty(&ds));
                nomem++;
            }
        }
        CHECK(ok);
        CHECK(nomem >= 2);
    }
}

/* ==== CIFAR-10 ======================================================== */

#define CREC 3073

static uint8_t *cifar_batch(int nrec, int first, size_t *len)
{
    *len = (size_t)nrec * CREC;
    uint8_t *b = malloc(*len);
    for (int r = 0; r < nrec; r++) {
        b[(size_t)r * CREC] = (uint8_t)((first + r) % 10);
        for (int k = 0; k < 3072; k++)
            b[(size_t)r * CREC + 1 + k] = (uint8_t)((first + r) * 31 + k * 7);
    }
    return b;
}

static void test_cifar(void)
{
    size_t l1, l2;
    uint8_t *b1 = cifar_batch(3, 0, &l1), *b2 = cifar_batch(2, 3, &l2);
    const char *good[2] = {write_file("c1.bin", b1, l1, 0), write_file("c2.bin", b2, l2, 0)};
    struct dataset ds;
    char err[SAT_ERR_LEN] = "";
    int rc = dataset_load_cifar(&ds, good, 2, err);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(ds.n, 5);
        CHECK_EQ_INT(ds.c, 3);
        CHECK_EQ_INT(ds.h, 32);
        CHECK_EQ_INT(ds.w, 32);
        CHECK_EQ_INT(ds.nclass, 10);
        for (int i = 0; i < 5; i++) {
            const uint8_t *rec = i < 3 ? b1 + (size_t)i * CREC : b2 + (size_t)(i - 3) * CREC;
            CHECK_EQ_INT(ds.labels[i], rec[0]);
            CHECK(memcmp(ds.pixels + (size_t)i * 3072, rec + 1, 3072) == 0);
        }
        dataset_free(&ds);
    }

    /* Bad size: two records and 5 bytes. */
    uint8_t *b3 = cifar_batch(3, 0, &l1);
    const char *bad[2] = {good[0], write_file("c-size.bin", b3, 2 * CREC + 5, 0)};
    rc = dataset_load_cifar(&ds, bad, 2, err);
    CHECK_EQ_INT(rc, SAT_EFORMAT);
    CHECK(ds_empty(&ds));
    CHECK_STR_CONTAINS(err, bad[1]);
    CHECK_STR_CONTAINS(err, "not a multiple of the 3073-byte record");

    /* Bad label in the second file's second record. */
    b2[CREC] = 10;
    bad[1] = write_file("c-label.bin", b2, l2, 0);
    rc = dataset_load_cifar(&ds, bad, 2, err);
    CHECK_EQ_INT(rc, SAT_EFORMAT);
    CHECK(ds_empty(&ds));
    CHECK_STR_CONTAINS(err, bad[1]);
    CHECK_STR_CONTAINS(err, "record 1 has label 10");

    /* Empty and missing files. */
    bad[1] = write_file("c-empty.bin", b2, 0, 0);
    CHECK_EQ_INT(dataset_load_cifar(&ds, bad, 2, err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "empty");
    bad[1] = tmp_path("c-missing.bin");
    CHECK_EQ_INT(dataset_load_cifar(&ds, bad, 2, err), SAT_ENOENT);
    CHECK_STR_CONTAINS(err, bad[1]);
    CHECK_EQ_INT(dataset_load_cifar(&ds, bad, 0, err), SAT_EINVAL);

    /* Allocation faults. */
    int ok = 0;
    for (long k = 0; k < 10 && !ok; k++) {
        sat_alloc_fail_after(k);
        rc = dataset_load_cifar(&ds, good, 2, err);
        sat_alloc_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            dataset_free(&ds);
        } else {
            CHECK_EQ_INT(rc, SAT_ENOMEM);
            CHECK(ds_empty(&ds));
        }
    }
    CHECK(ok);
    free(b1);
    free(b2);
    free(b3);
}

/* ==== Named data sets ================================================= */

static void test_named(void)
{
    struct dataset tr, te;
    char err[SAT_ERR_LEN] = "";
    /* A directory with plain (non-.gz) IDX files. */
    const char *dir = tmp_path("named");
    CHECK(mkdir(dir, 0700) == 0);
    size_t ilen, llen, blen;
    uint8_t *im = idx_images(0x803, 5, 3, 4, 60, 0, 0, &ilen);
    uint8_t *lb = idx_labels(0x801, 5, 5, &llen);
    write_file("named/train-images-idx3-ubyte", im, ilen, 0);
    write_file("named/train-labels-idx1-ubyte", lb, llen, 0);
    free(im);
    free(lb);
    im = idx_images(0x803, 3, 3, 4, 36, 0, 0, &ilen);
    lb = idx_labels(0x801, 3, 3, &llen);

    /* The test split is missing: an error naming it, and train is freed. */
    int rc = dataset_load_named(&tr, &te, "mnist", dir, err);
    CHECK_EQ_INT(rc, SAT_ENOENT);
    CHECK_STR_CONTAINS(err, "t10k-images-idx3-ubyte");
    CHECK(ds_empty(&tr) && ds_empty(&te));

    write_file("named/t10k-images-idx3-ubyte.gz", im, ilen, 1);
    write_file("named/t10k-labels-idx1-ubyte", lb, llen, 0);
    free(im);
    free(lb);
    rc = dataset_load_named(&tr, &te, "fashion-mnist", dir, err);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(tr.n, 5);
        CHECK_EQ_INT(te.n, 3);
        dataset_free(&tr);
        dataset_free(&te);
    }
    rc = dataset_load_named(NULL, &te, "mnist", dir, err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(te.n, 3);
    dataset_free(&te);

    CHECK_EQ_INT(dataset_load_named(&tr, &te, "imagenet", NULL, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "unknown data set 'imagenet'");

    /* Shapes by name, without loading; the same as what loading gives. */
    int c = -1, h = -1, w = -1, ncls = -1;
    CHECK_EQ_INT(dataset_named_shape("imagenet", &c, &h, &w, &ncls), SAT_EINVAL);
    CHECK_EQ_INT(c, -1);
    CHECK_EQ_INT(dataset_named_shape(NULL, &c, &h, &w, &ncls), SAT_EINVAL);
    CHECK_EQ_INT(dataset_named_shape("cifar10", &c, &h, &w, &ncls), 0);
    CHECK(c == 3 && h == 32 && w == 32 && ncls == 10);
    CHECK_EQ_INT(dataset_named_shape("fashion-mnist", &c, &h, &w, &ncls), 0);
    CHECK(c == 1 && h == 28 && w == 28 && ncls == 10);
    CHECK_EQ_INT(dataset_named_shape("mnist", &c, &h, &w, &ncls), 0);
    CHECK(c == 1 && h == 28 && w == 28 && ncls == 10);
    CHECK_EQ_INT(dataset_named_shape("synthetic", &c, &h, &w, &ncls), 0);
    CHECK_EQ_INT(dataset_load_named(&tr, NULL, "synthetic", NULL, err), 0);
    CHECK(tr.c == c && tr.h == h && tr.w == w && tr.nclass == ncls && tr.n == 2048);
    dataset_free(&tr);

    /* CIFAR-10 under its file names. */
    const char *cdir = tmp_path("cifar");
    CHECK(mkdir(cdir, 0700) == 0);
    uint8_t *b = cifar_batch(2, 0, &blen);
    char name[64];
    for (int i = 1; i <= 5; i++) {
        snprintf(name, sizeof name, "cifar/data_batch_%d.bin", i);
        write_file(name, b, blen, 0);
    }
    rc = dataset_load_named(&tr, &te, "cifar10", cdir, err);
    CHECK_EQ_INT(rc, SAT_ENOENT);
    CHECK_STR_CONTAINS(err, "test_batch.bin");
    write_file("cifar/test_batch.bin", b, CREC, 0);
    free(b);
    rc = dataset_load_named(&tr, &te, "cifar10", cdir, err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(tr.n, 10);
    CHECK_EQ_INT(te.n, 1);
    CHECK_EQ_INT(te.c, 3);
    dataset_free(&tr);
    dataset_free(&te);
}

/* The real Fashion-MNIST: sizes, class balance and checksums computed
 * independently (Python's gzip module) from the installed files. */
static void test_fashion_mnist(void)
{
    struct dataset tr, te;
    char err[SAT_ERR_LEN] = "";
    double t0 = sat_mono_s();
    int rc = dataset_load_named(&tr, NULL, "fashion-mnist", NULL, err);
    double t1 = sat_mono_s();
    if (rc)
        fprintf(stderr, "  Fashion-MNIST (%s) must be installed: %s\n", FMNIST_DIR, err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        return;
    rc = dataset_load_named(NULL, &te, "fashion-mnist", FMNIST_DIR, err);
    CHECK_EQ_INT(rc, 0);
    if (rc) {
        dataset_free(&tr);
        return;
    }
    fprintf(stderr, "  fashion-mnist train: %d images loaded in %.3f s\n", tr.n, t1 - t0);
    const struct {
        struct dataset *ds;
        int n;
        uint64_t pixsum;
        uint8_t first[10];
    } want[2] = {
        {&tr, 60000, 3431114169ull, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}},
        {&te, 10000, 573469082ull, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}},
    };
    for (int s = 0; s < 2; s++) {
        const struct dataset *ds = want[s].ds;
        CHECK_EQ_INT(ds->n, want[s].n);
        CHECK_EQ_INT(ds->c, 1);
        CHECK_EQ_INT(ds->h, 28);
        CHECK_EQ_INT(ds->w, 28);
        CHECK_EQ_INT(ds->nclass, 10);
        int count[10] = {0};
        for (int i = 0; i < ds->n; i++)
            count[ds->labels[i]]++;
        for (int k = 0; k < 10; k++)
            CHECK_EQ_INT(count[k], want[s].n / 10);
        CHECK(memcmp(ds->labels, want[s].first, 10) == 0);
        uint64_t sum = 0;
        for (size_t i = 0; i < (size_t)ds->n * 784; i++)
            sum += ds->pixels[i];
        CHECK_EQ_INT(sum, want[s].pixsum);
    }

    /* One epoch of augmented batches over the training set, timed. */
    uint32_t *shard = malloc(60000 * sizeof *shard), *order = malloc(60000 * sizeof *order);
    float *x = malloc(256 * 784 * sizeof *x);
    int32_t *y = malloc(256 * sizeof *y);
    uint32_t len = dataset_shard(shard, 60000, 7, 0, 1);
    dataset_epoch_order(order, shard, len, 7, 0, 0);
    struct augment aug = {.enabled = 1, .pad = 2, .flip = 1};
    t0 = sat_mono_s();
    double acc = 0;
    for (uint32_t p = 0; p < len; p += 256) {
        int b = len - p < 256 ? (int)(len - p) : 256;
        loader_fill(x, y, &tr, order + p, b, &aug, 7, 0, 0, p);
        acc += x[0];
    }
    t1 = sat_mono_s();
    fprintf(stderr, "  fashion-mnist: one augmented epoch filled in %.3f s (%g)\n", t1 - t0, acc);
    free(shard);
    free(order);
    free(x);
    free(y);
    dataset_free(&tr);
    dataset_free(&te);
}

/* ==== Synthetic ======================================================= */

static void test_synthetic(void)
{
    struct dataset a, b;
    CHECK_EQ_INT(dataset_synthetic(&a, 100, 3, 8, 9, 7, 42), 0);
    CHECK_EQ_INT(dataset_synthetic(&b, 100, 3, 8, 9, 7, 42), 0);
    CHECK(a.n == 100 && a.c == 3 && a.h == 8 && a.w == 9 && a.nclass == 7);
    CHECK(memcmp(a.pixels, b.pixels, 100 * 3 * 8 * 9) == 0);
    CHECK(memcmp(a.labels, b.labels, 100) == 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(a.labels[i], i % 7);
    dataset_free(&b);
    CHECK_EQ_INT(dataset_synthetic(&b, 100, 3, 8, 9, 7, 43), 0);
    CHECK(memcmp(a.pixels, b.pixels, 100 * 3 * 8 * 9) != 0);
    dataset_free(&a);
    dataset_free(&b);
    CHECK_EQ_INT(dataset_synthetic(&a, 0, 1, 8, 8, 10, 1), SAT_EINVAL);
    CHECK_EQ_INT(dataset_synthetic(&a, 10, 1, 8, 8, 257, 1), SAT_EINVAL);
    CHECK_EQ_INT(dataset_synthetic(&a, 10, 1, 0, 8, 10, 1), SAT_EINVAL);
    CHECK(ds_empty(&a));
    CHECK_EQ_INT(dataset_synthetic(&a, 4, 1, 1, 1, 2, 1), 0); /* 1x1 images work */
    dataset_free(&a);

    /* The named split: same task, different images, and learnable: a
     * nearest-class-mean classifier fit on train is right on most of test,
     * while the pixels are noisy (not a copy of the template). */
    struct dataset tr, te;
    char err[SAT_ERR_LEN];
    CHECK_EQ_INT(dataset_load_named(&tr, &te, "synthetic", NULL, err), 0);
    CHECK(tr.n == 2048 && te.n == 512 && tr.c == 1 && tr.h == 28 && tr.w == 28);
    CHECK_EQ_INT(tr.nclass, 10);
    CHECK(memcmp(tr.pixels, te.pixels, 784) != 0);
    static double mean[10][784];
    memset(mean, 0, sizeof mean);
    for (int i = 0; i < tr.n; i++)
        for (int k = 0; k < 784; k++)
            mean[tr.labels[i]][k] += tr.pixels[(size_t)i * 784 + k] / (tr.n / 10.0);
    int right = 0;
    double resid = 0;
    for (int i = 0; i < te.n; i++) {
        int best = -1;
        double bestd = 0;
        for (int c = 0; c < 10; c++) {
            double d = 0;
            for (int k = 0; k < 784; k++) {
                double e = te.pixels[(size_t)i * 784 + k] - mean[c][k];
                d += e * e;
            }
            if (best < 0 || d < bestd) {
                best = c;
                bestd = d;
            }
        }
        right += best == te.labels[i];
        resid += bestd / 784;
    }
    fprintf(stderr, "  synthetic: nearest-mean test accuracy %d/%d, noise rms %.1f levels\n", right,
            te.n, sqrt(resid / te.n));
    CHECK(right >= te.n * 95 / 100);
    CHECK(sqrt(resid / te.n) > 20); /* the noise is real */
    dataset_free(&tr);
    dataset_free(&te);
}

/* ==== Shards and epoch order ========================================== */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void check_shards(uint32_t n, int world, uint64_t seed)
{
    uint32_t *all = malloc(((size_t)n + 1) * sizeof *all);
    uint32_t *again = malloc(((size_t)n + 1) * sizeof *again);
    uint32_t total = 0;
    for (int r = 0; r < world; r++) {
        uint32_t sz = dataset_shard_size(n, r, world);
        /* rank*n/world boundaries: sizes differ by at most one. */
        CHECK(sz == n / world || sz == n / world + 1);
        uint32_t got = dataset_shard(all + total, n, seed, r, world);
        CHECK_EQ_INT(got, sz);
        CHECK_EQ_INT(dataset_shard(again, n, seed, r, world), sz);
        CHECK(memcmp(all + total, again, (size_t)sz * sizeof *again) == 0);
        total += got;
    }
    CHECK_EQ_INT(total, n);
    /* Disjoint and covering: sorted, the union is exactly 0..n-1. */
    qsort(all, n, sizeof *all, cmp_u32);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n; i++)
        bad += all[i] != i;
    CHECK_EQ_INT(bad, 0);
    free(all);
    free(again);
}

static void test_shards(void)
{
    check_shards(1000, 3, 1);
    check_shards(10, 4, 2);
    check_shards(60000, 7, 3);
    check_shards(3, 5, 4); /* more ranks than images: some shards are empty */
    check_shards(1, 1, 5);
    check_shards(77777, 1, 6);
    CHECK_EQ_INT(dataset_shard_size(100, 3, 3), 0);
    CHECK_EQ_INT(dataset_shard_size(100, -1, 3), 0);
    CHECK_EQ_INT(dataset_shard_size(100, 0, 0), 0);
    CHECK_EQ_INT(dataset_shard_size(0, 0, 1), 0);
    uint32_t dummy = 12345;
    CHECK_EQ_INT(dataset_shard(&dummy, 100, 1, 5, 2), 0);
    CHECK_EQ_INT(dummy, 12345);

    /* Seeded, and shuffled: the shard of rank 0 changes with the seed, and
     * the whole-set permutation is far from the identity. */
    static uint32_t s1[1000], s2[1000];
    dataset_shard(s1, 1000, 1, 0, 2);
    dataset_shard(s2, 1000, 2, 0, 2);
    CHECK(memcmp(s1, s2, sizeof(uint32_t) * 500) != 0);
    uint32_t n1 = dataset_shard(s1, 1000, 1, 0, 1);
    int fixed = 0, low = 0;
    for (uint32_t i = 0; i < n1; i++)
        fixed += s1[i] == i;
    dataset_shard(s2, 1000, 9, 0, 2);
    for (int i = 0; i < 500; i++)
        low += s2[i] < 500;
    CHECK(fixed < 10);
    CHECK(low > 200 && low < 300); /* rank 0 is not just the first half */
}

static void test_epoch_order(void)
{
    enum { N = 1000 };
    static uint32_t shard[N], o1[N], o2[N], o3[N], sorted[N];
    uint32_t len = dataset_shard(shard, 3 * N, 11, 1, 3);
    CHECK_EQ_INT(len, N);
    dataset_epoch_order(o1, shard, len, 11, 0, 1);
    dataset_epoch_order(o2, shard, len, 11, 0, 1);
    CHECK(memcmp(o1, o2, sizeof o1) == 0);
    /* A permutation of the shard. */
    memcpy(sorted, o1, sizeof o1);
    qsort(sorted, len, sizeof *sorted, cmp_u32);
    memcpy(o3, shard, sizeof o3);
    qsort(o3, len, sizeof *o3, cmp_u32);
    CHECK(memcmp(sorted, o3, sizeof o3) == 0);
    CHECK(memcmp(o1, shard, sizeof o1) != 0);
    /* Changes with the epoch, the rank and the seed. */
    dataset_epoch_order(o2, shard, len, 11, 1, 1);
    CHECK(memcmp(o1, o2, sizeof o1) != 0);
    dataset_epoch_order(o2, shard, len, 11, 0, 2);
    CHECK(memcmp(o1, o2, sizeof o1) != 0);
    dataset_epoch_order(o2, shard, len, 12, 0, 1);
    CHECK(memcmp(o1, o2, sizeof o1) != 0);
    /* In place gives the same order. */
    memcpy(o2, shard, sizeof o2);
    dataset_epoch_order(o2, o2, len, 11, 0, 1);
    CHECK(memcmp(o1, o2, sizeof o1) == 0);
}

/* ==== Batches ========================================================= */

/* A hand data set: n images of (c, h, w) with distinct nonzero pixels. */
static void hand_ds(struct dataset *ds, uint8_t *pix, uint8_t *lab, int n, int c, int h, int w)
{
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->nclass = 10;
    ds->pixels = pix;
    ds->labels = lab;
    for (int i = 0; i < n * c * h * w; i++)
        pix[i] = (uint8_t)(1 + i % 255);
    for (int i = 0; i < n; i++)
        lab[i] = (uint8_t)(i % 10);
}

/* The reference for the augment contract, written from the header:
 * out(h, w) = in(h + dy, (f ? W-1-w : w) + dx) / 255, 0 outside. */
static float ref_pixel(const uint8_t *img, int H, int W, int h, int w, int dx, int dy, int f)
{
    int sy = h + dy, sx = (f ? W - 1 - w : w) + dx;
    if (sy < 0 || sy >= H || sx < 0 || sx >= W)
        return 0.0f;
    return img[sy * W + sx] / 255.0f;
}

/* Does image j of batch x (C, b, H, W) equal image img (C, H, W)
 * transformed by (dx, dy, f)? */
static int matches(const float *x, int b, int j, const uint8_t *img, int C, int H, int W, int dx,
                   int dy, int f)
{
    for (int c = 0; c < C; c++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                if (x[(((size_t)c * b + j) * H + h) * W + w] !=
                    ref_pixel(img + (size_t)c * H * W, H, W, h, w, dx, dy, f))
                    return 0;
    return 1;
}

static void test_loader_plain(void)
{
    enum { N = 3, C = 2, H = 3, W = 4 };
    uint8_t pix[N * C * H * W], lab[N];
    struct dataset ds;
    hand_ds(&ds, pix, lab, N, C, H, W);
    pix[5] = 255;
    pix[6] = 0;
    const uint32_t idx[2] = {2, 0};
    float x[C * 2 * H * W], x2[C * 2 * H * W];
    int32_t y[2];
    loader_fill(x, y, &ds, idx, 2, NULL, 1, 0, 0, 0);
    CHECK_EQ_INT(y[0], 2);
    CHECK_EQ_INT(y[1], 0);
    for (int c = 0; c < C; c++)
        for (int j = 0; j < 2; j++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    uint8_t v = pix[((idx[j] * C + c) * H + h) * W + w];
                    CHECK(x[((c * 2 + j) * H + h) * W + w] == v / 255.0f);
                }
    CHECK(x[((0 * 2 + 1) * H + 1) * W + 1] == 1.0f); /* pix[5]: image 0, c 0, (1, 1) */
    CHECK(x[((0 * 2 + 1) * H + 1) * W + 2] == 0.0f); /* pix[6] */
    /* A disabled or empty augmentation is no augmentation. */
    struct augment off = {.enabled = 0, .pad = 4, .flip = 1};
    loader_fill(x2, y, &ds, idx, 2, &off, 1, 0, 0, 0);
    CHECK(memcmp(x, x2, sizeof x) == 0);
    struct augment none = {.enabled = 1, .pad = 0, .flip = 0};
    loader_fill(x2, y, &ds, idx, 2, &none, 1, 0, 0, 0);
    CHECK(memcmp(x, x2, sizeof x) == 0);
}

static void test_loader_aug(void)
{
    /* The oracle itself, on a literal hand case: 2x3 image, dx = 1 shifts
     * content left with a zero column on the right; flip mirrors. */
    const uint8_t lit[6] = {1, 2, 3, 4, 5, 6};
    const uint8_t want_dx1[6] = {2, 3, 0, 5, 6, 0}, want_flip[6] = {3, 2, 1, 6, 5, 4};
    const uint8_t want_dym1[6] = {0, 0, 0, 1, 2, 3};
    for (int k = 0; k < 6; k++) {
        CHECK(ref_pixel(lit, 2, 3, k / 3, k % 3, 1, 0, 0) == want_dx1[k] / 255.0f);
        CHECK(ref_pixel(lit, 2, 3, k / 3, k % 3, 0, 0, 1) == want_flip[k] / 255.0f);
        CHECK(ref_pixel(lit, 2, 3, k / 3, k % 3, 0, -1, 0) == want_dym1[k] / 255.0f);
    }

    enum { N = 4, C = 2, H = 5, W = 6, B = 4, TRIALS = 400 };
    uint8_t pix[N * C * H * W], lab[N];
    struct dataset ds;
    hand_ds(&ds, pix, lab, N, C, H, W);
    const uint32_t idx[B] = {3, 1, 0, 2};
    float x[C * B * H * W], x2[C * B * H * W], one[C * H * W];
    int32_t y[B];

    /* Flip only: each output is the image or its mirror, about half each. */
    struct augment flip = {.enabled = 1, .pad = 0, .flip = 1};
    int flips = 0, bad = 0;
    for (int t = 0; t < TRIALS; t++) {
        loader_fill(one, y, &ds, &idx[0], 1, &flip, 5, 0, 0, (uint64_t)t);
        const uint8_t *img = pix + (size_t)idx[0] * C * H * W;
        if (matches(one, 1, 0, img, C, H, W, 0, 0, 1))
            flips++;
        else if (!matches(one, 1, 0, img, C, H, W, 0, 0, 0))
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(flips > TRIALS * 4 / 10 && flips < TRIALS * 6 / 10);

    /* Crop only (pad 2): each output is the image shifted by one (dx, dy)
     * in [-2, 2]^2, the same for both channels, zeros shifted in; all 25
     * shifts occur. */
    struct augment crop = {.enabled = 1, .pad = 2, .flip = 0};
    int hist[5][5] = {{0}};
    bad = 0;
    for (int t = 0; t < TRIALS; t++) {
        loader_fill(one, y, &ds, &idx[1], 1, &crop, 5, 0, 0, (uint64_t)t);
        const uint8_t *img = pix + (size_t)idx[1] * C * H * W;
        int found = 0;
        for (int dy = -2; dy <= 2 && !found; dy++)
            for (int dx = -2; dx <= 2 && !found; dx++)
                if (matches(one, 1, 0, img, C, H, W, dx, dy, 0)) {
                    hist[dy + 2][dx + 2]++;
                    found = 1;
                }
        bad += !found;
        for (int k = 0; k < C * H * W; k++)
            bad += !(one[k] >= 0.0f && one[k] <= 1.0f);
    }
    CHECK_EQ_INT(bad, 0);
    int unseen = 0;
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 5; c++)
            unseen += hist[a][c] == 0;
    CHECK_EQ_INT(unseen, 0);

    /* Crop and flip together. */
    struct augment both = {.enabled = 1, .pad = 1, .flip = 1};
    int seen_flip = 0;
    bad = 0;
    for (int t = 0; t < 100; t++) {
        loader_fill(one, y, &ds, &idx[2], 1, &both, 9, 3, 1, (uint64_t)t);
        const uint8_t *img = pix + (size_t)idx[2] * C * H * W;
        int found = 0;
        for (int f = 0; f < 2 && !found; f++)
            for (int dy = -1; dy <= 1 && !found; dy++)
                for (int dx = -1; dx <= 1 && !found; dx++)
                    if (matches(one, 1, 0, img, C, H, W, dx, dy, f)) {
                        found = 1;
                        seen_flip += f && (dx || dy);
                    }
        bad += !found;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(seen_flip > 0);

    /* Deterministic, and keyed by position: image j of a batch at pos0 is
     * the image filled alone at pos0 + j. */
    struct augment full = {.enabled = 1, .pad = 2, .flip = 1};
    loader_fill(x, y, &ds, idx, B, &full, 77, 4, 2, 100);
    loader_fill(x2, y, &ds, idx, B, &full, 77, 4, 2, 100);
    CHECK(memcmp(x, x2, sizeof x) == 0);
    for (int j = 0; j < B; j++) {
        loader_fill(one, y, &ds, &idx[j], 1, &full, 77, 4, 2, 100 + (uint64_t)j);
        int same = 1;
        for (int c = 0; c < C; c++)
            same &= memcmp(one + c * H * W, x + (c * B + j) * H * W, H * W * sizeof(float)) == 0;
        CHECK(same);
        CHECK_EQ_INT(y[0], lab[idx[j]]);
    }
    /* Another epoch (or seed) augments differently. */
    int differ = 0;
    for (int e = 5; e < 10; e++) {
        loader_fill(x2, y, &ds, idx, B, &full, 77, e, 2, 100);
        differ += memcmp(x, x2, sizeof x) != 0;
    }
    CHECK(differ >= 4);
    loader_fill(x2, y, &ds, idx, B, &full, 78, 4, 2, 100);
    CHECK(memcmp(x, x2, sizeof x) != 0);

    /* A pad wider than the image stays in range (some images all zero). */
    struct augment wide = {.enabled = 1, .pad = 20, .flip = 1};
    int zero_images = 0;
    bad = 0;
    for (int t = 0; t < 50; t++) {
        loader_fill(one, y, &ds, &idx[0], 1, &wide, 1, 0, 0, (uint64_t)t);
        int nz = 0;
        for (int k = 0; k < C * H * W; k++) {
            bad += !(one[k] >= 0.0f && one[k] <= 1.0f);
            nz += one[k] != 0.0f;
        }
        zero_images += nz == 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(zero_images > 0);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/saturn-data-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_idx_good();
    test_idx_errors();
    test_alloc_faults();
    test_cifar();
    test_named();
    test_fashion_mnist();
    test_synthetic();
    test_shards();
    test_epoch_order();
    test_loader_plain();
    test_loader_aug();
    tmp_cleanup();
    return check_summary("data");
}
