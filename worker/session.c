/* session.c - a worker's session with the coordinator: register, keep the
 * lease, receive and acknowledge assignments, reconnect with backoff.
 *
 * The session runs on the main thread and makes blocking calls. An
 * assignment runs on a runner thread (worker_run_assignment, train_loop.h), so
 * heartbeats keep flowing while it works. Heartbeats are declarative: each
 * response says which assignment this worker should hold (saturn.proto,
 * HeartbeatResponse), and reconcile() makes it so: a different or absent
 * assignment stops the runner; a new one is acknowledged and started.
 *
 * When the coordinator cannot be reached, calls are retried with capped
 * exponential backoff (250 ms doubling to 8 s, +-20% jitter). If no
 * heartbeat has succeeded for a whole lease, the coordinator has marked us
 * lost, so the runner is stopped. An unknown-worker answer (NOT_FOUND:
 * lease expired or coordinator restarted) stops the runner and registers
 * again at once.
 */
#include "session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "saturn.pb-c.h"
#include "train_loop.h"

#include "../common/util/clock.h"
#include "../common/util/log.h"
#include "../common/util/rng.h"
#include "../common/util/xalloc.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 8000
#define CALL_TIMEOUT_MS 3000
#define LEAVE_TIMEOUT_MS 2000

struct session {
    const struct session_opts *o;
    struct rpc_client *rpc;
    struct run_ctl *quit;

    char worker_id[WORKER_ID_LEN];
    bool registered;
    unsigned lease_ms, hb_ms;
    uint64_t last_ok_ms; /* monotonic time of the last successful heartbeat */
    unsigned failures;   /* consecutive failed calls, for the backoff */
    bool reported_down;
    bool drained; /* the coordinator asked this worker to drain */
    struct sat_rng rng;

    /* The runner. */
    bool running;
    pthread_t thread;
    struct run_ctl ctl;
    struct worker_assignment a;
    bool done; /* guarded by ctl.lock: worker_run_assignment returned */
    int run_rc;
    char run_err[SAT_ERR_LEN];
    /* An assignment that ended by itself is not restarted. */
    char finished_job[WORKER_ID_LEN];
    uint32_t finished_attempt;
};

/* Sleeps ms or until quit; returns true if quitting. */
static bool nap(struct session *s, unsigned ms)
{
    return run_ctl_wait(s->quit, ms);
}

static unsigned backoff_ms(struct session *s)
{
    unsigned shift = s->failures < 6 ? s->failures : 6;
    unsigned ms = BACKOFF_MIN_MS << shift;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    double jitter = 0.8 + 0.4 * sat_rng_uniform(&s->rng);
    return (unsigned)(ms * jitter);
}

static void call_failed(struct session *s, const char *what, const struct rpc_status *st)
{
    s->failures++;
    if (!s->reported_down) {
        /* Under TLS 1.3 a server that wants a client certificate refuses
         * it after the client's side of the handshake is done: the client
         * sees only a closed socket, so name the likely causes. */
        const char *hint = "";
        if (st->code == GRPC_STATUS_UNAVAILABLE)
            hint = !rpc_tls_on(s->o->tls) ? " (if saturnd serves TLS, pass --tls-ca)"
                   : s->o->tls->cert
                       ? " (TLS: is --tls-ca the CA of saturnd's certificate, and is our "
                         "--tls-cert signed by saturnd's --tls-client-ca?)"
                       : " (TLS: is --tls-ca the CA of saturnd's certificate? if saturnd "
                         "requires client certificates, pass --tls-cert and --tls-key)";
        log_warn("session: %s failed: %s: %s%s; retrying with backoff", what,
                 rpc_status_name(st->code), st->details, hint);
        s->reported_down = true;
    } else {
        log_debug("session: %s failed again: %s", what, rpc_status_name(st->code));
    }
}

static void call_ok(struct session *s)
{
    if (s->reported_down)
        log_info("session: coordinator reachable again");
    s->failures = 0;
    s->reported_down = false;
}

/* ==== the runner =========================================================== */

