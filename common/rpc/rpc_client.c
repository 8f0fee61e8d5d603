/* rpc_client.c - the client half of the RPC layer (see rpc.h).
 *
 * Every call is built by the asynchronous steps (rpc_async_*): a call
 * bound to some completion queue, batches started with the caller's tags,
 * and one finish that reads the status and frees the call. The blocking
 * calls are those steps on the client's own pluck completion queue; each
 * call waits for its own batches by plucking their tags, so several
 * threads may call at once (gRPC allows GRPC_MAX_COMPLETION_QUEUE_PLUCKERS
 * concurrent pluckers; we promise RPC_CLIENT_MAX_THREADS). Deadlines are
 * enforced by gRPC: a call past its deadline completes with
 * DEADLINE_EXCEEDED, so plucking needs no deadline of its own.
 */
#include "rpc_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "../util/xalloc.h"

struct rpc_client {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    char *auth; /* "Bearer <token>" or NULL */
    /* The worker session secret sent as RPC_SESSION_KEY metadata ("" =
     * none); set by rpc_client_set_session while other threads call. */
    pthread_mutex_t lock;
    char session[RPC_SESSION_MAX];
};

/* The call's initial metadata: the bearer token and the session secret.
 * `session` is the caller's copy of c->session (taken under the lock). */
static size_t call_md(struct rpc_client *c, const char *as, char session[RPC_SESSION_MAX],
                      grpc_metadata md[2])
{
    if (as) {
        snprintf(session, RPC_SESSION_MAX, "%s", as);
    } else {
        pthread_mutex_lock(&c->lock);
        memcpy(session, c->session, RPC_SESSION_MAX);
        pthread_mutex_unlock(&c->lock);
    }
    memset(md, 0, 2 * sizeof *md);
    size_t n = 0;
    if (c->auth) {
        md[n].key = grpc_slice_from_static_string("authorization");
        md[n].value = grpc_slice_from_static_string(c->auth);
        n++;
    }
    if (*session) {
        md[n].key = grpc_slice_from_static_string(RPC_SESSION_KEY);
        md[n].value = grpc_slice_from_static_string(session);
        n++;
    }
    return n;
}

int rpc_client_set_session(struct rpc_client *c, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n >= RPC_SESSION_MAX)
        return SAT_ETOOBIG;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)secret[i] <= 0x20 || (unsigned char)secret[i] >= 0x7f)
            return SAT_EINVAL;
    pthread_mutex_lock(&c->lock);
    memcpy(c->session, n ? secret : "", n + 1);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

struct rpc_stream {
    struct rpc_client *c;
    struct rpc_async a;
    bool finished;
    char tag; /* its address is the stream's batch tag */
};

static void status_set(struct rpc_status *st, grpc_status_code code, const char *details)
{
    st->code = code;
    snprintf(st->details, sizeof st->details, "%s", details ? details : "");
}

static void status_from_slice(struct rpc_status *st, grpc_status_code code, grpc_slice details)
{
    size_t n = GRPC_SLICE_LENGTH(details);
    if (n >= sizeof st->details)
        n = sizeof st->details - 1;
    memcpy(st->details, GRPC_SLICE_START_PTR(details), n);
    st->details[n] = 0;
    st->code = code;
}

