/* test_jobspec.c - the job spec: parsing, defaults, every kind of refusal and
 * its message, flag-style setting, canonical JSON round trips, loading from
 * a file, and the field table in docs/jobspec.md (argv[1]) being current. */
#include "check.h"
#include "spec/jobspec.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[SAT_ERR_LEN];

static int parse(struct job_spec *s, const char *json)
{
    err[0] = '\0';
    return jobspec_parse(s, json, strlen(json), err);
}

/* Parses json and expects SAT_EINVAL with a message containing both needles. */
static void expect_bad(const char *json, const char *needle1, const char *needle2)
{
    struct job_spec s;
    int rc = parse(&s, json);
    CHECK_EQ_INT(rc, SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "spec: ");
    CHECK_STR_CONTAINS(err, needle1);
    if (needle2)
        CHECK_STR_CONTAINS(err, needle2);
    if (rc != SAT_EINVAL || !strstr(err, needle1))
        fprintf(stderr, "  for input: %s\n", json);
}

/* Builds {"model":"mlp","dataset":"mnist", <extra>} into buf. */
static const char *with(char *buf, size_t cap, const char *extra)
{
    snprintf(buf, cap, "{\"model\": \"mlp\", \"dataset\": \"mnist\"%s%s}", *extra ? ", " : "",
             extra);
    return buf;
}

static void expect_bad_field(const char *extra, const char *needle1, const char *needle2)
{
    char buf[2048];
    expect_bad(with(buf, sizeof(buf), extra), needle1, needle2);
}

/* Every field but `given` equal. */
static int same_values(const struct job_spec *a, const struct job_spec *b)
{
    struct job_spec x = *a, y = *b;
    x.given = y.given = 0;
    return memcmp(&x, &y, sizeof(x)) == 0;
}

static const char *full_spec = "{\n"
                               "  \"name\": \"w4a4 \\\"test\\\" \\u00e9\",\n"
                               "  \"model\": \"preresnet20\",\n"
                               "  \"dataset\": \"cifar10\",\n"
                               "  \"data_dir\": \"/data/cifar\",\n"
                               "  \"train_limit\": 5000,\n"
                               "  \"test_limit\": 1000,\n"
                               "  \"wbits\": 4,\n"
                               "  \"abits\": 3,\n"
                               "  \"first_wbits\": 6,\n"
                               "  \"last_wbits\": 5,\n"
                               "  \"last_abits\": 7,\n"
                               "  \"clamp\": true,\n"
                               "  \"sat\": \"all\",\n"
                               "  \"sat_fan\": \"out\",\n"
                               "  \"act_quant\": \"pact\",\n"
                               "  \"alpha_init_conv\": 6.5,\n"
                               "  \"alpha_init_fc\": 12,\n"
                               "  \"alpha_init\": \"calibrate\",\n"
                               "  \"alpha_percentile\": 99.5,\n"
                               "  \"epochs\": 200,\n"
                               "  \"batch_size\": 256,\n"
                               "  \"lr\": 0.05,\n"
                               "  \"momentum\": 0.8,\n"
                               "  \"nesterov\": false,\n"
                               "  \"weight_decay\": 5e-4,\n"
                               "  \"warmup_epochs\": 2.5,\n"
                               "  \"augment\": false,\n"
                               "  \"seed\": 9007199254740992,\n"
                               "  \"workers\": 4,\n"
                               "  \"consistency\": \"ssp:3\",\n"
                               "  \"checkpoint_every\": 500,\n"
                               "  \"init_from\": \"runs/fp32/model.safetensors\",\n"
                               "  \"sweep\": \"sw-1.b_C\",\n"
                               "  \"priority\": -7\n"
                               "}\n";

