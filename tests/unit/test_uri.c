/* Unit tests for the URI module (RFC 7252 §6): parsing, decomposition into
 * options (§6.4), recomposition from a message (§6.5), the equivalences of
 * §6.6 and the examples of Appendix B. Everything goes through the public
 * API, and the round trips go through a real message built with
 * ck_builder and read back with ck_msg_parse().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/msg.h"
#include "coapkit/opt.h"
#include "coapkit/uri.h"

enum { MAXOPTS = 64, SCRATCH = 4096 };

/* Parses and decomposes uri with roomy buffers. Returns the result of the
 * first call that fails, or the option count. */
static int decompose(const char *uri, size_t len, struct ck_opt *opts,
                     uint8_t *scratch)
{
  struct ck_uri u;
  int rc = ck_uri_parse(&u, uri, len);
  if (rc != 0)
    return rc;
  return ck_uri_opts(&u, opts, MAXOPTS, scratch, SCRATCH);
}

static int parse_err(const char *uri)
{
  struct ck_uri u;
  return ck_uri_parse(&u, uri, strlen(uri));
}

static int opts_err(const char *uri)
{
  struct ck_opt opts[MAXOPTS];
  static uint8_t scratch[SCRATCH];
  return decompose(uri, strlen(uri), opts, scratch);
}

/* Checks that uri decomposes to exactly the options listed, each written
 * as "H:host", "O:port" (decimal), "P:segment" or "Q:argument", the list
 * ending with NULL. */
static void expect_opts(const char *uri, ...)
{
  struct ck_opt opts[MAXOPTS];
  static uint8_t scratch[SCRATCH];
  int n = decompose(uri, strlen(uri), opts, scratch);
  if (n < 0)
    fail_msg("%s: %s", uri, ck_err_name(n));

  va_list ap;
  va_start(ap, uri);
  int i = 0;
  for (const char *e; (e = va_arg(ap, const char *)) != NULL; i++) {
    if (i >= n)
      fail_msg("%s: only %d options, expected %s", uri, n, e);
    const char *v = e + 2;
    uint8_t port[4];
    size_t vlen = strlen(v);
    uint16_t num = 0;
    switch (e[0]) {
    case 'H':
      num = CK_OPT_URI_HOST;
      break;
    case 'O':
      num = CK_OPT_URI_PORT;
      vlen = ck_opt_uint_encode((uint32_t)strtoul(v, NULL, 10), port);
      v = (const char *)port;
      break;
    case 'P':
      num = CK_OPT_URI_PATH;
      break;
    case 'Q':
      num = CK_OPT_URI_QUERY;
      break;
    }
    if (opts[i].num != num || opts[i].len != vlen ||
        (vlen > 0 && memcmp(opts[i].val, v, vlen) != 0))
      fail_msg("%s: option %d is %u \"%.*s\", expected %s", uri, i,
               (unsigned)opts[i].num, (int)opts[i].len,
               (const char *)opts[i].val, e);
  }
  va_end(ap);
  if (i != n)
    fail_msg("%s: %d options, expected %d", uri, n, i);
}

/* Builds a GET carrying opts[0..n) into buf and parses it into *m. */
static void build_msg(const struct ck_opt *opts, int n, uint8_t *buf,
                      size_t cap, struct ck_msg *m)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, CK_TYPE_CON, CK_GET, 0x1234);
  for (int i = 0; i < n; i++)
    ck_builder_opt(&b, opts[i].num, opts[i].val, opts[i].len);
  int len = ck_builder_finish(&b);
  assert_true(len > 0);
  assert_int_equal(ck_msg_parse(m, buf, (size_t)len), 0);
}

/* uri -> options -> message -> URI must give want. */
static void expect_roundtrip(const char *uri, const char *dest_host,
                             uint16_t dest_port, const char *want)
{
  struct ck_uri u;
  struct ck_opt opts[MAXOPTS];
  static uint8_t scratch[SCRATCH], buf[8192];
  struct ck_msg m;
  char out[1024];

  assert_int_equal(ck_uri_parse(&u, uri, strlen(uri)), 0);
  int n = ck_uri_opts(&u, opts, MAXOPTS, scratch, sizeof scratch);
  assert_true(n >= 0);
  build_msg(opts, n, buf, sizeof buf, &m);
  int len = ck_uri_from_msg(&m, u.scheme == CK_SCHEME_COAPS, dest_host,
                            dest_port, out, sizeof out);
  if (len < 0)
    fail_msg("%s: %s", uri, ck_err_name(len));
  assert_string_equal(out, want);
  assert_int_equal(len, (int)strlen(want));
}

/* RFC 7252 §6.6: "the following three URIs are equivalent, and cause the
 * same options and option values to appear in the CoAP messages". */
static void test_rfc_6_6_equivalence(void **state)
{
  (void)state;
  static const char *const uris[] = {
      "coap://example.com:5683/~sensors/temp.xml",
      "coap://EXAMPLE.com/%7Esensors/temp.xml",
      "coap://EXAMPLE.com:/%7esensors/temp.xml",
  };
  for (size_t i = 0; i < 3; i++) {
    expect_opts(uris[i], "H:example.com", "P:~sensors", "P:temp.xml", NULL);
    expect_roundtrip(uris[i], NULL, 5683,
                     "coap://example.com/~sensors/temp.xml");
  }
}

