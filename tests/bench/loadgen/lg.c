/* lg.c - what the load generator's parts share (see lg.h): call kinds,
 * the unary call of a party, latency records, the clock, random numbers. */
#include "lg.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "saturn.pb-c.h"
#include "util/xalloc.h"

const char *const lg_kind_names[LG_NKINDS] = {
    "RegisterWorker", "Heartbeat", "GetJob", "ListJobs", "ListWorkers", "WatchJob", "Leave",
};

double lg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

uint32_t lg_rand(uint32_t *seed)
{
    uint32_t x = *seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *seed = x;
}

double lg_uniform(uint32_t *seed, double lo, double hi)
{
    return lo + (hi - lo) * (double)lg_rand(seed) / 4294967296.0;
}

void lg_record(struct lg_stats *s, enum lg_kind k, double ms, const struct rpc_status *st)
{
    static int printed;
    struct lg_kstat *ks = &s->k[k];
    ks->calls++;
    if (st && st->code != GRPC_STATUS_OK) {
        ks->errors++;
        if (printed++ < 10)
            fprintf(stderr, "loadgen: %s: %s: %s\n", lg_kind_names[k], rpc_status_name(st->code),
                    st->details);
        return;
    }
    if (ks->n == ks->cap && ks->cap < LG_MAX_SAMPLES) {
        size_t cap = ks->cap ? ks->cap * 2 : 4096;
        float *n = sat_realloc(ks->us, cap * sizeof *n);
        if (n) {
            ks->us = n;
            ks->cap = cap;
        }
    }
    if (ks->n < ks->cap)
        ks->us[ks->n++] = (float)(ms * 1e3);
}

void lg_stats_free(struct lg_stats *s)
{
    for (int k = 0; k < LG_NKINDS; k++)
        sat_free(s->k[k].us);
    memset(s, 0, sizeof *s);
}

/* The response type of each kind of unary call. */
static const ProtobufCMessageDescriptor *const resp_desc[LG_NKINDS] = {
    [LG_REGISTER] = &saturn__v1__register_response__descriptor,
    [LG_HEARTBEAT] = &saturn__v1__heartbeat_response__descriptor,
    [LG_GETJOB] = &saturn__v1__get_job_response__descriptor,
    [LG_LISTJOBS] = &saturn__v1__list_jobs_response__descriptor,
    [LG_LISTWORKERS] = &saturn__v1__list_workers_response__descriptor,
    [LG_LEAVE] = &saturn__v1__leave_response__descriptor,
};

bool lg_unary_start(struct lg_unary *u, struct rpc_client *c, grpc_completion_queue *cq, double now,
                    enum lg_kind op, const char *method, const ProtobufCMessage *req,
                    const char *session)
{
    u->op = op;
    u->started_ms = now;
    u->in_flight = true;
    return rpc_async_unary_as(c, cq, method, req, LG_CALL_TIMEOUT_MS, session, &u->call,
                              &u->tag) == 0;
}

int lg_unary_end(struct lg_unary *u, double now, ProtobufCMessage **resp, struct rpc_status *rs,
                 struct lg_stats *st)
{
    int rc = rpc_async_finish(&u->call, resp_desc[u->op], resp, rs);
    u->in_flight = false;
    lg_record(st, u->op, now - u->started_ms, rs);
    return rc;
}
