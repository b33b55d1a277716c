/* coapd's metrics (coapd/metrics.h): the text metrics_format() writes
 * parses as the Prometheus text format 0.0.4 (every sample belongs to a
 * family announced by # TYPE, names are valid, families are not split),
 * a 4.04 the library really sent over loopback shows as
 * coapd_responses_total{code="4.04"}, the bus's families appear when a
 * bus is given, a small buffer gives -ENOSPC, and metrics_http serves the
 * text from the library's loop and names its address in metrics.addr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"

enum { BUF = 65536, MAX_FAMILIES = 64 };

static bool name_ok(const char *s, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

/* Checks text line by line as a Prometheus scraper reads it; returns the
 * number of samples. */
static int check_exposition(const char *text)
{
  char fam[MAX_FAMILIES][128];
  int nfam = 0, samples = 0;
  const char *cur = NULL; /* the family whose lines are being read */
  for (const char *l = text; *l;) {
    const char *nl = strchr(l, '\n');
    assert_non_null(nl); /* every line ends with a newline */
    size_t len = (size_t)(nl - l);
    if (strncmp(l, "# TYPE ", 7) == 0) {
      const char *n = l + 7, *sp = memchr(n, ' ', len - 7);
      assert_non_null(sp);
      assert_true(name_ok(n, (size_t)(sp - n)));
      size_t tl = (size_t)(nl - sp - 1);
      assert_true((tl == 7 && strncmp(sp + 1, "counter", 7) == 0) ||
                  (tl == 5 && strncmp(sp + 1, "gauge", 5) == 0));
      for (int i = 0; i < nfam; i++) /* announced once */
        assert_false(strlen(fam[i]) == (size_t)(sp - n) &&
                     strncmp(fam[i], n, (size_t)(sp - n)) == 0);
      assert_true(nfam < MAX_FAMILIES);
      snprintf(fam[nfam], sizeof fam[nfam], "%.*s", (int)(sp - n), n);
      cur = fam[nfam++];
    } else if (strncmp(l, "# HELP ", 7) == 0) {
      const char *n = l + 7, *sp = memchr(n, ' ', len - 7);
      assert_non_null(sp);
      assert_true(name_ok(n, (size_t)(sp - n)));
    } else {
      assert_true(len > 0 && l[0] != '#');
      size_t nl_ = strspn(l, "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
      assert_true(name_ok(l, nl_));
      /* The family announced last: a family's samples come together. */
      assert_non_null(cur);
      assert_int_equal(strlen(cur), nl_);
      assert_memory_equal(cur, l, nl_);
      const char *p = l + nl_;
      if (*p == '{') {
        const char *end = memchr(p, '}', (size_t)(nl - p));
        assert_non_null(end);
        /* label="value" pairs with valid label names */
        const char *eq = memchr(p, '=', (size_t)(end - p));
        assert_non_null(eq);
        assert_true(name_ok(p + 1, (size_t)(eq - p - 1)));
        assert_int_equal(eq[1], '"');
        assert_int_equal(end[-1], '"');
        p = end + 1;
      }
      assert_int_equal(*p, ' ');
      p++;
      assert_true(p < nl && strspn(p, "0123456789") == (size_t)(nl - p));
      samples++;
    }
    l = nl + 1;
  }
  return samples;
}

/* Sends one CON GET of /missing to ctx's endpoint and runs the loop until
 * the 4.04 comes back. */
static void provoke_404(struct ck_ctx *ctx)
{
  struct ck_addr a;
  assert_int_equal(ck_ctx_local_addr(ctx, 0, &a), 0);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  static const unsigned char get[] = {0x40, 0x01, 0x12, 0x34, 0xb7, 'm', 'i',
                                      's', 's', 'i', 'n', 'g'};
  assert_int_equal(sendto(fd, get, sizeof get, 0, &a.u.sa, a.len),
                   (ssize_t)sizeof get);
  unsigned char ans[64];
  ssize_t n = -1;
  for (int i = 0; i < 100 && n < 0; i++) {
    ck_ctx_process(ctx, 20);
    n = recv(fd, ans, sizeof ans, 0);
  }
  close(fd);
  assert_true(n >= 4);
  assert_int_equal(ans[1], CK_NOT_FOUND);
}

static struct ck_ctx *listening_ctx(void)
{
  struct ck_ctx *ctx;
  struct ck_addr a;
  assert_int_equal(ck_ctx_new(NULL, &ctx), 0);
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  assert_int_equal(ck_ctx_listen(ctx, &a), 0);
  return ctx;
}

static void format_parses(void **state)
{
  (void)state;
  struct ck_ctx *ctx = listening_ctx();
  char *buf = malloc(BUF);
  assert_non_null(buf);
  struct metrics_source src = {ctx, NULL, NULL, NULL};
  int n = metrics_format(&src, buf, BUF);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(buf));
  assert_true(check_exposition(buf) >= 8);
  /* Nothing sent yet: no response sample, but the family is there. */
  assert_non_null(strstr(buf, "# TYPE coapd_responses_total counter\n"));
  assert_null(strstr(buf, "coapd_responses_total{"));

  provoke_404(ctx);
  n = metrics_format(&src, buf, BUF);
  assert_true(n > 0);
  check_exposition(buf);
  assert_non_null(strstr(buf, "\ncoapd_responses_total{code=\"4.04\"} 1\n"));
  assert_non_null(strstr(buf, "\ncoapd_datagrams_received_total 1\n"));
  assert_null(strstr(buf, "code=\"2.05\""));
  /* No bus, no gateway: their families are left out. */
  assert_null(strstr(buf, "coapd_bus_"));
  assert_null(strstr(buf, "coapd_pubsub_"));
  free(buf);
  ck_ctx_free(ctx);
}

