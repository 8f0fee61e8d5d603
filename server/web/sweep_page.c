/* sweep_page.c - the dashboard's page of one sweep, GET /sweeps/<id>: the
 * jobs whose spec has that "sweep" id (oldest first), one table row each
 * (its name is its grid point when `saturn sweep` submitted it: state,
 * epoch, step, test accuracy, images/s, wall time), and one SVG chart,
 * test accuracy vs epoch, with a line per job in the colour of its row.
 *
 * Stable ids for scrapers: <table id="sweep">, <svg id="sweep-chart">,
 * one <path class="series" id="sweep-chart-<job id>"> per job with points.
 * Everything a user wrote (names, reasons) goes through webfmt_html.
 */
#include "dashboard.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chart.h"
#include "webfmt.h"

#include "../../common/util/xalloc.h"

#define SWEEP_PAGE_JOBS 256 /* jobs shown (the CLI submits at most as many) */


struct sweep_data {
    struct job *jobs[SWEEP_PAGE_JOBS];
    struct ptvec test[SWEEP_PAGE_JOBS]; /* (epoch, test accuracy %) */
    int n;
    size_t rows; /* metrics rows read, over all the jobs */
    bool truncated;
};

struct acc_reader {
    struct sweep_data *d;
    struct ptvec *v;
};

static int on_metric(void *arg, const struct store_metric *m)
{
    struct acc_reader *r = arg;
    if (++r->d->rows > HTTP_CHART_ROWS) {
        r->d->truncated = true;
        return 1;
    }
    if (strcmp(m->kind, "epoch") == 0 && isfinite(m->test_acc))
        ptvec_push(r->v, (double)m->epoch, 100.0 * m->test_acc, true);
    return 0;
}

/* Finds the sweep's jobs and reads their epochs' test accuracies. */
static int sweep_load(struct coord *c, const char *id, struct sweep_data *d)
{
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < c->njobs && d->n < SWEEP_PAGE_JOBS; i++)
        if (strcmp(coord_job_sweep(c->jobs[i]), id) == 0)
            d->jobs[d->n++] = c->jobs[i];
    int rc = 0;
    for (int i = 0; i < d->n && rc == 0 && !d->truncated; i++) {
        struct acc_reader r = {d, &d->test[i]};
        rc = store_metrics_load(c->store, d->jobs[i]->id, on_metric, &r);
        if (rc > 0)
            rc = 0; /* stopped at HTTP_CHART_ROWS */
        if (rc == 0)
            rc = d->test[i].err;
        ptvec_sort(&d->test[i]);
    }
    return rc;
}

static void sweep_data_free(struct sweep_data *d)
{
    for (int i = 0; i < d->n; i++)
        sat_free(d->test[i].p);
}

static void sweep_table(const struct sweep_data *d, struct strbuf *b)
{
    int64_t now = coord_now_ms();
    strbuf_printf(b, "<h2>Jobs<span class=\"count\">%d</span></h2>\n", d->n);
    strbuf_puts(b, "<div class=\"panel\"><table id=\"sweep\"><thead><tr><th></th><th>ID</th>"
                   "<th>Grid point (name)</th><th>State</th><th class=\"num\">Epoch</th>"
                   "<th class=\"num\">Step</th><th class=\"num\">Test acc.</th>"
                   "<th class=\"num\">Images/s</th><th class=\"num\">Wall time</th><th>Reason</th>"
                   "</tr></thead><tbody>\n");
    for (int i = 0; i < d->n; i++) {
        const struct job *j = d->jobs[i];
        const struct job_progress *p = &j->prog;
        strbuf_printf(b,
                      "<tr><td><span style=\"display:inline-block;width:14px;height:4px;"
                      "background:%s\"></span></td><td class=\"mono\">",
                      chart_color((size_t)i));
        dashboard__job_link(b, j->id);
        strbuf_puts(b, "</td><td class=\"name\">");
        webfmt_html(b, j->name);
        strbuf_puts(b, "</td><td>");
        dashboard__badge(b, coord_job_state_name(j->state));
        strbuf_puts(b, "</td>");
        if (p->valid) {
            strbuf_printf(b,
                          "<td class=\"num\">%" PRIu32 " / %" PRIu32
                          "</td><td class=\"num\">%" PRIu64 " / %" PRIu64 "</td>",
                          p->epoch, p->epochs, p->step, p->total_steps);
            if (p->test_epoch > 0)
                strbuf_printf(b, "<td class=\"num\">%.2f%%</td>", 100.0 * p->test_acc);
            else
                strbuf_puts(b, "<td class=\"num\">-</td>");
            strbuf_printf(b, "<td class=\"num\">%.0f</td>", p->images_per_s);
        } else {
            strbuf_puts(b, "<td class=\"num\">-</td><td class=\"num\">-</td>"
                           "<td class=\"num\">-</td><td class=\"num\">-</td>");
        }
        char wall[48] = "-";
        if (j->start_ms > 0)
            dashboard__fmt_duration(wall, sizeof wall,
                                    (double)((j->end_ms > 0 ? j->end_ms : now) - j->start_ms) /
                                        1000.0);
        strbuf_printf(b, "<td class=\"num\">%s</td><td class=\"wrap\">", wall);
        webfmt_html(b, j->reason);
        strbuf_puts(b, "</td></tr>\n");
    }
    strbuf_puts(b, "</tbody></table></div>\n");
}

