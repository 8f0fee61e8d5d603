/* model.c - a model of the zoo as a static graph of layer nodes: building,
 * allocation, forward and backward (its accessors and profile: model_access.c).
 *
 * Building a model is two phases. The zoo (zoo.c) describes the network
 * with a small builder (graph_conv, graph_bn, graph_act, ...) that records
 * nodes, tensors and parameter entries; model_new then sizes and allocates
 * every buffer once, plans the gradient buffers, and initialises the
 * parameters. Forward runs the nodes in order, backward in reverse.
 * The read-only enumeration for exporters is model_graph.c.
 */
#include "model_int.h"
#include "threads.h"

#include "../util/clock.h"
#include "../util/rng.h"
#include "../util/xalloc.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * first). The input image needs no gradient, nor does the output of a BN
 * that is fused with the ACT after it (plan_fusion). */
static int plan_grads(struct model *m)
{
    int order[MAX_TENSORS], k = 0;
    for (int i = 0; i < m->nt; i++) {
        const int p = m->t[i].producer;
        const int folded = p >= 0 && m->nodes[p].kind == N_BN && m->nodes[p].fused;
        m->t[i].grad_slot = -1;
        if (i != m->input && !folded)
            order[k++] = i;
    }
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

/* Marks each BN whose output only the next node reads, an ACT, as fused:
 * that output is never stored (the ACT reads it through a bn_view, and BN's
 * backward needs only its input), which saves one activation tensor per
 * BN + activation pair and its write and read. BN's backward then does the
 * ACT's too (bn_backward_gated), so that output needs no gradient either. */
static void plan_fusion(struct model *m)
{
    int readers[MAX_TENSORS] = {0};
    for (int i = 0; i < m->nn; i++) {
        readers[m->nodes[i].in]++;
        if (m->nodes[i].in2 >= 0)
            readers[m->nodes[i].in2]++;
        m->nodes[i].fused_bn = -1;
        m->nodes[i].in_act = -1;
        m->nodes[i].qin_act = -1;
    }
    for (int i = 0; i + 1 < m->nn; i++) {
        struct node *bn = &m->nodes[i], *act = &m->nodes[i + 1];
        if (bn->kind != N_BN || act->kind != N_ACT || act->in != bn->out ||
            readers[bn->out] != 1 || bn->out == m->logits_t)
            continue;
        bn->fused = 1;
        act->fused_bn = i;
        m->t[bn->out].virt = 1;
    }
    /* An ACT after a fused BN whose output only a depthwise conv reads: the
     * conv reads it through a view, plane by plane, and it is never stored
     * either (the ACT's backward needs only its own input, the BN view). */
    for (int i = 0; i < m->nn; i++) {
        struct node *act = &m->nodes[i];
        if (act->kind != N_ACT || act->fused_bn < 0 || readers[act->out] != 1 ||
            m->t[act->out].last_use < 0)
            continue;
        struct node *dw = &m->nodes[m->t[act->out].last_use];
        if (dw->kind != N_CONV || dw->cs.groups == 1 || dw->in != act->out ||
            !dwconv_act_ok(&dw->cs))
            continue;
        act->into_dw = 1;
        dw->in_act = i;
        m->t[act->out].virt = 1;
    }
    /* A quantized dense conv reading a PACT output, or a max-pool of one
     * (the max of grid points is one), runs its forward on the codes. */
    for (int i = 0; i < m->nn; i++) {
        struct node *cv = &m->nodes[i];
        if (cv->kind != N_CONV || cv->cs.groups != 1 || wquant_is_identity(&cv->wq) ||
            cv->wq.bits >= 32)
            continue;
        int p = m->t[cv->in].producer;
        while (p >= 0 && m->nodes[p].kind == N_MAXPOOL)
            p = m->t[m->nodes[p].in].producer;
        if (p < 0 || m->nodes[p].kind != N_ACT || m->nodes[p].act != ACT_PACT ||
            m->nodes[p].into_dw || !conv_forward_q_ok(&cv->cs, cv->wq.bits, m->nodes[p].bits))
            continue;
        cv->qin_act = p;
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
        if (m->t[i].virt)
            continue;
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
                /* the scratch stays sized for today's threads, whatever
                 * nn_set_threads does later; the input image has no
                 * gradient: no columns for it */
                nd->cs.threads = nn_threads();
                size_t c = nd->in == m->input ? conv_scratch_floats_nodinp(&nd->cs)
                                              : conv_scratch_floats(&nd->cs);
                cols = c > cols ? c : cols;
            }
        } else if (nd->kind == N_BN) {
            int c = m->t[nd->in].c;
            nd->mean = model_alloc(m, (size_t)c * sizeof(float));
            nd->invstd = model_alloc(m, (size_t)c * sizeof(float));
            nd->vmu = model_alloc(m, (size_t)c * sizeof(float));
            nd->vscale = model_alloc(m, (size_t)c * sizeof(float));
            nd->vshift = model_alloc(m, (size_t)c * sizeof(float));
            if (!nd->mean || !nd->invstd || !nd->vmu || !nd->vscale || !nd->vshift)
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
    int rc = model__build(m);
    if (rc != 0) {
        model_free(m);
        return rc;
    }
    for (int i = 0; i < m->nn; i++) {
        struct node *nd = &m->nodes[i];
        m->t[nd->in].last_use = i;
        if (nd->in2 >= 0)
            m->t[nd->in2].last_use = i;
    }
    plan_accum(m);
    plan_fusion(m);
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
        sat_free(nd->vmu);
        sat_free(nd->vscale);
        sat_free(nd->vshift);
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

/* The view through which a fused BN's output is read, at the current batch. */
static void bn_view_of(const struct model *m, const struct node *bn, struct bn_view *v)
{
    const struct tensor *ti = &m->t[bn->in];
    v->x = ti->val;
    v->mu = bn->vmu;
    v->scale = bn->vscale;
    v->shift = bn->vshift;
    v->m = (size_t)m->n * ti->h * ti->w;
}

/* The view through which an into_dw ACT's output is read. */
static void act_view_of(const struct model *m, const struct node *act, struct act_view *av)
{
    bn_view_of(m, &m->nodes[act->fused_bn], &av->bn);
    av->bits = act->act == ACT_RELU ? 0 : act->bits;
    av->alpha_raw = act->alpha_fwd;
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
        nn_set_layout(n, (size_t)n * hw);
        switch (nd->kind) {
        case N_CONV: {
            const float *w = weights_fwd(m, nd);
            struct act_view av;
            if (nd->in_act >= 0)
                act_view_of(m, &m->nodes[nd->in_act], &av);
            if (nd->qin_act >= 0) {
                const struct node *a = &m->nodes[nd->qin_act];
                conv_forward_q(to->val, ti->val, w, nd->s, nd->wq.bits,
                               pact_alpha(m->p[m->pe[a->ap].offset]), a->bits, &nd->cs, m->cols);
            } else if (nd->cs.groups == 1) {
                conv_forward(to->val, ti->val, w, &nd->cs, m->cols);
            } else if (nd->in_act >= 0) {
                dwconv_forward_act(to->val, &av, w, &nd->cs);
            } else {
                dwconv_forward(to->val, ti->val, w, &nd->cs);
            }
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
            if (nd->fused && train)
                bn_stats_train(nd->vmu, nd->vscale, nd->vshift, nd->mean, nd->invstd, ti->val, gm,
                               bt, rm, rv, ti->c, (size_t)n * hw, BN_EPS, BN_MOMENTUM);
            else if (nd->fused)
                bn_stats_eval(nd->vmu, nd->vscale, nd->vshift, gm, bt, rm, rv, ti->c, BN_EPS);
            else if (train)
                bn_forward_train(to->val, nd->mean, nd->invstd, ti->val, gm, bt, rm, rv, ti->c,
                                 (size_t)n * hw, BN_EPS, BN_MOMENTUM);
            else
                bn_forward_eval(to->val, ti->val, gm, bt, rm, rv, ti->c, (size_t)n * hw, BN_EPS);
            break;
        }
        case N_ACT: {
            size_t len = tensor_len(m, ti, n);
            struct bn_view v;
            if (nd->into_dw) {
                nd->alpha_fwd = nd->act == ACT_PACT ? m->p[m->pe[nd->ap].offset] : 0.0f;
            } else if (nd->fused_bn >= 0) {
                bn_view_of(m, &m->nodes[nd->fused_bn], &v);
                if (nd->act == ACT_RELU)
                    relu_forward_bn(to->val, &v, ti->c);
                else
                    pact_forward_bn(to->val, &v, ti->c, m->p[m->pe[nd->ap].offset], nd->bits);
            } else if (nd->act == ACT_RELU) {
                relu_forward(to->val, ti->val, len);
            } else {
                pact_forward(to->val, ti->val, len, m->p[m->pe[nd->ap].offset], nd->bits);
            }
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

/* A fused BN's or ACT's output is not stored: it is computed from the view
 * of the last forward into the tensor's gradient buffer, which only backward uses
 * (and always writes before it reads). A fused BN's output has none; the
 * ACT's output after it, of the same shape, lends its own. */
const float *model_tensor_values(const struct model *m, int id)
{
    if (id < 0 || id >= m->nt)
        return NULL;
    const struct tensor *t = &m->t[id];
    if (!t->virt)
        return t->val;
    int slot = t->grad_slot;
    if (slot < 0)
        slot = m->t[m->nodes[t->producer + 1].out].grad_slot;
    float *buf = m->gslots[slot];
    const struct node *pr = &m->nodes[t->producer];
    if (pr->kind == N_ACT) {
        struct act_view av;
        act_view_of(m, pr, &av);
        act_view_fill(buf, &av, 0, tensor_len(m, t, m->n));
    } else {
        struct bn_view v;
        bn_view_of(m, pr, &v);
        bn_view_values(buf, &v, t->c);
    }
    return buf;
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
        nn_set_layout(n, (size_t)n * hw);
        switch (nd->kind) {
        case N_CONV: {
            float *dw = wgrad_begin(m, nd);
            const float *w = weights_used(m, nd);
            struct act_view av;
            if (nd->in_act >= 0)
                act_view_of(m, &m->nodes[nd->in_act], &av);
            if (nd->cs.groups == 1)
                conv_backward(din, dw, dout, ti->val, w, &nd->cs, m->cols, nd->accum_in);
            else if (nd->in_act >= 0)
                dwconv_backward_act(din, dw, dout, &av, w, &nd->cs, nd->accum_in);
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
        case N_BN: {
            float *dg = m->g + m->pe[nd->gp].offset, *db = m->g + m->pe[nd->betap].offset;
            const float *gamma = m->p + m->pe[nd->gp].offset;
            if (nd->fused) {
                /* the ACT after it (plan_fusion): its input gradient, and
                 * PACT's alpha gradient */
                const struct node *act = &m->nodes[i + 1];
                double ga = 0.0;
                struct bn_gate gate = {.pact = act->act == ACT_PACT};
                bn_view_of(m, nd, &gate.v);
                if (gate.pact) {
                    gate.alpha_raw = m->p[m->pe[act->ap].offset];
                    gate.al = pact_alpha(gate.alpha_raw);
                    gate.bits = act->bits;
                    gate.cg = m->cfg.cg;
                    gate.alpha_grad = &ga;
                }
                bn_backward_gated(din, dg, db, grad_of(m, act->out), ti->val, nd->mean, nd->invstd,
                                  gamma, ti->c, (size_t)n * hw, nd->accum_in, &gate);
                if (gate.pact)
                    m->g[m->pe[act->ap].offset] += (float)ga;
            } else {
                bn_backward(din, dg, db, dout, ti->val, nd->mean, nd->invstd, gamma, ti->c,
                            (size_t)n * hw, nd->accum_in);
            }
            break;
        }
        case N_ACT: {
            if (nd->fused_bn >= 0)
                break; /* the fused BN's backward does all of it (case N_BN) */
            if (nd->act == ACT_RELU) {
                if (din)
                    relu_backward(din, dout, ti->val, tensor_len(m, ti, n), nd->accum_in);
            } else {
                size_t off = m->pe[nd->ap].offset;
                m->g[off] += (float)pact_backward(din, dout, ti->val, ti->c, (size_t)n * hw,
                                                  m->p[off], nd->bits, m->cfg.cg, nd->accum_in);
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
