/* strbuf.c - a growable byte string with a hard cap (see strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

void strbuf_init(struct strbuf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void strbuf_free(struct strbuf *b)
{
    sat_free(b->p);
    strbuf_init(b, b->max);
}

/* Makes room for `extra` more bytes plus the NUL; sets the sticky error
 * and returns it when that would pass the cap or cannot be allocated. */
static int reserve(struct strbuf *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (extra > b->max - b->len) {
        b->err = SAT_ETOOBIG;
        return b->err;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = sat_realloc(b->p, cap);
    if (!p) {
        b->err = SAT_ENOMEM;
        return b->err;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void strbuf_add(struct strbuf *b, const void *data, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void strbuf_puts(struct strbuf *b, const char *s)
{
    strbuf_add(b, s, strlen(s));
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    if (b->err)
        return;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = SAT_EINVAL;
        return;
    }
    if ((size_t)n < sizeof small) {
        strbuf_add(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int strbuf_error(const struct strbuf *b)
{
    return b->err;
}

char *strbuf_steal(struct strbuf *b, size_t *len)
{
    if (!b->p && reserve(b, 0) == 0)
        b->p[0] = 0;
    char *p = b->p;
    if (len)
        *len = p ? b->len : 0;
    size_t max = b->max;
    memset(b, 0, sizeof *b);
    b->max = max;
    return p;
}
