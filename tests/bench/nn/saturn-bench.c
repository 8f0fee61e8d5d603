/* saturn-bench - how fast the engine trains each zoo model on this machine.
 *
 * For each model at batch 128 (1x28x28, the Fashion-MNIST shape): training
 * step images/s and GFLOP/s (forward multiply-adds x 2, training counted as
 * 3x forward) in FP32 and W4A4, inference images/s, and the peak resident
 * memory of each training configuration; and, in the same run, OpenBLAS's
 * sgemm GFLOP/s on a 1024-cube, so every figure is also a fraction of what
 * this machine's BLAS reaches. Each configuration runs in its own child
 * process (so its peak RSS is its own), one after the other.
 *
 * Timing: 2 warm-up steps, then --steps timed steps; "step ms" is their
 * median and "best ms" the fastest. The sgemm peak is the best of 5 runs,
 * taken at the start and again after each configuration (the best so far
 * is used), so "%sgemm" and "W4/FP32" compare best with best: on a shared
 * machine a neighbour's burst then moves neither side of a ratio.
 *
 *   saturn-bench                 all models, table
 *   saturn-bench --json          one JSON object per line, then a summary
 *   saturn-bench --models preresnet20,cnn-small --steps 10
 *   saturn-bench --compare-pytorch [--rounds 3] [--pytorch-baseline PATH]
 *                                side by side with the PyTorch baseline (compare.c)
 *
 * The default baseline script is ../shared/baseline/pytorch/bench_step.py
 * beside the source tree (where CI clones put it); SATURN_PYTORCH_BASELINE
 * or --pytorch-baseline overrides it. The comparison is a benchmark, never
 * part of the test suite: shared machines are too noisy for a verdict.
 */
#include "bench.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "nn/threads.h"
#include "util/clock.h"
#include "util/rng.h"
#include "util/xalloc.h"

#include <cblas.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

double sgemm_gflops(void)
{
    const int n = 1024;
    float *a = sat_malloc_aligned((size_t)n * n * 4), *b = sat_malloc_aligned((size_t)n * n * 4),
          *c = sat_malloc_aligned((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.2f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = sat_mono_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        double g = 2.0 * n * n * n / (sat_mono_s() - t0) / 1e9;
        best = g > best ? g : best;
    }
    sat_free(a);
    sat_free(b);
    sat_free(c);
    return best;
}

/* This process's peak resident memory in MB: VmHWM, the high-water mark
 * of its own address space. Not ru_maxrss, which a child started by
 * posix_spawn inherits from its parent's (Linux keeps the larger across
 * exec): in --compare-pytorch rounds cnn-small showed 79 MB, the parent's
 * peak, against its own 47. */
static double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb >= 0)
        return kb / 1024.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* One configuration, in this process: prints one JSON line. */
