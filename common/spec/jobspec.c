/* jobspec.c - the job spec: parsing, validation, canonical JSON and docs.
 *
 * One table (`fields` below) describes every field: its name, type, place
 * in struct job_spec, range, default and meaning. The JSON parser, the
 * flag-style setter, jobspec_validate, jobspec_to_json and the Markdown
 * table in docs/jobspec.md are all driven by it, so a field is added in one
 * row. Values arrive either as cJSON items or as flag text; both are turned
 * into a `struct fval`, checked by one function per type (`check`) and then
 * stored (`store`), which is why the two entry points give the same
 * messages.
 */
#include "jobspec.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/file.h"
#include "../util/xalloc.h"
#include "json_strict.h"

/* ==== The table ==== */

enum ftype {
    FT_STRING, /* char[size]; optionally one of `names` */
    FT_INT,    /* int in [lo, hi] */
    FT_BITS,   /* int in 2..8 or 32 */
    FT_SEED,   /* uint64_t in 0..2^53 */
    FT_FLOAT,  /* float in the interval lo..hi, ends open or closed */
    FT_BOOL,   /* bool */
    FT_ENUM,   /* an enum stored as int; names[value] */
    FT_CONS,   /* "bsp" | "asp" | "ssp:S": consistency + staleness */
};

#define LO_OPEN 1
#define HI_OPEN 2
#define SEED_MAX 9007199254740992.0 /* 2^53: every integer up to it is exact in a double */

struct field {
    const char *name;
    enum ftype type;
    size_t off;  /* offsetof(struct job_spec, member) */
    size_t size; /* sizeof the member */
    double lo, hi;
    int open;                 /* LO_OPEN | HI_OPEN, for FT_FLOAT */
    const char *const *names; /* FT_ENUM: by value; FT_STRING: the allowed values; NULL-ended */
    const char *what;         /* FT_STRING with names: "model", "data set" (messages) */
    bool required;            /* FT_STRING: "" is refused by jobspec_validate */
    const char *range_doc;    /* range as documented, when not generated */
    const char *def;          /* default, as flag text (applied by jobspec_defaults) */
    const char *def_doc;      /* default as documented, when it is not `def` */
    const char *doc;          /* meaning, one sentence, no '|' */
};

static const char *const zoo_names[] = {"mlp",         "cnn-small",   "preresnet20",
                                        "mobilenetv1", "mobilenetv2", NULL};
static const char *const dataset_names[] = {"fashion-mnist", "mnist", "cifar10", "synthetic", NULL};
static const char *const sat_names[] = {
    [SAT_OFF] = "off", [SAT_LAST] = "last", [SAT_ALL] = "all", NULL};
static const char *const fan_names[] = {[SAT_FAN_IN] = "in", [SAT_FAN_OUT] = "out", NULL};
static const char *const actq_names[] = {[ACTQ_CGPACT] = "cgpact", [ACTQ_PACT] = "pact", NULL};
static const char *const cons_names[] = {
    [CONS_BSP] = "bsp", [CONS_SSP] = "ssp", [CONS_ASP] = "asp", NULL};

#define MEMBER(m) offsetof(struct job_spec, m), sizeof(((struct job_spec *)0)->m)

