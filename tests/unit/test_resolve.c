/* The resolver (lib/resolve.c) against real sockets: the hosts file for
 * "localhost", and a small DNS server of our own on 127.0.0.1
 * (dns_server.h), run in a thread so that a resolver that blocked the
 * loop would show as a stalled ck_ctx_process, not as a deadlock. c-ares
 * is pointed at it with CK_DNS_SERVERS. Names it knows (every other name
 * is NXDOMAIN):
 *   multi.test  A 127.0.0.2, 127.0.0.3, 127.0.0.4; AAAA ::1
 *   v4.test     A 127.0.0.5; no AAAA (NODATA)
 *   dup.test    A 127.0.0.2, 127.0.0.3, 127.0.0.2
 *   many.test   A 127.0.1.1 ... 127.0.1.12
 *   slow.test   A 127.0.0.9, answered after SLOW_MS; no AAAA */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"
#include "../../lib/ctx.h"
#include "../../lib/resolve.h"

#include "dns_server.h"

enum { SLOW_MS = DNS_SLOW_MS };

static const struct dns_name names[] = {
  {.name = "multi.test",
   .a = {"127.0.0.2", "127.0.0.3", "127.0.0.4"},
   .aaaa = {"::1"}},
  {.name = "v4.test", .a = {"127.0.0.5"}},
  {.name = "dup.test", .a = {"127.0.0.2", "127.0.0.3", "127.0.0.2"}},
  {.name = "many.test",
   .a = {"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.1.5",
         "127.0.1.6", "127.0.1.7", "127.0.1.8", "127.0.1.9", "127.0.1.10",
         "127.0.1.11", "127.0.1.12"}},
  {.name = "slow.test", .a = {"127.0.0.9"}, .slow = true},
  {.name = NULL},
};

/* A UDP socket on 127.0.0.1 with an ephemeral port. */
static int udp_bound(uint16_t *port)
{
  *port = 0;
  int fd = udp_bound_at("127.0.0.1", port);
  assert_true(fd >= 0);
  return fd;
}

static void use_servers(const char *csv)
{
  dns_use_servers(csv);
}

