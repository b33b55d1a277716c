/* Behaviour of the client library through its public API, against a raw
 * UDP socket that plays the server, with the context's clock and
 * randomness replaced so that timing is deterministic. */
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

static uint64_t fake_now = 5000000;
static uint64_t clock_fn(void *u)
{
  (void)u;
  return fake_now;
}
static uint8_t rnd_byte;
static void fixed_random(void *u, void *buf, size_t len)
{
  (void)u;
  memset(buf, rnd_byte, len);
}

static struct ck_ctx *ctx;
static struct ck_client *cl;
static int srv; /* the fake server's socket */
static char base[64];
static struct ck_addr client_addr;

struct seen {
  unsigned calls, finals;
  int err;
  uint8_t code;
  char body[2048];
  size_t body_len;
  bool has_observe;
  uint32_t observe;
};

static void cb(struct ck_call *call, const struct ck_client_response *r,
               void *user)
{
  (void)call;
  struct seen *s = user;
  s->calls++;
  s->finals += r->final;
  s->err = r->err;
  s->code = r->code;
  s->body_len = r->body_len < sizeof s->body ? r->body_len : 0;
  if (s->body_len)
    memcpy(s->body, r->body, s->body_len);
  s->has_observe = r->has_observe;
  s->observe = r->observe;
}

static int setup(void **state)
{
  (void)state;
  rnd_byte = 0;
  struct ck_client_config cfg = {0};
  cfg.params.ack_timeout_ms = 1000;
  cfg.params.max_retransmit = 3;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  ck_ctx_set_clock(ctx, clock_fn, NULL);
  ck_ctx_set_random(ctx, fixed_random, NULL);
  assert_int_equal(ck_client_new(ctx, &cfg, &cl), 0);
  srv = socket(AF_INET, SOCK_DGRAM, 0);
  struct ck_addr a;
  ck_addr_parse(&a, "127.0.0.1:0", 0);
  assert_int_equal(bind(srv, &a.u.sa, a.len), 0);
  a.len = sizeof a.u;
  getsockname(srv, &a.u.sa, &a.len);
  snprintf(base, sizeof base, "coap://127.0.0.1:%u", ck_addr_port(&a));
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  ck_ctx_free(ctx);
  close(srv);
  return 0;
}

/* Lets the client run, then reads what the fake server received. */
static struct ck_msg rx;
static uint8_t rxbuf[2048];

static bool server_recv(void)
{
  for (int i = 0; i < 50; i++) {
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

static void server_send(const uint8_t *m, size_t len)
{
  assert_int_equal(sendto(srv, m, len, 0, &client_addr.u.sa,
                          client_addr.len),
                   (ssize_t)len);
  for (int i = 0; i < 5; i++) {
    struct pollfd p = {.fd = ck_ctx_fd(ctx), .events = POLLIN};
    poll(&p, 1, 5);
    ck_ctx_process(ctx, 0);
  }
}

/* Answers rx with type/code, echoing its token; mid < 0 uses rx's. */
static void reply(uint8_t type, uint8_t code, int mid, int observe,
                  const char *payload)
{
  uint8_t buf[512];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, type, code,
                  mid < 0 ? rx.mid : (uint16_t)mid);
  if (code)
    ck_builder_token(&b, rx.token, rx.tkl);
  if (observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)observe);
  if (payload)
    ck_builder_payload(&b, payload, strlen(payload));
  int n = ck_builder_finish(&b);
  server_send(buf, (size_t)n);
}

static struct ck_call *get(const char *path, bool observe, struct seen *s)
{
  char uri[128];
  snprintf(uri, sizeof uri, "%s%s", base, path);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  req.observe = observe;
  struct ck_call *call;
  assert_int_equal(ck_client_send(cl, &req, cb, s, &call), 0);
  return call;
}

static void test_piggybacked(void **state)
{
  (void)state;
  struct seen s = {0};
  get("/a", false, &s);
  assert_true(server_recv());
  assert_int_equal(rx.type, CK_TYPE_CON);
  assert_int_equal(rx.code, CK_GET);
  assert_int_equal(rx.tkl, 4); /* the default minimum token length */
  reply(CK_TYPE_ACK, CK_CONTENT, -1, -1, "hi");
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, 0);
  assert_int_equal(s.code, CK_CONTENT);
  assert_int_equal(s.body_len, 2);
}

