/* webfmt.h - pure text helpers of saturnd's HTTP pages (http.c, prom.c,
 * dashboard.c): escaping for HTML and for Prometheus label values, the
 * exposition format's numbers, and the "nice" axis ticks of the SVG charts.
 *
 * No coordinator state and no I/O here, so that tests/unit/server can test
 * them alone (they link the saturnd_webfmt library).
 */
#ifndef SATURND_WEBFMT_H
#define SATURND_WEBFMT_H

#include <stddef.h>

#include "../../common/util/strbuf.h"

/* Appends s with & < > " ' replaced by entities. Bytes below 0x20 other
 * than tab and newline become U+FFFD: they are not allowed in HTML text. */
void webfmt_html(struct strbuf *b, const char *s);
/* Appends s as the inside of a Prometheus label value (text format 0.0.4):
 * backslash, double quote and newline are escaped as \\ \" \n. */
void webfmt_prom_label(struct strbuf *b, const char *s);
/* Appends a sample value: NaN, +Inf, -Inf, integers exactly (below 1e15),
 * anything else with 9 significant digits (enough for a float32). */
void webfmt_prom_value(struct strbuf *b, double v);

/* An axis: ticks at lo, lo + step, ..., hi (n of them, n >= 2). */
struct webfmt_axis {
    double lo, hi, step;
    int n;
};
/* Covers [min, max] with about `target` ticks (2..20) at 1, 2, 2.5 or 5
 * times a power of ten (Heckbert's "nice numbers"). Empty or non-finite
 * ranges give a unit range around the value (or [0, 1]). With `integer`,
 * the step is at least 1 (epochs, steps). */
void webfmt_axis_init(struct webfmt_axis *a, double min, double max, int target, int integer);
/* Writes a tick label for v on an axis of step `step`: as many decimals as
 * the step needs, "k"/"M" for large round values (20k, 1.5M). */
void webfmt_tick_label(char *buf, size_t cap, double v, double step);

#endif
