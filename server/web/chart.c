/* chart.c - SVG line charts for the dashboard (chart.h): point series
 * and one chart drawn from them. Pure: no coordinator, no I/O. */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webfmt.h"

#include "../../common/util/err.h"
#include "../../common/util/xalloc.h"

#define CH_W 560
#define CH_H 330
#define CH_L 60 /* plot area: left, right, top, bottom edges */
#define CH_R (CH_W - 20)
#define CH_T 62
#define CH_B (CH_H - 48)
#define CH_FONT "system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"

void ptvec_push(struct ptvec *v, double x, double y, bool replace)
{
    if (v->err)
        return;
    if (replace)
        for (size_t i = 0; i < v->n; i++)
            if (v->p[i].x == x) {
                v->p[i].y = y;
                return;
            }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct pt *p = sat_realloc(v->p, cap * sizeof *p);
        if (!p) {
            v->err = SAT_ENOMEM;
            return;
        }
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (struct pt){x, y};
}

static int pt_cmp(const void *a, const void *b)
{
    const struct pt *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : 0;
}


static const char *const palette[] = {"#0969da", "#1a7f37", "#bc4c00", "#8250df", "#cf222e",
                                      "#0a7d8c", "#9a6700", "#bf3989", "#57606a", "#116329"};

const char *chart_color(size_t i)
{
    return palette[i % (sizeof palette / sizeof palette[0])];
}

/* Sorts by x (an empty vector has no array: qsort must not see it). */
void ptvec_sort(struct ptvec *v)
{
    if (v->n > 1)
        qsort(v->p, v->n, sizeof *v->p, pt_cmp);
}

/* Sorts by x and merges points of equal x into their mean (the ranks'
 * windows that end at the same step). */
void ptvec_merge_x(struct ptvec *v)
{
    if (v->n < 2)
        return;
    ptvec_sort(v);
    size_t out = 0;
    for (size_t i = 0; i < v->n;) {
        size_t k = i;
        double sum = 0;
        while (k < v->n && v->p[k].x == v->p[i].x)
            sum += v->p[k++].y;
        v->p[out++] = (struct pt){v->p[i].x, sum / (double)(k - i)};
        i = k;
    }
    v->n = out;
}

/* At most `max` points: consecutive runs averaged in x and y. */
void ptvec_thin(struct ptvec *v, size_t max)
{
    if (v->n <= max || max == 0)
        return;
    size_t per = (v->n + max - 1) / max, out = 0;
    for (size_t i = 0; i < v->n; i += per) {
        size_t e = i + per < v->n ? i + per : v->n;
        double sx = 0, sy = 0;
        for (size_t k = i; k < e; k++) {
            sx += v->p[k].x;
            sy += v->p[k].y;
        }
        v->p[out++] = (struct pt){sx / (double)(e - i), sy / (double)(e - i)};
    }
    v->n = out;
}


static double map(double v, double lo, double hi, double a, double b)
{
    return hi > lo ? a + (v - lo) / (hi - lo) * (b - a) : (a + b) / 2;
}

