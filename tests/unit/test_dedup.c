/* The table of remembered exchanges (RFC 7252 §4.5), through the public
 * server API over a real loopback socket with the context's clock
 * replaced: duplicates are answered from the cache, the table starts
 * small and grows with demand, at its memory cap the oldest exchange is
 * forgotten (and counted), and a request is refused with 5.03 only when
 * the oldest is younger than ACK_TIMEOUT * ACK_RANDOM_FACTOR (3 s). */
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

/* The cap the small-table tests set, and the most entries (of 128 bytes
 * plus the index) it can hold: they must see the cap within a few
 * hundred requests. */
enum { SMALL_CAP = 64 * 1024, MAX_REQS = 2000 };

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
};

static struct fixture *F;
static size_t cap_bytes;

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
  (void)req;
  (void)u;
  /* The call count in the payload tells a cached answer from a new run. */
  char buf[16];
  int n = snprintf(buf, sizeof buf, "%u", ++F->calls);
  ck_response_code(resp, CK_CREATED);
  ck_response_payload(resp, buf, (size_t)n);
}

static void h_long(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  /* Longer than an entry holds: cached on the heap, within the budget. */
  char buf[1000];
  memset(buf, 'a' + (int)(++F->calls % 26), sizeof buf);
  ck_response_code(resp, CK_CHANGED);
  ck_response_payload(resp, buf, sizeof buf);
}

static void h_big(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  char buf[1000];
  memset(buf, 'g', sizeof buf);
  ck_response_payload(resp, buf, sizeof buf);
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

static int setup(void **state)
{
  static struct fixture f;
  memset(&f, 0, sizeof f);
  F = &f;
  struct ck_ctx_config cfg = {0};
  cfg.dedup_max_bytes = cap_bytes;
  assert_int_equal(ck_ctx_new(&cfg, &f.ctx), 0);
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
  ck_resource_new(f.ctx, "long", &r);
  ck_resource_handler(r, CK_POST, h_long, NULL);
  ck_resource_new(f.ctx, "big", &r);
  ck_resource_handler(r, CK_GET, h_big, NULL);
  ck_resource_new(f.ctx, "slow", &r);
  ck_resource_handler(r, CK_POST, h_defer, NULL);
  f.fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(f.fd, &a.u.sa, a.len), 0);
  *state = &f;
  return 0;
}

static int setup_small(void **state)
{
  cap_bytes = SMALL_CAP;
  int rc = setup(state);
  cap_bytes = 0;
  return rc;
}

static int teardown(void **state)
{
  (void)state;
  if (F->deferred)
    ck_deferred_drop(F->deferred);
  close(F->fd);
  ck_ctx_free(F->ctx);
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

static void send_req(uint8_t type, uint8_t code, uint16_t mid,
                     const char *path)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, type, code, mid);
  ck_builder_token(&b, "tok1", 4);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, path);
  if (code == CK_POST)
    ck_builder_payload(&b, "x", 1);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(send(F->fd, buf, (size_t)n, 0), n);
}

static struct ck_msg rx;
static uint8_t rxbuf[2048];

static void expect(uint8_t type, uint8_t code)
{
  size_t n = recv_one(rxbuf, sizeof rxbuf);
  assert_true(n > 0);
  assert_int_equal(ck_msg_parse(&rx, rxbuf, n), 0);
  assert_int_equal(rx.type, type);
  assert_int_equal(rx.code, code);
}

/* A CON POST to path, answered piggybacked; returns its code. */
static uint8_t post(uint16_t mid, const char *path)
{
  send_req(CK_TYPE_CON, CK_POST, mid, path);
  size_t n = recv_one(rxbuf, sizeof rxbuf);
  assert_true(n > 0);
  assert_int_equal(ck_msg_parse(&rx, rxbuf, n), 0);
  assert_int_equal(rx.type, CK_TYPE_ACK);
  assert_int_equal(rx.mid, mid);
  return rx.code;
}

/* Answers of 1000 bytes to requests of 20 go only to a verified source
 * (RFC 9175 §2.4, echo.c): the client proves its address with an Echo
 * round trip, as a real one does, before the tests of long answers. */
static void verify_source(void)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 60000);
  ck_builder_token(&b, "tok1", 4);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "big");
  int n = ck_builder_finish(&b);
  assert_int_equal(send(F->fd, buf, (size_t)n, 0), n);
  expect(CK_TYPE_ACK, CK_UNAUTHORIZED);
  struct ck_opt echo;
  assert_int_equal(ck_msg_opt(&rx, CK_OPT_ECHO, &echo), 0);
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 60001);
  ck_builder_token(&b, "tok1", 4);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "big");
  ck_builder_opt(&b, CK_OPT_ECHO, echo.val, echo.len);
  n = ck_builder_finish(&b);
  assert_int_equal(send(F->fd, buf, (size_t)n, 0), n);
  expect(CK_TYPE_ACK, CK_CONTENT);
}

static struct ck_stats stats(void)
{
  struct ck_stats s;
  ck_ctx_stats(F->ctx, &s);
  return s;
}

