/* compare.c - saturn-bench --compare-pytorch: Saturn's training step side by
 * side with the PyTorch baseline (shared/baseline/pytorch/bench_step.py,
 * the same models and quantizers in PyTorch), measured in one session.
 *
 * A shared machine's load moves both sides of a ratio only when they run
 * close together, so the two sides are paired model by model: in each
 * round, for each model, Saturn's FP32 and W4A4 configurations (each in its
 * own child process) and the baseline on the same model, precisions,
 * batch, step count and thread count run back to back, Saturn first in odd
 * rounds and PyTorch first in even ones (so that neither side always runs
 * on a machine the other has just warmed or loaded). Each side's figure is
 * its median step; the table gives, per model and precision, both sides'
 * medians per round, the lowest, median and highest per-round speed ratio
 * (PyTorch step time / Saturn step time: above 1, Saturn is faster), and
 * how many rounds reach the engine's speed target for that row; below it,
 * the cross-core round trip measured before each model's pair, which
 * tells a VM's phases apart (xcore_roundtrip_ns). The
 * baseline runs with Debian's Python and PyTorch (/usr/bin/python3,
 * package python3-torch); without them the mode says how to get them and
 * exits with status 2.
 */
#include "bench.h"
#include "nn/threads.h"
#include "util/clock.h"
#include "util/xalloc.h"

#include <cJSON.h>
#include <cblas.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMP_ROUNDS_MAX 5
#define CMP_ROWS_MAX 32
#define CMP_PYTHON "/usr/bin/python3"

/* One model at one precision. */
struct cmp_row {
    char model[32];
    int bits;                            /* 32 or 4 */
    double sat_ms[CMP_ROUNDS_MAX];       /* Saturn median step per round, 0: failed */
    double torch_ms[CMP_ROUNDS_MAX];     /* PyTorch median step per round, 0: failed */
    double best_ms, gflops_best, rss_mb; /* Saturn, best over rounds / peak */
    double xcore_ns[CMP_ROUNDS_MAX];     /* cross-core round trip before the pair, 0: none */
};

struct cmp {
    struct cmp_row rows[CMP_ROWS_MAX];
    int nrows, rounds, threads;
    double sgemm; /* best OpenBLAS sgemm GFLOP/s of the session */
    char torch_version[32];
};

static struct cmp_row *cmp_row_get(struct cmp *c, const char *model, int bits)
{
    for (int i = 0; i < c->nrows; i++)
        if (c->rows[i].bits == bits && strcmp(c->rows[i].model, model) == 0)
            return &c->rows[i];
    if (c->nrows == CMP_ROWS_MAX)
        return NULL;
    struct cmp_row *r = &c->rows[c->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", model);
    r->bits = bits;
    return r;
}

/* Reads the baseline's JSON output (its "results" rows) into round r. */
static int cmp_read_torch(struct cmp *c, const char *path, int r)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *text = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len > 0 && len < (64L << 20) && fseek(f, 0, SEEK_SET) == 0) {
        text = sat_malloc((size_t)len + 1);
        if (text && fread(text, 1, (size_t)len, f) == (size_t)len)
            text[len] = 0;
        else {
            sat_free(text);
            text = NULL;
        }
    }
    fclose(f);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    sat_free(text);
    if (!root)
        return -1;
    const cJSON *ver =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "meta"), "torch");
    if (cJSON_IsString(ver))
        snprintf(c->torch_version, sizeof c->torch_version, "%s", ver->valuestring);
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(root, "results"))
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(row, "model");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(row, "precision");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(row, "train_step_s");
        if (!cJSON_IsString(m) || !cJSON_IsString(p) || !cJSON_IsNumber(t))
            continue;
        struct cmp_row *cr =
            cmp_row_get(c, m->valuestring, strcmp(p->valuestring, "FP32") == 0 ? 32 : 4);
        if (cr)
            cr->torch_ms[r] = t->valuedouble * 1e3;
    }
    cJSON_Delete(root);
    return 0;
}