static void test_full(void)
{
    struct job_spec s;
    CHECK_EQ_INT(parse(&s, full_spec), 0);
    if (err[0])
        fprintf(stderr, "  %s\n", err);
    CHECK(strcmp(s.name, "w4a4 \"test\" \xc3\xa9") == 0);
    CHECK(strcmp(s.model, "preresnet20") == 0);
    CHECK(strcmp(s.dataset, "cifar10") == 0);
    CHECK(strcmp(s.data_dir, "/data/cifar") == 0);
    CHECK_EQ_INT(s.train_limit, 5000);
    CHECK_EQ_INT(s.test_limit, 1000);
    CHECK_EQ_INT(s.wbits, 4);
    CHECK_EQ_INT(s.abits, 3);
    CHECK_EQ_INT(s.first_wbits, 6);
    CHECK_EQ_INT(s.last_wbits, 5);
    CHECK_EQ_INT(s.last_abits, 7);
    CHECK(s.clamp);
    CHECK_EQ_INT(s.sat, SAT_ALL);
    CHECK_EQ_INT(s.sat_fan, SAT_FAN_OUT);
    CHECK_EQ_INT(s.act_quant, ACTQ_PACT);
    CHECK(s.alpha_init_conv == 6.5f);
    CHECK(s.alpha_init_fc == 12.0f);
    CHECK_EQ_INT(s.epochs, 200);
    CHECK_EQ_INT(s.batch_size, 256);
    CHECK(s.lr == 0.05f);
    CHECK(s.momentum == 0.8f);
    CHECK(!s.nesterov);
    CHECK(s.weight_decay == 5e-4f);
    CHECK(s.warmup_epochs == 2.5f);
    CHECK(!s.augment);
    CHECK(s.seed == (1ULL << 53));
    CHECK_EQ_INT(s.workers, 4);
    CHECK_EQ_INT(s.consistency, CONS_SSP);
    CHECK_EQ_INT(s.staleness, 3);
    CHECK_EQ_INT(s.checkpoint_every, 500);
    CHECK(strcmp(s.init_from, "runs/fp32/model.safetensors") == 0);
    CHECK_EQ_INT(s.priority, -7);
    CHECK_EQ_INT(s.alpha_init, ALPHA_INIT_CALIBRATE);
    CHECK(s.alpha_percentile == 99.5f);
    CHECK(strcmp(s.sweep, "sw-1.b_C") == 0);
    char buf[16];
    CHECK(strcmp(jobspec_consistency_str(&s, buf, sizeof(buf)), "ssp:3") == 0);
}

static void test_defaults(void)
{
    struct job_spec s;
    CHECK_EQ_INT(parse(&s, "{\"model\": \"mlp\", \"dataset\": \"fashion-mnist\"}"), 0);
    CHECK(strcmp(s.name, "") == 0 && strcmp(s.data_dir, "") == 0 && strcmp(s.init_from, "") == 0);
    CHECK_EQ_INT(s.train_limit, 0);
    CHECK_EQ_INT(s.test_limit, 0);
    CHECK_EQ_INT(s.wbits, 32);
    CHECK_EQ_INT(s.abits, 32);
    CHECK_EQ_INT(s.first_wbits, 32);
    CHECK_EQ_INT(s.last_wbits, 32);
    CHECK_EQ_INT(s.last_abits, 32);
    CHECK(!s.clamp);
    CHECK_EQ_INT(s.sat, SAT_LAST);
    CHECK_EQ_INT(s.sat_fan, SAT_FAN_IN);
    CHECK_EQ_INT(s.act_quant, ACTQ_CGPACT);
    CHECK(s.alpha_init_conv == 8.0f);
    CHECK(s.alpha_init_fc == 10.0f);
    CHECK_EQ_INT(s.epochs, 10);
    CHECK_EQ_INT(s.batch_size, 128);
    CHECK(s.lr == 0.1f);
    CHECK(s.momentum == 0.9f);
    CHECK(s.nesterov);
    CHECK(s.weight_decay == 1e-4f);
    CHECK(s.warmup_epochs == 0.0f);
    CHECK(s.augment);
    CHECK(s.seed == 1);
    CHECK_EQ_INT(s.workers, 1);
    CHECK_EQ_INT(s.consistency, CONS_BSP);
    CHECK_EQ_INT(s.staleness, 0);
    CHECK_EQ_INT(s.checkpoint_every, 0);
    CHECK_EQ_INT(s.priority, 0);
    CHECK_EQ_INT(s.alpha_init, ALPHA_INIT_FIXED);
    CHECK(s.alpha_percentile == 99.9f);
    CHECK(s.sweep[0] == '\0');

    /* jobspec_defaults alone gives the same values (model/dataset empty). */
    struct job_spec d;
    jobspec_defaults(&d);
    CHECK(d.model[0] == '\0' && d.dataset[0] == '\0');
    snprintf(d.model, sizeof(d.model), "mlp");
    snprintf(d.dataset, sizeof(d.dataset), "fashion-mnist");
    CHECK_EQ_INT(jobspec_validate(&d, err), 0);
    CHECK(same_values(&d, &s));

    /* Derived bit widths: quantized weights give 8-bit first/last layers,
     * the FC input follows abits. */
    CHECK_EQ_INT(parse(&s, "{\"model\":\"mlp\",\"dataset\":\"mnist\",\"wbits\":4,\"abits\":2}"), 0);
    CHECK_EQ_INT(s.first_wbits, 8);
    CHECK_EQ_INT(s.last_wbits, 8);
    CHECK_EQ_INT(s.last_abits, 2);
    /* Explicit values win, including 32 with quantized weights. */
    CHECK_EQ_INT(parse(&s, "{\"model\":\"mlp\",\"dataset\":\"mnist\",\"wbits\":4,"
                           "\"first_wbits\":32,\"last_wbits\":2,\"last_abits\":8}"),
                 0);
    CHECK_EQ_INT(s.first_wbits, 32);
    CHECK_EQ_INT(s.last_wbits, 2);
    CHECK_EQ_INT(s.last_abits, 8);

    /* File, then flags, then validate: derived fields follow the final values. */
    CHECK_EQ_INT(parse(&s, "{\"model\":\"mlp\",\"dataset\":\"mnist\",\"wbits\":4,"
                           "\"last_wbits\":6}"),
                 0);
    CHECK_EQ_INT(s.first_wbits, 8);
    CHECK_EQ_INT(jobspec_set(&s, "wbits", "32", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "abits", "4", err), 0);
    CHECK_EQ_INT(jobspec_validate(&s, err), 0);
    CHECK_EQ_INT(s.first_wbits, 32); /* derived again */
    CHECK_EQ_INT(s.last_wbits, 6);   /* given in the file: kept */
    CHECK_EQ_INT(s.last_abits, 4);
    CHECK_EQ_INT(jobspec_set(&s, "wbits", "3", err), 0);
    CHECK_EQ_INT(jobspec_validate(&s, err), 0);
    CHECK_EQ_INT(s.first_wbits, 8);
}

