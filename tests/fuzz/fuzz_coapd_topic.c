/* libFuzzer target for coapd's MQTT topic rules (coapd/topic.c, MQTT
 * 3.1.1 §4.7).
 *
 * The whole input goes to both validators. Then it is split at its first
 * NUL byte into a filter and a topic (a valid one holds no NUL, so the
 * split is unambiguous), and the checks below hold whenever the parts are
 * valid:
 *
 * - a valid topic is a valid filter, and matches itself;
 * - "#" matches every topic not starting with '$', and no other;
 * - the topic with every level replaced by '+' matches it, unless the
 *   topic starts with '$'; so does that filter with its last level made
 *   '#', and the topic followed by "/#" (the parent rule, §4.7.1.2);
 * - bus_filter_match() agrees with a slow reference matcher written
 *   straight from the standard's words, level by level, recursively.
 *
 * Any violation aborts. The file also builds with gcc, linked with
 * replay_main.c, to replay the corpus under CTest.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
  if (!ok)
    abort();
}

/* Levels of f and t from the given positions on, per §4.7.1. */
static bool ref(const char *f, const char *t)
{
  size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
  if (fl == 1 && f[0] == '#')
    return true;
  if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
    return false;
  if (f[fl] == '\0' || t[tl] == '\0') {
    if (f[fl] == '\0' && t[tl] == '\0')
      return true;
    return t[tl] == '\0' && strcmp(f + fl, "/#") == 0;
  }
  return ref(f + fl + 1, t + tl + 1);
}

static bool ref_match(const char *f, const char *t)
{
  if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
    return false;
  return ref(f, t);
}

enum { BUF = BUS_TOPIC_MAX * 2 + 8 };

static void check_topic(const char *t, size_t len)
{
  static char f[BUF];
  check(bus_filter_valid(t, len));
  check(bus_filter_match(t, t));
  check(bus_filter_match("#", t) == (t[0] != '$'));
  /* Every level made '+': at most one byte per level, never longer. */
  size_t n = 0;
  for (size_t i = 0; i <= len; i++)
    if (i == len || t[i] == '/') {
      f[n++] = '+';
      f[n++] = i == len ? '\0' : '/';
    }
  check(bus_filter_valid(f, strlen(f)));
  check(bus_filter_match(f, t) == (t[0] != '$'));
  f[strlen(f) - 1] = '#';
  check(bus_filter_match(f, t) == (t[0] != '$'));
  memcpy(f, t, len);
  memcpy(f + len, "/#", 3);
  check(bus_filter_match(f, t));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char a[BUF], b[BUF];
  const char *s = (const char *)data;
  bool topic = bus_topic_valid(s, size);
  bool filter = bus_filter_valid(s, size);
  check(!topic || filter);
  if (size > BUS_TOPIC_MAX * 2)
    return 0;
  const uint8_t *nul = memchr(data, 0, size);
  if (!nul)
    return 0;
  size_t fl = (size_t)(nul - data), tl = size - fl - 1;
  memcpy(a, data, fl);
  a[fl] = '\0';
  memcpy(b, nul + 1, tl);
  b[tl] = '\0';
  if (bus_topic_valid(b, tl))
    check_topic(b, tl);
  if (bus_filter_valid(a, fl) && bus_topic_valid(b, tl))
    check(bus_filter_match(a, b) == ref_match(a, b));
  return 0;
}
