/* trainer.c - the training step shared by saturn-train and saturn-worker. */
#include "trainer.h"

#include "../util/xalloc.h"

#include <string.h>

void trainer_model_cfg(struct model_cfg *cfg, const struct job_spec *spec, int c, int h, int w,
                       int nclass, int batch)
{
    model_cfg_defaults(cfg, spec->model, c, h, w, nclass, batch);
    cfg->wbits = spec->wbits;
    cfg->abits = spec->abits;
    cfg->first_wbits = spec->first_wbits;
    cfg->last_wbits = spec->last_wbits;
    cfg->last_abits = spec->last_abits;
    cfg->clamp = spec->clamp;
    cfg->sat = spec->sat == SAT_OFF ? 0 : spec->sat == SAT_LAST ? 1 : 2;
    cfg->sat_fan_out = spec->sat_fan == SAT_FAN_OUT;
    cfg->cg = spec->act_quant == ACTQ_CGPACT;
    cfg->alpha_conv = spec->alpha_init_conv;
    cfg->alpha_fc = spec->alpha_init_fc;
    cfg->seed = spec->seed;
}

int trainer_init(struct trainer *t, const struct job_spec *spec, struct dataset *train,
                 struct dataset *test, int rank, int world, char err[SAT_ERR_LEN])
{
    memset(t, 0, sizeof *t);
    t->spec = *spec;
    t->train = *train;
    t->test = *test;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    t->rank = rank;
    t->world = world;
    t->order_epoch = -1;
    int rc;
    if (world < 1 || rank < 0 || rank >= world) {
        rc = sat_errf(err, SAT_EINVAL, "rank %d of %d is not valid", rank, world);
        goto fail;
    }
    if (spec->batch_size % world != 0) {
        rc = sat_errf(err, SAT_EINVAL, "batch_size %d is not divisible by %d workers",
                      spec->batch_size, world);
        goto fail;
    }
    t->local_batch = spec->batch_size / world;
    if (t->train.n < t->local_batch) {
        rc = sat_errf(err, SAT_EINVAL, "%d training images per rank, fewer than a batch of %d",
                      t->train.n, t->local_batch);
        goto fail;
    }
    t->steps_per_epoch = t->train.n / t->local_batch;
    t->total_steps = t->steps_per_epoch * spec->epochs;

    struct model_cfg cfg;
    trainer_model_cfg(&cfg, spec, t->train.c, t->train.h, t->train.w, t->train.nclass,
                      t->local_batch);
    rc = model_new(&t->model, &cfg, err);
    if (rc != 0)
        goto fail;
    const struct param_table *pt = model_param_table(t->model);
    size_t img = (size_t)t->train.c * t->train.h * t->train.w;
    t->all_idx = sat_malloc((size_t)t->train.n * sizeof(uint32_t));
    t->order = sat_malloc((size_t)t->train.n * sizeof(uint32_t));
    t->x = sat_malloc_aligned((size_t)t->local_batch * img * sizeof(float));
    t->y = sat_malloc((size_t)t->local_batch * sizeof(int32_t));
    t->mom = sat_calloc(pt->total ? pt->total : 1, sizeof(float));
    t->test_idx = sat_malloc((size_t)(t->test.n ? t->test.n : 1) * sizeof(uint32_t));
    if (!t->test_idx || !t->all_idx || !t->order || !t->x || !t->y || !t->mom) {
        rc = sat_errf(err, SAT_ENOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < (uint32_t)t->train.n; i++)
        t->all_idx[i] = i;
    for (uint32_t i = 0; i < (uint32_t)t->test.n; i++)
        t->test_idx[i] = i;
    t->sgd.momentum = spec->momentum;
    t->sgd.weight_decay = spec->weight_decay;
    t->sgd.nesterov = spec->nesterov;
    return 0;
fail:
    trainer_close(t);
    return rc;
}

void trainer_close(struct trainer *t)
{
    model_free(t->model);
    dataset_free(&t->train);
    dataset_free(&t->test);
    sat_free(t->all_idx);
    sat_free(t->order);
    sat_free(t->x);
    sat_free(t->y);
    sat_free(t->mom);
    sat_free(t->test_idx);
    memset(t, 0, sizeof *t);
}

int trainer_init_local(struct trainer *t, const struct job_spec *spec, char err[SAT_ERR_LEN])
{
    struct dataset train = {0}, test = {0};
    /* only the images a limit keeps are held in memory */
    int rc = dataset_load_named_n(&train, &test, spec->dataset,
                                  spec->data_dir[0] ? spec->data_dir : NULL, spec->train_limit,
                                  spec->test_limit, err);
    if (rc != 0)
        return rc;
    return trainer_init(t, spec, &train, &test, 0, 1, err);
}

void train_compute(struct trainer *t, long it, double *loss, int *correct)
{
    int epoch = train_epoch_of(t, it);
    long in_epoch = it - (long)epoch * t->steps_per_epoch;
    if (t->order_epoch != epoch) {
        dataset_epoch_order(t->order, t->all_idx, (uint32_t)t->train.n, t->spec.seed, epoch,
                            t->rank);
        t->order_epoch = epoch;
    }
    struct augment aug = train_augment(&t->spec);
    uint64_t pos0 = (uint64_t)in_epoch * (uint64_t)t->local_batch;
    loader_fill(t->x, t->y, &t->train, t->order + pos0, t->local_batch, &aug, t->spec.seed, epoch,
                t->rank, pos0);
    int ok = 0;
    double l = model_forward(t->model, t->x, t->y, t->local_batch, 1, &ok);
    model_zero_grad(t->model);
    model_backward(t->model, 1.0f / (float)t->spec.batch_size);
    *loss = l;
    *correct = ok;
}

int train_local_step(struct trainer *t, double *loss, int *correct, float *lr_used)
{
    train_compute(t, t->step, loss, correct);
    long warm = (long)(t->spec.warmup_epochs * (double)t->steps_per_epoch);
    float lr = lr_at(t->step, t->total_steps, warm, t->spec.lr);
    const struct param_table *pt = model_param_table(t->model);
    int rc = sgd_update(model_params(t->model), model_grads(t->model), t->mom, pt, 0, pt->total,
                        &t->sgd, lr);
    if (rc != 0)
        t->skipped++;
    t->step++;
    if (lr_used)
        *lr_used = lr;
    return rc;
}

void train_evaluate(struct trainer *t, double *loss_sum, long *correct, long *count)
{
    double ls = 0;
    long ok = 0, cnt = 0;
    for (int i0 = 0; i0 < t->test.n; i0 += t->local_batch) {
        int b = t->test.n - i0 < t->local_batch ? t->test.n - i0 : t->local_batch;
        loader_fill(t->x, t->y, &t->test, t->test_idx + i0, b, NULL, 0, 0, 0, 0);
        int c = 0;
        double l = model_forward(t->model, t->x, t->y, b, 0, &c);
        ls += l * b;
        ok += c;
        cnt += b;
    }
    *loss_sum = ls;
    *correct = ok;
    *count = cnt;
}
