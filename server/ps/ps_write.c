/* ps_write.c - the parameter server's files: checkpoints
 * (jobs/<id>/last.safetensors) and the trained model
 * (jobs/<id>/model.safetensors), written in libuv's thread pool.
 *
 * The loop thread copies the parameters, BN buffers and momentum into a
 * snapshot (a second model of batch capacity 1, allocated at set-up) and
 * queues the write; training goes on meanwhile. One write is under way at
 * a time: a checkpoint asked for during a write is taken (from the then
 * current state) when the write returns, and so is the final model. A
 * write that fails pauses the job: its pulls wait (no step is trained that
 * could not be kept) and the write is retried every PS_WRITE_RETRY_MS.
 */
#include "ps.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../common/train/trainer.h"
#include "../../common/util/log.h"
#include "../../common/util/utf8.h"
#include "../../common/util/xalloc.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

int ps_write_init(struct ps_job *ps, const struct model_cfg *cfg, char err[SAT_ERR_LEN])
{
    int rc = model_new(&ps->snap, cfg, err);
    if (rc != 0)
        return rc;
    ps->snap_mom = sat_calloc(ps->param_count ? ps->param_count : 1, sizeof(float));
    if (!ps->snap_mom)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    return 0;
}

void ps_write_free(struct ps_job *ps)
{
    model_free(ps->snap);
    sat_free(ps->snap_mom);
    ps->snap = NULL;
    ps->snap_mom = NULL;
}

static void write_work(uv_work_t *w)
{
    struct ps_job *ps = container_of(w, struct ps_job, wwork);
    char path[sizeof ps->dir + 32];
    snprintf(path, sizeof path, "%s/%s", ps->dir,
             ps->write_final ? "model.safetensors" : "last.safetensors");
    ps->write_rc = ckpt_save(path, ps->snap, ps->write_final ? NULL : ps->snap_mom, &ps->spec,
                             (long)ps->snap_step, ps->write_err);
}

static void write_done(uv_work_t *w, int status);

/* Takes the snapshot and queues the write (final or checkpoint). */
static void write_start(struct ps_job *ps, bool final)
{
    memcpy(model_params(ps->snap), model_params(ps->model), ps->param_count * sizeof(float));
    memcpy(model_buffers(ps->snap), model_buffers(ps->model), ps->bn_count * sizeof(float));
    if (!final)
        memcpy(ps->snap_mom, ps->mom, ps->param_count * sizeof(float));
    ps->snap_step = ps->clock;
    ps->write_final = final;
    ps->write_rc = 0;
    ps->write_err[0] = 0;
    int rc = uv_queue_work(ps->c->loop, &ps->wwork, write_work, write_done);
    if (rc != 0) {
        /* Nothing is under way: report as a failed write, at once. */
        ps->write_rc = sat_errf(ps->write_err, SAT_EINTERNAL, "uv_queue_work: %s",
                                uv_strerror(rc));
        ps->writing = true;
        write_done(&ps->wwork, 0);
        return;
    }
    ps->writing = true;
}

/* The final model is on disk: refresh the progress and report success. */
static void final_written(struct ps_job *ps)
{
    struct job *j = ps->job;
    char path[sizeof ps->dir + 32], reason[COORD_REASON_LEN];
    snprintf(path, sizeof path, "%s/model.safetensors", ps->dir);
    ps_progress_refresh(ps, true);
    snprintf(j->prog.model_path, sizeof j->prog.model_path, "%s", path);
    const struct ps_epoch *e = &ps->epochs[ps->spec.epochs - 1];
    double acc = e->eval_seen ? (double)e->eval_correct / (double)e->eval_seen : 0.0;
    snprintf(reason, sizeof reason,
             "trained %d epoch%s (%" PRIu64 " steps): test accuracy %.2f%% (%" PRIu64 "/%" PRIu64
             "), digest %s",
             ps->spec.epochs, ps->spec.epochs == 1 ? "" : "s", ps->total_steps, 100.0 * acc,
             e->eval_correct, e->eval_seen, j->prog.digest);
    coord_progress_save(ps->c, j);
    ps__end(ps, JOB_SUCCEEDED, reason);
}

static void write_done(uv_work_t *w, int status)
{
    struct ps_job *ps = container_of(w, struct ps_job, wwork);
    ps->writing = false;
    if (ps->ended) {
        if (ps__idle(ps))
            ps__free(ps);
        return;
    }
    if (status != 0 && ps->write_rc == 0)
        ps->write_rc = sat_errf(ps->write_err, SAT_EINTERNAL, "the write was cancelled");
    const char *what = ps->write_final ? "the trained model" : "a checkpoint";
    if (ps->write_rc != 0) {
        /* Nothing is trained on that could not be kept: the job pauses
         * (pulls wait) and the write is tried again. */
        log_error("ps %s: %s at step %" PRIu64 ": %s", ps->job->id, what, ps->snap_step,
                  ps->write_err);
        if (!ps->paused)
            coord_event(ps->c, ps->job, "paused", "",
                        "%s could not be written at step %" PRIu64
                        "; training waits until it can (retried every %d ms)",
                        what, ps->snap_step, PS_WRITE_RETRY_MS);
        ps->paused = true;
        ps->retry_at = uv_now(ps->c->loop) + PS_WRITE_RETRY_MS;
        return;
    }
    if (ps->paused) {
        ps->paused = false;
        coord_event(ps->c, ps->job, "resumed", "", "%s is written at step %" PRIu64
                    "; training goes on", what, ps->snap_step);
        ps__wake_pulls(ps);
    }
    if (ps->write_final) {
        final_written(ps);
        return;
    }
    ps->last_ckpt_step = ps->snap_step;
    log_debug("ps %s: checkpoint at step %" PRIu64 " written", ps->job->id, ps->snap_step);
    if (ps->c->stopping)
        return;
    if (ps->final_wanted) {
        ps->final_wanted = ps->ckpt_wanted = false;
        write_start(ps, true);
    } else if (ps->ckpt_wanted) {
        ps->ckpt_wanted = false;
        write_start(ps, false);
    }
}

void ps_write_retry(struct ps_job *ps, uint64_t now)
{
    if (!ps->paused || ps->writing || ps->ended || ps->c->stopping || now < ps->retry_at)
        return;
    write_start(ps, ps->write_final || ps->final_wanted);
}

void ps_write_checkpoint(struct ps_job *ps)
{
    if (ps->writing) {
        ps->ckpt_wanted = true;
        return;
    }
    write_start(ps, false);
}

void ps_write_final(struct ps_job *ps)
{
    if (ps->writing) {
        ps->final_wanted = true;
        return;
    }
    write_start(ps, true);
}
