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

/* Appends the HTML of a sweep's page (sweep_page.c): its jobs, a table
 * row and an accuracy-vs-epoch line each. Returns 0, SAT_ENOENT when no job
 * belongs to the sweep (a 404 page is appended), or SAT_E* when metrics
 * cannot be read (the page says so too). id must be a valid sweep id. */
int dashboard_sweep(struct coord *c, const char *id, struct strbuf *b);

/* The page frame and small pieces dashboard.c shares with sweep_page.c. */
void dashboard__page_begin(struct coord *c, struct strbuf *b, const char *title, int refresh_s);
void dashboard__page_end(struct strbuf *b, int refresh_s);
void dashboard__fmt_duration(char *buf, size_t cap, double s);
void dashboard__badge(struct strbuf *b, const char *state);
void dashboard__job_link(struct strbuf *b, const char *id);

#endif
