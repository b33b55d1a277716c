/* An observer of the client library after its server restarted (RFC 7641
 * §3.3.1): Max-Age runs out, the client registers again by itself, takes
 * the answer as fresh state though the new server numbers its
 * notifications afresh, retries with a growing delay while the server is
 * silent, and ends the observation when the re-registration is refused.
 * A raw UDP socket plays the server; the context's clock and randomness
 * are replaced so that every time here is exact. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

static uint64_t fake_now = 9000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}
static void zero_random(void *u, void *buf, size_t len)
{
  (void)u;
  memset(buf, 0, len); /* ACK timeouts exactly ACK_TIMEOUT */
}

static struct ck_ctx *ctx;
static struct ck_client *cl;
static int srv;
static char uri[64];
static struct ck_addr client_addr;
static struct ck_msg rx;
static uint8_t rxbuf[2048];
static uint8_t tok[8], tkl;

struct seen {
  unsigned calls, finals;
  int err;
  uint8_t code;
  uint32_t observe;
  char body[16];
};

/* Static: ck_ctx_free() in teardown ends a live observation through the
 * callback, after the test's own frame is gone. */
static struct seen s;

static void cb(struct ck_call *call, const struct ck_client_response *r,
               void *user)
{
  (void)call, (void)user;
  s.calls++;
  s.finals += r->final;
  s.err = r->err;
  s.code = r->code;
  s.observe = r->observe;
  size_t n = r->body_len < sizeof s.body - 1 ? r->body_len : 0;
  memcpy(s.body, r->body ? (const char *)r->body : "", n);
  s.body[n] = '\0';
}

static int setup(void **state)
{
  (void)state;
  memset(&s, 0, sizeof s);
  struct ck_client_config cfg = {0};
  cfg.params.ack_timeout_ms = 1000;
  cfg.params.max_retransmit = 2; /* a CON gives up after 1+2+4 s */
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  ck_ctx_set_random(ctx, zero_random, NULL);
  assert_int_equal(ck_client_new(ctx, &cfg, &cl), 0);
  srv = socket(AF_INET, SOCK_DGRAM, 0);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  assert_int_equal(bind(srv, &a.u.sa, a.len), 0);
  a.len = sizeof a.u;
  getsockname(srv, &a.u.sa, &a.len);
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/obs", ck_addr_port(&a));
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  ck_ctx_free(ctx);
  close(srv);
  return 0;
}

/* Lets the client run; reads the next datagram the server got, if any. */
static bool server_recv(void)
{
  for (int i = 0; i < 20; i++) {
    ck_ctx_process(ctx, 0);
    client_addr.len = sizeof client_addr.u;
    ssize_t n = recvfrom(srv, rxbuf, sizeof rxbuf, MSG_DONTWAIT,
                         &client_addr.u.sa, &client_addr.len);
    if (n > 0) {
      assert_int_equal(ck_msg_parse(&rx, rxbuf, (size_t)n), 0);
      return true;
    }
    struct pollfd p = {.fd = srv, .events = POLLIN};
    poll(&p, 1, 2);
  }
  return false;
}

/* Sends a response or notification with our token and lets the client
 * take it. */
static void send_resp(uint8_t type, uint8_t code, uint16_t mid, int observe,
                      int max_age, const char *payload)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, type, code, mid);
  ck_builder_token(&b, tok, tkl);
  if (observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)observe);
  if (max_age >= 0)
    ck_builder_opt_uint(&b, CK_OPT_MAX_AGE, (uint32_t)max_age);
  if (payload)
    ck_builder_payload(&b, payload, strlen(payload));
  int n = ck_builder_finish(&b);
  assert_int_equal(sendto(srv, buf, (size_t)n, 0, &client_addr.u.sa,
                          client_addr.len),
                   n);
  for (int i = 0; i < 5; i++) {
    struct pollfd p = {.fd = ck_ctx_fd(ctx), .events = POLLIN};
    poll(&p, 1, 5);
    ck_ctx_process(ctx, 0);
  }
}

/* Whether rx is a registration: GET, Observe 0, our token. */
static bool is_registration(void)
{
  uint32_t obs = 99;
  return rx.code == CK_GET && rx.type == CK_TYPE_CON &&
         ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &obs) == 0 && obs == 0 &&
         rx.tkl == tkl && memcmp(rx.token, tok, tkl) == 0;
}

