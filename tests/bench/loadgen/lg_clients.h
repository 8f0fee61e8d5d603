/* lg_clients.h - the load generator's Client-service parties: status
 * clients (GetJob, ListJobs, ListWorkers in turn, with a think time after
 * each answer) and watchers (one WatchJob stream each, kept open).
 */
#ifndef SATURN_LG_CLIENTS_H
#define SATURN_LG_CLIENTS_H

#include "lg.h"

struct statclient {
    struct rpc_client *client; /* its own channel and connection */
    struct lg_unary u;         /* the call in flight */
    enum lg_kind next_op;      /* GetJob, ListJobs, ListWorkers in turn */
    double due_ms;
    double think_ms; /* mean pause after an answer; uniform in [0.5, 1.5] x this */
    uint32_t seed;
    const char *const *jobs; /* GetJob asks for these in turn */
    size_t njobs, next_job;
};

int statclient_init(struct statclient *c, int index, const struct rpc_client_opts *o,
                    double think_ms, const char *const *jobs, size_t njobs, char err[SAT_ERR_LEN]);
void statclient_close(struct statclient *c);
/* Starts the next call when due; returns when the next one is due
 * (INFINITY while a call is in flight). */
double statclient_poll(struct statclient *c, grpc_completion_queue *cq, double now,
                       struct lg_stats *st);
/* The call's tag completed: records it and sets the next due time. */
void statclient_done(struct statclient *c, double now, struct lg_stats *st);

struct watcher {
    struct rpc_client *client;
    struct rpc_async call;
    struct lg_tag tag_sent, tag_read, tag_status;
    const char *job;
    double opened_ms;
    bool open;             /* from the start until the final status arrived */
    bool stopping;         /* we cancelled it: its end is not an error */
    bool sending;          /* the request batch is in flight */
    bool reading;          /* a read is in flight */
    long events;           /* JobEvents received */
    struct rpc_status end; /* the final status, once !open */
};

int watcher_init(struct watcher *w, const struct rpc_client_opts *o, const char *job,
                 char err[SAT_ERR_LEN]);
void watcher_close(struct watcher *w);
/* Opens the stream and starts its first read. */
void watcher_start(struct watcher *w, grpc_completion_queue *cq, double now, struct lg_stats *st);
/* One of the watcher's tags completed (ok: the event's success flag). */
void watcher_event(struct watcher *w, enum lg_tag_kind kind, int ok, double now,
                   struct lg_stats *st);
/* Cancels an open stream; its tags still complete. */
void watcher_stop(struct watcher *w);

#endif
