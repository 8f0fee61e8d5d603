/* main.c - the saturn CLI: one table of commands, one table of options.
 *
 * Every flag is a row of `options` (name, argument, the commands it
 * applies to, help); every command a row of `commands` (name, arguments,
 * handler, help, examples). Parsing, validation and --help are all driven
 * by the two tables, so adding a flag is adding a row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "../common/util/log.h"

enum cmd_bit {
    CM_SUBMIT = 1u << 0,
    CM_STATUS = 1u << 1,
    CM_LIST = 1u << 2,
    CM_CANCEL = 1u << 3,
    CM_WATCH = 1u << 4,
    CM_WORKERS = 1u << 5,
    CM_RUN = 1u << 6,
    CM_EXPORT = 1u << 7,
    CM_SWEEP = 1u << 8,
    CM_ALL = 0x1ffu,
};

struct cmd_spec {
    const char *name;
    unsigned bit;
    int (*run)(struct cli *c); /* NULL: not available yet */
    int min_args, max_args;
    const char *args;
    const char *summary;
    const char *examples;
};

static const struct cmd_spec commands[] = {
    {"submit", CM_SUBMIT, cmd_submit, 0, 1, "[SPEC.json] [--FIELD VALUE]...",
     "submit a job from a spec file and/or spec fields given as flags",
     "  saturn submit examples/cnn-small-w4a4.json\n"
     "  saturn submit --model preresnet20 --dataset cifar10 --wbits 4 --abits 4 --workers 2\n"
     "  saturn submit spec.json --epochs 2 --priority 10 --json\n"
     "  saturn submit spec.json --dry-run           # validate, print the canonical spec\n"},
    {"status", CM_STATUS, cmd_status, 1, 1, "JOB",
     "show a job: state, reason, workers, times, spec and state history",
     "  saturn status job-3\n"
     "  saturn status job-3 --json | jq -r .state\n"
     "  saturn status job-3 --per-epoch # and every finished epoch: loss, accuracy, quantizers\n"},
    {"list", CM_LIST, cmd_list, 0, 0, "", "list jobs, newest first",
     "  saturn list\n"
     "  saturn list --state queued --state running --limit 20\n"
     "  saturn list --json\n"},
    {"cancel", CM_CANCEL, cmd_cancel, 1, 1, "JOB", "cancel a queued or running job",
     "  saturn cancel job-3\n"
     "  saturn cancel job-3 --reason \"wrong learning rate\"\n"},
    {"watch", CM_WATCH, cmd_watch, 1, 1, "JOB",
     "follow a job's events live until it ends (exit 0 succeeded, 9 failed/cancelled)",
     "  saturn watch job-3\n"
     "  saturn watch job-3 --json        # one JSON object per line\n"},
    {"workers", CM_WORKERS, cmd_workers, 0, 2, "[drain ID [--reason TEXT]]",
     "list registered workers and their leases, or drain one (it finishes its current step, "
     "hands its rank over and leaves)",
     "  saturn workers\n"
     "  saturn workers --all --json      # include lost and departed workers\n"
     "  saturn workers drain w-3 --reason \"node maintenance\"\n"},
    {"run", CM_RUN, cmd_run, 1, 1, "SPEC.json [--workers N] [--threads T] [--FIELD VALUE]...",
     "train a spec on a private saturnd and N workers on this machine, to the end",
     "  saturn run examples/cnn-small-w4a4.json --workers 2\n"
     "  saturn run examples/cnn-small-w4a4.json --epochs 1 --train_limit 6000 --json | tail -n 1\n"
     "  saturn run spec.json --workers 1 --threads 2 --keep   # keep the state dir and logs\n"
     "  saturn run spec.json --grid wbits=2,4 --seeds 2       # a sweep, then its table\n"},
    {"sweep", CM_SWEEP, cmd_sweep, 1, 2,
     "SPEC.json --grid FIELD=V1,V2,... [--grid ...] [--seeds N] | status ID | cancel ID",
     "submit a grid of jobs tagged with one sweep id, follow them, and print a table of their "
     "final metrics (docs/sweeps.md)",
     "  saturn sweep spec.json --grid wbits=2,4 --grid act_quant=pact,cgpact --seeds 2\n"
     "  saturn sweep spec.json --grid lr=0.05,0.1 --markdown     # the table as Markdown\n"
     "  saturn sweep spec.json --grid wbits=2,3,4 --detach --json  # submit only: {\"sweep\": ID}\n"
     "  saturn sweep status sw-20261125-194233-1a2b3c --json\n"
     "  saturn sweep cancel sw-20261125-194233-1a2b3c\n"},
    {"export", CM_EXPORT, cmd_export, 1, 1, "JOB -o FILE",
     "write a succeeded job's trained model (safetensors: latent weights, codes, scales, alphas, "
     "BN)",
     "  saturn export job-3 -o model.safetensors\n"
     "  saturn export job-3 -o model.safetensors --json\n"
     "  saturn export job-3 --format onnx -o model.onnx\n"},
};

