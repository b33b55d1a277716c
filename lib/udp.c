/* The UDP transport: one non-blocking socket per endpoint, read with
 * recvmmsg and written with sendmmsg in batches of CK__BATCH, so a busy
 * server makes two system calls per batch instead of two per request.
 * Datagrams are handed to the messaging layer through ck__input(), and
 * ICMP errors read from the socket's error queue through
 * ck__input_icmp(). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/error.h"
#include "ctx.h"

enum { MAX_REFUSED = 8 };

struct udp_ep {
  struct ck__ep ep; /* first: the seam passes struct ck__ep pointers */
  /* Destinations the kernel refused to send to (no route, a broadcast
   * address), told to the messaging layer from a timer: a flush can run
   * inside ck_client_send(), where no callback may fire. */
  struct ck__timer refused_timer;
  unsigned nrefused;
  struct ck_addr refused[MAX_REFUSED];
  struct mmsghdr smsg[CK__BATCH];
  struct iovec siov[CK__BATCH];
  struct ck_addr sto[CK__BATCH];
  uint8_t sbuf[CK__BATCH][CK__DGRAM_MAX];
  struct mmsghdr rmsg[CK__BATCH];
  struct iovec riov[CK__BATCH];
  struct ck_addr rfrom[CK__BATCH];
  uint8_t rctl[CK__BATCH][64];
  uint8_t rbuf[CK__BATCH][CK__DGRAM_MAX];
};

static struct udp_ep *udp(struct ck__ep *ep)
{
  return (struct udp_ep *)ep;
}

static uint8_t *udp_out_begin(struct ck__ep *ep, size_t *cap)
{
  if (ep->nsend == CK__BATCH)
    ep->tp->flush(ep);
  *cap = CK__DGRAM_MAX;
  return udp(ep)->sbuf[ep->nsend];
}

static int udp_out_commit(struct ck__ep *base, const struct ck_addr *to,
                          size_t len)
{
  struct udp_ep *ep = udp(base);
  unsigned i = base->nsend;
  ep->sto[i] = *to;
  ep->siov[i].iov_base = ep->sbuf[i];
  ep->siov[i].iov_len = len;
  struct msghdr *h = &ep->smsg[i].msg_hdr;
  h->msg_name = &ep->sto[i].u.sa;
  h->msg_namelen = to->len;
  h->msg_iov = &ep->siov[i];
  h->msg_iovlen = 1;
  h->msg_control = NULL;
  h->msg_controllen = 0;
  h->msg_flags = 0;
  base->nsend++;
  return 0;
}

/* A send refused this way will be refused again: the peer is as good as
 * unreachable. (ENOBUFS and the like are passing: plain loss.) */
static bool refused_for_good(int e)
{
  return e == ENETUNREACH || e == EHOSTUNREACH || e == EACCES ||
         e == EADDRNOTAVAIL || e == EAFNOSUPPORT || e == EPERM;
}

/* Errors an ICMP message sets on the socket, to be returned by its next
 * call whatever that call sends. */
static bool icmp_class(int e)
{
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
         e == EHOSTDOWN || e == EPROTO || e == EMSGSIZE;
}

static void tell_refused(struct ck__timer *t)
{
  struct udp_ep *ep =
    (struct udp_ep *)((char *)t - offsetof(struct udp_ep, refused_timer));
  struct ck_addr list[MAX_REFUSED];
  unsigned n = ep->nrefused;
  memcpy(list, ep->refused, n * sizeof list[0]);
  ep->nrefused = 0;
  for (unsigned i = 0; i < n; i++)
    ck__input_icmp(&ep->ep, &list[i], CK_EUNREACH);
}

static void note_refused(struct udp_ep *ep, const struct ck_addr *to)
{
  for (unsigned i = 0; i < ep->nrefused; i++)
    if (ck_addr_equal(&ep->refused[i], to))
      return;
  if (ep->nrefused == MAX_REFUSED)
    return; /* the rest time out like lost datagrams */
  ep->refused[ep->nrefused++] = *to;
  if (!ck__timer_active(&ep->refused_timer))
    ck__timer_start(&ep->ep.ctx->loop, &ep->refused_timer, 0, tell_refused);
}

