/* libFuzzer target for the message codec. Every input is parsed; an
 * accepted message is iterated, rebuilt from its parts with the builder,
 * and the rebuilt bytes must equal the input exactly: RFC 7252's option
 * encoding has a single form for each number and length (an extension
 * byte can only express values the nibble cannot), so the codec is
 * canonical and any difference is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/coapkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[70000];
static struct ck_builder b;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ck_msg m;
  if (ck_msg_parse(&m, data, size) != 0)
    return 0;

  ck_builder_init(&b, out, sizeof out, (enum ck_type)m.type, m.code, m.mid);
  if (ck_builder_token(&b, m.token, m.tkl) != 0)
    abort();
  struct ck_opt_iter it;
  struct ck_opt o;
  unsigned n = 0;
  uint32_t prev = 0;
  ck_opt_iter_init(&it, &m);
  while (ck_opt_next(&it, &o)) {
    if (o.num < prev || o.val < m.data || o.val + o.len > m.data + m.len)
      abort();
    prev = o.num;
    if (n < CK_BUILDER_MAX_OPTS)
      ck_builder_opt(&b, o.num, o.val, o.len);
    n++;
    /* Lookups agree with iteration. */
    struct ck_opt f;
    if (ck_msg_opt(&m, o.num, &f) != 0 || f.num != o.num)
      abort();
    uint32_t u;
    (void)ck_msg_opt_uint(&m, o.num, &u);
  }
  if (n != m.nopts)
    abort();
  ck_builder_payload(&b, m.payload, m.payload_len);
  int len = ck_builder_finish(&b);
  if (n > CK_BUILDER_MAX_OPTS)
    return 0;
  if (len < 0)
    abort();
  /* The rebuilt message parses to the same content. */
  struct ck_msg r;
  if (ck_msg_parse(&r, out, (size_t)len) != 0)
    abort();
  if (r.type != m.type || r.code != m.code || r.mid != m.mid ||
      r.tkl != m.tkl || memcmp(r.token, m.token, m.tkl) != 0 ||
      r.nopts != m.nopts || r.payload_len != m.payload_len ||
      (m.payload_len && memcmp(r.payload, m.payload, m.payload_len) != 0))
    abort();
  if ((size_t)len != size || memcmp(out, data, size) != 0)
    abort();
  struct ck_opt_iter i1, i2;
  struct ck_opt a, c;
  ck_opt_iter_init(&i1, &m);
  ck_opt_iter_init(&i2, &r);
  while (ck_opt_next(&i1, &a)) {
    if (!ck_opt_next(&i2, &c) || a.num != c.num || a.len != c.len ||
        memcmp(a.val, c.val, a.len) != 0)
      abort();
  }
  return 0;
}
