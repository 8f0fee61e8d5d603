/* rpc.h - Saturn's RPC layer: gRPC core (C API, no C++) + protobuf-c.
 *
 * Server side: a table of registered methods {path, request descriptor,
 * handler}. One request per method is kept outstanding and re-armed on each
 * new call. A completion-queue (CQ) thread receives gRPC events and hands
 * them to the libuv loop (locked queue + uv_async_send; the async callback
 * drains the whole queue, because sends coalesce). Every handler runs on the
 * loop thread and every reply is sent from it.
 *
 * Authenticate before reading (rpc_auth.c): methods are registered without
 * their payload, so a new call arrives with its initial metadata only. The
 * layer matches the bearer token against the role tokens (client, viewer,
 * worker; in constant time), checks the role against the method's `roles`
 * and, for methods flagged RPC_SESSION, asks the server's session_check
 * about the RPC_SESSION_KEY metadata. Only then does it receive the
 * message (GRPC_OP_RECV_MESSAGE) and unpack it (bytes that are not a valid
 * message get INVALID_ARGUMENT): an unauthenticated peer costs no
 * message-sized memory. Failures from one peer address are answered after
 * a growing, bounded delay and logged at most once a second per peer.
 * Unregistered methods get UNIMPLEMENTED. Message sizes are capped on
 * purpose (rpc_*_opts.max_msg); gRPC answers RESOURCE_EXHAUSTED beyond it.
 *
 * Client side: a channel with blocking unary calls (deadline, own pluck CQ)
 * and server-streaming reads, with a bearer token; each returns the gRPC
 * status and its details. The same calls as asynchronous steps
 * (rpc_async_*) on a completion queue of the caller's, for one thread that
 * drives many calls at once.
 *
 * TLS (rpc_tls.c): a server or channel given a struct rpc_tls speaks
 * gRPC over TLS (gRPC core's SSL credentials); the bearer token is still
 * sent and checked as call metadata, exactly as in plaintext.
 *
 * Status codes are mapped from SAT_E* codes in one place (rpc_status.c).
 *
 * Threads: rpc_server_* and rpc_call_* / rpc_reply* / rpc_stream_* functions
 * are called on the loop thread only. rpc_client_* may be used from several
 * threads at once (at most RPC_CLIENT_MAX_THREADS concurrent calls).
 */
#ifndef SATURN_RPC_H
#define SATURN_RPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "../util/err.h"

#define RPC_DEFAULT_MAX_MSG (64u << 20) /* bytes: default cap on every message, both ways */
#define RPC_MIN_MAX_MSG (4u << 10)      /* bytes: smallest accepted cap */
#define RPC_TOKEN_MAX 1024              /* bytes: longest bearer token */
#define RPC_DETAILS_LEN 512             /* bytes: status details kept by the client */
#define RPC_STREAM_QUEUE_MAX 1024       /* messages queued on one server stream */
#define RPC_CLIENT_MAX_THREADS 4        /* concurrent calls on one rpc_client */
#define RPC_TLS_FILE_MAX (1u << 20)     /* bytes: largest PEM file read */
#define RPC_SESSION_KEY "x-saturn-session" /* metadata: a worker's session secret */
#define RPC_SESSION_MAX 80                 /* bytes: longest session secret + NUL */
#define RPC_AUTH_DELAY_MAX_MS 2000         /* longest delay before an auth failure reply */

/* ==== library lifecycle ==================================================== */

/* grpc_init / grpc_shutdown. rpc_init comes before any other rpc_* call;
 * rpc_shutdown after every server, call and client is gone. */
void rpc_init(void);
void rpc_shutdown(void);

/* ==== status codes (rpc_status.c: the one mapping) ========================= */

/* SAT_E* -> gRPC status (SAT_OK -> GRPC_STATUS_OK). */
grpc_status_code rpc_status_from_err(int sat_err);
/* gRPC status -> SAT_E* (GRPC_STATUS_OK -> SAT_OK). */
int rpc_err_from_status(grpc_status_code code);
/* "OK", "NOT_FOUND", ...; never NULL. */
const char *rpc_status_name(grpc_status_code code);

