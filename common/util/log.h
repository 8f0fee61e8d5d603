/* log.h - structured, levelled logging to stderr.
 *
 * One line per record: "2026-11-25T19:21:55.123Z info  saturnd: message" in
 * text format, or {"ts":..,"level":..,"comp":..,"msg":..} in JSON format for
 * log shippers. Thread-safe (one write(2) per record).
 */
#ifndef SATURN_LOG_H
#define SATURN_LOG_H

enum sat_log_level { SAT_LOG_DEBUG, SAT_LOG_INFO, SAT_LOG_WARN, SAT_LOG_ERROR, SAT_LOG_OFF };
enum sat_log_format { SAT_LOG_TEXT, SAT_LOG_JSON };

void sat_log_set_level(enum sat_log_level lvl);
void sat_log_set_format(enum sat_log_format fmt);
void sat_log_set_component(const char *comp); /* e.g. "saturnd"; the string must outlive logging */
/* Parses "debug|info|warn|error|off"; returns 0 or SAT_EINVAL. */
int sat_log_parse_level(const char *s, enum sat_log_level *out);
int sat_log_parse_format(const char *s, enum sat_log_format *out);
enum sat_log_level sat_log_get_level(void);

void sat_log(enum sat_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) sat_log(SAT_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) sat_log(SAT_LOG_INFO, __VA_ARGS__)
#define log_warn(...) sat_log(SAT_LOG_WARN, __VA_ARGS__)
#define log_error(...) sat_log(SAT_LOG_ERROR, __VA_ARGS__)

#endif
