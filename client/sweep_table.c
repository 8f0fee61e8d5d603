/* sweep_table.c - a sweep's jobs read back from saturnd, their grid points
 * found again from the specs, and the table of final metrics (text, JSON,
 * Markdown). See sweep.h. */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "saturn.pb-c.h"
#include "sweep.h"

#include "../common/util/clock.h"
#include "../common/util/xalloc.h"

#define LIST_LIMIT 1000 /* ListJobs' most */

/* ==== reading the jobs ===================================================== */

bool sweep_job_ended(const struct sweep_job *j)
{
    return j->state == SATURN__V1__JOB_STATE__JOB_STATE_SUCCEEDED ||
           j->state == SATURN__V1__JOB_STATE__JOB_STATE_FAILED ||
           j->state == SATURN__V1__JOB_STATE__JOB_STATE_CANCELLED;
}

static struct sweep_job *find_or_add(struct sweep *s, const char *id)
{
    for (int i = 0; i < s->njobs; i++)
        if (strcmp(s->jobs[i].id, id) == 0)
            return &s->jobs[i];
    if (s->njobs == SWEEP_MAX_JOBS)
        return NULL;
    if (!s->jobs) {
        s->jobs = sat_calloc(SWEEP_MAX_JOBS, sizeof *s->jobs);
        if (!s->jobs)
            return NULL;
    }
    struct sweep_job *j = &s->jobs[s->njobs++];
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    return j;
}

/* Takes what GetJob says about j. */
static void take_job(struct sweep_job *j, const Saturn__V1__Job *m)
{
    j->state = m->state;
    j->start_ms = m->start_time_ms;
    j->end_ms = m->end_time_ms;
    snprintf(j->name, sizeof j->name, "%s", m->name);
    if (!j->spec_json && *m->spec_json) {
        j->spec_json = sat_strdup(m->spec_json);
        cJSON *o = j->spec_json ? cJSON_Parse(j->spec_json) : NULL;
        cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
        if (cJSON_IsNumber(seed) && seed->valuedouble >= 0)
            j->seed = (uint64_t)seed->valuedouble;
        cJSON_Delete(o);
    }
    const Saturn__V1__JobProgress *p = m->progress;
    if (p) {
        j->progress = true;
        j->epoch = p->epoch;
        j->epochs = p->epochs;
        j->step = p->step;
        j->total_steps = p->total_steps;
        j->test_epoch = p->test_epoch;
        j->test_acc = p->test_acc;
        j->images_per_s = p->images_per_s;
    }
}

int sweep_refresh(struct cli *c, struct sweep *s, struct rpc_status *st)
{
    Saturn__V1__ListJobsRequest req = SATURN__V1__LIST_JOBS_REQUEST__INIT;
    req.limit = LIST_LIMIT;
    req.sweep = s->id;
    ProtobufCMessage *m;
    if (rpc_unary(c->rpc, "/saturn.v1.Client/ListJobs", &req.base,
                  &saturn__v1__list_jobs_response__descriptor, &m, c->timeout_ms, st) != 0)
        return cli_exit_from_status(st->code);
    const Saturn__V1__ListJobsResponse *r = (const Saturn__V1__ListJobsResponse *)m;
    /* Newest first: add the oldest first, so that jobs keep their order. */
    for (size_t i = r->n_jobs; i-- > 0;) {
        struct sweep_job *j = find_or_add(s, r->jobs[i]->id);
        if (j)
            j->state = r->jobs[i]->state;
    }
    rpc_msg_free(m);
    for (int i = 0; i < s->njobs; i++) {
        struct sweep_job *j = &s->jobs[i];
        /* An ended job whose spec and final progress were read is final. */
        if (j->spec_json && sweep_job_ended(j) && (j->progress || j->start_ms == 0) &&
            j->end_ms > 0)
            continue;
        Saturn__V1__GetJobRequest g = SATURN__V1__GET_JOB_REQUEST__INIT;
        g.job_id = j->id;
        if (rpc_unary(c->rpc, "/saturn.v1.Client/GetJob", &g.base,
                      &saturn__v1__get_job_response__descriptor, &m, c->timeout_ms, st) != 0)
            return cli_exit_from_status(st->code);
        const Saturn__V1__GetJobResponse *gr = (const Saturn__V1__GetJobResponse *)m;
        if (gr->job)
            take_job(j, gr->job);
        rpc_msg_free(m);
    }
    return EXIT_OK;
}

