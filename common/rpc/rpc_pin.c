/* rpc_pin.c - sending a message whose long bytes fields stay in the
 * caller's memory (rpc.h, struct rpc_hold).
 *
 * The other fields are packed into one small slice; each long bytes field
 * follows as its own header and a slice that points at the caller's bytes,
 * so the only copy of them is the kernel's. Protobuf readers accept fields
 * in any order, so moving these fields to the end changes nothing for the
 * receiver. Each such slice holds a reference on the hold; the sender waits
 * until gRPC has dropped them all before the memory may change again (or
 * is told by the hold's release).
 */
#include "rpc_int.h"

#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "../util/xalloc.h"

#define PIN_MAX_FIELDS 4 /* long bytes fields sent in place; more are packed */
#define PIN_POLL_MS 1    /* how long each wait for gRPC's references polls */

static void hold_drop(void *arg)
{
    struct rpc_hold *h = arg;
    if (atomic_fetch_sub(&h->refs, 1) == 1 && h->release)
        h->release(h);
}

/* Writes v as a varint at p; returns its length (at most 10). */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* The fields of d sent in place: singular bytes fields of m at least
 * lift_min long. Returns how many went into f[]. */
static int pinned_fields(const ProtobufCMessage *m, size_t lift_min,
                         const ProtobufCFieldDescriptor *f[PIN_MAX_FIELDS])
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int n = 0;
    for (unsigned i = 0; i < d->n_fields && n < PIN_MAX_FIELDS; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_BYTES || fd->label != PROTOBUF_C_LABEL_NONE ||
            (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        const ProtobufCBinaryData *b =
            (const ProtobufCBinaryData *)(const void *)((const char *)m + fd->offset);
        if (b->len >= lift_min && b->len > 0)
            f[n++] = fd;
    }
    return n;
}

/* Packs m without the fields f[0..n) into a new slice with room for the
 * first field's header (written by the caller). */
static grpc_slice pack_rest(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *const *f,
                            int n, size_t *len)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    ProtobufCMessage *rest = sat_malloc(d->sizeof_message);
    if (!rest)
        return grpc_empty_slice();
    memcpy(rest, m, d->sizeof_message); /* shallow: nested data is shared */
    for (int i = 0; i < n; i++)
        memset((char *)rest + f[i]->offset, 0, sizeof(ProtobufCBinaryData));
    *len = protobuf_c_message_get_packed_size(rest);
    grpc_slice s = grpc_slice_malloc_large(*len + 20);
    protobuf_c_message_pack(rest, GRPC_SLICE_START_PTR(s));
    sat_free(rest);
    return s;
}

/* Writes the tag and length of bytes field fd (len bytes) at p. */
static size_t put_header(uint8_t *p, const ProtobufCFieldDescriptor *fd, size_t len)
{
    size_t n = put_varint(p, ((uint64_t)fd->id << 3) | 2);
    return n + put_varint(p + n, len);
}

grpc_byte_buffer *rpc__msg_pack_held(const ProtobufCMessage *m, size_t lift_min, struct rpc_hold *h)
{
    const ProtobufCFieldDescriptor *f[PIN_MAX_FIELDS];
    int n = pinned_fields(m, lift_min, f);
    if (n == 0)
        return rpc_msg_pack(m);
    size_t len;
    grpc_slice first = pack_rest(m, f, n, &len);
    if (GRPC_SLICE_IS_EMPTY(first))
        return NULL;
    grpc_slice s[1 + 2 * PIN_MAX_FIELDS];
    int k = 0;
    for (int i = 0; i < n; i++) {
        const ProtobufCBinaryData *b =
            (const ProtobufCBinaryData *)(const void *)((const char *)m + f[i]->offset);
        if (i == 0) {
            len += put_header(GRPC_SLICE_START_PTR(first) + len, f[i], b->len);
            s[k++] = grpc_slice_sub(first, 0, len);
            grpc_slice_unref(first);
        } else {
            uint8_t hdr[20];
            s[k++] =
                grpc_slice_from_copied_buffer((const char *)hdr, put_header(hdr, f[i], b->len));
        }
        atomic_fetch_add(&h->refs, 1);
        s[k++] = grpc_slice_new_with_user_data(b->data, b->len, hold_drop, h);
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(s, (size_t)k);
    for (int i = 0; i < k; i++)
        grpc_slice_unref(s[i]);
    return bb;
}

void rpc__hold_wait(struct rpc_hold *h, grpc_completion_queue *cq)
{
    /* Polling the queue (for a tag that never comes) lets gRPC finish the
     * writes that still hold references. */
    while (atomic_load(&h->refs) > 0) {
        gpr_timespec t = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                      gpr_time_from_millis(PIN_POLL_MS, GPR_TIMESPAN));
        grpc_completion_queue_pluck(cq, h, t, NULL);
    }
}
