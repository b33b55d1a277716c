/* Observers fed by the application (ck_observer_new/notify/move/free),
 * through the public API over a real loopback socket, with the
 * context's clock replaced so that retransmission timing is
 * deterministic: order, one CON in flight, the bounded queue, and every
 * way an observation ends. */
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

#include "coapkit/coapkit.h"

static uint64_t now_ms = 5000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return now_ms;
}

struct fx {
  struct ck_ctx *ctx;
  struct ck_addr srv;
  int fd, fd2; /* two client sockets: the second is "after a rebinding" */
  struct ck_observer *o;
  struct ck_observer_config cfg;
  int ended, why;
  uint8_t answer; /* the handler's answer code, 2.05 by default */
  unsigned pre;   /* notifications the handler gives before answering */
};
static struct fx *X;

static void on_end(struct ck_observer *o, int why, void *user)
{
  (void)user;
  assert_ptr_equal(o, X->o);
  X->ended++;
  X->why = why;
  X->o = NULL;
}

static void notify_str(const char *s, unsigned flags)
{
  struct ck_notification n = {.payload = s,
                              .len = strlen(s),
                              .has_cf = true,
                              .cf = CK_CF_TEXT_PLAIN,
                              .flags = flags};
  assert_true(ck_observer_notify(X->o, &n) >= 0);
}

static void h_topic(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  if (ck_request_uint(req, CK_OPT_OBSERVE, 99) != 0)
    return;
  struct ck_observer *o;
  int rc = ck_observer_new(req, resp, &X->cfg, &o);
  assert_int_equal(rc, 0);
  X->o = o;
  for (unsigned i = 0; i < X->pre; i++)
    notify_str(i == 0 ? "pre0" : "pre1", 0);
  ck_response_code(resp, X->answer);
}

/* A GET on "here" says the client of X->o is now at this address. */
static void h_here(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  assert_int_equal(ck_observer_move(X->o, req), 0);
  ck_response_code(resp, CK_CHANGED);
}

static int setup(void **state)
{
  static struct fx f;
  memset(&f, 0, sizeof f);
  X = &f;
  f.answer = CK_CONTENT;
  f.cfg.on_end = on_end;
  struct ck_ctx_config cfg = {0};
  assert_int_equal(ck_ctx_new(&cfg, &f.ctx), 0);
  ck_ctx_set_clock(f.ctx, clock_fn, NULL);
  ck_addr_parse(&f.srv, "127.0.0.1:0", 0);
  assert_int_equal(ck_ctx_listen(f.ctx, &f.srv), 0);
  ck_ctx_local_addr(f.ctx, 0, &f.srv);
  struct ck_resource *r;
  ck_resource_new(f.ctx, "t", &r);
  ck_resource_handler(r, CK_GET, h_topic, NULL);
  ck_resource_observable(r, true, false);
  ck_resource_new(f.ctx, "here", &r);
  ck_resource_handler(r, CK_GET, h_here, NULL);
  f.fd = socket(AF_INET, SOCK_DGRAM, 0);
  f.fd2 = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(f.fd, &f.srv.u.sa, f.srv.len), 0);
  assert_int_equal(connect(f.fd2, &f.srv.u.sa, f.srv.len), 0);
  *state = &f;
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  if (X->o)
    ck_observer_free(X->o);
  close(X->fd);
  close(X->fd2);
  ck_ctx_free(X->ctx);
  return 0;
}

static void send_msg(int fd, uint8_t type, uint8_t code, uint16_t mid,
                     const char *path, int observe)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, type, code, mid);
  if (code)
    ck_builder_token(&b, "tk", 2);
  if (observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)observe);
  if (path)
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, path);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
}

static struct ck_msg rx;
static uint8_t rxbuf[2048];

/* Runs the server until idle; true when a datagram reached fd. */
static bool recv_on(int fd)
{
  for (int i = 0; i < 40; i++) {
    ck_ctx_process(X->ctx, 0);
    ssize_t n = recv(fd, rxbuf, sizeof rxbuf, MSG_DONTWAIT);
    if (n > 0) {
      assert_int_equal(ck_msg_parse(&rx, rxbuf, (size_t)n), 0);
      return true;
    }
    struct pollfd p = {.fd = ck_ctx_fd(X->ctx), .events = POLLIN};
    poll(&p, 1, 2);
  }
  return false;
}

static void expect_note(int fd, uint8_t type, const char *payload)
{
  assert_true(recv_on(fd));
  assert_int_equal(rx.type, type);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(rx.payload_len, strlen(payload));
  assert_memory_equal(rx.payload, payload, rx.payload_len);
}

