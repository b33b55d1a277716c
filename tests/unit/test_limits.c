/* The server's caps through the public API (struct ck_ctx_config): each
 * is filled over a real loopback socket, with the context's clock
 * replaced so that the reap of a stalled upload is deterministic, and
 * each leaves its counter in ck_ctx_stats(). */
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
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

static uint64_t fake_now = 1000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}

static struct ck_ctx *ctx;
static int fd;
static uint16_t mid = 1;
static struct ck_observer *taken;

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "v", 1);
}

static void h_put(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  ck_response_code(resp, CK_CHANGED);
}

/* A GET that takes its observer over, with CON notifications. */
static void h_feed(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  struct ck_observer_config oc = {.type = CK_OBSERVER_TYPE_CON};
  assert_int_equal(ck_observer_new(req, resp, &oc, &taken), 0);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "v", 1);
}

static int setup(void **state)
{
  (void)state;
  struct ck_ctx_config cfg = {0};
  cfg.max_observers_per_resource = 2;
  cfg.max_upload_bytes = 8192;
  cfg.upload_idle_ms = 1000;
  cfg.max_queued_notes = 3;
  cfg.max_body = 65536;
  assert_int_equal(ck_ctx_new(&cfg, &ctx), 0);
  /* The upload sweep's timer was armed by ck_ctx_new() on the real
   * clock: the fake one starts past it, so that it runs at the first
   * ck_ctx_process() and is armed on the fake clock from then on. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  fake_now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
             60000;
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  ck_ctx_process(ctx, 0);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  assert_int_equal(ck_ctx_listen(ctx, &a), 0);
  ck_ctx_local_addr(ctx, 0, &a);
  struct ck_resource *r;
  ck_resource_new(ctx, "obs", &r);
  ck_resource_handler(r, CK_GET, h_get, NULL);
  ck_resource_observable(r, true, false);
  ck_resource_new(ctx, "up", &r);
  ck_resource_handler(r, CK_PUT, h_put, NULL);
  ck_resource_new(ctx, "feed", &r);
  ck_resource_handler(r, CK_GET, h_feed, NULL);
  ck_resource_observable(r, true, false);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(fd, &a.u.sa, a.len), 0);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  close(fd);
  ck_ctx_free(ctx);
  taken = NULL;
  return 0;
}

static struct ck_msg rx;
static uint8_t rxbuf[2048];

/* Runs the server until the answer with our last Message ID comes
 * (skipping notifications); bounded. */
static void answer(void)
{
  for (int i = 0; i < 100; i++) {
    ck_ctx_process(ctx, 0);
    ssize_t n = recv(fd, rxbuf, sizeof rxbuf, MSG_DONTWAIT);
    if (n > 0 && ck_msg_parse(&rx, rxbuf, (size_t)n) == 0 &&
        rx.type == CK_TYPE_ACK && rx.mid == (uint16_t)(mid - 1))
      return;
    struct pollfd p = {.fd = ck_ctx_fd(ctx), .events = POLLIN};
    poll(&p, 1, 2);
  }
  fail_msg("no answer");
}

static void get_observe(const char *path, const char *tok)
{
  uint8_t buf[128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, mid++);
  ck_builder_token(&b, tok, strlen(tok));
  ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 0);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, path);
  int n = ck_builder_finish(&b);
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
  answer();
}

static void put_block(uint32_t num, bool more)
{
  uint8_t buf[1200], body[1024];
  memset(body, 'x', sizeof body);
  struct ck_block blk = {.num = num, .more = more, .szx = 6};
  uint32_t v;
  ck_block_encode(&blk, &v);
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_PUT, mid++);
  ck_builder_token(&b, "up", 2);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, "up");
  ck_builder_opt_uint(&b, CK_OPT_BLOCK1, v);
  ck_builder_payload(&b, body, sizeof body);
  int n = ck_builder_finish(&b);
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
  answer();
}

