/* fuzz_route.c - fuzz target: saturnd's HTTP router (server/web/route.c).
 * Input: the method, one space, the path (as libmicrohttpd hands them
 * over, NUL-terminated; a NUL in the input ends the string early). Checks
 * that the route agrees with the path it came from (job and sweep pages). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

/* The path a route stands for, rebuilt from it (job pages without the
 * optional trailing '/'). */
static void route_path(const struct web_route *rt, char *buf, size_t cap)
{
    static const char *const fixed[] = {[WEB_ROUTE_HEALTHZ] = "/healthz",
                                        [WEB_ROUTE_METRICS] = "/metrics",
                                        [WEB_ROUTE_INDEX] = "/",
                                        [WEB_ROUTE_JOB] = "",
                                        [WEB_ROUTE_JOB_LOSS] = "/loss.svg",
                                        [WEB_ROUTE_JOB_ACCURACY] = "/accuracy.svg",
                                        [WEB_ROUTE_SWEEP] = ""};
    if (rt->kind == WEB_ROUTE_SWEEP)
        snprintf(buf, cap, "/sweeps/%s", rt->job_id);
    else if (rt->kind >= WEB_ROUTE_JOB)
        snprintf(buf, cap, "/jobs/%s%s", rt->job_id, fixed[rt->kind]);
    else
        snprintf(buf, cap, "%s", fixed[rt->kind]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *path = strchr(text, ' ');
    if (path)
        *path++ = 0;
    else
        path = text + strlen(text);
    const char *method = text;

    struct web_route rt;
    web_route_parse(&rt, method, path);
    size_t idlen = strnlen(rt.job_id, sizeof rt.job_id);
    if (idlen == sizeof rt.job_id)
        fuzz_fail("job id not NUL-terminated");
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if ((rt.kind == WEB_ROUTE_BAD_METHOD) == get)
        fuzz_fail("method \"%s\" routed as %d", method, (int)rt.kind);
    if (rt.kind < WEB_ROUTE_JOB && (idlen || rt.id_ok))
        fuzz_fail("\"%s\": a job id \"%s\" outside a job page", path, rt.job_id);
    size_t pre = rt.kind == WEB_ROUTE_SWEEP ? 8 : 6; /* "/sweeps/" or "/jobs/" */
    if (rt.kind >= WEB_ROUTE_JOB && rt.id_ok != (idlen > 0 && !strchr(rt.job_id, '/') &&
                                                 strncmp(path + pre, rt.job_id, idlen) == 0 &&
                                                 (path[pre + idlen] == '/' || !path[pre + idlen])))
        fuzz_fail("\"%s\": id \"%s\" id_ok %d", path, rt.job_id, (int)rt.id_ok);
    if (rt.kind > WEB_ROUTE_BAD_METHOD && (rt.kind < WEB_ROUTE_JOB || rt.id_ok)) {
        char want[128];
        route_path(&rt, want, sizeof want);
        size_t wl = strlen(want);
        int same = strcmp(path, want) == 0 ||
                   ((rt.kind == WEB_ROUTE_JOB || rt.kind == WEB_ROUTE_SWEEP) &&
                    strncmp(path, want, wl) == 0 && strcmp(path + wl, "/") == 0);
        if (!same)
            fuzz_fail("\"%s\" routed as %d, which stands for \"%s\"", path, (int)rt.kind, want);
    }
    free(text);
    return 0;
}
