/* zoo.c - the model zoo (spec/models.md): the graph builders (graph_conv,
 * graph_bn, graph_act, ...) that record nodes, tensors and parameter
 * entries, the networks described with them, and the one {name, build}
 * table that names them.
 *
 * Building only records the graph; model_new (model.c) then sizes and
 * allocates every buffer once and initialises the parameters. The order of
 * the builder calls is the order of the parameter entries, and so of the
 * initialisation streams and of checkpoint tensors: keep it when editing.
 */
#include "model_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

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
 * The networks (spec/models.md)
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
 * The table
 */

/* The zoo, one row per model: its name and its builder. model_zoo_names
 * (model.h) and the lookup table below are both made from this list. */
#define MODEL_ZOO(XX)                                                                              \
    XX("mlp", build_mlp)                                                                           \
    XX("cnn-small", build_cnn_small)                                                               \
    XX("preresnet20", build_preresnet20)                                                           \
    XX("mobilenetv1", build_mobilenetv1)                                                           \
    XX("mobilenetv2", build_mobilenetv2)

const char *const model_zoo_names[] = {
#define XX(name, build) name,
    MODEL_ZOO(XX)
#undef XX
        NULL};

/* Records the graph on input tensor x; returns the logits tensor or -1. */
typedef int (*zoo_build_fn)(struct model *m, int x);

static const struct {
    const char *name;
    zoo_build_fn build;
} zoo[] = {
#define XX(name, build) {name, build},
    MODEL_ZOO(XX)
#undef XX
};

static zoo_build_fn zoo_find(const char *arch)
{
    for (size_t i = 0; arch && i < sizeof zoo / sizeof zoo[0]; i++)
        if (strcmp(zoo[i].name, arch) == 0)
            return zoo[i].build;
    return NULL;
}

int model_zoo_has(const char *arch)
{
    return zoo_find(arch) != NULL;
}

int model__build(struct model *m)
{
    const struct model_cfg *cfg = &m->cfg;
    zoo_build_fn build = zoo_find(cfg->arch);
    if (!build)
        return sat_errf(m->err, SAT_EINVAL, "unknown model \"%s\"", cfg->arch);
    m->input = tensor_new(m, cfg->c, cfg->h, cfg->w, -1);
    int logits = build(m, m->input);
    if (m->build_failed || logits < 0) {
        if (!m->build_failed)
            sat_errf(m->err, SAT_EINVAL, "model %s: could not be built", cfg->arch);
        return SAT_EINVAL;
    }
    m->logits_t = logits;
    return 0;
}
