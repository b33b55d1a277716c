/* The server side of the Echo option (RFC 9175 §2.4, lib/echo.c): Echo
 * values that validate themselves (expiry, another address, tampering),
 * and, through the public server API over a real loopback socket with
 * the context's clock replaced, the amplification gate (a large answer
 * to an unverified source becomes a 4.01 with Echo no larger than three
 * times the request; the Echo round trip verifies the source), the
 * verified table's cap, an observation refused by the gate, and the
 * optional freshness of state-changing requests. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../lib/echo.h"
#include "../../lib/srv.h"
#include "coapkit/coapkit.h"

static uint64_t fake_now = 5000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}

struct fixture {
  struct ck_ctx *ctx;
  int fd; /* the client's socket, connected to the server */
  unsigned posts;
  unsigned reports; /* runs of /report's POST handler */
};

static struct fixture *F;
static struct ck_ctx_config next_cfg;

static void h_small(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "hi", 2);
}

static void h_big(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  char buf[3000];
  memset(buf, 'b', sizeof buf);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, buf, sizeof buf);
}

static void h_post(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  F->posts++;
  ck_response_code(resp, CK_CHANGED);
}

/* A POST whose answer is large: its length is the request body's first
 * byte times 100 (a body "\x06" asks for 600 bytes, one block; "\x1e"
 * for 3,000, three). */
static void h_report(struct ck_resource *r, const struct ck_request *req,
                     struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  F->reports++;
  char buf[3000];
  size_t n = req->body_len ? (size_t)req->body[0] * 100 : 0;
  if (n > sizeof buf)
    n = sizeof buf;
  memset(buf, 'a' + (char)(F->reports % 26), n);
  ck_response_code(resp, CK_CHANGED);
  ck_response_payload(resp, buf, n);
}

static int setup(void **state)
{
  static struct fixture f;
  memset(&f, 0, sizeof f);
  F = &f;
  assert_int_equal(ck_ctx_new(&next_cfg, &f.ctx), 0);
  ck_ctx_set_clock(f.ctx, clock_fn, NULL);
  ck_ctx_process(f.ctx, 0); /* takes the fake clock's time */
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  assert_int_equal(ck_ctx_listen(f.ctx, &a), 0);
  ck_ctx_local_addr(f.ctx, 0, &a);
  struct ck_resource *r;
  ck_resource_new(f.ctx, "small", &r);
  ck_resource_handler(r, CK_GET, h_small, NULL);
  ck_resource_new(f.ctx, "big", &r);
  ck_resource_handler(r, CK_GET, h_big, NULL);
  ck_resource_observable(r, true, false);
  ck_resource_handler(r, CK_POST, h_post, NULL);
  ck_resource_new(f.ctx, "report", &r);
  ck_resource_handler(r, CK_POST, h_report, NULL);
  f.fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(f.fd, &a.u.sa, a.len), 0);
  *state = &f;
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  close(F->fd);
  ck_ctx_free(F->ctx);
  memset(&next_cfg, 0, sizeof next_cfg);
  return 0;
}

/* Runs the server until idle, then returns the next datagram for the
 * client (length), or 0 when none arrived within about 100 ms. */
static size_t recv_one(uint8_t *buf, size_t cap)
{
  for (int i = 0; i < 50; i++) {
    ck_ctx_process(F->ctx, 0);
    ssize_t n = recv(F->fd, buf, cap, MSG_DONTWAIT);
    if (n > 0)
      return (size_t)n;
    struct pollfd p = {.fd = ck_ctx_fd(F->ctx), .events = POLLIN};
    poll(&p, 1, 2);
  }
  return 0;
}

static struct ck_msg rx;
static uint8_t rxbuf[2048];
static size_t rxlen;
static size_t txlen;

/* Sends a CON request (with an Echo when echo is not NULL, with Observe
 * 0 when obs) and parses the answer into rx. */
static void request(uint8_t code, uint16_t mid, const char *path,
                    const uint8_t *echo, size_t echo_len, bool obs)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, code, mid);
  ck_builder_token(&b, "tok1", 4);
  if (obs)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 0);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, path);
  if (echo)
    ck_builder_opt(&b, CK_OPT_ECHO, echo, echo_len);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  txlen = (size_t)n;
  assert_int_equal(send(F->fd, buf, (size_t)n, 0), n);
  rxlen = recv_one(rxbuf, sizeof rxbuf);
  assert_true(rxlen > 0);
  assert_int_equal(ck_msg_parse(&rx, rxbuf, rxlen), 0);
  assert_int_equal(rx.mid, mid);
}

