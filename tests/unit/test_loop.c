/* The public timers and descriptor watches (coapkit/loop.h) and the
 * sending contract of ctx.h, through the public API: timers fire in due
 * order under a fake clock, repeat, stop and may free themselves; watches
 * report a pipe's readiness, pause, and survive being freed from a
 * callback; a request sent from outside the loop is on the wire before
 * ck_client_send() returns, and a zeroed request carries no options. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

static uint64_t fake_now = 5000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}

enum { NT = 512 };

struct rec {
  unsigned n;
  uint64_t at[NT];
  int who[NT];
};

struct tctx {
  struct rec *rec;
  int id;
  struct ck_timer *self;
  bool free_self;
};

static void on_timer(struct ck_timer *t, void *user)
{
  struct tctx *c = user;
  (void)t;
  if (c->rec->n < NT) {
    c->rec->at[c->rec->n] = fake_now;
    c->rec->who[c->rec->n++] = c->id;
  }
  if (c->free_self) {
    ck_timer_free(c->self);
    c->self = NULL;
  }
}

static struct ck_ctx *new_ctx(void)
{
  struct ck_ctx *ctx;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  return ctx;
}

/* Advances the fake clock one millisecond at a time to `until`. */
static void run_until(struct ck_ctx *ctx, uint64_t until)
{
  while (fake_now < until) {
    fake_now++;
    assert_true(ck_ctx_process(ctx, 0) >= 0);
  }
}

static void test_timers_fire_in_due_order(void **state)
{
  (void)state;
  struct ck_ctx *ctx = new_ctx();
  static struct rec rec;
  memset(&rec, 0, sizeof rec);
  static struct tctx tc[200];
  uint64_t start = fake_now;
  /* A fixed pseudo-random sequence of delays, some equal. */
  uint32_t x = 12345;
  for (int i = 0; i < 200; i++) {
    x = x * 1103515245u + 12345u;
    tc[i] = (struct tctx){.rec = &rec, .id = i};
    assert_int_equal(ck_timer_new(ctx, on_timer, &tc[i], &tc[i].self), 0);
    ck_timer_start(tc[i].self, (x >> 16) % 300, 0);
  }
  /* Stop every third one: stopped timers never fire. */
  for (int i = 0; i < 200; i += 3)
    ck_timer_stop(tc[i].self);
  run_until(ctx, start + 400);
  assert_int_equal(rec.n, 200 - 67);
  for (unsigned i = 1; i < rec.n; i++)
    assert_true(rec.at[i - 1] <= rec.at[i]);
  for (unsigned i = 0; i < rec.n; i++)
    assert_true(rec.who[i] % 3 != 0);
  for (int i = 0; i < 200; i++) {
    assert_false(ck_timer_active(tc[i].self));
    ck_timer_free(tc[i].self);
  }
  ck_ctx_free(ctx);
}

static void test_timer_repeats_and_frees_itself(void **state)
{
  (void)state;
  struct ck_ctx *ctx = new_ctx();
  static struct rec rec;
  memset(&rec, 0, sizeof rec);
  struct tctx a = {.rec = &rec, .id = 1};
  struct tctx b = {.rec = &rec, .id = 2, .free_self = true};
  assert_int_equal(ck_timer_new(ctx, on_timer, &a, &a.self), 0);
  assert_int_equal(ck_timer_new(ctx, on_timer, &b, &b.self), 0);
  uint64_t start = fake_now;
  ck_timer_start(a.self, 10, 100);
  ck_timer_start(b.self, 50, 0);
  assert_true(ck_timer_active(a.self));
  run_until(ctx, start + 335);
  /* a at +10, +110, +210, +310; b once at +50, then freed itself. */
  assert_int_equal(rec.n, 5);
  assert_int_equal(rec.who[0], 1);
  assert_int_equal(rec.at[0], start + 10);
  assert_int_equal(rec.who[1], 2);
  assert_int_equal(rec.at[1], start + 50);
  assert_int_equal(rec.at[4], start + 310);
  assert_null(b.self);
  /* Re-arming replaces the due time. */
  ck_timer_start(a.self, 1000, 0);
  run_until(ctx, start + 1300);
  assert_int_equal(rec.n, 5);
  run_until(ctx, start + 1340);
  assert_int_equal(rec.n, 6);
  assert_false(ck_timer_active(a.self));
  ck_timer_free(a.self);
  ck_ctx_free(ctx);
}

struct wctx {
  int fd;
  unsigned calls;
  unsigned events;
  struct ck_watch *other; /* freed from this watch's callback */
  struct ck_watch *self;
};

