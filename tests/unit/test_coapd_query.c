/* The gateway's query keys in the topic (EMQX's documented form
 * "a/b&clientid=1&token=2") and its value parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pubsub_int.h"

static size_t cut(char *buf, const char *in, struct query *q)
{
  snprintf(buf, 128, "%s", in);
  memset(q, 0, sizeof *q);
  return query_from_topic(buf, strlen(buf), q);
}

static bool is(const struct qv *v, const char *s)
{
  return v->set && v->n == strlen(s) && memcmp(v->p, s, v->n) == 0;
}

static void test_keys_in_topic(void **state)
{
  (void)state;
  char b[128];
  struct query q;
  assert_int_equal(cut(b, "coap/test&clientid=123&token=3404490787", &q), 9);
  assert_string_equal(b, "coap/test");
  assert_true(is(&q.clientid, "123"));
  assert_true(is(&q.token, "3404490787"));
  assert_int_equal(cut(b, "a&c=1&t=2&q=1&r=true", &q), 1);
  assert_true(is(&q.clientid, "1") && is(&q.qos, "1") && is(&q.retain, "true"));
}

static void test_ampersand_stays_in_topic(void **state)
{
  (void)state;
  char b[128];
  struct query q;
  /* Not all known keys, no '=', or not in the last level: a topic. */
  assert_int_equal(cut(b, "a&b", &q), 3);
  assert_int_equal(cut(b, "a&x=1", &q), 5);
  assert_int_equal(cut(b, "a&clientid=1&other=2", &q), 20);
  assert_false(q.clientid.set);
  assert_int_equal(cut(b, "a&clientid=1/b", &q), 14);
  assert_int_equal(cut(b, "&token=1", &q), 0); /* an empty topic is left */
}

static void test_values(void **state)
{
  (void)state;
  uint32_t v;
  bool t;
  struct qv x = {.p = "2", .n = 1, .set = true};
  assert_int_equal(qv_uint(&x, 2, &v), 0);
  assert_int_equal(v, 2);
  x.p = "3";
  assert_int_equal(qv_uint(&x, 2, &v), -1);
  x.p = "";
  x.n = 0;
  assert_int_equal(qv_uint(&x, 2, &v), -1);
  x.p = "99999999999";
  x.n = 11;
  assert_int_equal(qv_uint(&x, UINT32_MAX, &v), -1);
  x.p = "4294967295";
  x.n = 10;
  assert_int_equal(qv_uint(&x, UINT32_MAX, &v), 0);
  x.p = "true";
  x.n = 4;
  assert_int_equal(qv_bool(&x, &t), 0);
  assert_true(t);
  x.p = "0";
  x.n = 1;
  assert_int_equal(qv_bool(&x, &t), 0);
  assert_false(t);
  x.p = "yes";
  x.n = 3;
  assert_int_equal(qv_bool(&x, &t), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_keys_in_topic),
    cmocka_unit_test(test_ampersand_stays_in_topic),
    cmocka_unit_test(test_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
