/* Observers at scale: registers N observers (default 10000) on one
 * resource of an in-process server, from a set of client sockets with one
 * token per observer, measures the heap the server holds per observer,
 * then changes the resource once and checks that every observer receives
 * its notification. Prints one machine-readable line:
 *
 *   bench observers n=N bytes_per_observer=B fixed_bytes=F notified=K
 *   register_ms=R notify_ms=T
 *
 * Exits 0 only when all N observers were registered and notified, so the
 * test suite runs it as a check too. Loopback only; bounded in time. */
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

enum { SOCKS = 100, DEADLINE_MS = 20000 };

static uint32_t value;

static void get_value(struct ck_resource *r, const struct ck_request *req,
                      struct ck_response *resp, void *user)
{
  (void)r;
  (void)req;
  (void)user;
  char buf[16];
  int n = snprintf(buf, sizeof buf, "%u", value);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, buf, (size_t)n);
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t heap_used(void)
{
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* Reads every pending datagram on the client sockets; counts the 2.05
 * answers that carry Observe. seen[] marks observers by token. */
static unsigned drain(const int *fds, unsigned char *seen, unsigned n)
{
  unsigned got = 0;
  uint8_t buf[256];
  for (int s = 0; s < SOCKS; s++) {
    for (;;) {
      ssize_t len = recv(fds[s], buf, sizeof buf, MSG_DONTWAIT);
      if (len <= 0)
        break;
      struct ck_msg m;
      uint32_t obs, id;
      if (ck_msg_parse(&m, buf, (size_t)len) < 0 || m.code != CK_CONTENT ||
          m.tkl != 4 || ck_msg_opt_uint(&m, CK_OPT_OBSERVE, &obs) < 0)
        continue;
      memcpy(&id, m.token, 4);
      if (id < n && !seen[id]) {
        seen[id] = 1;
        got++;
      }
    }
  }
  return got;
}

int main(int argc, char **argv)
{
  unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
  if (n == 0 || n > 1000000) {
    fprintf(stderr, "bench_observers: N must be 1..1000000\n");
    return 2;
  }
  struct ck_ctx *ctx;
  struct ck_resource *res;
  struct ck_addr local;
  ck_addr_parse(&local, "127.0.0.1:0", 0);
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_ctx_listen(ctx, &local) < 0 ||
      ck_ctx_local_addr(ctx, 0, &local) < 0 ||
      ck_resource_new(ctx, "obs", &res) < 0) {
    fprintf(stderr, "bench_observers: cannot start the server\n");
    return 1;
  }
  ck_resource_handler(res, CK_GET, get_value, NULL);
  ck_resource_observable(res, true, false);

  int fds[SOCKS];
  for (int s = 0; s < SOCKS; s++) {
    fds[s] = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(fds[s], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (fds[s] < 0 || connect(fds[s], &local.u.sa, local.len) < 0) {
      perror("bench_observers: socket");
      return 1;
    }
  }
  unsigned char *seen = calloc(n, 1);
  if (!seen)
    return 1;

  /* One observer first, so that the per-context tables (allocated on the
   * first registration) count as fixed cost, not per observer. */
  size_t base0 = heap_used();
  uint64_t t0 = now_ms(), deadline = t0 + DEADLINE_MS;
  unsigned sent = 0;
  size_t base = 0;
  while (ck_resource_observers(res) < n && now_ms() < deadline) {
    /* Send in bursts small enough for the socket buffers. */
    unsigned burst = sent == 0 ? 1 : 256;
    for (unsigned k = 0; k < burst && sent < n; k++, sent++) {
      uint8_t buf[64];
      struct ck_builder b;
      ck_builder_init(&b, buf, sizeof buf, CK_TYPE_NON, CK_GET,
                      (uint16_t)sent);
      ck_builder_token(&b, &sent, 4);
      ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 0);
      ck_builder_opt_str(&b, CK_OPT_URI_PATH, "obs");
      int len = ck_builder_finish(&b);
      send(fds[sent % SOCKS], buf, (size_t)len, 0);
    }
    while (ck_ctx_process(ctx, 5) > 0)
      ;
    drain(fds, seen, 0);
    if (sent == 1 && ck_resource_observers(res) == 1)
      base = heap_used();
  }
  uint64_t t1 = now_ms();
  unsigned registered = (unsigned)ck_resource_observers(res);
  size_t after = heap_used();
  double per = registered > 1 ? (double)(after - base) / (registered - 1) : 0;

  value++;
  ck_resource_changed(res, 0);
  unsigned notified = 0;
  uint64_t t2 = now_ms();
  while (notified < n && now_ms() < t2 + DEADLINE_MS) {
    ck_ctx_process(ctx, 0);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    poll(&p, 1, 1);
    notified += drain(fds, seen, n);
  }
  uint64_t t3 = now_ms();

  printf("observers: %u registered in %llu ms, %.0f bytes of server heap "
         "each (+%zu fixed), %u/%u notified in %llu ms\n",
         registered, (unsigned long long)(t1 - t0), per, base - base0,
         notified, n, (unsigned long long)(t3 - t2));
  printf("bench observers n=%u bytes_per_observer=%.0f fixed_bytes=%zu "
         "notified=%u register_ms=%llu notify_ms=%llu\n",
         n, per, base - base0, notified, (unsigned long long)(t1 - t0),
         (unsigned long long)(t3 - t2));
  for (int s = 0; s < SOCKS; s++)
    close(fds[s]);
  free(seen);
  ck_ctx_free(ctx);
  return registered == n && notified == n ? 0 : 1;
}
