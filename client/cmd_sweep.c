/* cmd_sweep.c - saturn sweep: a grid of ordinary jobs tagged with a sweep
 * id, followed with one combined progress display and summed up in a table
 * of final metrics; `saturn sweep status ID` and `saturn sweep cancel ID`;
 * and the grid of `saturn run SPEC --grid ...` (sweep_run).
 *
 * Every grid point (the cross product of the --grid values) times every
 * seed (--seeds N: the spec's seed, seed+1, ...) is a job whose spec is
 * the base spec with those fields set through jobspec_set, so each value
 * is checked as a flag would be, and "sweep" set to the sweep id. All the
 * specs are validated before the first is submitted. The sweep lives in
 * saturnd only as that spec field, so it queues, survives restarts and is
 * listed like any job; docs/sweeps.md.
 */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saturn.pb-c.h"
#include "sweep.h"

#include "../common/util/clock.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

#define POLL_S 1.0       /* progress is re-read this often */
#define OUTAGE_MAX_S 300 /* a follower waits this long for saturnd to come back */

/* ==== the grid ============================================================= */

struct grid_axis {
    char field[SPEC_NAME_LEN];
    const char *vals[SWEEP_MAX_JOBS];
    int nvals;
};

struct grid {
    struct grid_axis axes[CLI_MAX_GRIDS];
    int naxes;
    char *text[CLI_MAX_GRIDS]; /* copies of the values' text, cut at the commas (owned) */
    int points;                /* the cross product's size */
};

static void grid_free(struct grid *g)
{
    for (int i = 0; i < g->naxes; i++)
        sat_free(g->text[i]);
}

/* Parses every --grid FIELD=V1,V2,... Returns EXIT_OK or EXIT_USAGE
 * (printed); the values are checked later, by jobspec_set. */
