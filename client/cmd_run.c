/* cmd_run.c - saturn export and saturn run.
 *
 * `saturn run SPEC` is the embedded default: a private saturnd (temporary
 * state dir, 127.0.0.1 port 0, plaintext, the tokens saturnd generates: the
 * CLI uses the client token, the workers the worker token) and N
 * saturn-worker children, the job submitted and followed with a progress
 * bar to its end, then everything stopped by PID (SIGTERM, SIGKILL after
 * STOP_GRACE_S; on Ctrl-C too) and the model copied to
 * ./runs/<name or id>/model.safetensors.
 *
 * The children are forked before gRPC is initialised (gRPC's threads and
 * fork() do not mix): main() leaves rpc_init to this command.
 */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "saturn.pb-c.h"

#include "../common/nn/threads.h"
#include "../common/spec/jobspec.h"
#include "../common/util/clock.h"
#include "../common/util/file.h"
#include "../common/util/xalloc.h"

#define STOP_GRACE_S 5
#define START_TIMEOUT_S 30
#define MAX_CHILDREN (1 + 256)

/* ==== export =============================================================== */

int cmd_export(struct cli *c)
{
    if (!c->output) {
        cli_errorf("export: -o FILE is required (where to write the model)");
        return EXIT_USAGE;
    }
    const char *fmt = c->format ? c->format : "safetensors";
    int ex = cli_connect(c);
    if (ex != EXIT_OK)
        return ex;
    Saturn__V1__ExportModelRequest req = SATURN__V1__EXPORT_MODEL_REQUEST__INIT;
    req.job_id = (char *)c->args[0];
    req.format = (char *)fmt;
    struct rpc_stream *s;
    struct rpc_status st;
    if (rpc_stream_open(c->rpc, "/saturn.v1.Client/ExportModel", &req.base,
                        c->timeout_set ? c->timeout_ms : 300000, &s, &st) != 0)
        return cli_fail_status(c, &st);
    char err[SAT_ERR_LEN];
    struct sat_file_atomic out;
    if (sat_file_atomic_begin(&out, c->output, 0644, err) != 0) {
        cli_errorf("export: %s", err);
        rpc_stream_close(s);
        return EXIT_INVALID;
    }
    uint64_t written = 0, total = 0;
    int rc;
    ex = EXIT_OK;
    for (;;) {
        ProtobufCMessage *m;
        rc = rpc_stream_read(s, &saturn__v1__model_chunk__descriptor, &m, &st);
        if (rc <= 0)
            break;
        const Saturn__V1__ModelChunk *ch = (const Saturn__V1__ModelChunk *)m;
        if (ch->offset != written || (total && ch->total_size != total) ||
            written + ch->data.len > ch->total_size) {
            rpc_msg_free(m);
            cli_errorf("export: chunk at %" PRIu64 " does not fit (expected offset %" PRIu64 ")",
                       ch->offset, written);
            ex = EXIT_SERVER;
            break;
        }
        total = ch->total_size;
        if (sat_file_atomic_write(&out, ch->data.data, ch->data.len, err) != 0) {
            rpc_msg_free(m);
            cli_errorf("export: %s", err);
            ex = EXIT_INVALID;
            break;
        }
        written += ch->data.len;
        rpc_msg_free(m);
    }
    rpc_stream_close(s);
    if (ex == EXIT_OK && rc < 0) {
        sat_file_atomic_abort(&out);
        return cli_fail_status(c, &st);
    }
    if (ex != EXIT_OK || rc != 0 || written != total || total == 0) {
        sat_file_atomic_abort(&out);
        if (ex == EXIT_OK) {
            cli_errorf("export: incomplete file (%" PRIu64 " of %" PRIu64 " bytes)", written,
                       total);
            ex = EXIT_SERVER;
        }
        return ex;
    }
    if (sat_file_atomic_commit(&out, err) != 0) {
        cli_errorf("export: %s", err);
        return EXIT_INVALID;
    }
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job_id", c->args[0]);
        cJSON_AddStringToObject(o, "path", c->output);
        cJSON_AddStringToObject(o, "format", fmt);
        cJSON_AddNumberToObject(o, "bytes", (double)written);
        cli_print_json(o);
    } else {
        printf("%s: %s model written to %s (%" PRIu64 " bytes)\n", c->args[0], fmt, c->output,
               written);
    }
    return EXIT_OK;
}

/* ==== run: children ======================================================== */

/* The children, for the signal handler: PIDs only (async-signal-safe use). */
static volatile pid_t children[MAX_CHILDREN];
static volatile int nchildren;

/* Stops children by PID in reverse start order (workers, then saturnd):
 * SIGTERM, then SIGKILL after STOP_GRACE_S. Async-signal-safe. */