/* ==== auth and messages (rpc_util.c) ======================================= */

/* Reads a bearer token from the first line of a file (trailing whitespace
 * stripped). The token must be 1..RPC_TOKEN_MAX-1 printable ASCII bytes
 * without spaces. Returns 0, or SAT_E* with a message in err. */
int rpc_token_load(const char *path, char token[RPC_TOKEN_MAX], char err[SAT_ERR_LEN]);

/* Compares a presented credential with the expected one in time that
 * depends only on the presented length, never on where they differ.
 * Returns 1 if equal. */
int rpc_secret_equal(const void *presented, size_t plen, const void *expected, size_t elen);

/* Frees a message that this layer unpacked (handler requests are freed by
 * the layer; client responses by the caller with this). NULL is a no-op. */
void rpc_msg_free(ProtobufCMessage *m);

/* Packs m into a new byte buffer (one copy). NULL on allocation failure.
 * Ownership of the buffer passes to the caller (grpc_byte_buffer_destroy). */
grpc_byte_buffer *rpc_msg_pack(const ProtobufCMessage *m);

/* Unpacks a byte buffer into a new message of type d: rpc_msg_decode with
 * RPC_LIFT_MIN and no landing. Returns 0, SAT_EFORMAT if the bytes are not
 * a valid message, SAT_ENOMEM. The buffer is not consumed. On success *out
 * belongs to the caller (rpc_msg_free). */
int rpc_msg_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                   ProtobufCMessage **out);

/* ---- decoding in place (rpc_wire.c) ---- */

#define RPC_LIFT_MIN (4u << 10) /* bytes: a bytes field this long is read in place */

/* A bytes field of a response that the caller wants copied straight into
 * its own memory instead of a buffer of the message's. */
struct rpc_land {
    uint32_t field; /* number of a singular bytes field of the top-level message */
    void *dst;      /* receives the field's bytes when there are exactly len of them */
    size_t len;
    bool landed; /* out: the bytes are in dst and the message's field is empty */
    /* When set, runs once the message has decoded except its long bytes
     * fields (m has them empty), before any of them is copied, and may set
     * field, dst and len from m (field 0: nothing lands). */
    void (*choose)(struct rpc_land *land, const ProtobufCMessage *m, void *arg);
    void *arg;
};

/* Decodes bb into a new message of type d, as protobuf-c would decode the
 * same bytes, with one copy of each long bytes field instead of two: the
 * top-level fields are walked in place over gRPC's slices, each singular
 * bytes field of at least lift_min bytes is copied once from the slices
 * (into land->dst when it is land's field with exactly land->len bytes,
 * else into a buffer the message owns), and the remaining fields are
 * unpacked by protobuf-c. dst is written only once the whole message has
 * decoded. land may be NULL.
 * Returns 0 with *out (the caller frees it with rpc_msg_free); SAT_EFORMAT
 * with the reason in why (a truncated or overlong tag, varint or length, a
 * length past the end, field number 0, an unsupported wire type, or bytes
 * protobuf-c refuses); SAT_ENOMEM. On failure *out is NULL, land->landed
 * is false and nothing of bb is consumed. */
int rpc_msg_decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d, size_t lift_min,
                   struct rpc_land *land, ProtobufCMessage **out, char why[SAT_ERR_LEN]);

/* Checks every string of m and of the messages inside it (rpc_strings.c):
 * valid UTF-8, and no control characters except in JSON documents. Returns
 * 0, or SAT_EINVAL with why naming the field ("field \"reason\": ..."). */
int rpc_msg_check_strings(const ProtobufCMessage *m, char why[SAT_ERR_LEN]);

/* ==== TLS material (rpc_tls.c) ============================================= */

