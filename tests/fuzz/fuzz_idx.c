/* fuzz_idx.c - fuzz target: the IDX reader (common/data/idx.c), plain and
 * gzip. Input: one byte for max_images (0 = all), then the label file as
 * a 16-bit little-endian length and its bytes, then the image file (the
 * rest). Both go through in-memory files, as the reader takes paths. A
 * load that succeeds must describe buffers as long as it says, with every
 * label below nclass. */
#include "fuzz.h"

#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_memfile images, labels;
    const uint8_t *lab;
    size_t nlab;
    if (size < 1)
        return 0;
    int max_images = data[0];
    data++;
    size--;
    if (!fuzz_take(&data, &size, &lab, &nlab))
        return 0;
    fuzz_memfile_set(&labels, lab, nlab);
    fuzz_memfile_set(&images, data, size);

    struct dataset ds;
    char err[SAT_ERR_LEN];
    err[0] = 0;
    int rc = dataset_load_idx_n(&ds, images.path, labels.path, max_images, err);
    if (rc != 0) {
        fuzz_check_err(err, rc);
        if (ds.pixels || ds.labels || ds.n)
            fuzz_fail("a failed load left data behind");
        return 0;
    }
    if (ds.n < 1 || (max_images > 0 && ds.n > max_images) || ds.c != 1 || ds.h < 1 || ds.w < 1 ||
        ds.h > DATASET_MAX_DIM || ds.w > DATASET_MAX_DIM || ds.nclass != 10)
        fuzz_fail("bad shape n %d c %d h %d w %d nclass %d (max_images %d)", ds.n, ds.c, ds.h, ds.w,
                  ds.nclass, max_images);
    fuzz_touch(ds.pixels, (size_t)ds.n * (size_t)ds.h * (size_t)ds.w);
    for (int i = 0; i < ds.n; i++)
        if (ds.labels[i] >= ds.nclass)
            fuzz_fail("label %u at %d is not below %d", ds.labels[i], i, ds.nclass);
    dataset_free(&ds);
    return 0;
}
