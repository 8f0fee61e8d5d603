/* model.c - the model zoo (spec/models.md) as a static graph of layer nodes.
 *
 * Building a model is two phases. The zoo functions describe the network
 * with a small builder (graph_conv, graph_bn, graph_act, ...) that records
 * nodes, tensors and parameter entries; model_new then sizes and allocates
 * every buffer once, plans the gradient buffers, and initialises the
 * parameters. Forward runs the nodes in order, backward in reverse.
 */
#include "model.h"
#include "layers.h"
#include "quant.h"

#include "../util/clock.h"
#include "../util/rng.h"
#include "../util/xalloc.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    float *val;    /* (c, N, h, w) at capacity */
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
    float *weff, *dfac; /* (len of weight); weff == latent when identity */
    float s;            /* SAT factor of the last forward */

    /* N_BN */
    int gp, betap, rmean, rvar; /* param entries / buffer entries */
    float *mean, *invstd;       /* (c) saved by the train forward */

    /* N_ACT */
    enum act_kind act;
    int bits;
    int ap; /* alpha parameter entry */

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

const char *const model_zoo_names[] = {"mlp", "cnn-small", "preresnet20", "mobilenetv1",
                                       "mobilenetv2", NULL};

int model_zoo_has(const char *arch)
{
    for (int i = 0; model_zoo_names[i]; i++)
        if (strcmp(model_zoo_names[i], arch) == 0)
            return 1;
    return 0;
}

const char *param_role_name(enum param_role r)
{
    static const char *const names[] = {"conv_weight", "dw_weight", "fc_weight",
                                        "fc_bias",     "bn_weight", "bn_bias",
                                        "alpha",       "bn_mean",   "bn_var"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "unknown";
}

void model_cfg_defaults(struct model_cfg *cfg, const char *arch, int c, int h, int w, int nclass,
                        int batch)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", arch);
    cfg->c = c;
    cfg->h = h;
    cfg->w = w;
    cfg->nclass = nclass;
    cfg->batch = batch;
    cfg->wbits = cfg->abits = cfg->first_wbits = cfg->last_wbits = cfg->last_abits = 32;
    cfg->sat = 1;
    cfg->cg = 1;
    cfg->alpha_conv = 8.0f;
    cfg->alpha_fc = 10.0f;
    cfg->seed = 1;
}

/* ===========================================================================
 * Builder
 */

static int build_fail(struct model *m, const char *msg)
{
    if (!m->build_failed)
        sat_errf(m->err, SAT_EINVAL, "model %s: %s", m->cfg.arch, msg);
    m->build_failed = 1;
    return -1;
}

static int tensor_new(struct model *m, int c, int h, int w, int producer)
{
    if (m->nt >= MAX_TENSORS)
        return build_fail(m, "too many tensors");
    struct tensor *t = &m->t[m->nt];
    memset(t, 0, sizeof *t);
    t->c = c;
    t->h = h;
    t->w = w;
    t->producer = producer;
    t->last_use = -1;
    t->grad_slot = -1;
    return m->nt++;
}

static struct node *node_new(struct model *m, enum node_kind kind, const char *name, int in)
{
    if (m->build_failed)
        return NULL;
    if (m->nn >= MAX_NODES) {
        build_fail(m, "too many nodes");
        return NULL;
    }
    struct node *nd = &m->nodes[m->nn];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    nd->in = in;
    nd->in2 = nd->out = -1;
    nd->wp = nd->bp = nd->gp = nd->betap = nd->rmean = nd->rvar = nd->ap = -1;
    nd->s = 1.0f;
    return nd;
}

static int entry_add(struct model *m, struct param_table *tab, struct param_entry *arr,
                     const char *layer, const char *suffix, enum param_role role, int ndim,
                     const int *shape, float init)
{
    if (tab->n >= MAX_PARAMS)
        return build_fail(m, "too many parameters");
    struct param_entry *e = &arr[tab->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s.%s", layer, suffix);
    e->role = role;
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i];
    }
    e->offset = tab->total;
    tab->total += e->numel;
    if (tab == &m->params)
        m->init_val[tab->n] = init;
    return tab->n++;
}

/* Quantizer of a conv/FC weight by layer role: 0 first, 1 middle, 2 last. */
static struct wquant wq_for(const struct model *m, int role, int fan_in, int fan_out)
{
    const struct model_cfg *c = &m->cfg;
    struct wquant q;
    q.bits = role == 0 ? c->first_wbits : role == 2 ? c->last_wbits : c->wbits;
    q.clamp = c->clamp || q.bits < 32;
    int quantized_or_clamped = q.clamp;
    q.sat = quantized_or_clamped && (c->sat == 2 || (c->sat == 1 && role == 2));
    q.fan = c->sat_fan_out ? fan_out : fan_in;
    return q;
}

