/* Unit tests of the message codec: every format error of RFC 7252 §3 and
 * §4.1, option encodings at each extension boundary, builder ordering,
 * and round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "coapkit/coapkit.h"

#define PARSE(bytes) parse_bytes(bytes, sizeof(bytes))

static struct ck_msg msg;

static int parse_bytes(const uint8_t *b, size_t n)
{
  return ck_msg_parse(&msg, b, n);
}

static void test_minimal_get(void **state)
{
  (void)state;
  /* CON GET, MID 0x1234, token 0xAB, Uri-Path "hi" */
  static const uint8_t m[] = {0x41, 0x01, 0x12, 0x34, 0xab,
                              0xb2, 'h',  'i'};
  assert_int_equal(PARSE(m), 0);
  assert_int_equal(msg.type, CK_TYPE_CON);
  assert_int_equal(msg.code, CK_GET);
  assert_int_equal(msg.mid, 0x1234);
  assert_int_equal(msg.tkl, 1);
  assert_int_equal(msg.token[0], 0xab);
  assert_int_equal(msg.nopts, 1);
  assert_null(msg.payload);
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&msg, CK_OPT_URI_PATH, &o), 0);
  assert_int_equal(o.len, 2);
  assert_memory_equal(o.val, "hi", 2);
  /* The view points into the buffer: zero copy. */
  assert_ptr_equal(o.val, m + 6);
  assert_int_equal(ck_msg_opt(&msg, CK_OPT_URI_QUERY, &o), CK_ENOTFOUND);
}

static void test_empty_messages(void **state)
{
  (void)state;
  static const uint8_t ack[] = {0x60, 0x00, 0x00, 0x07};
  assert_int_equal(PARSE(ack), 0);
  assert_int_equal(msg.type, CK_TYPE_ACK);
  assert_int_equal(msg.code, 0);
  assert_int_equal(msg.nopts, 0);
  static const uint8_t rst[] = {0x70, 0x00, 0xff, 0xff};
  assert_int_equal(PARSE(rst), 0);
  assert_int_equal(msg.mid, 0xffff);
  /* An empty CON is a ping (RFC 7252 §4.3). */
  static const uint8_t ping[] = {0x40, 0x00, 0x00, 0x01};
  assert_int_equal(PARSE(ping), 0);
}

static void test_err_short(void **state)
{
  (void)state;
  static const uint8_t m[] = {0x40, 0x01, 0x00};
  assert_int_equal(PARSE(m), CK_EMSG_SHORT);
  assert_int_equal(ck_msg_parse(&msg, m, 0), CK_EMSG_SHORT);
}

static void test_err_version(void **state)
{
  (void)state;
  for (unsigned v = 0; v < 4; v++) {
    if (v == 1)
      continue;
    uint8_t m[] = {(uint8_t)(v << 6), 0x01, 0x00, 0x01};
    assert_int_equal(PARSE(m), CK_EMSG_VERSION);
  }
}

