/* The query keys of EMQX's CoAP gateway: every Uri-Query option of a
 * request is read (not only the first), as key=value, with the short
 * aliases EMQX accepts: c (clientid), t (token), u (username),
 * p (password), q (qos), r (retain). */
#include <string.h>

#include "pubsub_int.h"

static bool key_is(const uint8_t *k, size_t n, const char *a, const char *b)
{
  return (strlen(a) == n && memcmp(k, a, n) == 0) ||
         (b && strlen(b) == n && memcmp(k, b, n) == 0);
}

void query_parse(const struct ck_request *req, struct query *q)
{
  memset(q, 0, sizeof *q);
  const struct ck_msg *m = ck_request_msg(req);
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_QUERY)
      continue;
    const uint8_t *eq = memchr(o.val, '=', o.len);
    size_t kn = eq ? (size_t)(eq - o.val) : o.len;
    struct qv v = {.p = eq ? (const char *)eq + 1 : "",
                   .n = eq ? o.len - kn - 1 : 0,
                   .set = true};
    if (key_is(o.val, kn, "clientid", "c"))
      q->clientid = v;
    else if (key_is(o.val, kn, "token", "t"))
      q->token = v;
    else if (key_is(o.val, kn, "username", "u"))
      q->username = v;
    else if (key_is(o.val, kn, "password", "p"))
      q->password = v;
    else if (key_is(o.val, kn, "qos", "q"))
      q->qos = v;
    else if (key_is(o.val, kn, "retain", "r"))
      q->retain = v;
    else if (key_is(o.val, kn, "expiry", NULL))
      q->expiry = v;
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
