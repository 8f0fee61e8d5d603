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
/* Put p (model_param_table(m)->total floats; b: model_buffer_table(m)->total,
 * at least 1) in place of the parameter / buffer storage and return the
 * old storage, which the caller then owns (sat_free). The model reads its
 * parameters and buffers through these pointers at every use, never
 * through copies of them. NULL is allowed only before model_free. */
float *model_swap_params(struct model *m, float *p);
float *model_swap_buffers(struct model *m, float *b);
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

/* ===========================================================================
 * Read-only graph enumeration (for exporters, e.g. common/export/onnx.c)
 *
 * The nodes in forward order, with the tensor ids they read and write. The
 * input image is tensor model_input_tensor(), the logits are
 * model_logits_tensor(); every other tensor is the output of exactly one
 * node. Shapes are per image, as the engine stores them: a feature vector
 * (FC input/output, GAP output) has h = w = 1. Parameter and buffer indices
 * point into model_param_table / model_buffer_table (-1: none).
 */
enum model_node_kind {
    MODEL_NODE_CONV,    /* conv (dense, or depthwise when groups == ic), no bias */
    MODEL_NODE_BN,      /* BatchNorm (2d, or 1d on a feature vector) */
    MODEL_NODE_ACT,     /* ReLU, or PACT when act_bits < 32 */
    MODEL_NODE_MAXPOOL, /* pool_k x pool_k, stride pool_k, no padding */
    MODEL_NODE_GAP,     /* global average pool */
    MODEL_NODE_FLATTEN, /* (c, h, w) -> feature c*h*w + y*w + x (PyTorch order) */
    MODEL_NODE_FC,      /* y = W x + b, W (fc_out, fc_in) */
    MODEL_NODE_ADD,     /* residual add of in and in2 */
};

struct model_node_desc {
    enum model_node_kind kind;
    char name[PARAM_NAME_LEN]; /* "layer1.0.conv1", "blocks.3.add", ... */
    int in, in2, out;          /* tensor ids; in2 is -1 except for ADD */
    int in_c, in_h, in_w;      /* per-image input shape */
    int out_c, out_h, out_w;   /* per-image output shape */

    /* CONV: kernel, stride, symmetric padding, groups (1 or ic) */
    int kh, kw, stride, pad, groups;
    /* FC */
    int fc_in, fc_out;
    /* CONV / FC: weight and bias parameter entries and the weight quantizer
     * (quant.h struct wquant: bits 2..8 or 32, clamp, sat, fan) */
    int weight_param, bias_param;
    int wbits, wclamp, wsat, wfan;
    /* BN: gamma / beta parameter entries, running mean / var buffer entries */
    int gamma_param, beta_param, mean_buf, var_buf;
    float bn_eps;
    /* ACT: act_bits 32 = ReLU, else PACT with alpha parameter alpha_param */
    int act_bits, alpha_param;
    /* MAXPOOL */
    int pool_k;
};

int model_node_count(const struct model *m);
/* Fills *out with node i (forward order). Returns 0 or SAT_ENOENT. */
int model_node_get(const struct model *m, int i, struct model_node_desc *out);
int model_input_tensor(const struct model *m);
int model_logits_tensor(const struct model *m);
/* The values of tensor `id` as the last model_forward left them, laid out
 * (c, n, h, w) with n that call's batch; NULL for an id out of range. For
 * checkers that compare intermediate results (saturn-export --levels).
 * A BatchNorm output that only its activation reads is not stored; it is
 * computed here, exactly, into scratch that stays valid until the next call
 * of model_tensor_values, model_forward or model_backward. */
const float *model_tensor_values(const struct model *m, int id);

#endif