/* Sends a CON POST to /report with a one-byte body, an Echo when echo
 * is not NULL and a Block2 option when block2 >= 0, and parses the
 * answer into rx. */
static void post_report(uint16_t mid, uint8_t body, const uint8_t *echo,
                        size_t echo_len, int block2)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_POST, mid);
  ck_builder_token(&b, "tok2", 4);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "report");
  if (block2 >= 0)
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, (uint32_t)block2 << 4 | 6);
  if (echo)
    ck_builder_opt(&b, CK_OPT_ECHO, echo, echo_len);
  if (block2 <= 0)
    ck_builder_payload(&b, &body, 1);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  txlen = (size_t)n;
  assert_int_equal(send(F->fd, buf, (size_t)n, 0), n);
  rxlen = recv_one(rxbuf, sizeof rxbuf);
  assert_true(rxlen > 0);
  assert_int_equal(ck_msg_parse(&rx, rxbuf, rxlen), 0);
  assert_int_equal(rx.mid, mid);
}

static struct ck_stats stats(void)
{
  struct ck_stats s;
  ck_ctx_stats(F->ctx, &s);
  return s;
}

/* The answer is a 4.01 with an Echo, within three times the request;
 * its Echo is copied to echo. */
static void expect_challenge(uint8_t echo[CK__ECHO_OPT_MAX], size_t *len)
{
  assert_int_equal(rx.code, CK_UNAUTHORIZED);
  assert_true(rxlen <= 3 * txlen);
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&rx, CK_OPT_ECHO, &o), 0);
  assert_true(o.len >= 1 && o.len <= CK__ECHO_OPT_MAX);
  memcpy(echo, o.val, o.len);
  *len = o.len;
}

/* --- Echo values, through the internal functions --- */

static void test_value_make_check(void **state)
{
  (void)state;
  struct ck_addr a, b, c;
  ck_addr_parse(&a, "192.0.2.1:5683", 0);
  ck_addr_parse(&b, "192.0.2.2:5683", 0);
  ck_addr_parse(&c, "192.0.2.1:5684", 0);
  uint8_t v[CK__ECHO_LEN];
  ck__echo_make(F->ctx, &a, v);
  assert_int_equal(ck__echo_check(F->ctx, &a, v, sizeof v, 60000), 0);
  /* Another address or port: not made for it. */
  assert_int_equal(ck__echo_check(F->ctx, &b, v, sizeof v, 60000), CK_EINVAL);
  assert_int_equal(ck__echo_check(F->ctx, &c, v, sizeof v, 60000), CK_EINVAL);
  /* Every single altered bit of the value is caught, the clock's too. */
  for (size_t i = 0; i < sizeof v; i++) {
    for (int bit = 0; bit < 8; bit++) {
      uint8_t t[CK__ECHO_LEN];
      memcpy(t, v, sizeof t);
      t[i] ^= (uint8_t)(1u << bit);
      assert_int_equal(ck__echo_check(F->ctx, &a, t, sizeof t, 60000),
                       CK_EINVAL);
    }
  }
  /* Wrong lengths. */
  assert_int_equal(ck__echo_check(F->ctx, &a, v, sizeof v - 1, 60000),
                   CK_EINVAL);
  /* Expiry: valid up to max_age_ms, not a millisecond more. */
  fake_now += 60000;
  ck_ctx_process(F->ctx, 0);
  assert_int_equal(ck__echo_check(F->ctx, &a, v, sizeof v, 60000), 0);
  fake_now += 1;
  ck_ctx_process(F->ctx, 0);
  assert_int_equal(ck__echo_check(F->ctx, &a, v, sizeof v, 60000),
                   CK_ETIMEDOUT);
  /* IPv6 too. */
  struct ck_addr a6, b6;
  ck_addr_parse(&a6, "[2001:db8::1]:5683", 0);
  ck_addr_parse(&b6, "[2001:db8::2]:5683", 0);
  ck__echo_make(F->ctx, &a6, v);
  assert_int_equal(ck__echo_check(F->ctx, &a6, v, sizeof v, 60000), 0);
  assert_int_equal(ck__echo_check(F->ctx, &b6, v, sizeof v, 60000),
                   CK_EINVAL);
}

