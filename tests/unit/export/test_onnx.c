/* test_onnx.c - the ONNX exporter (common/export/onnx.c), from the C side.
 *
 * The file is parsed back with the same protobuf-c code and checked against
 * the model: the node sequence of cnn-small W4A4, the integer grids (odd,
 * within [-(2^k-1), 2^k-1], int8 for 4 bits and int32 for 8 bits), the
 * weight scales (scale * w_int equals the engine's effective weights to
 * float rounding: 2 ulp plus s * 2^-22 for the engine's own 2*(code/a) - 1), the activation scales
 * alpha/(2^k-1), BN kept, the graph's input and output. Every allocation of the exporter is failed
 * in turn (it must return SAT_ENOMEM and leak nothing: run under ASan), and a non-finite weight and
 * an unwritable path are refused with messages. The numeric agreement of the graph with the engine
 * is tests/integration/onnx_export.sh.
 */
#include "check.h"
#include "export/onnx.h"
#include "export/onnx.pb-c.h"
#include "nn/model.h"
#include "nn/quant.h"
#include "util/rng.h"
#include "util/xalloc.h"

#include <stdlib.h>

static struct model *make_model(const char *arch, int bits, int c, int hw)
{
    struct model_cfg cfg;
    model_cfg_defaults(&cfg, arch, c, hw, hw, 10, 4);
    if (bits < 32) {
        cfg.wbits = cfg.abits = cfg.last_abits = bits;
        cfg.first_wbits = cfg.last_wbits = 8;
    }
    cfg.seed = 5;
    struct model *m = NULL;
    char err[SAT_ERR_LEN];
    int rc = model_new(&m, &cfg, err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        return NULL;
    /* Non-trivial BN statistics and alphas, as after training. */
    struct sat_rng r;
    sat_rng_init(&r, sat_rng_key(7, 0, 0, 0));
    const struct param_table *bt = model_buffer_table(m);
    float *b = model_buffers(m);
    for (int i = 0; i < bt->n; i++)
        for (size_t j = 0; j < bt->e[i].numel; j++)
            b[bt->e[i].offset + j] = bt->e[i].role == ROLE_BN_VAR
                                         ? (float)(0.5 + sat_rng_uniform(&r))
                                         : (float)(sat_rng_uniform(&r) - 0.5);
    const struct param_table *pt = model_param_table(m);
    float *p = model_params(m);
    for (int i = 0; i < pt->n; i++)
        if (pt->e[i].role == ROLE_ALPHA)
            p[pt->e[i].offset] = (float)(-1.0 - 3.0 * sat_rng_uniform(&r)); /* |alpha| is used */
    return m;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static float f32_at(const Onnx__TensorProto *t, size_t i)
{
    const uint8_t *q = t->raw_data.data + 4 * i;
    uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int32_t int_at(const Onnx__TensorProto *t, size_t i)
{
    if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8)
        return (int8_t)t->raw_data.data[i];
    const uint8_t *q = t->raw_data.data + 4 * i;
    return (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                     (uint32_t)q[3] << 24);
}

static Onnx__ModelProto *export_parse(struct model *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[SAT_ERR_LEN];
    int rc = onnx_export_buf(m, NULL, &buf, &len, err);
    CHECK_EQ_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "  %s\n", err);
        return NULL;
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    sat_free(buf);
    CHECK(mp != NULL);
    return mp;
}

/* The weights of layer `name` (param "<name>.weight") decode to the
 * engine's effective weights; returns the element type of the grid. */
static int check_weight(struct model *m, const Onnx__GraphProto *g, const char *name)
{
    const struct param_table *pt = model_param_table(m);
    char pname[PARAM_NAME_LEN + 16];
    snprintf(pname, sizeof pname, "%s.weight", name);
    int idx = -1;
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->e[i].name, pname) == 0)
            idx = i;
    CHECK(idx >= 0);
    struct wlayer_info wl;
    int li = 0;
    while (model_weight_layer(m, li, &wl) == 0 && strcmp(wl.name, name) != 0)
        li++;
    CHECK_EQ_INT(wl.param_index, idx);
    size_t n = pt->e[idx].numel;
    float *weff = sat_malloc(n * sizeof(float)), *dfac = sat_malloc(n * sizeof(float));
    struct wquant q = {.bits = wl.bits, .clamp = wl.clamp, .sat = wl.sat, .fan = wl.fan};
    float s = wquant_forward(weff, dfac, model_params(m) + pt->e[idx].offset, n, &q, NULL);
    char nint[2 * PARAM_NAME_LEN], nsc[2 * PARAM_NAME_LEN], nzp[2 * PARAM_NAME_LEN];
    snprintf(nint, sizeof nint, "%s_int", pname);
    snprintf(nsc, sizeof nsc, "%s_scale", pname);
    snprintf(nzp, sizeof nzp, "%s_zero_point", pname);
    const Onnx__TensorProto *ti = find_init(g, nint), *ts = find_init(g, nsc),
                            *tz = find_init(g, nzp);
    int dtype = -1;
    CHECK(ti && ts && tz);
    if (ti && ts && tz) {
        const int a = (1 << wl.bits) - 1;
        dtype = ti->data_type;
        CHECK_EQ_INT(dtype, a > 127 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                                    : ONNX__TENSOR_PROTO__DATA_TYPE__INT8);
        CHECK_EQ_INT(tz->data_type, dtype);
        CHECK_EQ_INT(int_at(tz, 0), 0);
        CHECK_EQ_INT(ts->n_dims, 0);
        CHECK_EQ_INT(ti->n_dims, (size_t)pt->e[idx].ndim);
        CHECK_EQ_INT(ti->raw_data.len, n * (a > 127 ? 4 : 1));
        const float scale = f32_at(ts, 0);
        CHECK_CLOSE(scale, s / a, 0, 1e-7);
        int bad_grid = 0, bad_val = 0, seen_neg = 0, seen_pos = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t v = int_at(ti, i);
            if (v % 2 == 0 || v < -a || v > a)
                bad_grid++;
            seen_neg |= v == -a;
            seen_pos |= v == a;
            float got = scale * (float)v;
            /* the engine's 2*(code/a) - 1 is exact to 2^-24 absolute, then *s */
            if (fabsf(got - weff[i]) > 2.5e-7f * fabsf(weff[i]) + s * 0x1p-22f)
                bad_val++;
        }
        CHECK_EQ_INT(bad_grid, 0);
        CHECK_EQ_INT(bad_val, 0);
        CHECK(seen_neg || seen_pos); /* max|tanh| maps to an end of the grid */
    }
    sat_free(weff);
    sat_free(dfac);
    return dtype;
}

