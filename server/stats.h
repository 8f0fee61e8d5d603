/* stats.h - saturnd's counters and duration histograms since start-up.
 *
 * The parameter server counts (ps/), the /metrics page reads (web/prom.c);
 * both on the loop thread, so plain integers do.
 */
#ifndef SATURND_STATS_H
#define SATURND_STATS_H

#include <stdint.h>

/* A histogram of durations in seconds. Finite buckets (their upper bounds,
 * ascending, coord_hist_bounds); +Inf is `count`. */
#define COORD_HIST_NB 14
extern const double coord_hist_bounds[COORD_HIST_NB];
struct coord_hist {
    uint64_t bucket[COORD_HIST_NB]; /* observations in (bounds[i-1], bounds[i]] */
    uint64_t count;                 /* every observation */
    double sum;
};

struct coord_stats {
    uint64_t pull_bytes;      /* parameter + BN bytes in Pull replies */
    uint64_t push_bytes;      /* gradient + BN bytes in Push requests */
    struct coord_hist pull_s; /* a Pull's arrival -> its reply (parked time included) */
    struct coord_hist push_s; /* the Push handler's time */
    int64_t start_ms;         /* wall clock at coord_init */
};

/* Counts one observation of `seconds` in h. */
void coord_hist_observe(struct coord_hist *h, double seconds);

#endif