static void test_observers_per_resource(void **state)
{
  (void)state;
  get_observe("obs", "a");
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_OBSERVE), 1);
  get_observe("obs", "b");
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_OBSERVE), 1);
  /* RFC 7641 §4.1: the third falls back to a plain GET. */
  get_observe("obs", "c");
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_OBSERVE), 0);
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  assert_int_equal(s.observers, 2);
  assert_int_equal(s.observers_rejected_resource, 1);
  assert_int_equal(s.observers_rejected, 0);
  assert_int_equal(s.peers, 1);
  /* Another resource has room of its own. */
  get_observe("feed", "d");
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_OBSERVE), 1);
}

static void test_upload_bytes(void **state)
{
  (void)state;
  /* The buffer doubles from 4 KiB: blocks 0-7 fit 8 KiB, block 8 would
   * need 16 KiB, past max_upload_bytes. */
  for (uint32_t i = 0; i < 8; i++) {
    put_block(i, true);
    assert_int_equal(rx.code, CK_CONTINUE);
  }
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  assert_int_equal(s.uploads, 1);
  assert_int_equal(s.upload_bytes, 8192);
  put_block(8, true);
  assert_int_equal(rx.code, CK_SERVICE_UNAVAILABLE);
  assert_int_equal(ck_msg_opt_count(&rx, CK_OPT_MAX_AGE), 1);
  ck_ctx_stats(ctx, &s);
  assert_int_equal(s.uploads_rejected_bytes, 1);
  assert_int_equal(s.uploads, 0);
  assert_int_equal(s.upload_bytes, 0);
  assert_int_equal(s.peers, 0);
}

static void test_stalled_upload_reaped(void **state)
{
  (void)state;
  put_block(0, true);
  assert_int_equal(rx.code, CK_CONTINUE);
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  assert_int_equal(s.uploads, 1);
  /* Not yet: a block within upload_idle_ms keeps it. */
  fake_now += 900;
  ck_ctx_process(ctx, 0);
  put_block(1, true);
  assert_int_equal(rx.code, CK_CONTINUE);
  /* Then silence past upload_idle_ms and one more sweep period. */
  fake_now += 1000 + 250;
  ck_ctx_process(ctx, 0);
  ck_ctx_stats(ctx, &s);
  assert_int_equal(s.uploads_expired, 1);
  assert_int_equal(s.uploads, 0);
  assert_int_equal(s.upload_bytes, 0);
  assert_int_equal(s.peers, 0);
  /* RFC 7959 §2.9.2: the next block continues nothing. */
  put_block(2, true);
  assert_int_equal(rx.code, CK_REQUEST_ENTITY_INCOMPLETE);
}

static void test_queued_notes(void **state)
{
  (void)state;
  get_observe("feed", "f");
  assert_non_null(taken);
  ck_ctx_process(ctx, 0);
  /* The first goes out as a CON that is never acknowledged; the rest
   * queue behind it until max_queued_notes (3, the one in flight
   * included); past it the oldest waiting one drops. */
  struct ck_notification n = {.payload = "n", .len = 1};
  int dropped = 0;
  for (int i = 0; i < 6; i++) {
    int rc = ck_observer_notify(taken, &n);
    assert_true(rc >= 0);
    dropped += rc;
  }
  struct ck_stats s;
  ck_ctx_stats(ctx, &s);
  assert_int_equal(dropped, 3);
  assert_int_equal(s.notify_queued, 3);
  assert_int_equal(s.notify_dropped_cap, 3);
  assert_int_equal(s.notify_dropped, 3);
  assert_int_equal(ck_observer_queued(taken), 3);
  ck_observer_free(taken);
  ck_ctx_stats(ctx, &s);
  assert_int_equal(s.notify_queued, 0);
  assert_int_equal(s.observers, 0);
  assert_int_equal(s.peers, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_observers_per_resource, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_upload_bytes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stalled_upload_reaped, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_queued_notes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
