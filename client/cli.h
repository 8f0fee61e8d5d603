/* cli.h - the saturn CLI: shared state of one invocation, exit codes and
 * output helpers.
 *
 * main.c holds the one table of commands and the one table of options;
 * cmd_jobs.c and cmd_workers.c implement the commands; output.c prints
 * (human text or --json) and maps gRPC statuses to exit codes, in the one
 * place that does (cli_exit_from_status). EXITCODES.md documents them.
 */
#ifndef SATURN_CLI_H
#define SATURN_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/rpc/rpc.h"

#define CLI_MAX_ARGS 8
#define CLI_MAX_SETS 64
#define CLI_MAX_GRIDS 8 /* --grid axes of one sweep */
#define CLI_DEFAULT_ADDR "127.0.0.1:7070"
#define CLI_DEFAULT_TIMEOUT_MS 10000

/* Exit codes (EXITCODES.md). */
enum cli_exit {
    EXIT_OK = 0,
    EXIT_USAGE = 1,      /* bad command line */
    EXIT_NOT_FOUND = 2,  /* NOT_FOUND: unknown job or worker */
    EXIT_AUTH = 3,       /* UNAUTHENTICATED / PERMISSION_DENIED, or a bad token or TLS file */
    EXIT_INVALID = 4,    /* INVALID_ARGUMENT / OUT_OF_RANGE, or a spec refused locally */
    EXIT_UNAVAIL = 5,    /* UNAVAILABLE / DEADLINE_EXCEEDED: coordinator unreachable or slow */
    EXIT_SERVER = 6,     /* INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS, CANCELLED, ABORTED */
    EXIT_TOO_BIG = 7,    /* RESOURCE_EXHAUSTED: a size or count limit */
    EXIT_CONFLICT = 8,   /* FAILED_PRECONDITION / ALREADY_EXISTS: not valid in this state */
    EXIT_JOB_FAILED = 9, /* watch: the job ended failed or cancelled */
};

/* A spec field given as a flag (--wbits 4) or with --set key=value. */
struct cli_set {
    const char *key;
    const char *value;
};

struct cli {
    const char *cmd;
    const char *args[CLI_MAX_ARGS]; /* positional arguments after the command */
    int nargs;

    const char *addr;
    const char *token_file;
    char token[RPC_TOKEN_MAX];
    struct rpc_tls_files tls_files; /* --tls-ca (SATURN_TLS_CA), --tls-cert, --tls-key */
    struct rpc_tls tls;             /* loaded by cli_connect; freed by main */
    bool json;
    int timeout_ms;
    bool timeout_set; /* --timeout given (watch has no deadline otherwise) */

    /* submit */
    struct cli_set sets[CLI_MAX_SETS];
    int nsets;
    bool dry_run;
    bool no_local_check;
    /* list / workers / cancel / watch */
    bool all;
    int limit;
    int states[8]; /* --state filters, as job state numbers */
    int nstates;
    const char *reason;
    uint64_t after;
    /* export / run */
    const char *output; /* -o FILE */
    const char *format; /* safetensors | onnx */
    int threads;        /* run: math threads per worker (0 = ncpu / workers) */
    bool keep;          /* run: keep the private state dir */
    bool epochs;        /* status: also every finished epoch */
    /* sweep / run --grid */
    const char *grids[CLI_MAX_GRIDS]; /* --grid FIELD=V1,V2,... as given */
    int ngrids;
    int seeds;     /* --seeds N (0: not given) */
    bool markdown; /* --markdown: the table as Markdown */
    bool detach;   /* sweep: submit, print the id and return */

    struct rpc_client *rpc;
};

/* Creates cli->rpc from addr/token (reading the token file) and, with
 * --tls-ca, TLS (reading the TLS files). Returns an exit code (EXIT_OK on
 * success) after printing the problem. */
int cli_connect(struct cli *c);

/* Prints "saturn: <cmd>: <STATUS>: details" (with a hint for auth and
 * availability problems) and returns the exit code for the status. */
int cli_fail_status(const struct cli *c, const struct rpc_status *st);
int cli_exit_from_status(grpc_status_code code);

void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "2026-11-25 19:42:33Z" (UTC) or "-" for 0. */
const char *cli_time(int64_t ms, char *buf, size_t cap);
const char *cli_job_state(int s);    /* "queued", ... */
/* s with control characters escaped (sat_escape_ctl), for text output of
 * what saturnd or a peer chose: names, reasons, messages. The result lives
 * in one of CLI_ESC_SLOTS static buffers, reused in turn, so that one
 * printf may take that many. */
#define CLI_ESC_SLOTS 16
const char *cli_esc(const char *s);
const char *cli_worker_state(int s); /* "idle", ... */
/* Parses a job state name; -1 if unknown. */
int cli_job_state_parse(const char *s);

/* Prints a cJSON item (consumed) followed by a newline. */
struct cJSON;
void cli_print_json(struct cJSON *item);

/* Commands (cmd_jobs.c, cmd_workers.c). Each returns an exit code. */
int cmd_submit(struct cli *c);
int cmd_status(struct cli *c);
int cmd_list(struct cli *c);
int cmd_cancel(struct cli *c);
int cmd_watch(struct cli *c);
int cmd_workers(struct cli *c);
int cmd_export(struct cli *c);
int cmd_run(struct cli *c);
int cmd_sweep(struct cli *c);

/* The job spec of submit, run and sweep: the file `path` (NULL: the
 * defaults), then every field flag, validated. Returns EXIT_OK, or
 * EXIT_INVALID after printing the problem. */
struct job_spec;
int cli_spec_build(const struct cli *c, const char *path, struct job_spec *spec);

/* cmd_sweep.c: submits the sweep of base (--grid, --seeds; its id is
 * base->sweep, or a new one), follows it to the end and prints its table;
 * with --detach, only submits and prints the id. For `saturn sweep` and
 * `saturn run --grid` (connected). Returns an exit code: EXIT_JOB_FAILED
 * when a job did not succeed. */
int sweep_run(struct cli *c, struct job_spec *base);

/* ---- progress.c: training progress on the terminal and in JSON ---- */
struct Saturn__V1__JobProgress;
struct Saturn__V1__QuantStat;
/* The "metrics" object of status --json / watch --json. */
struct cJSON *cli_progress_json(const struct Saturn__V1__JobProgress *p);
/* Adds {name, kind, value} for each of quant (n) to the JSON array a. */
void cli_quant_json(struct cJSON *a, struct Saturn__V1__QuantStat *const *quant, size_t n);
/* Follows job_id's events until the job ends: event lines, and a live
 * progress bar when stdout is a terminal (plain progress lines at most
 * every few seconds otherwise; JSON lines with --json). *last_state is the
 * job's last state (JobState number). Returns EXIT_OK or an exit code for
 * a failed call. */
int cli_follow(struct cli *c, const char *job_id, int *last_state);

#endif
