/* bench_status.c - how fast saturnd answers a status call (Client.GetJob,
 * the call `saturn status` makes), over real gRPC on loopback.
 *
 *   bench_status --addr HOST:PORT --token-file F [--job JOB] [--calls N]
 *                [--warmup N] [--clients N] [--seconds S]
 *
 * 1. Latency: one client, N sequential calls after a warm-up; prints the
 *    median, p99, mean and min round trip in microseconds.
 * 2. Throughput: --clients threads (default 16), each with its own channel
 *    and connection, call GetJob back to back for S seconds; prints calls/s.
 * Without --job it submits a 1-worker job (which stays queued when no
 * worker is registered) and asks for that one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc/rpc.h"
#include "saturn.pb-c.h"
#include "util/clock.h"
#include "util/xalloc.h"

struct cfg {
    const char *addr;
    char token[RPC_TOKEN_MAX];
    char job[64];
    int calls, warmup, clients;
    double seconds;
};

struct thr {
    const struct cfg *cfg;
    pthread_barrier_t *start;
    double until;
    long calls, errors;
};

static int get_job(struct rpc_client *c, const char *job, struct rpc_status *st)
{
    Saturn__V1__GetJobRequest req = SATURN__V1__GET_JOB_REQUEST__INIT;
    req.job_id = (char *)job;
    ProtobufCMessage *m = NULL;
    int rc = rpc_unary(c, "/saturn.v1.Client/GetJob", &req.base,
                       &saturn__v1__get_job_response__descriptor, &m, 10000, st);
    rpc_msg_free(m);
    return rc;
}

static struct rpc_client *connect_or_die(const struct cfg *cfg)
{
    char err[SAT_ERR_LEN];
    struct rpc_client *c;
    struct rpc_client_opts o = {.target = cfg->addr, .token = cfg->token};
    if (rpc_client_new(&c, &o, err) != 0) {
        fprintf(stderr, "bench_status: %s\n", err);
        exit(1);
    }
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    struct rpc_client *c = connect_or_die(t->cfg);
    struct rpc_status st;
    get_job(c, t->cfg->job, &st); /* connect before the clock starts */
    pthread_barrier_wait(t->start);
    while (sat_mono_s() < t->until) {
        if (get_job(c, t->cfg->job, &st) == 0)
            t->calls++;
        else
            t->errors++;
    }
    rpc_client_free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    struct cfg cfg = {
        .addr = "127.0.0.1:7070", .calls = 3000, .warmup = 200, .clients = 16, .seconds = 5};
    const char *token_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--addr") == 0)
            cfg.addr = v;
        else if (strcmp(k, "--token-file") == 0)
            token_file = v;
        else if (strcmp(k, "--job") == 0)
            snprintf(cfg.job, sizeof cfg.job, "%s", v);
        else if (strcmp(k, "--calls") == 0)
            cfg.calls = atoi(v);
        else if (strcmp(k, "--warmup") == 0)
            cfg.warmup = atoi(v);
        else if (strcmp(k, "--clients") == 0)
            cfg.clients = atoi(v);
        else if (strcmp(k, "--seconds") == 0)
            cfg.seconds = atof(v);
        else {
            fprintf(stderr, "bench_status: unknown option %s\n", k);
            return 1;
        }
    }
    if (cfg.calls < 1 || cfg.clients < 1 || cfg.clients > 256 || cfg.seconds <= 0) {
        fprintf(stderr, "bench_status: bad --calls/--clients/--seconds\n");
        return 1;
    }
    char err[SAT_ERR_LEN];
    if (token_file && rpc_token_load(token_file, cfg.token, err) != 0) {
        fprintf(stderr, "bench_status: %s\n", err);
        return 1;
    }
    rpc_init();
    struct rpc_client *c = connect_or_die(&cfg);
    struct rpc_status st;
    if (!cfg.job[0]) {
        Saturn__V1__SubmitJobRequest req = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
        req.spec_json = "{\"model\": \"mlp\", \"dataset\": \"synthetic\", \"name\": \"bench\"}";
        ProtobufCMessage *m = NULL;
        if (rpc_unary(c, "/saturn.v1.Client/SubmitJob", &req.base,
                      &saturn__v1__submit_job_response__descriptor, &m, 10000, &st) != 0) {
            fprintf(stderr, "bench_status: submit: %s: %s\n", rpc_status_name(st.code), st.details);
            return 1;
        }
        snprintf(cfg.job, sizeof cfg.job, "%s", ((Saturn__V1__SubmitJobResponse *)m)->job_id);
        rpc_msg_free(m);
    }

    /* 1. Latency, one call at a time. */
    for (int i = 0; i < cfg.warmup; i++)
        if (get_job(c, cfg.job, &st) != 0) {
            fprintf(stderr, "bench_status: GetJob %s: %s: %s\n", cfg.job, rpc_status_name(st.code),
                    st.details);
            return 1;
        }
    double *lat = sat_malloc((size_t)cfg.calls * sizeof *lat);
    if (!lat)
        return 1;
    double sum = 0;
    for (int i = 0; i < cfg.calls; i++) {
        double t0 = sat_mono_s();
        if (get_job(c, cfg.job, &st) != 0) {
            fprintf(stderr, "bench_status: GetJob failed: %s\n", rpc_status_name(st.code));
            return 1;
        }
        lat[i] = (sat_mono_s() - t0) * 1e6;
        sum += lat[i];
    }
    qsort(lat, (size_t)cfg.calls, sizeof *lat, cmp_double);
    printf("status call (GetJob %s), 1 client, %d sequential calls after %d warm-up:\n", cfg.job,
           cfg.calls, cfg.warmup);
    printf("  latency_us median %.1f  p99 %.1f  mean %.1f  min %.1f\n", lat[cfg.calls / 2],
           lat[(size_t)((cfg.calls - 1) * 0.99)], sum / cfg.calls, lat[0]);
    sat_free(lat);
    rpc_client_free(c);

    /* 2. Throughput with concurrent clients. */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)cfg.clients + 1);
    struct thr *t = sat_calloc((size_t)cfg.clients, sizeof *t);
    pthread_t *th = sat_calloc((size_t)cfg.clients, sizeof *th);
    if (!t || !th)
        return 1;
    for (int i = 0; i < cfg.clients; i++) {
        t[i].cfg = &cfg;
        t[i].start = &start;
        t[i].until = 1e300;
    }
    for (int i = 0; i < cfg.clients; i++)
        pthread_create(&th[i], NULL, thr_main, &t[i]);
    /* Threads read `until` after the barrier; set it just before. */
    double t0 = sat_mono_s();
    for (int i = 0; i < cfg.clients; i++)
        t[i].until = t0 + cfg.seconds;
    pthread_barrier_wait(&start);
    t0 = sat_mono_s();
    long calls = 0, errors = 0;
    for (int i = 0; i < cfg.clients; i++) {
        pthread_join(th[i], NULL);
        calls += t[i].calls;
        errors += t[i].errors;
    }
    double el = sat_mono_s() - t0;
    printf("status calls with %d concurrent clients (own channel each) for %.1f s:\n", cfg.clients,
           el);
    printf("  throughput %.0f calls/s  (%ld calls, %ld errors)\n", (double)calls / el, calls,
           errors);
    pthread_barrier_destroy(&start);
    sat_free(t);
    sat_free(th);
    rpc_shutdown();
    return errors ? 1 : 0;
}
