/* trainer.h - the training step shared by saturn-train and saturn-worker.
 *
 * A trainer holds one model replica, the images it trains on (the whole
 * training set for a local run, one rank's shard for a worker), the batch
 * buffers and the epoch order. train_compute() is THE step: it builds the
 * batch of (epoch, iteration) for this rank, runs forward and backward, and
 * leaves the gradient of the loss summed over this rank's images, scaled by
 * 1/global_batch, in model_grads(). A local run then updates the weights
 * itself (train_local_step); a distributed run pushes the gradients to the
 * parameter server, which sums them over ranks in rank order and updates.
 * So a single-process run and a distributed run differ only in where
 * gradients are summed.
 */
#ifndef SATURN_TRAINER_H
#define SATURN_TRAINER_H

#include <stdint.h>

#include "../data/dataset.h"
#include "../nn/model.h"
#include "../nn/optim.h"
#include "../spec/jobspec.h"

struct trainer {
    struct job_spec spec;
    struct model *model;
    struct dataset train; /* this rank's images (owned) */
    struct dataset test;  /* this rank's evaluation images (owned; may be empty) */
    int rank, world;
    int local_batch;       /* spec.batch_size / world */
    long steps_per_epoch;  /* floor(train.n / local_batch) */
    long total_steps;      /* steps_per_epoch * spec.epochs */
    uint32_t *all_idx;     /* 0..train.n-1 */
    uint32_t *order;       /* this epoch's order */
    uint32_t *test_idx;    /* 0..test.n-1 */
    int order_epoch;       /* epoch `order` was built for, -1 none */
    float *x;              /* (C, local_batch, H, W) */
    int32_t *y;            /* (local_batch) */
    float *mom;            /* momentum, laid out like the parameters (local runs) */
    struct sgd_cfg sgd;
    long step;             /* next global iteration */
    long skipped;          /* steps skipped for non-finite gradients */
};

/* Fills a model configuration from a validated spec and a data set shape. */
void trainer_model_cfg(struct model_cfg *cfg, const struct job_spec *spec, int c, int h, int w,
                       int nclass, int batch);

/* Sets up a trainer that owns `train` and `test` (moved in: the caller's
 * structs are emptied). rank/world say which part of the global batch this
 * replica computes; the images must already be this rank's shard. The model
 * capacity is max(local_batch, eval batch). Returns 0 or an error with a
 * message. On failure the data sets are freed. */
int trainer_init(struct trainer *t, const struct job_spec *spec, struct dataset *train,
                 struct dataset *test, int rank, int world, char err[SAT_ERR_LEN]);
void trainer_close(struct trainer *t);

/* Loads the spec's data set (honouring train_limit/test_limit) and sets up
 * a single-process trainer (rank 0 of 1). */
int trainer_init_local(struct trainer *t, const struct job_spec *spec, char err[SAT_ERR_LEN]);

/* The step: gradients of iteration `it` (global count; the epoch and the
 * batch within the epoch follow from it) for this rank, scaled by
 * 1/spec.batch_size. Writes the local loss (mean over this rank's images)
 * and the count of correct predictions. */
void train_compute(struct trainer *t, long it, double *loss, int *correct);

/* A local step: train_compute at t->step, then the SGD update with the
 * scheduled learning rate; advances t->step. Returns 0, or SAT_ENAN when
 * the step was skipped for non-finite gradients. */
int train_local_step(struct trainer *t, double *loss, int *correct, float *lr_used);

/* Evaluates on t->test: sums of loss*count and of correct predictions. */
void train_evaluate(struct trainer *t, double *loss_sum, long *correct, long *count);

/* The augmentation of a spec's training batches (random crop, padding 2,
 * and flip, when spec->augment). */
static inline struct augment train_augment(const struct job_spec *spec)
{
    struct augment a = {.enabled = spec->augment, .pad = 2, .flip = 1};
    return a;
}

