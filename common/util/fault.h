/* fault.h - the countdown behind fault injection in tests (xalloc.c's
 * sat_alloc_fail_after, file.c's sat_file_fail_writes_after); internal to
 * common/util.
 *
 * A countdown holds -1 (injection off, the default) or n >= 0: the next n
 * operations succeed, and every one after them fails.
 */
#ifndef SATURN_FAULT_H
#define SATURN_FAULT_H

#include <stdatomic.h>

/* Counts one operation; true when it must fail. */
static inline int sat__fault_tick(_Atomic long *left)
{
    long n = atomic_load(left);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub(left, 1);
    return 0;
}

#endif
