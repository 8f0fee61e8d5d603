/* chart.h - SVG line charts (chart.c): point vectors and a chart of
 * several series, drawn into a strbuf. Used by dashboard.c. */
#ifndef SATURND_CHART_H
#define SATURND_CHART_H

#include <stdbool.h>
#include <stddef.h>

#include "../../common/util/strbuf.h"

struct pt {
    double x, y;
};

struct ptvec {
    struct pt *p;
    size_t n, cap;
    int err;
};

/* Appends (x, y); with `replace`, an existing point at x takes y instead
 * (an epoch evaluated again after a restart: the latest row wins). */
struct series {
    const char *key;   /* id suffix: <chart id>-<key> */
    const char *label; /* legend */
    const char *color;
    const struct ptvec *v;
    bool dots;   /* a circle on every point */
    bool dashed; /* dashed line */
};

struct chart {
    const char *id, *title, *xlabel, *ylabel;
    double xmin, xmax; /* the data's range is widened to include these (NaN: none) */
    bool xint;         /* integer x ticks (epochs) */
    const char *ysuffix;
};

/* The i-th colour of the series palette ("#rrggbb"; it repeats after 10). */
const char *chart_color(size_t i);
/* Appends (x, y); with replace, a point already at x takes y instead. A
 * failed allocation is remembered in v->err. */
void ptvec_push(struct ptvec *v, double x, double y, bool replace);
/* Sorts by x. */
void ptvec_sort(struct ptvec *v);
/* Sorts by x and merges points of equal x into their mean. */
void ptvec_merge_x(struct ptvec *v);
/* At most max points: consecutive runs averaged in x and y. */
void ptvec_thin(struct ptvec *v, size_t max);
/* Appends the SVG of chart ch with its ns series (standalone: with an XML
 * declaration, as a document of its own). */
void chart_svg(struct strbuf *b, const struct chart *ch, const struct series *s, int ns,
               bool standalone);

#endif
