/* test_safetensors.c - the safetensors reader and writer: bit-exact round
 * trips, metadata, atomic writes, every truncation of a small file, corrupt
 * headers and offsets, writer refusals, allocation failures, and (when
 * /usr/bin/python3 exists) a header that Python's json module reads. */
#include "check.h"
#include "ckpt/safetensors.h"
#include "util/file.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[SAT_ERR_LEN];
static char dir[] = "/tmp/sat-st-XXXXXX";

static const char *in_dir(const char *name)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

/* Reads a whole file into a new buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = sat_malloc((size_t)n);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* A file image: 8-byte length of hdr, hdr, then dlen bytes of data. */
static unsigned char *image(const char *hdr, const void *data, size_t dlen, size_t *len)
{
    uint64_t h = strlen(hdr);
    *len = 8 + h + dlen;
    unsigned char *b = sat_malloc(*len);
    memcpy(b, &h, 8);
    memcpy(b + 8, hdr, h);
    if (dlen)
        memcpy(b + 8 + h, data, dlen);
    return b;
}

/* Expects the image of hdr + dlen zero bytes to be refused with a message
 * containing needle. */
static void expect_bad_header(const char *hdr, size_t dlen, const char *needle)
{
    static unsigned char zeros[256];
    size_t len;
    unsigned char *b = image(hdr, zeros, dlen, &len);
    struct st_file *f = (struct st_file *)1;
    err[0] = '\0';
    int rc = st_open_mem(&f, b, len, err);
    CHECK_EQ_INT(rc, SAT_EFORMAT);
    CHECK(f == NULL);
    CHECK_STR_CONTAINS(err, "safetensors: (buffer): ");
    CHECK_STR_CONTAINS(err, needle);
    if (rc != SAT_EFORMAT || !strstr(err, needle))
        fprintf(stderr, "  for header: %s\n", hdr);
    if (rc == 0)
        st_close(f);
    sat_free(b);
}

