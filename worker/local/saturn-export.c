/* saturn-export - export a checkpoint as a deployable model file (ONNX).
 *
 *   saturn-export runs/x/model.safetensors -o model.onnx
 *   saturn-export CKPT -o model.onnx --logits logits.f32 --count 100
 *
 * The model is rebuilt from the spec stored in the checkpoint and written by
 * common/export/onnx.c (encoding: onnx.h). With --logits the engine's
 * eval-mode logits of the first N test images (the same code path as
 * `saturn-train --eval`) are written next to it, so that the ONNX graph can
 * be checked against the engine by any runtime. With --levels also the
 * integer level of every PACT activation of those images, so that a checker
 * can compare what is exact (levels) apart from what float rounding may move
 * (a value within a rounding error of a level boundary).
 *
 * Exit codes: 0 success, 1 usage, 2 bad checkpoint, 3 data or I/O error,
 * 4 export failed.
 */
#include "export/onnx.h"
#include "nn/quant.h"
#include "nn/threads.h"
#include "train/trainer.h"
#include "util/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_USAGE = 1, EXIT_SPEC = 2, EXIT_IO = 3, EXIT_EXPORT = 4 };

static const char usage_text[] =
    "usage: saturn-export CKPT -o OUT [--format onnx] [--job ID]\n"
    "                     [--logits FILE [--count N] [--levels FILE]] [--threads N]\n"
    "\n"
    "Writes the model of a Saturn checkpoint as an ONNX graph (opset 13,\n"
    "eval mode): integer weight codes with their scale through\n"
    "DequantizeLinear, PACT activations as Clip + QuantizeLinear /\n"
    "DequantizeLinear, BatchNorm kept with its running statistics.\n"
    "\n"
    "options:\n"
    "  -o, --out FILE     the file to write (required; written atomically)\n"
    "  --format onnx      output format (only onnx)\n"
    "  --job ID           job id recorded in the file's metadata\n"
    "  --logits FILE      also write the engine's eval-mode logits of the first N\n"
    "                     test images: float32 little-endian, N x classes, image-major\n"
    "  --count N          images for --logits (default: the spec's whole test set)\n"
    "  --levels FILE      with --logits: also write every PACT activation's level\n"
    "                     rint(a*clip(x,0,alpha)/alpha) as uint8, image-major, then\n"
    "                     the PACT layers in forward order, each (c, h, w)\n"
    "  --threads N        math threads (default: the CPUs it may use)\n"
    "  -h, --help         this text\n"
    "\n"
    "Prints one JSON object: the file, its size and, with --logits, the count\n"
    "and the accuracy of those images.\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad checkpoint, 3 data or I/O error,\n"
    "            4 export failed\n";

