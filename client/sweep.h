/* sweep.h - `saturn sweep` (and `saturn run --grid`): the jobs of one
 * sweep as the CLI sees them, and their table.
 *
 * A sweep is nothing but jobs whose spec has the same "sweep" id. The CLI
 * reads them back with ListJobs (filtered by sweep on saturnd) and GetJob
 * (spec and progress); the grid a job belongs to is found again from the
 * specs: the fields whose values differ between the sweep's jobs, seed and
 * name apart (sweep_table.c). cmd_sweep.c submits, follows and cancels.
 */
#ifndef SATURN_SWEEP_H
#define SATURN_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

#include "../common/spec/jobspec.h"

#define SWEEP_MAX_JOBS 256  /* jobs of one sweep (the grid times the seeds) */
#define SWEEP_LABEL_LEN 256 /* "wbits=4 act_quant=pact" */
#define SWEEP_MAX_FIELDS 16 /* grid fields found in one sweep */

struct sweep_job {
    char id[64];
    char name[SPEC_NAME_LEN];
    char label[SWEEP_LABEL_LEN]; /* its grid point; "" when the sweep has one point */
    char *spec_json;             /* canonical (owned); NULL until read */
    uint64_t seed;
    int state;     /* JobState number */
    bool progress; /* the fields below are known */
    uint32_t epoch, epochs, test_epoch;
    uint64_t step, total_steps;
    double test_acc, images_per_s;
    int64_t start_ms, end_ms;
};

struct sweep {
    char id[SPEC_SWEEP_LEN];
    struct sweep_job *jobs; /* oldest first; owned */
    int njobs;
    char fields[SWEEP_MAX_FIELDS][SPEC_NAME_LEN]; /* the grid's fields */
    int nfields;
};

/* Reads (or re-reads) every job of sweep s->id from saturnd: ListJobs with
 * the sweep filter, then GetJob for each job not known to have ended.
 * Returns EXIT_OK, or the exit code of a failed call with *st filled
 * (nothing printed). */
int sweep_refresh(struct cli *c, struct sweep *s, struct rpc_status *st);
/* Frees what s owns. */
void sweep_free(struct sweep *s);
/* Finds the grid fields and each job's label from the specs read. */
void sweep_label(struct sweep *s);
/* True when j succeeded, failed or was cancelled. */
bool sweep_job_ended(const struct sweep_job *j);
/* True when every job has ended. */
bool sweep_done(const struct sweep *s);

/* Prints the table of final metrics, one row per grid point (test
 * accuracy mean and spread over seeds, epochs, images/s, wall time): text,
 * --json (one object) or --markdown. */
void sweep_print_table(const struct cli *c, const struct sweep *s);
/* One line of progress of job j: id, grid point, state, epoch, step, test
 * accuracy; into buf. */
void sweep_job_line(const struct sweep_job *j, char *buf, size_t cap);

#endif