static uint32_t observe_of(void)
{
  uint32_t v = 0;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &v), 0);
  return v;
}

static void register_on(int fd)
{
  send_msg(fd, CK_TYPE_CON, CK_GET, 1, "t", 0);
  assert_true(recv_on(fd));
  assert_int_equal(rx.type, CK_TYPE_ACK);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_non_null(X->o);
}

static void ack(int fd)
{
  send_msg(fd, CK_TYPE_ACK, 0, rx.mid, NULL, -1);
}

/* Notifications given during the handler wait for its answer, then go
 * out in order, each with a higher Observe value. */
static void test_order_after_answer(void **state)
{
  (void)state;
  X->pre = 2;
  register_on(X->fd);
  uint32_t v0 = observe_of();
  expect_note(X->fd, CK_TYPE_NON, "pre0");
  uint32_t v1 = observe_of();
  uint32_t cf = 99;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_CONTENT_FORMAT, &cf), 0);
  assert_int_equal(cf, CK_CF_TEXT_PLAIN);
  expect_note(X->fd, CK_TYPE_NON, "pre1");
  assert_true(v0 < v1 && v1 < observe_of());
  notify_str("a", 0);
  expect_note(X->fd, CK_TYPE_NON, "a");
  assert_int_equal(ck_resource_observers(NULL), 0);
}

/* One CON in flight; the queue drops its oldest waiting entry when
 * full, and what remains goes out in order as ACKs come back. */
static void test_one_con_in_flight_and_drop_oldest(void **state)
{
  (void)state;
  X->cfg.type = CK_OBSERVER_TYPE_CON;
  X->cfg.queue_max = 3;
  register_on(X->fd);
  notify_str("m1", 0);
  expect_note(X->fd, CK_TYPE_CON, "m1");
  uint16_t mid1 = rx.mid;
  notify_str("m2", 0);
  notify_str("m3", 0);
  /* m1 (in flight), m2, m3: full. m4 drops m2, m5 drops m3. */
  struct ck_notification n = {.payload = "m4", .len = 2};
  assert_int_equal(ck_observer_notify(X->o, &n), 1);
  n.payload = "m5";
  assert_int_equal(ck_observer_notify(X->o, &n), 1);
  assert_int_equal(ck_observer_queued(X->o), 3);
  assert_false(recv_on(X->fd)); /* nothing while m1 is unacknowledged */
  rx.mid = mid1;
  ack(X->fd);
  expect_note(X->fd, CK_TYPE_CON, "m4");
  ack(X->fd);
  expect_note(X->fd, CK_TYPE_CON, "m5");
  ack(X->fd);
  assert_false(recv_on(X->fd));
  struct ck_stats st;
  ck_ctx_stats(X->ctx, &st);
  assert_int_equal(st.notify_dropped, 2);
  assert_int_equal(ck_observer_queued(X->o), 0);
  assert_int_equal(X->ended, 0);
}

static void test_rst_ends(void **state)
{
  (void)state;
  register_on(X->fd);
  notify_str("x", 0);
  expect_note(X->fd, CK_TYPE_NON, "x");
  send_msg(X->fd, CK_TYPE_RST, 0, rx.mid, NULL, -1);
  for (int i = 0; i < 5 && !X->ended; i++)
    recv_on(X->fd);
  assert_int_equal(X->ended, 1);
  assert_int_equal(X->why, CK_OBSERVER_RESET);
  struct ck_stats st;
  ck_ctx_stats(X->ctx, &st);
  assert_int_equal(st.observers, 0);
}

static void test_con_timeout_ends(void **state)
{
  (void)state;
  X->cfg.type = CK_OBSERVER_TYPE_CON;
  register_on(X->fd);
  notify_str("y", 0);
  expect_note(X->fd, CK_TYPE_CON, "y");
  /* Never acknowledged: the retransmissions run out within 93 s
   * (RFC 7252 §4.8.2 MAX_TRANSMIT_WAIT). */
  for (int i = 0; i < 10 && !X->ended; i++) {
    now_ms += 20000;
    recv_on(X->fd);
  }
  assert_int_equal(X->ended, 1);
  assert_int_equal(X->why, CK_OBSERVER_TIMEOUT);
}

static void test_deregister_ends(void **state)
{
  (void)state;
  register_on(X->fd);
  send_msg(X->fd, CK_TYPE_CON, CK_GET, 2, "t", 1);
  assert_true(recv_on(X->fd));
  assert_int_equal(X->ended, 1);
  assert_int_equal(X->why, CK_OBSERVER_DEREGISTERED);
}

