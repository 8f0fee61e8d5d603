/* threads.c - see threads.h. */
#include "threads.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int nthreads;

/* The CPU quota of the process's cgroup (v2 "cpu.max", else v1
 * "cpu.cfs_quota_us" / "cpu.cfs_period_us"), rounded up; 0 when none. */
static int cgroup_cpu_quota(void)
{
    long long q = -1, per = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char qs[32] = "";
        if (fscanf(f, "%31s %lld", qs, &per) == 2 && qs[0] != 'm') /* "max" = none */
            q = atoll(qs);
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r")) != NULL) {
        if (fscanf(f, "%lld", &q) != 1)
            q = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r")) != NULL) {
            if (fscanf(f, "%lld", &per) != 1)
                per = 0;
            fclose(f);
        }
    }
    if (q <= 0 || per <= 0)
        return 0;
    long long n = (q + per - 1) / per;
    return n > 1024 ? 1024 : (int)n;
}

int nn_cpus_available(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 &&
        CPU_COUNT(&set) < n)
        n = CPU_COUNT(&set);
    int quota = cgroup_cpu_quota();
    if (quota > 0 && quota < n)
        n = quota;
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

void nn_set_threads(int n)
{
    if (n < 1) {
        int c = nn_cpus_available();
        n = c > 64 ? 64 : c;
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