static void test_cnn_small(void)
{
    struct model *m = make_model("cnn-small", 4, 1, 8);
    if (!m)
        return;
    Onnx__ModelProto *mp = export_parse(m);
    if (!mp) {
        model_free(m);
        return;
    }
    CHECK_EQ_INT(mp->ir_version, ONNX_IR_VERSION);
    CHECK_EQ_INT(mp->n_opset_import, 1);
    CHECK_EQ_INT(mp->opset_import[0]->version, 13);
    const Onnx__GraphProto *g = mp->graph;
    static const char *const ops[] = {"DequantizeLinear",
                                      "Conv",
                                      "BatchNormalization",
                                      "Clip",
                                      "QuantizeLinear",
                                      "DequantizeLinear",
                                      "MaxPool",
                                      "DequantizeLinear",
                                      "Conv",
                                      "BatchNormalization",
                                      "Clip",
                                      "QuantizeLinear",
                                      "DequantizeLinear",
                                      "MaxPool",
                                      "Flatten",
                                      "DequantizeLinear",
                                      "Gemm"};
    CHECK_EQ_INT(g->n_node, sizeof ops / sizeof ops[0]);
    for (size_t i = 0; i < g->n_node && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(g->node[i]->op_type, ops[i]) != 0) {
            fprintf(stderr, "  node %zu: %s, expected %s\n", i, g->node[i]->op_type, ops[i]);
            CHECK(0);
        }
    CHECK_EQ_INT(g->n_input, 1);
    CHECK_EQ_INT(g->n_output, 1);
    CHECK(strcmp(g->input[0]->name, "input") == 0);
    CHECK(strcmp(g->output[0]->name, "logits") == 0);
    CHECK(strcmp(g->node[g->n_node - 1]->output[0], "logits") == 0);
    const Onnx__TensorShapeProto *sh = g->input[0]->type->tensor_type->shape;
    CHECK_EQ_INT(sh->n_dim, 4);
    CHECK_EQ_INT(sh->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
    CHECK_EQ_INT(sh->dim[1]->dim_value, 1);
    CHECK_EQ_INT(sh->dim[2]->dim_value, 8);
    CHECK_EQ_INT(g->output[0]->type->tensor_type->shape->dim[1]->dim_value, 10);

    CHECK_EQ_INT(check_weight(m, g, "conv1"), ONNX__TENSOR_PROTO__DATA_TYPE__INT32); /* 8 bit */
    CHECK_EQ_INT(check_weight(m, g, "conv2"), ONNX__TENSOR_PROTO__DATA_TYPE__INT8);  /* 4 bit */
    CHECK_EQ_INT(check_weight(m, g, "fc"), ONNX__TENSOR_PROTO__DATA_TYPE__INT32);    /* 8 bit */

    /* PACT: scale = |alpha_raw| / 15, uint8 zero point */
    const struct param_table *pt = model_param_table(m);
    for (int i = 0; i < pt->n; i++) {
        if (pt->e[i].role != ROLE_ALPHA)
            continue;
        char layer[PARAM_NAME_LEN], nm[PARAM_NAME_LEN + 16];
        snprintf(layer, sizeof layer, "%s", pt->e[i].name);
        *strrchr(layer, '.') = 0;
        snprintf(nm, sizeof nm, "%s.scale", layer);
        const Onnx__TensorProto *ts = find_init(g, nm);
        CHECK(ts != NULL);
        if (ts)
            CHECK_CLOSE(f32_at(ts, 0), fabsf(model_params(m)[pt->e[i].offset]) / 15.0f, 0, 1e-7);
    }
    const Onnx__TensorProto *zp = find_init(g, "saturn.zero_u8");
    CHECK(zp && zp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8);
    /* BN kept, with the running statistics */
    const Onnx__TensorProto *rv = find_init(g, "bn2.running_var");
    CHECK(rv != NULL);
    if (rv)
        CHECK_CLOSE(f32_at(rv, 3), model_buffers(m)[model_buffer_table(m)->e[3].offset + 3], 0, 0);
    int has_meta = 0;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (strcmp(mp->metadata_props[i]->key, "saturn.bn") == 0)
            has_meta = strstr(mp->metadata_props[i]->value, "not folded") != NULL;
    CHECK(has_meta);
    onnx__model_proto__free_unpacked(mp, NULL);
    model_free(m);
}

/* Residual adds, shortcuts, depthwise groups and GAP -> Flatten -> Gemm. */
static void test_structure(const char *arch, int adds, int depthwise)
{
    struct model *m = make_model(arch, 4, 3, 32);
    if (!m)
        return;
    Onnx__ModelProto *mp = export_parse(m);
    if (mp) {
        const Onnx__GraphProto *g = mp->graph;
        int nadd = 0, ndw = 0, ngap = 0, flat_before_gemm = 0;
        for (size_t i = 0; i < g->n_node; i++) {
            const Onnx__NodeProto *nd = g->node[i];
            nadd += strcmp(nd->op_type, "Add") == 0;
            ngap += strcmp(nd->op_type, "GlobalAveragePool") == 0;
            if (strcmp(nd->op_type, "Gemm") == 0 && i >= 2)
                flat_before_gemm = strcmp(g->node[i - 2]->op_type, "Flatten") == 0;
            if (strcmp(nd->op_type, "Conv") == 0)
                for (size_t a = 0; a < nd->n_attribute; a++)
                    if (strcmp(nd->attribute[a]->name, "group") == 0 && nd->attribute[a]->i > 1)
                        ndw++;
        }
        CHECK_EQ_INT(nadd, adds);
        CHECK_EQ_INT(ndw, depthwise);
        CHECK_EQ_INT(ngap, 1);
        CHECK(flat_before_gemm);
        onnx__model_proto__free_unpacked(mp, NULL);
    }
    model_free(m);
}

static void test_node_api(void)
{
    struct model *m = make_model("preresnet20", 4, 1, 28);
    if (!m)
        return;
    int n = model_node_count(m), adds = 0, pact = 0, relu = 0;
    struct model_node_desc d;
    CHECK_EQ_INT(model_node_get(m, n, &d), SAT_ENOENT);
    CHECK_EQ_INT(model_node_get(m, -1, &d), SAT_ENOENT);
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(model_node_get(m, i, &d), 0);
        adds += d.kind == MODEL_NODE_ADD;
        pact += d.kind == MODEL_NODE_ACT && d.act_bits < 32;
        relu += d.kind == MODEL_NODE_ACT && d.act_bits == 32;
        if (i == 0) {
            CHECK_EQ_INT(d.kind, MODEL_NODE_CONV);
            CHECK_EQ_INT(d.in, model_input_tensor(m));
            CHECK_EQ_INT(d.wbits, 8);
            CHECK_EQ_INT(d.kh, 3);
            CHECK_EQ_INT(d.pad, 1);
            CHECK_EQ_INT(d.out_c, 16);
        }
        if (i == n - 1) {
            CHECK_EQ_INT(d.kind, MODEL_NODE_FC);
            CHECK_EQ_INT(d.out, model_logits_tensor(m));
            CHECK_EQ_INT(d.fc_in, 64);
            CHECK_EQ_INT(d.wsat, 1);
        }
    }
    CHECK_EQ_INT(adds, 9);
    CHECK_EQ_INT(pact, 19); /* 2 per block + the FC input */
    CHECK_EQ_INT(relu, 1);  /* the A before the GAP */
    model_free(m);
}

