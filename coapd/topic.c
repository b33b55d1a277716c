/* Topic names and topic filters, as MQTT 3.1.1 §4.7 defines them, shared
 * by both bus implementations so that a topic the embedded bus accepts is
 * one an MQTT broker accepts too.
 *
 * A topic is a string of levels separated by '/'. Levels may be empty:
 * "/a" has two levels, "" and "a", and "a//b" three (§4.7.1.1). A filter
 * is a topic in which a level may be '+' (any one level, empty included)
 * and the last level may be '#' (any number of further levels, none
 * included, so "a/#" matches "a" too: §4.7.1.2). Topics starting with '$'
 * belong to the server: a filter whose first level is a wildcard does not
 * match them (§4.7.2), so "#" does not see "$SYS/uptime" while
 * "$SYS/#" does. Both are UTF-8 without U+0000 (§1.5.3) and at most
 * BUS_TOPIC_MAX bytes and BUS_LEVELS_MAX levels long, our caps.
 *
 * Matching walks filter and topic level by level, once, without
 * allocating; the embedded bus matches through its tree instead
 * (bus_embedded.c) and uses this function only where a single pair is
 * compared.
 */
#include <string.h>

#include "bus.h"

/* Well-formed UTF-8 (Unicode Table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF) without U+0000, which MQTT 3.1.1
 * §1.5.3 forbids. */
static bool utf8_ok(const unsigned char *s, size_t len)
{
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c == 0)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t more;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
      more = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else {
      return false;
    }
    if (len - i - 1 < more)
      return false;
    if (s[i + 1] < lo || s[i + 1] > hi)
      return false;
    for (size_t k = 2; k <= more; k++)
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
    i += more + 1;
  }
  return true;
}

static bool check(const char *s, size_t len, bool filter)
{
  if (!s || len == 0 || len > BUS_TOPIC_MAX)
    return false;
  if (!utf8_ok((const unsigned char *)s, len))
    return false;
  size_t levels = 1, start = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '/') {
      if (++levels > BUS_LEVELS_MAX)
        return false;
      start = i + 1;
    } else if (c == '+' || c == '#') {
      /* §4.7.1.2, §4.7.1.3: a wildcard is a whole level, and '#' only
       * the last one. */
      if (!filter || i != start)
        return false;
      if (i + 1 < len && (c == '#' || s[i + 1] != '/'))
        return false;
    }
  }
  return true;
}

bool bus_topic_valid(const char *s, size_t len)
{
  return check(s, len, false);
}

bool bus_filter_valid(const char *s, size_t len)
{
  return check(s, len, true);
}

bool bus_filter_match(const char *filter, const char *topic)
{
  const char *f = filter, *t = topic;
  /* §4.7.2: wildcards at the first level do not reach '$' topics. */
  if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
    return false;
  for (;;) {
    /* f and t each point at the start of a level. */
    if (f[0] == '#')
      return true;
    size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
    bool plus = fl == 1 && f[0] == '+';
    if (!plus && (fl != tl || memcmp(f, t, fl) != 0))
      return false;
    f += fl;
    t += tl;
    if (*f == '\0')
      return *t == '\0';
    if (*t == '\0')
      /* The topic ends first: only "/#" can still match, the parent. */
      return strcmp(f, "/#") == 0;
    f++;
    t++;
  }
}
