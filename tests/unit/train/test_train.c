/* test_train.c - the training step end to end on the synthetic data set:
 * the loss falls, identical spec and seed give bit-identical parameters, a
 * checkpoint round trip is bit-exact, a resumed run matches an
 * uninterrupted one bit for bit, and a damaged checkpoint is refused.
 */
#include "check.h"
#include "nn/threads.h"
#include "train/trainer.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char spec_json[] =
    "{\"model\":\"cnn-small\",\"dataset\":\"synthetic\",\"epochs\":3,\"batch_size\":32,"
    "\"lr\":0.02,\"wbits\":4,\"abits\":4,\"seed\":3,\"augment\":true,\"weight_decay\":1e-4}";

static int setup(struct trainer *t, const char *json)
{
    struct job_spec spec;
    char err[SAT_ERR_LEN];
    int rc = jobspec_parse(&spec, json, strlen(json), err);
    if (rc) {
        fprintf(stderr, "spec: %s\n", err);
        return rc;
    }
    rc = trainer_init_local(t, &spec, err);
    if (rc)
        fprintf(stderr, "trainer: %s\n", err);
    return rc;
}

/* Runs steps [t->step, until) and returns the mean loss of the last epoch run. */
static double run_to(struct trainer *t, long until)
{
    double sum = 0;
    long cnt = 0;
    while (t->step < until) {
        double l;
        int ok;
        train_local_step(t, &l, &ok, NULL);
        sum += l;
        cnt++;
    }
    return cnt ? sum / cnt : 0;
}

static int same_state(struct trainer *a, struct trainer *b)
{
    const struct param_table *pt = model_param_table(a->model);
    size_t nb = model_buffer_table(a->model)->total;
    return memcmp(model_params(a->model), model_params(b->model), pt->total * 4) == 0 &&
           memcmp(model_buffers(a->model), model_buffers(b->model), nb * 4) == 0 &&
           memcmp(a->mom, b->mom, pt->total * 4) == 0;
}

int main(void)
{
    struct trainer a, b;
    char err[SAT_ERR_LEN];
    if (setup(&a, spec_json) != 0 || setup(&b, spec_json) != 0) {
        CHECK(0);
        return check_summary("train");
    }
    /* The loss falls: epoch 1 vs epoch 3, and test accuracy well above chance. */
    double first = run_to(&a, a.steps_per_epoch);
    run_to(&a, 2 * a.steps_per_epoch);
    double last = run_to(&a, a.total_steps);
    fprintf(stderr, "loss epoch 1 %.4f, epoch 3 %.4f\n", first, last);
    CHECK(last < 0.7 * first);
    double ls;
    long ok, cnt;
    train_evaluate(&a, &ls, &ok, &cnt);
    fprintf(stderr, "test accuracy %.3f over %ld\n", (double)ok / cnt, cnt);
    CHECK(cnt > 0);
    CHECK((double)ok / cnt > 0.5);

    /* Same spec and seed: bit-identical parameters, buffers and momentum,
     * here with one engine thread against the default (all CPUs, or 3 when
     * the machine has a single one), so results do not depend on threads. */
    int threads_default = nn_threads();
    nn_set_threads(1);
    run_to(&b, b.total_steps);
    nn_set_threads(threads_default > 1 ? threads_default : 3);
    CHECK(same_state(&a, &b));
    char da[17], db[17];
    model_digest(a.model, da);
    model_digest(b.model, db);
    CHECK(strcmp(da, db) == 0);
    trainer_close(&b);

    /* Resume: stop mid-epoch 2, checkpoint, continue in a fresh trainer. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/saturn-test-ckpt-%d.safetensors", (int)getpid());
    struct trainer c, d;
    CHECK_EQ_INT(setup(&c, spec_json), 0);
    long mid = c.steps_per_epoch + c.steps_per_epoch / 2 + 1;
    run_to(&c, mid);
    CHECK_EQ_INT(ckpt_save(path, c.model, c.mom, &c.spec, c.step, err), 0);
    CHECK_EQ_INT(setup(&d, spec_json), 0);
    long step = -1;
    CHECK_EQ_INT(ckpt_load(path, d.model, d.mom, &step, err), 0);
    CHECK_EQ_INT(step, mid);
    d.step = step;
    CHECK(same_state(&c, &d)); /* round trip is bit-exact */
    run_to(&d, d.total_steps);
    CHECK(same_state(&a, &d)); /* resumed == uninterrupted, bit for bit */
    struct job_spec back;
    CHECK_EQ_INT(ckpt_read_spec(path, &back, err), 0);
    CHECK(back.seed == 3 && back.wbits == 4 && strcmp(back.model, "cnn-small") == 0);

    /* A truncated checkpoint is refused with a message, and loads nothing. */
    FILE *f = fopen(path, "rb+");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        CHECK(truncate(path, size / 2) == 0);
        err[0] = 0;
        CHECK(ckpt_load(path, d.model, d.mom, &step, err) != 0);
        CHECK(strlen(err) > 0);
        fprintf(stderr, "truncated checkpoint: %s\n", err);
    }
    /* A checkpoint of another model is refused. */
    struct trainer e;
    CHECK_EQ_INT(setup(&e, "{\"model\":\"mlp\",\"dataset\":\"synthetic\",\"epochs\":1}"), 0);
    CHECK_EQ_INT(ckpt_save(path, e.model, e.mom, &e.spec, 0, err), 0);
    CHECK(ckpt_load(path, d.model, d.mom, &step, err) != 0);
    CHECK_STR_CONTAINS(err, "mlp");
    unlink(path);
    trainer_close(&e);
    trainer_close(&c);
    trainer_close(&d);
    trainer_close(&a);
    return check_summary("train");
}
