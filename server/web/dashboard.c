/* dashboard.c - saturnd's HTML dashboard: GET / (jobs and workers) and
 * GET /jobs/<id> (one job's facts, charts and quantizers), with the charts
 * drawn here as inline SVG (also served alone as /jobs/<id>/loss.svg and
 * /jobs/<id>/accuracy.svg).
 *
 * No JavaScript and nothing from elsewhere: one inline style sheet, and
 * pages that refresh themselves every few seconds while something runs.
 * Everything a user wrote (job names, reasons, worker names, peers) goes
 * through webfmt_html. The charts read the job's rows of the metrics table
 * (store_metrics_load): the loss of every report window, averaged over the
 * ranks that reported at the same step, and the epoch rows' mean loss and
 * train / test accuracy. Element ids and classes are stable (tests and
 * users' scrapers find them): <svg id="loss-chart" class="chart">,
 * <svg id="accuracy-chart" class="chart">, one <path class="series"
 * id="<chart>-<series>"> per series, <table id="jobs">, <table id="workers">,
 * <table id="quant">.
 */
#include "dashboard.h"
#include "../jobs.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chart.h"
#include "webfmt.h"

#include "../../common/util/xalloc.h"

/* ==== page frame =========================================================== */

static const char page_css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0969da}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f6f8fa;color:var(--fg);"
    "font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}"
    "a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}"
    "header{background:#0d1f33;color:#fff;padding:10px 24px;display:flex;align-items:center;"
    "gap:18px}"
    "header .brand{color:#fff;font-weight:700;font-size:18px;letter-spacing:.02em}"
    "header .meta{color:#9fb3c8;font-size:13px}header nav{margin-left:auto;display:flex;gap:16px}"
    "header nav a{color:#cfe0f3;font-size:13px}"
    "main{max-width:1240px;margin:0 auto;padding:20px 24px 40px}"
    "h1{font-size:22px;margin:4px 0 6px;display:flex;align-items:center;gap:12px;"
    "flex-wrap:wrap}"
    "h1 .name{color:var(--muted);font-weight:400}"
    "h2{font-size:15px;margin:28px 0 10px;color:var(--fg)}"
    "h2 .count{color:var(--muted);font-weight:400;font-size:13px;margin-left:6px}"
    ".crumb{font-size:13px;margin-bottom:6px}"
    ".reason{color:var(--muted);margin:0 0 14px;max-width:100ch;overflow-wrap:anywhere}"
    ".cards{display:flex;gap:12px;flex-wrap:wrap}"
    ".card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;"
    "min-width:120px}"
    ".card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}"
    ".card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}"
    ".panel{background:#fff;border:1px solid var(--line);border-radius:8px;overflow:auto}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{padding:7px 10px;text-align:left;border-bottom:1px solid #eef1f4;"
    "white-space:nowrap}"
    "tr:last-child td{border-bottom:0}"
    "th{background:var(--soft);color:var(--muted);font-size:12px;font-weight:600;"
    "text-transform:uppercase;letter-spacing:.04em}"
    "tbody tr:hover{background:#f9fbfd}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.wrap{white-space:normal;overflow-wrap:anywhere}"
    ".mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}"
    "h1 .mono{font-size:inherit}"
    ".empty{color:var(--muted);padding:14px 12px}"
    "td.name{max-width:280px;overflow:hidden;text-overflow:ellipsis}"
    ".badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;"
    "font-weight:600;line-height:20px}"
    ".s-queued{background:#eef1f4;color:#59636e}.s-running{background:#ddf4ff;color:#0550ae}"
    ".s-succeeded{background:#dafbe1;color:#116329}.s-failed{background:#ffebe9;color:#a40e26}"
    ".s-cancelled{background:#fff8c5;color:#7d4e00}.s-idle{background:#eef1f4;color:#3d4a57}"
    ".s-assigned{background:#fbefff;color:#6e40c9}.s-busy{background:#ddf4ff;color:#0550ae}"
    ".s-lost{background:#ffebe9;color:#a40e26}.s-gone{background:#f6f8fa;color:#818b98}"
    ".bar{display:inline-block;width:64px;height:6px;background:#eef1f4;border-radius:3px;"
    "vertical-align:middle;margin-right:8px;overflow:hidden}"
    ".bar span{display:block;height:100%;background:var(--accent)}"
    ".facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:0;"
    "background:#fff;border:1px solid var(--line);border-radius:8px;margin:0}"
    ".facts div{padding:8px 14px;border-bottom:1px solid #eef1f4}"
    ".facts dt{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}"
    ".facts dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}"
    ".facts .wide{grid-column:span 2}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}"
    ".chart-box{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px}"
    ".chart-box svg{display:block;width:100%;height:auto}"
    "footer{color:var(--muted);font-size:12px;margin-top:28px}";