void sweep_free(struct sweep *s)
{
    for (int i = 0; i < s->njobs; i++)
        sat_free(s->jobs[i].spec_json);
    sat_free(s->jobs);
    s->jobs = NULL;
    s->njobs = 0;
}

bool sweep_done(const struct sweep *s)
{
    for (int i = 0; i < s->njobs; i++)
        if (!sweep_job_ended(&s->jobs[i]))
            return false;
    return true;
}

/* ==== grid points ========================================================== */

/* A spec value as the label shows it: strings bare, numbers as JSON. */
static void value_text(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v)) {
        snprintf(buf, cap, "%s", v->valuestring);
        return;
    }
    char *t = cJSON_PrintUnformatted(v);
    snprintf(buf, cap, "%s", t ? t : "?");
    cJSON_free(t);
}

void sweep_label(struct sweep *s)
{
    cJSON *specs[SWEEP_MAX_JOBS] = {0};
    for (int i = 0; i < s->njobs; i++)
        specs[i] = s->jobs[i].spec_json ? cJSON_Parse(s->jobs[i].spec_json) : NULL;
    const cJSON *first = NULL;
    for (int i = 0; i < s->njobs && !first; i++)
        first = specs[i];
    s->nfields = 0;
    for (const cJSON *f = first ? first->child : NULL; f; f = f->next) {
        if (strcmp(f->string, "seed") == 0 || strcmp(f->string, "name") == 0 ||
            strcmp(f->string, "sweep") == 0)
            continue;
        char a[256], b[256];
        value_text(f, a, sizeof a);
        bool differs = false;
        for (int i = 0; i < s->njobs && !differs; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(specs[i], f->string);
            if (!specs[i] || !v)
                continue;
            value_text(v, b, sizeof b);
            differs = strcmp(a, b) != 0;
        }
        if (differs && s->nfields < SWEEP_MAX_FIELDS)
            snprintf(s->fields[s->nfields++], sizeof s->fields[0], "%s", f->string);
    }
    for (int i = 0; i < s->njobs; i++) {
        struct sweep_job *j = &s->jobs[i];
        size_t n = 0;
        j->label[0] = 0;
        if (!specs[i]) {
            snprintf(j->label, sizeof j->label, "?");
            continue;
        }
        for (int k = 0; k < s->nfields && n < sizeof j->label; k++) {
            char v[128];
            value_text(cJSON_GetObjectItemCaseSensitive(specs[i], s->fields[k]), v, sizeof v);
            n += (size_t)snprintf(j->label + n, sizeof j->label - n, "%s%s=%s", k ? " " : "",
                                  s->fields[k], v);
        }
    }
    for (int i = 0; i < s->njobs; i++)
        cJSON_Delete(specs[i]);
}

/* ==== the table ============================================================ */

struct row {
    const char *label;
    int first; /* index of its first job */
    int njobs, nacc, nspeed, nwall;
    int nstate[8];
    double acc_sum, acc_sq, acc_min, acc_max, speed_sum, wall_sum;
    uint32_t epochs;
};

static double job_wall_s(const struct sweep_job *j, int64_t now_ms)
{
    if (j->start_ms <= 0)
        return -1;
    int64_t end = j->end_ms > 0 ? j->end_ms : now_ms;
    return (double)(end - j->start_ms) / 1000.0;
}

/* Groups the jobs by grid point, in the order of each point's first job. */
static int make_rows(const struct sweep *s, struct row *rows)
{
    int n = 0;
    int64_t now = sat_wall_ms();
    for (int i = 0; i < s->njobs; i++) {
        const struct sweep_job *j = &s->jobs[i];
        int r = 0;
        while (r < n && strcmp(rows[r].label, j->label) != 0)
            r++;
        if (r == n) {
            memset(&rows[n], 0, sizeof rows[n]);
            rows[n].label = j->label;
            rows[n].first = i;
            n++;
        }
        struct row *w = &rows[r];
        w->njobs++;
        if (j->state >= 0 && j->state < 8)
            w->nstate[j->state]++;
        if (j->progress && j->epochs > w->epochs)
            w->epochs = j->epochs;
        if (j->progress && j->test_epoch > 0 && isfinite(j->test_acc)) {
            double a = 100.0 * j->test_acc;
            w->acc_min = w->nacc ? fmin(w->acc_min, a) : a;
            w->acc_max = w->nacc ? fmax(w->acc_max, a) : a;
            w->acc_sum += a;
            w->acc_sq += a * a;
            w->nacc++;
        }
        if (j->progress && j->images_per_s > 0) {
            w->speed_sum += j->images_per_s;
            w->nspeed++;
        }
        double wall = job_wall_s(j, now);
        if (wall >= 0) {
            w->wall_sum += wall;
            w->nwall++;
        }
    }
    return n;
}

