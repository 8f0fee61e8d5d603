/* rpc_strings.c - the string check every request passes before its handler
 * runs: proto3 strings must be valid UTF-8 (protobuf-c does not check it,
 * and strict peers cannot decode a reply that echoes a bad string), and
 * strings that are names, ids, reasons or keywords must hold no control
 * characters (they are shown on terminals, in logs and on the dashboard).
 * JSON documents (fields named spec_json) may hold JSON whitespace; the
 * spec parser refuses control characters inside its strings, and only the
 * canonical form it writes is ever stored or shown. */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include "../util/utf8.h"

#define RPC_CHECK_DEPTH 8 /* nested messages followed */

static bool json_field(const ProtobufCFieldDescriptor *f)
{
    return strcmp(f->name, "spec_json") == 0;
}

static int check_one(const char *s, const ProtobufCFieldDescriptor *f, const char *prefix,
                     char why[SAT_ERR_LEN])
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    const char *what = NULL;
    if (!sat_utf8_valid(s, n))
        what = "not valid UTF-8";
    else if (!json_field(f) && sat_utf8_has_ctl(s, n))
        what = "contains a control character";
    if (!what)
        return 0;
    return sat_errf(why, SAT_EINVAL, "field \"%s%s\": %s", prefix, f->name, what);
}

static int check_msg(const ProtobufCMessage *m, const char *prefix, int depth,
                     char why[SAT_ERR_LEN])
{
    if (!m || depth > RPC_CHECK_DEPTH)
        return 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        size_t count = 1;
        const void *const *vals = (const void *const *)(base + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)(base + f->quantifier_offset);
            vals = *(const void *const *const *)(base + f->offset);
        }
        for (size_t k = 0; k < count; k++) {
            int rc;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                rc = check_one(vals[k], f, prefix, why);
            } else {
                char sub[128];
                snprintf(sub, sizeof sub, "%s%s.", prefix, f->name);
                rc = check_msg(vals[k], sub, depth + 1, why);
            }
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int rpc_msg_check_strings(const ProtobufCMessage *m, char why[SAT_ERR_LEN])
{
    return check_msg(m, "", 0, why);
}