static void expect_good_header(const char *hdr, const void *data, size_t dlen, int n)
{
    size_t len;
    unsigned char *b = image(hdr, data, dlen, &len);
    struct st_file *f = NULL;
    int rc = st_open_mem(&f, b, len, err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n  for header: %s\n", err, hdr);
    CHECK_EQ_INT(st_count(f), n);
    st_close(f);
    sat_free(b);
}

/* ==== Round trips ==== */

struct fixture {
    float f32[6];
    double f64[3];
    int8_t i8[5];
    uint8_t u8[8];
    int16_t i16[7];
    int32_t i32[1];
    int64_t i64[4];
    float scalar;
    struct st_tensor t[10];
    struct st_meta meta[4];
};

static void fixture_init(struct fixture *x)
{
    uint32_t bits[6] = {0x7fc00001u, 0x80000000u, 0x7f800000u, 0x00000001u,
                        0x3f800000u, 0xff7fffffu}; /* NaN payload, -0, inf, denormal, 1, -max */
    memcpy(x->f32, bits, sizeof(bits));
    x->f64[0] = M_PI;
    x->f64[1] = -1e-310;
    x->f64[2] = 1e308;
    for (int i = 0; i < 5; i++)
        x->i8[i] = (int8_t)(i * 50 - 128);
    for (int i = 0; i < 8; i++)
        x->u8[i] = (uint8_t)(255 - i);
    for (int i = 0; i < 7; i++)
        x->i16[i] = (int16_t)(i * 9000 - 32768);
    x->i32[0] = INT32_MIN;
    x->i64[0] = INT64_MIN;
    x->i64[1] = INT64_MAX;
    x->i64[2] = -1;
    x->i64[3] = 0x0123456789abcdefLL;
    x->scalar = 2.5f;
    struct st_tensor t[10] = {
        {"layer.0.weight", ST_F32, 2, {2, 3}, x->f32},
        {"f64", ST_F64, 1, {3}, x->f64},
        {"codes \"quoted\" \\ \xc3\xa9", ST_I8, 1, {5}, x->i8}, /* 5 bytes: what follows is odd */
        {"u8.cube", ST_U8, 3, {2, 2, 2}, x->u8},
        {"i16", ST_I16, 1, {7}, x->i16},
        {"i32.8d", ST_I32, 8, {1, 1, 1, 1, 1, 1, 1, 1}, x->i32},
        {"i64", ST_I64, 2, {2, 2}, x->i64},
        {"scalar", ST_F32, 0, {0}, &x->scalar},
        {"empty", ST_F32, 2, {0, 4}, NULL},
        {"empty.too", ST_I64, 1, {0}, NULL},
    };
    memcpy(x->t, t, sizeof(t));
    struct st_meta m[4] = {
        {"saturn.format", "saturn-ckpt-1"},
        {"saturn.spec", "{\n  \"model\": \"mlp\"\n}\n"},
        {"empty", ""},
        {"unicode \xe2\x82\xac", "tab\there, control \x01"},
    };
    memcpy(x->meta, m, sizeof(m));
}

static void check_same(const struct st_file *f, const struct fixture *x)
{
    CHECK_EQ_INT(st_count(f), 10);
    for (int i = 0; i < 10 && i < st_count(f); i++) {
        const struct st_tensor *a = st_get(f, i), *e = &x->t[i];
        CHECK(strcmp(a->name, e->name) == 0); /* file order is write order */
        CHECK_EQ_INT(a->dtype, e->dtype);
        CHECK_EQ_INT(a->ndim, e->ndim);
        size_t n = 1;
        for (int d = 0; d < e->ndim; d++) {
            CHECK_EQ_INT(a->shape[d], e->shape[d]);
            n *= (size_t)e->shape[d];
        }
        size_t bytes = n * st_dtype_size(e->dtype);
        CHECK(a->data != NULL);
        CHECK_EQ_INT((uintptr_t)a->data % st_dtype_size(a->dtype), 0);
        if (bytes)
            CHECK(memcmp(a->data, e->data, bytes) == 0);
        CHECK(st_find(f, e->name) == a);
    }
    CHECK(st_get(f, 10) == NULL && st_get(f, -1) == NULL);
    CHECK(st_find(f, "nope") == NULL);
    CHECK(st_find(f, "") == NULL);
    for (int i = 0; i < 4; i++) {
        const char *v = st_meta_get(f, x->meta[i].key);
        CHECK(v && strcmp(v, x->meta[i].value) == 0);
    }
    CHECK(st_meta_get(f, "missing") == NULL);
}

static int count_tmp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_round_trip(void)
{
    struct fixture x;
    fixture_init(&x);
    const char *path = in_dir("rt.safetensors");
    CHECK_EQ_INT(st_write(path, x.t, 10, x.meta, 4, err), 0);
    CHECK_EQ_INT(count_tmp_files(), 0);

    struct st_file *f = NULL;
    CHECK_EQ_INT(st_open(&f, path, err), 0);
    if (f)
        check_same(f, &x);
    st_close(f);

    /* The same bytes through st_open_mem; the buffer is copied. */
    size_t len;
    unsigned char *b = slurp(path, &len);
    f = NULL;
    CHECK_EQ_INT(st_open_mem(&f, b, len, err), 0);
    memset(b, 0xAA, len);
    if (f)
        check_same(f, &x);
    st_close(f);
    sat_free(b);

    /* Layout: header length a multiple of 8, data right after it. */
    b = slurp(path, &len);
    uint64_t h;
    memcpy(&h, b, 8);
    CHECK_EQ_INT(h % 8, 0);
    CHECK(b[8] == '{');
    CHECK(memcmp(b + 8 + h, x.f32, sizeof(x.f32)) == 0);
    sat_free(b);

    /* Overwriting replaces the file; no temporary file stays behind. */
    CHECK_EQ_INT(st_write(path, x.t, 1, NULL, 0, err), 0);
    f = NULL;
    CHECK_EQ_INT(st_open(&f, path, err), 0);
    CHECK_EQ_INT(st_count(f), 1);
    CHECK(st_meta_get(f, "saturn.format") == NULL);
    st_close(f);
    CHECK_EQ_INT(count_tmp_files(), 0);

    /* A write that fails after the header leaves the old file whole. */
    sat_file_fail_writes_after(2);
    CHECK_EQ_INT(st_write(path, x.t, 2, NULL, 0, err), SAT_EIO);
    sat_file_fail_writes_after(-1);
    CHECK_STR_CONTAINS(err, "rt.safetensors");
    f = NULL;
    CHECK_EQ_INT(st_open(&f, path, err), 0);
    CHECK_EQ_INT(st_count(f), 1);
    st_close(f);
    CHECK_EQ_INT(count_tmp_files(), 0);

    /* No tensors, no metadata: "{}" padded. */
    CHECK_EQ_INT(st_write(in_dir("empty.safetensors"), NULL, 0, NULL, 0, err), 0);
    f = NULL;
    CHECK_EQ_INT(st_open(&f, in_dir("empty.safetensors"), err), 0);
    CHECK_EQ_INT(st_count(f), 0);
    st_close(f);
    /* Metadata only. */
    CHECK_EQ_INT(st_write(in_dir("meta.safetensors"), NULL, 0, x.meta, 2, err), 0);
    f = NULL;
    CHECK_EQ_INT(st_open(&f, in_dir("meta.safetensors"), err), 0);
    CHECK(st_meta_get(f, "saturn.format") && st_count(f) == 0);
    st_close(f);

    /* A relative path (directory fsync on "."). */
    char cwd[512];
    if (getcwd(cwd, sizeof(cwd)) && chdir(dir) == 0) {
        CHECK_EQ_INT(st_write("relative.safetensors", x.t, 2, NULL, 0, err), 0);
        CHECK(access("relative.safetensors", R_OK) == 0);
        CHECK_EQ_INT(chdir(cwd), 0);
    }

    /* A directory that does not exist: an error, and nothing left behind. */
    CHECK(st_write(in_dir("no/such/dir.safetensors"), x.t, 2, NULL, 0, err) < 0);
    CHECK_STR_CONTAINS(err, "no/such/dir.safetensors");
    CHECK_EQ_INT(count_tmp_files(), 0);
}

/* The header parses with Python's json module, offsets tile the data. */
static void test_python(void)
{
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "test_safetensors: no /usr/bin/python3, skipping the Python check\n");
        return;
    }
    struct fixture x;
    fixture_init(&x);
    const char *path = in_dir("py.safetensors");
    CHECK_EQ_INT(st_write(path, x.t, 10, x.meta, 4, err), 0);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -c '\n"
             "import json, os, struct, sys\n"
             "p = sys.argv[1]\n"
             "b = open(p, \"rb\").read()\n"
             "(n,) = struct.unpack(\"<Q\", b[:8])\n"
             "assert n %% 8 == 0\n"
             "h = json.loads(b[8:8 + n].decode(\"utf-8\"))\n"
             "m = h.pop(\"__metadata__\")\n"
             "assert m[\"saturn.format\"] == \"saturn-ckpt-1\", m\n"
             "assert m[\"unicode \\u20ac\"] == \"tab\\there, control \\x01\"\n"
             "sizes = dict(F32=4, F64=8, I8=1, U8=1, I16=2, I32=4, I64=8)\n"
             "pos = 0\n"
             "for k, v in sorted(h.items(), key=lambda kv: kv[1][\"data_offsets\"]):\n"
             "    s, e = v[\"data_offsets\"]\n"
             "    assert s == pos, (k, s, pos)\n"
             "    c = sizes[v[\"dtype\"]]\n"
             "    for d in v[\"shape\"]: c *= d\n"
             "    assert e - s == c, k\n"
             "    pos = e\n"
             "assert pos == len(b) - 8 - n\n"
             "assert \"codes \\\"quoted\\\" \\\\ \\u00e9\" in h, list(h)\n"
             "assert h[\"scalar\"][\"shape\"] == []\n"
             "' '%s'",
             path);
    CHECK_EQ_INT(system(cmd), 0);
}

