/* http.c - saturnd's HTTP server (see http.h): libmicrohttpd inside the
 * libuv loop, the routes, and the responses.
 *
 * MHD runs in "external polling" mode with epoll (MHD_USE_EPOLL, no
 * MHD_USE_INTERNAL_POLLING_THREAD): it keeps its sockets in an epoll set
 * of its own, whose fd becomes readable when any of them has work. A
 * uv_poll_t watches that fd and a uv_timer_t fires when MHD_get_timeout
 * says (connection timeouts, work left over); both call MHD_run, which
 * accepts, reads, calls on_request and writes, all on the loop thread,
 * and the timer is re-armed after every run.
 *
 * Defences: at most HTTP_MAX_CONNECTIONS connections, each closed after
 * HTTP_CONN_TIMEOUT_S idle seconds, each with HTTP_CONN_MEMORY bytes for
 * its request head (a bigger head gets 431 from MHD); GET and HEAD only
 * (405 with Allow otherwise); a request that announces a body gets 413;
 * responses are capped at HTTP_MAX_BODY bytes (500 past it). MHD answers
 * malformed requests itself (400) and never calls us for them.
 *
 * Authentication: every page needs the viewer or client token, as
 * "Authorization: Bearer T" or HTTP Basic with T as the password (any user
 * name), so that a browser can log in; otherwise 401 with
 * WWW-Authenticate: Basic. /healthz is open, /metrics too unless
 * --metrics-auth.
 */
#include "http.h"
#include "dashboard.h"
#include "prom.h"
#include "../auth.h"
#include "../jobs.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../common/util/log.h"
#include "../../common/util/xalloc.h"
#include "route.h"

struct http_server {
    struct coord *c;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;   /* MHD's epoll fd */
    uv_timer_t timer; /* MHD_get_timeout */
    int nclosing;     /* handles not closed yet; the last close frees the server */
    char last_log[SAT_ERR_LEN];
};

/* ==== MHD <-> libuv ======================================================== */

static void on_timer(uv_timer_t *h);

static void mhd_rearm(struct http_server *s)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
        uv_timer_start(&s->timer, on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&s->timer);
}

static unsigned mhd_connections(struct http_server *s)
{
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

/* At the connection limit libmicrohttpd takes its listening socket out of
 * its epoll set, and puts it back only at the start of a later MHD_run.
 * When the last connections then close, nothing would call MHD_run again
 * (the epoll fd stays quiet and MHD_get_timeout says "no timeout"), and
 * the server would never accept again. So after a run that changed the
 * number of connections, MHD runs once more on the next loop iteration. */
static void mhd_run(struct http_server *s)
{
    unsigned before = mhd_connections(s);
    if (MHD_run(s->mhd) != MHD_YES)
        log_warn("http: MHD_run failed");
    if (mhd_connections(s) != before)
        uv_timer_start(&s->timer, on_timer, 0, 0);
    else
        mhd_rearm(s);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    if (status < 0)
        log_warn("http: poll: %s", uv_strerror(status));
    mhd_run(h->data);
}

static void on_timer(uv_timer_t *h)
{
    mhd_run(h->data);
}

/* MHD's own messages (bind failures, malformed requests, closed peers):
 * debug level, as a client can trigger them at will. The last one is kept
 * for the start-up error. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    vsnprintf(s->last_log, sizeof s->last_log, fmt, ap);
    size_t n = strlen(s->last_log);
    while (n > 0 && (s->last_log[n - 1] == '\n' || s->last_log[n - 1] == '.'))
        s->last_log[--n] = 0;
    log_debug("http: %s", s->last_log);
}

/* ==== responses ============================================================ */

struct req {
    struct http_server *s;
    struct MHD_Connection *conn;
    const char *method, *url;
};

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_HTML "text/html; charset=utf-8"
#define CT_SVG "image/svg+xml"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"

static enum MHD_Result queue(const struct req *r, unsigned status, const char *ctype,
                             struct MHD_Response *resp)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* No script, no fetch, no frame: the pages are static HTML + CSS + SVG. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    log_debug("http: %s %s -> %u", r->method, r->url, status);
    return rc;
}

/* A constant body. */
static enum MHD_Result reply_static(const struct req *r, unsigned status, const char *ctype,
                                    const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO; /* out of memory: MHD closes the connection */
    return queue(r, status, ctype, resp);
}

/* A rendered body: takes the buffer's contents (freed by MHD when sent). */
static enum MHD_Result reply_buf(const struct req *r, unsigned status, const char *ctype,
                                 struct strbuf *body)
{
    int err = strbuf_error(body);
    if (err != 0) {
        strbuf_free(body);
        log_warn("http: %s %s: response not built: %s", r->method, r->url, sat_strerror(err));
        return reply_static(r, MHD_HTTP_INTERNAL_SERVER_ERROR, CT_TEXT,
                            "500 response too large, or out of memory\n");
    }
    size_t len;
    char *p = strbuf_steal(body, &len);
    if (!p)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, p, sat_free);
    if (!resp) {
        sat_free(p);
        return MHD_NO;
    }
    return queue(r, status, ctype, resp);
}

