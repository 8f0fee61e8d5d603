/* log.c - see log.h. */
#include "log.h"
#include "err.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum sat_log_level cur_level = SAT_LOG_INFO;
static enum sat_log_format cur_format = SAT_LOG_TEXT;
static const char *cur_comp = "saturn";

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void sat_log_set_level(enum sat_log_level lvl)
{
    cur_level = lvl;
}

enum sat_log_level sat_log_get_level(void)
{
    return cur_level;
}

void sat_log_set_format(enum sat_log_format fmt)
{
    cur_format = fmt;
}

void sat_log_set_component(const char *comp)
{
    cur_comp = comp;
}

int sat_log_parse_level(const char *s, enum sat_log_level *out)
{
    for (int i = 0; i <= SAT_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum sat_log_level)i;
            return 0;
        }
    }
    return SAT_EINVAL;
}

int sat_log_parse_format(const char *s, enum sat_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = SAT_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = SAT_LOG_JSON;
    else
        return SAT_EINVAL;
    return 0;
}

/* Appends s to buf as the body of a JSON string (without quotes). */
static size_t json_escape(char *buf, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n] = 0;
    return n;
}

void sat_log(enum sat_log_level lvl, const char *fmt, ...)
{
    if (lvl < cur_level || lvl >= SAT_LOG_OFF)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sat_utf8_trim(msg);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));

    char line[8192];
    int n;
    /* A message may carry text a peer chose: in either format it stays on
     * one line and cannot forge another entry. */
    if (cur_format == SAT_LOG_JSON) {
        char esc[4200];
        sat_utf8_sanitize(msg); /* JSON text is UTF-8 */
        json_escape(esc, sizeof esc, msg);
        n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\",\"msg\":\"%s\"}\n",
                     ts, level_names[lvl], cur_comp, esc);
    } else {
        char esc[4200];
        sat_escape_ctl(esc, sizeof esc, msg);
        n = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts, level_names[lvl], cur_comp, esc);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