/* ==== Refusals ==== */

static void test_truncation(void)
{
    struct fixture x;
    fixture_init(&x);
    const char *path = in_dir("small.safetensors");
    CHECK_EQ_INT(st_write(path, x.t, 3, x.meta, 1, err), 0);
    size_t len;
    unsigned char *b = slurp(path, &len);
    for (size_t n = 0; n < len; n++) {
        struct st_file *f = NULL;
        unsigned char *cut = sat_malloc(n ? n : 1); /* exact size, so ASan sees any overread */
        memcpy(cut, b, n);
        int rc = st_open_mem(&f, cut, n, err);
        CHECK_EQ_INT(rc, SAT_EFORMAT);
        CHECK(f == NULL);
        st_close(f);
        sat_free(cut);
    }
    /* The whole file is fine, and so is st_open on disk; truncated on disk is not. */
    struct st_file *f = NULL;
    CHECK_EQ_INT(st_open_mem(&f, b, len, err), 0);
    st_close(f);
    size_t cuts[] = {0, 1, 7, 8, 9, 20, len / 2, len - 8, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        FILE *w = fopen(path, "wb");
        CHECK(w && fwrite(b, 1, len, w) == len);
        if (w)
            fclose(w);
        CHECK_EQ_INT(truncate(path, (off_t)cuts[i]), 0);
        f = NULL;
        err[0] = '\0';
        CHECK_EQ_INT(st_open(&f, path, err), SAT_EFORMAT);
        CHECK_STR_CONTAINS(err, "small.safetensors");
        CHECK(f == NULL);
    }
    CHECK_STR_CONTAINS(err, "truncated?");
    sat_free(b);
}

