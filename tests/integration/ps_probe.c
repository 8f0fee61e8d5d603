/* ps_probe.c - drives saturnd's parameter server as two fake workers, so
 * that every push is under the test's control, and checks what a worker
 * must never be able to do:
 *
 *   ps_probe ADDR TOKEN_FILE SPEC.json
 *
 * It registers two workers (each with its own channel carrying its session
 * secret), submits SPEC (2 workers, bsp), acknowledges the assignments,
 * checks worker identity (a caller without a session cannot push for rank
 * 0, a forged session is unknown, one worker cannot heartbeat, Leave,
 * push for or fetch the shard of the other: PERMISSION_DENIED, nothing
 * changes), then checks that pushes of the wrong size, for an
 * unknown job, with a step out of range, a rank out of range, a wrong
 * attempt, or BN statistics of the wrong size are refused with the right
 * status and change nothing; that a pull waiting for a version nobody
 * pushes is bounded by its deadline; that bsp applies a step only when
 * both ranks have pushed it, and a repeated push is acknowledged as a
 * duplicate. Prints TAP-like lines and "N passed, N failed"; exit status
 * 0 when every check passed. The job is left running (the caller cancels
 * it and checks that saturnd still serves).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "saturn.pb-c.h"
#include "util/xalloc.h"

static int npass, nfail;
static struct rpc_client *cli;  /* the channel calls go through now */
static struct rpc_client *base; /* no session: client calls */

static void check(int ok, const char *what, const struct rpc_status *st)
{
    if (ok) {
        printf("ok %d - %s\n", npass + nfail + 1, what);
        npass++;
    } else {
        printf("not ok %d - %s (status %s: %s)\n", npass + nfail + 1, what,
               st ? rpc_status_name(st->code) : "-", st ? st->details : "");
        nfail++;
    }
}