static void test_retransmission_timing(void **state)
{
  (void)state;
  struct seen s = {0};
  get("/slow", false, &s);
  assert_true(server_recv());
  uint16_t mid = rx.mid;
  /* Random drawn as 0: initial timeout exactly ACK_TIMEOUT (1000 ms),
   * then 2000 and 4000, MAX_RETRANSMIT = 3 times, then a timeout after
   * the last wait of 8000 ms. */
  static const uint64_t gaps[] = {1000, 2000, 4000};
  for (size_t i = 0; i < 3; i++) {
    fake_now += gaps[i] - 1;
    assert_false(server_recv());
    fake_now += 1;
    assert_true(server_recv());
    assert_int_equal(rx.mid, mid);
  }
  fake_now += 7999;
  ck_ctx_process(ctx, 0);
  assert_int_equal(s.finals, 0);
  fake_now += 1;
  ck_ctx_process(ctx, 0);
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, CK_ETIMEDOUT);
  struct ck_client_stats st;
  ck_client_stats(cl, &st);
  assert_int_equal(st.retransmits, 3);
}

static void test_separate_response(void **state)
{
  (void)state;
  struct seen s = {0};
  get("/sep", false, &s);
  assert_true(server_recv());
  uint8_t tok[8];
  uint8_t tkl = rx.tkl;
  memcpy(tok, rx.token, tkl);
  reply(CK_TYPE_ACK, CK_CODE_EMPTY, -1, -1, NULL); /* empty ACK */
  assert_int_equal(s.calls, 0);
  /* No retransmission after the empty ACK. */
  fake_now += 3000;
  assert_false(server_recv());
  reply(CK_TYPE_CON, CK_CONTENT, 0x7777, -1, "later");
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.code, CK_CONTENT);
  /* The client ACKs the separate response... */
  assert_true(server_recv());
  assert_int_equal(rx.type, CK_TYPE_ACK);
  assert_int_equal(rx.mid, 0x7777);
  /* ...and ACKs its retransmission again without a second delivery. */
  uint8_t again[64];
  struct ck_builder b;
  ck_builder_init(&b, again, sizeof again, CK_TYPE_CON, CK_CONTENT, 0x7777);
  ck_builder_token(&b, tok, tkl);
  ck_builder_payload(&b, "later", 5);
  server_send(again, (size_t)ck_builder_finish(&b));
  assert_true(server_recv());
  assert_int_equal(rx.type, CK_TYPE_ACK);
  assert_int_equal(s.calls, 1);
}

static void test_wrong_token_or_peer_rejected(void **state)
{
  (void)state;
  /* Static: the call outlives a failed assertion until teardown. */
  static struct seen s;
  memset(&s, 0, sizeof s);
  get("/t", false, &s);
  assert_true(server_recv());
  reply(CK_TYPE_ACK, CK_CODE_EMPTY, -1, -1, NULL);
  /* A CON response with a token nobody uses: RST. */
  uint8_t m[] = {0x44, CK_CONTENT, 0x12, 0x34, 9, 9, 9, 9};
  server_send(m, sizeof m);
  assert_true(server_recv());
  assert_int_equal(rx.type, CK_TYPE_RST);
  assert_int_equal(rx.mid, 0x1234);
  assert_int_equal(s.calls, 0);
  /* The right token from another port: also RST (token + endpoint). */
  int other = socket(AF_INET, SOCK_DGRAM, 0);
  uint8_t tok_msg[] = {0x44, CK_CONTENT, 0x12, 0x35, 0, 0, 0, 0};
  sendto(other, tok_msg, sizeof tok_msg, 0, &client_addr.u.sa,
         client_addr.len);
  uint8_t buf[64];
  for (int i = 0; i < 20; i++) {
    ck_ctx_process(ctx, 0);
    usleep(2000);
  }
  ssize_t n = recv(other, buf, sizeof buf, MSG_DONTWAIT);
  assert_int_equal(n, 4);
  assert_int_equal(buf[0] >> 4 & 3, CK_TYPE_RST);
  close(other);
  assert_int_equal(s.calls, 0);
}