static void test_errors(void)
{
    /* Unknown keys, with a suggestion when one is close. */
    expect_bad_field("\"lrate\": 0.1", "unknown field \"lrate\"", "(did you mean \"lr\"?)");
    expect_bad_field("\"epoch\": 3", "unknown field \"epoch\"", "did you mean \"epochs\"?");
    expect_bad_field("\"batch\": 3", "unknown field \"batch\"", "did you mean \"batch_size\"?");
    expect_bad_field("\"Wbits\": 4", "unknown field \"Wbits\"", "did you mean \"wbits\"?");
    expect_bad_field("\"first_w_bits\": 4", "unknown field", "did you mean \"first_wbits\"?");
    expect_bad_field("\"staleness\": 4", "unknown field \"staleness\"", NULL);
    expect_bad_field("\"zzzzzzzzzzzz\": 4", "unknown field \"zzzzzzzzzzzz\"", "docs/jobspec.md");
    expect_bad_field("\"bad\\nkey\": 4", "unknown field \"bad?key\"", NULL);

    /* Wrong types, as the JSON type. */
    expect_bad_field("\"epochs\": \"10\"", "field \"epochs\": expected an integer, got a string",
                     NULL);
    expect_bad_field("\"lr\": true", "field \"lr\": expected a number, got a boolean", NULL);
    expect_bad_field("\"augment\": 1", "field \"augment\": expected a boolean, got a number", NULL);
    expect_bad_field("\"name\": 5", "field \"name\": expected a string, got a number", NULL);
    expect_bad_field("\"sat\": null", "field \"sat\": expected a string, got null", NULL);
    expect_bad_field("\"wbits\": [4]", "field \"wbits\": expected an integer, got an array", NULL);
    expect_bad_field("\"seed\": {}", "field \"seed\": expected an integer, got an object", NULL);
    expect_bad_field("\"consistency\": 2", "field \"consistency\": expected a string", NULL);

    /* Integers given with a fraction. */
    expect_bad_field("\"epochs\": 4.5", "field \"epochs\": expected an integer, got 4.5", NULL);
    expect_bad_field("\"wbits\": 4.25", "field \"wbits\": expected an integer, got 4.25", NULL);
    expect_bad_field("\"seed\": 1e-3", "field \"seed\": expected an integer", NULL);

    /* Out of range, with the range stated. */
    expect_bad_field("\"wbits\": 9", "field \"wbits\": 9 is out of range (2..8 or 32)", NULL);
    expect_bad_field("\"abits\": 1", "field \"abits\": 1 is out of range (2..8 or 32)", NULL);
    expect_bad_field("\"last_abits\": 16", "field \"last_abits\": 16 is out of range", NULL);
    expect_bad_field("\"epochs\": 0", "field \"epochs\": 0 is out of range (1..10000)", NULL);
    expect_bad_field("\"epochs\": 1e300", "field \"epochs\": 1e+300 is out of range (1..10000)",
                     NULL);
    expect_bad_field("\"epochs\": 1e999", "field \"epochs\": inf is out of range", NULL);
    expect_bad_field("\"batch_size\": 65537",
                     "field \"batch_size\": 65537 is out of range "
                     "(1..65536)",
                     NULL);
    expect_bad_field("\"workers\": 0", "field \"workers\": 0 is out of range (1..256)", NULL);
    expect_bad_field("\"priority\": -1001",
                     "field \"priority\": -1001 is out of range "
                     "(-1000..1000)",
                     NULL);
    expect_bad_field("\"train_limit\": -1",
                     "field \"train_limit\": -1 is out of range "
                     "(0..2147483647)",
                     NULL);
    expect_bad_field("\"checkpoint_every\": 3000000000",
                     "field \"checkpoint_every\": "
                     "3000000000 is out of range",
                     NULL);
    expect_bad_field("\"seed\": 9007199254740994",
                     "field \"seed\": 9.00719925474099e+15 is out "
                     "of range (0..2^53)",
                     NULL);
    expect_bad_field("\"seed\": -1", "field \"seed\": -1 is out of range (0..2^53)", NULL);
    expect_bad_field("\"lr\": 0", "field \"lr\": 0 is out of range (0, 100]", NULL);
    expect_bad_field("\"lr\": 100.5", "field \"lr\": 100.5 is out of range (0, 100]", NULL);
    expect_bad_field("\"lr\": 1e-50",
                     "field \"lr\": 1e-50 is out of range (0, 100] as a 32-bit "
                     "float",
                     NULL);
    expect_bad_field("\"momentum\": 1", "field \"momentum\": 1 is out of range [0, 1)", NULL);
    expect_bad_field("\"momentum\": 0.9999999999", "field \"momentum\"", "as a 32-bit float");
    expect_bad_field("\"weight_decay\": -0.1",
                     "field \"weight_decay\": -0.1 is out of range "
                     "[0, 1)",
                     NULL);
    expect_bad_field("\"alpha_init_conv\": 0",
                     "field \"alpha_init_conv\": 0 is out of range "
                     "(0, 1000]",
                     NULL);
    expect_bad_field("\"alpha_init_fc\": 1e39", "field \"alpha_init_fc\"", "out of range");
    expect_bad_field("\"warmup_epochs\": 10",
                     "field \"warmup_epochs\": 10 is out of range "
                     "[0, epochs) with epochs 10",
                     NULL);
    expect_bad_field("\"warmup_epochs\": -1",
                     "field \"warmup_epochs\": -1 is out of range "
                     "[0, epochs)",
                     NULL);
    expect_bad_field("\"batch_size\": 2, \"workers\": 3",
                     "field \"batch_size\": 2 is less than "
                     "workers (3)",
                     NULL);
    expect_bad_field("\"batch_size\": 128, \"workers\": 3",
                     "field \"batch_size\": 128 is the global batch and must be divisible by "
                     "\"workers\" (3)",
                     NULL);
    {
        /* A multiple of workers passes; so does setting both by flags in
         * either order, since the rule is checked on the whole spec. */
        char buf[256];
        struct job_spec ok;
        CHECK_EQ_INT(parse(&ok, with(buf, sizeof buf, "\"batch_size\": 129, \"workers\": 3")), 0);
        jobspec_defaults(&ok);
        CHECK_EQ_INT(jobspec_set(&ok, "model", "mlp", err), 0);
        CHECK_EQ_INT(jobspec_set(&ok, "dataset", "mnist", err), 0);
        CHECK_EQ_INT(jobspec_set(&ok, "workers", "3", err), 0);
        CHECK_EQ_INT(jobspec_validate(&ok, err), SAT_EINVAL);
        CHECK_STR_CONTAINS(err, "must be divisible by \"workers\" (3)");
        CHECK_EQ_INT(jobspec_set(&ok, "batch_size", "96", err), 0);
        CHECK_EQ_INT(jobspec_validate(&ok, err), 0);
    }

    /* Names: the zoo and the data sets are listed. */
    expect_bad("{\"model\": \"resnet50\", \"dataset\": \"mnist\"}",
               "field \"model\": unknown model \"resnet50\"",
               "mlp, cnn-small, preresnet20, mobilenetv1, mobilenetv2");
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"imagenet\"}",
               "field \"dataset\": unknown data set \"imagenet\"",
               "fashion-mnist, mnist, cifar10, synthetic");
    expect_bad("{\"model\": \"MLP\", \"dataset\": \"mnist\"}", "unknown model \"MLP\"", NULL);
    expect_bad("{\"dataset\": \"mnist\"}", "field \"model\" is required", "cnn-small");
    expect_bad("{\"model\": \"mlp\"}", "field \"dataset\" is required", "cifar10");
    expect_bad("{\"model\": \"\", \"dataset\": \"mnist\"}", "field \"model\" is required", NULL);
    expect_bad_field("\"sat\": \"none\"", "field \"sat\": unknown value \"none\"",
                     "(expected off, last or all)");
    expect_bad_field("\"sat_fan\": \"IN\"", "field \"sat_fan\": unknown value \"IN\"",
                     "(expected in or out)");
    expect_bad_field("\"act_quant\": \"dorefa\"", "field \"act_quant\": unknown value", "cgpact");

    /* Consistency strings. */
    expect_bad_field("\"consistency\": \"ssp:0\"",
                     "field \"consistency\": staleness 0 in \"ssp:0\" is out of range (1..1000)",
                     NULL);
    expect_bad_field("\"consistency\": \"ssp:1001\"", "field \"consistency\": staleness 1001",
                     "(1..1000)");
    expect_bad_field("\"consistency\": \"ssp:99999999999999999999\"", "staleness", "(1..1000)");
    expect_bad_field("\"consistency\": \"ssp\"", "field \"consistency\": unknown value \"ssp\"",
                     "bsp, asp or ssp:S with S in 1..1000");
    expect_bad_field("\"consistency\": \"ssp:-2\"", "unknown value \"ssp:-2\"", NULL);
    expect_bad_field("\"consistency\": \"ssp: 2\"", "unknown value \"ssp: 2\"", NULL);
    expect_bad_field("\"consistency\": \"BSP\"", "unknown value \"BSP\"", NULL);

    /* Strings longer than their buffers. */
    char big[700], extra[800];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[SPEC_NAME_LEN] = '\0'; /* 64 bytes: one too many */
    snprintf(extra, sizeof(extra), "\"name\": \"%s\"", big);
    expect_bad_field(extra, "field \"name\": too long (64 bytes; at most 63)", NULL);
    big[SPEC_NAME_LEN - 1] = '\0'; /* 63 bytes fit */
    snprintf(extra, sizeof(extra), "{\"model\":\"mlp\",\"dataset\":\"mnist\",\"name\":\"%s\"}",
             big);
    struct job_spec s;
    CHECK_EQ_INT(parse(&s, extra), 0);
    CHECK_EQ_INT(strlen(s.name), 63);
    memset(big, 'b', sizeof(big) - 1);
    big[SPEC_PATH_LEN] = '\0';
    snprintf(extra, sizeof(extra), "\"data_dir\": \"%s\"", big);
    expect_bad_field(extra, "field \"data_dir\": too long (512 bytes; at most 511)", NULL);
    snprintf(extra, sizeof(extra), "\"init_from\": \"%s\"", big);
    expect_bad_field(extra, "field \"init_from\": too long", NULL);
    expect_bad_field("\"name\": \"a\\tb\"", "field \"name\": control character at byte 1", NULL);
    /* A sweep id is an id: [A-Za-z0-9._-], at most 31 bytes. */
    expect_bad_field("\"sweep\": \"a b\"", "field \"sweep\": \"a b\" has a character other", NULL);
    expect_bad_field("\"sweep\": \"a/b\"", "field \"sweep\"", "A-Z a-z 0-9 . _ -");
    expect_bad_field("\"sweep\": \"<script>\"", "field \"sweep\"", NULL);
    expect_bad_field("\"sweep\": \"caf\u00e9\"", "field \"sweep\"", NULL);
    expect_bad_field("\"sweep\": \"0123456789012345678901234567890123\"",
                     "field \"sweep\": too long", "at most 31");
    expect_bad_field("\"alpha_init\": \"auto\"", "field \"alpha_init\": unknown value \"auto\"",
                     "fixed or calibrate");
    expect_bad_field("\"alpha_percentile\": 0", "field \"alpha_percentile\": 0 is out of range",
                     "(0, 100]");
    expect_bad_field("\"alpha_percentile\": 100.5", "field \"alpha_percentile\"", NULL);

    /* Duplicates and the top level. */
    expect_bad_field("\"epochs\": 3, \"epochs\": 3", "field \"epochs\" given twice", NULL);
    expect_bad("{\"model\":\"mlp\",\"model\":\"cnn-small\",\"dataset\":\"mnist\"}",
               "field \"model\" given twice", NULL);
    expect_bad("[1, 2]", "the spec must be a JSON object, got an array", NULL);
    expect_bad("\"mlp\"", "must be a JSON object, got a string", NULL);
    expect_bad("42", "must be a JSON object, got a number", NULL);
    expect_bad("null", "must be a JSON object, got null", NULL);

    /* Invalid JSON, with a position. */
    expect_bad("", "invalid JSON", "empty input");
    expect_bad("   \n ", "invalid JSON", NULL);
    expect_bad("{\"model\": \"mlp\",\n \"dataset\": \"mnist\",\n  \"epochs\": }",
               "invalid JSON at line 3", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\"", "invalid JSON", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\"} {}",
               "invalid JSON at line 1, "
               "column 38 (byte 37)",
               "unexpected text after the JSON value");
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"epochs\": 01}", "invalid JSON",
               "malformed number");
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"epochs\": 1.}", "malformed number",
               NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"lr\": .5}", "invalid JSON", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"lr\": NaN}", "invalid JSON", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"lr\": Infinity}", "invalid JSON",
               NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"lr\": -}", "invalid JSON", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"name\": \"a\x01\"}", "invalid JSON",
               "control character");
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"name\": \"\xff\"}", "invalid JSON",
               "not valid UTF-8");
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"name\": \"\xc0\xaf\"}",
               "not valid UTF-8", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"name\": \"x\\u0000y\"}",
               "invalid JSON", "\\u0000");
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"name\": \"\\ud800\"}",
               "invalid JSON", NULL);
    expect_bad("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"name\": \"\\x\"}", "invalid JSON",
               NULL);
    expect_bad("{'model': 'mlp'}", "invalid JSON", NULL);
    {
        /* An embedded NUL does not end the text early. */
        const char t[] = "{\"model\": \"mlp\", \"dataset\": \"mnist\"}\0garbage";
        CHECK_EQ_INT(jobspec_parse(&s, t, sizeof(t) - 1, err), SAT_EINVAL);
        CHECK_STR_CONTAINS(err, "control character");
        /* Only len bytes are read: a prefix of a longer buffer parses. */
        const char u[] = "{\"model\": \"mlp\", \"dataset\": \"mnist\"}xyz";
        CHECK_EQ_INT(jobspec_parse(&s, u, sizeof(u) - 4, err), 0);
    }
    /* Deep nesting is refused, not a stack overflow. */
    {
        size_t n = 20000;
        char *deep = sat_malloc(2 * n + 32);
        int k = snprintf(deep, 32, "{\"name\": ");
        memset(deep + k, '[', n);
        memset(deep + k + n, ']', n);
        memcpy(deep + k + 2 * n, "}", 2);
        CHECK_EQ_INT(jobspec_parse(&s, deep, strlen(deep), err), SAT_EINVAL);
        CHECK_STR_CONTAINS(err, "invalid JSON");
        sat_free(deep);
    }
    /* Over SPEC_MAX_JSON bytes: SAT_ETOOBIG before any parsing. */
    {
        size_t n = SPEC_MAX_JSON + 1;
        char *huge = sat_malloc(n);
        memset(huge, ' ', n);
        huge[0] = '{';
        huge[n - 1] = '}';
        CHECK_EQ_INT(jobspec_parse(&s, huge, n, err), SAT_ETOOBIG);
        CHECK_STR_CONTAINS(err, "65537 bytes is more than the limit of 65536");
        /* Exactly the limit is fine (and fails only for missing fields). */
        huge[n - 2] = '}';
        CHECK_EQ_INT(jobspec_parse(&s, huge, n - 1, err), SAT_EINVAL);
        CHECK_STR_CONTAINS(err, "field \"model\" is required");
        sat_free(huge);
    }
}

