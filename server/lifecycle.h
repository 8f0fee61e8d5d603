/* lifecycle.h - the coordinator's life (lifecycle.c): start-up, the one
 * periodic timer and the deferred phase, shutdown. The top of saturnd's
 * modules below main.c.
 */
#ifndef SATURND_LIFECYCLE_H
#define SATURND_LIFECYCLE_H

#include "coord.h"

struct coord_opts {
    const char *state_dir;
    unsigned lease_ms;   /* 500..600000 */
    size_t max_msg;      /* the RPC message cap (bytes): FetchData chunks fit in it */
    size_t shard_floats; /* parameter-server shard size cap in floats; 0 = default */
    const char *const *data_roots; /* --data-root (ndata_roots); none: the default */
    int ndata_roots;
    const char *import_dir; /* --import-dir; NULL: STATE_DIR/imports */
};

/* Opens the store, loads every job (re-queueing those that were running
 * when the previous daemon died), starts the periodic timer and the
 * deferred phase (which schedules first). */
int coord_init(struct coord *c, uv_loop_t *loop, const struct coord_opts *o, char err[SAT_ERR_LEN]);
/* Ends every watch stream (UNAVAILABLE), answers parked PS calls, stops the
 * timer and the deferred phase. The handles close on the loop; coord_close
 * then frees memory and closes the store. */
void coord_stop(struct coord *c);
void coord_close(struct coord *c);

#endif
