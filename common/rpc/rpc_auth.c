/* rpc_auth.c - who may call what, decided from a call's initial metadata
 * before its message is read: role tokens, the method's roles, the worker
 * session secret, and the per-peer slow-down of repeated failures.
 *
 * Tokens are kept as "Bearer <token>" strings per role and compared in
 * constant time (rpc_secret_equal), every role every time, so timing does
 * not tell which role matched. The client role may call every method.
 *
 * Failures (a missing or wrong token, a refused session) are counted per
 * peer address (the IP, without the port) in a small table that forgets
 * the least recently failing peer when full. The first RPC_AUTH_FREE
 * failures of a burst are answered at once, later ones after a delay that
 * doubles from RPC_AUTH_DELAY_MIN_MS up to RPC_AUTH_DELAY_MAX_MS; a peer
 * quiet for RPC_AUTH_FORGET_MS starts afresh. Each peer's failures are
 * logged at most once a second, with the number left unlogged meanwhile.
 * Loop thread only.
 */
#include "rpc_int.h"

#include <stdio.h>
#include <string.h>

#include <grpc/slice.h>

#include "../util/log.h"
#include "../util/xalloc.h"

#define AUTH_PREFIX "Bearer "
#define RPC_AUTH_FREE 3            /* failures of a burst answered without delay */
#define RPC_AUTH_DELAY_MIN_MS 100  /* the first delay; doubles per failure */
#define RPC_AUTH_FORGET_MS 30000   /* a peer quiet this long starts afresh */
#define RPC_AUTH_LOG_EVERY_MS 1000 /* at most one log line per peer per second */

static const char *const role_names[RPC_NROLES] = {"client", "viewer", "worker"};

const char *rpc__role_name(int role)
{
    return role >= 0 && role < RPC_NROLES ? role_names[role] : "none";
}

/* ==== tokens =============================================================== */

int rpc__auth_set(struct rpc_auth *a, const char *const tokens[RPC_NROLES])
{
    char *b[RPC_NROLES] = {0};
    size_t len[RPC_NROLES] = {0};
    for (int r = 0; r < RPC_NROLES; r++) {
        if (!tokens[r] || !*tokens[r])
            continue;
        len[r] = strlen(AUTH_PREFIX) + strlen(tokens[r]);
        b[r] = sat_malloc(len[r] + 1);
        if (!b[r]) {
            for (int i = 0; i < r; i++)
                sat_free(b[i]);
            return SAT_ENOMEM;
        }
        snprintf(b[r], len[r] + 1, "%s%s", AUTH_PREFIX, tokens[r]);
    }
    for (int r = 0; r < RPC_NROLES; r++) {
        if (a->bearer[r])
            explicit_bzero(a->bearer[r], a->len[r]);
        sat_free(a->bearer[r]);
        a->bearer[r] = b[r];
        a->len[r] = len[r];
    }
    return 0;
}

void rpc__auth_free(struct rpc_auth *a)
{
    const char *none[RPC_NROLES] = {0};
    rpc__auth_set(a, none); /* cannot fail: nothing is allocated */
}

bool rpc__md_get(const grpc_metadata_array *md, const char *key, const char **v, size_t *len)
{
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) {
            *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
            *len = GRPC_SLICE_LENGTH(md->metadata[i].value);
            return true;
        }
    return false;
}

/* The role whose token the metadata presents; -1 when none is presented,
 * -2 when none matches. Every authorization value is compared with every
 * role's token. */
static int auth_role(const struct rpc_auth *a, const grpc_metadata_array *md)
{
    int role = -1;
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (grpc_slice_str_cmp(m->key, "authorization") != 0)
            continue;
        if (role == -1)
            role = -2;
        for (int r = 0; r < RPC_NROLES; r++)
            if (a->bearer[r] &&
                rpc_secret_equal(GRPC_SLICE_START_PTR(m->value), GRPC_SLICE_LENGTH(m->value),
                                 a->bearer[r], a->len[r]) &&
                (role < 0 || r < role))
                role = r;
    }
    return role;
}

/* ==== per-peer failures ==================================================== */

