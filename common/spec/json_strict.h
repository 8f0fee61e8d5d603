/* json_strict.h - strict JSON intake and careful JSON output, shared by the
 * job spec (common/spec) and the safetensors header (common/ckpt).
 *
 * Public to libsaturn, since two modules use it. cJSON does the parsing;
 * json_strict_parse first refuses what cJSON would let through: text that is
 * not UTF-8, raw control characters, "\u0000" escapes (cJSON would silently
 * cut the string there), numbers outside JSON's grammar ("01", "1.", ".5")
 * and anything but whitespace after the value. Duplicate keys are left to the
 * callers, which walk the object's children anyway.
 */
#ifndef SATURN_JSON_STRICT_H
#define SATURN_JSON_STRICT_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses exactly `len` bytes of text as one JSON value. Returns the tree,
 * which the caller frees with cJSON_Delete, or NULL with *why set to a static
 * reason and *off to the byte offset of the problem (cJSON's offset is
 * approximate: where it stopped). */
cJSON *json_strict_parse(const char *text, size_t len, const char **why, size_t *off);

/* Line and column (1-based, in bytes) of byte `off` of text. */
void json_strict_locate(const char *text, size_t off, int *line, int *col);

/* "a string", "a number", "a boolean", "null", "an array" or "an object". */
const char *json_strict_type_name(const cJSON *item);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool json_strict_utf8_valid(const char *s, size_t n);

/* Writes a printable rendering of a user-supplied string into out (cap >= 8):
 * at most `max` bytes of it, bytes outside printable ASCII as '?', and "..."
 * when cut. For messages: a hostile key must not garble a log line. */
const char *json_strict_show(const char *s, size_t max, char *out, size_t cap);

/* A growable text buffer with a hard cap. Errors are sticky: after the first
 * failure every call does nothing and json_buf_take returns NULL, so a
 * writer checks once at the end. */
struct json_buf {
    char *p;      /* private */
    size_t len;   /* bytes written so far */
    size_t cap;   /* private */
    size_t limit; /* most bytes the buffer may hold */
    int err;      /* 0, SAT_ENOMEM or SAT_ETOOBIG */
};

void json_buf_init(struct json_buf *b, size_t limit);
void json_buf_put(struct json_buf *b, const char *s, size_t n);
void json_buf_puts(struct json_buf *b, const char *s);
void json_buf_printf(struct json_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string ('"', '\\' and control characters escaped). */
void json_buf_string(struct json_buf *b, const char *s);
/* Hands the NUL-terminated text over to the caller, who frees it with
 * sat_free; NULL (and the buffer freed) when an earlier call failed. The
 * buffer is empty again afterwards. */
char *json_buf_take(struct json_buf *b);
void json_buf_free(struct json_buf *b);

#endif
