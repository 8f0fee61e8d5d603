/* main.c - saturnd: flags, start-up, signals and the shutdown order.
 *
 * Start-up: parse flags -> state dir made 0700 and locked -> the three
 * role tokens (auth.c; generated in the state dir when their flag is not
 * given; SIGHUP re-reads them) -> TLS files (with
 * --tls-cert) -> open the store and load jobs (coord_init) -> start the
 * RPC server -> with --http, the HTTP server (http.c; HTTPS with the same
 * certificate under TLS) -> write the port files -> run the loop.
 * Shutdown on SIGINT/SIGTERM: the coordinator stops (watch streams end,
 * lease timer closes), the RPC server stops accepting, lets running calls
 * finish for a grace period and tears gRPC down; meanwhile /healthz says
 * 503, and once the RPC server is gone the HTTP server closes; when the
 * loop has no handle left, the store is closed (WAL checkpointed) and gRPC
 * shut down.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "lifecycle.h"
#include "rpc_dispatch.h"
#include "web/http.h"

#include "../common/util/file.h"
#include "../common/util/log.h"
#include "../common/util/xalloc.h"

#define DEFAULT_LISTEN "127.0.0.1:7070"
#define DEFAULT_STATE_DIR "saturn-state"
#define DEFAULT_LEASE_MS 5000
#define SHUTDOWN_GRACE_MS 2000

struct daemon {
    uv_loop_t loop;
    struct coord coord;
    struct rpc_server *rpc;
    struct http_server *http; /* --http, else NULL */
    struct auth auth;
    uv_signal_t sigint, sigterm, sighup;
    int lock_fd;
};

static const char usage_text[] =
    "usage: saturnd [options]\n"
    "\n"
    "Saturn's coordinator: keeps jobs (SQLite, WAL) in the state dir, schedules\n"
    "them onto registered saturn-workers (gang start: priority, then submission\n"
    "order) and holds the workers' leases.\n"
    "\n"
    "A running job trains on its workers through saturnd's parameter server\n"
    "(pull -> forward/backward -> push); saturnd streams them the data set,\n"
    "keeps metrics and checkpoints in the state dir (jobs/<id>/) and writes\n"
    "jobs/<id>/model.safetensors when the job succeeds (docs/training.md).\n"
    "\n"
    "options:\n"
    "  --listen ADDR            address to serve gRPC on (default " DEFAULT_LISTEN ");\n"
    "                           port 0 picks a free port (see --port-file)\n"
    "  --state-dir DIR          database, lock and generated token (default ./" DEFAULT_STATE_DIR
    ")\n"
    "  --token-file F           the client token (submit, cancel, everything); without it\n"
    "                           DIR/token is used, generated (mode 0600) if missing\n"
    "  --viewer-token-file F    the read-only token (get, list, watch, workers, export,\n"
    "                           the dashboard); default DIR/viewer-token, generated\n"
    "  --worker-token-file F    the workers' token (Worker and ParameterServer services\n"
    "                           only); default DIR/worker-token, generated. Token files\n"
    "                           must be mode 0600 (0640 if root owns them) and hold at\n"
    "                           least 32 characters; SIGHUP re-reads all three\n"
    "  --no-auth                accept calls without a token (development only; loopback\n"
    "                           listen addresses only)\n"
    "  --metrics-auth           /metrics needs the viewer or client token too\n"
    "  --lease-ms N             worker lease: silent this long -> lost (default 5000,\n"
    "                           500..600000); workers heartbeat every 1000 ms\n"
    "  --max-message-bytes N    cap on every gRPC message, both ways (default 67108864)\n"
    "  --port-file F            write the bound port to F once listening\n"
    "  --http ADDR              also serve HTTP on ADDR (e.g. 127.0.0.1:9090; port 0 picks\n"
    "                           a free port): GET /healthz, /metrics (Prometheus text\n"
    "                           format) and a dashboard at / (jobs, workers, charts).\n"
    "                           The dashboard needs the viewer or client token (Bearer,\n"
    "                           or HTTP Basic with the token as password); /healthz and\n"
    "                           /metrics (unless --metrics-auth) are open\n"
    "  --http-port-file F       write the bound HTTP port to F once listening\n"
    "  --tls-cert FILE          serve gRPC (and --http) over TLS with this PEM certificate\n"
    "                           chain; needs --tls-key\n"
    "  --tls-key FILE           the certificate's PEM private key, unencrypted, mode 0600\n"
    "                           (0640 if root owns it)\n"
    "  --tls-client-ca FILE     require client certificates signed by this PEM CA (mutual\n"
    "                           TLS; workers pass --tls-cert/--tls-key); bearer tokens\n"
    "                           are still checked\n"
    "  --data-root DIR          a directory data sets are read from (repeatable; default\n"
    "                           /usr/share/datasets): a spec's data_dir is a name under a\n"
    "                           root (\"fashion-mnist\") or a path inside one; \"\" means the\n"
    "                           data set's own directory in the first root that has it\n"
    "  --import-dir DIR         where a spec's init_from file names are looked up (plain\n"
    "                           names, links not followed; default STATE_DIR/imports);\n"
    "                           init_from may also be the id of a job that succeeded\n"
    "  --shard-floats N         parameter-server shard size in float32 values (default\n"
    "                           1048576 = 4 MiB; a pull or push carries one shard)\n"
    "  --log-level L            debug|info|warn|error (default info)\n"
    "  --log-format F           text|json (default text)\n"
    "  --version                print the version and exit\n"
    "  -h, --help               this text\n"
    "\n"
    "A restarted saturnd re-queues the jobs that were running when it died\n"
    "(reason \"coordinator restarted while the job was running\"), at most 3 starts\n"
    "per job; workers re-register by themselves.\n"
    "\n"
    "examples:\n"
    "  saturnd --state-dir /var/lib/saturn --listen 0.0.0.0:7070\n"
    "  saturnd --state-dir /tmp/s --listen 127.0.0.1:0 --port-file /tmp/s/port --lease-ms 2000\n"
    "  saturnd --state-dir /var/lib/saturn --listen 0.0.0.0:7070 --http 0.0.0.0:9090\n"
    "  saturnd --listen 0.0.0.0:7070 --tls-cert tls.crt --tls-key tls.key  # docs/security.md\n";

