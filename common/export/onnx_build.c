/* onnx_build.c - the protobuf-c message builder of the ONNX exporter
 * (onnx_build.h). */
#include "onnx_build.h"

#include "../util/err.h"
#include "../util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>

int ox__fail(struct ox *b, int code, const char *fmt, ...)
{
    if (b->rc)
        return b->rc;
    b->rc = code;
    if (b->err) {
        char msg[SAT_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        sat_errf(b->err, code, "onnx export: %s", msg);
    }
    return code;
}

/* n zeroed bytes from the arena, or NULL (and the builder fails). */
void *ox__alloc(struct ox *b, size_t n)
{
    if (b->rc)
        return NULL;
    if (n > SIZE_MAX - sizeof(union ablk)) {
        ox__fail(b, SAT_ETOOBIG, "allocation of %zu bytes", n);
        return NULL;
    }
    union ablk *blk = sat_malloc(sizeof(union ablk) + n);
    if (!blk) {
        ox__fail(b, SAT_ENOMEM, "out of memory");
        return NULL;
    }
    blk->next = b->blocks;
    b->blocks = blk;
    memset(blk + 1, 0, n);
    return blk + 1;
}

void ox__free(struct ox *b)
{
    union ablk *p = b->blocks;
    while (p) {
        union ablk *next = p->next;
        sat_free(p);
        p = next;
    }
    b->blocks = NULL;
}

char *ox__printf(struct ox *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        ox__fail(b, SAT_EINVAL, "bad format");
        return NULL;
    }
    char *s = ox__alloc(b, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void ox__meta(struct ox *b, const char *key, const char *value)
{
    if (b->rc || !value)
        return;
    if (b->n_meta >= b->cap_meta) {
        ox__fail(b, SAT_EINTERNAL, "too many metadata entries");
        return;
    }
    Onnx__StringStringEntryProto *e = ox__alloc(b, sizeof *e);
    char *k = ox__printf(b, "%s", key), *v = ox__printf(b, "%s", value);
    if (!e || !k || !v)
        return;
    onnx__string_string_entry_proto__init(e);
    e->key = k;
    e->value = v;
    b->meta[b->n_meta++] = e;
}

/* A node with nin inputs and one output; names are copied. NULL on failure. */
Onnx__NodeProto *ox__node(struct ox *b, const char *op, const char *name, int nin,
                          const char *const *in, const char *out)
{
    if (b->rc)
        return NULL;
    if (b->n_node >= b->cap_node) {
        ox__fail(b, SAT_EINTERNAL, "too many nodes");
        return NULL;
    }
    Onnx__NodeProto *nd = ox__alloc(b, sizeof *nd);
    char **ins = ox__alloc(b, (size_t)nin * sizeof *ins);
    char **outs = ox__alloc(b, sizeof *outs);
    Onnx__AttributeProto **attrs = ox__alloc(b, NODE_MAX_ATTRS * sizeof *attrs);
    if (!nd || !ins || !outs || !attrs)
        return NULL;
    onnx__node_proto__init(nd);
    for (int i = 0; i < nin; i++)
        ins[i] = ox__printf(b, "%s", in[i]);
    outs[0] = ox__printf(b, "%s", out);
    nd->op_type = ox__printf(b, "%s", op);
    nd->name = ox__printf(b, "%s", name);
    if (b->rc)
        return NULL;
    nd->n_input = (size_t)nin;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->attribute = attrs;
    b->node[b->n_node++] = nd;
    return nd;
}

static Onnx__AttributeProto *ox__attr(struct ox *b, Onnx__NodeProto *nd, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    if (b->rc || !nd)
        return NULL;
    if (nd->n_attribute >= NODE_MAX_ATTRS) {
        ox__fail(b, SAT_EINTERNAL, "too many attributes on %s", nd->name);
        return NULL;
    }
    Onnx__AttributeProto *a = ox__alloc(b, sizeof *a);
    char *nm = ox__printf(b, "%s", name);
    if (!a || !nm)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = nm;
    a->has_type = 1;
    a->type = type;
    nd->attribute[nd->n_attribute++] = a;
    return a;
}

void ox__attr_int(struct ox *b, Onnx__NodeProto *nd, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = ox__attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a)
        return;
    a->has_i = 1;
    a->i = v;
}

void ox__attr_float(struct ox *b, Onnx__NodeProto *nd, const char *name, float v)
{
    Onnx__AttributeProto *a = ox__attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a)
        return;
    a->has_f = 1;
    a->f = v;
}

