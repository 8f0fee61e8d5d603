/* rpc_server.c - the server half of the RPC layer (see rpc.h).
 *
 * Threads. The CQ thread blocks in grpc_completion_queue_next and does one
 * thing with each event: it stores `success` in the event's tag, appends
 * the tag to a mutex-protected list and calls uv_async_send. The tags are
 * embedded in the call contexts and each has at most one operation in
 * flight, so the hand-over allocates nothing. The loop thread's async
 * callback swaps the whole list out (sends coalesce) and dispatches each
 * tag by kind. Everything else - re-arming requests, auth, unpacking,
 * handlers, every grpc_call_start_batch - happens on the loop thread.
 *
 * A call in two steps. Methods are registered without their payload, so
 * TAG_NEW_CALL brings the initial metadata only; rpc__admit (rpc_auth.c)
 * decides from it, a refusal is sent without ever reading the message
 * (after the peer's delay, for authentication failures), and an admitted
 * call starts GRPC_OP_RECV_MESSAGE; TAG_RECV unpacks it and runs the
 * handler.
 *
 * Call contexts and the reply API live in rpc_call.c (rpc_int.h).
 *
 * Shutdown (the order that leaves LSan clean, docs grpc-core.md):
 *   grpc_server_shutdown_and_notify -> grace timer -> cancel_all_calls ->
 *   drain until the shutdown tag has arrived and no context is left ->
 *   grpc_server_destroy -> grpc_completion_queue_shutdown -> the CQ thread
 *   sees GRPC_QUEUE_SHUTDOWN and exits -> join -> cq destroy -> close the
 *   uv handles -> free -> done callback.
 */
#include "rpc_int.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "../util/log.h"
#include "../util/xalloc.h"

static void arm_all(struct rpc_server *s);

/* ==== the CQ thread and the hand-over to the loop ========================== */

static void *cq_main(void *arg)
{
    struct rpc_server *s = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue; /* GRPC_QUEUE_TIMEOUT carries no tag */
        struct rpc_tag *t = ev.tag;
        t->success = ev.success;
        t->next = NULL;
        pthread_mutex_lock(&s->lock);
        if (s->ev_tail)
            s->ev_tail->next = t;
        else
            s->ev_head = t;
        s->ev_tail = t;
        pthread_mutex_unlock(&s->lock);
        uv_async_send(&s->async);
    }
    return NULL;
}

size_t rpc_server_open_calls(const struct rpc_server *s)
{
    return s->nowned;
}

/* ==== arming requests ====================================================== */

static void arm_slot(struct rpc_server *s, struct method_slot *slot)
{
    if (slot->armed || s->stopping)
        return;
    struct rpc_call *c = rpc__call_new(s, slot);
    if (!c)
        return; /* retried by the timer */
    /* No payload: the message is received only once the call is admitted. */
    grpc_call_error e = grpc_server_request_registered_call(
        s->server, slot->handle, &c->call, &c->deadline, &c->md, NULL, s->cq, s->cq, &c->tag_new);
    if (e != GRPC_CALL_OK) {
        log_error("rpc: request_registered_call(%s): %s", slot->m->path,
                  grpc_call_error_to_string(e));
        rpc__call_free(c);
        return;
    }
    c->pending++;
    slot->armed = true;
}

static void arm_generic(struct rpc_server *s)
{
    if (s->generic_armed || s->stopping)
        return;
    struct rpc_call *c = rpc__call_new(s, NULL);
    if (!c)
        return;
    grpc_call_error e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, s->cq,
                                                 s->cq, &c->tag_new);
    if (e != GRPC_CALL_OK) {
        log_error("rpc: request_call: %s", grpc_call_error_to_string(e));
        rpc__call_free(c);
        return;
    }
    c->pending++;
    s->generic_armed = 1;
}

static void arm_all(struct rpc_server *s)
{
    for (size_t i = 0; i < s->nslots; i++)
        arm_slot(s, &s->slots[i]);
    arm_generic(s);
}

/* ==== event dispatch (loop thread) ========================================= */

/* ==== refusals ============================================================= */

static void on_delay_timer(uv_timer_t *t);

static void delay_timer_start(struct rpc_server *s)
{
    uint64_t now = uv_now(s->loop), due = UINT64_MAX;
    for (struct rpc_call *c = s->delayed; c; c = c->delay_next)
        if (c->delay_due < due)
            due = c->delay_due;
    if (due != UINT64_MAX)
        uv_timer_start(&s->delay_timer, on_delay_timer, due > now ? due - now : 0, 0);
}

