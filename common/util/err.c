/* err.c - names and messages of Saturn's error codes. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

const char *sat_err_name(int err)
{
    switch (err) {
    case SAT_OK:
        return "SAT_OK";
#define XX(code, msg)                                                                              \
    case SAT_E##code:                                                                              \
        return "SAT_E" #code;
        SAT_ERRNO_MAP(XX)
#undef XX
    default:
        return "SAT_EUNKNOWN";
    }
}

const char *sat_strerror(int err)
{
    switch (err) {
    case SAT_OK:
        return "success";
#define XX(code, msg)                                                                              \
    case SAT_E##code:                                                                              \
        return msg;
        SAT_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

int sat_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return SAT_OK;
    case ENOMEM:
        return SAT_ENOMEM;
    case ENOENT:
        return SAT_ENOENT;
    case EEXIST:
        return SAT_EEXIST;
    case EINVAL:
        return SAT_EINVAL;
    case ERANGE:
        return SAT_ERANGE;
    case EFBIG:
        return SAT_ETOOBIG;
    case ETIMEDOUT:
        return SAT_ETIMEOUT;
    default:
        return SAT_EIO;
    }
}

int sat_errf(char *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, SAT_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
