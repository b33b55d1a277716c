/* lossy_relay: a UDP relay for tests that drops, duplicates and reorders
 * a share of the datagrams it forwards, so that retransmission,
 * deduplication and Observe ordering can be tested on loopback with real
 * sockets.
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
 * A datagram that is not dropped may be duplicated (--dup: a second copy
 * follows the first) and held back (--reorder: the datagram, or its
 * second copy, waits in a slot of one per direction and goes out right
 * after the next datagram sent that way, or after --reorder-ms if none
 * comes first, so the delay is bounded). Duplication and reordering draw
 * from streams of their own, once per datagram whatever its fate, so
 * that adding them changes no drop of a seed: the loss of the n-th
 * datagram is the same as with --loss alone.
 *
 * -v logs one line per datagram, with the CLOCK_MONOTONIC time (which a
 * test on the same host can compare with its own readings), direction,
 * fate, and the CoAP header's type, code and Message ID. The relay ends
 * after --duration seconds, on SIGTERM or SIGINT, and prints its counts.
 *
 * Usage: lossy_relay --listen ADDR:PORT --target ADDR:PORT [--loss PCT]
 *          [--loss-up PCT] [--loss-down PCT] [--dup PCT] [--dup-up PCT]
 *          [--dup-down PCT] [--reorder PCT] [--reorder-up PCT]
 *          [--reorder-down PCT] [--reorder-ms MS] [--seed N]
 *          [--duration SEC] [--log FILE] [-v]
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
  double loss, dup, reorder; /* 0..1 */
  uint64_t rng, dup_rng, reorder_rng;
  uint64_t fwd, drop, dups, held, late;
  /* The datagram held back: sent on fd, to to (when to.len is set). */
  bool holding;
  double hold_until;
  int hold_fd;
  struct ck_addr hold_to;
  size_t hold_len;
  uint8_t hold_buf[DGRAM_MAX];
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

/* A draw in [0, 1) from stream s. */
static double draw(uint64_t *s)
{
  return (double)(splitmix64(s) >> 11) / 9007199254740992.0;
}

/* What becomes of one datagram. */
struct fate {
  bool drop, dup, hold;
};

/* Decides the fate of the direction's next datagram. */
static struct fate fate_next(struct dir *d)
{
  /* One draw per datagram from each stream whatever the shares, so that
   * the sequence of fates depends only on the seed and the datagram's
   * position, and --dup or --reorder leave the drops of a seed as they
   * were. */
  struct fate f;
  f.drop = draw(&d->rng) < d->loss;
  f.dup = draw(&d->dup_rng) < d->dup && !f.drop;
  f.hold = draw(&d->reorder_rng) < d->reorder && !f.drop;
  return f;
}

static void send_on(int fd, const struct ck_addr *to, const uint8_t *buf,
                    size_t len)
{
  if (to && to->len)
    sendto(fd, buf, len, 0, &to->u.sa, to->len);
  else
    send(fd, buf, len, 0);
}

/* Sends the datagram held back in d, if any. */
static void release(struct dir *d)
{
  if (!d->holding)
    return;
  d->holding = false;
  send_on(d->hold_fd, &d->hold_to, d->hold_buf, d->hold_len);
}

/* Forwards a datagram that was not dropped: once or twice, the last
 * copy perhaps held back; a datagram held earlier goes out after the
 * first copy sent now, which makes it overtaken. */
static void forward(struct dir *d, struct fate f, int fd,
                    const struct ck_addr *to, const uint8_t *buf, size_t len,
                    double hold_s)
{
  unsigned copies = f.dup ? 2 : 1;
  d->fwd++;
  d->dups += f.dup;
  /* Only one slot: a datagram to hold while one waits goes out now. */
  bool hold = f.hold && !d->holding;
  for (unsigned i = 0; i < copies; i++) {
    if (hold && i == copies - 1) {
      d->holding = true;
      d->held++;
      d->hold_until = now_s() + hold_s;
      d->hold_fd = fd;
      d->hold_to = to ? *to : (struct ck_addr){0};
      memcpy(d->hold_buf, buf, len);
      d->hold_len = len;
      return;
    }
    send_on(fd, to, buf, len);
    release(d);
  }
}

