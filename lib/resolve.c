/* Name resolution with c-ares, driven by the context's loop (resolve.h
 * tells the story and the contract). c-ares owns the DNS protocol, the
 * hosts file and RFC 6724 ordering; this file only plugs its sockets and
 * timeouts into the loop, bounds what it may hold, and makes every answer
 * arrive through a loop timer so that no callback ever runs inside
 * ck__resolve_start or inside c-ares.
 *
 * A request lives until both sides are done with it: the caller (who is
 * detached once the callback ran or the request was cancelled) and c-ares
 * (which owes a callback for every query it started, even after we gave
 * up waiting). */
#include <ares.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctx.h"
#include "resolve.h"

/* c-ares opens one UDP socket per DNS server, plus a TCP one when an
 * answer is truncated; resolv.conf lists at most 3 servers. */
enum { MAX_SOCKS = 16 };

/* One c-ares socket watched by the loop. Slots are never freed before the
 * resolver: an event already fetched by the backend for a socket c-ares
 * closed meanwhile must land on valid memory, and finds used == false. */
struct slot {
  struct ck__io io; /* first, so the backend's pointer is the slot's */
  struct ck__resolver *r;
  bool used;
};

struct ck__resolve_req {
  struct ck__timer timer; /* first; the deadline, then 0 ms to deliver */
  struct ck__resolver *r;
  struct ck__resolve_req *prev, *next;
  ck__resolve_cb cb; /* NULL once the caller is gone */
  void *user;
  bool in_ares; /* c-ares still owes its callback */
  bool done;    /* err and addrs are final, delivery is armed */
  uint16_t port;
  int err;
  size_t n;
  struct ck_addr addrs[CK__RESOLVE_MAX_ADDRS];
};

struct ck__resolver {
  struct ck_ctx *ctx;
  ares_channel ch;        /* opened on the first name, NULL before */
  struct ck__timer timer; /* c-ares's next timeout */
  struct ck__resolve_req *reqs;
  unsigned nreqs;
  bool closing;
  struct slot slots[MAX_SOCKS];
};

static struct ck__loop *loop_of(struct ck__resolver *r)
{
  return &r->ctx->loop;
}

static void unlink_free(struct ck__resolve_req *req)
{
  struct ck__resolver *r = req->r;
  if (req->prev)
    req->prev->next = req->next;
  else
    r->reqs = req->next;
  if (req->next)
    req->next->prev = req->prev;
  r->nreqs--;
  free(req);
}

static void on_ares_timer(struct ck__timer *t);

/* Arms the loop timer for c-ares's next timeout, rounded up so that we
 * never wake a little early and spin until it is really due. */
static void arm(struct ck__resolver *r)
{
  struct timeval tv;
  if (!r->ch || !ares_timeout(r->ch, NULL, &tv)) {
    ck__timer_stop(loop_of(r), &r->timer);
    return;
  }
  uint64_t ms =
    (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
  ck__timer_start(loop_of(r), &r->timer, ms, on_ares_timer);
}

static void on_ares_timer(struct ck__timer *t)
{
  struct ck__resolver *r =
    (struct ck__resolver *)((char *)t - offsetof(struct ck__resolver, timer));
  /* No descriptor: c-ares only looks at its timeouts. */
  ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  arm(r);
}

static void on_io(struct ck__io *io, unsigned events)
{
  struct slot *s = (struct slot *)io;
  if (!s->used)
    return;
  struct ck__resolver *r = s->r;
  ares_socket_t fd = io->fd;
  ares_process_fd(r->ch, events & CK__READ ? fd : ARES_SOCKET_BAD,
                  events & CK__WRITE ? fd : ARES_SOCKET_BAD);
  arm(r);
}

/* c-ares tells which of its sockets want what; both false means the
 * socket is about to be closed. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
  struct ck__resolver *r = data;
  unsigned ev = (readable ? CK__READ : 0u) | (writable ? CK__WRITE : 0u);
  struct slot *s = NULL, *free_slot = NULL;
  for (size_t i = 0; i < MAX_SOCKS; i++) {
    if (r->slots[i].used && r->slots[i].io.fd == fd)
      s = &r->slots[i];
    else if (!r->slots[i].used && !free_slot)
      free_slot = &r->slots[i];
  }
  if (s && ev == 0) {
    ck__backend_del(loop_of(r), &s->io);
    s->used = false;
    s->io.fd = -1;
  } else if (s) {
    (void)ck__backend_mod(loop_of(r), &s->io, ev);
  } else if (ev && free_slot) {
    free_slot->io.fd = fd;
    free_slot->io.cb = on_io;
    free_slot->r = r;
    /* If the backend refuses, the socket goes unwatched and its query
     * ends by c-ares's timeout, which the timer still drives. */
    free_slot->used = ck__backend_add(loop_of(r), &free_slot->io, ev) == 0;
  }
  /* No free slot: the same as a refusal above. Cannot happen with
   * resolv.conf's 3 servers. */
}