/* ==== authentication ======================================================= */

static bool authorized(const struct req *r)
{
    const struct auth *a = r->s->c->auth;
    if (!a || a->off || strcmp(r->url, "/healthz") == 0 ||
        (strcmp(r->url, "/metrics") == 0 && !a->metrics_auth))
        return true;
    const char *h =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return auth_http_role(a, h) >= 0;
}

static enum MHD_Result reply_unauthorized(const struct req *r)
{
    static const char body[] = "401 this page needs the viewer or client token (Authorization: "
                               "Bearer TOKEN, or HTTP Basic with the token as password)\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                            "Basic realm=\"saturn\", charset=\"UTF-8\"");
    return queue(r, MHD_HTTP_UNAUTHORIZED, CT_TEXT, resp);
}

/* ==== routes =============================================================== */

static enum MHD_Result route_healthz(const struct req *r)
{
    const struct coord *c = r->s->c;
    if (c->store && !c->stopping && store_writable(c->store))
        return reply_static(r, MHD_HTTP_OK, CT_TEXT, "ok\n");
    return reply_static(r, MHD_HTTP_SERVICE_UNAVAILABLE, CT_TEXT,
                        c->stopping   ? "shutting down\n"
                        : !c->store   ? "store closed\n"
                                      : "the state dir refuses writes\n");
}

static enum MHD_Result route_metrics(const struct req *r)
{
    struct strbuf b;
    strbuf_init(&b, HTTP_MAX_BODY);
    prom_render(r->s->c, &b);
    return reply_buf(r, MHD_HTTP_OK, CT_PROM, &b);
}

static enum MHD_Result route_index(const struct req *r)
{
    struct strbuf b;
    strbuf_init(&b, HTTP_MAX_BODY);
    dashboard_index(r->s->c, &b);
    return reply_buf(r, MHD_HTTP_OK, CT_HTML, &b);
}

_Static_assert(WEB_ROUTE_ID_LEN == COORD_ID_LEN, "route.h and coord.h disagree on id length");

/* /jobs/<id>, /jobs/<id>/loss.svg, /jobs/<id>/accuracy.svg */
static enum MHD_Result route_job(const struct req *r, const struct web_route *rt)
{
    struct coord *c = r->s->c;
    struct job *j = rt->id_ok ? coord_job_find(c, rt->job_id) : NULL;
    struct strbuf b;
    strbuf_init(&b, HTTP_MAX_BODY);
    if (!j) {
        if (rt->kind != WEB_ROUTE_JOB)
            return reply_static(r, MHD_HTTP_NOT_FOUND, CT_TEXT, "404 no such job\n");
        dashboard_no_job(c, rt->job_id, &b);
        return reply_buf(r, MHD_HTTP_NOT_FOUND, CT_HTML, &b);
    }
    if (rt->kind == WEB_ROUTE_JOB) {
        dashboard_job(c, j, &b);
        return reply_buf(r, MHD_HTTP_OK, CT_HTML, &b);
    }
    dashboard_chart_svg(c, j, rt->kind == WEB_ROUTE_JOB_LOSS ? DASHBOARD_LOSS : DASHBOARD_ACCURACY,
                        &b);
    return reply_buf(r, MHD_HTTP_OK, CT_SVG, &b);
}

/* /sweeps/<id>: only a valid sweep id is looked up. */
static enum MHD_Result route_sweep(const struct req *r, const struct web_route *rt)
{
    if (!rt->id_ok || !jobspec_sweep_id_ok(rt->job_id))
        return reply_static(r, MHD_HTTP_NOT_FOUND, CT_TEXT, "404 no such sweep\n");
    struct strbuf b;
    strbuf_init(&b, HTTP_MAX_BODY);
    int rc = dashboard_sweep(r->s->c, rt->job_id, &b);
    return reply_buf(r, rc == SAT_ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_OK, CT_HTML, &b);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    struct http_server *s = cls;
    struct req r = {.s = s, .conn = conn, .method = method, .url = url};
    struct web_route rt;
    web_route_parse(&rt, method, url);
    if (!*req_cls) {
        /* First call, the head only. Refusals go out at once (MHD then
         * closes the connection without reading a body); a good request
         * is answered on the next call, once MHD knows the request is
         * complete, which lets it keep the connection alive. */
        *req_cls = s;
        if (rt.kind == WEB_ROUTE_BAD_METHOD)
            return reply_static(&r, MHD_HTTP_METHOD_NOT_ALLOWED, CT_TEXT,
                                "405 method not allowed: GET or HEAD only\n");
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (te || (cl && strcmp(cl, "0") != 0))
            return reply_static(&r, MHD_HTTP_CONTENT_TOO_LARGE, CT_TEXT,
                                "413 request bodies are not accepted\n");
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* cannot happen (no body was announced): dropped */
        return MHD_YES;
    }
    if (!authorized(&r))
        return reply_unauthorized(&r);
    switch (rt.kind) {
    case WEB_ROUTE_HEALTHZ:
        return route_healthz(&r);
    case WEB_ROUTE_METRICS:
        return route_metrics(&r);
    case WEB_ROUTE_INDEX:
        return route_index(&r);
    case WEB_ROUTE_JOB:
    case WEB_ROUTE_JOB_LOSS:
    case WEB_ROUTE_JOB_ACCURACY:
        return route_job(&r, &rt);
    case WEB_ROUTE_SWEEP:
        return route_sweep(&r, &rt);
    case WEB_ROUTE_NOT_FOUND:
    case WEB_ROUTE_BAD_METHOD:
        break;
    }
    return reply_static(&r, MHD_HTTP_NOT_FOUND, CT_TEXT, "404 not found\n");
}

