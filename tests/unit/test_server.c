/* Behaviour of the server library through its public API, over a real
 * loopback socket, with the context's clock and randomness replaced so
 * that timing (separate responses, retransmission) is deterministic. */
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

static uint64_t fake_now = 1000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}
static void zero_random(void *u, void *buf, size_t len)
{
  (void)u;
  memset(buf, 0, len);
}

struct fixture {
  struct ck_ctx *ctx;
  int fd; /* the client's socket, connected to the server */
  unsigned calls;
  struct ck_deferred *deferred;
  struct ck_resource *obs;
  struct ck_resource *slow;
};

static struct fixture *F;

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  F->calls++;
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "v", 1);
}

static void h_post(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  F->calls++;
  size_t n;
  const uint8_t *p = ck_request_payload(req, &n);
  ck_response_code(resp, CK_CREATED);
  /* Echo the body's length and first byte for block-wise checks. */
  char buf[32];
  int len = snprintf(buf, sizeof buf, "%zu:%c", n, n ? p[0] : '-');
  ck_response_payload(resp, buf, (size_t)len);
}

static void h_defer(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  F->calls++;
  F->deferred = ck_response_defer(resp, 0);
}

static uint32_t dedup_entries = 4096;
static bool remember_idempotent;

static int setup(void **state)
{
  static struct fixture f;
  memset(&f, 0, sizeof f);
  F = &f;
  struct ck_ctx_config cfg = {0};
  cfg.dedup_entries = dedup_entries;
  cfg.remember_idempotent = remember_idempotent;
  cfg.max_body = 4096;
  ck_ctx_new(&cfg, &f.ctx);
  ck_ctx_set_clock(f.ctx, clock_fn, NULL);
  ck_ctx_set_random(f.ctx, zero_random, NULL);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  assert_int_equal(ck_ctx_listen(f.ctx, &a), 0);
  ck_ctx_local_addr(f.ctx, 0, &a);
  struct ck_resource *r;
  ck_resource_new(f.ctx, "r", &r);
  ck_resource_handler(r, CK_GET, h_get, NULL);
  ck_resource_handler(r, CK_POST, h_post, NULL);
  ck_resource_handler(r, CK_PUT, h_post, NULL);
  uint16_t fmts[] = {CK_CF_TEXT_PLAIN, CK_CF_JSON};
  ck_resource_produces(r, fmts, 2);
  ck_resource_consumes(r, fmts, 2);
  ck_resource_new(f.ctx, "slow", &r);
  ck_resource_handler(r, CK_GET, h_defer, NULL);
  ck_resource_observable(r, true, false);
  f.slow = r;
  ck_resource_new(f.ctx, "obs", &f.obs);
  ck_resource_handler(f.obs, CK_GET, h_get, NULL);
  ck_resource_observable(f.obs, true, false);
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
  return 0;
}

/* Runs the server until idle, then returns the next datagram for the
 * client (length), or 0 when none arrived. */
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

static void send_raw(const void *m, size_t len)
{
  assert_int_equal(send(F->fd, m, len, 0), (ssize_t)len);
}

/* Sends a request; opts is a list of (num, value) string pairs ending
 * with 0. */
static void send_req(uint8_t type, uint8_t code, uint16_t mid,
                     const char *payload, ...)
{
  uint8_t buf[512];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, type, code, mid);
  ck_builder_token(&b, "tok1", 4);
  va_list ap;
  va_start(ap, payload);
  for (;;) {
    int num = va_arg(ap, int);
    if (num == 0)
      break;
    const char *v = va_arg(ap, const char *);
    if (v[0] == '#')
      ck_builder_opt_uint(&b, (uint16_t)num, (uint32_t)atoi(v + 1));
    else
      ck_builder_opt_str(&b, (uint16_t)num, v);
  }
  va_end(ap);
  if (payload)
    ck_builder_payload(&b, payload, strlen(payload));
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  send_raw(buf, (size_t)n);
}

static struct ck_msg rx;
static uint8_t rxbuf[2048];