/* conv(k, in->oc, stride), padding k/2, no bias; groups 1 or depthwise. */
static int graph_conv(struct model *m, const char *name, int in, int oc, int k, int stride,
                      int depthwise, int role)
{
    if (in < 0 || m->build_failed)
        return -1;
    struct tensor *ti = &m->t[in];
    struct node *nd = node_new(m, N_CONV, name, in);
    if (!nd)
        return -1;
    int groups = depthwise ? ti->c : 1;
    if (depthwise)
        oc = ti->c;
    if (conv_shape_init(&nd->cs, m->cfg.batch, ti->c, ti->h, ti->w, oc, k, k, stride, k / 2,
                        groups) != 0)
        return build_fail(m, "bad convolution shape");
    int shape[4] = {oc, ti->c / groups, k, k};
    nd->wp = entry_add(m, &m->params, m->pe, name, "weight", depthwise ? ROLE_DW_W : ROLE_CONV_W,
                       4, shape, 0.0f);
    nd->wq = wq_for(m, role, ti->c / groups * k * k, oc * k * k);
    int out = tensor_new(m, oc, nd->cs.oh, nd->cs.ow, m->nn);
    nd->out = out;
    m->nn++;
    return out;
}

static int graph_fc(struct model *m, const char *name, int in, int outf, int role)
{
    if (in < 0 || m->build_failed)
        return -1;
    struct tensor *ti = &m->t[in];
    if (ti->h != 1 || ti->w != 1)
        return build_fail(m, "FC input must be a feature vector");
    struct node *nd = node_new(m, N_FC, name, in);
    if (!nd)
        return -1;
    nd->fc_in = ti->c;
    nd->fc_out = outf;
    int shape[2] = {outf, ti->c};
    nd->wp = entry_add(m, &m->params, m->pe, name, "weight", ROLE_FC_W, 2, shape, 0.0f);
    nd->bp = entry_add(m, &m->params, m->pe, name, "bias", ROLE_FC_B, 1, &outf, 0.0f);
    nd->wq = wq_for(m, role, ti->c, outf);
    nd->out = tensor_new(m, outf, 1, 1, m->nn);
    m->nn++;
    return nd->out;
}

static int graph_bn(struct model *m, const char *name, int in)
{
    if (in < 0 || m->build_failed)
        return -1;
    struct tensor *ti = &m->t[in];
    struct node *nd = node_new(m, N_BN, name, in);
    if (!nd)
        return -1;
    int c = ti->c;
    nd->gp = entry_add(m, &m->params, m->pe, name, "weight", ROLE_BN_W, 1, &c, 1.0f);
    nd->betap = entry_add(m, &m->params, m->pe, name, "bias", ROLE_BN_B, 1, &c, 0.0f);
    nd->rmean = entry_add(m, &m->buffers, m->be, name, "running_mean", ROLE_BN_MEAN, 1, &c, 0.0f);
    nd->rvar = entry_add(m, &m->buffers, m->be, name, "running_var", ROLE_BN_VAR, 1, &c, 1.0f);
    nd->out = tensor_new(m, c, ti->h, ti->w, m->nn);
    m->nn++;
    return nd->out;
}

/* The activation "A" of spec/models.md: PACT with its own alpha when bits
 * < 32, else ReLU. force_relu gives the plain ReLU of an A that feeds only
 * a global average pool. */
static int graph_act(struct model *m, const char *name, int in, int bits, float alpha_init)
{
    if (in < 0 || m->build_failed)
        return -1;
    struct tensor *ti = &m->t[in];
    struct node *nd = node_new(m, N_ACT, name, in);
    if (!nd)
        return -1;
    nd->bits = bits;
    if (bits < 32) {
        nd->act = ACT_PACT;
        nd->ap = entry_add(m, &m->params, m->pe, name, "alpha", ROLE_ALPHA, 0, NULL, alpha_init);
    } else {
        nd->act = ACT_RELU;
    }
    nd->out = tensor_new(m, ti->c, ti->h, ti->w, m->nn);
    m->nn++;
    return nd->out;
}

static int graph_simple(struct model *m, enum node_kind kind, const char *name, int in, int in2)
{
    if (in < 0 || m->build_failed || (kind == N_ADD && in2 < 0))
        return -1;
    struct tensor *ti = &m->t[in];
    struct node *nd = node_new(m, kind, name, in);
    if (!nd)
        return -1;
    int c = ti->c, h = ti->h, w = ti->w;
    switch (kind) {
    case N_MAXPOOL:
        nd->k = 2;
        if (h % 2 || w % 2)
            return build_fail(m, "max pool needs even sizes");
        h /= 2;
        w /= 2;
        break;
    case N_GAP:
        h = w = 1;
        break;
    case N_FLATTEN:
        c = c * h * w;
        h = w = 1;
        break;
    case N_ADD:
        nd->in2 = in2;
        if (m->t[in2].c != c || m->t[in2].h != h || m->t[in2].w != w)
            return build_fail(m, "residual add of different shapes");
        break;
    default:
        assert(0);
    }
    nd->out = tensor_new(m, c, h, w, m->nn);
    m->nn++;
    return nd->out;
}

/* ===========================================================================
 * The zoo (spec/models.md)
 */

static int abits_mid(const struct model *m)
{
    return m->cfg.abits;
}

/* FC input quantizer: PACT at last_abits with alpha init alpha_fc. */
static int fc_input_act(struct model *m, const char *name, int in)
{
    return graph_act(m, name, in, m->cfg.last_abits, m->cfg.alpha_fc);
}

