/* workers.h - the worker registry: registration, heartbeats, leases and
 * assignments (workers.c). Uses events and the store; never jobs or the PS.
 */
#ifndef SATURND_WORKERS_H
#define SATURND_WORKERS_H

#include "coord.h"

struct worker *coord_worker_find(struct coord *c, const char *id);
int coord_worker_register(struct coord *c, const char *name, uint32_t threads, const char *version,
                          const char *peer, struct worker **out, char err[SAT_ERR_LEN]);
/* Renews the lease. Reports what the worker runs; an ASSIGNED worker that
 * reports running its assignment counts as having acknowledged it. */
int coord_worker_heartbeat(struct coord *c, struct worker *w, bool running, const char *job_id,
                           uint32_t attempt);
/* Renews the lease and records an acknowledgement. Returns whether w still
 * holds that assignment (job_id, attempt); an acceptance marks it BUSY. A
 * refusal changes nothing here: what it means for the job is jobs.c's. */
bool coord_worker_ack(struct coord *c, struct worker *w, const char *job_id, uint32_t attempt,
                      bool accepted);
/* Takes w out of the pool (LOST or GONE, with why) and returns the job it
 * held (NULL if none). w stays valid until the next coord_workers_prune. */
struct job *coord_worker_drop(struct coord *c, struct worker *w, enum worker_state st,
                              const char *why);
/* Whether w is live and has not heartbeated for a lease (now: uv_now). */
bool coord_worker_expired(const struct coord *c, const struct worker *w, uint64_t now);
/* Drops the oldest lost/gone workers beyond COORD_MAX_DEAD_KEPT. */
void coord_workers_prune(struct coord *c);
/* Gives w rank `rank` of job j (state ASSIGNED) / takes it back (IDLE). */
void coord_worker_assign(struct coord *c, struct worker *w, struct job *j, uint32_t rank);
void coord_worker_release(struct coord *c, struct worker *w);
/* How many workers are idle (a count, not a lifecycle call). */
size_t coord_workers_idle(const struct coord *c);

#endif