static void *runner_main(void *arg)
{
    struct session *s = arg;
    char err[SAT_ERR_LEN] = "";
    int rc = worker_run_assignment(s->rpc, &s->a, &s->ctl, err);
    pthread_mutex_lock(&s->ctl.lock);
    s->done = true;
    s->run_rc = rc;
    snprintf(s->run_err, sizeof s->run_err, "%s", err);
    pthread_mutex_unlock(&s->ctl.lock);
    return NULL;
}

static void runner_stop(struct session *s, const char *why)
{
    if (!s->running)
        return;
    log_info("session: stopping %s rank %" PRIu32 " (attempt %" PRIu32 "): %s", s->a.job_id,
             s->a.rank, s->a.attempt, why);
    run_ctl_set_stop(&s->ctl, true);
    pthread_join(s->thread, NULL);
    s->running = false;
    sat_free(s->a.spec_json);
    s->a.spec_json = NULL;
}

/* Joins a runner that returned by itself. */
static void runner_reap(struct session *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->ctl.lock);
    bool done = s->done;
    pthread_mutex_unlock(&s->ctl.lock);
    if (!done)
        return;
    pthread_join(s->thread, NULL);
    s->running = false;
    if (s->run_rc != 0)
        log_error("session: %s rank %" PRIu32 " ended with an error: %s", s->a.job_id, s->a.rank,
                  s->run_err);
    else
        log_info("session: %s rank %" PRIu32 " finished", s->a.job_id, s->a.rank);
    snprintf(s->finished_job, sizeof s->finished_job, "%s", s->a.job_id);
    s->finished_attempt = s->a.attempt;
    sat_free(s->a.spec_json);
    s->a.spec_json = NULL;
}

static int runner_start(struct session *s, const Saturn__V1__Assignment *as, char *err, size_t cap)
{
    memset(&s->a, 0, sizeof s->a);
    snprintf(s->a.worker_id, sizeof s->a.worker_id, "%s", s->worker_id);
    snprintf(s->a.job_id, sizeof s->a.job_id, "%s", as->job_id);
    s->a.rank = as->rank;
    s->a.world_size = as->world_size;
    s->a.attempt = as->attempt;
    s->a.threads = s->o->threads;
    s->a.spec_json = sat_strdup(as->spec_json);
    if (!s->a.spec_json) {
        snprintf(err, cap, "out of memory");
        return SAT_ENOMEM;
    }
    run_ctl_set_stop(&s->ctl, false);
    s->done = false;
    s->run_rc = 0;
    s->run_err[0] = 0;
    if (pthread_create(&s->thread, NULL, runner_main, s) != 0) {
        sat_free(s->a.spec_json);
        s->a.spec_json = NULL;
        snprintf(err, cap, "cannot start the runner thread");
        return SAT_EIO;
    }
    s->running = true;
    return 0;
}

/* ==== calls ================================================================ */

/* Returns 0, or an exit status for a fatal refusal, or -1 to retry. */
static int do_register(struct session *s)
{
    Saturn__V1__RegisterRequest req = SATURN__V1__REGISTER_REQUEST__INIT;
    req.name = (char *)s->o->name;
    req.threads = s->o->threads;
    req.version = (char *)s->o->version;
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(s->rpc, "/saturn.v1.Worker/RegisterWorker", &req.base,
                  &saturn__v1__register_response__descriptor, &m, CALL_TIMEOUT_MS, &st) != 0) {
        if (st.code == GRPC_STATUS_UNAUTHENTICATED || st.code == GRPC_STATUS_PERMISSION_DENIED) {
            log_error("session: the coordinator refused our token: %s", st.details);
            return 3;
        }
        if (st.code == GRPC_STATUS_INVALID_ARGUMENT) {
            log_error("session: registration refused: %s", st.details);
            return 1;
        }
        call_failed(s, "register", &st);
        return -1;
    }
    const Saturn__V1__RegisterResponse *r = (const Saturn__V1__RegisterResponse *)m;
    /* Every later call (heartbeats, the runner's pulls and pushes) proves
     * who we are with this secret. */
    if (rpc_client_set_session(s->rpc, r->session) != 0) {
        log_error("session: the coordinator sent an unusable session secret");
        rpc_msg_free(m);
        return 1;
    }
    snprintf(s->worker_id, sizeof s->worker_id, "%s", r->worker_id);
    s->lease_ms = r->lease_ms ? r->lease_ms : 5000;
    s->hb_ms = r->heartbeat_ms ? r->heartbeat_ms : 1000;
    if (s->hb_ms > s->lease_ms / 2)
        s->hb_ms = s->lease_ms / 2;
    rpc_msg_free(m);
    s->registered = true;
    s->last_ok_ms = sat_mono_ms();
    call_ok(s);
    log_info("session: registered as %s (lease %u ms, heartbeat every %u ms)", s->worker_id,
             s->lease_ms, s->hb_ms);
    return 0;
}

