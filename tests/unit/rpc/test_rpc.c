/* test_rpc.c - the RPC layer (common/rpc) against itself, in one process:
 * a server on a libuv loop thread and blocking clients on the main thread,
 * over real loopback TCP.
 *
 * Checks: status mapping, constant-time comparison, token files, message
 * packing; then through the wire: unary replies, deferred replies from a
 * timer, server streaming, the stream queue cap, error statuses, client
 * deadlines and the server's cancel callback, bearer-token auth (missing,
 * wrong, right, exempt method), unregistered methods, bytes that are not a
 * message (and why), oversized messages, a long bytes field sent from the
 * caller's memory and landed where each side chose, a reply sent from the
 * server's memory under a hold (rpc_reply_held); finally a stop with a
 * stream still open, after which the loop must close with no handle left.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "health.pb-c.h"
#include "rpc/rpc.h"
#include "saturn.pb-c.h"
#include "util/xalloc.h"

#define TOKEN "s3cret-token"
#define MAX_MSG (64u << 10) /* small cap so the oversize check is cheap */

/* ==== the test server ====================================================== */

struct ts {
    uv_loop_t loop;
    uv_async_t stop_async;
    uv_timer_t timer;
    struct rpc_server *srv;
    int port;
    struct rpc_call *deferred; /* waiting for the timer */
    struct rpc_call *open_stream;
    int cancels;    /* cancel callbacks seen */
    int flood_sent; /* messages queued by Flood before the cap */
    int stopped;    /* rpc_server_stop's callback ran */
    pthread_mutex_t lock;
    float landed[4096]; /* where the gradient of a Push for job "land" goes */
    float held[4096];   /* job "held": the reply is sent from here (rpc_reply_held) */
    struct rpc_hold hold;
    atomic_int released; /* hold.release runs */
};

static void on_release(struct rpc_hold *h)
{
    struct ts *s = (struct ts *)((char *)h - offsetof(struct ts, hold));
    atomic_fetch_add(&s->released, 1);
}

static void h_echo(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    const Saturn__V1__GetJobRequest *req = (const Saturn__V1__GetJobRequest *)msg;
    Saturn__V1__Job job = SATURN__V1__JOB__INIT;
    job.id = req->job_id;
    job.state = SATURN__V1__JOB_STATE__JOB_STATE_RUNNING;
    Saturn__V1__GetJobResponse resp = SATURN__V1__GET_JOB_RESPONSE__INIT;
    resp.job = &job;
    rpc_reply(call, &resp.base);
}

static void on_deferred_timer(uv_timer_t *t)
{
    struct ts *s = t->data;
    Saturn__V1__Job job = SATURN__V1__JOB__INIT;
    job.id = "deferred";
    Saturn__V1__GetJobResponse resp = SATURN__V1__GET_JOB_RESPONSE__INIT;
    resp.job = &job;
    rpc_reply(s->deferred, &resp.base);
    s->deferred = NULL;
}

/* Answers 50 ms later from a timer callback: a deferred reply. */
static void h_deferred(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct ts *s = ud;
    s->deferred = call;
    uv_timer_start(&s->timer, on_deferred_timer, 50, 0);
}

static void h_stream(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    const Saturn__V1__WatchJobRequest *req = (const Saturn__V1__WatchJobRequest *)msg;
    for (uint64_t i = 1; i <= req->after_seq; i++) {
        Saturn__V1__JobEvent ev = SATURN__V1__JOB_EVENT__INIT;
        ev.seq = i;
        ev.job_id = req->job_id;
        ev.kind = "test";
        rpc_stream_send(call, &ev.base);
    }
    rpc_stream_end(call);
}

/* Queues events until the layer refuses (RPC_STREAM_QUEUE_MAX). */
static void h_flood(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct ts *s = ud;
    Saturn__V1__JobEvent ev = SATURN__V1__JOB_EVENT__INIT;
    ev.kind = "flood";
    int rc = 0, n = 0;
    while (n < 100000 && (rc = rpc_stream_send(call, &ev.base)) == 0)
        n++;
    s->flood_sent = n;
    rpc_reply_err(call, rc, "flood stopped after %d messages", n);
}