static void test_set(void)
{
    struct job_spec s, before;
    jobspec_defaults(&s);
    CHECK_EQ_INT(jobspec_set(&s, "model", "cnn-small", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "dataset", "synthetic", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "wbits", "4", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "consistency", "ssp:2", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "augment", "false", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "lr", "0.02", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "lr", "2e-2", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "seed", "9007199254740992", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "priority", "-5", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "sat", "off", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "name", "flags only", err), 0);
    CHECK_EQ_INT(jobspec_validate(&s, err), 0);
    CHECK(strcmp(s.model, "cnn-small") == 0);
    CHECK_EQ_INT(s.wbits, 4);
    CHECK_EQ_INT(s.first_wbits, 8);
    CHECK_EQ_INT(s.consistency, CONS_SSP);
    CHECK_EQ_INT(s.staleness, 2);
    CHECK(!s.augment);
    CHECK(s.lr == 0.02f);
    CHECK(s.seed == (1ULL << 53));
    CHECK_EQ_INT(s.priority, -5);
    CHECK_EQ_INT(s.sat, SAT_OFF);
    CHECK_EQ_INT(jobspec_set(&s, "consistency", "asp", err), 0);
    CHECK_EQ_INT(s.staleness, 0);
    CHECK_EQ_INT(jobspec_set(&s, "name", s.name, err), 0); /* aliasing its own field */
    CHECK(strcmp(s.name, "flags only") == 0);

    /* Refusals: same messages as the parser, and s is left unchanged. */
    before = s;
    struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"epochs", "4.5", "field \"epochs\": expected an integer, got \"4.5\""},
        {"epochs", "ten", "field \"epochs\": expected an integer, got \"ten\""},
        {"epochs", "", "field \"epochs\": expected an integer, got \"\""},
        {"epochs", " 5", "expected an integer"},
        {"epochs", "0", "field \"epochs\": 0 is out of range (1..10000)"},
        {"epochs", "99999999999999999999",
         "field \"epochs\": 99999999999999999999 is out of "
         "range (1..10000)"},
        {"seed", "9007199254740993", "field \"seed\": 9007199254740993 is out of range (0..2^53)"},
        {"seed", "-1", "field \"seed\": -1 is out of range"},
        {"wbits", "9", "field \"wbits\": 9 is out of range (2..8 or 32)"},
        {"lr", "nan", "field \"lr\": expected a number, got \"nan\""},
        {"lr", "inf", "field \"lr\": expected a number, got \"inf\""},
        {"lr", "0x1p3", "expected a number"},
        {"lr", "1e999", "field \"lr\": 1e999 is out of range (0, 100]"},
        {"lr", "1.2.3", "expected a number"},
        {"momentum", "1", "field \"momentum\": 1 is out of range [0, 1)"},
        {"augment", "yes", "field \"augment\": expected true or false, got \"yes\""},
        {"augment", "1", "expected true or false"},
        {"model", "resnet", "field \"model\": unknown model \"resnet\""},
        {"model", "", "field \"model\" is required"},
        {"dataset", "svhn", "unknown data set \"svhn\""},
        {"sat", "some", "field \"sat\": unknown value \"some\" (expected off, last or all)"},
        {"consistency", "ssp:0", "staleness 0 in \"ssp:0\" is out of range (1..1000)"},
        {"consistency", "ssp:", "unknown value \"ssp:\""},
        {"lrate", "0.1", "unknown field \"lrate\" (did you mean \"lr\"?)"},
        {"nesterov_", "true", "did you mean \"nesterov\"?"},
        {"", "1", "unknown field \"\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ_INT(jobspec_set(&s, bad[i].key, bad[i].value, err), SAT_EINVAL);
        CHECK_STR_CONTAINS(err, bad[i].needle);
        CHECK(memcmp(&s, &before, sizeof(s)) == 0);
    }
    char longname[100];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    CHECK_EQ_INT(jobspec_set(&s, "name", longname, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"name\": too long (64 bytes; at most 63)");
    CHECK_EQ_INT(jobspec_set(&s, "name", "bad\xff", err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"name\": not valid UTF-8");
    CHECK_EQ_INT(jobspec_set(&s, NULL, "1", err), SAT_EINVAL);

    /* validate catches what a direct assignment broke. */
    struct job_spec t = before;
    t.epochs = 0;
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"epochs\": 0 is out of range (1..10000)");
    t = before;
    t.sat = (enum sat_mode)7;
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"sat\": invalid value 7");
    t = before;
    t.consistency = CONS_BSP;
    t.staleness = 4;
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"consistency\": staleness 4 given with bsp");
    t = before;
    t.consistency = CONS_SSP;
    t.staleness = 0;
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"consistency\": staleness 0");
    t = before;
    memset(t.name, 'x', sizeof(t.name));
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"name\": not NUL-terminated");
    t = before;
    t.lr = NAN;
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"lr\": nan is out of range");
    t = before;
    t.seed = (1ULL << 53) + 1;
    CHECK_EQ_INT(jobspec_validate(&t, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "field \"seed\"");
}

