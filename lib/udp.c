/* The UDP transport: one non-blocking socket per endpoint, read with
 * recvmmsg and written with sendmmsg in batches of CK__BATCH, so a busy
 * server makes two system calls per batch instead of two per request.
 * Datagrams are handed to the messaging layer through ck__input(), and
 * ICMP errors read from the socket's error queue through
 * ck__input_icmp().
 *
 * A listener of a context with workers (ck_ctx_config.workers > 1) is a
 * group of sockets bound to one address with SO_REUSEPORT: the kernel
 * gives each peer (by a hash of its addresses and ports) to one of them.
 * Each is read by a thread of its own instead of the loop: the thread
 * takes the context's gate (gate.h) only to hand its datagrams to
 * ck__input() and to take the answers they produced, and reads and
 * writes its socket outside it. The first socket is the listener
 * (ck_ctx_local_addr, ck_ctx_join); the others are its "siblings". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/error.h"
#include "ctx.h"
#include "gate.h"

enum { MAX_REFUSED = 8, WORKER_RCVTIMEO_MS = 100 };

/* A sendmmsg batch. A sibling has two: the one the protocol fills under
 * the gate and the one its worker sends outside it. */
struct udp_batch {
  struct mmsghdr smsg[CK__BATCH];
  struct iovec siov[CK__BATCH];
  struct ck_addr sto[CK__BATCH];
  uint8_t sbuf[CK__BATCH][CK__DGRAM_MAX];
};

/* What sending a batch came to, told to the context under the gate. */
struct send_result {
  unsigned sent, dropped, nrefused;
  struct ck_addr refused[MAX_REFUSED];
};

struct udp_worker {
  pthread_t thread;
  bool started;
  atomic_bool stop;
  struct udp_batch *spare; /* the batch being sent outside the gate */
  unsigned nspare;
  struct send_result res; /* of the last send, not yet told */
};

struct udp_ep {
  struct ck__ep ep; /* first: the seam passes struct ck__ep pointers */
  /* Destinations the kernel refused to send to (no route, a broadcast
   * address), told to the messaging layer from a timer: a flush can run
   * inside ck_client_send(), where no callback may fire. */
  struct ck__timer refused_timer;
  unsigned nrefused;
  struct ck_addr refused[MAX_REFUSED];
  struct udp_batch *sb; /* the batch being filled */
  struct udp_worker *worker; /* a sibling's; NULL otherwise */
  struct udp_batch sb0;
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
  return udp(ep)->sb->sbuf[ep->nsend];
}

