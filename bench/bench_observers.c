/* Observers at scale: registers N observers (default 10000) on one
 * resource of an in-process server, from a set of client sockets with one
 * token per observer, measures the heap the server holds per observer,
 * then changes the resource ROUNDS times and checks that every live
 * observer receives each notification.
 *
 *   bench_observers [N] [non|con] [DEAD]
 *
 * con sends the notifications as CON and the clients acknowledge each one
 * (the server's ACK processing counts as its work). DEAD of the client
 * sockets (of SOCKS) are closed after registering: their observers are
 * peers that went away, and the others must not wait for them.
 *
 * The server and the clients share this thread, so the server's cost is
 * measured as this thread's CPU time inside the library's calls only
 * (ck_resource_changed and ck_ctx_process), and the heap allocations made
 * inside them are counted (not under a sanitizer, which owns malloc).
 * Prints one machine-readable line per run:
 *
 *   bench observers n=N type=T dead=D bytes_per_observer=B fixed_bytes=F
 *   notified=K register_ms=R notify_ms=T server_ns=S rate=NPS allocs=A
 *
 * notify_ms is the wall time of the best round until every live observer
 * had its notification; server_ns is the server's CPU per notification
 * in that round and rate its inverse. Exits 0 only when all N observers
 * were registered and every live one notified in every round, so the test
 * suite runs it as a check too. Loopback only; bounded in time. */
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coapkit/coapkit.h"

enum { SOCKS = 200, ROUNDS = 3, DEADLINE_MS = 30000 };

#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 0
#else
#define COUNT_ALLOCS 1
#endif

/* Counting allocations by interposing malloc: the executable's
 * definitions take precedence over libc's for the library too (static
 * or shared). Only the calls made while `counting` is set are counted. */
static int counting;
static unsigned long allocs;

#if COUNT_ALLOCS
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

void *malloc(size_t n)
{
  allocs += (unsigned long)counting;
  return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
  allocs += (unsigned long)counting;
  return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
  allocs += (unsigned long)counting;
  return __libc_realloc(p, n);
}
#endif

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

static uint64_t now_ns(clockid_t clock)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
  return now_ns(CLOCK_MONOTONIC) / 1000000u;
}

