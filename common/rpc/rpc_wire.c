/* rpc_wire.c - decoding a received message without flattening it first.
 *
 * gRPC hands a received message over as a chain of slices (about 300 for
 * 16 MiB). protobuf-c needs contiguous input, so the plain way costs two
 * copies of every byte: the chain flattened into one slice, then each bytes
 * field copied out of it. Here the top-level fields are walked in place
 * over the chain. Each long bytes field (a "lifted" field: singular, at
 * least lift_min bytes) is cut out; the other fields, a few bytes, are
 * gathered and unpacked by protobuf-c, which checks them as it always
 * does; then each lifted field is copied once from the chain into its own
 * buffer, or into memory the caller names (struct rpc_land).
 *
 * The walk frames fields exactly as protobuf-c 1.4 does (tag: at most 5
 * bytes, field number not 0; varint: at most 10 bytes; length: at most 5
 * bytes and INT_MAX; wire types 0, 1, 2, 5 only) and refuses what it
 * refuses, saying why. A lifted field's number seen twice (the last would
 * win) falls back to the plain way, so the message is always the one
 * protobuf-c would decode from the same bytes.
 */
#include "rpc_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "../util/xalloc.h"

#define WIRE_MAX_SPANS (1u << 20) /* slices of one message; more is refused */
#define WIRE_MAX_LIFT 4           /* lifted fields per message */
#define WIRE_MAX_FIELDS 64        /* descriptors with more fields are not lifted */

/* ==== the chain of slices ================================================== */

struct span {
    const uint8_t *p;
    size_t n;
};

/* A received message as spans, in order; they point into the reader's
 * buffer and stay valid until wire_close. */
struct wire {
    grpc_byte_buffer_reader r;
    struct span *sp;
    size_t nsp, total;
};

/* A read position: span i, offset off in it, absolute position pos. */
struct cur {
    const struct wire *w;
    size_t i, off, pos;
};

static void wire_close(struct wire *w)
{
    sat_free(w->sp);
    grpc_byte_buffer_reader_destroy(&w->r);
}

/* Collects the spans of bb. Returns 0, SAT_EFORMAT (the reader refused the
 * buffer, or too many slices) or SAT_ENOMEM; on failure nothing is held. */
static int wire_open(struct wire *w, grpc_byte_buffer *bb)
{
    memset(w, 0, sizeof *w);
    if (!grpc_byte_buffer_reader_init(&w->r, bb))
        return SAT_EFORMAT;
    size_t cap = 0;
    grpc_slice *s;
    while (grpc_byte_buffer_reader_peek(&w->r, &s)) {
        if (w->nsp == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct span *n = ncap <= WIRE_MAX_SPANS ? sat_realloc(w->sp, ncap * sizeof *n) : NULL;
            if (!n) {
                wire_close(w);
                return ncap <= WIRE_MAX_SPANS ? SAT_ENOMEM : SAT_EFORMAT;
            }
            w->sp = n;
            cap = ncap;
        }
        w->sp[w->nsp].p = GRPC_SLICE_START_PTR(*s);
        w->sp[w->nsp].n = GRPC_SLICE_LENGTH(*s);
        w->total += w->sp[w->nsp].n;
        w->nsp++;
    }
    return 0;
}

/* Reads one byte; false at the end of the message. */
static bool cur_byte(struct cur *c, uint8_t *b)
{
    while (c->i < c->w->nsp && c->off == c->w->sp[c->i].n) {
        c->i++;
        c->off = 0;
    }
    if (c->i == c->w->nsp)
        return false;
    *b = c->w->sp[c->i].p[c->off++];
    c->pos++;
    return true;
}

/* Moves n bytes on, copying them to dst unless it is NULL. The caller has
 * checked that n bytes are left. */
static void cur_move(struct cur *c, size_t n, uint8_t *dst)
{
    c->pos += n;
    while (n > 0 && c->i < c->w->nsp) {
        size_t k = c->w->sp[c->i].n - c->off;
        if (k > n)
            k = n;
        if (dst) {
            memcpy(dst, c->w->sp[c->i].p + c->off, k);
            dst += k;
        }
        n -= k;
        c->off += k;
        if (c->off == c->w->sp[c->i].n) {
            c->i++;
            c->off = 0;
        }
    }
}

/* Copies bytes [pos, pos + n) of the message to dst. */
static void wire_copy(const struct wire *w, size_t pos, size_t n, uint8_t *dst)
{
    struct cur c = {.w = w};
    cur_move(&c, pos, NULL);
    cur_move(&c, n, dst);
}

/* ==== framing, as protobuf-c does it ======================================= */