static void stop_children(void)
{
    for (int i = nchildren - 1; i >= 0; i--)
        if (children[i] > 0)
            kill(children[i], SIGTERM);
    for (int i = nchildren - 1; i >= 0; i--) {
        pid_t p = children[i];
        if (p <= 0)
            continue;
        int done = 0;
        for (int k = 0; k < STOP_GRACE_S * 20 && !done; k++) {
            pid_t r = waitpid(p, NULL, WNOHANG);
            if (r == p || (r < 0 && errno == ECHILD))
                done = 1;
            else {
                struct timespec ts = {0, 50 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        if (!done) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
        }
        children[i] = 0;
    }
}

static void on_interrupt(int sig)
{
    static const char msg[] = "\nsaturn run: interrupted; stopping saturnd and the workers\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    stop_children();
    _exit(128 + sig);
}

/* Forks and execs argv with stdout/stderr appended to log. The child gets
 * SIGTERM if saturn dies. Returns the PID or -1. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execv(argv[0], argv);
        _exit(127);
    }
    children[nchildren++] = pid;
    return pid;
}

static bool executable_at(const char *p)
{
    return access(p, X_OK) == 0;
}

/* The saturnd / saturn-worker next to this binary's build location
 * (client/../server/saturnd), installed beside it, or on PATH. */
static int find_bin(const char *name, const char *build_rel, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, cap, "%.3000s/../%s", self, build_rel);
            if (executable_at(out))
                return 0;
            snprintf(out, cap, "%.3000s/%s", self, name);
            if (executable_at(out))
                return 0;
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t len = strcspn(path, ":");
        snprintf(out, cap, "%.*s/%s", (int)len, path, name);
        if (len && executable_at(out))
            return 0;
        path += len + (path[len] == ':');
    }
    return SAT_ENOENT;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Copies from to `to`, replacing it atomically. Returns 0 or a SAT_E* code
 * with a message naming the file in err. */
static int copy_file(const char *from, const char *to, char err[SAT_ERR_LEN])
{
    int in;
    uint64_t size;
    int rc = sat_file_open(from, &in, &size, err);
    if (rc != 0)
        return rc;
    struct sat_file_atomic out;
    rc = sat_file_atomic_begin(&out, to, 0644, err);
    if (rc != 0) {
        close(in);
        return rc;
    }
    char buf[1 << 16];
    size_t n = sizeof buf;
    while (rc == 0 && n == sizeof buf) {
        rc = sat_file_read_full(in, from, buf, sizeof buf, &n, err);
        if (rc == 0)
            rc = sat_file_atomic_write(&out, buf, n, err);
    }
    close(in);
    if (rc != 0) {
        sat_file_atomic_abort(&out);
        return rc;
    }
    return sat_file_atomic_commit(&out, err);
}

static void log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char lines[10][512];
    int n = 0;
    while (fgets(lines[n % 10], sizeof lines[0], f))
        n++;
    fclose(f);
    fprintf(stderr, "---- last lines of %s\n", path);
    for (int i = n > 10 ? n - 10 : 0; i < n; i++)
        fputs(lines[i % 10], stderr);
}

/* ==== run ================================================================== */

struct run_state {
    char dir[PATH_MAX];
    char saturnd[PATH_MAX], worker[PATH_MAX];
    char addr[64], token_file[PATH_MAX + 16], worker_token_file[PATH_MAX + 16];
    struct job_spec spec;
    char *spec_json;
    char job_id[64];
};

static int run_start(struct cli *c, struct run_state *r, int nworkers, int threads)
{
    char port_file[PATH_MAX + 16], log[PATH_MAX + 32], lease[16] = "5000";
    snprintf(port_file, sizeof port_file, "%s/port", r->dir);
    snprintf(log, sizeof log, "%s/saturnd.log", r->dir);
    char *dargs[] = {r->saturnd, "--state-dir", r->dir, "--listen",    "127.0.0.1:0", "--port-file",
                     port_file,  "--lease-ms",  lease,  "--log-level", "warn",        NULL};
    if (spawn(dargs, log) < 0) {
        cli_errorf("run: cannot start %s: %s", r->saturnd, strerror(errno));
        return EXIT_SERVER;
    }
    pid_t dpid = children[0];
    double t0 = sat_mono_s();
    int port = 0;
    while (sat_mono_s() - t0 < START_TIMEOUT_S) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0)
            break;
        if (waitpid(dpid, NULL, WNOHANG) == dpid) {
            children[0] = 0;
            cli_errorf("run: saturnd exited at start-up");
            log_tail(log);
            return EXIT_SERVER;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (port <= 0) {
        cli_errorf("run: saturnd did not start listening within %d s", START_TIMEOUT_S);
        log_tail(log);
        return EXIT_UNAVAIL;
    }
    snprintf(r->addr, sizeof r->addr, "127.0.0.1:%d", port);
    snprintf(r->token_file, sizeof r->token_file, "%s/token", r->dir);
    snprintf(r->worker_token_file, sizeof r->worker_token_file, "%s/worker-token", r->dir);
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    for (int i = 0; i < nworkers; i++) {
        char name[32], wlog[PATH_MAX + 32];
        snprintf(name, sizeof name, "run-w%d", i);
        snprintf(wlog, sizeof wlog, "%s/worker-%d.log", r->dir, i);
        char *wargs[] = {r->worker,
                         "--coordinator",
                         r->addr,
                         "--token-file",
                         r->worker_token_file,
                         "--threads",
                         th,
                         "--name",
                         name,
                         "--log-level",
                         "warn",
                         NULL};
        if (spawn(wargs, wlog) < 0) {
            cli_errorf("run: cannot start %s: %s", r->worker, strerror(errno));
            return EXIT_SERVER;
        }
    }
    (void)c;
    return EXIT_OK;
}