static void udp_flush(struct ck__ep *base)
{
  struct udp_ep *ep = udp(base);
  unsigned off = 0, retried = UINT_MAX;
  /* Bounded: each round sends at least one datagram, drops one, or
   * retries one once. */
  while (off < base->nsend) {
    int n = sendmmsg(base->io.fd, ep->smsg + off, base->nsend - off, 0);
    if (n > 0) {
      base->ctx->stats.tx_datagrams += (unsigned)n;
      off += (unsigned)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    /* An ICMP error for an earlier datagram (another peer's closed port)
     * is reported by the next send on the socket, which then fails
     * unsent: the error belongs to the earlier peer, and the error queue
     * (IP_RECVERR) says which. Send the innocent datagram again, once. */
    if (n < 0 && icmp_class(errno) && retried != off) {
      retried = off;
      continue;
    }
    /* A datagram the kernel refuses (no buffer, unreachable peer) is
     * lost like any datagram; skip it and count it. When the peer cannot
     * be reached at all, say so as an ICMP error would, so that a call
     * moves on to its next address at once. */
    if (n < 0 && refused_for_good(errno))
      note_refused(ep, &ep->sto[off]);
    base->ctx->stats.tx_dropped++;
    off++;
  }
  base->nsend = 0;
}

static void udp_free(struct ck__ep *ep)
{
  ck__timer_stop(&ep->ctx->loop, &udp(ep)->refused_timer);
  if (ep->io.fd >= 0) {
    ck__backend_del(&ep->ctx->loop, &ep->io);
    close(ep->io.fd);
  }
  free(udp(ep));
}

static int udp_join(struct ck__ep *ep, const char *group, const char *ifname);

static const struct ck__transport udp_transport = {
  .name = "udp",
  .out_begin = udp_out_begin,
  .out_commit = udp_out_commit,
  .flush = udp_flush,
  .join = udp_join,
  .free = udp_free,
};

static bool dst_is_multicast(struct msghdr *h)
{
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      return IN_MULTICAST(ntohl(pi.ipi_addr.s_addr));
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      return IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr);
    }
  }
  return false;
}

/* Reads the socket's error queue (IP_RECVERR): an ICMP destination
 * unreachable for a peer we sent to fails that peer's exchanges at once
 * instead of leaving them to time out (RFC 7252 §4.2 allows it; users
 * want "unreachable", not a 93-second wait), and ends its observations. */
