/* utf8.c - strict UTF-8 checks, boundary cuts and control-character
 * escaping (see utf8.h). */
#include "utf8.h"

#include <stdio.h>
#include <string.h>

/* Length (2..4) of the valid multi-byte sequence at p[0..n), or 0. p[0] is
 * at least 0x80. */
static size_t seq_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n <= need)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return need + 1;
}

size_t sat_utf8_bad(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = seq_len(p + i, n - i);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

/* C1 controls are U+0080..U+009F: C2 80 .. C2 9F. */
static bool is_c1(const unsigned char *p, size_t k)
{
    return k == 2 && p[0] == 0xC2 && p[1] <= 0x9F;
}

bool sat_utf8_has_ctl(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x20 || p[i] == 0x7F)
            return true;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = seq_len(p + i, n - i);
        if (is_c1(p + i, k))
            return true;
        i += k ? k : 1;
    }
    return false;
}

size_t sat_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

size_t sat_utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    /* s[max] exists: back up to the first byte of the character it is in. */
    size_t i = max;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

void sat_utf8_trim(char *s)
{
    size_t n = strlen(s);
    size_t i = n;
    /* At most 3 continuation bytes, then a lead byte. */
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0 || (unsigned char)s[i - 1] < 0xC0)
        return; /* ASCII or stray continuation bytes: not an incomplete tail */
    const unsigned char *p = (const unsigned char *)s + i - 1;
    if (seq_len(p, n - (i - 1)) == 0)
        s[i - 1] = 0;
}

size_t sat_utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s), bad = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = seq_len(p + i, n - i);
        if (k == 0) {
            p[i++] = '?';
            bad++;
        } else {
            i += k;
        }
    }
    return bad;
}

char *sat_escape_ctl(char *dst, size_t cap, const char *s)
{
    if (cap == 0)
        return dst;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n;) {
        char esc[8];
        size_t k = 1, elen;
        const char *piece = esc;
        if (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
            esc[0] = '\\';
            esc[1] = p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't';
            elen = 2;
        } else if (p[i] < 0x20 || p[i] == 0x7F) {
            elen = (size_t)snprintf(esc, sizeof esc, "\\x%02x", p[i]);
        } else if (p[i] < 0x80) {
            piece = (const char *)p + i;
            elen = 1;
        } else {
            k = seq_len(p + i, n - i);
            if (k == 0) {
                k = 1;
                elen = (size_t)snprintf(esc, sizeof esc, "\\x%02x", p[i]);
            } else if (is_c1(p + i, k)) {
                elen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", p[i + 1]);
            } else {
                piece = (const char *)p + i;
                elen = k;
            }
        }
        if (o + elen >= cap)
            break;
        memcpy(dst + o, piece, elen);
        o += elen;
        i += k;
    }
    dst[o] = 0;
    return dst;
}