void chart_svg(struct strbuf *b, const struct chart *ch, const struct series *s, int ns,
                      bool standalone)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    size_t npts = 0;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].v->n; i++) {
            const struct pt *p = &s[k].v->p[i];
            x0 = fmin(x0, p->x);
            x1 = fmax(x1, p->x);
            y0 = fmin(y0, p->y);
            y1 = fmax(y1, p->y);
            npts++;
        }
    if (!isnan(ch->xmin))
        x0 = fmin(x0, ch->xmin);
    if (!isnan(ch->xmax))
        x1 = fmax(x1, ch->xmax);
    if (npts == 0) {
        y0 = 0;
        y1 = 1;
    }
    struct webfmt_axis ax, ay;
    webfmt_axis_init(&ax, x0, x1, 7, ch->xint);
    webfmt_axis_init(&ay, y0, y1, 6, 0);

    if (standalone)
        strbuf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    strbuf_printf(b,
                  "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
                  "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" "
                  "aria-labelledby=\"%s-title\" font-family=\"%s\" font-size=\"12\">\n",
                  ch->id, CH_W, CH_H, CH_W, CH_H, ch->id, CH_FONT);
    strbuf_printf(b, "<title id=\"%s-title\">", ch->id);
    webfmt_html(b, ch->title);
    strbuf_puts(b, "</title>\n");
    strbuf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", CH_W, CH_H);
    strbuf_printf(b,
                  "<text class=\"chart-title\" x=\"%d\" y=\"24\" font-size=\"15\" "
                  "font-weight=\"600\" fill=\"#1f2328\">",
                  CH_L);
    webfmt_html(b, ch->title);
    strbuf_puts(b, "</text>\n");

    /* Grid and tick labels. */
    char lab[48];
    strbuf_puts(b, "<g class=\"grid\" stroke=\"#eef1f4\" stroke-width=\"1\">\n");
    for (int i = 0; i < ay.n; i++) {
        double y = map(ay.lo + i * ay.step, ay.lo, ay.hi, CH_B, CH_T);
        strbuf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", CH_L, y, CH_R, y);
    }
    for (int i = 0; i < ax.n; i++) {
        double x = map(ax.lo + i * ax.step, ax.lo, ax.hi, CH_L, CH_R);
        strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", x, CH_T, x, CH_B);
    }
    strbuf_puts(b, "</g>\n<g class=\"axis y-axis\" fill=\"#59636e\" text-anchor=\"end\">\n");
    for (int i = 0; i < ay.n; i++) {
        double v = ay.lo + i * ay.step;
        double y = map(v, ay.lo, ay.hi, CH_B, CH_T);
        webfmt_tick_label(lab, sizeof lab, v, ay.step);
        strbuf_printf(b, "<text x=\"%d\" y=\"%.1f\" dy=\"0.32em\">%s", CH_L - 8, y, lab);
        webfmt_html(b, ch->ysuffix);
        strbuf_puts(b, "</text>\n");
    }
    strbuf_puts(b, "</g>\n<g class=\"axis x-axis\" fill=\"#59636e\" text-anchor=\"middle\">\n");
    for (int i = 0; i < ax.n; i++) {
        double v = ax.lo + i * ax.step;
        double x = map(v, ax.lo, ax.hi, CH_L, CH_R);
        webfmt_tick_label(lab, sizeof lab, v, ax.step);
        strbuf_printf(b, "<text x=\"%.1f\" y=\"%d\">%s</text>\n", x, CH_B + 18, lab);
    }
    strbuf_puts(b, "</g>\n");
    strbuf_printf(b,
                  "<path class=\"frame\" d=\"M%d %dV%dH%d\" fill=\"none\" stroke=\"#8c959f\" "
                  "stroke-width=\"1\"/>\n",
                  CH_L, CH_T, CH_B, CH_R);
    strbuf_printf(b,
                  "<text class=\"axis-label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                  "fill=\"#1f2328\">",
                  (CH_L + CH_R) / 2, CH_H - 12);
    webfmt_html(b, ch->xlabel);
    strbuf_puts(b, "</text>\n");
    strbuf_printf(b,
                  "<text class=\"axis-label\" transform=\"translate(16 %d) rotate(-90)\" "
                  "text-anchor=\"middle\" fill=\"#1f2328\">",
                  (CH_T + CH_B) / 2);
    webfmt_html(b, ch->ylabel);
    strbuf_puts(b, "</text>\n");

    /* Series. */
    for (int k = 0; k < ns; k++) {
        const struct ptvec *v = s[k].v;
        if (v->n == 0)
            continue;
        strbuf_printf(b, "<path class=\"series\" id=\"%s-", ch->id);
        webfmt_html(b, s[k].key);
        strbuf_printf(b,
                      "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                      "stroke-linejoin=\"round\" stroke-linecap=\"round\"%s d=\"",
                      s[k].color, s[k].dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < v->n; i++)
            strbuf_printf(b, "%s%.1f %.1f", i ? " L" : "M",
                          map(v->p[i].x, ax.lo, ax.hi, CH_L, CH_R),
                          map(v->p[i].y, ay.lo, ay.hi, CH_B, CH_T));
        strbuf_puts(b, "\"/>\n");
        if (s[k].dots || v->n == 1) {
            strbuf_printf(b,
                          "<g class=\"dots\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1.5\">",
                          s[k].color);
            for (size_t i = 0; i < v->n; i++)
                strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>",
                              map(v->p[i].x, ax.lo, ax.hi, CH_L, CH_R),
                              map(v->p[i].y, ay.lo, ay.hi, CH_B, CH_T));
            strbuf_puts(b, "</g>\n");
        }
    }
    if (npts == 0)
        strbuf_printf(b,
                      "<text class=\"no-data\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                      "fill=\"#59636e\" font-size=\"14\">No data yet</text>\n",
                      (CH_L + CH_R) / 2, (CH_T + CH_B) / 2);

    /* Legend: a row under the title, a swatch and a label per series
     * (~6.6 px per character of the 12 px font). */
    double x = CH_L;
    strbuf_puts(b, "<g class=\"legend\" fill=\"#1f2328\">\n");
    for (int k = 0; k < ns; k++) {
        strbuf_printf(b,
                      "<line x1=\"%.1f\" y1=\"42\" x2=\"%.1f\" y2=\"42\" stroke=\"%s\" "
                      "stroke-width=\"2.5\"%s/>",
                      x, x + 22, s[k].color, s[k].dashed ? " stroke-dasharray=\"5 3\"" : "");
        if (s[k].dots)
            strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"42\" r=\"3.5\" fill=\"%s\"/>", x + 11,
                          s[k].color);
        strbuf_printf(b, "<text x=\"%.1f\" y=\"46\">", x + 28);
        webfmt_html(b, s[k].label);
        strbuf_puts(b, "</text>\n");
        x += 28 + 6.6 * (double)strlen(s[k].label) + 22;
    }
    strbuf_puts(b, "</g>\n</svg>\n");
}