/* PEM texts as gRPC core takes them; each NUL-terminated, sat_malloc'd, or
 * NULL when not given. A server has cert + key, and ca when it requires
 * client certificates signed by it; a client has ca (the CA that signed the
 * server's certificate), and cert + key when it presents a certificate. */
struct rpc_tls {
    char *cert; /* certificate chain, leaf first */
    char *key;  /* the leaf's private key (unencrypted) */
    char *ca;   /* CA certificates to verify the peer with */
};

/* File names from a command line; NULL = flag not given. */
struct rpc_tls_files {
    const char *cert, *key, *ca;
    bool server; /* saturnd: ca is --tls-client-ca; else ca is --tls-ca */
};

/* Records one command-line flag: name "tls-cert", "tls-key", "tls-ca" or
 * "tls-client-ca" (the long option, without "--"), value a file name that
 * must outlive f. Returns false for any other name. */
bool rpc_tls_files_set(struct rpc_tls_files *f, const char *name, const char *path);

/* Reads and checks the files: each readable, a regular PEM file of at most
 * RPC_TLS_FILE_MAX bytes; the key not accessible by other users, nor by its
 * group unless root owns it; the certificates parse; the key is unencrypted
 * and belongs to the certificate; the flags come in valid combinations
 * (cert and key together; a server's ca needs its cert; a client's cert
 * needs a ca). Messages name the flag and the file, never its contents.
 * Returns 0 with *t filled (all NULL when no file was given), or SAT_E*
 * with err filled and *t empty. The caller frees *t with rpc_tls_free. */
int rpc_tls_load(struct rpc_tls *t, const struct rpc_tls_files *f, char err[SAT_ERR_LEN]);
/* true when t holds TLS material (a server cert or a client CA). */
bool rpc_tls_on(const struct rpc_tls *t);
/* Wipes the key and frees the texts; t is empty afterwards. NULL is a no-op. */
void rpc_tls_free(struct rpc_tls *t);

/* ==== server =============================================================== */

struct rpc_server;
struct rpc_call;

enum rpc_method_flags {
    RPC_NO_AUTH = 1u << 0, /* served without a bearer token (health checks) */
    RPC_STREAM = 1u << 1,  /* server streaming: replies with rpc_stream_send/_end */
    RPC_SESSION = 1u << 2, /* needs RPC_SESSION_KEY metadata accepted by session_check */
};

/* Who presents which bearer token. The client token may call every
 * method; the others only the methods whose `roles` name them. */
enum rpc_role {
    RPC_ROLE_CLIENT, /* submit, cancel, everything */
    RPC_ROLE_VIEWER, /* read-only */
    RPC_ROLE_WORKER, /* the Worker and ParameterServer services */
    RPC_NROLES,
};
#define RPC_R_CLIENT (1u << RPC_ROLE_CLIENT)
#define RPC_R_VIEWER (1u << RPC_ROLE_VIEWER)
#define RPC_R_WORKER (1u << RPC_ROLE_WORKER)
#define RPC_R_ANY (RPC_R_CLIENT | RPC_R_VIEWER | RPC_R_WORKER)

/* A handler runs on the loop thread with a valid, unpacked request. The
 * request belongs to the call and stays valid until the call is finished.
 * The handler owns the call until it finishes it with exactly one of
 * rpc_reply, rpc_reply_err, rpc_reply_status or rpc_stream_end, either
 * before returning or later from any loop callback (a deferred reply).
 * After finishing, the call pointer is no longer valid. */
typedef void (*rpc_handler_fn)(struct rpc_call *call, const ProtobufCMessage *req, void *ud);

struct rpc_method {
    const char *path;                          /* "/saturn.v1.Client/GetJob" */
    const ProtobufCMessageDescriptor *request; /* type of the request message */
    rpc_handler_fn handler;
    unsigned flags; /* enum rpc_method_flags */
    unsigned roles; /* RPC_R_* allowed to call it (the client role always is); 0 = any */
};

/* Checks a session secret presented as RPC_SESSION_KEY metadata, on the
 * loop thread, before the request is read. Returns 0 to go on, or a SAT_E*
 * code the call is refused with (e.g. SAT_ENOENT: unknown session, the
 * worker registers again), with a message in why. */