static void test_duplicates_from_cache(void **state)
{
  (void)state;
  verify_source();
  /* A retransmitted POST gets the very bytes of the first answer, and
   * the handler runs once (§4.5): short answers live in the entry... */
  assert_int_equal(post(1, "r"), CK_CREATED);
  uint8_t first[64];
  size_t first_len = rx.len;
  memcpy(first, rxbuf, first_len);
  assert_int_equal(post(1, "r"), CK_CREATED);
  assert_int_equal(rx.len, first_len);
  assert_memory_equal(rxbuf, first, first_len);
  assert_int_equal(F->calls, 1);
  /* ... long ones beside it. */
  assert_int_equal(post(2, "long"), CK_CHANGED);
  assert_int_equal(rx.payload_len, 1000);
  uint8_t c = rx.payload[0];
  assert_int_equal(post(2, "long"), CK_CHANGED);
  assert_int_equal(rx.payload_len, 1000);
  assert_int_equal(rx.payload[999], c);
  assert_int_equal(F->calls, 2);
  /* A NON request is remembered too, for NON_LIFETIME; its answer (a
   * NON of its own) is not kept, so a duplicate is ignored. */
  send_req(CK_TYPE_NON, CK_POST, 3, "r");
  expect(CK_TYPE_NON, CK_CREATED);
  send_req(CK_TYPE_NON, CK_POST, 3, "r");
  assert_int_equal(recv_one(rxbuf, sizeof rxbuf), 0);
  assert_int_equal(F->calls, 3);
  /* After EXCHANGE_LIFETIME (247 s) the exchange is forgotten: the same
   * MID is a new request. */
  fake_now += 247000;
  assert_int_equal(post(1, "r"), CK_CREATED);
  assert_int_equal(F->calls, 4);
  struct ck_stats s = stats();
  assert_int_equal(s.rx_duplicates, 3);
  assert_int_equal(s.dedup_evictions, 0);
  assert_int_equal(s.dedup_refused, 0);
}

static void test_grows_from_small(void **state)
{
  (void)state;
  /* A context pays next to nothing until something must be
   * remembered, and GETs (not remembered by default) change nothing. */
  uint64_t empty = stats().dedup_bytes;
  assert_true(empty > 0);
  assert_true(empty < 1024);
  for (uint16_t mid = 0; mid < 200; mid++) {
    send_req(CK_TYPE_CON, CK_GET, mid, "r");
    expect(CK_TYPE_ACK, CK_CONTENT);
  }
  assert_int_equal(stats().dedup_bytes, empty);
  /* The first POST takes the first small chunk. */
  assert_int_equal(post(1000, "r"), CK_CREATED);
  uint64_t one = stats().dedup_bytes;
  assert_true(one > empty);
  assert_true(one < 16 * 1024);
  /* 1,500 live exchanges at one instant: the table grows to hold them
   * all (none forgotten, none refused), and not much further. */
  for (uint16_t mid = 1001; mid < 2500; mid++)
    assert_int_equal(post(mid, "r"), CK_CREATED);
  struct ck_stats s = stats();
  assert_true(s.dedup_bytes >= 1500 * 128);
  assert_true(s.dedup_bytes < 1024 * 1024);
  assert_int_equal(s.dedup_evictions, 0);
  assert_int_equal(s.dedup_refused, 0);
  /* Every one of them is still remembered. */
  assert_int_equal(post(1000, "r"), CK_CREATED);
  assert_int_equal(post(2499, "r"), CK_CREATED);
  assert_int_equal(F->calls, 200 + 1500);
}

static void test_cap_drops_oldest(void **state)
{
  (void)state;
  /* Telemetry at a steady rate, 10 ms apart: the cap is reached long
   * after the oldest is 3 s old, so every POST succeeds and the oldest
   * exchanges are forgotten first, one per new one, and counted. */
  enum { N = 1000 };
  for (uint16_t mid = 0; mid < N; mid++) {
    assert_int_equal(post(mid, "r"), CK_CREATED);
    assert_true(stats().dedup_bytes <= SMALL_CAP);
    fake_now += 10;
  }
  struct ck_stats s = stats();
  assert_int_equal(F->calls, N);
  assert_int_equal(s.dedup_refused, 0);
  assert_true(s.dedup_evictions > 0);
  assert_true(s.dedup_evictions < N - 300);
  /* What is kept is exactly the youngest N - evictions: the oldest kept
   * one is answered from the cache, the youngest forgotten one runs its
   * handler again (§4.5's risk, taken only for exchanges over 3 s old). */
  uint16_t kept = (uint16_t)(N - s.dedup_evictions);
  uint16_t oldest_kept = (uint16_t)(N - kept);
  assert_int_equal(post(oldest_kept, "r"), CK_CREATED);
  assert_int_equal(F->calls, N);
  assert_int_equal(post((uint16_t)(oldest_kept - 1), "r"), CK_CREATED);
  assert_int_equal(F->calls, N + 1);
  assert_true(stats().dedup_bytes <= SMALL_CAP);
}

