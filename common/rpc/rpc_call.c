/* rpc_call.c - server-side call contexts: their lifetime, the send queue
 * and the API handlers use to answer (rpc.h: rpc_call_*, rpc_reply*,
 * rpc_stream_*). Loop thread only.
 *
 * Sending: messages are packed when the handler hands them over and queued;
 * one send batch is in flight at a time (gRPC allows one SEND_MESSAGE per
 * call), the next starts from its completion. Initial metadata goes with
 * the first batch and the final status with the last message, or alone.
 */
#include "rpc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "../util/log.h"
#include "../util/utf8.h"
#include "../util/xalloc.h"

/* ==== call contexts ======================================================== */

struct rpc_call *rpc__call_new(struct rpc_server *s, struct method_slot *slot)
{
    struct rpc_call *c = sat_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    c->slot = slot;
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    c->tag_new = (struct rpc_tag){.kind = slot ? TAG_NEW_CALL : TAG_NEW_GENERIC, .call = c};
    c->tag_recv = (struct rpc_tag){.kind = TAG_RECV, .call = c};
    c->tag_close = (struct rpc_tag){.kind = TAG_CLOSE, .call = c};
    c->tag_send = (struct rpc_tag){.kind = TAG_SEND, .call = c};
    c->next = s->live;
    if (s->live)
        s->live->prev = c;
    s->live = c;
    s->nlive++;
    return c;
}

void rpc__call_free(struct rpc_call *c)
{
    struct rpc_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nlive--;

    rpc_msg_free(c->req);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->inflight_bb)
        grpc_byte_buffer_destroy(c->inflight_bb);
    for (struct outmsg *o = c->q_head, *n; o; o = n) {
        n = o->next;
        grpc_byte_buffer_destroy(o->bb);
        sat_free(o);
    }
    sat_free(c->status_details);
    sat_free(c->delay_details);
    if (c->peer)
        gpr_free(c->peer);
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    if (c->call)
        grpc_call_unref(c->call);
    sat_free(c);
}

/* Frees the context once nothing refers to it any more. */
void rpc__call_maybe_free(struct rpc_call *c)
{
    if (c->pending == 0 && !c->owned)
        rpc__call_free(c);
}

/* ==== sending ============================================================== */

static void send_failed(struct rpc_call *c, grpc_call_error e)
{
    log_error("rpc: %s: start_batch failed: %s", rpc_call_method(c), grpc_call_error_to_string(e));
    grpc_call_cancel(c->call, NULL);
}

/* Starts the next send batch if none is in flight: the next queued message,
 * with the final status folded in when it is the last one, or the status
 * alone. Initial metadata goes with the first batch. */
void rpc__pump(struct rpc_call *c)
{
    if (c->sending || !c->call)
        return;
    if (c->closed && c->close_cancelled) {
        /* Client gone: nothing we send would arrive. */
        return;
    }
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    struct outmsg *o = c->q_head;
    bool with_status = c->status_queued && (!o || !o->next);
    if (!o && !with_status)
        return;
    if (!c->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 0;
        n++;
    }
    if (o) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = o->bb;
        n++;
    }
    grpc_slice details = grpc_empty_slice();
    if (with_status) {
        details = grpc_slice_from_copied_string(c->status_details ? c->status_details : "");
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.trailing_metadata_count = 0;
        ops[n].data.send_status_from_server.status = c->status;
        ops[n].data.send_status_from_server.status_details = &details;
        n++;
    }
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL);
    grpc_slice_unref(details); /* not kept past start_batch */
    if (e != GRPC_CALL_OK) {
        send_failed(c, e);
        return;
    }
    c->md_sent = true;
    c->sending = true;
    c->pending++;
    if (o) {
        /* The sent buffer is emptied by gRPC but still ours to destroy,
         * once the batch has completed. */
        c->q_head = o->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->q_len--;
        c->inflight_bb = o->bb;
        sat_free(o);
    }
    if (with_status)
        c->status_queued = false; /* sent: nothing more may follow */
}

static int enqueue(struct rpc_call *c, grpc_byte_buffer *bb)
{
    struct outmsg *o = sat_malloc(sizeof *o);
    if (!o) {
        grpc_byte_buffer_destroy(bb);
        return SAT_ENOMEM;
    }
    o->bb = bb;
    o->next = NULL;
    if (c->q_tail)
        c->q_tail->next = o;
    else
        c->q_head = o;
    c->q_tail = o;
    c->q_len++;
    return 0;
}

/* The handler gives up the call: queue the final status and let the
 * context go once the sends complete. */
static void finish(struct rpc_call *c, grpc_status_code code, const char *details)
{
    if (!c->owned) {
        log_error("rpc: %s finished twice (bug)", rpc_call_method(c));
        return;
    }
    c->owned = false;
    c->srv->nowned--;
    c->status = code;
    sat_free(c->status_details);
    c->status_details = sat_strdup(details ? details : "");
    c->status_queued = true;
    if (code != GRPC_STATUS_OK)
        log_debug("rpc: %s -> %s: %s", rpc_call_method(c), rpc_status_name(code),
                  details ? details : "");
    rpc__pump(c);
    rpc__call_maybe_free(c);
}

