/* rpc_util.c - bearer tokens, constant-time comparison, and protobuf-c
 * messages to gRPC byte buffers (decoding is in rpc_wire.c). */
#include "rpc_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "../util/xalloc.h"

/* protobuf-c allocates unpacked messages through our wrapper, so that the
 * fault-injection tests reach them too. */
static void *pb_alloc(void *ud, size_t n)
{
    (void)ud;
    return sat_malloc(n);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    sat_free(p);
}

ProtobufCAllocator rpc__pb_allocator = {.alloc = pb_alloc, .free = pb_free, .allocator_data = NULL};

void rpc_msg_free(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, &rpc__pb_allocator);
}

grpc_byte_buffer *rpc_msg_pack(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    /* Pack straight into a refcounted slice; the byte buffer takes its own
     * reference, so ours is dropped right after. (gRPC's allocator aborts
     * on failure rather than returning an empty slice.) */
    grpc_slice s = grpc_slice_malloc_large(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

int rpc_msg_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                   ProtobufCMessage **out)
{
    char why[SAT_ERR_LEN];
    return rpc_msg_decode(bb, d, RPC_LIFT_MIN, NULL, out, why);
}

int rpc_secret_equal(const void *presented, size_t plen, const void *expected, size_t elen)
{
    const unsigned char *p = presented, *e = expected;
    /* Walk the presented bytes only, reading the expected ones cyclically,
     * so that timing reveals neither the expected length nor the position
     * of the first difference. */
    unsigned diff = (unsigned)(plen != elen);
    if (elen == 0)
        return 0;
    for (size_t i = 0; i < plen; i++)
        diff |= (unsigned)(p[i] ^ e[i % elen]);
    return diff == 0;
}

int rpc_token_load(const char *path, char token[RPC_TOKEN_MAX], char err[SAT_ERR_LEN])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sat_errf(err, sat_err_from_errno(errno), "token file %s: %s", path, strerror(errno));
    char buf[RPC_TOKEN_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr)
        return sat_errf(err, SAT_EIO, "token file %s: read error", path);
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    else if (n >= RPC_TOKEN_MAX)
        return sat_errf(err, SAT_ETOOBIG, "token file %s: token longer than %d bytes", path,
                        RPC_TOKEN_MAX - 1);
    size_t len = strlen(buf);
    while (len && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = 0;
    if (len == 0)
        return sat_errf(err, SAT_EINVAL, "token file %s: empty token", path);
    if (len >= RPC_TOKEN_MAX)
        return sat_errf(err, SAT_ETOOBIG, "token file %s: token longer than %d bytes", path,
                        RPC_TOKEN_MAX - 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return sat_errf(err, SAT_EINVAL,
                            "token file %s: token must be printable ASCII without spaces", path);
    }
    memcpy(token, buf, len + 1);
    return 0;
}
