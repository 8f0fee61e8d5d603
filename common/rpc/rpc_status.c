/* rpc_status.c - the one place where Saturn's error codes meet gRPC's
 * status codes, in both directions. The CLI maps statuses on to process exit
 * codes in its own single place (client/exitcodes.c). */
#include "rpc.h"

#include <grpc/grpc.h>

void rpc_init(void)
{
    grpc_init();
}

void rpc_shutdown(void)
{
    grpc_shutdown();
}

grpc_status_code rpc_status_from_err(int sat_err)
{
    switch (sat_err) {
    case SAT_OK:
        return GRPC_STATUS_OK;
    case SAT_EINVAL:
    case SAT_EFORMAT:
    case SAT_ERANGE:
    case SAT_ESHAPE:
    case SAT_ENAN:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case SAT_ENOENT:
        return GRPC_STATUS_NOT_FOUND;
    case SAT_EEXIST:
        return GRPC_STATUS_ALREADY_EXISTS;
    case SAT_ESTATE:
        return GRPC_STATUS_FAILED_PRECONDITION;
    case SAT_ETOOBIG:
    case SAT_ENOMEM:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case SAT_EAUTH:
        return GRPC_STATUS_UNAUTHENTICATED;
    case SAT_ETIMEOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case SAT_EUNAVAIL:
        return GRPC_STATUS_UNAVAILABLE;
    case SAT_ECANCELLED:
        return GRPC_STATUS_CANCELLED;
    case SAT_EIO:
    case SAT_EINTERNAL:
    default:
        return GRPC_STATUS_INTERNAL;
    }
}

int rpc_err_from_status(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return SAT_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return SAT_EINVAL;
    case GRPC_STATUS_NOT_FOUND:
        return SAT_ENOENT;
    case GRPC_STATUS_ALREADY_EXISTS:
        return SAT_EEXIST;
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_ABORTED:
        return SAT_ESTATE;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return SAT_ETOOBIG;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        return SAT_EAUTH;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return SAT_ETIMEOUT;
    case GRPC_STATUS_UNAVAILABLE:
        return SAT_EUNAVAIL;
    case GRPC_STATUS_CANCELLED:
        return SAT_ECANCELLED;
    default: /* UNKNOWN, UNIMPLEMENTED, INTERNAL, DATA_LOSS */
        return SAT_EINTERNAL;
    }
}

const char *rpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((int)code >= 0 && (size_t)code < sizeof names / sizeof names[0])
        return names[code];
    return "UNKNOWN";
}
