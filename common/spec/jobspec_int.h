/* jobspec_int.h - the field table of the job spec, shared by the files of
 * common/spec (jobspec.c: parsing, validation, JSON; jobspec_fields.c: the
 * table; jobspec_doc.c: the Markdown docs); not a public API.
 */
#ifndef SATURN_JOBSPEC_INT_H
#define SATURN_JOBSPEC_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "jobspec.h"

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
/* The bytes of an id-like string field (sweep). */
#define SPEC_ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
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
    const char *charset;      /* FT_STRING: the only bytes allowed (NULL: any text) */
    const char *range_doc;    /* range as documented, when not generated */
    const char *def;          /* default, as flag text (applied by jobspec_defaults) */
    const char *def_doc;      /* default as documented, when it is not `def` */
    const char *doc;          /* meaning, one sentence, no '|' */
};

/* Every field of struct job_spec, in the order of the canonical JSON and of
 * the docs (jobspec_fields.c); jobspec__nfields rows, at most 64. */
extern const struct field jobspec__fields[];
extern const int jobspec__nfields;

/* "an integer", "a number", "a boolean" or "a string": what a field's JSON
 * value must be. */
const char *jobspec__type_word(const struct field *f);
/* The range of a numeric field as text ("1..10000", "(0, 100]", "2..8 or
 * 32") into buf (cap bytes); returns buf. */
const char *jobspec__range_text(const struct field *f, char *buf, size_t cap);

#endif