void dashboard__page_begin(struct coord *c, struct strbuf *b, const char *title, int refresh_s)
{
    (void)c;
    strbuf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if (refresh_s > 0)
        strbuf_printf(b, "<meta http-equiv=\"refresh\" content=\"%d\">\n", refresh_s);
    strbuf_puts(b, "<title>");
    webfmt_html(b, title);
    strbuf_printf(b, " - saturnd</title>\n<style>%s</style></head>\n<body>\n", page_css);
    strbuf_printf(b,
                  "<header><a class=\"brand\" href=\"/\">Saturn</a>"
                  "<span class=\"meta\">saturnd %s</span>"
                  "<nav><a href=\"/\">Jobs &amp; workers</a><a href=\"/metrics\">Metrics</a>"
                  "<a href=\"/healthz\">Health</a></nav></header>\n<main>\n",
                  SATURN_VERSION);
}

void dashboard__page_end(struct strbuf *b, int refresh_s)
{
    char now[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S UTC", &tm);
    strbuf_printf(b, "<footer>Times are UTC. Rendered by saturnd at %s", now);
    if (refresh_s > 0)
        strbuf_printf(b, "; refreshes every %d s", refresh_s);
    strbuf_puts(b, ".</footer>\n</main>\n</body></html>\n");
}

/* ==== small formatters ===================================================== */

static void fmt_time(char *buf, size_t cap, int64_t ms)
{
    if (ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* A table cell's time: the time of day within the last 24 hours, else the
 * date (the full time goes in a title attribute). */
static void fmt_time_short(char *buf, size_t cap, int64_t ms, int64_t now_ms)
{
    if (ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, now_ms - ms < 86400000 ? "%H:%M:%S" : "%Y-%m-%d", &tm);
}

void dashboard__fmt_duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0)) {
        snprintf(buf, cap, "-");
        return;
    }
    long v = (long)(s + 0.5);
    if (v < 60)
        snprintf(buf, cap, "%ld s", v);
    else if (v < 3600)
        snprintf(buf, cap, "%ld min %02ld s", v / 60, v % 60);
    else if (v < 86400)
        snprintf(buf, cap, "%ld h %02ld min", v / 3600, v / 60 % 60);
    else
        snprintf(buf, cap, "%ld d %02ld h", v / 86400, v / 3600 % 24);
}

void dashboard__badge(struct strbuf *b, const char *state)
{
    strbuf_printf(b, "<span class=\"badge s-%s\">%s</span>", state, state);
}

void dashboard__job_link(struct strbuf *b, const char *id)
{
    strbuf_puts(b, "<a href=\"/jobs/");
    webfmt_html(b, id);
    strbuf_puts(b, "\">");
    webfmt_html(b, id);
    strbuf_puts(b, "</a>");
}

/* ==== GET / ================================================================ */

static void card(struct strbuf *b, const char *k, size_t v)
{
    strbuf_printf(
        b, "<div class=\"card\"><div class=\"v\">%zu</div><div class=\"k\">%s</div></div>", v, k);
}