/* ---------------------------------------------------------------------------
 * `alpha_init: calibrate` (calibrate.c): each PACT alpha set, once before
 * step 0, to the spec's alpha_percentile of its input on the first
 * training batch, quantizer by quantizer in forward order. Deterministic:
 * the same batch gives the same alphas for any thread count. An input with
 * no positive percentile keeps the fixed init. *nset (may be NULL)
 * receives how many alphas were set. All return 0, or SAT_ENOMEM /
 * SAT_EINVAL with a message; on failure the alphas may be partly set, and
 * the BN running statistics are always as they were.
 */
/* The nearest-rank percentile pct (0 < pct <= 100, read to 4 decimals) of
 * v[0..n): its ceil(pct/100 * n)-th smallest value. v is reordered. NaN
 * when n is 0, pct is out of range or a value is not finite. */
float calib_percentile(float *v, size_t n, float pct);
/* Calibrates m's alphas on the batch x (C, n, H, W), y (n). */
int calib_alphas(struct model *m, const float *x, const int32_t *y, int n, float pct, int *nset,
                 char err[SAT_ERR_LEN]);
/* Calibrates m (capacity >= local_batch) on step 0's batch of `rank`, whose
 * shard is the images ds[shard[i]] (len), built as train_compute does. */
int calib_first_batch(struct model *m, const struct dataset *ds, const uint32_t *shard,
                      uint32_t len, const struct job_spec *spec, int local_batch, int rank,
                      int *nset, char err[SAT_ERR_LEN]);
/* The trainer's own first batch (saturn-train: rank 0 of 1). */
int trainer_calibrate(struct trainer *t, int *nset, char err[SAT_ERR_LEN]);
/* For the parameter server, which holds the whole training set and a model
 * `dst` of any capacity built from cfg: calibrates on the step-0 batch of
 * rank 0 of `world` (with world 1, saturn-train's first batch), in a
 * temporary model of capacity batch_size / world, and copies the alphas
 * into dst. */
int calib_rank0(struct model *dst, const struct model_cfg *cfg, const struct dataset *train,
                const struct job_spec *spec, int world, int *nset, char err[SAT_ERR_LEN]);

/* Epoch of iteration `it`. */
static inline int train_epoch_of(const struct trainer *t, long it)
{
    return (int)(it / t->steps_per_epoch);
}

/* ---------------------------------------------------------------------------
 * Checkpoints (safetensors): parameters under their names, BN buffers under
 * theirs, momentum under "opt.momentum.<name>", and metadata "saturn.step",
 * "saturn.epoch", "saturn.seed", "saturn.arch", "saturn.spec" (canonical
 * JSON), "saturn.format" = "saturn-ckpt-1". Atomic.
 */
int ckpt_save(const char *path, struct model *m, const float *mom, const struct job_spec *spec,
              long step, char err[SAT_ERR_LEN]);
/* Loads parameters, buffers and (when mom is not NULL and the file has it)
 * momentum into m; every tensor of the model must be present with the
 * right shape. *step (may be NULL) receives the saved step. */
int ckpt_load(const char *path, struct model *m, float *mom, long *step, char err[SAT_ERR_LEN]);
/* Reads only the spec stored in a checkpoint. */
int ckpt_read_spec(const char *path, struct job_spec *spec, char err[SAT_ERR_LEN]);

/* Loads the initial values of a two-stage run (spec "init_from"): like
 * ckpt_load without momentum and step, except that PACT alphas (role
 * ROLE_ALPHA) absent from the file keep the model's values, so that a
 * float checkpoint can initialise a quantized model. Every other tensor
 * must be present with the model's shape; the architecture must match.
 * On failure the model may be partly loaded. */
int ckpt_load_init(const char *path, struct model *m, char err[SAT_ERR_LEN]);

/* FNV-1a 64 digest of the parameters and buffers, as 16 hex digits + NUL. */
void model_digest(struct model *m, char out[17]);
/* The same digest on raw buffers: nparams floats of parameters, then
 * nbuffers floats of buffers (model_digest is this on a model's). */
void param_digest(const float *params, size_t nparams, const float *buffers, size_t nbuffers,
                  char out[17]);

#endif