static void test_bad_headers(void)
{
    uint64_t h;
    size_t len;
    unsigned char *b;
    struct st_file *f;

    /* Header lengths. */
    unsigned char small[16] = {0};
    h = (uint64_t)ST_MAX_HEADER + 1;
    memcpy(small, &h, 8);
    f = NULL;
    CHECK_EQ_INT(st_open_mem(&f, small, sizeof(small), err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "over the limit");
    h = UINT64_MAX;
    memcpy(small, &h, 8);
    CHECK_EQ_INT(st_open_mem(&f, small, sizeof(small), err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "header length 18446744073709551615 is over the limit");
    h = 9;
    memcpy(small, &h, 8);
    CHECK_EQ_INT(st_open_mem(&f, small, sizeof(small), err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "header length 9 runs past the end of the file (16 bytes");
    h = 0;
    memcpy(small, &h, 8);
    CHECK_EQ_INT(st_open_mem(&f, small, sizeof(small), err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "header does not start with '{'");
    CHECK_EQ_INT(st_open_mem(&f, small, 3, err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "3 bytes, too short for the 8-byte header length");
    CHECK_EQ_INT(st_open_mem(&f, NULL, 0, err), SAT_EFORMAT);

    /* A header length that stops inside the JSON. */
    b = image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1, &len);
    h = 10;
    memcpy(b, &h, 8);
    CHECK_EQ_INT(st_open_mem(&f, b, len, err), SAT_EFORMAT);
    CHECK_STR_CONTAINS(err, "not valid JSON");
    sat_free(b);

    /* JSON. */
    expect_bad_header("{abc}", 0, "header is not valid JSON at byte");
    expect_bad_header("[]      ", 0, "does not start with '{'");
    expect_bad_header(" {}     ", 0, "does not start with '{'");
    expect_bad_header("{} x    ", 0, "unexpected text after the JSON value");
    expect_bad_header("{}\x01      ", 0, "control character");
    expect_bad_header("{\"\xff\":1}", 0, "not valid UTF-8");
    expect_bad_header("{\"a\\u0000b\":{}}", 0, "\\u0000");
    expect_bad_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 1,
                      "malformed number");

    /* Entries. */
    expect_bad_header("{\"a\":[]}", 0, "tensor \"a\": expected an object, got an array");
    expect_bad_header("{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
                      "tensor \"a\": unsupported dtype \"BF16\" (F32, F64, I8, U8, I16, I32, I64)");
    expect_bad_header("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      "unsupported dtype \"f32\"");
    expect_bad_header("{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      "unsupported dtype \"(not a string)\"");
    expect_bad_header("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      "tensor \"a\" has no \"dtype\"");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "has no \"shape\"");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "has no \"data_offsets\"");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
                      "\"data_offsets\":[0,4]}}",
                      4, "tensor \"a\": key \"dtype\" given twice");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
                      "tensor \"a\": unknown key \"x\"");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
                      "shape must be an array");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                      "\"data_offsets\":[0,4]}}",
                      4, "shape must be an array of at most 8 integers");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                      "shape entries must be integers");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                      "shape entries must be integers");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                      "shape entries must be integers");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4,
                      "shape entries must be integers");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[9007199254740992,9007199254740992],"
                      "\"data_offsets\":[0,4]}}",
                      4, "tensor \"a\": shape too large");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                      "tensor \"a\": its shape and dtype make 8 bytes but data_offsets span 4");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                      "data_offsets must be [begin, end] with 0 <= begin <= end");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                      "data_offsets must be");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
                      "data_offsets must be");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                      "data_offsets must be");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4,
                      "data_offsets must be");

    /* Offsets as a whole. */
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", 8,
                      "tensors need 100 data bytes but the file has 8 (truncated?)");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                      12, "tensor \"b\" at offset 4 overlaps the one before it (ending at 8)");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                      12, "tensor \"b\" at offset 8 leaves a hole after offset 4");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                      "tensor \"a\" at offset 4 leaves a hole after offset 0");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
                      "tensors cover 8 data bytes but the file has 16");
    expect_bad_header("{}", 4, "tensors cover 0 data bytes but the file has 4");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                      16, "tensor \"a\" appears twice");

    /* Metadata. */
    expect_bad_header("{\"__metadata__\":{\"k\":1}}", 0,
                      "metadata \"k\": expected a string, got a number");
    expect_bad_header("{\"__metadata__\":{\"k\":null}}", 0, "expected a string, got null");
    expect_bad_header("{\"__metadata__\":[]}", 0, "__metadata__ must be an object, got an array");
    expect_bad_header("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ given twice");
    expect_bad_header("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                      "metadata key \"k\" given twice");

    /* Valid files from other writers: any JSON order, padding, misaligned tensors. */
    expect_good_header("{}", NULL, 0, 0);
    expect_good_header("{}      ", NULL, 0, 0);
    expect_good_header("{ \"__metadata__\" : { } }\n\t", NULL, 0, 0);
    expect_good_header("{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
                       "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
                       "abcd", 4, 2);
    expect_good_header("{\"e\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]},"
                       "\"z\":{\"dtype\":\"F64\",\"shape\":[3,0],\"data_offsets\":[0,0]}}",
                       NULL, 0, 2);
    {
        /* I8[3] then F32[2] at offset 3: read back aligned and intact; file order by offset. */
        unsigned char data[11] = {1, 2, 3};
        float v[2] = {1.5f, -2.25f};
        memcpy(data + 3, v, 8);
        b = image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]},"
                  "\"c\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[0,3]}}",
                  data, sizeof(data), &len);
        f = NULL;
        CHECK_EQ_INT(st_open_mem(&f, b, len, err), 0);
        const struct st_tensor *w = st_find(f, "w");
        CHECK(w && (uintptr_t)w->data % 4 == 0);
        CHECK(w && memcmp(w->data, v, 8) == 0);
        CHECK(st_get(f, 0) && strcmp(st_get(f, 0)->name, "c") == 0);
        CHECK(st_get(f, 1) == w);
        st_close(f);
        sat_free(b);
    }
}