static void jobs_table(struct coord *c, struct strbuf *b)
{
    size_t shown = c->njobs < HTTP_DASHBOARD_JOBS ? c->njobs : HTTP_DASHBOARD_JOBS;
    int64_t now = coord_now_ms();
    strbuf_printf(b, "<h2>Jobs<span class=\"count\">%zu", c->njobs);
    if (shown < c->njobs)
        strbuf_printf(b, ", newest %zu shown", shown);
    strbuf_puts(b, "</span></h2>\n<div class=\"panel\"><table id=\"jobs\"><thead><tr>"
                   "<th>ID</th><th>Name</th><th>Model</th><th>State</th><th>Epoch</th>"
                   "<th class=\"num\">Step</th><th class=\"num\">Loss</th>"
                   "<th class=\"num\">Test acc</th><th class=\"num\">Images/s</th>"
                   "<th class=\"num\">Workers</th><th>Submitted</th></tr></thead><tbody>\n");
    if (c->njobs == 0)
        strbuf_puts(b, "<tr><td class=\"empty\" colspan=\"11\">No jobs yet: "
                       "<span class=\"mono\">saturn submit SPEC.json</span></td></tr>\n");
    for (size_t k = 0; k < shown; k++) {
        struct job *j = c->jobs[c->njobs - 1 - k]; /* newest first */
        const struct job_progress *p = &j->prog;
        char t[64];
        strbuf_puts(b, "<tr><td class=\"mono\">");
        dashboard__job_link(b, j->id);
        strbuf_puts(b, "</td><td class=\"name\" title=\"");
        webfmt_html(b, j->name);
        strbuf_puts(b, "\">");
        webfmt_html(b, j->name);
        strbuf_puts(b, "</td><td>");
        webfmt_html(b, j->model);
        strbuf_puts(b, "</td><td>");
        dashboard__badge(b, coord_job_state_name(j->state));
        strbuf_puts(b, "</td>");
        if (p->valid) {
            double frac = p->total_steps ? (double)p->step / (double)p->total_steps : 0;
            if (frac > 1)
                frac = 1;
            strbuf_printf(b,
                          "<td><span class=\"bar\"><span style=\"width:%.1f%%\"></span></span>"
                          "%" PRIu32 " / %" PRIu32 "</td>",
                          100.0 * frac, p->epoch, p->epochs);
            strbuf_printf(b, "<td class=\"num\">%" PRIu64 " / %" PRIu64 "</td>", p->step,
                          p->total_steps);
            strbuf_printf(b, "<td class=\"num\">%.4f</td>", p->loss);
            if (p->test_acc >= 0)
                strbuf_printf(b, "<td class=\"num\">%.2f%%</td>", 100.0 * p->test_acc);
            else
                strbuf_puts(b, "<td class=\"num\">-</td>");
            strbuf_printf(b, "<td class=\"num\">%.0f</td>", p->images_per_s);
        } else {
            strbuf_puts(b, "<td>-</td><td class=\"num\">-</td><td class=\"num\">-</td>"
                           "<td class=\"num\">-</td><td class=\"num\">-</td>");
        }
        /* The gang size; the worker ids (rank order) on hover. */
        char ids[COORD_MAX_GANG * COORD_ID_LEN], ts[32];
        coord_job_worker_ids(j, ids, sizeof ids);
        strbuf_puts(b, "<td class=\"num\" title=\"");
        webfmt_html(b, ids);
        strbuf_printf(b, "\">%d</td>", j->workers);
        fmt_time(t, sizeof t, j->submit_ms);
        fmt_time_short(ts, sizeof ts, j->submit_ms, now);
        strbuf_printf(b, "<td title=\"%s\">%s</td></tr>\n", t, ts);
    }
    strbuf_puts(b, "</tbody></table></div>\n");
}