static int build_mlp(struct model *m, int x)
{
    int t = graph_simple(m, N_FLATTEN, "flatten", x, -1);
    t = graph_fc(m, "fc1", t, 256, 0);
    t = graph_bn(m, "bn1", t);
    t = fc_input_act(m, "act1", t);
    return graph_fc(m, "fc2", t, m->cfg.nclass, 2);
}

static int build_cnn_small(struct model *m, int x)
{
    int t = graph_conv(m, "conv1", x, 16, 3, 1, 0, 0);
    t = graph_bn(m, "bn1", t);
    t = graph_act(m, "act1", t, abits_mid(m), m->cfg.alpha_conv);
    t = graph_simple(m, N_MAXPOOL, "pool1", t, -1);
    t = graph_conv(m, "conv2", t, 32, 3, 1, 0, 1);
    t = graph_bn(m, "bn2", t);
    t = fc_input_act(m, "act2", t);
    t = graph_simple(m, N_MAXPOOL, "pool2", t, -1);
    t = graph_simple(m, N_FLATTEN, "flatten", t, -1);
    return graph_fc(m, "fc", t, m->cfg.nclass, 2);
}

static int preact_block(struct model *m, const char *pfx, int x, int out, int stride)
{
    char n1[PARAM_NAME_LEN], n2[PARAM_NAME_LEN];
    int in_c = m->t[x].c;
    snprintf(n1, sizeof n1, "%s.bn1", pfx);
    int a = graph_bn(m, n1, x);
    snprintf(n1, sizeof n1, "%s.act1", pfx);
    a = graph_act(m, n1, a, abits_mid(m), m->cfg.alpha_conv);
    snprintf(n1, sizeof n1, "%s.conv1", pfx);
    int y = graph_conv(m, n1, a, out, 3, stride, 0, 1);
    snprintf(n1, sizeof n1, "%s.bn2", pfx);
    y = graph_bn(m, n1, y);
    snprintf(n1, sizeof n1, "%s.act2", pfx);
    y = graph_act(m, n1, y, abits_mid(m), m->cfg.alpha_conv);
    snprintf(n1, sizeof n1, "%s.conv2", pfx);
    y = graph_conv(m, n1, y, out, 3, 1, 0, 1);
    int sc = x;
    if (stride != 1 || in_c != out) {
        snprintf(n2, sizeof n2, "%s.shortcut", pfx);
        sc = graph_conv(m, n2, a, out, 1, stride, 0, 1);
    }
    snprintf(n1, sizeof n1, "%s.add", pfx);
    return graph_simple(m, N_ADD, n1, y, sc);
}

static int build_preresnet20(struct model *m, int x)
{
    int t = graph_conv(m, "conv1", x, 16, 3, 1, 0, 0);
    const int chans[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++) {
        for (int b = 0; b < 3; b++) {
            char pfx[32];
            snprintf(pfx, sizeof pfx, "layer%d.%d", s + 1, b);
            t = preact_block(m, pfx, t, chans[s], (s > 0 && b == 0) ? 2 : 1);
        }
    }
    t = graph_bn(m, "bn", t);
    t = graph_act(m, "act", t, 32, 0.0f); /* feeds only the GAP: plain ReLU */
    t = graph_simple(m, N_GAP, "gap", t, -1);
    t = fc_input_act(m, "fc_act", t);
    return graph_fc(m, "fc", t, m->cfg.nclass, 2);
}

static int build_mobilenetv1(struct model *m, int x)
{
    int t = graph_conv(m, "conv1", x, 16, 3, 1, 0, 0);
    t = graph_bn(m, "bn1", t);
    t = graph_act(m, "act1", t, abits_mid(m), m->cfg.alpha_conv);
    static const int cfgs[7][2] = {{32, 1}, {64, 2}, {64, 1}, {128, 2},
                                   {128, 1}, {256, 1}, {256, 1}};
    for (int i = 0; i < 7; i++) {
        char n[PARAM_NAME_LEN];
        int last = i == 6;
        snprintf(n, sizeof n, "blocks.%d.dw", i);
        t = graph_conv(m, n, t, 0, 3, cfgs[i][1], 1, 1);
        snprintf(n, sizeof n, "blocks.%d.bn1", i);
        t = graph_bn(m, n, t);
        snprintf(n, sizeof n, "blocks.%d.act1", i);
        t = graph_act(m, n, t, abits_mid(m), m->cfg.alpha_conv);
        snprintf(n, sizeof n, "blocks.%d.pw", i);
        t = graph_conv(m, n, t, cfgs[i][0], 1, 1, 0, 1);
        snprintf(n, sizeof n, "blocks.%d.bn2", i);
        t = graph_bn(m, n, t);
        snprintf(n, sizeof n, "blocks.%d.act2", i);
        /* The last A feeds only the GAP: plain ReLU. */
        t = graph_act(m, n, t, last ? 32 : abits_mid(m), m->cfg.alpha_conv);
    }
    t = graph_simple(m, N_GAP, "gap", t, -1);
    t = fc_input_act(m, "fc_act", t);
    return graph_fc(m, "fc", t, m->cfg.nclass, 2);
}