static void on_hang_cancel(struct rpc_call *call, void *arg)
{
    struct ts *s = arg;
    pthread_mutex_lock(&s->lock);
    s->cancels++;
    pthread_mutex_unlock(&s->lock);
    if (call == s->open_stream)
        s->open_stream = NULL;
    rpc_reply_err(call, SAT_ECANCELLED, "gone");
}

/* Never answers; finishes the call when the client goes away. */
static void h_hang(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    rpc_call_on_cancel(call, on_hang_cancel, ud);
}

/* A stream left open: finished by the cancel callback at server stop. */
static void h_open(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct ts *s = ud;
    s->open_stream = call;
    Saturn__V1__JobEvent ev = SATURN__V1__JOB_EVENT__INIT;
    ev.kind = "first";
    rpc_stream_send(call, &ev.base);
    rpc_call_on_cancel(call, on_hang_cancel, ud);
}

static void h_fail(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    rpc_reply_err(call, SAT_ENOENT, "no such thing: %d", 42);
}

static void h_health(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_reply(call, &resp.base);
}

/* rpc_server_opts.land: the gradient of a Push for job "land" goes to
 * s->landed as it is decoded. */
static void land_push(struct rpc_land *land, const ProtobufCMessage *req, void *ud)
{
    struct ts *s = ud;
    const Saturn__V1__PushRequest *p = (const Saturn__V1__PushRequest *)req;
    if (req->descriptor != &saturn__v1__push_request__descriptor || strcmp(p->job_id, "land") != 0)
        return;
    land->field = 5;
    land->dst = s->landed;
    land->len = sizeof s->landed;
}

/* Answers a Push with its gradient as a PullResponse's values, version 1
 * when the gradient had landed in s->landed. */
static void h_push(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct ts *s = ud;
    const Saturn__V1__PushRequest *req = (const Saturn__V1__PushRequest *)msg;
    Saturn__V1__PullResponse resp = SATURN__V1__PULL_RESPONSE__INIT;
    resp.version = rpc_call_landed(call);
    resp.values = req->gradient;
    if (rpc_call_landed(call)) {
        resp.values.data = (uint8_t *)s->landed;
        resp.values.len = sizeof s->landed;
    }
    if (strcmp(req->job_id, "held") == 0 && req->gradient.len == sizeof s->held) {
        /* sent from s->held, which stays as it is until the hold drops */
        memcpy(s->held, req->gradient.data, sizeof s->held);
        resp.values.data = (uint8_t *)s->held;
        rpc_reply_held(call, &resp.base, &s->hold);
        return;
    }
    rpc_reply(call, &resp.base);
}

static const struct rpc_method methods[] = {
    {"/t.T/Push", &saturn__v1__push_request__descriptor, h_push, 0, RPC_R_ANY},
    {"/t.T/Echo", &saturn__v1__get_job_request__descriptor, h_echo, 0, RPC_R_ANY},
    {"/t.T/Deferred", &saturn__v1__get_job_request__descriptor, h_deferred, 0, RPC_R_ANY},
    {"/t.T/Stream", &saturn__v1__watch_job_request__descriptor, h_stream, RPC_STREAM, RPC_R_ANY},
    {"/t.T/Flood", &saturn__v1__watch_job_request__descriptor, h_flood, RPC_STREAM, RPC_R_ANY},
    {"/t.T/Hang", &saturn__v1__get_job_request__descriptor, h_hang, 0, RPC_R_ANY},
    {"/t.T/Open", &saturn__v1__watch_job_request__descriptor, h_open, RPC_STREAM, RPC_R_ANY},
    {"/t.T/Fail", &saturn__v1__get_job_request__descriptor, h_fail, 0, RPC_R_ANY},
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor, h_health,
     RPC_NO_AUTH, 0},
};

