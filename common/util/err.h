/* err.h - Saturn's one error convention.
 *
 * Every fallible function returns int: 0 on success, a negative SAT_E* code on
 * failure. The codes, their names and their messages come from one X-macro
 * table, as libuv's UV_ERRNO_MAP does. Where a human needs the reason (spec
 * parsing, file formats, socket set-up) the caller also passes a
 * caller-owned `char err[SAT_ERR_LEN]` that the callee fills on failure.
 */
#ifndef SATURN_ERR_H
#define SATURN_ERR_H

#include <stddef.h>

#define SAT_ERR_LEN 256

#define SAT_ERRNO_MAP(XX)                                                                          \
    XX(NOMEM, "out of memory")                                                                     \
    XX(INVAL, "invalid argument")                                                                  \
    XX(IO, "input/output error")                                                                   \
    XX(NOENT, "no such file or object")                                                            \
    XX(FORMAT, "malformed or corrupt data")                                                        \
    XX(RANGE, "value out of range")                                                                \
    XX(SHAPE, "shape mismatch")                                                                    \
    XX(NAN, "non-finite value")                                                                    \
    XX(EXIST, "already exists")                                                                    \
    XX(STATE, "operation not valid in this state")                                                 \
    XX(TOOBIG, "object too large")                                                                 \
    XX(AUTH, "authentication failed")                                                              \
    XX(TIMEOUT, "timed out")                                                                       \
    XX(UNAVAIL, "peer unavailable")                                                                \
    XX(CANCELLED, "cancelled")                                                                     \
    XX(INTERNAL, "internal error")

enum sat_errno {
    SAT_OK = 0,
#define XX(code, msg) SAT_E##code,
    SAT__EFIRST = -1000,
    SAT_ERRNO_MAP(XX)
#undef XX
};

/* Returns the symbolic name ("SAT_EINVAL") of an error code; never NULL. */
const char *sat_err_name(int err);
/* Returns a short English message for an error code; never NULL. */
const char *sat_strerror(int err);
/* Maps an errno value to a SAT_E* code. */
int sat_err_from_errno(int e);

/* Formats a message into err (which may be NULL) and returns code, so that
 * failure paths read `return sat_errf(err, SAT_EINVAL, "bad %s", x);`. */
int sat_errf(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
