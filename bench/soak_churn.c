/* soak-churn: peers that come and go, for bench/soak.sh (issue 13,
 * part 7). Every 100 ms it opens RATE/10 new UDP sockets towards a CoAP
 * server, each on a port of its own; each peer sends one request and,
 * once answered (or after 1 s), closes its socket without a word. In
 * turn a peer registers an observation of /obs, subscribes to the
 * pub/sub topic TOPIC (GET ps/TOPIC with Observe and qos=0), publishes
 * to it (POST), or GETs /hello. Observers and subscribers never
 * deregister: the server learns of their end only from the ICMP port
 * unreachable its next notification meets (RFC 7641 §3.6 allows
 * forgetting an observer so), so what a vanished peer leaves behind is
 * what the soak measures. At most MAX_OPEN peers are open at once; a
 * peer beyond that is skipped and counted.
 *
 * Usage: soak-churn HOST PORT SECONDS RATE TOPIC
 * Prints one line: "soak-churn peers=N answered=A observing=O timeouts=T
 * skipped=S"; exits 0 when at least 90 % of the peers were answered, 1
 * otherwise, 2 on bad arguments.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

enum { MAX_OPEN = 256, TICK_MS = 100, WAIT_MS = 1000, MAX_RATE = 2000 };

struct peer {
  int fd; /* -1: free */
  uint64_t until_ms;
  uint16_t mid;
  uint32_t token;
  int kind; /* 0 observe /obs, 1 subscribe, 2 publish, 3 GET /hello */
};

static struct peer peers[MAX_OPEN];
static unsigned long n_peers, n_answered, n_observing, n_timeouts, n_skipped;

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Builds peer p's request into buf; returns its length or a CK_E code. */
static int build(const struct peer *p, const char *topic, uint8_t *buf,
                 size_t cap)
{
  struct ck_builder b;
  uint8_t code = p->kind == 2 ? CK_POST : CK_GET;
  ck_builder_init(&b, buf, cap, CK_TYPE_CON, code, p->mid);
  ck_builder_token(&b, &p->token, sizeof p->token);
  if (p->kind == 0 || p->kind == 1)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, 0);
  if (p->kind == 0)
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, "obs");
  else if (p->kind == 3)
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, "hello");
  else {
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, "ps");
    ck_builder_opt_str(&b, CK_OPT_URI_PATH, topic);
    ck_builder_opt_str(&b, CK_OPT_URI_QUERY, "qos=0");
  }
  if (p->kind == 2)
    ck_builder_payload(&b, "churn", 5);
  return ck_builder_finish(&b);
}

static void vanish(struct peer *p)
{
  close(p->fd);
  p->fd = -1;
}

static void start_peer(const struct addrinfo *ai, const char *topic,
                       uint64_t now)
{
  struct peer *p = NULL;
  for (unsigned i = 0; i < MAX_OPEN && p == NULL; i++)
    if (peers[i].fd < 0)
      p = &peers[i];
  if (p == NULL) {
    n_skipped++;
    return;
  }
  int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (fd >= 0)
      close(fd);
    n_skipped++;
    return;
  }
  p->fd = fd;
  p->kind = (int)(n_peers % 4);
  p->mid = (uint16_t)rand();
  p->token = (uint32_t)rand();
  p->until_ms = now + WAIT_MS;
  n_peers++;
  uint8_t buf[256];
  int len = build(p, topic, buf, sizeof buf);
  if (len < 0 || send(fd, buf, (size_t)len, 0) < 0)
    vanish(p); /* counted as not answered */
}

/* Reads what arrived for p; a response with its token ends the peer. */
static void on_input(struct peer *p)
{
  uint8_t buf[2048];
  for (int k = 0; k < 8; k++) {
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n <= 0)
      return;
    struct ck_msg m;
    uint32_t obs;
    if (ck_msg_parse(&m, buf, (size_t)n) < 0 || m.code == CK_CODE_EMPTY ||
        m.tkl != sizeof p->token || memcmp(m.token, &p->token, m.tkl) != 0)
      continue;
    n_answered++;
    if (ck_msg_opt_uint(&m, CK_OPT_OBSERVE, &obs) == 0)
      n_observing++;
    vanish(p);
    return;
  }
}

int main(int argc, char **argv)
{
  if (argc != 6) {
    fprintf(stderr, "usage: soak-churn HOST PORT SECONDS RATE TOPIC\n");
    return 2;
  }
  long secs = strtol(argv[3], NULL, 10);
  long rate = strtol(argv[4], NULL, 10);
  const char *topic = argv[5];
  if (secs <= 0 || secs > 86400 || rate <= 0 || rate > MAX_RATE ||
      strlen(topic) == 0 || strlen(topic) > 64) {
    fprintf(stderr, "soak-churn: bad SECONDS, RATE (1-%d) or TOPIC\n",
            MAX_RATE);
    return 2;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
  int rc = getaddrinfo(argv[1], argv[2], &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "soak-churn: %s: %s\n", argv[1], gai_strerror(rc));
    return 2;
  }
  srand((unsigned)now_ms());
  for (unsigned i = 0; i < MAX_OPEN; i++)
    peers[i].fd = -1;

  uint64_t t0 = now_ms(), end = t0 + (uint64_t)secs * 1000u;
  uint64_t next_tick = t0;
  unsigned long ticks = 0;
  /* Each peer's share of the rate: RATE/10 a tick, the remainder spread
   * by the tick's number so that the mean is RATE. */
  for (;;) {
    uint64_t now = now_ms();
    if (now >= end)
      break;
    if (now >= next_tick) {
      unsigned long want = (unsigned long)rate * (ticks + 1) / 10 -
                           (unsigned long)rate * ticks / 10;
      for (unsigned long k = 0; k < want; k++)
        start_peer(ai, topic, now);
      ticks++;
      next_tick = t0 + ticks * TICK_MS;
    }
    struct pollfd pf[MAX_OPEN];
    struct peer *pp[MAX_OPEN];
    nfds_t n = 0;
    for (unsigned i = 0; i < MAX_OPEN; i++) {
      if (peers[i].fd < 0)
        continue;
      if (peers[i].until_ms <= now) {
        n_timeouts++;
        vanish(&peers[i]);
        continue;
      }
      pf[n] = (struct pollfd){.fd = peers[i].fd, .events = POLLIN};
      pp[n++] = &peers[i];
    }
    int wait = next_tick > now ? (int)(next_tick - now) : 0;
    if (poll(pf, n, wait) < 0 && errno != EINTR)
      break;
    for (nfds_t i = 0; i < n; i++)
      if (pf[i].revents != 0)
        on_input(pp[i]);
  }
  for (unsigned i = 0; i < MAX_OPEN; i++)
    if (peers[i].fd >= 0)
      vanish(&peers[i]);
  freeaddrinfo(ai);
  printf("soak-churn peers=%lu answered=%lu observing=%lu timeouts=%lu "
         "skipped=%lu\n",
         n_peers, n_answered, n_observing, n_timeouts, n_skipped);
  return n_peers > 0 && n_answered * 10 >= n_peers * 9 ? 0 : 1;
}
