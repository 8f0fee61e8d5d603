/* webfmt.c - pure text helpers of saturnd's HTTP pages (see webfmt.h). */
#include "webfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ==== escaping ============================================================= */

void webfmt_html(struct strbuf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
                rep = "\xef\xbf\xbd"; /* U+FFFD */
            else
                continue;
        }
        strbuf_add(b, run, (size_t)(s - run));
        strbuf_puts(b, rep);
        run = s + 1;
    }
    strbuf_add(b, run, (size_t)(s - run));
}

void webfmt_prom_label(struct strbuf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '"')
            rep = "\\\"";
        else if (*s == '\n')
            rep = "\\n";
        else
            continue;
        strbuf_add(b, run, (size_t)(s - run));
        strbuf_puts(b, rep);
        run = s + 1;
    }
    strbuf_add(b, run, (size_t)(s - run));
}

void webfmt_prom_value(struct strbuf *b, double v)
{
    if (isnan(v))
        strbuf_puts(b, "NaN");
    else if (isinf(v))
        strbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        strbuf_printf(b, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else
        strbuf_printf(b, "%.9g", v);
}

/* ==== axes ================================================================= */

/* The nice number near x (x > 0): 1, 2, 5 or 10 times a power of ten,
 * rounded to the nearest with `round`, else the next one up. */
static double nice_num(double x, int round)
{
    double e = floor(log10(x));
    double p = pow(10.0, e);
    double f = x / p;
    double nf;
    if (round)
        nf = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nf * p;
}

void webfmt_axis_init(struct webfmt_axis *a, double min, double max, int target, int integer)
{
    if (target < 2)
        target = 2;
    if (target > 20)
        target = 20;
    if (!isfinite(min) || !isfinite(max)) {
        min = 0;
        max = 1;
    }
    if (min > max) {
        double t = min;
        min = max;
        max = t;
    }
    if (max - min < 1e-12 * fmax(1.0, fabs(max))) {
        double pad = fabs(min) > 0 ? fabs(min) * 0.1 : 0.5;
        if (integer && pad < 1)
            pad = 1;
        min -= pad;
        max += pad;
    }
    double step = nice_num(nice_num(max - min, 0) / (target - 1), 1);
    if (integer && step < 1)
        step = 1;
    a->lo = floor(min / step) * step;
    a->hi = ceil(max / step) * step;
    a->step = step;
    a->n = (int)lround((a->hi - a->lo) / step) + 1;
    if (a->n < 2) {
        a->hi = a->lo + step;
        a->n = 2;
    }
}

void webfmt_tick_label(char *buf, size_t cap, double v, double step)
{
    if (fabs(v) < step * 1e-9)
        v = 0; /* no "-0" or 1e-17 from accumulated steps */
    const char *suffix = "";
    double div = 1;
    if (step >= 1e5 && fabs(v) >= 1e6) {
        suffix = "M";
        div = 1e6;
    } else if (step >= 1e2 && fabs(v) >= 1e4) {
        suffix = "k";
        div = 1e3;
    }
    double s = step / div;
    int dec = s >= 1 ? 0 : (int)ceil(-log10(s) - 1e-9);
    while (dec < 6 && fabs(s * pow(10, dec) - round(s * pow(10, dec))) > 1e-6)
        dec++; /* 2.5, 0.25 */
    snprintf(buf, cap, "%.*f%s", dec, v / div, suffix);
}
