/* cifar.c - reader for CIFAR-10 binary batches.
 *
 * A batch file is a sequence of 3073-byte records: one label byte, then the
 * image as (3, 32, 32) uint8 (the red plane, the green, the blue), which is
 * already our (C, H, W) order. All sizes are checked before anything is
 * allocated; the records are then read through a small scratch buffer and
 * split into the dataset's pixel and label arrays.
 */
#include "dataset.h"

#include "../util/file.h"
#include "../util/xalloc.h"

#include <string.h>
#include <unistd.h>

#define CIFAR_C 3
#define CIFAR_HW 32
#define CIFAR_PIXELS (CIFAR_C * CIFAR_HW * CIFAR_HW) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)              /* 3073 */
#define CIFAR_NCLASS 10
#define CIFAR_CHUNK 256 /* records per read */

/* Reads one file's records into pixels/labels (already offset to the
 * file's first record), where at most `room` records fit; *nrec gets the
 * number read. The file was sized in pass 1; a change since is SAT_EIO. */
static int cifar_read_file(const char *path, uint64_t room, uint8_t *pixels, uint8_t *labels,
                           uint8_t *scratch, uint64_t *nrec_out, char err[SAT_ERR_LEN])
{
    int fd;
    uint64_t size;
    int rc = sat_file_open(path, &fd, &size, err);
    if (rc)
        return rc;
    uint64_t nrec = size / CIFAR_RECORD, done = 0;
    *nrec_out = nrec;
    if (size % CIFAR_RECORD || nrec > room) {
        rc = sat_errf(err, SAT_EIO, "%s: file changed while loading", path);
        goto out;
    }
    while (done < nrec) {
        size_t want = nrec - done < CIFAR_CHUNK ? (size_t)(nrec - done) : CIFAR_CHUNK;
        size_t got;
        rc = sat_file_read_full(fd, path, scratch, want * CIFAR_RECORD, &got, err);
        if (rc)
            goto out;
        if (got < want * CIFAR_RECORD) {
            rc = sat_errf(err, SAT_EIO, "%s: file shrank while reading (record %llu)", path,
                          (unsigned long long)(done + got / CIFAR_RECORD));
            goto out;
        }
        for (size_t i = 0; i < want; i++) {
            const uint8_t *rec = scratch + i * CIFAR_RECORD;
            if (rec[0] >= CIFAR_NCLASS) {
                rc = sat_errf(err, SAT_EFORMAT, "%s: record %llu has label %u, expected 0..%d",
                              path, (unsigned long long)(done + i), rec[0], CIFAR_NCLASS - 1);
                goto out;
            }
            labels[done + i] = rec[0];
            memcpy(pixels + (done + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
        done += want;
    }
    uint8_t extra;
    size_t got;
    rc = sat_file_read_full(fd, path, &extra, 1, &got, err);
    if (!rc && got)
        rc = sat_errf(err, SAT_EIO, "%s: file grew while reading", path);
out:
    close(fd);
    return rc;
}

int dataset_load_cifar(struct dataset *ds, const char *const *paths, int nfiles,
                       char err[SAT_ERR_LEN])
{
    memset(ds, 0, sizeof *ds);
    if (!paths || nfiles <= 0)
        return sat_errf(err, SAT_EINVAL, "no CIFAR-10 batch files given");

    /* Pass 1: sizes only, so that a bad file is refused before allocating. */
    uint64_t total = 0;
    for (int f = 0; f < nfiles; f++) {
        int fd;
        uint64_t size;
        int rc = sat_file_open(paths[f], &fd, &size, err);
        if (rc)
            return rc;
        close(fd);
        if (size == 0)
            return sat_errf(err, SAT_EFORMAT, "%s: empty file", paths[f]);
        if (size % CIFAR_RECORD)
            return sat_errf(err, SAT_EFORMAT,
                            "%s: size %llu is not a multiple of the %d-byte record "
                            "(%llu records and %llu bytes over)",
                            paths[f], (unsigned long long)size, CIFAR_RECORD,
                            (unsigned long long)(size / CIFAR_RECORD),
                            (unsigned long long)(size % CIFAR_RECORD));
        total += size / CIFAR_RECORD;
        if (total > DATASET_MAX_IMAGES)
            return sat_errf(err, SAT_ETOOBIG, "%s: more than %d images in all", paths[f],
                            DATASET_MAX_IMAGES);
    }

    /* Pass 2: read. Sizes are re-checked by the reads themselves. */
    uint8_t *pixels = sat_malloc((size_t)total * CIFAR_PIXELS);
    uint8_t *labels = sat_malloc((size_t)total);
    uint8_t *scratch = sat_malloc((size_t)CIFAR_CHUNK * CIFAR_RECORD);
    int rc = 0;
    if (!pixels || !labels || !scratch) {
        rc = sat_errf(err, SAT_ENOMEM, "cannot allocate %llu CIFAR-10 images",
                      (unsigned long long)total);
        goto out;
    }
    uint64_t base = 0;
    for (int f = 0; f < nfiles && !rc; f++) {
        uint64_t nrec = 0;
        rc = cifar_read_file(paths[f], total - base, pixels + base * CIFAR_PIXELS, labels + base,
                             scratch, &nrec, err);
        base += nrec;
    }
    if (!rc && base != total)
        rc = sat_errf(err, SAT_EIO, "CIFAR-10 files changed while loading");
    if (rc)
        goto out;

    ds->n = (int)total;
    ds->c = CIFAR_C;
    ds->h = CIFAR_HW;
    ds->w = CIFAR_HW;
    ds->nclass = CIFAR_NCLASS;
    ds->pixels = pixels;
    ds->labels = labels;
    pixels = labels = NULL;
out:
    sat_free(pixels);
    sat_free(labels);
    sat_free(scratch);
    return rc;
}
