/* model_graph.c - read-only enumeration of a built model's graph (model.h),
 * for exporters: the nodes in forward order with their shapes, quantizers
 * and parameter entries. */
#include "model_int.h"

#include <stdio.h>
#include <string.h>

int model_node_count(const struct model *m)
{
    return m->nn;
}

int model_input_tensor(const struct model *m)
{
    return m->input;
}

int model_logits_tensor(const struct model *m)
{
    return m->logits_t;
}

int model_node_get(const struct model *m, int i, struct model_node_desc *out)
{
    if (i < 0 || i >= m->nn)
        return SAT_ENOENT;
    static const enum model_node_kind kinds[] = {
        [N_CONV] = MODEL_NODE_CONV, [N_BN] = MODEL_NODE_BN,
        [N_ACT] = MODEL_NODE_ACT,   [N_MAXPOOL] = MODEL_NODE_MAXPOOL,
        [N_GAP] = MODEL_NODE_GAP,   [N_FLATTEN] = MODEL_NODE_FLATTEN,
        [N_FC] = MODEL_NODE_FC,     [N_ADD] = MODEL_NODE_ADD,
    };
    const struct node *nd = &m->nodes[i];
    const struct tensor *ti = &m->t[nd->in], *to = &m->t[nd->out];
    memset(out, 0, sizeof *out);
    out->kind = kinds[nd->kind];
    snprintf(out->name, sizeof out->name, "%s", nd->name);
    out->in = nd->in;
    out->in2 = nd->in2;
    out->out = nd->out;
    out->in_c = ti->c;
    out->in_h = ti->h;
    out->in_w = ti->w;
    out->out_c = to->c;
    out->out_h = to->h;
    out->out_w = to->w;
    out->weight_param = out->bias_param = -1;
    out->gamma_param = out->beta_param = out->mean_buf = out->var_buf = -1;
    out->alpha_param = -1;
    out->wbits = out->act_bits = 32;
    if (nd->kind == N_CONV) {
        out->kh = nd->cs.kh;
        out->kw = nd->cs.kw;
        out->stride = nd->cs.stride;
        out->pad = nd->cs.pad;
        out->groups = nd->cs.groups;
    }
    if (nd->kind == N_FC) {
        out->fc_in = nd->fc_in;
        out->fc_out = nd->fc_out;
    }
    if (nd->kind == N_CONV || nd->kind == N_FC) {
        out->weight_param = nd->wp;
        out->bias_param = nd->bp;
        out->wbits = nd->wq.bits;
        out->wclamp = nd->wq.clamp;
        out->wsat = nd->wq.sat;
        out->wfan = nd->wq.fan;
    }
    if (nd->kind == N_BN) {
        out->gamma_param = nd->gp;
        out->beta_param = nd->betap;
        out->mean_buf = nd->rmean;
        out->var_buf = nd->rvar;
        out->bn_eps = BN_EPS;
    }
    if (nd->kind == N_ACT) {
        out->act_bits = nd->act == ACT_PACT ? nd->bits : 32;
        out->alpha_param = nd->ap;
    }
    if (nd->kind == N_MAXPOOL)
        out->pool_k = nd->k;
    return 0;
}