static void test_err_tkl(void **state)
{
  (void)state;
  for (unsigned tkl = 9; tkl <= 15; tkl++) {
    uint8_t m[24] = {(uint8_t)(0x40 | tkl), 0x01, 0x00, 0x01};
    assert_int_equal(PARSE(m), CK_EMSG_TKL);
  }
  /* The header fields are still reported, to answer with RST. */
  assert_int_equal(msg.type, CK_TYPE_CON);
  assert_int_equal(msg.mid, 1);
  /* TKL 8 is fine. */
  uint8_t ok[12] = {0x48, 0x01, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
  assert_int_equal(PARSE(ok), 0);
  assert_int_equal(msg.tkl, 8);
}

static void test_err_token_truncated(void **state)
{
  (void)state;
  static const uint8_t m[] = {0x44, 0x01, 0x00, 0x01, 0xaa, 0xbb};
  assert_int_equal(PARSE(m), CK_EMSG_TOKEN);
}

static void test_err_empty_with_content(void **state)
{
  (void)state;
  static const uint8_t tok[] = {0x61, 0x00, 0x00, 0x01, 0xaa};
  assert_int_equal(PARSE(tok), CK_EMSG_EMPTY);
  static const uint8_t opt[] = {0x60, 0x00, 0x00, 0x01, 0xb1, 'a'};
  assert_int_equal(PARSE(opt), CK_EMSG_EMPTY);
  static const uint8_t pay[] = {0x60, 0x00, 0x00, 0x01, 0xff, 'x'};
  assert_int_equal(PARSE(pay), CK_EMSG_EMPTY);
  /* Even a lone trailing byte is an error (RFC 7252 §4.1). */
  static const uint8_t one[] = {0x40, 0x00, 0x00, 0x01, 0x00};
  assert_int_equal(PARSE(one), CK_EMSG_EMPTY);
}

static void test_err_reserved_class(void **state)
{
  (void)state;
  static const unsigned bad[] = {1, 3, 6, 7};
  for (size_t i = 0; i < 4; i++) {
    uint8_t m[] = {0x40, CK_CODE(bad[i], 1), 0x00, 0x01};
    assert_int_equal(PARSE(m), CK_EMSG_CODE);
  }
  /* Unassigned codes in valid classes are not format errors. */
  uint8_t m[] = {0x40, CK_CODE(0, 31), 0x00, 0x01};
  assert_int_equal(PARSE(m), 0);
  uint8_t r[] = {0x60, CK_CODE(4, 31), 0x00, 0x01};
  assert_int_equal(PARSE(r), 0);
}

static void test_err_option_nibbles(void **state)
{
  (void)state;
  /* Delta nibble 15 with a length nibble other than 15. */
  static const uint8_t d15[] = {0x40, 0x01, 0x00, 0x01, 0xf0};
  assert_int_equal(PARSE(d15), CK_EOPT_DELTA);
  /* Length nibble 15. */
  static const uint8_t l15[] = {0x40, 0x01, 0x00, 0x01, 0x1f};
  assert_int_equal(PARSE(l15), CK_EOPT_LEN);
}

static void test_err_option_truncated(void **state)
{
  (void)state;
  /* Value longer than what is left. */
  static const uint8_t v[] = {0x40, 0x01, 0x00, 0x01, 0xb3, 'a', 'b'};
  assert_int_equal(PARSE(v), CK_EOPT_TRUNC);
  /* 1-byte delta extension missing. */
  static const uint8_t d13[] = {0x40, 0x01, 0x00, 0x01, 0xd0};
  assert_int_equal(PARSE(d13), CK_EOPT_TRUNC);
  /* 2-byte delta extension half present. */
  static const uint8_t d14[] = {0x40, 0x01, 0x00, 0x01, 0xe0, 0x01};
  assert_int_equal(PARSE(d14), CK_EOPT_TRUNC);
  /* 1-byte length extension missing. */
  static const uint8_t l13[] = {0x40, 0x01, 0x00, 0x01, 0x1d};
  assert_int_equal(PARSE(l13), CK_EOPT_TRUNC);
  /* 2-byte length extension says 269 + 1 but nothing follows. */
  static const uint8_t l14[] = {0x40, 0x01, 0x00, 0x01, 0x1e, 0x00, 0x01};
  assert_int_equal(PARSE(l14), CK_EOPT_TRUNC);
}

static void test_err_option_number_overflow(void **state)
{
  (void)state;
  /* 269 + 0xffff > 65535. */
  static const uint8_t m[] = {0x40, 0x01, 0x00, 0x01, 0xe0, 0xff, 0xff};
  assert_int_equal(PARSE(m), CK_EOPT_NUM);
  /* Exactly 65535 is allowed: 269 + 65266. */
  static const uint8_t ok[] = {0x40, 0x01, 0x00, 0x01, 0xe0, 0xfe, 0xf2};
  assert_int_equal(PARSE(ok), 0);
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&msg, 65535, &o), 0);
}

