/* Unit tests of the option registry, option classes, block values and
 * the content-format registry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "coapkit/coapkit.h"

static void test_registry_lookup(void **state)
{
  (void)state;
  const struct ck_optdef *d = ck_opt_def(CK_OPT_BLOCK2);
  assert_non_null(d);
  assert_string_equal(d->name, "Block2");
  assert_int_equal(d->fmt, CK_OPTFMT_UINT);
  assert_int_equal(d->max_len, 3);
  d = ck_opt_def_by_name("content-format");
  assert_non_null(d);
  assert_int_equal(d->num, 12);
  assert_null(ck_opt_def(2));
  assert_null(ck_opt_def(65000));
  assert_null(ck_opt_def_by_name("nope"));
  assert_null(ck_opt_def_by_name(NULL));

  /* Every registered option of SPEC and the issue is present with its
   * number and format. */
  static const struct {
    uint16_t num;
    const char *name;
    uint8_t fmt;
  } want[] = {
    {1, "If-Match", CK_OPTFMT_OPAQUE},
    {3, "Uri-Host", CK_OPTFMT_STRING},
    {4, "ETag", CK_OPTFMT_OPAQUE},
    {5, "If-None-Match", CK_OPTFMT_EMPTY},
    {6, "Observe", CK_OPTFMT_UINT},
    {7, "Uri-Port", CK_OPTFMT_UINT},
    {8, "Location-Path", CK_OPTFMT_STRING},
    {9, "OSCORE", CK_OPTFMT_OPAQUE},
    {11, "Uri-Path", CK_OPTFMT_STRING},
    {12, "Content-Format", CK_OPTFMT_UINT},
    {14, "Max-Age", CK_OPTFMT_UINT},
    {15, "Uri-Query", CK_OPTFMT_STRING},
    {16, "Hop-Limit", CK_OPTFMT_UINT},
    {17, "Accept", CK_OPTFMT_UINT},
    {19, "Q-Block1", CK_OPTFMT_UINT},
    {20, "Location-Query", CK_OPTFMT_STRING},
    {23, "Block2", CK_OPTFMT_UINT},
    {27, "Block1", CK_OPTFMT_UINT},
    {28, "Size2", CK_OPTFMT_UINT},
    {31, "Q-Block2", CK_OPTFMT_UINT},
    {35, "Proxy-Uri", CK_OPTFMT_STRING},
    {39, "Proxy-Scheme", CK_OPTFMT_STRING},
    {60, "Size1", CK_OPTFMT_UINT},
    {252, "Echo", CK_OPTFMT_OPAQUE},
    {258, "No-Response", CK_OPTFMT_UINT},
    {292, "Request-Tag", CK_OPTFMT_OPAQUE},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    d = ck_opt_def(want[i].num);
    assert_non_null(d);
    assert_string_equal(d->name, want[i].name);
    assert_int_equal(d->fmt, want[i].fmt);
    assert_ptr_equal(ck_opt_def_by_name(want[i].name), d);
  }
}

static void test_registry_sorted_and_complete(void **state)
{
  (void)state;
  size_t n = 0;
  const struct ck_optdef *d, *prev = NULL;
  while ((d = ck_opt_def_at(n)) != NULL) {
    if (prev)
      assert_true(prev->num < d->num);
    assert_true(d->min_len <= d->max_len);
    assert_ptr_equal(ck_opt_def(d->num), d);
    prev = d;
    n++;
  }
  assert_true(n >= 29);
}

static void test_option_classes(void **state)
{
  (void)state;
  /* RFC 7252 §5.4.6 Table 4 and §12.2: C, U, N columns. */
  assert_true(ck_opt_is_critical(CK_OPT_IF_MATCH));
  assert_true(ck_opt_is_critical(CK_OPT_URI_HOST));
  assert_false(ck_opt_is_critical(CK_OPT_ETAG));
  assert_false(ck_opt_is_critical(CK_OPT_OBSERVE));
  assert_true(ck_opt_is_critical(CK_OPT_URI_PATH));
  assert_false(ck_opt_is_critical(CK_OPT_CONTENT_FORMAT));
  assert_true(ck_opt_is_critical(CK_OPT_BLOCK2));
  assert_true(ck_opt_is_unsafe(CK_OPT_URI_HOST));
  assert_true(ck_opt_is_unsafe(CK_OPT_URI_PORT));
  assert_true(ck_opt_is_unsafe(CK_OPT_MAX_AGE));
  assert_false(ck_opt_is_unsafe(CK_OPT_ETAG));
  assert_true(ck_opt_is_nocachekey(CK_OPT_SIZE1));
  assert_true(ck_opt_is_nocachekey(CK_OPT_SIZE2));
  assert_true(ck_opt_is_nocachekey(CK_OPT_ECHO));
  assert_false(ck_opt_is_nocachekey(CK_OPT_URI_PATH));
  assert_false(ck_opt_is_nocachekey(CK_OPT_ACCEPT));
}