static void use_our_server(void)
{
  dns_use();
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

/* ---- what the callback saw ---- */

struct res {
  unsigned calls;
  bool reentered; /* fired inside ck__resolve_start */
  int err;
  size_t n;
  char addrs[CK__RESOLVE_MAX_ADDRS][CK_ADDR_STRLEN];
  uint64_t at;
};

static bool in_start;

static void on_res(void *user, int err, const struct ck_addr *addrs, size_t n)
{
  struct res *r = user;
  r->reentered |= in_start;
  r->calls++;
  r->err = err;
  r->n = n;
  r->at = now_ms();
  for (size_t i = 0; i < n && i < CK__RESOLVE_MAX_ADDRS; i++)
    assert_true(ck_addr_format(&addrs[i], r->addrs[i], CK_ADDR_STRLEN) > 0);
}

static int start(struct ck_ctx *ctx, const char *host, uint16_t port,
                 int family, struct res *r, struct ck__resolve_req **req)
{
  memset(r, 0, sizeof *r);
  in_start = true;
  int rc = ck__resolve_start(ctx, host, port, family, on_res, r, req);
  in_start = false;
  /* Whatever the outcome, never a callback from inside the call. */
  assert_int_equal(r->calls, 0);
  return rc;
}

/* Runs the loop until r has its callback or max_ms pass. */
static bool pump(struct ck_ctx *ctx, struct res *r, unsigned max_ms)
{
  uint64_t end = now_ms() + max_ms;
  while (r->calls == 0 && now_ms() < end)
    assert_true(ck_ctx_process(ctx, 10) >= 0);
  return r->calls > 0;
}

/* Runs the loop for ms milliseconds. */
static void pump_for(struct ck_ctx *ctx, unsigned ms)
{
  uint64_t end = now_ms() + ms;
  while (now_ms() < end)
    assert_true(ck_ctx_process(ctx, 10) >= 0);
}

static struct ck_ctx *new_ctx(void)
{
  struct ck_ctx *ctx;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  return ctx;
}

static void resolve_ok(struct ck_ctx *ctx, const char *host, int family,
                       struct res *r)
{
  assert_int_equal(start(ctx, host, 5683, family, r, NULL), 0);
  assert_true(pump(ctx, r, 3000));
  assert_int_equal(r->calls, 1);
  assert_false(r->reentered);
  assert_int_equal(r->err, 0);
}

/* ---- tests ---- */

static void test_literals(void **state)
{
  (void)state;
  use_our_server();
  unsigned q0 = atomic_load(&dns.queries);
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  resolve_ok(ctx, "127.0.0.1", AF_UNSPEC, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.addrs[0], "127.0.0.1:5683");
  resolve_ok(ctx, "::1", AF_INET6, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.addrs[0], "[::1]:5683");

  /* A literal of the other family is no address of the one asked for. */
  assert_int_equal(start(ctx, "127.0.0.1", 1, AF_INET6, &r, NULL), 0);
  assert_true(pump(ctx, &r, 1000));
  assert_int_equal(r.err, CK_EURI_HOST);
  assert_int_equal(r.n, 0);

  /* Refused at once, and then no callback ever. */
  assert_int_equal(start(ctx, "a:b", 1, AF_UNSPEC, &r, NULL), CK_EURI_HOST);
  assert_int_equal(start(ctx, "[::1]", 1, AF_UNSPEC, &r, NULL),
                   CK_EURI_HOST);
  assert_int_equal(start(ctx, "fe80::zz", 1, AF_UNSPEC, &r, NULL),
                   CK_EURI_HOST);
  assert_int_equal(start(ctx, "", 1, AF_UNSPEC, &r, NULL), CK_EINVAL);
  assert_int_equal(start(ctx, NULL, 1, AF_UNSPEC, &r, NULL), CK_EINVAL);
  assert_int_equal(start(ctx, "x.test", 1, 12345, &r, NULL), CK_EINVAL);
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(start(ctx, longname, 1, AF_UNSPEC, &r, NULL), CK_EINVAL);
  pump_for(ctx, 50);
  assert_int_equal(r.calls, 0);
  ck_ctx_free(ctx);
  assert_int_equal(atomic_load(&dns.queries), q0);
}

static void test_localhost_from_hosts(void **state)
{
  (void)state;
  use_our_server();
  unsigned q0 = atomic_load(&dns.queries);
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  assert_int_equal(start(ctx, "localhost", 1234, AF_UNSPEC, &r, NULL), 0);
  assert_true(pump(ctx, &r, 3000));
  assert_false(r.reentered);
  assert_int_equal(r.err, 0);
  assert_true(r.n >= 1);
  for (size_t i = 0; i < r.n; i++)
    assert_true(!strncmp(r.addrs[i], "127.", 4) ||
                !strcmp(r.addrs[i], "[::1]:1234"));
  assert_non_null(strstr(r.addrs[0], ":1234"));
  /* The hosts file answered; DNS was never asked (RFC 6761 §6.3). */
  assert_int_equal(atomic_load(&dns.queries), q0);
  ck_ctx_free(ctx);
}

static void test_several_addresses_in_order(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  resolve_ok(ctx, "multi.test", AF_INET, &r);
  assert_int_equal(r.n, 3);
  assert_string_equal(r.addrs[0], "127.0.0.2:5683");
  assert_string_equal(r.addrs[1], "127.0.0.3:5683");
  assert_string_equal(r.addrs[2], "127.0.0.4:5683");

  resolve_ok(ctx, "multi.test", AF_INET6, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.addrs[0], "[::1]:5683");

  /* Both families: where ::1 goes is RFC 6724's (and the host's) call,
   * but all four come back and the IPv4 ones keep their order. */
  resolve_ok(ctx, "multi.test", AF_UNSPEC, &r);
  assert_int_equal(r.n, 4);
  const char *v4[3] = {"127.0.0.2:5683", "127.0.0.3:5683", "127.0.0.4:5683"};
  size_t next = 0, v6 = 0;
  for (size_t i = 0; i < r.n; i++) {
    if (!strcmp(r.addrs[i], "[::1]:5683"))
      v6++;
    else
      assert_string_equal(r.addrs[i], v4[next++]);
  }
  assert_int_equal(v6, 1);
  assert_int_equal(next, 3);

  /* A name with no AAAA still resolves with AF_UNSPEC. */
  resolve_ok(ctx, "v4.test", AF_UNSPEC, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.addrs[0], "127.0.0.5:5683");
  ck_ctx_free(ctx);
}

static void test_duplicates_dropped_and_capped(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  resolve_ok(ctx, "dup.test", AF_INET, &r);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.addrs[0], "127.0.0.2:5683");
  assert_string_equal(r.addrs[1], "127.0.0.3:5683");

  resolve_ok(ctx, "many.test", AF_INET, &r);
  assert_int_equal(r.n, CK__RESOLVE_MAX_ADDRS);
  for (unsigned i = 0; i < CK__RESOLVE_MAX_ADDRS; i++) {
    char want[32];
    snprintf(want, sizeof want, "127.0.1.%u:5683", i + 1);
    assert_string_equal(r.addrs[i], want);
  }
  ck_ctx_free(ctx);
}