static int udp_out_commit(struct ck__ep *base, const struct ck_addr *to,
                          size_t len)
{
  struct udp_batch *b = udp(base)->sb;
  unsigned i = base->nsend;
  b->sto[i] = *to;
  b->siov[i].iov_base = b->sbuf[i];
  b->siov[i].iov_len = len;
  struct msghdr *h = &b->smsg[i].msg_hdr;
  h->msg_name = &b->sto[i].u.sa;
  h->msg_namelen = to->len;
  h->msg_iov = &b->siov[i];
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

/* Sends n datagrams of b on fd and adds what came of it to r. Touches
 * nothing of the context: a worker calls it outside the gate. */
static void send_batch(int fd, struct udp_batch *b, unsigned n,
                       struct send_result *r)
{
  unsigned off = 0, retried = UINT_MAX;
  /* Bounded: each round sends at least one datagram, drops one, or
   * retries one once. MSG_DONTWAIT: a sibling's socket blocks for its
   * worker's reads, and a full send buffer is plain loss, as ever. */
  while (off < n) {
    int k = sendmmsg(fd, b->smsg + off, n - off, MSG_DONTWAIT);
    if (k > 0) {
      r->sent += (unsigned)k;
      off += (unsigned)k;
      continue;
    }
    if (k < 0 && errno == EINTR)
      continue;
    /* An ICMP error for an earlier datagram (another peer's closed port)
     * is reported by the next send on the socket, which then fails
     * unsent: the error belongs to the earlier peer, and the error queue
     * (IP_RECVERR) says which. Send the innocent datagram again, once. */
    if (k < 0 && icmp_class(errno) && retried != off) {
      retried = off;
      continue;
    }
    /* A datagram the kernel refuses (no buffer, unreachable peer) is
     * lost like any datagram; skip it and count it. When the peer cannot
     * be reached at all, say so as an ICMP error would, so that a call
     * moves on to its next address at once. */
    if (k < 0 && refused_for_good(errno) && r->nrefused < MAX_REFUSED)
      r->refused[r->nrefused++] = b->sto[off];
    r->dropped++;
    off++;
  }
}

static void tell_result(struct udp_ep *ep, struct send_result *r)
{
  ep->ep.ctx->stats.tx_datagrams += r->sent;
  ep->ep.ctx->stats.tx_dropped += r->dropped;
  for (unsigned i = 0; i < r->nrefused; i++)
    note_refused(ep, &r->refused[i]);
  r->sent = r->dropped = r->nrefused = 0;
}

static void udp_flush(struct ck__ep *base)
{
  struct udp_ep *ep = udp(base);
  struct send_result r = {0};
  send_batch(base->io.fd, ep->sb, base->nsend, &r);
  base->nsend = 0;
  tell_result(ep, &r);
}

static void udp_free(struct ck__ep *ep)
{
  struct udp_ep *u = udp(ep);
  ck__timer_stop(&ep->ctx->loop, &u->refused_timer);
  if (ep->io.fd >= 0) {
    ck__backend_del(&ep->ctx->loop, &ep->io); /* none for a worker's */
    close(ep->io.fd);
  }
  /* Its thread was joined by ck__udp_workers_stop(). */
  /* The two batches take turns: the allocated one is whichever of the
   * two is not sb0. */
  if (u->worker)
    free(u->sb == &u->sb0 ? u->worker->spare : u->sb);
  free(u->worker);
  free(u);
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

/* Points the receive batch at ep's buffers; with_ctl asks for each
 * datagram's destination (IP_PKTINFO, only a multicast listener gets
 * any). */
static void rx_prepare(struct udp_ep *ep, bool with_ctl)
{
  for (unsigned i = 0; i < CK__BATCH; i++) {
    struct msghdr *h = &ep->rmsg[i].msg_hdr;
    ep->riov[i].iov_base = ep->rbuf[i];
    ep->riov[i].iov_len = CK__DGRAM_MAX;
    h->msg_name = &ep->rfrom[i].u.sa;
    h->msg_namelen = sizeof ep->rfrom[i].u;
    h->msg_iov = &ep->riov[i];
    h->msg_iovlen = 1;
    h->msg_control = with_ctl ? ep->rctl[i] : NULL;
    h->msg_controllen = with_ctl ? sizeof ep->rctl[i] : 0;
    h->msg_flags = 0;
  }
}

/* Hands the n datagrams read into the batch to the messaging layer;
 * check_mc looks at each one's destination for a multicast group. */
static void rx_deliver(struct udp_ep *ep, int n, bool check_mc)
{
  struct ck__ep *b = &ep->ep;
  for (int i = 0; i < n; i++) {
    struct msghdr *h = &ep->rmsg[i].msg_hdr;
    ep->rfrom[i].len = h->msg_namelen;
    bool mc = check_mc && dst_is_multicast(h);
    size_t len = ep->rmsg[i].msg_len;
    if (h->msg_flags & MSG_TRUNC)
      len = CK__DGRAM_MAX + 1; /* tells ck__input it was cut */
    ck__input(b, &ep->rfrom[i], ep->rbuf[i], len, mc);
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
    rx_prepare(ep, b->multicast);
    int n = recvmmsg(b->io.fd, ep->rmsg, CK__BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
      break;
    b->ctx->stats.rx_datagrams += (unsigned)n;
    rx_deliver(ep, n, b->multicast);
    b->tp->flush(b);
    if (n < CK__BATCH)
      break;
  }
}

static int open_socket(struct ck_ctx *ctx, const struct ck_addr *addr,
                       bool reuseport, int *out)
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
  /* Before bind: every socket of a listener's group must say so. */
  if (reuseport)
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
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

int ck__udp_socket(struct ck_ctx *ctx, const struct ck_addr *addr, int *out)
{
  return open_socket(ctx, addr, false, out);
}

/* Opens one UDP endpoint; one a worker will read is left off the loop. */
static int open_ep(struct ck_ctx *ctx, const struct ck_addr *addr,
                   bool reuseport, bool sibling, bool on_loop,
                   struct ck__ep **out)
{
  int fd;
  int rc = open_socket(ctx, addr, reuseport, &fd);
  if (rc < 0)
    return rc;
  struct udp_ep *u = calloc(1, sizeof *u);
  if (!u) {
    close(fd);
    return CK_ENOMEM;
  }
  struct ck__ep *ep = &u->ep;
  u->sb = &u->sb0;
  ep->ctx = ctx;
  ep->tp = &udp_transport;
  ep->io.fd = fd;
  ep->io.cb = udp_read;
  ep->sibling = sibling;
  ep->local.len = sizeof ep->local.u;
  getsockname(fd, &ep->local.u.sa, &ep->local.len);
  rc = !on_loop ? 0 : ck__backend_add(&ctx->loop, &ep->io, CK__READ);
  if (rc < 0) {
    close(fd);
    free(u);
    return rc;
  }
  *out = ep;
  return 0;
}

int ck__udp_open(struct ck_ctx *ctx, const struct ck_addr *addr,
                 struct ck__ep **out)
{
  return open_ep(ctx, addr, false, false, true, out);
}

/* A sibling's thread: read a batch without the gate, hand it to the
 * protocol under the gate, send the answers without it. */
static void *worker_main(void *arg)
{
  struct udp_ep *ep = arg;
  struct udp_worker *w = ep->worker;
  struct ck__ep *b = &ep->ep;
  struct ck_ctx *ctx = b->ctx;
  struct ck__gate *g = ctx->loop.gate;
  while (!atomic_load(&w->stop)) {
    /* Asks for the destination always: the first socket may join a
     * group while its worker waits in recvmmsg. */
    rx_prepare(ep, true);
    /* Blocks for the first datagram, up to SO_RCVTIMEO, so that the
     * stop flag and the last send's counts are seen in time. */
    int n = recvmmsg(b->io.fd, ep->rmsg, CK__BATCH, MSG_WAITFORONE, NULL);
    int e = errno;
    bool failed = n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR;
    bool told = w->res.sent || w->res.dropped || w->res.nrefused;
    if (n <= 0 && !failed && !told)
      continue;
    ck__gate_acquire(g);
    if (atomic_load(&w->stop)) {
      ck__gate_release(g);
      break;
    }
    /* The loop's clock stood still while it slept. */
    ck__loop_update(&ctx->loop);
    ctx->loop.depth++;
    tell_result(ep, &w->res);
    /* An ICMP error fails the next read (IP_RECVERR): its source is in
     * the error queue. */
    if (failed)
      ck__udp_drain_errors(b);
    if (n > 0)
      ctx->stats.rx_datagrams += (unsigned)n;
    rx_deliver(ep, n, true);
    ctx->loop.depth--;
    /* Answers to peers of other sockets (notifications a handler made)
     * leave now, under the gate; this socket's after it. */
    for (struct ck__ep *o = ctx->eps; o; o = o->next)
      if (o != b && o->nsend)
        o->tp->flush(o);
    if (b->nsend) {
      struct udp_batch *full = ep->sb;
      ep->sb = w->spare;
      w->spare = full;
      w->nspare = b->nsend;
      b->nsend = 0;
    }
    ck__gate_kick(&ctx->loop);
    ck__gate_release(g);
    if (w->nspare) {
      send_batch(b->io.fd, w->spare, w->nspare, &w->res);
      w->nspare = 0;
    }
  }
  return NULL;
}

/* Gives ep a thread of its own that reads it. */
static int start_worker(struct udp_ep *ep)
{
  int fd = ep->ep.io.fd, zero = 0;
  struct timeval tv = {.tv_usec = WORKER_RCVTIMEO_MS * 1000};
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return CK_ESYS;
  /* Multicast goes to the first socket alone (ck_ctx_join): without
   * this, every socket bound to the port would get a copy of each
   * group's datagrams and answer it. */
  if (!ep->ep.sibling)
    ;
  else if (ep->ep.local.u.sa.sa_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof zero);
  else
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  struct udp_worker *w = calloc(1, sizeof *w);
  if (!w)
    return CK_ENOMEM;
  w->spare = malloc(sizeof *w->spare);
  if (!w->spare) {
    free(w);
    return CK_ENOMEM;
  }
  atomic_init(&w->stop, false);
  ep->worker = w;
  /* The thread starts with every signal blocked, so that the
   * application's handlers run on its own threads, as without workers. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&w->thread, NULL, worker_main, ep);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0)
    return CK_ESYS;
  w->started = true;
  return 0;
}

int ck__udp_listen(struct ck_ctx *ctx, const struct ck_addr *addr,
                   struct ck__ep **out)
{
  unsigned n = ctx->cfg.workers;
  if (n <= 1)
    return ck__udp_open(ctx, addr, out);
  struct ck__ep *first, **tail;
  /* The first socket has a worker too: the loop's thread would read and
   * write it holding the gate, and the kernel's work on it, the larger
   * part of each request, would be serialized. */
  int rc = open_ep(ctx, addr, true, false, false, &first);
  if (rc < 0)
    return rc;
  rc = start_worker(udp(first));
  tail = &first->next;
  /* The siblings bind to the first one's address, its port now known. */
  for (unsigned i = 1; i < n && rc == 0; i++) {
    rc = open_ep(ctx, &first->local, true, true, false, tail);
    if (rc == 0) {
      rc = start_worker(udp(*tail));
      tail = &(*tail)->next;
    }
  }
  if (rc < 0) {
    int e = errno;
    ck__udp_workers_stop(ctx, first);
    while (first) {
      struct ck__ep *next = first->next;
      first->tp->free(first);
      first = next;
    }
    errno = e;
    return rc;
  }
  *out = first;
  return 0;
}

void ck__udp_workers_stop(struct ck_ctx *ctx, struct ck__ep *eps)
{
  bool any = false;
  for (struct ck__ep *ep = eps; ep; ep = ep->next) {
    struct udp_worker *w = ep->tp == &udp_transport ? udp(ep)->worker : NULL;
    if (w && w->started) {
      atomic_store(&w->stop, true);
      /* Wakes a read that blocks (on UDP, shutdown() fails with
       * ENOTCONN but marks the socket and wakes its readers). */
      shutdown(ep->io.fd, SHUT_RD);
      any = true;
    }
  }
  if (!any)
    return;
  /* The caller holds the gate; a worker waiting for it must get it to
   * see the flag. */
  ck__gate_release(ctx->loop.gate);
  for (struct ck__ep *ep = eps; ep; ep = ep->next) {
    struct udp_worker *w = ep->tp == &udp_transport ? udp(ep)->worker : NULL;
    if (w && w->started) {
      pthread_join(w->thread, NULL);
      w->started = false;
    }
  }
  ck__gate_acquire(ctx->loop.gate);
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