enum {
    OPT_LISTEN = 256,
    OPT_STATE_DIR,
    OPT_TOKEN_FILE,
    OPT_VIEWER_TOKEN_FILE,
    OPT_WORKER_TOKEN_FILE,
    OPT_NO_AUTH,
    OPT_METRICS_AUTH,
    OPT_LEASE_MS,
    OPT_MAX_MSG,
    OPT_PORT_FILE,
    OPT_HTTP,
    OPT_HTTP_PORT_FILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CLIENT_CA,
    OPT_SHARD_FLOATS,
    OPT_DATA_ROOT,
    OPT_IMPORT_DIR,
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_VERSION,
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"viewer-token-file", required_argument, NULL, OPT_VIEWER_TOKEN_FILE},
    {"worker-token-file", required_argument, NULL, OPT_WORKER_TOKEN_FILE},
    {"no-auth", no_argument, NULL, OPT_NO_AUTH},
    {"metrics-auth", no_argument, NULL, OPT_METRICS_AUTH},
    {"lease-ms", required_argument, NULL, OPT_LEASE_MS},
    {"max-message-bytes", required_argument, NULL, OPT_MAX_MSG},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"http", required_argument, NULL, OPT_HTTP},
    {"http-port-file", required_argument, NULL, OPT_HTTP_PORT_FILE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"shard-floats", required_argument, NULL, OPT_SHARD_FLOATS},
    {"data-root", required_argument, NULL, OPT_DATA_ROOT},
    {"import-dir", required_argument, NULL, OPT_IMPORT_DIR},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct flags {
    const char *listen, *state_dir, *port_file;
    const char *token_files[RPC_NROLES]; /* client, viewer, worker; NULL = default */
    const char *http, *http_port_file;
    struct rpc_tls_files tls;
    bool no_auth, metrics_auth;
    unsigned lease_ms;
    size_t max_msg;
    size_t shard_floats;
    const char *data_roots[COORD_MAX_DATA_ROOTS];
    int ndata_roots;
    const char *import_dir;
};

