/* lossy_relay: a UDP relay for tests that drops a share of the datagrams
 * it forwards, so that retransmission and deduplication can be tested on
 * loopback with real sockets.
 *
 * Datagrams arriving on the listen address from a client go "up" to the
 * target from a socket of that client's own (so the target sees one peer
 * per client, and its answers find their way back); what the target sends
 * to that socket goes "down" to the client from the listen address. Each
 * direction has its own seeded PRNG (splitmix64) and drops a datagram
 * when the next draw falls under its loss share: for a given seed the
 * n-th datagram in a direction meets the same fate in every run, however
 * the two directions interleave.
 *
 * -v logs one line per datagram, with the CLOCK_MONOTONIC time (which a
 * test on the same host can compare with its own readings), direction,
 * fate, and the CoAP header's type, code and Message ID. The relay ends
 * after --duration seconds, on SIGTERM or SIGINT, and prints its counts.
 *
 * Usage: lossy_relay --listen ADDR:PORT --target ADDR:PORT [--loss PCT]
 *          [--loss-up PCT] [--loss-down PCT] [--seed N] [--duration SEC]
 *          [--log FILE] [-v]
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

enum { MAX_PEERS = 64, DGRAM_MAX = 65536 };

/* One direction of traffic. */
struct dir {
  const char *name;
  double loss; /* 0..1 */
  uint64_t rng;
  uint64_t fwd, drop;
};

/* A client of the relay and the socket that speaks for it upstream. */
struct peer {
  struct ck_addr addr;
  int fd;
};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
  stop_sig = sig;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Decides the fate of the direction's next datagram. */
static bool drop_next(struct dir *d)
{
  /* One draw per datagram whatever the loss, so that the sequence of
   * fates depends only on the seed and the datagram's position. */
  double u = (double)(splitmix64(&d->rng) >> 11) / 9007199254740992.0;
  return u < d->loss;
}

static void log_dgram(FILE *log, const struct dir *d, bool dropped,
                      const uint8_t *buf, size_t len)
{
  if (!log)
    return;
  static const char *types[] = {"CON", "NON", "ACK", "RST"};
  if (len >= 4 && buf[0] >> 6 == 1) {
    fprintf(log, "%.6f %s %s %s %u.%02u mid=%u len=%zu\n", now_s(), d->name,
            dropped ? "drop" : "fwd", types[buf[0] >> 4 & 3], buf[1] >> 5,
            buf[1] & 31u, (unsigned)(buf[2] << 8 | buf[3]), len);
  } else {
    fprintf(log, "%.6f %s %s ? ? mid=-1 len=%zu\n", now_s(), d->name,
            dropped ? "drop" : "fwd", len);
  }
  fflush(log);
}

static int parse_pct(const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0.0 && v <= 100.0))
    return -1;
  *out = v / 100.0;
  return 0;
}

static int open_socket(int family)
{
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  return fd;
}

static void usage(void)
{
  fprintf(stderr, "usage: lossy_relay --listen ADDR:PORT --target ADDR:PORT "
                  "[--loss PCT] [--loss-up PCT] [--loss-down PCT] [--seed N] "
                  "[--duration SEC] [--log FILE] [-v]\n");
  exit(2);
}