static int channel_open(struct ck__resolver *r)
{
  /* ares_library_init is needed only on Windows; it is also not
   * thread-safe in c-ares 1.18, and contexts may live in several threads,
   * so it is not called. */
  struct ares_options o;
  memset(&o, 0, sizeof o);
  o.timeout = CK__RESOLVE_TRY_MS;
  o.tries = CK__RESOLVE_TRIES;
  o.sock_state_cb = sock_state;
  o.sock_state_cb_data = r;
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  int st = ares_init_options(&r->ch, &o, mask);
  if (st != ARES_SUCCESS) {
    r->ch = NULL;
    return st == ARES_ENOMEM ? CK_ENOMEM : CK_ESYS;
  }
  const char *servers = secure_getenv("CK_DNS_SERVERS");
  if (servers && *servers &&
      ares_set_servers_ports_csv(r->ch, servers) != ARES_SUCCESS) {
    ares_destroy(r->ch);
    r->ch = NULL;
    return CK_EINVAL;
  }
  return 0;
}

static int resolver_get(struct ck_ctx *ctx, struct ck__resolver **out)
{
  if (!ctx->resolver) {
    struct ck__resolver *r = calloc(1, sizeof *r);
    if (!r)
      return CK_ENOMEM;
    r->ctx = ctx;
    for (size_t i = 0; i < MAX_SOCKS; i++)
      r->slots[i].io.fd = -1;
    ctx->resolver = r;
  }
  *out = ctx->resolver;
  return 0;
}

static int map_status(int st)
{
  switch (st) {
  case ARES_ETIMEOUT:
    return CK_ETIMEDOUT;
  case ARES_ECONNREFUSED:
    return CK_EUNREACH;
  case ARES_ENOMEM:
    return CK_ENOMEM;
  default:
    /* ENOTFOUND (NXDOMAIN), ENODATA, and the server's own failures
     * (SERVFAIL, REFUSED, a malformed answer): the name does not resolve
     * to anything we could try. */
    return CK_EURI_HOST;
  }
}

/* Copies c-ares's ordered list, dropping duplicates (a hosts file and DNS
 * can repeat an address) and what is neither IPv4 nor IPv6. */
static void take_nodes(struct ck__resolve_req *req,
                       const struct ares_addrinfo *ai)
{
  const struct ares_addrinfo_node *nd = ai ? ai->nodes : NULL;
  for (; nd && req->n < CK__RESOLVE_MAX_ADDRS; nd = nd->ai_next) {
    struct ck_addr a;
    memset(&a, 0, sizeof a);
    if (nd->ai_family == AF_INET && nd->ai_addrlen >= sizeof a.u.in4) {
      memcpy(&a.u.in4, nd->ai_addr, sizeof a.u.in4);
      a.u.in4.sin_port = htons(req->port);
      a.len = sizeof a.u.in4;
    } else if (nd->ai_family == AF_INET6 && nd->ai_addrlen >= sizeof a.u.in6) {
      memcpy(&a.u.in6, nd->ai_addr, sizeof a.u.in6);
      a.u.in6.sin6_port = htons(req->port);
      a.len = sizeof a.u.in6;
    } else {
      continue;
    }
    bool dup = false;
    for (size_t i = 0; i < req->n && !dup; i++)
      dup = ck_addr_equal(&req->addrs[i], &a);
    if (!dup)
      req->addrs[req->n++] = a;
  }
}

static void on_req_timer(struct ck__timer *t);

static void finish(struct ck__resolve_req *req)
{
  req->done = true;
  /* Deliver from the loop, never from inside c-ares or from inside
   * ck__resolve_start (c-ares answers from the hosts file at once). */
  ck__timer_start(loop_of(req->r), &req->timer, 0, on_req_timer);
}

static void on_ares(void *arg, int status, int timeouts,
                    struct ares_addrinfo *ai)
{
  (void)timeouts;
  struct ck__resolve_req *req = arg;
  req->in_ares = false;
  if (!req->cb || req->r->closing || status == ARES_EDESTRUCTION ||
      status == ARES_ECANCELLED) {
    ares_freeaddrinfo(ai);
    ck__timer_stop(loop_of(req->r), &req->timer);
    unlink_free(req);
    return;
  }
  if (status == ARES_SUCCESS) {
    take_nodes(req, ai);
    req->err = req->n ? 0 : CK_EURI_HOST;
  } else {
    req->err = map_status(status);
  }
  ares_freeaddrinfo(ai);
  finish(req);
}