static void test_nstart(void **state)
{
  (void)state;
  struct seen a = {0}, b = {0};
  get("/1", false, &a);
  get("/2", false, &b);
  /* NSTART = 1: only the first goes out. */
  assert_true(server_recv());
  struct ck_opt o;
  assert_int_equal(ck_msg_opt(&rx, CK_OPT_URI_PATH, &o), 0);
  assert_memory_equal(o.val, "1", 1);
  assert_false(server_recv());
  reply(CK_TYPE_ACK, CK_CONTENT, -1, -1, "one");
  assert_int_equal(a.finals, 1);
  assert_true(server_recv());
  assert_int_equal(ck_msg_opt(&rx, CK_OPT_URI_PATH, &o), 0);
  assert_memory_equal(o.val, "2", 1);
  reply(CK_TYPE_ACK, CK_CONTENT, -1, -1, "two");
  assert_int_equal(b.finals, 1);
}

static void test_observe_order_reregister_cancel(void **state)
{
  (void)state;
  struct seen s = {0};
  struct ck_call *call = get("/obs", true, &s);
  assert_true(server_recv());
  uint32_t obs;
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &obs), 0);
  assert_int_equal(obs, 0);
  uint8_t tok[8];
  uint8_t tkl = rx.tkl;
  memcpy(tok, rx.token, tkl);
  reply(CK_TYPE_ACK, CK_CONTENT, -1, 10, "v10");
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.finals, 0);
  assert_int_equal(s.observe, 10);

  /* Notifications: 12 is newer, 11 then is stale (RFC 7641 §3.4). */
  uint8_t m[64];
  struct ck_builder b;
  uint32_t seqs[] = {12, 11, 13};
  for (size_t i = 0; i < 3; i++) {
    ck_builder_init(&b, m, sizeof m, CK_TYPE_NON, CK_CONTENT,
                    (uint16_t)(100 + i));
    ck_builder_token(&b, tok, tkl);
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, seqs[i]);
    ck_builder_opt_uint(&b, CK_OPT_MAX_AGE, 5);
    ck_builder_payload(&b, "n", 1);
    server_send(m, (size_t)ck_builder_finish(&b));
  }
  assert_int_equal(s.calls, 3);
  assert_int_equal(s.observe, 13);
  struct ck_client_stats st;
  ck_client_stats(cl, &st);
  assert_int_equal(st.notifications_stale, 1);

  /* Max-Age 5 s runs out: the client registers again, same token. */
  fake_now += 5000 + 2000;
  assert_true(server_recv());
  assert_int_equal(rx.code, CK_GET);
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &obs), 0);
  assert_int_equal(obs, 0);
  assert_memory_equal(rx.token, tok, tkl);
  reply(CK_TYPE_ACK, CK_CONTENT, -1, 14, "v14");
  assert_int_equal(s.calls, 4);

  /* Proactive cancel: GET with Observe=1, same token. */
  ck_call_cancel(call, true);
  assert_true(server_recv());
  assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_OBSERVE, &obs), 0);
  assert_int_equal(obs, 1);
  assert_memory_equal(rx.token, tok, tkl);
  reply(CK_TYPE_ACK, CK_CONTENT, -1, -1, "bye");
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, CK_ECANCELED);

  /* A late notification with that token now gets RST (reactive). */
  ck_builder_init(&b, m, sizeof m, CK_TYPE_NON, CK_CONTENT, 200);
  ck_builder_token(&b, tok, tkl);
  ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 20);
  server_send(m, (size_t)ck_builder_finish(&b));
  assert_true(server_recv());
  assert_int_equal(rx.type, CK_TYPE_RST);
  assert_int_equal(rx.mid, 200);
}