void ck__udp_drain_errors(struct ck__ep *ep)
{
  for (int i = 0; i < 64; i++) {
    struct ck_addr dest;
    uint8_t ctl[512], data[64];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr h = {.msg_name = &dest.u,
                       .msg_namelen = sizeof dest.u,
                       .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    if (recvmsg(ep->io.fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
      return;
    dest.len = h.msg_namelen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
      bool v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
      bool v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6)
        continue;
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      if (ee.ee_origin == SO_EE_ORIGIN_ICMP ||
          ee.ee_origin == SO_EE_ORIGIN_ICMP6)
        ck__input_icmp(ep, &dest, CK_EUNREACH);
    }
  }
}

static void udp_read(struct ck__io *io, unsigned events)
{
  struct udp_ep *ep = (struct udp_ep *)io;
  struct ck__ep *b = &ep->ep;
  if (!(events & CK__READ))
    return;
  /* epoll says EPOLLERR while the error queue holds something. */
  if (events & CK__ERROR)
    ck__udp_drain_errors(b);
  /* A bounded number of batches per wake-up keeps timers and other
   * endpoints served under flood. */
  for (int round = 0; round < 8; round++) {
    for (unsigned i = 0; i < CK__BATCH; i++) {
      struct msghdr *h = &ep->rmsg[i].msg_hdr;
      ep->riov[i].iov_base = ep->rbuf[i];
      ep->riov[i].iov_len = CK__DGRAM_MAX;
      h->msg_name = &ep->rfrom[i].u.sa;
      h->msg_namelen = sizeof ep->rfrom[i].u;
      h->msg_iov = &ep->riov[i];
      h->msg_iovlen = 1;
      h->msg_control = b->multicast ? ep->rctl[i] : NULL;
      h->msg_controllen = b->multicast ? sizeof ep->rctl[i] : 0;
      h->msg_flags = 0;
    }
    int n = recvmmsg(b->io.fd, ep->rmsg, CK__BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      break;
    b->ctx->stats.rx_datagrams += (unsigned)n;
    for (int i = 0; i < n; i++) {
      struct msghdr *h = &ep->rmsg[i].msg_hdr;
      ep->rfrom[i].len = h->msg_namelen;
      bool mc = b->multicast && dst_is_multicast(h);
      size_t len = ep->rmsg[i].msg_len;
      if (h->msg_flags & MSG_TRUNC)
        len = CK__DGRAM_MAX + 1; /* tells ck__input it was cut */
      ck__input(b, &ep->rfrom[i], ep->rbuf[i], len, mc);
    }
    b->tp->flush(b);
    if (n < CK__BATCH)
      break;
  }
}

int ck__udp_socket(struct ck_ctx *ctx, const struct ck_addr *addr, int *out)
{
  int fam = addr->u.sa.sa_family;
  if (fam != AF_INET && fam != AF_INET6)
    return CK_EINVAL;
  int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return CK_ESYS;
  int one = 1;
  if (fam == AF_INET6)
    /* [::] and 0.0.0.0 are separate endpoints, as libcoap has them. */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  int rcv = ctx->cfg.rcvbuf, snd = ctx->cfg.sndbuf;
  /* Best effort: without CAP_NET_ADMIN the kernel caps these at rmem_max,
   * which is still better than the default. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  if (bind(fd, &addr->u.sa, addr->len) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return CK_ESYS;
  }
  /* IP_RECVERR on every endpoint: a client learns that a server is
   * unreachable, a server that an observer has gone. */
  if (fam == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one);
  else
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
  *out = fd;
  return 0;
}

int ck__udp_open(struct ck_ctx *ctx, const struct ck_addr *addr,
                 struct ck__ep **out)
{
  int fd;
  int rc = ck__udp_socket(ctx, addr, &fd);
  if (rc < 0)
    return rc;
  struct udp_ep *u = calloc(1, sizeof *u);
  if (!u) {
    close(fd);
    return CK_ENOMEM;
  }
  struct ck__ep *ep = &u->ep;
  ep->ctx = ctx;
  ep->tp = &udp_transport;
  ep->io.fd = fd;
  ep->io.cb = udp_read;
  ep->local.len = sizeof ep->local.u;
  getsockname(fd, &ep->local.u.sa, &ep->local.len);
  rc = ck__backend_add(&ctx->loop, &ep->io, CK__READ);
  if (rc < 0) {
    close(fd);
    free(u);
    return rc;
  }
  *out = ep;
  return 0;
}

int ck__udp_open_client(struct ck_ctx *ctx, int family,
                        const struct ck_sockopt *opts, size_t nopts,
                        struct ck__ep **out)
{
  struct ck_addr any;
  ck_addr_parse(&any, family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", 0);
  int rc = ck__udp_open(ctx, &any, out);
  if (rc < 0)
    return rc;
  struct ck__ep *ep = *out;
  int fd = ep->io.fd;
  ep->client = true;
  for (size_t i = 0; i < nopts && opts[i].level; i++)
    if (setsockopt(fd, opts[i].level, opts[i].name, &opts[i].value,
                   sizeof opts[i].value) != 0) {
      int e = errno;
      ep->tp->free(ep);
      errno = e;
      return CK_ESYS;
    }
  return 0;
}

static int udp_join(struct ck__ep *ep, const char *group, const char *ifname)
{
  int fd = ep->io.fd;
  int one = 1;
  unsigned ifindex = ifname ? if_nametoindex(ifname) : 0;
  if (ifname && ifindex == 0)
    return CK_EINVAL;
  if (ep->local.u.sa.sa_family == AF_INET) {
    struct ip_mreqn m = {.imr_ifindex = (int)ifindex};
    if (inet_pton(AF_INET, group, &m.imr_multiaddr) != 1)
      return CK_EINVAL;
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0 &&
        errno != EADDRINUSE)
      return CK_ESYS;
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  } else {
    struct ipv6_mreq m = {.ipv6mr_interface = ifindex};
    if (inet_pton(AF_INET6, group, &m.ipv6mr_multiaddr) != 1)
      return CK_EINVAL;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) != 0 &&
        errno != EADDRINUSE)
      return CK_ESYS;
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  ep->multicast = true;
  return 0;
}
