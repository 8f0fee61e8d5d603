/* progress.h - struct job_progress (coord.h) as a value: clear, store
 * JSON, protobuf, live publish. Uses the store and events; nothing above.
 */
#ifndef SATURND_PROGRESS_H
#define SATURND_PROGRESS_H

#include "coord.h"

#include "saturn.pb-c.h"

void job_progress_clear(struct job_progress *p);
/* Parses the JSON written by coord_progress_save into p (cleared first).
 * Returns 0 or SAT_EFORMAT. */
int job_progress_from_json(struct job_progress *p, const char *json);
/* The quantizer states as a JSON array (cJSON_free the result; NULL when
 * out of memory). */
char *job_progress_quant_json(const struct job_progress *p);
/* Persists j->prog (JSON) in the store; a failure is logged. */
void coord_progress_save(struct coord *c, struct job *j);
/* Fills m (and the quant array, quant_ptrs sized p->nquant) from p; the
 * message points into p. */
void job_progress_to_pb(const struct job_progress *p, const char *consistency,
                        Saturn__V1__JobProgress *m, Saturn__V1__QuantStat *quant,
                        Saturn__V1__QuantStat **quant_ptrs);
/* Sends a live "progress" event (seq 0, not stored) to j's watchers. */
void coord_progress_publish(struct coord *c, struct job *j);

#endif