static void test_ping_and_errors(void **state)
{
  (void)state;
  struct seen s = {0};
  char uri[128];
  snprintf(uri, sizeof uri, "%s/", base);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_CODE_EMPTY, uri);
  req.ping = true;
  assert_int_equal(ck_client_send(cl, &req, cb, &s, NULL), 0);
  assert_true(server_recv());
  assert_int_equal(rx.code, 0);
  assert_int_equal(rx.type, CK_TYPE_CON);
  reply(CK_TYPE_RST, CK_CODE_EMPTY, -1, -1, NULL);
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, 0);

  ck_client_request_init(&req, CK_GET, "http://example.com/");
  assert_int_equal(ck_client_send(cl, &req, cb, &s, NULL), CK_EURI_SCHEME);
  /* RFC 1035 §2.3.4: no name is longer than 253 characters. */
  char longhost[300];
  snprintf(longhost, sizeof longhost, "coap://%0254d/x", 0);
  ck_client_request_init(&req, CK_GET, longhost);
  assert_int_equal(ck_client_send(cl, &req, cb, &s, NULL), CK_EURI_HOST);
  ck_client_request_init(&req, CK_GET, "coap://[::1/x");
  assert_true(ck_client_send(cl, &req, cb, &s, NULL) < 0);
  assert_int_equal(s.calls, 1);
  /* A name is resolved on the loop: the call starts, and what becomes
   * of it reaches the callback (test_client_resolve.c); cancelled while
   * resolving, it ends at once, once. */
  struct ck_call *call = NULL;
  ck_client_request_init(&req, CK_GET, "coap://host.invalid./x");
  assert_int_equal(ck_client_send(cl, &req, cb, &s, &call), 0);
  assert_int_equal(s.calls, 1);
  ck_call_cancel(call, false);
  assert_int_equal(s.calls, 2);
  assert_int_equal(s.finals, 2);
  assert_int_equal(s.err, CK_ECANCELED);
  ck_ctx_process(ctx, 0);
  assert_int_equal(s.calls, 2);
}

static void test_block2_download(void **state)
{
  (void)state;
  struct seen s = {0};
  get("/big", false, &s);
  char body[100];
  for (int i = 0; i < 100; i++)
    body[i] = (char)('a' + i % 26);
  /* The server answers in 16-byte blocks. */
  for (uint32_t num = 0; num < 7; num++) {
    assert_true(server_recv());
    uint32_t v;
    if (num > 0) {
      struct ck_block want;
      assert_int_equal(ck_msg_opt_uint(&rx, CK_OPT_BLOCK2, &v), 0);
      ck_block_decode(v, &want);
      assert_int_equal(want.num, num);
      assert_int_equal(want.szx, 0);
    }
    uint8_t buf[128];
    struct ck_builder b;
    ck_builder_init(&b, buf, sizeof buf, CK_TYPE_ACK, CK_CONTENT, rx.mid);
    ck_builder_token(&b, rx.token, rx.tkl);
    struct ck_block blk = {.num = num, .more = num < 6, .szx = 0};
    ck_block_encode(&blk, &v);
    ck_builder_opt_uint(&b, CK_OPT_BLOCK2, v);
    size_t off = num * 16, len = num < 6 ? 16 : 4;
    ck_builder_payload(&b, body + off, len);
    server_send(buf, (size_t)ck_builder_finish(&b));
  }
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.body_len, 100);
  assert_memory_equal(s.body, body, 100);
}

/* Many calls in flight at once: each response finds its own call by
 * token (the table grows past its first buckets), answered in reverse
 * order. */
static void test_many_calls_by_token(void **state)
{
  (void)state;
  enum { N = 100 };
  static struct seen s[N];
  memset(s, 0, sizeof s);
  char uri[128];
  snprintf(uri, sizeof uri, "%s/m", base);
  for (int i = 0; i < N; i++) {
    uint8_t tok[2] = {(uint8_t)(i >> 8), (uint8_t)i};
    struct ck_client_request req;
    ck_client_request_init(&req, CK_GET, uri);
    req.non = true; /* NON: not held back by NSTART */
    req.token = tok;
    req.token_len = sizeof tok;
    assert_int_equal(ck_client_send(cl, &req, cb, &s[i], NULL), 0);
  }
  static struct {
    uint8_t tok[2];
  } got[N];
  for (int i = 0; i < N; i++) {
    assert_true(server_recv());
    assert_int_equal(rx.tkl, 2);
    memcpy(got[i].tok, rx.token, 2);
  }
  for (int i = N - 1; i >= 0; i--) {
    int k = got[i].tok[0] << 8 | got[i].tok[1];
    char payload[16];
    snprintf(payload, sizeof payload, "p%d", k);
    uint8_t buf[64];
    struct ck_builder b;
    ck_builder_init(&b, buf, sizeof buf, CK_TYPE_NON, CK_CONTENT,
                    (uint16_t)(0x7000 + i));
    ck_builder_token(&b, got[i].tok, 2);
    ck_builder_payload(&b, payload, strlen(payload));
    int n = ck_builder_finish(&b);
    assert_true(n > 0);
    assert_int_equal(sendto(srv, buf, (size_t)n, 0, &client_addr.u.sa,
                            client_addr.len),
                     n);
  }
  unsigned finals = 0;
  for (int t = 0; t < 200 && finals < N; t++) {
    struct pollfd p = {.fd = ck_ctx_fd(ctx), .events = POLLIN};
    poll(&p, 1, 5);
    ck_ctx_process(ctx, 0);
    finals = 0;
    for (int i = 0; i < N; i++)
      finals += s[i].finals;
  }
  for (int i = 0; i < N; i++) {
    char want[16];
    snprintf(want, sizeof want, "p%d", i);
    assert_int_equal(s[i].finals, 1);
    assert_int_equal(s[i].code, CK_CONTENT);
    assert_int_equal(s[i].body_len, strlen(want));
    assert_memory_equal(s[i].body, want, strlen(want));
  }
  struct ck_client_stats st;
  ck_client_stats(cl, &st);
  assert_int_equal(st.rejected, 0);
}

