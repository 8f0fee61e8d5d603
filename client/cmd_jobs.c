/* cmd_jobs.c - saturn submit, status, list, cancel and watch. */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "saturn.pb-c.h"

#include "../common/spec/jobspec.h"
#include "../common/util/file.h"
#include "../common/util/xalloc.h"

#define RAW_SPEC_MAX (64u << 20) /* --no-local-check sends at most this much */

/* ==== JSON of a job ======================================================== */

static cJSON *epoch_json(const Saturn__V1__EpochResult *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", e->epoch);
    cJSON_AddNumberToObject(o, "step", (double)e->step);
    cJSON_AddNumberToObject(o, "time_ms", (double)e->time_ms);
    cJSON_AddNumberToObject(o, "loss", e->loss);
    cJSON_AddNumberToObject(o, "train_acc", e->train_acc);
    if (e->test_acc >= 0)
        cJSON_AddNumberToObject(o, "test_acc", e->test_acc);
    else
        cJSON_AddNullToObject(o, "test_acc");
    cJSON_AddNumberToObject(o, "images_per_s", e->images_per_s);
    cJSON_AddNumberToObject(o, "lr", e->lr);
    cli_quant_json(cJSON_AddArrayToObject(o, "quant"), e->quant, e->n_quant);
    return o;
}

static cJSON *job_json(const Saturn__V1__Job *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "name", j->name);
    cJSON_AddStringToObject(o, "state", cli_job_state(j->state));
    cJSON_AddNumberToObject(o, "priority", j->priority);
    cJSON_AddNumberToObject(o, "workers", j->workers);
    cJSON *ids = cJSON_AddArrayToObject(o, "worker_ids");
    for (size_t i = 0; i < j->n_worker_ids; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateString(j->worker_ids[i]));
    cJSON_AddStringToObject(o, "reason", j->reason);
    cJSON_AddNumberToObject(o, "attempt", j->attempt);
    cJSON_AddStringToObject(o, "model", j->model);
    cJSON_AddStringToObject(o, "dataset", j->dataset);
    cJSON_AddStringToObject(o, "consistency", j->consistency);
    cJSON_AddNumberToObject(o, "submit_time_ms", (double)j->submit_time_ms);
    cJSON_AddNumberToObject(o, "start_time_ms", (double)j->start_time_ms);
    cJSON_AddNumberToObject(o, "end_time_ms", (double)j->end_time_ms);
    if (*j->spec_json) {
        cJSON *spec = cJSON_Parse(j->spec_json);
        cJSON_AddItemToObject(o, "spec", spec ? spec : cJSON_CreateString(j->spec_json));
    }
    if (j->progress) {
        /* Training: where it stands, at the top level for
         * scripts, and the latest measurements under "metrics". */
        const Saturn__V1__JobProgress *p = j->progress;
        cJSON_AddNumberToObject(o, "epoch", p->epoch);
        cJSON_AddNumberToObject(o, "epochs", p->epochs);
        cJSON_AddNumberToObject(o, "step", (double)p->step);
        cJSON_AddNumberToObject(o, "total_steps", (double)p->total_steps);
        if (p->test_epoch > 0)
            cJSON_AddNumberToObject(o, "test_acc", p->test_acc);
        else
            cJSON_AddNullToObject(o, "test_acc");
        cJSON_AddStringToObject(o, "param_digest", p->param_digest);
        cJSON_AddStringToObject(o, "model_path", p->model_path);
        cJSON_AddItemToObject(o, "metrics", cli_progress_json(p));
    }
    if (j->n_epochs) {
        cJSON *a = cJSON_AddArrayToObject(o, "per_epoch");
        for (size_t i = 0; i < j->n_epochs; i++)
            cJSON_AddItemToArray(a, epoch_json(j->epochs[i]));
    }
    if (j->n_history) {
        cJSON *h = cJSON_AddArrayToObject(o, "history");
        for (size_t i = 0; i < j->n_history; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "state", cli_job_state(j->history[i]->state));
            cJSON_AddNumberToObject(e, "time_ms", (double)j->history[i]->time_ms);
            cJSON_AddStringToObject(e, "reason", j->history[i]->reason);
            cJSON_AddItemToArray(h, e);
        }
    }
    return o;
}

