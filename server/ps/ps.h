/* ps.h - saturnd's parameter server: one state per running job.
 *
 * Everything here runs on the loop thread (no locks), except the job's
 * set-up (data set, model, initial values), which runs once in libuv's
 * thread pool on a state that nothing else can see yet.
 *
 * The parameters. The PS builds the job's `struct model` with batch
 * capacity 1: its flat parameter buffer IS the PS's parameter buffer, its
 * buffer table holds the BN running statistics, and ckpt_save / ckpt_load
 * / model_digest work on it directly. The momentum buffer lies alongside.
 * The model never runs forward.
 *
 * Shards are contiguous ranges of the flat parameter buffer of at most
 * PS_SHARD_MAX floats (4 MiB); the BN buffers travel with shard 0.
 *
 * Steps and versions. Every rank computes global steps 0..total_steps-1 in
 * order, one gradient per shard per step. For each shard the PS counts,
 * per rank, the steps pushed (pushed[r]: rank r has pushed steps
 * 0..pushed[r]-1); the shard's clock is the minimum over ranks.
 *  - bsp: step t of a shard is applied when every rank has pushed it: the
 *    gradients are summed in rank order into a float accumulator (so a run
 *    is bit-for-bit repeatable), checked for finiteness (a non-finite step
 *    is skipped and counted), and applied with sgd_update on the shard's
 *    range with lr_at(t, total_steps, warmup_steps, lr), exactly as
 *    train_local_step does. The BN buffers become the mean of the ranks'
 *    (rank order). version = clock = steps applied.
 *  - ssp:S and asp: each push is applied when it arrives, as pushed: a
 *    rank's gradient is its sum over the local batch / the global batch,
 *    so the world's pushes of one step move the parameters about as far as
 *    one bsp step (the design said "scaled by world"; that doubles the
 *    effective learning rate with 2 workers and cost 10-17 points of
 *    accuracy, see docs/training.md). The schedule position (for lr_at) is
 *    the number of pushes applied to the shard divided by world, and so is
 *    version. The BN buffers are the mean of each rank's latest.
 *  - Pull(min_version = t), t being the step the caller will compute next,
 *    waits until every rank has pushed every step < t - S (bsp: S = 0, so
 *    version >= t; ssp:S: S; asp: S = infinity, no wait). With exact set
 *    it waits with S = 0 whatever the mode: workers use it for the
 *    parameters at an epoch end, which they evaluate.
 *
 * A job succeeds when every shard's clock is total_steps and every rank
 * has reported the evaluation of the last epoch (ps_progress.c): the PS
 * then writes STATE_DIR/jobs/<id>/model.safetensors.
 *
 * Files and writes. Checkpoints (STATE_DIR/jobs/<id>/last.safetensors, at
 * epoch ends and every checkpoint_every steps) and the final model are
 * written in libuv's thread pool from a snapshot of the parameters taken
 * on the loop thread (ps_write.c), one write at a time.
 *
 * The wing's place. The PS uses coord.h's types, events, progress, stats
 * and the store; it never calls jobs, workers or the dispatcher. The
 * dispatcher finds a running job's PS and hands it to the handlers below;
 * the PS reports the end of training (success, or a failure of its own)
 * through the callback given to ps_job_start, once, and then answers
 * further calls as a finished job would until ps_job_stop frees it.
 */
#ifndef SATURND_PS_H
#define SATURND_PS_H

#include "../coord.h"
#include "../events.h"
#include "../progress.h"

#include "../../common/data/dataset.h"
#include "../../common/nn/model.h"
#include "../../common/nn/optim.h"
#include "../../common/spec/jobspec.h"

#include "saturn.pb-c.h"

#define PS_SHARD_MAX (1u << 20)    /* floats per shard by default: 4 MiB */
#define PS_PULL_MAX_WAIT_MS 120000 /* a Pull/GetLayout waits at most this long */
#define PS_PROGRESS_EVERY_MS 300   /* live progress events at most this often */
#define PS_WRITE_RETRY_MS 1000     /* a failed checkpoint or model write is retried this often */