static void test_nxdomain_and_nodata(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  unsigned q0 = atomic_load(&dns.queries);
  assert_int_equal(start(ctx, "nx.test", 5683, AF_UNSPEC, &r, NULL), 0);
  assert_true(pump(ctx, &r, 3000));
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.err, CK_EURI_HOST);
  assert_int_equal(r.n, 0);
  assert_true(atomic_load(&dns.queries) > q0); /* DNS said so */

  assert_int_equal(start(ctx, "v4.test", 5683, AF_INET6, &r, NULL), 0);
  assert_true(pump(ctx, &r, 3000));
  assert_int_equal(r.err, CK_EURI_HOST);
  ck_ctx_free(ctx);
}

/* One silent server: c-ares gives up after TRY_MS + 2 * TRY_MS. Three
 * silent servers would take 9 tries; the deadline ends it first. Both run
 * at once, in two contexts, to keep the test short. */
static void test_silent_servers_time_out(void **state)
{
  (void)state;
  uint16_t p[3];
  int fd[3];
  for (int i = 0; i < 3; i++)
    fd[i] = udp_bound(&p[i]);
  char csv[128];
  snprintf(csv, sizeof csv, "127.0.0.1:%u", p[0]);
  use_servers(csv);
  struct ck_ctx *one = new_ctx();
  struct res r1, r3;
  uint64_t t0 = now_ms();
  assert_int_equal(start(one, "x.test", 5683, AF_INET, &r1, NULL), 0);
  snprintf(csv, sizeof csv, "127.0.0.1:%u,127.0.0.1:%u,127.0.0.1:%u", p[0],
           p[1], p[2]);
  use_servers(csv);
  struct ck_ctx *three = new_ctx();
  assert_int_equal(start(three, "x.test", 5683, AF_INET, &r3, NULL), 0);

  uint64_t end = t0 + CK__RESOLVE_DEADLINE_MS + 2000;
  while ((r1.calls == 0 || r3.calls == 0) && now_ms() < end) {
    assert_true(ck_ctx_process(one, 5) >= 0);
    assert_true(ck_ctx_process(three, 5) >= 0);
  }
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r1.err, CK_ETIMEDOUT);
  uint64_t e1 = r1.at - t0;
  print_message("one silent server: CK_ETIMEDOUT after %llu ms\n",
                (unsigned long long)e1);
  assert_true(e1 >= 3 * CK__RESOLVE_TRY_MS - 300);
  assert_true(e1 <= 3 * CK__RESOLVE_TRY_MS + 1000);

  assert_int_equal(r3.calls, 1);
  assert_int_equal(r3.err, CK_ETIMEDOUT);
  uint64_t e3 = r3.at - t0;
  print_message("three silent servers: CK_ETIMEDOUT after %llu ms\n",
                (unsigned long long)e3);
  assert_true(e3 >= CK__RESOLVE_DEADLINE_MS - 100);
  assert_true(e3 <= CK__RESOLVE_DEADLINE_MS + 1000);

  /* The servers did receive the queries; they just never answered. */
  for (int i = 0; i < 3; i++) {
    uint8_t buf[512];
    assert_true(recv(fd[i], buf, sizeof buf, MSG_DONTWAIT) > 0);
    close(fd[i]);
  }
  /* c-ares still runs three's query; freeing drops it quietly. */
  ck_ctx_free(three);
  ck_ctx_free(one);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r3.calls, 1);
}

