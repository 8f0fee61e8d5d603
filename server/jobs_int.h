/* jobs_int.h - what jobs.c shares with recovery.c, and nothing else. */
#ifndef SATURND_JOBS_INT_H
#define SATURND_JOBS_INT_H

#include "coord.h"

/* Moves j to state `to`, storing row, history entry and event in one
 * transaction, then publishing the event. Returns 0, or SAT_EUNAVAIL when
 * the store refused the write: then nothing changed in memory. */
int jobs__change(struct coord *c, struct job *j, enum job_state to, const char *kind,
                 const char *worker_id, const char *reason);
/* Hands the worker-less ranks of a recovering job to idle workers; runs
 * the job again when every rank has one. Returns the workers it took. */
size_t jobs__handover(struct coord *c, struct job *j);

#endif
