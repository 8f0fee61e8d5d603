/* test_route.c - saturnd's HTTP router (server/web/route.c): which page a
 * method and path ask for, and the id taken from /jobs/<id> or
 * /sweeps/<id>. */
#include "check.h"
#include "route.h"

#define ID31 "abcdefghijklmnopqrstuvwxyz01234" /* the longest id that fits */

static const struct route_case {
    const char *method, *path;
    enum web_route_kind kind;
    const char *id; /* job_id wanted */
    int id_ok;
} cases[] = {
    {"GET", "/", WEB_ROUTE_INDEX, "", 0},
    {"HEAD", "/", WEB_ROUTE_INDEX, "", 0},
    {"GET", "/healthz", WEB_ROUTE_HEALTHZ, "", 0},
    {"GET", "/metrics", WEB_ROUTE_METRICS, "", 0},
    {"GET", "/metrics/", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/healthz?x=1", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/jobs", WEB_ROUTE_NOT_FOUND, "", 0},
    {"POST", "/", WEB_ROUTE_BAD_METHOD, "", 0},
    {"get", "/", WEB_ROUTE_BAD_METHOD, "", 0},
    {"DELETE", "/nowhere", WEB_ROUTE_BAD_METHOD, "", 0},
    {"GET", "/jobs/job-1", WEB_ROUTE_JOB, "job-1", 1},
    {"GET", "/jobs/job-1/", WEB_ROUTE_JOB, "job-1", 1},
    {"GET", "/jobs/job-1/loss.svg", WEB_ROUTE_JOB_LOSS, "job-1", 1},
    {"HEAD", "/jobs/job-1/accuracy.svg", WEB_ROUTE_JOB_ACCURACY, "job-1", 1},
    {"GET", "/jobs/job-1/other.svg", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/jobs/job-1//", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/jobs/job-1/loss.svg/", WEB_ROUTE_NOT_FOUND, "", 0},
    /* An empty id is a job page that no job can match. */
    {"GET", "/jobs/", WEB_ROUTE_JOB, "", 0},
    {"GET", "/jobs//loss.svg", WEB_ROUTE_JOB_LOSS, "", 0},
    /* 31 bytes fit; 32 are cut to 31 for the page and never looked up. */
    {"GET", "/jobs/" ID31, WEB_ROUTE_JOB, ID31, 1},
    {"GET", "/jobs/" ID31 "5", WEB_ROUTE_JOB, ID31, 0},
    {"GET", "/jobs/" ID31 "5/loss.svg", WEB_ROUTE_JOB_LOSS, ID31, 0},
    /* A sweep's page; no charts of its own. */
    {"GET", "/sweeps/sw-1", WEB_ROUTE_SWEEP, "sw-1", 1},
    {"HEAD", "/sweeps/sw-20261125-194233-1a2b3c/", WEB_ROUTE_SWEEP, "sw-20261125-194233-1a2b3c", 1},
    {"GET", "/sweeps/", WEB_ROUTE_SWEEP, "", 0},
    {"GET", "/sweeps", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/sweeps/sw-1/accuracy.svg", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/sweeps/sw-1//", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/sweeps/" ID31, WEB_ROUTE_SWEEP, ID31, 1},
    {"GET", "/sweeps/" ID31 "5", WEB_ROUTE_SWEEP, ID31, 0},
    {"GET", "/sweeps/<b>x</b>", WEB_ROUTE_NOT_FOUND, "", 0},
    {"GET", "/sweeps/%3Cb%3E", WEB_ROUTE_SWEEP, "%3Cb%3E", 1},
    {"POST", "/sweeps/sw-1", WEB_ROUTE_BAD_METHOD, "", 0},
};

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct route_case *c = &cases[i];
        struct web_route rt;
        web_route_parse(&rt, c->method, c->path);
        int ok = rt.kind == c->kind && strcmp(rt.job_id, c->id) == 0 && (int)rt.id_ok == c->id_ok;
        if (!ok)
            fprintf(stderr,
                    "%s %s -> kind %d id \"%s\" id_ok %d, want kind %d id \"%s\" id_ok %d\n",
                    c->method, c->path, (int)rt.kind, rt.job_id, (int)rt.id_ok, (int)c->kind, c->id,
                    c->id_ok);
        CHECK(ok);
    }
    return check_summary("test_route");
}
