/* route.c - saturnd's HTTP router (see route.h): method and path -> page. */
#include "route.h"

#include <stdio.h>
#include <string.h>

void web_route_parse(struct web_route *rt, const char *method, const char *path)
{
    memset(rt, 0, sizeof *rt);
    rt->kind = WEB_ROUTE_NOT_FOUND;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        rt->kind = WEB_ROUTE_BAD_METHOD;
        return;
    }
    if (strcmp(path, "/healthz") == 0) {
        rt->kind = WEB_ROUTE_HEALTHZ;
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        rt->kind = WEB_ROUTE_METRICS;
        return;
    }
    if (strcmp(path, "/") == 0) {
        rt->kind = WEB_ROUTE_INDEX;
        return;
    }
    bool sweep = strncmp(path, "/sweeps/", 8) == 0;
    if (!sweep && strncmp(path, "/jobs/", 6) != 0)
        return;
    const char *rest = path + (sweep ? 8 : 6);
    size_t n = strcspn(rest, "/");
    const char *tail = rest + n;
    if (!*tail || strcmp(tail, "/") == 0)
        rt->kind = sweep ? WEB_ROUTE_SWEEP : WEB_ROUTE_JOB;
    else if (!sweep && strcmp(tail, "/loss.svg") == 0)
        rt->kind = WEB_ROUTE_JOB_LOSS;
    else if (!sweep && strcmp(tail, "/accuracy.svg") == 0)
        rt->kind = WEB_ROUTE_JOB_ACCURACY;
    else
        return;
    rt->id_ok = n > 0 && n < sizeof rt->job_id;
    snprintf(rt->job_id, sizeof rt->job_id, "%.*s",
             (int)(n < sizeof rt->job_id ? n : sizeof rt->job_id - 1), rest);
}