static void test_refused_server_unreachable(void **state)
{
  (void)state;
  uint16_t port;
  close(udp_bound(&port)); /* nothing listens there now: ICMP */
  char csv[64];
  snprintf(csv, sizeof csv, "127.0.0.1:%u", port);
  use_servers(csv);
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  uint64_t t0 = now_ms();
  assert_int_equal(start(ctx, "x.test", 5683, AF_INET, &r, NULL), 0);
  assert_true(pump(ctx, &r, 3000));
  assert_int_equal(r.err, CK_EUNREACH);
  assert_true(r.at - t0 < CK__RESOLVE_TRY_MS);
  ck_ctx_free(ctx);
}

static void test_bad_server_list(void **state)
{
  (void)state;
  use_servers("not an address");
  struct ck_ctx *ctx = new_ctx();
  struct res r;
  assert_int_equal(start(ctx, "x.test", 5683, AF_INET, &r, NULL), CK_EINVAL);
  /* Literals need no DNS server. */
  resolve_ok(ctx, "127.0.0.1", AF_INET, &r);
  ck_ctx_free(ctx);
}

struct ticker {
  struct ck__timer t; /* first */
  struct ck_ctx *ctx;
  unsigned ticks;
};

static void tick(struct ck__timer *t)
{
  struct ticker *k = (struct ticker *)t;
  k->ticks++;
  (void)ck__timer_start(&k->ctx->loop, &k->t, 20, tick);
}

static void test_loop_not_blocked(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  struct ticker k = {.ctx = ctx};
  (void)ck__timer_start(&ctx->loop, &k.t, 20, tick);
  struct res r;
  uint64_t t0 = now_ms(), longest = 0;
  assert_int_equal(start(ctx, "slow.test", 5683, AF_INET, &r, NULL), 0);
  assert_true(now_ms() - t0 < 100);
  for (unsigned i = 0; i < 1000 && r.calls == 0; i++) {
    uint64_t a = now_ms();
    assert_true(ck_ctx_process(ctx, 50) >= 0);
    uint64_t d = now_ms() - a;
    if (d > longest)
      longest = d;
  }
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.addrs[0], "127.0.0.9:5683");
  uint64_t took = r.at - t0;
  print_message("slow answer after %llu ms; %u ticks meanwhile; longest "
                "ck_ctx_process %llu ms\n",
                (unsigned long long)took, k.ticks,
                (unsigned long long)longest);
  assert_true(took >= SLOW_MS - 50);
  /* A 20 ms timer kept firing while the answer was pending. */
  assert_true(k.ticks >= (SLOW_MS / 20) / 2);
  assert_true(longest < 200);
  ck__timer_stop(&ctx->loop, &k.t);
  ck_ctx_free(ctx);
}

static struct res chained;

/* A callback may start the next resolution (the request is gone by then). */
static struct ck_ctx *chain_ctx;
static void chain_cb(void *user, int err, const struct ck_addr *addrs,
                     size_t n)
{
  on_res(user, err, addrs, n);
  memset(&chained, 0, sizeof chained);
  assert_int_equal(ck__resolve_start(chain_ctx, "v4.test", 7, AF_INET, on_res,
                                     &chained, NULL),
                   0);
}

static void test_callback_starts_another(void **state)
{
  (void)state;
  use_our_server();
  chain_ctx = new_ctx();
  struct res r;
  memset(&r, 0, sizeof r);
  assert_int_equal(ck__resolve_start(chain_ctx, "multi.test", 7, AF_INET,
                                     chain_cb, &r, NULL),
                   0);
  assert_true(pump(chain_ctx, &r, 3000));
  assert_true(pump(chain_ctx, &chained, 3000));
  assert_int_equal(chained.err, 0);
  assert_string_equal(chained.addrs[0], "127.0.0.5:7");
  ck_ctx_free(chain_ctx);
}