static void test_value_other_context(void **state)
{
  (void)state;
  /* Another context has another key: its values are not ours. */
  struct ck_ctx *other;
  assert_int_equal(ck_ctx_new(NULL, &other), 0);
  ck_ctx_set_clock(other, clock_fn, NULL);
  struct ck_addr a;
  ck_addr_parse(&a, "192.0.2.1:5683", 0);
  uint8_t v[CK__ECHO_LEN];
  ck__echo_make(other, &a, v);
  assert_int_equal(ck__echo_check(other, &a, v, sizeof v, 60000), 0);
  assert_int_equal(ck__echo_check(F->ctx, &a, v, sizeof v, 60000),
                   CK_EINVAL);
  ck_ctx_free(other);
}

static void test_table_cap(void **state)
{
  (void)state;
  /* setup_cap: a table of 2. */
  struct ck_addr a[3];
  ck_addr_parse(&a[0], "192.0.2.1:1", 0);
  ck_addr_parse(&a[1], "192.0.2.2:1", 0);
  ck_addr_parse(&a[2], "192.0.2.3:1", 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(ck__echo_mark_verified(F->ctx, &a[i]), 0);
  assert_false(ck__echo_is_verified(F->ctx, &a[0])); /* the oldest went */
  assert_true(ck__echo_is_verified(F->ctx, &a[1]));
  assert_true(ck__echo_is_verified(F->ctx, &a[2]));
  assert_int_equal(stats().echo_evictions, 1);
  assert_int_equal(stats().echo_verified, 3);
  /* A verified source stays so for echo_verified_ms. */
  fake_now += 599999;
  ck_ctx_process(F->ctx, 0);
  assert_true(ck__echo_is_verified(F->ctx, &a[2]));
  fake_now += 1;
  ck_ctx_process(F->ctx, 0);
  assert_false(ck__echo_is_verified(F->ctx, &a[2]));
}

/* --- the gate, over a socket --- */

static void test_small_unaffected(void **state)
{
  (void)state;
  request(CK_GET, 1, "small", NULL, 0, false);
  assert_int_equal(rx.code, CK_CONTENT);
  /* A small answer never reaches the table. */
  struct ck_stats s = stats();
  assert_int_equal(s.echo_challenges, 0);
  assert_int_equal(s.echo_verified, 0);
}

static void test_round_trip(void **state)
{
  (void)state;
  uint8_t echo[CK__ECHO_OPT_MAX];
  size_t elen;
  request(CK_GET, 10, "big", NULL, 0, false);
  expect_challenge(echo, &elen);
  assert_int_equal(stats().echo_challenges, 1);

  /* A forged Echo: challenged again, counted. */
  uint8_t forged[CK__ECHO_OPT_MAX];
  memcpy(forged, echo, elen);
  forged[elen - 1] ^= 1;
  request(CK_GET, 11, "big", forged, elen, false);
  uint8_t e2[CK__ECHO_OPT_MAX];
  size_t l2;
  expect_challenge(e2, &l2);
  assert_int_equal(stats().echo_rejected, 1);

  /* An expired one: the same. */
  fake_now += 60001;
  request(CK_GET, 12, "big", echo, elen, false);
  expect_challenge(e2, &l2);
  assert_int_equal(stats().echo_rejected, 2);

  /* The fresh one: the first block, whole; the source is verified. */
  request(CK_GET, 13, "big", e2, l2, false);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(rx.payload_len, 1024);
  uint32_t sz;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_SIZE2, &sz), 0);
  assert_int_equal(sz, 3000);
  assert_int_equal(stats().echo_verified, 1);

  /* Verified: no Echo needed until echo_verified_ms passes. */
  request(CK_GET, 14, "big", NULL, 0, false);
  assert_int_equal(rx.code, CK_CONTENT);
  fake_now += 600001;
  request(CK_GET, 15, "big", NULL, 0, false);
  assert_int_equal(rx.code, CK_UNAUTHORIZED);
}

static void test_observe_refused(void **state)
{
  (void)state;
  uint8_t echo[CK__ECHO_OPT_MAX];
  size_t elen;
  request(CK_GET, 20, "big", NULL, 0, true);
  expect_challenge(echo, &elen);
  /* The 4.01 answers the registration: no Observe, no observer. */
  struct ck_opt o;
  assert_int_not_equal(ck_msg_opt(&rx, CK_OPT_OBSERVE, &o), 0);
  assert_int_equal(stats().observers, 0);
  request(CK_GET, 21, "big", echo, elen, true);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(ck_msg_opt(&rx, CK_OPT_OBSERVE, &o), 0);
  assert_int_equal(stats().observers, 1);
}

