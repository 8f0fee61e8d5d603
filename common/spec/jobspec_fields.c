/* jobspec_fields.c - the table of the job spec's fields: name, type, place
 * in struct job_spec, range, default and meaning, one row per field. The
 * parser, the setter, validation, the canonical JSON (jobspec.c) and the
 * docs (jobspec_doc.c) are all driven by it, so a field is added in one row.
 */
#include "jobspec_int.h"

#include <limits.h>
#include <stdio.h>

static const char *const zoo_names[] = {"mlp",         "cnn-small",   "preresnet20",
                                        "mobilenetv1", "mobilenetv2", NULL};
static const char *const dataset_names[] = {"fashion-mnist", "mnist", "cifar10", "synthetic", NULL};
static const char *const sat_names[] = {
    [SAT_OFF] = "off", [SAT_LAST] = "last", [SAT_ALL] = "all", NULL};
static const char *const fan_names[] = {[SAT_FAN_IN] = "in", [SAT_FAN_OUT] = "out", NULL};
static const char *const actq_names[] = {[ACTQ_CGPACT] = "cgpact", [ACTQ_PACT] = "pact", NULL};
static const char *const ainit_names[] = {
    [ALPHA_INIT_FIXED] = "fixed", [ALPHA_INIT_CALIBRATE] = "calibrate", NULL};
static const char *const cons_names[] = {
    [CONS_BSP] = "bsp", [CONS_SSP] = "ssp", [CONS_ASP] = "asp", NULL};

#define MEMBER(m) offsetof(struct job_spec, m), sizeof(((struct job_spec *)0)->m)

/* clang-format off */
const struct field jobspec__fields[] = {
    {"name", FT_STRING, MEMBER(name), .def = "",
     .doc = "Free text naming the job, shown by status and in logs."},
    {"model", FT_STRING, MEMBER(model), .names = zoo_names, .what = "model", .required = true,
     .def = "", .def_doc = "required",
     .doc = "Network from the model zoo (spec/models.md)."},
    {"dataset", FT_STRING, MEMBER(dataset), .names = dataset_names, .what = "data set",
     .required = true, .def = "", .def_doc = "required",
     .doc = "Data set to train and evaluate on."},
    {"data_dir", FT_STRING, MEMBER(data_dir), .def = "",
     .doc = "Directory holding the data set files; \"\" means the data set's default directory."},
    {"train_limit", FT_INT, MEMBER(train_limit), 0, INT_MAX, .def = "0",
     .doc = "Use only the first N training images; 0 means all."},
    {"test_limit", FT_INT, MEMBER(test_limit), 0, INT_MAX, .def = "0",
     .doc = "Use only the first N test images; 0 means all."},
    {"wbits", FT_BITS, MEMBER(wbits), .def = "32",
     .doc = "Weight bit width k of the layers between the first and the last; 32 = float."},
    {"abits", FT_BITS, MEMBER(abits), .def = "32",
     .doc = "Activation bit width of the quantized layer inputs (PACT); 32 = float (ReLU)."},
    {"first_wbits", FT_BITS, MEMBER(first_wbits), .def = "32",
     .def_doc = "8 (32 when `wbits` is 32)",
     .doc = "Weight bit width of the first layer (its input is never quantized)."},
    {"last_wbits", FT_BITS, MEMBER(last_wbits), .def = "32",
     .def_doc = "8 (32 when `wbits` is 32)",
     .doc = "Weight bit width of the last layer (the FC)."},
    {"last_abits", FT_BITS, MEMBER(last_abits), .def = "32", .def_doc = "same as `abits`",
     .doc = "Bit width of the FC's input."},
    {"clamp", FT_BOOL, MEMBER(clamp), .def = "false",
     .doc = "With wbits 32, use tanh-clamped float weights (with SAT): the stage-one model of "
            "the two-stage recipe. Quantized weights are always clamped."},
    {"sat", FT_ENUM, MEMBER(sat), .names = sat_names, .def = "last",
     .doc = "Where SAT rescales weights: off, the last FC only, or every layer."},
    {"sat_fan", FT_ENUM, MEMBER(sat_fan), .names = fan_names, .def = "in",
     .doc = "The n of the SAT factor 1/sqrt(n var(Q)): fan-in, or fan-out as the authors' code."},
    {"act_quant", FT_ENUM, MEMBER(act_quant), .names = actq_names, .def = "cgpact",
     .doc = "Gradient of the activation clip alpha: CG-PACT or plain PACT."},
    {"alpha_init_conv", FT_FLOAT, MEMBER(alpha_init_conv), 0, 1000, LO_OPEN, .def = "8",
     .doc = "Initial alpha of the activation quantizers that feed convolutions."},
    {"alpha_init_fc", FT_FLOAT, MEMBER(alpha_init_fc), 0, 1000, LO_OPEN, .def = "10",
     .doc = "Initial alpha of the FC's input quantizer."},
    {"alpha_init", FT_ENUM, MEMBER(alpha_init), .names = ainit_names, .def = "fixed",
     .doc = "PACT alphas start at `alpha_init_conv` / `alpha_init_fc` (fixed), or each is set "
            "before step 0 to the `alpha_percentile` percentile of its input on the first "
            "training batch (calibrate; docs/training.md)."},
    {"alpha_percentile", FT_FLOAT, MEMBER(alpha_percentile), 0, 100, LO_OPEN, .def = "99.9",
     .doc = "The percentile (nearest rank) that `alpha_init: calibrate` takes of each "
            "quantizer's input."},
    {"epochs", FT_INT, MEMBER(epochs), 1, 10000, .def = "10",
     .doc = "Number of passes over the training set."},
    {"batch_size", FT_INT, MEMBER(batch_size), 1, 65536, .def = "128",
     .doc = "Global batch size, split evenly over the workers (a multiple of workers)."},
    {"lr", FT_FLOAT, MEMBER(lr), 0, 100, LO_OPEN, .def = "0.1",
     .doc = "Peak learning rate of SGD (cosine decay to 0, per iteration)."},
    {"momentum", FT_FLOAT, MEMBER(momentum), 0, 1, HI_OPEN, .def = "0.9",
     .doc = "SGD momentum."},
    {"nesterov", FT_BOOL, MEMBER(nesterov), .def = "true",
     .doc = "Use Nesterov momentum."},
    {"weight_decay", FT_FLOAT, MEMBER(weight_decay), 0, 1, HI_OPEN, .def = "0.0001",
     .doc = "L2 weight decay (not applied to alphas, BN, biases or depthwise weights)."},
    {"warmup_epochs", FT_FLOAT, MEMBER(warmup_epochs), 0, 10000, HI_OPEN,
     .range_doc = "[0, epochs)", .def = "0",
     .doc = "Linear learning-rate warm-up length in epochs (fractions allowed)."},
    {"augment", FT_BOOL, MEMBER(augment), .def = "true",
     .doc = "Random crop (padding 2) and horizontal flip of training images."},
    {"seed", FT_SEED, MEMBER(seed), 0, SEED_MAX, .range_doc = "0..2^53", .def = "1",
     .doc = "Seed of every random choice (initialisation, shuffling, augmentation)."},
    {"workers", FT_INT, MEMBER(workers), 1, 256, .def = "1",
     .doc = "Number of workers the job runs on (gang-started)."},
    {"consistency", FT_CONS, MEMBER(consistency), .names = cons_names,
     .range_doc = "bsp, asp, ssp:S (S in 1..1000)", .def = "bsp",
     .doc = "Update consistency: bulk-synchronous, asynchronous, or stale-synchronous with "
            "staleness bound S."},
    {"checkpoint_every", FT_INT, MEMBER(checkpoint_every), 0, INT_MAX, .def = "0",
     .doc = "Checkpoint every N steps as well as at each epoch end; 0 = epoch ends only."},
    {"init_from", FT_STRING, MEMBER(init_from), .def = "",
     .doc = "Checkpoint path or job id to initialise the weights from; \"\" = random init."},
    {"sweep", FT_STRING, MEMBER(sweep), .charset = SPEC_ID_CHARS, .def = "",
     .doc = "The sweep the job belongs to (`saturn sweep` sets it; docs/sweeps.md); \"\" = "
            "none."},
    {"priority", FT_INT, MEMBER(priority), -1000, 1000, .def = "0",
     .doc = "Scheduling priority; higher runs first."},
    {"recover_timeout_s", FT_INT, MEMBER(recover_timeout_s), 1, 86400, .def = "600",
     .doc = "When a worker of the running job is lost, how long its rank waits for another "
            "worker before the job is re-queued from its last checkpoint."},
};
/* clang-format on */

