/* onnx.c - ONNX export of a Saturn model (see onnx.h for the encoding).
 *
 * The engine's nodes (model_node_get) are translated one by one into
 * protobuf-c messages with the builder of onnx_build.h, whose arena holds
 * the whole tree; the ModelProto is then packed into one buffer and the
 * arena freed. The builder records the first failure and its helpers are
 * no-ops after it, so the translation reads straight through and checks
 * once at the end.
 */
#include "onnx.h"

#include "export/export_version.h"
#include "onnx_build.h"

#include "../nn/quant.h"
#include "../util/file.h"
#include "../util/xalloc.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ===========================================================================
 * Translation of the engine's nodes
 */

#define ZERO_F32 "saturn.zero_f32"
#define ZERO_U8 "saturn.zero_u8"

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* The parameter entry `idx` (checked to be finite); NULL on failure. */
static const float *param_vals(struct ox *b, struct model *m, int idx, const char *what,
                               size_t *numel)
{
    const struct param_table *pt = model_param_table(m);
    if (b->rc)
        return NULL;
    if (idx < 0 || idx >= pt->n) {
        ox__fail(b, SAT_EINTERNAL, "%s: no parameter", what);
        return NULL;
    }
    const struct param_entry *e = &pt->e[idx];
    const float *v = model_params(m) + e->offset;
    if (!all_finite(v, e->numel)) {
        ox__fail(b, SAT_ENAN, "%s has non-finite values", e->name);
        return NULL;
    }
    if (numel)
        *numel = e->numel;
    return v;
}

static const float *buffer_vals(struct ox *b, struct model *m, int idx)
{
    const struct param_table *bt = model_buffer_table(m);
    if (b->rc)
        return NULL;
    if (idx < 0 || idx >= bt->n) {
        ox__fail(b, SAT_EINTERNAL, "missing BN buffer");
        return NULL;
    }
    const struct param_entry *e = &bt->e[idx];
    const float *v = model_buffers(m) + e->offset;
    if (!all_finite(v, e->numel)) {
        ox__fail(b, SAT_ENAN, "%s has non-finite values", e->name);
        return NULL;
    }
    return v;
}

/* Adds the weights of a conv / FC node and returns the name of the float
 * tensor that the Conv / Gemm reads: "<param>", either a float initializer
 * (32 bits) or the output of a DequantizeLinear of the integer grid. */
