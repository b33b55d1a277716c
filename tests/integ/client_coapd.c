/* The library's own client against coapd --demo, over loopback: every
 * demo resource, every method, CON and NON, separate response, Block2 at
 * every block size, a 1 MiB Block1 upload read back byte for byte,
 * observe with deregistration, and discovery with and without a filter.
 * Uses only the public API. Prints one "ok"/"FAIL" line per check and
 * exits non-zero on any failure.
 *
 * Usage: client_coapd PORT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <coapkit/coapkit.h>

static struct ck_ctx *ctx;
static struct ck_client *cl;
static char base[64];
static int failures;

static void check(bool ok, const char *what)
{
  printf("%s - %s\n", ok ? "ok" : "FAIL", what);
  if (!ok)
    failures++;
}

/* One blocking request; out must be freed with ck_client_result_free. */
static int run(uint8_t method, const char *path, bool non, const void *pl,
               size_t len, uint16_t block, int accept, struct ck_client_result *out)
{
  char uri[256];
  snprintf(uri, sizeof uri, "%s%s", base, path);
  struct ck_client_request req;
  ck_client_request_init(&req, method, uri);
  req.non = non;
  req.payload = pl;
  req.payload_len = len;
  req.block_size = block;
  req.accept = accept;
  return ck_client_do(cl, &req, out);
}

static bool code_is(uint8_t method, const char *path, bool non,
                    const char *payload, uint8_t want)
{
  struct ck_client_result r;
  int rc = run(method, path, non, payload, payload ? strlen(payload) : 0, 0,
               -1, &r);
  bool ok = rc == 0 && r.code == want;
  if (!ok)
    fprintf(stderr, "  %s: rc=%s code=%u.%02u\n", path, ck_strerror(rc),
            r.code >> 5, r.code & 31);
  ck_client_result_free(&r);
  return ok;
}

static void test_methods(void)
{
  for (int non = 0; non <= 1; non++) {
    const char *t = non ? " (NON)" : " (CON)";
    char what[96];
    snprintf(what, sizeof what, "GET /hello 2.05%s", t);
    check(code_is(CK_GET, "/hello", non, NULL, CK_CONTENT), what);
    snprintf(what, sizeof what, "PUT /test 2.04%s", t);
    check(code_is(CK_PUT, "/test", non, "x", CK_CHANGED), what);
    snprintf(what, sizeof what, "POST /test 2.01%s", t);
    check(code_is(CK_POST, "/test", non, "x", CK_CREATED), what);
    snprintf(what, sizeof what, "DELETE /test 2.02%s", t);
    check(code_is(CK_DELETE, "/test", non, NULL, CK_DELETED), what);
  }
  check(code_is(CK_FETCH, "/hello", false, NULL, CK_METHOD_NOT_ALLOWED),
        "FETCH /hello 4.05");
  check(code_is(CK_PATCH, "/hello", false, "p", CK_METHOD_NOT_ALLOWED),
        "PATCH /hello 4.05");
  check(code_is(CK_IPATCH, "/hello", false, "p", CK_METHOD_NOT_ALLOWED),
        "iPATCH /hello 4.05");
  check(code_is(CK_GET, "/nothing/here", false, NULL, CK_NOT_FOUND),
        "GET unknown path 4.04");
  check(code_is(CK_GET, "/seg1/seg2/seg3", false, NULL, CK_CONTENT),
        "GET /seg1/seg2/seg3 2.05");

  struct ck_client_result r;
  run(CK_PUT, "/sink", false, "kept", 4, 0, -1, &r);
  ck_client_result_free(&r);
  run(CK_GET, "/sink", false, NULL, 0, 0, -1, &r);
  check(r.code == CK_CONTENT && r.body_len == 4 &&
          memcmp(r.body, "kept", 4) == 0,
        "PUT then GET /sink returns the payload");
  ck_client_result_free(&r);

  run(CK_GET, "/query?a=1&b=2", false, NULL, 0, 0, -1, &r);
  check(r.code == CK_CONTENT && r.body_len == 7 &&
          memcmp(r.body, "a=1&b=2", 7) == 0,
        "GET /query echoes the query");
  ck_client_result_free(&r);

  run(CK_POST, "/location-query", false, "x", 1, 0, -1, &r);
  check(r.code == CK_CREATED && r.has_msg &&
          ck_msg_opt_count(&r.msg, CK_OPT_LOCATION_QUERY) == 2,
        "POST /location-query 2.01 with two Location-Query");
  ck_client_result_free(&r);

  run(CK_GET, "/multi-format", false, NULL, 0, 0, CK_CF_JSON, &r);
  uint32_t cf = 99;
  check(r.code == CK_CONTENT && r.has_msg &&
          ck_msg_opt_uint(&r.msg, CK_OPT_CONTENT_FORMAT, &cf) == 0 &&
          cf == CK_CF_JSON && r.body_len && r.body[0] == '{',
        "GET /multi-format with Accept JSON");
  ck_client_result_free(&r);
  run(CK_GET, "/multi-format", false, NULL, 0, 0, CK_CF_CBOR, &r);
  check(r.code == CK_NOT_ACCEPTABLE, "GET /multi-format Accept CBOR 4.06");
  ck_client_result_free(&r);
}