static int run_one(const char *arch, int bits, int batch, int steps)
{
    struct model_cfg cfg;
    model_cfg_defaults(&cfg, arch, 1, 28, 28, 10, batch);
    if (bits < 32) {
        cfg.wbits = cfg.abits = cfg.last_abits = bits;
        cfg.first_wbits = cfg.last_wbits = 8;
    }
    struct model *m = NULL;
    char err[SAT_ERR_LEN];
    if (model_new(&m, &cfg, err) != 0) {
        fprintf(stderr, "saturn-bench: %s\n", err);
        return 1;
    }
    size_t img = 28 * 28;
    float *x = sat_malloc_aligned(img * batch * sizeof(float));
    int32_t *y = sat_malloc((size_t)batch * sizeof(int32_t));
    const struct param_table *pt = model_param_table(m);
    float *mom = sat_calloc(pt->total, sizeof(float));
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(1, 2, 3, 4));
    for (size_t i = 0; i < img * batch; i++)
        x[i] = (float)sat_rng_uniform(&r);
    for (int i = 0; i < batch; i++)
        y[i] = i % 10;
    struct sgd_cfg sgd = {.momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = 1};
    /* training steps: warm-up 2, then the best of the timed steps' median */
    double *ts = sat_calloc((size_t)steps, sizeof(double));
    double cpu0 = 0;
    for (int i = 0; i < steps + 2; i++) {
        double t0 = sat_mono_s();
        model_forward(m, x, y, batch, 1, NULL);
        model_zero_grad(m);
        model_backward(m, 1.0f / batch);
        sgd_update(model_params(m), model_grads(m), mom, pt, 0, pt->total, &sgd, 0.01f);
        if (i >= 2)
            ts[i - 2] = sat_mono_s() - t0;
        if (i == 1) {
            struct rusage r0;
            getrusage(RUSAGE_SELF, &r0);
            cpu0 = r0.ru_utime.tv_sec + r0.ru_utime.tv_usec * 1e-6;
        }
    }
    struct rusage r1;
    getrusage(RUSAGE_SELF, &r1);
    double cpu_step = (r1.ru_utime.tv_sec + r1.ru_utime.tv_usec * 1e-6 - cpu0) / steps;
    /* median */
    for (int i = 1; i < steps; i++)
        for (int j = i; j > 0 && ts[j - 1] > ts[j]; j--) {
            double t = ts[j];
            ts[j] = ts[j - 1];
            ts[j - 1] = t;
        }
    double step_s = ts[steps / 2], best_s = ts[0];
    double t0 = sat_mono_s();
    int inf_steps = steps;
    for (int i = 0; i < inf_steps; i++)
        model_forward(m, x, y, batch, 0, NULL);
    double inf_s = (sat_mono_s() - t0) / inf_steps;
    if (getenv("SATURN_PROFILE"))
        model_profile_print(m, stderr);
    double macs = model_macs_per_image(m);
    printf("{\"model\":\"%s\",\"bits\":%d,\"batch\":%d,\"step_ms\":%.3f,\"train_images_per_s\":%.1f,"
           "\"train_gflops\":%.3f,\"infer_images_per_s\":%.1f,\"infer_gflops\":%.3f,"
           "\"fwd_mflop_per_image\":%.3f,\"peak_rss_mb\":%.1f,\"params\":%zu,"
           "\"cpu_ms_per_step\":%.3f,\"threads\":%d,\"step_best_ms\":%.3f,"
           "\"train_gflops_best\":%.3f}\n",
           arch, bits, batch, step_s * 1e3, batch / step_s, 3 * 2 * macs * batch / step_s / 1e9,
           batch / inf_s, 2 * macs * batch / inf_s / 1e9, 2 * macs / 1e6, peak_rss_mb(),
           pt->total, cpu_step * 1e3, nn_threads(), best_s * 1e3,
           3 * 2 * macs * batch / best_s / 1e9);
    fflush(stdout);
    sat_free(ts);
    sat_free(x);
    sat_free(y);
    sat_free(mom);
    model_free(m);
    return 0;
}

/* ==== Child processes ====================================================== */