static void do_ack(struct session *s, const Saturn__V1__Assignment *as, bool accepted,
                   const char *reason, bool *still)
{
    Saturn__V1__AckAssignmentRequest req = SATURN__V1__ACK_ASSIGNMENT_REQUEST__INIT;
    req.worker_id = s->worker_id;
    req.job_id = as->job_id;
    req.attempt = as->attempt;
    req.accepted = accepted;
    req.reason = (char *)reason;
    ProtobufCMessage *m;
    struct rpc_status st;
    *still = false;
    if (rpc_unary(s->rpc, "/saturn.v1.Worker/AckAssignment", &req.base,
                  &saturn__v1__ack_assignment_response__descriptor, &m, CALL_TIMEOUT_MS,
                  &st) != 0) {
        /* The next heartbeat repeats the assignment; reporting RUNNING
         * also counts as an acknowledgement. */
        log_warn("session: acknowledging %s failed: %s: %s", as->job_id, rpc_status_name(st.code),
                 st.details);
        *still = accepted && st.code != GRPC_STATUS_NOT_FOUND;
        return;
    }
    *still = ((const Saturn__V1__AckAssignmentResponse *)m)->still_assigned;
    rpc_msg_free(m);
}

/* Makes the runner match what the coordinator wants. */
static void reconcile(struct session *s, const Saturn__V1__Assignment *want)
{
    runner_reap(s);
    if (s->running &&
        (!want || strcmp(want->job_id, s->a.job_id) != 0 || want->attempt != s->a.attempt))
        runner_stop(s, want ? "the coordinator reassigned this worker"
                            : "the coordinator revoked the assignment");
    if (!want || s->running)
        return;
    if (strcmp(want->job_id, s->finished_job) == 0 && want->attempt == s->finished_attempt)
        return; /* already done; the coordinator will catch up */
    log_info("session: assigned %s rank %" PRIu32 "/%" PRIu32 " (attempt %" PRIu32 ")",
             want->job_id, want->rank, want->world_size, want->attempt);
    char err[SAT_ERR_LEN] = "";
    bool still;
    if (want->world_size < 1 || want->rank >= want->world_size) {
        do_ack(s, want, false, "malformed assignment (rank >= world size)", &still);
        return;
    }
    do_ack(s, want, true, "", &still);
    if (!still) {
        log_info("session: %s was revoked before it started", want->job_id);
        return;
    }
    if (runner_start(s, want, err, sizeof err) != 0) {
        log_error("session: cannot run %s: %s", want->job_id, err);
        do_ack(s, want, false, err, &still);
    }
}