/* Sample standard deviation over the seeds (NaN for fewer than 2). */
static double row_std(const struct row *w)
{
    if (w->nacc < 2)
        return NAN;
    double mean = w->acc_sum / w->nacc;
    double var = (w->acc_sq - w->nacc * mean * mean) / (w->nacc - 1);
    return sqrt(var > 0 ? var : 0);
}

/* "succeeded", or "1 succeeded, 1 running" when the jobs differ. */
static void row_states(const struct row *w, char *buf, size_t cap)
{
    size_t n = 0;
    int kinds = 0;
    for (int s = 0; s < 8; s++)
        kinds += w->nstate[s] > 0;
    buf[0] = 0;
    for (int s = 0; s < 8 && n < cap; s++) {
        if (!w->nstate[s])
            continue;
        if (kinds == 1)
            n += (size_t)snprintf(buf + n, cap - n, "%s", cli_job_state(s));
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%d %s", n ? ", " : "", w->nstate[s],
                                  cli_job_state(s));
    }
}

static void fmt_or_dash(char *buf, size_t cap, const char *fmt, double v, bool ok)
{
    if (ok)
        snprintf(buf, cap, fmt, v);
    else
        snprintf(buf, cap, "-");
}

static cJSON *table_json(const struct sweep *s, const struct row *rows, int nrows)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sweep", s->id);
    cJSON *fields = cJSON_AddArrayToObject(o, "grid_fields");
    for (int k = 0; k < s->nfields; k++)
        cJSON_AddItemToArray(fields, cJSON_CreateString(s->fields[k]));
    cJSON *ra = cJSON_AddArrayToObject(o, "rows");
    for (int r = 0; r < nrows; r++) {
        const struct row *w = &rows[r];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "point", w->label);
        cJSON_AddNumberToObject(x, "jobs", w->njobs);
        cJSON *st = cJSON_AddObjectToObject(x, "states");
        for (int k = 0; k < 8; k++)
            if (w->nstate[k])
                cJSON_AddNumberToObject(st, cli_job_state(k), w->nstate[k]);
        if (w->nacc) {
            cJSON_AddNumberToObject(x, "test_acc_mean", w->acc_sum / w->nacc / 100.0);
            cJSON_AddNumberToObject(x, "test_acc_min", w->acc_min / 100.0);
            cJSON_AddNumberToObject(x, "test_acc_max", w->acc_max / 100.0);
        } else {
            cJSON_AddNullToObject(x, "test_acc_mean");
        }
        double sd = row_std(w);
        if (isfinite(sd))
            cJSON_AddNumberToObject(x, "test_acc_std", sd / 100.0);
        else
            cJSON_AddNullToObject(x, "test_acc_std");
        cJSON_AddNumberToObject(x, "test_acc_n", w->nacc);
        cJSON_AddNumberToObject(x, "epochs", w->epochs);
        cJSON_AddNumberToObject(x, "images_per_s", w->nspeed ? w->speed_sum / w->nspeed : 0);
        cJSON_AddNumberToObject(x, "wall_s", w->nwall ? w->wall_sum / w->nwall : 0);
        cJSON_AddItemToArray(ra, x);
    }
    cJSON *ja = cJSON_AddArrayToObject(o, "jobs");
    int64_t now = sat_wall_ms();
    for (int i = 0; i < s->njobs; i++) {
        const struct sweep_job *j = &s->jobs[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "job_id", j->id);
        cJSON_AddStringToObject(x, "name", j->name);
        cJSON_AddStringToObject(x, "point", j->label);
        cJSON_AddNumberToObject(x, "seed", (double)j->seed);
        cJSON_AddStringToObject(x, "state", cli_job_state(j->state));
        cJSON_AddNumberToObject(x, "epoch", j->epoch);
        cJSON_AddNumberToObject(x, "epochs", j->epochs);
        cJSON_AddNumberToObject(x, "step", (double)j->step);
        cJSON_AddNumberToObject(x, "total_steps", (double)j->total_steps);
        if (j->progress && j->test_epoch > 0)
            cJSON_AddNumberToObject(x, "test_acc", j->test_acc);
        else
            cJSON_AddNullToObject(x, "test_acc");
        cJSON_AddNumberToObject(x, "images_per_s", j->images_per_s);
        cJSON_AddNumberToObject(x, "wall_s", job_wall_s(j, now));
        cJSON_AddItemToArray(ja, x);
    }
    return o;
}

