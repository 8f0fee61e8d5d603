/* test_util.c - error table, counter-based RNG, "did you mean" and the
 * allocation wrapper. */
#include "check.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/suggest.h"
#include "util/xalloc.h"

#include <stdint.h>
#include <stdlib.h>

int main(void)
{
    /* Error table: every code has a distinct name and a message. */
    CHECK(strcmp(sat_err_name(SAT_EINVAL), "SAT_EINVAL") == 0);
    CHECK(strcmp(sat_strerror(SAT_ENOMEM), "out of memory") == 0);
    CHECK(strcmp(sat_err_name(12345), "SAT_EUNKNOWN") == 0);
    char err[SAT_ERR_LEN];
    CHECK_EQ_INT(sat_errf(err, SAT_ERANGE, "field %s", "x"), SAT_ERANGE);
    CHECK(strcmp(err, "field x") == 0);

    /* RNG: pure function of (key, counter). */
    struct sat_rng a, b;
    sat_rng_init(&a, sat_rng_key(7, 1, 2, 3));
    sat_rng_init(&b, sat_rng_key(7, 1, 2, 3));
    for (int i = 0; i < 100; i++)
        CHECK(sat_rng_u64(&a) == sat_rng_u64(&b));
    sat_rng_init(&b, sat_rng_key(7, 1, 2, 4));
    CHECK(sat_rng_u64(&a) != sat_rng_u64(&b));
    /* Uniform mean and normal moments within loose statistical bounds (n = 1e5). */
    double m = 0, m2 = 0;
    for (int i = 0; i < 100000; i++) {
        double z = sat_rng_normal(&a);
        m += z;
        m2 += z * z;
    }
    m /= 100000;
    m2 /= 100000;
    CHECK_CLOSE(m, 0.0, 0.02, 0);
    CHECK_CLOSE(m2, 1.0, 0.03, 0);
    /* below(n) stays in range; shuffle is a permutation. */
    uint32_t idx[1000];
    for (uint32_t i = 0; i < 1000; i++)
        idx[i] = i;
    sat_rng_shuffle_u32(&a, idx, 1000);
    int seen[1000] = {0};
    int moved = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        CHECK(idx[i] < 1000);
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_INT(seen[i], 1);
    CHECK(moved > 900);

    /* "Did you mean": distance, substrings, ties by common prefix, cut-offs. */
    static const char *const names[] = {"name", "lr", "batch_size", "seed", "epochs"};
    CHECK_EQ_INT(sat_suggest("epocs", names, 5), 4);
    CHECK_EQ_INT(sat_suggest("EPOCHS", names, 5), 4);
    CHECK_EQ_INT(sat_suggest("batch", names, 5), 2);
    CHECK_EQ_INT(sat_suggest("random_seed", names, 5), 3);
    CHECK_EQ_INT(sat_suggest("lrate", names, 5), 1);
    CHECK_EQ_INT(sat_suggest("zzzzzzzz", names, 5), -1);
    CHECK_EQ_INT(sat_suggest("name", names, 0), -1);

    /* Fault injection: the third allocation fails, then injection is off again. */
    sat_alloc_fail_after(2);
    void *p1 = sat_malloc(8), *p2 = sat_malloc(8), *p3 = sat_malloc(8);
    CHECK(p1 && p2 && !p3);
    sat_alloc_fail_after(-1);
    void *p4 = sat_malloc_aligned(100);
    CHECK(p4 && ((uintptr_t)p4 % 64) == 0);
    sat_free(p1);
    sat_free(p2);
    sat_free(p4);
    return check_summary("util");
}