static void test_len_ok(void **state)
{
  (void)state;
  assert_true(ck_opt_len_ok(CK_OPT_ETAG, 8));
  assert_false(ck_opt_len_ok(CK_OPT_ETAG, 0));
  assert_false(ck_opt_len_ok(CK_OPT_ETAG, 9));
  assert_false(ck_opt_len_ok(CK_OPT_URI_HOST, 0));
  assert_true(ck_opt_len_ok(CK_OPT_PROXY_URI, 1034));
  assert_false(ck_opt_len_ok(CK_OPT_CONTENT_FORMAT, 3));
  assert_true(ck_opt_len_ok(65001, 1000));
}

static void test_block_values(void **state)
{
  (void)state;
  struct ck_block b = {.num = 5, .more = true, .szx = 6};
  uint32_t v;
  assert_int_equal(ck_block_encode(&b, &v), 0);
  assert_int_equal(v, 5 << 4 | 8 | 6);
  struct ck_block back;
  assert_int_equal(ck_block_decode(v, &back), 0);
  assert_int_equal(back.num, 5);
  assert_true(back.more);
  assert_int_equal(back.szx, 6);
  assert_int_equal(CK_BLOCK_SIZE(back.szx), 1024);

  b.num = 0xfffff;
  b.more = false;
  b.szx = 0;
  assert_int_equal(ck_block_encode(&b, &v), 0);
  assert_int_equal(ck_block_decode(v, &back), 0);
  assert_int_equal(back.num, 0xfffff);
  assert_false(back.more);

  b.num = 0x100000;
  assert_int_equal(ck_block_encode(&b, &v), CK_ERANGE);
  b.num = 0;
  b.szx = 7;
  assert_int_equal(ck_block_encode(&b, &v), CK_ERANGE);
  assert_int_equal(ck_block_decode(7, &back), CK_ERANGE);
  assert_int_equal(ck_block_decode(0x1000000, &back), CK_ERANGE);

  assert_int_equal(ck_block_szx(16), 0);
  assert_int_equal(ck_block_szx(1024), 6);
  assert_int_equal(ck_block_szx(2048), CK_ERANGE);
  assert_int_equal(ck_block_szx(100), CK_ERANGE);
}

static void test_content_formats(void **state)
{
  (void)state;
  uint16_t cf = 9;
  assert_string_equal(ck_cf_name(0), "text/plain;charset=utf-8");
  assert_string_equal(ck_cf_name(40), "application/link-format");
  assert_string_equal(ck_cf_name(50), "application/json");
  assert_string_equal(ck_cf_name(60), "application/cbor");
  assert_string_equal(ck_cf_name(42), "application/octet-stream");
  assert_null(ck_cf_name(1));
  assert_int_equal(ck_cf_parse("application/json", &cf), 0);
  assert_int_equal(cf, 50);
  assert_int_equal(ck_cf_parse("text/plain", &cf), 0);
  assert_int_equal(cf, 0);
  assert_int_equal(ck_cf_parse("TEXT/PLAIN;charset=utf-8", &cf), 0);
  assert_int_equal(cf, 0);
  assert_int_equal(ck_cf_parse("cbor", &cf), 0);
  assert_int_equal(cf, 60);
  assert_int_equal(ck_cf_parse("link", &cf), 0);
  assert_int_equal(cf, 40);
  assert_int_equal(ck_cf_parse("application/cose", &cf), 0);
  assert_int_equal(cf, 16);
  assert_int_equal(ck_cf_parse("11542", &cf), 0);
  assert_int_equal(cf, 11542);
  assert_int_equal(ck_cf_parse("65536", &cf), CK_ERANGE);
  assert_int_equal(ck_cf_parse("12x", &cf), CK_EINVAL);
  assert_int_equal(ck_cf_parse("", &cf), CK_EINVAL);
  assert_int_equal(ck_cf_parse("application/nothing", &cf), CK_ENOTFOUND);
  const struct ck_cfdef *d, *prev = NULL;
  for (size_t i = 0; (d = ck_cf_def_at(i)) != NULL; i++) {
    if (prev)
      assert_true(prev->num < d->num);
    prev = d;
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_registry_lookup),
    cmocka_unit_test(test_registry_sorted_and_complete),
    cmocka_unit_test(test_option_classes),
    cmocka_unit_test(test_len_ok),
    cmocka_unit_test(test_block_values),
    cmocka_unit_test(test_content_formats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