static int parse_uint(const char *s, unsigned long long lo, unsigned long long hi,
                      unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return SAT_ERANGE;
    *out = v;
    return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_flags(int argc, char **argv, struct flags *f)
{
    f->listen = DEFAULT_LISTEN;
    f->state_dir = DEFAULT_STATE_DIR;
    f->lease_ms = DEFAULT_LEASE_MS;
    f->max_msg = RPC_DEFAULT_MAX_MSG;
    f->tls.server = true;
    int opt, li = 0;
    unsigned long long v;
    enum sat_log_level lvl;
    enum sat_log_format fmt;
    while ((opt = getopt_long(argc, argv, "h", long_opts, &li)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            f->listen = optarg;
            break;
        case OPT_STATE_DIR:
            f->state_dir = optarg;
            break;
        case OPT_TOKEN_FILE:
            f->token_files[RPC_ROLE_CLIENT] = optarg;
            break;
        case OPT_VIEWER_TOKEN_FILE:
            f->token_files[RPC_ROLE_VIEWER] = optarg;
            break;
        case OPT_WORKER_TOKEN_FILE:
            f->token_files[RPC_ROLE_WORKER] = optarg;
            break;
        case OPT_NO_AUTH:
            f->no_auth = true;
            break;
        case OPT_METRICS_AUTH:
            f->metrics_auth = true;
            break;
        case OPT_SHARD_FLOATS:
            if (parse_uint(optarg, 1024, 1u << 26, &v) != 0) {
                fprintf(stderr, "saturnd: --shard-floats %s: expected 1024..67108864\n", optarg);
                return 1;
            }
            f->shard_floats = (size_t)v;
            break;
        case OPT_DATA_ROOT:
            if (f->ndata_roots == COORD_MAX_DATA_ROOTS) {
                fprintf(stderr, "saturnd: at most %d --data-root flags\n", COORD_MAX_DATA_ROOTS);
                return 1;
            }
            f->data_roots[f->ndata_roots++] = optarg;
            break;
        case OPT_IMPORT_DIR:
            f->import_dir = optarg;
            break;
        case OPT_PORT_FILE:
            f->port_file = optarg;
            break;
        case OPT_HTTP:
            f->http = optarg;
            break;
        case OPT_HTTP_PORT_FILE:
            f->http_port_file = optarg;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
        case OPT_TLS_CLIENT_CA:
            rpc_tls_files_set(&f->tls, long_opts[li].name, optarg);
            break;
        case OPT_LEASE_MS:
            if (parse_uint(optarg, 500, 600000, &v) != 0) {
                fprintf(stderr, "saturnd: --lease-ms %s: expected 500..600000\n", optarg);
                return 1;
            }
            f->lease_ms = (unsigned)v;
            break;
        case OPT_MAX_MSG:
            if (parse_uint(optarg, RPC_MIN_MAX_MSG, INT32_MAX, &v) != 0) {
                fprintf(stderr, "saturnd: --max-message-bytes %s: expected %u..%d\n", optarg,
                        RPC_MIN_MAX_MSG, INT32_MAX);
                return 1;
            }
            f->max_msg = (size_t)v;
            break;
        case OPT_LOG_LEVEL:
            if (sat_log_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "saturnd: --log-level %s: expected debug|info|warn|error\n",
                        optarg);
                return 1;
            }
            sat_log_set_level(lvl);
            break;
        case OPT_LOG_FORMAT:
            if (sat_log_parse_format(optarg, &fmt) != 0) {
                fprintf(stderr, "saturnd: --log-format %s: expected text|json\n", optarg);
                return 1;
            }
            sat_log_set_format(fmt);
            break;
        case OPT_VERSION:
            printf("saturnd %s\n", SATURN_VERSION);
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs("saturnd: see saturnd --help\n", stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "saturnd: unexpected argument \"%s\"; see saturnd --help\n", argv[optind]);
        return 1;
    }
    if (f->http_port_file && !f->http) {
        fputs("saturnd: --http-port-file needs --http\n", stderr);
        return 1;
    }
    return -1;
}

/* ==== state dir: lock, token, port file ==================================== */

static int lock_state_dir(const char *dir, int *fd_out)
{
    char err[SAT_ERR_LEN];
    int rc = auth_state_dir(dir, err);
    if (rc != 0) {
        log_error("%s", err);
        return rc;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/saturnd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return SAT_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        log_error("state dir %s is in use by another saturnd (%s is locked)", dir, path);
        close(fd);
        return SAT_EEXIST;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)n) != n)
        log_warn("cannot write the pid into %s", path);
    *fd_out = fd;
    return 0;
}

