/* auth.c - saturnd's credentials (see auth.h): token files and their
 * checks, the state dir's mode, --no-auth's loopback rule, HTTP
 * credentials, and worker session secrets.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util/file.h"
#include "../common/util/log.h"

static const char *const default_names[RPC_NROLES] = {"token", "viewer-token", "worker-token"};
static const char *const flag_names[RPC_NROLES] = {"--token-file", "--viewer-token-file",
                                                   "--worker-token-file"};

/* ==== the state dir ======================================================== */

int auth_state_dir(const char *dir, char err[SAT_ERR_LEN])
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sat_errf(err, SAT_EIO, "cannot create state dir %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0)
        return sat_errf(err, SAT_EIO, "state dir %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return sat_errf(err, SAT_EINVAL, "state dir %s is not a directory", dir);
    if ((st.st_mode & 07777) == 0700)
        return 0;
    if (chmod(dir, 0700) != 0)
        return sat_errf(err, SAT_EINVAL,
                        "state dir %s has mode %04o and cannot be made 0700 (%s): it holds the "
                        "tokens and the database",
                        dir, (unsigned)(st.st_mode & 07777), strerror(errno));
    log_warn("state dir %s had mode %04o: changed to 0700", dir, (unsigned)(st.st_mode & 07777));
    return 0;
}

/* ==== token files ========================================================== */

/* Creates path with a new random token (mode 0600) unless it exists,
 * atomically (a crash leaves no partial token). saturnd's lock on the state
 * dir keeps a second daemon from racing it. */
static int token_generate(const char *path, char err[SAT_ERR_LEN])
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return 0;
    if (errno != ENOENT)
        return sat_errf(err, SAT_EIO, "cannot create %s: %s", path, strerror(errno));
    unsigned char rnd[32];
    char hex[2 * sizeof rnd + 2];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return sat_errf(err, SAT_EIO, "getrandom failed: %s", strerror(errno));
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    hex[2 * sizeof rnd] = '\n';
    explicit_bzero(rnd, sizeof rnd);
    int rc = sat_file_write_atomic(path, hex, 2 * sizeof rnd + 1, 0600, err);
    explicit_bzero(hex, sizeof hex);
    if (rc != 0)
        return rc;
    log_info("generated a bearer token in %s", path);
    return 0;
}

