/* dataset.h - image classification data sets and the batches built from them.
 *
 * A data set is held in memory as raw 8-bit pixels, (N, C, H, W) row-major
 * (the files' own order), plus one label per image. Batches are produced in
 * the engine's layout (see nn/layers.h): CNHW floats, pixel / 255, no
 * mean/std normalisation.
 *
 * Determinism. Everything random is a pure function of the job seed:
 *  - the shard of rank r among W ranks is a fixed part of a seed-keyed
 *    permutation of the training set (dataset_shard);
 *  - the order within a shard in epoch e comes from a counter-based stream
 *    keyed by (seed, epoch, rank) (dataset_epoch_order);
 *  - the augmentation of the j-th image of epoch e on rank r comes from a
 *    stream keyed by (seed, epoch, rank) and j (loader_fill).
 * So a resumed run needs only (seed, epoch, step) to continue exactly.
 */
#ifndef SATURN_DATASET_H
#define SATURN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

/* Upper bounds that every reader enforces before it allocates. */
#define DATASET_MAX_IMAGES 10000000
#define DATASET_MAX_DIM 4096

struct dataset {
    int n;           /* number of images */
    int c, h, w;     /* image shape */
    int nclass;      /* number of classes (labels are in [0, nclass)) */
    uint8_t *pixels; /* (n, c, h, w) row-major, 0..255; owned */
    uint8_t *labels; /* (n); owned */
};

/* Reads an IDX image file and its IDX label file (MNIST / Fashion-MNIST
 * format: big-endian magic 0x00000803 for (N, H, W) uint8 images and
 * 0x00000801 for (N) uint8 labels), each gzip-compressed or not (detected
 * from the content, not the name). Checks the magic numbers, the dimensions
 * against the bounds above, that both files have the same N, that the
 * payloads are complete and have no trailing garbage, and that every label
 * is < 10 (nclass is set to 10; c to 1). On failure returns SAT_EIO /
 * SAT_EFORMAT / SAT_ENOENT (SAT_ETOOBIG: a dimension over the bounds above;
 * SAT_ENOMEM) with a message naming the file in err, and leaves ds empty
 * (nothing to free). Declared sizes are checked against the file's size (for
 * gzip, the most it can inflate to) before the payload is allocated. */
int dataset_load_idx(struct dataset *ds, const char *images_path, const char *labels_path,
                     char err[SAT_ERR_LEN]);
/* The same, keeping only the first max_images images (all when <= 0). The
 * whole files are still read and checked as above, but only the kept
 * images are held in memory. */
int dataset_load_idx_n(struct dataset *ds, const char *images_path, const char *labels_path,
                       int max_images, char err[SAT_ERR_LEN]);

/* Reads CIFAR-10 binary batches (each record: 1 label byte + 3072 pixel
 * bytes, (3, 32, 32)) from `nfiles` files and concatenates them. An empty
 * file, a file whose size is not a multiple of 3073, or a label > 9, is
 * refused. Errors and the state of ds on failure are as for dataset_load_idx. */
int dataset_load_cifar(struct dataset *ds, const char *const *paths, int nfiles,
                       char err[SAT_ERR_LEN]);

/* Loads a named data set's train and test splits from `dir` (NULL: the
 * default directory for that name):
 *   "fashion-mnist"  /usr/share/datasets/fashion-mnist/
 *                    {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 *   "mnist"          /usr/share/datasets/mnist/ (same file names)
 *   "cifar10"        data_batch_1..5.bin and test_batch.bin (/usr/share/datasets/cifar10/)
 *   "synthetic"      dataset_synthetic(train 2048 / test 512 images, 1x28x28, 10 classes, seed 1)
 * Either of train/test may be NULL. An unknown name is SAT_EINVAL. On failure
 * both are left empty. */
int dataset_load_named(struct dataset *train, struct dataset *test, const char *name,
                       const char *dir, char err[SAT_ERR_LEN]);
/* The same, keeping at most max_train / max_test images of each split
 * (<= 0: all); IDX files are read whole but only the kept images held. */
int dataset_load_named_n(struct dataset *train, struct dataset *test, const char *name,
                         const char *dir, int max_train, int max_test, char err[SAT_ERR_LEN]);

/* The image shape (c, h, w) and number of classes of a named data set (the
 * names of dataset_load_named), without loading it. Returns 0, or
 * SAT_EINVAL for an unknown name (the outputs are then untouched). */
int dataset_named_shape(const char *name, int *c, int *h, int *w, int *nclass);

/* A learnable synthetic data set for tests: each class has its own smooth
 * random template; an image is its class template plus seed-keyed noise,
 * quantised to 0..255. Deterministic in (n, c, h, w, nclass, seed). Image i
 * has label i % nclass. The templates depend on (c, h, w, nclass, seed) only
 * and the noise also on n, so two sets with the same seed and different n are
 * the same task with different images (the train/test split of "synthetic").
 * Integer arithmetic only, so the pixels are the same on every platform.
 * Returns SAT_EINVAL for sizes out of the bounds above (nclass <= 256) or
 * SAT_ENOMEM, leaving ds empty. */
int dataset_synthetic(struct dataset *ds, int n, int c, int h, int w, int nclass, uint64_t seed);

/* Keeps only the first `n` images (n <= ds->n) and frees the memory of
 * the rest. */
void dataset_truncate(struct dataset *ds, int n);
void dataset_free(struct dataset *ds);

/* ---------------------------------------------------------------------------
 * Shards and epoch order.
 */

/* Fills idx (capacity >= dataset_shard_size(n, rank, world)) with the image
 * indices of shard `rank` of `world`: positions [rank*n/world,
 * (rank+1)*n/world) of a permutation of 0..n-1 keyed by seed alone.
 * With world == 1 the shard is every image. Returns the shard size (0 when
 * rank is not in [0, world)). The permutation is a keyed bijection evaluated
 * position by position, so this allocates nothing and cannot fail. */
uint32_t dataset_shard(uint32_t *idx, uint32_t n, uint64_t seed, int rank, int world);
uint32_t dataset_shard_size(uint32_t n, int rank, int world);

/* Writes into `order` the shard's indices `shard` (len) shuffled for
 * `epoch` by a stream keyed by (seed, epoch, rank). */
void dataset_epoch_order(uint32_t *order, const uint32_t *shard, uint32_t len, uint64_t seed,
                         int epoch, int rank);

/* ---------------------------------------------------------------------------
 * Batches.
 */
/* With offsets dx, dy uniform in [-pad, pad] and f the flip draw, output
 * pixel (h, w) is input pixel (h + dy, (f ? W-1-w : w) + dx), or 0 where
 * that lies outside the image (crop of the zero-padded image, then flip). */
struct augment {
    int enabled;
    int pad;  /* random crop: pad by `pad` pixels (zeros), crop back to H x W; 0 = off */
    int flip; /* random horizontal flip with probability 1/2 */
};

/* Builds a batch of `b` images: x (C, b, H, W) CNHW floats = pixel/255,
 * y (b) labels. Image j of the batch is ds image idx[j]. When aug->enabled,
 * image j is augmented with a stream keyed by (seed, epoch, rank, pos0 + j),
 * where pos0 is the batch's position within the epoch, so the same
 * (seed, epoch, rank, position) always gives the same pixels. aug may be
 * NULL (no augmentation, as for evaluation). */
void loader_fill(float *x, int32_t *y, const struct dataset *ds, const uint32_t *idx, int b,
                 const struct augment *aug, uint64_t seed, int epoch, int rank, uint64_t pos0);

#endif