static void test_scheme(void **state)
{
  (void)state;
  struct ck_uri u;
  assert_int_equal(ck_uri_parse(&u, "COAP://h/", 9), 0);
  assert_int_equal(u.scheme, CK_SCHEME_COAP);
  assert_int_equal(u.port, CK_PORT_COAP);
  assert_int_equal(ck_uri_parse(&u, "CoAps://h", 9), 0);
  assert_int_equal(u.scheme, CK_SCHEME_COAPS);
  assert_int_equal(u.port, CK_PORT_COAPS);
  assert_false(u.port_given);

  assert_int_equal(parse_err("http://example.com/"), CK_EURI_SCHEME);
  assert_int_equal(parse_err("coaps+tcp://h/"), CK_EURI_SCHEME);
  assert_int_equal(parse_err("coapx://h/"), CK_EURI_SCHEME);
  assert_int_equal(parse_err("example.com/path"), CK_EURI_SCHEME);
  assert_int_equal(parse_err("//example.com/"), CK_EURI_SCHEME);
  assert_int_equal(parse_err("/a"), CK_EURI_SCHEME);
  assert_int_equal(parse_err("coap"), CK_EURI_SCHEME);
  assert_int_equal(parse_err(":coap"), CK_EURI_SCHEME);
  assert_int_equal(parse_err(""), CK_EURI_SCHEME);
  assert_int_equal(ck_uri_parse(&u, NULL, 0), CK_EURI_SCHEME);

  /* RFC 7252 §6.1: an absent authority or empty host is invalid. */
  assert_int_equal(parse_err("coap:"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap:/a"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap:a"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap://"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap:///a"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap://?a"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap://:5683/"), CK_EURI_HOST);
}

static void test_views(void **state)
{
  (void)state;
  struct ck_uri u;
  const char *s = "coap://Example.com:61616/a/b?x=1&y";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_int_equal(u.host_len, 11);
  assert_memory_equal(u.host, "Example.com", 11);
  assert_false(u.host_is_literal);
  assert_false(u.host_is_ipv6);
  assert_true(u.port_given);
  assert_int_equal(u.port, 61616);
  assert_int_equal(u.path_len, 4);
  assert_memory_equal(u.path, "/a/b", 4);
  assert_int_equal(u.query_len, 5);
  assert_memory_equal(u.query, "x=1&y", 5);

  assert_int_equal(ck_uri_parse(&u, "coap://h", 8), 0);
  assert_int_equal(u.path_len, 0);
  assert_null(u.query);
  assert_int_equal(ck_uri_parse(&u, "coap://h?", 9), 0);
  assert_non_null(u.query);
  assert_int_equal(u.query_len, 0);

  /* The parser never reads past len. */
  assert_int_equal(ck_uri_parse(&u, "coap://h/a#frag", 10), 0);
  assert_int_equal(u.path_len, 2);
}

/* RFC 7252 §6.4 step 5: a reg-name becomes a Uri-Host, lower-cased and
 * percent-decoded. */
static void test_host_reg_name(void **state)
{
  (void)state;
  expect_opts("coap://EXAMPLE.com/", "H:example.com", NULL);
  expect_opts("coap://ex%41mple.COM", "H:example.com", NULL);
  expect_opts("coap://xn--18j4d.example/", "H:xn--18j4d.example", NULL);
  expect_opts("coap://%C3%A9t%C3%A9/", "H:\xc3\xa9t\xc3\xa9", NULL);
  expect_opts("coap://a!$&'()*+,;=b/", "H:a!$&'()*+,;=b", NULL);
  expect_opts("coap://a%2Fb/", "H:a/b", NULL);
  /* Not dec-octets (leading zero, over 255): registered names. */
  expect_opts("coap://01.2.3.4/", "H:01.2.3.4", NULL);
  expect_opts("coap://256.1.1.1/", "H:256.1.1.1", NULL);
  expect_opts("coap://1.2.3/", "H:1.2.3", NULL);
}

/* RFC 7252 §6.4 step 5: no Uri-Host for an IP literal. */
static void test_host_ip_literal(void **state)
{
  (void)state;
  struct ck_uri u;
  const char *s;

  expect_opts("coap://192.0.2.1/", NULL);
  expect_opts("coap://255.255.255.255/", NULL);
  expect_opts("coap://[::1]/", NULL);
  expect_opts("coap://[::]/", NULL);
  expect_opts("coap://[2001:DB8::2:1]/x", "P:x", NULL);
  expect_opts("coap://[1:2:3:4:5:6:7:8]/", NULL);
  expect_opts("coap://[1::]/", NULL);
  expect_opts("coap://[::ffff:192.0.2.1]:61616/", "O:61616", NULL);
  expect_opts("coap://[1:2:3:4:5:6:192.0.2.1]/", NULL);
  /* "%31" is "1" (RFC 3986 §2.3), so this is 192.0.2.1. */
  expect_opts("coap://%31%39%32.0.2.1/", NULL);

  s = "coap://[::1]:5683/";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_true(u.host_is_literal);
  assert_true(u.host_is_ipv6);
  assert_int_equal(u.host_len, 3);
  assert_memory_equal(u.host, "::1", 3);

  /* RFC 6874: a zone, its '%' written "%25", stays in the view. */
  s = "coap://[fe80::1%25eth0]:61616/x";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_true(u.host_is_ipv6);
  assert_int_equal(u.host_len, 14);
  assert_memory_equal(u.host, "fe80::1%25eth0", 14);
  expect_opts(s, "O:61616", "P:x", NULL);
  char h[32];
  assert_int_equal(ck_uri_pct_decode(u.host, u.host_len, h, sizeof h), 12);
  assert_memory_equal(h, "fe80::1%eth0", 12);

  s = "coap://192.0.2.1:5683";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_true(u.host_is_literal);
  assert_false(u.host_is_ipv6);
}

static void test_host_errors(void **state)
{
  (void)state;
  static const char *const bad[] = {
      "coap://[::1/",
      "coap://[::1]x/",
      "coap://[::1]]/",
      "coap://[1:2:3:4:5:6:7:8:9]/",
      "coap://[1:2:3:4:5:6:7]/",
      "coap://[:::]/",
      "coap://[1:::2]/",
      "coap://[1::2::3]/",
      "coap://[:1]/",
      "coap://[1:]/",
      "coap://[12345::]/",
      "coap://[g::]/",
      "coap://[]/",
      "coap://[::1.2.3]/",
      "coap://[::1.2.3.4.5]/",
      "coap://[::256.1.1.1]/",
      "coap://[1.2.3.4]/",
      "coap://[fe80::1%eth0]/",
      "coap://[fe80::1%25]/",
      "coap://[fe80::1%25a/b]/",
      "coap://[v1.x]/",
      "coap://a b/",
      "coap://a[b/",
      "coap://]/",
      "coap://h\x80/",
      "coap://h\"/",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (parse_err(bad[i]) != CK_EURI_HOST)
      fail_msg("%s: %s", bad[i], ck_err_name(parse_err(bad[i])));
  assert_int_equal(parse_err("coap://h%zz/"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h%4"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://[fe80::1%25e%zz]/"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://[fe80::1%25e%2]/"), CK_EURI_ESCAPE);
  /* RFC 6874 §2: a zone is unreserved characters and escapes only. */
  assert_int_equal(parse_err("coap://[fe80::1%25e!]/"), CK_EURI_HOST);
  assert_int_equal(parse_err("coap://[fe80::1%25e%2F0]/"), 0);
}

/* ck_uri_opts() checks a struct ck_uri that did not come from the
 * parser. */
static void test_handmade(void **state)
{
  (void)state;
  struct ck_opt opts[4];
  uint8_t scratch[16];
  struct ck_uri u = {.scheme = CK_SCHEME_COAP, .port = 5683};
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 16), CK_EINVAL);
  u.host = "h%zz";
  u.host_len = 4;
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 16), CK_EURI_ESCAPE);
  u.host_len = 1;
  u.path = "a/b";
  u.path_len = 3;
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 16), CK_EINVAL);
  u.path = "/a%4";
  u.path_len = 4;
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 16), CK_EURI_ESCAPE);
  u.path_len = 2;
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 16), 2);
  u.scheme = 7;
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 16), CK_EINVAL);
}

