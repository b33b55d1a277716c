/* coapd's log: one line per event on stderr, with a UTC timestamp and a
 * level, filtered by the level chosen with --log-level or log_level. */
#ifndef COAPD_LOG_H
#define COAPD_LOG_H

enum coapd_log_level {
  LOG_LEVEL_ERROR,
  LOG_LEVEL_WARN,
  LOG_LEVEL_INFO,
  LOG_LEVEL_DEBUG,
};

/* Sets the most verbose level that is written (default: info). */
void coapd_log_set_level(enum coapd_log_level level);

/* True when a message of this level would be written, so that callers
 * can skip formatting work for debug lines. */
int coapd_log_enabled(enum coapd_log_level level);

/* Parses "error", "warn", "info" or "debug". Returns 0 and stores the
 * level, or -1 for anything else. */
int coapd_log_level_parse(const char *s, enum coapd_log_level *out);

/* Writes one line: "2024-05-01T12:00:00.123Z info: <message>". */
void coapd_log(enum coapd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) coapd_log(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  coapd_log(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  coapd_log(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) coapd_log(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
