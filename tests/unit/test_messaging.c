/* The messaging layer through the public API, over real loopback
 * sockets: Message IDs follow one sequence per peer (RFC 7252 §4.4), and
 * an ICMP port unreachable drawn by a notification ends that observer's
 * observations at once instead of at the next daily CON; a handler's
 * answer that lost an option is a 5.00, counted and logged. */
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

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "v", 1);
}

struct fx {
  struct ck_ctx *ctx;
  struct ck_resource *res;
  struct ck_addr srv;
};

static void fx_init(struct fx *f)
{
  assert_int_equal(ck_ctx_new(NULL, &f->ctx), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(f->ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(f->ctx, 0, &f->srv), 0);
  assert_int_equal(ck_resource_new(f->ctx, "obs", &f->res), 0);
  assert_int_equal(ck_resource_handler(f->res, CK_GET, h_get, NULL), 0);
  ck_resource_observable(f->res, true, false);
}

/* A client socket connected to the server. */
static int peer_socket(const struct fx *f)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, &f->srv.u.sa, f->srv.len), 0);
  return fd;
}

/* Reads one message into buf (within 1 s, running the server's loop);
 * returns its length or -1. */
static int recv_one(struct fx *f, int fd, uint8_t *buf, size_t cap)
{
  for (int i = 0; i < 100; i++) {
    ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
    if (n > 0)
      return (int)n;
    ck_ctx_process(f->ctx, 10);
  }
  return -1;
}

static void observe(struct fx *f, int fd, uint8_t tok)
{
  uint8_t buf[64];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_NON, CK_GET,
                  (uint16_t)(tok * 7));
  ck_builder_token(&b, &tok, 1);
  ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 0);
  ck_builder_opt(&b, CK_OPT_URI_PATH, "obs", 3);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
  uint8_t in[256];
  int len = recv_one(f, fd, in, sizeof in);
  struct ck_msg m;
  assert_int_equal(ck_msg_parse(&m, in, (size_t)len), 0);
  assert_int_equal(m.code, CK_CONTENT);
}

static void test_mids_per_peer(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  int a = peer_socket(&f), b = peer_socket(&f);
  observe(&f, a, 1);
  observe(&f, b, 2);
  assert_int_equal(ck_resource_observers(f.res), 2);
  int mids[2][4];
  for (int round = 0; round < 4; round++) {
    assert_int_equal(ck_resource_changed(f.res, 0), 2);
    for (int p = 0; p < 2; p++) {
      uint8_t in[256];
      int len = recv_one(&f, p ? b : a, in, sizeof in);
      struct ck_msg m;
      assert_int_equal(ck_msg_parse(&m, in, (size_t)len), 0);
      assert_int_equal(m.type, CK_TYPE_NON);
      mids[p][round] = m.mid;
    }
  }
  /* Each peer sees its own consecutive sequence, whatever the other
   * gets (one counter per context would step by two). */
  for (int p = 0; p < 2; p++)
    for (int round = 1; round < 4; round++)
      assert_int_equal((mids[p][round - 1] + 1) & 0xffff, mids[p][round]);
  close(a);
  close(b);
  ck_ctx_free(f.ctx);
}

static void test_icmp_ends_observation(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  int a = peer_socket(&f), b = peer_socket(&f);
  observe(&f, a, 1);
  observe(&f, b, 2);
  assert_int_equal(ck_resource_observers(f.res), 2);
  /* a goes away: its port is closed, so the next NON notification to it
   * draws an ICMP port unreachable. */
  close(a);
  assert_int_equal(ck_resource_changed(f.res, 0), 2);
  for (int i = 0; i < 100 && ck_resource_observers(f.res) > 1; i++)
    ck_ctx_process(f.ctx, 10);
  assert_int_equal(ck_resource_observers(f.res), 1);
  /* b is still served. */
  uint8_t in[256];
  assert_true(recv_one(&f, b, in, sizeof in) > 0);
  assert_int_equal(ck_resource_changed(f.res, 0), 1);
  assert_true(recv_one(&f, b, in, sizeof in) > 0);
  close(b);
  ck_ctx_free(f.ctx);
}

static void h_too_many(struct ck_resource *r, const struct ck_request *req,
                       struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  /* More Location-Path options than a response holds: one is lost. */
  for (int i = 0; i < 64; i++)
    ck_response_opt_str(resp, CK_OPT_LOCATION_PATH, "x");
  ck_response_code(resp, CK_CREATED);
}

static unsigned log_lines;
static char last_log[256];
static void on_log(void *user, enum ck_log_level level, const char *msg)
{
  (void)user;
  assert_int_equal(level, CK_LOG_ERROR);
  log_lines++;
  snprintf(last_log, sizeof last_log, "%s", msg);
}

static void test_unbuildable_answer_is_500(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  ck_ctx_set_log(f.ctx, on_log, NULL);
  struct ck_resource *r;
  assert_int_equal(ck_resource_new(f.ctx, "many", &r), 0);
  assert_int_equal(ck_resource_handler(r, CK_POST, h_too_many, NULL), 0);
  int fd = peer_socket(&f);
  uint8_t buf[64];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_POST, 77);
  ck_builder_opt(&b, CK_OPT_URI_PATH, "many", 4);
  int n = ck_builder_finish(&b);
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
  uint8_t in[1600];
  int len = recv_one(&f, fd, in, sizeof in);
  struct ck_msg m;
  assert_int_equal(ck_msg_parse(&m, in, (size_t)len), 0);
  assert_int_equal(m.type, CK_TYPE_ACK);
  assert_int_equal(m.code, CK_INTERNAL_SERVER_ERROR);
  assert_int_equal(ck_msg_opt_count(&m, CK_OPT_LOCATION_PATH), 0);
  struct ck_stats st;
  ck_ctx_stats(f.ctx, &st);
  assert_int_equal(st.responses_failed, 1);
  assert_int_equal(log_lines, 1);
  assert_non_null(strstr(last_log, "2.01"));
  close(fd);
  ck_ctx_free(f.ctx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mids_per_peer),
      cmocka_unit_test(test_icmp_ends_observation),
      cmocka_unit_test(test_unbuildable_answer_is_500),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
