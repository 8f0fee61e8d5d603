/* progress.c - a job's training progress for people (a live progress bar,
 * plain lines when stdout is not a terminal) and for scripts (JSON), and
 * the event-following loop shared by `saturn watch` and `saturn run`.
 *
 * saturnd sends live "progress" events (JobEvent.progress, seq 0, never
 * stored) while a job trains, and stored events (state changes, epoch
 * "metrics", checkpoints) that a watch replays first.
 */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "saturn.pb-c.h"

#include "../common/util/clock.h"

#define PLAIN_EVERY_S 5.0 /* plain progress lines at most this often */
#define BAR_WIDTH 24

cJSON *cli_progress_json(const Saturn__V1__JobProgress *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", p->epoch);
    cJSON_AddNumberToObject(o, "epochs", p->epochs);
    cJSON_AddNumberToObject(o, "step", (double)p->step);
    cJSON_AddNumberToObject(o, "total_steps", (double)p->total_steps);
    cJSON_AddNumberToObject(o, "steps_per_epoch", (double)p->steps_per_epoch);
    cJSON_AddNumberToObject(o, "loss", p->loss);
    cJSON_AddNumberToObject(o, "train_acc", p->train_acc);
    if (p->test_epoch > 0)
        cJSON_AddNumberToObject(o, "test_acc", p->test_acc);
    else
        cJSON_AddNullToObject(o, "test_acc");
    cJSON_AddNumberToObject(o, "test_epoch", p->test_epoch);
    cJSON_AddNumberToObject(o, "images_per_s", p->images_per_s);
    cJSON_AddNumberToObject(o, "lr", p->lr);
    cJSON_AddNumberToObject(o, "skipped_steps", (double)p->skipped_steps);
    cJSON_AddNumberToObject(o, "elapsed_s", p->elapsed_s);
    cJSON_AddNumberToObject(o, "eta_s", p->eta_s);
    cJSON_AddNumberToObject(o, "pull_s", p->pull_s);
    cJSON_AddNumberToObject(o, "compute_s", p->compute_s);
    cJSON_AddNumberToObject(o, "push_s", p->push_s);
    if (p->n_quant)
        cli_quant_json(cJSON_AddArrayToObject(o, "quant"), p->quant, p->n_quant);
    return o;
}

void cli_quant_json(cJSON *a, Saturn__V1__QuantStat *const *quant, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "name", quant[i]->name);
        cJSON_AddStringToObject(q, "kind", quant[i]->kind);
        cJSON_AddNumberToObject(q, "value", quant[i]->value);
        cJSON_AddItemToArray(a, q);
    }
}

static const char *fmt_dur(double s, char *buf, size_t cap)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, cap, "--");
        return buf;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lds", t);
    return buf;
}

/* "epoch 3/8 [#####.....] step 120/376 loss 0.4123 acc 85.1% test 86.0% 2345 img/s ETA 1m05s" */
static void progress_text(const Saturn__V1__JobProgress *p, bool bar, char *out, size_t cap)
{
    char eta[32], test[32] = "";
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "epoch %" PRIu32 "/%" PRIu32 " ", p->epoch, p->epochs);
    if (bar && n < cap) {
        uint64_t spe = p->steps_per_epoch ? p->steps_per_epoch : 1;
        uint64_t in = p->step >= p->total_steps ? spe : p->step % spe;
        int fill = (int)(BAR_WIDTH * in / spe);
        char b[BAR_WIDTH + 1];
        for (int i = 0; i < BAR_WIDTH; i++)
            b[i] = i < fill ? '#' : '.';
        b[BAR_WIDTH] = 0;
        n += (size_t)snprintf(out + n, cap - n, "[%s] ", b);
    }
    if (p->test_epoch > 0)
        snprintf(test, sizeof test, " test %.1f%%", 100.0 * p->test_acc);
    if (n < cap)
        snprintf(out + n, cap - n,
                 "step %" PRIu64 "/%" PRIu64 "  loss %.4f  acc %.1f%%%s  %.0f img/s  ETA %s",
                 p->step, p->total_steps, p->loss, 100.0 * p->train_acc, test, p->images_per_s,
                 fmt_dur(p->eta_s, eta, sizeof eta));
}

int cli_follow(struct cli *c, const char *job_id, int *last_state)
{
    Saturn__V1__WatchJobRequest req = SATURN__V1__WATCH_JOB_REQUEST__INIT;
    req.job_id = (char *)job_id;
    req.after_seq = c->after;
    struct rpc_stream *s;
    struct rpc_status st;
    int deadline = c->timeout_set ? c->timeout_ms : 0;
    if (rpc_stream_open(c->rpc, "/saturn.v1.Client/WatchJob", &req.base, deadline, &s, &st) != 0)
        return cli_fail_status(c, &st);
    bool tty = isatty(STDOUT_FILENO);
    bool bar_shown = false;
    char bar[256] = "";
    double last_plain = -1e9;
    *last_state = 0;
    for (;;) {
        ProtobufCMessage *m;
        int rc = rpc_stream_read(s, &saturn__v1__job_event__descriptor, &m, &st);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (bar_shown)
                printf("\n");
            rpc_stream_close(s);
            return cli_fail_status(c, &st);
        }
        const Saturn__V1__JobEvent *e = (const Saturn__V1__JobEvent *)m;
        *last_state = e->state;
        bool progress = strcmp(e->kind, "progress") == 0;
        if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "seq", (double)e->seq);
            cJSON_AddStringToObject(o, "job_id", e->job_id);
            cJSON_AddNumberToObject(o, "time_ms", (double)e->time_ms);
            cJSON_AddStringToObject(o, "kind", e->kind);
            cJSON_AddStringToObject(o, "state", cli_job_state(e->state));
            cJSON_AddStringToObject(o, "message", e->message);
            cJSON_AddStringToObject(o, "worker_id", e->worker_id);
            if (e->progress)
                cJSON_AddItemToObject(o, "progress", cli_progress_json(e->progress));
            cli_print_json(o);
        } else if (progress && e->progress) {
            if (tty) {
                progress_text(e->progress, true, bar, sizeof bar);
                printf("\r%s\033[K", bar);
                bar_shown = true;
                fflush(stdout);
            } else if (sat_mono_s() - last_plain >= PLAIN_EVERY_S) {
                char line[256];
                progress_text(e->progress, false, line, sizeof line);
                printf("%s  %s\n", cli_esc(e->job_id), line);
                fflush(stdout);
                last_plain = sat_mono_s();
            }
        } else if (!progress) {
            char t[64];
            if (bar_shown)
                printf("\r\033[K");
            printf("%s  %s  %-9s  %-9s %s\n", cli_time(e->time_ms, t, sizeof t),
                   cli_esc(e->job_id), cli_job_state(e->state), cli_esc(e->kind),
                   cli_esc(e->message));
            if (bar_shown && e->state == SATURN__V1__JOB_STATE__JOB_STATE_RUNNING)
                printf("%s", bar);
            else
                bar_shown = false;
            fflush(stdout);
        }
        rpc_msg_free(m);
    }
    if (bar_shown)
        printf("\n");
    rpc_stream_close(s);
    return EXIT_OK;
}
