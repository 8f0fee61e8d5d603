/* progress.h - struct job_progress (coord.h) as a value: clear, store
 * JSON, protobuf, live publish. Uses the store and events; nothing above.
 */
#ifndef SATURND_PROGRESS_H
#define SATURND_PROGRESS_H

#include "coord.h"

#include "saturn.pb-c.h"

#include <cJSON.h>

/* "alpha", "sat", "wvar" (QuantStat.kind), and back (-1: unknown). */
const char *job_quant_kind_name(enum job_quant_kind k);
int job_quant_kind_parse(const char *s);
/* Reads a JSON array [{name, kind, value}] (job_progress_quant_json) into
 * *out (sat_free it; NULL when empty); entries of unknown kinds are
 * skipped, names repaired to UTF-8. Returns the number read. */
int job_quant_from_json(const cJSON *a, struct job_quant **out);
/* qs[i] (and qp[i] = &qs[i]) from q[i], i < n; they point into q. */
void job_quant_to_pb(const struct job_quant *q, int n, Saturn__V1__QuantStat *qs,
                     Saturn__V1__QuantStat **qp);

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