static void log_dgram(FILE *log, const struct dir *d, struct fate f,
                      const uint8_t *buf, size_t len)
{
  if (!log)
    return;
  static const char *types[] = {"CON", "NON", "ACK", "RST"};
  /* The fate as one word: a log reader splits on blanks. */
  const char *fate = f.drop            ? "drop"
                     : f.dup && f.hold ? "dup+hold"
                     : f.dup           ? "dup"
                     : f.hold          ? "hold"
                                       : "fwd";
  if (len >= 4 && buf[0] >> 6 == 1) {
    fprintf(log, "%.6f %s %s %s %u.%02u mid=%u len=%zu\n", now_s(), d->name,
            fate, types[buf[0] >> 4 & 3], buf[1] >> 5, buf[1] & 31u,
            (unsigned)(buf[2] << 8 | buf[3]), len);
  } else {
    fprintf(log, "%.6f %s %s ? ? mid=-1 len=%zu\n", now_s(), d->name, fate,
            len);
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
                  "[--loss PCT] [--loss-up PCT] [--loss-down PCT] "
                  "[--dup PCT] [--dup-up PCT] [--dup-down PCT] "
                  "[--reorder PCT] [--reorder-up PCT] [--reorder-down PCT] "
                  "[--reorder-ms MS] [--seed N] [--duration SEC] [--log FILE] "
                  "[-v]\n");
  exit(2);
}

int main(int argc, char **argv)
{
  const char *listen_s = NULL, *target_s = NULL, *log_path = NULL;
  static struct dir up = {.name = "up"}, down = {.name = "down"};
  uint64_t seed = 1;
  double duration = 60.0, hold_s = 0.02;
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
    } else if (strcmp(a, "--dup") == 0) {
      if (parse_pct(v, &up.dup) < 0)
        usage();
      down.dup = up.dup;
    } else if (strcmp(a, "--dup-up") == 0) {
      if (parse_pct(v, &up.dup) < 0)
        usage();
    } else if (strcmp(a, "--dup-down") == 0) {
      if (parse_pct(v, &down.dup) < 0)
        usage();
    } else if (strcmp(a, "--reorder") == 0) {
      if (parse_pct(v, &up.reorder) < 0)
        usage();
      down.reorder = up.reorder;
    } else if (strcmp(a, "--reorder-up") == 0) {
      if (parse_pct(v, &up.reorder) < 0)
        usage();
    } else if (strcmp(a, "--reorder-down") == 0) {
      if (parse_pct(v, &down.reorder) < 0)
        usage();
    } else if (strcmp(a, "--reorder-ms") == 0) {
      char *end;
      double ms = strtod(v, &end);
      if (end == v || *end || !(ms >= 1 && ms <= 10000))
        usage();
      hold_s = ms / 1000;
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
  up.dup_rng = up.rng ^ 0x6475706475706475u;
  down.dup_rng = down.rng ^ 0x6475706475706475u;
  up.reorder_rng = up.rng ^ 0x72656f7264657272u;
  down.reorder_rng = down.rng ^ 0x72656f7264657272u;

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
         "dup up %g%% down %g%%, reorder up %g%% down %g%% (%g ms), "
         "seed %" PRIu64 "\n",
         lbuf, tbuf, up.loss * 100, down.loss * 100, up.dup * 100,
         down.dup * 100, up.reorder * 100, down.reorder * 100, hold_s * 1000,
         seed);
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
    /* A datagram held back waits no longer than its time. */
    double wake = left > 1.0 ? 1.0 : left;
    struct dir *dirs[] = {&up, &down};
    for (unsigned i = 0; i < 2; i++) {
      if (dirs[i]->holding) {
        double w = dirs[i]->hold_until - now_s();
        if (w < wake)
          wake = w > 0 ? w : 0;
      }
    }
    int ms = (int)(wake * 1000) + 1;
    int n = poll(pfd, npeers + 1, ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("lossy_relay: poll");
      break;
    }
    for (unsigned i = 0; i < 2; i++) {
      if (dirs[i]->holding && now_s() >= dirs[i]->hold_until) {
        dirs[i]->late++;
        release(dirs[i]);
      }
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
        struct fate f = fate_next(&up);
        log_dgram(log, &up, f, buf, (size_t)len);
        if (f.drop)
          up.drop++;
        else
          forward(&up, f, peers[k].fd, NULL, buf, (size_t)len, hold_s);
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
        struct fate f = fate_next(&down);
        log_dgram(log, &down, f, buf, (size_t)len);
        if (f.drop)
          down.drop++;
        else
          forward(&down, f, lfd, &peers[i].addr, buf, (size_t)len, hold_s);
      }
    }
  }
  /* Whatever is still held goes out: the test may be waiting on it. */
  release(&up);
  release(&down);
  printf("lossy_relay: up fwd %" PRIu64 " drop %" PRIu64 "; down fwd %" PRIu64
         " drop %" PRIu64 "; peers %u refused %" PRIu64 "; dup up %" PRIu64
         " down %" PRIu64 "; held up %" PRIu64 " down %" PRIu64
         " (released by timer up %" PRIu64 " down %" PRIu64 "); %s\n",
         up.fwd, up.drop, down.fwd, down.drop, npeers, refused, up.dups,
         down.dups, up.held, down.held, up.late, down.late,
         stop_sig ? "stopped by signal" : "duration over");
  for (unsigned i = 0; i < npeers; i++)
    close(peers[i].fd);
  close(lfd);
  if (log && log != stderr)
    fclose(log);
  return 0;
}