#define NFIELDS ((int)(sizeof(jobspec__fields) / sizeof(jobspec__fields[0])))

const int jobspec__nfields = NFIELDS;

_Static_assert(NFIELDS <= 64, "job_spec.given has 64 bits");
_Static_assert(sizeof(enum sat_mode) == sizeof(int) && sizeof(enum sat_fan) == sizeof(int) &&
                   sizeof(enum act_quant) == sizeof(int) &&
                   sizeof(enum consistency) == sizeof(int) &&
                   sizeof(enum alpha_init) == sizeof(int),
               "FT_ENUM fields are accessed as int");

/* "an integer", "a number", ...: what a field's JSON value must be. */
const char *jobspec__type_word(const struct field *f)
{
    switch (f->type) {
    case FT_INT:
    case FT_BITS:
    case FT_SEED:
        return "an integer";
    case FT_FLOAT:
        return "a number";
    case FT_BOOL:
        return "a boolean";
    default:
        return "a string";
    }
}

/* The range of a numeric field as text: "1..10000", "(0, 100]", "2..8 or 32". */
const char *jobspec__range_text(const struct field *f, char *buf, size_t cap)
{
    if (f->range_doc)
        snprintf(buf, cap, "%s", f->range_doc);
    else if (f->type == FT_BITS)
        snprintf(buf, cap, "2..8 or 32");
    else if (f->type == FT_FLOAT)
        snprintf(buf, cap, "%c%g, %g%c", (f->open & LO_OPEN) ? '(' : '[', f->lo, f->hi,
                 (f->open & HI_OPEN) ? ')' : ']');
    else
        snprintf(buf, cap, "%.0f..%.0f", f->lo, f->hi);
    return buf;
}
