/* Unit tests for the device endpoint's parsers and its event
 * (coapd/device_auth.c, coapd/device_event.c): base64 against RFC 4648
 * §10's vectors and the strictness rules (padding, pad bits, alphabet);
 * option 4209's Basic credentials in every form Drogue accepts and the
 * ones refused; the JSON family of content formats; the strict JSON
 * validator against valid and invalid texts; UTF-8; and the CloudEvent's
 * shape, read back with cJSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "device_int.h"

static int dec(const char *in, char *out, size_t cap)
{
  int n = device_base64_decode(in, strlen(in), (uint8_t *)out, cap);
  if (n >= 0 && (size_t)n < cap)
    out[n] = '\0';
  return n;
}

static void test_base64_vectors(void **state)
{
  (void)state;
  /* RFC 4648 §10. */
  static const char *const v[][2] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
    {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char out[16], enc[16];
    assert_int_equal(dec(v[i][1], out, sizeof out), strlen(v[i][0]));
    assert_string_equal(out, v[i][0]);
    assert_int_equal(device_base64_encode((const uint8_t *)v[i][0],
                                          strlen(v[i][0]), enc, sizeof enc),
                     strlen(v[i][1]));
    assert_string_equal(enc, v[i][1]);
  }
  uint8_t all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (uint8_t)i;
  char enc[400];
  uint8_t back[256];
  int n = device_base64_encode(all, sizeof all, enc, sizeof enc);
  assert_int_equal(n, 344);
  assert_int_equal(device_base64_decode(enc, (size_t)n, back, sizeof back),
                   256);
  assert_memory_equal(all, back, 256);
  /* The encoder needs room for the NUL. */
  assert_int_equal(device_base64_encode(all, 3, enc, 4), -EMSGSIZE);
}

