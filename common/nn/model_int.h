/* model_int.h - the insides of struct model, shared by the files of the
 * model (model.c: allocation, forward and backward; zoo.c: the graph
 * builders; model_graph.c: read-only enumeration); not a public API.
 *
 * A model is a static graph: nodes in forward order, each reading one or
 * two tensors and writing one, and the parameter and buffer tables whose
 * entries point into one flat buffer each (params, grads, buffers).
 */
#ifndef SATURN_MODEL_INT_H
#define SATURN_MODEL_INT_H

#include "layers.h"
#include "model.h"
#include "quant.h"

#define MAX_NODES 256
#define MAX_TENSORS 256
#define MAX_PARAMS 512

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

enum node_kind { N_CONV, N_BN, N_ACT, N_MAXPOOL, N_GAP, N_FLATTEN, N_FC, N_ADD };
enum act_kind { ACT_RELU, ACT_PACT };

struct tensor {
    int c, h, w;   /* per-image shape; FC-style tensors have h = w = 1 */
    int producer;  /* node index, -1 for the input */
    int last_use;  /* last node reading it (forward order), -1 if none */
    int grad_slot; /* gradient buffer index, -1: no gradient */
    int virt;      /* never stored: a fused BN's or ACT's output, read through a view */
    float *val;    /* (c, N, h, w) at capacity; NULL when virt */
};

struct node {
    enum node_kind kind;
    char name[PARAM_NAME_LEN];
    int in, in2, out;       /* tensor ids (in2 only for N_ADD) */
    int accum_in, accum_in2; /* backward adds into the input gradient (another reader wrote it) */

    /* N_CONV / N_FC */
    struct conv_shape cs;
    int fc_in, fc_out;
    int wp, bp; /* parameter entry of weight and bias, -1 none */
    struct wquant wq;
    int in_act;         /* depthwise: the ACT node whose output it reads through a view, -1 */
    float *weff, *dfac; /* (len of weight); weff == latent when identity */
    float s;            /* SAT factor of the last forward */
    int qin_act; /* dense: the PACT node whose codes its input carries (directly or
                  * through max-pools) when the forward runs on integer codes, -1 */

    /* N_BN */
    int gp, betap, rmean, rvar; /* param entries / buffer entries */
    float *mean, *invstd;       /* (c) saved by the train forward */
    int fused;                  /* the output is virt: the next node, an ACT, reads it */
    float *vmu, *vscale, *vshift; /* (c) the view's terms of the last forward, when fused */

    /* N_ACT */
    enum act_kind act;
    int bits;
    int ap;       /* alpha parameter entry */
    int fused_bn; /* node index of the fused BN it reads through a view, -1 none;
                   * that BN's backward does this node's too */
    int into_dw;     /* its output is virt: the depthwise conv reading it computes it */
    float alpha_fwd; /* alpha_raw of the last forward (for the view), when into_dw */

    /* N_MAXPOOL */
    int k;
    int32_t *argmax;

    double t_fwd, t_bwd; /* seconds spent, when profiling */
};

struct model {
    struct model_cfg cfg;
    int n; /* batch of the last forward */

    struct node nodes[MAX_NODES];
    int nn;
    struct tensor t[MAX_TENSORS];
    int nt;
    int input, logits_t;

    struct param_table params, buffers;
    struct param_entry pe[MAX_PARAMS], be[MAX_PARAMS];
    float init_val[MAX_PARAMS]; /* constant init for BN / alpha / bias entries */
    float *p, *g, *b;           /* params, grads, buffers */

    float **gslots; /* gradient buffers */
    int ngslots;
    float *cols;   /* im2col scratch */
    float *dweff;  /* gradient of the effective weights, scratch */
    float *probs;  /* (nclass, N) */
    int32_t *labels;

    size_t bytes;
    int profile; /* SATURN_PROFILE set: time every node */
    int build_failed;
    char *err;
};

/* Records the graph of m->cfg.arch (a zoo name: model_zoo_has) into m: the
 * input tensor, the nodes, the tensors and the parameter and buffer entries;
 * sets m->input and m->logits_t. Allocates nothing. Returns 0, or SAT_EINVAL
 * with a message in m->err (a shape the graph cannot take). */
int model__build(struct model *m);

#endif