/* Answers the delayed refusals that are due (all of them when stopping). */
static void on_delay_timer(uv_timer_t *t)
{
    struct rpc_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct rpc_call **pp = &s->delayed;
    while (*pp) {
        struct rpc_call *c = *pp;
        if (!s->stopping && c->delay_due > now) {
            pp = &c->delay_next;
            continue;
        }
        *pp = c->delay_next;
        s->ndelayed--;
        char *why = c->delay_details;
        c->delay_details = NULL;
        rpc_reply_status(c, c->delay_code, why ? why : ""); /* may free c */
        sat_free(why);
    }
    delay_timer_start(s);
}

/* Refuses a call that was not admitted: at once, or after the peer's delay
 * when it counts as an authentication failure. */
static void refuse(struct rpc_server *s, struct rpc_call *c, grpc_status_code code, const char *why,
                   bool auth_failure)
{
    s->trim_ticks = 3;
    if (!auth_failure) {
        log_info("rpc: %s from %s refused: %s", rpc_call_method(c), rpc_call_peer(c), why);
        rpc__reject(c, code, why);
        return;
    }
    unsigned delay =
        rpc__auth_fail(&s->auth, rpc_call_peer(c), uv_now(s->loop), rpc_call_method(c), why);
    char *copy = delay ? sat_strdup(why) : NULL;
    if (!copy || s->ndelayed >= RPC_DELAYED_MAX || s->stopping) {
        sat_free(copy);
        rpc__reject(c, code, why);
        return;
    }
    /* Owned by the layer until answered, so that a client going away
     * meanwhile does not free it under the list. */
    c->owned = true;
    s->nowned++;
    c->delay_code = code;
    c->delay_details = copy;
    c->delay_due = uv_now(s->loop) + delay;
    c->delay_next = s->delayed;
    s->delayed = c;
    s->ndelayed++;
    delay_timer_start(s);
}

/* ==== receiving an admitted call's message ================================= */

static void start_recv(struct rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->payload;
    if (!rpc__start_op(c, &op, &c->tag_recv))
        rpc__reject(c, GRPC_STATUS_INTERNAL, "cannot receive the request");
}