/* Runs the baseline once on the models (comma-separated), its table on our
 * stderr, its JSON into a temporary file read back into round r. */
static int cmp_run_torch(struct cmp *c, const char *script, const char *models, int steps,
                         int batch, int r)
{
    char out[] = "/tmp/saturn-bench-torch-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0)
        return -1;
    close(fd);
    char list[256], sthr[16], ssteps[16], sbatch[16], sscript[1024];
    snprintf(list, sizeof list, "%s", models);
    snprintf(sthr, sizeof sthr, "%d", c->threads);
    snprintf(ssteps, sizeof ssteps, "%d", steps);
    snprintf(sbatch, sizeof sbatch, "%d", batch);
    snprintf(sscript, sizeof sscript, "%s", script);
    char *argv[32] = {CMP_PYTHON, sscript,   "--threads", sthr,           "--steps",
                      ssteps,     "--batch", sbatch,      "--precisions", "FP32",
                      "W4A4",     "--out",   out,         "--models"};
    int k = 14;
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m && k < 31;
         m = strtok_r(NULL, ",", &save))
        argv[k++] = m;
    argv[k] = NULL;
    fflush(stdout);
    int st = spawn_wait(argv, 2); /* its table goes to our stderr */
    int rc = st == 0 ? cmp_read_torch(c, out, r) : -1;
    unlink(out);
    return rc;
}

/* Runs Saturn's two configurations of model arch for round r. */
static int cmp_run_saturn(struct cmp *c, char *self, const char *arch, int steps, int batch,
                          int threads, int r)
{
    int rc = 0;
    for (int bits = 32; bits >= 4; bits = bits == 32 ? 4 : 0) {
        struct cmp_row *cr = cmp_row_get(c, arch, bits);
        char line[2048];
        if (!cr || run_child(self, arch, bits, steps, batch, threads, line, sizeof line)) {
            fprintf(stderr, "saturn-bench: %s bits %d failed\n", arch, bits);
            rc = 1;
            continue;
        }
        cr->sat_ms[r] = jnum(line, "step_ms");
        double best = jnum(line, "step_best_ms"), rss = jnum(line, "peak_rss_mb");
        if (cr->best_ms == 0 || best < cr->best_ms) {
            cr->best_ms = best;
            cr->gflops_best = jnum(line, "train_gflops_best");
        }
        cr->rss_mb = rss > cr->rss_mb ? rss : cr->rss_mb;
        fprintf(stderr, "round %d: saturn %-12s %-4s median %.1f ms\n", r + 1, arch,
                bits == 32 ? "FP32" : "W4A4", cr->sat_ms[r]);
    }
    double g = sgemm_gflops(); /* again after each model, as in the main table */
    c->sgemm = g > c->sgemm ? g : c->sgemm;
    return rc;
}

/* Round r of model arch: both sides back to back, Saturn first when r is
 * even (round r + 1 odd). */
/* ==== Where the two cores are ============================================ */

/* One cache line's round trip between two threads pinned to the first two
 * CPUs this process may use: on the project's 2-vCPU EPYC VM 50-80 ns while
 * both vCPUs share an L3, 300-360 ns while they sit on different CCDs
 * (the host's slow phase, in which steps that share data across the cores
 * run slower). 0 when fewer than two CPUs are available. */
#define XCORE_TRIPS 2000 /* per batch; the best of XCORE_BATCHES */
#define XCORE_BATCHES 10

struct xcore {
    _Alignas(64) _Atomic int flag; /* a line of its own: the only one that moves */
    _Atomic int stop;
    int cpu;
    char pad[64 - 3 * sizeof(int)];
};

