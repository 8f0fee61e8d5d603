/* lg_clients.c - status clients and watchers of the load generator (see
 * lg_clients.h). */
#include "lg_clients.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "saturn.pb-c.h"

/* ==== status clients ======================================================= */

int statclient_init(struct statclient *c, int index, const struct rpc_client_opts *o,
                    double think_ms, const char *const *jobs, size_t njobs, char err[SAT_ERR_LEN])
{
    memset(c, 0, sizeof *c);
    c->u.tag = (struct lg_tag){.kind = LG_TAG_CLIENT, .owner = c};
    c->seed = 0x85ebca6bu ^ (uint32_t)(index + 1) * 2246822519u;
    if (c->seed == 0)
        c->seed = 1;
    c->think_ms = think_ms;
    c->jobs = jobs;
    c->njobs = njobs;
    c->next_job = (size_t)index % njobs;
    c->next_op = (enum lg_kind)(LG_GETJOB + index % 3);
    c->due_ms = INFINITY; /* set when the load starts */
    return rpc_client_new(&c->client, o, err);
}

void statclient_close(struct statclient *c)
{
    rpc_client_free(c->client);
    c->client = NULL;
}

double statclient_poll(struct statclient *c, grpc_completion_queue *cq, double now,
                       struct lg_stats *st)
{
    if (c->u.in_flight)
        return INFINITY;
    if (now < c->due_ms)
        return c->due_ms;
    Saturn__V1__GetJobRequest get = SATURN__V1__GET_JOB_REQUEST__INIT;
    Saturn__V1__ListJobsRequest list = SATURN__V1__LIST_JOBS_REQUEST__INIT;
    Saturn__V1__ListWorkersRequest workers = SATURN__V1__LIST_WORKERS_REQUEST__INIT;
    const ProtobufCMessage *req;
    const char *method;
    switch (c->next_op) {
    case LG_GETJOB:
        get.job_id = (char *)c->jobs[c->next_job];
        c->next_job = (c->next_job + 1) % c->njobs;
        req = &get.base;
        method = "/saturn.v1.Client/GetJob";
        break;
    case LG_LISTJOBS:
        req = &list.base; /* the default page: the 100 newest */
        method = "/saturn.v1.Client/ListJobs";
        break;
    default:
        req = &workers.base;
        method = "/saturn.v1.Client/ListWorkers";
        break;
    }
    if (!lg_unary_start(&c->u, c->client, cq, now, c->next_op, method, req, NULL))
        statclient_done(c, now, st);
    return INFINITY;
}

void statclient_done(struct statclient *c, double now, struct lg_stats *st)
{
    struct rpc_status rs;
    ProtobufCMessage *m = NULL;
    lg_unary_end(&c->u, now, &m, &rs, st); /* decoded, as a real client would */
    rpc_msg_free(m);
    c->next_op = c->next_op == LG_LISTWORKERS ? LG_GETJOB : c->next_op + 1;
    c->due_ms = now + lg_uniform(&c->seed, 0.5, 1.5) * c->think_ms;
}

/* ==== watchers ============================================================= */

int watcher_init(struct watcher *w, const struct rpc_client_opts *o, const char *job,
                 char err[SAT_ERR_LEN])
{
    memset(w, 0, sizeof *w);
    w->tag_sent = (struct lg_tag){.kind = LG_TAG_WATCH_SENT, .owner = w};
    w->tag_read = (struct lg_tag){.kind = LG_TAG_WATCH_READ, .owner = w};
    w->tag_status = (struct lg_tag){.kind = LG_TAG_WATCH_STATUS, .owner = w};
    w->job = job;
    return rpc_client_new(&w->client, o, err);
}

void watcher_close(struct watcher *w)
{
    rpc_client_free(w->client);
    w->client = NULL;
}

/* The stream is over (or could not go on): ask for its status, or record
 * the end at once when nothing can be in flight any more. */
static void watcher_end(struct watcher *w, double now, struct lg_stats *st)
{
    if (w->sending || w->reading)
        return; /* the last tag ends it */
    if (rpc_async_status(&w->call, &w->tag_status) != 0)
        watcher_event(w, LG_TAG_WATCH_STATUS, 0, now, st);
}

static void watcher_read(struct watcher *w, double now, struct lg_stats *st)
{
    w->reading = rpc_async_read(&w->call, &w->tag_read) == 0;
    if (!w->reading)
        watcher_end(w, now, st);
}

void watcher_start(struct watcher *w, grpc_completion_queue *cq, double now, struct lg_stats *st)
{
    Saturn__V1__WatchJobRequest req = SATURN__V1__WATCH_JOB_REQUEST__INIT;
    req.job_id = (char *)w->job;
    w->opened_ms = now;
    w->open = true;
    if (rpc_async_stream(w->client, cq, "/saturn.v1.Client/WatchJob", &req.base, 0, &w->call,
                         &w->tag_sent) != 0) {
        watcher_event(w, LG_TAG_WATCH_STATUS, 0, now, st);
        return;
    }
    w->sending = true;
    watcher_read(w, now, st);
}

void watcher_event(struct watcher *w, enum lg_tag_kind kind, int ok, double now,
                   struct lg_stats *st)
{
    ProtobufCMessage *m = NULL;
    switch (kind) {
    case LG_TAG_WATCH_SENT:
        w->sending = false;
        if (!w->reading)
            watcher_end(w, now, st);
        break;
    case LG_TAG_WATCH_READ:
        w->reading = false;
        if (ok && rpc_async_take(&w->call, &saturn__v1__job_event__descriptor, &m) == 1) {
            if (w->events++ == 0)
                lg_record(st, LG_WATCH, now - w->opened_ms, NULL);
            rpc_msg_free(m);
            watcher_read(w, now, st);
        } else {
            watcher_end(w, now, st);
        }
        break;
    case LG_TAG_WATCH_STATUS:
        rpc_async_finish(&w->call, NULL, NULL, &w->end);
        w->open = false;
        if (!w->stopping) {
            /* A stream that ends by itself is an error here: the jobs it
             * watches must stay queued for the whole run. */
            struct rpc_status bad = w->end;
            if (bad.code == GRPC_STATUS_OK) {
                bad.code = GRPC_STATUS_ABORTED;
                snprintf(bad.details, sizeof bad.details, "watch of %s ended early", w->job);
            }
            lg_record(st, LG_WATCH, now - w->opened_ms, &bad);
        }
        break;
    default:
        fprintf(stderr, "loadgen: bug: watcher tag of kind %d\n", (int)kind);
        break;
    }
}

void watcher_stop(struct watcher *w)
{
    if (!w->open)
        return;
    w->stopping = true;
    rpc_async_cancel(&w->call);
}
