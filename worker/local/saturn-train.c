/* saturn-train - train a job spec in one process, with the workers' step code.
 *
 *   saturn-train --spec examples/cnn-small-w4a4.json
 *   saturn-train --spec SPEC --json --out runs/x        one JSON object per epoch
 *   saturn-train --spec SPEC --epochs 2 --wbits 4       spec fields as flags
 *   saturn-train --resume runs/x/last.safetensors       continue exactly
 *   saturn-train --eval runs/x/model.safetensors        evaluate a checkpoint
 *
 * Exit codes: 0 success, 1 usage, 2 bad spec or checkpoint, 3 data or I/O
 * error, 4 training diverged (every step of an epoch non-finite).
 */
#include "nn/threads.h"
#include "train/trainer.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { EXIT_USAGE = 1, EXIT_SPEC = 2, EXIT_IO = 3, EXIT_DIVERGED = 4 };

static const char usage_text[] =
    "usage: saturn-train --spec FILE [options] [--FIELD VALUE ...]\n"
    "       saturn-train --resume CKPT [options]\n"
    "       saturn-train --eval CKPT [--json]\n"
    "\n"
    "Trains a Saturn job spec in one process with the same step code as\n"
    "saturn-worker, and evaluates on the test set after every epoch.\n"
    "\n"
    "options:\n"
    "  --spec FILE        job spec (JSON; see docs/jobspec.md)\n"
    "  --FIELD VALUE      override one spec field, e.g. --epochs 2 --wbits 4 --lr 0.05\n"
    "  --out DIR          checkpoints go here (default runs/<name>-s<seed>, the\n"
    "                     spec's name, or its model when it has none)\n"
    "  --resume CKPT      continue a run from its checkpoint (spec taken from it)\n"
    "  --eval CKPT        evaluate a checkpoint on the test set and exit\n"
    "  --stop-after N     stop after N steps of this run, writing a checkpoint\n"
    "  --threads N        math threads (default: the CPUs it may use)\n"
    "  --json             one JSON object per epoch on stdout\n"
    "  --quiet            no progress bar\n"
    "  -h, --help         this text\n"
    "\n"
    "examples:\n"
    "  saturn-train --spec examples/cnn-small-w4a4.json\n"
    "  saturn-train --spec examples/preresnet20-fp32.json --json --out runs/fp32\n"
    "  saturn-train --spec examples/preresnet20-w4a4.json --init_from runs/fp32/model.safetensors\n"
    "  saturn-train --eval runs/fp32/model.safetensors --json\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad spec or checkpoint, 3 data or I/O error,\n"
    "            4 training diverged\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int mkdir_p(const char *dir)
{
    char buf[SPEC_PATH_LEN];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void progress(int epoch, int epochs, long done, long total, double loss, double ips)
{
    const int width = 30;
    int fill = total > 0 ? (int)(width * done / total) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld loss %.4f %.0f img/s ", epoch, epochs, bar, done,
            total, loss, ips);
    fflush(stderr);
}

struct opts {
    const char *spec_path, *out_dir, *resume, *eval;
    int json, quiet, threads;
    long stop_after;
};

static int run_eval(const struct opts *o, struct job_spec *spec)
{
    char err[SAT_ERR_LEN];
    struct trainer t;
    if (trainer_init_local(&t, spec, err) != 0) {
        fprintf(stderr, "saturn-train: %s\n", err);
        return EXIT_IO;
    }
    if (ckpt_load(o->eval, t.model, NULL, NULL, err) != 0) {
        fprintf(stderr, "saturn-train: %s\n", err);
        trainer_close(&t);
        return EXIT_SPEC;
    }
    double ls;
    long ok, cnt;
    train_evaluate(&t, &ls, &ok, &cnt);
    char dig[17];
    model_digest(t.model, dig);
    double acc = cnt ? (double)ok / cnt : 0.0, loss = cnt ? ls / cnt : 0.0;
    if (o->json)
        printf("{\"checkpoint\":\"%s\",\"test_loss\":%.6f,\"test_acc\":%.6f,\"test_count\":%ld,"
               "\"param_digest\":\"%s\"}\n",
               o->eval, loss, acc, cnt, dig);
    else
        printf("%s: test loss %.4f, test accuracy %.4f (%ld/%ld), digest %s\n", o->eval, loss,
               acc, ok, cnt, dig);
    trainer_close(&t);
    return 0;
}