/* Receives the next message into rx and checks its type. */
static void expect_type(uint8_t type)
{
  size_t n = recv_one(rxbuf, sizeof rxbuf);
  assert_true(n > 0);
  assert_int_equal(ck_msg_parse(&rx, rxbuf, n), 0);
  assert_int_equal(rx.type, type);
}

static void expect(uint8_t type, uint8_t code)
{
  expect_type(type);
  assert_int_equal(rx.code, code);
}

static void expect_nothing(void)
{
  assert_int_equal(recv_one(rxbuf, sizeof rxbuf), 0);
}

static void test_piggybacked_and_duplicate(void **state)
{
  (void)state;
  send_req(CK_TYPE_CON, CK_GET, 100, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(rx.mid, 100);
  assert_int_equal(rx.tkl, 4);
  assert_memory_equal(rx.token, "tok1", 4);
  assert_int_equal(rx.payload_len, 1);
  size_t first_len = rx.len;
  uint8_t first[64];
  memcpy(first, rxbuf, first_len);
  /* The retransmitted CON gets the same answer. By default a GET is not
   * remembered (RFC 7252 §4.5 allows it), so its handler runs again. */
  send_req(CK_TYPE_CON, CK_GET, 100, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(rx.len, first_len);
  assert_memory_equal(rxbuf, first, first_len);
  assert_int_equal(F->calls, 2);
  /* POST is not idempotent: the duplicate must not run the handler. */
  send_req(CK_TYPE_CON, CK_POST, 101, "x", CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CREATED);
  send_req(CK_TYPE_CON, CK_POST, 101, "x", CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CREATED);
  assert_int_equal(F->calls, 3);
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rx_duplicates, 1);
}

static int setup_remember(void **state)
{
  remember_idempotent = true;
  int rc = setup(state);
  remember_idempotent = false;
  return rc;
}

static void test_remember_idempotent(void **state)
{
  (void)state;
  /* With remember_idempotent, a duplicate GET is answered from the
   * cache and the handler runs once. */
  send_req(CK_TYPE_CON, CK_GET, 100, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  send_req(CK_TYPE_CON, CK_GET, 100, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(F->calls, 1);
}

static void test_non_request(void **state)
{
  (void)state;
  send_req(CK_TYPE_NON, CK_GET, 200, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_NON, CK_CONTENT);
  assert_memory_equal(rx.token, "tok1", 4);
}

static void test_malformed_and_ping(void **state)
{
  (void)state;
  /* TKL 9 in a CON: RST with its MID (RFC 7252 §4.2). */
  static const uint8_t bad[] = {0x49, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5,
                                6,    7,    8,    9};
  send_raw(bad, sizeof bad);
  expect(CK_TYPE_RST, CK_CODE_EMPTY);
  assert_int_equal(rx.mid, 0x1234);
  /* The same in a NON: silence. */
  static const uint8_t bad_non[] = {0x59, 0x01, 0x12, 0x35, 1, 2, 3, 4, 5,
                                    6,    7,    8,    9};
  send_raw(bad_non, sizeof bad_non);
  expect_nothing();
  /* An empty CON is a ping: RST. */
  static const uint8_t ping[] = {0x40, 0x00, 0x43, 0x21};
  send_raw(ping, sizeof ping);
  expect(CK_TYPE_RST, CK_CODE_EMPTY);
  assert_int_equal(rx.mid, 0x4321);
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rx_malformed, 2);
}

static void test_error_codes(void **state)
{
  (void)state;
  send_req(CK_TYPE_CON, CK_GET, 300, NULL, CK_OPT_URI_PATH, "nope", 0);
  expect(CK_TYPE_ACK, CK_NOT_FOUND);
  send_req(CK_TYPE_CON, CK_DELETE, 301, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_METHOD_NOT_ALLOWED);
  /* RFC 7252 §5.8: an unrecognised method code (0.31) is 4.05 too. */
  send_req(CK_TYPE_CON, CK_CODE(0, 31), 309, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_METHOD_NOT_ALLOWED);
  send_req(CK_TYPE_CON, CK_GET, 302, NULL, CK_OPT_URI_PATH, "r",
           CK_OPT_ACCEPT, "#60", 0);
  expect(CK_TYPE_ACK, CK_NOT_ACCEPTABLE);
  send_req(CK_TYPE_CON, CK_PUT, 303, "x", CK_OPT_URI_PATH, "r",
           CK_OPT_CONTENT_FORMAT, "#42", 0);
  expect(CK_TYPE_ACK, CK_UNSUPPORTED_CONTENT_FORMAT);
  /* OSCORE (9) is critical and not understood here. */
  send_req(CK_TYPE_CON, CK_GET, 304, NULL, CK_OPT_OSCORE, "z",
           CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_BAD_OPTION);
  /* An unknown elective option is ignored. */
  send_req(CK_TYPE_CON, CK_GET, 305, NULL, CK_OPT_URI_PATH, "r", 65000,
           "e", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  /* Uri-Host twice: a repeated non-repeatable critical option. */
  send_req(CK_TYPE_CON, CK_GET, 306, NULL, CK_OPT_URI_HOST, "a",
           CK_OPT_URI_HOST, "b", CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_BAD_OPTION);
  send_req(CK_TYPE_CON, CK_GET, 307, NULL, CK_OPT_PROXY_URI,
           "coap://elsewhere/", 0);
  expect(CK_TYPE_ACK, CK_PROXYING_NOT_SUPPORTED);
  /* Once the application says it understands it, 4.02 goes away. */
  ck_ctx_recognize_option(F->ctx, CK_OPT_OSCORE);
  send_req(CK_TYPE_CON, CK_GET, 308, NULL, CK_OPT_OSCORE, "z",
           CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
}

static void test_no_response(void **state)
{
  (void)state;
  /* RFC 7967: suppress 2.xx; a CON still gets its empty ACK. */
  send_req(CK_TYPE_CON, CK_GET, 400, NULL, CK_OPT_URI_PATH, "r",
           CK_OPT_NO_RESPONSE, "#2", 0);
  expect(CK_TYPE_ACK, CK_CODE_EMPTY);
  send_req(CK_TYPE_NON, CK_GET, 401, NULL, CK_OPT_URI_PATH, "r",
           CK_OPT_NO_RESPONSE, "#2", 0);
  expect_nothing();
  /* Suppressing 4.xx leaves 2.xx alone. */
  send_req(CK_TYPE_NON, CK_GET, 402, NULL, CK_OPT_URI_PATH, "r",
           CK_OPT_NO_RESPONSE, "#8", 0);
  expect(CK_TYPE_NON, CK_CONTENT);
}

static void test_separate_response_and_retransmission(void **state)
{
  (void)state;
  send_req(CK_TYPE_CON, CK_GET, 500, NULL, CK_OPT_URI_PATH, "slow", 0);
  expect_nothing(); /* nothing before the separate delay (100 ms) */
  assert_non_null(F->deferred);
  fake_now += 100;
  expect(CK_TYPE_ACK, CK_CODE_EMPTY);
  assert_int_equal(rx.mid, 500);
  /* A duplicate of the request now gets the empty ACK again. */
  send_req(CK_TYPE_CON, CK_GET, 500, NULL, CK_OPT_URI_PATH, "slow", 0);
  expect(CK_TYPE_ACK, CK_CODE_EMPTY);
  assert_int_equal(F->calls, 1);

  ck_response_content(ck_deferred_response(F->deferred), 0, "late", 4);
  assert_int_equal(ck_deferred_send(F->deferred), 0);
  F->deferred = NULL;
  expect(CK_TYPE_CON, CK_CONTENT);
  uint16_t mid = rx.mid;
  assert_memory_equal(rx.token, "tok1", 4);
  assert_memory_equal(rx.payload, "late", 4);

  /* Unacknowledged, it is retransmitted after 2, 4, 8, 16 s (random
   * factor drawn as 0 here: the initial timeout is ACK_TIMEOUT), four
   * times (MAX_RETRANSMIT), and then given up. */
  static const uint64_t gaps[] = {2000, 4000, 8000, 16000};
  for (size_t i = 0; i < 4; i++) {
    fake_now += gaps[i] - 1;
    expect_nothing();
    fake_now += 1;
    expect(CK_TYPE_CON, CK_CONTENT);
    assert_int_equal(rx.mid, mid);
  }
  fake_now += 64000;
  expect_nothing();
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.tx_retransmits, 4);
}

static void test_separate_response_acked(void **state)
{
  (void)state;
  send_req(CK_TYPE_CON, CK_GET, 600, NULL, CK_OPT_URI_PATH, "slow", 0);
  expect_nothing();
  assert_non_null(F->deferred);
  /* Answered before the delay: piggybacked, no empty ACK. */
  ck_response_content(ck_deferred_response(F->deferred), 0, "soon", 4);
  ck_deferred_send(F->deferred);
  F->deferred = NULL;
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(rx.mid, 600);
  fake_now += 100;
  expect_nothing();
}

static void test_observe_deferred(void **state)
{
  (void)state;
  /* A deferred answer to a registration registers when it is sent. */
  send_req(CK_TYPE_CON, CK_GET, 750, NULL, CK_OPT_OBSERVE, "#0",
           CK_OPT_URI_PATH, "slow", 0);
  expect_nothing();
  assert_non_null(F->deferred);
  assert_int_equal(ck_resource_observers(F->slow), 0);
  ck_response_content(ck_deferred_response(F->deferred), 0, "v", 1);
  ck_deferred_send(F->deferred);
  F->deferred = NULL;
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_OBSERVE), 1);
  assert_int_equal(ck_resource_observers(F->slow), 1);
}

static void test_conditional_options(void **state)
{
  (void)state;
  /* Not evaluated by the library: refused until the application says
   * its handlers do. */
  send_req(CK_TYPE_CON, CK_PUT, 760, "x", CK_OPT_IF_NONE_MATCH, "",
           CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_BAD_OPTION);
  ck_ctx_recognize_option(F->ctx, CK_OPT_IF_NONE_MATCH);
  send_req(CK_TYPE_CON, CK_PUT, 761, "x", CK_OPT_IF_NONE_MATCH, "",
           CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CREATED);
}

static void test_observe(void **state)
{
  (void)state;
  send_req(CK_TYPE_CON, CK_GET, 700, NULL, CK_OPT_OBSERVE, "#0",
           CK_OPT_URI_PATH, "obs", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  uint32_t seq0, seq1;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &seq0), 0);
  assert_int_equal(ck_resource_observers(F->obs), 1);

  assert_int_equal(ck_resource_changed(F->obs, 0), 1);
  expect(CK_TYPE_NON, CK_CONTENT);
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &seq1), 0);
  assert_true(seq1 > seq0);
  assert_memory_equal(rx.token, "tok1", 4);

  /* A CON notification, acknowledged: the observer stays. */
  ck_resource_changed(F->obs, CK_NOTIFY_CON);
  expect(CK_TYPE_CON, CK_CONTENT);
  uint8_t ack[4] = {0x60, 0, (uint8_t)(rx.mid >> 8), (uint8_t)rx.mid};
  send_raw(ack, 4);
  expect_nothing();
  assert_int_equal(ck_resource_observers(F->obs), 1);

  /* RST to a NON notification cancels (RFC 7641 §3.6). */
  ck_resource_changed(F->obs, 0);
  expect(CK_TYPE_NON, CK_CONTENT);
  uint8_t rst[4] = {0x70, 0, (uint8_t)(rx.mid >> 8), (uint8_t)rx.mid};
  send_raw(rst, 4);
  expect_nothing();
  assert_int_equal(ck_resource_observers(F->obs), 0);

  /* Register again, then deregister with Observe=1. */
  send_req(CK_TYPE_CON, CK_GET, 701, NULL, CK_OPT_OBSERVE, "#0",
           CK_OPT_URI_PATH, "obs", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(ck_resource_observers(F->obs), 1);
  send_req(CK_TYPE_CON, CK_GET, 702, NULL, CK_OPT_OBSERVE, "#1",
           CK_OPT_URI_PATH, "obs", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_OBSERVE), 0);
  assert_int_equal(ck_resource_observers(F->obs), 0);

  /* A CON notification nobody acknowledges removes the observer. */
  send_req(CK_TYPE_CON, CK_GET, 703, NULL, CK_OPT_OBSERVE, "#0",
           CK_OPT_URI_PATH, "obs", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  ck_resource_changed(F->obs, CK_NOTIFY_CON);
  expect(CK_TYPE_CON, CK_CONTENT);
  for (int i = 0; i < 6; i++) {
    fake_now += 40000;
    ck_ctx_process(F->ctx, 0);
    while (recv(F->fd, rxbuf, sizeof rxbuf, MSG_DONTWAIT) > 0)
      ;
  }
  assert_int_equal(ck_resource_observers(F->obs), 0);
}