static void workers_table(struct coord *c, struct strbuf *b)
{
    int64_t now = coord_now_ms();
    strbuf_printf(b, "<h2>Workers<span class=\"count\">%zu live, %zu listed</span></h2>\n",
                  c->nlive, c->nworkers);
    strbuf_puts(b, "<div class=\"panel\"><table id=\"workers\"><thead><tr>"
                   "<th>ID</th><th>Name</th><th>State</th><th>Job</th><th class=\"num\">Rank</th>"
                   "<th class=\"num\">Threads</th><th>Version</th><th>Peer</th>"
                   "<th>Last seen</th></tr></thead><tbody>\n");
    if (c->nworkers == 0)
        strbuf_puts(b, "<tr><td class=\"empty\" colspan=\"9\">No workers have registered: "
                       "<span class=\"mono\">saturn-worker --coordinator HOST:PORT</span>"
                       "</td></tr>\n");
    for (size_t i = 0; i < c->nworkers; i++) {
        const struct worker *w = c->workers[i];
        strbuf_puts(b, "<tr><td class=\"mono\">");
        webfmt_html(b, w->id);
        strbuf_puts(b, "</td><td>");
        webfmt_html(b, w->name);
        strbuf_puts(b, "</td><td>");
        dashboard__badge(b, coord_worker_state_name(w->state));
        strbuf_puts(b, "</td><td class=\"mono\">");
        if (w->job) {
            dashboard__job_link(b, w->job->id);
            strbuf_printf(b, "</td><td class=\"num\">%" PRIu32 "</td>", w->rank);
        } else {
            strbuf_puts(b, "-</td><td class=\"num\">-</td>");
        }
        strbuf_printf(b, "<td class=\"num\">%" PRIu32 "</td><td class=\"mono\">", w->threads);
        webfmt_html(b, w->version);
        strbuf_puts(b, "</td><td class=\"mono\">");
        webfmt_html(b, w->peer);
        char ago[48], t[64];
        dashboard__fmt_duration(ago, sizeof ago, (double)(now - w->last_seen_ms) / 1000.0);
        fmt_time(t, sizeof t, w->last_seen_ms);
        strbuf_printf(b, "</td><td title=\"%s\">%s ago</td></tr>\n", t, ago);
    }
    strbuf_puts(b, "</tbody></table></div>\n");
}

void dashboard_index(struct coord *c, struct strbuf *b)
{
    int refresh = 5;
    dashboard__page_begin(c, b, "Jobs and workers", refresh);
    size_t nj[JOB_RECOVERING + 1] = {0}, nw[6] = {0};
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs[i]->state >= JOB_QUEUED && c->jobs[i]->state <= JOB_RECOVERING)
            nj[c->jobs[i]->state]++;
    for (size_t i = 0; i < c->nworkers; i++)
        if (c->workers[i]->state >= WORKER_IDLE && c->workers[i]->state <= WORKER_GONE)
            nw[c->workers[i]->state]++;
    strbuf_puts(b, "<div class=\"cards\">");
    card(b, "running", nj[JOB_RUNNING] + nj[JOB_RECOVERING]);
    card(b, "queued", nj[JOB_QUEUED]);
    card(b, "succeeded", nj[JOB_SUCCEEDED]);
    card(b, "failed", nj[JOB_FAILED]);
    card(b, "cancelled", nj[JOB_CANCELLED]);
    card(b, "idle workers", nw[WORKER_IDLE]);
    card(b, "busy workers", nw[WORKER_ASSIGNED] + nw[WORKER_BUSY]);
    strbuf_puts(b, "</div>\n");
    jobs_table(c, b);
    workers_table(c, b);
    dashboard__page_end(b, refresh);
}

/* ==== chart data =========================================================== */

struct chart_data {
    struct ptvec loss;    /* (step, loss): report windows, mean over ranks */
    struct ptvec ep_loss; /* (step at the epoch's end, mean training loss of the epoch) */
    struct ptvec train;   /* (epoch, train accuracy %) */
    struct ptvec test;    /* (epoch, test accuracy %) */
    size_t rows;
    bool truncated;
};