/* A bare "1.2.3.4:port" gets the "ipv4:" scheme, which skips DNS. */
static char *make_target(const char *t)
{
    size_t n = strlen(t);
    bool ipv4 = n > 0;
    const char *colon = strrchr(t, ':');
    if (!colon)
        ipv4 = false;
    for (const char *p = t; ipv4 && p < colon; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            ipv4 = false;
    char *out = sat_malloc(n + 6);
    if (out)
        snprintf(out, n + 6, "%s%s", ipv4 ? "ipv4:" : "", t);
    return out;
}

int rpc_client_new(struct rpc_client **out, const struct rpc_client_opts *o, char err[SAT_ERR_LEN])
{
    *out = NULL;
    if (!o->target || !*o->target || strlen(o->target) > 255)
        return sat_errf(err, SAT_EINVAL, "coordinator address is empty or too long");
    size_t max_msg = o->max_msg ? o->max_msg : RPC_DEFAULT_MAX_MSG;
    if (max_msg < RPC_MIN_MAX_MSG || max_msg > INT32_MAX)
        return sat_errf(err, SAT_ERANGE, "message cap %zu out of range", max_msg);
    struct rpc_client *c = sat_calloc(1, sizeof *c);
    char *target = make_target(o->target);
    if (c && o->token && *o->token) {
        size_t n = strlen(o->token) + 8;
        c->auth = sat_malloc(n);
        if (c->auth)
            snprintf(c->auth, n, "Bearer %s", o->token);
    }
    if (!c || !target || (o->token && *o->token && !c->auth)) {
        if (c)
            sat_free(c->auth);
        sat_free(c);
        sat_free(target);
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    }
    /* Limits on purpose (see rpc_server.c). Reconnect backoff is capped at
     * 2 s so that a coordinator that comes back is found quickly; callers
     * (the worker) add their own capped backoff between attempts. A local
     * subchannel pool gives each client its own connection instead of
     * sharing one per process. */
    enum { NARGS = 6 };
    grpc_arg args[NARGS];
    memset(args, 0, sizeof args);
    const char *keys[NARGS] = {
        GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,   GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
        GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
        GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,     GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL};
    int vals[NARGS] = {(int)max_msg, (int)max_msg, 200, 200, 2000, 1};
    for (int i = 0; i < NARGS; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)keys[i];
        args[i].value.integer = vals[i];
    }
    grpc_channel_args cargs = {.num_args = NARGS, .args = args};
    grpc_channel_credentials *creds;
    if (o->tls && o->tls->ca) {
        /* The server's certificate must chain to tls->ca and name the
         * target's host (its IP address for an "ipv4:" target). gRPC copies
         * the PEM texts. */
        grpc_ssl_pem_key_cert_pair pair = {.private_key = o->tls->key, .cert_chain = o->tls->cert};
        creds = grpc_ssl_credentials_create_ex(o->tls->ca, o->tls->cert ? &pair : NULL, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    c->ch = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    sat_free(target);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void rpc_client_free(struct rpc_client *c)
{
    if (!c)
        return;
    grpc_channel_destroy(c->ch);
    /* Every batch was plucked, so the queue is empty: shut it down and
     * collect the shutdown event before destroying it. */
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_completion_queue_destroy(c->cq);
    pthread_mutex_destroy(&c->lock);
    sat_free(c->auth);
    sat_free(c);
}

static grpc_call *call_create(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                              int timeout_ms)
{
    gpr_timespec deadline = timeout_ms > 0
                                ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                               gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
                                : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_slice m = grpc_slice_from_copied_string(method);
    grpc_call *call =
        grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL, deadline, NULL);
    grpc_slice_unref(m); /* needed only during create_call */
    return call;
}

/* ==== asynchronous steps =================================================== */

/* Frees what the call holds; a is empty (and finished) afterwards. */
static void async_release(struct rpc_async *a)
{
    if (a->error_string)
        gpr_free((void *)a->error_string);
    a->error_string = NULL;
    grpc_slice_unref(a->details);
    a->details = grpc_empty_slice();
    if (a->msg)
        grpc_byte_buffer_destroy(a->msg);
    a->msg = NULL;
    if (a->call) {
        grpc_metadata_array_destroy(&a->init_md);
        grpc_metadata_array_destroy(&a->trail_md);
        grpc_call_unref(a->call);
    }
    a->call = NULL;
}

/* Records a local failure as the call's status; the call is released. */
static int async_fail(struct rpc_async *a, grpc_status_code code, const char *why, int rc)
{
    async_release(a);
    a->code = code;
    a->details = grpc_slice_from_copied_string(why);
    return rc;
}

static int async_batch(struct rpc_async *a, grpc_op *ops, size_t n, void *tag)
{
    grpc_call_error e = grpc_call_start_batch(a->call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK)
        return async_fail(a, GRPC_STATUS_INTERNAL, grpc_call_error_to_string(e), SAT_EIO);
    return 0;
}

/* Creates the call and starts its first batch: initial metadata (the
 * token), the request (req_bb, consumed here whatever happens), the
 * half-close; a unary call also asks for the response and the status in
 * the same batch. */
static int async_start_bb(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                          grpc_byte_buffer *req_bb, int timeout_ms, bool unary, const char *as,
                          struct rpc_async *a, void *tag)
{
    memset(a, 0, sizeof *a);
    a->code = GRPC_STATUS_UNKNOWN;
    a->details = grpc_empty_slice();
    if (!req_bb)
        return async_fail(a, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory packing the request",
                          SAT_ENOMEM);
    a->call = call_create(c, cq, method, timeout_ms);
    grpc_metadata_array_init(&a->init_md);
    grpc_metadata_array_init(&a->trail_md);
    grpc_metadata *md = a->md;
    size_t nmd = call_md(c, as, a->session, md);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops); /* flags and reserved must be zero */
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    size_t n = 3;
    if (unary) {
        ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[3].data.recv_initial_metadata.recv_initial_metadata = &a->init_md;
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = &a->msg;
        ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        ops[5].data.recv_status_on_client.status = &a->code;
        ops[5].data.recv_status_on_client.status_details = &a->details;
        ops[5].data.recv_status_on_client.trailing_metadata = &a->trail_md;
        ops[5].data.recv_status_on_client.error_string = &a->error_string;
        n = 6;
        a->got_init_md = true;
    }
    int rc = async_batch(a, ops, n, tag);
    /* gRPC took what it needs of the message (a sent buffer is emptied). */
    grpc_byte_buffer_destroy(req_bb);
    return rc;
}

int rpc_async_unary(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                    const ProtobufCMessage *req, int timeout_ms, struct rpc_async *a, void *tag)
{
    return async_start_bb(c, cq, method, rpc_msg_pack(req), timeout_ms, true, NULL, a, tag);
}

int rpc_async_unary_as(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                       const ProtobufCMessage *req, int timeout_ms, const char *session,
                       struct rpc_async *a, void *tag)
{
    return async_start_bb(c, cq, method, rpc_msg_pack(req), timeout_ms, true, session, a, tag);
}

int rpc_async_stream(struct rpc_client *c, grpc_completion_queue *cq, const char *method,
                     const ProtobufCMessage *req, int timeout_ms, struct rpc_async *a, void *tag)
{
    return async_start_bb(c, cq, method, rpc_msg_pack(req), timeout_ms, false, NULL, a, tag);
}

int rpc_async_read(struct rpc_async *a, void *tag)
{
    if (!a->call)
        return SAT_ESTATE;
    if (a->msg)
        grpc_byte_buffer_destroy(a->msg);
    a->msg = NULL;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!a->got_init_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n].data.recv_initial_metadata.recv_initial_metadata = &a->init_md;
        n++;
        a->got_init_md = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &a->msg;
    n++;
    return async_batch(a, ops, n, tag);
}

