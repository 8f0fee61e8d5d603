/* lg_proc.h - the load generator's saturnd: a private one started on
 * 127.0.0.1:0 with a temporary state dir and stopped by its PID, and what
 * /proc says about a process (CPU time, resident memory).
 */
#ifndef SATURN_LG_PROC_H
#define SATURN_LG_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/err.h"

struct lg_daemon {
    pid_t pid;
    char dir[PATH_MAX - 64]; /* the temporary state dir */
    char addr[64];           /* "127.0.0.1:PORT" */
    char token_file[PATH_MAX];
    char log[PATH_MAX];
};

/* Starts `exe` (saturnd) with --listen 127.0.0.1:0, a new temporary state
 * dir and --log-level warn (its output goes to DIR/saturnd.log), and waits
 * up to 20 s for its port and token files. Call before rpc_init (it forks).
 * Returns 0, or SAT_E* with err filled and nothing left running. */
int lg_daemon_start(struct lg_daemon *d, const char *exe, char err[SAT_ERR_LEN]);

/* SIGTERM, then SIGKILL after 10 s; returns saturnd's exit status (as
 * waitpid's) or -1. The state dir is removed unless keep. */
int lg_daemon_stop(struct lg_daemon *d, bool keep);

struct lg_procstat {
    double cpu_s;        /* utime + stime */
    long rss_kb, hwm_kb; /* VmRSS, VmHWM */
};

/* Reads /proc/PID/stat and /proc/PID/status. Returns 0 or SAT_E*. */
int lg_procstat_read(pid_t pid, struct lg_procstat *s);

#endif
