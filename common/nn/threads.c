/* threads.c - see threads.h. */
#include "threads.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

static int nthreads;

void nn_set_threads(int n)
{
    if (n < 1) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > 64 ? 64 : (int)c;
    }
    nthreads = n;
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
}

int nn_threads(void)
{
    if (nthreads == 0)
        nn_set_threads(0);
    return nthreads;
}

int nn_thread_id(void)
{
    return omp_get_thread_num();
}
