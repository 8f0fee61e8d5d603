/* threads.c - see threads.h. */
#include "threads.h"

#include <cblas.h>
#include <limits.h>
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

/* ==== Owned pieces ======================================================== */

/* initial-exec: the binaries link libsaturn statically, and no
 * __tls_get_addr (nor a NEEDED ld-linux) is wanted */
static _Thread_local int layout_images __attribute__((tls_model("initial-exec")));
static _Thread_local size_t layout_m __attribute__((tls_model("initial-exec")));

void nn_set_layout(int images, size_t m)
{
    layout_images = images;
    layout_m = m;
}

int nn_layout_images(void)
{
    return layout_images;
}

size_t nn_layout_m(void)
{
    return layout_m;
}

struct nn_items nn_items_slab(int count, size_t blk, size_t m)
{
    int images = layout_images;
    if (images < 1 || m == 0 || m % (size_t)images != 0)
        images = 1; /* no layout, or another one: every piece in image 0 */
    const struct nn_items it = {.count = count,
                                .blk = blk,
                                .m = m ? m : 1,
                                .hw = m ? m / (size_t)images : 1,
                                .images = images};
    return it;
}

struct nn_items nn_items_images(int count, int per, int n)
{
    const struct nn_items it = {
        .count = count, .blk = (size_t)per, .m = (size_t)n, .hw = 1, .images = n};
    return it;
}

struct nn_items nn_items_batch(int n)
{
    const int want = 2 * nn_threads(), parts = n < want ? n : want;
    const struct nn_items it = {.count = parts > 0 ? parts : 0, .images = n, .parts = parts};
    return it;
}

struct nn_ranges nn_ranges_of(size_t len, size_t blk)
{
    struct nn_ranges r = {.len = len, .blk = blk};
    const int n = layout_images;
    const size_t m = layout_m;
    if (n >= 1 && m > 0 && len > blk && m % (size_t)n == 0 && len % m == 0 && len / m <= INT_MAX) {
        r.c = (int)(len / m);
        r.m = m;
        r.hw = m / (size_t)n;
        r.images = n;
        r.it = nn_items_batch(n);
        return r;
    }
    r.it = nn_items_slab((int)((len + blk - 1) / blk), blk, m);
    return r;
}

static int nn_item_owner(const struct nn_items *it, int i, int nt)
{
    if (it->parts > 0)
        return nn_share_owner(it->images, (int)((long long)it->images * i / it->parts), nt);
    const size_t img = ((size_t)i * it->blk % it->m) / it->hw;
    return nn_share_owner(it->images, (int)img, nt);
}

struct nn_walk nn_walk_begin(const struct nn_items *it, atomic_uchar *flag)
{
    const struct nn_walk w = {.it = it,
                              .flag = flag,
                              .me = omp_get_thread_num(),
                              .nt = omp_get_num_threads(),
                              .pos = 0,
                              .back = it->count};
    return w;
}

int nn_walk_next(struct nn_walk *w)
{
    const struct nn_items *it = w->it;
    while (w->pos < it->count) {
        const int i = w->pos++;
        if (nn_item_owner(it, i, w->nt) != w->me)
            continue;
        if (!w->flag || !atomic_exchange_explicit(&w->flag[i], 1, memory_order_relaxed))
            return i;
    }
    if (!w->flag)
        return -1;
    while (w->back > 0) {
        const int i = --w->back;
        if (!atomic_load_explicit(&w->flag[i], memory_order_relaxed) &&
            !atomic_exchange_explicit(&w->flag[i], 1, memory_order_relaxed))
            return i;
    }
    return -1;
}

atomic_uchar *nn_walk_flags(atomic_uchar *buf, int count)
{
    if (count > NN_WALK_MAX)
        return NULL;
    for (int i = 0; i < count; i++)
        atomic_init(&buf[i], 0);
    return buf;
}
