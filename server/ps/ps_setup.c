/* ps_setup.c - a job's parameter-server state: set-up in the thread pool
 * (data set, model, initial values, buffers), the answer to the GetLayout
 * calls that waited for it, the report of the end, and teardown when the
 * job ends (see ps.h). */
#include "ps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/train/trainer.h"
#include "../../common/util/log.h"
#include "../../common/util/utf8.h"
#include "../../common/util/xalloc.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ==== set-up (thread pool) ================================================= */

static int mkdir_one(const char *p)
{
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return SAT_EIO;
    return 0;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Loads init_from from the file the loop thread opened (paths.c: inside
 * the import dir, or a job's model in the state dir). The reader's message
 * may quote the file's bytes or size, so it goes to the log only and the
 * job's reason (shown to clients and on the dashboard) stays generic. */
static int load_init(struct ps_job *ps, char err[SAT_ERR_LEN])
{
    char path[64], detail[SAT_ERR_LEN];
    snprintf(path, sizeof path, "/proc/self/fd/%d", ps->init_fd);
    int rc = ckpt_load_init(path, ps->model, detail);
    close(ps->init_fd);
    ps->init_fd = -1;
    if (rc == 0)
        return 0;
    const char *name = ps->spec.init_from;
    log_warn("ps %s: init_from %s: %s", ps->job->id, name, detail);
    return sat_errf(err, rc, "init_from \"%.*s\": %s (details in saturnd's log)",
                    (int)sat_utf8_cut(name, 120), name,
                    rc == SAT_ESHAPE ? "a checkpoint of another model or shape"
                                     : "not a readable Saturn checkpoint");
}

/* Runs in libuv's thread pool on a state nothing else sees yet: loads the
 * data set, builds the model (batch capacity 1), loads init_from or the
 * checkpoint of an earlier attempt, and sizes every buffer once. */
static void load_work(uv_work_t *w)
{
    struct ps_job *ps = container_of(w, struct ps_job, work);
    char *err = ps->load_err;
    const struct job_spec *sp = &ps->spec;
    /* The data set's directory is resolved again here, under the data
     * roots, as it is opened; only the images a limit keeps are held in
     * memory. */
    char dir[PATH_MAX];
    int rc = coord_paths_data_dir(&ps->c->paths, sp->dataset, sp->data_dir, dir, err);
    if (rc == 0)
        rc = dataset_load_named_n(&ps->train, &ps->test, sp->dataset, dir[0] ? dir : NULL,
                                  sp->train_limit, sp->test_limit, err);
    if (rc != 0)
        goto out;
    int W = ps->world;
    if (sp->batch_size % W != 0) {
        rc = sat_errf(err, SAT_EINVAL, "batch_size %d is not divisible by %d workers",
                      sp->batch_size, W);
        goto out;
    }
    ps->local_batch = sp->batch_size / W;
    /* Every rank and the PS agree on one schedule: the smallest shard sets
     * the steps per epoch (shards differ by at most one image). */
    uint32_t min_shard = UINT32_MAX;
    for (int r = 0; r < W; r++) {
        uint32_t n = dataset_shard_size((uint32_t)ps->train.n, r, W);
        if (n < min_shard)
            min_shard = n;
    }
    if (min_shard < (uint32_t)ps->local_batch) {
        rc = sat_errf(err, SAT_EINVAL,
                      "%" PRIu32 " training images per rank, fewer than a local batch of %d "
                      "(%d images, %d workers, batch_size %d)",
                      min_shard, ps->local_batch, ps->train.n, W, sp->batch_size);
        goto out;
    }
    ps->steps_per_epoch = min_shard / (uint32_t)ps->local_batch;
    ps->total_steps = ps->steps_per_epoch * (uint64_t)sp->epochs;
    /* The same rounding as train_local_step. */
    ps->warmup_steps = (uint64_t)(long)(sp->warmup_epochs * (double)ps->steps_per_epoch);

    struct model_cfg cfg;
    trainer_model_cfg(&cfg, sp, ps->train.c, ps->train.h, ps->train.w, ps->train.nclass, 1);
    rc = model_new(&ps->model, &cfg, err);
    if (rc != 0)
        goto out;
    ps->param_count = model_param_table(ps->model)->total;
    ps->bn_count = model_buffer_table(ps->model)->total;
    rc = ps_write_init(ps, &cfg, err);
    if (rc != 0)
        goto out;
    ps->mom = sat_calloc(ps->param_count ? ps->param_count : 1, sizeof(float));
    ps->bn_slots = sat_calloc((size_t)W * (ps->bn_count ? ps->bn_count : 1), sizeof(float));
    ps->bn_have = sat_calloc((size_t)W, 1);
    if (ps__guard_init(ps) != 0) {
        rc = sat_errf(err, SAT_ENOMEM, "out of memory");
        goto out;
    }
    size_t cap = ps->shard_floats;
    ps->nshards = (int)((ps->param_count + cap - 1) / cap);
    if (ps->nshards < 1)
        ps->nshards = 1;
    ps->shards = sat_calloc((size_t)ps->nshards, sizeof *ps->shards);
    if (!ps->mom || !ps->bn_slots || !ps->bn_have || !ps->shards) {
        rc = sat_errf(err, SAT_ENOMEM, "out of memory");
        goto out;
    }
    for (int s = 0; s < ps->nshards; s++) {
        struct ps_shard *sh = &ps->shards[s];
        sh->off = (size_t)s * cap;
        sh->n = ps->param_count - sh->off < cap ? ps->param_count - sh->off : cap;
        sh->pushed = sat_calloc((size_t)W, sizeof *sh->pushed);
        sh->have = sat_calloc((size_t)W, 1);
        if (ps->staleness == 0)
            sh->slots = sat_malloc((size_t)W * (sh->n ? sh->n : 1) * sizeof(float));
        if (!sh->pushed || !sh->have || (ps->staleness == 0 && !sh->slots)) {
            rc = sat_errf(err, SAT_ENOMEM, "out of memory");
            goto out;
        }
    }
    ps->sgd.momentum = sp->momentum;
    ps->sgd.weight_decay = sp->weight_decay;
    ps->sgd.nesterov = sp->nesterov;

    char last[sizeof ps->dir + 32];
    snprintf(last, sizeof last, "%s/last.safetensors", ps->dir);
    if (ps->attempt > 1 && file_exists(last)) {
        /* An earlier attempt checkpointed: resume from it exactly (bsp). */
        long step = 0;
        rc = ckpt_load(last, ps->model, ps->mom, &step, err);
        if (rc != 0)
            goto out;
        if ((uint64_t)step > ps->total_steps) {
            rc = sat_errf(err, SAT_EFORMAT, "%s: step %ld is past the job's %" PRIu64 " steps",
                          last, step, ps->total_steps);
            goto out;
        }
        ps->start_step = (uint64_t)step;
    } else {
        if (ps->init_fd >= 0) {
            rc = load_init(ps, err);
            if (rc != 0)
                goto out;
        }
        /* A fresh start: the PS, which holds the parameters and the whole
         * training set, calibrates on rank 0's step-0 batch before any
         * rank can pull (GetLayout waits for this set-up). */
        if (sp->alpha_init == ALPHA_INIT_CALIBRATE) {
            int nset = 0;
            rc = calib_rank0(ps->model, &cfg, &ps->train, sp, W, &nset, err);
            if (rc != 0)
                goto out;
            log_info("ps %s: %d alphas calibrated to the %g percentile of their input", ps->job->id,
                     nset, (double)sp->alpha_percentile);
        }
    }
    ps->clock = ps->start_step;
    ps->last_ckpt_step = ps->start_step;
    for (int s = 0; s < ps->nshards; s++) {
        struct ps_shard *sh = &ps->shards[s];
        for (int r = 0; r < W; r++)
            sh->pushed[r] = ps->start_step;
        sh->clock = ps->start_step;
        sh->applied = ps->start_step * (uint64_t)W;
        sh->version = ps->start_step;
    }
    rc = 0;
out:
    ps->load_rc = rc;
}

void ps__free(struct ps_job *ps)
{
    while (ps->waits)
        ps__wait_finish(ps->waits, SAT_ESTATE, "job is no longer running");
    ps_metrics_free(ps);
    ps_write_free(ps);
    ps__store_free(ps); /* before model_free: a reply may still send from the storage */
    model_free(ps->model);
    dataset_free(&ps->train);
    dataset_free(&ps->test);
    sat_free(ps->mom);
    sat_free(ps->bn_slots);
    sat_free(ps->bn_have);
    ps__guard_free(ps);
    for (int s = 0; ps->shards && s < ps->nshards; s++) {
        sat_free(ps->shards[s].pushed);
        sat_free(ps->shards[s].have);
        sat_free(ps->shards[s].slots);
    }
    sat_free(ps->shards);
    if (ps->init_fd >= 0)
        close(ps->init_fd);
    sat_free(ps);
}

static void load_done(uv_work_t *w, int status)
{
    struct ps_job *ps = container_of(w, struct ps_job, work);
    struct coord *c = ps->c;
    ps->loading = false;
    if (ps->ended || c->stopping) {
        /* The job ended meanwhile (nobody refers to this state), or saturnd
         * is shutting down (the job keeps no pointer to it then). */
        if (!ps->ended && ps->job->ps == ps)
            ps->job->ps = NULL;
        ps__free(ps);
        return;
    }
    struct job *j = ps->job;
    if (status != 0 && ps->load_rc == 0)
        ps->load_rc = sat_errf(ps->load_err, SAT_EINTERNAL, "set-up was cancelled");
    if (ps->load_rc == 0 && ps_metrics_init(ps) != 0)
        ps->load_rc = sat_errf(ps->load_err, SAT_ENOMEM, "out of memory");
    if (ps->load_rc != 0) {
        char reason[COORD_REASON_LEN];
        snprintf(reason, sizeof reason, "cannot start training: %.*s",
                 (int)sat_utf8_cut(ps->load_err, 200), ps->load_err);
        log_warn("ps %s: %s", j->id, reason);
        ps__end(ps, JOB_FAILED, reason);
        return;
    }
    ps->ready = true;
    ps->t_start_ms = uv_now(c->loop);
    ps->last_lr = lr_at((long)(ps->clock ? ps->clock - 1 : 0), (long)ps->total_steps,
                        (long)ps->warmup_steps, ps->spec.lr);
    log_info("ps %s: ready: %s on %s, %zu parameters in %d shard%s, %zu BN values, %d images "
             "(%d test), %d worker%s x local batch %d, %" PRIu64 " steps/epoch, %" PRIu64
             " steps%s",
             j->id, ps->spec.model, ps->spec.dataset, ps->param_count, ps->nshards,
             ps->nshards == 1 ? "" : "s", ps->bn_count, ps->train.n, ps->test.n, ps->world,
             ps->world == 1 ? "" : "s", ps->local_batch, ps->steps_per_epoch, ps->total_steps,
             ps->start_step ? " (resumed from a checkpoint)" : "");
    if (ps->start_step)
        coord_event(c, j, "checkpoint", "", "resumed from %s/last.safetensors at step %" PRIu64,
                    ps->dir, ps->start_step);
    ps_progress_refresh(ps, true);
    /* Answer the GetLayout calls that waited for the set-up. */
    for (struct ps_wait *x = ps->waits, *n; x; x = n) {
        n = x->next;
        if (x->kind == 1) {
            struct rpc_call *call = x->call;
            uint32_t rank = x->rank;
            ps__wait_unlink(x);
            sat_free(x);
            ps__reply_layout(ps, call, rank);
        }
    }
}

void ps__end(struct ps_job *ps, enum job_state st, const char *reason)
{
    if (ps->end_reported)
        return;
    ps->end_reported = true;
    ps->finishing = true;
    ps->on_end(ps->c, ps->job, st, reason);
}

int ps_job_start(struct coord *c, struct job *j, int init_fd, ps_end_cb on_end,
                 char err[SAT_ERR_LEN])
{
    struct ps_job *ps = j->spec ? sat_calloc(1, sizeof *ps) : NULL;
    if (!ps) {
        if (init_fd >= 0)
            close(init_fd);
        if (!j->spec)
            return sat_errf(err, SAT_EINVAL, "the stored spec of %s no longer parses", j->id);
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    }
    ps->init_fd = init_fd;
    ps->c = c;
    ps->on_end = on_end;
    ps->job = j;
    ps->attempt = j->attempt;
    ps->world = j->workers;
    ps->shard_floats = c->shard_floats ? c->shard_floats : PS_SHARD_MAX;
    ps->spec = *j->spec;
    int rc;
    ps->staleness = ps->spec.consistency == CONS_BSP   ? 0
                    : ps->spec.consistency == CONS_SSP ? ps->spec.staleness
                                                       : -1;
    char jobs_dir[sizeof c->state_dir + 8];
    snprintf(jobs_dir, sizeof jobs_dir, "%s/jobs", c->state_dir);
    snprintf(ps->dir, sizeof ps->dir, "%s/%s", jobs_dir, j->id);
    if (mkdir_one(jobs_dir) != 0 || mkdir_one(ps->dir) != 0) {
        rc = sat_errf(err, SAT_EIO, "cannot create %s: %s", ps->dir, strerror(errno));
        if (init_fd >= 0)
            close(init_fd);
        sat_free(ps);
        return rc;
    }
    ps->loading = true;
    rc = uv_queue_work(c->loop, &ps->work, load_work, load_done);
    if (rc != 0) {
        if (init_fd >= 0)
            close(init_fd);
        sat_free(ps);
        return sat_errf(err, SAT_EINTERNAL, "uv_queue_work: %s", uv_strerror(rc));
    }
    j->ps = ps;
    job_progress_clear(&j->prog);
    return 0;
}

void ps_job_stop(struct coord *c, struct job *j)
{
    (void)c;
    struct ps_job *ps = j->ps;
    if (!ps)
        return;
    j->ps = NULL;
    ps->ended = true;
    if (ps->ready)
        ps_progress_refresh(ps, true);
    char msg[COORD_REASON_LEN + 64];
    snprintf(msg, sizeof msg, "job %s is no longer running (%s: %.*s)", j->id,
             coord_job_state_name(j->state), (int)sat_utf8_cut(j->reason, 200), j->reason);
    while (ps->waits)
        ps__wait_finish(ps->waits, SAT_ESTATE, msg);
    if (ps__idle(ps))
        ps__free(ps); /* else the work's after-callback frees it */
}

void ps_stop_all(struct coord *c)
{
    for (size_t i = 0; i < c->njobs; i++) {
        struct ps_job *ps = c->jobs[i]->ps;
        while (ps && ps->waits)
            ps__wait_finish(ps->waits, SAT_EUNAVAIL, "coordinator is shutting down");
    }
}
