/* auth.h - saturnd's credentials: the three role tokens (client, viewer,
 * worker) and their files, the state dir's mode, the loopback rule for
 * --no-auth, HTTP credentials, and worker session secrets.
 *
 * Token files: one token per file (first line), at least AUTH_TOKEN_MIN
 * characters, readable by its owner only - or also by its group when root
 * owns it (a Kubernetes Secret volume: root-owned, group fsGroup, 0440).
 * Missing default files (STATE_DIR/token, viewer-token, worker-token) are
 * generated with 32 random bytes in hex, mode 0600. auth_reload re-reads
 * them all (SIGHUP) and swaps them in only when every file is valid.
 *
 * Sessions: RegisterWorker gives each worker a fresh secret of
 * AUTH_SESSION_BYTES random bytes (hex); the worker sends it as
 * RPC_SESSION_KEY metadata on every later call and the dispatcher finds
 * the worker by it (constant-time compares), never by the worker id the
 * request names. Loop thread only.
 */
#ifndef SATURND_AUTH_H
#define SATURND_AUTH_H

#include <stdbool.h>

#include "coord.h"

#define AUTH_TOKEN_MIN 32     /* characters: shortest accepted token */
#define AUTH_SESSION_BYTES 16 /* random bytes of a session secret (128 bits) */
#define AUTH_PATH_LEN 1024

struct auth {
    bool off;          /* --no-auth: no token is checked anywhere */
    bool metrics_auth; /* --metrics-auth: /metrics needs a token too */
    char path[RPC_NROLES][AUTH_PATH_LEN];
    char token[RPC_NROLES][RPC_TOKEN_MAX];
};

/* Creates the state dir with mode 0700, or makes an existing one 0700.
 * Returns 0, or SAT_E* with err filled (it cannot be made 0700). */
int auth_state_dir(const char *dir, char err[SAT_ERR_LEN]);

/* Fills a->path from the flags (files[r], NULL = the default file in
 * state_dir, generated if missing) and loads every token. Returns 0, or
 * SAT_E* with err naming the file (never its contents). */
int auth_load(struct auth *a, const char *state_dir, const char *const files[RPC_NROLES],
              char err[SAT_ERR_LEN]);

/* Re-reads every token file. On success the new tokens replace the old
 * ones and 0 is returned; on failure a is unchanged and err says why. */
int auth_reload(struct auth *a, char err[SAT_ERR_LEN]);

/* Wipes every token from memory (at exit). */
void auth_wipe(struct auth *a);

/* Refuses (SAT_EINVAL, err filled) a listen address that is not loopback:
 * used for --no-auth. `what` names the flag in the message. */
int auth_loopback_only(const char *listen, const char *what, char err[SAT_ERR_LEN]);

/* The role of an HTTP Authorization header value ("Bearer T" or "Basic
 * base64(user:T)"), counting only the client and viewer tokens; -1 when it
 * presents neither. NULL header: -1. */
int auth_http_role(const struct auth *a, const char *header);

/* Writes a new session secret (2 * AUTH_SESSION_BYTES hex digits + NUL).
 * Returns 0 or SAT_EIO (no randomness). */
int auth_session_new(char out[COORD_SESSION_LEN]);

/* The live worker whose session secret is `secret`, or NULL. */
struct worker *auth_session_worker(struct coord *c, const char *secret);

/* rpc_session_fn for the RPC layer (ud: struct coord): 0 when secret
 * belongs to a live worker, else SAT_ENOENT ("register again"). */
int auth_session_check(void *ud, const char *secret, char why[SAT_ERR_LEN]);

#endif