static uint8_t block1_method = CK_POST;

static void send_block1(uint16_t mid, uint32_t num, bool more, size_t len,
                        char fill)
{
  uint8_t buf[1200], body[1024];
  memset(body, fill, len);
  struct ck_builder b;
  struct ck_block blk = {.num = num, .more = more, .szx = 2}; /* 64 */
  uint32_t v;
  ck_block_encode(&blk, &v);
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, block1_method, mid);
  ck_builder_token(&b, "tok2", 4);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "r");
  ck_builder_opt_uint(&b, CK_OPT_BLOCK1, v);
  ck_builder_payload(&b, body, len);
  int n = ck_builder_finish(&b);
  send_raw(buf, (size_t)n);
}

static void test_block1(void **state)
{
  (void)state;
  send_block1(800, 0, true, 64, 'a');
  expect(CK_TYPE_ACK, CK_CONTINUE);
  struct ck_block blk;
  uint32_t v;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_BLOCK1, &v), 0);
  ck_block_decode(v, &blk);
  assert_int_equal(blk.num, 0);
  assert_true(blk.more);
  /* A gap: block 2 before block 1. */
  send_block1(801, 2, true, 64, 'c');
  expect(CK_TYPE_ACK, CK_REQUEST_ENTITY_INCOMPLETE);
  send_block1(802, 1, true, 64, 'b');
  expect(CK_TYPE_ACK, CK_CONTINUE);
  /* The same block again (its ACK was lost): the cached 2.31, not 4.08. */
  send_block1(802, 1, true, 64, 'b');
  expect(CK_TYPE_ACK, CK_CONTINUE);
  send_block1(803, 2, false, 10, 'c');
  expect(CK_TYPE_ACK, CK_CREATED);
  assert_int_equal(rx.payload_len, 5);
  assert_memory_equal(rx.payload, "138:a", 5);
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_BLOCK1, &v), 0);
  ck_block_decode(v, &blk);
  assert_int_equal(blk.num, 2);
  assert_false(blk.more);

  /* Above max_body (4096 here): 4.13 with Size1. */
  for (uint32_t i = 0; i < 80; i++) {
    send_block1((uint16_t)(900 + i), i, true, 64, 'z');
    size_t n = recv_one(rxbuf, sizeof rxbuf);
    assert_true(n > 0);
    assert_int_equal(ck_msg_parse(&rx, rxbuf, n), 0);
    if (rx.code != CK_CONTINUE)
      break;
  }
  assert_int_equal(rx.code, CK_REQUEST_ENTITY_TOO_LARGE);
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_SIZE1, &v), 0);
  assert_int_equal(v, 4096);
}

