/* xalloc.h - the one allocation wrapper of libsaturn.
 *
 * All heap allocation in common/, server/, worker/ and client/ goes through
 * these, so that a test build can make the Nth allocation fail
 * (sat_alloc_fail_after) and walk N over every allocation site. They return
 * NULL on failure like malloc; they never abort.
 */
#ifndef SATURN_XALLOC_H
#define SATURN_XALLOC_H

#include <stddef.h>

void *sat_malloc(size_t n);
void *sat_calloc(size_t count, size_t size);
void *sat_realloc(void *p, size_t n);
/* Allocates n bytes aligned to 64 bytes (for SIMD and cache lines); free with sat_free. */
void *sat_malloc_aligned(size_t n);
char *sat_strdup(const char *s);
void sat_free(void *p);

/* Fault injection for tests: after `n` more successful allocations every
 * allocation fails; n < 0 disables injection (the default). */
void sat_alloc_fail_after(long n);

/* Sets glibc's mmap and trim thresholds so that large buffers that are
 * freed and allocated again are reused instead of being unmapped and
 * faulted in afresh (see docs/design.md, "Memory"). Call once from main(). */
void sat_tune_malloc(void);

#endif