static void test_cancel(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  struct res slow, lit, fine;
  struct ck__resolve_req *rs, *rl;
  unsigned a0 = atomic_load(&dns.answered);
  assert_int_equal(start(ctx, "slow.test", 5683, AF_INET, &slow, &rs), 0);
  assert_int_equal(start(ctx, "127.0.0.1", 5683, AF_INET, &lit, &rl), 0);
  ck__resolve_cancel(rl);
  pump_for(ctx, 100);
  ck__resolve_cancel(rs);
  /* Past the moment the server answered the cancelled query. */
  uint64_t end = now_ms() + SLOW_MS + 1000;
  while (atomic_load(&dns.answered) == a0 && now_ms() < end)
    assert_true(ck_ctx_process(ctx, 10) >= 0);
  assert_true(atomic_load(&dns.answered) > a0);
  pump_for(ctx, 100);
  assert_int_equal(slow.calls, 0);
  assert_int_equal(lit.calls, 0);
  /* The resolver carries on. */
  resolve_ok(ctx, "v4.test", AF_INET, &fine);
  ck_ctx_free(ctx);
}

static void test_free_drops_pending(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  struct res slow, lit, host;
  assert_int_equal(start(ctx, "slow.test", 5683, AF_UNSPEC, &slow, NULL), 0);
  assert_int_equal(start(ctx, "::1", 5683, AF_UNSPEC, &lit, NULL), 0);
  assert_int_equal(start(ctx, "localhost", 5683, AF_UNSPEC, &host, NULL), 0);
  pump_for(ctx, 30);
  assert_int_equal(slow.calls, 0);
  ck_ctx_free(ctx); /* resolve.h: no callback fires */
  assert_int_equal(slow.calls, 0);
}

static void test_cap(void **state)
{
  (void)state;
  use_our_server();
  struct ck_ctx *ctx = new_ctx();
  static struct res r[CK__RESOLVE_MAX_PENDING + 1];
  static struct ck__resolve_req *h[CK__RESOLVE_MAX_PENDING];
  /* Late answers to earlier tests must not count as ours below. */
  uint64_t end = now_ms() + SLOW_MS + 1000;
  while (atomic_load(&dns.holding) > 0 && now_ms() < end)
    usleep(10000);
  assert_int_equal(atomic_load(&dns.holding), 0);
  unsigned a0 = atomic_load(&dns.answered);
  for (unsigned i = 0; i < CK__RESOLVE_MAX_PENDING; i++)
    assert_int_equal(start(ctx, "slow.test", 1, AF_INET, &r[i], &h[i]), 0);
  struct res *extra = &r[CK__RESOLVE_MAX_PENDING];
  assert_int_equal(start(ctx, "127.0.0.1", 1, AF_INET, extra, NULL),
                   CK_EFULL);
  for (unsigned i = 0; i < CK__RESOLVE_MAX_PENDING; i++)
    ck__resolve_cancel(h[i]);
  /* Cancelled queries still in c-ares hold their places... */
  assert_int_equal(start(ctx, "127.0.0.1", 1, AF_INET, extra, NULL),
                   CK_EFULL);
  /* ...until their answers come: wait for every one of them. */
  end = now_ms() + SLOW_MS + 3000;
  while ((atomic_load(&dns.answered) - a0 < CK__RESOLVE_MAX_PENDING ||
          atomic_load(&dns.holding) > 0) &&
         now_ms() < end)
    assert_true(ck_ctx_process(ctx, 10) >= 0);
  pump_for(ctx, 100);
  resolve_ok(ctx, "127.0.0.1", AF_INET, extra);
  for (unsigned i = 0; i < CK__RESOLVE_MAX_PENDING; i++)
    assert_int_equal(r[i].calls, 0);
  ck_ctx_free(ctx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_literals),
    cmocka_unit_test(test_localhost_from_hosts),
    cmocka_unit_test(test_several_addresses_in_order),
    cmocka_unit_test(test_duplicates_dropped_and_capped),
    cmocka_unit_test(test_nxdomain_and_nodata),
    cmocka_unit_test(test_silent_servers_time_out),
    cmocka_unit_test(test_refused_server_unreachable),
    cmocka_unit_test(test_bad_server_list),
    cmocka_unit_test(test_loop_not_blocked),
    cmocka_unit_test(test_callback_starts_another),
    cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_free_drops_pending),
    cmocka_unit_test(test_cap),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