typedef int (*rpc_session_fn)(void *ud, const char *secret, char why[SAT_ERR_LEN]);

struct rpc_server_opts {
    const char *listen;               /* "127.0.0.1:7070"; port 0 picks a free port */
    const char *token;                /* client bearer token; NULL or "" = no auth (dev only) */
    const char *viewer_token;         /* viewer role; NULL or "" = no viewer token */
    const char *worker_token;         /* worker role; NULL or "" = no worker token */
    rpc_session_fn session_check;     /* for RPC_SESSION methods; NULL = refuse them all */
    size_t max_msg;                   /* cap in bytes, both ways; 0 = RPC_DEFAULT_MAX_MSG */
    const struct rpc_method *methods; /* must outlive the server */
    size_t nmethods;
    void *ud;                  /* passed to every handler */
    const struct rpc_tls *tls; /* NULL or empty: plaintext; copied by the start */
    /* Where a request's long bytes field goes (a struct rpc_land choose
     * function, run with ud on the loop thread before the handler, on a
     * request that is not yet checked otherwise); NULL = in the message. */
    void (*land)(struct rpc_land *land, const ProtobufCMessage *req, void *ud);
};

/* Creates, binds and starts a server whose handlers run on `loop`. On
 * success *port is the bound TCP port. Returns 0, or SAT_E* with a message
 * in err (nothing is left running then). */
int rpc_server_start(struct rpc_server **out, uv_loop_t *loop, const struct rpc_server_opts *o,
                     int *port, char err[SAT_ERR_LEN]);

/* Stops accepting calls; calls already running may finish for grace_ms,
 * then the rest are cancelled (their cancel callbacks run; their owners
 * must still finish them). When every call is finished and gRPC has let go,
 * the server is freed and done(arg) runs on the loop. Call once. */
void rpc_server_stop(struct rpc_server *s, unsigned grace_ms, void (*done)(void *arg), void *arg);

/* Replaces the role tokens (rotation): calls that arrive from now on are
 * checked against the new ones; an old token is refused at once. NULL or
 * "" leaves a role without a token. Ignored when the server was started
 * without auth. Returns 0 or SAT_ENOMEM (the old tokens stay then). */
int rpc_server_set_tokens(struct rpc_server *s, const char *client, const char *viewer,
                          const char *worker);

/* Number of calls currently owned by handlers (deferred or streaming). */
size_t rpc_server_open_calls(const struct rpc_server *s);

/* ---- a call, as seen by its handler (loop thread only) ---- */

const char *rpc_call_method(const struct rpc_call *c); /* the method path */
const char *rpc_call_peer(struct rpc_call *c);         /* "ipv4:127.0.0.1:5555" or "?" */
/* The session secret the call presented (checked by session_check before
 * the handler ran), or "" for a method without RPC_SESSION. */
const char *rpc_call_session(const struct rpc_call *c);
/* Milliseconds left before the client's deadline; INT64_MAX if none. */
int64_t rpc_call_remaining_ms(const struct rpc_call *c);
/* true when the request's bytes field chosen by rpc_server_opts.land went
 * to the chosen memory (the request's field is then empty). */
bool rpc_call_landed(const struct rpc_call *c);
/* 1 once the client has gone away (cancelled, deadline, disconnect). */
int rpc_call_cancelled(const struct rpc_call *c);

/* cb runs once, on the loop, if the client goes away while the handler
 * still owns the call. The owner must still finish the call (from cb or
 * later); replies to a gone client are dropped. */
void rpc_call_on_cancel(struct rpc_call *c, void (*cb)(struct rpc_call *c, void *arg), void *arg);

/* Finishes a unary call with OK and a response (packed now: the caller keeps
 * ownership of resp and may free it at once). Returns 0, or SAT_ENOMEM if the
 * response could not be packed (the client then gets INTERNAL). */