int rpc_async_take(struct rpc_async *a, const ProtobufCMessageDescriptor *d, ProtobufCMessage **msg)
{
    *msg = NULL;
    if (!a->msg)
        return 0;
    int rc = rpc_msg_unpack(a->msg, d, msg);
    grpc_byte_buffer_destroy(a->msg);
    a->msg = NULL;
    return rc == 0 ? 1 : rc;
}

int rpc_async_status(struct rpc_async *a, void *tag)
{
    if (!a->call)
        return SAT_ESTATE;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.status = &a->code;
    op.data.recv_status_on_client.status_details = &a->details;
    op.data.recv_status_on_client.trailing_metadata = &a->trail_md;
    op.data.recv_status_on_client.error_string = &a->error_string;
    return async_batch(a, &op, 1, tag);
}

void rpc_async_cancel(struct rpc_async *a)
{
    if (a->call)
        grpc_call_cancel(a->call, NULL);
}

/* rpc_async_finish, decoding the response with land (may be NULL). */
static int async_finish_into(struct rpc_async *a, const ProtobufCMessageDescriptor *resp_desc,
                             struct rpc_land *land, ProtobufCMessage **resp, struct rpc_status *st)
{
    if (resp)
        *resp = NULL;
    status_from_slice(st, a->code, a->details);
    int rc = rpc_err_from_status(st->code);
    if (rc == 0 && resp_desc) {
        char why[SAT_ERR_LEN];
        if (!a->msg) {
            status_set(st, GRPC_STATUS_INTERNAL, "OK status without a response message");
            rc = SAT_EFORMAT;
        } else if ((rc = rpc_msg_decode(a->msg, resp_desc, RPC_LIFT_MIN, land, resp, why)) != 0) {
            char msg[RPC_DETAILS_LEN];
            snprintf(msg, sizeof msg, "response is not a valid message: %s", why);
            status_set(st, GRPC_STATUS_INTERNAL, msg);
        }
    }
    async_release(a);
    return rc;
}