static const char *export_weight(struct ox *b, struct model *m, const struct model_node_desc *d,
                                 char layer_note[160])
{
    const struct param_table *pt = model_param_table(m);
    size_t len = 0;
    const float *w = param_vals(b, m, d->weight_param, d->name, &len);
    if (!w)
        return NULL;
    const struct param_entry *e = &pt->e[d->weight_param];
    const struct wquant q = {.bits = d->wbits, .clamp = d->wclamp, .sat = d->wsat, .fan = d->wfan};
    float *weff = ox__alloc(b, len * sizeof *weff);
    float *dfac = ox__alloc(b, len * sizeof *dfac);
    if (!weff || !dfac)
        return NULL;
    /* Exactly the engine's weight path: s is what model_forward uses. */
    const float s = wquant_forward(weff, dfac, w, len, &q, NULL);
    const char *wname = e->name;
    if (q.bits >= 32) {
        ox__init_f32(b, wname, e->ndim, e->shape, weff, len);
        snprintf(layer_note, 160, "bits=32 clamp=%d sat=%d s=%.9g", q.clamp, q.sat, (double)s);
        return b->rc ? NULL : wname;
    }
    const int a = (1 << q.bits) - 1;
    const int wide = a > 127; /* 8 bits: -255..255 needs int32 */
    const int dtype =
        wide ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32 : ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
    int *codes = ox__alloc(b, len * sizeof *codes);
    uint8_t *raw = ox__alloc(b, len * (wide ? 4 : 1));
    if (!codes || !raw)
        return NULL;
    wquant_codes(codes, w, len, q.bits);
    for (size_t i = 0; i < len; i++) {
        if (codes[i] < 0 || codes[i] > a) {
            ox__fail(b, SAT_EINTERNAL, "%s: code %d outside [0, %d]", wname, codes[i], a);
            return NULL;
        }
        int32_t wi = 2 * codes[i] - a; /* odd, in [-a, a] */
        if (wide)
            ox__put_u32le(raw + 4 * i, (uint32_t)wi);
        else
            raw[i] = (uint8_t)(int8_t)wi;
    }
    const float scale = s / (float)a;
    char *n_int = ox__printf(b, "%s_int", wname), *n_scale = ox__printf(b, "%s_scale", wname);
    char *n_zp = ox__printf(b, "%s_zero_point", wname),
         *n_node = ox__printf(b, "%s/dequant_w", d->name);
    if (b->rc)
        return NULL;
    ox__init(b, n_int, dtype, e->ndim, e->shape, raw, len * (wide ? 4 : 1));
    ox__scalar_f32(b, n_scale, scale);
    ox__scalar_int(b, n_zp, dtype, 0);
    const char *in[3] = {n_int, n_scale, n_zp};
    Onnx__NodeProto *nd = ox__node(b, "DequantizeLinear", n_node, 3, in, wname);
    snprintf(layer_note, 160, "bits=%d sat=%d fan=%d s=%.9g scale=s/%d=%.9g %s", q.bits, q.sat,
             q.fan, (double)s, a, (double)scale, wide ? "int32" : "int8");
    char doc[240];
    snprintf(doc, sizeof doc,
             "%s: %d-bit DoReFa weights W = scale * w_int, w_int = 2*code - %d (odd, in "
             "[-%d, %d]), scale = s/%d, SAT factor s = %.9g",
             d->name, q.bits, a, a, a, a, (double)s);
    ox__doc(b, nd, doc);
    return b->rc ? NULL : wname;
}

/* The name of each engine tensor in the graph, and its rank there (4 for
 * NCHW, 2 for (N, F) after Flatten / Gemm). */
struct names {
    char **name;
    int *rank;
    int n;
};

static const char *tname(struct ox *b, const struct names *nm, int t)
{
    if (t < 0 || t >= nm->n || !nm->name[t]) {
        ox__fail(b, SAT_EINTERNAL, "tensor %d has no producer", t);
        return NULL;
    }
    return nm->name[t];
}