static void on_recv(struct rpc_server *s, struct rpc_call *c, int success)
{
    struct method_slot *slot = c->slot;
    c->pending--;
    if (s->stopping) {
        rpc__reject(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (!success || !c->payload) {
        /* The client cancelled (or its deadline fired) while the message
         * was in flight, or it sent no message at all. */
        rpc__reject(c, GRPC_STATUS_INVALID_ARGUMENT, "missing request message");
        return;
    }
    char why[SAT_ERR_LEN];
    struct rpc_land land = {.choose = s->land, .arg = s->ud};
    int rc = rpc_msg_decode(c->payload, slot->m->request, RPC_LIFT_MIN, s->land ? &land : NULL,
                            &c->req, why);
    c->landed = rc == 0 && land.landed;
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
    if (rc != 0) {
        char msg[RPC_DETAILS_LEN];
        snprintf(msg, sizeof msg, "request is not a valid %s message: %s", slot->m->request->name,
                 why);
        log_info("rpc: %s from %s: %s", slot->m->path, rpc_call_peer(c), msg);
        rpc__reject(
            c, rc == SAT_ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
            msg);
        return;
    }
    if (rpc_msg_check_strings(c->req, why) != 0) {
        log_info("rpc: %s from %s: %s", slot->m->path, rpc_call_peer(c), why);
        rpc__reject(c, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    c->owned = true;
    s->nowned++;
    slot->m->handler(c, c->req, s->ud);
}

static void on_new_call(struct rpc_server *s, struct rpc_call *c, int success)
{
    struct method_slot *slot = c->slot;
    c->pending--;
    if (slot)
        slot->armed = false;
    else
        s->generic_armed = 0;
    if (!success) {
        /* The server is shutting down: the request never matched. */
        rpc__call_maybe_free(c);
        return;
    }
    /* Re-arm first so the next call of this method is matched meanwhile. */
    if (slot)
        arm_slot(s, slot);
    else
        arm_generic(s);

    if (!rpc__start_close(c)) {
        grpc_call_cancel(c->call, NULL);
        rpc__call_maybe_free(c);
        return;
    }
    if (!slot) {
        char *m = grpc_slice_to_c_string(c->details.method);
        char msg[300];
        snprintf(msg, sizeof msg, "method %s is not implemented by this server", m);
        log_debug("rpc: unregistered method %s from %s", m, rpc_call_peer(c));
        gpr_free(m);
        rpc__reject(c, GRPC_STATUS_UNIMPLEMENTED, msg);
        return;
    }
    if (s->stopping) {
        rpc__reject(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        return;
    }
    char why[SAT_ERR_LEN];
    bool auth_failure;
    grpc_status_code code = rpc__admit(s, c, why, &auth_failure);
    if (code != GRPC_STATUS_OK) {
        refuse(s, c, code, why, auth_failure);
        return;
    }
    start_recv(c);
}

static void maybe_destroy(struct rpc_server *s);

static void on_async(uv_async_t *a)
{
    struct rpc_server *s = a->data;
    pthread_mutex_lock(&s->lock);
    struct rpc_tag *t = s->ev_head;
    s->ev_head = s->ev_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (t) {
        struct rpc_tag *next = t->next; /* t may be freed by its handler */
        switch (t->kind) {
        case TAG_NEW_CALL:
        case TAG_NEW_GENERIC:
            on_new_call(s, t->call, t->success);
            break;
        case TAG_RECV:
            on_recv(s, t->call, t->success);
            break;
        case TAG_CLOSE:
            rpc__on_close(t->call);
            break;
        case TAG_SEND:
            rpc__on_send(t->call, t->success);
            break;
        case TAG_SHUTDOWN:
            s->shutdown_done = true;
            break;
        }
        t = next;
    }
    if (s->stopping)
        maybe_destroy(s);
}

/* ==== start and stop ======================================================= */

static void on_timer(uv_timer_t *t)
{
    struct rpc_server *s = t->data;
    if (s->stopping) {
        /* The grace period is over. */
        if (s->server && !s->destroyed) {
            if (s->nowned)
                log_info("rpc: cancelling %zu open call(s)", s->nowned);
            grpc_server_cancel_all_calls(s->server);
        }
        return;
    }
    arm_all(s); /* retries requests whose context could not be allocated */
    if (s->trim_ticks > 0 && !s->ndelayed) {
        /* Refused calls may have made gRPC buffer data that it frees once
         * their connections are gone: give the pages back (malloc's trim
         * threshold is raised), on a few ticks after the last refusal. */
        s->trim_ticks--;
        malloc_trim(0);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct rpc_server *s = h->data;
    if (--s->handles_open > 0)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    pthread_mutex_destroy(&s->lock);
    sat_free(s->slots);
    rpc__auth_free(&s->auth);
    sat_free(s);
    if (done)
        done(arg);
}

/* Runs on every drain once stopping: tears gRPC down when it has let go. */
static void maybe_destroy(struct rpc_server *s)
{
    if (s->destroyed || !s->shutdown_done || s->nlive > 0)
        return;
    s->destroyed = true;
    grpc_server_destroy(s->server);
    s->server = NULL;
    grpc_completion_queue_shutdown(s->cq);
    pthread_join(s->cq_thread, NULL); /* it exits on GRPC_QUEUE_SHUTDOWN */
    grpc_completion_queue_destroy(s->cq);
    s->cq = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->delay_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->async, on_handle_closed);
}

void rpc_server_stop(struct rpc_server *s, unsigned grace_ms, void (*done)(void *arg), void *arg)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    /* Stop accepting; armed requests come back with success = 0. Calls in
     * progress keep going until they finish or the grace timer cancels them. */
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->tag_shutdown);
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_timer, grace_ms, 0);
    on_delay_timer(&s->delay_timer); /* delayed refusals are answered now */
}

int rpc_server_set_tokens(struct rpc_server *s, const char *client, const char *viewer,
                          const char *worker)
{
    if (!s->auth_on)
        return 0;
    const char *t[RPC_NROLES] = {client, viewer, worker};
    return rpc__auth_set(&s->auth, t);
}

static int parse_listen_ok(const char *listen)
{
    return listen && *listen && strlen(listen) < 256 && strchr(listen, ':');
}

int rpc_server_start(struct rpc_server **out, uv_loop_t *loop, const struct rpc_server_opts *o,
                     int *port, char err[SAT_ERR_LEN])
{
    *out = NULL;
    if (!parse_listen_ok(o->listen))
        return sat_errf(err, SAT_EINVAL, "listen address \"%s\" is not HOST:PORT",
                        o->listen ? o->listen : "");
    size_t max_msg = o->max_msg ? o->max_msg : RPC_DEFAULT_MAX_MSG;
    if (max_msg < RPC_MIN_MAX_MSG || max_msg > INT32_MAX)
        return sat_errf(err, SAT_ERANGE, "message cap %zu out of range (%u..%d bytes)", max_msg,
                        RPC_MIN_MAX_MSG, INT32_MAX);

    struct rpc_server *s = sat_calloc(1, sizeof *s);
    if (!s)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    s->loop = loop;
    s->ud = o->ud;
    s->nslots = o->nmethods;
    s->slots = sat_calloc(o->nmethods ? o->nmethods : 1, sizeof *s->slots);
    s->session_check = o->session_check;
    s->land = o->land;
    s->auth_on = o->token && *o->token;
    const char *tokens[RPC_NROLES] = {o->token, o->viewer_token, o->worker_token};
    if (!s->slots || (s->auth_on && rpc__auth_set(&s->auth, tokens) != 0)) {
        sat_free(s->slots);
        sat_free(s);
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    s->tag_shutdown = (struct rpc_tag){.kind = TAG_SHUTDOWN};

    /* Limits are set on purpose: the 4 MiB receive default is too small for
     * parameter shards and the unlimited send default is too large.
     * SO_REUSEPORT is off: gRPC enables it by default, which would let a
     * second daemon bind the same port and steal half the connections.
     * BDP probing is off: it grows every stream's flow-control window to
     * megabytes, which gRPC fills with a call's message before we have
     * admitted the call (32 refused 60 MiB calls: +105 MB at the peak,
     * +35 MB kept; without it +2 MB and +0.5 MB). Admitted calls do not
     * lose speed: a pending RECV_MESSAGE opens the window to the message's
     * size (16 MiB push and pull: about 1000 MB/s either way). */
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)max_msg;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = (int)max_msg;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[2].value.integer = 0;
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = GRPC_ARG_HTTP2_BDP_PROBE;
    args[3].value.integer = 0;
    grpc_channel_args cargs = {.num_args = 4, .args = args};

    s->server = grpc_server_create(&cargs, NULL);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    for (size_t i = 0; i < o->nmethods; i++) {
        s->slots[i].m = &o->methods[i];
        s->slots[i].handle = grpc_server_register_method(s->server, o->methods[i].path, NULL,
                                                         GRPC_SRM_PAYLOAD_NONE, 0);
    }
    grpc_server_credentials *creds;
    if (o->tls && o->tls->cert) {
        /* gRPC copies the PEM texts. With a client CA, every client must
         * present a certificate that CA signed (mutual TLS). */
        grpc_ssl_pem_key_cert_pair pair = {.private_key = o->tls->key, .cert_chain = o->tls->cert};
        creds = grpc_ssl_server_credentials_create_ex(
            o->tls->ca, &pair, 1,
            o->tls->ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                       : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            NULL);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    int bound = grpc_server_add_http2_port(s->server, o->listen, creds);
    grpc_server_credentials_release(creds);
    int rc;
    if (bound <= 0) {
        rc = sat_errf(err, SAT_EIO, "cannot listen on %s (address in use or invalid?)", o->listen);
        goto fail_grpc;
    }
    if (uv_async_init(loop, &s->async, on_async) != 0) {
        rc = sat_errf(err, SAT_EIO, "uv_async_init failed");
        goto fail_grpc;
    }
    s->async.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_init(loop, &s->delay_timer);
    s->delay_timer.data = s;
    s->handles_open = 3;

    grpc_server_start(s->server);
    if (pthread_create(&s->cq_thread, NULL, cq_main, s) != 0) {
        /* Unwind through the normal stop path so gRPC is torn down in order;
         * the caller sees a failure and never gets the server. */
        rc = sat_errf(err, SAT_EIO, "cannot start the completion-queue thread");
        grpc_server_shutdown_and_notify(s->server, s->cq, &s->tag_shutdown);
        grpc_server_cancel_all_calls(s->server);
        grpc_event ev;
        do
            ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        while (ev.tag != &s->tag_shutdown);
        grpc_server_destroy(s->server);
        grpc_completion_queue_shutdown(s->cq);
        do
            ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        while (ev.type != GRPC_QUEUE_SHUTDOWN);
        grpc_completion_queue_destroy(s->cq);
        s->done = NULL;
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
        uv_close((uv_handle_t *)&s->delay_timer, on_handle_closed);
        uv_close((uv_handle_t *)&s->async, on_handle_closed);
        return rc;
    }
    arm_all(s);
    uv_timer_start(&s->timer, on_timer, 1000, 1000);
    *port = bound;
    *out = s;
    return 0;

fail_grpc:
    /* Not started: no call can exist, so destroy directly. */
    grpc_server_destroy(s->server);
    grpc_completion_queue_shutdown(s->cq);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
    }
    grpc_completion_queue_destroy(s->cq);
    pthread_mutex_destroy(&s->lock);
    sat_free(s->slots);
    rpc__auth_free(&s->auth);
    sat_free(s);
    return rc;
}
