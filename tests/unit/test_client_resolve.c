/* The client with host names (issue 8): names resolved on the loop,
 * their addresses tried in turn, against real sockets on loopback. A
 * coapkit server (a second context in the same thread, pumped beside the
 * client's) serves 127.0.0.1:P; other loopback addresses on the same
 * port either refuse (nothing bound there: ICMP port unreachable) or read
 * and never answer (a bound UDP socket). The names come from a DNS
 * server of the test's own (dns_server.h), reached with CK_DNS_SERVERS:
 *   one.test     A 127.0.0.1
 *   two.test     A 127.0.0.2 (refuses), 127.0.0.1 (serves)
 *   silent.test  A 127.0.0.3 (silent), 127.0.0.1 (serves)
 *   dead.test    A 127.0.0.2, 127.0.0.4 (both refuse)
 *   deadsil.test A 127.0.0.2 (refuses), 127.0.0.3 (silent)
 *   dual.test    AAAA ::1; A 127.0.0.1
 *   slow.test    A 127.0.0.1, answered after DNS_SLOW_MS
 * Every wait is bounded by a deadline. The client's ACK_TIMEOUT is
 * ACK_MS with ACK_RANDOM_FACTOR 1, so that the times are exact. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "coapkit/coapkit.h"
#include "../../lib/ctx.h"
#include "../../lib/resolve.h"

#include "dns_server.h"

enum { ACK_MS = 400 };

static const struct dns_name names[] = {
  {.name = "one.test", .a = {"127.0.0.1"}},
  {.name = "two.test", .a = {"127.0.0.2", "127.0.0.1"}},
  {.name = "silent.test", .a = {"127.0.0.3", "127.0.0.1"}},
  {.name = "dead.test", .a = {"127.0.0.2", "127.0.0.4"}},
  {.name = "deadsil.test", .a = {"127.0.0.2", "127.0.0.3"}},
  {.name = "dual.test", .a = {"127.0.0.1"}, .aaaa = {"::1"}},
  {.name = "slow.test", .a = {"127.0.0.1"}, .slow = true},
  {.name = NULL},
};

/* ---- the server ---- */

static struct {
  struct ck_ctx *ctx;
  struct ck_resource *obs;
  uint16_t port;
  unsigned gets;
  struct ck_addr last_peer; /* who asked last */
} S;

static void h_get(struct ck_resource *r, const struct ck_request *req,
                  struct ck_response *resp, void *u)
{
  (void)r;
  (void)u;
  S.gets++;
  S.last_peer = *ck_request_peer(req);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, "hi", 2);
}

/* A server on ip (a literal), port 0 for an ephemeral one. */
static void server_start(const char *ip, uint16_t port)
{
  memset(&S, 0, sizeof S);
  assert_int_equal(ck_ctx_new(NULL, &S.ctx), 0);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, ip, port), 0);
  assert_int_equal(ck_ctx_listen(S.ctx, &a), 0);
  assert_int_equal(ck_ctx_local_addr(S.ctx, 0, &a), 0);
  S.port = ck_addr_port(&a);
  struct ck_resource *r;
  assert_int_equal(ck_resource_new(S.ctx, "hello", &r), 0);
  assert_int_equal(ck_resource_handler(r, CK_GET, h_get, NULL), 0);
  assert_int_equal(ck_resource_new(S.ctx, "obs", &S.obs), 0);
  assert_int_equal(ck_resource_handler(S.obs, CK_GET, h_get, NULL), 0);
  ck_resource_observable(S.obs, true, false);
}

static void server_stop(void)
{
  ck_ctx_free(S.ctx);
  S.ctx = NULL;
}

/* ---- the client ---- */

struct seen {
  unsigned calls, finals;
  int err;
  uint8_t code;
  char body[16];
  char peer[CK_ADDR_STRLEN];
  uint64_t at; /* when the final callback fired */
};