static ProtobufCMessage *call(const char *method, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *d, int timeout_ms,
                              struct rpc_status *st)
{
    ProtobufCMessage *m = NULL;
    rpc_unary(cli, method, req, d, &m, timeout_ms, st);
    return m;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = sat_malloc(65536 + 1);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

struct pushv {
    const char *job;
    uint32_t shard, rank, attempt, batch;
    uint64_t step;
    size_t grad_floats, bn_floats;
    float value, bn_value;
    long poke;        /* gradient index set to poke_value, or -1 */
    float poke_value;
    long bn_poke;     /* BN index set to bn_poke_value, or -1 */
    float bn_poke_value;
};

static grpc_status_code push(const struct pushv *p, Saturn__V1__PushResponse **resp,
                             struct rpc_status *st)
{
    float *g = sat_calloc(p->grad_floats ? p->grad_floats : 1, sizeof(float));
    float *bn = sat_calloc(p->bn_floats ? p->bn_floats : 1, sizeof(float));
    for (size_t i = 0; i < p->grad_floats; i++)
        g[i] = p->value;
    for (size_t i = 0; i < p->bn_floats; i++)
        bn[i] = p->bn_value;
    if (p->poke >= 0 && (size_t)p->poke < p->grad_floats)
        g[p->poke] = p->poke_value;
    if (p->bn_poke >= 0 && (size_t)p->bn_poke < p->bn_floats)
        bn[p->bn_poke] = p->bn_poke_value;
    Saturn__V1__PushRequest req = SATURN__V1__PUSH_REQUEST__INIT;
    req.job_id = (char *)p->job;
    req.shard = p->shard;
    req.rank = p->rank;
    req.step = p->step;
    req.gradient.data = (uint8_t *)g;
    req.gradient.len = p->grad_floats * sizeof(float);
    req.bn_stats.data = (uint8_t *)bn;
    req.bn_stats.len = p->bn_floats * sizeof(float);
    req.batch_size = p->batch;
    req.attempt = p->attempt;
    ProtobufCMessage *m = call("/saturn.v1.ParameterServer/Push", &req.base,
                               &saturn__v1__push_response__descriptor, 10000, st);
    sat_free(g);
    sat_free(bn);
    if (resp)
        *resp = (Saturn__V1__PushResponse *)m;
    else
        rpc_msg_free(m);
    return st->code;
}

/* Pulls shard 0; returns the response (caller frees) or NULL. */
static Saturn__V1__PullResponse *pull(const char *job, uint64_t min_version, int timeout_ms,
                                      struct rpc_status *st)
{
    Saturn__V1__PullRequest req = SATURN__V1__PULL_REQUEST__INIT;
    req.job_id = (char *)job;
    req.min_version = min_version;
    return (Saturn__V1__PullResponse *)call("/saturn.v1.ParameterServer/Pull", &req.base,
                                            &saturn__v1__pull_response__descriptor, timeout_ms, st);
}

/* Opens a server stream and reads its first message: 1, or < 0 with st
 * filled (the status the stream ended with). */
static int first_read(const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *d, struct rpc_status *st)
{
    struct rpc_stream *s;
    ProtobufCMessage *m = NULL;
    int rc = rpc_stream_open(cli, method, req, 5000, &s, st);
    if (rc == 0) {
        rc = rpc_stream_read(s, d, &m, st);
        rpc_msg_free(m);
        rpc_stream_close(s);
    }
    return rc;
}

static int same_bytes(const Saturn__V1__PullResponse *a, const Saturn__V1__PullResponse *b)
{
    return a && b && a->values.len == b->values.len &&
           memcmp(a->values.data, b->values.data, a->values.len) == 0 &&
           a->bn_buffers.len == b->bn_buffers.len &&
           memcmp(a->bn_buffers.data, b->bn_buffers.data, a->bn_buffers.len) == 0;
}

/* ==== numbers: non-finite pushes, huge updates, inconsistent metrics ===== */

/* Pushes step `step` of every shard for `rank`, shard 0 last; returns the
 * status of shard 0's push (its response in *pr when pr is not NULL). */
static grpc_status_code push_step(const struct pushv *good, const Saturn__V1__GetLayoutResponse *lay,
                                  uint32_t rank, uint64_t step, float value,
                                  Saturn__V1__PushResponse **pr, struct rpc_status *st)
{
    struct pushv p = *good;
    p.rank = rank;
    p.step = step;
    p.value = value;
    for (uint32_t s = 1; s < lay->n_shards; s++) {
        struct pushv q = p;
        q.shard = s;
        q.grad_floats = lay->shards[s]->count;
        q.bn_floats = 0;
        push(&q, NULL, st);
    }
    return push(&p, pr, st);
}

static grpc_status_code report(const char *job, const char *wid, uint32_t attempt,
                               const Saturn__V1__ReportMetricsRequest *tmpl, struct rpc_status *st)
{
    Saturn__V1__ReportMetricsRequest r = *tmpl;
    r.worker_id = (char *)wid;
    r.job_id = (char *)job;
    r.attempt = attempt;
    ProtobufCMessage *m = call("/saturn.v1.Worker/ReportMetrics", &r.base,
                               &saturn__v1__report_metrics_response__descriptor, 10000, st);
    rpc_msg_free(m);
    return st->code;
}

/* Before any step: every bad number is refused and changes nothing (the
 * caller compares the parameters afterwards). */
static void refuse_bad_numbers(const char *job, uint32_t attempt, const char *wid,
                               const struct pushv *good, size_t nbn)
{
    struct rpc_status st;
    struct pushv p = *good;
    p.poke = 3;
    p.poke_value = NAN;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT && strstr(st.details, "gradient"),
          "a NaN in the gradient -> INVALID_ARGUMENT naming the field", &st);
    p.poke_value = INFINITY;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT && strstr(st.details, "gradient"),
          "an infinite gradient value -> INVALID_ARGUMENT", &st);
    if (nbn > 0) {
        p = *good;
        p.bn_poke = (long)nbn - 1;
        p.bn_poke_value = NAN;
        check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT &&
                  strstr(st.details, "bn_stats"),
              "a NaN BN statistic -> INVALID_ARGUMENT naming the field", &st);
        p = *good;
        p.bn_value = -1.0f;
        check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT &&
                  strstr(st.details, "variance"),
              "a negative BN running variance -> INVALID_ARGUMENT", &st);
    } else {
        printf("# the model has no BN buffers: BN checks not run\n");
    }
    Saturn__V1__ReportMetricsRequest ok = SATURN__V1__REPORT_METRICS_REQUEST__INIT;
    ok.rank = 0;
    ok.window_steps = 1;
    ok.train_seen = 32;
    ok.train_correct = 10;
    ok.loss = 2.3f;
    ok.step_seconds = 0.01;
    ok.images_per_second = 100;
    Saturn__V1__ReportMetricsRequest bad[5];
    for (int i = 0; i < 5; i++)
        bad[i] = ok;
    bad[0].train_correct = 33;
    bad[1].eval_seen = 10;
    bad[1].eval_correct = 11;
    bad[2].loss = NAN;
    bad[3].loss = -1;
    bad[4].images_per_second = INFINITY;
    static const char *const field[5] = {"train_correct", "eval_correct", "loss", "loss",
                                         "images_per_second"};
    static const char *const what[5] = {
        "ReportMetrics with train_correct > train_seen -> INVALID_ARGUMENT",
        "ReportMetrics with eval_correct > eval_seen -> INVALID_ARGUMENT",
        "ReportMetrics with a NaN loss -> INVALID_ARGUMENT",
        "ReportMetrics with a negative loss -> INVALID_ARGUMENT",
        "ReportMetrics with infinite images/s -> INVALID_ARGUMENT"};
    for (int i = 0; i < 5; i++)
        check(report(job, wid, attempt, &bad[i], &st) == GRPC_STATUS_INVALID_ARGUMENT &&
                  strstr(st.details, field[i]),
              what[i], &st);
    check(report(job, wid, attempt, &ok, &st) == GRPC_STATUS_OK,
          "a consistent ReportMetrics is accepted", &st);
}