/* to_json -> parse gives the same values, and to_json of that is the same text. */
static void check_round_trip(const struct job_spec *s)
{
    char *a = jobspec_to_json(s);
    CHECK(a != NULL);
    if (!a)
        return;
    struct job_spec r;
    int rc = jobspec_parse(&r, a, strlen(a), err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n  in:\n%s", err, a);
    CHECK(same_values(s, &r));
    CHECK(r.given != 0);
    char *b = jobspec_to_json(&r);
    CHECK(b && strcmp(a, b) == 0);
    sat_free(a);
    sat_free(b);
}

static void test_to_json(void)
{
    struct job_spec s;
    CHECK_EQ_INT(parse(&s, full_spec), 0);
    check_round_trip(&s);
    CHECK_EQ_INT(parse(&s, "{\"model\": \"mlp\", \"dataset\": \"mnist\"}"), 0);
    check_round_trip(&s);

    /* The canonical text: fixed order, shortest floats, escaped strings. */
    char *j = jobspec_to_json(&s);
    const char *head = "{\n  \"name\": \"\",\n  \"model\": \"mlp\",\n";
    CHECK(j && strncmp(j, head, strlen(head)) == 0);
    CHECK_STR_CONTAINS(j, "\n  \"lr\": 0.1,\n");
    CHECK_STR_CONTAINS(j, "\n  \"weight_decay\": 0.0001,\n");
    CHECK_STR_CONTAINS(j, "\n  \"consistency\": \"bsp\",\n");
    CHECK_STR_CONTAINS(
        j, "\n  \"sweep\": \"\",\n  \"priority\": 0,\n  \"recover_timeout_s\": 600\n}\n");
    CHECK_STR_CONTAINS(j, "\n  \"alpha_init\": \"fixed\",\n  \"alpha_percentile\": 99.9,\n");
    sat_free(j);

    /* Many combinations through the setter, each round-tripped. */
    const char *const vals[][2] = {
        {"name", "a \"quoted\" \\ name \xe2\x82\xac"},
        {"wbits", "2"},
        {"abits", "8"},
        {"lr", "0.0123456789"},
        {"lr", "100"},
        {"lr", "1e-30"},
        {"momentum", "0.99999"},
        {"momentum", "0"},
        {"weight_decay", "3.3e-5"},
        {"alpha_init_conv", "1000"},
        {"alpha_init_fc", "1e-7"},
        {"warmup_epochs", "0.333333333"},
        {"seed", "0"},
        {"seed", "123456789012345"},
        {"consistency", "ssp:1000"},
        {"consistency", "asp"},
        {"train_limit", "2147483647"},
        {"priority", "-1000"},
        {"data_dir", "/tmp/d\xc3\xa9j\xc3\xa0"},
        {"sat_fan", "out"},
        {"act_quant", "pact"},
        {"clamp", "true"},
        {"nesterov", "false"},
        {"alpha_init", "calibrate"},
        {"alpha_percentile", "99.99"},
        {"alpha_percentile", "100"},
        {"sweep", "sw-20261125.a_B-9"},
    };
    jobspec_defaults(&s);
    CHECK_EQ_INT(jobspec_set(&s, "model", "mobilenetv2", err), 0);
    CHECK_EQ_INT(jobspec_set(&s, "dataset", "cifar10", err), 0);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        CHECK_EQ_INT(jobspec_set(&s, vals[i][0], vals[i][1], err), 0);
        CHECK_EQ_INT(jobspec_validate(&s, err), 0);
        check_round_trip(&s);
    }

    /* Allocation failures: NULL, never a crash or a leak. */
    for (long k = 0; k < 64; k++) {
        sat_alloc_fail_after(k);
        char *t = jobspec_to_json(&s);
        sat_alloc_fail_after(-1);
        sat_free(t);
        if (t)
            break;
    }
}