static void test_write_refusals(void)
{
    float v[4] = {0};
    struct st_tensor t[2] = {{"a", ST_F32, 1, {4}, v}, {"b", ST_F32, 1, {4}, v}};
    const char *path = in_dir("refused.safetensors");
    struct {
        struct st_tensor t0;
        const char *needle;
    } bad[] = {
        {{NULL, ST_F32, 1, {4}, v}, "tensor 0 has no name"},
        {{"b", ST_F32, 1, {4}, v}, "tensor name \"b\" given twice"},
        {{"__metadata__", ST_F32, 1, {4}, v}, "\"__metadata__\" cannot name a tensor"},
        {{"bad\xff", ST_F32, 1, {4}, v}, "is not UTF-8"},
        {{"a", (enum st_dtype)7, 1, {4}, v}, "tensor \"a\": invalid dtype 7"},
        {{"a", ST_F32, 9, {4}, v}, "tensor \"a\": ndim 9 is out of range (0..8)"},
        {{"a", ST_F32, -1, {4}, v}, "ndim -1 is out of range"},
        {{"a", ST_F32, 1, {-4}, v}, "tensor \"a\": dimension 0 is -4"},
        {{"a", ST_F32, 1, {4}, NULL}, "tensor \"a\" has no data"},
        {{"a", ST_F64, 2, {1LL << 40, 1LL << 40}, v}, "tensor \"a\" is too large"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct st_tensor x[2] = {bad[i].t0, t[1]};
        err[0] = '\0';
        CHECK(st_write(path, x, 2, NULL, 0, err) < 0);
        CHECK_STR_CONTAINS(err, "refused.safetensors");
        CHECK_STR_CONTAINS(err, bad[i].needle);
    }
    struct st_meta m[2] = {{"k", "1"}, {"k", "2"}};
    CHECK_EQ_INT(st_write(path, t, 2, m, 2, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "metadata key \"k\" given twice");
    m[1].key = NULL;
    CHECK_EQ_INT(st_write(path, t, 2, m, 2, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "metadata entry 1 has no key");
    m[1].key = "j";
    m[1].value = "\xc3";
    CHECK_EQ_INT(st_write(path, t, 2, m, 2, err), SAT_EINVAL);
    CHECK_STR_CONTAINS(err, "metadata \"j\" is not UTF-8");
    CHECK_EQ_INT(st_write(NULL, t, 2, NULL, 0, err), SAT_EINVAL);
    CHECK_EQ_INT(st_write(path, NULL, 2, NULL, 0, err), SAT_EINVAL);
    CHECK_EQ_INT(st_write(path, t, -1, NULL, 0, err), SAT_EINVAL);
    CHECK(access(path, F_OK) != 0); /* nothing was written */
    CHECK_EQ_INT(count_tmp_files(), 0);

    /* A header over ST_MAX_HEADER is refused rather than written unreadable. */
    char *big = sat_malloc(ST_MAX_HEADER + 16);
    memset(big, 'n', ST_MAX_HEADER + 15);
    big[ST_MAX_HEADER + 15] = '\0';
    struct st_tensor huge_name = {big, ST_U8, 0, {0}, "x"};
    CHECK_EQ_INT(st_write(path, &huge_name, 1, NULL, 0, err), SAT_ETOOBIG);
    CHECK_STR_CONTAINS(err, "header over the limit");
    sat_free(big);

    /* Reading what is not there, or not a file. */
    struct st_file *f = NULL;
    CHECK_EQ_INT(st_open(&f, in_dir("missing.safetensors"), err), SAT_ENOENT);
    CHECK_STR_CONTAINS(err, "missing.safetensors");
    CHECK_EQ_INT(st_open(&f, dir, err), SAT_EIO);
    CHECK_STR_CONTAINS(err, "not a regular file");

    CHECK_EQ_INT(st_dtype_size(ST_I16), 2);
    CHECK_EQ_INT(st_dtype_size((enum st_dtype)99), 0);
    CHECK(strcmp(st_dtype_name(ST_I64), "I64") == 0);
    CHECK(strcmp(st_dtype_name((enum st_dtype)99), "?") == 0);
    st_close(NULL);
    CHECK_EQ_INT(st_count(NULL), 0);
}

/* Every byte of a small file's length and header replaced by a few values:
 * refused or accepted, never a crash, and an accepted file's data readable. */
static void test_mutations(void)
{
    struct fixture x;
    fixture_init(&x);
    const char *path = in_dir("mut.safetensors");
    CHECK_EQ_INT(st_write(path, x.t, 4, x.meta, 1, err), 0);
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint64_t h;
    memcpy(&h, b, 8);
    const unsigned char vals[] = {0x00, '0', '9', '"', '{', ']', ',', 0xff};
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < 8 + h; i++) {
        for (size_t v = 0; v < sizeof(vals); v++) {
            unsigned char *m = sat_malloc(len);
            memcpy(m, b, len);
            m[i] = vals[v];
            struct st_file *f = NULL;
            int rc = st_open_mem(&f, m, len, err);
            CHECK(rc == 0 || rc == SAT_EFORMAT);
            if (rc == 0) {
                accepted++;
                unsigned sum = 0;
                for (int k = 0; k < st_count(f); k++) {
                    const struct st_tensor *t = st_get(f, k);
                    size_t n = st_dtype_size(t->dtype);
                    for (int d = 0; d < t->ndim; d++)
                        n *= (size_t)t->shape[d];
                    for (size_t j = 0; j < n; j++)
                        sum += ((const unsigned char *)t->data)[j];
                }
                (void)sum;
            } else {
                refused++;
            }
            st_close(f);
            sat_free(m);
        }
    }
    CHECK(refused > 0);
    sat_free(b);
}

/* Every allocation fails in turn: an error, never a crash or a leak. */
static void test_alloc_failures(void)
{
    struct fixture x;
    fixture_init(&x);
    const char *path = in_dir("oom.safetensors");
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        sat_alloc_fail_after(k);
        int rc = st_write(path, x.t, 10, x.meta, 4, err);
        sat_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == SAT_ENOMEM);
        ok = rc == 0;
    }
    CHECK(ok);
    CHECK_EQ_INT(count_tmp_files(), 0);
    size_t len;
    unsigned char *b = slurp(path, &len);
    ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        struct st_file *f = NULL;
        sat_alloc_fail_after(k);
        int rc = st_open_mem(&f, b, len, err);
        sat_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == SAT_ENOMEM);
        CHECK((rc == 0) == (f != NULL));
        ok = rc == 0;
        if (ok)
            check_same(f, &x);
        st_close(f);
    }
    CHECK(ok);
    ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        struct st_file *f = NULL;
        sat_alloc_fail_after(k);
        int rc = st_open(&f, path, err);
        sat_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == SAT_ENOMEM);
        if (rc != 0 && rc != SAT_ENOMEM)
            fprintf(stderr, "  k=%ld: %s\n", k, err);
        ok = rc == 0;
        st_close(f);
    }
    CHECK(ok);
    sat_free(b);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_python();
    test_truncation();
    test_bad_headers();
    test_write_refusals();
    test_mutations();
    test_alloc_failures();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ_INT(system(cmd), 0);
    return check_summary("safetensors");
}
