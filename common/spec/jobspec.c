/* jobspec.c - the job spec: parsing, validation and canonical JSON.
 *
 * One table (jobspec__fields, jobspec_fields.c) describes every field: its
 * name, type, place in struct job_spec, range, default and meaning. The
 * JSON parser, the flag-style setter, jobspec_validate, jobspec_to_json and
 * the Markdown table in docs/jobspec.md (jobspec_doc.c) are all driven by
 * it, so a field is added in one row. Values arrive either as cJSON items or
 * as flag text; both are turned into a `struct fval`, checked by one
 * function per type (`check`) and then stored (`store`), which is why the
 * two entry points give the same messages.
 */
#include "jobspec_int.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/file.h"
#include "../util/suggest.h"
#include "../util/xalloc.h"
#include "json_strict.h"

static int field_index(const char *name)
{
    for (int i = 0; i < jobspec__nfields; i++)
        if (strcmp(jobspec__fields[i].name, name) == 0)
            return i;
    return -1;
}

static const struct field *field_named(const char *name)
{
    int i = field_index(name);
    return i < 0 ? NULL : &jobspec__fields[i];
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

/* The range as messages put it: "(1..10000)", "(0, 100]", "[0, 1)". */
static const char *range_msg(const struct field *f, char *buf, size_t cap)
{
    char r[48];
    jobspec__range_text(f, r, sizeof(r));
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
        return spec_err(err, SAT_EINVAL, "field \"%s\": expected %s, got %s", f->name,
                        jobspec__type_word(f), json_strict_type_name(it));
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
    if (f->charset && strspn(str, f->charset) != len)
        return spec_err(err, SAT_EINVAL,
                        "field \"%s\": \"%s\" has a character other than A-Z a-z 0-9 . _ -",
                        f->name, json_strict_show(str, 40, shown, sizeof(shown)));
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

static int unknown_field(const char *key, char *err)
{
    char shown[64];
    const char *names[64]; /* jobspec__nfields <= 64 (jobspec_fields.c) */
    for (int i = 0; i < jobspec__nfields; i++)
        names[i] = jobspec__fields[i].name;
    int best = sat_suggest(key, names, jobspec__nfields);
    json_strict_show(key, 40, shown, sizeof(shown));
    if (best >= 0)
        return spec_err(err, SAT_EINVAL, "unknown field \"%s\" (did you mean \"%s\"?)", shown,
                        names[best]);
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
    for (int i = 0; i < jobspec__nfields; i++) {
        const struct field *f = &jobspec__fields[i];
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
    int rc = check(&jobspec__fields[i], v, &o, err);
    if (rc != 0)
        return rc;
    store(&jobspec__fields[i], s, &o);
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
    int rc = from_text(&jobspec__fields[i], value, &v, err);
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
            rc = spec_err(err, SAT_EINVAL, "field \"%s\" given twice", jobspec__fields[i].name);
            goto out;
        }
        seen |= 1ULL << i;
        struct fval v;
        rc = from_json(&jobspec__fields[i], it, &v, err);
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
    char *buf;
    size_t n;
    int rc = sat_file_read_all(path, SPEC_MAX_JSON, &buf, &n, msg);
    if (rc == SAT_ETOOBIG)
        return spec_err(err, rc, "%s: more than the limit of %d bytes", shown, SPEC_MAX_JSON);
    if (rc != 0)
        return spec_err(err, rc, "%s", msg);
    rc = jobspec_parse(s, buf, n, msg);
    /* msg starts with "spec: "; put the file name after it. */
    if (rc != 0)
        spec_err(err, rc, "%s: %s", shown, msg + 6);
    sat_free(buf);
    return rc;
}

int jobspec_validate(struct job_spec *s, char err[SAT_ERR_LEN])
{
    char tmp[32], range[64];
    derive(s);
    for (int i = 0; i < jobspec__nfields; i++) {
        struct fval v;
        struct fout o;
        int rc = load(&jobspec__fields[i], s, &v, tmp, sizeof(tmp), err);
        if (rc == 0)
            rc = check(&jobspec__fields[i], &v, &o, err);
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
    for (int i = 0; i < jobspec__nfields; i++) {
        json_buf_printf(&b, "  \"%s\": ", jobspec__fields[i].name);
        put_value(&b, &jobspec__fields[i], s);
        json_buf_puts(&b, i + 1 < jobspec__nfields ? ",\n" : "\n");
    }
    json_buf_puts(&b, "}\n");
    return json_buf_take(&b);
}

bool jobspec_sweep_id_ok(const char *s)
{
    size_t n = s ? strnlen(s, SPEC_SWEEP_LEN) : 0;
    return n > 0 && n < SPEC_SWEEP_LEN && strspn(s, SPEC_ID_CHARS) == n;
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
