/* loadgen.c - a load generator for saturnd's control plane, on 127.0.0.1.
 *
 *   loadgen [--seconds S] [--workers N] [--clients N] [--watches N] [--jobs N]
 *           [--think-ms MS] [--addr HOST:PORT --token-file F [--pid PID]] [--keep]
 *
 * For S seconds (default 60) it holds, all at once:
 * - N simulated workers (default 256; simworker.c) that registered and
 *   heartbeat "idle" every heartbeat_ms, each on its own connection;
 * - N status clients (default 64) calling GetJob, ListJobs, ListWorkers in
 *   turn, each followed by a think time uniform in [0.5, 1.5] x --think-ms
 *   (default 100 ms: about 640 status calls/s in all, a steady load that
 *   leaves most of a 2-core machine free);
 * - N WatchJob streams (default 16) spread over --jobs queued jobs (default 4).
 * Then it prints calls/s, p50/p99 latency and errors by kind, heartbeats
 * answered NOT_FOUND (spurious lease expiries), workers missing or lost in
 * ListWorkers at the end, and saturnd's CPU time and resident memory from
 * /proc (at the start, peak, end). The exit status is 1 if any call failed,
 * a lease expired, a worker was lost or a watch stream ended early.
 *
 * Jobs that stay queued while every simulated worker is idle do not exist
 * (any gang of 1..256 fits 256 idle workers), so before the workers join it
 * submits an "anchor" job of 1 worker at priority 1000: the first worker to
 * register is assigned to it and keeps the assignment, unacknowledged, for
 * the whole run (saturnd has no acknowledgement deadline; the heartbeat
 * answer repeats the assignment and the worker ignores it). The watched
 * jobs then ask for all N workers: N > N-1 free, so each stays queued
 * ("needs N workers, N-1 free") and its stream open, and nobody is failed
 * or dropped. At the end the workers leave and the jobs are cancelled.
 *
 * Without --addr it starts its own saturnd ($SATURND) on 127.0.0.1:0 with
 * a temporary state dir and stops it by PID. With --addr it uses that
 * saturnd (which must have no idle workers of its own), and reports its
 * CPU and memory if --pid is given.
 *
 * One thread drives every call through one completion queue (rpc_async_*).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lg_clients.h"
#include "lg_proc.h"
#include "saturn.pb-c.h"
#include "simworker.h"
#include "util/xalloc.h"

#define MAX_WATCHED_JOBS 64
#define SETUP_TIMEOUT_MS 60000  /* registering, submitting, opening watches */
#define DRAIN_TIMEOUT_MS 15000  /* calls in flight at the end, leaves */
#define REGISTER_RAMP_MS 2000.0 /* the workers' registrations spread over this */

struct opts {
    double seconds, think_ms;
    int workers, clients, watches, jobs;
    const char *addr, *token_file;
    int pid;
    bool keep;
};

struct lg {
    struct opts o;
    grpc_completion_queue *cq;
    struct simworker *workers;
    struct statclient *clients;
    struct watcher *watchers;
    bool clients_on;
    struct lg_stats setup, run, teardown;
    struct lg_stats *cur;                   /* the phase calls are recorded in */
    char job_ids[MAX_WATCHED_JOBS + 1][64]; /* [0]: the anchor */
    const char *job_ptrs[MAX_WATCHED_JOBS + 1];
    /* saturnd's figures (pid 0: unknown) */
    int pid;
    struct lg_procstat at_start, at_end;
    long rss_peak_kb;
    double next_sample_ms;
};

/* ==== the loop ============================================================= */

static void sample_saturnd(struct lg *lg, double now)
{
    struct lg_procstat p;
    if (lg->pid <= 0 || lg->cur != &lg->run || now < lg->next_sample_ms ||
        lg_procstat_read(lg->pid, &p) != 0)
        return;
    if (p.rss_kb > lg->rss_peak_kb)
        lg->rss_peak_kb = p.rss_kb;
    lg->next_sample_ms = now + 500;
}

static void dispatch(struct lg *lg, grpc_event ev, double now)
{
    struct lg_tag *tag = ev.tag;
    switch (tag->kind) {
    case LG_TAG_WORKER:
        simworker_done(tag->owner, now, lg->cur);
        break;
    case LG_TAG_CLIENT:
        statclient_done(tag->owner, now, lg->cur);
        break;
    case LG_TAG_WATCH_SENT:
    case LG_TAG_WATCH_READ:
    case LG_TAG_WATCH_STATUS:
        watcher_event(tag->owner, tag->kind, ev.success, now, lg->cur);
        break;
    default:
        fprintf(stderr, "loadgen: bug: unknown tag kind %d\n", (int)tag->kind);
        abort();
    }
}

