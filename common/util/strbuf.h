/* strbuf.h - a growable byte string with a hard cap.
 *
 * Built for rendering text (HTTP pages, exposition formats) with many small
 * appends: errors are sticky, so a renderer appends freely and checks once
 * at the end with strbuf_error(). Past the cap given to strbuf_init, or on
 * an allocation failure, the buffer stops growing, keeps what it had, and
 * every later append is a no-op (curl's dynbuf, minus the free-on-error).
 *
 * The contents are always NUL-terminated once anything was appended; the
 * NUL is not counted in len. Loop thread or single owner: no locking.
 */
#ifndef SATURN_STRBUF_H
#define SATURN_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *p;    /* (cap) owned; NULL until the first append */
    size_t len; /* bytes in use, without the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len */
    int err;    /* 0, SAT_ENOMEM or SAT_ETOOBIG: sticky */
};

/* An empty buffer that may grow to `max` bytes. Allocates nothing. */
void strbuf_init(struct strbuf *b, size_t max);
/* Frees the contents; the buffer is empty (and usable) again. */
void strbuf_free(struct strbuf *b);
/* Appends n bytes / a C string / a formatted string. */
void strbuf_add(struct strbuf *b, const void *data, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0, or the first error met (SAT_ENOMEM, SAT_ETOOBIG). */
int strbuf_error(const struct strbuf *b);
/* Hands the contents (NUL-terminated, never NULL unless out of memory) to
 * the caller, who frees them with sat_free; *len (if not NULL) is their
 * length. The buffer is empty afterwards. */
char *strbuf_steal(struct strbuf *b, size_t *len);

#endif
