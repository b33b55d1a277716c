/* DTLS through the public API, both sides in one process over loopback
 * (issue 10): a server context with ck_ctx_listen_dtls and a client
 * context with coaps:// calls, driven in turn until the call's final
 * callback (bounded in count and time). PSK handshake and identity,
 * a wrong key and an unknown identity told apart from a timeout, the
 * session cap with its log line, resumption after
 * ck_client_disconnect, and a client whose credentials the server
 * cannot use. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "coapkit/coapkit.h"

struct srv {
  struct ck_ctx *ctx;
  char port_uri[64];
  char last_id[160];
  int last_mode;
  char log[256];
  unsigned logs;
};

static int lookup(void *user, const uint8_t *id, size_t len, uint8_t *key,
                  size_t cap)
{
  (void)user;
  if (len == 4 && memcmp(id, "dev1", 4) == 0 && cap >= 6) {
    memcpy(key, "sesame", 6);
    return 6;
  }
  return -1;
}

static void whoami(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *user)
{
  (void)r;
  struct srv *s = user;
  const char *id = NULL;
  s->last_mode = ck_request_identity(req, &id);
  snprintf(s->last_id, sizeof s->last_id, "%s", id ? id : "(null)");
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "hi", 2);
}

static void on_log(void *user, enum ck_log_level level, const char *msg)
{
  (void)level;
  struct srv *s = user;
  snprintf(s->log, sizeof s->log, "%s", msg);
  s->logs++;
}

static void srv_start(struct srv *s, uint32_t max_sessions)
{
  memset(s, 0, sizeof *s);
  assert_int_equal(ck_ctx_new(NULL, &s->ctx), 0);
  ck_ctx_set_log(s->ctx, on_log, s);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  struct ck_dtls_config dc = {
      .psk_lookup = lookup, .psk_hint = "unit", .max_sessions = max_sessions};
  assert_int_equal(ck_ctx_listen_dtls(s->ctx, &a, &dc), 0);
  assert_int_equal(ck_ctx_local_addr(s->ctx, 0, &a), 0);
  struct ck_resource *r;
  assert_int_equal(ck_resource_new(s->ctx, "who", &r), 0);
  assert_int_equal(ck_resource_handler(r, CK_GET, whoami, s), 0);
  snprintf(s->port_uri, sizeof s->port_uri, "coaps://127.0.0.1:%u/who",
           ck_addr_port(&a));
}

struct result {
  bool done;
  int err;
  uint8_t code;
  int security;
  char peer[160];
};

static void on_answer(struct ck_call *call, const struct ck_client_response *r,
                      void *user)
{
  (void)call;
  struct result *res = user;
  if (!r->final)
    return;
  res->done = true;
  res->err = r->err;
  res->code = r->code;
  res->security = r->security;
  snprintf(res->peer, sizeof res->peer, "%s",
           r->peer_identity ? r->peer_identity : "(null)");
}

/* Sends a GET and runs both loops until it ends: at most 2000 rounds
 * of up to 5 ms each. */
static struct result get(struct srv *s, struct ck_ctx *cctx,
                         struct ck_client *c)
{
  struct result res = {0};
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, s->port_uri);
  assert_int_equal(ck_client_send(c, &req, on_answer, &res, NULL), 0);
  for (int i = 0; i < 2000 && !res.done; i++) {
    ck_ctx_process(s->ctx, 0);
    ck_ctx_process(cctx, 5);
  }
  assert_true(res.done);
  return res;
}

static struct ck_client *client(struct ck_ctx *cctx, const char *id,
                                const char *key)
{
  struct ck_dtls_config dc = {
      .psk_identity = id, .psk = (const uint8_t *)key, .psk_len = strlen(key)};
  struct ck_client_config cc = {.dtls = &dc};
  struct ck_client *c;
  assert_int_equal(ck_client_new(cctx, &cc, &c), 0);
  return c;
}