static int on_metric(void *arg, const struct store_metric *m)
{
    struct chart_data *d = arg;
    if (++d->rows > HTTP_CHART_ROWS) {
        d->truncated = true;
        return 1;
    }
    if (strcmp(m->kind, "step") == 0) {
        if (m->rank >= 0 && isfinite(m->loss))
            ptvec_push(&d->loss, (double)m->step, m->loss, false);
    } else if (strcmp(m->kind, "epoch") == 0) {
        if (isfinite(m->loss))
            ptvec_push(&d->ep_loss, (double)m->step, m->loss, true);
        if (isfinite(m->train_acc))
            ptvec_push(&d->train, (double)m->epoch, 100.0 * m->train_acc, true);
        if (isfinite(m->test_acc))
            ptvec_push(&d->test, (double)m->epoch, 100.0 * m->test_acc, true);
    }
    return 0;
}

static void chart_data_free(struct chart_data *d)
{
    sat_free(d->loss.p);
    sat_free(d->ep_loss.p);
    sat_free(d->train.p);
    sat_free(d->test.p);
    memset(d, 0, sizeof *d);
}

/* Reads j's rows. Returns 0 or SAT_E* (the store, or memory). */
static int chart_data_load(struct coord *c, const struct job *j, struct chart_data *d)
{
    memset(d, 0, sizeof *d);
    int rc = store_metrics_load(c->store, j->id, on_metric, d);
    if (rc > 0)
        rc = 0; /* stopped at HTTP_CHART_ROWS */
    if (rc == 0)
        rc = d->loss.err      ? d->loss.err
             : d->ep_loss.err ? d->ep_loss.err
             : d->train.err   ? d->train.err
                              : d->test.err;
    ptvec_merge_x(&d->loss);
    ptvec_thin(&d->loss, HTTP_CHART_POINTS);
    ptvec_sort(&d->ep_loss);
    ptvec_sort(&d->train);
    ptvec_sort(&d->test);
    return rc;
}

/* ==== SVG charts =========================================================== */

static void chart_loss(struct strbuf *b, const struct job *j, const struct chart_data *d,
                       bool standalone)
{
    struct chart ch = {.id = "loss-chart",
                       .title = "Training loss vs step",
                       .xlabel = "global step",
                       .ylabel = "loss",
                       .xmin = 0,
                       .xmax = j->prog.total_steps ? (double)j->prog.total_steps : NAN,
                       .ysuffix = ""};
    struct series s[] = {
        {"window", "per report window (mean over ranks)", "#0969da", &d->loss, d->loss.n <= 30,
         false},
        {"epoch", "mean over the epoch", "#bc4c00", &d->ep_loss, true, true},
    };
    chart_svg(b, &ch, s, 2, standalone);
}

static void chart_accuracy(struct strbuf *b, const struct job *j, const struct chart_data *d,
                           bool standalone)
{
    struct chart ch = {.id = "accuracy-chart",
                       .title = "Accuracy vs epoch",
                       .xlabel = "epoch",
                       .ylabel = "accuracy (%)",
                       .xmin = 1,
                       .xmax = j->prog.epochs ? (double)j->prog.epochs : NAN,
                       .xint = true,
                       .ysuffix = "%"};
    struct series s[] = {
        {"train", "train", "#0969da", &d->train, true, false},
        {"test", "test", "#1a7f37", &d->test, true, false},
    };
    chart_svg(b, &ch, s, 2, standalone);
}

int dashboard_chart_svg(struct coord *c, struct job *j, enum dashboard_chart which,
                        struct strbuf *b)
{
    struct chart_data d;
    int rc = chart_data_load(c, j, &d);
    if (which == DASHBOARD_LOSS)
        chart_loss(b, j, &d, true);
    else
        chart_accuracy(b, j, &d, true);
    chart_data_free(&d);
    return rc;
}

/* ==== GET /jobs/<id> ======================================================= */

static void fact(struct strbuf *b, const char *k, const char *v_html)
{
    strbuf_printf(b, "<div><dt>%s</dt><dd>%s</dd></div>\n", k, v_html);
}

static void fact_text(struct strbuf *b, const char *k, const char *v, bool wide)
{
    strbuf_printf(b, "<div%s><dt>%s</dt><dd>", wide ? " class=\"wide\"" : "", k);
    webfmt_html(b, v && *v ? v : "-");
    strbuf_puts(b, "</dd></div>\n");
}

