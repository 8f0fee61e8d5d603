/* dashboard.h - the HTML pages and SVG charts of --http (dashboard.c). */
#ifndef SATURND_DASHBOARD_H
#define SATURND_DASHBOARD_H

#include "views.h"

/* Appends the HTML of / (jobs and workers). */
void dashboard_index(struct coord *c, struct strbuf *b);
/* Appends the HTML page of one job: facts, charts, quantizers. Returns 0
 * or SAT_E* when its metrics cannot be read (the page says so too). */
int dashboard_job(struct coord *c, struct job *j, struct strbuf *b);
/* Appends the HTML of the 404 page for an unknown job id. */
void dashboard_no_job(struct coord *c, const char *id, struct strbuf *b);

enum dashboard_chart { DASHBOARD_LOSS, DASHBOARD_ACCURACY };
/* Appends one chart of j as a standalone SVG document. */
int dashboard_chart_svg(struct coord *c, struct job *j, enum dashboard_chart which,
                        struct strbuf *b);

#endif
