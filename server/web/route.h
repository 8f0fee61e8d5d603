/* route.h - saturnd's HTTP router, the pure part: a request's method and
 * URL path -> which page it asks for, and the id in /jobs/<id> or
 * /sweeps/<id>.
 *
 * No libmicrohttpd, no coordinator: http.c calls it and answers, and the
 * unit test and the fuzz target call it alone.
 */
#ifndef SATURND_ROUTE_H
#define SATURND_ROUTE_H

#include <stdbool.h>

/* Bytes for a job id and its NUL; the same as COORD_ID_LEN (http.c checks). */
#define WEB_ROUTE_ID_LEN 32

enum web_route_kind {
    WEB_ROUTE_NOT_FOUND,    /* no such page: 404 */
    WEB_ROUTE_BAD_METHOD,   /* not GET or HEAD: 405 */
    WEB_ROUTE_HEALTHZ,      /* /healthz */
    WEB_ROUTE_METRICS,      /* /metrics */
    WEB_ROUTE_INDEX,        /* / */
    WEB_ROUTE_JOB,          /* /jobs/<id> or /jobs/<id>/ */
    WEB_ROUTE_JOB_LOSS,     /* /jobs/<id>/loss.svg */
    WEB_ROUTE_JOB_ACCURACY, /* /jobs/<id>/accuracy.svg */
    WEB_ROUTE_SWEEP,        /* /sweeps/<id> or /sweeps/<id>/ */
};

struct web_route {
    enum web_route_kind kind;
    /* WEB_ROUTE_JOB* and WEB_ROUTE_SWEEP: the id segment (a job id or a
     * sweep id), cut to WEB_ROUTE_ID_LEN - 1 bytes for
     * display when longer; "" otherwise. Always NUL-terminated. */
    char job_id[WEB_ROUTE_ID_LEN];
    /* The id segment is 1..WEB_ROUTE_ID_LEN-1 bytes, as job_id holds it
     * whole: worth looking up. False for an empty or over-long id (then
     * no job can match). */
    bool id_ok;
};

/* Routes one request. method and path are NUL-terminated (as libmicrohttpd
 * hands them over); the method is checked first, so a POST to an unknown
 * path is WEB_ROUTE_BAD_METHOD. Cannot fail. */
void web_route_parse(struct web_route *rt, const char *method, const char *path);

#endif