/* "ipv4:1.2.3.4:5555" -> "ipv4:1.2.3.4" (the port changes per connection). */
static void peer_key(const char *peer, char out[RPC_PEER_KEY_LEN])
{
    snprintf(out, RPC_PEER_KEY_LEN, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
        *colon = 0;
}

static struct rpc_peer_fail *peer_find(struct rpc_auth *a, const char *key, uint64_t now)
{
    struct rpc_peer_fail *oldest = &a->peers[0];
    for (size_t i = 0; i < RPC_AUTH_PEERS; i++) {
        struct rpc_peer_fail *p = &a->peers[i];
        if (p->key[0] && strcmp(p->key, key) == 0)
            return p;
        if (!p->key[0] || p->last_ms < oldest->last_ms)
            oldest = p;
        if (!p->key[0])
            break;
    }
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    oldest->last_ms = now;
    return oldest;
}

unsigned rpc__auth_fail(struct rpc_auth *a, const char *peer, uint64_t now, const char *method,
                        const char *why)
{
    char key[RPC_PEER_KEY_LEN];
    peer_key(peer, key);
    struct rpc_peer_fail *p = peer_find(a, key, now);
    if (p->fails && now - p->last_ms > RPC_AUTH_FORGET_MS)
        p->fails = 0;
    p->fails++;
    p->last_ms = now;
    unsigned delay = 0;
    if (p->fails > RPC_AUTH_FREE) {
        unsigned shift = p->fails - RPC_AUTH_FREE - 1;
        delay = shift >= 8 ? RPC_AUTH_DELAY_MAX_MS : RPC_AUTH_DELAY_MIN_MS << shift;
        if (delay > RPC_AUTH_DELAY_MAX_MS)
            delay = RPC_AUTH_DELAY_MAX_MS;
    }
    if (p->logged_ms && now - p->logged_ms < RPC_AUTH_LOG_EVERY_MS) {
        p->suppressed++;
        return delay;
    }
    if (p->suppressed)
        log_warn("rpc: %s from %s refused: %s (%u failure(s) in a row; %u more not logged; "
                 "answered after %u ms)",
                 method, key, why, p->fails, p->suppressed, delay);
    else
        log_warn("rpc: %s from %s refused: %s (%u failure(s) in a row; answered after %u ms)",
                 method, key, why, p->fails, delay);
    p->logged_ms = now;
    p->suppressed = 0;
    return delay;
}

/* ==== admission ============================================================ */

grpc_status_code rpc__admit(struct rpc_server *s, struct rpc_call *c, char why[SAT_ERR_LEN],
                            bool *auth_failure)
{
    const struct rpc_method *m = c->slot->m;
    *auth_failure = false;
    c->role = RPC_ROLE_CLIENT;
    if (s->auth_on && !(m->flags & RPC_NO_AUTH)) {
        int role = auth_role(&s->auth, &c->md);
        if (role < 0) {
            *auth_failure = true;
            snprintf(why, SAT_ERR_LEN, "%s",
                     role == -1 ? "missing bearer token (authorization metadata)"
                                : "invalid bearer token");
            return GRPC_STATUS_UNAUTHENTICATED;
        }
        c->role = role;
        if (role != RPC_ROLE_CLIENT && m->roles && !(m->roles & (1u << role))) {
            snprintf(why, SAT_ERR_LEN, "the %s token may not call %s", role_names[role], m->path);
            return GRPC_STATUS_PERMISSION_DENIED;
        }
    }
    if (!(m->flags & RPC_SESSION))
        return GRPC_STATUS_OK;
    const char *v;
    size_t len;
    if (!rpc__md_get(&c->md, RPC_SESSION_KEY, &v, &len) || len == 0) {
        snprintf(why, SAT_ERR_LEN,
                 "missing worker session (" RPC_SESSION_KEY
                 " metadata from RegisterWorker): register first");
        return GRPC_STATUS_PERMISSION_DENIED;
    }
    *auth_failure = true;
    if (len >= RPC_SESSION_MAX || !s->session_check) {
        snprintf(why, SAT_ERR_LEN, "unknown worker session: register again");
        return GRPC_STATUS_NOT_FOUND;
    }
    memcpy(c->session, v, len);
    c->session[len] = 0;
    int rc = s->session_check(s->ud, c->session, why);
    if (rc != 0) {
        c->session[0] = 0;
        return rpc_status_from_err(rc);
    }
    *auth_failure = false;
    return GRPC_STATUS_OK;
}