static void test_err_payload_marker_alone(void **state)
{
  (void)state;
  static const uint8_t m[] = {0x40, 0x01, 0x00, 0x01, 0xff};
  assert_int_equal(PARSE(m), CK_EMSG_PAYLOAD);
  static const uint8_t m2[] = {0x40, 0x01, 0x00, 0x01, 0xb1, 'a', 0xff};
  assert_int_equal(PARSE(m2), CK_EMSG_PAYLOAD);
}

static void test_payload(void **state)
{
  (void)state;
  static const uint8_t m[] = {0x60, 0x45, 0x00, 0x01, 0xc0, 0xff,
                              'h',  'e',  'y'};
  assert_int_equal(PARSE(m), 0);
  assert_int_equal(msg.code, CK_CONTENT);
  assert_int_equal(msg.payload_len, 3);
  assert_memory_equal(msg.payload, "hey", 3);
  uint32_t cf = 99;
  assert_int_equal(ck_msg_opt_uint(&msg, CK_OPT_CONTENT_FORMAT, &cf), 0);
  assert_int_equal(cf, 0);
  /* 0xff inside an option value is data, not a marker. */
  static const uint8_t v[] = {0x40, 0x01, 0x00, 0x01, 0x42, 0xff, 0xff};
  assert_int_equal(PARSE(v), 0);
  assert_null(msg.payload);
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&msg, CK_OPT_ETAG, &o), 0);
  assert_int_equal(o.len, 2);
}

/* Builds a message with one option of the given number and length and
 * checks that it parses back to the same option. */
static void roundtrip_one(uint16_t num, size_t len)
{
  static uint8_t val[70000];
  static uint8_t buf[70100];
  for (size_t i = 0; i < len; i++)
    val[i] = (uint8_t)(i * 7 + num);
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_NON, CK_POST, 0xbeef);
  ck_builder_opt(&b, num, val, len);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(ck_msg_parse(&msg, buf, (size_t)n), 0);
  assert_int_equal(msg.nopts, 1);
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&msg, num, &o), 0);
  assert_int_equal(o.num, num);
  assert_int_equal(o.len, len);
  if (len)
    assert_memory_equal(o.val, val, len);
}

static void test_extension_boundaries(void **state)
{
  (void)state;
  static const uint16_t nums[] = {0,   1,   12,  13,  14,   268,
                                  269, 270, 1000, 65535};
  static const size_t lens[] = {0, 1, 12, 13, 14, 268, 269, 270, 65535};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
    for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++)
      roundtrip_one(nums[i], lens[j]);
}

static void test_builder_sorts_stably(void **state)
{
  (void)state;
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 7);
  ck_builder_token(&b, "\x01\x02\x03\x04", 4);
  ck_builder_opt_uint(&b, CK_OPT_ACCEPT, 50);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "a");
  ck_builder_opt_str(&b, CK_OPT_URI_QUERY, "x=1");
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "b");
  ck_builder_opt_str(&b, CK_OPT_URI_HOST, "example.com");
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "c");
  ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 0);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(ck_msg_parse(&msg, buf, (size_t)n), 0);
  assert_int_equal(msg.nopts, 7);
  static const uint16_t want_num[] = {3, 6, 11, 11, 11, 15, 17};
  static const char *const want_val[] = {"example.com", "", "a", "b",
                                         "c", "x=1", "2"};
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, &msg);
  for (size_t i = 0; i < 7; i++) {
    assert_true(ck_opt_next(&it, &o));
    assert_int_equal(o.num, want_num[i]);
    if (o.num == CK_OPT_ACCEPT) {
      assert_int_equal(o.len, 1);
      assert_int_equal(o.val[0], 50);
    } else {
      assert_int_equal(o.len, strlen(want_val[i]));
      assert_memory_equal(o.val, want_val[i], o.len);
    }
  }
  assert_false(ck_opt_next(&it, &o));
  assert_int_equal(ck_msg_opt_count(&msg, CK_OPT_URI_PATH), 3);
  /* Observe 0 is encoded in zero bytes (RFC 7252 §3.2). */
  assert_int_equal(ck_msg_opt(&msg, CK_OPT_OBSERVE, &o), 0);
  assert_int_equal(o.len, 0);
}