/* A tag: at most 5 bytes, the first with a non-zero field number. */
static int read_tag(struct cur *c, uint32_t *field, unsigned *wt, char why[SAT_ERR_LEN])
{
    size_t at = c->pos;
    uint8_t b;
    if (!cur_byte(c, &b))
        return sat_errf(why, SAT_EFORMAT, "byte %zu: truncated field tag", at);
    if ((b & 0xf8) == 0)
        return sat_errf(why, SAT_EFORMAT, "byte %zu: field number 0", at);
    *wt = b & 7;
    uint32_t v = (b & 0x7f) >> 3;
    unsigned shift = 4;
    for (int k = 1; b & 0x80; k++) {
        if (k == 5 || !cur_byte(c, &b))
            return sat_errf(why, SAT_EFORMAT, "byte %zu: truncated or overlong field tag", at);
        v |= (uint32_t)(b & 0x7f) << shift;
        shift += 7;
    }
    *field = v;
    return 0;
}

/* A varint value: at most 10 bytes. */
static int skip_varint(struct cur *c, uint32_t field, char why[SAT_ERR_LEN])
{
    uint8_t b = 0x80;
    for (int k = 0; b & 0x80; k++)
        if (k == 10 || !cur_byte(c, &b))
            return sat_errf(why, SAT_EFORMAT, "field %u: truncated or overlong varint",
                            (unsigned)field);
    return 0;
}

/* A length prefix: at most 5 bytes, at most INT_MAX, and that many bytes
 * left in the message. */
static int read_len(struct cur *c, uint32_t field, size_t *len, char why[SAT_ERR_LEN])
{
    uint64_t v = 0;
    uint8_t b = 0x80;
    for (int k = 0; b & 0x80; k++) {
        if (k == 5 || !cur_byte(c, &b))
            return sat_errf(why, SAT_EFORMAT, "field %u: truncated or overlong length",
                            (unsigned)field);
        v |= (uint64_t)(b & 0x7f) << (7 * k);
    }
    if (v > INT_MAX)
        return sat_errf(why, SAT_EFORMAT, "field %u: length %llu is too large", (unsigned)field,
                        (unsigned long long)v);
    if (v > c->w->total - c->pos)
        return sat_errf(why, SAT_EFORMAT,
                        "field %u: length %llu runs past the end of the message (%zu bytes left)",
                        (unsigned)field, (unsigned long long)v, c->w->total - c->pos);
    *len = (size_t)v;
    return 0;
}

/* A fixed-size value of n bytes. */
static int skip_fixed(struct cur *c, uint32_t field, size_t n, char why[SAT_ERR_LEN])
{
    if (n > c->w->total - c->pos)
        return sat_errf(why, SAT_EFORMAT, "field %u: truncated %zu-byte value", (unsigned)field, n);
    cur_move(c, n, NULL);
    return 0;
}

/* ==== the walk ============================================================= */

/* A field cut out of the message: its tag starts at `start`, its bytes are
 * [data, data + len). */
struct lifted {
    const ProtobufCFieldDescriptor *fd;
    size_t start, data, len;
};

struct walk {
    size_t lift_min;
    struct lifted lift[WIRE_MAX_LIFT];
    int nlift;
    unsigned char seen[WIRE_MAX_FIELDS]; /* occurrences of each field of d */
    bool plain;                          /* decode the plain way */
};

/* A field that may be read in place: singular bytes without presence. */
static bool liftable(const ProtobufCFieldDescriptor *fd)
{
    return fd && fd->type == PROTOBUF_C_TYPE_BYTES && fd->label == PROTOBUF_C_LABEL_NONE &&
           !(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
}

/* A length-delimited field at [start, ...): lifted, or skipped. */
static int walk_bytes(struct cur *c, struct walk *k, const ProtobufCFieldDescriptor *fd,
                      uint32_t field, size_t start, char why[SAT_ERR_LEN])
{
    size_t len = 0;
    int rc = read_len(c, field, &len, why);
    if (rc != 0)
        return rc;
    if (liftable(fd) && len >= k->lift_min && len > 0) {
        if (k->nlift == WIRE_MAX_LIFT) {
            k->plain = true;
        } else {
            k->lift[k->nlift++] = (struct lifted){fd, start, c->pos, len};
        }
    }
    cur_move(c, len, NULL);
    return 0;
}

/* One top-level field. */
static int walk_field(struct cur *c, struct walk *k, const ProtobufCMessageDescriptor *d,
                      char why[SAT_ERR_LEN])
{
    size_t start = c->pos;
    uint32_t field = 0;
    unsigned wt = 0;
    int rc = read_tag(c, &field, &wt, why);
    if (rc != 0)
        return rc;
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, field);
    if (fd) {
        size_t idx = (size_t)(fd - d->fields);
        if (k->seen[idx] < 255)
            k->seen[idx]++;
    }
    switch (wt) {
    case 0:
        return skip_varint(c, field, why);
    case 1:
        return skip_fixed(c, field, 8, why);
    case 2:
        return walk_bytes(c, k, fd, field, start, why);
    case 5:
        return skip_fixed(c, field, 4, why);
    default:
        return sat_errf(why, SAT_EFORMAT, "field %u: wire type %u is not supported",
                        (unsigned)field, wt);
    }
}