static bool floats_finite(const ProtobufCBinaryData *b)
{
    for (size_t i = 0; i + 4 <= b->len; i += 4) {
        float x;
        memcpy(&x, b->data + i, 4);
        if (!isfinite(x))
            return false;
    }
    return true;
}

static bool all_finite(const Saturn__V1__PullResponse *r)
{
    return r && floats_finite(&r->values) && floats_finite(&r->bn_buffers);
}

/* True when the job's events hold one of kind `kind` (WatchJob replay). */
static bool has_event(const char *job, const char *kind)
{
    Saturn__V1__WatchJobRequest w = SATURN__V1__WATCH_JOB_REQUEST__INIT;
    w.job_id = (char *)job;
    struct rpc_stream *s;
    struct rpc_status st;
    bool found = false;
    if (rpc_stream_open(cli, "/saturn.v1.Client/WatchJob", &w.base, 2000, &s, &st) != 0)
        return false;
    ProtobufCMessage *m = NULL;
    while (!found && rpc_stream_read(s, &saturn__v1__job_event__descriptor, &m, &st) == 1) {
        const Saturn__V1__JobEvent *e = (const Saturn__V1__JobEvent *)m;
        if (strcmp(e->kind, kind) == 0) {
            found = true;
            printf("# event: %s: %s\n", e->kind, e->message);
        }
        rpc_msg_free(m);
    }
    rpc_stream_close(s);
    return found;
}

/* From version `v`: a step of a finite but huge gradient is applied while
 * it stays finite; the next one would overflow the momentum and is
 * skipped (an event says so), the parameters stay finite and a normal
 * step after it is applied. */
