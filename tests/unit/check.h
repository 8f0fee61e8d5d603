/* check.h - the assertions of Saturn's unit tests.
 *
 * A check that fails prints file, line, the expression and both values, and
 * counts a failure; the test's main returns check_summary(), so the exit
 * status is the verdict. Tests keep going after a failed check so that one
 * run shows every failure.
 */
#ifndef SATURN_CHECK_H
#define SATURN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        check_count++;                                                                             \
        if (va_ != vb_) {                                                                          \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %s (%lld == %lld)\n", __FILE__,    \
                    __LINE__, #a, #b, va_, vb_);                                                   \
        }                                                                                          \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, atol, rtol)                                                              \
    do {                                                                                           \
        double va_ = (double)(a), vb_ = (double)(b);                                               \
        check_count++;                                                                             \
        if (!(fabs(va_ - vb_) <= (atol) + (rtol)*fabs(vb_))) {                                     \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s ~ %s (%.9g vs %.9g, atol %g rtol %g)\n", \
                    __FILE__, __LINE__, #a, #b, va_, vb_, (double)(atol), (double)(rtol));         \
        }                                                                                          \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        check_count++;                                                                             \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_STR_CONTAINS failed: \"%s\" does not contain \"%s\"\n", \
                    __FILE__, __LINE__, h_ ? h_ : "(null)", n_);                                   \
        }                                                                                          \
    } while (0)

static inline int check_summary(const char *name)
{
    fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