/* Fails every allocation of the exporter in turn. */
static void test_alloc_failures(void)
{
    struct model *m = make_model("cnn-small", 4, 1, 8);
    if (!m)
        return;
    int n, fails = 0, bad = 0;
    for (n = 0; n < 100000; n++) {
        uint8_t *buf = (uint8_t *)1;
        size_t len = 1;
        char err[SAT_ERR_LEN] = "";
        sat_alloc_fail_after(n);
        int rc = onnx_export_buf(m, NULL, &buf, &len, err);
        sat_alloc_fail_after(-1);
        if (rc == 0) {
            sat_free(buf);
            break;
        }
        fails++;
        if (rc != SAT_ENOMEM || buf != NULL || len != 0 || !strstr(err, "memory"))
            bad++;
    }
    CHECK(fails > 50); /* every node, string and tensor is an allocation */
    CHECK_EQ_INT(bad, 0);
    fprintf(stderr, "  %d allocation sites failed in turn\n", fails);
    model_free(m);
}

static void test_errors(void)
{
    struct model *m = make_model("cnn-small", 4, 1, 8);
    if (!m)
        return;
    char err[SAT_ERR_LEN] = "";
    CHECK_EQ_INT(onnx_export(m, "/nonexistent-dir/x.onnx", NULL, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, "/nonexistent-dir/x.onnx");
    const struct param_table *pt = model_param_table(m);
    float *p = model_params(m);
    float keep = p[pt->e[0].offset + 3];
    p[pt->e[0].offset + 3] = NAN;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(onnx_export_buf(m, NULL, &buf, &len, err), SAT_ENAN);
    CHECK(buf == NULL);
    CHECK_STR_CONTAINS(err, "conv1.weight");
    p[pt->e[0].offset + 3] = keep;
    struct onnx_export_opts o = {
        .job = "j-1", .spec_json = "{\"model\":\"cnn-small\"}", .step = 42};
    CHECK_EQ_INT(onnx_export_buf(m, &o, &buf, &len, err), 0);
    Onnx__ModelProto *mp = buf ? onnx__model_proto__unpack(NULL, len, buf) : NULL;
    CHECK(mp != NULL);
    int found = 0;
    for (size_t i = 0; mp && i < mp->n_metadata_props; i++) {
        const char *k = mp->metadata_props[i]->key, *v = mp->metadata_props[i]->value;
        found += strcmp(k, "saturn.job") == 0 && strcmp(v, "j-1") == 0;
        found += strcmp(k, "saturn.step") == 0 && strcmp(v, "42") == 0;
        found += strcmp(k, "saturn.spec") == 0 && strstr(v, "cnn-small") != NULL;
        found += strcmp(k, "saturn.arch") == 0 && strcmp(v, "cnn-small") == 0;
    }
    CHECK_EQ_INT(found, 4);
    if (mp)
        onnx__model_proto__free_unpacked(mp, NULL);
    sat_free(buf);
    model_free(m);
}

int main(void)
{
    test_cnn_small();
    test_structure("preresnet20", 9, 0);
    test_structure("mobilenetv2", 5, 8);
    test_structure("mobilenetv1", 0, 7);
    test_node_api();
    test_alloc_failures();
    test_errors();
    return check_summary("onnx");
}