static void put_f32le(unsigned char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

/* The PACT nodes of the model (act_bits < 32), in forward order. */
struct pact_nodes {
    int n;
    struct model_node_desc d[256];
};

static void pact_nodes_find(const struct model *m, struct pact_nodes *pn)
{
    pn->n = 0;
    for (int i = 0; i < model_node_count(m) && pn->n < 256; i++) {
        struct model_node_desc d;
        if (model_node_get(m, i, &d) == 0 && d.kind == MODEL_NODE_ACT && d.act_bits < 32)
            pn->d[pn->n++] = d;
    }
}

/* Image j's levels of every PACT node after a forward pass of b images,
 * appended to f. The level is computed from the node's input with the
 * engine's own formula (quant.c pact_forward), so it is exact. */
static int write_levels(FILE *f, const struct model *m, const struct pact_nodes *pn, int j, int b)
{
    const float *p = model_params((struct model *)m);
    const struct param_table *pt = model_param_table(m);
    for (int k = 0; k < pn->n; k++) {
        const struct model_node_desc *d = &pn->d[k];
        const float *x = model_tensor_values(m, d->in);
        const float al = fmaxf(fabsf(p[pt->e[d->alpha_param].offset]), QUANT_ALPHA_EPS);
        const float a = (float)((1 << d->act_bits) - 1);
        const size_t hw = (size_t)d->in_h * (size_t)d->in_w;
        for (int c = 0; c < d->in_c; c++) {
            unsigned char row[4096];
            const float *xs = x + ((size_t)c * (size_t)b + (size_t)j) * hw;
            for (size_t i0 = 0; i0 < hw; i0 += sizeof row) {
                size_t n = hw - i0 < sizeof row ? hw - i0 : sizeof row;
                for (size_t i = 0; i < n; i++) {
                    float v = xs[i0 + i];
                    float xc = v > 0.0f ? v : 0.0f;
                    xc = xc < al ? xc : al;
                    row[i] = (unsigned char)rintf(a * (xc / al));
                }
                if (fwrite(row, 1, n, f) != n)
                    return -1;
            }
        }
    }
    return 0;
}

/* Eval-mode logits of the first `count` test images into path (and with
 * levels_path, their PACT levels); *correct receives the number of right
 * predictions. Returns 0 or SAT_EIO/SAT_ENOMEM. */
static int dump_logits(struct trainer *t, const char *path, const char *levels_path, int count,
                       long *correct, char err[SAT_ERR_LEN])
{
    const int nc = model_get_cfg(t->model)->nclass;
    static struct pact_nodes pn;
    pact_nodes_find(t->model, &pn);
    unsigned char *row = sat_malloc((size_t)nc * 4);
    if (!row)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    FILE *f = fopen(path, "wb");
    FILE *fl = levels_path ? fopen(levels_path, "wb") : NULL;
    if (!f || (levels_path && !fl)) {
        int e = errno;
        if (f)
            fclose(f);
        if (fl)
            fclose(fl);
        sat_free(row);
        return sat_errf(err, SAT_EIO, "%s: %s", !f ? path : levels_path, strerror(e));
    }
    long ok = 0;
    int rc = 0;
    for (int i0 = 0; i0 < count && rc == 0; i0 += t->local_batch) {
        int b = count - i0 < t->local_batch ? count - i0 : t->local_batch;
        loader_fill(t->x, t->y, &t->test, t->test_idx + i0, b, NULL, 0, 0, 0, 0);
        int c = 0;
        model_forward(t->model, t->x, t->y, b, 0, &c);
        ok += c;
        const float *lg = model_logits(t->model); /* (nclass, b) */
        for (int j = 0; j < b && rc == 0; j++) {
            for (int k = 0; k < nc; k++)
                put_f32le(row + 4 * k, lg[(size_t)k * b + j]);
            if (fwrite(row, 4, (size_t)nc, f) != (size_t)nc)
                rc = sat_errf(err, SAT_EIO, "%s: write failed", path);
            else if (fl && write_levels(fl, t->model, &pn, j, b) != 0)
                rc = sat_errf(err, SAT_EIO, "%s: write failed", levels_path);
        }
    }
    if (fclose(f) != 0 && rc == 0)
        rc = sat_errf(err, SAT_EIO, "%s: %s", path, strerror(errno));
    if (fl && fclose(fl) != 0 && rc == 0)
        rc = sat_errf(err, SAT_EIO, "%s: %s", levels_path, strerror(errno));
    sat_free(row);
    *correct = ok;
    return rc;
}

int main(int argc, char **argv)
{
    sat_tune_malloc();
    const char *out = NULL, *job = NULL, *logits = NULL, *levels = NULL;
    long count = -1;
    int threads = 0;
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},   {"format", required_argument, NULL, 'f'},
        {"job", required_argument, NULL, 'j'},   {"logits", required_argument, NULL, 'l'},
        {"count", required_argument, NULL, 'c'}, {"threads", required_argument, NULL, 't'},
        {"levels", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "onnx") != 0) {
                fprintf(stderr, "saturn-export: unknown format \"%s\" (want onnx)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j':
            job = optarg;
            break;
        case 'l':
            logits = optarg;
            break;
        case 'L':
            levels = optarg;
            break;
        case 'c':
            errno = 0;
            count = strtol(optarg, &end, 10);
            if (errno || !*optarg || *end || count < 1) {
                fprintf(stderr, "saturn-export: --count wants a positive integer\n");
                return EXIT_USAGE;
            }
            break;
        case 't':
            errno = 0;
            threads = (int)strtol(optarg, &end, 10);
            if (errno || !*optarg || *end || threads < 0) {
                fprintf(stderr, "saturn-export: --threads wants an integer >= 0\n");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "saturn-export: unknown option %s\n%s", argv[optind - 1], usage_text);
            return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || !out || (levels && !logits)) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *ckpt = argv[optind];
    nn_set_threads(threads);

    char err[SAT_ERR_LEN];
    struct job_spec spec;
    if (ckpt_read_spec(ckpt, &spec, err) != 0) {
        fprintf(stderr, "saturn-export: %s\n", err);
        return EXIT_SPEC;
    }
    struct trainer t;
    if (trainer_init_local(&t, &spec, err) != 0) {
        fprintf(stderr, "saturn-export: %s\n", err);
        return EXIT_IO;
    }
    long step = 0;
    if (ckpt_load(ckpt, t.model, NULL, &step, err) != 0) {
        fprintf(stderr, "saturn-export: %s\n", err);
        trainer_close(&t);
        return EXIT_SPEC;
    }
    char *spec_json = jobspec_to_json(&spec);
    struct onnx_export_opts eo = {.job = job, .spec_json = spec_json, .step = step};
    int rc = onnx_export(t.model, out, &eo, err);
    sat_free(spec_json);
    if (rc != 0) {
        fprintf(stderr, "saturn-export: %s\n", err);
        trainer_close(&t);
        return rc == SAT_EIO ? EXIT_IO : EXIT_EXPORT;
    }
    FILE *f = fopen(out, "rb");
    long bytes = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        bytes = ftell(f);
    if (f)
        fclose(f);
    printf("{\"out\":\"%s\",\"format\":\"onnx\",\"opset\":%d,\"bytes\":%ld,\"step\":%ld", out,
           ONNX_OPSET, bytes, step);
    if (logits) {
        int n = count < 0 || count > t.test.n ? t.test.n : (int)count;
        long ok = 0;
        if (dump_logits(&t, logits, levels, n, &ok, err) != 0) {
            printf("}\n");
            fprintf(stderr, "saturn-export: %s\n", err);
            trainer_close(&t);
            return EXIT_IO;
        }
        printf(",\"logits\":\"%s\",\"count\":%d,\"acc\":%.6f", logits, n, n ? (double)ok / n : 0.0);
    }
    printf("}\n");
    trainer_close(&t);
    return 0;
}