static void on_stopped(void *arg)
{
    struct ts *s = arg;
    s->stopped = 1;
    uv_close((uv_handle_t *)&s->timer, NULL);
    uv_close((uv_handle_t *)&s->stop_async, NULL);
}

static void on_stop_async(uv_async_t *a)
{
    struct ts *s = a->data;
    rpc_server_stop(s->srv, 300, on_stopped, s);
}

static void *loop_main(void *arg)
{
    struct ts *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ==== helpers ============================================================== */

static struct rpc_client *client(struct ts *s, const char *token, size_t max_msg)
{
    char target[64], err[SAT_ERR_LEN];
    snprintf(target, sizeof target, "127.0.0.1:%d", s->port);
    struct rpc_client_opts o = {.target = target, .token = token, .max_msg = max_msg};
    struct rpc_client *c = NULL;
    CHECK_EQ_INT(rpc_client_new(&c, &o, err), 0);
    return c;
}

static grpc_status_code call_get(struct rpc_client *c, const char *method, const char *id,
                                 int timeout_ms, char *out_id, size_t cap, struct rpc_status *st)
{
    Saturn__V1__GetJobRequest req = SATURN__V1__GET_JOB_REQUEST__INIT;
    req.job_id = (char *)id;
    ProtobufCMessage *m = NULL;
    int rc = rpc_unary(c, method, &req.base, &saturn__v1__get_job_response__descriptor, &m,
                       timeout_ms, st);
    CHECK_EQ_INT(rc, rpc_err_from_status(st->code));
    if (m) {
        const Saturn__V1__GetJobResponse *r = (const Saturn__V1__GetJobResponse *)m;
        if (out_id)
            snprintf(out_id, cap, "%s", r->job ? r->job->id : "");
        rpc_msg_free(m);
    }
    return st->code;
}

/* ==== checks without the wire ============================================== */

static void check_mapping(void)
{
    int errs[] = {SAT_OK,      SAT_EINVAL, SAT_ENOENT,   SAT_EEXIST,   SAT_ESTATE,
                  SAT_ETOOBIG, SAT_EAUTH,  SAT_ETIMEOUT, SAT_EUNAVAIL, SAT_ECANCELLED};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        CHECK_EQ_INT(rpc_err_from_status(rpc_status_from_err(errs[i])), errs[i]);
    CHECK_EQ_INT(rpc_status_from_err(SAT_EFORMAT), GRPC_STATUS_INVALID_ARGUMENT);
    CHECK_EQ_INT(rpc_status_from_err(SAT_EIO), GRPC_STATUS_INTERNAL);
    CHECK_EQ_INT(rpc_status_from_err(-12345), GRPC_STATUS_INTERNAL);
    CHECK(strcmp(rpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED") == 0);
    CHECK(strcmp(rpc_status_name((grpc_status_code)99), "UNKNOWN") == 0);
}

static void check_secret(void)
{
    CHECK(rpc_secret_equal("Bearer x", 8, "Bearer x", 8));
    CHECK(!rpc_secret_equal("Bearer y", 8, "Bearer x", 8));
    CHECK(!rpc_secret_equal("Bearer", 6, "Bearer x", 8));
    CHECK(!rpc_secret_equal("Bearer xx", 9, "Bearer x", 8));
    CHECK(!rpc_secret_equal("", 0, "Bearer x", 8));
    CHECK(!rpc_secret_equal("a", 1, "", 0));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void check_tokens(void)
{
    char dir[] = "/tmp/test_rpc_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], tok[RPC_TOKEN_MAX], err[SAT_ERR_LEN];
    snprintf(path, sizeof path, "%s/t", dir);
    write_file(path, "abc123\n");
    CHECK_EQ_INT(rpc_token_load(path, tok, err), 0);
    CHECK(strcmp(tok, "abc123") == 0);
    write_file(path, "abc 123\n");
    CHECK_EQ_INT(rpc_token_load(path, tok, err), SAT_EINVAL);
    write_file(path, "\n");
    CHECK_EQ_INT(rpc_token_load(path, tok, err), SAT_EINVAL);
    char big[RPC_TOKEN_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    write_file(path, big);
    CHECK_EQ_INT(rpc_token_load(path, tok, err), SAT_ETOOBIG);
    unlink(path);
    CHECK_EQ_INT(rpc_token_load(path, tok, err), SAT_ENOENT);
    CHECK_STR_CONTAINS(err, path);
    rmdir(dir);
}

static void check_pack(void)
{
    Saturn__V1__GetJobRequest req = SATURN__V1__GET_JOB_REQUEST__INIT;
    req.job_id = "job-7";
    grpc_byte_buffer *bb = rpc_msg_pack(&req.base);
    CHECK(bb != NULL);
    ProtobufCMessage *m = NULL;
    CHECK_EQ_INT(rpc_msg_unpack(bb, &saturn__v1__get_job_request__descriptor, &m), 0);
    CHECK(m && strcmp(((Saturn__V1__GetJobRequest *)m)->job_id, "job-7") == 0);
    rpc_msg_free(m);
    grpc_byte_buffer_destroy(bb);
    /* A truncated varint tag is not a message. */
    grpc_slice s = grpc_slice_from_copied_buffer("\xff\xff\xff", 3);
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    CHECK_EQ_INT(rpc_msg_unpack(bb, &saturn__v1__get_job_request__descriptor, &m), SAT_EFORMAT);
    CHECK(m == NULL);
    grpc_byte_buffer_destroy(bb);
}

/* ==== checks through the wire ============================================== */

/* A long bytes field both ways: sent from the caller's memory, landed by
 * the server's land function, echoed back and landed in the client's. */
static void check_land(struct ts *s, struct rpc_client *c)
{
    static float grad[4096], back[4096];
    for (size_t i = 0; i < 4096; i++)
        grad[i] = (float)i * 0.25f;
    static const char *const jobs[2] = {"land", "other"};
    for (int k = 0; k < 2; k++) {
        Saturn__V1__PushRequest req = SATURN__V1__PUSH_REQUEST__INIT;
        req.job_id = (char *)jobs[k];
        req.step = 7;
        req.gradient.data = (uint8_t *)grad;
        req.gradient.len = sizeof grad;
        memset(back, 0, sizeof back);
        struct rpc_land land = {.field = 2, .dst = back, .len = sizeof back};
        struct rpc_status st;
        ProtobufCMessage *m = NULL;
        CHECK_EQ_INT(rpc_unary_into(c, "/t.T/Push", &req.base,
                                    &saturn__v1__pull_response__descriptor, &land, &m, 5000, &st),
                     0);
        const Saturn__V1__PullResponse *r = (const Saturn__V1__PullResponse *)m;
        CHECK(r != NULL);
        if (!r)
            continue;
        CHECK_EQ_INT(r->version, k == 0); /* landed on the server for job "land" only */
        CHECK(land.landed && r->values.len == 0);
        CHECK(memcmp(back, grad, sizeof grad) == 0);
        CHECK(k == 1 || memcmp(s->landed, grad, sizeof grad) == 0);
        rpc_msg_free(m);
    }
    /* A length other than the land's: the values stay in the message. */
    Saturn__V1__PushRequest req = SATURN__V1__PUSH_REQUEST__INIT;
    req.job_id = "other";
    req.gradient.data = (uint8_t *)grad;
    req.gradient.len = sizeof grad;
    struct rpc_land land = {.field = 2, .dst = back, .len = sizeof back - 4};
    struct rpc_status st;
    ProtobufCMessage *m = NULL;
    CHECK_EQ_INT(rpc_unary_into(c, "/t.T/Push", &req.base, &saturn__v1__pull_response__descriptor,
                                &land, &m, 5000, &st),
                 0);
    const Saturn__V1__PullResponse *r = (const Saturn__V1__PullResponse *)m;
    CHECK(!land.landed && r && r->values.len == sizeof grad &&
          memcmp(r->values.data, grad, sizeof grad) == 0);
    rpc_msg_free(m);
}

/* A reply sent from the server's memory (rpc_reply_held): the bytes
 * arrive whole, the reply's slice held a reference on the hold and dropped
 * it once written (the only way release runs), and with an owner's
 * reference in the count release waits for the owner. */
static void held_call(struct ts *s, struct rpc_client *c, const float *grad, float *back)
{
    Saturn__V1__PushRequest req = SATURN__V1__PUSH_REQUEST__INIT;
    req.job_id = "held";
    req.gradient.data = (uint8_t *)grad;
    req.gradient.len = sizeof s->held;
    struct rpc_land land = {.field = 2, .dst = back, .len = sizeof s->held};
    struct rpc_status st;
    ProtobufCMessage *m = NULL;
    CHECK_EQ_INT(rpc_unary_into(c, "/t.T/Push", &req.base, &saturn__v1__pull_response__descriptor,
                                &land, &m, 5000, &st),
                 0);
    rpc_msg_free(m);
    CHECK(land.landed && memcmp(back, grad, sizeof s->held) == 0);
}

static void check_held(struct ts *s, struct rpc_client *c)
{
    static float grad[4096], back[4096];
    for (size_t i = 0; i < 4096; i++)
        grad[i] = 1.0f - (float)i * 0.5f;
    s->hold.release = on_release;
    /* no owner: the reply's reference is the only one */
    atomic_init(&s->hold.refs, 0);
    held_call(s, c, grad, back);
    for (int i = 0; i < 200 && atomic_load(&s->released) == 0; i++)
        usleep(10000); /* gRPC drops the slice from its own thread */
    CHECK_EQ_INT(atomic_load(&s->released), 1);
    CHECK_EQ_INT(atomic_load(&s->hold.refs), 0);
    /* an owner's reference: release waits for the owner */
    atomic_init(&s->hold.refs, 1);
    held_call(s, c, grad, back);
    for (int i = 0; i < 200 && atomic_load(&s->hold.refs) > 1; i++)
        usleep(10000);
    CHECK_EQ_INT(atomic_load(&s->hold.refs), 1);
    CHECK_EQ_INT(atomic_load(&s->released), 1);
    if (atomic_fetch_sub(&s->hold.refs, 1) == 1)
        s->hold.release(&s->hold);
    CHECK_EQ_INT(atomic_load(&s->released), 2);
}

static void check_wire(struct ts *s)
{
    struct rpc_status st;
    char id[64] = "";
    struct rpc_client *c = client(s, TOKEN, 0);

    CHECK_EQ_INT(call_get(c, "/t.T/Echo", "job-1", 5000, id, sizeof id, &st), GRPC_STATUS_OK);
    check_land(s, c);
    check_held(s, c);
    CHECK(strcmp(id, "job-1") == 0);
    CHECK_EQ_INT(call_get(c, "/t.T/Deferred", "x", 5000, id, sizeof id, &st), GRPC_STATUS_OK);
    CHECK(strcmp(id, "deferred") == 0);
    CHECK_EQ_INT(call_get(c, "/t.T/Fail", "x", 5000, NULL, 0, &st), GRPC_STATUS_NOT_FOUND);
    CHECK_STR_CONTAINS(st.details, "no such thing: 42");

    /* Deadline: the client gives up, the server's cancel callback runs. */
    CHECK_EQ_INT(call_get(c, "/t.T/Hang", "x", 200, NULL, 0, &st), GRPC_STATUS_DEADLINE_EXCEEDED);
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&s->lock);
        int n = s->cancels;
        pthread_mutex_unlock(&s->lock);
        if (n)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&s->lock);
    CHECK_EQ_INT(s->cancels, 1);
    pthread_mutex_unlock(&s->lock);

    /* Server streaming: 5 messages in order, then OK. */
    Saturn__V1__WatchJobRequest wreq = SATURN__V1__WATCH_JOB_REQUEST__INIT;
    wreq.job_id = "job-s";
    wreq.after_seq = 5;
    struct rpc_stream *str = NULL;
    CHECK_EQ_INT(rpc_stream_open(c, "/t.T/Stream", &wreq.base, 5000, &str, &st), 0);
    uint64_t want = 1;
    for (;;) {
        ProtobufCMessage *m;
        int rc = rpc_stream_read(str, &saturn__v1__job_event__descriptor, &m, &st);
        if (rc <= 0) {
            CHECK_EQ_INT(rc, 0);
            break;
        }
        CHECK_EQ_INT(((Saturn__V1__JobEvent *)m)->seq, want);
        want++;
        rpc_msg_free(m);
    }
    CHECK_EQ_INT(want, 6);
    CHECK_EQ_INT(st.code, GRPC_STATUS_OK);
    rpc_stream_close(str);

    /* The stream queue is capped; the handler ends with RESOURCE_EXHAUSTED. */
    CHECK_EQ_INT(rpc_stream_open(c, "/t.T/Flood", &wreq.base, 5000, &str, &st), 0);
    int got = 0, rc;
    ProtobufCMessage *m;
    while ((rc = rpc_stream_read(str, &saturn__v1__job_event__descriptor, &m, &st)) == 1) {
        got++;
        rpc_msg_free(m);
    }
    CHECK_EQ_INT(st.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK_EQ_INT(s->flood_sent, RPC_STREAM_QUEUE_MAX + 1); /* one was in flight */
    CHECK_EQ_INT(got, s->flood_sent);
    rpc_stream_close(str);

    /* Unregistered method, invalid bytes, oversized message. */
    CHECK_EQ_INT(call_get(c, "/t.T/Nope", "x", 5000, NULL, 0, &st), GRPC_STATUS_UNIMPLEMENTED);
    CHECK_STR_CONTAINS(st.details, "/t.T/Nope");
    CHECK_EQ_INT(rpc_unary_raw(c, "/t.T/Echo", "\xff\xff\xff\xff", 4, 5000, &st), SAT_EINVAL);
    CHECK_EQ_INT(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(st.details, "saturn.v1.GetJobRequest");
    CHECK_STR_CONTAINS(st.details, "overlong field tag"); /* the reason, not just the verdict */
    /* A Push whose gradient claims more bytes than the message has. */
    CHECK_EQ_INT(rpc_unary_raw(c, "/t.T/Push", "\x2a\xe4\x00\x01\x02", 5, 5000, &st), SAT_EINVAL);
    CHECK_EQ_INT(st.code, GRPC_STATUS_INVALID_ARGUMENT);
    CHECK_STR_CONTAINS(st.details, "runs past the end");
    char *big = sat_malloc(MAX_MSG * 2);
    CHECK(big != NULL);
    memset(big, 'j', MAX_MSG * 2 - 1);
    big[MAX_MSG * 2 - 1] = 0;
    CHECK_EQ_INT(call_get(c, "/t.T/Echo", big, 5000, NULL, 0, &st), GRPC_STATUS_RESOURCE_EXHAUSTED);
    sat_free(big);
    CHECK_EQ_INT(call_get(c, "/t.T/Echo", "after", 5000, id, sizeof id, &st), GRPC_STATUS_OK);
    rpc_client_free(c);

    /* Auth: none, wrong, and the exempt health check. */
    struct rpc_client *anon = client(s, NULL, 0), *wrong = client(s, "s3cret-tokeN", 0),
                      *longer = client(s, TOKEN "x", 0);
    CHECK_EQ_INT(call_get(anon, "/t.T/Echo", "x", 5000, NULL, 0, &st), GRPC_STATUS_UNAUTHENTICATED);
    CHECK_STR_CONTAINS(st.details, "missing");
    CHECK_EQ_INT(call_get(wrong, "/t.T/Echo", "x", 5000, NULL, 0, &st),
                 GRPC_STATUS_UNAUTHENTICATED);
    CHECK_STR_CONTAINS(st.details, "invalid");
    CHECK_EQ_INT(call_get(longer, "/t.T/Echo", "x", 5000, NULL, 0, &st),
                 GRPC_STATUS_UNAUTHENTICATED);
    Grpc__Health__V1__HealthCheckRequest hreq = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    CHECK_EQ_INT(rpc_unary(anon, "/grpc.health.v1.Health/Check", &hreq.base,
                           &grpc__health__v1__health_check_response__descriptor, &m, 5000, &st),
                 0);
    CHECK(m && ((Grpc__Health__V1__HealthCheckResponse *)m)->status ==
                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    rpc_msg_free(m);
    rpc_client_free(anon);
    rpc_client_free(wrong);
    rpc_client_free(longer);
}

/* Stops the server with a stream still open: the grace timer cancels it,
 * the cancel callback finishes it, and the loop ends with nothing open. */
static void check_stop(struct ts *s, pthread_t loop_thread)
{
    struct rpc_client *c = client(s, TOKEN, 0);
    Saturn__V1__WatchJobRequest wreq = SATURN__V1__WATCH_JOB_REQUEST__INIT;
    struct rpc_stream *str = NULL;
    struct rpc_status st;
    CHECK_EQ_INT(rpc_stream_open(c, "/t.T/Open", &wreq.base, 0, &str, &st), 0);
    ProtobufCMessage *m;
    CHECK_EQ_INT(rpc_stream_read(str, &saturn__v1__job_event__descriptor, &m, &st), 1);
    rpc_msg_free(m);
    uv_async_send(&s->stop_async);
    int rc = rpc_stream_read(str, &saturn__v1__job_event__descriptor, &m, &st);
    CHECK(rc < 0);
    CHECK(st.code == GRPC_STATUS_CANCELLED || st.code == GRPC_STATUS_UNAVAILABLE);
    rpc_stream_close(str);
    pthread_join(loop_thread, NULL);
    CHECK_EQ_INT(s->stopped, 1);
    CHECK_EQ_INT(uv_loop_close(&s->loop), 0);
    /* The server is gone: calls now fail as UNAVAILABLE. */
    char id[8];
    CHECK_EQ_INT(call_get(c, "/t.T/Echo", "x", 2000, id, sizeof id, &st), GRPC_STATUS_UNAVAILABLE);
    rpc_client_free(c);
}

int main(void)
{
    check_mapping();
    check_secret();
    check_tokens();
    rpc_init();
    check_pack();

    struct ts s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    CHECK_EQ_INT(uv_loop_init(&s.loop), 0);
    uv_async_init(&s.loop, &s.stop_async, on_stop_async);
    s.stop_async.data = &s;
    uv_timer_init(&s.loop, &s.timer);
    s.timer.data = &s;
    char err[SAT_ERR_LEN] = "";
    struct rpc_server_opts o = {
        .listen = "127.0.0.1:0",
        .token = TOKEN,
        .max_msg = MAX_MSG,
        .methods = methods,
        .nmethods = sizeof methods / sizeof methods[0],
        .ud = &s,
        .land = land_push,
    };
    int rc = rpc_server_start(&s.srv, &s.loop, &o, &s.port, err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "server: %s\n", err);
        return check_summary("rpc");
    }
    CHECK(s.port > 0);
    /* A second server on the same port must fail cleanly. */
    struct rpc_server *dup = NULL;
    char listen2[64];
    int port2 = 0;
    snprintf(listen2, sizeof listen2, "127.0.0.1:%d", s.port);
    struct rpc_server_opts o2 = o;
    o2.listen = listen2;
    uv_loop_t loop2;
    uv_loop_init(&loop2);
    CHECK(rpc_server_start(&dup, &loop2, &o2, &port2, err) != 0);
    CHECK(dup == NULL);
    uv_run(&loop2, UV_RUN_DEFAULT);
    CHECK_EQ_INT(uv_loop_close(&loop2), 0);

    pthread_t th;
    pthread_create(&th, NULL, loop_main, &s);
    check_wire(&s);
    check_stop(&s, th);
    rpc_shutdown();
    pthread_mutex_destroy(&s.lock);
    return check_summary("rpc");
}