static int setup_off(void **state)
{
  next_cfg.echo_amplification = CK_ECHO_OFF;
  return setup(state);
}

static void test_off(void **state)
{
  (void)state;
  request(CK_GET, 30, "big", NULL, 0, false);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(stats().echo_challenges, 0);
}

/* A POST's handler runs before its answer is found too large for an
 * unverified source: the answer is kept for the request's return with the
 * Echo, so the action is not done twice (one block or several). */
static void test_post_once(void **state)
{
  (void)state;
  uint8_t echo[CK__ECHO_OPT_MAX];
  size_t elen;
  post_report(50, 6, NULL, 0, -1);
  expect_challenge(echo, &elen);
  assert_int_equal(F->reports, 1);
  post_report(51, 6, echo, elen, -1);
  assert_int_equal(rx.code, CK_CHANGED);
  assert_int_equal(rx.payload_len, 600);
  assert_int_equal(rx.payload[0], 'b');
  assert_int_equal(F->reports, 1); /* served from what was kept */
  /* Now verified: another POST runs its handler and is answered. */
  post_report(52, 6, NULL, 0, -1);
  assert_int_equal(rx.code, CK_CHANGED);
  assert_int_equal(F->reports, 2);
}

static void test_post_once_blocks(void **state)
{
  (void)state;
  uint8_t echo[CK__ECHO_OPT_MAX];
  size_t elen;
  post_report(60, 30, NULL, 0, -1);
  expect_challenge(echo, &elen);
  assert_int_equal(F->reports, 1);
  /* Another body is another request: nothing kept for it. */
  post_report(61, 29, echo, elen, -1);
  assert_int_equal(rx.code, CK_CHANGED);
  assert_int_equal(F->reports, 2);
  /* The first body again, with the Echo: its kept answer, block 0. */
  post_report(62, 30, echo, elen, -1);
  assert_int_equal(rx.code, CK_CHANGED);
  assert_int_equal(F->reports, 2);
  assert_int_equal(rx.payload_len, 1024);
  assert_int_equal(rx.payload[0], 'b');
  uint32_t v;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_BLOCK2, &v), 0);
  assert_int_equal(v, 0x0e); /* num 0, more, 1024 */
  /* Its later blocks, asked without a body, come from the same answer. */
  post_report(63, 0, NULL, 0, 1);
  assert_int_equal(rx.code, CK_CHANGED);
  assert_int_equal(rx.payload_len, 1024);
  assert_int_equal(rx.payload[0], 'b');
  post_report(64, 0, NULL, 0, 2);
  assert_int_equal(rx.payload_len, 3000 - 2048);
  assert_int_equal(F->reports, 2);
}

static int setup_fresh(void **state)
{
  next_cfg.echo_require_fresh = true;
  return setup(state);
}

static void test_fresh(void **state)
{
  (void)state;
  uint8_t echo[CK__ECHO_OPT_MAX];
  size_t elen;
  /* A GET needs no freshness. */
  request(CK_GET, 40, "small", NULL, 0, false);
  assert_int_equal(rx.code, CK_CONTENT);
  request(CK_POST, 41, "big", NULL, 0, false);
  expect_challenge(echo, &elen);
  assert_int_equal(F->posts, 0); /* the handler did not run */
  assert_int_equal(stats().echo_fresh_challenges, 1);
  request(CK_POST, 42, "big", echo, elen, false);
  assert_int_equal(rx.code, CK_CHANGED);
  assert_int_equal(F->posts, 1);
  /* Stale: refused again. */
  fake_now += 60001;
  request(CK_POST, 43, "big", echo, elen, false);
  assert_int_equal(rx.code, CK_UNAUTHORIZED);
  assert_int_equal(F->posts, 1);
}

static int setup_cap(void **state)
{
  next_cfg.echo_verified_max = 2;
  return setup(state);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_value_make_check, setup, teardown),
    cmocka_unit_test_setup_teardown(test_value_other_context, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_table_cap, setup_cap, teardown),
    cmocka_unit_test_setup_teardown(test_small_unaffected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_observe_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_post_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_post_once_blocks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_off, setup_off, teardown),
    cmocka_unit_test_setup_teardown(test_fresh, setup_fresh, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
