/* events.c - job events and the WatchJob streams that follow them.
 *
 * An event is a row of the store (so a watch can replay it after a
 * restart) and a message to every live watcher of its job. A watcher is a
 * streaming call owned by this module: it ends with OK after the event
 * that makes its job terminal, with CANCELLED when the client goes away,
 * with RESOURCE_EXHAUSTED when the client reads too slowly to keep up
 * (RPC_STREAM_QUEUE_MAX messages waiting), and with UNAVAILABLE when
 * saturnd shuts down.
 */
#include "events.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "saturn.pb-c.h"

#include "../common/util/log.h"
#include "../common/util/utf8.h"
#include "../common/util/xalloc.h"

struct watcher {
    struct coord *c;
    struct job *job;
    struct rpc_call *call;
    struct watcher *prev, *next; /* the job's list */
};

static void watcher_unlink(struct watcher *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->job->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->c->nwatchers--;
}

/* Finishes the stream with sat_err (0 = OK) and frees the watcher. */
static void watcher_end(struct watcher *w, int sat_err, const char *msg)
{
    watcher_unlink(w);
    if (sat_err == 0)
        rpc_stream_end(w->call);
    else
        rpc_reply_err(w->call, sat_err, "%s", msg);
    sat_free(w);
}

static void on_watch_cancel(struct rpc_call *call, void *arg)
{
    struct watcher *w = arg;
    (void)call;
    log_debug("watch %s: client went away", w->job->id);
    watcher_end(w, SAT_ECANCELLED, "client went away");
}

static void event_to_pb(const struct store_event *ev, Saturn__V1__JobEvent *m)
{
    saturn__v1__job_event__init(m);
    m->seq = ev->seq;
    m->job_id = (char *)ev->job_id;
    m->time_ms = ev->time_ms;
    m->kind = (char *)ev->kind;
    m->state = (Saturn__V1__JobState)ev->state;
    m->message = (char *)ev->message;
    m->worker_id = (char *)(ev->worker_id ? ev->worker_id : "");
}

/* Sends one message on a watcher's stream. Returns 0, or ends the watcher
 * and returns its error. */
static int watcher_send_pb(struct watcher *w, const Saturn__V1__JobEvent *m)
{
    int rc = rpc_stream_send(w->call, &m->base);
    if (rc == SAT_ETOOBIG)
        watcher_end(w, SAT_ETOOBIG, "watcher too slow: too many events waiting");
    else if (rc == SAT_ENOMEM)
        watcher_end(w, SAT_ENOMEM, "out of memory");
    /* SAT_ECANCELLED: the cancel callback ends it. */
    return rc;
}

static int watcher_send(struct watcher *w, const struct store_event *ev)
{
    Saturn__V1__JobEvent m;
    event_to_pb(ev, &m);
    return watcher_send_pb(w, &m);
}

void coord_event_send_pb(struct coord *c, struct job *j, const Saturn__V1__JobEvent *m)
{
    (void)c;
    for (struct watcher *w = j->watchers, *n; w; w = n) {
        n = w->next;
        watcher_send_pb(w, m);
    }
}

void coord_event_publish(struct coord *c, struct job *j, const struct store_event *ev)
{
    (void)c;
    for (struct watcher *w = j->watchers, *n; w; w = n) {
        n = w->next;
        watcher_send(w, ev);
    }
    if (coord_job_terminal(j->state)) {
        while (j->watchers)
            watcher_end(j->watchers, 0, "");
    }
}

int coord_event(struct coord *c, struct job *j, const char *kind, const char *worker_id,
                const char *fmt, ...)
{
    char msg[COORD_REASON_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sat_utf8_trim(msg);
    struct store_event ev = {
        .job_id = j->id,
        .time_ms = coord_now_ms(),
        .kind = kind,
        .state = j->state,
        .message = msg,
        .worker_id = worker_id ? worker_id : "",
    };
    int rc = store_event_add(c->store, &ev);
    if (rc != 0) {
        /* Not stored, not shown: a watcher never sees what a replay after
         * a restart would not. */
        log_error("events: %s %s not stored: %s", j->id, kind, msg);
        return rc;
    }
    log_info("job %s: %s: %s", j->id, kind, msg);
    coord_event_publish(c, j, &ev);
    return rc;
}

struct replay {
    struct watcher *w;
    int rc;
};

static int replay_one(void *arg, const struct store_event *ev)
{
    struct replay *r = arg;
    /* Rows written by older versions may hold invalid UTF-8. */
    char msg[COORD_REASON_LEN];
    snprintf(msg, sizeof msg, "%s", ev->message);
    sat_utf8_trim(msg);
    sat_utf8_sanitize(msg);
    struct store_event e = *ev;
    e.message = msg;
    r->rc = watcher_send(r->w, &e);
    return r->rc; /* stop at the first failure: the watcher is gone */
}

bool coord_watch_start(struct coord *c, struct rpc_call *call, struct job *j, uint64_t after_seq)
{
    if (c->stopping) {
        rpc_reply_err(call, SAT_EUNAVAIL, "coordinator is shutting down");
        return false;
    }
    if (c->nwatchers >= COORD_MAX_WATCHERS) {
        rpc_reply_err(call, SAT_ETOOBIG, "too many watchers (%d)", COORD_MAX_WATCHERS);
        return false;
    }
    struct watcher *w = sat_calloc(1, sizeof *w);
    if (!w) {
        rpc_reply_err(call, SAT_ENOMEM, "out of memory");
        return false;
    }
    w->c = c;
    w->job = j;
    w->call = call;
    w->next = j->watchers;
    if (j->watchers)
        j->watchers->prev = w;
    j->watchers = w;
    c->nwatchers++;
    rpc_call_on_cancel(call, on_watch_cancel, w);

    struct replay r = {.w = w, .rc = 0};
    int rc = store_events_load(c->store, j->id, after_seq, COORD_WATCH_REPLAY, replay_one, &r);
    if (r.rc != 0)
        return false; /* the watcher has ended (or its cancel callback will end it) */
    if (rc != 0) {
        watcher_end(w, SAT_EIO, "cannot read the job's events");
        return false;
    }
    if (coord_job_terminal(j->state)) {
        watcher_end(w, 0, "");
        return false;
    }
    return true;
}

void coord_watch_end_all(struct coord *c)
{
    for (size_t i = 0; i < c->njobs && c->nwatchers; i++) {
        struct job *j = c->jobs[i];
        while (j->watchers)
            watcher_end(j->watchers, SAT_EUNAVAIL, "coordinator is shutting down");
    }
}
