/* fuzz_util.c - helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spec/jobspec.h"
#include "util/xalloc.h"

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: property broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

unsigned fuzz_touch(const void *p, size_t n)
{
    const volatile unsigned char *b = p;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += b[i];
    return sum;
}

void fuzz_check_err(const char err[SAT_ERR_LEN], int rc)
{
    if (rc >= 0)
        fuzz_fail("error code %d is not negative", rc);
    size_t n = strnlen(err, SAT_ERR_LEN);
    if (n == SAT_ERR_LEN)
        fuzz_fail("error message is not NUL-terminated (code %d)", rc);
    if (n == 0)
        fuzz_fail("error %d without a message", rc);
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("SATURN_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "refused (%d): %s\n", rc, err);
}

void fuzz_memfile_set(struct fuzz_memfile *f, const void *p, size_t n)
{
    if (!f->path[0]) {
        f->fd = memfd_create("saturn-fuzz", 0);
        if (f->fd < 0)
            fuzz_fail("memfd_create failed");
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0 || (n && pwrite(f->fd, p, n, 0) != (ssize_t)n))
        fuzz_fail("cannot write %zu bytes to %s", n, f->path);
}

int fuzz_take(const uint8_t **data, size_t *size, const uint8_t **part, size_t *len)
{
    if (*size < 2)
        return 0;
    size_t want = (size_t)(*data)[0] | (size_t)(*data)[1] << 8;
    *data += 2;
    *size -= 2;
    *len = want < *size ? want : *size;
    *part = *data;
    *data += *len;
    *size -= *len;
    return 1;
}

int fuzz_spec_check(const char *json, size_t len, char err[SAT_ERR_LEN])
{
    struct job_spec a, b;
    err[0] = 0;
    int rc = jobspec_parse(&a, json, len, err);
    if (rc != 0) {
        fuzz_check_err(err, rc);
        return rc;
    }
    char *j1 = jobspec_to_json(&a);
    if (!j1)
        fuzz_fail("jobspec_to_json returned NULL");
    int rc2 = jobspec_parse(&b, j1, strlen(j1), err);
    if (rc2 != 0)
        fuzz_fail("the canonical JSON of a valid spec is refused: %s\n%s", err, j1);
    char *j2 = jobspec_to_json(&b);
    if (!j2 || strcmp(j1, j2) != 0)
        fuzz_fail("canonical JSON changes on re-parsing:\n%s\n---\n%s", j1, j2 ? j2 : "(null)");
    sat_free(j2);
    rc2 = jobspec_validate(&a, err);
    if (rc2 != 0)
        fuzz_fail("a parsed spec fails validation again: %s", err);
    j2 = jobspec_to_json(&a);
    if (!j2 || strcmp(j1, j2) != 0)
        fuzz_fail("validating again changes the spec:\n%s\n---\n%s", j1, j2 ? j2 : "(null)");
    char cons[16];
    jobspec_consistency_str(&a, cons, sizeof cons);
    sat_free(j2);
    sat_free(j1);
    return 0;
}