/* Finish for calls the layer rejects before any handler saw them. */
void rpc__reject(struct rpc_call *c, grpc_status_code code, const char *details)
{
    c->owned = true;
    c->srv->nowned++;
    finish(c, code, details);
}

/* ==== the public call API ================================================== */

const char *rpc_call_method(const struct rpc_call *c)
{
    if (c->slot)
        return c->slot->m->path;
    return "(unregistered)";
}

const char *rpc_call_session(const struct rpc_call *c)
{
    return c->session;
}

const char *rpc_call_peer(struct rpc_call *c)
{
    if (!c->peer && c->call)
        c->peer = grpc_call_get_peer(c->call);
    return c->peer ? c->peer : "?";
}

int64_t rpc_call_remaining_ms(const struct rpc_call *c)
{
    if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) == 0)
        return INT64_MAX;
    gpr_timespec d = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    int64_t ms = (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
    return ms < 0 ? 0 : ms;
}

bool rpc_call_landed(const struct rpc_call *c)
{
    return c->landed;
}

int rpc_call_cancelled(const struct rpc_call *c)
{
    return c->closed && c->close_cancelled;
}

void rpc_call_on_cancel(struct rpc_call *c, void (*cb)(struct rpc_call *c, void *arg), void *arg)
{
    c->cancel_cb = cb;
    c->cancel_arg = arg;
}

/* rpc_reply; with h, the long bytes fields are sent in place (rpc_reply_held). */
static int reply_with(struct rpc_call *c, const ProtobufCMessage *resp, struct rpc_hold *h)
{
    grpc_byte_buffer *bb = h ? rpc__msg_pack_held(resp, RPC_LIFT_MIN, h) : rpc_msg_pack(resp);
    if (!bb) {
        finish(c, GRPC_STATUS_INTERNAL, "out of memory packing the response");
        return SAT_ENOMEM;
    }
    if (enqueue(c, bb) != 0) {
        finish(c, GRPC_STATUS_INTERNAL, "out of memory queueing the response");
        return SAT_ENOMEM;
    }
    finish(c, GRPC_STATUS_OK, "");
    return 0;
}

int rpc_reply(struct rpc_call *c, const ProtobufCMessage *resp)
{
    return reply_with(c, resp, NULL);
}

int rpc_reply_held(struct rpc_call *c, const ProtobufCMessage *resp, struct rpc_hold *h)
{
    return reply_with(c, resp, h);
}

int rpc_reply_status(struct rpc_call *c, grpc_status_code code, const char *details)
{
    finish(c, code, details);
    return 0;
}

int rpc_reply_err(struct rpc_call *c, int sat_err, const char *fmt, ...)
{
    char msg[SAT_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sat_utf8_trim(msg); /* a cut message still decodes */
    finish(c, rpc_status_from_err(sat_err), msg);
    return 0;
}

int rpc_stream_send(struct rpc_call *c, const ProtobufCMessage *msg)
{
    if (rpc_call_cancelled(c))
        return SAT_ECANCELLED;
    if (c->q_len >= RPC_STREAM_QUEUE_MAX)
        return SAT_ETOOBIG;
    grpc_byte_buffer *bb = rpc_msg_pack(msg);
    if (!bb)
        return SAT_ENOMEM;
    int rc = enqueue(c, bb);
    if (rc == 0)
        rpc__pump(c);
    return rc;
}

int rpc_stream_end(struct rpc_call *c)
{
    finish(c, GRPC_STATUS_OK, "");
    return 0;
}

bool rpc__start_op(struct rpc_call *c, const grpc_op *op, struct rpc_tag *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, op, 1, tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("rpc: %s: batch of op %d: %s", rpc_call_method(c), (int)op->op,
                  grpc_call_error_to_string(e));
        return false;
    }
    c->pending++;
    return true;
}

/* Starts RECV_CLOSE_ON_SERVER, which tells us when the client is done or
 * gone; every accepted call has one in flight until the end. */
bool rpc__start_close(struct rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    return rpc__start_op(c, &op, &c->tag_close);
}

void rpc__on_close(struct rpc_call *c)
{
    c->pending--;
    c->closed = true;
    if (c->close_cancelled) {
        /* Nothing queued can be delivered now. */
        for (struct outmsg *o = c->q_head, *n; o; o = n) {
            n = o->next;
            grpc_byte_buffer_destroy(o->bb);
            sat_free(o);
        }
        c->q_head = c->q_tail = NULL;
        c->q_len = 0;
        if (c->owned && c->cancel_cb && !c->cancel_fired) {
            c->cancel_fired = true;
            c->cancel_cb(c, c->cancel_arg); /* may finish (and so free) c */
            return;
        }
    }
    rpc__call_maybe_free(c);
}

void rpc__on_send(struct rpc_call *c, int success)
{
    c->pending--;
    c->sending = false;
    if (c->inflight_bb) {
        grpc_byte_buffer_destroy(c->inflight_bb);
        c->inflight_bb = NULL;
    }
    if (success)
        rpc__pump(c);
    rpc__call_maybe_free(c);
}
