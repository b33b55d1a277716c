/* Large representations through the public API (RFC 7959 §2.4, §3.2):
 * a Block2 transfer runs the handler once and the payload given by
 * reference is released once, when the transfer ends; a change during a
 * transfer shows as a new ETag that the client notices; the answer to a
 * block-wise POST is continued from what the server kept; the cache's
 * caps give 5.03 with Max-Age and its idle time forgets. The library's
 * client and server share one context over loopback; the cap tests
 * speak raw datagrams with the clock replaced. */
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

struct fixture {
  struct ck_ctx *ctx;
  struct ck_client *cl;
  struct ck_resource *big;
  uint16_t port;
  uint8_t *data[2]; /* two versions of /big */
  size_t len;
  unsigned version;
  unsigned calls, echo_calls, releases;
  unsigned change_at; /* change /big when this block arrives (0: never) */
  int fd;             /* raw client socket, for the cap tests */
};

static struct fixture *F;
static uint64_t fake_now = 1000000;
static bool fake_clock;

static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}

static void release(void *arg)
{
  assert_ptr_equal(arg, F);
  F->releases++;
}

static void h_big(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)req;
  (void)u;
  F->calls++;
  assert_int_equal(
      ck_response_payload_ref(resp, F->data[F->version], F->len, release, F),
      0);
}

static void h_echo(struct ck_resource *r, const struct ck_request *req,
                   struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  F->echo_calls++;
  size_t n;
  const uint8_t *p = ck_request_payload(req, &n);
  ck_response_payload(resp, p, n);
}

/* Changes /big under the client's feet, between two of its blocks. */
static void trace(void *user, bool sent, const struct ck_addr *peer,
                  const struct ck_msg *m)
{
  (void)user;
  (void)peer;
  uint32_t v;
  if (sent || !F->change_at || ck_msg_opt_uint(m, CK_OPT_BLOCK2, &v) < 0 ||
      v >> 4 != F->change_at)
    return;
  F->change_at = 0;
  F->version = 1;
  ck_resource_changed(F->big, 0);
}

static struct ck_ctx_config cfg;

static int setup_len(size_t len)
{
  static struct fixture f;
  memset(&f, 0, sizeof f);
  F = &f;
  f.len = len;
  for (int k = 0; k < 2; k++) {
    f.data[k] = malloc(len);
    assert_non_null(f.data[k]);
    uint32_t x = 12345u + (uint32_t)k;
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      f.data[k][i] = (uint8_t)(x >> 16);
    }
  }
  /* The raw-socket cases test the cache alone: their first blocks would
   * otherwise go back as 4.01 with Echo (RFC 9175 §2.4, test_echo.c). */
  cfg.echo_amplification = CK_ECHO_OFF;
  assert_int_equal(ck_ctx_new(&cfg, &f.ctx), 0);
  if (fake_clock)
    ck_ctx_set_clock(f.ctx, clock_fn, NULL);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  assert_int_equal(ck_ctx_listen(f.ctx, &a), 0);
  ck_ctx_local_addr(f.ctx, 0, &a);
  f.port = ck_addr_port(&a);
  struct ck_resource *r;
  ck_resource_new(f.ctx, "big", &f.big);
  ck_resource_handler(f.big, CK_GET, h_big, NULL);
  ck_resource_new(f.ctx, "echo", &r);
  ck_resource_handler(r, CK_POST, h_echo, NULL);
  struct ck_client_config cc = {0};
  cc.trace = trace;
  assert_int_equal(ck_client_new(f.ctx, &cc, &f.cl), 0);
  f.fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(f.fd, &a.u.sa, a.len), 0);
  return 0;
}

static int setup_16m(void **state)
{
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  fake_clock = false;
  return setup_len(16u << 20);
}

static int teardown(void **state)
{
  (void)state;
  close(F->fd);
  ck_client_free(F->cl);
  ck_ctx_free(F->ctx);
  free(F->data[0]);
  free(F->data[1]);
  return 0;
}

