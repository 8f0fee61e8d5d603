/* rpc_client.c - the client half of the RPC layer (see rpc.h).
 *
 * Calls are blocking. Each client owns one pluck completion queue; each
 * call waits for its own batches by plucking their tags, so several
 * threads may call at once (gRPC allows GRPC_MAX_COMPLETION_QUEUE_PLUCKERS
 * concurrent pluckers; we promise RPC_CLIENT_MAX_THREADS). Deadlines are
 * enforced by gRPC: a call past its deadline completes with
 * DEADLINE_EXCEEDED, so plucking needs no deadline of its own.
 */
#include "rpc.h"

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
static size_t call_md(struct rpc_client *c, char session[RPC_SESSION_MAX], grpc_metadata md[2])
{
    pthread_mutex_lock(&c->lock);
    memcpy(session, c->session, RPC_SESSION_MAX);
    pthread_mutex_unlock(&c->lock);
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
    grpc_call *call;
    grpc_metadata_array init_md, trail_md;
    bool got_init_md, finished;
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

static grpc_call *call_create(struct rpc_client *c, const char *method, int timeout_ms)
{
    gpr_timespec deadline = timeout_ms > 0
                                ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                               gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
                                : gpr_inf_future(GPR_CLOCK_MONOTONIC);
    grpc_slice m = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m, NULL,
                                               deadline, NULL);
    grpc_slice_unref(m); /* needed only during create_call */
    return call;
}

/* Sends one request (consuming req_bb) and waits for the response and the
 * status. On return *resp_bb is the response or NULL. */
static void unary_bb(struct rpc_client *c, const char *method, grpc_byte_buffer *req_bb,
                     int timeout_ms, grpc_byte_buffer **resp_bb, struct rpc_status *st)
{
    *resp_bb = NULL;
    grpc_call *call = call_create(c, method, timeout_ms);
    char session[RPC_SESSION_MAX];
    grpc_metadata md[2];
    size_t nmd = call_md(c, session, md);
    grpc_metadata_array init_md, trail_md;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;

    grpc_op ops[6];
    memset(ops, 0, sizeof ops); /* flags and reserved must be zero */
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = resp_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    char tag;
    grpc_call_error e = grpc_call_start_batch(call, ops, 6, &tag, NULL);
    if (e != GRPC_CALL_OK) {
        status_set(st, GRPC_STATUS_INTERNAL, grpc_call_error_to_string(e));
    } else {
        grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        status_from_slice(st, code, details);
    }
    if (error_string)
        gpr_free((void *)error_string);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_byte_buffer_destroy(req_bb);
    grpc_call_unref(call);
    if (st->code != GRPC_STATUS_OK && *resp_bb) {
        grpc_byte_buffer_destroy(*resp_bb);
        *resp_bb = NULL;
    }
}

int rpc_unary(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp, int timeout_ms,
              struct rpc_status *st)
{
    *resp = NULL;
    grpc_byte_buffer *req_bb = rpc_msg_pack(req);
    if (!req_bb) {
        status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory packing the request");
        return SAT_ENOMEM;
    }
    grpc_byte_buffer *resp_bb;
    unary_bb(c, method, req_bb, timeout_ms, &resp_bb, st);
    if (st->code != GRPC_STATUS_OK)
        return rpc_err_from_status(st->code);
    if (!resp_bb) {
        status_set(st, GRPC_STATUS_INTERNAL, "OK status without a response message");
        return SAT_EFORMAT;
    }
    int rc = rpc_msg_unpack(resp_bb, resp_desc, resp);
    grpc_byte_buffer_destroy(resp_bb);
    if (rc != 0) {
        status_set(st, GRPC_STATUS_INTERNAL, "response is not a valid message");
        return rc;
    }
    return 0;
}

int rpc_unary_raw(struct rpc_client *c, const char *method, const void *req, size_t len,
                  int timeout_ms, struct rpc_status *st)
{
    grpc_slice s = grpc_slice_from_copied_buffer(req, len);
    grpc_byte_buffer *req_bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_byte_buffer *resp_bb;
    unary_bb(c, method, req_bb, timeout_ms, &resp_bb, st);
    if (resp_bb)
        grpc_byte_buffer_destroy(resp_bb);
    return rpc_err_from_status(st->code);
}

/* ==== server streaming ===================================================== */

static int pluck_batch(struct rpc_stream *s, grpc_op *ops, size_t n)
{
    grpc_call_error e = grpc_call_start_batch(s->call, ops, n, &s->tag, NULL);
    if (e != GRPC_CALL_OK)
        return 0;
    grpc_event ev =
        grpc_completion_queue_pluck(s->c->cq, &s->tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.success;
}

/* Collects the final status; the call is over after this. */
static void stream_finish(struct rpc_stream *s, struct rpc_status *st)
{
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.status = &code;
    op.data.recv_status_on_client.status_details = &details;
    op.data.recv_status_on_client.trailing_metadata = &s->trail_md;
    op.data.recv_status_on_client.error_string = &error_string;
    if (pluck_batch(s, &op, 1) || code != GRPC_STATUS_UNKNOWN)
        status_from_slice(st, code, details);
    else
        status_set(st, GRPC_STATUS_INTERNAL, "cannot read the call's status");
    if (error_string)
        gpr_free((void *)error_string);
    grpc_slice_unref(details);
    s->finished = true;
}

int rpc_stream_open(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                    int timeout_ms, struct rpc_stream **out, struct rpc_status *st)
{
    *out = NULL;
    struct rpc_stream *s = sat_calloc(1, sizeof *s);
    grpc_byte_buffer *req_bb = s ? rpc_msg_pack(req) : NULL;
    if (!req_bb) {
        sat_free(s);
        status_set(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return SAT_ENOMEM;
    }
    s->c = c;
    s->call = call_create(c, method, timeout_ms);
    grpc_metadata_array_init(&s->init_md);
    grpc_metadata_array_init(&s->trail_md);
    char session[RPC_SESSION_MAX];
    grpc_metadata md[2];
    size_t nmd = call_md(c, session, md);
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* A failed send (peer down) shows up as the status of the first read. */
    (void)pluck_batch(s, ops, 3);
    grpc_byte_buffer_destroy(req_bb);
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
    grpc_byte_buffer *bb = NULL;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!s->got_init_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
        n++;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &bb;
    n++;
    int ok = pluck_batch(s, ops, n);
    s->got_init_md = true;
    if (!ok || !bb) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        stream_finish(s, st);
        return st->code == GRPC_STATUS_OK ? 0 : rpc_err_from_status(st->code);
    }
    int rc = rpc_msg_unpack(bb, d, msg);
    grpc_byte_buffer_destroy(bb);
    if (rc != 0) {
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
        grpc_call_cancel(s->call, NULL);
        stream_finish(s, &st);
    }
    grpc_metadata_array_destroy(&s->init_md);
    grpc_metadata_array_destroy(&s->trail_md);
    grpc_call_unref(s->call);
    sat_free(s);
}