void ox__attr_ints(struct ox *b, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v)
{
    Onnx__AttributeProto *a = ox__attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *vals = ox__alloc(b, (size_t)n * sizeof *vals);
    if (!a || !vals)
        return;
    memcpy(vals, v, (size_t)n * sizeof *vals);
    a->n_ints = (size_t)n;
    a->ints = vals;
}

void ox__doc(struct ox *b, Onnx__NodeProto *nd, const char *doc)
{
    if (!nd || !doc)
        return;
    nd->doc_string = ox__printf(b, "%s", doc);
}

/* An initializer of `dtype` and shape (ndim, shape) whose little-endian
 * bytes (an arena buffer, taken over) are raw[0 .. bytes). */
void ox__init(struct ox *b, const char *name, int dtype, int ndim, const int *shape, uint8_t *raw,
              size_t bytes)
{
    if (b->rc || !raw)
        return;
    if (b->n_init >= b->cap_init) {
        ox__fail(b, SAT_EINTERNAL, "too many initializers");
        return;
    }
    Onnx__TensorProto *t = ox__alloc(b, sizeof *t);
    int64_t *dims = ox__alloc(b, (size_t)(ndim > 0 ? ndim : 1) * sizeof *dims);
    char *nm = ox__printf(b, "%s", name);
    if (!t || !dims || !nm)
        return;
    onnx__tensor_proto__init(t);
    for (int i = 0; i < ndim; i++)
        dims[i] = shape[i];
    t->n_dims = (size_t)ndim;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = nm;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = raw;
    b->init[b->n_init++] = t;
}

void ox__init_f32(struct ox *b, const char *name, int ndim, const int *shape, const float *v,
                  size_t n)
{
    uint8_t *raw = ox__alloc(b, n * 4);
    if (!raw)
        return;
    for (size_t i = 0; i < n; i++)
        ox__put_f32le(raw + 4 * i, v[i]);
    ox__init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, shape, raw, n * 4);
}

void ox__scalar_f32(struct ox *b, const char *name, float v)
{
    ox__init_f32(b, name, 0, NULL, &v, 1);
}

/* A scalar integer of dtype UINT8, INT8 or INT32 (zero points). */
void ox__scalar_int(struct ox *b, const char *name, int dtype, int32_t v)
{
    size_t bytes = dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 : 1;
    uint8_t *raw = ox__alloc(b, bytes);
    if (!raw)
        return;
    if (bytes == 4)
        ox__put_u32le(raw, (uint32_t)v);
    else
        raw[0] = (uint8_t)v;
    ox__init(b, name, dtype, 0, NULL, raw, bytes);
}

/* A float tensor type; dims[i] < 0 is the symbolic batch "N". */
Onnx__ValueInfoProto *ox__value_info(struct ox *b, const char *name, int ndim, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = ox__alloc(b, sizeof *vi);
    Onnx__TypeProto *tp = ox__alloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ox__alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = ox__alloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dv = ox__alloc(b, (size_t)ndim * sizeof *dv);
    char *nm = ox__printf(b, "%s", name);
    if (!vi || !tp || !tt || !sh || !dv || !nm)
        return NULL;
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = ox__alloc(b, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ox__printf(b, "N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        dv[i] = d;
    }
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)ndim;
    sh->dim = dv;
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    onnx__type_proto__init(tp);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    onnx__value_info_proto__init(vi);
    vi->name = nm;
    vi->type = tp;
    return b->rc ? NULL : vi;
}