static void export_node(struct ox *b, struct model *m, const struct model_node_desc *d,
                        struct names *nm, char *layer_meta_key, size_t keylen, char *layer_note)
{
    const char *x = tname(b, nm, d->in);
    if (!x)
        return;
    if (!nm->name[d->out]) /* the logits already have their name */
        nm->name[d->out] = ox__printf(b, "%s", d->name);
    const char *y = nm->name[d->out];
    if (b->rc)
        return;
    int rank = nm->rank[d->in];
    layer_meta_key[0] = 0;
    switch (d->kind) {
    case MODEL_NODE_CONV: {
        snprintf(layer_meta_key, keylen, "saturn.layer.%s", d->name);
        const char *w = export_weight(b, m, d, layer_note);
        if (!w)
            return;
        const char *in[2] = {x, w};
        Onnx__NodeProto *nd = ox__node(b, "Conv", d->name, 2, in, y);
        const int64_t k[2] = {d->kh, d->kw}, st[2] = {d->stride, d->stride},
                      pads[4] = {d->pad, d->pad, d->pad, d->pad}, dil[2] = {1, 1};
        ox__attr_ints(b, nd, "kernel_shape", 2, k);
        ox__attr_ints(b, nd, "strides", 2, st);
        ox__attr_ints(b, nd, "pads", 4, pads);
        ox__attr_ints(b, nd, "dilations", 2, dil);
        ox__attr_int(b, nd, "group", d->groups);
        rank = 4;
        break;
    }
    case MODEL_NODE_FC: {
        snprintf(layer_meta_key, keylen, "saturn.layer.%s", d->name);
        if (rank != 2) { /* (N, C, 1, 1) from a GAP: Gemm wants (N, C) */
            char *fl = ox__printf(b, "%s.flat_in", d->name);
            char *fn = ox__printf(b, "%s/flatten_in", d->name);
            if (!fl || !fn)
                return;
            Onnx__NodeProto *f = ox__node(b, "Flatten", fn, 1, &x, fl);
            ox__attr_int(b, f, "axis", 1);
            x = fl;
        }
        const char *w = export_weight(b, m, d, layer_note);
        size_t nb = 0;
        const float *bias = param_vals(b, m, d->bias_param, d->name, &nb);
        if (!w || !bias)
            return;
        const char *bname = model_param_table(m)->e[d->bias_param].name;
        const int bshape[1] = {(int)nb};
        ox__init_f32(b, bname, 1, bshape, bias, nb);
        const char *in[3] = {x, w, bname};
        Onnx__NodeProto *nd = ox__node(b, "Gemm", d->name, 3, in, y);
        ox__attr_int(b, nd, "transB", 1);
        rank = 2;
        break;
    }
    case MODEL_NODE_BN: {
        const struct param_table *pt = model_param_table(m), *bt = model_buffer_table(m);
        size_t c = 0;
        const float *g = param_vals(b, m, d->gamma_param, d->name, &c);
        const float *be = param_vals(b, m, d->beta_param, d->name, NULL);
        const float *mu = buffer_vals(b, m, d->mean_buf);
        const float *var = buffer_vals(b, m, d->var_buf);
        if (!g || !be || !mu || !var)
            return;
        const int shape[1] = {(int)c};
        const char *in[5] = {x, pt->e[d->gamma_param].name, pt->e[d->beta_param].name,
                             bt->e[d->mean_buf].name, bt->e[d->var_buf].name};
        ox__init_f32(b, in[1], 1, shape, g, c);
        ox__init_f32(b, in[2], 1, shape, be, c);
        ox__init_f32(b, in[3], 1, shape, mu, c);
        ox__init_f32(b, in[4], 1, shape, var, c);
        Onnx__NodeProto *nd = ox__node(b, "BatchNormalization", d->name, 5, in, y);
        ox__attr_float(b, nd, "epsilon", d->bn_eps);
        ox__attr_float(b, nd, "momentum", 0.9f); /* ONNX's convention; unused in inference */
        break;
    }
    case MODEL_NODE_ACT: {
        if (d->act_bits >= 32) {
            ox__node(b, "Relu", d->name, 1, &x, y);
            break;
        }
        const float *araw = param_vals(b, m, d->alpha_param, d->name, NULL);
        if (!araw)
            return;
        const float al = fmaxf(fabsf(araw[0]), QUANT_ALPHA_EPS); /* quant.h alpha_of */
        const int a = (1 << d->act_bits) - 1;
        const float scale = al / (float)a;
        char *n_al = ox__printf(b, "%s.alpha", d->name), *n_sc = ox__printf(b, "%s.scale", d->name);
        char *n_clip = ox__printf(b, "%s.clipped", d->name), *n_q = ox__printf(b, "%s.q", d->name);
        char *nn_clip = ox__printf(b, "%s/clip", d->name),
             *nn_q = ox__printf(b, "%s/quant", d->name);
        char *nn_dq = ox__printf(b, "%s/dequant", d->name);
        if (b->rc)
            return;
        ox__scalar_f32(b, n_al, al);
        ox__scalar_f32(b, n_sc, scale);
        const char *cin[3] = {x, ZERO_F32, n_al};
        Onnx__NodeProto *c = ox__node(b, "Clip", nn_clip, 3, cin, n_clip);
        char doc[200];
        snprintf(doc, sizeof doc, "%s: PACT %d-bit, alpha = %.9g, scale = alpha/%d = %.9g", d->name,
                 d->act_bits, (double)al, a, (double)scale);
        ox__doc(b, c, doc);
        const char *qin[3] = {n_clip, n_sc, ZERO_U8};
        ox__node(b, "QuantizeLinear", nn_q, 3, qin, n_q);
        const char *dqin[3] = {n_q, n_sc, ZERO_U8};
        ox__node(b, "DequantizeLinear", nn_dq, 3, dqin, y);
        snprintf(layer_meta_key, keylen, "saturn.act.%s", d->name);
        snprintf(layer_note, 160, "bits=%d alpha=%.9g scale=alpha/%d=%.9g", d->act_bits, (double)al,
                 a, (double)scale);
        break;
    }
    case MODEL_NODE_MAXPOOL: {
        Onnx__NodeProto *nd = ox__node(b, "MaxPool", d->name, 1, &x, y);
        const int64_t k[2] = {d->pool_k, d->pool_k};
        ox__attr_ints(b, nd, "kernel_shape", 2, k);
        ox__attr_ints(b, nd, "strides", 2, k);
        break;
    }
    case MODEL_NODE_GAP:
        ox__node(b, "GlobalAveragePool", d->name, 1, &x, y);
        break;
    case MODEL_NODE_FLATTEN: {
        Onnx__NodeProto *nd = ox__node(b, "Flatten", d->name, 1, &x, y);
        ox__attr_int(b, nd, "axis", 1);
        rank = 2;
        break;
    }
    case MODEL_NODE_ADD: {
        const char *x2 = tname(b, nm, d->in2);
        if (!x2)
            return;
        if (nm->rank[d->in2] != rank) {
            ox__fail(b, SAT_EINTERNAL, "%s: adds tensors of ranks %d and %d", d->name, rank,
                     nm->rank[d->in2]);
            return;
        }
        const char *in[2] = {x, x2};
        ox__node(b, "Add", d->name, 2, in, y);
        break;
    }
    default:
        ox__fail(b, SAT_EINVAL, "%s: node kind %d has no ONNX translation", d->name, (int)d->kind);
        return;
    }
    nm->rank[d->out] = rank;
}