/* Runs the parties until done(lg) holds or until_ms comes. Returns true if
 * done(lg) held (always false without a condition). */
static bool pump(struct lg *lg, double until_ms, bool (*done)(const struct lg *))
{
    for (;;) {
        if (done && done(lg))
            return true;
        double now = lg_now_ms();
        if (now >= until_ms)
            return false;
        double next = until_ms;
        for (int i = 0; i < lg->o.workers; i++)
            next = fmin(next, simworker_poll(&lg->workers[i], lg->cq, now, lg->cur));
        for (int i = 0; lg->clients_on && i < lg->o.clients; i++)
            next = fmin(next, statclient_poll(&lg->clients[i], lg->cq, now, lg->cur));
        sample_saturnd(lg, now);
        if (lg->pid > 0 && lg->cur == &lg->run)
            next = fmin(next, lg->next_sample_ms);
        double wait_ms = fmax(0, fmin(next - now, 100));
        gpr_timespec dl =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                         gpr_time_from_micros((int64_t)(wait_ms * 1e3), GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(lg->cq, dl, NULL);
        while (ev.type == GRPC_OP_COMPLETE) {
            dispatch(lg, ev, lg_now_ms());
            ev = grpc_completion_queue_next(lg->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        }
    }
}

/* How far the parties are, for the conditions pump() waits on. */
struct census {
    int unregistered, not_left, clients_busy, watches_open, watches_waiting;
};

static struct census census(const struct lg *lg)
{
    struct census n = {0};
    for (int i = 0; i < lg->o.workers; i++) {
        n.unregistered += !lg->workers[i].id[0];
        n.not_left += !lg->workers[i].left;
    }
    for (int i = 0; i < lg->o.clients; i++)
        n.clients_busy += lg->clients[i].u.in_flight;
    for (int i = 0; i < lg->o.watches; i++) {
        n.watches_open += lg->watchers[i].open;
        n.watches_waiting += lg->watchers[i].open && lg->watchers[i].events == 0;
    }
    return n;
}

static bool all_registered(const struct lg *lg)
{
    return census(lg).unregistered == 0;
}

static bool watches_ready(const struct lg *lg)
{
    return census(lg).watches_waiting == 0;
}

static bool clients_idle(const struct lg *lg)
{
    return census(lg).clients_busy == 0;
}

static bool done_at_end(const struct lg *lg)
{
    struct census n = census(lg);
    return n.not_left == 0 && n.watches_open == 0 && n.clients_busy == 0;
}

/* ==== setup and checks (blocking calls on a client of its own) ============= */

/* A blocking Client call. Returns the response (rpc_msg_free), or NULL
 * with the status printed. */
static ProtobufCMessage *ctl_call(struct rpc_client *c, const char *method,
                                  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = NULL;
    struct rpc_status st;
    if (rpc_unary(c, method, req, d, &m, LG_CALL_TIMEOUT_MS, &st) != 0)
        fprintf(stderr, "loadgen: %s: %s: %s\n", method, rpc_status_name(st.code), st.details);
    return m;
}

static int submit(struct rpc_client *c, const char *spec, char id[64])
{
    Saturn__V1__SubmitJobRequest req = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
    req.spec_json = (char *)spec;
    ProtobufCMessage *m = ctl_call(c, "/saturn.v1.Client/SubmitJob", &req.base,
                                   &saturn__v1__submit_job_response__descriptor);
    if (!m)
        return -1;
    snprintf(id, 64, "%s", ((Saturn__V1__SubmitJobResponse *)m)->job_id);
    rpc_msg_free(m);
    return 0;
}

/* The job's state now, or -1 if it cannot be read. */
static int job_state(struct rpc_client *c, const char *id, char reason[256])
{
    Saturn__V1__GetJobRequest req = SATURN__V1__GET_JOB_REQUEST__INIT;
    req.job_id = (char *)id;
    ProtobufCMessage *m = ctl_call(c, "/saturn.v1.Client/GetJob", &req.base,
                                   &saturn__v1__get_job_response__descriptor);
    const Saturn__V1__Job *j = m ? ((Saturn__V1__GetJobResponse *)m)->job : NULL;
    int state = j ? (int)j->state : -1;
    snprintf(reason, 256, "%s", j ? j->reason : "");
    rpc_msg_free(m);
    return state;
}

static void cancel(struct rpc_client *c, const char *id)
{
    Saturn__V1__CancelJobRequest req = SATURN__V1__CANCEL_JOB_REQUEST__INIT;
    req.job_id = (char *)id;
    req.reason = "load generator done";
    rpc_msg_free(ctl_call(c, "/saturn.v1.Client/CancelJob", &req.base,
                          &saturn__v1__cancel_job_response__descriptor));
}

/* Counts simulated workers that ListWorkers (lost ones included) does not
 * show holding a lease: missing, lost or gone. -1 if the call fails. */
static int workers_lost(const struct lg *lg, struct rpc_client *c)
{
    Saturn__V1__ListWorkersRequest req = SATURN__V1__LIST_WORKERS_REQUEST__INIT;
    req.include_lost = true;
    ProtobufCMessage *m = ctl_call(c, "/saturn.v1.Client/ListWorkers", &req.base,
                                   &saturn__v1__list_workers_response__descriptor);
    if (!m)
        return -1;
    const Saturn__V1__ListWorkersResponse *r = (const Saturn__V1__ListWorkersResponse *)m;
    int lost = 0;
    for (int i = 0; i < lg->o.workers; i++) {
        const struct simworker *w = &lg->workers[i];
        bool live = false;
        for (size_t k = 0; k < r->n_workers && !live; k++)
            live = strcmp(r->workers[k]->id, w->id) == 0 &&
                   (r->workers[k]->state == SATURN__V1__WORKER_STATE__WORKER_STATE_IDLE ||
                    r->workers[k]->state == SATURN__V1__WORKER_STATE__WORKER_STATE_ASSIGNED);
        if (!live) {
            if (lost++ < 5)
                fprintf(stderr, "loadgen: worker %s (%s) is not live in ListWorkers\n",
                        w->id[0] ? w->id : "(unregistered)", w->name);
        }
    }
    rpc_msg_free(m);
    return lost;
}

/* ==== report =============================================================== */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double pct(const struct lg_kstat *k, double p)
{
    return k->n ? k->us[(size_t)((double)(k->n - 1) * p)] : NAN;
}

static void print_row(const char *name, struct lg_kstat *k, double secs)
{
    qsort(k->us, k->n, sizeof *k->us, cmp_float);
    char rate[32] = "-";
    if (secs > 0)
        snprintf(rate, sizeof rate, "%.1f", (double)k->calls / secs);
    printf("  %-15s %9ld %9s %9.0f %9.0f %9.0f %7ld\n", name, k->calls, rate, pct(k, 0.5),
           pct(k, 0.99), pct(k, 1.0), k->errors);
}

static long errors_in(const struct lg_stats *s)
{
    long n = 0;
    for (int k = 0; k < LG_NKINDS; k++)
        n += s->k[k].errors;
    return n;
}

/* Prints the figures; returns the number of failed checks. */
static int report(struct lg *lg, double secs, int lost, int watches_open)
{
    const struct opts *o = &lg->o;
    printf("loadgen: %d workers (heartbeat every %" PRIu32 " ms, lease %" PRIu32 " ms), "
           "%d status clients (think %.0f ms), %d watch streams on %d queued jobs, %.1f s\n",
           o->workers, lg->workers[0].heartbeat_ms, lg->workers[0].lease_ms, o->clients,
           o->think_ms, o->watches, o->jobs, secs);
    printf("  %-15s %9s %9s %9s %9s %9s %7s\n", "measured", "calls", "calls/s", "p50_us", "p99_us",
           "max_us", "errors");
    long total = 0;
    for (int k = LG_HEARTBEAT; k <= LG_LISTWORKERS; k++) {
        print_row(lg_kind_names[k], &lg->run.k[k], secs);
        total += lg->run.k[k].calls;
    }
    printf("  %-15s %9ld %9.1f\n", "all", total, (double)total / secs);
    printf("  %-15s %9s %9s %9s %9s %9s %7s\n", "setup/teardown", "calls", "", "p50_us", "p99_us",
           "max_us", "errors");
    print_row("RegisterWorker", &lg->setup.k[LG_REGISTER], 0);
    print_row("WatchJob open", &lg->setup.k[LG_WATCH], 0);
    print_row("Leave", &lg->teardown.k[LG_LEAVE], 0);
    long events = 0;
    for (int i = 0; i < o->watches; i++)
        events += lg->watchers[i].events;
    long errors = errors_in(&lg->setup) + errors_in(&lg->run) + errors_in(&lg->teardown);
    long expiries = lg->setup.expiries + lg->run.expiries + lg->teardown.expiries;
    printf("  watch streams: %d of %d open at the end; %ld events received\n", watches_open,
           o->watches, events);
    printf("  errors: %ld; heartbeats answered NOT_FOUND (spurious lease expiries): %ld; "
           "workers not live in ListWorkers at the end: %d of %d\n",
           errors, expiries, lost, o->workers);
    if (lg->pid > 0) {
        double cpu = lg->at_end.cpu_s - lg->at_start.cpu_s;
        printf("  saturnd (pid %d): CPU %.2f s in %.1f s = %.1f%% of one core; "
               "VmRSS start %.1f MiB, peak %.1f MiB, end %.1f MiB; VmHWM at the end %.1f MiB\n",
               lg->pid, cpu, secs, 100 * cpu / secs, lg->at_start.rss_kb / 1024.0,
               lg->rss_peak_kb / 1024.0, lg->at_end.rss_kb / 1024.0, lg->at_end.hwm_kb / 1024.0);
    } else {
        printf("  saturnd: CPU and memory not measured (give --pid with --addr)\n");
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  loadgen itself: CPU %.2f s in all (setup included)\n",
           (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
    int failed = (errors > 0) + (expiries > 0) + (lost != 0) + (watches_open != o->watches);
    printf("loadgen: %s\n", failed ? "FAIL" : "ok");
    return failed;
}

/* ==== the run ============================================================== */

/* Submits the anchor, registers the workers, submits the watched jobs and
 * checks that they stay queued, opens the watches, warms the clients up.
 * Returns 0, or -1 with the reason printed. */
static int setup(struct lg *lg, struct rpc_client *ctl, const struct rpc_client_opts *co)
{
    const struct opts *o = &lg->o;
    char err[SAT_ERR_LEN], spec[256];
    snprintf(spec, sizeof spec,
             "{\"name\": \"loadgen-anchor\", \"model\": \"mlp\", \"dataset\": \"synthetic\", "
             "\"workers\": 1, \"priority\": 1000}");
    if (submit(ctl, spec, lg->job_ids[0]) != 0)
        return -1;
    for (int i = 0; i < o->workers; i++)
        if (simworker_init(&lg->workers[i], i, co, err) != 0) {
            fprintf(stderr, "loadgen: %s\n", err);
            return -1;
        }
    /* Workers join over REGISTER_RAMP_MS, as a pool that starts together
     * would, rather than 256 connections in the same millisecond. */
    double t = lg_now_ms();
    for (int i = 0; i < o->workers; i++)
        lg->workers[i].due_ms = t + REGISTER_RAMP_MS * i / o->workers;
    if (!pump(lg, t + SETUP_TIMEOUT_MS, all_registered)) {
        fprintf(stderr, "loadgen: the workers did not all register in %d ms\n", SETUP_TIMEOUT_MS);
        return -1;
    }
    printf("loadgen: %d workers registered in %.0f ms\n", o->workers, lg_now_ms() - t);
    for (int j = 1; j <= o->jobs; j++) {
        snprintf(spec, sizeof spec,
                 "{\"name\": \"loadgen-watched-%d\", \"model\": \"mlp\", \"dataset\": "
                 "\"synthetic\", \"workers\": %d, \"batch_size\": %d}",
                 j, o->workers, o->workers);
        if (submit(ctl, spec, lg->job_ids[j]) != 0)
            return -1;
    }
    /* The scheduler runs right after each submission; give it a moment and
     * check its decision (keeping the heartbeats going meanwhile). */
    pump(lg, lg_now_ms() + 300, NULL);
    char reason[256];
    for (int j = 0; j <= o->jobs; j++) {
        int want = j == 0 ? SATURN__V1__JOB_STATE__JOB_STATE_RUNNING
                          : SATURN__V1__JOB_STATE__JOB_STATE_QUEUED;
        int got = job_state(ctl, lg->job_ids[j], reason);
        if (got != want) {
            fprintf(stderr,
                    "loadgen: job %s is in state %d, not %d: %s (a worker of another "
                    "party idle on this saturnd, or a lost lease?)\n",
                    lg->job_ids[j], got, want, reason);
            return -1;
        }
        lg->job_ptrs[j] = lg->job_ids[j];
    }
    for (int i = 0; i < o->clients; i++)
        if (statclient_init(&lg->clients[i], i, co, o->think_ms, lg->job_ptrs, (size_t)o->jobs + 1,
                            err) != 0) {
            fprintf(stderr, "loadgen: %s\n", err);
            return -1;
        }
    for (int i = 0; i < o->watches; i++)
        if (watcher_init(&lg->watchers[i], co, lg->job_ids[1 + i % o->jobs], err) != 0) {
            fprintf(stderr, "loadgen: %s\n", err);
            return -1;
        }
    for (int i = 0; i < o->watches; i++)
        watcher_start(&lg->watchers[i], lg->cq, lg_now_ms(), lg->cur);
    if (!pump(lg, lg_now_ms() + SETUP_TIMEOUT_MS, watches_ready)) {
        fprintf(stderr, "loadgen: the watch streams did not all open\n");
        return -1;
    }
    /* A warm-up second: the clients connect and their first calls are
     * recorded with the setup. Their start times spread over one think. */
    double now = lg_now_ms();
    for (int i = 0; i < o->clients; i++)
        lg->clients[i].due_ms = now + lg_uniform(&lg->clients[i].seed, 0, o->think_ms);
    lg->clients_on = true;
    pump(lg, now + 1000, NULL);
    return 0;
}

/* The measured window. Returns its length in seconds. */
static double measure(struct lg *lg)
{
    lg->cur = &lg->run;
    if (lg->pid > 0 && lg_procstat_read(lg->pid, &lg->at_start) != 0)
        lg->pid = 0;
    lg->rss_peak_kb = lg->at_start.rss_kb;
    double t0 = lg_now_ms();
    pump(lg, t0 + lg->o.seconds * 1000, NULL);
    double secs = (lg_now_ms() - t0) / 1000;
    if (lg->pid > 0 && lg_procstat_read(lg->pid, &lg->at_end) != 0)
        lg->pid = 0;
    if (lg->pid > 0 && lg->at_end.rss_kb > lg->rss_peak_kb)
        lg->rss_peak_kb = lg->at_end.rss_kb;
    lg->cur = &lg->teardown;
    return secs;
}

/* Ends the watches, cancels the jobs, lets the workers leave and waits
 * for every call to end. Returns false if calls were still in flight after
 * DRAIN_TIMEOUT_MS. */
static bool wind_down(struct lg *lg, struct rpc_client *ctl)
{
    lg->clients_on = false;
    for (int i = 0; i < lg->o.watches; i++)
        watcher_stop(&lg->watchers[i]);
    /* The watched jobs first: were the anchor cancelled first, its worker
     * would be free and saturnd would start a watched job on every worker
     * (each assignment is a durable commit: over a second of saturnd's
     * loop here). And all before the workers leave, or the anchor fails
     * for want of its worker. */
    for (int j = lg->o.jobs; j >= 0; j--)
        if (lg->job_ids[j][0])
            cancel(ctl, lg->job_ids[j]);
    for (int i = 0; i < lg->o.workers; i++)
        lg->workers[i].leaving = true;
    if (pump(lg, lg_now_ms() + DRAIN_TIMEOUT_MS, done_at_end))
        return true;
    fprintf(stderr, "loadgen: calls still in flight after %d ms\n", DRAIN_TIMEOUT_MS);
    return false;
}

/* Frees the parties and the queue; nothing may be in flight. */
static void free_parties(struct lg *lg)
{
    for (int i = 0; i < lg->o.workers; i++)
        simworker_close(&lg->workers[i]);
    for (int i = 0; i < lg->o.clients; i++)
        statclient_close(&lg->clients[i]);
    for (int i = 0; i < lg->o.watches; i++)
        watcher_close(&lg->watchers[i]);
    grpc_completion_queue_shutdown(lg->cq);
    while (grpc_completion_queue_next(lg->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(lg->cq);
    sat_free(lg->workers);
    sat_free(lg->clients);
    sat_free(lg->watchers);
}

/* Returns the number of failed checks, or -1 if the run could not be set up. */
static int run(struct lg *lg, const char *addr, const char *token)
{
    const struct opts *o = &lg->o;
    struct rpc_client_opts co = {.target = addr, .token = token};
    char err[SAT_ERR_LEN];
    struct rpc_client *ctl;
    if (rpc_client_new(&ctl, &co, err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return -1;
    }
    lg->workers = sat_calloc((size_t)o->workers, sizeof *lg->workers);
    lg->clients = sat_calloc((size_t)o->clients, sizeof *lg->clients);
    lg->watchers = sat_calloc((size_t)o->watches, sizeof *lg->watchers);
    lg->cq = grpc_completion_queue_create_for_next(NULL);
    lg->cur = &lg->setup;
    bool measured = false;
    double secs = 0;
    int open = 0, lost = -1;
    if (lg->workers && lg->clients && lg->watchers && setup(lg, ctl, &co) == 0) {
        secs = measure(lg);
        /* Before anything ends: every watch still open, every worker live. */
        open = census(lg).watches_open;
        lg->clients_on = false;
        pump(lg, lg_now_ms() + DRAIN_TIMEOUT_MS, clients_idle);
        lost = workers_lost(lg, ctl);
        measured = true;
    }
    bool clean = wind_down(lg, ctl);
    int failed = measured ? report(lg, secs, lost, open) : -1;
    rpc_client_free(ctl);
    if (clean)
        free_parties(lg); /* else leaked: gRPC may still write into them */
    lg_stats_free(&lg->setup);
    lg_stats_free(&lg->run);
    lg_stats_free(&lg->teardown);
    return failed;
}

/* ==== main ================================================================= */

static int parse_opts(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--keep") == 0) {
            o->keep = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "loadgen: %s needs a value\n", k);
            return -1;
        }
        i++;
        char *end = NULL;
        double x = strtod(v, &end);
        bool num = end != v && *end == 0;
        if (strcmp(k, "--addr") == 0)
            o->addr = v;
        else if (strcmp(k, "--token-file") == 0)
            o->token_file = v;
        else if (num && strcmp(k, "--seconds") == 0)
            o->seconds = x;
        else if (num && strcmp(k, "--think-ms") == 0)
            o->think_ms = x;
        else if (num && strcmp(k, "--workers") == 0)
            o->workers = (int)x;
        else if (num && strcmp(k, "--clients") == 0)
            o->clients = (int)x;
        else if (num && strcmp(k, "--watches") == 0)
            o->watches = (int)x;
        else if (num && strcmp(k, "--jobs") == 0)
            o->jobs = (int)x;
        else if (num && strcmp(k, "--pid") == 0)
            o->pid = (int)x;
        else {
            fprintf(stderr, "loadgen: bad option or value: %s %s\n", k, v);
            return -1;
        }
    }
    if (!(o->seconds > 0) || !(o->think_ms >= 0) || o->workers < 2 || o->workers > 256 ||
        o->clients < 1 || o->watches < 0 || o->jobs < 1 || o->jobs > MAX_WATCHED_JOBS) {
        fprintf(stderr,
                "loadgen: out of range: --seconds > 0, --think-ms >= 0, --workers "
                "2..256, --clients >= 1, --watches >= 0, --jobs 1..%d\n",
                MAX_WATCHED_JOBS);
        return -1;
    }
    if (!o->addr != !o->token_file) {
        fprintf(stderr, "loadgen: --addr and --token-file go together\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct lg lg;
    memset(&lg, 0, sizeof lg);
    lg.o = (struct opts){
        .seconds = 60, .think_ms = 100, .workers = 256, .clients = 64, .watches = 16, .jobs = 4};
    if (parse_opts(argc, argv, &lg.o) != 0)
        return 2;
    struct lg_daemon d;
    memset(&d, 0, sizeof d);
    d.pid = -1;
    char err[SAT_ERR_LEN], token[RPC_TOKEN_MAX];
    const char *addr = lg.o.addr, *token_file = lg.o.token_file;
    lg.pid = lg.o.pid;
    if (!addr) {
        const char *exe = getenv("SATURND");
        if (!exe || !*exe) {
            fprintf(stderr, "loadgen: set SATURND to saturnd's path, or give --addr\n");
            return 2;
        }
        if (lg_daemon_start(&d, exe, err) != 0) {
            fprintf(stderr, "loadgen: %s\n", err);
            return 1;
        }
        addr = d.addr;
        token_file = d.token_file;
        lg.pid = d.pid;
        printf("loadgen: saturnd pid %d on %s, state dir %s\n", (int)d.pid, addr, d.dir);
    }
    int failed = -1;
    if (rpc_token_load(token_file, token, err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
    } else {
        rpc_init();
        failed = run(&lg, addr, token);
        rpc_shutdown();
    }
    if (d.pid > 0) {
        bool keep = lg.o.keep || failed != 0;
        int status = lg_daemon_stop(&d, keep);
        if (keep)
            printf("loadgen: saturnd's state dir and log kept in %s\n", d.dir);
        if (status != 0)
            fprintf(stderr, "loadgen: saturnd exited with wait status %d\n", status);
    }
    return failed == 0 ? 0 : 1;
}