enum opt_id {
    O_ADDR,
    O_TOKEN_FILE,
    O_TLS_CA,
    O_TLS_CERT,
    O_TLS_KEY,
    O_JSON,
    O_TIMEOUT,
    O_HELP,
    O_VERSION,
    O_DRY_RUN,
    O_NO_LOCAL_CHECK,
    O_SET,
    O_ALL,
    O_LIMIT,
    O_STATE,
    O_REASON,
    O_AFTER,
    O_OUTPUT,
    O_FORMAT,
    O_THREADS,
    O_KEEP,
    O_EPOCHS,
    O_GRID,
    O_SEEDS,
    O_MARKDOWN,
    O_DETACH,
    O_SPEC, /* a job spec field: the option's name is the field's name */
};

struct opt_spec {
    const char *name; /* long name, without "--" */
    enum opt_id id;
    const char *arg; /* argument name; NULL for a switch */
    unsigned cmds;   /* commands it applies to */
    const char *help;
};

#define SPEC_OPT(n, a, h)                                                                          \
    {                                                                                              \
        n, O_SPEC, a, CM_SUBMIT | CM_RUN | CM_SWEEP, h                                             \
    }

static const struct opt_spec options[] = {
    {"addr", O_ADDR, "HOST:PORT", CM_ALL,
     "coordinator address (env SATURN_ADDR; default " CLI_DEFAULT_ADDR ")"},
    {"token-file", O_TOKEN_FILE, "FILE", CM_ALL,
     "file holding the client token, or the viewer token for read-only commands (env "
     "SATURN_TOKEN_FILE)"},
    {"tls-ca", O_TLS_CA, "FILE", CM_ALL,
     "use TLS; verify saturnd's certificate with this PEM CA (env SATURN_TLS_CA)"},
    {"tls-cert", O_TLS_CERT, "FILE", CM_ALL,
     "client certificate (PEM) for a saturnd with --tls-client-ca; needs --tls-key"},
    {"tls-key", O_TLS_KEY, "FILE", CM_ALL, "the client certificate's private key (mode 0600)"},
    {"json", O_JSON, NULL, CM_ALL, "print JSON instead of text"},
    {"timeout", O_TIMEOUT, "MS", CM_ALL,
     "deadline of each call in milliseconds (default 10000; watch: none)"},
    {"help", O_HELP, NULL, CM_ALL, "show help (for a command: saturn CMD --help)"},
    {"version", O_VERSION, NULL, CM_ALL, "print the version"},
    {"dry-run", O_DRY_RUN, NULL, CM_SUBMIT,
     "have saturnd validate the spec and print it; store nothing"},
    {"no-local-check", O_NO_LOCAL_CHECK, NULL, CM_SUBMIT,
     "send the spec file as it is (no local parse; saturnd alone validates it)"},
    {"set", O_SET, "KEY=VALUE", CM_SUBMIT | CM_SWEEP, "set any spec field (same as --KEY VALUE)"},
    {"all", O_ALL, NULL, CM_WORKERS, "include lost and departed workers"},
    {"limit", O_LIMIT, "N", CM_LIST, "show at most N jobs (default 100, at most 1000)"},
    {"state", O_STATE, "STATE", CM_LIST,
     "only jobs in STATE (queued|running|recovering|succeeded|failed|cancelled); repeatable"},
    {"reason", O_REASON, "TEXT", CM_CANCEL | CM_WORKERS | CM_SWEEP,
     "why, recorded in the job's history (cancel) or the worker's log (workers drain)"},
    {"after", O_AFTER, "SEQ", CM_WATCH, "replay only events after event SEQ"},
    {"output", O_OUTPUT, "FILE", CM_EXPORT, "where to write the model (also -o FILE)"},
    {"format", O_FORMAT, "FORMAT", CM_EXPORT, "safetensors (default) or onnx"},
    {"threads", O_THREADS, "T", CM_RUN, "math threads per worker (default: CPUs / workers)"},
    {"keep", O_KEEP, NULL, CM_RUN, "keep the private state dir and logs (kept anyway on failure)"},
    {"per-epoch", O_EPOCHS, NULL, CM_STATUS,
     "also show every finished epoch (loss, accuracy, images/s, quantizers)"},
    {"grid", O_GRID, "FIELD=V1,V2,...", CM_SWEEP | CM_RUN,
     "a grid axis: one job per value (repeatable: the cross product)"},
    {"seeds", O_SEEDS, "N", CM_SWEEP | CM_RUN,
     "each grid point with seeds SEED..SEED+N-1 (1..100; the table gives mean and spread)"},
    {"markdown", O_MARKDOWN, NULL, CM_SWEEP | CM_RUN, "print the sweep's table as Markdown"},
    {"detach", O_DETACH, NULL, CM_SWEEP, "submit the sweep, print its id and return"},
    /* Job spec fields (docs/jobspec.md has ranges and defaults). */
    SPEC_OPT("name", "TEXT", "job name"),
    SPEC_OPT("model", "NAME", "mlp|cnn-small|preresnet20|mobilenetv1|mobilenetv2"),
    SPEC_OPT("dataset", "NAME", "fashion-mnist|mnist|cifar10|synthetic"),
    SPEC_OPT("data_dir", "DIR", "data set directory"),
    SPEC_OPT("train_limit", "N", "use the first N training images (0 = all)"),
    SPEC_OPT("test_limit", "N", "use the first N test images (0 = all)"),
    SPEC_OPT("wbits", "BITS", "weight bits: 2..8, or 32 = float"),
    SPEC_OPT("abits", "BITS", "activation bits: 2..8, or 32 = float"),
    SPEC_OPT("first_wbits", "BITS", "first layer's weight bits"),
    SPEC_OPT("last_wbits", "BITS", "last layer's weight bits"),
    SPEC_OPT("last_abits", "BITS", "last layer's input bits"),
    SPEC_OPT("clamp", "BOOL", "tanh-clamp float weights"),
    SPEC_OPT("sat", "MODE", "scale-adjusted training: off|last|all"),
    SPEC_OPT("sat_fan", "FAN", "in|out"),
    SPEC_OPT("act_quant", "KIND", "cgpact|pact"),
    SPEC_OPT("alpha_init_conv", "X", "initial PACT alpha of conv layers"),
    SPEC_OPT("alpha_init_fc", "X", "initial PACT alpha of FC layers"),
    SPEC_OPT("alpha_init", "HOW", "fixed|calibrate (from a percentile of the first batch)"),
    SPEC_OPT("alpha_percentile", "P", "percentile for alpha_init calibrate (99.9)"),
    SPEC_OPT("epochs", "N", "training epochs"),
    SPEC_OPT("batch_size", "N", "global batch size"),
    SPEC_OPT("lr", "X", "learning rate"),
    SPEC_OPT("momentum", "X", "SGD momentum"),
    SPEC_OPT("nesterov", "BOOL", "Nesterov momentum"),
    SPEC_OPT("weight_decay", "X", "weight decay"),
    SPEC_OPT("warmup_epochs", "X", "linear LR warm-up epochs"),
    SPEC_OPT("augment", "BOOL", "random crop + flip"),
    SPEC_OPT("seed", "N", "random seed"),
    SPEC_OPT("workers", "N", "gang size: workers the job needs at once (1..256)"),
    SPEC_OPT("consistency", "C", "bsp|ssp:S|asp"),
    SPEC_OPT("checkpoint_every", "STEPS", "checkpoint period (0 = epoch ends)"),
    SPEC_OPT("init_from", "PATH", "initial checkpoint or job id"),
    SPEC_OPT("priority", "P", "-1000..1000, higher is scheduled first"),
    SPEC_OPT("sweep", "ID", "the sweep id ([A-Za-z0-9._-], at most 31; saturn sweep sets one)"),
    SPEC_OPT("recover_timeout_s", "S", "how long a lost worker's rank waits for another (600)"),
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])
#define NOPTIONS (sizeof options / sizeof options[0])