static void test_load(const char *dir)
{
    char path[512];
    struct job_spec s;
    snprintf(path, sizeof(path), "%s/good.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(full_spec, f);
    fclose(f);
    CHECK_EQ_INT(jobspec_load(&s, path, err), 0);
    CHECK_EQ_INT(s.workers, 4);

    snprintf(path, sizeof(path), "%s/bad.json", dir);
    f = fopen(path, "w");
    fputs("{\"model\": \"mlp\", \"dataset\": \"mnist\", \"wbits\": 9}", f);
    fclose(f);
    CHECK_EQ_INT(jobspec_load(&s, path, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "spec: ");
    CHECK_STR_CONTAINS(err, "/bad.json: field \"wbits\": 9 is out of range (2..8 or 32)");

    snprintf(path, sizeof(path), "%s/huge.json", dir);
    f = fopen(path, "w");
    for (int i = 0; i < SPEC_MAX_JSON + 10; i++)
        fputc(' ', f);
    fclose(f);
    CHECK_EQ_INT(jobspec_load(&s, path, err), SAT_ETOOBIG);
    CHECK_STR_CONTAINS(err, "huge.json");

    snprintf(path, sizeof(path), "%s/missing.json", dir);
    CHECK_EQ_INT(jobspec_load(&s, path, err), SAT_ENOENT);
    CHECK_STR_CONTAINS(err, "missing.json");
    CHECK_EQ_INT(jobspec_load(&s, dir, err), SAT_EIO); /* a directory */

    snprintf(path, sizeof(path), "%s/good.json", dir);
    sat_alloc_fail_after(0);
    int rc = jobspec_load(&s, path, err);
    sat_alloc_fail_after(-1);
    CHECK_EQ_INT(rc, SAT_ENOMEM);
}

/* Every byte of a full spec replaced by a few values: parsed or refused
 * with a message, never a crash. */
static void test_mutations(void)
{
    size_t len = strlen(full_spec);
    char *m = sat_malloc(len);
    const char vals[] = {'\0', '"', '0', '9', '.', '-', '}', ' ', 'e', '\\', (char)0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t v = 0; v < sizeof(vals); v++) {
            struct job_spec s;
            memcpy(m, full_spec, len);
            m[i] = vals[v];
            err[0] = '\0';
            int rc = jobspec_parse(&s, m, len, err);
            CHECK(rc == 0 || (rc == SAT_EINVAL && strncmp(err, "spec: ", 6) == 0));
        }
    }
    sat_free(m);
}

/* docs/jobspec.md must contain the table generated from the field table. */
static void test_docs(const char *doc_path)
{
    char *table = jobspec_doc_table();
    CHECK(table != NULL);
    FILE *f = fopen(doc_path, "r");
    CHECK(f != NULL);
    if (!f || !table) {
        sat_free(table);
        return;
    }
    char *doc = sat_malloc(1 << 20);
    size_t n = fread(doc, 1, (1 << 20) - 1, f);
    doc[n] = '\0';
    fclose(f);
    CHECK(strstr(doc, table) != NULL);
    if (!strstr(doc, table))
        fprintf(stderr, "  %s is out of date; the table should read:\n%s", doc_path, table);
    /* Every field is documented and the table has one row per field. */
    int rows = 0;
    for (const char *p = table; (p = strstr(p, "\n| `")); p++)
        rows++;
    CHECK_EQ_INT(rows, 35);
    sat_free(doc);
    sat_free(table);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-doc-table") == 0) {
        char *t = jobspec_doc_table();
        fputs(t ? t : "", stdout);
        sat_free(t);
        return t ? 0 : 1;
    }
    test_full();
    test_defaults();
    test_errors();
    test_set();
    test_to_json();
    test_mutations();
    char dir[] = "/tmp/sat-jobspec-XXXXXX";
    if (mkdtemp(dir)) {
        test_load(dir);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        CHECK_EQ_INT(system(cmd), 0);
    } else {
        CHECK(!"mkdtemp");
    }
    if (argc > 1)
        test_docs(argv[1]);
    else
        CHECK(!"usage: test_jobspec DOCS/jobspec.md");
    return check_summary("jobspec");
}
