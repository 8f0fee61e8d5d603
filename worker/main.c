/* main.c - saturn-worker: flags and signals; the work is in session.c.
 *
 * SIGINT/SIGTERM: a handler writes the signal number into a pipe (the only
 * thing it does, async-signal-safe), and one thread reading the pipe sets
 * the session's quit flag; the session then stops its runner, tells the
 * coordinator it leaves, and main returns 0. A handler rather than blocked
 * signals + sigwait, because libraries start threads before main (OpenBLAS
 * does, in a constructor) and a process-directed signal may be delivered
 * to any of them: with a handler, whichever thread takes it only writes
 * to the pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session.h"

#include "../common/nn/threads.h"
#include "../common/rpc/rpc.h"
#include "../common/util/file.h"
#include "../common/util/log.h"
#include "../common/util/xalloc.h"

static const char usage_text[] =
    "usage: saturn-worker [options]\n"
    "\n"
    "Joins a saturnd: registers, holds a lease by heartbeating every second,\n"
    "receives and acknowledges assignments, and reconnects with capped\n"
    "exponential backoff (0.25 s .. 8 s) when the coordinator goes away.\n"
    "An assignment is trained: the worker fetches its shard of the data set from\n"
    "saturnd, then loops pull parameters -> forward/backward -> push gradients,\n"
    "reports metrics, evaluates its part of the test set at each epoch end, and\n"
    "goes back to idle (keeping its lease) when the job ends.\n"
    "\n"
    "options:\n"
    "  --coordinator ADDR   saturnd address (env SATURN_ADDR; default 127.0.0.1:7070)\n"
    "  --token-file F       the worker token file (saturnd's --worker-token-file,\n"
    "                       STATE_DIR/worker-token by default; env SATURN_TOKEN_FILE)\n"
    "  --tls-ca FILE        connect over TLS, verifying saturnd's certificate with this\n"
    "                       PEM CA (env SATURN_TLS_CA)\n"
    "  --tls-cert FILE      client certificate (PEM) for a saturnd with --tls-client-ca;\n"
    "                       needs --tls-key and --tls-ca\n"
    "  --tls-key FILE       the client certificate's private key (PEM, mode 0600)\n"
    "  --threads N          math threads (OpenMP) the engine uses, 1..1024 (default:\n"
    "                       the CPUs it may use: affinity, cgroup CPU quota)\n"
    "  --name NAME          shown by `saturn workers` (default HOSTNAME-PID)\n"
    "  --log-level L        debug|info|warn|error (default info)\n"
    "  --log-format F       text|json (default text)\n"
    "  --version            print the version\n"
    "  -h, --help           this text\n"
    "\n"
    "exit status: 0 stopped by SIGINT/SIGTERM, 1 usage or fatal error,\n"
    "3 the coordinator refused the token.\n"
    "\n"
    "example:\n"
    "  saturn-worker --coordinator 10.0.0.5:7070 --token-file /etc/saturn/worker-token --threads "
    "2\n"
    "  saturn-worker --coordinator saturnd:7070 --tls-ca ca.crt --token-file worker-token  # TLS\n";

enum {
    OPT_COORD = 256,
    OPT_TOKEN,
    OPT_TLS_CA,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_THREADS,
    OPT_NAME,
    OPT_LEVEL,
    OPT_FORMAT,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"coordinator", required_argument, NULL, OPT_COORD},
    {"token-file", required_argument, NULL, OPT_TOKEN},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"name", required_argument, NULL, OPT_NAME},
    {"log-level", required_argument, NULL, OPT_LEVEL},
    {"log-format", required_argument, NULL, OPT_FORMAT},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void)w;
    errno = e;
}

/* Waits for a signal (or the 0 byte main writes at exit). */
static void *sig_main(void *arg)
{
    struct run_ctl *quit = arg;
    unsigned char b = 0;
    size_t got = 0;
    sat_file_read_full(sig_pipe[0], "signal pipe", &b, 1, &got, NULL);
    if (got == 1 && b != 0)
        log_info("%s received: shutting down", b == SIGINT ? "SIGINT" : "SIGTERM");
    run_ctl_set_stop(quit, true);
    return NULL;
}