static void cb(struct ck_call *call, const struct ck_client_response *r, void *user)
{
  (void)call;
  struct seen *s = user;
  s->calls++;
  s->finals += r->final;
  s->err = r->err;
  s->code = r->code;
  snprintf(s->body, sizeof s->body, "%.*s", (int)r->body_len,
           r->body ? (const char *)r->body : "");
  if (r->peer && r->peer->len)
    ck_addr_format(r->peer, s->peer, sizeof s->peer);
  if (r->final)
    s->at = now_ms();
}

static struct ck_ctx *ctx;
static struct ck_client *cl;

/* The requests the client sent, from its trace hook: where to, with
 * which Message ID and token. */
enum { MAX_SENT = 16 };
static struct sent {
  char to[CK_ADDR_STRLEN];
  uint16_t mid;
  uint8_t tkl;
  uint8_t token[8];
} sent[MAX_SENT];
static unsigned nsent;

static void on_trace(void *user, bool out, const struct ck_addr *peer,
                     const struct ck_msg *m)
{
  (void)user;
  if (!out || CK_CODE_CLASS(m->code) != 0 || m->code == CK_CODE_EMPTY ||
      nsent >= MAX_SENT)
    return;
  struct sent *e = &sent[nsent++];
  ck_addr_format(peer, e->to, sizeof e->to);
  e->mid = m->mid;
  e->tkl = m->tkl;
  memcpy(e->token, m->token, m->tkl);
}

static void client_new(void)
{
  dns_use();
  nsent = 0;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  struct ck_client_config cfg = {0};
  cfg.params.ack_timeout_ms = ACK_MS;
  cfg.params.ack_random_factor = 1.0f;
  cfg.params.max_retransmit = 1;
  cfg.trace = on_trace;
  assert_int_equal(ck_client_new(ctx, &cfg, &cl), 0);
}

/* Asserts that request i went to ip:S.port. */
static void sent_to(unsigned i, const char *ip)
{
  char want[CK_ADDR_STRLEN];
  snprintf(want, sizeof want, "%s:%u", ip, S.port);
  assert_true(i < nsent);
  assert_string_equal(sent[i].to, want);
}

/* Asserts that requests i and i + 1 are the same request to another
 * address: a fresh Message ID, the same token. */
static void moved_on(unsigned i)
{
  assert_true(i + 1 < nsent);
  assert_int_not_equal(sent[i].mid, sent[i + 1].mid);
  assert_int_equal(sent[i].tkl, sent[i + 1].tkl);
  assert_memory_equal(sent[i].token, sent[i + 1].token, sent[i].tkl);
}

/* Runs both loops until s has its final callback or max_ms pass. */
static bool pump(struct seen *s, unsigned max_ms)
{
  uint64_t end = now_ms() + max_ms;
  while (s->finals == 0 && now_ms() < end) {
    if (S.ctx)
      assert_true(ck_ctx_process(S.ctx, 0) >= 0);
    assert_true(ck_ctx_process(ctx, 2) >= 0);
  }
  return s->finals > 0;
}

static void pump_for(unsigned ms)
{
  uint64_t end = now_ms() + ms;
  while (now_ms() < end) {
    if (S.ctx)
      assert_true(ck_ctx_process(S.ctx, 0) >= 0);
    assert_true(ck_ctx_process(ctx, 2) >= 0);
  }
}

static struct ck_call *send_get(const char *host, uint16_t port,
                                const char *path, bool non, bool observe,
                                struct seen *s)
{
  char uri[128];
  snprintf(uri, sizeof uri, "coap://%s:%u/%s", host, port, path);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  req.non = non;
  req.observe = observe;
  struct ck_call *call = NULL;
  memset(s, 0, sizeof *s);
  assert_int_equal(ck_client_send(cl, &req, cb, s, &call), 0);
  /* Never a callback from inside ck_client_send. */
  assert_int_equal(s->calls, 0);
  return call;
}