static const char exit_codes_text[] =
    "exit codes:\n"
    "  0 success            1 usage error          2 not found\n"
    "  3 unauthenticated    4 invalid spec/argument  5 coordinator unavailable/timeout\n"
    "  6 server error       7 too large/limit      8 not valid in the job's state\n"
    "  9 watched job ended failed or cancelled     (details: client/EXITCODES.md)\n";

/* Lists the options of the commands in `bits`: the common ones (CM_ALL)
 * or a command's own ones; spec fields apart. */
static void help_options(FILE *f, unsigned bits, bool spec)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct opt_spec *o = &options[i];
        bool common = o->cmds == CM_ALL;
        if ((bits == CM_ALL) != common || !(o->cmds & bits) || (o->id == O_SPEC) != spec)
            continue;
        char lhs[64];
        snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-28s %s\n", lhs, o->help);
    }
}

static void help_main(FILE *f)
{
    fprintf(f, "usage: saturn COMMAND [ARGS] [OPTIONS]\n\n"
               "Talks to a running saturnd (see docs/control-plane.md).\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].run)
            fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions for every command:\n");
    help_options(f, CM_ALL, false);
    fprintf(f, "\nA job trains on its workers through saturnd's parameter server; `saturn run`\n"
               "starts a private saturnd and workers on this machine for one job\n"
               "(docs/training.md).\n\nexamples:\n");
    fprintf(f, "  export SATURN_ADDR=127.0.0.1:7070 SATURN_TOKEN_FILE=/var/lib/saturn/token\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].run)
            fputs(commands[i].examples, f);
    fprintf(f, "\n%s", exit_codes_text);
}

static void help_cmd(FILE *f, const struct cmd_spec *cmd)
{
    fprintf(f, "usage: saturn %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
    if (!cmd->run) {
        fprintf(f, "\nNot available in this version.\n");
        return;
    }
    bool any = false;
    for (size_t i = 0; i < NOPTIONS; i++)
        any |= (options[i].cmds & cmd->bit) && options[i].cmds != CM_ALL && options[i].id != O_SPEC;
    if (any) {
        fprintf(f, "\noptions:\n");
        help_options(f, cmd->bit, false);
    }
    if (cmd->bit == CM_SUBMIT || cmd->bit == CM_RUN || cmd->bit == CM_SWEEP) {
        fprintf(f, "\njob spec fields as flags (applied after SPEC.json; docs/jobspec.md):\n");
        help_options(f, cmd->bit, true);
    }
    if (cmd->bit == CM_RUN)
        fprintf(f, "\nThe private saturnd and its workers talk plaintext gRPC on 127.0.0.1 only,\n"
                   "with the token saturnd generates: --addr, --token-file, --tls-ca,\n"
                   "--tls-cert, --tls-key and SATURN_TLS_CA are not used.\n");
    fprintf(f, "\ncommon options: --addr, --token-file, --tls-ca, --json, --timeout, --help\n");
    fprintf(f, "\nexamples:\n%s\n%s", cmd->examples, exit_codes_text);
}

static const struct cmd_spec *find_cmd(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static const struct opt_spec *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Applies one option. Returns -1 to go on, else an exit code. */
static int apply_opt(struct cli *c, const struct opt_spec *o, const char *val, bool *help)
{
    long v;
    switch (o->id) {
    case O_ADDR:
        c->addr = val;
        break;
    case O_TOKEN_FILE:
        c->token_file = val;
        break;
    case O_TLS_CA:
    case O_TLS_CERT:
    case O_TLS_KEY:
        rpc_tls_files_set(&c->tls_files, o->name, val);
        break;
    case O_JSON:
        c->json = true;
        break;
    case O_TIMEOUT:
        if (parse_int(val, 1, 3600000, &v) != 0) {
            cli_errorf("--timeout %s: expected milliseconds, 1..3600000", val);
            return EXIT_USAGE;
        }
        c->timeout_ms = (int)v;
        c->timeout_set = true;
        break;
    case O_HELP:
        *help = true;
        break;
    case O_VERSION:
        printf("saturn %s\n", SATURN_VERSION);
        return EXIT_OK;
    case O_DRY_RUN:
        c->dry_run = true;
        break;
    case O_NO_LOCAL_CHECK:
        c->no_local_check = true;
        break;
    case O_ALL:
        c->all = true;
        break;
    case O_LIMIT:
        if (parse_int(val, 1, 1000, &v) != 0) {
            cli_errorf("--limit %s: expected 1..1000", val);
            return EXIT_USAGE;
        }
        c->limit = (int)v;
        break;
    case O_STATE:
        if (cli_job_state_parse(val) < 0) {
            cli_errorf("--state %s: expected "
                       "queued|running|recovering|succeeded|failed|cancelled",
                       val);
            return EXIT_USAGE;
        }
        if (c->nstates == (int)(sizeof c->states / sizeof c->states[0])) {
            cli_errorf("--state given too often");
            return EXIT_USAGE;
        }
        c->states[c->nstates++] = cli_job_state_parse(val);
        break;
    case O_REASON:
        c->reason = val;
        break;
    case O_AFTER:
        if (parse_int(val, 0, 0x7fffffffL, &v) != 0) {
            cli_errorf("--after %s: expected an event sequence number", val);
            return EXIT_USAGE;
        }
        c->after = (uint64_t)v;
        break;
    case O_OUTPUT:
        c->output = val;
        break;
    case O_FORMAT:
        c->format = val;
        break;
    case O_THREADS:
        if (parse_int(val, 1, 1024, &v) != 0) {
            cli_errorf("--threads %s: expected 1..1024", val);
            return EXIT_USAGE;
        }
        c->threads = (int)v;
        break;
    case O_KEEP:
        c->keep = true;
        break;
    case O_EPOCHS:
        c->epochs = true;
        break;
    case O_GRID:
        if (c->ngrids == CLI_MAX_GRIDS) {
            cli_errorf("--grid given more than %d times", CLI_MAX_GRIDS);
            return EXIT_USAGE;
        }
        c->grids[c->ngrids++] = val;
        break;
    case O_SEEDS:
        if (parse_int(val, 1, 100, &v) != 0) {
            cli_errorf("--seeds %s: expected 1..100", val);
            return EXIT_USAGE;
        }
        c->seeds = (int)v;
        break;
    case O_MARKDOWN:
        c->markdown = true;
        break;
    case O_DETACH:
        c->detach = true;
        break;
    case O_SET:
    case O_SPEC: {
        if (c->nsets == CLI_MAX_SETS) {
            cli_errorf("too many spec fields (at most %d)", CLI_MAX_SETS);
            return EXIT_USAGE;
        }
        struct cli_set *s = &c->sets[c->nsets++];
        if (o->id == O_SPEC) {
            s->key = o->name;
            s->value = val;
        } else {
            const char *eq = strchr(val, '=');
            if (!eq || eq == val) {
                cli_errorf("--set %s: expected KEY=VALUE", val);
                return EXIT_USAGE;
            }
            /* key points into argv: cut it there (argv is ours to edit). */
            *(char *)eq = 0;
            s->key = val;
            s->value = eq + 1;
        }
        break;
    }
    }
    return -1;
}

int main(int argc, char **argv)
{
    sat_log_set_component("saturn");
    sat_log_set_level(SAT_LOG_WARN);
    struct cli c;
    memset(&c, 0, sizeof c);
    c.timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    const char *env = getenv("SATURN_ADDR");
    c.addr = env && *env ? env : CLI_DEFAULT_ADDR;
    env = getenv("SATURN_TOKEN_FILE");
    c.token_file = env && *env ? env : NULL;
    env = getenv("SATURN_TLS_CA");
    c.tls_files.ca = env && *env ? env : NULL;

    const struct cmd_spec *cmd = NULL;
    const struct opt_spec *used[128];
    int nused = 0;
    bool help = false, dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (!dashdash && (strcmp(a, "-h") == 0)) {
            help = true;
            continue;
        }
        if (!dashdash && strcmp(a, "-o") == 0)
            a = "--output"; /* the one short option with an argument */
        if (!dashdash && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct opt_spec *o = find_opt(name, len);
            if (!o) {
                cli_errorf("unknown option --%.*s (see saturn --help)", (int)len, name);
                return EXIT_USAGE;
            }
            const char *val = NULL;
            if (o->arg) {
                if (eq)
                    val = eq + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else {
                    cli_errorf("--%s needs an argument (%s)", o->name, o->arg);
                    return EXIT_USAGE;
                }
            } else if (eq) {
                cli_errorf("--%s takes no argument", o->name);
                return EXIT_USAGE;
            }
            int ex = apply_opt(&c, o, val, &help);
            if (ex >= 0)
                return ex;
            if (nused == (int)(sizeof used / sizeof used[0])) {
                cli_errorf("too many options");
                return EXIT_USAGE;
            }
            used[nused++] = o;
            continue;
        }
        if (!dashdash && a[0] == '-' && a[1]) {
            cli_errorf("unknown option %s (see saturn --help)", a);
            return EXIT_USAGE;
        }
        if (!cmd) {
            if (strcmp(a, "help") == 0) {
                help = true;
                continue;
            }
            cmd = find_cmd(a);
            if (!cmd) {
                cli_errorf("unknown command \"%s\" (see saturn --help)", a);
                return EXIT_USAGE;
            }
            c.cmd = cmd->name;
            continue;
        }
        if (c.nargs == CLI_MAX_ARGS) {
            cli_errorf("too many arguments");
            return EXIT_USAGE;
        }
        c.args[c.nargs++] = a;
    }
    if (help) {
        if (cmd)
            help_cmd(stdout, cmd);
        else
            help_main(stdout);
        return EXIT_OK;
    }
    if (!cmd) {
        help_main(stderr);
        return EXIT_USAGE;
    }
    for (int i = 0; i < nused; i++)
        if (!(used[i]->cmds & cmd->bit)) {
            cli_errorf("%s: option --%s does not apply (see saturn %s --help)", cmd->name,
                       used[i]->name, cmd->name);
            return EXIT_USAGE;
        }
    if (!cmd->run) {
        cli_errorf("%s is not available in this build",
                   cmd->name);
        return EXIT_USAGE;
    }
    if (c.nargs < cmd->min_args || c.nargs > cmd->max_args) {
        cli_errorf("usage: saturn %s %s", cmd->name, cmd->args);
        return EXIT_USAGE;
    }
    /* `run` forks saturnd and the workers first: it calls rpc_init itself. */
    if (cmd->bit != CM_RUN)
        rpc_init();
    int ex = cmd->run(&c);
    rpc_client_free(c.rpc);
    rpc_tls_free(&c.tls);
    rpc_shutdown();
    return ex;
}
