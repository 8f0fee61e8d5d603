/* fuzz_cifar.c - fuzz target: the CIFAR-10 reader (common/data/cifar.c).
 * Input: one byte that picks 1..3 batch files, then each file but the
 * last as a 16-bit little-endian length and its bytes, then the last file
 * (the rest). The files go through in-memory files, as the reader takes
 * paths. A load that succeeds must hold one record per 3073 input bytes,
 * with every label below 10. */
#include "fuzz.h"

#include "data/dataset.h"

#define NFILES_MAX 3
#define RECORD 3073

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_memfile files[NFILES_MAX];
    const char *paths[NFILES_MAX];
    if (size < 1)
        return 0;
    int nfiles = 1 + data[0] % NFILES_MAX;
    data++;
    size--;
    size_t total = 0;
    for (int f = 0; f < nfiles; f++) {
        const uint8_t *part = data;
        size_t len = size;
        if (f < nfiles - 1 && !fuzz_take(&data, &size, &part, &len))
            return 0;
        fuzz_memfile_set(&files[f], part, len);
        paths[f] = files[f].path;
        total += len;
    }

    struct dataset ds;
    char err[SAT_ERR_LEN];
    err[0] = 0;
    int rc = dataset_load_cifar(&ds, paths, nfiles, err);
    if (rc != 0) {
        fuzz_check_err(err, rc);
        if (ds.pixels || ds.labels || ds.n)
            fuzz_fail("a failed load left data behind");
        return 0;
    }
    if ((size_t)ds.n * RECORD != total || ds.c != 3 || ds.h != 32 || ds.w != 32 || ds.nclass != 10)
        fuzz_fail("bad shape n %d c %d h %d w %d nclass %d from %zu bytes", ds.n, ds.c, ds.h, ds.w,
                  ds.nclass, total);
    fuzz_touch(ds.pixels, (size_t)ds.n * 3 * 32 * 32);
    for (int i = 0; i < ds.n; i++)
        if (ds.labels[i] >= ds.nclass)
            fuzz_fail("label %u at %d is not below %d", ds.labels[i], i, ds.nclass);
    dataset_free(&ds);
    return 0;
}