/* ck_client_do() whose loop fails: the call is cancelled before it
 * returns, so it neither goes on retransmitting nor fires its callback
 * later into the dead frame. */
static void do_with_loop_error(struct ck_client_result *res)
{
  char uri[128];
  snprintf(uri, sizeof uri, "%s/a", base);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  int efd = ck_ctx_fd(ctx);
  int saved = dup(efd);
  assert_true(saved >= 0);
  close(efd); /* the loop's poll now fails */
  assert_true(ck_client_do(cl, &req, res) < 0);
  assert_int_equal(dup2(saved, efd), efd);
  close(saved);
}

static void test_do_loop_error_cancels(void **state)
{
  (void)state;
  /* A first call opens the client's socket while the loop still works. */
  struct seen s = {0};
  get("/w", false, &s);
  assert_true(server_recv());
  reply(CK_TYPE_ACK, CK_CONTENT, -1, -1, "w");
  assert_int_equal(s.finals, 1);
  struct ck_client_result res;
  do_with_loop_error(&res);
  assert_true(res.err < 0);
  assert_int_not_equal(res.err, CK_ECANCELED);
  /* The request went out once; the cancelled call sends nothing more,
   * however long we wait. */
  assert_true(server_recv());
  fake_now += 60000;
  assert_false(server_recv());
  res.err = 12345;
  ck_client_free(cl);
  cl = NULL;
  assert_int_equal(res.err, 12345);
  ck_client_result_free(&res);
}

/* Public functions refuse NULL pointers instead of crashing, and bad
 * transmission parameters instead of silently replacing them. */