static void test_block2_and_wellknown(void **state)
{
  (void)state;
  send_req(CK_TYPE_CON, CK_GET, 1000, NULL, CK_OPT_URI_PATH, ".well-known",
           CK_OPT_URI_PATH, "core", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  uint32_t cf;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_CONTENT_FORMAT, &cf), 0);
  assert_int_equal(cf, CK_CF_LINK_FORMAT);
  const char want[] = "</r>,</slow>;obs,</obs>;obs";
  assert_int_equal(rx.payload_len, strlen(want));
  assert_memory_equal(rx.payload, want, strlen(want));
  send_req(CK_TYPE_CON, CK_GET, 1001, NULL, CK_OPT_URI_PATH, ".well-known",
           CK_OPT_URI_PATH, "core", CK_OPT_URI_QUERY, "href=/s*", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  assert_int_equal(rx.payload_len, 11);
  assert_memory_equal(rx.payload, "</slow>;obs", 11);
  /* Block2 with a 16-byte block: the second block of the document. */
  send_req(CK_TYPE_CON, CK_GET, 1002, NULL, CK_OPT_URI_PATH, ".well-known",
           CK_OPT_URI_PATH, "core", CK_OPT_BLOCK2, "#16", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
  uint32_t v;
  struct ck_block blk;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_BLOCK2, &v), 0);
  ck_block_decode(v, &blk);
  assert_int_equal(blk.num, 1);
  assert_false(blk.more);
  assert_int_equal(rx.payload_len, strlen(want) - 16);
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_ETAG), 1);
}

