/* xalloc.c - allocation wrapper with fault injection. */
#include "xalloc.h"
#include "fault.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic long fail_after = -1;

static int should_fail(void)
{
    return sat__fault_tick(&fail_after);
}

void sat_alloc_fail_after(long n)
{
    atomic_store(&fail_after, n);
}

void *sat_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *sat_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *sat_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *sat_malloc_aligned(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, sz ? sz : 64) != 0)
        return NULL;
    return p;
}

char *sat_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sat_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void sat_free(void *p)
{
    free(p);
}

void sat_tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