/* clang-format off */
static const struct field fields[] = {
    {"name", FT_STRING, MEMBER(name), .def = "",
     .doc = "Free text naming the job, shown by status and in logs."},
    {"model", FT_STRING, MEMBER(model), .names = zoo_names, .what = "model", .required = true,
     .def = "", .def_doc = "required",
     .doc = "Network from the model zoo (spec/models.md)."},
    {"dataset", FT_STRING, MEMBER(dataset), .names = dataset_names, .what = "data set",
     .required = true, .def = "", .def_doc = "required",
     .doc = "Data set to train and evaluate on."},
    {"data_dir", FT_STRING, MEMBER(data_dir), .def = "",
     .doc = "Directory holding the data set files; \"\" means the data set's default directory."},
    {"train_limit", FT_INT, MEMBER(train_limit), 0, INT_MAX, .def = "0",
     .doc = "Use only the first N training images; 0 means all."},
    {"test_limit", FT_INT, MEMBER(test_limit), 0, INT_MAX, .def = "0",
     .doc = "Use only the first N test images; 0 means all."},
    {"wbits", FT_BITS, MEMBER(wbits), .def = "32",
     .doc = "Weight bit width k of the layers between the first and the last; 32 = float."},
    {"abits", FT_BITS, MEMBER(abits), .def = "32",
     .doc = "Activation bit width of the quantized layer inputs (PACT); 32 = float (ReLU)."},
    {"first_wbits", FT_BITS, MEMBER(first_wbits), .def = "32",
     .def_doc = "8 (32 when `wbits` is 32)",
     .doc = "Weight bit width of the first layer (its input is never quantized)."},
    {"last_wbits", FT_BITS, MEMBER(last_wbits), .def = "32",
     .def_doc = "8 (32 when `wbits` is 32)",
     .doc = "Weight bit width of the last layer (the FC)."},
    {"last_abits", FT_BITS, MEMBER(last_abits), .def = "32", .def_doc = "same as `abits`",
     .doc = "Bit width of the FC's input."},
    {"clamp", FT_BOOL, MEMBER(clamp), .def = "false",
     .doc = "With wbits 32, use tanh-clamped float weights (with SAT): the stage-one model of "
            "the two-stage recipe. Quantized weights are always clamped."},
    {"sat", FT_ENUM, MEMBER(sat), .names = sat_names, .def = "last",
     .doc = "Where SAT rescales weights: off, the last FC only, or every layer."},
    {"sat_fan", FT_ENUM, MEMBER(sat_fan), .names = fan_names, .def = "in",
     .doc = "The n of the SAT factor 1/sqrt(n var(Q)): fan-in, or fan-out as the authors' code."},
    {"act_quant", FT_ENUM, MEMBER(act_quant), .names = actq_names, .def = "cgpact",
     .doc = "Gradient of the activation clip alpha: CG-PACT or plain PACT."},
    {"alpha_init_conv", FT_FLOAT, MEMBER(alpha_init_conv), 0, 1000, LO_OPEN, .def = "8",
     .doc = "Initial alpha of the activation quantizers that feed convolutions."},
    {"alpha_init_fc", FT_FLOAT, MEMBER(alpha_init_fc), 0, 1000, LO_OPEN, .def = "10",
     .doc = "Initial alpha of the FC's input quantizer."},
    {"epochs", FT_INT, MEMBER(epochs), 1, 10000, .def = "10",
     .doc = "Number of passes over the training set."},
    {"batch_size", FT_INT, MEMBER(batch_size), 1, 65536, .def = "128",
     .doc = "Global batch size, split evenly over the workers (a multiple of workers)."},
    {"lr", FT_FLOAT, MEMBER(lr), 0, 100, LO_OPEN, .def = "0.1",
     .doc = "Peak learning rate of SGD (cosine decay to 0, per iteration)."},
    {"momentum", FT_FLOAT, MEMBER(momentum), 0, 1, HI_OPEN, .def = "0.9",
     .doc = "SGD momentum."},
    {"nesterov", FT_BOOL, MEMBER(nesterov), .def = "true",
     .doc = "Use Nesterov momentum."},
    {"weight_decay", FT_FLOAT, MEMBER(weight_decay), 0, 1, HI_OPEN, .def = "0.0001",
     .doc = "L2 weight decay (not applied to alphas, BN, biases or depthwise weights)."},
    {"warmup_epochs", FT_FLOAT, MEMBER(warmup_epochs), 0, 10000, HI_OPEN,
     .range_doc = "[0, epochs)", .def = "0",
     .doc = "Linear learning-rate warm-up length in epochs (fractions allowed)."},
    {"augment", FT_BOOL, MEMBER(augment), .def = "true",
     .doc = "Random crop (padding 2) and horizontal flip of training images."},
    {"seed", FT_SEED, MEMBER(seed), 0, SEED_MAX, .range_doc = "0..2^53", .def = "1",
     .doc = "Seed of every random choice (initialisation, shuffling, augmentation)."},
    {"workers", FT_INT, MEMBER(workers), 1, 256, .def = "1",
     .doc = "Number of workers the job runs on (gang-started)."},
    {"consistency", FT_CONS, MEMBER(consistency), .names = cons_names,
     .range_doc = "bsp, asp, ssp:S (S in 1..1000)", .def = "bsp",
     .doc = "Update consistency: bulk-synchronous, asynchronous, or stale-synchronous with "
            "staleness bound S."},
    {"checkpoint_every", FT_INT, MEMBER(checkpoint_every), 0, INT_MAX, .def = "0",
     .doc = "Checkpoint every N steps as well as at each epoch end; 0 = epoch ends only."},
    {"init_from", FT_STRING, MEMBER(init_from), .def = "",
     .doc = "Checkpoint path or job id to initialise the weights from; \"\" = random init."},
    {"priority", FT_INT, MEMBER(priority), -1000, 1000, .def = "0",
     .doc = "Scheduling priority; higher runs first."},
};
/* clang-format on */

#define NFIELDS ((int)(sizeof(fields) / sizeof(fields[0])))