static void job_facts(struct coord *c, struct job *j, struct strbuf *b)
{
    (void)c;
    const struct job_progress *p = &j->prog;
    char v[1200], t[64];
    strbuf_puts(b, "<dl class=\"facts\" id=\"facts\">\n");
    fact_text(b, "Model", j->model, false);
    fact_text(b, "Data set", j->dataset, false);
    fact_text(b, "Consistency", j->consistency, false);
    if (*coord_job_sweep(j)) {
        strbuf_puts(b, "<div><dt>Sweep</dt><dd class=\"mono\"><a href=\"/sweeps/");
        webfmt_html(b, coord_job_sweep(j));
        strbuf_puts(b, "\">");
        webfmt_html(b, coord_job_sweep(j));
        strbuf_puts(b, "</a></dd></div>\n");
    }
    snprintf(v, sizeof v, "%d", j->workers);
    fact(b, "Workers (gang)", v);
    snprintf(v, sizeof v, "%d", j->priority);
    fact(b, "Priority", v);
    snprintf(v, sizeof v, "%" PRIu32, j->attempt);
    fact(b, "Attempt", v);
    fmt_time(t, sizeof t, j->submit_ms);
    fact(b, "Submitted", t);
    fmt_time(t, sizeof t, j->start_ms);
    fact(b, "Started", t);
    fmt_time(t, sizeof t, j->end_ms);
    fact(b, "Ended", t);
    if (j->start_ms > 0) {
        int64_t end = j->end_ms > 0 ? j->end_ms : coord_now_ms();
        dashboard__fmt_duration(v, sizeof v, (double)(end - j->start_ms) / 1000.0);
        fact(b, j->end_ms > 0 ? "Took" : "Running for", v);
    }
    if (p->valid) {
        snprintf(v, sizeof v, "%" PRIu32 " / %" PRIu32, p->epoch, p->epochs);
        fact(b, "Epoch", v);
        snprintf(v, sizeof v, "%" PRIu64 " / %" PRIu64, p->step, p->total_steps);
        fact(b, "Step", v);
        snprintf(v, sizeof v, "%.4f", p->loss);
        fact(b, "Loss (latest window)", v);
        snprintf(v, sizeof v, "%.2f%%", 100.0 * p->train_acc);
        fact(b, "Train accuracy", v);
        if (p->test_acc >= 0)
            snprintf(v, sizeof v, "%.2f%% (epoch %" PRIu32 ")", 100.0 * p->test_acc, p->test_epoch);
        else
            snprintf(v, sizeof v, "-");
        fact(b, "Test accuracy", v);
        snprintf(v, sizeof v, "%.0f", p->images_per_s);
        fact(b, "Images/s", v);
        snprintf(v, sizeof v, "%.4g", p->lr);
        fact(b, "Learning rate", v);
        snprintf(v, sizeof v, "%" PRIu64, p->skipped);
        fact(b, "Skipped steps", v);
        if (coord_job_training(j->state) && p->eta_s >= 0) {
            dashboard__fmt_duration(v, sizeof v, p->eta_s);
            fact(b, "ETA", v);
        }
        fact_text(b, "Parameter digest", p->digest, false);
    }
    strbuf_puts(b, "<div><dt>Workers by rank</dt><dd class=\"mono\">");
    for (int i = 0; i < j->nranks; i++) {
        strbuf_puts(b, i ? ", " : "");
        webfmt_html(b, j->rank_ids[i]);
    }
    strbuf_puts(b, j->nranks ? "</dd></div>\n" : "-</dd></div>\n");
    if (p->valid && p->model_path[0])
        fact_text(b, "Model file", p->model_path, true);
    strbuf_puts(b, "</dl>\n");
}