/* A bus whose only working entry is stats: what metrics reads. */
static void fake_stats(const struct bus *b, struct bus_stats *out)
{
  (void)b;
  *out = (struct bus_stats){.published = 7, .delivered = 11,
                            .subscriptions = 3, .retained_bytes = 4096,
                            .connected = 1, .refused = 5};
}

static void bus_families(void **state)
{
  (void)state;
  static const struct bus_ops ops = {.stats = fake_stats};
  struct bus bus = {&ops};
  struct metrics_source src = {NULL, &bus, NULL, NULL};
  char buf[4096];
  int n = metrics_format(&src, buf, sizeof buf);
  assert_true(n > 0);
  assert_int_equal(check_exposition(buf), 10);
  assert_non_null(strstr(buf, "\ncoapd_bus_published_total 7\n"));
  assert_non_null(strstr(buf, "\ncoapd_bus_delivered_total 11\n"));
  assert_non_null(strstr(buf, "# TYPE coapd_bus_subscriptions gauge\n"));
  assert_non_null(strstr(buf, "\ncoapd_bus_retained_bytes 4096\n"));
  /* The MQTT bus's: connection gauge and refusals. */
  assert_non_null(strstr(buf, "\ncoapd_bus_connected 1\n"));
  assert_non_null(strstr(buf, "\ncoapd_bus_refused_total 5\n"));
  assert_null(strstr(buf, "coapd_datagrams"));

  /* Nothing at all: an empty scrape. */
  struct metrics_source none = {NULL, NULL, NULL, NULL};
  assert_int_equal(metrics_format(&none, buf, sizeof buf), 0);
  assert_string_equal(buf, "");
}

static void small_buffer(void **state)
{
  (void)state;
  struct ck_ctx *ctx = listening_ctx();
  struct metrics_source src = {ctx, NULL, NULL, NULL};
  char buf[BUF];
  int full = metrics_format(&src, buf, sizeof buf);
  assert_true(full > 0);
  char small[64];
  assert_int_equal(metrics_format(&src, small, sizeof small), -ENOSPC);
  assert_string_equal(small, "");
  /* One byte short of the text and its NUL is too small; exact fits. */
  assert_int_equal(metrics_format(&src, buf, (size_t)full), -ENOSPC);
  assert_int_equal(metrics_format(&src, buf, (size_t)full + 1), full);
  assert_int_equal(metrics_format(&src, buf, 0), -ENOSPC);
  ck_ctx_free(ctx);
}