static void test_null_and_bad_params(void **state)
{
  (void)state;
  struct ck_msg m;
  struct ck_addr a;
  struct ck_opt o;
  uint32_t v;
  uint8_t buf[16] = {0};
  char text[64];
  assert_int_equal(ck_msg_parse(NULL, buf, 4), CK_EINVAL);
  assert_int_equal(ck_msg_parse(&m, NULL, 4), CK_EINVAL);
  assert_int_equal(ck_msg_opt(NULL, 11, &o), CK_EINVAL);
  assert_int_equal(ck_msg_opt_uint(NULL, 11, &v), CK_EINVAL);
  assert_int_equal(ck_msg_opt_count(NULL, 11), 0);
  ck_opt_iter_init(NULL, NULL);
  struct ck_opt_iter it;
  ck_opt_iter_init(&it, NULL);
  assert_false(ck_opt_next(&it, &o));
  assert_false(ck_opt_next(NULL, &o));
  ck_builder_init(NULL, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_builder_token(NULL, "t", 1), CK_EINVAL);
  assert_int_equal(ck_builder_opt(NULL, 11, "x", 1), CK_EINVAL);
  assert_int_equal(ck_builder_opt_str(NULL, 11, "x"), CK_EINVAL);
  assert_int_equal(ck_builder_opt_uint(NULL, 12, 0), CK_EINVAL);
  ck_builder_payload(NULL, "x", 1);
  assert_int_equal(ck_builder_finish(NULL), CK_EINVAL);
  struct ck_builder b;
  ck_builder_init(&b, NULL, 16, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_builder_finish(&b), CK_EINVAL);
  ck_builder_init(&b, buf, sizeof buf, CK_TYPE_CON, CK_GET, 1);
  assert_int_equal(ck_builder_token(&b, NULL, 2), CK_EINVAL);
  assert_int_equal(ck_code_format(NULL, 8, CK_CONTENT), CK_EINVAL);
  assert_int_equal(ck_addr_parse(NULL, "127.0.0.1", 0), CK_EINVAL);
  assert_int_equal(ck_addr_parse(&a, NULL, 0), CK_EINVAL);
  assert_int_equal(ck_addr_format(NULL, text, sizeof text), CK_EINVAL);
  assert_int_equal(ck_addr_format(&a, NULL, 8), CK_EINVAL);
  assert_int_equal(ck_addr_format_ip(NULL, text, sizeof text), CK_EINVAL);
  assert_int_equal(ck_addr_port(NULL), 0);
  assert_false(ck_addr_equal(NULL, &a));
  assert_false(ck_addr_equal(&a, NULL));
  assert_false(ck_addr_is_multicast(NULL));
  (void)ck_addr_hash(NULL);

  assert_int_equal(ck_ctx_new(NULL, NULL), CK_EINVAL);
  struct ck_ctx *x = NULL;
  assert_int_equal(ck_ctx_new(NULL, &x), 0);
  assert_int_equal(ck_ctx_listen(NULL, &a), CK_EINVAL);
  assert_int_equal(ck_ctx_listen(x, NULL), CK_EINVAL);
  struct ck_client *c = NULL;
  assert_int_equal(ck_client_new(NULL, NULL, &c), CK_EINVAL);
  assert_int_equal(ck_client_new(x, NULL, NULL), CK_EINVAL);
  assert_int_equal(ck_client_new(x, NULL, &c), 0);
  struct ck_client_request req;
  ck_client_request_init(NULL, CK_GET, "coap://127.0.0.1/");
  ck_client_request_init(&req, CK_GET, "coap://127.0.0.1/");
  assert_int_equal(ck_client_send(NULL, &req, cb, NULL, NULL), CK_EINVAL);
  assert_int_equal(ck_client_send(c, NULL, cb, NULL, NULL), CK_EINVAL);
  assert_int_equal(ck_client_send(c, &req, NULL, NULL, NULL), CK_EINVAL);
  struct ck_client_result res;
  assert_int_equal(ck_client_do(NULL, &req, &res), CK_EINVAL);
  assert_int_equal(ck_client_do(c, NULL, &res), CK_EINVAL);
  assert_int_equal(ck_client_do(c, &req, NULL), CK_EINVAL);
  ck_client_result_free(NULL);
  ck_call_cancel(NULL, true);
  assert_int_equal(ck_call_token(NULL, buf), 0);
  assert_int_equal(ck_call_mid(NULL), 0);
  ck_client_stats(NULL, NULL);
  ck_client_stats(c, NULL);
  ck_client_free(NULL);
  ck_client_free(c);

  /* RFC 7252 §4.8.1: ACK_RANDOM_FACTOR >= 1; 0 still means the default.
   * Each bad value is refused, by the context and by a client. */
  struct ck_params bad[6];
  memset(bad, 0, sizeof bad);
  bad[0].ack_random_factor = 0.5f;
  bad[1].ack_random_factor = 11.0f;
  bad[2].ack_timeout_ms = 4000000000u;
  bad[3].max_retransmit = 1000;
  bad[4].max_latency_ms = 4000000000u;
  bad[5].ack_random_factor = -1.0f;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct ck_ctx_config cc = {.params = bad[i]};
    struct ck_ctx *y = NULL;
    assert_int_equal(ck_ctx_new(&cc, &y), CK_EINVAL);
    assert_null(y);
    struct ck_client_config kc = {.params = bad[i]};
    c = NULL;
    assert_int_equal(ck_client_new(x, &kc, &c), CK_EINVAL);
    assert_null(c);
  }
  struct ck_client_config ok = {0};
  ok.params.ack_random_factor = 1.0f;
  ok.params.max_retransmit = CK_MAX_RETRANSMIT_NONE;
  assert_int_equal(ck_client_new(x, &ok, &c), 0);
  ck_client_free(c);
  ck_ctx_free(x);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_piggybacked, setup, teardown),
    cmocka_unit_test_setup_teardown(test_retransmission_timing, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_separate_response, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_wrong_token_or_peer_rejected,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_nstart, setup, teardown),
    cmocka_unit_test_setup_teardown(test_observe_order_reregister_cancel,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_ping_and_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_block2_download, setup, teardown),
    cmocka_unit_test(test_null_and_bad_params),
    cmocka_unit_test_setup_teardown(test_many_calls_by_token, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_do_loop_error_cancels, setup,
                                    teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