static size_t heap_used(void)
{
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* The server's side of the thread: CPU time and allocations inside the
 * library's calls. */
static uint64_t server_ns;

static int serve(struct ck_ctx *ctx, int timeout_ms)
{
  uint64_t t = now_ns(CLOCK_THREAD_CPUTIME_ID);
  counting = 1;
  int rc = ck_ctx_process(ctx, timeout_ms);
  counting = 0;
  server_ns += now_ns(CLOCK_THREAD_CPUTIME_ID) - t;
  return rc;
}

static void serve_all(struct ck_ctx *ctx)
{
  for (int k = 0; k < 1000 && serve(ctx, 0) > 0; k++)
    ;
}

/* Reads every pending datagram on client sockets from..to-1, acknowledges
 * CON ones, and counts the observers (by token) that had a 2.05 with
 * Observe not yet marked with `mark` in seen[] (0: registration, counts
 * none). */
static unsigned drain(const int *fds, int from, int to, unsigned char *seen,
                      unsigned n, unsigned char mark)
{
  unsigned got = 0;
  uint8_t buf[256];
  for (int s = from; s < to; s++) {
    for (;;) {
      ssize_t len = recv(fds[s], buf, sizeof buf, MSG_DONTWAIT);
      if (len <= 0)
        break;
      struct ck_msg m;
      uint32_t obs, id;
      if (ck_msg_parse(&m, buf, (size_t)len) < 0 || m.code != CK_CONTENT ||
          m.tkl != 4 || ck_msg_opt_uint(&m, CK_OPT_OBSERVE, &obs) < 0)
        continue;
      if (m.type == CK_TYPE_CON) {
        uint8_t ack[4] = {0x60, 0, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
        send(fds[s], ack, sizeof ack, 0);
      }
      memcpy(&id, m.token, 4);
      if (mark && id < n && seen[id] != mark) {
        seen[id] = mark;
        got++;
      }
    }
  }
  return got;
}

/* The kernel's ceiling for the same fan-out: `count` datagrams of `len`
 * bytes sent with sendmmsg in batches of 32 from one socket to the live
 * client sockets, as a server with nothing to do but send would. Returns
 * this thread's CPU time for the sends, in ns; the datagrams are read
 * and discarded afterwards. */
static uint64_t ceiling_ns(const int *fds, int from, const struct ck_addr *srv,
                           unsigned count, size_t len)
{
  enum { BATCH = 32 };
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_storage to[SOCKS];
  socklen_t tolen[SOCKS];
  for (int s = from; s < SOCKS; s++) {
    tolen[s] = sizeof to[s];
    getsockname(fds[s], (struct sockaddr *)&to[s], &tolen[s]);
  }
  (void)srv;
  uint8_t dgram[64] = {0x50, 0x45};
  struct mmsghdr msg[BATCH];
  struct iovec iov = {.iov_base = dgram,
                      .iov_len = len < sizeof dgram ? len : sizeof dgram};
  uint64_t cpu = 0;
  unsigned sent = 0;
  int s = from;
  while (sent < count && fd >= 0) {
    unsigned k = 0;
    for (; k < BATCH && sent + k < count; k++) {
      memset(&msg[k], 0, sizeof msg[k]);
      msg[k].msg_hdr.msg_name = &to[s];
      msg[k].msg_hdr.msg_namelen = tolen[s];
      msg[k].msg_hdr.msg_iov = &iov;
      msg[k].msg_hdr.msg_iovlen = 1;
      s = s + 1 < SOCKS ? s + 1 : from;
    }
    uint64_t t = now_ns(CLOCK_THREAD_CPUTIME_ID);
    int n = sendmmsg(fd, msg, k, 0);
    cpu += now_ns(CLOCK_THREAD_CPUTIME_ID) - t;
    if (n <= 0)
      break;
    sent += (unsigned)n;
    if (sent % 8192 < BATCH) {
      uint8_t buf[256];
      for (int d = from; d < SOCKS; d++)
        while (recv(fds[d], buf, sizeof buf, MSG_DONTWAIT) > 0)
          ;
    }
  }
  uint8_t buf[256];
  for (int d = from; d < SOCKS; d++)
    while (recv(fds[d], buf, sizeof buf, MSG_DONTWAIT) > 0)
      ;
  if (fd >= 0)
    close(fd);
  return sent == count ? cpu : 0;
}

int main(int argc, char **argv)
{
  unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
  bool con = argc > 2 && strcmp(argv[2], "con") == 0;
  int dead = argc > 3 ? atoi(argv[3]) : 0;
  if (n == 0 || n > 1000000 || dead < 0 || dead >= SOCKS ||
      (argc > 2 && !con && strcmp(argv[2], "non") != 0)) {
    fprintf(stderr, "bench_observers: usage: bench_observers [N] "
                    "[non|con] [DEAD]; N 1..1000000, DEAD 0..%d\n",
            SOCKS - 1);
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
    /* As root, past net.core.rmem_max; otherwise up to it. */
    if (setsockopt(fds[s], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big))
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
    drain(fds, 0, SOCKS, seen, 0, 0);
    if (sent == 1 && ck_resource_observers(res) == 1)
      base = heap_used();
  }
  uint64_t t1 = now_ms();
  unsigned registered = (unsigned)ck_resource_observers(res);
  size_t after = heap_used();
  double per = registered > 1 ? (double)(after - base) / (registered - 1) : 0;

  /* Observers on the first DEAD sockets belong to peers that are gone:
   * their notifications draw ICMP errors, or (CON) time out. */
  for (int s = 0; s < dead; s++)
    close(fds[s]);
  unsigned live = 0;
  for (unsigned id = 0; id < n; id++)
    live += (int)(id % SOCKS) >= dead;

  bool ok = registered == n;
  uint64_t best_wall = UINT64_MAX, best_srv = UINT64_MAX, best_send = 0;
  unsigned long best_allocs = 0;
  unsigned notified = 0;
  for (uint32_t round = 1; round <= ROUNDS && ok; round++) {
    value++;
    server_ns = 0;
    allocs = 0;
    uint64_t w0 = now_ns(CLOCK_MONOTONIC);
    uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    counting = 1;
    ck_resource_changed(res, con ? CK_NOTIFY_CON : 0);
    counting = 0;
    server_ns += now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    uint64_t send_ns = server_ns;
    notified = 0;
    uint64_t end = now_ms() + DEADLINE_MS;
    while (notified < live && now_ms() < end) {
      /* A socket at a time, with the server's turn after each, so that
       * the ACKs of CON notifications do not pile up past its socket's
       * buffer (they would be lost and the CONs sent again). */
      for (int k = dead; k < SOCKS; k++) {
        notified += drain(fds, k, k + 1, seen, n, (unsigned char)round);
        serve_all(ctx);
      }
      if (notified < live) {
        struct pollfd p = {.fd = fds[SOCKS - 1], .events = POLLIN};
        poll(&p, 1, 1);
      }
    }
    /* The ACKs of the last notifications, so that no CON is left. */
    serve_all(ctx);
    uint64_t wall = now_ns(CLOCK_MONOTONIC) - w0;
    ok = notified == live;
    if (!ok) {
      struct ck_stats st;
      ck_ctx_stats(ctx, &st);
      fprintf(stderr, "bench_observers: round %u: %u of %u live observers "
              "notified; server: %llu observers left, %llu sends dropped\n",
              round, notified, live, (unsigned long long)st.observers,
              (unsigned long long)st.tx_dropped);
    }
    if (server_ns < best_srv) {
      best_srv = server_ns;
      best_send = send_ns;
      best_wall = wall;
      best_allocs = allocs;
    }
  }
  /* A notification of this benchmark is 17 bytes (4 header, 4 token,
   * Observe, Content-Format, a short payload). */
  double ceil_ns = ok ? (double)ceiling_ns(fds, dead, &local, live, 17) / live
                      : 0;
  double srv_ns = notified ? (double)best_srv / notified : 0;
  double send_ns = notified ? (double)best_send / notified : 0;

  printf("observers: %u registered in %llu ms, %.0f bytes of server heap "
         "each (+%zu fixed); %s notifications, %d of %d client sockets "
         "dead: %u/%u live observers notified, best of %d rounds %.1f ms, "
         "server CPU %.0f ns each (%.0f notifications/s; %.0f ns of it to build and send), %lu heap "
         "allocations by the server in that round%s; a bare sendmmsg of the "
         "same number of datagrams: %.0f ns each (%.0f/s)\n",
         registered, (unsigned long long)(t1 - t0), per, base - base0,
         con ? "CON" : "NON", dead, SOCKS, notified, live, ROUNDS,
         best_wall / 1e6, srv_ns, srv_ns > 0 ? 1e9 / srv_ns : 0, send_ns,
         best_allocs,
         COUNT_ALLOCS ? "" : " (not counted under a sanitizer)", ceil_ns,
         ceil_ns > 0 ? 1e9 / ceil_ns : 0);
  printf("bench observers n=%u type=%s dead=%d bytes_per_observer=%.0f "
         "fixed_bytes=%zu notified=%u register_ms=%llu notify_ms=%.1f "
         "server_ns=%.0f rate=%.0f send_ns=%.0f allocs=%lu ceiling_ns=%.0f "
         "ceiling_rate=%.0f\n",
         n, con ? "con" : "non", dead, per, base - base0, notified,
         (unsigned long long)(t1 - t0), best_wall / 1e6, srv_ns,
         srv_ns > 0 ? 1e9 / srv_ns : 0, send_ns, best_allocs, ceil_ns,
         ceil_ns > 0 ? 1e9 / ceil_ns : 0);
  for (int s = dead; s < SOCKS; s++)
    close(fds[s]);
  free(seen);
  ck_ctx_free(ctx);
  return ok ? 0 : 1;
}