static void quant_table(const struct job *j, struct strbuf *b)
{
    static const char *const quant_label[JQ_NKINDS] = {
        [JQ_ALPHA] = "PACT clipping level &alpha;",
        [JQ_SAT] = "SAT weight scale",
        [JQ_WVAR] = "weight variance (last layer)",
    };
    const struct job_progress *p = &j->prog;
    strbuf_printf(b, "<h2>Quantizers<span class=\"count\">%d</span></h2>\n", p->nquant);
    strbuf_puts(b, "<div class=\"panel\"><table id=\"quant\"><thead><tr><th>Layer</th>"
                   "<th>Quantizer</th><th class=\"num\">Value</th></tr></thead><tbody>\n");
    if (p->nquant == 0)
        strbuf_puts(b, "<tr><td class=\"empty\" colspan=\"3\">No quantizer state yet (or a "
                       "full-precision model).</td></tr>\n");
    for (int i = 0; i < p->nquant; i++) {
        const struct job_quant *q = &p->quant[i];
        strbuf_puts(b, "<tr><td class=\"mono\">");
        webfmt_html(b, q->name);
        strbuf_printf(b, "</td><td>%s</td><td class=\"num\">%.5g</td></tr>\n",
                      quant_label[q->kind], q->value);
    }
    strbuf_puts(b, "</tbody></table></div>\n");
}

int dashboard_job(struct coord *c, struct job *j, struct strbuf *b)
{
    bool live = coord_job_training(j->state) || j->state == JOB_QUEUED;
    int refresh = live ? 5 : 0;
    char title[COORD_ID_LEN + SPEC_NAME_LEN + 4];
    snprintf(title, sizeof title, "%s %s", j->id, j->name);
    dashboard__page_begin(c, b, title, refresh);
    strbuf_puts(b, "<div class=\"crumb\"><a href=\"/\">&larr; All jobs</a></div>\n<h1><span "
                   "class=\"mono\" id=\"job-id\">");
    webfmt_html(b, j->id);
    strbuf_puts(b, "</span><span class=\"name\">");
    webfmt_html(b, j->name);
    strbuf_puts(b, "</span>");
    dashboard__badge(b, coord_job_state_name(j->state));
    strbuf_puts(b, "</h1>\n<p class=\"reason\">");
    webfmt_html(b, j->reason[0] ? j->reason : "");
    strbuf_puts(b, "</p>\n");
    job_facts(c, j, b);

    struct chart_data d;
    int rc = chart_data_load(c, j, &d);
    strbuf_puts(b, "<h2>Training</h2>\n");
    if (rc != 0)
        strbuf_printf(b, "<p class=\"reason\">The metrics could not be read (%s).</p>\n",
                      sat_strerror(rc));
    else if (d.truncated)
        strbuf_printf(b, "<p class=\"reason\">Charts show the first %u metrics rows.</p>\n",
                      (unsigned)HTTP_CHART_ROWS);
    strbuf_puts(b, "<div class=\"charts\"><div class=\"chart-box\">\n");
    chart_loss(b, j, &d, false);
    strbuf_puts(b, "</div><div class=\"chart-box\">\n");
    chart_accuracy(b, j, &d, false);
    strbuf_puts(b, "</div></div>\n");
    strbuf_puts(b, "<p class=\"reason\">Standalone: <a href=\"/jobs/");
    webfmt_html(b, j->id);
    strbuf_puts(b, "/loss.svg\">loss.svg</a>, <a href=\"/jobs/");
    webfmt_html(b, j->id);
    strbuf_puts(b, "/accuracy.svg\">accuracy.svg</a></p>\n");
    chart_data_free(&d);

    quant_table(j, b);
    dashboard__page_end(b, refresh);
    return rc;
}

void dashboard_no_job(struct coord *c, const char *id, struct strbuf *b)
{
    dashboard__page_begin(c, b, "No such job", 0);
    strbuf_puts(b, "<div class=\"crumb\"><a href=\"/\">&larr; All jobs</a></div>\n"
                   "<h1>404: no such job</h1>\n<p class=\"reason\">saturnd has no job &ldquo;");
    webfmt_html(b, id);
    strbuf_puts(b, "&rdquo;.</p>\n");
    dashboard__page_end(b, 0);
}