/* ==== start and stop ======================================================= */

/* "HOST:PORT" or "[V6]:PORT" -> a socket address (the first getaddrinfo
 * gives). */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                        char err[SAT_ERR_LEN])
{
    char host[256];
    const char *port;
    size_t hn;
    if (listen[0] == '[') {
        const char *e = strchr(listen, ']');
        if (!e || e[1] != ':')
            return sat_errf(err, SAT_EINVAL, "--http %s: expected HOST:PORT or [V6]:PORT", listen);
        hn = (size_t)(e - listen - 1);
        port = e + 2;
        if (hn >= sizeof host)
            return sat_errf(err, SAT_EINVAL, "--http: host too long");
        memcpy(host, listen + 1, hn);
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || strchr(listen, ':') != colon)
            return sat_errf(err, SAT_EINVAL, "--http %s: expected HOST:PORT or [V6]:PORT", listen);
        hn = (size_t)(colon - listen);
        port = colon + 1;
        if (hn >= sizeof host)
            return sat_errf(err, SAT_EINVAL, "--http: host too long");
        memcpy(host, listen, hn);
    }
    host[hn] = 0;
    size_t pn = strlen(port);
    if (hn == 0 || pn == 0 || pn > 5 || strspn(port, "0123456789") != pn ||
        strtoul(port, NULL, 10) > 65535)
        return sat_errf(err, SAT_EINVAL, "--http %s: expected HOST:PORT with a port 0..65535",
                        listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res)
        return sat_errf(err, SAT_EINVAL, "--http %s: %s", listen,
                        rc ? gai_strerror(rc) : "no address");
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void on_close(uv_handle_t *h)
{
    struct http_server *s = h->data;
    if (--s->nclosing == 0)
        sat_free(s);
}

int http_server_start(struct http_server **out, struct coord *c, const char *listen,
                      const struct rpc_tls *tls, int *port, char err[SAT_ERR_LEN])
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int rc = parse_listen(listen, &ss, &sslen, err);
    if (rc != 0)
        return rc;
    struct http_server *s = sat_calloc(1, sizeof *s);
    if (!s)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    s->c = c;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* HTTPS: MHD's GnuTLS, in the same epoll mode on the loop thread. */
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (tls && tls->cert) {
        flags |= MHD_USE_TLS;
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    /* The logger first: MHD logs through it from then on. */
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                              mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
                              MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!s->mhd) {
        /* MHD says "Failed to bind to port 0: <strerror>" (port 0: it was
         * given an address, not a port): keep the reason. */
        const char *why = s->last_log[0] ? s->last_log : "libmicrohttpd refused to start";
        const char *colon = strrchr(why, ':');
        bool bind_err = strstr(why, "bind") && colon;
        rc = sat_errf(err, SAT_EIO, "cannot serve HTTP on %s: %s%s", listen,
                      bind_err ? "bind:" : "", bind_err ? colon + 1 : why);
        sat_free(s);
        return rc;
    }
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    int uerr = ep ? uv_poll_init(c->loop, &s->poll, ep->epoll_fd) : UV_EINVAL;
    if (uerr != 0) {
        MHD_stop_daemon(s->mhd);
        sat_free(s);
        return sat_errf(err, SAT_EIO, "cannot watch libmicrohttpd's epoll fd: %s",
                        uv_strerror(uerr));
    }
    uv_timer_init(c->loop, &s->timer);
    s->poll.data = s->timer.data = s;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    mhd_rearm(s);
    *port = pi ? pi->port : 0;
    *out = s;
    return 0;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    /* uv_close takes the epoll fd out of libuv's set at once, before MHD
     * closes it. */
    s->nclosing = 2;
    uv_close((uv_handle_t *)&s->poll, on_close);
    uv_close((uv_handle_t *)&s->timer, on_close);
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
}