static int setup(void **state)
{
  (void)state;
  server_start("127.0.0.1", 0);
  client_new();
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  ck_ctx_free(ctx);
  ctx = NULL;
  cl = NULL;
  server_stop();
  return 0;
}

static int group_setup(void **state)
{
  (void)state;
  return dns_start(names);
}

static int group_teardown(void **state)
{
  (void)state;
  dns_stop();
  return 0;
}

/* A socket bound to ip:S.port that reads and never answers. */
static int silent_at(const char *ip)
{
  uint16_t port = S.port;
  int fd = udp_bound_at(ip, &port);
  assert_true(fd >= 0);
  return fd;
}

/* Datagrams waiting on fd, read and counted. */
static unsigned drain(int fd)
{
  unsigned n = 0;
  uint8_t buf[1500];
  while (n < 100 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
    n++;
  return n;
}

/* ---- tests ---- */

static void test_name_one_address(void **state)
{
  (void)state;
  struct seen s;
  send_get("one.test", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, 0);
  assert_int_equal(s.code, CK_CONTENT);
  assert_string_equal(s.body, "hi");
  char want[32];
  snprintf(want, sizeof want, "127.0.0.1:%u", S.port);
  assert_string_equal(s.peer, want);
  pump_for(50);
  assert_int_equal(s.calls, 1);
}

/* The first address refuses (ICMP): the call moves on at once, far
 * sooner than ACK_TIMEOUT, and the second answers. CON and NON. */
static void test_first_unreachable(void **state)
{
  (void)state;
  for (int non = 0; non <= 1; non++) {
    struct seen s;
    nsent = 0;
    uint64_t t0 = now_ms();
    send_get("two.test", S.port, "hello", non, false, &s);
    assert_true(pump(&s, 3000));
    uint64_t took = s.at - t0;
    print_message("%s: first address refused, answered by the second "
                  "after %llu ms\n",
                  non ? "NON" : "CON", (unsigned long long)took);
    assert_int_equal(s.finals, 1);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.code, CK_CONTENT);
    assert_int_equal(S.gets, (unsigned)non + 1);
    assert_true(took < ACK_MS / 2);
    assert_int_equal(nsent, 2);
    sent_to(0, "127.0.0.2");
    sent_to(1, "127.0.0.1");
    moved_on(0);
  }
  assert_int_equal(S.gets, 2);
}

/* The kernel refuses to send to the address (a broadcast address
 * without SO_BROADCAST: EACCES, on any host): no datagram leaves and no
 * ICMP comes back, and still the call fails at once as unreachable
 * instead of retransmitting into nothing until its exchange times out.
 * (For a name, c-ares already sorts such addresses last.) */
static void test_refused_by_kernel(void **state)
{
  (void)state;
  for (int non = 0; non <= 1; non++) {
    struct seen s;
    uint64_t t0 = now_ms();
    send_get("255.255.255.255", S.port, "hello", non, false, &s);
    assert_true(pump(&s, 3000));
    uint64_t took = s.at - t0;
    print_message("%s: send refused by the kernel, failed after %llu ms\n",
                  non ? "NON" : "CON", (unsigned long long)took);
    assert_int_equal(s.finals, 1);
    assert_int_equal(s.err, CK_EUNREACH);
    assert_true(took < ACK_MS / 2);
  }
}

/* The first address reads and never answers: the call gives it one
 * transmission and one ACK_TIMEOUT, then asks the second. */
static void test_first_silent(void **state)
{
  (void)state;
  int fd = silent_at("127.0.0.3");
  for (int non = 0; non <= 1; non++) {
    struct seen s;
    nsent = 0;
    uint64_t t0 = now_ms();
    send_get("silent.test", S.port, "hello", non, false, &s);
    assert_true(pump(&s, 4 * ACK_MS + 2000));
    uint64_t took = s.at - t0;
    print_message("%s: first address silent, answered by the second "
                  "after %llu ms\n",
                  non ? "NON" : "CON", (unsigned long long)took);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.code, CK_CONTENT);
    assert_string_equal(s.body, "hi");
    assert_true(took >= ACK_MS - 20);
    assert_true(took < 2 * ACK_MS);
    /* One transmission to the silent address, no retransmission. */
    assert_int_equal(drain(fd), 1);
    assert_int_equal(nsent, 2);
    sent_to(0, "127.0.0.3");
    sent_to(1, "127.0.0.1");
    moved_on(0);
  }
  assert_int_equal(S.gets, 2);
  close(fd);
}