int rpc_async_finish(struct rpc_async *a, const ProtobufCMessageDescriptor *resp_desc,
                     ProtobufCMessage **resp, struct rpc_status *st)
{
    return async_finish_into(a, resp_desc, NULL, resp, st);
}

/* ==== blocking calls: the steps above on the client's pluck queue ========== */

static void pluck(struct rpc_client *c, void *tag)
{
    grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
}

int rpc_unary(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, int timeout_ms,
              struct rpc_status *st)
{
    return rpc_unary_into(c, method, req, resp_desc, NULL, resp, timeout_ms, st);
}

int rpc_unary_into(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, struct rpc_land *land,
                   ProtobufCMessage **resp, int timeout_ms, struct rpc_status *st)
{
    /* The call blocks until it is over, so the request's long bytes fields
     * are sent from the caller's memory (struct rpc_hold) instead of a copy. */
    struct rpc_hold hold = {0};
    struct rpc_async a;
    grpc_byte_buffer *bb = rpc__msg_pack_held(req, RPC_LIFT_MIN, &hold);
    if (async_start_bb(c, c->cq, method, bb, timeout_ms, true, NULL, &a, &a) == 0)
        pluck(c, &a);
    int rc = async_finish_into(&a, resp_desc, land, resp, st);
    rpc__hold_wait(&hold, c->cq);
    return rc;
}

int rpc_unary_raw(struct rpc_client *c, const char *method, const void *req, size_t len,
                  int timeout_ms, struct rpc_status *st)
{
    grpc_slice s = grpc_slice_from_copied_buffer(req, len);
    grpc_byte_buffer *req_bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    struct rpc_async a;
    if (async_start_bb(c, c->cq, method, req_bb, timeout_ms, true, NULL, &a, &a) == 0)
        pluck(c, &a);
    return rpc_async_finish(&a, NULL, NULL, st);
}

/* ==== server streaming ===================================================== */

/* Collects the final status; the call is over after this. */
static void stream_finish(struct rpc_stream *s, struct rpc_status *st)
{
    if (rpc_async_status(&s->a, &s->tag) == 0)
        pluck(s->c, &s->tag);
    rpc_async_finish(&s->a, NULL, NULL, st);
    s->finished = true;
}

int rpc_stream_open(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                    int timeout_ms, struct rpc_stream **out, struct rpc_status *st)
{
    *out = NULL;
    struct rpc_stream *s = sat_calloc(1, sizeof *s);
    if (!s) {
        status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return SAT_ENOMEM;
    }
    s->c = c;
    int rc = rpc_async_stream(c, c->cq, method, req, timeout_ms, &s->a, &s->tag);
    if (rc != 0) {
        rpc_async_finish(&s->a, NULL, NULL, st);
        sat_free(s);
        return rc;
    }
    /* A failed send (peer down) shows up as the status of the first read. */
    pluck(c, &s->tag);
    status_set(st, GRPC_STATUS_OK, "");
    *out = s;
    return 0;
}

int rpc_stream_read(struct rpc_stream *s, const ProtobufCMessageDescriptor *d,
                    ProtobufCMessage **msg, struct rpc_status *st)
{
    *msg = NULL;
    if (s->finished) {
        status_set(st, GRPC_STATUS_FAILED_PRECONDITION, "stream already finished");
        return SAT_ESTATE;
    }
    int ok = 0;
    if (rpc_async_read(&s->a, &s->tag) == 0) {
        grpc_event ev = grpc_completion_queue_pluck(s->c->cq, &s->tag,
                                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        ok = ev.success;
    }
    if (!ok || !s->a.msg) {
        stream_finish(s, st);
        return st->code == GRPC_STATUS_OK ? 0 : rpc_err_from_status(st->code);
    }
    int rc = rpc_async_take(&s->a, d, msg);
    if (rc < 0) {
        status_set(st, GRPC_STATUS_INTERNAL, "stream message is not a valid message");
        return rc;
    }
    status_set(st, GRPC_STATUS_OK, "");
    return 1;
}

void rpc_stream_close(struct rpc_stream *s)
{
    if (!s)
        return;
    if (!s->finished) {
        struct rpc_status st;
        rpc_async_cancel(&s->a);
        stream_finish(s, &st);
    }
    sat_free(s);
}
