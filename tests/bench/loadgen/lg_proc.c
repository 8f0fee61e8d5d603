/* lg_proc.c - a private saturnd for the load generator, and /proc figures
 * (see lg_proc.h). */
#include "lg_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool file_nonempty(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int lg_daemon_start(struct lg_daemon *d, const char *exe, char err[SAT_ERR_LEN])
{
    memset(d, 0, sizeof *d);
    d->pid = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(d->dir, sizeof d->dir, "%s/saturn-loadgen.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir))
        return sat_errf(err, sat_err_from_errno(errno), "mkdtemp %s: %s", d->dir, strerror(errno));
    char port_file[PATH_MAX];
    snprintf(port_file, sizeof port_file, "%s/port", d->dir);
    snprintf(d->token_file, sizeof d->token_file, "%s/token", d->dir);
    snprintf(d->log, sizeof d->log, "%s/saturnd.log", d->dir);
    char *argv[] = {(char *)exe,   "--state-dir", d->dir,        "--listen", "127.0.0.1:0",
                    "--port-file", port_file,     "--log-level", "warn",     NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&d->pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        d->pid = -1;
        lg_daemon_stop(d, false);
        return sat_errf(err, sat_err_from_errno(rc), "cannot start %s: %s", exe, strerror(rc));
    }
    for (int i = 0; i < 400; i++) {
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = -1;
            lg_daemon_stop(d, true);
            return sat_errf(err, SAT_EIO, "saturnd exited at start; see %s", d->log);
        }
        if (file_nonempty(port_file) && file_nonempty(d->token_file)) {
            FILE *f = fopen(port_file, "r");
            int port = 0;
            if (f && fscanf(f, "%d", &port) != 1)
                port = 0;
            if (f)
                fclose(f);
            if (port > 0 && port < 65536) {
                snprintf(d->addr, sizeof d->addr, "127.0.0.1:%d", port);
                return 0;
            }
        }
        sleep_ms(50);
    }
    lg_daemon_stop(d, true);
    return sat_errf(err, SAT_ETIMEOUT, "saturnd did not write its port in 20 s; see %s", d->log);
}

int lg_daemon_stop(struct lg_daemon *d, bool keep)
{
    int status = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        bool gone = false;
        for (int i = 0; i < 200 && !gone; i++) {
            gone = waitpid(d->pid, &status, WNOHANG) == d->pid;
            if (!gone)
                sleep_ms(50);
        }
        if (!gone) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            status = -1;
        }
        d->pid = -1;
    }
    if (d->dir[0] && !keep)
        nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}

/* The value of a "Key:   123 kB" line of /proc/PID/status, in kB. */
static long status_kb(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

int lg_procstat_read(pid_t pid, struct lg_procstat *s)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return sat_err_from_errno(errno);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command name, which is in parentheses and may hold
     * spaces: state is field 3, utime 14, stime 15. */
    const char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return SAT_EFORMAT;
    s->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return sat_err_from_errno(errno);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    s->rss_kb = status_kb(buf, "VmRSS:");
    s->hwm_kb = status_kb(buf, "VmHWM:");
    return 0;
}
