/* views.h - what the HTTP views (prom.c, dashboard.c) share: the limits
 * of what one page shows. Below http.c, which serves them. */
#ifndef SATURND_VIEWS_H
#define SATURND_VIEWS_H

#include "../coord.h"

#include "../../common/util/strbuf.h"

#define HTTP_RECENT_JOBS 20     /* ended jobs that keep per-job series in /metrics */
#define HTTP_DASHBOARD_JOBS 200 /* newest jobs listed on / */
#define HTTP_CHART_ROWS 100000  /* metrics rows read for one page at most (on the loop) */
#define HTTP_CHART_POINTS 600   /* points drawn per series at most */

#endif