static const char *sat_mode_name(int sat)
{
    return sat == 0 ? "off" : sat == 2 ? "all" : "last";
}

static void meta_int(struct ox *b, const char *key, int val)
{
    char v[24];
    snprintf(v, sizeof v, "%d", val);
    ox__meta(b, key, v);
}

static void export_metadata(struct ox *b, const struct model_cfg *c,
                            const struct onnx_export_opts *o)
{
    ox__meta(b, "saturn.format", ONNX_EXPORT_FORMAT);
    ox__meta(b, "saturn.arch", c->arch);
    meta_int(b, "saturn.wbits", c->wbits);
    meta_int(b, "saturn.abits", c->abits);
    meta_int(b, "saturn.first_wbits", c->first_wbits);
    meta_int(b, "saturn.last_wbits", c->last_wbits);
    meta_int(b, "saturn.last_abits", c->last_abits);
    ox__meta(b, "saturn.sat", sat_mode_name(c->sat));
    ox__meta(b, "saturn.sat_fan", c->sat_fan_out ? "out" : "in");
    ox__meta(b, "saturn.clamp", c->clamp ? "true" : "false");
    ox__meta(b, "saturn.bn",
             "kept, not folded: BatchNormalization with the running statistics (eval mode), "
             "epsilon 1e-05");
    ox__meta(b, "saturn.weights",
             "k-bit conv/FC weights W = scale * w_int with w_int = 2*code - (2^k-1), the odd "
             "integers in [-(2^k-1), 2^k-1], code = rint((2^k-1)*(tanh(W)/max|tanh(W)| + 1)/2), "
             "scale = s/(2^k-1) with the SAT factor s folded in (1 where SAT is off); stored as "
             "<param>_int (int8 for k <= 7, int32 for k = 8), <param>_scale and "
             "<param>_zero_point = 0, dequantized by DequantizeLinear into <param>; 32-bit "
             "layers are float initializers of the effective weights");
    ox__meta(b, "saturn.activations",
             "PACT k-bit: Clip(x, 0, alpha) -> QuantizeLinear(scale alpha/(2^k-1), zero point "
             "uint8 0) -> DequantizeLinear. Saturn computes alpha*rint((2^k-1)*(x/alpha))/(2^k-1), "
             "ONNX rint(x/scale)*scale, both rounding half to even: they can differ at exact ties "
             "and in the last float bit. 32-bit activations are Relu. The first layer's input is "
             "not quantized");
    ox__meta(
        b, "saturn.input",
        "float N x C x H x W, pixel/255, no mean/std normalisation; output logits N x classes");
    if (o && o->job)
        ox__meta(b, "saturn.job", o->job);
    if (o && o->step >= 0) {
        char v[24];
        snprintf(v, sizeof v, "%ld", o->step);
        ox__meta(b, "saturn.step", v);
    }
    if (o && o->spec_json)
        ox__meta(b, "saturn.spec", o->spec_json);
}