struct ps_shard {
    size_t off, n;    /* floats, into the flat parameter buffer */
    uint64_t *pushed; /* (world) steps pushed by each rank */
    uint64_t clock;   /* min over ranks of pushed */
    uint64_t applied; /* pushes applied (ssp/asp) */
    uint64_t version; /* bsp: steps applied; ssp/asp: applied / world */
    /* bsp: the gradients of step `clock`, by rank; ssp/asp: unused. */
    float *slots;        /* (world, n) */
    unsigned char *have; /* (world) rank has pushed step `clock` (bsp) */
    int nhave;
};

/* A call parked until its condition holds (Pull, GetLayout). */
struct ps_wait {
    struct ps_job *ps;
    struct rpc_call *call;
    int kind; /* 0 pull, 1 layout */
    uint32_t shard, rank;
    uint64_t min_version;
    bool exact;
    uint64_t deadline;  /* uv_now() ms */
    uint64_t t_arrival; /* uv_hrtime() ns when the call arrived (Pull statistics) */
    struct ps_wait *prev, *next;
};

/* Per-rank latest window of training metrics (metrics.c). */
struct ps_rank_stats {
    bool valid;
    double loss, ips, pull_s, compute_s, push_s, step_s;
    uint64_t correct, seen;
};

/* Per-epoch accumulation of the ranks' epoch-end reports (metrics.c). */
struct ps_epoch {
    int nreported;
    uint64_t eval_correct, eval_seen, train_correct, train_seen;
    double loss_sum, ips_sum;
};

/* How the PS reports the end of a job's training (success, or a failure
 * of its own: set-up, the final write). Called at most once, never from
 * inside ps_job_start; the job's owner then calls ps_job_stop later. */
typedef void (*ps_end_cb)(struct coord *c, struct job *j, enum job_state st, const char *reason);

struct ps_job {
    struct coord *c;
    ps_end_cb on_end;
    struct job *job;
    uint32_t attempt;
    struct job_spec spec;
    int world, staleness; /* staleness: bsp 0, ssp S, asp -1 (none) */
    size_t shard_floats;  /* shard size cap (saturnd --shard-floats) */
    char dir[640];        /* STATE_DIR/jobs/<id> */
    int init_fd;          /* init_from opened (owned), -1 if none */

    /* Set up in the thread pool (ps_setup.c, load_work). */
    uv_work_t work;
    bool loading, ready, ended;
    /* ps_write.c: one write in the thread pool at a time, from a snapshot
     * (a second model of batch capacity 1, and its momentum). */
    uv_work_t wwork;
    bool writing, write_final, ckpt_wanted, final_wanted;
    bool paused;        /* the last write failed: pulls wait until a retry works */
    uint64_t retry_at;  /* uv_now() of the next retry while paused */
    struct model *snap;
    float *snap_mom;
    uint64_t snap_step;
    int write_rc;
    char write_err[SAT_ERR_LEN];
    int load_rc;
    char load_err[SAT_ERR_LEN];
    struct dataset train, test;
    struct model *model;    /* batch capacity 1; params = the PS's parameters */
    struct ps_store *store; /* ps_store.c: what Pull replies send from (NULL until the first) */
    uint64_t store_copies;  /* updates that wrote a fresh copy (a reply still held the storage) */
    float *mom;             /* (param_count) momentum */
    float *guard_p, *guard_m, *guard_bn; /* ps_check.c: values before an update */
    float *bn_slots;        /* (world, bn_count) BN buffers by rank */
    unsigned char *bn_have; /* (world) ssp/asp: rank has pushed BN buffers */
    struct sgd_cfg sgd;
    size_t param_count, bn_count;
    int local_batch;
    uint64_t steps_per_epoch, total_steps, warmup_steps;
    uint64_t start_step; /* resumed from a checkpoint at this step (0 = fresh) */

