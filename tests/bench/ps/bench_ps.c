/* bench_ps.c - transfer figures of the parameter server (bench_ps.sh runs it).
 *
 *   bench_ps tcp MB
 *       loopback TCP bandwidth: one connection on 127.0.0.1, MB MiB sent in
 *       1 MiB writes and read into a 1 MiB buffer; prints tcp_MBps.
 *   bench_ps tcp-staged MB
 *       the same, the reader copying each read on into a 16 MiB buffer (as
 *       a model's), as a transport that reads into buffers of its own must;
 *       prints tcp_staged_MBps.
 *   bench_ps shard ADDR TOKEN_FILE SPEC.json ITER
 *       acts as the one worker of SPEC (workers = 1): registers, submits,
 *       acknowledges, then ITER times pulls shard 0 and pushes its gradient;
 *       prints the shard size and the median MB/s of Pull, of Push (a new
 *       step: transfer + unpack + the SGD update of the shard) and of a
 *       duplicate Push (transfer + unpack + checks, nothing applied).
 *   bench_ps rpc MB ITER
 *       the same calls for a shard of MB MiB, which no zoo model has (the
 *       largest, preresnet20, is 1.04 MB): an in-process server on the RPC
 *       layer (its own loop thread) answers Pull by sending the values
 *       straight from a parameter buffer (rpc_reply_held), as ps.c does, and Push by
 *       decoding the gradient straight into a buffer, as ps.c decodes a
 *       bsp push into its rank's slot; the client's Pull lands the values
 *       in its model, and its Push is sent from the gradient buffer, as a
 *       worker's are. Prints the median MB/s of each.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "saturn.pb-c.h"
#include "util/clock.h"
#include "util/xalloc.h"

/* ==== loopback TCP ========================================================= */

struct sink {
    int fd;
    size_t total;
    float *land; /* NULL, or 16 MiB the values are copied into, as a model's */
};

static void *sink_main(void *arg)
{
    struct sink *s = arg;
    char *buf = malloc(1 << 20);
    size_t got = 0;
    while (buf && got < s->total) {
        ssize_t r = read(s->fd, buf, 1 << 20);
        if (r <= 0)
            break;
        if (s->land) {
            const size_t at = got % (16u << 20),
                         n = (size_t)r < (16u << 20) - at ? (size_t)r : (16u << 20) - at;
            memcpy((char *)s->land + at, buf, n);
            memcpy(s->land, buf + n, (size_t)r - n);
        }
        got += (size_t)r;
    }
    free(buf);
    return NULL;
}