/* ==== submit =============================================================== */

static int read_file(const char *path, char **out, size_t *len)
{
    char err[SAT_ERR_LEN];
    if (sat_file_read_all(path, RAW_SPEC_MAX, out, len, err) != 0) {
        cli_errorf("submit: %s", err);
        return EXIT_INVALID;
    }
    return EXIT_OK;
}

int cli_spec_build(const struct cli *c, const char *path, struct job_spec *spec)
{
    char err[SAT_ERR_LEN];
    if (path) {
        if (jobspec_load(spec, path, err) != 0) {
            cli_errorf("%s: %s", c->cmd, err);
            return EXIT_INVALID;
        }
    } else {
        jobspec_defaults(spec);
    }
    for (int i = 0; i < c->nsets; i++)
        if (jobspec_set(spec, c->sets[i].key, c->sets[i].value, err) != 0) {
            cli_errorf("%s: %s", c->cmd, err);
            return EXIT_INVALID;
        }
    if (jobspec_validate(spec, err) != 0) {
        cli_errorf("%s: %s", c->cmd, err);
        return EXIT_INVALID;
    }
    return EXIT_OK;
}

/* Builds the spec JSON: the file (if any), then each field flag, validated
 * locally so that mistakes are caught before the network. */
static int build_spec(struct cli *c, char **json)
{
    if (c->no_local_check) {
        if (c->nargs != 1 || c->nsets) {
            cli_errorf("submit: --no-local-check needs a spec file and no field flags");
            return EXIT_USAGE;
        }
        size_t len;
        return read_file(c->args[0], json, &len);
    }
    struct job_spec spec;
    int ex = cli_spec_build(c, c->nargs == 1 ? c->args[0] : NULL, &spec);
    if (ex != EXIT_OK)
        return ex;
    *json = jobspec_to_json(&spec);
    if (!*json) {
        cli_errorf("submit: out of memory");
        return EXIT_SERVER;
    }
    return EXIT_OK;
}

int cmd_submit(struct cli *c)
{
    char *json = NULL;
    int ex = build_spec(c, &json);
    if (ex != EXIT_OK)
        return ex;
    ex = cli_connect(c);
    if (ex != EXIT_OK) {
        sat_free(json);
        return ex;
    }
    Saturn__V1__SubmitJobRequest req = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
    req.spec_json = json;
    req.flags = c->dry_run ? SATURN__V1__SUBMIT_FLAGS__SUBMIT_FLAGS_DRY_RUN : 0;
    ProtobufCMessage *m;
    struct rpc_status st;
    int rc = rpc_unary(c->rpc, "/saturn.v1.Client/SubmitJob", &req.base,
                       &saturn__v1__submit_job_response__descriptor, &m, c->timeout_ms, &st);
    sat_free(json);
    if (rc != 0)
        return cli_fail_status(c, &st);
    const Saturn__V1__SubmitJobResponse *r = (const Saturn__V1__SubmitJobResponse *)m;
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job_id", r->job_id);
        cJSON_AddStringToObject(o, "state", cli_job_state(r->state));
        cJSON *spec = cJSON_Parse(r->spec_json);
        cJSON_AddItemToObject(o, "spec", spec ? spec : cJSON_CreateString(r->spec_json));
        cli_print_json(o);
    } else if (c->dry_run) {
        printf("spec is valid; canonical form:\n%s\n", r->spec_json);
    } else {
        printf("%s %s\n", r->job_id, cli_job_state(r->state));
    }
    rpc_msg_free(m);
    return EXIT_OK;
}

/* ==== status =============================================================== */

