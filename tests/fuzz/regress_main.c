/* regress_main.c - runs a fuzz target over files instead of libFuzzer:
 * each argument is a file or a directory whose files are fed, one call
 * each, to LLVMFuzzerTestOneInput. Used for the seed corpora and the
 * regression inputs in every build, so that the ordinary suite replays
 * them. A broken property aborts (the test fails); otherwise prints how
 * many inputs ran and exits 0. An argument that cannot be read is an
 * error (exit 1), as is no input at all, except that "--optional DIR"
 * skips DIR when it does not exist (regress/<target>/ exists only once a
 * bug has been found there). */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/xalloc.h"

#define REGRESS_MAX_INPUT (16u << 20) /* bytes; inputs are small */

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = sat_malloc(REGRESS_MAX_INPUT);
    size_t n = buf ? fread(buf, 1, REGRESS_MAX_INPUT, f) : 0;
    int bad = !buf || ferror(f) || n == REGRESS_MAX_INPUT;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read (or over %u bytes)\n", path, REGRESS_MAX_INPUT);
        sat_free(buf);
        return -1;
    }
    /* A copy of exactly n bytes, so that AddressSanitizer sees the end. */
    uint8_t *in = sat_malloc(n ? n : 1);
    if (!in) {
        sat_free(buf);
        return -1;
    }
    memcpy(in, buf, n);
    sat_free(buf);
    LLVMFuzzerTestOneInput(in, n);
    sat_free(in);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir, in name order; returns the count or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = sat_realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = -1;
                break;
            }
            names = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = sat_malloc(len);
        if (!names[n]) {
            rc = -1;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (rc == 0 && n)
        qsort(names, n, sizeof *names, cmp_names);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(names[i]) != 0)
                rc = -1;
            count++;
        }
        sat_free(names[i]);
    }
    sat_free(names);
    return rc ? rc : count;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int k, optional = strcmp(argv[i], "--optional") == 0 && i + 1 < argc;
        i += optional;
        if (optional && stat(argv[i], &st) != 0 && errno == ENOENT)
            continue;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        k = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
        if (k < 0)
            return 1;
        printf("%s: %d inputs\n", argv[i], k);
        total += k;
    }
    if (total == 0) {
        fprintf(stderr, "no inputs\n");
        return 1;
    }
    printf("%d inputs, no property broken\n", total);
    return 0;
}