static int setup_small_dedup(void **state)
{
  dedup_entries = 64;
  int rc = setup(state);
  dedup_entries = 4096;
  return rc;
}

static void test_dedup_table_full(void **state)
{
  (void)state;
  /* 64 slots, 100 live POST exchanges: some cannot be remembered, so
   * they are refused with 5.03 and Max-Age rather than risk running a
   * non-idempotent handler twice. Nothing is silently lost: every
   * request gets an answer, and the handler ran once per 2.01. */
  unsigned created = 0, refused = 0;
  for (uint16_t mid = 0; mid < 100; mid++) {
    send_req(CK_TYPE_CON, CK_POST, mid, "x", CK_OPT_URI_PATH, "r", 0);
    expect_type(CK_TYPE_ACK);
    if (rx.code == CK_CREATED) {
      created++;
    } else {
      assert_int_equal(rx.code, CK_SERVICE_UNAVAILABLE);
      uint32_t age;
      assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_MAX_AGE, &age), 0);
      assert_true(age > 0);
      refused++;
    }
  }
  assert_int_equal(created + refused, 100);
  assert_true(refused > 0);
  assert_true(created >= 64 * 3 / 4);
  assert_int_equal(F->calls, created);
  /* GETs are idempotent: they are still served while the table is full. */
  send_req(CK_TYPE_CON, CK_GET, 200, NULL, CK_OPT_URI_PATH, "r", 0);
  expect(CK_TYPE_ACK, CK_CONTENT);
}