static void on_req_timer(struct ck__timer *t)
{
  struct ck__resolve_req *req = (struct ck__resolve_req *)t;
  ck__resolve_cb cb = req->cb;
  void *user = req->user;
  struct ck_addr addrs[CK__RESOLVE_MAX_ADDRS];
  size_t n = 0;
  int err = CK_ETIMEDOUT; /* the deadline, unless a result is in */
  if (req->done) {
    err = req->err;
    n = req->n;
    memcpy(addrs, req->addrs, n * sizeof addrs[0]);
  }
  req->cb = NULL;
  /* Free before calling back, so that the callback may start, cancel or
   * free anything. A query c-ares still runs keeps the request until
   * c-ares lets go of it. */
  if (!req->in_ares)
    unlink_free(req);
  cb(user, err, n ? addrs : NULL, n);
}

/* Returns 1 and fills *a for a literal address, 0 for a name to look up,
 * or CK_EURI_HOST for something that is neither. */
static int literal(const char *host, uint16_t port, struct ck_addr *a)
{
  const char *colon = strchr(host, ':');
  if (host[0] == '[' || (colon && !strchr(colon + 1, ':')))
    return CK_EURI_HOST;
  /* With no colon ck_addr_parse can only find an IPv4 address; with
   * several it reads a bare IPv6 one, %zone included. */
  if (ck_addr_parse(a, host, port) == 0)
    return 1;
  return colon ? CK_EURI_HOST : 0;
}

int ck__resolve_start(struct ck_ctx *ctx, const char *host, uint16_t port,
                      int family, ck__resolve_cb cb, void *user,
                      struct ck__resolve_req **out)
{
  if (!ctx || !host || !cb ||
      (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
    return CK_EINVAL;
  /* RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 as
   * text; an IPv6 literal with a zone is shorter. */
  size_t len = strnlen(host, 254);
  if (len == 0 || len > 253)
    return CK_EINVAL;
  struct ck_addr a;
  int lit = literal(host, port, &a);
  if (lit < 0)
    return lit;
  struct ck__resolver *r;
  int rc = resolver_get(ctx, &r);
  if (rc < 0)
    return rc;
  if (r->nreqs >= CK__RESOLVE_MAX_PENDING)
    return CK_EFULL;
  if (!lit && !r->ch && (rc = channel_open(r)) < 0)
    return rc;
  struct ck__resolve_req *req = calloc(1, sizeof *req);
  if (!req)
    return CK_ENOMEM;
  req->r = r;
  req->cb = cb;
  req->user = user;
  req->port = port;
  req->next = r->reqs;
  if (r->reqs)
    r->reqs->prev = req;
  r->reqs = req;
  r->nreqs++;
  if (out)
    *out = req;
  if (lit) {
    if (family == AF_UNSPEC || family == a.u.sa.sa_family) {
      req->addrs[0] = a;
      req->n = 1;
    } else {
      req->err = CK_EURI_HOST;
    }
    finish(req);
    return 0;
  }
  /* The deadline first: if c-ares answers at once (the hosts file), on_ares
   * re-arms the same timer for delivery. */
  ck__timer_start(&ctx->loop, &req->timer, CK__RESOLVE_DEADLINE_MS,
                        on_req_timer);
  req->in_ares = true;
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  ares_getaddrinfo(r->ch, host, NULL, &hints, on_ares, req);
  arm(r);
  return 0;
}

void ck__resolve_cancel(struct ck__resolve_req *req)
{
  if (!req)
    return;
  req->cb = NULL;
  ck__timer_stop(loop_of(req->r), &req->timer);
  if (!req->in_ares)
    unlink_free(req);
}

void ck__resolve_free(struct ck_ctx *ctx)
{
  struct ck__resolver *r = ctx->resolver;
  if (!r)
    return;
  r->closing = true;
  /* c-ares ends every query with ARES_EDESTRUCTION, and on_ares frees
   * those requests; its sockets leave the loop through sock_state. */
  if (r->ch)
    ares_destroy(r->ch);
  while (r->reqs) {
    ck__timer_stop(loop_of(r), &r->reqs->timer);
    unlink_free(r->reqs);
  }
  ck__timer_stop(loop_of(r), &r->timer);
  for (size_t i = 0; i < MAX_SOCKS; i++)
    if (r->slots[i].used)
      ck__backend_del(loop_of(r), &r->slots[i].io);
  free(r);
  ctx->resolver = NULL;
}
