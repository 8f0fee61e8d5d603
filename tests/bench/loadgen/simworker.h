/* simworker.h - one simulated saturn-worker of the load generator.
 *
 * All of the load generator's Worker-service traffic is here: a simulated
 * worker registers, then heartbeats "idle" every heartbeat_ms (as the
 * RegisterResponse says), never acknowledges an assignment, and leaves at
 * the end. A change of the worker protocol (a session secret returned by
 * RegisterWorker and sent as call metadata, a worker token of its own) is
 * made in simworker.c only.
 */
#ifndef SATURN_SIMWORKER_H
#define SATURN_SIMWORKER_H

#include "lg.h"

struct simworker {
    struct rpc_client *client; /* its own channel and connection, as a real worker */
    struct lg_unary u;         /* the call in flight */
    double due_ms;             /* next heartbeat (or registration; 0 = now) */
    uint32_t seed;
    char name[32];                   /* "loadgen-<index>" */
    char id[64];                     /* "w-<n>"; "" until registered */
    char session[RPC_SESSION_MAX];   /* the session secret RegisterWorker gave */
    uint32_t heartbeat_ms, lease_ms; /* from RegisterResponse */
    bool leaving, left;              /* asked to leave / Leave answered */
    bool assigned;                   /* the last heartbeat carried an assignment (ignored) */
    long not_found;                  /* heartbeats answered NOT_FOUND */
};

/* Makes the worker's channel (o: target, token, TLS). Returns 0 or SAT_E*
 * with err filled. */
int simworker_init(struct simworker *w, int index, const struct rpc_client_opts *o,
                   char err[SAT_ERR_LEN]);
/* Frees the channel; no call may be in flight. */
void simworker_close(struct simworker *w);

/* Starts the worker's next call if none is in flight and one is due:
 * RegisterWorker without an id, Leave once asked to leave, Heartbeat when
 * due_ms has come. Returns the time its next call is due (INFINITY while a
 * call is in flight or when it has left). */
double simworker_poll(struct simworker *w, grpc_completion_queue *cq, double now,
                      struct lg_stats *st);

/* The call's tag completed: records it in st and decides what comes next.
 * A heartbeat answered NOT_FOUND means saturnd let the lease expire: it is
 * counted (st->expiries, w->not_found) and the worker registers again, as
 * saturn-worker does. */
void simworker_done(struct simworker *w, double now, struct lg_stats *st);

#endif