int main(int argc, char **argv)
{
  const char *listen_s = NULL, *target_s = NULL, *log_path = NULL;
  struct dir up = {.name = "up"}, down = {.name = "down"};
  uint64_t seed = 1;
  double duration = 60.0;
  bool verbose = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-v") == 0) {
      verbose = true;
      continue;
    }
    if (!v)
      usage();
    i++;
    if (strcmp(a, "--listen") == 0) {
      listen_s = v;
    } else if (strcmp(a, "--target") == 0) {
      target_s = v;
    } else if (strcmp(a, "--loss") == 0) {
      if (parse_pct(v, &up.loss) < 0)
        usage();
      down.loss = up.loss;
    } else if (strcmp(a, "--loss-up") == 0) {
      if (parse_pct(v, &up.loss) < 0)
        usage();
    } else if (strcmp(a, "--loss-down") == 0) {
      if (parse_pct(v, &down.loss) < 0)
        usage();
    } else if (strcmp(a, "--seed") == 0) {
      seed = strtoull(v, NULL, 0);
    } else if (strcmp(a, "--duration") == 0) {
      duration = strtod(v, NULL);
      if (!(duration > 0))
        usage();
    } else if (strcmp(a, "--log") == 0) {
      log_path = v;
    } else {
      usage();
    }
  }
  if (!listen_s || !target_s)
    usage();
  struct ck_addr laddr, taddr;
  if (ck_addr_parse(&laddr, listen_s, 0) < 0 ||
      ck_addr_parse(&taddr, target_s, 5683) < 0) {
    fprintf(stderr, "lossy_relay: bad address\n");
    return 2;
  }
  /* Independent streams: the directions must not steal each other's
   * draws. */
  up.rng = seed ^ 0x7570757075707570u;
  down.rng = seed ^ 0x646f776e646f776eu;

  FILE *log = NULL;
  if (verbose) {
    log = log_path ? fopen(log_path, "w") : stderr;
    if (!log) {
      perror(log_path);
      return 1;
    }
  }

  int lfd = open_socket(laddr.u.sa.sa_family);
  if (lfd < 0 || bind(lfd, &laddr.u.sa, laddr.len) != 0) {
    perror("lossy_relay: listen");
    return 1;
  }
  laddr.len = sizeof laddr.u;
  getsockname(lfd, &laddr.u.sa, &laddr.len);
  char lbuf[CK_ADDR_STRLEN], tbuf[CK_ADDR_STRLEN];
  ck_addr_format(&laddr, lbuf, sizeof lbuf);
  ck_addr_format(&taddr, tbuf, sizeof tbuf);
  printf("lossy_relay: listening on %s, target %s, loss up %g%% down %g%%, "
         "seed %" PRIu64 "\n",
         lbuf, tbuf, up.loss * 100, down.loss * 100, seed);
  fflush(stdout);

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  static struct peer peers[MAX_PEERS];
  static uint8_t buf[DGRAM_MAX];
  unsigned npeers = 0;
  uint64_t refused = 0;
  double end = now_s() + duration;
  while (!stop_sig) {
    double left = end - now_s();
    if (left <= 0)
      break;
    struct pollfd pfd[MAX_PEERS + 1];
    pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (unsigned i = 0; i < npeers; i++)
      pfd[i + 1] = (struct pollfd){.fd = peers[i].fd, .events = POLLIN};
    int ms = left > 1.0 ? 1000 : (int)(left * 1000) + 1;
    int n = poll(pfd, npeers + 1, ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("lossy_relay: poll");
      break;
    }
    /* Upwards: from a client, through its own socket to the target. */
    if (pfd[0].revents & POLLIN) {
      for (;;) {
        struct ck_addr from = {.len = sizeof from.u};
        ssize_t len = recvfrom(lfd, buf, sizeof buf, 0, &from.u.sa, &from.len);
        if (len < 0)
          break;
        unsigned k = 0;
        while (k < npeers && !ck_addr_equal(&peers[k].addr, &from))
          k++;
        if (k == npeers) {
          int fd = npeers < MAX_PEERS ? open_socket(taddr.u.sa.sa_family) : -1;
          if (fd < 0 || connect(fd, &taddr.u.sa, taddr.len) != 0) {
            if (fd >= 0)
              close(fd);
            refused++;
            continue;
          }
          peers[npeers++] = (struct peer){.addr = from, .fd = fd};
        }
        bool dropped = drop_next(&up);
        log_dgram(log, &up, dropped, buf, (size_t)len);
        if (dropped) {
          up.drop++;
        } else {
          up.fwd++;
          send(peers[k].fd, buf, (size_t)len, 0);
        }
      }
    }
    /* Downwards: from the target, back to the client it answers. */
    for (unsigned i = 0; i < npeers; i++) {
      if (!(pfd[i + 1].revents & (POLLIN | POLLERR)))
        continue;
      for (;;) {
        ssize_t len = recv(peers[i].fd, buf, sizeof buf, 0);
        if (len < 0) {
          /* A connected socket reports ICMP errors (the target is gone)
           * as errors of recv(); they are consumed and ignored. */
          if (errno == ECONNREFUSED)
            continue;
          break;
        }
        bool dropped = drop_next(&down);
        log_dgram(log, &down, dropped, buf, (size_t)len);
        if (dropped) {
          down.drop++;
        } else {
          down.fwd++;
          sendto(lfd, buf, (size_t)len, 0, &peers[i].addr.u.sa,
                 peers[i].addr.len);
        }
      }
    }
  }
  printf("lossy_relay: up fwd %" PRIu64 " drop %" PRIu64 "; down fwd %" PRIu64
         " drop %" PRIu64 "; peers %u refused %" PRIu64 "; %s\n",
         up.fwd, up.drop, down.fwd, down.drop, npeers, refused,
         stop_sig ? "stopped by signal" : "duration over");
  for (unsigned i = 0; i < npeers; i++)
    close(peers[i].fd);
  close(lfd);
  if (log && log != stderr)
    fclose(log);
  return 0;
}