static int xcore_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *xcore_echo(void *arg)
{
    struct xcore *x = arg;
    if (xcore_pin(x->cpu) != 0)
        return NULL;
    for (;;) {
        while (atomic_load_explicit(&x->flag, memory_order_acquire) != 1)
            if (atomic_load_explicit(&x->stop, memory_order_relaxed))
                return NULL;
        atomic_store_explicit(&x->flag, 0, memory_order_release);
    }
}

/* The best batch, so that a thread of this process still spinning (OpenBLAS
 * keeps its threads busy for a while after the sgemm) or a host tick does
 * not count; after a pause for the same reason. */
static double xcore_roundtrip_ns(void)
{
    cpu_set_t mask;
    int cpus[2], n = 0;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0)
        return 0;
    for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
        if (CPU_ISSET(i, &mask))
            cpus[n++] = i;
    if (n < 2)
        return 0;
    usleep(200 * 1000);
    static struct xcore x;
    atomic_store(&x.flag, 0);
    atomic_store(&x.stop, 0);
    x.cpu = cpus[1];
    pthread_t self = pthread_self(), t;
    cpu_set_t saved;
    if (pthread_getaffinity_np(self, sizeof saved, &saved) != 0 || xcore_pin(cpus[0]) != 0)
        return 0;
    double best = 0;
    if (pthread_create(&t, NULL, xcore_echo, &x) == 0) {
        for (int b = 0; b < XCORE_BATCHES; b++) {
            const double t0 = sat_mono_s();
            for (int i = 0; i < XCORE_TRIPS; i++) {
                atomic_store_explicit(&x.flag, 1, memory_order_release);
                /* bounded: the echo thread answers each trip, or failed to pin */
                for (long spin = 0; atomic_load_explicit(&x.flag, memory_order_acquire) != 0;
                     spin++)
                    if (spin > 100000000L)
                        goto out;
            }
            const double ns = (sat_mono_s() - t0) * 1e9 / XCORE_TRIPS;
            best = best == 0 || ns < best ? ns : best;
        }
    out:
        atomic_store(&x.stop, 1);
        pthread_join(t, NULL);
    }
    pthread_setaffinity_np(self, sizeof saved, &saved);
    return best;
}

static int cmp_run_pair(struct cmp *c, char *self, const char *script, const char *arch, int steps,
                        int batch, int r)
{
    int rc = 0;
    const double xc = xcore_roundtrip_ns();
    for (int bits = 32; bits >= 4; bits = bits == 32 ? 4 : 0) {
        struct cmp_row *cr = cmp_row_get(c, arch, bits);
        if (cr)
            cr->xcore_ns[r] = xc;
    }
    for (int k = 0; k < 2; k++) {
        if ((k == 0) == (r % 2 == 0)) {
            rc |= cmp_run_saturn(c, self, arch, steps, batch, c->threads, r);
        } else if (cmp_run_torch(c, script, arch, steps, batch, r) != 0) {
            fprintf(stderr, "saturn-bench: the PyTorch baseline failed on %s in round %d\n", arch,
                    r + 1);
            rc = 1;
        }
    }
    return rc;
}

/* The engine's speed targets: PyTorch's step time over Saturn's at least
 * this (FP32 on par, W4A4 twice as fast; cnn-small, whose layers are the
 * cheapest to run, twice and three times). */