static void test_psk(void **state)
{
  (void)state;
  struct srv s;
  srv_start(&s, 0);
  struct ck_ctx *cctx;
  assert_int_equal(ck_ctx_new(NULL, &cctx), 0);
  struct ck_client *c = client(cctx, "dev1", "sesame");
  struct result r = get(&s, cctx, c);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.code, CK_CONTENT);
  assert_int_equal(s.last_mode, CK_SECURITY_PSK);
  assert_string_equal(s.last_id, "dev1");
  assert_int_equal(r.security, CK_SECURITY_PSK);
  assert_string_equal(r.peer, "unit"); /* the server's hint */

  /* Closed and made again: resumed with the server's ticket. */
  assert_int_equal(ck_client_disconnect(c, NULL), 0);
  r = get(&s, cctx, c);
  assert_int_equal(r.err, 0);
  struct ck_dtls_stats st;
  ck_ctx_dtls_stats(s.ctx, &st);
  assert_int_equal(st.handshakes, 2);
  assert_int_equal(st.resumed, 1);
  assert_int_equal(st.sessions, 1);
  ck_client_free(c);

  /* A wrong key and an unknown identity: refused, not timed out. */
  const char *bad[2][2] = {{"dev1", "sesamf"}, {"nobody", "sesame"}};
  for (int i = 0; i < 2; i++) {
    c = client(cctx, bad[i][0], bad[i][1]);
    r = get(&s, cctx, c);
    assert_int_equal(r.err, CK_EDTLS_PSK);
    ck_client_free(c);
  }
  ck_ctx_dtls_stats(s.ctx, &st);
  assert_int_equal(st.handshakes_failed, 2);
  ck_ctx_free(cctx);
  ck_ctx_free(s.ctx);
}

static void test_cap(void **state)
{
  (void)state;
  struct srv s;
  srv_start(&s, 1);
  struct ck_ctx *cctx;
  assert_int_equal(ck_ctx_new(NULL, &cctx), 0);
  struct ck_client *c1 = client(cctx, "dev1", "sesame");
  struct result r = get(&s, cctx, c1);
  assert_int_equal(r.err, 0);
  /* A second peer while the first holds the only session: ignored
   * (its handshake is not answered), counted and logged once. */
  struct ck_client *c2 = client(cctx, "dev1", "sesame");
  struct result r2 = {0};
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, s.port_uri);
  assert_int_equal(ck_client_send(c2, &req, on_answer, &r2, NULL), 0);
  for (int i = 0; i < 100; i++) {
    ck_ctx_process(s.ctx, 0);
    ck_ctx_process(cctx, 5);
  }
  assert_false(r2.done);
  struct ck_dtls_stats st;
  ck_ctx_dtls_stats(s.ctx, &st);
  assert_true(st.refused_full >= 1);
  assert_int_equal(st.sessions, 1);
  assert_int_equal(s.logs, 1);
  assert_non_null(strstr(s.log, "max_sessions"));
  /* The first one leaves (close_notify): the second gets in. */
  ck_client_free(c1);
  for (int i = 0; i < 2000 && !r2.done; i++) {
    ck_ctx_process(s.ctx, 0);
    ck_ctx_process(cctx, 5);
  }
  assert_true(r2.done);
  assert_int_equal(r2.err, 0);
  ck_client_free(c2);
  ck_ctx_free(cctx);
  ck_ctx_free(s.ctx);
}

static void test_no_common_mode(void **state)
{
  (void)state;
  struct srv s;
  srv_start(&s, 0);
  struct ck_ctx *cctx;
  struct ck_client *c;
  assert_int_equal(ck_ctx_new(NULL, &cctx), 0);
  /* No credentials: the client offers certificates only, which a
   * PSK-only server cannot use. */
  assert_int_equal(ck_client_new(cctx, NULL, &c), 0);
  struct result r = get(&s, cctx, c);
  assert_true(r.err == CK_EDTLS || r.err == CK_EDTLS_REFUSED);
  struct ck_dtls_stats st;
  ck_ctx_dtls_stats(s.ctx, &st);
  assert_int_equal(st.handshakes, 0);
  ck_client_free(c);
  ck_ctx_free(cctx);
  ck_ctx_free(s.ctx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_psk),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_no_common_mode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