/* CoAP URIs have no userinfo (RFC 7252 §6.1 grammar). */
static void test_userinfo(void **state)
{
  (void)state;
  assert_int_equal(parse_err("coap://user@h/"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://user:pw@h:5683/"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://@h/"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://u@[::1]/"), CK_EURI_SYNTAX);
  /* An '@' in the path is a plain pchar. */
  expect_opts("coap://h/a@b", "H:h", "P:a@b", NULL);
}

/* RFC 7252 §6.4 steps 6 and 7. */
static void test_ports(void **state)
{
  (void)state;
  struct ck_uri u;
  expect_opts("coap://h:61616/", "H:h", "O:61616", NULL);
  expect_opts("coap://h:5683/", "H:h", NULL);
  expect_opts("coap://h:05683/", "H:h", NULL);
  expect_opts("coap://h:5684/", "H:h", "O:5684", NULL);
  expect_opts("coaps://h:5684/", "H:h", NULL);
  expect_opts("coaps://h:5683/", "H:h", "O:5683", NULL);
  expect_opts("coaps://h/", "H:h", NULL);
  expect_opts("coap://h:65535", "H:h", "O:65535", NULL);
  expect_opts("coap://h:1?q", "H:h", "O:1", "Q:q", NULL);
  expect_opts("coap://h:0/", "H:h", "O:0", NULL);

  assert_int_equal(ck_uri_parse(&u, "coap://h:5683", 13), 0);
  assert_true(u.port_given);
  assert_int_equal(ck_uri_parse(&u, "coap://h:0", 10), 0);
  assert_true(u.port_given);
  assert_int_equal(u.port, 0);
  /* An empty port is the default port (RFC 3986 §3.2.3, §6.6). */
  assert_int_equal(ck_uri_parse(&u, "coap://h:/", 10), 0);
  assert_false(u.port_given);
  assert_int_equal(u.port, 5683);
  expect_opts("coap://h:/", "H:h", NULL);
  expect_opts("coaps://[::1]:", NULL);

  assert_int_equal(parse_err("coap://h:65536/"), CK_EURI_PORT);
  assert_int_equal(parse_err("coap://h:100000/"), CK_EURI_PORT);
  assert_int_equal(parse_err("coap://h:99999999999999999999999/"),
                   CK_EURI_PORT);
  assert_int_equal(parse_err("coap://h:12a/"), CK_EURI_PORT);
  assert_int_equal(parse_err("coap://h:-1/"), CK_EURI_PORT);
  assert_int_equal(parse_err("coap://h:+1/"), CK_EURI_PORT);
  assert_int_equal(parse_err("coap://h:1:2/"), CK_EURI_PORT);
  assert_int_equal(parse_err("coap://[::1]:x/"), CK_EURI_PORT);
}

/* RFC 7252 §6.4 step 8. */
static void test_path(void **state)
{
  (void)state;
  expect_opts("coap://h", "H:h", NULL);
  expect_opts("coap://h/", "H:h", NULL);
  expect_opts("coap://h/a", "H:h", "P:a", NULL);
  expect_opts("coap://h/a/b", "H:h", "P:a", "P:b", NULL);
  /* "/a/" has the segments "a" and "". */
  expect_opts("coap://h/a/", "H:h", "P:a", "P:", NULL);
  expect_opts("coap://h//", "H:h", "P:", "P:", NULL);
  expect_opts("coap://h/a//b", "H:h", "P:a", "P:", "P:b", NULL);
  expect_opts("coap://h/a%2Fb", "H:h", "P:a/b", NULL);
  expect_opts("coap://h/%2F", "H:h", "P:/", NULL);
  expect_opts("coap://h/a%3Fb%23c%25", "H:h", "P:a?b#c%", NULL);
  expect_opts("coap://h/:@!$&'()*+,;=", "H:h", "P::@!$&'()*+,;=", NULL);
  /* Hex digits are case-insensitive; the path itself is not. */
  expect_opts("coap://h/A/%7e", "H:h", "P:A", "P:~", NULL);
  expect_opts("coap://h/%E3%81%93", "H:h", "P:\xe3\x81\x93", NULL);
}

/* RFC 3986 §5.2.4, which RFC 7252 §6.4 step 2 applies, and §5.10.1:
 * no Uri-Path is ever "." or "..". */
static void test_dot_segments(void **state)
{
  (void)state;
  /* The two examples of RFC 3986 §5.2.4. */
  expect_opts("coap://h/a/b/c/./../../g", "H:h", "P:a", "P:g", NULL);
  expect_opts("coap://h/mid/content=5/../6", "H:h", "P:mid", "P:6", NULL);

  expect_opts("coap://h/.", "H:h", NULL);
  expect_opts("coap://h/..", "H:h", NULL);
  expect_opts("coap://h/./", "H:h", NULL);
  expect_opts("coap://h/../", "H:h", NULL);
  expect_opts("coap://h/../../..", "H:h", NULL);
  expect_opts("coap://h/a/..", "H:h", NULL);
  expect_opts("coap://h/a/./..", "H:h", NULL);
  expect_opts("coap://h/a/.", "H:h", "P:a", "P:", NULL);
  expect_opts("coap://h/a/b/..", "H:h", "P:a", "P:", NULL);
  expect_opts("coap://h/a/b/../", "H:h", "P:a", "P:", NULL);
  expect_opts("coap://h/a/b/../.", "H:h", "P:a", "P:", NULL);
  expect_opts("coap://h/../a", "H:h", "P:a", NULL);
  expect_opts("coap://h/./a/./b", "H:h", "P:a", "P:b", NULL);
  expect_opts("coap://h/a//..", "H:h", "P:a", "P:", NULL);
  expect_opts("coap://h/a//../b", "H:h", "P:a", "P:b", NULL);
  expect_opts("coap://h/a/../../b/", "H:h", "P:b", "P:", NULL);
  expect_opts("coap://h/a/../b?x", "H:h", "P:b", "Q:x", NULL);
  /* "%2E" is "." (RFC 3986 §2.3). */
  expect_opts("coap://h/a/%2E%2e/b", "H:h", "P:b", NULL);
  expect_opts("coap://h/a/.%2E/b", "H:h", "P:b", NULL);
  expect_opts("coap://h/a/%2e/b", "H:h", "P:a", "P:b", NULL);
  /* Not dot segments. */
  expect_opts("coap://h/.../a", "H:h", "P:...", "P:a", NULL);
  expect_opts("coap://h/.a/a./..b", "H:h", "P:.a", "P:a.", "P:..b", NULL);
  /* A dot segment in the query is just text. */
  expect_opts("coap://h/?..", "H:h", "Q:..", NULL);
}

/* RFC 7252 §6.4 step 9. */
static void test_query(void **state)
{
  (void)state;
  expect_opts("coap://h?a", "H:h", "Q:a", NULL);
  expect_opts("coap://h/?a=1&b=2", "H:h", "Q:a=1", "Q:b=2", NULL);
  expect_opts("coap://h/p?a&&b", "H:h", "P:p", "Q:a", "Q:", "Q:b", NULL);
  expect_opts("coap://h/?", "H:h", "Q:", NULL);
  expect_opts("coap://h/?&", "H:h", "Q:", "Q:", NULL);
  expect_opts("coap://h/?a&", "H:h", "Q:a", "Q:", NULL);
  expect_opts("coap://h/?a%26b", "H:h", "Q:a&b", NULL);
  expect_opts("coap://h/?x=a/b?c", "H:h", "Q:x=a/b?c", NULL);
  expect_opts("coap://h/?a+b%20c", "H:h", "Q:a+b c", NULL);
  expect_opts("coap://h/?%3F%2F%26", "H:h", "Q:?/&", NULL);
}

/* RFC 7252 §6.4 step 4. */
static void test_fragment(void **state)
{
  (void)state;
  assert_int_equal(parse_err("coap://h/#x"), CK_EURI_FRAGMENT);
  assert_int_equal(parse_err("coap://h/p?q#"), CK_EURI_FRAGMENT);
  assert_int_equal(parse_err("coap://h#"), CK_EURI_FRAGMENT);
  assert_int_equal(parse_err("coap://#"), CK_EURI_FRAGMENT);
  assert_int_equal(parse_err("http://h/#x"), CK_EURI_SCHEME);
  expect_opts("coap://h/%23", "H:h", "P:#", NULL);
}

static void test_escapes(void **state)
{
  (void)state;
  assert_int_equal(parse_err("coap://h/%zz"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/%4"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/%4/"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/%"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/%%41"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/a%g0"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/?%"), CK_EURI_ESCAPE);
  assert_int_equal(parse_err("coap://h/?a=%2"), CK_EURI_ESCAPE);
  /* Every escape is decoded once, never twice. */
  expect_opts("coap://h/%2541", "H:h", "P:%41", NULL);

  /* Option values are bytes: "%00" is a NUL in the value. */
  struct ck_opt opts[MAXOPTS];
  static uint8_t scratch[SCRATCH];
  assert_int_equal(decompose("coap://h/a%00b", 14, opts, scratch), 2);
  assert_int_equal(opts[1].len, 3);
  assert_memory_equal(opts[1].val, "a\0b", 3);
}

static void test_syntax(void **state)
{
  (void)state;
  struct ck_uri u;
  assert_int_equal(parse_err("coap://h/a b"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/<a>"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/[x]"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/a\\b"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/\x80"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/?a b"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/?{}"), CK_EURI_SYNTAX);
  assert_int_equal(parse_err("coap://h/a\n"), CK_EURI_SYNTAX);
  assert_int_equal(ck_uri_parse(&u, "coap://h/a\0b", 12), CK_EURI_SYNTAX);
  assert_int_equal(ck_uri_parse(NULL, "coap://h/", 9), CK_EINVAL);
}

/* RFC 7252 §5.10: Uri-Host, Uri-Path and Uri-Query hold 255 bytes at
 * most. */
static void test_too_long(void **state)
{
  (void)state;
  char uri[2048];
  char seg[1024];

  memset(seg, 'x', 255);
  seg[255] = '\0';
  snprintf(uri, sizeof uri, "coap://h/%s", seg);
  assert_int_equal(opts_err(uri), 2);
  snprintf(uri, sizeof uri, "coap://h/?%s", seg);
  assert_int_equal(opts_err(uri), 2);
  snprintf(uri, sizeof uri, "coap://%s/", seg);
  assert_int_equal(opts_err(uri), 1);

  memset(seg, 'x', 256);
  seg[256] = '\0';
  snprintf(uri, sizeof uri, "coap://h/a/%s/b", seg);
  assert_int_equal(opts_err(uri), CK_EURI_TOOLONG);
  snprintf(uri, sizeof uri, "coap://h/?a&%s", seg);
  assert_int_equal(opts_err(uri), CK_EURI_TOOLONG);
  snprintf(uri, sizeof uri, "coap://%s/", seg);
  assert_int_equal(opts_err(uri), CK_EURI_TOOLONG);
  /* A segment that ".." removes never becomes an option. */
  snprintf(uri, sizeof uri, "coap://h/%s/../a", seg);
  assert_int_equal(opts_err(uri), 2);

  /* Lengths count decoded bytes: 255 escapes are 255 bytes. */
  for (int i = 0; i < 256; i++)
    memcpy(seg + 3 * i, "%41", 3);
  seg[3 * 255] = '\0';
  snprintf(uri, sizeof uri, "coap://h/%s", seg);
  assert_int_equal(opts_err(uri), 2);
  seg[3 * 255] = '%';
  seg[3 * 256] = '\0';
  snprintf(uri, sizeof uri, "coap://h/%s", seg);
  assert_int_equal(opts_err(uri), CK_EURI_TOOLONG);
}

/* Exactly the room needed is enough; one option or byte less is
 * CK_ENOSPC. */
static void test_enospc(void **state)
{
  (void)state;
  struct ck_uri u;
  struct ck_opt opts[8];
  uint8_t scratch[64];
  const char *s = "coap://host:61616/a/bb/../c?q=1";
  /* host(4) port(2) a(1) c(1) q=1(3): 5 options, 11 bytes. */
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_int_equal(ck_uri_opts(&u, opts, 5, scratch, 11), 5);
  assert_int_equal(ck_uri_opts(&u, opts, 4, scratch, 64), CK_ENOSPC);
  assert_int_equal(ck_uri_opts(&u, opts, 8, scratch, 10), CK_ENOSPC);
  assert_int_equal(ck_uri_opts(&u, opts, 1, scratch, 64), CK_ENOSPC);
  assert_int_equal(ck_uri_opts(&u, opts, 0, NULL, 0), CK_ENOSPC);
  assert_int_equal(ck_uri_opts(&u, opts, 3, scratch, 64), CK_ENOSPC);
  assert_int_equal(ck_uri_opts(&u, opts, 8, scratch, 7), CK_ENOSPC);
  assert_int_equal(ck_uri_opts(&u, opts, 8, scratch, 8), CK_ENOSPC);

  /* The segment ".." removes needs no room, not even for a moment. */
  s = "coap://[::1]/aaaaaaaa/../b";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_int_equal(ck_uri_opts(&u, opts, 1, scratch, 1), 1);
  assert_int_equal(opts[0].num, CK_OPT_URI_PATH);
  assert_int_equal(opts[0].len, 1);
  assert_memory_equal(opts[0].val, "b", 1);

  /* Nothing to store needs no buffers. */
  s = "coap://[::1]/";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_int_equal(ck_uri_opts(&u, NULL, 0, NULL, 0), 0);
  s = "coap://h/?";
  assert_int_equal(ck_uri_parse(&u, s, strlen(s)), 0);
  assert_int_equal(ck_uri_opts(&u, opts, 2, scratch, 1), 2);
  assert_int_equal(ck_uri_opts(&u, opts, 1, scratch, 1), CK_ENOSPC);

  assert_int_equal(ck_uri_opts(NULL, opts, 1, scratch, 1), CK_EINVAL);
}

static void test_pct_decode(void **state)
{
  (void)state;
  char out[16];
  char buf[] = "a%20b%7e%7E";
  assert_int_equal(ck_uri_pct_decode("a%20b", 5, out, sizeof out), 3);
  assert_memory_equal(out, "a b", 3);
  assert_int_equal(ck_uri_pct_decode(buf, 11, buf, sizeof buf), 5);
  assert_memory_equal(buf, "a b~~", 5);
  assert_int_equal(ck_uri_pct_decode("", 0, out, 0), 0);
  assert_int_equal(ck_uri_pct_decode("%zz", 3, out, sizeof out),
                   CK_EURI_ESCAPE);
  assert_int_equal(ck_uri_pct_decode("%4", 2, out, sizeof out), CK_EURI_ESCAPE);
  /* len bounds the read: "%41" cut after two bytes is malformed. */
  assert_int_equal(ck_uri_pct_decode("%41", 2, out, sizeof out),
                   CK_EURI_ESCAPE);
  assert_int_equal(ck_uri_pct_decode("abc", 3, out, 2), CK_ENOSPC);
  assert_int_equal(ck_uri_pct_decode("%00", 3, out, 1), 1);
  assert_int_equal(out[0], 0);
}

/* Builds a request from (number, value) pairs ending with 0, and composes
 * its URI. */
static int compose(bool secure, const char *dest, uint16_t port, char *out,
                   size_t cap, ...)
{
  static uint8_t buf[4096];
  struct ck_opt opts[16];
  struct ck_msg m;
  int n = 0;
  va_list ap;
  va_start(ap, cap);
  for (int num; (num = va_arg(ap, int)) != 0; n++) {
    const char *v = va_arg(ap, const char *);
    opts[n] =
        (struct ck_opt){(uint16_t)num, (uint16_t)strlen(v), (const uint8_t *)v};
  }
  va_end(ap);
  build_msg(opts, n, buf, sizeof buf, &m);
  return ck_uri_from_msg(&m, secure, dest, port, out, cap);
}

/* RFC 7252 Appendix B, whose examples exercise §6.5. */
static void test_appendix_b(void **state)
{
  (void)state;
  char out[256];
  const char *d6 = "2001:db8::2:1";

  compose(false, d6, 5683, out, sizeof out, 0);
  assert_string_equal(out, "coap://[2001:db8::2:1]/");

  compose(false, d6, 5683, out, sizeof out, CK_OPT_URI_HOST, "example.net", 0);
  assert_string_equal(out, "coap://example.net/");

  compose(false, d6, 5683, out, sizeof out, CK_OPT_URI_HOST, "example.net",
          CK_OPT_URI_PATH, ".well-known", CK_OPT_URI_PATH, "core", 0);
  assert_string_equal(out, "coap://example.net/.well-known/core");

  compose(false, d6, 5683, out, sizeof out, CK_OPT_URI_HOST,
          "xn--18j4d.example", CK_OPT_URI_PATH,
          "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf", 0);
  assert_string_equal(out, "coap://xn--18j4d.example/"
                           "%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF");

  /* Example 5. The appendix prints the first query "%2F%2F", but §6.5
   * step 8 keeps '/' (and '?') unencoded in a query, and the normative
   * text wins; both spellings decompose to the same options. */
  int len =
      compose(false, "198.51.100.1", 61616, out, sizeof out, CK_OPT_URI_PATH,
              "", CK_OPT_URI_PATH, "/", CK_OPT_URI_PATH, "", CK_OPT_URI_PATH,
              "", CK_OPT_URI_QUERY, "//", CK_OPT_URI_QUERY, "?&", 0);
  assert_string_equal(out, "coap://198.51.100.1:61616//%2F//?//&?%26");
  assert_int_equal(len, (int)strlen(out));
  expect_opts(out, "O:61616", "P:", "P:/", "P:", "P:", "Q://", "Q:?&", NULL);
  expect_opts("coap://198.51.100.1:61616//%2F//?%2F%2F&?%26", "O:61616",
              "P:", "P:/", "P:", "P:", "Q://", "Q:?&", NULL);
}

/* RFC 7252 §6.5 in the cases Appendix B leaves out. */
static void test_compose(void **state)
{
  (void)state;
  char out[256];

  /* Steps 3 and 4: Uri-Port wins over the destination port, and the
   * scheme's default port is left out. */
  compose(false, "192.0.2.1", 61616, out, sizeof out, 0);
  assert_string_equal(out, "coap://192.0.2.1:61616/");
  compose(true, "192.0.2.1", 5684, out, sizeof out, 0);
  assert_string_equal(out, "coaps://192.0.2.1/");
  compose(true, "192.0.2.1", 5683, out, sizeof out, 0);
  assert_string_equal(out, "coaps://192.0.2.1:5683/");
  compose(false, "192.0.2.1", 61616, out, sizeof out, CK_OPT_URI_PORT,
          "\x16\x33", 0);
  assert_string_equal(out, "coap://192.0.2.1/");
  compose(false, "192.0.2.1", 5683, out, sizeof out, CK_OPT_URI_PORT, "", 0);
  assert_string_equal(out, "coap://192.0.2.1:0/");
  assert_int_equal(compose(false, "192.0.2.1", 5683, out, sizeof out,
                           CK_OPT_URI_PORT, "\x01\x01\x01", 0),
                   CK_EURI_PORT);

  /* Step 2: zones (RFC 6874), brackets given or not. */
  compose(false, "fe80::1%eth0", 5683, out, sizeof out, 0);
  assert_string_equal(out, "coap://[fe80::1%25eth0]/");
  compose(false, "[::1]", 5683, out, sizeof out, 0);
  assert_string_equal(out, "coap://[::1]/");
  compose(false, "fe80::1%e/0", 5683, out, sizeof out, 0);
  assert_string_equal(out, "coap://[fe80::1%25e%2F0]/");
  assert_int_equal(compose(false, "fe80::1%", 5683, out, sizeof out, 0),
                   CK_EINVAL);
  assert_int_equal(compose(false, "1:2:3", 5683, out, sizeof out, 0),
                   CK_EINVAL);
  assert_int_equal(compose(false, NULL, 5683, out, sizeof out, 0),
                   CK_EURI_HOST);
  assert_int_equal(compose(false, "", 5683, out, sizeof out, 0), CK_EURI_HOST);

  /* Step 2 with a Uri-Host: IP literals as they are, anything else
   * encoded as a reg-name, case kept. */
  compose(false, NULL, 5683, out, sizeof out, CK_OPT_URI_HOST, "[::1]", 0);
  assert_string_equal(out, "coap://[::1]/");
  compose(false, NULL, 5683, out, sizeof out, CK_OPT_URI_HOST, "10.0.0.1", 0);
  assert_string_equal(out, "coap://10.0.0.1/");
  compose(false, NULL, 5683, out, sizeof out, CK_OPT_URI_HOST, "Ex ample:%/[]",
          0);
  assert_string_equal(out, "coap://Ex%20ample%3A%25%2F%5B%5D/");
  assert_int_equal(
      compose(false, "::1", 5683, out, sizeof out, CK_OPT_URI_HOST, "", 0),
      CK_EURI_HOST);

  /* Steps 5 to 8: which characters each part keeps. */
  compose(false, NULL, 5683, out, sizeof out, CK_OPT_URI_HOST, "h",
          CK_OPT_URI_PATH, "a:@!$&'()*+,;=-._~", CK_OPT_URI_PATH, "/?#[]% \"",
          CK_OPT_URI_QUERY, "a:@!$'()*+,;=/?", CK_OPT_URI_QUERY, "&#[]% ", 0);
  assert_string_equal(out, "coap://h/a:@!$&'()*+,;=-._~/%2F%3F%23%5B%5D%25%20"
                           "%22?a:@!$'()*+,;=/?&%26%23%5B%5D%25%20");
  compose(false, NULL, 5683, out, sizeof out, CK_OPT_URI_HOST, "h",
          CK_OPT_URI_QUERY, "", 0);
  assert_string_equal(out, "coap://h/?");

  /* RFC 7252 §5.10.1: a Uri-Path of "." or ".." has no URI. */
  assert_int_equal(
      compose(false, "::1", 5683, out, sizeof out, CK_OPT_URI_PATH, "..", 0),
      CK_EURI_SYNTAX);
  assert_int_equal(compose(false, "::1", 5683, out, sizeof out, CK_OPT_URI_PATH,
                           "a", CK_OPT_URI_PATH, ".", 0),
                   CK_EURI_SYNTAX);
  compose(false, "::1", 5683, out, sizeof out, CK_OPT_URI_PATH, "...", 0);
  assert_string_equal(out, "coap://[::1]/...");

  /* Capacity: the string and its NUL must fit. */
  const char *want = "coap://h/abc";
  size_t n = strlen(want);
  assert_int_equal(compose(false, NULL, 5683, out, n + 1, CK_OPT_URI_HOST, "h",
                           CK_OPT_URI_PATH, "abc", 0),
                   (int)n);
  assert_string_equal(out, want);
  assert_int_equal(compose(false, NULL, 5683, out, n, CK_OPT_URI_HOST, "h",
                           CK_OPT_URI_PATH, "abc", 0),
                   CK_ENOSPC);
  assert_int_equal(compose(false, NULL, 5683, NULL, 0, CK_OPT_URI_HOST, "h", 0),
                   CK_ENOSPC);
}

/* URI -> options -> message -> URI gives the normal form of §6.6. */
static void test_roundtrip(void **state)
{
  (void)state;
  expect_roundtrip("coap://[::1]", "::1", 5683, "coap://[::1]/");
  expect_roundtrip("coap://[::1]:61616/", "::1", 5683, "coap://[::1]:61616/");
  expect_roundtrip("coap://[fe80::1%25eth0]:5683/x", "fe80::1%eth0", 5683,
                   "coap://[fe80::1%25eth0]/x");
  expect_roundtrip("coap://192.0.2.1:1234", "192.0.2.1", 5683,
                   "coap://192.0.2.1:1234/");
  expect_roundtrip("COAPS://H:5684/a/b/?x&y=1", NULL, 5684,
                   "coaps://h/a/b/?x&y=1");
  expect_roundtrip("coap://h:61616/a%20b/c%2fd?q%26=1&r", NULL, 5683,
                   "coap://h:61616/a%20b/c%2Fd?q%26=1&r");
  expect_roundtrip("coap://h/%e2%82%ac", NULL, 5683, "coap://h/%E2%82%AC");
  expect_roundtrip("coap://h/a:b@c!$'()*+,;=", NULL, 5683,
                   "coap://h/a:b@c!$'()*+,;=");
  expect_roundtrip("coap://h/?a:b@c/d?e", NULL, 5683, "coap://h/?a:b@c/d?e");
  expect_roundtrip("coap://h?", NULL, 5683, "coap://h/?");
  expect_roundtrip("coap://h/?a&&", NULL, 5683, "coap://h/?a&&");
  expect_roundtrip("coap://h/a/", NULL, 5683, "coap://h/a/");
  expect_roundtrip("coap://h//", NULL, 5683, "coap://h//");
  expect_roundtrip("coap://h/a/../b/./c/.", NULL, 5683, "coap://h/b/c/");
  expect_roundtrip("coap://h/%7E%41", NULL, 5683, "coap://h/~A");
  expect_roundtrip("coap://Ex%41mple%2Fx/", NULL, 5683, "coap://example%2Fx/");
  expect_roundtrip("coap://%31%39%32.0.2.1/", "192.0.2.1", 5683,
                   "coap://192.0.2.1/");
}

static void test_to_builder(void **state)
{
  (void)state;
  struct ck_builder b;
  struct ck_msg m;
  uint8_t buf[256], scratch[64];
  char out[128];

  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_uri_to_builder("coap://Example.com:61616/a/../b?x&y", &b,
                                     scratch, sizeof scratch),
                   0);
  int len = ck_builder_finish(&b);
  assert_true(len > 0);
  assert_int_equal(ck_msg_parse(&m, buf, (size_t)len), 0);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_URI_HOST), 1);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_URI_PORT), 1);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_URI_PATH), 1);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_URI_QUERY), 2);
  assert_int_equal(ck_uri_from_msg(&m, false, NULL, 5683, out, sizeof out), 30);
  assert_string_equal(out, "coap://example.com:61616/b?x&y");

  /* A bad URI is reported now and by ck_builder_finish(). */
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 2);
  assert_int_equal(ck_uri_to_builder("http://h/", &b, scratch, sizeof scratch),
                   CK_EURI_SCHEME);
  assert_int_equal(ck_builder_finish(&b), CK_EURI_SCHEME);

  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 3);
  assert_int_equal(ck_uri_to_builder("coap://host/", &b, scratch, 3),
                   CK_ENOSPC);
  assert_int_equal(ck_uri_to_builder(NULL, &b, scratch, 3), CK_EINVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc_6_6_equivalence),
      cmocka_unit_test(test_scheme),
      cmocka_unit_test(test_views),
      cmocka_unit_test(test_host_reg_name),
      cmocka_unit_test(test_host_ip_literal),
      cmocka_unit_test(test_host_errors),
      cmocka_unit_test(test_handmade),
      cmocka_unit_test(test_userinfo),
      cmocka_unit_test(test_ports),
      cmocka_unit_test(test_path),
      cmocka_unit_test(test_dot_segments),
      cmocka_unit_test(test_query),
      cmocka_unit_test(test_fragment),
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_syntax),
      cmocka_unit_test(test_too_long),
      cmocka_unit_test(test_enospc),
      cmocka_unit_test(test_pct_decode),
      cmocka_unit_test(test_appendix_b),
      cmocka_unit_test(test_compose),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_to_builder),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
