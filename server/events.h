/* events.h - job events: rows of the store, streamed live to WatchJob
 * callers. Below jobs and the parameter server: it knows the store and the
 * types of coord.h, nothing else.
 */
#ifndef SATURND_EVENTS_H
#define SATURND_EVENTS_H

#include "coord.h"

struct Saturn__V1__JobEvent;

/* Sends a recorded event (store_event_add has given it its seq) to j's
 * watchers; when j is terminal their streams then end with OK. */
void coord_event_publish(struct coord *c, struct job *j, const struct store_event *ev);
/* Records and publishes one event for j outside a state change (kinds
 * "acked", "started", ...). The state recorded is j's current state. */
int coord_event(struct coord *c, struct job *j, const char *kind, const char *worker_id,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends a prebuilt event (e.g. a live "progress" event, seq 0, not
 * stored) to j's watchers. */
void coord_event_send_pb(struct coord *c, struct job *j, const struct Saturn__V1__JobEvent *m);
/* Starts a WatchJob stream: replays up to COORD_WATCH_REPLAY stored events
 * after after_seq, then follows the job live until it ends. Takes
 * ownership of the call. Returns true while the stream follows the job
 * (the caller may then send it where the job stands now). */
bool coord_watch_start(struct coord *c, struct rpc_call *call, struct job *j, uint64_t after_seq);
/* Ends every stream (shutdown) with UNAVAILABLE. */
void coord_watch_end_all(struct coord *c);

#endif
