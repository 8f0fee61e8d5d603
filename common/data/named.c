/* named.c - the data sets Saturn knows by name: their shapes, where their
 * files are, which reader loads them; and the dataset lifecycle (truncate,
 * free).
 *
 * The readers (idx.c, cifar.c, synthetic.c) know formats, not names; this
 * file sits above them and is the only one that maps a name to a reader. */
#include "dataset.h"

#include "../util/xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DATASET_ROOT "/usr/share/datasets"
#define CIFAR_TRAIN_BATCHES 5

/* ==== Named data sets ================================================= */

enum named_kind { NAMED_IDX, NAMED_CIFAR, NAMED_SYNTHETIC };

static const struct named {
    const char *name;
    enum named_kind kind;
    int c, h, w, nclass; /* the shape of one image; labels are in [0, nclass) */
} named_sets[] = {
    {"fashion-mnist", NAMED_IDX, 1, 28, 28, 10},
    {"mnist", NAMED_IDX, 1, 28, 28, 10},
    {"cifar10", NAMED_CIFAR, 3, 32, 32, 10},
    {"synthetic", NAMED_SYNTHETIC, 1, 28, 28, 10},
};

static const struct named *named_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof named_sets / sizeof named_sets[0]; i++)
        if (strcmp(named_sets[i].name, name) == 0)
            return &named_sets[i];
    return NULL;
}

int dataset_named_shape(const char *name, int *c, int *h, int *w, int *nclass)
{
    const struct named *d = named_find(name);
    if (!d)
        return SAT_EINVAL;
    *c = d->c;
    *h = d->h;
    *w = d->w;
    *nclass = d->nclass;
    return 0;
}

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

    const struct named *d = named_find(name);
    if (!d)
        return sat_errf(
            err, SAT_EINVAL,
            "unknown data set '%s' (expected fashion-mnist, mnist, cifar10 or synthetic)", name);
    char defdir[PATH_MAX];
    if (!dir && d->kind != NAMED_SYNTHETIC) {
        snprintf(defdir, sizeof defdir, "%s/%s", DATASET_ROOT, d->name);
        dir = defdir;
    }
    int rc = 0;
    switch (d->kind) {
    case NAMED_SYNTHETIC:
        if (train)
            rc = dataset_synthetic(train, 2048, d->c, d->h, d->w, d->nclass, 1);
        if (!rc && test)
            rc = dataset_synthetic(test, 512, d->c, d->h, d->w, d->nclass, 1);
        if (rc)
            sat_errf(err, rc, "synthetic: %s", sat_strerror(rc));
        break;
    case NAMED_IDX:
        if (train)
            rc = load_idx_split(train, dir, "train", max_train, err);
        if (!rc && test)
            rc = load_idx_split(test, dir, "t10k", max_test, err);
        break;
    case NAMED_CIFAR:
        if (train)
            rc = load_cifar_split(train, dir, 1, err);
        if (!rc && test)
            rc = load_cifar_split(test, dir, 0, err);
        break;
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