/* Every address fails: the call fails with the last one's error, the
 * last address having had the whole exchange. */
static void test_all_fail(void **state)
{
  (void)state;
  struct seen s;
  uint64_t t0 = now_ms();
  send_get("dead.test", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, CK_EUNREACH);
  assert_true(s.at - t0 < ACK_MS / 2);
  char want[32];
  snprintf(want, sizeof want, "127.0.0.4:%u", S.port);
  assert_string_equal(s.peer, want); /* the last address tried */

  assert_int_equal(nsent, 2);
  sent_to(0, "127.0.0.2");
  sent_to(1, "127.0.0.4");

  int fd = silent_at("127.0.0.3");
  nsent = 0;
  t0 = now_ms();
  send_get("deadsil.test", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 6 * ACK_MS + 2000));
  uint64_t took = s.at - t0;
  print_message("refused, then silent: CK_ETIMEDOUT after %llu ms\n",
                (unsigned long long)took);
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, CK_ETIMEDOUT);
  /* The last address: ACK_TIMEOUT, one retransmission, twice that. */
  assert_true(took >= 3 * ACK_MS - 20);
  assert_true(took < 4 * ACK_MS);
  assert_int_equal(drain(fd), 2);
  assert_int_equal(nsent, 3); /* 127.0.0.3 twice */
  sent_to(0, "127.0.0.2");
  sent_to(1, "127.0.0.3");
  sent_to(2, "127.0.0.3");
  assert_int_equal(sent[1].mid, sent[2].mid); /* a retransmission */
  assert_int_equal(S.gets, 0);
  close(fd);
  pump_for(50);
  assert_int_equal(s.calls, 1);
}

/* A name that does not exist: the error reaches the callback, once. */
static void test_no_such_name(void **state)
{
  (void)state;
  struct seen s;
  send_get("nx.test", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.err, CK_EURI_HOST);
  assert_int_equal(s.code, 0);
  pump_for(50);
  assert_int_equal(s.calls, 1);
  /* Bad URIs are still refused by ck_client_send itself. */
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, "coap://[::1/x");
  assert_true(ck_client_send(cl, &req, cb, &s, NULL) < 0);
  ck_client_request_init(&req, CK_GET, "coap://a%3Ab/x");
  assert_int_equal(ck_client_send(cl, &req, cb, &s, NULL), CK_EURI_HOST);
  assert_int_equal(s.calls, 1);
}

/* Cancelled while resolving: the final callback fires once, from
 * ck_call_cancel, and nothing after, even when the DNS answer comes. */
static void test_cancel_while_resolving(void **state)
{
  (void)state;
  struct seen s;
  unsigned a0 = atomic_load(&dns.answered);
  struct ck_call *call = send_get("slow.test", S.port, "hello", false,
                                  false, &s);
  pump_for(50);
  assert_int_equal(s.calls, 0);
  ck_call_cancel(call, false);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.finals, 1);
  assert_int_equal(s.err, CK_ECANCELED);
  uint64_t end = now_ms() + DNS_SLOW_MS + 2000;
  while (atomic_load(&dns.answered) == a0 && now_ms() < end)
    pump_for(10);
  assert_true(atomic_load(&dns.answered) > a0);
  pump_for(100);
  assert_int_equal(s.calls, 1);
  assert_int_equal(S.gets, 0);
}

/* Freeing the client, or the whole context, while a name resolves:
 * the final callback fires during the free, never after. */
