/* The query keys of EMQX's CoAP gateway: every Uri-Query option of a
 * request is read (not only the first), as key=value, with the short
 * aliases EMQX accepts: c (clientid), t (token), u (username),
 * p (password), q (qos), r (retain).
 *
 * EMQX's documentation shows connection-mode requests as
 * "ps/coap/test&clientid=123&token=..." (an '&' where the '?' belongs),
 * which puts the keys into the last path segment. Clients copied from
 * it work against coapd: a last topic level ending in "&key=value..."
 * made only of known keys is read as query keys (query_from_topic). */
#include <string.h>

#include "pubsub_int.h"

static bool key_is(const uint8_t *k, size_t n, const char *a, const char *b)
{
  return (strlen(a) == n && memcmp(k, a, n) == 0) ||
         (b && strlen(b) == n && memcmp(k, b, n) == 0);
}

/* Stores k=v into q when k is a known key; returns false otherwise. */
static bool take(struct query *q, const uint8_t *kv, size_t len)
{
  const uint8_t *eq = memchr(kv, '=', len);
  size_t kn = eq ? (size_t)(eq - kv) : len;
  struct qv v = {.p = eq ? (const char *)eq + 1 : "",
                 .n = eq ? len - kn - 1 : 0,
                 .set = true};
  struct qv *slot = key_is(kv, kn, "clientid", "c")   ? &q->clientid
                    : key_is(kv, kn, "token", "t")    ? &q->token
                    : key_is(kv, kn, "username", "u") ? &q->username
                    : key_is(kv, kn, "password", "p") ? &q->password
                    : key_is(kv, kn, "qos", "q")      ? &q->qos
                    : key_is(kv, kn, "retain", "r")   ? &q->retain
                    : key_is(kv, kn, "expiry", NULL)  ? &q->expiry
                                                      : NULL;
  if (!slot)
    return false;
  *slot = v;
  return true;
}

size_t query_from_topic(char *topic, size_t len, struct query *q)
{
  const char *level = memrchr(topic, '/', len);
  size_t start = level ? (size_t)(level - topic) + 1 : 0;
  char *amp = memchr(topic + start, '&', len - start);
  if (!amp)
    return len;
  /* Every "&k=v" after it must be a known key, or the '&' is just a
   * character of the topic. */
  struct query tmp = *q;
  for (char *p = amp; p < topic + len;) {
    char *next = memchr(p + 1, '&', (size_t)(topic + len - (p + 1)));
    char *end = next ? next : topic + len;
    if (!memchr(p + 1, '=', (size_t)(end - (p + 1))) ||
        !take(&tmp, (const uint8_t *)p + 1, (size_t)(end - (p + 1))))
      return len;
    p = end;
  }
  *q = tmp;
  *amp = '\0';
  return (size_t)(amp - topic);
}

void query_parse(const struct ck_request *req, struct query *q)
{
  memset(q, 0, sizeof *q);
  const struct ck_msg *m = ck_request_msg(req);
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o)) {
    if (o.num == CK_OPT_URI_QUERY)
      (void)take(q, o.val, o.len);
  }
}

int qv_uint(const struct qv *v, uint32_t max, uint32_t *out)
{
  if (v->n == 0 || v->n > 10)
    return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < v->n; i++) {
    if (v->p[i] < '0' || v->p[i] > '9')
      return -1;
    x = x * 10 + (uint64_t)(v->p[i] - '0');
  }
  if (x > max)
    return -1;
  *out = (uint32_t)x;
  return 0;
}

int qv_bool(const struct qv *v, bool *out)
{
  if ((v->n == 4 && memcmp(v->p, "true", 4) == 0) ||
      (v->n == 1 && v->p[0] == '1')) {
    *out = true;
    return 0;
  }
  if ((v->n == 5 && memcmp(v->p, "false", 5) == 0) ||
      (v->n == 1 && v->p[0] == '0')) {
    *out = false;
    return 0;
  }
  return -1;
}
