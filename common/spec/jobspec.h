/* jobspec.h - the job spec: what a training job is, parsed and validated.
 *
 * A job spec is a flat JSON object (docs/jobspec.md documents every field).
 * Parsing is strict: an unknown key, a wrong type, an out-of-range value or
 * an unknown name is refused with a message that names the field, e.g.
 *   spec: field "wbits": 9 is out of range (2..8 or 32)
 *   spec: unknown field "lrate" (did you mean "lr"?)
 * Every field has a default, so "{}" ... except "model" and "dataset",
 * which are required.
 */
#ifndef SATURN_JOBSPEC_H
#define SATURN_JOBSPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "../util/err.h"

#define SPEC_NAME_LEN 64
#define SPEC_PATH_LEN 512
#define SPEC_MAX_JSON (64 * 1024) /* bytes; a longer spec is refused */

enum sat_mode { SAT_OFF, SAT_LAST, SAT_ALL };
enum sat_fan { SAT_FAN_IN, SAT_FAN_OUT };
enum act_quant { ACTQ_CGPACT, ACTQ_PACT };
enum consistency { CONS_BSP, CONS_SSP, CONS_ASP };
enum alpha_init { ALPHA_INIT_FIXED, ALPHA_INIT_CALIBRATE };

/* A sweep id: 1..SPEC_SWEEP_LEN-1 bytes of [A-Za-z0-9._-] ("" = none). */
#define SPEC_SWEEP_LEN 32

struct job_spec {
    char name[SPEC_NAME_LEN];     /* "name": free text, default "" */
    char model[SPEC_NAME_LEN];    /* "model": zoo name (required) */
    char dataset[SPEC_NAME_LEN];  /* "dataset": fashion-mnist|mnist|cifar10|synthetic (required) */
    char data_dir[SPEC_PATH_LEN]; /* "data_dir": default "" = the data set's default dir */
    int train_limit;              /* "train_limit": use the first N training images; 0 = all */
    int test_limit;               /* "test_limit": use the first N test images; 0 = all */

    /* Quantization (spec/sat-numerics.md). Bit widths are 2..8, or 32 = float. */
    int wbits;            /* "wbits": default 32 */
    int abits;            /* "abits": default 32 */
    int first_wbits;      /* "first_wbits": first layer's weights; default 8 (32 when wbits 32) */
    int last_wbits;       /* "last_wbits": the FC's weights; default 8 (32 when wbits 32) */
    int last_abits;       /* "last_abits": the FC's input; default = abits */
    bool clamp;           /* "clamp": tanh-clamp float weights (wbits 32); default false */
    enum sat_mode sat;    /* "sat": off|last|all; default last */
    enum sat_fan sat_fan; /* "sat_fan": in|out; default in */
    enum act_quant act_quant; /* "act_quant": cgpact|pact; default cgpact */
    float alpha_init_conv;    /* "alpha_init_conv": (0, 1000]; default 8 */
    float alpha_init_fc;      /* "alpha_init_fc": (0, 1000]; default 10 */
    enum alpha_init alpha_init; /* "alpha_init": fixed|calibrate; default fixed */
    float alpha_percentile;     /* "alpha_percentile": (0, 100]; default 99.9 */

    /* Recipe. */
    int epochs;          /* "epochs": 1..10000; default 10 */
    int batch_size;      /* "batch_size": global batch, 1..65536; default 128 */
    float lr;            /* "lr": (0, 100]; default 0.1 */
    float momentum;      /* "momentum": [0, 1); default 0.9 */
    bool nesterov;       /* "nesterov": default true */
    float weight_decay;  /* "weight_decay": [0, 1); default 1e-4 */
    float warmup_epochs; /* "warmup_epochs": [0, epochs); default 0 */
    bool augment;        /* "augment": random crop (pad 2) + flip; default true */
    uint64_t seed;       /* "seed": 0..2^53; default 1 */

    /* Distribution and service. */
    int workers;                  /* "workers": 1..256; default 1 */
    enum consistency consistency; /* "consistency": "bsp" | "ssp:S" | "asp"; default bsp */
    int staleness;                /* S of ssp:S, 1..1000; 0 otherwise */
    int checkpoint_every;         /* "checkpoint_every": steps, 0 = epoch ends only; default 0 */
    int recover_timeout_s;        /* "recover_timeout_s": a lost rank's wait for a worker; 600 */
    char init_from[SPEC_PATH_LEN]; /* "init_from": checkpoint path or job id; default "" */
    int priority;                 /* "priority": -1000..1000, higher first; default 0 */
    char sweep[SPEC_SWEEP_LEN];   /* "sweep": the sweep id, [A-Za-z0-9._-]; default "" */

    /* Private, MUST NOT be accessed: bit i is set when the i-th field of the
     * table in jobspec.c was given (by jobspec_parse or jobspec_set).
     * jobspec_validate derives first_wbits, last_wbits and last_abits only
     * when they were not given, so it can run again after more jobspec_set
     * calls (a file, then flags) and still derive them from the final wbits
     * and abits. A value assigned directly to one of those three is
     * therefore replaced by validate; use jobspec_set instead. */
    uint64_t given;
};

/* Fills s with every default (model and dataset empty). */
void jobspec_defaults(struct job_spec *s);

/* Parses and validates a JSON text of `len` bytes into s, starting from the
 * defaults (fields not in the text keep them). On failure returns
 * SAT_EINVAL (or SAT_ETOOBIG for more than SPEC_MAX_JSON bytes) with a
 * message naming the field in err; s is then unspecified. */
int jobspec_parse(struct job_spec *s, const char *json, size_t len, char err[SAT_ERR_LEN]);
/* Reads and parses a file (at most SPEC_MAX_JSON bytes, else SAT_ETOOBIG);
 * messages then name the file. SAT_ENOENT/SAT_EIO when it cannot be read. */
int jobspec_load(struct job_spec *s, const char *path, char err[SAT_ERR_LEN]);

/* Sets one field from text, as a command-line flag does ("wbits", "4";
 * "consistency", "ssp:2"; "augment", "false"), with the same checks and
 * messages as the JSON parser. On failure s is unchanged. Call
 * jobspec_validate after the last one. */
int jobspec_set(struct job_spec *s, const char *key, const char *value, char err[SAT_ERR_LEN]);

/* Cross-field checks (required fields present, warmup < epochs, known
 * model and data set, bit-width defaults resolved). jobspec_parse calls it. */
int jobspec_validate(struct job_spec *s, char err[SAT_ERR_LEN]);

/* Writes the canonical JSON (every field, fixed order) into a new string;
 * jobspec_parse of a validated spec's JSON gives back the same value in
 * every field (and every field then counts as given). Caller frees with
 * sat_free. NULL on allocation failure. */
char *jobspec_to_json(const struct job_spec *s);

/* Writes the Markdown table of every field (name, type, range, default,
 * meaning), generated from the same table that drives the parser;
 * docs/jobspec.md embeds it and a unit test checks that it is current.
 * Caller frees with sat_free. NULL on allocation failure. */
char *jobspec_doc_table(void);

/* True when s is a valid, non-empty sweep id (1..SPEC_SWEEP_LEN-1 bytes of
 * [A-Za-z0-9._-]), as the "sweep" field and ListJobs' filter require. */
bool jobspec_sweep_id_ok(const char *s);

/* Renders consistency as "bsp", "asp" or "ssp:S" into buf (>= 16 bytes). */
const char *jobspec_consistency_str(const struct job_spec *s, char *buf, size_t cap);

#endif