int main(int argc, char **argv)
{
    sat_log_set_component("saturn-worker");
    const char *env = getenv("SATURN_ADDR");
    const char *coord = env && *env ? env : "127.0.0.1:7070";
    env = getenv("SATURN_TOKEN_FILE");
    const char *token_file = env && *env ? env : NULL;
    env = getenv("SATURN_TLS_CA");
    struct rpc_tls_files tls_files = {.ca = env && *env ? env : NULL};
    unsigned threads = (unsigned)nn_cpus_available(); /* affinity and cgroup quota */
    char name[64];
    char host[48] = "worker";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    for (char *p = host; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
            *p = '-';
    snprintf(name, sizeof name, "%s-%ld", host, (long)getpid());
    const char *name_arg = name;

    int opt, li = 0;
    while ((opt = getopt_long(argc, argv, "h", long_opts, &li)) != -1) {
        char *end;
        enum sat_log_level lvl;
        enum sat_log_format fmt;
        switch (opt) {
        case OPT_COORD:
            coord = optarg;
            break;
        case OPT_TOKEN:
            token_file = optarg;
            break;
        case OPT_TLS_CA:
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
            rpc_tls_files_set(&tls_files, long_opts[li].name, optarg);
            break;
        case OPT_THREADS: {
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > 1024) {
                fprintf(stderr, "saturn-worker: --threads %s: expected 1..1024\n", optarg);
                return 1;
            }
            threads = (unsigned)v;
            break;
        }
        case OPT_NAME:
            name_arg = optarg;
            break;
        case OPT_LEVEL:
            if (sat_log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "saturn-worker: --log-level %s: expected debug|info|warn|error\n",
                        optarg);
                return 1;
            }
            sat_log_set_level(lvl);
            break;
        case OPT_FORMAT:
            if (sat_log_parse_format(optarg, &fmt) != 0) {
                fprintf(stderr, "saturn-worker: --log-format %s: expected text|json\n", optarg);
                return 1;
            }
            sat_log_set_format(fmt);
            break;
        case OPT_VERSION:
            printf("saturn-worker %s\n", SATURN_VERSION);
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs("saturn-worker: see saturn-worker --help\n", stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "saturn-worker: unexpected argument \"%s\"\n", argv[optind]);
        return 1;
    }
    char token[RPC_TOKEN_MAX] = "";
    char err[SAT_ERR_LEN];
    if (token_file && rpc_token_load(token_file, token, err) != 0) {
        log_error("%s", err);
        return 3;
    }
    if (!token_file)
        log_warn("no --token-file or SATURN_TOKEN_FILE: calling without a bearer token");
    struct rpc_tls tls;
    if (rpc_tls_load(&tls, &tls_files, err) != 0) {
        log_error("%s", err);
        return 1;
    }

    struct run_ctl quit;
    if (run_ctl_init(&quit) != 0)
        return 1;
    if (pipe2(sig_pipe, O_CLOEXEC) != 0) {
        log_error("cannot create the signal pipe: %s", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_t sig_thread;
    if (pthread_create(&sig_thread, NULL, sig_main, &quit) != 0) {
        log_error("cannot start the signal thread");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    sat_tune_malloc(); /* parameter-sized buffers move every step: reuse, don't refault */
    rpc_init();
    struct session_opts so = {
        .coordinator = coord,
        .token = token_file ? token : NULL,
        .tls = &tls,
        .name = name_arg,
        .threads = threads,
        .version = SATURN_VERSION,
    };
    int status = session_run(&so, &quit);
    rpc_shutdown();
    rpc_tls_free(&tls);

    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    unsigned char zero = 0; /* releases the signal thread if no signal did */
    if (write(sig_pipe[1], &zero, 1) != 1)
        log_warn("cannot release the signal thread");
    pthread_join(sig_thread, NULL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    run_ctl_destroy(&quit);
    log_info("stopped (status %d)", status);
    return status;
}
