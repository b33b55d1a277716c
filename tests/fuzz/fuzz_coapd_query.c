/* libFuzzer target for the gateway's query keys written into a topic
 * (query_from_topic, EMQX's "a/b&clientid=1&token=2") and its value
 * parsers. Checks, beyond not crashing: the topic only ever shrinks, and
 * only to just before an '&' of its last level; every value it reports
 * lies inside the buffer after the cut; a number parsed is at most the
 * bound given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub_int.h"

static void inside(const struct qv *v, const char *buf, size_t len)
{
  if (v->set && v->n && (v->p < buf || v->p + v->n > buf + len))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char buf[1100];
  if (size >= sizeof buf)
    return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  struct query q;
  memset(&q, 0, sizeof q);
  size_t n = query_from_topic(buf, size, &q);
  if (n > size)
    abort();
  if (n < size) {
    if (data[n] != '&' || memchr(data + n, '/', size - n))
      abort();
    inside(&q.clientid, buf, size);
    inside(&q.token, buf, size);
    inside(&q.username, buf, size);
    inside(&q.password, buf, size);
    inside(&q.qos, buf, size);
    inside(&q.retain, buf, size);
    inside(&q.expiry, buf, size);
  }
  struct qv v = {.p = (const char *)data, .n = size, .set = true};
  uint32_t x;
  if (qv_uint(&v, 1000, &x) == 0 && x > 1000)
    abort();
  bool b;
  (void)qv_bool(&v, &b);
  return 0;
}
