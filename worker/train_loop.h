/* train_loop.h - what a worker does with an assignment: the training loop
 * (train_loop.c) and the hook the session runs on its runner thread.
 *
 * worker_run_assignment trains the assignment (worker_train: pull ->
 * forward/backward on the shard -> push), using `rpc` for the
 * ParameterServer and Worker.FetchData / ReportMetrics calls, and returns
 * promptly once the session sets the run_ctl's stop flag (run.h).
 */
#ifndef SATURN_WORKER_TRAIN_LOOP_H
#define SATURN_WORKER_TRAIN_LOOP_H

#include "run.h"

#include "../common/rpc/rpc.h"

/* Runs one assignment on the runner thread. Returns 0 when it stopped
 * because it was told to (or finished its work), else SAT_E* with a reason
 * in err (the session then logs it). `rpc` may be used from this thread
 * while the session heartbeats on the same client. */
int worker_run_assignment(struct rpc_client *rpc, const struct worker_assignment *a,
                          struct run_ctl *ctl, char err[SAT_ERR_LEN]);

/* The training loop: sets the engine's thread count to a->threads
 * (nn_set_threads), fetches the rank's data from saturnd and trains from the
 * job's current step. Returns 0 when training is done or the job is over
 * (stopped by the session, by ReportMetrics, or by a PS status saying the
 * job is gone), else SAT_E* with err. */
int worker_train(struct rpc_client *rpc, const struct worker_assignment *a, struct run_ctl *ctl,
                 char err[SAT_ERR_LEN]);

#endif
