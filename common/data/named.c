/* dataset.c - named data sets and the dataset lifecycle. */
#include "dataset.h"

#include "../util/xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DATASET_ROOT "/usr/share/datasets"
#define CIFAR_TRAIN_BATCHES 5

/* ==== Named data sets ================================================= */

/* Picks dir/<base>.gz, else dir/<base>, into out (PATH_MAX). Neither
 * existing is SAT_ENOENT naming both. */
static int idx_path(char *out, const char *dir, const char *base, char err[SAT_ERR_LEN])
{
    int len = snprintf(out, PATH_MAX, "%s/%s.gz", dir, base);
    if (len < 0 || len >= PATH_MAX)
        return sat_errf(err, SAT_EINVAL, "%s/%s: path too long", dir, base);
    if (access(out, F_OK) == 0)
        return 0;
    out[len - 3] = '\0'; /* drop ".gz" */
    if (access(out, F_OK) == 0)
        return 0;
    return sat_errf(err, SAT_ENOENT, "%s: no such file (nor %s.gz)", out, out);
}

static int load_idx_split(struct dataset *ds, const char *dir, const char *split, int max,
                          char err[SAT_ERR_LEN])
{
    char base[64], images[PATH_MAX], labels[PATH_MAX];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    int rc = idx_path(images, dir, base, err);
    if (rc)
        return rc;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    rc = idx_path(labels, dir, base, err);
    if (rc)
        return rc;
    return dataset_load_idx_n(ds, images, labels, max, err);
}

static int load_cifar_split(struct dataset *ds, const char *dir, int train, char err[SAT_ERR_LEN])
{
    char names[CIFAR_TRAIN_BATCHES][PATH_MAX];
    const char *paths[CIFAR_TRAIN_BATCHES];
    int nfiles = train ? CIFAR_TRAIN_BATCHES : 1;
    for (int i = 0; i < nfiles; i++) {
        int len = train ? snprintf(names[i], PATH_MAX, "%s/data_batch_%d.bin", dir, i + 1)
                        : snprintf(names[i], PATH_MAX, "%s/test_batch.bin", dir);
        if (len < 0 || len >= PATH_MAX)
            return sat_errf(err, SAT_EINVAL, "%s: path too long", dir);
        paths[i] = names[i];
    }
    return dataset_load_cifar(ds, paths, nfiles, err);
}

int dataset_load_named(struct dataset *train, struct dataset *test, const char *name,
                       const char *dir, char err[SAT_ERR_LEN])
{
    return dataset_load_named_n(train, test, name, dir, 0, 0, err);
}

int dataset_load_named_n(struct dataset *train, struct dataset *test, const char *name,
                         const char *dir, int max_train, int max_test, char err[SAT_ERR_LEN])
{
    if (train)
        memset(train, 0, sizeof *train);
    if (test)
        memset(test, 0, sizeof *test);
    if (!name)
        return sat_errf(err, SAT_EINVAL, "no data set name");

    char defdir[PATH_MAX];
    int rc = 0;
    if (strcmp(name, "synthetic") == 0) {
        if (train)
            rc = dataset_synthetic(train, 2048, 1, 28, 28, 10, 1);
        if (!rc && test)
            rc = dataset_synthetic(test, 512, 1, 28, 28, 10, 1);
        if (rc)
            sat_errf(err, rc, "synthetic: %s", sat_strerror(rc));
    } else if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0) {
        if (!dir) {
            snprintf(defdir, sizeof defdir, "%s/%s", DATASET_ROOT, name);
            dir = defdir;
        }
        if (train)
            rc = load_idx_split(train, dir, "train", max_train, err);
        if (!rc && test)
            rc = load_idx_split(test, dir, "t10k", max_test, err);
    } else if (strcmp(name, "cifar10") == 0) {
        if (!dir) {
            snprintf(defdir, sizeof defdir, "%s/cifar10", DATASET_ROOT);
            dir = defdir;
        }
        if (train)
            rc = load_cifar_split(train, dir, 1, err);
        if (!rc && test)
            rc = load_cifar_split(test, dir, 0, err);
    } else {
        return sat_errf(
            err, SAT_EINVAL,
            "unknown data set '%s' (expected fashion-mnist, mnist, cifar10 or synthetic)", name);
    }
    if (rc && train)
        dataset_free(train); /* the test split failed after train loaded */
    if (!rc && train && max_train > 0)
        dataset_truncate(train, max_train);
    if (!rc && test && max_test > 0)
        dataset_truncate(test, max_test);
    return rc;
}

/* ==== Lifecycle ======================================================= */

void dataset_truncate(struct dataset *ds, int n)
{
    if (n < 0 || n >= ds->n)
        return;
    ds->n = n;
    /* Give the rest back (a failed shrink keeps the larger block). */
    size_t img = (size_t)ds->c * ds->h * ds->w;
    uint8_t *p = sat_realloc(ds->pixels, n ? (size_t)n * img : 1);
    if (p)
        ds->pixels = p;
    uint8_t *l = sat_realloc(ds->labels, n ? (size_t)n : 1);
    if (l)
        ds->labels = l;
}

void dataset_free(struct dataset *ds)
{
    sat_free(ds->pixels);
    sat_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}