static int grid_parse(const struct cli *c, struct grid *g)
{
    memset(g, 0, sizeof *g);
    g->points = 1;
    for (int i = 0; i < c->ngrids; i++) {
        const char *a = c->grids[i], *eq = strchr(a, '=');
        if (!eq || eq == a || (size_t)(eq - a) >= SPEC_NAME_LEN) {
            cli_errorf("%s: --grid %s: expected FIELD=V1,V2,...", c->cmd, cli_esc(a));
            return EXIT_USAGE;
        }
        struct grid_axis *x = &g->axes[g->naxes];
        snprintf(x->field, sizeof x->field, "%.*s", (int)(eq - a), a);
        for (int k = 0; k < g->naxes; k++)
            if (strcmp(g->axes[k].field, x->field) == 0) {
                cli_errorf("%s: --grid %s given twice", c->cmd, cli_esc(x->field));
                return EXIT_USAGE;
            }
        if (strcmp(x->field, "sweep") == 0 || (strcmp(x->field, "seed") == 0 && c->seeds > 1)) {
            cli_errorf("%s: --grid %s: not a grid field%s", c->cmd, x->field,
                       x->field[1] == 'e' ? " together with --seeds" : " (it is the sweep's id)");
            return EXIT_USAGE;
        }
        g->text[g->naxes] = sat_strdup(eq + 1);
        if (!g->text[g->naxes]) {
            cli_errorf("%s: out of memory", c->cmd);
            return EXIT_USAGE;
        }
        g->naxes++;
        for (char *p = g->text[g->naxes - 1];;) {
            if (x->nvals == SWEEP_MAX_JOBS) {
                cli_errorf("%s: --grid %s: more than %d values", c->cmd, x->field, SWEEP_MAX_JOBS);
                return EXIT_USAGE;
            }
            x->vals[x->nvals++] = p;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = 0;
            p = comma + 1;
        }
        g->points *= x->nvals;
        if (g->points * (c->seeds > 1 ? c->seeds : 1) > SWEEP_MAX_JOBS) {
            cli_errorf("%s: the grid has more than %d jobs", c->cmd, SWEEP_MAX_JOBS);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

/* "sw-20261125-194233-1a2b3c": the time and 24 random bits. */
static void new_sweep_id(char *out, size_t cap)
{
    unsigned char r[3] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(r, 1, sizeof r, f) != sizeof r) {
        uint64_t t = (uint64_t)sat_mono_s() * 1000003u ^ (uint64_t)getpid();
        memcpy(r, &t, sizeof r);
    }
    if (f)
        fclose(f);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
    snprintf(out, cap, "sw-%.15s-%02x%02x%02x", ts, r[0], r[1], r[2]);
}

/* The spec of grid point `point`, seed number `k`: base + the point's
 * values + seed + sweep + a name naming the point. Returns EXIT_OK or
 * EXIT_INVALID (printed). */
static int point_spec(const struct cli *c, const struct grid *g, const struct job_spec *base,
                      int point, int k, const char *sweep_id, struct job_spec *out)
{
    char err[SAT_ERR_LEN], label[SWEEP_LABEL_LEN] = "", num[32];
    *out = *base;
    size_t n = 0;
    for (int a = 0; a < g->naxes; a++) {
        /* The last axis varies fastest, as in nested loops in --grid order. */
        int stride = 1;
        for (int b = a + 1; b < g->naxes; b++)
            stride *= g->axes[b].nvals;
        const struct grid_axis *x = &g->axes[a];
        const char *v = x->vals[(point / stride) % x->nvals];
        if (jobspec_set(out, x->field, v, err) != 0) {
            cli_errorf("%s: --grid %s: %s", c->cmd, x->field, err);
            return EXIT_INVALID;
        }
        if (n < sizeof label)
            n +=
                (size_t)snprintf(label + n, sizeof label - n, "%s%s=%s", a ? " " : "", x->field, v);
    }
    if (c->seeds > 1) {
        snprintf(num, sizeof num, "%" PRIu64, base->seed + (uint64_t)k);
        if (jobspec_set(out, "seed", num, err) != 0) {
            cli_errorf("%s: --seeds: %s", c->cmd, err);
            return EXIT_INVALID;
        }
        if (n < sizeof label)
            snprintf(label + n, sizeof label - n, "%sseed=%s", n ? " " : "", num);
    }
    char name[SWEEP_LABEL_LEN + SPEC_NAME_LEN];
    snprintf(name, sizeof name, "%s%s%s", base->name, *base->name && *label ? " " : "", label);
    name[sat_utf8_cut(name, SPEC_NAME_LEN - 1)] = 0;
    if (jobspec_set(out, "sweep", sweep_id, err) != 0 || jobspec_set(out, "name", name, err) != 0 ||
        jobspec_validate(out, err) != 0) {
        cli_errorf("%s: grid point %s: %s", c->cmd, cli_esc(label), err);
        return EXIT_INVALID;
    }
    return EXIT_OK;
}

/* ==== submit =============================================================== */

static void cancel_jobs(struct cli *c, char ids[][64], int n, const char *why)
{
    for (int i = 0; i < n; i++) {
        Saturn__V1__CancelJobRequest req = SATURN__V1__CANCEL_JOB_REQUEST__INIT;
        req.job_id = ids[i];
        req.reason = (char *)why;
        ProtobufCMessage *m;
        struct rpc_status st;
        if (rpc_unary(c->rpc, "/saturn.v1.Client/CancelJob", &req.base,
                      &saturn__v1__cancel_job_response__descriptor, &m, c->timeout_ms, &st) == 0)
            rpc_msg_free(m);
    }
}

/* Validates every job's spec, then submits them in order. On a refused
 * submission the jobs already submitted are cancelled. */
static int submit_all(struct cli *c, const struct grid *g, const struct job_spec *base,
                      const char *sweep_id, int *njobs)
{
    int seeds = c->seeds > 1 ? c->seeds : 1, n = g->points * seeds;
    char **json = sat_calloc((size_t)n, sizeof *json);
    char(*ids)[64] = sat_calloc((size_t)n, sizeof *ids);
    int ex = json && ids ? EXIT_OK : EXIT_SERVER;
    if (ex != EXIT_OK)
        cli_errorf("%s: out of memory", c->cmd);
    for (int p = 0; p < g->points && ex == EXIT_OK; p++)
        for (int k = 0; k < seeds && ex == EXIT_OK; k++) {
            struct job_spec spec;
            ex = point_spec(c, g, base, p, k, sweep_id, &spec);
            if (ex == EXIT_OK && !(json[p * seeds + k] = jobspec_to_json(&spec))) {
                cli_errorf("%s: out of memory", c->cmd);
                ex = EXIT_SERVER;
            }
        }
    int done = 0;
    for (; done < n && ex == EXIT_OK; done++) {
        Saturn__V1__SubmitJobRequest req = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
        req.spec_json = json[done];
        ProtobufCMessage *m;
        struct rpc_status st;
        if (rpc_unary(c->rpc, "/saturn.v1.Client/SubmitJob", &req.base,
                      &saturn__v1__submit_job_response__descriptor, &m, c->timeout_ms, &st) != 0) {
            ex = cli_fail_status(c, &st);
            char why[96];
            snprintf(why, sizeof why, "sweep %s: a later job was refused", sweep_id);
            cancel_jobs(c, ids, done, why);
            cli_errorf("%s: sweep %s not submitted (%d job%s submitted before were cancelled)",
                       c->cmd, sweep_id, done, done == 1 ? "" : "s");
            break;
        }
        snprintf(ids[done], sizeof ids[0], "%s", ((Saturn__V1__SubmitJobResponse *)m)->job_id);
        rpc_msg_free(m);
    }
    if (ex == EXIT_OK) {
        FILE *f = c->json || c->markdown ? stderr : stdout;
        fprintf(f, "sweep %s: %d job%s submitted (%s .. %s)\n", sweep_id, n, n == 1 ? "" : "s",
                cli_esc(ids[0]), cli_esc(ids[n - 1]));
        fflush(f);
    }
    for (int i = 0; json && i < n; i++)
        sat_free(json[i]);
    sat_free(json);
    sat_free(ids);
    *njobs = n;
    return ex;
}

/* ==== follow =============================================================== */

/* What a plain (non-terminal) progress line was last printed for. */
struct shown {
    int state;
    uint32_t epoch, test_epoch;
    bool any;
};

static void draw(const struct sweep *s, FILE *f, bool tty, int *lines, struct shown *sh)
{
    char line[256];
    if (tty && *lines)
        fprintf(f, "\033[%dA", *lines);
    for (int i = 0; i < s->njobs; i++) {
        const struct sweep_job *j = &s->jobs[i];
        struct shown now = {j->state, j->epoch, j->test_epoch, true};
        if (!tty && sh[i].any && sh[i].state == now.state && sh[i].epoch == now.epoch &&
            sh[i].test_epoch == now.test_epoch)
            continue;
        sh[i] = now;
        sweep_job_line(j, line, sizeof line);
        fprintf(f, tty ? "\r%s\033[K\n" : "%s\n", line);
    }
    if (tty)
        *lines = s->njobs;
    fflush(f);
}

/* Follows sweep s until every job has ended (saturnd may go away and come
 * back meanwhile: its jobs are stored), then prints the table. Returns
 * EXIT_OK when every job succeeded, EXIT_JOB_FAILED when one failed or was
 * cancelled, or the exit code of a call that kept failing. */
static int follow(struct cli *c, struct sweep *s)
{
    FILE *f = c->json || c->markdown ? stderr : stdout;
    bool tty = isatty(fileno(f));
    struct shown *sh = sat_calloc(SWEEP_MAX_JOBS, sizeof *sh);
    int lines = 0, ex = EXIT_OK;
    double down_since = -1;
    if (!sh) {
        cli_errorf("%s: out of memory", c->cmd);
        return EXIT_SERVER;
    }
    for (;;) {
        struct rpc_status st;
        ex = sweep_refresh(c, s, &st);
        if (ex == EXIT_UNAVAIL) {
            /* saturnd restarting: its jobs come back with it. */
            if (down_since < 0) {
                down_since = sat_mono_s();
                fprintf(f, "sweep %s: saturnd unavailable (%s); waiting up to %d s\n", s->id,
                        cli_esc(st.details), OUTAGE_MAX_S);
                lines = 0;
            }
            if (sat_mono_s() - down_since < OUTAGE_MAX_S) {
                struct timespec ts = {1, 0};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        if (ex != EXIT_OK) {
            ex = cli_fail_status(c, &st);
            break;
        }
        if (down_since >= 0)
            fprintf(f, "sweep %s: saturnd is back\n", s->id);
        down_since = -1;
        sweep_label(s);
        draw(s, f, tty, &lines, sh);
        if (sweep_done(s))
            break;
        struct timespec ts = {(time_t)POLL_S, (long)((POLL_S - (long)POLL_S) * 1e9)};
        nanosleep(&ts, NULL);
    }
    sat_free(sh);
    if (ex != EXIT_OK)
        return ex;
    sweep_print_table(c, s);
    for (int i = 0; i < s->njobs; i++)
        if (s->jobs[i].state != SATURN__V1__JOB_STATE__JOB_STATE_SUCCEEDED)
            return EXIT_JOB_FAILED;
    return EXIT_OK;
}

/* ==== the commands ========================================================= */

int sweep_run(struct cli *c, struct job_spec *base)
{
    struct grid g;
    int ex = grid_parse(c, &g);
    struct sweep s;
    memset(&s, 0, sizeof s);
    if (*base->sweep)
        snprintf(s.id, sizeof s.id, "%s", base->sweep);
    else
        new_sweep_id(s.id, sizeof s.id);
    int njobs = 0;
    if (ex == EXIT_OK)
        ex = submit_all(c, &g, base, s.id, &njobs);
    grid_free(&g);
    if (ex == EXIT_OK && c->detach) {
        if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "sweep", s.id);
            cJSON_AddNumberToObject(o, "jobs", njobs);
            cli_print_json(o);
        } else {
            printf("%s\n", s.id);
        }
        return EXIT_OK;
    }
    if (ex == EXIT_OK)
        ex = follow(c, &s);
    sweep_free(&s);
    return ex;
}

/* Reads sweep `id` into s for status and cancel. Returns EXIT_OK, or an
 * exit code after printing the problem (EXIT_NOT_FOUND: no such jobs);
 * the caller frees s either way. */
static int sweep_read(struct cli *c, const char *id, struct sweep *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    struct rpc_status st;
    if (sweep_refresh(c, s, &st) != EXIT_OK)
        return cli_fail_status(c, &st);
    if (s->njobs == 0) {
        cli_errorf("%s: no jobs in sweep %s", c->cmd, id);
        return EXIT_NOT_FOUND;
    }
    return EXIT_OK;
}

static int sweep_status(struct cli *c, const char *id)
{
    struct sweep s;
    int ex = sweep_read(c, id, &s);
    if (ex == EXIT_OK) {
        sweep_label(&s);
        sweep_print_table(c, &s);
    }
    sweep_free(&s);
    return ex;
}

static int sweep_cancel(struct cli *c, const char *id)
{
    struct sweep s;
    int ex = sweep_read(c, id, &s);
    if (ex != EXIT_OK) {
        sweep_free(&s);
        return ex;
    }
    struct rpc_status st;
    char why[128];
    snprintf(why, sizeof why, "sweep %s cancelled", id);
    int ncancel = 0;
    cJSON *arr = c->json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < s.njobs && ex == EXIT_OK; i++) {
        const struct sweep_job *j = &s.jobs[i];
        if (sweep_job_ended(j))
            continue;
        Saturn__V1__CancelJobRequest req = SATURN__V1__CANCEL_JOB_REQUEST__INIT;
        req.job_id = (char *)j->id;
        req.reason = (char *)(c->reason ? c->reason : why);
        ProtobufCMessage *m;
        if (rpc_unary(c->rpc, "/saturn.v1.Client/CancelJob", &req.base,
                      &saturn__v1__cancel_job_response__descriptor, &m, c->timeout_ms, &st) != 0) {
            /* A job that ended meanwhile is no failure of the cancel. */
            if (st.code == GRPC_STATUS_FAILED_PRECONDITION)
                continue;
            ex = cli_fail_status(c, &st);
            break;
        }
        const Saturn__V1__CancelJobResponse *r = (const Saturn__V1__CancelJobResponse *)m;
        if (arr)
            cJSON_AddItemToArray(arr, cJSON_CreateString(j->id));
        else if (r->job)
            printf("%s %s\n", cli_esc(r->job->id), cli_job_state(r->job->state));
        ncancel++;
        rpc_msg_free(m);
    }
    if (arr) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sweep", id);
        cJSON_AddItemToObject(o, "cancelled", arr);
        cli_print_json(o);
    } else if (ex == EXIT_OK) {
        printf("sweep %s: %d job%s cancelled, %d had ended\n", id, ncancel, ncancel == 1 ? "" : "s",
               s.njobs - ncancel);
    }
    sweep_free(&s);
    return ex;
}