/* Loads one token after checking the file's owner, mode and length. */
static int token_read(const char *path, const char *flag, char token[RPC_TOKEN_MAX],
                      char err[SAT_ERR_LEN])
{
    struct stat st;
    if (stat(path, &st) != 0)
        return sat_errf(err, sat_err_from_errno(errno), "%s %s: %s", flag, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sat_errf(err, SAT_EINVAL, "%s %s: not a regular file", flag, path);
    bool group_ok = st.st_uid == 0; /* a Kubernetes Secret volume: root, fsGroup, 0440 */
    if ((st.st_mode & 0007) || ((st.st_mode & 0070) && !group_ok))
        return sat_errf(err, SAT_EINVAL,
                        "%s %s: mode %04o lets other users read the token: chmod 0600 it "
                        "(0640 is accepted when root owns the file)",
                        flag, path, (unsigned)(st.st_mode & 07777));
    int rc = rpc_token_load(path, token, err);
    if (rc != 0)
        return rc;
    size_t n = strlen(token);
    if (n < AUTH_TOKEN_MIN) {
        explicit_bzero(token, RPC_TOKEN_MAX);
        return sat_errf(err, SAT_EINVAL, "%s %s: the token has %zu characters; at least %d needed",
                        flag, path, n, AUTH_TOKEN_MIN);
    }
    return 0;
}

/* Reads every file of a into toks; all or nothing. */
static int tokens_read(const struct auth *a, char toks[RPC_NROLES][RPC_TOKEN_MAX],
                       char err[SAT_ERR_LEN])
{
    for (int r = 0; r < RPC_NROLES; r++) {
        int rc = token_read(a->path[r], flag_names[r], toks[r], err);
        if (rc != 0) {
            explicit_bzero(toks, RPC_NROLES * RPC_TOKEN_MAX);
            return rc;
        }
    }
    for (int r = 0; r < RPC_NROLES; r++)
        for (int q = 0; q < r; q++)
            if (strcmp(toks[r], toks[q]) == 0) {
                explicit_bzero(toks, RPC_NROLES * RPC_TOKEN_MAX);
                return sat_errf(err, SAT_EINVAL,
                                "%s %s and %s %s hold the same token: each role needs its own",
                                flag_names[q], a->path[q], flag_names[r], a->path[r]);
            }
    return 0;
}

int auth_load(struct auth *a, const char *state_dir, const char *const files[RPC_NROLES],
              char err[SAT_ERR_LEN])
{
    for (int r = 0; r < RPC_NROLES; r++) {
        int n = files[r]
                    ? snprintf(a->path[r], sizeof a->path[r], "%s", files[r])
                    : snprintf(a->path[r], sizeof a->path[r], "%s/%s", state_dir, default_names[r]);
        if (n < 0 || (size_t)n >= sizeof a->path[r])
            return sat_errf(err, SAT_EINVAL, "%s: path too long", flag_names[r]);
        if (!files[r]) {
            int rc = token_generate(a->path[r], err);
            if (rc != 0)
                return rc;
        }
    }
    return tokens_read(a, a->token, err);
}

int auth_reload(struct auth *a, char err[SAT_ERR_LEN])
{
    char toks[RPC_NROLES][RPC_TOKEN_MAX];
    int rc = tokens_read(a, toks, err);
    if (rc != 0)
        return rc;
    memcpy(a->token, toks, sizeof toks);
    explicit_bzero(toks, sizeof toks);
    return 0;
}

void auth_wipe(struct auth *a)
{
    explicit_bzero(a->token, sizeof a->token);
}

/* ==== --no-auth ============================================================ */

int auth_loopback_only(const char *listen, const char *what, char err[SAT_ERR_LEN])
{
    static const char *const ok[] = {"127.", "localhost:", "[::1]:", "ipv4:127.", "ipv6:[::1]:"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strncmp(listen, ok[i], strlen(ok[i])) == 0)
            return 0;
    return sat_errf(err, SAT_EINVAL,
                    "--no-auth with %s %s: without authentication saturnd listens on loopback "
                    "only (127.0.0.1, [::1] or localhost)",
                    what, listen);
}

/* ==== HTTP ================================================================= */

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decodes standard base64 (padding optional) into out; -1 if malformed or
 * longer than cap - 1. NUL-terminates. */
static long b64_decode(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *in && *in != '='; in++) {
        int v = b64_value((unsigned char)*in);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= cap)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = 0;
    return (long)n;
}

static int role_of(const struct auth *a, const char *tok, size_t len)
{
    int role = -1;
    for (int r = RPC_NROLES - 1; r >= 0; r--)
        if (r != RPC_ROLE_WORKER && a->token[r][0] &&
            rpc_secret_equal(tok, len, a->token[r], strlen(a->token[r])))
            role = r;
    return role;
}

int auth_http_role(const struct auth *a, const char *header)
{
    if (!header)
        return -1;
    if (strncmp(header, "Bearer ", 7) == 0)
        return role_of(a, header + 7, strlen(header + 7));
    if (strncasecmp(header, "Basic ", 6) != 0)
        return -1;
    char dec[RPC_TOKEN_MAX + 128];
    long n = b64_decode(header + 6, dec, sizeof dec);
    char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
    int role = colon ? role_of(a, colon + 1, (size_t)(dec + n - colon - 1)) : -1;
    explicit_bzero(dec, sizeof dec);
    return role;
}

/* ==== worker sessions ====================================================== */

int auth_session_new(char out[COORD_SESSION_LEN])
{
    unsigned char rnd[AUTH_SESSION_BYTES];
    _Static_assert(2 * AUTH_SESSION_BYTES < COORD_SESSION_LEN, "session buffer");
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return SAT_EIO;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    explicit_bzero(rnd, sizeof rnd);
    return 0;
}

struct worker *auth_session_worker(struct coord *c, const char *secret)
{
    struct worker *found = NULL;
    size_t n = strlen(secret);
    /* Every live worker is compared, each in constant time. */
    for (size_t i = 0; i < c->nworkers; i++) {
        struct worker *w = c->workers[i];
        if (coord_worker_live(w->state) && w->session[0] &&
            rpc_secret_equal(secret, n, w->session, strlen(w->session)))
            found = w;
    }
    return found;
}

int auth_session_check(void *ud, const char *secret, char why[SAT_ERR_LEN])
{
    if (auth_session_worker(ud, secret))
        return 0;
    return sat_errf(why, SAT_ENOENT,
                    "unknown worker session (lease expired or coordinator restarted): "
                    "register again");
}