/* Drains what the client sends: none before ms - 1 has passed, a
 * registration at ms. */
static void expect_registration_after(uint64_t ms)
{
  while (server_recv())
    ;
  fake_now += ms - 1;
  assert_false(server_recv());
  fake_now += 1;
  assert_true(server_recv());
  assert_true(is_registration());
}

/* The server is silent: the registration's CON is sent twice more,
 * after 1 and 2 s, and given up 4 s later. */
static void silent_con(void)
{
  uint64_t gaps[] = {1000, 2000, 4000};
  for (size_t i = 0; i < 3; i++) {
    fake_now += gaps[i];
    while (server_recv())
      assert_true(is_registration());
  }
}

/* Registers /obs with Observe 50 and Max-Age 2. */
static struct ck_call *observe(void)
{
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  req.observe = true;
  struct ck_call *call;
  assert_int_equal(ck_client_send(cl, &req, cb, NULL, &call), 0);
  assert_true(server_recv());
  tkl = rx.tkl;
  memcpy(tok, rx.token, tkl);
  assert_true(is_registration());
  send_resp(CK_TYPE_ACK, CK_CONTENT, rx.mid, 50, 2, "old50");
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.observe, 50);
  return call;
}

static void test_restart_fresh_state(void **state)
{
  (void)state;
  observe();
  /* The server restarts and forgets: Max-Age 2 s + 2 s of slack. */
  expect_registration_after(4000);
  /* The new server numbers from 2: its answer is the state now. */
  send_resp(CK_TYPE_ACK, CK_CONTENT, rx.mid, 2, 2, "new2");
  assert_int_equal(s.calls, 2);
  assert_int_equal(s.finals, 0);
  assert_int_equal(s.observe, 2);
  assert_string_equal(s.body, "new2");
  /* Its later notifications count from there (§3.4) ... */
  send_resp(CK_TYPE_NON, CK_CONTENT, 700, 3, 2, "new3");
  assert_int_equal(s.calls, 3);
  assert_string_equal(s.body, "new3");
  /* ... a stale one and a retransmitted one are not delivered ... */
  send_resp(CK_TYPE_NON, CK_CONTENT, 701, 2, 2, "again2");
  send_resp(CK_TYPE_NON, CK_CONTENT, 700, 3, 2, "new3");
  assert_int_equal(s.calls, 3);
  struct ck_client_stats st;
  ck_client_stats(cl, &st);
  assert_int_equal(st.notifications_stale, 1);
  /* ... and the stale one left the Max-Age timer of new3 running. */
  expect_registration_after(4000);
}

static void test_retry_then_refused(void **state)
{
  (void)state;
  observe();
  expect_registration_after(4000);
  /* The server is down: the CON gives up after 1 + 2 + 4 s, and the
   * registration goes again 2 s later, then 4 s after the next. */
  uint64_t waits[] = {2000, 4000};
  for (size_t i = 0; i < 2; i++) {
    silent_con();
    assert_int_equal(s.calls, 1);
    expect_registration_after(waits[i]);
  }
  /* It is up again, without /obs now: 4.04 ends the observation, once,
   * with the response (RFC 7641 §3.2). */
  send_resp(CK_TYPE_ACK, CK_NOT_FOUND, rx.mid, -1, -1, NULL);
  assert_int_equal(s.calls, 2);
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, 0);
  assert_int_equal(s.code, CK_NOT_FOUND);
  fake_now += 600000;
  assert_false(server_recv());
  assert_int_equal(s.calls, 2);
}

static void test_retries_bounded(void **state)
{
  (void)state;
  observe();
  expect_registration_after(4000);
  /* Five more tries, 2, 4, 8, 16 and 32 s after each silent one, then
   * the call ends with the timeout. */
  for (unsigned i = 0; i < 5; i++) {
    silent_con();
    assert_int_equal(s.finals, 0);
    expect_registration_after(2000u << i);
  }
  silent_con();
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, CK_ETIMEDOUT);
  fake_now += 600000;
  assert_false(server_recv());
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_restart_fresh_state, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_retry_then_refused, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_retries_bounded, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