_Static_assert(sizeof(fields) / sizeof(fields[0]) <= 64, "job_spec.given has 64 bits");
_Static_assert(sizeof(enum sat_mode) == sizeof(int) && sizeof(enum sat_fan) == sizeof(int) &&
                   sizeof(enum act_quant) == sizeof(int) && sizeof(enum consistency) == sizeof(int),
               "FT_ENUM fields are accessed as int");

static int field_index(const char *name)
{
    for (int i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return i;
    return -1;
}

static const struct field *field_named(const char *name)
{
    int i = field_index(name);
    return i < 0 ? NULL : &fields[i];
}

static void *member(struct job_spec *s, const struct field *f)
{
    return (char *)s + f->off;
}

static const void *cmember(const struct job_spec *s, const struct field *f)
{
    return (const char *)s + f->off;
}

/* ==== Messages ==== */

/* All messages start with "spec: ". */
static int spec_err(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int spec_err(char *err, int code, const char *fmt, ...)
{
    if (err) {
        char msg[SAT_ERR_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        sat_errf(err, code, "spec: %s", msg);
    }
    return code;
}

/* "an integer", "a number", ...: what a field's JSON value must be. */
static const char *type_word(const struct field *f)
{
    switch (f->type) {
    case FT_INT:
    case FT_BITS:
    case FT_SEED:
        return "an integer";
    case FT_FLOAT:
        return "a number";
    case FT_BOOL:
        return "a boolean";
    default:
        return "a string";
    }
}

/* Joins names as "a, b or c" (with `last` as the final joiner) into buf. */
static const char *join_names(const char *const *names, const char *last, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) {
        const char *sep = i == 0 ? "" : names[i + 1] ? ", " : last;
        int k = snprintf(buf + n, cap - n, "%s%s", sep, names[i]);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
    return buf;
}

/* The range of a numeric field as text: "1..10000", "(0, 100]", "2..8 or 32". */
static const char *range_text(const struct field *f, char *buf, size_t cap)
{
    if (f->range_doc)
        snprintf(buf, cap, "%s", f->range_doc);
    else if (f->type == FT_BITS)
        snprintf(buf, cap, "2..8 or 32");
    else if (f->type == FT_FLOAT)
        snprintf(buf, cap, "%c%g, %g%c", (f->open & LO_OPEN) ? '(' : '[', f->lo, f->hi,
                 (f->open & HI_OPEN) ? ')' : ']');
    else
        snprintf(buf, cap, "%.0f..%.0f", f->lo, f->hi);
    return buf;
}

/* The range as messages put it: "(1..10000)", "(0, 100]", "[0, 1)". */
static const char *range_msg(const struct field *f, char *buf, size_t cap)
{
    char r[48];
    range_text(f, r, sizeof(r));
    if (r[0] == '(' || r[0] == '[')
        snprintf(buf, cap, "%s", r);
    else
        snprintf(buf, cap, "(%s)", r);
    return buf;
}

/* ==== Values: from JSON or text, checked, stored ==== */

/* A value as given, before its range check. */
struct fval {
    enum { V_NUM, V_BOOL, V_STR } kind;
    double num;
    bool b;
    const char *str;  /* V_STR; NUL-terminated */
    const char *text; /* the flag text as given, for messages; NULL from JSON */
};

/* A value after its check, ready to store. */
struct fout {
    int i;           /* FT_INT, FT_BITS, FT_ENUM, FT_CONS (the enum) */
    int staleness;   /* FT_CONS */
    uint64_t u;      /* FT_SEED */
    float fl;        /* FT_FLOAT */
    bool b;          /* FT_BOOL */
    const char *str; /* FT_STRING */
};

/* How a number is shown in a message: the flag text, or %.15g of the JSON value. */
static const char *show_num(const struct fval *v, char *buf, size_t cap)
{
    if (v->text)
        return json_strict_show(v->text, 40, buf, cap);
    snprintf(buf, cap, "%.15g", v->num);
    return buf;
}

static int from_json(const struct field *f, const cJSON *it, struct fval *v, char *err)
{
    memset(v, 0, sizeof(*v));
    bool ok;
    switch (f->type) {
    case FT_INT:
    case FT_BITS:
    case FT_SEED:
    case FT_FLOAT:
        ok = cJSON_IsNumber(it);
        v->kind = V_NUM;
        v->num = it->valuedouble;
        break;
    case FT_BOOL:
        ok = cJSON_IsBool(it);
        v->kind = V_BOOL;
        v->b = cJSON_IsTrue(it);
        break;
    default:
        ok = cJSON_IsString(it);
        v->kind = V_STR;
        v->str = it->valuestring;
        break;
    }
    if (!ok)
        return spec_err(err, SAT_EINVAL, "field \"%s\": expected %s, got %s", f->name, type_word(f),
                        json_strict_type_name(it));
    return 0;
}

/* Flag text of an integer: [+-]?[0-9]+. Values beyond every range become
 * +-1e300 so that the range check refuses them (the message shows the text). */
static bool text_int(const char *t, double *out)
{
    const char *p = t;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    long long x = strtoll(t, NULL, 10);
    if (errno == ERANGE || x > (1LL << 53) || x < -(1LL << 53))
        *out = t[0] == '-' ? -1e300 : 1e300;
    else
        *out = (double)x;
    return true;
}

/* Flag text of a number: JSON-like characters only (no "nan", "inf", hex). */
static bool text_num(const char *t, double *out)
{
    if (!*t || strspn(t, "0123456789+-.eE") != strlen(t))
        return false;
    char *end = NULL;
    errno = 0;
    double x = strtod(t, &end);
    if (end == t || *end)
        return false;
    *out = x; /* an overflow gives +-HUGE_VAL, refused by the range check */
    return true;
}

static int from_text(const struct field *f, const char *t, struct fval *v, char *err)
{
    memset(v, 0, sizeof(*v));
    v->text = t;
    char shown[64];
    switch (f->type) {
    case FT_INT:
    case FT_BITS:
    case FT_SEED:
        v->kind = V_NUM;
        if (text_int(t, &v->num))
            return 0;
        return spec_err(err, SAT_EINVAL, "field \"%s\": expected an integer, got \"%s\"", f->name,
                        json_strict_show(t, 40, shown, sizeof(shown)));
    case FT_FLOAT:
        v->kind = V_NUM;
        if (text_num(t, &v->num))
            return 0;
        return spec_err(err, SAT_EINVAL, "field \"%s\": expected a number, got \"%s\"", f->name,
                        json_strict_show(t, 40, shown, sizeof(shown)));
    case FT_BOOL:
        v->kind = V_BOOL;
        if (strcmp(t, "true") == 0 || strcmp(t, "false") == 0) {
            v->b = t[0] == 't';
            return 0;
        }
        return spec_err(err, SAT_EINVAL, "field \"%s\": expected true or false, got \"%s\"",
                        f->name, json_strict_show(t, 40, shown, sizeof(shown)));
    default:
        v->kind = V_STR;
        v->str = t;
        return 0;
    }
}

static int check_string(const struct field *f, const char *str, struct fout *out, char *err)
{
    char shown[64], list[160];
    size_t len = strlen(str);
    if (len >= f->size)
        return spec_err(err, SAT_EINVAL, "field \"%s\": too long (%zu bytes; at most %zu)", f->name,
                        len, f->size - 1);
    if (!json_strict_utf8_valid(str, len))
        return spec_err(err, SAT_EINVAL, "field \"%s\": not valid UTF-8", f->name);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)str[i] < 0x20 || str[i] == 0x7f)
            return spec_err(err, SAT_EINVAL, "field \"%s\": control character at byte %zu", f->name,
                            i);
    if (f->names) {
        if (len == 0 && f->required)
            return spec_err(err, SAT_EINVAL, "field \"%s\" is required (one of %s)", f->name,
                            join_names(f->names, ", ", list, sizeof(list)));
        int k = 0;
        while (f->names[k] && strcmp(f->names[k], str) != 0)
            k++;
        if (!f->names[k])
            return spec_err(err, SAT_EINVAL, "field \"%s\": unknown %s \"%s\" (known: %s)", f->name,
                            f->what, json_strict_show(str, 40, shown, sizeof(shown)),
                            join_names(f->names, ", ", list, sizeof(list)));
    }
    out->str = str;
    return 0;
}

/* "bsp" | "asp" | "ssp:S" with S in 1..1000. */
static int check_cons(const struct field *f, const char *str, struct fout *out, char *err)
{
    char shown[64];
    if (strcmp(str, "bsp") == 0 || strcmp(str, "asp") == 0) {
        out->i = str[0] == 'b' ? CONS_BSP : CONS_ASP;
        out->staleness = 0;
        return 0;
    }
    const char *d = str + 4;
    if (strncmp(str, "ssp:", 4) == 0 && *d && strspn(d, "0123456789") == strlen(d)) {
        errno = 0;
        long s = strtol(d, NULL, 10); /* digits only: ERANGE gives LONG_MAX */
        if (s < 1 || s > 1000)
            return spec_err(err, SAT_EINVAL,
                            "field \"%s\": staleness %s in \"%s\" is out of range (1..1000)",
                            f->name, json_strict_show(d, 12, shown, sizeof(shown)), str);
        out->i = CONS_SSP;
        out->staleness = (int)s;
        return 0;
    }
    return spec_err(err, SAT_EINVAL,
                    "field \"%s\": unknown value \"%s\" (expected bsp, asp or ssp:S with S in "
                    "1..1000)",
                    f->name, json_strict_show(str, 40, shown, sizeof(shown)));
}

/* Checks a value against its field; on success fills out. */
static int check(const struct field *f, const struct fval *v, struct fout *out, char *err)
{
    char shown[64], range[64], list[96];
    memset(out, 0, sizeof(*out));
    switch (f->type) {
    case FT_STRING:
        return check_string(f, v->str, out, err);
    case FT_CONS:
        return check_cons(f, v->str, out, err);
    case FT_ENUM:
        for (int k = 0; f->names[k]; k++) {
            if (strcmp(f->names[k], v->str) == 0) {
                out->i = k;
                return 0;
            }
        }
        return spec_err(err, SAT_EINVAL, "field \"%s\": unknown value \"%s\" (expected %s)",
                        f->name, json_strict_show(v->str, 40, shown, sizeof(shown)),
                        join_names(f->names, " or ", list, sizeof(list)));
    case FT_BOOL:
        out->b = v->b;
        return 0;
    case FT_INT:
    case FT_BITS:
    case FT_SEED: {
        double x = v->num;
        /* isfinite first: a JSON 1e999 arrives as inf. Huge values are integers. */
        if (isfinite(x) && x != floor(x))
            return spec_err(err, SAT_EINVAL, "field \"%s\": expected an integer, got %s", f->name,
                            show_num(v, shown, sizeof(shown)));
        bool in = f->type == FT_BITS ? (x >= 2 && x <= 8) || x == 32 : x >= f->lo && x <= f->hi;
        if (!in)
            return spec_err(err, SAT_EINVAL, "field \"%s\": %s is out of range %s", f->name,
                            show_num(v, shown, sizeof(shown)), range_msg(f, range, sizeof(range)));
        if (f->type == FT_SEED)
            out->u = (uint64_t)x;
        else
            out->i = (int)x;
        return 0;
    }
    case FT_FLOAT: {
        double x = v->num;
        bool in = x > f->lo || (x == f->lo && !(f->open & LO_OPEN));
        in = in && (x < f->hi || (x == f->hi && !(f->open & HI_OPEN)));
        /* The stored value is a float: check it too (1e-50 becomes 0, 0.99999999 becomes 1). */
        float fl = in ? (float)x : 0.0f;
        bool fin = in && (fl > f->lo || (fl == f->lo && !(f->open & LO_OPEN))) &&
                   (fl < f->hi || (fl == f->hi && !(f->open & HI_OPEN)));
        if (!in || !fin)
            return spec_err(err, SAT_EINVAL, "field \"%s\": %s is out of range %s%s", f->name,
                            show_num(v, shown, sizeof(shown)), range_msg(f, range, sizeof(range)),
                            in ? " as a 32-bit float" : "");
        out->fl = fl;
        return 0;
    }
    }
    return spec_err(err, SAT_EINTERNAL, "field \"%s\": unknown type", f->name);
}

static void store(const struct field *f, struct job_spec *s, const struct fout *o)
{
    void *p = member(s, f);
    switch (f->type) {
    case FT_STRING: {
        size_t n = strlen(o->str); /* o->str may be p itself: jobspec_set(s, "name", s->name) */
        memmove(p, o->str, n);
        memset((char *)p + n, 0, f->size - n);
        break;
    }
    case FT_INT:
    case FT_BITS:
    case FT_ENUM:
        *(int *)p = o->i;
        break;
    case FT_SEED:
        *(uint64_t *)p = o->u;
        break;
    case FT_FLOAT:
        *(float *)p = o->fl;
        break;
    case FT_BOOL:
        *(bool *)p = o->b;
        break;
    case FT_CONS:
        s->consistency = (enum consistency)o->i;
        s->staleness = o->staleness;
        break;
    }
}

/* Turns the stored value back into a fval (for jobspec_validate). Fails on
 * what a fval cannot carry: an unterminated string, an enum out of range. */
static int load(const struct field *f, const struct job_spec *s, struct fval *v, char *tmp,
                size_t cap, char *err)
{
    const void *p = cmember(s, f);
    memset(v, 0, sizeof(*v));
    v->kind = V_NUM;
    switch (f->type) {
    case FT_STRING:
        if (!memchr(p, '\0', f->size))
            return spec_err(err, SAT_EINVAL, "field \"%s\": not NUL-terminated", f->name);
        v->kind = V_STR;
        v->str = p;
        return 0;
    case FT_INT:
    case FT_BITS:
        v->num = *(const int *)p;
        return 0;
    case FT_SEED: {
        uint64_t u = *(const uint64_t *)p;
        v->num = u > (1ULL << 53) ? 1e300 : (double)u;
        return 0;
    }
    case FT_FLOAT:
        v->num = *(const float *)p;
        return 0;
    case FT_BOOL:
        v->kind = V_BOOL;
        v->b = *(const bool *)p;
        return 0;
    case FT_ENUM:
    case FT_CONS: {
        int e = *(const int *)p;
        int n = 0;
        while (f->names[n])
            n++;
        if (e < 0 || e >= n)
            return spec_err(err, SAT_EINVAL, "field \"%s\": invalid value %d", f->name, e);
        v->kind = V_STR;
        v->str = f->names[e];
        if (f->type == FT_CONS && e == CONS_SSP) {
            snprintf(tmp, cap, "ssp:%d", s->staleness);
            v->str = tmp;
        } else if (f->type == FT_CONS && s->staleness != 0) {
            return spec_err(err, SAT_EINVAL, "field \"%s\": staleness %d given with %s", f->name,
                            s->staleness, f->names[e]);
        }
        return 0;
    }
    }
    return spec_err(err, SAT_EINTERNAL, "field \"%s\": unknown type", f->name);
}

/* ==== Unknown keys ==== */

/* Case-insensitive Levenshtein distance; a is cut at 64 bytes. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, 64), lb = strlen(b);
    int row[65];
    if (lb > 64)
        return 1000;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            char ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'A' && ca <= 'Z')
                ca = (char)(ca - 'A' + 'a');
            int cost = ca == cb ? 0 : 1;
            int best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int unknown_field(const char *key, char *err)
{
    char shown[64];
    size_t len = strlen(key);
    int best = -1, best_d = 1000;
    size_t best_lcp = 0;
    for (int i = 0; len <= 64 && i < NFIELDS; i++) {
        const char *name = fields[i].name;
        int d = edit_distance(key, name);
        /* A key of 3+ bytes inside a field name ("batch", "decay") or a name
         * of 3+ bytes inside the key ("random_seed") is close too. */
        if (d > 1 && ((len >= 3 && strstr(name, key)) || (strlen(name) >= 3 && strstr(key, name))))
            d = 1;
        /* Ties go to the longer common prefix: "lrate" is "lr", not "name". */
        size_t lcp = 0;
        while (key[lcp] && key[lcp] == name[lcp])
            lcp++;
        if (d < best_d || (d == best_d && lcp > best_lcp)) {
            best_d = d;
            best_lcp = lcp;
            best = i;
        }
    }
    json_strict_show(key, 40, shown, sizeof(shown));
    if (best >= 0 && best_d <= (int)((len + 1) / 2))
        return spec_err(err, SAT_EINVAL, "unknown field \"%s\" (did you mean \"%s\"?)", shown,
                        fields[best].name);
    return spec_err(err, SAT_EINVAL, "unknown field \"%s\" (see docs/jobspec.md)", shown);
}

