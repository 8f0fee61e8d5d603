/* test_rpc_wire.c - rpc_msg_decode (common/rpc/rpc_wire.c), which walks a
 * received message in place over gRPC's slices and copies its long bytes
 * fields once.
 *
 * Checks, each on messages cut into slices at every position: a decoded
 * message is the one protobuf-c decodes from the same bytes (compared by
 * packing both); bytes fields land in the caller's memory only when they
 * have its length and the whole message is valid; a repeated bytes field
 * keeps the last value; every prefix of a valid message either decodes as
 * protobuf-c decodes it or is refused; malformed framing (truncated,
 * overlong, past the end, field 0, unsupported or wrong wire types) is
 * refused with the reason, without reading past the message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "check.h"
#include "rpc/rpc.h"
#include "saturn.pb-c.h"
#include "util/err.h"

#define PD (&saturn__v1__push_request__descriptor)

/* A byte buffer of msg[0..n) in slices cut at cut[0] < cut[1] < ... */
static grpc_byte_buffer *chain(const uint8_t *msg, size_t n, const size_t *cut, int ncut)
{
    grpc_slice s[8];
    size_t at = 0;
    int k = 0;
    for (int i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cut[i] : n;
        s[k++] = grpc_slice_from_copied_buffer((const char *)msg + at, end - at);
        at = end;
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(s, (size_t)k);
    for (int i = 0; i < k; i++)
        grpc_slice_unref(s[i]);
    return bb;
}

/* Packs m into a new buffer (*len bytes); the caller frees it. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, p);
    return p;
}

/* 1 when a and b pack to the same bytes. */
static int same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na, nb;
    uint8_t *pa = pack(a, &na), *pb = pack(b, &nb);
    int eq = na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

/* Decodes msg cut at cut[] with lift_min 1 and compares with protobuf-c:
 * both refuse, or both decode to the same message. Returns the decode's
 * code; why gets the reason. */
static int differential(const uint8_t *msg, size_t n, const size_t *cut, int ncut,
                        char why[SAT_ERR_LEN])
{
    ProtobufCMessage *ref = protobuf_c_message_unpack(PD, NULL, n, msg), *m = NULL;
    grpc_byte_buffer *bb = chain(msg, n, cut, ncut);
    int rc = rpc_msg_decode(bb, PD, 1, NULL, &m, why);
    grpc_byte_buffer_destroy(bb);
    CHECK_EQ_INT(rc == 0, ref != NULL);
    CHECK_EQ_INT(m != NULL, rc == 0);
    if (m && ref && !same(m, ref)) {
        CHECK(!"decoded message differs from protobuf-c's");
        fprintf(stderr, "  %zu bytes, %d cuts\n", n, ncut);
    }
    rpc_msg_free(m);
    if (ref)
        protobuf_c_message_free_unpacked(ref, NULL);
    return rc;
}

/* Every one- and two-cut split of msg decodes as protobuf-c does. */
static void every_split(const uint8_t *msg, size_t n)
{
    char why[SAT_ERR_LEN];
    differential(msg, n, NULL, 0, why);
    for (size_t a = 0; a <= n; a++) {
        size_t c1[1] = {a};
        differential(msg, n, c1, 1, why);
        for (size_t b = a; b <= n; b += 3) {
            size_t c2[2] = {a, b};
            differential(msg, n, c2, 2, why);
        }
    }
}

/* A push with a gradient of n floats 0.5, 1.5, ... and BN statistics. */
static uint8_t *push_bytes(size_t nfloat, size_t *len, float *grad)
{
    float bn[3] = {1, 2, 3};
    for (size_t i = 0; i < nfloat; i++)
        grad[i] = (float)i + 0.5f;
    Saturn__V1__PushRequest r = SATURN__V1__PUSH_REQUEST__INIT;
    r.job_id = "job-1";
    r.shard = 1;
    r.rank = 2;
    r.step = 300;
    r.gradient.data = (uint8_t *)grad;
    r.gradient.len = nfloat * sizeof(float);
    r.batch_size = 64;
    r.bn_stats.data = (uint8_t *)bn;
    r.bn_stats.len = sizeof bn;
    r.attempt = 3;
    return pack(&r.base, len);
}

static void check_valid(void)
{
    float grad[6];
    size_t n;
    uint8_t *msg = push_bytes(6, &n, grad);
    every_split(msg, n);
    /* Every prefix: refused, or (on a field boundary) protobuf-c's message. */
    char why[SAT_ERR_LEN];
    for (size_t k = 0; k < n; k++) {
        size_t cut[1] = {k / 2};
        differential(msg, k, cut, 1, why);
    }
    free(msg);
}

/* A long gradient is read in place and lands in the caller's memory. */
static void check_land(void)
{
    enum { N = 4096 };
    static float grad[N], dst[N];
    size_t n;
    uint8_t *msg = push_bytes(N, &n, grad);
    size_t cut[3] = {7, 5000, n - 9};
    grpc_byte_buffer *bb = chain(msg, n, cut, 3);
    char why[SAT_ERR_LEN];
    ProtobufCMessage *m = NULL;
    struct rpc_land land = {.field = 5, .dst = dst, .len = sizeof dst};
    CHECK_EQ_INT(rpc_msg_decode(bb, PD, RPC_LIFT_MIN, &land, &m, why), 0);
    CHECK(land.landed);
    CHECK(memcmp(dst, grad, sizeof dst) == 0);
    const Saturn__V1__PushRequest *r = (const Saturn__V1__PushRequest *)m;
    CHECK(r && r->gradient.len == 0 && r->gradient.data == NULL);
    CHECK(r && r->step == 300 && r->bn_stats.len == 12 && strcmp(r->job_id, "job-1") == 0);
    rpc_msg_free(m);

    /* Another length: the field is the message's, and dst is untouched. */
    memset(dst, 0, sizeof dst);
    land = (struct rpc_land){.field = 5, .dst = dst, .len = sizeof dst - 4};
    CHECK_EQ_INT(rpc_msg_decode(bb, PD, RPC_LIFT_MIN, &land, &m, why), 0);
    CHECK(!land.landed);
    r = (const Saturn__V1__PushRequest *)m;
    CHECK(r && r->gradient.len == sizeof grad && memcmp(r->gradient.data, grad, sizeof grad) == 0);
    CHECK(dst[0] == 0 && dst[N - 1] == 0);
    rpc_msg_free(m);
    grpc_byte_buffer_destroy(bb);

    /* A valid gradient in a message that is invalid elsewhere (job_id as a
     * varint): refused, and dst is not written. */
    uint8_t *bad = malloc(n + 2);
    memcpy(bad, msg, n);
    bad[n] = 0x08; /* field 1, wire type 0 */
    bad[n + 1] = 0x01;
    bb = chain(bad, n + 2, cut, 3);
    land = (struct rpc_land){.field = 5, .dst = dst, .len = sizeof dst};
    CHECK_EQ_INT(rpc_msg_decode(bb, PD, RPC_LIFT_MIN, &land, &m, why), SAT_EFORMAT);
    CHECK(m == NULL && !land.landed && dst[N - 1] == 0);
    CHECK_STR_CONTAINS(why, "not a valid");
    grpc_byte_buffer_destroy(bb);
    free(bad);
    free(msg);
}

/* A bytes field given twice keeps the last value, as in protobuf-c. */
static void check_repeated_field(void)
{
    static const uint8_t msg[] = {0x2a, 0x02, 'a', 'b', 0x10, 0x01, 0x2a, 0x03, 'c', 'd', 'e'};
    char why[SAT_ERR_LEN];
    every_split(msg, sizeof msg);
    ProtobufCMessage *m = NULL;
    grpc_byte_buffer *bb = chain(msg, sizeof msg, NULL, 0);
    CHECK_EQ_INT(rpc_msg_decode(bb, PD, 1, NULL, &m, why), 0);
    const Saturn__V1__PushRequest *r = (const Saturn__V1__PushRequest *)m;
    CHECK(r && r->gradient.len == 3 && memcmp(r->gradient.data, "cde", 3) == 0);
    rpc_msg_free(m);
    grpc_byte_buffer_destroy(bb);
}

struct bad_case {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    const char *why; /* expected in the reason */
};

/* Malformed framing: refused with the reason, at every split. */
static void check_malformed(void)
{
    static const uint8_t trunc_tag[] = {0x10, 0x01, 0x80};
    static const uint8_t field0[] = {0x07, 0x01};
    static const uint8_t long_tag[] = {0xa8, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t long_varint[] = {0x10, 0x80, 0x80, 0x80, 0x80, 0x80,
                                          0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t trunc_varint[] = {0x20, 0xff, 0xff};
    static const uint8_t past_end[] = {0x2a, 0x64, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    static const uint8_t huge_len[] = {0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0};
    static const uint8_t long_len[] = {0x2a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t group[] = {0x2b, 0x2c};
    static const uint8_t wt6[] = {0x2e, 0x00};
    static const uint8_t wt7[] = {0x0f};
    static const uint8_t trunc_fixed64[] = {0x49, 1, 2, 3};
    static const uint8_t trunc_fixed32[] = {0x4d, 1, 2, 3};
    static const uint8_t bytes_as_varint[] = {0x28, 0x05};
    static const uint8_t bytes_as_fixed32[] = {0x2d, 1, 2, 3, 4};
    static const struct bad_case cases[] = {
        {"truncated tag", trunc_tag, sizeof trunc_tag, "truncated"},
        {"field 0", field0, sizeof field0, "field number 0"},
        {"overlong tag", long_tag, sizeof long_tag, "overlong field tag"},
        {"overlong varint", long_varint, sizeof long_varint, "overlong varint"},
        {"truncated varint", trunc_varint, sizeof trunc_varint, "truncated"},
        {"length past the end", past_end, sizeof past_end, "runs past the end"},
        {"length above INT_MAX", huge_len, sizeof huge_len, "too large"},
        {"overlong length", long_len, sizeof long_len, "overlong length"},
        {"group", group, sizeof group, "wire type 3"},
        {"wire type 6", wt6, sizeof wt6, "wire type 6"},
        {"wire type 7", wt7, sizeof wt7, "wire type 7"},
        {"truncated fixed64", trunc_fixed64, sizeof trunc_fixed64, "truncated 8-byte"},
        {"truncated fixed32", trunc_fixed32, sizeof trunc_fixed32, "truncated 4-byte"},
        {"bytes field as a varint", bytes_as_varint, sizeof bytes_as_varint, "not a valid"},
        {"bytes field as fixed32", bytes_as_fixed32, sizeof bytes_as_fixed32, "not a valid"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *b = &cases[i];
        char why[SAT_ERR_LEN];
        for (size_t a = 0; a <= b->len; a++) {
            size_t cut[1] = {a};
            int rc = differential(b->bytes, b->len, cut, 1, why);
            if (rc != SAT_EFORMAT)
                fprintf(stderr, "  case \"%s\" cut at %zu: rc %d\n", b->name, a, rc);
            CHECK_EQ_INT(rc, SAT_EFORMAT);
            CHECK_STR_CONTAINS(why, b->why);
        }
    }
}

int main(void)
{
    grpc_init();
    check_valid();
    check_land();
    check_repeated_field();
    check_malformed();
    grpc_shutdown();
    return check_summary("rpc_wire");
}
