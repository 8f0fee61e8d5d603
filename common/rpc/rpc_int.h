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
#include <stdatomic.h>

#include "rpc.h"

enum rpc_tag_kind {
    TAG_NEW_CALL,    /* a registered method's request matched a call */
    TAG_NEW_GENERIC, /* an unregistered method's call arrived */
    TAG_RECV,        /* RECV_MESSAGE of an admitted call completed */
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

#define RPC_AUTH_PEERS 64   /* peers whose failures are remembered */
#define RPC_PEER_KEY_LEN 64 /* "ipv4:1.2.3.4", "ipv6:[...]" */
#define RPC_DELAYED_MAX 256 /* refusals held for their delay; more are answered at once */

struct rpc_peer_fail {
    char key[RPC_PEER_KEY_LEN]; /* "" = free slot */
    unsigned fails;             /* failures in the current burst */
    unsigned suppressed;        /* not logged since logged_ms */
    uint64_t last_ms, logged_ms;
};

struct rpc_auth {
    char *bearer[RPC_NROLES]; /* "Bearer <token>" per role, or NULL */
    size_t len[RPC_NROLES];
    struct rpc_peer_fail peers[RPC_AUTH_PEERS];
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

    struct rpc_tag tag_new, tag_recv, tag_close, tag_send;
    int pending;         /* operations in flight (armed request, batches) */
    bool owned;          /* a handler owns the call and has not finished it */
    bool closed;         /* RECV_CLOSE_ON_SERVER completed */
    int close_cancelled; /* written by gRPC: 1 if the client went away */
    bool cancel_fired;

    ProtobufCMessage *req;
    bool landed; /* a bytes field of req went where rpc_server_opts.land chose */
    char *peer; /* gpr_malloc'd by gRPC, on demand */
    int role;   /* enum rpc_role of the token presented (client when auth is off) */
    char session[RPC_SESSION_MAX]; /* the accepted session secret, or "" */

    /* A refusal answered later (rpc_auth.c's delay): owned by the layer
     * meanwhile, on the server's delayed list. */
    uint64_t delay_due; /* uv_now() */
    grpc_status_code delay_code;
    char *delay_details; /* sat_malloc'd */
    struct rpc_call *delay_next;

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
    bool auth_on;         /* started with a token: every role is checked */
    struct rpc_auth auth; /* the role tokens and the failure table */
    rpc_session_fn session_check;
    void (*land)(struct rpc_land *land, const ProtobufCMessage *req, void *ud);
    void *ud;

    uv_timer_t delay_timer;   /* answers delayed refusals */
    struct rpc_call *delayed; /* refusals waiting for their delay */
    size_t ndelayed;
    int trim_ticks; /* ticks left that malloc_trim after refusals */

    struct rpc_call *live; /* every context, armed or active */
    size_t nlive;
    size_t nowned;

    bool stopping, shutdown_done, destroyed;
    struct rpc_tag tag_shutdown;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- rpc_util.c ---- */

/* protobuf-c allocates through sat_malloc with this, so that the
 * fault-injection tests reach unpacked messages too. */
extern ProtobufCAllocator rpc__pb_allocator;

/* ---- rpc_pin.c ---- */

/* The references gRPC holds on caller memory that a message is being sent
 * from. Zero-initialize; it must outlive the references. */
/* Packs m into a new byte buffer like rpc_msg_pack, except that each
 * singular bytes field of at least lift_min bytes is not copied: the
 * buffer points at the field's bytes, adding a reference on h per field
 * (rpc.h, struct rpc_hold), so they must stay unchanged until those
 * references are dropped. NULL on allocation failure (nothing is held
 * then). */
grpc_byte_buffer *rpc__msg_pack_held(const ProtobufCMessage *m, size_t lift_min,
                                     struct rpc_hold *h);
/* Returns once gRPC has dropped every reference on h (which has no
 * release), polling cq (the queue of the calls that sent from it)
 * meanwhile. */
void rpc__hold_wait(struct rpc_hold *h, grpc_completion_queue *cq);

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
/* Starts a batch of the one operation op with tag (counted in pending);
 * false, logged, if gRPC refused it. */
bool rpc__start_op(struct rpc_call *c, const grpc_op *op, struct rpc_tag *tag);
/* Starts RECV_CLOSE_ON_SERVER for an accepted call; false if it failed. */
bool rpc__start_close(struct rpc_call *c);
/* Completion of RECV_CLOSE_ON_SERVER / of a send batch. */
void rpc__on_close(struct rpc_call *c);
void rpc__on_send(struct rpc_call *c, int success);

/* ---- rpc_auth.c ---- */

/* Replaces the role tokens (NULL or "" = none for that role). Returns 0 or
 * SAT_ENOMEM (nothing changed). The old strings are wiped and freed. */
int rpc__auth_set(struct rpc_auth *a, const char *const tokens[RPC_NROLES]);
/* Wipes and frees the tokens. */
void rpc__auth_free(struct rpc_auth *a);
/* The value of metadata `key` (the first one), pointing into md. */
bool rpc__md_get(const grpc_metadata_array *md, const char *key, const char **v, size_t *len);
/* "client", "viewer", "worker" or "none". */
const char *rpc__role_name(int role);
/* Decides from c's metadata whether its method may run: OK, or the status
 * to refuse it with and the reason in why. *auth_failure is true when the
 * refusal counts against the peer (a wrong or missing token, an unknown
 * session). Fills c->role and c->session. */
grpc_status_code rpc__admit(struct rpc_server *s, struct rpc_call *c, char why[SAT_ERR_LEN],
                            bool *auth_failure);
/* Counts one failure of peer at now (ms) and logs it unless this peer was
 * logged less than a second ago. Returns the delay before answering. */
unsigned rpc__auth_fail(struct rpc_auth *a, const char *peer, uint64_t now, const char *method,
                        const char *why);

#endif