/* The input of a quantized 1x1 conv that reads a linear bottleneck is
 * PACT-clipped (spec/models.md); in a float model it is read as it is. */
static int bottleneck_input(struct model *m, const char *name, int t)
{
    if (abits_mid(m) >= 32)
        return t;
    return graph_act(m, name, t, abits_mid(m), m->cfg.alpha_conv);
}

static int build_mobilenetv2(struct model *m, int x)
{
    int t = graph_conv(m, "conv1", x, 16, 3, 1, 0, 0);
    t = graph_bn(m, "bn1", t);
    t = graph_act(m, "act1", t, abits_mid(m), m->cfg.alpha_conv);
    static const int stages[4][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 2, 1}};
    int linear = 0; /* t is a linear bottleneck output */
    int blk = 0;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < stages[s][2]; i++, blk++) {
            int exp = stages[s][0], c = stages[s][1], stride = i == 0 ? stages[s][3] : 1;
            int in_c = m->t[t].c;
            int x0 = t;
            char n[PARAM_NAME_LEN];
            int h = t;
            if (exp != 1) {
                if (linear) {
                    snprintf(n, sizeof n, "blocks.%d.in_act", blk);
                    h = bottleneck_input(m, n, h);
                }
                snprintf(n, sizeof n, "blocks.%d.expand", blk);
                h = graph_conv(m, n, h, in_c * exp, 1, 1, 0, 1);
                snprintf(n, sizeof n, "blocks.%d.bn0", blk);
                h = graph_bn(m, n, h);
                snprintf(n, sizeof n, "blocks.%d.act0", blk);
                h = graph_act(m, n, h, abits_mid(m), m->cfg.alpha_conv);
            } else if (linear) {
                snprintf(n, sizeof n, "blocks.%d.in_act", blk);
                h = bottleneck_input(m, n, h);
            }
            snprintf(n, sizeof n, "blocks.%d.dw", blk);
            h = graph_conv(m, n, h, 0, 3, stride, 1, 1);
            snprintf(n, sizeof n, "blocks.%d.bn1", blk);
            h = graph_bn(m, n, h);
            snprintf(n, sizeof n, "blocks.%d.act1", blk);
            h = graph_act(m, n, h, abits_mid(m), m->cfg.alpha_conv);
            snprintf(n, sizeof n, "blocks.%d.project", blk);
            h = graph_conv(m, n, h, c, 1, 1, 0, 1);
            snprintf(n, sizeof n, "blocks.%d.bn2", blk);
            h = graph_bn(m, n, h);
            if (stride == 1 && in_c == c) {
                snprintf(n, sizeof n, "blocks.%d.add", blk);
                h = graph_simple(m, N_ADD, n, h, x0);
            }
            t = h;
            linear = 1;
        }
    }
    t = bottleneck_input(m, "tail_act_in", t);
    t = graph_conv(m, "tail", t, 256, 1, 1, 0, 1);
    t = graph_bn(m, "tail_bn", t);
    t = graph_act(m, "tail_act", t, 32, 0.0f); /* feeds only the GAP */
    t = graph_simple(m, N_GAP, "gap", t, -1);
    t = fc_input_act(m, "fc_act", t);
    return graph_fc(m, "fc", t, m->cfg.nclass, 2);
}

/* ===========================================================================
 * Allocation and planning
 */

static void *model_alloc(struct model *m, size_t bytes)
{
    void *p = sat_malloc_aligned(bytes);
    if (p) {
        memset(p, 0, bytes);
        m->bytes += bytes;
    }
    return p;
}

static size_t tensor_len(const struct model *m, const struct tensor *t, int n)
{
    (void)m;
    return (size_t)t->c * (size_t)n * (size_t)t->h * (size_t)t->w;
}

/* Gradient buffers: tensor t needs its gradient from the backward step of
 * its last reader down to its producer's. Two tensors whose intervals
 * [producer, last_use] do not overlap share a buffer (greedy, largest
 * first). The input image needs no gradient. */