/* ==== Public functions ==== */

/* The derived defaults: first/last weights 8-bit when quantized, the FC's
 * input at abits. Only fields not given are derived. */
static void derive(struct job_spec *s)
{
    int wdef = s->wbits < 32 ? 8 : 32;
    if (!(s->given & (1ULL << field_index("first_wbits"))))
        s->first_wbits = wdef;
    if (!(s->given & (1ULL << field_index("last_wbits"))))
        s->last_wbits = wdef;
    if (!(s->given & (1ULL << field_index("last_abits"))))
        s->last_abits = s->abits;
}

void jobspec_defaults(struct job_spec *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        struct fval v;
        struct fout o;
        if (f->required) /* "" is no model; leave it empty */
            continue;
        /* The defaults are in the table, so this cannot fail; the unit test
         * checks that jobspec_defaults + model + dataset validates. */
        if (from_text(f, f->def, &v, NULL) == 0 && check(f, &v, &o, NULL) == 0)
            store(f, s, &o);
    }
    derive(s);
    s->given = 0;
}

/* Sets field i from a fval: check, store, mark as given. */
static int set_value(struct job_spec *s, int i, const struct fval *v, char *err)
{
    struct fout o;
    int rc = check(&fields[i], v, &o, err);
    if (rc != 0)
        return rc;
    store(&fields[i], s, &o);
    s->given |= 1ULL << i;
    return 0;
}