static void test_block1_put_retransmitted(void **state)
{
  (void)state;
  /* PUT is idempotent, but a repeated Block1 block must still get the
   * answer it got the first time. */
  block1_method = CK_PUT;
  send_block1(820, 0, true, 64, 'a');
  expect(CK_TYPE_ACK, CK_CONTINUE);
  send_block1(820, 0, true, 64, 'a');
  expect(CK_TYPE_ACK, CK_CONTINUE);
  send_block1(821, 1, false, 3, 'b');
  expect(CK_TYPE_ACK, CK_CREATED);
  assert_memory_equal(rx.payload, "67:a", 4);
  send_block1(821, 1, false, 3, 'b');
  expect(CK_TYPE_ACK, CK_CREATED);
  assert_int_equal(F->calls, 1);
  block1_method = CK_POST;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_piggybacked_and_duplicate, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_remember_idempotent,
                                    setup_remember, teardown),
    cmocka_unit_test_setup_teardown(test_non_request, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed_and_ping, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_error_codes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_response, setup, teardown),
    cmocka_unit_test_setup_teardown(
      test_separate_response_and_retransmission, setup, teardown),
    cmocka_unit_test_setup_teardown(test_separate_response_acked, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_observe, setup, teardown),
    cmocka_unit_test_setup_teardown(test_observe_deferred, setup, teardown),
    cmocka_unit_test_setup_teardown(test_conditional_options, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_block1, setup, teardown),
    cmocka_unit_test_setup_teardown(test_block1_put_retransmitted, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_block2_and_wellknown, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_dedup_table_full,
                                    setup_small_dedup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