static void test_builder_exact_bytes(void **state)
{
  (void)state;
  /* RFC 7252 Appendix A figure-style GET: CON, MID 0x7d34, no token,
   * Uri-Path "temperature". */
  static const uint8_t want[] = {0x40, 0x01, 0x7d, 0x34, 0xbb, 't', 'e',
                                 'm',  'p',  'e',  'r',  'a',  't', 'u',
                                 'r',  'e'};
  uint8_t buf[64];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 0x7d34);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "temperature");
  int n = ck_builder_finish(&b);
  assert_int_equal(n, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  /* Its piggybacked answer: ACK 2.05, payload "22.3 C". */
  static const uint8_t ack[] = {0x60, 0x45, 0x7d, 0x34, 0xff, '2', '2',
                                '.',  '3',  ' ',  'C'};
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_ACK, CK_CONTENT, 0x7d34);
  ck_builder_payload(&b, "22.3 C", 6);
  n = ck_builder_finish(&b);
  assert_int_equal(n, sizeof ack);
  assert_memory_equal(buf, ack, sizeof ack);
}

static void test_builder_errors(void **state)
{
  (void)state;
  uint8_t buf[16];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_builder_token(&b, "123456789", 9), CK_EMSG_TKL);
  assert_int_equal(ck_builder_finish(&b), CK_EMSG_TKL);

  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "0123456789abcdef");
  assert_int_equal(ck_builder_finish(&b), CK_ENOSPC);

  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  ck_builder_payload(&b, "0123456789ab", 12);
  assert_int_equal(ck_builder_finish(&b), CK_ENOSPC);

  ck_builder_init(&b, buf, 3, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_builder_finish(&b), CK_ENOSPC);

  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_ACK, CK_CODE_EMPTY, 1);
  ck_builder_token(&b, "a", 1);
  assert_int_equal(ck_builder_finish(&b), CK_EMSG_EMPTY);

  static uint8_t big[CK_OPT_VALUE_MAX + 1];
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_builder_opt(&b, 11, big, sizeof big), CK_EOPT_VALUE);

  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  for (unsigned i = 0; i < CK_BUILDER_MAX_OPTS; i++)
    assert_int_equal(ck_builder_opt(&b, 11, NULL, 0), 0);
  assert_int_equal(ck_builder_opt(&b, 11, NULL, 0), CK_EOPT_TOOMANY);
  assert_int_equal(ck_builder_finish(&b), CK_EOPT_TOOMANY);
}

static void test_uint_roundtrip(void **state)
{
  (void)state;
  static const uint32_t vals[] = {0,       1,        0xff,     0x100,
                                  0xffff,  0x10000,  0xffffff, 0x1000000,
                                  0xffffffff};
  static const size_t lens[] = {0, 1, 1, 2, 2, 3, 3, 4, 4};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    uint8_t enc[4];
    assert_int_equal(ck_opt_uint_encode(vals[i], enc), lens[i]);
    uint32_t back = 12345;
    assert_int_equal(ck_opt_uint_decode(enc, lens[i], &back), 0);
    assert_int_equal(back, vals[i]);

    uint8_t buf[32];
    struct ck_builder b;
    ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
    ck_builder_opt_uint(&b, CK_OPT_SIZE1, vals[i]);
    int n = ck_builder_finish(&b);
    assert_int_equal(ck_msg_parse(&msg, buf, (size_t)n), 0);
    assert_int_equal(ck_msg_opt_uint(&msg, CK_OPT_SIZE1, &back), 0);
    assert_int_equal(back, vals[i]);
  }
  /* Leading zeros are accepted; more than 4 significant bytes are not. */
  static const uint8_t padded[] = {0, 0, 0, 0, 0, 1};
  uint32_t v;
  assert_int_equal(ck_opt_uint_decode(padded, 6, &v), 0);
  assert_int_equal(v, 1);
  static const uint8_t wide[] = {1, 0, 0, 0, 0};
  assert_int_equal(ck_opt_uint_decode(wide, 5, &v), CK_ERANGE);
}