static void on_watch(struct ck_watch *w, int fd, unsigned events, void *user)
{
  struct wctx *c = user;
  (void)w;
  assert_int_equal(fd, c->fd);
  c->calls++;
  c->events |= events;
  char b[16];
  ssize_t r = read(fd, b, sizeof b);
  (void)r;
  if (c->other) {
    ck_watch_free(c->other);
    c->other = NULL;
  }
}

static void test_watch_reports_and_pauses(void **state)
{
  (void)state;
  struct ck_ctx *ctx;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  int p1[2], p2[2];
  assert_int_equal(pipe2(p1, O_NONBLOCK), 0);
  assert_int_equal(pipe2(p2, O_NONBLOCK), 0);
  struct wctx a = {.fd = p1[0]}, b = {.fd = p2[0]};
  assert_int_equal(
      ck_watch_new(ctx, p1[0], CK_WATCH_READ, on_watch, &a, &a.self), 0);
  assert_int_equal(
      ck_watch_new(ctx, p2[0], CK_WATCH_READ, on_watch, &b, &b.self), 0);
  /* Both readable in one iteration; whichever runs first frees the
   * other, which must then not run (nor crash under ASan). */
  a.other = b.self;
  b.other = a.self;
  assert_int_equal(write(p1[1], "x", 1), 1);
  assert_int_equal(write(p2[1], "y", 1), 1);
  assert_true(ck_ctx_process(ctx, 100) >= 0);
  assert_int_equal(a.calls + b.calls, 1);
  struct wctx *live = a.calls ? &a : &b;
  assert_true(live->events & CK_WATCH_READ);
  /* Paused: no callback while data waits; resumed: one. */
  assert_int_equal(ck_watch_set(live->self, 0), 0);
  assert_int_equal(write(live == &a ? p1[1] : p2[1], "z", 1), 1);
  assert_true(ck_ctx_process(ctx, 20) >= 0);
  assert_int_equal(a.calls + b.calls, 1);
  assert_int_equal(ck_watch_set(live->self, CK_WATCH_READ), 0);
  assert_true(ck_ctx_process(ctx, 100) >= 0);
  assert_int_equal(a.calls + b.calls, 2);
  ck_watch_free(live->self);
  /* Bad arguments are refused, not crashed on. */
  struct ck_watch *w;
  assert_int_equal(ck_watch_new(ctx, -1, CK_WATCH_READ, on_watch, &a, &w),
                   CK_EINVAL);
  assert_int_equal(ck_watch_new(NULL, 0, CK_WATCH_READ, on_watch, &a, &w),
                   CK_EINVAL);
  assert_int_equal(ck_timer_new(ctx, NULL, NULL, NULL), CK_EINVAL);
  ck_timer_start(NULL, 1, 0);
  ck_timer_free(NULL);
  ck_watch_free(NULL);
  for (int i = 0; i < 2; i++) {
    close(p1[i]);
    close(p2[i]);
  }
  ck_ctx_free(ctx);
}

static void on_resp(struct ck_call *call, const struct ck_client_response *r,
                    void *u)
{
  (void)call;
  (void)r;
  (void)u;
}

static void test_send_outside_loop_leaves_at_once(void **state)
{
  (void)state;
  struct ck_ctx *ctx;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(bind(fd, &a.u.sa, a.len), 0);
  a.len = sizeof a.u;
  assert_int_equal(getsockname(fd, &a.u.sa, &a.len), 0);
  char uri[128], host[CK_ADDR_STRLEN];
  ck_addr_format(&a, host, sizeof host);
  snprintf(uri, sizeof uri, "coap://%s/x", host);
  struct ck_client *c;
  assert_int_equal(ck_client_new(ctx, NULL, &c), 0);
  /* A zeroed request is a CON GET without options (no Content-Format 0:
   * zero means "none"). */
  struct ck_client_request req = {.uri = uri, .method = CK_GET};
  assert_int_equal(ck_client_send(c, &req, on_resp, NULL, NULL), 0);
  /* No ck_ctx_process() in between: the datagram is already sent. */
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 1);
  uint8_t buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  struct ck_msg m;
  assert_int_equal(ck_msg_parse(&m, buf, (size_t)n), 0);
  assert_int_equal(m.code, CK_GET);
  assert_int_equal(m.type, CK_TYPE_CON);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_CONTENT_FORMAT), 0);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_ACCEPT), 0);
  /* And the next timeout is the retransmission, not "now". */
  int t = ck_ctx_timeout(ctx);
  assert_true(t >= 1900 && t <= 3000);
  ck_client_free(c);
  close(fd);
  ck_ctx_free(ctx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timers_fire_in_due_order),
      cmocka_unit_test(test_timer_repeats_and_frees_itself),
      cmocka_unit_test(test_watch_reports_and_pauses),
      cmocka_unit_test(test_send_outside_loop_leaves_at_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
