/* rpc_probe.c - sends one deliberately odd call to saturnd and prints the
 * status it gets back as "STATUS_NAME: details" on stdout. The integration
 * tests use it for what the CLI cannot send:
 *
 *   rpc_probe ADDR TOKEN_FILE garbage METHOD      bytes that are not a message
 *   rpc_probe ADDR TOKEN_FILE oversize BYTES      a SubmitJob of BYTES bytes
 *   rpc_probe ADDR TOKEN_FILE empty METHOD        an empty (all-default) message
 *   rpc_probe ADDR - health [SERVICE]             Health.Check without a token
 *
 * TOKEN_FILE "-" sends no token. Exit status 0 when a status came back,
 * 1 on a usage or local error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.pb-c.h"
#include "rpc/rpc.h"
#include "saturn.pb-c.h"
#include "util/xalloc.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: rpc_probe ADDR TOKEN_FILE|- MODE [ARG]\n");
        return 1;
    }
    char token[RPC_TOKEN_MAX], err[SAT_ERR_LEN];
    bool with_token = strcmp(argv[2], "-") != 0;
    if (with_token && rpc_token_load(argv[2], token, err) != 0) {
        fprintf(stderr, "rpc_probe: %s\n", err);
        return 1;
    }
    rpc_init();
    struct rpc_client *c;
    /* The client's own cap is large so that the server's cap is what trips. */
    struct rpc_client_opts o = {
        .target = argv[1], .token = with_token ? token : NULL, .max_msg = 256u << 20};
    if (rpc_client_new(&c, &o, err) != 0) {
        fprintf(stderr, "rpc_probe: %s\n", err);
        return 1;
    }
    const char *mode = argv[3], *arg = argc > 4 ? argv[4] : "";
    struct rpc_status st = {0};
    int status = 0;
    if (strcmp(mode, "garbage") == 0) {
        rpc_unary_raw(c, arg, "\xff\xff\xff\xff\x0f", 5, 10000, &st);
    } else if (strcmp(mode, "empty") == 0) {
        rpc_unary_raw(c, arg, "", 0, 10000, &st);
    } else if (strcmp(mode, "oversize") == 0) {
        size_t n = (size_t)strtoull(arg, NULL, 10);
        char *spec = sat_malloc(n + 1);
        if (!spec) {
            fprintf(stderr, "rpc_probe: out of memory\n");
            return 1;
        }
        memset(spec, ' ', n);
        spec[n] = 0;
        Saturn__V1__SubmitJobRequest req = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
        req.spec_json = spec;
        ProtobufCMessage *m = NULL;
        rpc_unary(c, "/saturn.v1.Client/SubmitJob", &req.base,
                  &saturn__v1__submit_job_response__descriptor, &m, 30000, &st);
        rpc_msg_free(m);
        sat_free(spec);
    } else if (strcmp(mode, "health") == 0) {
        Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
        req.service = (char *)arg;
        ProtobufCMessage *m = NULL;
        if (rpc_unary(c, "/grpc.health.v1.Health/Check", &req.base,
                      &grpc__health__v1__health_check_response__descriptor, &m, 10000, &st) == 0) {
            int s = ((Grpc__Health__V1__HealthCheckResponse *)m)->status;
            snprintf(st.details, sizeof st.details, "%s",
                     s == 1   ? "SERVING"
                     : s == 2 ? "NOT_SERVING"
                              : "UNKNOWN");
        }
        rpc_msg_free(m);
    } else {
        fprintf(stderr, "rpc_probe: unknown mode %s\n", mode);
        status = 1;
    }
    if (status == 0)
        printf("%s: %s\n", rpc_status_name(st.code), st.details);
    rpc_client_free(c);
    rpc_shutdown();
    return status;
}
