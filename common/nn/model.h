/* model.h - the model zoo as a small static graph of layer nodes.
 *
 * A model owns:
 *  - one flat float buffer of trainable parameters, one of their gradients
 *    and one of non-trainable buffers (BN running statistics), each with a
 *    table of name / shape / offset / role (struct param_table);
 *  - the activations of one batch (sized from the batch capacity once, at
 *    model_new), the gradient buffers (shared between tensors whose
 *    lifetimes do not overlap in backward), and every scratch buffer.
 * Nothing is allocated after model_new. Layout conventions: nn/layers.h.
 *
 * A training step reads: model_forward(train=1) -> model_zero_grad ->
 * model_backward -> (sum gradients across ranks) -> optimizer update.
 * Networks and quantization roles follow spec/models.md exactly.
 */
#ifndef SATURN_MODEL_H
#define SATURN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../util/err.h"

enum param_role {
    ROLE_CONV_W, /* dense conv weight: weight decay */
    ROLE_DW_W,   /* depthwise conv weight: no weight decay */
    ROLE_FC_W,   /* FC weight: weight decay */
    ROLE_FC_B,   /* FC bias */
    ROLE_BN_W,   /* BN gamma */
    ROLE_BN_B,   /* BN beta */
    ROLE_ALPHA,  /* PACT clip value (raw; the clip is max(|alpha|, 1e-6)) */
    ROLE_BN_MEAN, /* running mean (buffer) */
    ROLE_BN_VAR,  /* running variance (buffer) */
};

const char *param_role_name(enum param_role r);
/* Weight decay applies to dense conv and FC weights only. */
static inline int param_role_decays(enum param_role r)
{
    return r == ROLE_CONV_W || r == ROLE_FC_W;
}

#define PARAM_NAME_LEN 64

struct param_entry {
    char name[PARAM_NAME_LEN]; /* PyTorch-like, e.g. "layer1.0.conv1.weight" */
    enum param_role role;
    int ndim;
    int shape[4];
    size_t offset; /* in floats, into the group's flat buffer */
    size_t numel;
};

struct param_table {
    struct param_entry *e;
    int n;
    size_t total; /* floats */
};

/* Model configuration; every field is the job spec's of the same name. */
struct model_cfg {
    char arch[32];          /* zoo name */
    int c, h, w, nclass;    /* input shape and class count */
    int batch;              /* capacity: the largest batch forward will see */
    int wbits, abits;       /* 2..8 or 32 */
    int first_wbits;        /* first layer's weights */
    int last_wbits;         /* FC weights */
    int last_abits;         /* FC input */
    int clamp;              /* tanh-clamp float weights */
    int sat;                /* 0 off, 1 last layer, 2 all layers */
    int sat_fan_out;        /* 0: n = fan-in (default), 1: n = fan-out */
    int cg;                 /* 1: CG-PACT alpha gradient, 0: PACT */
    float alpha_conv;       /* alpha init for conv inputs (8) */
    float alpha_fc;         /* alpha init for the FC input (10) */
    uint64_t seed;          /* initialisation seed */
};

/* Fills cfg with the zoo defaults for arch (FP32, sat last, fan-in, CG-PACT). */
void model_cfg_defaults(struct model_cfg *cfg, const char *arch, int c, int h, int w, int nclass,
                        int batch);

struct model;

/* Names of the zoo models, NULL-terminated. */
extern const char *const model_zoo_names[];
int model_zoo_has(const char *arch);

/* Builds the model and initialises its parameters from cfg->seed.
 * Returns 0, or SAT_EINVAL (unknown arch, bad shape) / SAT_ENOMEM with a
 * message in err. */
int model_new(struct model **out, const struct model_cfg *cfg, char err[SAT_ERR_LEN]);
void model_free(struct model *m);

/* Forward pass of n <= capacity images x (C, n, H, W) with labels y (n).
 * train: BN uses (and updates) batch statistics and every value needed by
 * backward is kept; otherwise BN uses running statistics. Returns the mean
 * loss; *correct (may be NULL) receives the number of correct predictions.
 * logits (may be NULL) receives a pointer to the (nclass, n) logits. */
double model_forward(struct model *m, const float *x, const int32_t *y, int n, int train,
                     int *correct);
const float *model_logits(const struct model *m);

void model_zero_grad(struct model *m);
/* Backward of the last train-mode forward; parameter gradients accumulate.
 * loss_scale multiplies dL/dlogits: 1/n for the mean loss of this batch,
 * 1/global_batch when several ranks' gradients will be summed. */
void model_backward(struct model *m, float loss_scale);

float *model_params(struct model *m);
float *model_grads(struct model *m);
float *model_buffers(struct model *m);
const struct param_table *model_param_table(const struct model *m);
const struct param_table *model_buffer_table(const struct model *m);
const struct model_cfg *model_get_cfg(const struct model *m);

/* With SATURN_PROFILE set in the environment at model_new, every node is
 * timed; this prints the accumulated times per node and per kind. */
void model_profile_print(const struct model *m, FILE *f);

/* Forward multiply-adds for one image (convs and FCs), for FLOP counts. */
double model_macs_per_image(const struct model *m);
/* Bytes of every buffer the model allocated. */
size_t model_bytes(const struct model *m);

/* Per-layer quantization state after the last forward, for metrics. */
struct quant_info {
    char name[PARAM_NAME_LEN]; /* layer name ("layer1.0.conv1") or activation name */
    int is_alpha;              /* 1: value is alpha; 0: value is the SAT factor s */
    float value;
};
/* Writes up to cap records; returns how many exist. */
int model_quant_info(const struct model *m, struct quant_info *out, int cap);

/* Quantized weights of layer `i` (in model order, convs and FCs) for export:
 * name, bits, the SAT factor s and the latent-weight parameter index.
 * Returns 0, or SAT_ENOENT past the last layer. */
struct wlayer_info {
    char name[PARAM_NAME_LEN];
    int param_index; /* index of the weight in model_param_table */
    int bits;        /* 2..8 or 32 */
    int clamp;
    int sat;
    int fan;
    float s; /* SAT factor of the last forward */
};
int model_weight_layer(const struct model *m, int i, struct wlayer_info *out);

#endif
