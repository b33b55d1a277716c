/* A small DNS server for unit tests, shared by test_resolve.c and
 * test_client_resolve.c: it answers A and AAAA questions for the names of
 * a table the test gives (every other name is NXDOMAIN; a name without
 * records of the type asked is NODATA), on 127.0.0.1 with an ephemeral
 * port, from a thread of its own, so that a resolver that blocked the
 * loop would show as a stalled ck_ctx_process, not as a deadlock. Names
 * marked slow are answered after DNS_SLOW_MS. c-ares is pointed at it
 * with CK_DNS_SERVERS (dns_use()). Header-only: each test includes it
 * once; its functions are static inline so that one that a test does
 * not use draws no warning. */
#ifndef CK_TEST_DNS_SERVER_H
#define CK_TEST_DNS_SERVER_H

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { DNS_SLOW_MS = 600, DNS_MAX_HELD = 160, DNS_MAX_RR = 16 };

/* One name the server knows; the lists end at the first NULL. */
struct dns_name {
  const char *name;
  const char *a[DNS_MAX_RR];
  const char *aaaa[DNS_MAX_RR];
  bool slow;
};

static inline uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct dns_held {
  uint64_t due;
  struct sockaddr_storage to;
  socklen_t tolen;
  size_t len;
  uint8_t buf[512];
};

static struct {
  int fd;
  uint16_t port;
  pthread_t th;
  const struct dns_name *names; /* ends with a NULL name */
  atomic_bool stop;
  atomic_uint queries;  /* every datagram received */
  atomic_uint answered; /* every answer sent, held ones included */
  atomic_uint holding;  /* answers held back, not sent yet */
  struct dns_held held[DNS_MAX_HELD];
  unsigned nheld;
} dns;

static inline size_t dns_put16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return 2;
}

/* Appends one answer record (the name is a pointer to the question);
 * returns its length, or 0 for an address that does not parse. */
static inline size_t dns_rr(uint8_t *p, int family, const char *ip)
{
  uint8_t rdata[16];
  if (inet_pton(family, ip, rdata) != 1)
    return 0;
  uint16_t len = family == AF_INET ? 4 : 16;
  size_t o = dns_put16(p, 0xc00c);
  o += dns_put16(p + o, family == AF_INET ? 1 : 28);
  o += dns_put16(p + o, 1); /* IN */
  o += dns_put16(p + o, 0);
  o += dns_put16(p + o, 60); /* TTL */
  o += dns_put16(p + o, len);
  memcpy(p + o, rdata, len);
  return o + len;
}

/* Builds the answer to query q into out; returns its length (0: drop)
 * and sets *slow for names answered late. */
static inline size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out,
                                bool *slow)
{
  char name[256];
  size_t nlen = 0, o = 12;
  *slow = false;
  if (qlen < 17)
    return 0;
  while (o < qlen && q[o] != 0) {
    size_t l = q[o];
    if (l > 63 || o + 1 + l >= qlen || nlen + l + 1 >= sizeof name)
      return 0;
    if (nlen)
      name[nlen++] = '.';
    memcpy(name + nlen, q + o + 1, l);
    nlen += l;
    o += 1 + l;
  }
  name[nlen] = '\0';
  if (o + 5 > qlen)
    return 0;
  uint16_t qtype = (uint16_t)(q[o + 1] << 8 | q[o + 2]);
  size_t qend = o + 5;

  uint8_t an[DNS_MAX_RR * 28];
  size_t alen = 0;
  unsigned count = 0, rcode = 3; /* NXDOMAIN unless the name is known */
  for (const struct dns_name *d = dns.names; d && d->name; d++) {
    if (strcasecmp(name, d->name) != 0)
      continue;
    rcode = 0;
    *slow = d->slow;
    const char *const *ips = qtype == 1 ? d->a : qtype == 28 ? d->aaaa : NULL;
    int family = qtype == 1 ? AF_INET : AF_INET6;
    for (unsigned i = 0; ips && i < DNS_MAX_RR && ips[i]; i++) {
      size_t n = dns_rr(an + alen, family, ips[i]);
      alen += n;
      count += n > 0;
    }
    break;
  }
  memcpy(out, q, qend);
  out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
  out[3] = (uint8_t)(0x80 | rcode);         /* RA */
  dns_put16(out + 4, 1);
  dns_put16(out + 6, (uint16_t)count);
  dns_put16(out + 8, 0);
  dns_put16(out + 10, 0);
  memcpy(out + qend, an, alen);
  return qend + alen;
}

static inline void *dns_main(void *arg)
{
  (void)arg;
  /* Bounded by the stop flag, which dns_stop() sets. */
  while (!atomic_load(&dns.stop)) {
    struct pollfd p = {.fd = dns.fd, .events = POLLIN};
    if (poll(&p, 1, 5) > 0) {
      uint8_t q[512], out[512 + DNS_MAX_RR * 28];
      struct sockaddr_storage from;
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(dns.fd, q, sizeof q, 0, (struct sockaddr *)&from,
                           &fl);
      if (n > 0) {
        atomic_fetch_add(&dns.queries, 1);
        bool slow;
        size_t len = dns_answer(q, (size_t)n, out, &slow);
        if (len && slow && len <= sizeof dns.held[0].buf &&
            dns.nheld < DNS_MAX_HELD) {
          struct dns_held *h = &dns.held[dns.nheld++];
          h->due = now_ms() + DNS_SLOW_MS;
          h->to = from;
          h->tolen = fl;
          h->len = len;
          memcpy(h->buf, out, len);
          atomic_fetch_add(&dns.holding, 1);
        } else if (len) {
          sendto(dns.fd, out, len, 0, (struct sockaddr *)&from, fl);
          atomic_fetch_add(&dns.answered, 1);
        }
      }
    }
    uint64_t now = now_ms();
    for (unsigned i = 0; i < dns.nheld;) {
      struct dns_held *h = &dns.held[i];
      if (h->due > now) {
        i++;
        continue;
      }
      sendto(dns.fd, h->buf, h->len, 0, (struct sockaddr *)&h->to, h->tolen);
      atomic_fetch_add(&dns.answered, 1);
      atomic_fetch_sub(&dns.holding, 1);
      dns.held[i] = dns.held[--dns.nheld];
    }
  }
  return NULL;
}

/* A UDP socket bound to ip (an IPv4 address) and port (0: ephemeral,
 * stored back in *port); -1 if the bind fails. */
static inline int udp_bound_at(const char *ip, uint16_t *port)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
  socklen_t l = sizeof sa;
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &l) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Starts the server with a table of names (ending with a NULL name; it
 * must outlive the server). Returns 0, or -1. */
static inline int dns_start(const struct dns_name *names)
{
  dns.port = 0;
  dns.fd = udp_bound_at("127.0.0.1", &dns.port);
  if (dns.fd < 0)
    return -1;
  dns.names = names;
  dns.nheld = 0;
  atomic_store(&dns.stop, false);
  return pthread_create(&dns.th, NULL, dns_main, NULL) == 0 ? 0 : -1;
}

static inline void dns_stop(void)
{
  atomic_store(&dns.stop, true);
  pthread_join(dns.th, NULL);
  close(dns.fd);
}

/* Points contexts created from now on at these DNS servers. */
static inline void dns_use_servers(const char *csv)
{
  setenv("CK_DNS_SERVERS", csv, 1);
}

/* Points contexts created from now on at our server. */
static inline void dns_use(void)
{
  char csv[64];
  snprintf(csv, sizeof csv, "127.0.0.1:%u", dns.port);
  dns_use_servers(csv);
}

#endif
