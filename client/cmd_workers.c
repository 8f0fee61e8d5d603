/* cmd_workers.c - saturn workers: the registry and the leases; saturn
 * workers drain ID: the worker finishes its current step, hands its rank
 * over (the job goes on with another worker) and leaves. */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "saturn.pb-c.h"

#include "../common/util/clock.h"

static int cmd_drain(struct cli *c, const char *id)
{
    Saturn__V1__DrainWorkerRequest req = SATURN__V1__DRAIN_WORKER_REQUEST__INIT;
    req.worker_id = (char *)id;
    req.reason = (char *)(c->reason ? c->reason : "");
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(c->rpc, "/saturn.v1.Client/DrainWorker", &req.base,
                  &saturn__v1__drain_worker_response__descriptor, &m, c->timeout_ms, &st) != 0)
        return cli_fail_status(c, &st);
    const Saturn__V1__WorkerInfo *w = ((const Saturn__V1__DrainWorkerResponse *)m)->worker;
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", w ? w->id : id);
        cJSON_AddBoolToObject(o, "draining", w && w->draining);
        cJSON_AddStringToObject(o, "job_id", w ? w->job_id : "");
        cli_print_json(o);
    } else if (w && *w->job_id) {
        printf("%s draining: it leaves after its current step of %s (rank %" PRIu32
               "), which another worker takes over\n",
               w->id, w->job_id, w->rank);
    } else {
        printf("%s draining: it has no assignment and leaves at its next heartbeat\n",
               w ? w->id : id);
    }
    rpc_msg_free(m);
    return EXIT_OK;
}

int cmd_workers(struct cli *c)
{
    if (c->nargs > 0 && (strcmp(c->args[0], "drain") != 0 || c->nargs != 2)) {
        cli_errorf("workers: expected no argument, or: drain WORKER_ID");
        return EXIT_USAGE;
    }
    int ex = cli_connect(c);
    if (ex != EXIT_OK)
        return ex;
    if (c->nargs == 2)
        return cmd_drain(c, c->args[1]);
    Saturn__V1__ListWorkersRequest req = SATURN__V1__LIST_WORKERS_REQUEST__INIT;
    req.include_lost = c->all;
    ProtobufCMessage *m;
    struct rpc_status st;
    if (rpc_unary(c->rpc, "/saturn.v1.Client/ListWorkers", &req.base,
                  &saturn__v1__list_workers_response__descriptor, &m, c->timeout_ms, &st) != 0)
        return cli_fail_status(c, &st);
    const Saturn__V1__ListWorkersResponse *r = (const Saturn__V1__ListWorkersResponse *)m;
    if (c->json) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < r->n_workers; i++) {
            const Saturn__V1__WorkerInfo *w = r->workers[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", w->id);
            cJSON_AddStringToObject(o, "name", w->name);
            cJSON_AddStringToObject(o, "state", cli_worker_state(w->state));
            cJSON_AddNumberToObject(o, "threads", w->threads);
            cJSON_AddStringToObject(o, "version", w->version);
            cJSON_AddStringToObject(o, "job_id", w->job_id);
            cJSON_AddNumberToObject(o, "rank", w->rank);
            cJSON_AddNumberToObject(o, "registered_ms", (double)w->registered_ms);
            cJSON_AddNumberToObject(o, "last_heartbeat_ms", (double)w->last_heartbeat_ms);
            cJSON_AddStringToObject(o, "peer", w->peer);
            cJSON_AddStringToObject(o, "reason", w->reason);
            cJSON_AddItemToArray(a, o);
        }
        cli_print_json(a);
    } else {
        int64_t now_ms = sat_wall_ms();
        printf("%-8s %-20s %-9s %-10s %-5s %-7s %-9s %s\n", "ID", "NAME", "STATE", "JOB", "RANK",
               "THREADS", "LAST-SEEN", "PEER / REASON");
        for (size_t i = 0; i < r->n_workers; i++) {
            const Saturn__V1__WorkerInfo *w = r->workers[i];
            char ago[32], rank[16];
            snprintf(rank, sizeof rank, "%" PRIu32, w->rank);
            snprintf(ago, sizeof ago, "%.1fs ago",
                     (double)(now_ms - w->last_heartbeat_ms) / 1000.0);
            printf("%-8s %-20s %-9s %-10s %-5s %-7" PRIu32 " %-9s %s\n", cli_esc(w->id),
                   cli_esc(w->name), cli_worker_state(w->state),
                   *w->job_id ? cli_esc(w->job_id) : "-", *w->job_id ? rank : "-", w->threads,
                   ago, cli_esc(*w->reason ? w->reason : w->peer));
        }
        printf("%zu worker%s, %" PRIu32 " free\n", r->n_workers, r->n_workers == 1 ? "" : "s",
               r->free);
    }
    rpc_msg_free(m);
    return EXIT_OK;
}