static int do_req(uint8_t method, const char *path, const void *pl, size_t len,
                  struct ck_client_result *res)
{
  char uri[64];
  snprintf(uri, sizeof uri, "coap://127.0.0.1:%u/%s", F->port, path);
  struct ck_client_request req;
  ck_client_request_init(&req, method, uri);
  req.payload = pl;
  req.payload_len = len;
  return ck_client_do(F->cl, &req, res);
}

static void test_16mib_handler_once(void **state)
{
  (void)state;
  struct ck_client_result res;
  assert_int_equal(do_req(CK_GET, "big", NULL, 0, &res), 0);
  assert_int_equal(res.code, CK_CONTENT);
  assert_int_equal(res.body_len, F->len);
  assert_memory_equal(res.body, F->data[0], F->len);
  ck_client_result_free(&res);
  /* One run for 16,384 blocks; the payload, never copied, was released
   * once, after the last block. */
  assert_int_equal(F->calls, 1);
  assert_int_equal(F->releases, 1);
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_entries, 0);
  assert_int_equal(st.rep_bytes, 0);
  assert_int_equal(st.responses[CK_CONTENT], 16384);
}

static void test_change_during_transfer(void **state)
{
  (void)state;
  F->change_at = 100;
  struct ck_client_result res;
  /* RFC 7959 §2.4: block 101 comes from the new representation, with a
   * new ETag, and the client does not splice the two. */
  assert_int_equal(do_req(CK_GET, "big", NULL, 0, &res), CK_EBADRESP);
  ck_client_result_free(&res);
  assert_int_equal(F->calls, 2);
  assert_int_equal(F->releases, 1); /* the old one at the change */
  /* The next transfer is of the new version alone. */
  assert_int_equal(do_req(CK_GET, "big", NULL, 0, &res), 0);
  assert_int_equal(res.body_len, F->len);
  assert_memory_equal(res.body, F->data[1], F->len);
  ck_client_result_free(&res);
  assert_int_equal(F->calls, 3);
  assert_int_equal(F->releases, 3);
}

static void test_post_echo_block1_block2(void **state)
{
  (void)state;
  /* RFC 7959 §3.2: 3,000 bytes up in Block1, the same back in Block2;
   * the follow-up POSTs with Block2 1 and 2 are served from the kept
   * answer, not with 4.02 and not by a second run. */
  uint8_t body[3000];
  for (size_t i = 0; i < sizeof body; i++)
    body[i] = (uint8_t)(i * 7 + 3);
  struct ck_client_result res;
  assert_int_equal(do_req(CK_POST, "echo", body, sizeof body, &res), 0);
  assert_int_equal(res.code, CK_CHANGED);
  assert_int_equal(res.body_len, sizeof body);
  assert_memory_equal(res.body, body, sizeof body);
  ck_client_result_free(&res);
  assert_int_equal(F->echo_calls, 1);
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_entries, 0);
}

/* --- caps and idle time, over a raw socket with a fake clock --- */

static int setup_caps(void **state)
{
  (void)state;
  memset(&cfg, 0, sizeof cfg);
  cfg.rep_max_entries = 1;
  cfg.rep_idle_ms = 10000;
  fake_clock = true;
  return setup_len(4096);
}

static uint8_t rxbuf[2048];
static struct ck_msg rx;

