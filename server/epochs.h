/* epochs.h - a job's finished epochs as GetJob returns them (Job.epochs),
 * read from the store's metrics table (rows of kind "epoch").
 */
#ifndef SATURND_EPOCHS_H
#define SATURND_EPOCHS_H

#include <stddef.h>

#include "coord.h"
#include "saturn.pb-c.h"

/* One epoch's message and what it points to. */
struct epoch_slot {
    Saturn__V1__EpochResult msg;
    struct job_quant *quant;   /* (msg.n_quant) */
    Saturn__V1__QuantStat *qs; /* (msg.n_quant) their messages */
    Saturn__V1__QuantStat **qp;
};

/* The epochs of a job, owned; ptrs (n) is Job.epochs. */
struct epoch_results {
    struct epoch_slot *slots;
    Saturn__V1__EpochResult **ptrs;
    size_t n, cap;
};

/* Reads job_id's epochs into *r (zeroed first). Returns 0 or a SAT_E*
 * code; *r is to be freed either way. */
int epoch_results_load(struct store *st, const char *job_id, struct epoch_results *r);
void epoch_results_free(struct epoch_results *r);

#endif