static int write_port_file(const char *path, int port)
{
    char buf[32], err[SAT_ERR_LEN];
    int n = snprintf(buf, sizeof buf, "%d\n", port);
    return sat_file_write_atomic(path, buf, (size_t)n, 0644, err);
}

/* ==== signals and shutdown ================================================= */

static void on_rpc_stopped(void *arg)
{
    struct daemon *d = arg;
    d->rpc = NULL;
    log_info("rpc server stopped");
    /* Last: /healthz answered 503 during the grace period. */
    if (d->http) {
        http_server_stop(d->http);
        d->http = NULL;
        log_info("http server stopped");
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->coord.stopping)
        return;
    log_info("%s received: shutting down (grace %d ms)", signum == SIGINT ? "SIGINT" : "SIGTERM",
             SHUTDOWN_GRACE_MS);
    uv_signal_stop(&d->sigint);
    uv_signal_stop(&d->sigterm);
    uv_signal_stop(&d->sighup);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    coord_stop(&d->coord);
    rpc_server_stop(d->rpc, SHUTDOWN_GRACE_MS, on_rpc_stopped, d);
}

/* SIGHUP: re-read the token files; the old tokens stop working at once. */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct daemon *d = h->data;
    if (d->auth.off || d->coord.stopping)
        return;
    char err[SAT_ERR_LEN];
    if (auth_reload(&d->auth, err) != 0) {
        log_error("SIGHUP: tokens not changed: %s", err);
        return;
    }
    if (rpc_server_set_tokens(d->rpc, d->auth.token[RPC_ROLE_CLIENT],
                              d->auth.token[RPC_ROLE_VIEWER],
                              d->auth.token[RPC_ROLE_WORKER]) != 0) {
        log_error("SIGHUP: out of memory: the RPC server keeps the old tokens");
        return;
    }
    log_info("SIGHUP: re-read the token files (%s, %s, %s)", d->auth.path[RPC_ROLE_CLIENT],
             d->auth.path[RPC_ROLE_VIEWER], d->auth.path[RPC_ROLE_WORKER]);
}