static void test_refused_only_when_young(void **state)
{
  (void)state;
  /* A burst at one instant: the table fills its cap with exchanges
   * younger than 3 s, which may not be forgotten, so the next POST is
   * refused with 5.03 and a Max-Age of the seconds until the oldest may
   * go. Nothing was forgotten to get there. */
  unsigned created = 0; /* handler runs */
  uint8_t code = 0;
  uint16_t mid = 0;
  while (mid < MAX_REQS && (code = post(mid++, "r")) == CK_CREATED)
    created++;
  assert_int_equal(code, CK_SERVICE_UNAVAILABLE);
  uint32_t age;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_MAX_AGE, &age), 0);
  assert_int_equal(age, 3);
  struct ck_stats s = stats();
  assert_true(created > 300);
  assert_int_equal(s.dedup_evictions, 0);
  assert_int_equal(s.dedup_refused, 1);
  assert_int_equal(F->calls, created);
  assert_true(s.dedup_bytes <= SMALL_CAP);
  /* GET is idempotent: served all the same. */
  send_req(CK_TYPE_CON, CK_GET, 60000, "r");
  expect(CK_TYPE_ACK, CK_CONTENT);
  created++;
  /* 1.5 s later the oldest is still too young: retry in 2 s. */
  fake_now += 1500;
  assert_int_equal(post(mid++, "r"), CK_SERVICE_UNAVAILABLE);
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_MAX_AGE, &age), 0);
  assert_int_equal(age, 2);
  /* At 3 s it may go: the POST succeeds, one exchange forgotten. */
  fake_now += 1500;
  assert_int_equal(post(mid++, "r"), CK_CREATED);
  s = stats();
  assert_int_equal(s.dedup_evictions, 1);
  assert_int_equal(s.dedup_refused, 2);
  /* The refused requests were not remembered: their retransmission is a
   * new request (and runs now that there is room). */
  assert_int_equal(post((uint16_t)(mid - 2), "r"), CK_CREATED);
  assert_int_equal(F->calls, created + 2);
}

static void test_pending_is_kept(void **state)
{
  (void)state;
  /* A NON POST whose handler defers stays PENDING (no empty ACK for a
   * NON). Even at the cap and past 3 s it is not forgotten: its
   * duplicate must not start the handler again. */
  send_req(CK_TYPE_NON, CK_POST, 50000, "slow");
  assert_int_equal(recv_one(rxbuf, sizeof rxbuf), 0);
  assert_non_null(F->deferred);
  uint16_t mid = 0;
  while (mid < MAX_REQS && post(mid, "r") == CK_CREATED)
    mid++;
  assert_int_equal(rx.code, CK_SERVICE_UNAVAILABLE);
  fake_now += 3000;
  unsigned calls = F->calls;
  assert_int_equal(post(mid, "r"), CK_CREATED);
  assert_int_equal(stats().dedup_evictions, 1);
  send_req(CK_TYPE_NON, CK_POST, 50000, "slow");
  assert_int_equal(recv_one(rxbuf, sizeof rxbuf), 0);
  assert_int_equal(F->calls, calls + 1);
  /* Its answer goes out when the handler is done; a later duplicate
   * still does not run it again. */
  ck_response_code(ck_deferred_response(F->deferred), CK_CREATED);
  assert_int_equal(ck_deferred_send(F->deferred), 0);
  F->deferred = NULL;
  expect(CK_TYPE_NON, CK_CREATED);
  send_req(CK_TYPE_NON, CK_POST, 50000, "slow");
  assert_int_equal(recv_one(rxbuf, sizeof rxbuf), 0);
  assert_int_equal(F->calls, calls + 1);
  /* The oldest POST (mid 0) was the one forgotten, not the deferred. */
  assert_int_equal(post(1, "r"), CK_CREATED);
  assert_int_equal(F->calls, calls + 1);
  assert_int_equal(post(0, "r"), CK_CREATED);
  assert_int_equal(F->calls, calls + 2);
}

static void test_long_answers_bounded(void **state)
{
  (void)state;
  verify_source();
  /* Answers longer than an entry share an eighth of the cap (8 KiB
   * here, 8 answers of 1 KiB). Past it an answer is not cached: its
   * duplicate is ignored rather than run twice, and memory stays under
   * the cap. */
  for (uint16_t mid = 0; mid < 50; mid++) {
    assert_int_equal(post(mid, "long"), CK_CHANGED);
    fake_now += 10;
  }
  assert_true(stats().dedup_bytes <= SMALL_CAP);
  assert_int_equal(post(0, "long"), CK_CHANGED);
  assert_int_equal(rx.payload_len, 1000);
  send_req(CK_TYPE_CON, CK_POST, 49, "long");
  assert_int_equal(recv_one(rxbuf, sizeof rxbuf), 0);
  assert_int_equal(F->calls, 50);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_duplicates_from_cache, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_grows_from_small, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cap_drops_oldest, setup_small,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_refused_only_when_young,
                                    setup_small, teardown),
    cmocka_unit_test_setup_teardown(test_pending_is_kept, setup_small,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_long_answers_bounded, setup_small,
                                    teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