    int nshards;
    struct ps_shard *shards;
    uint64_t clock;   /* min over shards of their clock */
    uint64_t skipped; /* non-finite steps skipped (bsp) / pushes skipped (ssp/asp) */
    float last_lr;
    uint64_t last_ckpt_step;

    struct ps_wait *waits; /* parked calls */

    /* ps_progress.c */
    struct ps_rank_stats *rstats; /* (world) */
    struct ps_epoch *epochs;      /* (spec.epochs) */
    unsigned char *ep_reported;   /* (spec.epochs * world) */
    uint64_t t_start_ms;          /* uv_now() when the PS became ready */
    uint64_t last_progress_ms;
    bool finishing;     /* training is over (or failed): calls are answered as for a finished job */
    bool end_reported;  /* on_end has been called */
};

/* ---- ps_setup.c ---- */

/* Starts the parameter server of a job that has just started running:
 * the data set, the model and its initial values (init_fd: the checkpoint
 * init_from names, opened by the caller, or -1) are set up in the thread
 * pool; until then GetLayout waits. init_fd belongs to the PS from the
 * call on, also when it fails. Returns 0, or SAT_E* with err (on_end is
 * not called then; the caller fails the job). */
int ps_job_start(struct coord *c, struct job *j, int init_fd, ps_end_cb on_end,
                 char err[SAT_ERR_LEN]);
/* The job has ended (any terminal state, already recorded in j): the
 * progress is refreshed a last time, every parked call is answered
 * (FAILED_PRECONDITION, "no longer running") and the state freed (at once,
 * or when its work in the thread pool returns). j->ps is NULL after. */
void ps_job_stop(struct coord *c, struct job *j);
/* Answers every parked call with UNAVAILABLE (shutdown). */
void ps_stop_all(struct coord *c);
/* Whether the PS serves training calls: set up, and training not over. */
static inline bool ps_serving(const struct ps_job *ps)
{
    return ps->ready && !ps->finishing && !ps->ended;
}

/* ---- ps.c ---- */

/* Expires parked calls past their deadline; runs on the periodic timer. */
void ps_tick(struct coord *c);

/* Handlers. The dispatcher has found the job's PS (running job, right
 * attempt) and passes it in with the unpacked request. */
void ps_get_layout(struct ps_job *ps, struct rpc_call *call,
                   const Saturn__V1__GetLayoutRequest *req);
void ps_pull(struct ps_job *ps, struct rpc_call *call, const Saturn__V1__PullRequest *req);
void ps_push(struct ps_job *ps, struct rpc_call *call, const Saturn__V1__PushRequest *req);
/* Chooses where a Push's gradient is copied as it is decoded (see struct
 * rpc_land): straight into its rank's slot when, in bsp, it is the push of
 * the current step that the shard still awaits from that rank; else
 * nowhere (it stays in the request). The slot is read only once ps_push
 * accepts the push, so a push refused later changes nothing. */
void ps_land_push(struct ps_job *ps, struct rpc_land *land, const Saturn__V1__PushRequest *req);

/* Internals shared by the wing's files. */
void ps__wait_finish(struct ps_wait *w, int sat_err, const char *msg);
void ps__wait_unlink(struct ps_wait *w);
/* Answers the parked pulls whose condition now holds. */
void ps__wake_pulls(struct ps_job *ps);
void ps__reply_layout(struct ps_job *ps, struct rpc_call *call, uint32_t rank);
/* Reports the end once (finishing is set); see ps_end_cb. */
void ps__end(struct ps_job *ps, enum job_state st, const char *reason);
/* Frees a state nothing refers to any more (ps_setup.c). */
void ps__free(struct ps_job *ps);
/* No work of ps is in the thread pool. */
static inline bool ps__idle(const struct ps_job *ps)
{
    return !ps->loading && !ps->writing;
}

/* ---- ps_check.c ---- */

/* A pushed gradient (n floats) and BN buffers (nb floats, 0 for none) must
 * be finite, running variances >= 0: else SAT_EINVAL naming the field. */
