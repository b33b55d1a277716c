/* coapd's log. Every line is formatted into one buffer and written with
 * a single write(2), so lines from a crash handler or a future worker
 * thread never interleave mid-line, and stderr's buffering cannot hold a
 * line back when the daemon is killed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum coapd_log_level current = LOG_LEVEL_INFO;

static const char *const names[] = {"error", "warn", "info", "debug"};

void coapd_log_set_level(enum coapd_log_level level)
{
  current = level;
}

int coapd_log_enabled(enum coapd_log_level level)
{
  return level <= current;
}

int coapd_log_level_parse(const char *s, enum coapd_log_level *out)
{
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (enum coapd_log_level)i;
      return 0;
    }
  }
  return -1;
}

void coapd_log(enum coapd_log_level level, const char *fmt, ...)
{
  if (level > current)
    return;
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  int k = snprintf(line + n, sizeof line - n,
                   ".%03ldZ %s: ", ts.tv_nsec / 1000000, names[level]);
  if (k > 0)
    n += (size_t)k;
  va_list ap;
  va_start(ap, fmt);
  k = vsnprintf(line + n, sizeof line - n, fmt, ap);
  va_end(ap);
  /* A message longer than the line is cut, never dropped. */
  if (k > 0)
    n += (size_t)k < sizeof line - n ? (size_t)k : sizeof line - n - 1;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}
