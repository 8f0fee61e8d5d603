/* utf8.h - strict UTF-8: validation, cutting on character boundaries,
 * repairing stored text and escaping control characters for terminals and
 * logs.
 *
 * "Strict" is RFC 3629: no overlong forms, no UTF-16 surrogates, nothing
 * above U+10FFFF. "Control character" means C0 (U+0000..U+001F), DEL
 * (U+007F) and C1 (U+0080..U+009F): the code points a terminal may act on.
 * Nothing here allocates.
 */
#ifndef SATURN_UTF8_H
#define SATURN_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Offset of the first byte of the first malformed sequence in s[0..n), or
 * n when there is none. */
size_t sat_utf8_bad(const char *s, size_t n);

static inline bool sat_utf8_valid(const char *s, size_t n)
{
    return sat_utf8_bad(s, n) == n;
}

/* True when s[0..n) holds a control character (C0, DEL or C1). */
bool sat_utf8_has_ctl(const char *s, size_t n);

/* Characters (code points) in the NUL-terminated, valid s. */
size_t sat_utf8_chars(const char *s);

/* The length of the longest prefix of the NUL-terminated s that is at most
 * max bytes and does not end inside a multi-byte sequence, for
 * printf("%.*s", (int)sat_utf8_cut(s, max), s). */
size_t sat_utf8_cut(const char *s, size_t max);

/* Drops an incomplete sequence at the end of s in place (what snprintf
 * leaves when it truncates in the middle of a character). */
void sat_utf8_trim(char *s);

/* Makes s valid UTF-8 in place: every byte that does not belong to a valid
 * sequence becomes '?'. Returns how many bytes were replaced. */
size_t sat_utf8_sanitize(char *s);

/* Copies s into dst (cap bytes, always NUL-terminated) with control
 * characters escaped: \n \r \t as such, other C0 and DEL as \xNN, C1 as
 * \u0080..\u009f, and bytes that are not valid UTF-8 as \xNN; a backslash
 * is written as is. Output that does not fit is cut on a character (or
 * escape) boundary. Returns dst. */
char *sat_escape_ctl(char *dst, size_t cap, const char *s);

#endif
