/* bench_authburst.c - what a burst of large calls with a wrong token costs
 * saturnd in memory: its RSS (VmRSS of /proc/PID/status) idle, at its peak
 * during CALLS parallel calls of MIB MiB each with a wrong bearer token,
 * and a few seconds after (idle: with the CALLS connections open). saturnd checks the token from the call's
 * metadata before it reads the message, so the burst should cost it
 * little; the target is an RSS within 32 MB of idle afterwards.
 *
 *   bench_authburst ADDR SATURND_PID [CALLS] [MIB]
 *
 * Prints the figures and the statuses the calls got; exit status 0 when
 * every call was refused (UNAUTHENTICATED) and the RSS after the burst is
 * within the target, 1 otherwise, 2 on a usage or set-up error.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc/rpc.h"
#include "util/xalloc.h"

#define TARGET_MB 32.0
#define MAX_CALLS 256

static const char *addr;
static int saturnd_pid;
static size_t msg_len;
static const void *msg;
static atomic_long peak_kb;
static atomic_int sampling;
static atomic_int nunauth, nother;

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sampler(void *arg)
{
    (void)arg;
    while (atomic_load(&sampling)) {
        long kb = rss_kb(saturnd_pid);
        if (kb > atomic_load(&peak_kb))
            atomic_store(&peak_kb, kb);
        sleep_ms(5);
    }
    return NULL;
}

/* One connection per caller, made before the burst (a health check needs
 * no token), so that the burst measures calls, not connection set-up. */
static struct rpc_client *connect_one(void)
{
    char err[SAT_ERR_LEN];
    struct rpc_client *c;
    struct rpc_client_opts o = {.target = addr,
                                .token = "wrong-token-0123456789abcdef0123456789abcdef"};
    if (rpc_client_new(&c, &o, err) != 0)
        return NULL;
    struct rpc_status st;
    for (int i = 0; i < 50; i++) {
        rpc_unary_raw(c, "/grpc.health.v1.Health/Check", "", 0, 5000, &st);
        if (st.code == GRPC_STATUS_OK)
            return c;
        sleep_ms(100);
    }
    return NULL;
}

static void *caller(void *arg)
{
    struct rpc_client *c = arg;
    struct rpc_status st;
    rpc_unary_raw(c, "/saturn.v1.Client/SubmitJob", msg, msg_len, 60000, &st);
    if (st.code == GRPC_STATUS_UNAUTHENTICATED) {
        atomic_fetch_add(&nunauth, 1);
    } else {
        atomic_fetch_add(&nother, 1);
        fprintf(stderr, "bench_authburst: a call got %s: %s\n", rpc_status_name(st.code),
                st.details);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: bench_authburst ADDR SATURND_PID [CALLS] [MIB]\n");
        return 2;
    }
    addr = argv[1];
    saturnd_pid = atoi(argv[2]);
    int calls = argc > 3 ? atoi(argv[3]) : 32;
    int mib = argc > 4 ? atoi(argv[4]) : 60;
    if (saturnd_pid <= 0 || calls < 1 || calls > MAX_CALLS || mib < 1 || mib > 63) {
        fprintf(stderr, "bench_authburst: bad arguments (CALLS 1..%d, MIB 1..63)\n", MAX_CALLS);
        return 2;
    }
    msg_len = (size_t)mib << 20;
    char *buf = sat_calloc(msg_len, 1);
    if (!buf)
        return 2;
    memset(buf, 0x5a, msg_len); /* not a valid message: it must never be parsed */
    msg = buf;
    rpc_init();

    struct rpc_client *cli[MAX_CALLS];
    for (int i = 0; i < calls; i++)
        if (!(cli[i] = connect_one())) {
            fprintf(stderr, "bench_authburst: cannot reach saturnd at %s\n", addr);
            return 2;
        }
    sleep_ms(500);
    long idle = rss_kb(saturnd_pid);
    if (idle < 0) {
        fprintf(stderr, "bench_authburst: no process %d\n", saturnd_pid);
        return 2;
    }
    atomic_store(&peak_kb, idle);
    atomic_store(&sampling, 1);
    pthread_t samp, th[MAX_CALLS];
    pthread_create(&samp, NULL, sampler, NULL);
    double t0 = now_s();
    for (int i = 0; i < calls; i++)
        pthread_create(&th[i], NULL, caller, cli[i]);
    for (int i = 0; i < calls; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < calls; i++)
        rpc_client_free(cli[i]);
    double burst_s = now_s() - t0;
    atomic_store(&sampling, 0);
    pthread_join(samp, NULL);
    long peak = atomic_load(&peak_kb);

    /* saturnd trims freed memory on its next 1 s tick after refusals. */
    long after[4];
    const long at_ms[4] = {500, 1500, 3000, 5000};
    long slept = 0;
    for (int i = 0; i < 4; i++) {
        sleep_ms(at_ms[i] - slept);
        slept = at_ms[i];
        after[i] = rss_kb(saturnd_pid);
    }
    double idle_mb = idle / 1024.0, peak_mb = peak / 1024.0, end_mb = after[3] / 1024.0;
    printf("burst: %d parallel calls of %d MiB with a wrong token in %.2f s: %d UNAUTHENTICATED, "
           "%d other\n",
           calls, mib, burst_s, atomic_load(&nunauth), atomic_load(&nother));
    printf("saturnd RSS idle        %8.1f MB\n", idle_mb);
    printf("saturnd RSS peak during %8.1f MB (+%.1f)\n", peak_mb, peak_mb - idle_mb);
    for (int i = 0; i < 4; i++)
        printf("saturnd RSS after +%.1fs %8.1f MB (+%.1f)\n", at_ms[i] / 1000.0, after[i] / 1024.0,
               (after[i] - idle) / 1024.0);
    bool ok = atomic_load(&nother) == 0 && end_mb - idle_mb <= TARGET_MB;
    printf("%s: RSS after the burst is %.1f MB above idle (target <= %.0f MB)\n",
           ok ? "PASS" : "FAIL", end_mb - idle_mb, TARGET_MB);
    sat_free(buf);
    rpc_shutdown();
    return ok ? 0 : 1;
}
