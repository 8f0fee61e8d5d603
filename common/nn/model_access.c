/* model_access.c - what a built model (model.c) tells and lends its
 * callers: the per-node profile, its parameter, gradient and buffer arrays
 * and their tables, its size and cost, and the figures of its quantizers.
 */
#include "model_int.h"

#include <math.h>
#include <stdio.h>

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

float *model_swap_params(struct model *m, float *p)
{
    float *old = m->p;
    m->p = p;
    return old;
}

float *model_swap_buffers(struct model *m, float *b)
{
    float *old = m->b;
    m->b = b;
    return old;
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
