/* simworker.c - one simulated saturn-worker (see simworker.h). */
#include "simworker.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "saturn.pb-c.h"

int simworker_init(struct simworker *w, int index, const struct rpc_client_opts *o,
                   char err[SAT_ERR_LEN])
{
    memset(w, 0, sizeof *w);
    w->u.tag = (struct lg_tag){.kind = LG_TAG_WORKER, .owner = w};
    w->seed = 0x9e3779b9u ^ (uint32_t)(index + 1) * 2654435761u;
    if (w->seed == 0)
        w->seed = 1;
    snprintf(w->name, sizeof w->name, "loadgen-%d", index);
    return rpc_client_new(&w->client, o, err);
}

void simworker_close(struct simworker *w)
{
    rpc_client_free(w->client);
    w->client = NULL;
}

static void start(struct simworker *w, grpc_completion_queue *cq, double now, enum lg_kind op,
                  const char *method, const ProtobufCMessage *req, struct lg_stats *st)
{
    if (!lg_unary_start(&w->u, w->client, cq, now, op, method, req, w->session))
        simworker_done(w, now, st); /* nothing in flight: record the failure now */
}

double simworker_poll(struct simworker *w, grpc_completion_queue *cq, double now,
                      struct lg_stats *st)
{
    if (w->u.in_flight || w->left)
        return INFINITY;
    if (w->leaving && w->id[0]) {
        Saturn__V1__LeaveRequest req = SATURN__V1__LEAVE_REQUEST__INIT;
        req.worker_id = w->id;
        req.reason = "load generator done";
        start(w, cq, now, LG_LEAVE, "/saturn.v1.Worker/Leave", &req.base, st);
    } else if (w->leaving) {
        w->left = true; /* never registered: nothing to leave */
    } else if (!w->id[0] && now >= w->due_ms) {
        Saturn__V1__RegisterRequest req = SATURN__V1__REGISTER_REQUEST__INIT;
        req.name = w->name;
        req.threads = 1;
        req.version = "loadgen";
        start(w, cq, now, LG_REGISTER, "/saturn.v1.Worker/RegisterWorker", &req.base, st);
    } else if (now >= w->due_ms) {
        Saturn__V1__HeartbeatRequest req = SATURN__V1__HEARTBEAT_REQUEST__INIT;
        req.worker_id = w->id;
        req.activity = SATURN__V1__WORKER_ACTIVITY__WORKER_ACTIVITY_IDLE;
        req.job_id = "";
        start(w, cq, now, LG_HEARTBEAT, "/saturn.v1.Worker/Heartbeat", &req.base, st);
    }
    return w->u.in_flight || w->left ? INFINITY : w->due_ms;
}

void simworker_done(struct simworker *w, double now, struct lg_stats *st)
{
    struct rpc_status rs;
    ProtobufCMessage *m = NULL;
    int rc = lg_unary_end(&w->u, now, &m, &rs, st);
    switch (w->u.op) {
    case LG_REGISTER:
        if (rc == 0) {
            const Saturn__V1__RegisterResponse *r = (const Saturn__V1__RegisterResponse *)m;
            snprintf(w->id, sizeof w->id, "%s", r->worker_id);
            snprintf(w->session, sizeof w->session, "%s", r->session);
            w->heartbeat_ms = r->heartbeat_ms ? r->heartbeat_ms : 1000;
            w->lease_ms = r->lease_ms;
            /* The first heartbeat comes somewhere within one period, so
             * that 256 workers registered at once do not beat in step. */
            w->due_ms = now + lg_uniform(&w->seed, 0.05, 1.0) * w->heartbeat_ms;
        } else {
            w->due_ms = now + 1000; /* retry then; the error is already counted */
        }
        break;
    case LG_HEARTBEAT:
        if (rc == 0) {
            w->assigned = ((const Saturn__V1__HeartbeatResponse *)m)->assignment != NULL;
        } else if (rs.code == GRPC_STATUS_NOT_FOUND) {
            st->expiries++;
            w->not_found++;
            w->id[0] = 0; /* register again under a new id, at once */
            w->due_ms = now;
            break;
        }
        /* Fixed rate: the next beat is one period after the last one was
         * due, unless we fell a whole period behind. */
        w->due_ms += w->heartbeat_ms;
        if (w->due_ms < now)
            w->due_ms = now + w->heartbeat_ms;
        break;
    case LG_LEAVE:
        w->left = true;
        break;
    default:
        fprintf(stderr, "loadgen: bug: worker call of kind %d\n", (int)w->u.op);
        break;
    }
    rpc_msg_free(m);
}