static void print_job_text(const Saturn__V1__Job *j)
{
    char t[64];
    printf("%s  %s", cli_esc(j->id), cli_job_state(j->state));
    if (j->attempt)
        printf("  (attempt %" PRIu32 ")", j->attempt);
    printf("\n");
    printf("  name:        %s\n", *j->name ? cli_esc(j->name) : "-");
    printf("  model:       %s on %s, %s\n", cli_esc(j->model), cli_esc(j->dataset),
           cli_esc(j->consistency));
    printf("  workers:     %" PRIu32, j->workers);
    for (size_t i = 0; i < j->n_worker_ids; i++)
        printf("%s%s", i ? ", " : " (", cli_esc(j->worker_ids[i]));
    printf("%s\n", j->n_worker_ids ? ")" : "");
    printf("  priority:    %d\n", j->priority);
    printf("  reason:      %s\n", cli_esc(j->reason));
    printf("  submitted:   %s\n", cli_time(j->submit_time_ms, t, sizeof t));
    printf("  started:     %s\n", cli_time(j->start_time_ms, t, sizeof t));
    printf("  ended:       %s\n", cli_time(j->end_time_ms, t, sizeof t));
    if (j->progress) {
        const Saturn__V1__JobProgress *p = j->progress;
        printf("  progress:    epoch %" PRIu32 "/%" PRIu32 ", step %" PRIu64 "/%" PRIu64 "\n",
               p->epoch, p->epochs, p->step, p->total_steps);
        printf("  metrics:     loss %.4f, train accuracy %.2f%%, %.0f images/s, lr %.4g\n",
               p->loss, 100.0 * p->train_acc, p->images_per_s, p->lr);
        if (p->test_epoch > 0)
            printf("  test:        %.2f%% after epoch %" PRIu32 "\n", 100.0 * p->test_acc,
                   p->test_epoch);
        printf("  step time:   pull %.1f ms, compute %.1f ms, push %.1f ms\n", 1e3 * p->pull_s,
               1e3 * p->compute_s, 1e3 * p->push_s);
        printf("  digest:      %s\n", cli_esc(p->param_digest));
        if (*p->model_path)
            printf("  model:       %s\n", cli_esc(p->model_path));
        for (size_t i = 0; i < p->n_quant; i++)
            printf("  %-12s %-28s %s %.4g\n", i ? "" : "quantizers:", cli_esc(p->quant[i]->name),
                   cli_esc(p->quant[i]->kind), p->quant[i]->value);
    }
    if (j->n_epochs) {
        printf("  epochs:      %5s %8s %9s %9s %9s %9s\n", "EPOCH", "LOSS", "TRAIN", "TEST",
               "IMAGES/S", "LR");
        for (size_t i = 0; i < j->n_epochs; i++) {
            const Saturn__V1__EpochResult *e = j->epochs[i];
            printf("               %5" PRIu32 " %8.4f %8.2f%% %8.2f%% %9.0f %9.4g\n", e->epoch,
                   e->loss, 100.0 * e->train_acc, 100.0 * e->test_acc, e->images_per_s, e->lr);
        }
    }
    if (j->n_history) {
        printf("  history:\n");
        for (size_t i = 0; i < j->n_history; i++)
            printf("    %s  %-9s  %s\n", cli_time(j->history[i]->time_ms, t, sizeof t),
                   cli_job_state(j->history[i]->state), cli_esc(j->history[i]->reason));
    }
}

int cmd_status(struct cli *c)
{
    int ex = cli_connect(c);
    if (ex != EXIT_OK)
        return ex;
    Saturn__V1__GetJobRequest req = SATURN__V1__GET_JOB_REQUEST__INIT;
    req.job_id = (char *)c->args[0];
    req.epochs = c->epochs;
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(c->rpc, "/saturn.v1.Client/GetJob", &req.base,
                  &saturn__v1__get_job_response__descriptor, &m, c->timeout_ms, &st) != 0)
        return cli_fail_status(c, &st);
    const Saturn__V1__GetJobResponse *r = (const Saturn__V1__GetJobResponse *)m;
    if (!r->job) {
        rpc_msg_free(m);
        cli_errorf("status: the response has no job");
        return EXIT_SERVER;
    }
    if (c->json)
        cli_print_json(job_json(r->job));
    else
        print_job_text(r->job);
    rpc_msg_free(m);
    return EXIT_OK;
}