/* One HTTP/1.0 exchange with metrics_http, the loop run in between. */
static char *http(struct ck_ctx *ctx, const char *addr_file, const char *req)
{
  char text[80];
  FILE *f = fopen(addr_file, "r");
  assert_non_null(f);
  assert_non_null(fgets(text, sizeof text, f));
  fclose(f);
  text[strcspn(text, "\n")] = '\0';
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, text, 0), 0);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  assert_true(fd >= 0);
  int rc = connect(fd, &a.u.sa, a.len);
  assert_true(rc == 0 || errno == EINPROGRESS);
  size_t cap = 1 << 20, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  bool sent = false, done = false;
  for (int i = 0; i < 400 && !done; i++) {
    ck_ctx_process(ctx, 10);
    struct pollfd p = {fd, sent ? POLLIN : POLLOUT, 0};
    if (poll(&p, 1, 0) <= 0)
      continue;
    if (!sent) {
      assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL),
                       (ssize_t)strlen(req));
      sent = true;
      continue;
    }
    ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
    if (n == 0)
      done = true;
    else if (n > 0)
      len += (size_t)n;
  }
  close(fd);
  assert_true(done);
  out[len] = '\0';
  return out;
}

static void http_serves(void **state)
{
  (void)state;
  struct ck_ctx *ctx = listening_ctx();
  char dir[] = "/tmp/test_coapd_metrics.XXXXXX", file[64], err[256];
  assert_non_null(mkdtemp(dir));
  snprintf(file, sizeof file, "%s/metrics.addr", dir);
  struct ck_addr a;
  assert_int_equal(ck_addr_parse(&a, "127.0.0.1:0", 0), 0);
  struct metrics_source src = {ctx, NULL, NULL, NULL};
  struct metrics_http *m = NULL;
  assert_int_equal(metrics_http_new(ctx, &a, &src, dir, &m, err, sizeof err),
                   0);
  assert_int_equal(access(file, R_OK), 0);
  assert_int_equal(strncmp(metrics_http_addr(m), "127.0.0.1:", 10), 0);

  provoke_404(ctx);
  char *r = http(ctx, file, "GET /metrics HTTP/1.0\r\n\r\n");
  assert_int_equal(strncmp(r, "HTTP/1.1 200 ", 13), 0);
  assert_non_null(strstr(r, "text/plain; version=0.0.4"));
  char *body = strstr(r, "\r\n\r\n");
  assert_non_null(body);
  check_exposition(body + 4);
  assert_non_null(strstr(body, "coapd_responses_total{code=\"4.04\"} 1\n"));
  free(r);
  r = http(ctx, file, "GET /other HTTP/1.0\r\n\r\n");
  assert_int_equal(strncmp(r, "HTTP/1.1 404 ", 13), 0);
  free(r);
  r = http(ctx, file, "DELETE /metrics HTTP/1.0\r\n\r\n");
  assert_int_equal(strncmp(r, "HTTP/1.1 405 ", 13), 0);
  free(r);

  /* The port is taken now: a second server on it fails with a line. */
  struct ck_addr same;
  assert_int_equal(ck_addr_parse(&same, metrics_http_addr(m), 0), 0);
  struct metrics_http *m2 = NULL;
  assert_int_equal(
      metrics_http_new(ctx, &same, &src, NULL, &m2, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot serve metrics on 127.0.0.1:"));

  metrics_http_free(m);
  assert_int_equal(access(file, F_OK), -1); /* removed on free */
  assert_int_equal(rmdir(dir), 0);
  ck_ctx_free(ctx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(format_parses),
      cmocka_unit_test(bus_families),
      cmocka_unit_test(small_buffer),
      cmocka_unit_test(http_serves),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