static void test_free_while_resolving(void **state)
{
  (void)state;
  struct seen s1, s2, s3;
  send_get("slow.test", S.port, "hello", false, false, &s1);
  pump_for(20);
  ck_client_free(cl);
  assert_int_equal(s1.finals, 1);
  assert_int_equal(s1.err, CK_ECANCELED);
  assert_int_equal(ck_client_new(ctx, NULL, &cl), 0);
  send_get("slow.test", S.port, "hello", false, false, &s2);
  send_get("slow.test", S.port, "obs", false, true, &s3);
  pump_for(20);
  ck_ctx_free(ctx);
  ctx = NULL;
  assert_int_equal(s2.finals, 1);
  assert_int_equal(s2.err, CK_ECANCELED);
  assert_int_equal(s3.finals, 1);
  assert_int_equal(s3.err, CK_ECANCELED);
  /* The answers come later to a resolver that is gone. */
  usleep((DNS_SLOW_MS + 100) * 1000);
  assert_int_equal(s1.calls + s2.calls + s3.calls, 3);
  client_new(); /* for teardown */
}

/* A call resolving its name holds no NSTART slot: a call to the same
 * server sent after it goes out at once. */
static void test_resolving_not_counted(void **state)
{
  (void)state;
  ck_client_free(cl);
  struct ck_client_config cfg = {.nstart = 1};
  assert_int_equal(ck_client_new(ctx, &cfg, &cl), 0);
  struct seen slow, lit;
  uint64_t t0 = now_ms();
  send_get("slow.test", S.port, "hello", false, false, &slow);
  send_get("127.0.0.1", S.port, "hello", false, false, &lit);
  assert_true(pump(&lit, 3000));
  assert_int_equal(lit.err, 0);
  assert_true(lit.at - t0 < DNS_SLOW_MS / 2);
  assert_int_equal(slow.finals, 0);
  assert_true(pump(&slow, DNS_SLOW_MS + 3000));
  assert_int_equal(slow.err, 0);
  assert_true(slow.at - t0 >= DNS_SLOW_MS - 50);
  assert_int_equal(S.gets, 2);
}

/* An observation through a name whose first address refuses: it
 * registers with the second, and its notifications arrive. */
static void test_observe_after_failover(void **state)
{
  (void)state;
  struct seen s;
  nsent = 0;
  struct ck_call *call = send_get("two.test", S.port, "obs", false, true,
                                  &s);
  uint64_t end = now_ms() + 3000;
  while (s.calls == 0 && now_ms() < end)
    pump_for(5);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.finals, 0);
  sent_to(0, "127.0.0.2");
  sent_to(1, "127.0.0.1");
  assert_int_equal(ck_resource_observers(S.obs), 1);
  assert_int_equal(ck_resource_changed(S.obs, 0), 1);
  end = now_ms() + 3000;
  while (s.calls < 2 && now_ms() < end)
    pump_for(5);
  assert_int_equal(s.calls, 2);
  assert_int_equal(s.finals, 0);
  assert_string_equal(s.body, "hi");
  ck_call_cancel(call, true); /* RFC 7641 §3.6 */
  assert_true(pump(&s, 3000));
  assert_int_equal(s.err, CK_ECANCELED);
  assert_int_equal(ck_resource_observers(S.obs), 0);
}

/* A name with an IPv6 and an IPv4 address, the server on one family
 * only: the call moves across families (and endpoints) either way. */