/* ==== list ================================================================= */

int cmd_list(struct cli *c)
{
    int ex = cli_connect(c);
    if (ex != EXIT_OK)
        return ex;
    Saturn__V1__ListJobsRequest req = SATURN__V1__LIST_JOBS_REQUEST__INIT;
    Saturn__V1__JobState states[8];
    for (int i = 0; i < c->nstates; i++)
        states[i] = (Saturn__V1__JobState)c->states[i];
    req.n_states = (size_t)c->nstates;
    req.states = states;
    req.limit = (uint32_t)c->limit;
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(c->rpc, "/saturn.v1.Client/ListJobs", &req.base,
                  &saturn__v1__list_jobs_response__descriptor, &m, c->timeout_ms, &st) != 0)
        return cli_fail_status(c, &st);
    const Saturn__V1__ListJobsResponse *r = (const Saturn__V1__ListJobsResponse *)m;
    if (c->json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < r->n_jobs; i++)
            cJSON_AddItemToArray(a, job_json(r->jobs[i]));
        cli_print_json(a);
    } else {
        char t[64];
        printf("%-10s %-9s %-7s %-8s %-12s %-13s %-20s %s\n", "ID", "STATE", "WORKERS", "PRIORITY",
               "MODEL", "DATASET", "SUBMITTED", "REASON");
        for (size_t i = 0; i < r->n_jobs; i++) {
            const Saturn__V1__Job *j = r->jobs[i];
            printf("%-10s %-9s %-7" PRIu32 " %-8d %-12s %-13s %-20s %s\n", cli_esc(j->id),
                   cli_job_state(j->state), j->workers, j->priority, cli_esc(j->model),
                   cli_esc(j->dataset), cli_time(j->submit_time_ms, t, sizeof t),
                   cli_esc(j->reason));
        }
        if (r->total > r->n_jobs)
            printf("(%zu of %" PRIu32 " jobs shown; --limit N for more)\n", r->n_jobs, r->total);
    }
    rpc_msg_free(m);
    return EXIT_OK;
}

/* ==== cancel =============================================================== */

int cmd_cancel(struct cli *c)
{
    int ex = cli_connect(c);
    if (ex != EXIT_OK)
        return ex;
    Saturn__V1__CancelJobRequest req = SATURN__V1__CANCEL_JOB_REQUEST__INIT;
    req.job_id = (char *)c->args[0];
    req.reason = (char *)(c->reason ? c->reason : "");
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(c->rpc, "/saturn.v1.Client/CancelJob", &req.base,
                  &saturn__v1__cancel_job_response__descriptor, &m, c->timeout_ms, &st) != 0)
        return cli_fail_status(c, &st);
    const Saturn__V1__CancelJobResponse *r = (const Saturn__V1__CancelJobResponse *)m;
    if (c->json)
        cli_print_json(r->job ? job_json(r->job) : cJSON_CreateObject());
    else if (r->job)
        printf("%s %s: %s\n", cli_esc(r->job->id), cli_job_state(r->job->state),
               cli_esc(r->job->reason));
    rpc_msg_free(m);
    return EXIT_OK;
}

/* ==== watch ================================================================ */

int cmd_watch(struct cli *c)
{
    int ex = cli_connect(c);
    if (ex != EXIT_OK)
        return ex;
    int last_state = 0;
    ex = cli_follow(c, c->args[0], &last_state);
    if (ex != EXIT_OK)
        return ex;
    if (last_state == SATURN__V1__JOB_STATE__JOB_STATE_FAILED ||
        last_state == SATURN__V1__JOB_STATE__JOB_STATE_CANCELLED)
        return EXIT_JOB_FAILED;
    return EXIT_OK;
}