static void sweep_chart(const struct sweep_data *d, struct strbuf *b)
{
    struct series *s = sat_calloc(d->n ? (size_t)d->n : 1, sizeof *s);
    if (!s) {
        strbuf_puts(b, "<p class=\"reason\">Out of memory drawing the chart.</p>\n");
        return;
    }
    uint32_t epochs = 0;
    int ns = 0;
    for (int i = 0; i < d->n; i++) {
        const struct job *j = d->jobs[i];
        if (j->prog.valid && j->prog.epochs > epochs)
            epochs = j->prog.epochs;
        if (d->test[i].n == 0)
            continue;
        s[ns++] = (struct series){.key = j->id,
                                  .label = j->id,
                                  .color = chart_color((size_t)i),
                                  .v = &d->test[i],
                                  .dots = d->test[i].n <= 30};
    }
    struct chart ch = {.id = "sweep-chart",
                       .title = "Test accuracy vs epoch",
                       .xlabel = "epoch",
                       .ylabel = "test accuracy (%)",
                       .xmin = 1,
                       .xmax = epochs ? (double)epochs : NAN,
                       .xint = true,
                       .ysuffix = "%"};
    chart_svg(b, &ch, s, ns, false);
    sat_free(s);
}

int dashboard_sweep(struct coord *c, const char *id, struct strbuf *b)
{
    struct sweep_data *d = sat_malloc(sizeof *d);
    if (!d) {
        strbuf_puts(b, "out of memory\n");
        return SAT_ENOMEM;
    }
    int rc = sweep_load(c, id, d);
    bool live = false;
    for (int i = 0; i < d->n; i++)
        live |= !coord_job_terminal(d->jobs[i]->state);
    int refresh = live ? 5 : 0;
    char title[SPEC_SWEEP_LEN + 16];
    snprintf(title, sizeof title, "Sweep %s", id);
    dashboard__page_begin(c, b, d->n ? title : "No such sweep", refresh);
    strbuf_puts(b, "<div class=\"crumb\"><a href=\"/\">&larr; All jobs</a></div>\n");
    if (d->n == 0) {
        strbuf_puts(b, "<h1>404: no such sweep</h1>\n<p class=\"reason\">saturnd has no job in "
                       "sweep &ldquo;");
        webfmt_html(b, id);
        strbuf_puts(b, "&rdquo;.</p>\n");
        dashboard__page_end(b, 0);
        sweep_data_free(d);
        sat_free(d);
        return SAT_ENOENT;
    }
    strbuf_puts(b, "<h1>Sweep <span class=\"mono\" id=\"sweep-id\">");
    webfmt_html(b, id);
    strbuf_puts(b, "</span></h1>\n");
    if (rc != 0)
        strbuf_printf(b, "<p class=\"reason\">The metrics could not be read (%s).</p>\n",
                      sat_strerror(rc));
    else if (d->truncated)
        strbuf_printf(b, "<p class=\"reason\">The chart shows the first %u metrics rows.</p>\n",
                      (unsigned)HTTP_CHART_ROWS);
    sweep_table(d, b);
    strbuf_puts(b, "<h2>Training</h2>\n<div class=\"charts\"><div class=\"chart-box\">\n");
    sweep_chart(d, b);
    strbuf_puts(b, "</div></div>\n<p class=\"reason\">The table of final metrics by grid point "
                   "(mean and spread over seeds): <span class=\"mono\">saturn sweep status ");
    webfmt_html(b, id);
    strbuf_puts(b, "</span></p>\n");
    dashboard__page_end(b, refresh);
    sweep_data_free(d);
    sat_free(d);
    return rc;
}
