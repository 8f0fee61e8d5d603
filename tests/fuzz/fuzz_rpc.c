/* fuzz_rpc.c - fuzz target: the decode-and-validate path of every RPC
 * request. The first input byte picks a request type from the table below,
 * the rest is its wire bytes. They go through rpc_msg_unpack from a gRPC
 * byte buffer, as saturnd receives them; a message that decodes must pack
 * (to bytes that, when they decode, pack to the same bytes again) and then
 * goes through the table's validator, if the request type has one.
 *
 * The same bytes, cut into three slices, also go through rpc_msg_decode
 * with every bytes field read in place (lift_min 1): it must refuse what
 * protobuf-c refuses and otherwise give the message protobuf-c gives.
 *
 * To fuzz a new validator, put it in its request's row: it gets the
 * decoded request and returns 0 or SAT_E* with a message in err (a
 * validator from server/ also needs its library in the 'rpc' row of
 * tests/fuzz/meson.build). On the first input the table is checked
 * against the services' method lists, so a request type added to the
 * .proto without a row here fails at once.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>

#include "health.pb-c.h"
#include "rpc/rpc.h"
#include "saturn.pb-c.h"

typedef int (*fuzz_validate_fn)(const ProtobufCMessage *req, char err[SAT_ERR_LEN]);

static int validate_submit(const ProtobufCMessage *req, char err[SAT_ERR_LEN])
{
    const Saturn__V1__SubmitJobRequest *r = (const Saturn__V1__SubmitJobRequest *)req;
    return fuzz_spec_check(r->spec_json, strlen(r->spec_json), err);
}

static const struct fuzz_rpc_row {
    const ProtobufCMessageDescriptor *desc;
    fuzz_validate_fn validate; /* NULL: decoding is all there is to check */
} requests[] = {
    {&saturn__v1__submit_job_request__descriptor, validate_submit},
    {&saturn__v1__get_job_request__descriptor, NULL},
    {&saturn__v1__list_jobs_request__descriptor, NULL},
    {&saturn__v1__cancel_job_request__descriptor, NULL},
    {&saturn__v1__watch_job_request__descriptor, NULL},
    {&saturn__v1__list_workers_request__descriptor, NULL},
    {&saturn__v1__drain_worker_request__descriptor, NULL},
    {&saturn__v1__export_model_request__descriptor, NULL},
    {&saturn__v1__register_request__descriptor, NULL},
    {&saturn__v1__heartbeat_request__descriptor, NULL},
    {&saturn__v1__ack_assignment_request__descriptor, NULL},
    {&saturn__v1__leave_request__descriptor, NULL},
    {&saturn__v1__fetch_data_request__descriptor, NULL},
    {&saturn__v1__report_metrics_request__descriptor, NULL},
    {&saturn__v1__get_layout_request__descriptor, NULL},
    {&saturn__v1__pull_request__descriptor, NULL},
    {&saturn__v1__push_request__descriptor, NULL},
    {&grpc__health__v1__health_check_request__descriptor, NULL},
};
#define NREQUESTS (sizeof requests / sizeof requests[0])

/* Every method of every service takes a request type that has a row. */
static void table_check(void)
{
    static const ProtobufCServiceDescriptor *const services[] = {
        &saturn__v1__client__descriptor, &saturn__v1__worker__descriptor,
        &saturn__v1__parameter_server__descriptor, &grpc__health__v1__health__descriptor};
    for (size_t s = 0; s < sizeof services / sizeof services[0]; s++) {
        for (unsigned m = 0; m < services[s]->n_methods; m++) {
            const ProtobufCMessageDescriptor *in = services[s]->methods[m].input;
            size_t i = 0;
            while (i < NREQUESTS && requests[i].desc != in)
                i++;
            if (i == NREQUESTS)
                fuzz_fail("%s.%s takes %s, which has no row in fuzz_rpc.c", services[s]->name,
                          services[s]->methods[m].name, in->name);
        }
    }
}

/* Packs m into a new buffer (*len bytes); the caller frees it. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len ? *len : 1);
    if (!p)
        fuzz_fail("out of memory");
    if (protobuf_c_message_pack(m, p) != *len)
        fuzz_fail("%s: packed size disagrees", m->descriptor->name);
    return p;
}

/* 1 when a and b pack to the same bytes. */
static int same_packing(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na, nb;
    uint8_t *pa = pack(a, &na), *pb = pack(b, &nb);
    int eq = na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

/* rpc_msg_decode with every bytes field read in place, over msg cut into
 * three slices, against protobuf-c on the flat bytes. */
static void decode_in_place(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t n)
{
    grpc_slice s[3];
    size_t cut[4] = {0, n / 3, n - n / 3, n};
    for (int i = 0; i < 3; i++)
        s[i] = grpc_slice_from_copied_buffer((const char *)msg + cut[i], cut[i + 1] - cut[i]);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(s, 3);
    for (int i = 0; i < 3; i++)
        grpc_slice_unref(s[i]);
    ProtobufCMessage *m = NULL, *ref = protobuf_c_message_unpack(d, NULL, n, msg);
    char why[SAT_ERR_LEN];
    int rc = rpc_msg_decode(bb, d, 1, NULL, &m, why);
    grpc_byte_buffer_destroy(bb);
    if ((rc == 0) != (ref != NULL))
        fuzz_fail("%s: rpc_msg_decode %s what protobuf-c %s (%s)", d->name,
                  rc == 0 ? "accepts" : "refuses", ref ? "accepts" : "refuses", why);
    if (rc != 0 && m)
        fuzz_fail("a failed decode returned a message");
    if (m && ref && !same_packing(m, ref))
        fuzz_fail("%s: rpc_msg_decode and protobuf-c decode different messages", d->name);
    if (rc != 0)
        fuzz_check_err(why, rc);
    rpc_msg_free(m);
    if (ref)
        protobuf_c_message_free_unpacked(ref, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int checked;
    if (!checked) {
        table_check();
        checked = 1;
    }
    if (size < 1)
        return 0;
    const struct fuzz_rpc_row *row = &requests[data[0] % NREQUESTS];
    decode_in_place(row->desc, data + 1, size - 1);
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data + 1, size - 1);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    ProtobufCMessage *m = NULL;
    int rc = rpc_msg_unpack(bb, row->desc, &m);
    grpc_byte_buffer_destroy(bb);
    if (rc != 0) {
        if (m)
            fuzz_fail("a failed unpack returned a message");
        return 0;
    }

    size_t n1, n2;
    uint8_t *p1 = pack(m, &n1);
    /* Decoding the packed bytes may fail: protobuf-c keeps an unknown field
     * whose number 0 came as an overlong varint (81 00), packs it as 01 and
     * then refuses that. Nothing of ours repacks requests, so only the
     * messages that do decode again are held to a stable packing. */
    ProtobufCMessage *m2 = protobuf_c_message_unpack(row->desc, NULL, n1, p1);
    if (m2) {
        uint8_t *p2 = pack(m2, &n2);
        if (n1 != n2 || memcmp(p1, p2, n1) != 0)
            fuzz_fail("%s: packing is not stable (%zu then %zu bytes)", row->desc->name, n1, n2);
        protobuf_c_message_free_unpacked(m2, NULL);
        free(p2);
    }
    free(p1);

    if (row->validate) {
        char err[SAT_ERR_LEN];
        err[0] = 0;
        rc = row->validate(m, err);
        if (rc != 0)
            fuzz_check_err(err, rc);
    }
    rpc_msg_free(m);
    return 0;
}
