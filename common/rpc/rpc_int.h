/* rpc_int.h - internals shared by rpc_server.c and rpc_call.c. MUST NOT be
 * included outside common/rpc: the public API is rpc.h.
 *
 * A call context (struct rpc_call) lives from the moment its request is
 * armed until (a) no batch of it is in flight and (b) its handler has
 * finished it. `pending` counts (a); `owned` is (b). All fields are touched
 * on the loop thread only, except rpc_tag.success/next, which the CQ
 * thread writes before handing the tag over under the server's lock.
 */
#ifndef SATURN_RPC_INT_H
#define SATURN_RPC_INT_H

#include <pthread.h>

#include "rpc.h"

enum rpc_tag_kind {
    TAG_NEW_CALL,    /* a registered method's request matched a call */
    TAG_NEW_GENERIC, /* an unregistered method's call arrived */
    TAG_CLOSE,       /* RECV_CLOSE_ON_SERVER completed: the client is done or gone */
    TAG_SEND,        /* a send batch (messages and/or status) completed */
    TAG_SHUTDOWN,    /* grpc_server_shutdown_and_notify completed */
};

struct rpc_tag {
    enum rpc_tag_kind kind;
    int success;          /* set by the CQ thread */
    struct rpc_tag *next; /* hand-over list link (guarded by the server's lock) */
    struct rpc_call *call;
};

/* One queued outgoing message of a call. */
struct outmsg {
    grpc_byte_buffer *bb;
    struct outmsg *next;
};

struct method_slot {
    const struct rpc_method *m;
    void *handle; /* from grpc_server_register_method */
    bool armed;   /* a request is outstanding */
};

struct rpc_call {
    struct rpc_server *srv;
    struct method_slot *slot; /* NULL for an unregistered (generic) call */

    /* Filled by gRPC when the request matches. */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details; /* generic calls only */

    struct rpc_tag tag_new, tag_close, tag_send;
    int pending;         /* operations in flight (armed request, batches) */
    bool owned;          /* a handler owns the call and has not finished it */
    bool closed;         /* RECV_CLOSE_ON_SERVER completed */
    int close_cancelled; /* written by gRPC: 1 if the client went away */
    bool cancel_fired;

    ProtobufCMessage *req;
    char *peer; /* gpr_malloc'd by gRPC, on demand */

    /* Outgoing side. */
    bool md_sent, sending, status_queued;
    grpc_status_code status;
    char *status_details; /* sat_malloc'd */
    struct outmsg *q_head, *q_tail;
    size_t q_len;
    grpc_byte_buffer *inflight_bb; /* message of the send batch in flight */

    void (*cancel_cb)(struct rpc_call *c, void *arg);
    void *cancel_arg;

    struct rpc_call *prev, *next; /* the server's list of live contexts */
};

struct rpc_server {
    uv_loop_t *loop;
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t cq_thread;

    uv_async_t async;
    uv_timer_t timer; /* re-arm retries and the shutdown grace period */
    int handles_open;

    pthread_mutex_t lock;
    struct rpc_tag *ev_head, *ev_tail; /* guarded by lock */

    struct method_slot *slots;
    size_t nslots;
    unsigned generic_armed;
    char *auth; /* "Bearer <token>", or NULL when auth is off */
    size_t auth_len;
    void *ud;

    struct rpc_call *live; /* every context, armed or active */
    size_t nlive;
    size_t nowned;

    bool stopping, shutdown_done, destroyed;
    struct rpc_tag tag_shutdown;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- rpc_call.c ---- */

/* A new context for slot (NULL: an unregistered-method call), linked into
 * the server's live list. NULL on allocation failure. */
struct rpc_call *rpc__call_new(struct rpc_server *s, struct method_slot *slot);
/* Unlinks and frees everything the context holds (request, buffers, call). */
void rpc__call_free(struct rpc_call *c);
/* Frees the context once no batch is in flight and no handler owns it. */
void rpc__call_maybe_free(struct rpc_call *c);
/* Starts the next send batch of c if none is in flight. */
void rpc__pump(struct rpc_call *c);
/* Finishes a call the layer refuses before any handler sees it. */
void rpc__reject(struct rpc_call *c, grpc_status_code code, const char *details);
/* Starts RECV_CLOSE_ON_SERVER for an accepted call; false if it failed. */
bool rpc__start_close(struct rpc_call *c);
/* Completion of RECV_CLOSE_ON_SERVER / of a send batch. */
void rpc__on_close(struct rpc_call *c);
void rpc__on_send(struct rpc_call *c, int success);

#endif