/* ===========================================================================
 * Public entry points
 */

int onnx_export_buf(struct model *m, const struct onnx_export_opts *o, uint8_t **buf, size_t *len,
                    char err[SAT_ERR_LEN])
{
    *buf = NULL;
    *len = 0;
    struct ox b;
    memset(&b, 0, sizeof b);
    b.err = err;
    const struct model_cfg *cfg = model_get_cfg(m);
    const int nn = model_node_count(m);
    /* Tensor ids are < the number of tensors: one input plus one per node. */
    const int nt = nn + 1;
    const int nlayers_meta = nn; /* at most one saturn.layer / saturn.act entry per node */

    b.cap_node = (size_t)nn * 4 + 4; /* PACT: 3 nodes; FC: flatten + DQ + Gemm */
    b.cap_init = (size_t)nn * 5 + 4; /* BN: 4; weights: 3 (+ bias) */
    b.cap_meta = (size_t)nlayers_meta + 24;
    b.node = ox__alloc(&b, b.cap_node * sizeof *b.node);
    b.init = ox__alloc(&b, b.cap_init * sizeof *b.init);
    b.meta = ox__alloc(&b, b.cap_meta * sizeof *b.meta);
    struct names nm = {ox__alloc(&b, (size_t)nt * sizeof(char *)),
                       ox__alloc(&b, (size_t)nt * sizeof(int)), nt};
    const int tin = model_input_tensor(m), tlog = model_logits_tensor(m);
    if (!b.rc && (tin < 0 || tin >= nt || tlog < 0 || tlog >= nt))
        ox__fail(&b, SAT_EINTERNAL, "tensor ids out of range");
    if (!b.rc) {
        nm.name[tin] = ox__printf(&b, "input");
        nm.rank[tin] = 4;
        nm.name[tlog] = ox__printf(&b, "logits");
    }
    ox__scalar_f32(&b, ZERO_F32, 0.0f);
    ox__scalar_int(&b, ZERO_U8, ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 0);
    export_metadata(&b, cfg, o);

    for (int i = 0; i < nn && !b.rc; i++) {
        struct model_node_desc d;
        if (model_node_get(m, i, &d) != 0) {
            ox__fail(&b, SAT_EINTERNAL, "node %d missing", i);
            break;
        }
        if (d.out < 0 || d.out >= nt || d.in < 0 || d.in >= nt || d.in2 >= nt) {
            ox__fail(&b, SAT_EINTERNAL, "%s: tensor ids out of range", d.name);
            break;
        }
        char key[PARAM_NAME_LEN + 16], note[160];
        note[0] = 0;
        export_node(&b, m, &d, &nm, key, sizeof key, note);
        if (!b.rc && key[0])
            ox__meta(&b, key, note);
    }
    if (!b.rc && nm.rank[tlog] != 2)
        ox__fail(&b, SAT_EINTERNAL, "logits are not a (N, classes) tensor");

    const int64_t in_dims[4] = {-1, cfg->c, cfg->h, cfg->w}, out_dims[2] = {-1, cfg->nclass};
    Onnx__ValueInfoProto *vin = NULL, *vout = NULL;
    if (!b.rc) {
        vin = ox__value_info(&b, "input", 4, in_dims);
        vout = ox__value_info(&b, "logits", 2, out_dims);
    }
    Onnx__ValueInfoProto **vins = ox__alloc(&b, sizeof *vins),
                         **vouts = ox__alloc(&b, sizeof *vouts);
    Onnx__GraphProto *g = ox__alloc(&b, sizeof *g);
    Onnx__OperatorSetIdProto *ops = ox__alloc(&b, sizeof *ops);
    Onnx__OperatorSetIdProto **opsv = ox__alloc(&b, sizeof *opsv);
    Onnx__ModelProto *mp = ox__alloc(&b, sizeof *mp);
    char *gname = ox__printf(&b, "%s", o && o->graph_name ? o->graph_name : cfg->arch);
    char *doc = ox__printf(
        &b,
        "Saturn %s, W%dA%d (first layer W%d, FC W%d with A%d input), sat %s (fan-%s), exported "
        "in eval mode. BatchNorm is kept as BatchNormalization with the running statistics "
        "(epsilon 1e-05), not folded. k-bit weights are DoReFa codes stored as the odd "
        "integers w_int = 2*code - (2^k-1) with scale s/(2^k-1) (SAT factor s folded in), "
        "through DequantizeLinear; PACT activations are Clip(0, alpha) + QuantizeLinear / "
        "DequantizeLinear with scale alpha/(2^k-1). See metadata_props saturn.*.",
        cfg->arch, cfg->wbits, cfg->abits, cfg->first_wbits, cfg->last_wbits, cfg->last_abits,
        sat_mode_name(cfg->sat), cfg->sat_fan_out ? "out" : "in");
    char *prod = ox__printf(&b, "saturn");
    char *prodv = ox__printf(&b, "%s", SATURN_EXPORT_VERSION);
    char *dom = ox__printf(&b, "%s", ""); /* the default (ai.onnx) domain */
    if (!b.rc && (!vin || !vout))
        ox__fail(&b, SAT_ENOMEM, "out of memory");
    if (b.rc) {
        ox__free(&b);
        return b.rc;
    }
    vins[0] = vin;
    vouts[0] = vout;
    onnx__graph_proto__init(g);
    g->name = gname;
    g->n_node = b.n_node;
    g->node = b.node;
    g->n_initializer = b.n_init;
    g->initializer = b.init;
    g->n_input = 1;
    g->input = vins;
    g->n_output = 1;
    g->output = vouts;
    onnx__operator_set_id_proto__init(ops);
    ops->domain = dom;
    ops->has_version = 1;
    ops->version = ONNX_OPSET;
    opsv[0] = ops;
    onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = ONNX_IR_VERSION;
    mp->n_opset_import = 1;
    mp->opset_import = opsv;
    mp->producer_name = prod;
    mp->producer_version = prodv;
    mp->has_model_version = 1;
    mp->model_version = 1;
    mp->doc_string = doc;
    mp->graph = g;
    mp->n_metadata_props = b.n_meta;
    mp->metadata_props = b.meta;

    size_t n = onnx__model_proto__get_packed_size(mp);
    uint8_t *out = sat_malloc(n ? n : 1);
    if (!out) {
        ox__free(&b);
        return sat_errf(err, SAT_ENOMEM, "onnx export: out of memory for %zu bytes", n);
    }
    size_t w = onnx__model_proto__pack(mp, out);
    ox__free(&b);
    if (w != n) {
        sat_free(out);
        return sat_errf(err, SAT_EINTERNAL, "onnx export: packed %zu of %zu bytes", w, n);
    }
    *buf = out;
    *len = n;
    return 0;
}

int onnx_export(struct model *m, const char *path, const struct onnx_export_opts *o,
                char err[SAT_ERR_LEN])
{
    uint8_t *buf;
    size_t len;
    int rc = onnx_export_buf(m, o, &buf, &len, err);
    if (rc != 0)
        return rc;
    char msg[SAT_ERR_LEN];
    rc = sat_file_write_atomic(path, buf, len, 0644, msg);
    sat_free(buf);
    /* Every file error is SAT_EIO here (saturn-export's "I/O" exit code),
     * a missing directory included. */
    if (rc != 0)
        return sat_errf(err, rc == SAT_ENOMEM ? rc : SAT_EIO, "onnx export: %s", msg);
    return 0;
}