int cmd_sweep(struct cli *c)
{
    bool sub =
        c->nargs == 2 && (strcmp(c->args[0], "status") == 0 || strcmp(c->args[0], "cancel") == 0);
    if (c->nargs == 2 && !sub) {
        cli_errorf("sweep: usage: saturn sweep SPEC.json --grid FIELD=V1,V2 | status ID | "
                   "cancel ID");
        return EXIT_USAGE;
    }
    if (sub) {
        if (!jobspec_sweep_id_ok(c->args[1])) {
            cli_errorf("sweep: \"%s\" is not a sweep id (1..%d characters of A-Z a-z 0-9 . _ -)",
                       cli_esc(c->args[1]), SPEC_SWEEP_LEN - 1);
            return EXIT_USAGE;
        }
        if (c->ngrids || c->seeds || c->detach) {
            cli_errorf("sweep %s: --grid, --seeds and --detach are for a new sweep", c->args[0]);
            return EXIT_USAGE;
        }
        int ex = cli_connect(c);
        if (ex != EXIT_OK)
            return ex;
        return c->args[0][0] == 's' ? sweep_status(c, c->args[1]) : sweep_cancel(c, c->args[1]);
    }
    if (c->ngrids == 0 && c->seeds < 2) {
        cli_errorf("sweep: give the grid: --grid FIELD=V1,V2,... (repeatable) and/or --seeds N");
        return EXIT_USAGE;
    }
    struct job_spec spec;
    int ex = cli_spec_build(c, c->args[0], &spec);
    if (ex == EXIT_OK)
        ex = cli_connect(c);
    if (ex == EXIT_OK)
        ex = sweep_run(c, &spec);
    return ex;
}
