/* output.c - connecting, error messages, exit codes and small printers of
 * the saturn CLI. cli_exit_from_status is the one place where a gRPC
 * status becomes an exit code (documented in EXITCODES.md). */
#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#include "../common/util/utf8.h"

const char *cli_esc(const char *s)
{
    static char slots[CLI_ESC_SLOTS][1024];
    static unsigned next;
    char *b = slots[next++ % CLI_ESC_SLOTS];
    return sat_escape_ctl(b, sizeof slots[0], s ? s : "");
}

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("saturn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_exit_from_status(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return EXIT_OK;
    case GRPC_STATUS_NOT_FOUND:
        return EXIT_NOT_FOUND;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        return EXIT_AUTH;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return EXIT_INVALID;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return EXIT_UNAVAIL;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return EXIT_TOO_BIG;
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_ALREADY_EXISTS:
        return EXIT_CONFLICT;
    default: /* INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS, CANCELLED, ABORTED */
        return EXIT_SERVER;
    }
}

/* A failed TLS handshake and a plaintext client talking to a TLS server
 * both look like an unreachable server to gRPC: say which flags matter. */
static const char *unavailable_hint(const struct cli *c, const struct rpc_status *st)
{
    if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED)
        return " (saturnd did not answer within --timeout)";
    if (!rpc_tls_on(&c->tls))
        return " (is saturnd running there? --addr / SATURN_ADDR; if it serves TLS, pass "
               "--tls-ca / SATURN_TLS_CA)";
    if (strstr(st->details, "andshake") || strstr(st->details, "SSL") ||
        strstr(st->details, "ertificate") || strstr(st->details, "TLS"))
        return " (TLS handshake failed: is --tls-ca / SATURN_TLS_CA the CA that signed saturnd's "
               "certificate, does that certificate name the --addr host, and does saturnd ask "
               "for a client certificate (--tls-cert/--tls-key)?)";
    return " (is saturnd running there, with TLS? --addr / SATURN_ADDR, --tls-ca)";
}

int cli_fail_status(const struct cli *c, const struct rpc_status *st)
{
    const char *hint = "";
    switch (st->code) {
    case GRPC_STATUS_UNAUTHENTICATED:
        hint = c->token_file ? " (is the token in --token-file / SATURN_TOKEN_FILE the one "
                               "saturnd uses?)"
                             : " (pass --token-file FILE or set SATURN_TOKEN_FILE)";
        break;
    case GRPC_STATUS_PERMISSION_DENIED:
        hint = " (the viewer token is read-only and the worker token is for saturn-worker: "
               "this command needs the client token)";
        break;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        hint = unavailable_hint(c, st);
        break;
    default:
        break;
    }
    const char *what = st->code == GRPC_STATUS_UNAUTHENTICATED ? "unauthenticated" : "";
    if (*what)
        cli_errorf("%s: %s: %s%s", c->cmd, what, cli_esc(st->details), hint);
    else
        cli_errorf("%s: %s: %s%s", c->cmd, rpc_status_name(st->code), cli_esc(st->details), hint);
    return cli_exit_from_status(st->code);
}

int cli_connect(struct cli *c)
{
    char err[SAT_ERR_LEN];
    if (c->token_file && rpc_token_load(c->token_file, c->token, err) != 0) {
        cli_errorf("%s", err);
        return EXIT_AUTH;
    }
    if (rpc_tls_load(&c->tls, &c->tls_files, err) != 0) {
        cli_errorf("%s", err);
        return EXIT_AUTH;
    }
    struct rpc_client_opts o = {
        .target = c->addr, .token = c->token_file ? c->token : NULL, .tls = &c->tls};
    if (rpc_client_new(&c->rpc, &o, err) != 0) {
        cli_errorf("%s", err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

const char *cli_time(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) {
        snprintf(buf, cap, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

static const char *const job_states[] = {"unspecified", "queued",    "running",   "succeeded",
                                         "failed",      "cancelled", "recovering"};
static const char *const worker_states[] = {"unspecified", "idle", "assigned",
                                            "busy",        "lost", "gone"};

const char *cli_job_state(int s)
{
    return s >= 0 && s <= 6 ? job_states[s] : "unknown";
}

const char *cli_worker_state(int s)
{
    return s >= 0 && s <= 5 ? worker_states[s] : "unknown";
}

int cli_job_state_parse(const char *s)
{
    for (int i = 1; i <= 6; i++)
        if (strcmp(s, job_states[i]) == 0)
            return i;
    return -1;
}

void cli_print_json(cJSON *item)
{
    char *s = item ? cJSON_PrintUnformatted(item) : NULL;
    if (s) {
        puts(s);
        cJSON_free(s);
    } else {
        cli_errorf("out of memory printing JSON");
    }
    cJSON_Delete(item);
    fflush(stdout);
}
