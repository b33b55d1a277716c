/* A context with worker threads (ck_ctx_config.workers), through the
 * public API: the setting's range; a listener that is several sockets
 * shows as one; requests from many client ports (so through every
 * socket) all reach one handler, which runs one at a time and exactly
 * once per request; a timer a handler arms on a worker's thread fires on
 * time although the loop's thread sleeps without a timer of its own; and
 * freeing the context joins the threads. The server runs ck_run() on a
 * thread of the test; the clients are contexts of their own. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

enum { CLIENTS = 24 };

struct server {
  struct ck_ctx *ctx;
  struct ck_timer *timer;
  pthread_t thread;
  uint16_t port;
  unsigned running; /* handlers inside at once: never above 1 */
  unsigned max_running;
  unsigned posts;
  atomic_bool fired;
};

static void h_post(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r, (void)req;
  struct server *s = u;
  /* Plain counters: the lock serializes handlers (TSan builds check). */
  if (++s->running > s->max_running)
    s->max_running = s->running;
  char num[16];
  snprintf(num, sizeof num, "%u", ++s->posts);
  ck_response_code(resp, CK_CREATED);
  ck_response_payload(resp, num, strlen(num));
  s->running--;
}

static void on_timer(struct ck_timer *t, void *u)
{
  (void)t;
  struct server *s = u;
  atomic_store(&s->fired, true);
}

static void h_arm(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r, (void)req;
  struct server *s = u;
  ck_timer_start(s->timer, 50, 0);
  ck_response_code(resp, CK_CHANGED);
}

static void *serve(void *arg)
{
  struct server *s = arg;
  ck_run(s->ctx);
  return NULL;
}

static void start(struct server *s, unsigned workers)
{
  memset(s, 0, sizeof *s);
  atomic_init(&s->fired, false);
  struct ck_ctx_config cfg = {.workers = workers};
  assert_int_equal(ck_ctx_new(&cfg, &s->ctx), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(s->ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(s->ctx, 0, &a), 0);
  s->port = ck_addr_port(&a);
  assert_true(s->port != 0);
  struct ck_resource *r;
  assert_int_equal(ck_resource_new(s->ctx, "n", &r), 0);
  ck_resource_handler(r, CK_POST, h_post, s);
  assert_int_equal(ck_resource_new(s->ctx, "arm", &r), 0);
  ck_resource_handler(r, CK_PUT, h_arm, s);
  assert_int_equal(ck_timer_new(s->ctx, on_timer, s, &s->timer), 0);
  assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void stop(struct server *s)
{
  char b = 1;
  assert_int_equal(write(ck_stop_fd(s->ctx), &b, 1), 1);
  pthread_join(s->thread, NULL);
  ck_timer_free(s->timer);
  ck_ctx_free(s->ctx);
}

/* One request from a context of its own (a port of its own). */
static int request(uint16_t port, uint8_t method, const char *path,
                   struct ck_client_result *res)
{
  struct ck_ctx *ctx;
  struct ck_client *cl;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  assert_int_equal(ck_client_new(ctx, NULL, &cl), 0);
  char uri[64];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/%s", port, path);
  struct ck_client_request req;
  ck_client_request_init(&req, method, uri);
  int rc = ck_client_do(cl, &req, res);
  ck_client_free(cl);
  ck_ctx_free(ctx);
  return rc;
}

static void test_range(void **state)
{
  (void)state;
  struct ck_ctx *ctx = NULL;
  struct ck_ctx_config cfg = {.workers = CK_WORKERS_MAX + 1};
  assert_int_equal(ck_ctx_new(&cfg, &ctx), CK_EINVAL);
  cfg.workers = CK_WORKERS_MAX;
  assert_int_equal(ck_ctx_new(&cfg, &ctx), 0);
  ck_ctx_free(ctx);
}

static void test_one_listener(void **state)
{
  (void)state;
  struct ck_ctx *ctx;
  struct ck_ctx_config cfg = {.workers = 4};
  assert_int_equal(ck_ctx_new(&cfg, &ctx), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(ctx, 0, &a), 0);
  assert_int_equal(ck_ctx_local_addr(ctx, 1, &a), CK_ENOTFOUND);
  ck_ctx_free(ctx); /* joins four threads blocked in recvmmsg */
}

static void test_many_ports(void **state)
{
  (void)state;
  struct server s;
  start(&s, 3);
  bool seen[CLIENTS + 1] = {false};
  for (unsigned i = 0; i < CLIENTS; i++) {
    struct ck_client_result res;
    assert_int_equal(request(s.port, CK_POST, "n", &res), 0);
    assert_int_equal(res.code, CK_CREATED);
    char num[16] = {0};
    memcpy(num, res.body, res.body_len < 15 ? res.body_len : 15);
    unsigned n = (unsigned)atoi(num);
    assert_true(n >= 1 && n <= CLIENTS && !seen[n]);
    seen[n] = true;
    ck_client_result_free(&res);
  }
  stop(&s);
  assert_int_equal(s.posts, CLIENTS);
  assert_int_equal(s.max_running, 1);
}

static void test_timer_from_worker(void **state)
{
  (void)state;
  struct server s;
  start(&s, 2);
  /* Several ports, so that some request lands on a worker whose loop
   * sleeps with no timer armed: only the gate's kick wakes it. */
  for (unsigned i = 0; i < 8; i++) {
    atomic_store(&s.fired, false);
    struct ck_client_result res;
    assert_int_equal(request(s.port, CK_PUT, "arm", &res), 0);
    assert_int_equal(res.code, CK_CHANGED);
    ck_client_result_free(&res);
    bool fired = false;
    for (int k = 0; k < 200 && !fired; k++) { /* 2 s at most */
      struct timespec ts = {.tv_nsec = 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
      fired = atomic_load(&s.fired);
    }
    assert_true(fired);
  }
  stop(&s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_range),
    cmocka_unit_test(test_one_listener),
    cmocka_unit_test(test_many_ports),
    cmocka_unit_test(test_timer_from_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