int jobspec_set(struct job_spec *s, const char *key, const char *value, char err[SAT_ERR_LEN])
{
    if (!s || !key || !value)
        return spec_err(err, SAT_EINVAL, "jobspec_set: NULL argument");
    int i = field_index(key);
    if (i < 0)
        return unknown_field(key, err);
    struct fval v;
    int rc = from_text(&fields[i], value, &v, err);
    if (rc != 0)
        return rc;
    return set_value(s, i, &v, err);
}

int jobspec_parse(struct job_spec *s, const char *json, size_t len, char err[SAT_ERR_LEN])
{
    if (len > SPEC_MAX_JSON)
        return spec_err(err, SAT_ETOOBIG, "%zu bytes is more than the limit of %d bytes", len,
                        SPEC_MAX_JSON);
    jobspec_defaults(s);
    const char *why;
    size_t off;
    cJSON *root = json_strict_parse(json, len, &why, &off);
    if (!root) {
        int line, col;
        json_strict_locate(json, off, &line, &col);
        return spec_err(err, SAT_EINVAL, "invalid JSON at line %d, column %d (byte %zu): %s", line,
                        col, off, why);
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = spec_err(err, SAT_EINVAL, "the spec must be a JSON object, got %s",
                      json_strict_type_name(root));
        goto out;
    }
    uint64_t seen = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        int i = field_index(it->string);
        if (i < 0) {
            rc = unknown_field(it->string, err);
            goto out;
        }
        if (seen & (1ULL << i)) {
            rc = spec_err(err, SAT_EINVAL, "field \"%s\" given twice", fields[i].name);
            goto out;
        }
        seen |= 1ULL << i;
        struct fval v;
        rc = from_json(&fields[i], it, &v, err);
        if (rc == 0)
            rc = set_value(s, i, &v, err);
        if (rc != 0)
            goto out;
    }
    rc = jobspec_validate(s, err);