static void test_separate(void)
{
  struct ck_client_result r;
  int rc = run(CK_GET, "/separate", false, NULL, 0, 0, -1, &r);
  check(rc == 0 && r.code == CK_CONTENT && r.rtt_ms >= 500,
        "GET /separate answers after about a second");
  ck_client_result_free(&r);
}

static void test_block2_sizes(void)
{
  struct ck_client_result whole;
  run(CK_GET, "/large", false, NULL, 0, 0, -1, &whole);
  check(whole.code == CK_CONTENT && whole.body_len > 2048,
        "GET /large (several KiB)");
  for (uint16_t bs = 16; bs <= 1024; bs *= 2) {
    struct ck_client_result r;
    run(CK_GET, "/large", false, NULL, 0, bs, -1, &r);
    char what[64];
    snprintf(what, sizeof what, "GET /large with %u-byte blocks", bs);
    check(r.code == CK_CONTENT && r.body_len == whole.body_len &&
            memcmp(r.body, whole.body, r.body_len) == 0,
          what);
    ck_client_result_free(&r);
  }
  ck_client_result_free(&whole);
}

static void test_block1_1mib(void)
{
  size_t n = 1u << 20;
  uint8_t *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (uint8_t)(i * 2654435761u >> 13);
  struct ck_client_result r;
  int rc = run(CK_PUT, "/large-update", false, data, n, 1024, -1, &r);
  check(rc == 0 && r.code == CK_CHANGED, "PUT 1 MiB to /large-update 2.04");
  ck_client_result_free(&r);
  rc = run(CK_GET, "/large-update", false, NULL, 0, 0, -1, &r);
  check(rc == 0 && r.body_len == n && memcmp(r.body, data, n) == 0,
        "GET /large-update returns the 1 MiB byte for byte");
  ck_client_result_free(&r);
  rc = run(CK_POST, "/large-create", false, data, 5000, 256, -1, &r);
  check(rc == 0 && r.code == CK_CREATED && r.has_msg &&
          ck_msg_opt_count(&r.msg, CK_OPT_LOCATION_PATH) > 0,
        "POST 5000 bytes to /large-create 2.01 with Location-Path");
  ck_client_result_free(&r);
  free(data);
}

struct obs_state {
  unsigned notes;
  bool ended;
  int err;
  uint32_t last;
  bool increasing;
  struct ck_call *call;
};

static void on_note(struct ck_call *call, const struct ck_client_response *r, void *u)
{
  struct obs_state *s = u;
  if (r->final) {
    s->ended = true;
    s->err = r->err;
    return;
  }
  if (s->notes > 0 && r->observe <= s->last)
    s->increasing = false;
  s->last = r->observe;
  if (++s->notes == 4)
    ck_call_cancel(call, true);
}

static void test_observe(void)
{
  char uri[128];
  snprintf(uri, sizeof uri, "%s/obs", base);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  req.observe = true;
  struct obs_state s = {.increasing = true};
  check(ck_client_send(cl, &req, on_note, &s, &s.call) == 0,
        "observe /obs started");
  /* Bounded: /obs changes every second; 15 s is plenty for 4. */
  for (int i = 0; i < 1500 && !s.ended; i++)
    ck_ctx_process(ctx, 10);
  check(s.notes >= 4, "observe /obs: registration and 3 notifications");
  check(s.increasing, "notification sequence numbers increase");
  check(s.ended && s.err == CK_ECANCELED, "proactive cancel answered");
}

static void test_discovery(void)
{
  struct ck_client_result r;
  run(CK_GET, "/.well-known/core", false, NULL, 0, 0, -1, &r);
  struct ck_link_reader rd;
  struct ck_link l;
  unsigned links = 0;
  bool obs_found = false;
  ck_link_reader_init(&rd, (const char *)r.body, r.body_len);
  while (ck_link_next(&rd, &l) == 1) {
    links++;
    if (l.target_len == 4 && memcmp(l.target, "/obs", 4) == 0)
      obs_found = ck_link_param(&l, "obs") != NULL;
  }
  check(r.code == CK_CONTENT && links >= 14 && obs_found,
        "discovery lists every demo resource, /obs with obs");
  ck_client_result_free(&r);
  run(CK_GET, "/.well-known/core?href=/seg*", false, NULL, 0, 0, -1, &r);
  ck_link_reader_init(&rd, (const char *)r.body, r.body_len);
  links = 0;
  while (ck_link_next(&rd, &l) == 1)
    links++;
  check(r.code == CK_CONTENT && links == 1, "discovery with href filter");
  ck_client_result_free(&r);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: client_coapd PORT\n");
    return 2;
  }
  snprintf(base, sizeof base, "coap://127.0.0.1:%s", argv[1]);
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, NULL, &cl) < 0)
    return 1;
  test_methods();
  test_separate();
  test_block2_sizes();
  test_block1_1mib();
  test_observe();
  test_discovery();
  ck_ctx_free(ctx);
  printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