static int run_main(struct cli *c, bool *grpc)
{
    struct run_state r;
    memset(&r, 0, sizeof r);
    char err[SAT_ERR_LEN];
    int ex = cli_spec_build(c, c->args[0], &r.spec);
    if (ex != EXIT_OK)
        return ex;
    /* Plaintext on loopback: the private daemons get no TLS flags, and the
     * workers must not pick up the caller's SATURN_TLS_CA either. */
    c->tls_files = (struct rpc_tls_files){0};
    unsetenv("SATURN_TLS_CA");
    int nw = r.spec.workers; /* jobspec_validate: batch_size is a multiple of it */
    long ncpu = nn_cpus_available();
    int threads = c->threads > 0 ? c->threads : (int)(ncpu / nw > 1 ? ncpu / nw : 1);
    if (find_bin("saturnd", "server/saturnd", r.saturnd, sizeof r.saturnd) != 0 ||
        find_bin("saturn-worker", "worker/saturn-worker", r.worker, sizeof r.worker) != 0) {
        cli_errorf("run: saturnd and saturn-worker not found next to this saturn nor on PATH");
        return EXIT_USAGE;
    }
    r.spec_json = jobspec_to_json(&r.spec);
    if (!r.spec_json) {
        cli_errorf("run: out of memory");
        return EXIT_SERVER;
    }
    const char *tmpdir = getenv("TMPDIR");
    if (tmpdir && *tmpdir) {
        snprintf(r.dir, sizeof r.dir, "%s/saturn-run.XXXXXX", tmpdir);
    } else {
        mkdir_p("runs");
        snprintf(r.dir, sizeof r.dir, "runs/.saturn-run.XXXXXX");
    }
    if (!mkdtemp(r.dir)) {
        cli_errorf("run: cannot create a state dir %s: %s", r.dir, strerror(errno));
        sat_free(r.spec_json);
        return EXIT_INVALID;
    }
    char abs[PATH_MAX];
    if (realpath(r.dir, abs))
        snprintf(r.dir, sizeof r.dir, "%s", abs);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    double t0 = sat_mono_s();
    if (!c->json && !c->markdown)
        printf(
            "saturn run: %s on %s, W%dA%d, %d epochs, %d worker%s x %d thread%s (state dir %s)\n",
            r.spec.model, r.spec.dataset, r.spec.wbits, r.spec.abits, r.spec.epochs, nw,
            nw == 1 ? "" : "s", threads, threads == 1 ? "" : "s", r.dir);
    fflush(stdout);
    ex = run_start(c, &r, nw, threads);
    rpc_init();
    *grpc = true;
    Saturn__V1__GetJobResponse *job = NULL;
    int last_state = 0;
    if (ex == EXIT_OK) {
        c->addr = r.addr;
        c->token_file = r.token_file;
        ex = cli_connect(c);
    }
    if (ex == EXIT_OK && (c->ngrids || c->seeds > 1)) {
        /* A grid (cmd_sweep.c): its jobs one after the other on these
         * workers, the table at the end; the models stay in the state dir
         * (--keep keeps it). */
        ex = sweep_run(c, &r.spec);
        rpc_client_free(c->rpc);
        c->rpc = NULL;
        stop_children();
        if (ex != EXIT_OK && ex != EXIT_JOB_FAILED)
            c->keep = true;
        if (c->keep)
            fprintf(c->json || c->markdown ? stderr : stdout,
                    "saturn run: state dir and logs kept in %s\n", r.dir);
        else
            nftw(r.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        sat_free(r.spec_json);
        return ex;
    }
    if (ex == EXIT_OK) {
        Saturn__V1__SubmitJobRequest req = SATURN__V1__SUBMIT_JOB_REQUEST__INIT;
        req.spec_json = r.spec_json;
        ProtobufCMessage *m;
        struct rpc_status st;
        if (rpc_unary(c->rpc, "/saturn.v1.Client/SubmitJob", &req.base,
                      &saturn__v1__submit_job_response__descriptor, &m, 30000, &st) != 0) {
            ex = cli_fail_status(c, &st);
        } else {
            snprintf(r.job_id, sizeof r.job_id, "%s", ((Saturn__V1__SubmitJobResponse *)m)->job_id);
            rpc_msg_free(m);
        }
    }
    if (ex == EXIT_OK)
        ex = cli_follow(c, r.job_id, &last_state);
    if (ex == EXIT_OK) {
        Saturn__V1__GetJobRequest req = SATURN__V1__GET_JOB_REQUEST__INIT;
        req.job_id = r.job_id;
        ProtobufCMessage *m;
        struct rpc_status st;
        if (rpc_unary(c->rpc, "/saturn.v1.Client/GetJob", &req.base,
                      &saturn__v1__get_job_response__descriptor, &m, 30000, &st) != 0)
            ex = cli_fail_status(c, &st);
        else
            job = (Saturn__V1__GetJobResponse *)m;
    }
    rpc_client_free(c->rpc);
    c->rpc = NULL;
    stop_children();
    double elapsed = sat_mono_s() - t0;

    char model[PATH_MAX] = "";
    const Saturn__V1__Job *j = job ? job->job : NULL;
    bool ok = j && j->state == SATURN__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    if (ok) {
        char src[PATH_MAX + 96], dir[PATH_MAX];
        snprintf(src, sizeof src, "%s/jobs/%s/model.safetensors", r.dir, j->id);
        snprintf(dir, sizeof dir, "runs/%s", *j->name ? j->name : j->id);
        snprintf(model, sizeof model, "%.3000s/model.safetensors", dir);
        int crc = mkdir_p(dir) != 0 ? sat_errf(err, SAT_EIO, "%s: %s", dir, strerror(errno))
                                    : copy_file(src, model, err);
        if (crc != 0) {
            cli_errorf("run: cannot copy %s to %s: %s", src, model, err);
            ex = EXIT_SERVER;
            model[0] = 0;
            c->keep = true;
        }
    }
    if (!ok && ex == EXIT_OK) {
        c->keep = true; /* keep the logs of a failed run */
        ex = EXIT_JOB_FAILED;
    }
    const Saturn__V1__JobProgress *p = j ? j->progress : NULL;
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job_id", j ? j->id : r.job_id);
        cJSON_AddStringToObject(o, "name", r.spec.name);
        cJSON_AddStringToObject(o, "state", j ? cli_job_state(j->state) : "unknown");
        if (p && p->test_epoch > 0)
            cJSON_AddNumberToObject(o, "test_acc", p->test_acc);
        else
            cJSON_AddNullToObject(o, "test_acc");
        cJSON_AddStringToObject(o, "param_digest", p ? p->param_digest : "");
        cJSON_AddNumberToObject(o, "epochs", r.spec.epochs);
        cJSON_AddNumberToObject(o, "workers", nw);
        cJSON_AddNumberToObject(o, "threads", threads);
        cJSON_AddNumberToObject(o, "elapsed_s", elapsed);
        cJSON_AddStringToObject(o, "model_path", model);
        cJSON_AddStringToObject(o, "reason", j ? j->reason : "");
        if (c->keep)
            cJSON_AddStringToObject(o, "state_dir", r.dir);
        if (p)
            cJSON_AddItemToObject(o, "metrics", cli_progress_json(p));
        cli_print_json(o);
    } else if (ok) {
        printf("saturn run: %s succeeded in %.1f s: test accuracy %.2f%%, digest %s\n", j->id,
               elapsed, p ? 100.0 * p->test_acc : 0.0, p ? p->param_digest : "");
        printf("saturn run: model written to %s\n", model);
    } else {
        printf("saturn run: %s %s after %.1f s: %s\n", j ? j->id : "the job",
               j ? cli_job_state(j->state) : "did not finish", elapsed, j ? j->reason : "");
    }
    if (job)
        rpc_msg_free(&job->base);
    if (c->keep) {
        if (!c->json)
            printf("saturn run: state dir and logs kept in %s\n", r.dir);
    } else {
        nftw(r.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    sat_free(r.spec_json);
    return ex;
}

int cmd_run(struct cli *c)
{
    bool grpc = false;
    int ex = run_main(c, &grpc);
    if (!grpc)
        rpc_init(); /* main() shuts gRPC down */
    return ex;
}