int main(int argc, char **argv)
{
    sat_log_set_component("saturnd");
    struct flags f = {0};
    int ex = parse_flags(argc, argv, &f);
    if (ex >= 0)
        return ex;
    signal(SIGPIPE, SIG_IGN);
    sat_tune_malloc();

    struct daemon *d = sat_calloc(1, sizeof *d);
    if (!d) {
        log_error("out of memory");
        return 1;
    }
    d->lock_fd = -1;
    int status = 1;
    char err[SAT_ERR_LEN] = "";
    struct rpc_tls tls = {0};
    if (f.no_auth && (auth_loopback_only(f.listen, "--listen", err) != 0 ||
                      (f.http && auth_loopback_only(f.http, "--http", err) != 0))) {
        log_error("%s", err);
        goto out_free;
    }
    if (lock_state_dir(f.state_dir, &d->lock_fd) != 0)
        goto out_free;
    d->auth.off = f.no_auth;
    d->auth.metrics_auth = f.metrics_auth;
    if (f.no_auth) {
        log_warn("authentication is OFF (--no-auth): anyone who reaches %s can use it", f.listen);
    } else {
        if (auth_load(&d->auth, f.state_dir, f.token_files, err) != 0) {
            log_error("%s", err);
            goto out_free;
        }
        log_info("tokens: client %s, viewer %s, worker %s (SIGHUP re-reads them)",
                 d->auth.path[RPC_ROLE_CLIENT], d->auth.path[RPC_ROLE_VIEWER],
                 d->auth.path[RPC_ROLE_WORKER]);
    }
    if (rpc_tls_load(&tls, &f.tls, err) != 0) {
        log_error("%s", err);
        goto out_free;
    }

    uv_loop_init(&d->loop);
    rpc_init();
    struct coord_opts co = {.state_dir = f.state_dir,
                            .lease_ms = f.lease_ms,
                            .max_msg = f.max_msg,
                            .shard_floats = f.shard_floats,
                            .data_roots = f.data_roots,
                            .ndata_roots = f.ndata_roots,
                            .import_dir = f.import_dir};
    if (coord_init(&d->coord, &d->loop, &co, err) != 0) {
        log_error("%s", err);
        goto out_grpc;
    }
    d->coord.auth = &d->auth;
    struct rpc_server_opts so = {
        .listen = f.listen,
        .token = f.no_auth ? NULL : d->auth.token[RPC_ROLE_CLIENT],
        .viewer_token = f.no_auth ? NULL : d->auth.token[RPC_ROLE_VIEWER],
        .worker_token = f.no_auth ? NULL : d->auth.token[RPC_ROLE_WORKER],
        .session_check = auth_session_check,
        .max_msg = f.max_msg,
        .methods = coord_methods,
        .nmethods = coord_nmethods,
        .ud = &d->coord,
        .tls = &tls,
        .land = coord_land,
    };
    int port = 0;
    if (rpc_server_start(&d->rpc, &d->loop, &so, &port, err) != 0) {
        log_error("%s", err);
        coord_stop(&d->coord);
        uv_run(&d->loop, UV_RUN_DEFAULT); /* close the handles coord_stop closed */
        coord_close(&d->coord);
        goto out_grpc;
    }
    /* HTTP before the port files: a port file means everything asked for
     * is up. */
    int hport = 0;
    if (f.http && http_server_start(&d->http, &d->coord, f.http, &tls, &hport, err) != 0) {
        log_error("%s", err);
        coord_stop(&d->coord);
        rpc_server_stop(d->rpc, 0, on_rpc_stopped, d);
        uv_run(&d->loop, UV_RUN_DEFAULT); /* until the RPC server and coord handles are closed */
        coord_close(&d->coord);
        goto out_grpc;
    }
    log_info("saturnd %s listening on %s (port %d%s), state dir %s, lease %u ms, max message %zu "
             "bytes",
             SATURN_VERSION, f.listen, port,
             !tls.cert ? ", plaintext"
             : tls.ca  ? ", TLS, client certificates required"
                       : ", TLS",
             f.state_dir, f.lease_ms, f.max_msg);
    if (f.http)
        log_info("%s on %s (port %d): /healthz, /metrics, dashboard at /",
                 tls.cert ? "https" : "http", f.http, hport);
    /* The gRPC port file last: who waits for it finds the HTTP one too. */
    if (f.http_port_file && write_port_file(f.http_port_file, hport) != 0)
        log_error("cannot write the port file %s", f.http_port_file);
    if (f.port_file && write_port_file(f.port_file, port) != 0)
        log_error("cannot write the port file %s", f.port_file);

    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sighup);
    d->sigint.data = d->sigterm.data = d->sighup.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sighup, on_sighup, SIGHUP);

    uv_run(&d->loop, UV_RUN_DEFAULT);

    coord_close(&d->coord);
    log_info("database closed");
    status = 0;
out_grpc:
    if (uv_loop_close(&d->loop) != 0)
        log_warn("event loop closed with handles still open");
    rpc_shutdown();
out_free:
    rpc_tls_free(&tls);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    auth_wipe(&d->auth);
    sat_free(d);
    if (status == 0)
        log_info("stopped cleanly");
    return status;
}
