/* test_route.c - saturnd's HTTP router (server/web/route.c): which page a
 * method and path ask for, and the job id taken from /jobs/<id>. */
#include "check.h"
#include "route.h"

/* Routes method + path and checks the kind, and for job pages the id and
 * whether it is worth a lookup. */
static int route_is(const char *method, const char *path, enum web_route_kind kind,
                    const char *id, int id_ok)
{
    struct web_route rt;
    web_route_parse(&rt, method, path);
    int ok = rt.kind == kind && strcmp(rt.job_id, id) == 0 && (int)rt.id_ok == id_ok;
    if (!ok)
        fprintf(stderr, "%s %s -> kind %d id \"%s\" id_ok %d, want kind %d id \"%s\" id_ok %d\n",
                method, path, (int)rt.kind, rt.job_id, (int)rt.id_ok, (int)kind, id, id_ok);
    return ok;
}

static void test_pages(void)
{
    CHECK(route_is("GET", "/", WEB_ROUTE_INDEX, "", 0));
    CHECK(route_is("HEAD", "/", WEB_ROUTE_INDEX, "", 0));
    CHECK(route_is("GET", "/healthz", WEB_ROUTE_HEALTHZ, "", 0));
    CHECK(route_is("GET", "/metrics", WEB_ROUTE_METRICS, "", 0));
    CHECK(route_is("GET", "/metrics/", WEB_ROUTE_NOT_FOUND, "", 0));
    CHECK(route_is("GET", "/healthz?x=1", WEB_ROUTE_NOT_FOUND, "", 0));
    CHECK(route_is("GET", "", WEB_ROUTE_NOT_FOUND, "", 0));
    CHECK(route_is("GET", "/jobs", WEB_ROUTE_NOT_FOUND, "", 0));
    CHECK(route_is("POST", "/", WEB_ROUTE_BAD_METHOD, "", 0));
    CHECK(route_is("get", "/", WEB_ROUTE_BAD_METHOD, "", 0));
    CHECK(route_is("DELETE", "/nowhere", WEB_ROUTE_BAD_METHOD, "", 0));
}

static void test_jobs(void)
{
    CHECK(route_is("GET", "/jobs/job-1", WEB_ROUTE_JOB, "job-1", 1));
    CHECK(route_is("GET", "/jobs/job-1/", WEB_ROUTE_JOB, "job-1", 1));
    CHECK(route_is("GET", "/jobs/job-1/loss.svg", WEB_ROUTE_JOB_LOSS, "job-1", 1));
    CHECK(route_is("HEAD", "/jobs/job-1/accuracy.svg", WEB_ROUTE_JOB_ACCURACY, "job-1", 1));
    CHECK(route_is("GET", "/jobs/job-1/other.svg", WEB_ROUTE_NOT_FOUND, "", 0));
    CHECK(route_is("GET", "/jobs/job-1//", WEB_ROUTE_NOT_FOUND, "", 0));
    CHECK(route_is("GET", "/jobs/job-1/loss.svg/", WEB_ROUTE_NOT_FOUND, "", 0));
    /* An empty id is a job page that no job can match. */
    CHECK(route_is("GET", "/jobs/", WEB_ROUTE_JOB, "", 0));
    CHECK(route_is("GET", "/jobs//loss.svg", WEB_ROUTE_JOB_LOSS, "", 0));
    /* 31 bytes fit; 32 are cut to 31 for the page and never looked up. */
    const char *id31 = "abcdefghijklmnopqrstuvwxyz01234";
    CHECK(route_is("GET", "/jobs/abcdefghijklmnopqrstuvwxyz01234", WEB_ROUTE_JOB, id31, 1));
    CHECK(route_is("GET", "/jobs/abcdefghijklmnopqrstuvwxyz012345", WEB_ROUTE_JOB, id31, 0));
    CHECK(route_is("GET", "/jobs/abcdefghijklmnopqrstuvwxyz012345/loss.svg", WEB_ROUTE_JOB_LOSS,
                   id31, 0));
}

int main(void)
{
    test_pages();
    test_jobs();
    return check_summary("test_route");
}
