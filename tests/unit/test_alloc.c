/* The request path allocates nothing (issue 8's quality bar), checked
 * by counting every malloc, calloc and realloc the library makes: this
 * test links the library's static archive with the linker's --wrap, so
 * the library's calls land in the counters below.
 *
 * A server answers GETs, POSTs (which take a dedup entry each), NON
 * requests, pings and a duplicate over a real loopback socket. After a
 * warm-up that lets the tables grow to what the load needs (and the
 * injected clock moves past EXCHANGE_LIFETIME, so old entries can be
 * reused), thousands more requests must not allocate at all. A client's
 * request, which copies its URI and template, is allowed to allocate;
 * it is not measured here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

static unsigned long allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
  allocs++;
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
  allocs++;
  return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
  allocs++;
  return __real_realloc(p, n);
}

static uint64_t fake_now = 1000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "hello", 5);
}

static void h_post(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  ck_response_code(resp, CK_CREATED);
  ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, "x");
}

struct fx {
  struct ck_ctx *ctx;
  int fd;
  uint16_t mid;
};

static void send_msg(struct fx *f, uint8_t type, uint8_t code)
{
  uint8_t buf[64];
  struct ck_builder b;
  uint16_t mid = f->mid++;
  uint8_t tok[4] = {1, 2, (uint8_t)(mid >> 8), (uint8_t)mid};
  ck_builder_init(&b, buf, sizeof buf, type, code, mid);
  if (code != CK_CODE_EMPTY) {
    ck_builder_token(&b, tok, sizeof tok);
    ck_builder_opt(&b, CK_OPT_URI_PATH, "r", 1);
  }
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(send(f->fd, buf, (size_t)n, 0), n);
}

/* Runs the server until the answer to the last request is back. */
static void answer(struct fx *f)
{
  uint8_t in[256];
  for (int i = 0; i < 200; i++) {
    ck_ctx_process(f->ctx, 0);
    if (recv(f->fd, in, sizeof in, MSG_DONTWAIT) > 0)
      return;
    struct pollfd p = {.fd = ck_ctx_fd(f->ctx), .events = POLLIN};
    poll(&p, 1, 5);
  }
  fail_msg("no answer");
}

/* One round: CON GET, CON POST, NON GET, NON POST, a ping, and a
 * duplicate of the last POST. */
static void round_trip(struct fx *f)
{
  send_msg(f, CK_TYPE_CON, CK_GET);
  answer(f);
  send_msg(f, CK_TYPE_CON, CK_POST);
  answer(f);
  f->mid--; /* the duplicate: the same MID once more */
  send_msg(f, CK_TYPE_CON, CK_POST);
  answer(f);
  send_msg(f, CK_TYPE_NON, CK_GET);
  answer(f);
  send_msg(f, CK_TYPE_CON, CK_CODE_EMPTY);
  answer(f);
}

static void test_request_path_allocates_nothing(void **state)
{
  (void)state;
  struct fx f = {.mid = 1};
  assert_int_equal(ck_ctx_new(NULL, &f.ctx), 0);
  ck_ctx_set_clock(f.ctx, clock_fn, NULL);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(f.ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(f.ctx, 0, &a), 0);
  struct ck_resource *r;
  assert_int_equal(ck_resource_new(f.ctx, "r", &r), 0);
  assert_int_equal(ck_resource_handler(r, CK_GET, h_get, NULL), 0);
  assert_int_equal(ck_resource_handler(r, CK_POST, h_post, NULL), 0);
  f.fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(f.fd, &a.u.sa, a.len), 0);

  /* Warm-up: the tables grow to this load; then every entry expires. */
  for (int i = 0; i < 2000; i++)
    round_trip(&f);
  fake_now += 600000;
  for (int i = 0; i < 2000; i++)
    round_trip(&f);
  fake_now += 600000;
  for (int i = 0; i < 200; i++)
    round_trip(&f);

  /* The counter works: creating the context and growing the tables
   * allocated. */
  unsigned long before = allocs;
  assert_true(before > 10);
  for (int i = 0; i < 2000; i++)
    round_trip(&f);
  assert_int_equal(allocs - before, 0);
  struct ck_stats st;
  ck_ctx_stats(f.ctx, &st);
  assert_true(st.rx_duplicates >= 2000);
  close(f.fd);
  ck_ctx_free(f.ctx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_path_allocates_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