out:
    cJSON_Delete(root);
    return rc;
}

int jobspec_load(struct job_spec *s, const char *path, char err[SAT_ERR_LEN])
{
    char shown[112], msg[SAT_ERR_LEN];
    json_strict_show(path, 100, shown, sizeof(shown));
    int fd;
    uint64_t size;
    int rc = sat_file_open(path, &fd, &size, msg);
    if (rc != 0)
        return spec_err(err, rc, "%s", msg);
    char *buf = sat_malloc(SPEC_MAX_JSON + 1);
    if (!buf) {
        close(fd);
        return spec_err(err, SAT_ENOMEM, "%s: out of memory", shown);
    }
    /* One byte over the limit tells a file that is too large (or grew). */
    size_t n;
    rc = sat_file_read_full(fd, path, buf, SPEC_MAX_JSON + 1, &n, msg);
    close(fd);
    if (rc != 0) {
        spec_err(err, rc, "%s", msg);
    } else if (n > SPEC_MAX_JSON) {
        rc =
            spec_err(err, SAT_ETOOBIG, "%s: more than the limit of %d bytes", shown, SPEC_MAX_JSON);
    } else {
        rc = jobspec_parse(s, buf, n, msg);
        /* msg starts with "spec: "; put the file name after it. */
        if (rc != 0)
            spec_err(err, rc, "%s: %s", shown, msg + 6);
    }
    sat_free(buf);
    return rc;
}