/* See bench.h. */
int spawn_wait(char *const argv[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st = 0;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* See bench.h. */
int run_child(char *self, const char *arch, int bits, int steps, int batch, int threads,
                     char *line, size_t cap)
{
    char sb[16], sbits[16], sbatch[16], sthr[16], sarch[64];
    snprintf(sb, sizeof sb, "%d", steps);
    snprintf(sbits, sizeof sbits, "%d", bits);
    snprintf(sbatch, sizeof sbatch, "%d", batch);
    snprintf(sthr, sizeof sthr, "%d", threads);
    snprintf(sarch, sizeof sarch, "%s", arch);
    char *args[] = {self,  "--one",   sarch, "--bits",    sbits, "--steps", sb,
                    "--batch", sbatch, "--threads", sthr,  NULL};
    FILE *tmp = tmpfile();
    if (!tmp)
        return -1;
    fflush(stdout);
    int st = spawn_wait(args, fileno(tmp));
    rewind(tmp);
    line[0] = 0;
    if (!fgets(line, (int)cap, tmp))
        line[0] = 0;
    fclose(tmp);
    return st == 0 && line[0] == '{' ? 0 : -1;
}

/* Minimal extraction of a number field from our own JSON line. */
double jnum(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? atof(p + strlen(pat)) : 0.0;
}

int main(int argc, char **argv)
{
    sat_tune_malloc();
    int json = 0, steps = 8, batch = 128, one_bits = 0, threads = 0, compare = 0, rounds = 3;
    const char *baseline = getenv("SATURN_PYTORCH_BASELINE");
    if (!baseline || !baseline[0])
        baseline = SATURN_SOURCE_ROOT "/../shared/baseline/pytorch/bench_step.py";
    const char *models = "mlp,cnn-small,preresnet20,mobilenetv1,mobilenetv2", *one = NULL;
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"models", required_argument, NULL, 'm'},
                                       {"steps", required_argument, NULL, 's'},
                                       {"batch", required_argument, NULL, 'b'},
                                       {"one", required_argument, NULL, 'o'},
                                       {"bits", required_argument, NULL, 'k'},
                                       {"threads", required_argument, NULL, 't'},
                                       {"compare-pytorch", no_argument, NULL, 'c'},
                                       {"rounds", required_argument, NULL, 'r'},
                                       {"pytorch-baseline", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'm':
            models = optarg;
            break;
        case 's':
            steps = atoi(optarg);
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        case 'o':
            one = optarg;
            break;
        case 'k':
            one_bits = atoi(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'c':
            compare = 1;
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'p':
            baseline = optarg;
            break;
        default:
            printf("usage: saturn-bench [--json] [--models a,b] [--steps N] [--batch N] "
                   "[--threads N]\n"
                   "       saturn-bench --compare-pytorch [--rounds N] [--pytorch-baseline PATH] "
                   "[--models a,b] ...\n");
            return c == 'h' ? 0 : 1;
        }
    }
    if (steps < 3 || steps > 1000 || batch < 1 || batch > 4096 || rounds < 1 || rounds > 5) {
        fprintf(stderr, "saturn-bench: --steps 3..1000, --batch 1..4096, --rounds 1..5\n");
        return 1;
    }
    if (one) {
        nn_set_threads(threads); /* the engine's threads; OpenBLAS single-threaded inside */
        return run_one(one, one_bits ? one_bits : 32, batch, steps);
    }

    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        return 1;
    self[sl] = 0;
    if (compare) {
        if (strcmp(models, "mlp,cnn-small,preresnet20,mobilenetv1,mobilenetv2") == 0)
            models = "cnn-small,preresnet20,mobilenetv1,mobilenetv2"; /* the conv models */
        return bench_compare_pytorch(self, models, steps, batch, threads, rounds, baseline);
    }

    double peak = sgemm_gflops();
    int blas_threads = openblas_get_num_threads();
    if (json)
        printf("{\"sgemm_1024_gflops\":%.2f,\"openblas_threads\":%d}\n", peak, blas_threads);
    else
        printf("OpenBLAS sgemm 1024^3: %.1f GFLOP/s (%d threads)\n\n"
               "%-12s %-5s %9s %9s %10s %9s %7s %11s %9s %10s\n",
               peak, blas_threads, "model", "mode", "step ms", "best ms", "train i/s", "GFLOP/s",
               "%sgemm", "infer i/s", "RSS MB", "W4/FP32");
    fflush(stdout);
    char list[256];
    snprintf(list, sizeof list, "%s", models);
    int rc = 0;
    for (char *save = NULL, *arch = strtok_r(list, ",", &save); arch;
         arch = strtok_r(NULL, ",", &save)) {
        double fp_step = 0;
        for (int bits = 32; bits >= 4; bits = bits == 32 ? 4 : 0) {
            char line[2048];
            if (run_child(self, arch, bits, steps, batch, threads, line, sizeof line) != 0) {
                fprintf(stderr, "saturn-bench: %s bits %d failed\n", arch, bits);
                rc = 1;
                continue;
            }
            /* Both sides of a ratio are best-of figures (the sgemm peak is
             * the best of its runs; a step the fastest timed step), so that
             * a neighbour's burst on this shared machine moves neither. */
            double step_ms = jnum(line, "step_ms"), best_ms = jnum(line, "step_best_ms");
            double gf_best = jnum(line, "train_gflops_best");
            if (bits == 32)
                fp_step = best_ms;
            double ratio = bits < 32 && fp_step > 0 ? best_ms / fp_step : 1.0;
            double peak2 = sgemm_gflops(); /* again, after the model ran */
            if (peak2 > peak)
                peak = peak2;
            if (json) {
                line[strcspn(line, "\n")] = 0;
                line[strlen(line) - 1] = 0; /* drop the closing brace */
                printf("%s,\"sgemm_gflops\":%.2f,\"sgemm_fraction\":%.4f,"
                       "\"step_ratio_vs_fp32\":%.3f}\n",
                       line, peak, gf_best / peak, ratio);
            } else {
                printf("%-12s %-5s %9.1f %9.1f %10.0f %9.2f %6.1f%% %11.0f %9.1f %10s\n", arch,
                       bits == 32 ? "FP32" : "W4A4", step_ms, best_ms,
                       jnum(line, "train_images_per_s"), gf_best, 100 * gf_best / peak,
                       jnum(line, "infer_images_per_s"), jnum(line, "peak_rss_mb"), "");
                if (bits < 32)
                    printf("%-12s %-5s %9s %9s %10s %9s %7s %11s %9s %9.2fx\n", "", "", "", "",
                           "", "", "", "", "", ratio);
            }
            fflush(stdout);
        }
    }
    return rc;
}