/* One heartbeat. Returns 0 on success, -1 after a failure. */
static int do_heartbeat(struct session *s)
{
    runner_reap(s);
    Saturn__V1__HeartbeatRequest req = SATURN__V1__HEARTBEAT_REQUEST__INIT;
    req.worker_id = s->worker_id;
    req.activity = s->running ? SATURN__V1__WORKER_ACTIVITY__WORKER_ACTIVITY_RUNNING
                              : SATURN__V1__WORKER_ACTIVITY__WORKER_ACTIVITY_IDLE;
    req.job_id = s->running ? s->a.job_id : "";
    req.attempt = s->running ? s->a.attempt : 0;
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(s->rpc, "/saturn.v1.Worker/Heartbeat", &req.base,
                  &saturn__v1__heartbeat_response__descriptor, &m, CALL_TIMEOUT_MS, &st) != 0) {
        if (st.code == GRPC_STATUS_NOT_FOUND) {
            log_warn("session: the coordinator no longer knows %s (%s); registering again",
                     s->worker_id, st.details);
            runner_stop(s, "lease lost");
            s->registered = false;
            call_ok(s);
            return 0;
        }
        call_failed(s, "heartbeat", &st);
        if (s->running && sat_mono_ms() - s->last_ok_ms >= s->lease_ms)
            runner_stop(s, "no heartbeat got through for a whole lease");
        return -1;
    }
    const Saturn__V1__HeartbeatResponse *r = (const Saturn__V1__HeartbeatResponse *)m;
    s->last_ok_ms = sat_mono_ms();
    if (r->lease_ms)
        s->lease_ms = r->lease_ms;
    call_ok(s);
    if (r->drain) {
        /* Finish the current step, then leave: the coordinator hands the
         * rank over to another worker. */
        log_info("session: the coordinator asks this worker to drain");
        s->drained = true;
        run_ctl_set_stop(s->quit, true);
    } else {
        reconcile(s, r->assignment);
    }
    rpc_msg_free(m);
    return 0;
}

static void do_leave(struct session *s, const char *why)
{
    Saturn__V1__LeaveRequest req = SATURN__V1__LEAVE_REQUEST__INIT;
    req.worker_id = s->worker_id;
    req.reason = (char *)why;
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(s->rpc, "/saturn.v1.Worker/Leave", &req.base,
                  &saturn__v1__leave_response__descriptor, &m, LEAVE_TIMEOUT_MS, &st) == 0) {
        rpc_msg_free(m);
        log_info("session: left the coordinator (%s)", s->worker_id);
    } else {
        log_info("session: could not say goodbye: %s", rpc_status_name(st.code));
    }
}

/* ==== the session loop ===================================================== */

int session_run(const struct session_opts *o, struct run_ctl *quit)
{
    struct session *s = sat_calloc(1, sizeof *s);
    if (!s) {
        log_error("out of memory");
        return 1;
    }
    s->o = o;
    s->quit = quit;
    sat_rng_init(&s->rng, sat_rng_key((uint64_t)time(NULL), (uint64_t)getpid(), 0, 0));
    int status = 1;
    char err[SAT_ERR_LEN];
    if (run_ctl_init(&s->ctl) != 0) {
        sat_free(s);
        log_error("out of memory");
        return 1;
    }
    struct rpc_client_opts co = {.target = o->coordinator, .token = o->token, .tls = o->tls};
    if (rpc_client_new(&s->rpc, &co, err) != 0) {
        log_error("%s", err);
        goto out;
    }
    log_info("session: worker %s (%u threads) joining %s%s", o->name, o->threads, o->coordinator,
             !rpc_tls_on(o->tls) ? ""
             : o->tls->cert      ? " over TLS with a client certificate"
                                 : " over TLS");
    while (!run_ctl_stopped(quit)) {
        if (!s->registered) {
            int rc = do_register(s);
            if (rc > 0) {
                status = rc;
                goto out;
            }
            if (rc < 0) {
                nap(s, backoff_ms(s));
                continue;
            }
        }
        unsigned wait = do_heartbeat(s) == 0 ? (s->registered ? s->hb_ms : 0) : backoff_ms(s);
        if (wait)
            nap(s, wait);
    }
    status = 0;
out:
    runner_stop(s, s->drained ? "drained" : "worker shutting down");
    if (status == 0 && s->registered)
        do_leave(s, s->drained ? "drained" : "worker shut down (signal)");
    rpc_client_free(s->rpc);
    run_ctl_destroy(&s->ctl);
    sat_free(s);
    return status;
}