int jobspec_validate(struct job_spec *s, char err[SAT_ERR_LEN])
{
    char tmp[32], range[64];
    derive(s);
    for (int i = 0; i < NFIELDS; i++) {
        struct fval v;
        struct fout o;
        int rc = load(&fields[i], s, &v, tmp, sizeof(tmp), err);
        if (rc == 0)
            rc = check(&fields[i], &v, &o, err);
        if (rc != 0)
            return rc;
    }
    if (!(s->warmup_epochs < (float)s->epochs))
        return spec_err(err, SAT_EINVAL,
                        "field \"warmup_epochs\": %g is out of range %s with "
                        "epochs %d",
                        (double)s->warmup_epochs,
                        range_msg(field_named("warmup_epochs"), range, sizeof(range)), s->epochs);
    if (s->batch_size < s->workers)
        return spec_err(err, SAT_EINVAL,
                        "field \"batch_size\": %d is less than workers (%d): "
                        "every worker needs at least one image per step",
                        s->batch_size, s->workers);
    /* Each rank takes batch_size / workers images per step; a remainder
     * would make the ranks' batches, and so the step, depend on the split. */
    if (s->batch_size % s->workers != 0)
        return spec_err(err, SAT_EINVAL,
                        "field \"batch_size\": %d is the global batch and must be divisible by "
                        "\"workers\" (%d)",
                        s->batch_size, s->workers);
    return 0;
}