static double cmp_target(const struct cmp_row *cr)
{
    bool small = strcmp(cr->model, "cnn-small") == 0;
    if (cr->bits == 32)
        return small ? 2.0 : 1.0;
    return small ? 3.0 : 2.0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Lowest, highest, mean and median per-round ratio a[r] / b[r] over the
 * rounds that have both, and how many of them reach target (0: not
 * counted); returns how many rounds have both. */
static int cmp_range(const double *a, const double *b, int rounds, double *lo, double *hi,
                     double *mean, double *med, double target, int *at)
{
    double q[CMP_ROUNDS_MAX];
    int n = 0;
    double sum = 0;
    *at = 0;
    for (int r = 0; r < rounds; r++) {
        if (a[r] <= 0 || b[r] <= 0)
            continue;
        q[n] = a[r] / b[r];
        *lo = n == 0 || q[n] < *lo ? q[n] : *lo;
        *hi = n == 0 || q[n] > *hi ? q[n] : *hi;
        *at += target > 0 && q[n] >= target;
        sum += q[n++];
    }
    *mean = n ? sum / n : 0;
    qsort(q, (size_t)n, sizeof *q, cmp_dbl);
    *med = n == 0 ? 0 : n % 2 ? q[n / 2] : (q[n / 2 - 1] + q[n / 2]) / 2;
    return n;
}

static void cmp_print(const struct cmp *c, int batch, int steps)
{
    printf("Saturn vs PyTorch %s, %d threads each, batch %d, %d round(s), each model's two\n"
           "sides back to back (Saturn first in odd rounds, PyTorch first in even ones),\n"
           "median of %d training steps per side and round; OpenBLAS sgemm %.1f GFLOP/s "
           "(%d threads)\n\n",
           c->torch_version[0] ? c->torch_version : "?", c->threads, batch, c->rounds, steps,
           c->sgemm, openblas_get_num_threads());
    printf("%-12s %-5s %-17s %-17s %-16s %-5s %-9s %-11s %7s %7s\n", "model", "mode", "Saturn ms",
           "PyTorch ms", "speed lo/med/hi", "best", "target", "W4/FP32 S|P", "%sgemm", "RSS MB");
    for (int i = 0; i < c->nrows; i++) {
        const struct cmp_row *cr = &c->rows[i];
        char sm[64] = "", tm[64] = "", ratio[32] = "-", tgt[16] = "", w4[32] = "", bb[16] = "-";
        for (int r = 0; r < c->rounds; r++) {
            size_t ls = strlen(sm), lt = strlen(tm);
            snprintf(sm + ls, sizeof sm - ls, "%s%.1f", r ? " " : "", cr->sat_ms[r]);
            snprintf(tm + lt, sizeof tm - lt, "%s%.1f", r ? " " : "", cr->torch_ms[r]);
        }
        double lo = 0, hi = 0, mean = 0, med = 0, t = cmp_target(cr);
        int at = 0,
            n = cmp_range(cr->torch_ms, cr->sat_ms, c->rounds, &lo, &hi, &mean, &med, t, &at);
        if (n) {
            snprintf(ratio, sizeof ratio, "%.2f/%.2f/%.2f", lo, med, hi);
            snprintf(tgt, sizeof tgt, "%.0fx %d/%d", t, at, n);
            /* each side's fastest round: the least disturbed one */
            double bs = 0, bt = 0;
            for (int r = 0; r < c->rounds; r++) {
                if (cr->sat_ms[r] > 0 && (bs == 0 || cr->sat_ms[r] < bs))
                    bs = cr->sat_ms[r];
                if (cr->torch_ms[r] > 0 && (bt == 0 || cr->torch_ms[r] < bt))
                    bt = cr->torch_ms[r];
            }
            snprintf(bb, sizeof bb, "%.2f", bt / bs);
        }
        const struct cmp_row *fp = NULL;
        for (int j = 0; j < c->nrows && cr->bits != 32; j++)
            if (c->rows[j].bits == 32 && strcmp(c->rows[j].model, cr->model) == 0)
                fp = &c->rows[j];
        if (fp) {
            double slo = 0, shi = 0, smean = 0, smed = 0, tlo = 0, thi = 0, tmean = 0, tmed = 0;
            int unused;
            cmp_range(cr->sat_ms, fp->sat_ms, c->rounds, &slo, &shi, &smean, &smed, 0, &unused);
            cmp_range(cr->torch_ms, fp->torch_ms, c->rounds, &tlo, &thi, &tmean, &tmed, 0, &unused);
            snprintf(w4, sizeof w4, "%.2f|%.2f", smean, tmean);
        }
        printf("%-12s %-5s %-17s %-17s %-16s %-5s %-9s %-11s %6.1f%% %7.1f\n", cr->model,
               cr->bits == 32 ? "FP32" : "W4A4", sm, tm, ratio, bb, tgt, w4,
               c->sgemm > 0 ? 100 * cr->gflops_best / c->sgemm : 0, cr->rss_mb);
    }
    printf("\nspeed: PyTorch step time over Saturn's per round (above 1, Saturn is faster):\n"
           "lowest, median and highest over the rounds.\n"
           "best: PyTorch's fastest round over Saturn's fastest (each side at its least\n"
           "disturbed; this host's neighbours slow compute-bound code most).\n"
           "target: the engine's (FP32 1x, W4A4 2x; cnn-small 2x and 3x), and how many rounds\n"
           "reach it.\n"
           "W4/FP32: the W4A4 step over the FP32 step (mean of the rounds), Saturn|PyTorch.\n"
           "%%sgemm: Saturn's best step in GFLOP/s over the session's best sgemm.\n");
    printf("\ncross-core round trip, ns, measured before each model's pair, by round (a cache\n"
           "line between threads on the first two CPUs; on a VM, a jump to several times its\n"
           "usual value means the two vCPUs no longer share a cache, and steps that share\n"
           "data across the cores run slower):\n");
    for (int i = 0; i < c->nrows; i++) {
        const struct cmp_row *cr = &c->rows[i];
        if (cr->bits != 32)
            continue;
        printf("%-12s", cr->model);
        for (int r = 0; r < c->rounds; r++)
            printf(" %6.0f", cr->xcore_ns[r]);
        printf("\n");
    }
}

int bench_compare_pytorch(char *self, const char *models, int steps, int batch, int threads,
                          int rounds, const char *script)
{
    int devnull = open("/dev/null", O_WRONLY);
    char *probe[] = {CMP_PYTHON, "-c", "import torch", NULL};
    int have_torch = access(CMP_PYTHON, X_OK) == 0 && spawn_wait(probe, devnull) == 0;
    if (devnull >= 0)
        close(devnull);
    if (!have_torch || access(script, R_OK) != 0) {
        fprintf(stderr,
                "saturn-bench: --compare-pytorch needs %s\n"
                "  %s\n"
                "To get the side-by-side figures:\n"
                "  apt-get install -y python3-torch      # Debian's PyTorch, for %s\n"
                "and the baseline script (../shared/baseline/pytorch/bench_step.py beside the\n"
                "checkout, or --pytorch-baseline PATH, or SATURN_PYTORCH_BASELINE=PATH). Without\n"
                "this mode, run the two alternately and compare medians:\n"
                "  saturn-bench --models %s\n"
                "  %s %s --threads N --steps N --models ...\n",
                !have_torch ? "PyTorch (python3-torch) importable by " CMP_PYTHON
                            : "the PyTorch baseline script",
                !have_torch ? "(import torch failed)" : script, CMP_PYTHON, models, CMP_PYTHON,
                script);
        return 2;
    }
    struct cmp *c = sat_calloc(1, sizeof *c);
    if (!c)
        return 1;
    c->rounds = rounds;
    /* not nn_threads(): that would make this process's OpenBLAS, whose
     * sgemm is the yardstick, single-threaded */
    c->threads = threads > 0 ? threads : nn_cpus_available();
    if (c->threads > 64)
        c->threads = 64;
    c->sgemm = sgemm_gflops();
    int rc = 0;
    for (int r = 0; r < rounds; r++) {
        char list[256];
        snprintf(list, sizeof list, "%s", models);
        for (char *save = NULL, *arch = strtok_r(list, ",", &save); arch;
             arch = strtok_r(NULL, ",", &save))
            rc |= cmp_run_pair(c, self, script, arch, steps, batch, r);
    }
    cmp_print(c, batch, steps);
    sat_free(c);
    return rc;
}