static int plan_grads(struct model *m)
{
    int order[MAX_TENSORS], k = 0;
    for (int i = 0; i < m->nt; i++)
        if (i != m->input)
            order[k++] = i;
    /* sort by size, descending (insertion sort; k is small) */
    for (int i = 1; i < k; i++) {
        int v = order[i], j = i;
        size_t lv = tensor_len(m, &m->t[v], 1);
        while (j > 0 && tensor_len(m, &m->t[order[j - 1]], 1) < lv) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    size_t slot_len[MAX_TENSORS];
    int nslots = 0;
    for (int i = 0; i < k; i++) {
        struct tensor *t = &m->t[order[i]];
        int lo = t->producer, hi = t->last_use < 0 ? m->nn : t->last_use;
        int slot = -1;
        for (int s = 0; s < nslots && slot < 0; s++) {
            int ok = 1;
            for (int j = 0; j < i && ok; j++) {
                struct tensor *u = &m->t[order[j]];
                if (u->grad_slot != s)
                    continue;
                int ulo = u->producer, uhi = u->last_use < 0 ? m->nn : u->last_use;
                if (!(hi < ulo || uhi < lo))
                    ok = 0;
            }
            if (ok)
                slot = s;
        }
        if (slot < 0) {
            slot = nslots++;
            slot_len[slot] = 0;
        }
        t->grad_slot = slot;
        size_t len = tensor_len(m, t, m->cfg.batch);
        if (len > slot_len[slot])
            slot_len[slot] = len;
    }
    m->gslots = sat_calloc((size_t)nslots, sizeof *m->gslots);
    if (!m->gslots)
        return SAT_ENOMEM;
    m->ngslots = nslots;
    for (int s = 0; s < nslots; s++) {
        m->gslots[s] = model_alloc(m, slot_len[s] * sizeof(float));
        if (!m->gslots[s])
            return SAT_ENOMEM;
    }
    return 0;
}

/* Decides, per node input, whether backward overwrites or adds into the
 * input's gradient: the first writer in backward order overwrites. */
static void plan_accum(struct model *m)
{
    int written[MAX_TENSORS] = {0};
    for (int i = m->nn - 1; i >= 0; i--) {
        struct node *nd = &m->nodes[i];
        nd->accum_in = written[nd->in];
        written[nd->in] = 1;
        if (nd->in2 >= 0) {
            nd->accum_in2 = written[nd->in2];
            written[nd->in2] = 1;
        }
    }
}

static void init_params(struct model *m)
{
    for (int i = 0; i < m->params.n; i++) {
        struct param_entry *e = &m->pe[i];
        float *p = m->p + e->offset;
        struct sat_rng r;
        sat_rng_init(&r, sat_rng_key(m->cfg.seed, 0x1417, (uint64_t)i, 0));
        if (e->role == ROLE_CONV_W || e->role == ROLE_DW_W) {
            /* He, fan-out: N(0, 2 / (k*k*out)) */
            double std = sqrt(2.0 / ((double)e->shape[2] * e->shape[3] * e->shape[0]));
            for (size_t j = 0; j < e->numel; j++)
                p[j] = (float)(std * sat_rng_normal(&r));
        } else if (e->role == ROLE_FC_W) {
            for (size_t j = 0; j < e->numel; j++)
                p[j] = (float)(0.01 * sat_rng_normal(&r));
        } else {
            for (size_t j = 0; j < e->numel; j++)
                p[j] = m->init_val[i];
        }
    }
    for (int i = 0; i < m->buffers.n; i++) {
        struct param_entry *e = &m->be[i];
        float v = e->role == ROLE_BN_VAR ? 1.0f : 0.0f;
        for (size_t j = 0; j < e->numel; j++)
            m->b[e->offset + j] = v;
    }
}

static int alloc_all(struct model *m)
{
    const int cap = m->cfg.batch;
    m->p = model_alloc(m, m->params.total * sizeof(float));
    m->g = model_alloc(m, m->params.total * sizeof(float));
    m->b = model_alloc(m, (m->buffers.total ? m->buffers.total : 1) * sizeof(float));
    if (!m->p || !m->g || !m->b)
        return SAT_ENOMEM;
    for (int i = 0; i < m->nt; i++) {
        m->t[i].val = model_alloc(m, tensor_len(m, &m->t[i], cap) * sizeof(float));
        if (!m->t[i].val)
            return SAT_ENOMEM;
    }
    size_t cols = 0, wmax = 0;
    for (int i = 0; i < m->nn; i++) {
        struct node *nd = &m->nodes[i];
        if (nd->kind == N_CONV || nd->kind == N_FC) {
            size_t wl = m->pe[nd->wp].numel;
            wmax = wl > wmax ? wl : wmax;
            nd->weff = model_alloc(m, wl * sizeof(float));
            nd->dfac = model_alloc(m, wl * sizeof(float));
            if (!nd->weff || !nd->dfac)
                return SAT_ENOMEM;
            if (nd->kind == N_CONV && nd->cs.groups == 1) {
                size_t c = conv_scratch_floats(&nd->cs);
                cols = c > cols ? c : cols;
            }
        } else if (nd->kind == N_BN) {
            int c = m->t[nd->in].c;
            nd->mean = model_alloc(m, (size_t)c * sizeof(float));
            nd->invstd = model_alloc(m, (size_t)c * sizeof(float));
            if (!nd->mean || !nd->invstd)
                return SAT_ENOMEM;
        } else if (nd->kind == N_MAXPOOL) {
            nd->argmax = model_alloc(m, tensor_len(m, &m->t[nd->out], cap) * sizeof(int32_t));
            if (!nd->argmax)
                return SAT_ENOMEM;
        }
    }
    m->cols = model_alloc(m, (cols ? cols : 1) * sizeof(float));
    m->dweff = model_alloc(m, (wmax ? wmax : 1) * sizeof(float));
    m->probs = model_alloc(m, (size_t)m->cfg.nclass * cap * sizeof(float));
    m->labels = model_alloc(m, (size_t)cap * sizeof(int32_t));
    if (!m->cols || !m->dweff || !m->probs || !m->labels)
        return SAT_ENOMEM;
    return plan_grads(m);
}

int model_new(struct model **out, const struct model_cfg *cfg, char err[SAT_ERR_LEN])
{
    *out = NULL;
    if (!model_zoo_has(cfg->arch))
        return sat_errf(err, SAT_EINVAL, "unknown model \"%s\"", cfg->arch);
    if (cfg->c < 1 || cfg->c > 16 || cfg->h < 4 || cfg->h > 1024 || cfg->w < 4 ||
        cfg->w > 1024 || cfg->nclass < 2 || cfg->nclass > 100000 || cfg->batch < 1 ||
        cfg->batch > 65536)
        return sat_errf(err, SAT_EINVAL, "model %s: bad input shape %dx%dx%d, %d classes, batch %d",
                        cfg->arch, cfg->c, cfg->h, cfg->w, cfg->nclass, cfg->batch);
    const int bits[5] = {cfg->wbits, cfg->abits, cfg->first_wbits, cfg->last_wbits,
                         cfg->last_abits};
    for (int i = 0; i < 5; i++)
        if (!(bits[i] == 32 || (bits[i] >= 2 && bits[i] <= 8)))
            return sat_errf(err, SAT_EINVAL, "model %s: bit width %d (want 2..8 or 32)",
                            cfg->arch, bits[i]);
    struct model *m = sat_calloc(1, sizeof *m);
    if (!m)
        return sat_errf(err, SAT_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->err = err;
    m->params.e = m->pe;
    m->buffers.e = m->be;
    m->input = tensor_new(m, cfg->c, cfg->h, cfg->w, -1);
    int logits = -1;
    if (strcmp(cfg->arch, "mlp") == 0)
        logits = build_mlp(m, m->input);
    else if (strcmp(cfg->arch, "cnn-small") == 0)
        logits = build_cnn_small(m, m->input);
    else if (strcmp(cfg->arch, "preresnet20") == 0)
        logits = build_preresnet20(m, m->input);
    else if (strcmp(cfg->arch, "mobilenetv1") == 0)
        logits = build_mobilenetv1(m, m->input);
    else
        logits = build_mobilenetv2(m, m->input);
    if (m->build_failed || logits < 0) {
        int rc = m->build_failed ? SAT_EINVAL : SAT_EINVAL;
        if (!m->build_failed)
            sat_errf(err, rc, "model %s: could not be built", cfg->arch);
        model_free(m);
        return rc;
    }
    m->logits_t = logits;
    for (int i = 0; i < m->nn; i++) {
        struct node *nd = &m->nodes[i];
        m->t[nd->in].last_use = i;
        if (nd->in2 >= 0)
            m->t[nd->in2].last_use = i;
    }
    plan_accum(m);
    if (alloc_all(m) != 0) {
        model_free(m);
        return sat_errf(err, SAT_ENOMEM, "model %s: out of memory for batch %d", cfg->arch,
                        cfg->batch);
    }
    init_params(m);
    m->profile = getenv("SATURN_PROFILE") != NULL;
    m->err = NULL;
    *out = m;
    return 0;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    sat_free(m->p);
    sat_free(m->g);
    sat_free(m->b);
    for (int i = 0; i < m->nt; i++)
        sat_free(m->t[i].val);
    for (int i = 0; i < m->nn; i++) {
        struct node *nd = &m->nodes[i];
        sat_free(nd->weff);
        sat_free(nd->dfac);
        sat_free(nd->mean);
        sat_free(nd->invstd);
        sat_free(nd->argmax);
    }
    if (m->gslots)
        for (int s = 0; s < m->ngslots; s++)
            sat_free(m->gslots[s]);
    sat_free(m->gslots);
    sat_free(m->cols);
    sat_free(m->dweff);
    sat_free(m->probs);
    sat_free(m->labels);
    sat_free(m);
}

/* ===========================================================================
 * Forward and backward
 */

static float *grad_of(struct model *m, int t)
{
    int s = m->t[t].grad_slot;
    return s < 0 ? NULL : m->gslots[s];
}

/* The weights a conv/FC multiplies with: the latent ones for the identity
 * quantizer, else the freshly quantized ones. */
static const float *weights_fwd(struct model *m, struct node *nd)
{
    const struct param_entry *e = &m->pe[nd->wp];
    float *w = m->p + e->offset;
    if (wquant_is_identity(&nd->wq))
        return w;
    nd->s = wquant_forward(nd->weff, nd->dfac, w, e->numel, &nd->wq, NULL);
    return nd->weff;
}

static void set_batch(struct model *m, int n)
{
    m->n = n;
    for (int i = 0; i < m->nn; i++)
        if (m->nodes[i].kind == N_CONV)
            m->nodes[i].cs.n = n;
}

double model_forward(struct model *m, const float *x, const int32_t *y, int n, int train,
                     int *correct)
{
    assert(n >= 1 && n <= m->cfg.batch);
    set_batch(m, n);
    struct tensor *tin = &m->t[m->input];
    memcpy(tin->val, x, tensor_len(m, tin, n) * sizeof(float));
    memcpy(m->labels, y, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < m->nn; i++) {
        struct node *nd = &m->nodes[i];
        struct tensor *ti = &m->t[nd->in], *to = &m->t[nd->out];
        size_t hw = (size_t)ti->h * ti->w;
        double t0 = m->profile ? sat_mono_s() : 0;
        switch (nd->kind) {
        case N_CONV: {
            const float *w = weights_fwd(m, nd);
            if (nd->cs.groups == 1)
                conv_forward(to->val, ti->val, w, &nd->cs, m->cols);
            else
                dwconv_forward(to->val, ti->val, w, &nd->cs);
            break;
        }
        case N_FC: {
            const float *w = weights_fwd(m, nd);
            fc_forward(to->val, ti->val, w, m->p + m->pe[nd->bp].offset, n, nd->fc_in, nd->fc_out);
            break;
        }
        case N_BN: {
            const float *gm = m->p + m->pe[nd->gp].offset, *bt = m->p + m->pe[nd->betap].offset;
            float *rm = m->b + m->be[nd->rmean].offset, *rv = m->b + m->be[nd->rvar].offset;
            if (train)
                bn_forward_train(to->val, nd->mean, nd->invstd, ti->val, gm, bt, rm, rv, ti->c,
                                 (size_t)n * hw, BN_EPS, BN_MOMENTUM);
            else
                bn_forward_eval(to->val, ti->val, gm, bt, rm, rv, ti->c, (size_t)n * hw, BN_EPS);
            break;
        }
        case N_ACT: {
            size_t len = tensor_len(m, ti, n);
            if (nd->act == ACT_RELU)
                relu_forward(to->val, ti->val, len);
            else
                pact_forward(to->val, ti->val, len, m->p[m->pe[nd->ap].offset], nd->bits);
            break;
        }
        case N_MAXPOOL:
            maxpool_forward(to->val, nd->argmax, ti->val, ti->c * n, ti->h, ti->w, nd->k);
            break;
        case N_GAP:
            gap_forward(to->val, ti->val, ti->c, n, (int)hw);
            break;
        case N_FLATTEN:
            flatten_forward(to->val, ti->val, ti->c, n, (int)hw);
            break;
        case N_ADD:
            add_forward(to->val, ti->val, m->t[nd->in2].val, tensor_len(m, ti, n));
            break;
        }
        if (m->profile)
            nd->t_fwd += sat_mono_s() - t0;
    }
    return softmax_ce_forward(m->probs, correct, m->t[m->logits_t].val, m->labels, n,
                              m->cfg.nclass);
}

const float *model_logits(const struct model *m)
{
    return m->t[m->logits_t].val;
}

const float *model_tensor_values(const struct model *m, int id)
{
    return id >= 0 && id < m->nt ? m->t[id].val : NULL;
}

void model_zero_grad(struct model *m)
{
    memset(m->g, 0, m->params.total * sizeof(float));
}

/* Backward of a conv/FC weight: the kernel accumulates into dweff (zeroed
 * here), which the quantizer maps back onto the latent gradient; for the
 * identity quantizer the kernel accumulates into the latent gradient. */
static float *wgrad_begin(struct model *m, struct node *nd)
{
    const struct param_entry *e = &m->pe[nd->wp];
    if (wquant_is_identity(&nd->wq))
        return m->g + e->offset;
    memset(m->dweff, 0, e->numel * sizeof(float));
    return m->dweff;
}

static void wgrad_end(struct model *m, struct node *nd)
{
    const struct param_entry *e = &m->pe[nd->wp];
    if (!wquant_is_identity(&nd->wq))
        wquant_backward(m->g + e->offset, m->dweff, nd->dfac, e->numel);
}

static const float *weights_used(struct model *m, const struct node *nd)
{
    return wquant_is_identity(&nd->wq) ? m->p + m->pe[nd->wp].offset : nd->weff;
}

void model_backward(struct model *m, float loss_scale)
{
    const int n = m->n;
    softmax_ce_backward(grad_of(m, m->logits_t), m->probs, m->labels, n, m->cfg.nclass,
                        loss_scale);
    for (int i = m->nn - 1; i >= 0; i--) {
        struct node *nd = &m->nodes[i];
        struct tensor *ti = &m->t[nd->in];
        float *dout = grad_of(m, nd->out);
        float *din = grad_of(m, nd->in);
        size_t hw = (size_t)ti->h * ti->w;
        double t0 = m->profile ? sat_mono_s() : 0;
        switch (nd->kind) {
        case N_CONV: {
            float *dw = wgrad_begin(m, nd);
            const float *w = weights_used(m, nd);
            if (nd->cs.groups == 1)
                conv_backward(din, dw, dout, ti->val, w, &nd->cs, m->cols, nd->accum_in);
            else
                dwconv_backward(din, dw, dout, ti->val, w, &nd->cs, nd->accum_in);
            wgrad_end(m, nd);
            break;
        }
        case N_FC: {
            float *dw = wgrad_begin(m, nd);
            fc_backward(din, dw, m->g + m->pe[nd->bp].offset, dout, ti->val, weights_used(m, nd),
                        n, nd->fc_in, nd->fc_out, nd->accum_in);
            wgrad_end(m, nd);
            break;
        }
        case N_BN:
            bn_backward(din, m->g + m->pe[nd->gp].offset, m->g + m->pe[nd->betap].offset, dout,
                        ti->val, nd->mean, nd->invstd, m->p + m->pe[nd->gp].offset, ti->c,
                        (size_t)n * hw, nd->accum_in);
            break;
        case N_ACT: {
            size_t len = tensor_len(m, ti, n);
            if (nd->act == ACT_RELU) {
                if (din)
                    relu_backward(din, dout, ti->val, len, nd->accum_in);
            } else {
                size_t off = m->pe[nd->ap].offset;
                double ga = pact_backward(din, dout, ti->val, len, m->p[off], nd->bits,
                                          m->cfg.cg, nd->accum_in);
                m->g[off] += (float)ga;
            }
            break;
        }
        case N_MAXPOOL:
            if (din)
                maxpool_backward(din, dout, nd->argmax, ti->c * n, ti->h, ti->w, nd->k,
                                 nd->accum_in);
            break;
        case N_GAP:
            if (din)
                gap_backward(din, dout, ti->c, n, (int)hw, nd->accum_in);
            break;
        case N_FLATTEN:
            if (din)
                flatten_backward(din, dout, ti->c, n, (int)hw, nd->accum_in);
            break;
        case N_ADD: {
            size_t len = tensor_len(m, ti, n);
            float *din2 = grad_of(m, nd->in2);
            if (din)
                add_backward(din, dout, len, nd->accum_in);
            if (din2)
                add_backward(din2, dout, len, nd->accum_in2);
            break;
        }
        }
        if (m->profile)
            nd->t_bwd += sat_mono_s() - t0;
    }
}

void model_profile_print(const struct model *m, FILE *f)
{
    static const char *const kinds[] = {"conv", "bn", "act", "maxpool", "gap",
                                        "flatten", "fc", "add"};
    double kf[8] = {0}, kb[8] = {0}, tot = 0;
    fprintf(f, "%-24s %-8s %10s %10s\n", "node", "kind", "fwd ms", "bwd ms");
    for (int i = 0; i < m->nn; i++) {
        const struct node *nd = &m->nodes[i];
        fprintf(f, "%-24s %-8s %10.2f %10.2f\n", nd->name, kinds[nd->kind], nd->t_fwd * 1e3,
                nd->t_bwd * 1e3);
        kf[nd->kind] += nd->t_fwd;
        kb[nd->kind] += nd->t_bwd;
        tot += nd->t_fwd + nd->t_bwd;
    }
    for (int k = 0; k < 8; k++)
        if (kf[k] + kb[k] > 0)
            fprintf(f, "total %-18s %-8s %10.2f %10.2f  (%.1f%%)\n", "", kinds[k], kf[k] * 1e3,
                    kb[k] * 1e3, 100 * (kf[k] + kb[k]) / tot);
}

/* ===========================================================================
 * Accessors
 */

float *model_params(struct model *m)
{
    return m->p;
}

float *model_grads(struct model *m)
{
    return m->g;
}

float *model_buffers(struct model *m)
{
    return m->b;
}

const struct param_table *model_param_table(const struct model *m)
{
    return &m->params;
}

const struct param_table *model_buffer_table(const struct model *m)
{
    return &m->buffers;
}

const struct model_cfg *model_get_cfg(const struct model *m)
{
    return &m->cfg;
}

size_t model_bytes(const struct model *m)
{
    return m->bytes;
}

double model_macs_per_image(const struct model *m)
{
    double macs = 0;
    for (int i = 0; i < m->nn; i++) {
        const struct node *nd = &m->nodes[i];
        if (nd->kind == N_CONV)
            macs += (double)nd->cs.oc * nd->cs.oh * nd->cs.ow * (nd->cs.ic / nd->cs.groups) *
                    nd->cs.kh * nd->cs.kw;
        else if (nd->kind == N_FC)
            macs += (double)nd->fc_in * nd->fc_out;
    }
    return macs;
}

int model_quant_info(const struct model *m, struct quant_info *out, int cap)
{
    int k = 0;
    for (int i = 0; i < m->nn; i++) {
        const struct node *nd = &m->nodes[i];
        int is_w = (nd->kind == N_CONV || nd->kind == N_FC) && nd->wq.sat;
        int is_a = nd->kind == N_ACT && nd->act == ACT_PACT;
        if (!is_w && !is_a)
            continue;
        if (k < cap) {
            snprintf(out[k].name, sizeof out[k].name, "%s", nd->name);
            out[k].is_alpha = is_a;
            out[k].value = is_a ? fmaxf(fabsf(m->p[m->pe[nd->ap].offset]), QUANT_ALPHA_EPS)
                                : nd->s;
        }
        k++;
    }
    return k;
}

int model_weight_layer(const struct model *m, int i, struct wlayer_info *out)
{
    int k = 0;
    for (int j = 0; j < m->nn; j++) {
        const struct node *nd = &m->nodes[j];
        if (nd->kind != N_CONV && nd->kind != N_FC)
            continue;
        if (k++ != i)
            continue;
        snprintf(out->name, sizeof out->name, "%s", nd->name);
        out->param_index = nd->wp;
        out->bits = nd->wq.bits;
        out->clamp = nd->wq.clamp;
        out->sat = nd->wq.sat;
        out->fan = nd->wq.fan;
        out->s = nd->s;
        return 0;
    }
    return SAT_ENOENT;
}

/* ===========================================================================
 * Read-only graph enumeration (model.h), for exporters
 */

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