int ps__check_push(const struct ps_job *ps, const float *grad, size_t n, const float *bn, size_t nb,
                   char why[SAT_ERR_LEN]);
/* A metrics report must be consistent (correct <= seen; finite,
 * non-negative loss, times and rate): else SAT_EINVAL naming the field. */
int ps__check_metrics(const Saturn__V1__ReportMetricsRequest *req, char why[SAT_ERR_LEN]);
/* The undo buffers of an update (set-up; freed by ps__free). */
int ps__guard_init(struct ps_job *ps);
void ps__guard_free(struct ps_job *ps);
/* Saves parameters and momentum [lo, hi) (and the BN buffers when bn)
 * before an update; ps__guard_check then keeps the update if all of it is
 * finite, else restores the saved values and returns false. */
void ps__guard_save(struct ps_job *ps, size_t lo, size_t hi, bool bn);
bool ps__guard_check(struct ps_job *ps, size_t lo, size_t hi, bool bn);
/* Counts a step (bsp) or push (ssp/asp) that was not applied and records
 * why in the job's events (the first PS_SKIP_EVENTS of them). */
void ps__step_skipped(struct ps_job *ps, uint64_t step, const char *why);

/* ---- ps_store.c ---- */

/* Pull replies send the shard's values and the BN buffers straight from
 * the model's storage (rpc_reply_held) instead of packing a copy of them.
 * ps__store_hold returns the hold for a reply (NULL when none could be
 * made: then pack a copy). Before anything writes the parameters or BN
 * buffers, ps__store_own gives the model a copy of them when a reply is
 * still being sent from the storage (the old storage is freed with the
 * last such reply); SAT_ENOMEM if that copy cannot be made (then nothing
 * may be written). ps__store_free hands the storage over the same way at
 * teardown, before model_free. */
struct rpc_hold *ps__store_hold(struct ps_job *ps);
int ps__store_own(struct ps_job *ps);
void ps__store_free(struct ps_job *ps);

/* ---- ps_write.c ---- */

/* Allocates the snapshot model (thread pool, during set-up). */
int ps_write_init(struct ps_job *ps, const struct model_cfg *cfg, char err[SAT_ERR_LEN]);
void ps_write_free(struct ps_job *ps);
/* Writes last.safetensors of the current step in the thread pool (after
 * the write under way, if any). */
void ps_write_checkpoint(struct ps_job *ps);
/* Writes model.safetensors in the thread pool, then reports the job's end
 * (succeeded). */
void ps_write_final(struct ps_job *ps);
/* A write that failed pauses the job (pulls wait, ps->paused) and is tried
 * again every PS_WRITE_RETRY_MS from the periodic timer (now: uv_now);
 * when it works, training goes on (or the job ends, for the model). */
void ps_write_retry(struct ps_job *ps, uint64_t now);

/* ---- ps_data.c ---- */
void ps_fetch_data(struct ps_job *ps, struct rpc_call *call,
                   const Saturn__V1__FetchDataRequest *req);

/* ---- ps_progress.c ---- */

/* Worker.ReportMetrics for a running job's PS. */
void ps_report_metrics(struct ps_job *ps, struct rpc_call *call,
                       const Saturn__V1__ReportMetricsRequest *req);
/* Allocates the metrics state of a PS that just became ready. */
int ps_metrics_init(struct ps_job *ps);
void ps_metrics_free(struct ps_job *ps);
/* Refreshes j->prog from its PS (step, epoch, lr, ETA; with `full` also the
 * parameter digest and the per-layer alphas and SAT factors). The PS calls
 * it where the values change: cheaply when its clock moves or a rank
 * reports, fully at set-up, epoch ends and the end. Readers only read. */
void ps_progress_refresh(struct ps_job *ps, bool full);
/* Starts the final write if every step is applied and the last epoch
 * evaluated. */
void ps_maybe_finish(struct ps_job *ps);

#endif
