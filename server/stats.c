/* stats.c - duration histograms (stats.h). */
#include "stats.h"

/* From 0.5 ms (a pull of a small shard on loopback) to 10 s (a pull parked
 * behind a slow rank). */
const double coord_hist_bounds[COORD_HIST_NB] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void coord_hist_observe(struct coord_hist *h, double seconds)
{
    for (int i = 0; i < COORD_HIST_NB; i++) {
        if (seconds <= coord_hist_bounds[i]) {
            h->bucket[i]++;
            break;
        }
    }
    h->count++;
    h->sum += seconds;
}