int rpc_reply(struct rpc_call *c, const ProtobufCMessage *resp);
/* Memory that a message's long bytes fields are sent from in place
 * (rpc_reply_held; the blocking client calls use it for their requests).
 * Every slice gRPC holds on it counts one reference in refs; gRPC drops
 * each from one of its threads once the bytes are written or the call is
 * gone. When refs reaches 0 that way, release (if set) runs, on that
 * thread. An owner that keeps a reference of its own in refs gets release
 * exactly once, when neither it nor any send needs the memory. */
struct rpc_hold {
    atomic_int refs;
    void (*release)(struct rpc_hold *h);
};

/* rpc_reply that sends each singular bytes field of at least RPC_LIFT_MIN
 * bytes from the caller's memory instead of a copy: the memory must stay
 * unchanged while h holds the references this adds (one per such field).
 * Returns as rpc_reply; on failure no reference was added. */
int rpc_reply_held(struct rpc_call *c, const ProtobufCMessage *resp, struct rpc_hold *h);

/* Finishes a unary or streaming call with the status mapped from sat_err and
 * a formatted message as the status details. */
int rpc_reply_err(struct rpc_call *c, int sat_err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Finishes a call with an explicit gRPC status (e.g. UNIMPLEMENTED). */
int rpc_reply_status(struct rpc_call *c, grpc_status_code code, const char *details);

/* Queues one message on a streaming call; messages go out in order, one
 * batch at a time. Returns 0; SAT_ECANCELLED if the client has gone (the
 * message is dropped); SAT_ETOOBIG if RPC_STREAM_QUEUE_MAX messages are
 * already waiting (the client is too slow: end the stream); SAT_ENOMEM. */
int rpc_stream_send(struct rpc_call *c, const ProtobufCMessage *msg);
/* Finishes a streaming call with OK once queued messages are sent. */
int rpc_stream_end(struct rpc_call *c);

/* ==== client =============================================================== */

struct rpc_client;

struct rpc_client_opts {
    const char *target;        /* "127.0.0.1:7070" (a bare host:port gets "ipv4:" for IPv4) */
    const char *token;         /* bearer token; NULL = send none */
    size_t max_msg;            /* cap in bytes, both ways; 0 = RPC_DEFAULT_MAX_MSG */
    const struct rpc_tls *tls; /* NULL or empty: plaintext; copied by rpc_client_new */
};

/* The outcome of a call as the client saw it. */
struct rpc_status {
    grpc_status_code code;
    char details[RPC_DETAILS_LEN];
};

/* Creates a channel (connection is lazy). Returns 0 or SAT_E* (err filled). */
int rpc_client_new(struct rpc_client **out, const struct rpc_client_opts *o, char err[SAT_ERR_LEN]);
/* Sends secret as RPC_SESSION_KEY metadata on every later call ("" or NULL:
 * none). Safe while other threads call. Returns 0, SAT_ETOOBIG or SAT_EINVAL
 * (not printable ASCII). */
int rpc_client_set_session(struct rpc_client *c, const char *secret);
/* Frees the channel; no call may be running on it. NULL is a no-op. */
void rpc_client_free(struct rpc_client *c);

/* A blocking unary call with a deadline of timeout_ms (<= 0: none). On OK
 * returns 0 and *resp is a new message of type resp_desc that the caller
 * frees with rpc_msg_free. Otherwise *resp is NULL and the return value is
 * rpc_err_from_status(st->code) (or a local SAT_E* with st->code set to
 * the closest status). st is always filled. */
int rpc_unary(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, int timeout_ms,
              struct rpc_status *st);

/* rpc_unary whose response decodes with land (rpc_msg_decode): a bytes
 * field of the expected length goes straight into land->dst. */
int rpc_unary_into(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, struct rpc_land *land,
                   ProtobufCMessage **resp, int timeout_ms, struct rpc_status *st);

/* The same with raw request bytes and no response decoding (tests, probes). */
int rpc_unary_raw(struct rpc_client *c, const char *method, const void *req, size_t len,
                  int timeout_ms, struct rpc_status *st);

struct rpc_stream;

/* Starts a server-streaming call (timeout_ms <= 0: no deadline). Returns 0
 * and *out, or SAT_E* with st filled. */
int rpc_stream_open(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                    int timeout_ms, struct rpc_stream **out, struct rpc_status *st);
/* Reads the next message. Returns 1 with *msg (free with rpc_msg_free);
 * 0 at a clean end of the stream (status OK, st filled);
 * or SAT_E* with st filled: a non-OK final status, or a message that does
 * not decode (INTERNAL). */
int rpc_stream_read(struct rpc_stream *s, const ProtobufCMessageDescriptor *d,
                    ProtobufCMessage **msg, struct rpc_status *st);
/* Cancels the call if it is still open and frees the stream. */
void rpc_stream_close(struct rpc_stream *s);

/* ---- asynchronous calls ----
 * The caller owns a completion queue (grpc_completion_queue_create_for_next),
 * starts calls bound to it, and hands each tag that grpc_completion_queue_next
 * returns back to the matching step. A struct rpc_async is caller-allocated
 * and lives until rpc_async_finish; its fields are the layer's. The steps
 * of one call run on one thread at a time; different calls, on one client
 * or several, are independent.
 *
 * Every started call ends with exactly one rpc_async_finish, also when its
 * start failed: a start that returns SAT_E* has nothing in flight (its tag
 * never completes) and leaves the failure for finish to report. */
struct rpc_async {
    grpc_call *call;
    /* What the first batch sends as initial metadata (token, session): it
     * must outlive the batch, so it lives here. */
    char session[RPC_SESSION_MAX];
    grpc_metadata md[2];
    grpc_byte_buffer *msg; /* the received message, until taken */
    grpc_metadata_array init_md, trail_md;
    bool got_init_md;
    grpc_status_code code;
    grpc_slice details;
    const char *error_string;
};

/* Starts a unary call: one batch whose tag completes when the call is over
 * (then rpc_async_finish). Returns 0, or SAT_E* (see above). */
int rpc_async_unary(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                    const ProtobufCMessage *req, int timeout_ms, struct rpc_async *a, void *tag);
/* The same with the worker session secret `session` instead of the
 * client's (one channel acting for many workers, e.g. a load generator). */
int rpc_async_unary_as(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                       const ProtobufCMessage *req, int timeout_ms, const char *session,
                       struct rpc_async *a, void *tag);
/* Starts a server-streaming call: tag completes when the request is out.
 * Then read with rpc_async_read; when a read brings no message, ask for
 * the status with rpc_async_status, and finish after its tag. */
int rpc_async_stream(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                     const ProtobufCMessage *req, int timeout_ms, struct rpc_async *a, void *tag);
/* Asks for the next message of a stream (one read in flight at a time).
 * Returns 0 or SAT_E* (nothing started; the call is then released). */
int rpc_async_read(struct rpc_async *a, void *tag);
/* After a read's tag: 1 with *msg decoded (rpc_msg_free), 0 if the read
 * brought none (the stream is over), or SAT_EFORMAT/SAT_ENOMEM. */
int rpc_async_take(struct rpc_async *a, const ProtobufCMessageDescriptor *d,
                   ProtobufCMessage **msg);
/* Asks for a stream's final status; returns as rpc_async_read. */
int rpc_async_status(struct rpc_async *a, void *tag);
/* Cancels a call in flight; its outstanding tags still complete. */
void rpc_async_cancel(struct rpc_async *a);
/* After the call's last tag: fills st and, for a unary call given
 * resp_desc, decodes the response into *resp (free with rpc_msg_free);
 * then frees the call. Returns as rpc_unary. resp may be NULL when
 * resp_desc is. */
int rpc_async_finish(struct rpc_async *a, const ProtobufCMessageDescriptor *resp_desc,
                     ProtobufCMessage **resp, struct rpc_status *st);

#endif
