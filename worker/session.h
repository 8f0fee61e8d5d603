/* session.h - a worker's session with the coordinator (see session.c). */
#ifndef SATURN_WORKER_SESSION_H
#define SATURN_WORKER_SESSION_H

#include "run.h"

struct session_opts {
    const char *coordinator;   /* "host:port" */
    const char *token;         /* bearer token, or NULL */
    const struct rpc_tls *tls; /* NULL or empty: plaintext */
    const char *name;          /* 1..63 chars of [A-Za-z0-9._-] */
    unsigned threads;          /* 1..1024 */
    const char *version;
};

/* Registers, keeps the lease and runs assignments until `quit` is set
 * (signal thread), then stops the runner and leaves. Returns the process
 * exit status: 0 after a clean stop, 3 if the coordinator refuses the
 * token, 1 on another fatal error. */
int session_run(const struct session_opts *o, struct run_ctl *quit);

#endif
