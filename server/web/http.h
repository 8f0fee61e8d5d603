/* http.h - saturnd's optional HTTP endpoint (--http ADDR): /healthz,
 * Prometheus /metrics and an HTML dashboard with SVG charts.
 *
 * libmicrohttpd runs without a thread of its own, inside the coordinator's
 * libuv loop: its epoll fd is watched by a uv_poll_t and its timeouts by a
 * uv_timer_t, and every request is answered from the loop thread, where
 * handlers read `struct coord` directly (no locks, as everywhere in
 * saturnd). Only GET and HEAD; no request body; every response is built
 * in memory under a hard cap (HTTP_MAX_BODY).
 *
 *   http.c       the server: MHD <-> libuv, routing, responses
 *   prom.c       GET /metrics (text exposition format 0.0.4; prom.h)
 *   dashboard.c  GET / and /jobs/<id>[/loss.svg|/accuracy.svg] (dashboard.h)
 *   chart.c      SVG line charts (chart.h; pure)
 *   webfmt.c     escaping, numbers, axis ticks (pure; unit-tested)
 *
 * The views only read: the progress they show is kept current by the
 * parameter server where it changes.
 */
#ifndef SATURND_HTTP_H
#define SATURND_HTTP_H

#include "../coord.h"

#include "../../common/util/strbuf.h"

#define HTTP_MAX_CONNECTIONS 64      /* open connections at once; more are refused */
#define HTTP_CONN_TIMEOUT_S 10       /* an idle or slow connection is closed after this */
#define HTTP_CONN_MEMORY (32u << 10) /* bytes per connection for the request head */
#define HTTP_MAX_BODY (16u << 20)    /* bytes: cap on one response */

struct http_server;

/* Starts serving on `listen` ("HOST:PORT" or "[V6]:PORT"; port 0 picks a
 * free port, *port is the bound one): HTTPS with tls->cert and tls->key
 * when tls holds a certificate, else plain HTTP. tls must outlive the
 * server. Returns 0, or SAT_E* with a message in err (nothing is left
 * running then). */
int http_server_start(struct http_server **out, struct coord *c, const char *listen,
                      const struct rpc_tls *tls, int *port, char err[SAT_ERR_LEN]);
/* Closes every connection and the listening socket at once; the handles
 * close on the loop and the server is freed from their close callbacks.
 * After the call the pointer is no longer valid. NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