static void test_string_opaque_empty_roundtrip(void **state)
{
  (void)state;
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_PUT, 9);
  static const uint8_t etag[] = {0x00, 0xff, 0x10, 0x80};
  ck_builder_opt(&b, CK_OPT_IF_MATCH, etag, sizeof etag);
  ck_builder_opt(&b, CK_OPT_IF_NONE_MATCH, NULL, 0);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "\xc3\xa9t\xc3\xa9");
  ck_builder_opt(&b, CK_OPT_URI_PATH, "", 0);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(ck_msg_parse(&msg, buf, (size_t)n), 0);
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&msg, CK_OPT_IF_MATCH, &o), 0);
  assert_memory_equal(o.val, etag, 4);
  assert_int_equal(ck_msg_opt(&msg, CK_OPT_IF_NONE_MATCH, &o), 0);
  assert_int_equal(o.len, 0);
  assert_int_equal(ck_msg_opt_count(&msg, CK_OPT_URI_PATH), 2);
}

static void test_code_names(void **state)
{
  (void)state;
  char s[64];
  ck_code_format(s, sizeof s, CK_CONTENT);
  assert_string_equal(s, "2.05 Content");
  ck_code_format(s, sizeof s, CK_NOT_FOUND);
  assert_string_equal(s, "4.04 Not Found");
  ck_code_format(s, sizeof s, CK_CONTINUE);
  assert_string_equal(s, "2.31 Continue");
  ck_code_format(s, sizeof s, CK_GET);
  assert_string_equal(s, "0.01 GET");
  ck_code_format(s, sizeof s, CK_CODE(4, 30));
  assert_string_equal(s, "4.30");
  assert_string_equal(ck_code_name(CK_IPATCH), "iPATCH");
  assert_null(ck_code_name(CK_CODE(2, 6)));
  assert_string_equal(ck_type_name(CK_TYPE_RST), "RST");
  /* Truncation never overruns and reports the needed length. */
  char tiny[4];
  assert_int_equal(ck_code_format(tiny, sizeof tiny, CK_CONTENT), 12);
  assert_string_equal(tiny, "2.0");
}

static void test_errors_have_strings(void **state)
{
  (void)state;
  assert_string_equal(ck_strerror(CK_EMSG_TKL),
                      "token length 9-15 is reserved");
  assert_string_equal(ck_err_name(CK_EOPT_TRUNC), "EOPT_TRUNC");
  assert_string_equal(ck_strerror(0), "success");
  assert_string_equal(ck_strerror(-9999), "unknown error");
  for (int e = -1; e > -60; e--)
    assert_non_null(ck_strerror(e));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_minimal_get),
    cmocka_unit_test(test_empty_messages),
    cmocka_unit_test(test_err_short),
    cmocka_unit_test(test_err_version),
    cmocka_unit_test(test_err_tkl),
    cmocka_unit_test(test_err_token_truncated),
    cmocka_unit_test(test_err_empty_with_content),
    cmocka_unit_test(test_err_reserved_class),
    cmocka_unit_test(test_err_option_nibbles),
    cmocka_unit_test(test_err_option_truncated),
    cmocka_unit_test(test_err_option_number_overflow),
    cmocka_unit_test(test_err_payload_marker_alone),
    cmocka_unit_test(test_payload),
    cmocka_unit_test(test_extension_boundaries),
    cmocka_unit_test(test_builder_sorts_stably),
    cmocka_unit_test(test_builder_exact_bytes),
    cmocka_unit_test(test_builder_errors),
    cmocka_unit_test(test_uint_roundtrip),
    cmocka_unit_test(test_string_opaque_empty_roundtrip),
    cmocka_unit_test(test_code_names),
    cmocka_unit_test(test_errors_have_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