static int run_train(const struct opts *o, struct job_spec *spec)
{
    char err[SAT_ERR_LEN];
    struct trainer t;
    if (trainer_init_local(&t, spec, err) != 0) {
        fprintf(stderr, "saturn-train: %s\n", err);
        return EXIT_IO;
    }
    int rc = 0;
    if (o->resume) {
        if (ckpt_load(o->resume, t.model, t.mom, &t.step, err) != 0) {
            fprintf(stderr, "saturn-train: %s\n", err);
            trainer_close(&t);
            return EXIT_SPEC;
        }
    } else if (spec->init_from[0]) {
        /* Two-stage training: weights and BN statistics from another run,
         * fresh optimizer state and step. Alphas absent from a float
         * checkpoint keep their initial values. */
        if (ckpt_load_init(spec->init_from, t.model, err) != 0) {
            fprintf(stderr, "saturn-train: init_from: %s\n", err);
            trainer_close(&t);
            return EXIT_SPEC;
        }
    }
    if (!o->resume && spec->alpha_init == ALPHA_INIT_CALIBRATE) {
        /* Before step 0, on step 0's batch (a resumed run has its alphas). */
        int nset = 0;
        if (trainer_calibrate(&t, &nset, err) != 0) {
            fprintf(stderr, "saturn-train: %s\n", err);
            trainer_close(&t);
            return EXIT_IO;
        }
        fprintf(stderr, "saturn-train: %d alphas calibrated to the %g percentile of their input\n",
                nset, (double)spec->alpha_percentile);
    }
    char out_dir[SPEC_PATH_LEN], last[SPEC_PATH_LEN + 32], final_path[SPEC_PATH_LEN + 32];
    if (o->out_dir) {
        snprintf(out_dir, sizeof out_dir, "%s", o->out_dir);
    } else {
        /* runs/<name or model>-s<seed>, the name reduced to [A-Za-z0-9._-] */
        char base[SPEC_NAME_LEN];
        snprintf(base, sizeof base, "%s", spec->name[0] ? spec->name : spec->model);
        for (char *p = base; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
                *p = '_';
        if (base[0] == '.')
            base[0] = '_';
        snprintf(out_dir, sizeof out_dir, "runs/%s-s%llu", base, (unsigned long long)spec->seed);
    }
    if (mkdir_p(out_dir) != 0) {
        fprintf(stderr, "saturn-train: cannot create %s: %s\n", out_dir, strerror(errno));
        trainer_close(&t);
        return EXIT_IO;
    }
    snprintf(last, sizeof last, "%s/last.safetensors", out_dir);
    snprintf(final_path, sizeof final_path, "%s/model.safetensors", out_dir);

    const int bar = !o->quiet && isatty(STDERR_FILENO);
    if (!o->json)
        printf("saturn-train: %s on %s, W%dA%d, %d epochs x %ld steps, batch %d, %zu params\n",
               spec->model, spec->dataset, spec->wbits, spec->abits, spec->epochs,
               t.steps_per_epoch, spec->batch_size, model_param_table(t.model)->total);
    fflush(stdout);
    double t_start = sat_mono_s();
    long run_steps = 0;
    while (t.step < t.total_steps && !interrupted) {
        int epoch = train_epoch_of(&t, t.step);
        long end = (long)(epoch + 1) * t.steps_per_epoch;
        double loss_sum = 0, t0 = sat_mono_s();
        long ok_sum = 0, n_steps = 0, nan_steps = 0;
        float lr = 0;
        while (t.step < end && !interrupted) {
            double loss;
            int ok;
            if (train_local_step(&t, &loss, &ok, &lr) != 0) {
                nan_steps++;
            } else {
                loss_sum += loss;
                ok_sum += ok;
                n_steps++;
            }
            run_steps++;
            if (spec->checkpoint_every > 0 && t.step % spec->checkpoint_every == 0 &&
                ckpt_save(last, t.model, t.mom, spec, t.step, err) != 0)
                log_warn("checkpoint: %s", err);
            if (bar && (t.step % 10 == 0 || t.step == end))
                progress(epoch + 1, spec->epochs, t.step - (long)epoch * t.steps_per_epoch,
                         t.steps_per_epoch, n_steps ? loss_sum / n_steps : NAN,
                         (double)(n_steps + nan_steps) * t.local_batch / (sat_mono_s() - t0));
            if (o->stop_after > 0 && run_steps >= o->stop_after)
                break;
        }
        double train_time = sat_mono_s() - t0;
        if (bar)
            fprintf(stderr, "\r%*s\r", 100, "");
        if (o->stop_after > 0 && run_steps >= o->stop_after && t.step < end) {
            if (ckpt_save(last, t.model, t.mom, spec, t.step, err) != 0) {
                fprintf(stderr, "saturn-train: %s\n", err);
                rc = EXIT_IO;
            }
            break;
        }
        if (interrupted)
            break;
        double tl;
        long tok, tcnt;
        train_evaluate(&t, &tl, &tok, &tcnt);
        long imgs = (n_steps + nan_steps) * t.local_batch;
        double loss = n_steps ? loss_sum / n_steps : NAN;
        double tacc = n_steps ? (double)ok_sum / ((double)n_steps * t.local_batch) : 0;
        double test_acc = tcnt ? (double)tok / tcnt : 0, test_loss = tcnt ? tl / tcnt : 0;
        double ips = train_time > 0 ? imgs / train_time : 0;
        if (ckpt_save(last, t.model, t.mom, spec, t.step, err) != 0) {
            fprintf(stderr, "saturn-train: %s\n", err);
            rc = EXIT_IO;
            break;
        }
        char dig[17];
        model_digest(t.model, dig);
        if (o->json) {
            printf("{\"epoch\":%d,\"epochs\":%d,\"step\":%ld,\"loss\":%.6f,\"train_acc\":%.6f,"
                   "\"test_loss\":%.6f,\"test_acc\":%.6f,\"images_per_s\":%.1f,\"lr\":%.6g,"
                   "\"skipped_steps\":%ld,\"elapsed_s\":%.2f,\"param_digest\":\"%s\"}\n",
                   epoch + 1, spec->epochs, t.step, isfinite(loss) ? loss : -1.0, tacc,
                   test_loss, test_acc, ips, lr, nan_steps, sat_mono_s() - t_start, dig);
        } else {
            printf("epoch %3d/%d  loss %.4f  train_acc %.4f  test_acc %.4f  %6.0f img/s  "
                   "lr %.4g  %.1fs%s\n",
                   epoch + 1, spec->epochs, loss, tacc, test_acc, ips, lr, sat_mono_s() - t_start,
                   nan_steps ? "  (skipped non-finite steps)" : "");
        }
        fflush(stdout);
        if (n_steps == 0) {
            fprintf(stderr, "saturn-train: every step of epoch %d had non-finite gradients\n",
                    epoch + 1);
            rc = EXIT_DIVERGED;
            break;
        }
    }
    if (rc == 0 && t.step >= t.total_steps) {
        if (ckpt_save(final_path, t.model, t.mom, spec, t.step, err) != 0) {
            fprintf(stderr, "saturn-train: %s\n", err);
            rc = EXIT_IO;
        } else if (!o->json) {
            char dig[17];
            model_digest(t.model, dig);
            printf("saturn-train: done in %.1fs; model written to %s (digest %s)\n",
                   sat_mono_s() - t_start, final_path, dig);
        }
    } else if (rc == 0 && !o->json) {
        printf("saturn-train: stopped at step %ld; resume with --resume %s\n", t.step, last);
    }
    trainer_close(&t);
    return rc;
}

int main(int argc, char **argv)
{
    sat_tune_malloc();
    sat_log_set_component("saturn-train");
    struct opts o = {0};
    /* Spec field flags (--epochs 2) are collected and applied after the spec. */
    const char *fkeys[64], *fvals[64];
    int nf = 0;
    static const struct option longopts[] = {
        {"spec", required_argument, NULL, 's'},   {"out", required_argument, NULL, 'o'},
        {"resume", required_argument, NULL, 'r'}, {"eval", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},         {"quiet", no_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 't'}, {"stop-after", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    opterr = 0;
    for (int i = 1; i < argc; i++) {
        /* Pull out --FIELD VALUE pairs that are not our own options. */
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2])
            continue;
        int ours = 0;
        for (const struct option *lo = longopts; lo->name; lo++)
            if (strcmp(a + 2, lo->name) == 0)
                ours = 1;
        if (ours || i + 1 >= argc)
            continue;
        if (nf >= 64) {
            fprintf(stderr, "saturn-train: too many field flags\n");
            return EXIT_USAGE;
        }
        fkeys[nf] = a + 2;
        fvals[nf++] = argv[i + 1];
        /* remove both from argv */
        memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2 + 1) * sizeof *argv);
        argc -= 2;
        i--;
    }
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.spec_path = optarg;
            break;
        case 'o':
            o.out_dir = optarg;
            break;
        case 'r':
            o.resume = optarg;
            break;
        case 'e':
            o.eval = optarg;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 't':
            o.threads = atoi(optarg);
            break;
        case 'S':
            o.stop_after = atol(optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "saturn-train: unknown option %s\n%s", argv[optind - 1], usage_text);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "saturn-train: unexpected argument %s\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o.spec_path && !o.resume && !o.eval) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    nn_set_threads(o.threads); /* 0: every online CPU */

    char err[SAT_ERR_LEN];
    struct job_spec spec;
    int rc;
    if (o.spec_path)
        rc = jobspec_load(&spec, o.spec_path, err);
    else
        rc = ckpt_read_spec(o.resume ? o.resume : o.eval, &spec, err);
    if (rc != 0) {
        fprintf(stderr, "saturn-train: %s\n", err);
        return EXIT_SPEC;
    }
    for (int i = 0; i < nf; i++) {
        if (jobspec_set(&spec, fkeys[i], fvals[i], err) != 0) {
            fprintf(stderr, "saturn-train: %s\n", err);
            return EXIT_SPEC;
        }
    }
    if (nf && jobspec_validate(&spec, err) != 0) {
        fprintf(stderr, "saturn-train: %s\n", err);
        return EXIT_SPEC;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return o.eval ? run_eval(&o, &spec) : run_train(&o, &spec);
}