/* Walks every top-level field; decides what is lifted. */
static int walk_message(const struct wire *w, struct walk *k, const ProtobufCMessageDescriptor *d,
                        char why[SAT_ERR_LEN])
{
    struct cur c = {.w = w};
    while (c.pos < w->total) {
        int rc = walk_field(&c, k, d, why);
        if (rc != 0)
            return rc;
    }
    for (int i = 0; i < k->nlift; i++)
        if (k->seen[k->lift[i].fd - d->fields] > 1)
            k->plain = true; /* the last occurrence wins: leave that to protobuf-c */
    return 0;
}

/* ==== decoding ============================================================= */

/* The plain way: flatten (one copy), then protobuf-c (a second copy of
 * each bytes field). */
static int decode_plain(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage **out, char why[SAT_ERR_LEN])
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return sat_errf(why, SAT_EFORMAT, "the message cannot be read");
    grpc_slice flat = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *out = protobuf_c_message_unpack(d, &rpc__pb_allocator, GRPC_SLICE_LENGTH(flat),
                                     GRPC_SLICE_START_PTR(flat));
    grpc_slice_unref(flat);
    if (!*out) /* protobuf-c does not tell bad bytes from OOM */
        return sat_errf(why, SAT_EFORMAT, "the bytes are not a valid %s message", d->name);
    return 0;
}

/* Unpacks everything but the lifted fields (k->lift, in message order). */
static int decode_rest(const struct wire *w, const struct walk *k,
                       const ProtobufCMessageDescriptor *d, ProtobufCMessage **out,
                       char why[SAT_ERR_LEN])
{
    size_t n = w->total;
    for (int i = 0; i < k->nlift; i++)
        n -= k->lift[i].data + k->lift[i].len - k->lift[i].start;
    uint8_t *rest = sat_malloc(n ? n : 1);
    if (!rest)
        return sat_errf(why, SAT_ENOMEM, "out of memory");
    size_t at = 0, got = 0;
    for (int i = 0; i <= k->nlift; i++) {
        size_t end = i < k->nlift ? k->lift[i].start : w->total;
        wire_copy(w, at, end - at, rest + got);
        got += end - at;
        if (i < k->nlift)
            at = k->lift[i].data + k->lift[i].len;
    }
    *out = protobuf_c_message_unpack(d, &rpc__pb_allocator, n, rest);
    sat_free(rest);
    if (!*out)
        return sat_errf(why, SAT_EFORMAT, "the bytes are not a valid %s message", d->name);
    return 0;
}

/* Copies each lifted field from the chain: into land->dst when it is the
 * field asked for (by land->choose, if set) with the length asked for,
 * else into a new buffer that the message owns (freed with it). */
static int fill_lifted(const struct wire *w, const struct walk *k, ProtobufCMessage *m,
                       struct rpc_land *land, char why[SAT_ERR_LEN])
{
    if (land && land->choose)
        land->choose(land, m, land->arg);
    for (int i = 0; i < k->nlift; i++) {
        const struct lifted *l = &k->lift[i];
        ProtobufCBinaryData *f = (ProtobufCBinaryData *)(void *)((char *)m + l->fd->offset);
        if (land && !land->landed && land->field == l->fd->id && land->len == l->len) {
            wire_copy(w, l->data, l->len, land->dst);
            land->landed = true;
            continue;
        }
        uint8_t *p = rpc__pb_allocator.alloc(NULL, l->len);
        if (!p)
            return sat_errf(why, SAT_ENOMEM, "out of memory");
        wire_copy(w, l->data, l->len, p);
        f->data = p;
        f->len = l->len;
    }
    return 0;
}

int rpc_msg_decode(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d, size_t lift_min,
                   struct rpc_land *land, ProtobufCMessage **out, char why[SAT_ERR_LEN])
{
    *out = NULL;
    why[0] = 0;
    if (land)
        land->landed = false;
    if (d->n_fields > WIRE_MAX_FIELDS)
        return decode_plain(bb, d, out, why);
    struct wire w;
    int rc = wire_open(&w, bb);
    if (rc != 0)
        return sat_errf(why, rc, rc == SAT_ENOMEM ? "out of memory" : "the message cannot be read");
    struct walk k = {.lift_min = lift_min ? lift_min : 1};
    rc = walk_message(&w, &k, d, why);
    if (rc == 0 && (k.nlift == 0 || k.plain)) {
        wire_close(&w);
        return decode_plain(bb, d, out, why);
    }
    if (rc == 0)
        rc = decode_rest(&w, &k, d, out, why);
    if (rc == 0)
        rc = fill_lifted(&w, &k, *out, land, why);
    wire_close(&w);
    if (rc != 0 && *out) {
        rpc_msg_free(*out);
        *out = NULL;
    }
    if (rc != 0 && land)
        land->landed = false;
    return rc;
}