static void huge_gradient_steps(const char *job, const Saturn__V1__GetLayoutResponse *lay,
                                const struct pushv *good, uint64_t v,
                                struct rpc_client *const by_rank[2])
{
    struct rpc_status st;
    for (int k = 0; k < 2; k++, v++) {
        cli = by_rank[0];
        push_step(good, lay, 0, v, 3e38f, NULL, &st);
        cli = by_rank[1];
        push_step(good, lay, 1, v, 0.0f, NULL, &st);
    }
    cli = by_rank[0];
    Saturn__V1__PullResponse *r = pull(job, v, 10000, &st);
    check(r && r->version == v, "two steps of a 3e38 gradient: the version still advances", &st);
    check(all_finite(r), "  ... and every parameter and BN value is finite", &st);
    check(has_event(job, "step_skipped"), "  ... and the skipped step is in the job's events", &st);
    push_step(good, lay, 0, v, 0.01f, NULL, &st);
    cli = by_rank[1];
    push_step(good, lay, 1, v, 0.01f, NULL, &st);
    cli = by_rank[0];
    Saturn__V1__PullResponse *r2 = pull(job, v + 1, 10000, &st);
    check(r2 && r2->version == v + 1 && all_finite(r2) && !same_bytes(r, r2),
          "  ... and the job still trains: a normal step after it is applied", &st);
    rpc_msg_free(r ? &r->base : NULL);
    rpc_msg_free(r2 ? &r2->base : NULL);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ps_probe ADDR TOKEN_FILE SPEC.json\n");
        return 2;
    }
    char token[RPC_TOKEN_MAX], err[SAT_ERR_LEN];
    if (rpc_token_load(argv[2], token, err) != 0) {
        fprintf(stderr, "ps_probe: %s\n", err);
        return 2;
    }
    char *spec = read_file(argv[3]);
    if (!spec) {
        fprintf(stderr, "ps_probe: cannot read %s\n", argv[3]);
        return 2;
    }
    rpc_init();
    struct rpc_client_opts o = {.target = argv[1], .token = token};
    struct rpc_client *wcli[2] = {NULL, NULL}; /* by registration */
    if (rpc_client_new(&base, &o, err) != 0 || rpc_client_new(&wcli[0], &o, err) != 0 ||
        rpc_client_new(&wcli[1], &o, err) != 0) {
        fprintf(stderr, "ps_probe: %s\n", err);
        return 2;
    }
    struct rpc_status st;
    char wid[2][64];
    for (int i = 0; i < 2; i++) {
        cli = wcli[i];
        Saturn__V1__RegisterRequest r = SATURN__V1__REGISTER_REQUEST__INIT;
        char name[32];
        snprintf(name, sizeof name, "probe-%d", i);
        r.name = name;
        r.threads = 1;
        r.version = "probe";
        ProtobufCMessage *m = call("/saturn.v1.Worker/RegisterWorker", &r.base,
                                   &saturn__v1__register_response__descriptor, 10000, &st);
        check(m != NULL, "a fake worker registers", &st);
        snprintf(wid[i], sizeof wid[i], "%s",
                 m ? ((Saturn__V1__RegisterResponse *)m)->worker_id : "?");
        check(m && strlen(((Saturn__V1__RegisterResponse *)m)->session) == 32,
              "  ... and gets a 128-bit session secret (32 hex digits)", &st);
        if (m)
            rpc_client_set_session(wcli[i], ((Saturn__V1__RegisterResponse *)m)->session);
        rpc_msg_free(m);
    }
    cli = base;
    Saturn__V1__SubmitJobRequest sr = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
    sr.spec_json = spec;
    ProtobufCMessage *m = call("/saturn.v1.Client/SubmitJob", &sr.base,
                               &saturn__v1__submit_job_response__descriptor, 10000, &st);
    check(m != NULL, "the 2-worker job is submitted", &st);
    char job[64];
    snprintf(job, sizeof job, "%s", m ? ((Saturn__V1__SubmitJobResponse *)m)->job_id : "?");
    rpc_msg_free(m);
    uint32_t attempt = 0;
    struct rpc_client *rank_cli[2] = {wcli[0], wcli[1]};
    const char *rank_wid[2] = {wid[0], wid[1]};
    for (int i = 0; i < 2; i++) {
        cli = wcli[i];
        Saturn__V1__HeartbeatRequest h = SATURN__V1__HEARTBEAT_REQUEST__INIT;
        h.worker_id = wid[i];
        h.activity = SATURN__V1__WORKER_ACTIVITY__WORKER_ACTIVITY_IDLE;
        h.job_id = "";
        m = call("/saturn.v1.Worker/Heartbeat", &h.base,
                 &saturn__v1__heartbeat_response__descriptor, 10000, &st);
        const Saturn__V1__HeartbeatResponse *hr = (const Saturn__V1__HeartbeatResponse *)m;
        check(hr && hr->assignment, "each fake worker is assigned the job", &st);
        if (hr && hr->assignment) {
            attempt = hr->assignment->attempt;
            if (hr->assignment->rank < 2) {
                rank_cli[hr->assignment->rank] = wcli[i];
                rank_wid[hr->assignment->rank] = wid[i];
            }
            Saturn__V1__AckAssignmentRequest a = SATURN__V1__ACK_ASSIGNMENT_REQUEST__INIT;
            a.worker_id = wid[i];
            a.job_id = hr->assignment->job_id;
            a.attempt = attempt;
            a.accepted = 1;
            a.reason = "";
            ProtobufCMessage *am =
                call("/saturn.v1.Worker/AckAssignment", &a.base,
                     &saturn__v1__ack_assignment_response__descriptor, 10000, &st);
            rpc_msg_free(am);
        }
        rpc_msg_free(m);
    }
    cli = rank_cli[0];
    Saturn__V1__GetLayoutRequest lr = SATURN__V1__GET_LAYOUT_REQUEST__INIT;
    lr.job_id = job;
    lr.attempt = attempt;
    m = call("/saturn.v1.ParameterServer/GetLayout", &lr.base,
             &saturn__v1__get_layout_response__descriptor, 60000, &st);
    const Saturn__V1__GetLayoutResponse *lay = (const Saturn__V1__GetLayoutResponse *)m;
    check(lay && lay->n_shards >= 1 && lay->total_steps > 0, "GetLayout answers once loaded", &st);
    if (!lay) {
        printf("%d passed, %d failed\n", npass, nfail);
        return 1;
    }
    size_t n0 = lay->shards[0]->count, nbn = lay->bn_count;
    uint64_t total = lay->total_steps;
    uint32_t batch = 0;
    {
        /* local batch = global batch / 2, from the spec's canonical form */
        const char *b = strstr(spec, "\"batch_size\"");
        batch = b ? (uint32_t)strtoul(strchr(b, ':') + 1, NULL, 10) / 2 : 0;
    }
    printf("# job %s: %zu shard(s), shard 0 = %zu floats, %zu BN values, %llu steps, local batch "
           "%u\n",
           job, lay->n_shards, n0, nbn, (unsigned long long)total, batch);

    Saturn__V1__PullResponse *before = pull(job, 0, 10000, &st);
    check(before && before->version == 0, "pull of version 0", &st);

    struct pushv good = {.job = job,
                         .shard = 0,
                         .rank = 0,
                         .attempt = attempt,
                         .batch = batch,
                         .step = 0,
                         .grad_floats = n0,
                         .bn_floats = nbn,
                         .value = 0.01f,
                         .bn_value = 0.5f,
                         .poke = -1,
                         .bn_poke = -1};
    struct pushv p;
    p = good;
    p.grad_floats = n0 - 1;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT && strstr(st.details, "gradient"),
          "a gradient of the wrong size -> INVALID_ARGUMENT", &st);
    p = good;
    p.bn_floats = nbn + 1;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT && strstr(st.details, "bn_stats"),
          "BN statistics of the wrong size -> INVALID_ARGUMENT", &st);
    p = good;
    p.job = "job-999";
    check(push(&p, NULL, &st) == GRPC_STATUS_NOT_FOUND, "a push for an unknown job -> NOT_FOUND",
          &st);
    p = good;
    p.step = total;
    check(push(&p, NULL, &st) == GRPC_STATUS_OUT_OF_RANGE,
          "a step past the last one -> OUT_OF_RANGE", &st);
    p = good;
    p.step = 1;
    check(push(&p, NULL, &st) == GRPC_STATUS_OUT_OF_RANGE,
          "bsp: a step ahead of the version -> OUT_OF_RANGE", &st);
    p = good;
    p.rank = 2;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT,
          "a rank out of range -> INVALID_ARGUMENT", &st);
    p = good;
    p.shard = (uint32_t)lay->n_shards;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT,
          "a shard out of range -> INVALID_ARGUMENT", &st);
    p = good;
    p.attempt = attempt + 7;
    check(push(&p, NULL, &st) == GRPC_STATUS_FAILED_PRECONDITION,
          "a push of another attempt -> FAILED_PRECONDITION", &st);
    p = good;
    p.batch = batch + 1;
    check(push(&p, NULL, &st) == GRPC_STATUS_INVALID_ARGUMENT,
          "a batch size other than the local batch -> INVALID_ARGUMENT", &st);

    refuse_bad_numbers(job, attempt, rank_wid[0], &good, nbn);

    /* ---- identity: who may act for rank 0 and its worker ---- */
    cli = base;
    check(push(&good, NULL, &st) == GRPC_STATUS_PERMISSION_DENIED,
          "a caller that never registered cannot push for rank 0 -> PERMISSION_DENIED", &st);
    struct rpc_client *forged;
    if (rpc_client_new(&forged, &o, err) == 0) {
        rpc_client_set_session(forged, "00112233445566778899aabbccddeeff");
        cli = forged;
        check(push(&good, NULL, &st) == GRPC_STATUS_NOT_FOUND,
              "a forged session secret is unknown -> NOT_FOUND", &st);
        rpc_client_free(forged);
    }
    cli = rank_cli[1];
    check(push(&good, NULL, &st) == GRPC_STATUS_PERMISSION_DENIED,
          "rank 1's worker cannot push for rank 0 -> PERMISSION_DENIED", &st);
    Saturn__V1__HeartbeatRequest hb = SATURN__V1__HEARTBEAT_REQUEST__INIT;
    hb.worker_id = (char *)rank_wid[0];
    hb.activity = SATURN__V1__WORKER_ACTIVITY__WORKER_ACTIVITY_IDLE;
    hb.job_id = "";
    m = call("/saturn.v1.Worker/Heartbeat", &hb.base, &saturn__v1__heartbeat_response__descriptor,
             10000, &st);
    check(!m && st.code == GRPC_STATUS_PERMISSION_DENIED,
          "a worker cannot heartbeat another worker's id -> PERMISSION_DENIED", &st);
    rpc_msg_free(m);
    Saturn__V1__LeaveRequest lv = SATURN__V1__LEAVE_REQUEST__INIT;
    lv.worker_id = (char *)rank_wid[0];
    lv.reason = "forged";
    m = call("/saturn.v1.Worker/Leave", &lv.base, &saturn__v1__leave_response__descriptor, 10000,
             &st);
    check(!m && st.code == GRPC_STATUS_PERMISSION_DENIED,
          "a worker cannot make another worker Leave -> PERMISSION_DENIED", &st);
    rpc_msg_free(m);
    {
        Saturn__V1__FetchDataRequest f0 = SATURN__V1__FETCH_DATA_REQUEST__INIT;
        f0.worker_id = (char *)rank_wid[1];
        f0.job_id = job;
        f0.attempt = attempt;
        f0.split = "train";
        f0.rank = 0;
        f0.world_size = 2;
        int frc = first_read("/saturn.v1.Worker/FetchData", &f0.base,
                             &saturn__v1__data_chunk__descriptor, &st);
        check(frc < 0 && st.code == GRPC_STATUS_PERMISSION_DENIED,
              "a worker cannot fetch another rank's shard -> PERMISSION_DENIED", &st);
    }
    cli = rank_cli[0];
    Saturn__V1__PullResponse *after = pull(job, 0, 10000, &st);
    check(after && after->version == 0 && same_bytes(before, after),
          "after the refused pushes: version 0 and the same parameters", &st);
    rpc_msg_free(after ? &after->base : NULL);

    Saturn__V1__PullResponse *w = pull(job, 1, 700, &st);
    check(!w && st.code == GRPC_STATUS_DEADLINE_EXCEEDED,
          "a pull of a version nobody pushed waits until its deadline (700 ms)", &st);
    rpc_msg_free(w ? &w->base : NULL);
    Saturn__V1__PullRequest big = SATURN__V1__PULL_REQUEST__INIT;
    big.job_id = job;
    big.min_version = total + 1;
    m = call("/saturn.v1.ParameterServer/Pull", &big.base, &saturn__v1__pull_response__descriptor,
             5000, &st);
    check(!m && st.code == GRPC_STATUS_OUT_OF_RANGE, "a pull past the last step -> OUT_OF_RANGE",
          &st);
    rpc_msg_free(m);

    Saturn__V1__PushResponse *pr = NULL;
    for (uint32_t s = 1; s < lay->n_shards; s++) {
        p = good;
        p.shard = s;
        p.grad_floats = lay->shards[s]->count;
        p.bn_floats = 0;
        push(&p, NULL, &st);
    }
    push(&good, &pr, &st);
    check(pr && !pr->duplicate && pr->version == 0, "rank 0 pushes step 0: accepted, version 0",
          &st);
    rpc_msg_free(pr ? &pr->base : NULL);
    pr = NULL;
    push(&good, &pr, &st);
    check(pr && pr->duplicate, "the same push again is acknowledged as a duplicate", &st);
    rpc_msg_free(pr ? &pr->base : NULL);
    after = pull(job, 0, 10000, &st);
    check(after && after->version == 0 && same_bytes(before, after),
          "bsp: with one rank pushed, nothing is applied yet", &st);
    rpc_msg_free(after ? &after->base : NULL);

    cli = rank_cli[1];
    for (uint32_t s = 1; s < lay->n_shards; s++) {
        p = good;
        p.rank = 1;
        p.shard = s;
        p.grad_floats = lay->shards[s]->count;
        p.bn_floats = 0;
        push(&p, NULL, &st);
    }
    p = good;
    p.rank = 1;
    pr = NULL;
    push(&p, &pr, &st);
    check(pr && !pr->duplicate && pr->version == 1,
          "rank 1 pushes step 0: version 1 (its worker was not made to leave)", &st);
    rpc_msg_free(pr ? &pr->base : NULL);
    cli = rank_cli[0];
    after = pull(job, 1, 10000, &st);
    check(after && after->version == 1 && !same_bytes(before, after),
          "pull of version 1: the step was applied", &st);
    rpc_msg_free(after ? &after->base : NULL);
    if (total > 4)
        huge_gradient_steps(job, lay, &good, 1, rank_cli);

    Saturn__V1__FetchDataRequest fr = SATURN__V1__FETCH_DATA_REQUEST__INIT;
    fr.worker_id = (char *)rank_wid[0];
    fr.job_id = job;
    fr.split = "validation";
    fr.world_size = 2;
    int rc = first_read("/saturn.v1.Worker/FetchData", &fr.base,
                        &saturn__v1__data_chunk__descriptor, &st);
    check(rc < 0 && st.code == GRPC_STATUS_INVALID_ARGUMENT,
          "FetchData of an unknown split -> INVALID_ARGUMENT", &st);
    Saturn__V1__ExportModelRequest er = SATURN__V1__EXPORT_MODEL_REQUEST__INIT;
    er.job_id = job;
    er.format = "safetensors";
    cli = base;
    rc = first_read("/saturn.v1.Client/ExportModel", &er.base, &saturn__v1__model_chunk__descriptor,
                    &st);
    check(rc < 0 && st.code == GRPC_STATUS_FAILED_PRECONDITION,
          "export of a running job -> FAILED_PRECONDITION", &st);

    rpc_msg_free(before ? &before->base : NULL);
    rpc_msg_free((ProtobufCMessage *)lay);
    sat_free(spec);
    rpc_client_free(base);
    rpc_client_free(wcli[0]);
    rpc_client_free(wcli[1]);
    rpc_shutdown();
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