static void test_dual_stack(void **state)
{
  (void)state;
  struct seen s;
  nsent = 0;
  send_get("dual.test", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  assert_int_equal(s.err, 0);
  assert_int_equal(s.code, CK_CONTENT);
  print_message("dual.test: first to %s\n", sent[0].to);
  assert_true(nsent == 1 || nsent == 2);
  sent_to(nsent - 1, "127.0.0.1");
  char want[32];
  snprintf(want, sizeof want, "127.0.0.1:%u", S.port);
  assert_string_equal(s.peer, want);

  server_stop();
  server_start("::1", 0);
  nsent = 0;
  send_get("dual.test", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  assert_int_equal(s.err, 0);
  assert_int_equal(s.code, CK_CONTENT);
  snprintf(want, sizeof want, "[::1]:%u", S.port);
  assert_string_equal(s.peer, want);
  /* Whichever family came first, both were tried in the two runs. */
  assert_true(nsent == 1 || nsent == 2);
  sent_to(nsent - 1, "[::1]");
}

struct res {
  bool done;
  int err;
  size_t n;
  bool v4, v6;
};

static void on_res(void *user, int err, const struct ck_addr *a, size_t n)
{
  struct res *r = user;
  r->done = true;
  r->err = err;
  r->n = n;
  for (size_t i = 0; i < n; i++) {
    r->v4 |= a[i].u.sa.sa_family == AF_INET;
    r->v6 |= a[i].u.sa.sa_family == AF_INET6;
  }
}

/* "localhost" comes from the hosts file (RFC 6761 §6.3). Against a
 * server on 127.0.0.1, and one on ::1: the latter answers when the
 * hosts file gives localhost an IPv6 address, and otherwise the call
 * fails as the only address refused it. */
static void test_localhost(void **state)
{
  (void)state;
  struct res r = {0};
  assert_int_equal(ck__resolve_start(ctx, "localhost", 1, AF_UNSPEC, on_res,
                                     &r, NULL),
                   0);
  uint64_t end = now_ms() + 3000;
  while (!r.done && now_ms() < end)
    assert_true(ck_ctx_process(ctx, 5) >= 0);
  assert_true(r.done);
  assert_int_equal(r.err, 0);
  print_message("localhost: %zu address(es)%s%s\n", r.n,
                r.v4 ? ", IPv4" : "", r.v6 ? ", IPv6" : "");

  struct seen s;
  send_get("localhost", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  if (r.v4) {
    assert_int_equal(s.err, 0);
    assert_int_equal(s.code, CK_CONTENT);
  } else {
    assert_int_equal(s.err, CK_EUNREACH);
  }

  server_stop();
  server_start("::1", 0);
  send_get("localhost", S.port, "hello", false, false, &s);
  assert_true(pump(&s, 3000));
  if (r.v6) {
    assert_int_equal(s.err, 0);
    assert_int_equal(s.code, CK_CONTENT);
  } else {
    assert_int_equal(s.err, CK_EUNREACH);
  }
  assert_true(r.v4 || r.v6);
}

/* ck_client_do() with a name: the blocking form runs the loop through
 * the resolution too. */
static void test_do_with_name(void **state)
{
  (void)state;
  /* ck_client_do() runs the client's loop only, and the server shares
   * this thread: so names whose calls end without it. */
  char uri[64];
  snprintf(uri, sizeof uri, "coap://dead.test:%u/hello", S.port);
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  struct ck_client_result res;
  uint64_t t0 = now_ms();
  assert_int_equal(ck_client_do(cl, &req, &res), CK_EUNREACH);
  assert_int_equal(res.err, CK_EUNREACH);
  assert_true(now_ms() - t0 < ACK_MS);
  ck_client_result_free(&res);
  snprintf(uri, sizeof uri, "coap://nx.test:%u/hello", S.port);
  ck_client_request_init(&req, CK_GET, uri);
  assert_int_equal(ck_client_do(cl, &req, &res), CK_EURI_HOST);
  ck_client_result_free(&res);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_name_one_address, setup, teardown),
    cmocka_unit_test_setup_teardown(test_first_unreachable, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_first_silent, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refused_by_kernel, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_all_fail, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_such_name, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cancel_while_resolving, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_free_while_resolving, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_resolving_not_counted, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_observe_after_failover, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
    cmocka_unit_test_setup_teardown(test_localhost, setup, teardown),
    cmocka_unit_test_setup_teardown(test_do_with_name, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