/* The shortest %g text that reads back as the same float; integral values
 * as integers ("10", not "1e+01"). */
static const char *fmt_float(float x, char *buf, size_t cap)
{
    if (x == floorf(x) && fabsf(x) < 1e9f) {
        snprintf(buf, cap, "%.0f", (double)x);
        return buf;
    }
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x)
            break;
    }
    return buf;
}

/* Appends a field's value as JSON. Values no valid spec has (NaN, an enum
 * out of range) are written as null, so the text still parses as JSON and
 * jobspec_parse refuses it with a message. */
static void put_value(struct json_buf *b, const struct field *f, const struct job_spec *s)
{
    const void *p = cmember(s, f);
    char num[40];
    switch (f->type) {
    case FT_STRING: {
        char tmp[SPEC_PATH_LEN + 1];
        size_t n = strnlen(p, f->size);
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        json_buf_string(b, tmp);
        break;
    }
    case FT_INT:
    case FT_BITS:
        json_buf_printf(b, "%d", *(const int *)p);
        break;
    case FT_SEED:
        json_buf_printf(b, "%" PRIu64, *(const uint64_t *)p);
        break;
    case FT_FLOAT: {
        float x = *(const float *)p;
        json_buf_puts(b, isfinite(x) ? fmt_float(x, num, sizeof(num)) : "null");
        break;
    }
    case FT_BOOL:
        json_buf_puts(b, *(const bool *)p ? "true" : "false");
        break;
    case FT_ENUM: {
        int e = *(const int *)p;
        int n = 0;
        while (f->names[n])
            n++;
        if (e >= 0 && e < n)
            json_buf_string(b, f->names[e]);
        else
            json_buf_puts(b, "null");
        break;
    }
    case FT_CONS:
        json_buf_string(b, jobspec_consistency_str(s, num, sizeof(num)));
        break;
    }
}

char *jobspec_to_json(const struct job_spec *s)
{
    struct json_buf b;
    json_buf_init(&b, SPEC_MAX_JSON);
    json_buf_puts(&b, "{\n");
    for (int i = 0; i < NFIELDS; i++) {
        json_buf_printf(&b, "  \"%s\": ", fields[i].name);
        put_value(&b, &fields[i], s);
        json_buf_puts(&b, i + 1 < NFIELDS ? ",\n" : "\n");
    }
    json_buf_puts(&b, "}\n");
    return json_buf_take(&b);
}

const char *jobspec_consistency_str(const struct job_spec *s, char *buf, size_t cap)
{
    switch (s->consistency) {
    case CONS_BSP:
        snprintf(buf, cap, "bsp");
        break;
    case CONS_ASP:
        snprintf(buf, cap, "asp");
        break;
    case CONS_SSP:
        snprintf(buf, cap, "ssp:%d", s->staleness);
        break;
    default:
        snprintf(buf, cap, "?");
        break;
    }
    return buf;
}

/* ==== Documentation ==== */

/* Appends names as "`a`, `b`, `c`". */
static void put_code_list(struct json_buf *b, const char *const *names)
{
    for (int k = 0; names[k]; k++)
        json_buf_printf(b, "%s`%s`", k ? ", " : "", names[k]);
}

char *jobspec_doc_table(void)
{
    struct json_buf b;
    char range[48];
    json_buf_init(&b, 1 << 20);
    json_buf_puts(&b, "| Field | Type | Range | Default | Meaning |\n");
    json_buf_puts(&b, "|---|---|---|---|---|\n");
    for (int i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        const char *tw = type_word(f);
        json_buf_printf(&b, "| `%s` | %s | ", f->name, strchr(tw, ' ') + 1);
        switch (f->type) {
        case FT_STRING:
            if (f->names)
                put_code_list(&b, f->names);
            else
                json_buf_printf(&b, "at most %zu bytes", f->size - 1);
            break;
        case FT_ENUM:
            put_code_list(&b, f->names);
            break;
        case FT_BOOL:
            json_buf_puts(&b, "`true`, `false`");
            break;
        case FT_CONS:
            json_buf_puts(&b, "`bsp`, `asp`, `ssp:S` (S in 1..1000)");
            break;
        default:
            json_buf_puts(&b, range_text(f, range, sizeof(range)));
            break;
        }
        json_buf_puts(&b, " | ");
        bool quoted = f->type == FT_STRING || f->type == FT_ENUM || f->type == FT_CONS;
        if (f->def_doc)
            json_buf_puts(&b, f->def_doc);
        else
            json_buf_printf(&b, quoted ? "`\"%s\"`" : "`%s`", f->def);
        json_buf_printf(&b, " | %s |\n", f->doc);
    }
    return json_buf_take(&b);
}
