/* prom.c - GET /metrics: the coordinator's state in Prometheus' text
 * exposition format 0.0.4 (the histograms are stats.h's).
 *
 * Every family has HELP and TYPE lines and all its samples together, as
 * the format requires; names are saturn_*, in base units (seconds, bytes,
 * ratios), counters end in _total. Per-job series exist for running jobs
 * and for the HTTP_RECENT_JOBS most recent ended jobs that trained, so
 * that the page stays small however many jobs the store holds. The page
 * is rendered from memory on the loop thread; nothing here touches SQLite.
 * docs/control-plane.md lists every family.
 */
#include "prom.h"

#include <inttypes.h>
#include <math.h>

#include "webfmt.h"

/* ==== the page ============================================================= */

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct strbuf *b, const char *name, double v)
{
    strbuf_printf(b, "%s ", name);
    webfmt_prom_value(b, v);
    strbuf_puts(b, "\n");
}

/* name{key="value"} v */
static void sample1(struct strbuf *b, const char *name, const char *key, const char *value,
                    double v)
{
    strbuf_printf(b, "%s{%s=\"", name, key);
    webfmt_prom_label(b, value);
    strbuf_puts(b, "\"} ");
    webfmt_prom_value(b, v);
    strbuf_puts(b, "\n");
}

static void histogram(struct strbuf *b, const char *name, const char *help,
                      const struct coord_hist *h)
{
    family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < COORD_HIST_NB; i++) {
        cum += h->bucket[i];
        strbuf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, coord_hist_bounds[i], cum);
    }
    strbuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
    strbuf_printf(b, "%s_sum ", name);
    webfmt_prom_value(b, h->sum);
    strbuf_printf(b, "\n%s_count %" PRIu64 "\n", name, h->count);
}

/* ---- per-job series ---- */

static double get_step(const struct job *j)
{
    return (double)j->prog.step;
}
static double get_skipped(const struct job *j)
{
    return (double)j->prog.skipped;
}
static double get_epoch(const struct job *j)
{
    return j->prog.epoch;
}
static double get_epochs(const struct job *j)
{
    return j->prog.epochs;
}
static double get_loss(const struct job *j)
{
    return j->prog.loss;
}
static double get_train_acc(const struct job *j)
{
    return j->prog.train_acc;
}
static double get_test_acc(const struct job *j)
{
    return j->prog.test_acc;
}
static double get_ips(const struct job *j)
{
    return j->prog.images_per_s;
}
static double get_lr(const struct job *j)
{
    return j->prog.lr;
}

struct job_family {
    const char *name, *type, *help;
    double (*get)(const struct job *j);
    bool test_only; /* only once a test accuracy exists */
};

static const struct job_family job_families[] = {
    {"saturn_job_skipped_steps_total", "counter",
     "Steps (bsp) or pushes (ssp/asp) skipped because their gradient was not finite.", get_skipped,
     false},
    {"saturn_job_epoch", "gauge", "Epoch the job is in (1-based).", get_epoch, false},
    {"saturn_job_epochs", "gauge", "Epochs the job trains for.", get_epochs, false},
    {"saturn_job_step", "gauge", "Global steps applied by the parameter server.", get_step, false},
    {"saturn_job_loss", "gauge", "Training loss, mean over ranks of their latest window.", get_loss,
     false},
    {"saturn_job_train_accuracy", "gauge",
     "Training accuracy (ratio) of the ranks' latest windows.", get_train_acc, false},
    {"saturn_job_test_accuracy", "gauge", "Test accuracy (ratio) of the last evaluated epoch.",
     get_test_acc, true},
    {"saturn_job_images_per_second", "gauge", "Training images per second, summed over ranks.",
     get_ips, false},
    {"saturn_job_learning_rate", "gauge", "Learning rate of the last applied step.", get_lr, false},
};

/* The first index of c->jobs from which ended jobs get per-job series:
 * the HTTP_RECENT_JOBS most recent ended jobs that trained. */
static size_t recent_start(const struct coord *c)
{
    size_t n = 0;
    for (size_t i = c->njobs; i > 0; i--) {
        const struct job *j = c->jobs[i - 1];
        if (!coord_job_training(j->state) && j->prog.valid && ++n > HTTP_RECENT_JOBS)
            return i;
    }
    return 0;
}

static bool job_has_series(const struct coord *c, size_t i, size_t start)
{
    const struct job *j = c->jobs[i];
    if (!j->prog.valid)
        return false;
    return coord_job_training(j->state) || i >= start;
}