static void test_refused_answer_ends(void **state)
{
  (void)state;
  X->answer = CK_UNAUTHORIZED;
  send_msg(X->fd, CK_TYPE_CON, CK_GET, 1, "t", 0);
  assert_true(recv_on(X->fd));
  assert_int_equal(rx.code, CK_UNAUTHORIZED);
  uint32_t v;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &v), CK_ENOTFOUND);
  assert_int_equal(X->ended, 1);
  assert_int_equal(X->why, CK_OBSERVER_REFUSED);
}

/* A second registration with the same token replaces the first and
 * continues its sequence (RFC 7641 §3.4 freshness). */
static void test_reregistration_replaces(void **state)
{
  (void)state;
  register_on(X->fd);
  notify_str("1", 0);
  expect_note(X->fd, CK_TYPE_NON, "1");
  uint32_t before = observe_of();
  send_msg(X->fd, CK_TYPE_CON, CK_GET, 3, "t", 0);
  assert_true(recv_on(X->fd));
  assert_int_equal(X->ended, 1);
  assert_int_equal(X->why, CK_OBSERVER_REPLACED);
  assert_true(observe_of() > before);
  assert_non_null(X->o); /* the handler took the new one over */
}

/* After a NAT rebinding the observation follows the client, and the
 * CON in flight is sent again to the new address. */
static void test_move_follows_client(void **state)
{
  (void)state;
  X->cfg.type = CK_OBSERVER_TYPE_CON;
  register_on(X->fd);
  notify_str("old", 0);
  expect_note(X->fd, CK_TYPE_CON, "old");
  send_msg(X->fd2, CK_TYPE_CON, CK_GET, 7, "here", -1);
  /* The ACK for "here" and the resent CON both reach fd2. */
  bool got_resend = false, got_ack = false;
  uint16_t resent = 0;
  for (int i = 0; i < 2; i++) {
    assert_true(recv_on(X->fd2));
    if (rx.type == CK_TYPE_CON) {
      assert_memory_equal(rx.payload, "old", 3);
      got_resend = true;
      resent = rx.mid;
    } else if (rx.type == CK_TYPE_ACK && rx.mid == 7) {
      got_ack = true;
    }
  }
  assert_true(got_resend && got_ack);
  rx.mid = resent;
  ack(X->fd2);
  notify_str("new", 0);
  expect_note(X->fd2, CK_TYPE_CON, "new");
  assert_false(recv_on(X->fd));
}

static void test_oversize_and_expiry(void **state)
{
  (void)state;
  X->cfg.type = CK_OBSERVER_TYPE_CON;
  register_on(X->fd);
  static uint8_t big[4096];
  struct ck_notification n = {.payload = big, .len = sizeof big};
  assert_int_equal(ck_observer_notify(X->o, &n), CK_ENOSPC);
  n.payload = "live";
  n.len = 4;
  n.expires_ms = now_ms + 10500;
  assert_int_equal(ck_observer_notify(X->o, &n), 0);
  expect_note(X->fd, CK_TYPE_CON, "live");
  uint32_t age = 0;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_MAX_AGE, &age), 0);
  assert_int_equal(age, 11);
  uint16_t mid = rx.mid;
  n.payload = "stale";
  n.len = 5;
  n.expires_ms = now_ms + 1000;
  assert_int_equal(ck_observer_notify(X->o, &n), 0);
  now_ms += 2000; /* expires while waiting behind "live" */
  rx.mid = mid;
  ack(X->fd);
  assert_false(recv_on(X->fd));
  assert_int_equal(ck_observer_queued(X->o), 0);
}

static void test_bad_arguments(void **state)
{
  (void)state;
  struct ck_observer *o;
  struct ck_observer_config cfg = {0};
  assert_int_equal(ck_observer_new(NULL, NULL, &cfg, &o), CK_EINVAL);
  assert_int_equal(ck_observer_notify(NULL, NULL), CK_EINVAL);
  assert_int_equal(ck_observer_move(NULL, NULL), CK_EINVAL);
  assert_null(ck_observer_peer(NULL));
  assert_int_equal(ck_observer_queued(NULL), 0);
  ck_observer_free(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_order_after_answer, setup, teardown),
    cmocka_unit_test_setup_teardown(test_one_con_in_flight_and_drop_oldest,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_rst_ends, setup, teardown),
    cmocka_unit_test_setup_teardown(test_con_timeout_ends, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deregister_ends, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refused_answer_ends, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_reregistration_replaces, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_move_follows_client, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_oversize_and_expiry, setup,
                                    teardown),
    cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
