/* lg.h - what the load generator's parts share: call kinds, typed tags for
 * its one completion queue, latency records, and the clock.
 *
 * The load generator (loadgen.c) drives every call from one thread through
 * one completion queue (rpc_async_* of common/rpc). Each simulated party
 * (worker, status client, watcher) has at most one unary call in flight
 * and a due time for its next one; the loop starts what is due and
 * dispatches completions by tag kind.
 */
#ifndef SATURN_LG_H
#define SATURN_LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

#define LG_CALL_TIMEOUT_MS 10000  /* deadline of every unary call */
#define LG_MAX_SAMPLES (1u << 24) /* latency samples kept per kind (64 MiB of floats) */

enum lg_kind {
    LG_REGISTER,
    LG_HEARTBEAT,
    LG_GETJOB,
    LG_LISTJOBS,
    LG_LISTWORKERS,
    LG_WATCH, /* a watch stream: open to its first (replayed) event */
    LG_LEAVE,
    LG_NKINDS,
};

/* "Heartbeat", ...; indexed by enum lg_kind. */
extern const char *const lg_kind_names[LG_NKINDS];

enum lg_tag_kind {
    LG_TAG_WORKER,       /* a simulated worker's unary call */
    LG_TAG_CLIENT,       /* a status client's unary call */
    LG_TAG_WATCH_SENT,   /* a watch's request is out */
    LG_TAG_WATCH_READ,   /* a watch's read completed */
    LG_TAG_WATCH_STATUS, /* a watch's final status arrived */
};

/* Embedded in its owner; its address is the gRPC tag. */
struct lg_tag {
    enum lg_tag_kind kind;
    void *owner;
};

/* Latencies (microseconds) and outcomes of one kind of call. */
struct lg_kstat {
    float *us; /* sat_malloc'd; n of cap used */
    size_t n, cap;
    long calls, errors;
};

/* One phase's records (setup, the measured window, teardown). */
struct lg_stats {
    struct lg_kstat k[LG_NKINDS];
    long expiries; /* heartbeats answered NOT_FOUND: a lease saturnd let expire */
};

/* A party's unary call: at most one in flight. The tag's owner is the
 * party (a struct simworker or statclient), so the loop can hand the
 * completion back to it. */
struct lg_unary {
    struct rpc_async call;
    struct lg_tag tag;
    enum lg_kind op; /* of the call in flight */
    bool in_flight;
    double started_ms;
};

/* Starts a unary call of kind op on cq. Returns true if it is in flight;
 * false if it could not start, and the caller ends it at once with
 * lg_unary_end (which records the failure). */
bool lg_unary_start(struct lg_unary *u, struct rpc_client *c, grpc_completion_queue *cq, double now,
                    enum lg_kind op, const char *method, const ProtobufCMessage *req,
                    const char *session);

/* Ends the call: decodes the response of its kind into *resp (the caller
 * frees it with rpc_msg_free), fills rs and records the call in st.
 * Returns as rpc_async_finish. */
int lg_unary_end(struct lg_unary *u, double now, ProtobufCMessage **resp, struct rpc_status *rs,
                 struct lg_stats *st);

/* Milliseconds on the monotonic clock. */
double lg_now_ms(void);

/* Records one finished call of kind k that took `ms`. A failed call is
 * counted as an error and, for the first few, its status is printed. */
void lg_record(struct lg_stats *s, enum lg_kind k, double ms, const struct rpc_status *st);

/* Frees the samples; s is zeroed. */
void lg_stats_free(struct lg_stats *s);

/* A small per-party random stream (xorshift32); *seed must not be 0. */
uint32_t lg_rand(uint32_t *seed);
/* Uniform in [lo, hi). */
double lg_uniform(uint32_t *seed, double lo, double hi);

#endif