static void job_series(struct coord *c, struct strbuf *b)
{
    size_t start = recent_start(c);
    family(b, "saturn_job_info", "gauge",
           "Always 1: a job's name, model, data set, consistency and state as labels.");
    for (size_t i = 0; i < c->njobs; i++) {
        const struct job *j = c->jobs[i];
        if (!job_has_series(c, i, start))
            continue;
        const char *kv[][2] = {{"job", j->id},
                               {"name", j->name},
                               {"model", j->model},
                               {"dataset", j->dataset},
                               {"consistency", j->consistency},
                               {"state", coord_job_state_name(j->state)}};
        strbuf_puts(b, "saturn_job_info{");
        for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++) {
            strbuf_printf(b, "%s%s=\"", k ? "," : "", kv[k][0]);
            webfmt_prom_label(b, kv[k][1]);
            strbuf_puts(b, "\"");
        }
        strbuf_puts(b, "} 1\n");
    }
    family(b, "saturn_ps_steps_applied_total", "counter",
           "Global steps the parameter server has applied for the job.");
    for (size_t i = 0; i < c->njobs; i++) {
        const struct job *j = c->jobs[i];
        if (!job_has_series(c, i, start))
            continue;
        strbuf_puts(b, "saturn_ps_steps_applied_total{job=\"");
        webfmt_prom_label(b, j->id);
        strbuf_puts(b, "\",name=\"");
        webfmt_prom_label(b, j->name);
        strbuf_puts(b, "\"} ");
        webfmt_prom_value(b, get_step(j));
        strbuf_puts(b, "\n");
    }
    for (size_t f = 0; f < sizeof job_families / sizeof job_families[0]; f++) {
        const struct job_family *jf = &job_families[f];
        family(b, jf->name, jf->type, jf->help);
        for (size_t i = 0; i < c->njobs; i++) {
            const struct job *j = c->jobs[i];
            if (!job_has_series(c, i, start) || (jf->test_only && !(j->prog.test_acc >= 0)))
                continue;
            sample1(b, jf->name, "job", j->id, jf->get(j));
        }
    }
    static const struct {
        const char *name, *help;
    } fam[JQ_NKINDS] = {
        [JQ_ALPHA] = {"saturn_job_pact_alpha",
                      "PACT clipping level alpha of a layer's activation quantizer."},
        [JQ_SAT] = {"saturn_job_sat_scale", "SAT scale factor of a layer's quantized weights."},
        [JQ_WVAR] = {"saturn_job_weight_variance",
                     "Variance of the last layer's effective (quantized, scaled) weights."},
    };
    for (int kind = 0; kind < JQ_NKINDS; kind++) {
        const char *name = fam[kind].name;
        family(b, name, "gauge", fam[kind].help);
        for (size_t i = 0; i < c->njobs; i++) {
            const struct job *j = c->jobs[i];
            if (!job_has_series(c, i, start))
                continue;
            for (int q = 0; q < j->prog.nquant; q++) {
                const struct job_quant *jq = &j->prog.quant[q];
                if ((int)jq->kind != kind)
                    continue;
                strbuf_printf(b, "%s{job=\"", name);
                webfmt_prom_label(b, j->id);
                strbuf_puts(b, "\",layer=\"");
                webfmt_prom_label(b, jq->name);
                strbuf_puts(b, "\"} ");
                webfmt_prom_value(b, jq->value);
                strbuf_puts(b, "\n");
            }
        }
    }
}

void prom_render(struct coord *c, struct strbuf *b)
{
    family(b, "saturn_build_info", "gauge", "Always 1: the saturnd version as a label.");
    sample1(b, "saturn_build_info", "version", SATURN_VERSION, 1);
    family(b, "saturn_start_time_seconds", "gauge", "When saturnd started (Unix time).");
    sample(b, "saturn_start_time_seconds", (double)(c->stats.start_ms / 1000));

    static const enum job_state jstates[] = {JOB_QUEUED,    JOB_RUNNING,  JOB_RECOVERING,
                                             JOB_SUCCEEDED, JOB_FAILED,   JOB_CANCELLED};
    size_t nj[JOB_RECOVERING + 1] = {0};
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state >= JOB_QUEUED && c->jobs[i]->state <= JOB_RECOVERING)
            nj[c->jobs[i]->state]++;
    family(b, "saturn_jobs", "gauge", "Jobs in the store, by state.");
    for (size_t k = 0; k < sizeof jstates / sizeof jstates[0]; k++)
        sample1(b, "saturn_jobs", "state", coord_job_state_name(jstates[k]),
                (double)nj[jstates[k]]);

    static const enum worker_state wstates[] = {WORKER_IDLE, WORKER_ASSIGNED, WORKER_BUSY,
                                                WORKER_LOST, WORKER_GONE};
    size_t nw[6] = {0};
    for (size_t i = 0; i < c->nworkers; i++)
        if (c->workers[i]->state >= WORKER_IDLE && c->workers[i]->state <= WORKER_GONE)
            nw[c->workers[i]->state]++;
    family(b, "saturn_workers", "gauge",
           "Workers by state (lost and gone ones while saturnd still lists them).");
    for (size_t k = 0; k < sizeof wstates / sizeof wstates[0]; k++)
        sample1(b, "saturn_workers", "state", coord_worker_state_name(wstates[k]),
                (double)nw[wstates[k]]);

    family(b, "saturn_watch_streams", "gauge", "Open WatchJob streams.");
    sample(b, "saturn_watch_streams", (double)c->nwatchers);

    const struct coord_stats *st = &c->stats;
    family(b, "saturn_ps_pull_bytes_total", "counter",
           "Parameter and BN-statistics bytes sent in Pull replies, all jobs.");
    sample(b, "saturn_ps_pull_bytes_total", (double)st->pull_bytes);
    family(b, "saturn_ps_push_bytes_total", "counter",
           "Gradient and BN-statistics bytes received in Push requests, all jobs.");
    sample(b, "saturn_ps_push_bytes_total", (double)st->push_bytes);
    histogram(b, "saturn_ps_pull_duration_seconds",
              "Time from a Pull's arrival to its reply, time parked waiting for other ranks "
              "included.",
              &st->pull_s);
    histogram(b, "saturn_ps_push_duration_seconds",
              "Time saturnd spends handling a Push (applying a step and writing a checkpoint "
              "included).",
              &st->push_s);

    job_series(c, b);
}