static int bench_tcp(int mb, int staged)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0) {
        perror("bench_ps: tcp");
        return 1;
    }
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cs, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bench_ps: connect");
        return 1;
    }
    struct sink s = {.fd = accept(ls, NULL, NULL),
                     .total = (size_t)mb << 20,
                     .land = staged ? sat_calloc(4u << 20, sizeof(float)) : NULL};
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    char *buf = calloc(1, 1 << 20);
    double t0 = sat_mono_s();
    for (int i = 0; i < mb; i++) {
        size_t off = 0;
        while (off < (1u << 20)) {
            ssize_t w = write(cs, buf + off, (1u << 20) - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    pthread_join(t, NULL);
    double dt = sat_mono_s() - t0;
    printf("%s %.0f\n", staged ? "tcp_staged_MBps" : "tcp_MBps", mb / dt);
    sat_free(s.land);
    free(buf);
    close(cs);
    close(s.fd);
    close(ls);
    return 0;
}

/* ==== Pull / Push of one shard ============================================= */

static struct rpc_client *cli;

static ProtobufCMessage *call(const char *m, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *r = NULL;
    struct rpc_status st;
    if (rpc_unary(cli, m, req, d, &r, 120000, &st) != 0)
        fprintf(stderr, "bench_ps: %s: %s: %s\n", m, rpc_status_name(st.code), st.details);
    return r;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n ? v[n / 2] : 0;
}

static int bench_shard(const char *addr, const char *token_file, const char *spec_path, int iter)
{
    char token[RPC_TOKEN_MAX], err[SAT_ERR_LEN];
    if (rpc_token_load(token_file, token, err) != 0) {
        fprintf(stderr, "bench_ps: %s\n", err);
        return 1;
    }
    FILE *f = fopen(spec_path, "r");
    char spec[65536];
    size_t n = f ? fread(spec, 1, sizeof spec - 1, f) : 0;
    if (f)
        fclose(f);
    spec[n] = 0;
    rpc_init();
    struct rpc_client_opts o = {.target = addr, .token = token, .max_msg = 256u << 20};
    if (rpc_client_new(&cli, &o, err) != 0)
        return 1;
    Saturn__V1__RegisterRequest rr = SATURN__V1__REGISTER_REQUEST__INIT;
    rr.name = "bench";
    rr.threads = 1;
    rr.version = "bench";
    ProtobufCMessage *m = call("/saturn.v1.Worker/RegisterWorker", &rr.base,
                               &saturn__v1__register_response__descriptor);
    if (!m)
        return 1;
    char wid[64];
    snprintf(wid, sizeof wid, "%s", ((Saturn__V1__RegisterResponse *)m)->worker_id);
    /* Every later Worker and ParameterServer call presents the session. */
    int rc = rpc_client_set_session(cli, ((Saturn__V1__RegisterResponse *)m)->session);
    rpc_msg_free(m);
    if (rc != 0) {
        fprintf(stderr, "bench_ps: the session secret is refused: %s\n", sat_strerror(rc));
        return 1;
    }
    Saturn__V1__SubmitJobRequest sr = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
    sr.spec_json = spec;
    m = call("/saturn.v1.Client/SubmitJob", &sr.base, &saturn__v1__submit_job_response__descriptor);
    if (!m)
        return 1;
    char job[64];
    snprintf(job, sizeof job, "%s", ((Saturn__V1__SubmitJobResponse *)m)->job_id);
    rpc_msg_free(m);
    Saturn__V1__HeartbeatRequest hb = SATURN__V1__HEARTBEAT_REQUEST__INIT;
    hb.worker_id = wid;
    hb.job_id = "";
    m = call("/saturn.v1.Worker/Heartbeat", &hb.base, &saturn__v1__heartbeat_response__descriptor);
    uint32_t attempt = m && ((Saturn__V1__HeartbeatResponse *)m)->assignment
                           ? ((Saturn__V1__HeartbeatResponse *)m)->assignment->attempt
                           : 1;
    rpc_msg_free(m);
    Saturn__V1__AckAssignmentRequest ar = SATURN__V1__ACK_ASSIGNMENT_REQUEST__INIT;
    ar.worker_id = wid;
    ar.job_id = job;
    ar.attempt = attempt;
    ar.accepted = 1;
    ar.reason = "";
    m = call("/saturn.v1.Worker/AckAssignment", &ar.base,
             &saturn__v1__ack_assignment_response__descriptor);
    rpc_msg_free(m);
    Saturn__V1__GetLayoutRequest lr = SATURN__V1__GET_LAYOUT_REQUEST__INIT;
    lr.job_id = job;
    m = call("/saturn.v1.ParameterServer/GetLayout", &lr.base,
             &saturn__v1__get_layout_response__descriptor);
    if (!m)
        return 1;
    const Saturn__V1__GetLayoutResponse *lay = (const Saturn__V1__GetLayoutResponse *)m;
    size_t count = lay->shards[0]->count, nbn = lay->bn_count;
    if ((uint64_t)iter > lay->total_steps)
        iter = (int)lay->total_steps; /* every iteration applies one step */
    int nshards = (int)lay->n_shards;
    rpc_msg_free(m);
    if (nshards != 1) {
        fprintf(stderr,
                "bench_ps: the model has %d shards; run saturnd with a larger "
                "--shard-floats\n",
                nshards);
        return 1;
    }
    const char *b = strstr(spec, "\"batch_size\"");
    uint32_t batch = b ? (uint32_t)strtoul(strchr(b, ':') + 1, NULL, 10) : 128;
    float *grad = sat_calloc(count, sizeof(float)), *bn = sat_calloc(nbn ? nbn : 1, sizeof(float));
    for (size_t i = 0; i < nbn; i++)
        bn[i] = 1.0f;
    double *tp = sat_calloc((size_t)iter, sizeof(double)), *tu = sat_calloc((size_t)iter, 8),
           *td = sat_calloc((size_t)iter, 8);
    double mb = (double)count * 4 / (1 << 20);
    for (int it = 0; it < iter; it++) {
        Saturn__V1__PullRequest pr = SATURN__V1__PULL_REQUEST__INIT;
        pr.job_id = job;
        pr.min_version = (uint64_t)it;
        double t0 = sat_mono_s();
        m = call("/saturn.v1.ParameterServer/Pull", &pr.base,
                 &saturn__v1__pull_response__descriptor);
        tp[it] = sat_mono_s() - t0;
        rpc_msg_free(m);
        Saturn__V1__PushRequest ps = SATURN__V1__PUSH_REQUEST__INIT;
        ps.job_id = job;
        ps.step = (uint64_t)it;
        ps.gradient.data = (uint8_t *)grad;
        ps.gradient.len = count * sizeof(float);
        ps.bn_stats.data = (uint8_t *)bn;
        ps.bn_stats.len = nbn * sizeof(float);
        ps.batch_size = batch;
        t0 = sat_mono_s();
        m = call("/saturn.v1.ParameterServer/Push", &ps.base,
                 &saturn__v1__push_response__descriptor);
        tu[it] = sat_mono_s() - t0;
        rpc_msg_free(m);
        t0 = sat_mono_s();
        m = call("/saturn.v1.ParameterServer/Push", &ps.base,
                 &saturn__v1__push_response__descriptor);
        td[it] = sat_mono_s() - t0;
        rpc_msg_free(m);
    }
    double mp = median(tp, iter), mu = median(tu, iter), md = median(td, iter);
    printf("shard_MB %.2f\n", mb);
    printf("shards %d\n", nshards);
    printf("pull_ms %.2f\npull_MBps %.0f\n", 1e3 * mp, mb / mp);
    printf("push_ms %.2f\npush_MBps %.0f\n", 1e3 * mu, mb / mu);
    printf("push_dup_ms %.2f\npush_dup_MBps %.0f\n", 1e3 * md, mb / md);
    sat_free(grad);
    sat_free(bn);
    sat_free(tp);
    sat_free(tu);
    sat_free(td);
    rpc_client_free(cli);
    rpc_shutdown();
    return 0;
}

/* ==== a big shard through the RPC layer ==================================== */

struct big {
    struct rpc_hold hold; /* what Pull replies send from (params) */
    float *params, *grads;
    size_t n;
    uv_loop_t loop;
    uv_async_t stop;
    struct rpc_server *srv;
};

static void h_pull(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct big *b = ud;
    (void)msg;
    Saturn__V1__PullResponse r = SATURN__V1__PULL_RESPONSE__INIT;
    r.values.data = (uint8_t *)b->params;
    r.values.len = b->n * sizeof(float);
    /* The parameters never change here: the hold only counts. */
    rpc_reply_held(call, &r.base, &b->hold);
}

/* The gradient lands in the gradient buffer as it is decoded, as a bsp
 * push lands in its rank's slot in ps.c. */
static void land_push(struct rpc_land *land, const ProtobufCMessage *req, void *ud)
{
    struct big *b = ud;
    if (req->descriptor != &saturn__v1__push_request__descriptor)
        return;
    land->field = 5; /* PushRequest.gradient */
    land->dst = b->grads;
    land->len = b->n * sizeof(float);
}

static void h_push(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
    struct big *b = ud;
    const Saturn__V1__PushRequest *q = (const Saturn__V1__PushRequest *)msg;
    if (!rpc_call_landed(call) && q->gradient.len == b->n * sizeof(float))
        memcpy(b->grads, q->gradient.data, q->gradient.len);
    Saturn__V1__PushResponse r = SATURN__V1__PUSH_RESPONSE__INIT;
    rpc_reply(call, &r.base);
}

static const struct rpc_method big_methods[] = {
    {"/saturn.v1.ParameterServer/Pull", &saturn__v1__pull_request__descriptor, h_pull, 0,
     RPC_R_ANY},
    {"/saturn.v1.ParameterServer/Push", &saturn__v1__push_request__descriptor, h_push, 0,
     RPC_R_ANY},
};

static void on_stopped(void *arg)
{
    (void)arg;
}

static void on_stop(uv_async_t *a)
{
    struct big *b = a->data;
    rpc_server_stop(b->srv, 100, on_stopped, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
    struct big *b = arg;
    uv_run(&b->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int bench_rpc(int mb, int iter)
{
    sat_tune_malloc(); /* as saturnd and the workers do */
    struct big b = {.n = (size_t)mb << 18};
    b.params = sat_calloc(b.n, sizeof(float));
    b.grads = sat_calloc(b.n, sizeof(float));
    float *g = sat_calloc(b.n, sizeof(float));
    rpc_init();
    uv_loop_init(&b.loop);
    uv_async_init(&b.loop, &b.stop, on_stop);
    b.stop.data = &b;
    char err[SAT_ERR_LEN];
    int port = 0;
    struct rpc_server_opts so = {.listen = "127.0.0.1:0",
                                 .max_msg = 256u << 20,
                                 .methods = big_methods,
                                 .nmethods = 2,
                                 .ud = &b,
                                 .land = land_push};
    if (rpc_server_start(&b.srv, &b.loop, &so, &port, err) != 0) {
        fprintf(stderr, "bench_ps: %s\n", err);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, loop_main, &b);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    struct rpc_client_opts o = {.target = addr, .max_msg = 256u << 20};
    rpc_client_new(&cli, &o, err);
    double *tp = sat_calloc((size_t)iter, 8), *tu = sat_calloc((size_t)iter, 8);
    for (int i = 0; i < iter; i++) {
        Saturn__V1__PullRequest pr = SATURN__V1__PULL_REQUEST__INIT;
        pr.job_id = "bench";
        double t0 = sat_mono_s();
        /* The values land in the model, as a worker's pull does. */
        struct rpc_land land = {.field = 2 /* values */, .dst = g, .len = b.n * sizeof(float)};
        ProtobufCMessage *m = NULL;
        struct rpc_status st;
        if (rpc_unary_into(cli, "/saturn.v1.ParameterServer/Pull", &pr.base,
                           &saturn__v1__pull_response__descriptor, &land, &m, 120000, &st) != 0 ||
            !land.landed) {
            fprintf(stderr, "bench_ps: Pull: %s: %s\n", rpc_status_name(st.code), st.details);
            return 1;
        }
        rpc_msg_free(m);
        tp[i] = sat_mono_s() - t0;
        Saturn__V1__PushRequest ps = SATURN__V1__PUSH_REQUEST__INIT;
        ps.job_id = "bench";
        ps.gradient.data = (uint8_t *)g;
        ps.gradient.len = b.n * sizeof(float);
        t0 = sat_mono_s();
        m = call("/saturn.v1.ParameterServer/Push", &ps.base,
                 &saturn__v1__push_response__descriptor);
        rpc_msg_free(m);
        tu[i] = sat_mono_s() - t0;
    }
    double mp = median(tp, iter), mu = median(tu, iter);
    printf("rpc_shard_MB %d\nrpc_pull_ms %.2f\nrpc_pull_MBps %.0f\nrpc_push_ms %.2f\n"
           "rpc_push_MBps %.0f\n",
           mb, 1e3 * mp, mb / mp, 1e3 * mu, mb / mu);
    rpc_client_free(cli);
    uv_async_send(&b.stop);
    pthread_join(t, NULL);
    uv_loop_close(&b.loop);
    rpc_shutdown();
    sat_free(b.params);
    sat_free(b.grads);
    sat_free(g);
    sat_free(tp);
    sat_free(tu);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "rpc") == 0)
        return bench_rpc(atoi(argv[2]), atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "tcp") == 0)
        return bench_tcp(atoi(argv[2]), 0);
    if (argc == 3 && strcmp(argv[1], "tcp-staged") == 0)
        return bench_tcp(atoi(argv[2]), 1);
    if (argc == 6 && strcmp(argv[1], "shard") == 0)
        return bench_shard(argv[2], argv[3], argv[4], atoi(argv[5]));
    fprintf(stderr, "usage: bench_ps tcp MB | bench_ps tcp-staged MB | bench_ps shard ADDR "
                    "TOKEN_FILE SPEC.json ITER | "
                    "bench_ps rpc MB ITER\n");
    return 2;
}
