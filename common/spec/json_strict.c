/* json_strict.c - strict JSON intake (a pre-scan in front of cJSON) and a
 * capped text buffer for writing JSON. See json_strict.h. */
#include "json_strict.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../util/err.h"
#include "../util/utf8.h"
#include "../util/xalloc.h"

/* ==== Reading ==== */

bool json_strict_utf8_valid(const char *s, size_t n)
{
    return sat_utf8_valid(s, n);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks the number token starting at text[i] against JSON's grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns its length, or
 * 0 when it is malformed. cJSON itself accepts "01" and "1.". */
static size_t number_len(const char *t, size_t i, size_t len)
{
    size_t j = i;
    if (j < len && t[j] == '-')
        j++;
    if (j >= len || !is_digit(t[j]))
        return 0;
    if (t[j] == '0') {
        j++;
    } else {
        while (j < len && is_digit(t[j]))
            j++;
    }
    if (j < len && t[j] == '.') {
        j++;
        if (j >= len || !is_digit(t[j]))
            return 0;
        while (j < len && is_digit(t[j]))
            j++;
    }
    if (j < len && (t[j] == 'e' || t[j] == 'E')) {
        j++;
        if (j < len && (t[j] == '+' || t[j] == '-'))
            j++;
        if (j >= len || !is_digit(t[j]))
            return 0;
        while (j < len && is_digit(t[j]))
            j++;
    }
    /* A number runs into the next structural character or whitespace. */
    if (j < len &&
        (is_digit(t[j]) || t[j] == '.' || t[j] == 'e' || t[j] == 'E' || t[j] == '+' || t[j] == '-'))
        return 0;
    return j - i;
}

/* The pre-scan: walks the text once, tracking strings, and refuses what
 * cJSON would accept or mangle. Returns 0, or -1 with *why and *off set. */
static int prescan(const char *t, size_t len, const char **why, size_t *off)
{
    size_t bad = sat_utf8_bad(t, len);
    if (bad != len) {
        *off = bad;
        *why = "not valid UTF-8";
        return -1;
    }
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (in_str) {
            if (c < 0x20) {
                *off = i;
                *why = "control character inside a string (escape it)";
                return -1;
            }
            if (c == '"') {
                in_str = false;
            } else if (c == '\\') {
                if (i + 5 < len && t[i + 1] == 'u' && memcmp(t + i + 2, "0000", 4) == 0) {
                    *off = i;
                    *why = "\\u0000 is not allowed in a string";
                    return -1;
                }
                i++; /* skip the escaped character; cJSON checks the escape itself */
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '-' || is_digit((char)c)) {
            size_t n = number_len(t, i, len);
            if (n == 0) {
                *off = i;
                *why = "malformed number";
                return -1;
            }
            i += n - 1;
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            *off = i;
            *why = "control character";
            return -1;
        }
    }
    return 0;
}

cJSON *json_strict_parse(const char *text, size_t len, const char **why, size_t *off)
{
    *why = NULL;
    *off = 0;
    if (!text || len == 0) {
        *why = "empty input";
        return NULL;
    }
    if (prescan(text, len, why, off) < 0)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        *why = "syntax error";
        *off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return NULL;
    }
    size_t i = (size_t)(end - text);
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (i != len) {
        cJSON_Delete(root);
        *why = "unexpected text after the JSON value";
        *off = i;
        return NULL;
    }
    return root;
}

void json_strict_locate(const char *text, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

const char *json_strict_type_name(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "an unknown value";
}

const char *json_strict_show(const char *s, size_t max, char *out, size_t cap)
{
    size_t n = 0, i = 0;
    if (!s)
        s = "(null)";
    if (max + 4 > cap)
        max = cap > 4 ? cap - 4 : 0;
    for (; s[i] && i < max; i++)
        out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] && n + 4 <= cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* ==== Writing ==== */

void json_buf_init(struct json_buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

/* Makes room for n more bytes plus the NUL; sets b->err on failure. */
static bool reserve(struct json_buf *b, size_t n)
{
    if (b->err)
        return false;
    if (n > b->limit || b->len > b->limit - n) {
        b->err = SAT_ETOOBIG;
        return false;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = sat_realloc(b->p, cap);
    if (!p) {
        b->err = SAT_ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void json_buf_put(struct json_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void json_buf_puts(struct json_buf *b, const char *s)
{
    json_buf_put(b, s, strlen(s));
}

void json_buf_printf(struct json_buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!b->err)
            b->err = SAT_EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        json_buf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void json_buf_string(struct json_buf *b, const char *s)
{
    json_buf_put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        json_buf_put(b, run, (size_t)(p - run));
        switch (c) {
        case '"':
            json_buf_put(b, "\\\"", 2);
            break;
        case '\\':
            json_buf_put(b, "\\\\", 2);
            break;
        case '\n':
            json_buf_put(b, "\\n", 2);
            break;
        case '\t':
            json_buf_put(b, "\\t", 2);
            break;
        case '\r':
            json_buf_put(b, "\\r", 2);
            break;
        default:
            json_buf_printf(b, "\\u%04x", c);
            break;
        }
        run = p + 1;
    }
    json_buf_puts(b, run);
    json_buf_put(b, "\"", 1);
}

char *json_buf_take(struct json_buf *b)
{
    if (!b->p && reserve(b, 0))
        b->p[0] = '\0';
    if (b->err) {
        json_buf_free(b);
        return NULL;
    }
    char *p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void json_buf_free(struct json_buf *b)
{
    sat_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