/* A Markdown cell: '|' escaped, control characters escaped. */
static void md_cell(const char *s)
{
    for (const char *p = cli_esc(s); *p; p++) {
        if (*p == '|')
            fputc('\\', stdout);
        fputc(*p, stdout);
    }
}

void sweep_print_table(const struct cli *c, const struct sweep *s)
{
    struct row *rows = sat_calloc(s->njobs ? (size_t)s->njobs : 1, sizeof *rows);
    if (!rows) {
        cli_errorf("sweep: out of memory");
        return;
    }
    int nrows = make_rows(s, rows);
    if (c->json) {
        cli_print_json(table_json(s, rows, nrows));
        sat_free(rows);
        return;
    }
    if (c->markdown)
        printf("| point | jobs | state | test accuracy | spread (std) | epochs | images/s | "
               "wall time |\n|---|---:|---|---:|---:|---:|---:|---:|\n");
    else
        printf("sweep %s: %d job%s\n%-32s %4s  %-22s %9s %7s %6s %9s %9s\n", cli_esc(s->id),
               s->njobs, s->njobs == 1 ? "" : "s", "POINT", "JOBS", "STATE", "TEST ACC", "SPREAD",
               "EPOCHS", "IMAGES/S", "WALL");
    for (int r = 0; r < nrows; r++) {
        const struct row *w = &rows[r];
        char st[96], acc[32], sd[32], speed[32], wall[32];
        row_states(w, st, sizeof st);
        fmt_or_dash(acc, sizeof acc, "%.2f%%", w->nacc ? w->acc_sum / w->nacc : 0, w->nacc > 0);
        double sdev = row_std(w);
        fmt_or_dash(sd, sizeof sd, "%.2f", sdev, isfinite(sdev));
        fmt_or_dash(speed, sizeof speed, "%.0f", w->nspeed ? w->speed_sum / w->nspeed : 0,
                    w->nspeed > 0);
        fmt_or_dash(wall, sizeof wall, "%.1f s", w->nwall ? w->wall_sum / w->nwall : 0,
                    w->nwall > 0);
        const char *label = *w->label ? w->label : "(all)";
        if (c->markdown) {
            printf("| ");
            md_cell(label);
            printf(" | %d | %s | %s | %s | %" PRIu32 " | %s | %s |\n", w->njobs, st, acc, sd,
                   w->epochs, speed, wall);
        } else {
            printf("%-32s %4d  %-22s %9s %7s %6" PRIu32 " %9s %9s\n", cli_esc(label), w->njobs, st,
                   acc, sd, w->epochs, speed, wall);
        }
    }
    fflush(stdout);
    sat_free(rows);
}

void sweep_job_line(const struct sweep_job *j, char *buf, size_t cap)
{
    char test[32] = "-", ep[32] = "-", step[48] = "-";
    if (j->progress) {
        snprintf(ep, sizeof ep, "%" PRIu32 "/%" PRIu32, j->epoch, j->epochs);
        snprintf(step, sizeof step, "%" PRIu64 "/%" PRIu64, j->step, j->total_steps);
        if (j->test_epoch > 0)
            snprintf(test, sizeof test, "%.2f%%", 100.0 * j->test_acc);
    }
    snprintf(buf, cap, "%-10s %-28s %-10s epoch %-7s step %-13s test %s", cli_esc(j->id),
             cli_esc(*j->label ? j->label : "-"), cli_job_state(j->state), ep, step, test);
}