static void xchg(int fd, uint8_t code, uint16_t mid, const char *path,
                 int block2)
{
  uint8_t buf[256];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, code, mid);
  ck_builder_token(&b, "t", 1);
  ck_builder_opt_str(&b, CK_OPT_URI_PATH, path);
  if (block2 >= 0)
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, (uint32_t)block2 << 4 | 6);
  int n = ck_builder_finish(&b);
  assert_true(n > 0);
  assert_int_equal(send(fd, buf, (size_t)n, 0), n);
  for (int i = 0; i < 100; i++) {
    ck_ctx_process(F->ctx, 0);
    ssize_t got = recv(fd, rxbuf, sizeof rxbuf, MSG_DONTWAIT);
    if (got > 0) {
      assert_int_equal(ck_msg_parse(&rx, rxbuf, (size_t)got), 0);
      assert_int_equal(rx.mid, mid);
      return;
    }
    struct pollfd p = {.fd = ck_ctx_fd(F->ctx), .events = POLLIN};
    poll(&p, 1, 5);
  }
  fail_msg("no answer");
}

static int second_socket(void)
{
  struct ck_addr a;
  ck_ctx_local_addr(F->ctx, 0, &a);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(fd, &a.u.sa, a.len), 0);
  return fd;
}

static void test_caps_503_max_age(void **state)
{
  (void)state;
  int fd2 = second_socket();
  xchg(F->fd, CK_GET, 1, "big", -1);
  assert_int_equal(rx.code, CK_CONTENT);
  /* The one entry is young: a second client's transfer is refused for
   * the seconds until it may go (3 s, ACK_TIMEOUT * ACK_RANDOM_FACTOR). */
  xchg(fd2, CK_GET, 2, "big", -1);
  assert_int_equal(rx.code, CK_SERVICE_UNAVAILABLE);
  uint32_t age;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_MAX_AGE, &age), 0);
  assert_int_equal(age, 3);
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_refused, 1);
  assert_int_equal(F->releases, 1); /* the refused answer's payload */
  /* The first client goes on meanwhile, from the cache. */
  xchg(F->fd, CK_GET, 3, "big", 1);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(F->calls, 2);
  /* Idle for 3 s, the entry may make room. */
  fake_now += 3000;
  xchg(fd2, CK_GET, 4, "big", -1);
  assert_int_equal(rx.code, CK_CONTENT);
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_evictions, 1);
  assert_int_equal(st.rep_entries, 1);
  assert_int_equal(F->releases, 2);
  /* The first client's entry is gone: its next block runs the handler
   * again (GET may), whose answer finds the cache full of the second
   * client's young entry. */
  xchg(F->fd, CK_GET, 5, "big", 2);
  assert_int_equal(rx.code, CK_SERVICE_UNAVAILABLE);
  assert_int_equal(F->calls, 4);
  assert_int_equal(F->releases, 3);
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_refused, 2);
  close(fd2);
}

static void test_idle_forgets(void **state)
{
  (void)state;
  xchg(F->fd, CK_GET, 1, "big", -1);
  assert_int_equal(rx.code, CK_CONTENT);
  struct ck_stats st;
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_entries, 1);
  assert_int_equal(st.rep_bytes, 4096);
  assert_int_equal(F->releases, 0);
  /* rep_idle_ms (10 s) later it is forgotten: the next block is a
   * fresh run of the handler. */
  fake_now += 15000;
  xchg(F->fd, CK_GET, 2, "big", 1);
  assert_int_equal(rx.code, CK_CONTENT);
  assert_int_equal(F->releases, 1);
  assert_int_equal(F->calls, 2);
  ck_ctx_stats(F->ctx, &st);
  assert_int_equal(st.rep_entries, 1);
}

static void test_post_rest_unknown(void **state)
{
  (void)state;
  /* The rest of a POST's answer the server does not hold: running the
   * handler again, without the body, would be wrong. */
  xchg(F->fd, CK_POST, 1, "echo", 1);
  assert_int_equal(rx.code, CK_REQUEST_ENTITY_INCOMPLETE);
  assert_int_equal(F->echo_calls, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_16mib_handler_once, setup_16m,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_change_during_transfer, setup_16m,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_post_echo_block1_block2, setup_16m,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_caps_503_max_age, setup_caps,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_idle_forgets, setup_caps, teardown),
      cmocka_unit_test_setup_teardown(test_post_rest_unknown, setup_caps,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