static void test_base64_strict(void **state)
{
  (void)state;
  char out[16];
  static const char *const bad[] = {
    "Zg",       /* padding left out */
    "Zg=",      /* length not a multiple of 4 */
    "Zh==",     /* pad bits not zero: only "Zg==" is 'f' */
    "Zm9=",     /* same, one '=' */
    "Zg==Zg==", /* padding in the middle */
    "Z===",     /* three '=' */
    "====",     /* nothing but padding */
    "Zm 9v",    /* whitespace */
    "Zm9v\n",   /* a newline */
    "Zm-_",     /* the URL-safe alphabet */
    "Zm9v=",    /* a '=' after a full group */
    "=Zm9",     /* a '=' first */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(dec(bad[i], out, sizeof out), -EINVAL);
  assert_int_equal(dec("Zm9vYmFy", out, 5), -EMSGSIZE);
  assert_int_equal(dec("Zm9vYmFy", out, 6), 6);
}

/* Parses "Basic " + base64(plain) (or val as given when plain is NULL). */
static int creds(const char *scheme, const char *plain, char *buf,
                 size_t cap, struct device_creds *c)
{
  char val[512];
  size_t n = strlen(scheme);
  memcpy(val, scheme, n);
  int k = device_base64_encode((const uint8_t *)plain, strlen(plain),
                               val + n, sizeof val - n);
  assert_true(k >= 0);
  return device_auth_parse((const uint8_t *)val, n + (size_t)k, buf, cap, c);
}

static void test_auth_forms(void **state)
{
  (void)state;
  char buf[DEVICE_CREDS_MAX];
  struct device_creds c;
  /* Drogue's example, byte for byte. */
  const char *ex = "Basic ZGV2aWNlMUBleGFtcGxlLWFwcDpoZXktcm9kbmV5";
  assert_int_equal(device_auth_parse((const uint8_t *)ex, strlen(ex), buf,
                                     sizeof buf, &c),
                   0);
  assert_int_equal(c.device_len, 7);
  assert_memory_equal(c.device, "device1", 7);
  assert_non_null(c.application);
  assert_int_equal(c.application_len, 11);
  assert_memory_equal(c.application, "example-app", 11);
  assert_int_equal(c.password_len, 10);
  assert_memory_equal(c.password, "hey-rodney", 10);

  /* device:password: the application comes from the query. */
  assert_int_equal(creds("Basic ", "dev:pw", buf, sizeof buf, &c), 0);
  assert_null(c.application);
  assert_int_equal(c.device_len, 3);
  assert_int_equal(c.password_len, 2);

  /* RFC 7617: the scheme is case-insensitive, the password may hold ':'
   * and '@', and may be empty; RFC 7235: one or more spaces. */
  assert_int_equal(creds("bAsIc   ", "d@a:p:w@x", buf, sizeof buf, &c), 0);
  assert_int_equal(c.password_len, 5);
  assert_memory_equal(c.password, "p:w@x", 5);
  assert_int_equal(creds("Basic ", "d@a:", buf, sizeof buf, &c), 0);
  assert_int_equal(c.password_len, 0);
}

static void test_auth_refused(void **state)
{
  (void)state;
  char buf[DEVICE_CREDS_MAX];
  struct device_creds c;
  static const char *const plain[] = {
    "nocolon", ":pw", "@app:pw", "dev@:pw", "d@a@b:pw",
  };
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
    assert_int_equal(creds("Basic ", plain[i], buf, sizeof buf, &c),
                     -EINVAL);
  char nul[] = "d\0v:pw";
  char val[64] = "Basic ";
  int k = device_base64_encode((const uint8_t *)nul, 6, val + 6, 58);
  assert_int_equal(device_auth_parse((const uint8_t *)val, 6 + (size_t)k,
                                     buf, sizeof buf, &c),
                   -EINVAL);
  char longname[300];
  memset(longname, 'x', 256);
  memcpy(longname + 256, ":pw", 4);
  assert_int_equal(creds("Basic ", longname, buf, sizeof buf, &c), -EINVAL);
  longname[255] = ':';
  assert_int_equal(creds("Basic ", longname, buf, sizeof buf, &c), 0);
  assert_int_equal(creds("Bearer ", "d:p", buf, sizeof buf, &c), -EINVAL);
  assert_int_equal(creds("Basic", "d:p", buf, sizeof buf, &c), -EINVAL);
  assert_int_equal(creds("Basic ", "d@a:p", buf, 4, &c), -EMSGSIZE);
  static const char *const raw[] = {"", "Basic", "Basic ", "Basic Zg",
                                    "Basic ZGV2OnB3\t"};
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
    assert_int_equal(device_auth_parse((const uint8_t *)raw[i],
                                       strlen(raw[i]), buf, sizeof buf, &c),
                     -EINVAL);
}

static void test_cf_json(void **state)
{
  (void)state;
  static const int yes[] = {50, 51, 52, 110, 111, 256, 320, 432, 11543};
  static const int no[] = {-1, 0, 40, 42, 60, 112, 11050, 65536, 9999};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    assert_true(device_cf_is_json(yes[i]));
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    assert_false(device_cf_is_json(no[i]));
}

static bool jv(const char *s)
{
  return device_json_valid((const uint8_t *)s, strlen(s));
}

static void test_json_valid(void **state)
{
  (void)state;
  static const char *const good[] = {
    "{}", "[]", "0", "-0", "1.5e10", "-2E-3", "\"\"", "true", "false",
    "null", " {\"a\" : [1, 2, {\"b\": null}] }\n", "\"\\u00e9\\n\\\"\"",
    "\"caf\xc3\xa9\"", "[\"\xf0\x9f\x98\x80\"]", "123456789012345678901234",
  };
  static const char *const bad[] = {
    "", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "1e",
    "-", "tru", "nul", "'a'", "\"a", "\"\\x\"", "\"\\u12\"", "{a:1}",
    "[1 2]", "{} {}", "\"tab\there\"", "\xef\xbb\xbf{}", "\"\xc3\"",
    "\"\xed\xa0\x80\"", "NaN", "[1]x", "{\"a\"}", "\"\xc0\xaf\"",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_true(jv(good[i]));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(jv(bad[i]));
  /* A NUL inside is no JSON; the length, not the NUL, ends the text. */
  assert_false(device_json_valid((const uint8_t *)"{}\0", 3));
  assert_true(device_json_valid((const uint8_t *)"{}xx", 2));
  assert_false(device_json_valid(NULL, 0));
  /* Nesting is capped (64), so a hostile body cannot exhaust the stack. */
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  assert_false(device_json_valid((const uint8_t *)deep, 200));
  assert_true(device_json_valid((const uint8_t *)deep + 40, 120));
}

static void test_utf8(void **state)
{
  (void)state;
  assert_true(device_utf8_valid((const uint8_t *)"abc\xc3\xa9", 5));
  assert_true(device_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
  assert_false(device_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
  assert_false(device_utf8_valid((const uint8_t *)"\xe0\x80\xaf", 3));
  assert_false(device_utf8_valid((const uint8_t *)"a\0b", 3));
  assert_false(device_utf8_valid((const uint8_t *)"\xff", 1));
  assert_false(device_utf8_valid((const uint8_t *)"\xe2\x82", 2));
}

static void test_uuid_time(void **state)
{
  (void)state;
  char a[37], b[37];
  assert_int_equal(device_event_uuid(a), 0);
  assert_int_equal(device_event_uuid(b), 0);
  assert_int_equal(strlen(a), 36);
  assert_string_not_equal(a, b);
  assert_int_equal(a[8], '-');
  assert_int_equal(a[14], '4');             /* version 4 */
  assert_non_null(strchr("89ab", a[19]));   /* variant 10 */
  char t[32];
  assert_int_equal(device_event_time(1764547200123, t), 0);
  assert_string_equal(t, "2025-12-01T00:00:00.123Z");
  assert_int_equal(device_event_time(0, t), 0);
  assert_string_equal(t, "1970-01-01T00:00:00.000Z");
  assert_int_equal(device_event_time(-1, t), -EINVAL);
}

static cJSON *event(const struct device_event *e)
{
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(device_event_json(e, &text, &len), 0);
  assert_int_equal(strlen(text), len);
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  free(text);
  return j;
}

static const char *str(const cJSON *j, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_event_shape(void **state)
{
  (void)state;
  const char body[] = "{\"temp\":42,\"big\":12345678901234567890}";
  struct device_event e = {.id = "0b5f7b1e-4c1d-4a2e-9f00-123456789abc",
                           .time = "2026-11-30T12:00:00.000Z",
                           .application = "example-app",
                           .device = "device 2",
                           .sender = "gw1",
                           .channel = "foo",
                           .data_schema = "urn:x",
                           .cf = 50,
                           .data = (const uint8_t *)body,
                           .len = sizeof body - 1};
  cJSON *j = event(&e);
  assert_string_equal(str(j, "specversion"), "1.0");
  assert_string_equal(str(j, "id"), e.id);
  assert_string_equal(str(j, "source"), "drogue://example-app/device%202");
  assert_string_equal(str(j, "type"), "io.drogue.event.v1");
  assert_string_equal(str(j, "subject"), "foo");
  assert_string_equal(str(j, "time"), e.time);
  assert_string_equal(str(j, "datacontenttype"), "application/json");
  assert_string_equal(str(j, "dataschema"), "urn:x");
  assert_string_equal(str(j, "application"), "example-app");
  assert_string_equal(str(j, "device"), "device 2");
  assert_string_equal(str(j, "sender"), "gw1");
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "suffix"));
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "data_base64"));
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
  assert_true(cJSON_IsObject(data));
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "temp")->valueint,
                   42);
  cJSON_Delete(j);
  /* "data" is the body byte for byte: the 20-digit integer is not
   * rounded through a double. */
  char *text;
  size_t len;
  assert_int_equal(device_event_json(&e, &text, &len), 0);
  assert_non_null(strstr(text, "\"data\":{\"temp\":42,\"big\":"
                               "12345678901234567890}"));
  free(text);

  /* A JSON content format with a body that is not JSON is refused. */
  e.data = (const uint8_t *)"{oops";
  e.len = 5;
  assert_int_equal(device_event_json(&e, &text, &len), -EINVAL);

  /* Bytes: data_base64; text/plain names its charset; no schema. */
  e.cf = 0;
  e.data = (const uint8_t *)"hi\xff";
  e.len = 3;
  e.data_schema = NULL;
  e.suffix = "a/b";
  j = event(&e);
  assert_string_equal(str(j, "data_base64"), "aGn/");
  assert_string_equal(str(j, "datacontenttype"), "text/plain;charset=utf-8");
  assert_string_equal(str(j, "suffix"), "a/b");
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "dataschema"));
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "data"));
  cJSON_Delete(j);

  /* No content format: JSON when it parses (as Drogue), else bytes. */
  e.cf = -1;
  e.data = (const uint8_t *)"[1, 2]";
  e.len = 6;
  j = event(&e);
  assert_string_equal(str(j, "datacontenttype"), "application/json");
  assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "data")));
  cJSON_Delete(j);
  e.data = (const uint8_t *)"01";
  e.len = 2;
  j = event(&e);
  assert_string_equal(str(j, "datacontenttype"), "application/octet-stream");
  assert_string_equal(str(j, "data_base64"), "MDE=");
  cJSON_Delete(j);

  /* An empty body carries no data; an unregistered format no type. */
  e.cf = 9999;
  e.len = 0;
  j = event(&e);
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "data"));
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "data_base64"));
  assert_null(cJSON_GetObjectItemCaseSensitive(j, "datacontenttype"));
  cJSON_Delete(j);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_base64_vectors),
    cmocka_unit_test(test_base64_strict),
    cmocka_unit_test(test_auth_forms),
    cmocka_unit_test(test_auth_refused),
    cmocka_unit_test(test_cf_json),
    cmocka_unit_test(test_json_valid),
    cmocka_unit_test(test_utf8),
    cmocka_unit_test(test_uuid_time),
    cmocka_unit_test(test_event_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
