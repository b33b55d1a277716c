/* The DTLS transport (RFC 6347, for coaps:// as RFC 7252 §9 has it):
 * one UDP socket per endpoint, and on it one session per peer address,
 * found through a hash table. It sits behind struct ck__transport like
 * udp.c, so the messaging layer above neither knows nor cares: what
 * arrives is decrypted before ck__input(), and what the layers above
 * commit is encrypted and sent at once (out_commit), one record per
 * CoAP message.
 *
 * A server keeps nothing for a peer until the peer has returned a
 * HelloVerifyRequest cookie (RFC 6347 §4.2.1): a ClientHello without a
 * valid cookie is answered statelessly, so a spoofed source can neither
 * fill the table nor use us to amplify. Sessions are capped
 * (max_sessions, logged once when reached) and dropped after
 * idle_timeout_ms of silence. A ClientHello with a valid cookie from
 * the address of an established session replaces it: the client lost
 * its state and started again (RFC 6347 §4.2.8).
 *
 * A client's session to a server is made on the first coaps:// call to
 * it (ck__dtls_connect) and lives until ck_client_disconnect() or the
 * client's end; messages sent while the handshake runs wait in a short
 * queue. When the handshake fails, its reason goes up as if an ICMP
 * error had come for the server (ck__input_icmp), from the session's
 * timer, so that no callback fires inside a send; the session starts
 * over on the next message. A peer's close_notify, or idleness, closes
 * the client's session the same way, without failing anything, and so
 * does a server that stopped answering (it may have restarted): the
 * third sending of a CON without a record back, or records unanswered
 * for seconds, start a new handshake. A new
 * session offers the last one's ticket, so that a server with session
 * tickets (RFC 5077) resumes it without a full handshake.
 *
 * A server session with an AEAD suite (AES-GCM, AES-CCM, AES-CCM-8:
 * what CoAP devices use) keeps GnuTLS only for its handshake: once the
 * client's first application record shows that it has our last flight
 * (RFC 6347 §4.2.4: until then a lost Finished must be sent again), or
 * at once after a resumption, where the client's Finished came last,
 * its record state is taken out, the GnuTLS session freed, and
 * dtls_rec.c runs its records: about 10 KB less per session. Other
 * suites and every client session stay with GnuTLS.
 *
 * Each session has one timer: the handshake's retransmissions
 * (gnutls_dtls_get_timeout), then idle expiry, then the deferred report
 * of a failure. GnuTLS itself is behind dtls_gnutls.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coapkit/error.h"
#include "ctx.h"
#include "dtls.h"
#include "srv.h"

/* Messages a client session holds while its handshake runs, and the
 * largest plaintext of one record (a 1024-byte block with its options
 * fits; the record stays under CK__DTLS_MTU). */
enum { QUEUE_MAX = 8, PLAIN_MAX = 1280, BUCKETS_MIN = 64, READ_MAX = 256 };

/* Initialised ciphers a server keeps for its busiest sessions
 * (dtls_rec.c); each is a few kilobytes, an idle session's keys about
 * 100 bytes. */
enum { CIPHER_CACHE = 64 };

/* Record content types (RFC 5246 §6.2.1) and the close_notify alert. */
enum { CT_ALERT = 21, CT_APP = 23, AL_WARNING = 1, AL_CLOSE_NOTIFY = 0 };

enum sess_state {
  S_IDLE,      /* client: no handshake yet, or closed */
  S_HANDSHAKE, /* the handshake runs */
  S_OPEN,      /* established */
  S_DEAD,      /* server: to be freed by its timer */
};

struct sess {
  struct ck__timer timer; /* first: the timer callback casts back */
  struct dtls_ep *ep;
  struct sess *hnext;
  struct ck_addr peer;
  struct ck__tls *tls; /* NULL once rec runs the records */
  struct ck__rec rec;  /* server: the own record layer, when !tls */
  enum sess_state state;
  bool opened; /* server: a handshake completed (it may have observers) */
  int report;        /* client: an error to report from the timer */
  const uint8_t *in; /* the datagram being fed to GnuTLS */
  size_t in_len;
  uint64_t last_active; /* open: the last record in or out (idle
                         * expiry, as libcoap counts it, so that an
                         * observer fed NON notifications keeps its
                         * session); handshake: its start */
  char *name;           /* client: the name the server's certificate
                         * must carry */
  uint8_t *ticket;      /* client: to resume the last session with */
  size_t ticket_len;
  uint64_t last_rx;    /* client: the last record from the server */
  unsigned unanswered; /* client: records sent since then */
  uint16_t con_mid;    /* client: the first CON sent since then, */
  uint8_t con_sends;   /* and how often it went */
  uint8_t nq;
  uint16_t qlen[QUEUE_MAX];
  uint8_t *q[QUEUE_MAX];
  enum ck_security mode;
  char id[CK__DTLS_ID_MAX + 1];
};

struct dtls_ep {
  struct ck__ep ep; /* first: the seam passes struct ck__ep pointers */
  struct ck__tls_creds *cr;
  bool server;
  bool own_creds;
  bool full_logged;
  uint32_t max_sessions, idle_ms, handshake_ms;
  struct sess **buckets;
  size_t nbuckets, count;
  struct ck__rec_cache *ciphers; /* server */
  uint8_t plain[CK__DGRAM_MAX];
  uint8_t enc[CK__DGRAM_MAX];
  uint8_t rbuf[CK__DGRAM_MAX];
  uint8_t dec[CK__DGRAM_MAX];
};

static struct dtls_ep *dep(struct ck__ep *ep)
{
  return (struct dtls_ep *)ep;
}

static struct ck_dtls_stats *stats(struct dtls_ep *ep)
{
  return &ep->ep.ctx->dtls_stats;
}

/* --- the session table --- */

static struct sess **bucket(struct dtls_ep *ep, const struct ck_addr *a)
{
  return &ep->buckets[ck_addr_hash(a) & (ep->nbuckets - 1)];
}

static struct sess *find(struct dtls_ep *ep, const struct ck_addr *a)
{
  for (struct sess *s = *bucket(ep, a); s; s = s->hnext)
    if (s->state != S_DEAD && ck_addr_equal(&s->peer, a))
      return s;
  return NULL;
}

/* Doubles the buckets when sessions outnumber them; when memory is
 * short the chains just get longer. */
static void grow(struct dtls_ep *ep)
{
  if (ep->count < ep->nbuckets)
    return;
  size_t n = ep->nbuckets * 2;
  struct sess **b = calloc(n, sizeof *b);
  if (!b)
    return;
  for (size_t i = 0; i < ep->nbuckets; i++)
    while (ep->buckets[i]) {
      struct sess *s = ep->buckets[i];
      ep->buckets[i] = s->hnext;
      struct sess **to = &b[ck_addr_hash(&s->peer) & (n - 1)];
      s->hnext = *to;
      *to = s;
    }
  free(ep->buckets);
  ep->buckets = b;
  ep->nbuckets = n;
}

static void unqueue(struct sess *s)
{
  for (unsigned i = 0; i < s->nq; i++)
    free(s->q[i]);
  s->nq = 0;
}

static void sess_free(struct sess *s)
{
  struct dtls_ep *ep = s->ep;
  for (struct sess **pp = bucket(ep, &s->peer); *pp; pp = &(*pp)->hnext)
    if (*pp == s) {
      *pp = s->hnext;
      break;
    }
  ep->count--;
  stats(ep)->sessions--;
  if (ep->count < ep->max_sessions)
    ep->full_logged = false;
  ck__timer_stop(&ep->ep.ctx->loop, &s->timer);
  ck__tls_free(s->tls);
  if (ep->ciphers)
    ck__rec_close(ep->ciphers, &s->rec);
  unqueue(s);
  free(s->name);
  free(s->ticket);
  free(s);
}

/* --- datagram I/O lent to GnuTLS --- */

static ssize_t send_to(struct dtls_ep *ep, const struct ck_addr *to,
                       const void *data, size_t len)
{
  ssize_t n;
  do
    n = sendto(ep->ep.io.fd, data, len, 0, &to->u.sa, to->len);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    ep->ep.ctx->stats.tx_dropped++;
    return -1;
  }
  ep->ep.ctx->stats.tx_datagrams++;
  return n;
}

static ssize_t sess_push(void *p, const void *data, size_t len)
{
  struct sess *s = p;
  return send_to(s->ep, &s->peer, data, len);
}

static ssize_t sess_pull(void *p, void *data, size_t len)
{
  struct sess *s = p;
  if (!s->in) {
    errno = EAGAIN;
    return -1;
  }
  size_t n = s->in_len < len ? s->in_len : len;
  memcpy(data, s->in, n);
  s->in = NULL;
  return (ssize_t)n;
}

static int sess_pending(void *p)
{
  return ((struct sess *)p)->in != NULL;
}

static const struct ck__tls_io sess_io = {sess_push, sess_pull, sess_pending};

/* A HelloVerifyRequest goes to the ClientHello's source, with no
 * session behind it. */
struct cookie_io {
  struct dtls_ep *ep;
  const struct ck_addr *to;
};

static ssize_t cookie_push(void *p, const void *data, size_t len)
{
  struct cookie_io *c = p;
  return send_to(c->ep, c->to, data, len);
}

static ssize_t none_pull(void *p, void *data, size_t len)
{
  (void)p, (void)data, (void)len;
  errno = EAGAIN;
  return -1;
}

static int none_pending(void *p)
{
  (void)p;
  return 0;
}

static const struct ck__tls_io cookie_io = {cookie_push, none_pull,
                                            none_pending};

/* --- the records of an open session --- */

/* Server: one record of type through dtls_rec.c. */
static int own_send(struct sess *s, uint8_t type, const uint8_t *buf,
                    size_t len)
{
  struct dtls_ep *ep = s->ep;
  int n = ck__rec_seal(ep->ciphers, &s->rec, type, buf, len, ep->enc,
                       sizeof ep->enc);
  if (n < 0)
    return n;
  return send_to(ep, &s->peer, ep->enc, (size_t)n) < 0 ? CK_ESYS : 0;
}

static int sess_send(struct sess *s, const uint8_t *buf, size_t len)
{
  if (s->tls)
    return ck__tls_send(s->tls, buf, len);
  return own_send(s, CT_APP, buf, len);
}

/* close_notify (RFC 5246 §7.2.1), best effort. */
static void sess_bye(struct sess *s)
{
  static const uint8_t bye[2] = {AL_WARNING, AL_CLOSE_NOTIFY};
  if (s->tls)
    ck__tls_bye(s->tls);
  else
    (void)own_send(s, CT_ALERT, bye, sizeof bye);
}

/* Server: the records go to dtls_rec.c and the GnuTLS session is freed,
 * when its suite is one dtls_rec.c runs and GnuTLS holds no decrypted
 * record back. */
static void take_over(struct sess *s)
{
  struct ck__rec_keys k;
  if (!s->ep->ciphers || !s->tls || s->state != S_OPEN ||
      ck__tls_more(s->tls))
    return;
  bool ok = ck__tls_export(s->tls, &k) == 0;
  if (ok) {
    ck__rec_init(&s->rec, &k);
    ck__tls_free(s->tls);
    s->tls = NULL;
  }
  volatile uint8_t *p = (volatile uint8_t *)&k;
  for (size_t i = 0; i < sizeof k; i++)
    p[i] = 0;
}

/* --- sessions --- */

static void on_timer(struct ck__timer *t);

static struct sess *sess_new(struct dtls_ep *ep, const struct ck_addr *peer)
{
  struct sess *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->ep = ep;
  s->peer = *peer;
  s->rec.slot = -1;
  grow(ep);
  struct sess **b = bucket(ep, peer);
  s->hnext = *b;
  *b = s;
  ep->count++;
  stats(ep)->sessions++;
  return s;
}

/* The handshake failed or the session closed: a server forgets the
 * peer; a client keeps its name for the next attempt and reports err
 * (if any) to the calls from the timer. */
static void sess_end(struct sess *s, int err)
{
  struct dtls_ep *ep = s->ep;
  ck__tls_free(s->tls);
  s->tls = NULL;
  if (ep->ciphers)
    ck__rec_close(ep->ciphers, &s->rec);
  s->in = NULL;
  unqueue(s);
  s->mode = CK_SECURITY_NONE;
  s->id[0] = '\0';
  if (ep->server) {
    s->state = S_DEAD;
    ck__timer_start(&ep->ep.ctx->loop, &s->timer, 0, on_timer);
    return;
  }
  s->state = S_IDLE;
  s->report = err;
  if (err)
    ck__timer_start(&ep->ep.ctx->loop, &s->timer, 0, on_timer);
  else
    ck__timer_stop(&ep->ep.ctx->loop, &s->timer);
}

static void send_queued(struct sess *s)
{
  for (unsigned i = 0; i < s->nq; i++)
    if (ck__tls_send(s->tls, s->q[i], s->qlen[i]) < 0)
      s->ep->ep.ctx->stats.tx_dropped++;
  unqueue(s);
}

static void advance(struct sess *s)
{
  struct dtls_ep *ep = s->ep;
  struct ck__loop *loop = &ep->ep.ctx->loop;
  unsigned next = 0;
  int rc = ck__tls_handshake(s->tls, &next);
  s->in = NULL;
  uint64_t now = ck__loop_now(loop), end = s->last_active + ep->handshake_ms;
  /* GnuTLS checks its own limit only when called, after a back-off of
   * up to a minute; the loop's clock keeps ours exact. */
  if (rc == 0 && now >= end)
    rc = ck__tls_timed_out(s->tls);
  if (rc == 0) {
    /* At least 10 ms: GnuTLS's clock and the loop's are not the same. */
    uint64_t wait = next < 10 ? 10 : next;
    if (wait > end - now)
      wait = end - now;
    ck__timer_start(loop, &s->timer, wait, on_timer);
    return;
  }
  if (rc < 0) {
    stats(ep)->handshakes_failed++;
    char a[64];
    ck_addr_format(&s->peer, a, sizeof a);
    ck__log(ep->ep.ctx, CK_LOG_INFO, "dtls: handshake with %s failed: %s", a,
            ck_strerror(rc));
    sess_end(s, rc);
    return;
  }
  stats(ep)->handshakes++;
  s->opened = true;
  if (ck__tls_resumed(s->tls))
    stats(ep)->resumed++;
  s->state = S_OPEN;
  s->mode = ck__tls_identity(s->tls, s->id, sizeof s->id);
  s->last_active = s->last_rx = ck__loop_now(loop);
  s->unanswered = 0;
  if (!ep->server) {
    free(s->ticket);
    s->ticket = NULL;
    if (ck__tls_ticket(s->tls, &s->ticket, &s->ticket_len) < 0)
      s->ticket = NULL;
  }
  send_queued(s);
  ck__timer_start(loop, &s->timer, ep->idle_ms, on_timer);
  /* After a resumption the client's Finished came last: nothing of
   * ours can need sending again. */
  if (ep->server && ck__tls_resumed(s->tls))
    take_over(s);
}

static int start(struct sess *s, const void *cookie_state)
{
  struct dtls_ep *ep = s->ep;
  struct ck__tls_start st = {cookie_state, s->name, s->ticket, s->ticket_len};
  int rc = ck__tls_new(ep->cr, ep->server, &st, &sess_io, s, &s->tls);
  if (rc < 0)
    return rc;
  s->state = S_HANDSHAKE;
  s->report = 0;
  s->last_active = ck__loop_now(&ep->ep.ctx->loop);
  return 0;
}

/* A server session is gone (closed, expired, replaced): its peer's
 * observations were bound to it (RFC 7252 §9.1.1's security context)
 * and can reach it no more, so they end now rather than at the next
 * CON notification. This scans the observers, like an ICMP error. */
static void peer_gone(struct sess *s)
{
  struct ck_ctx *ctx = s->ep->ep.ctx;
  struct ck_addr peer = s->peer;
  bool opened = s->opened;
  sess_free(s);
  if (opened)
    ck__observe_peer_gone(ctx, &peer);
}

static void on_timer(struct ck__timer *t)
{
  struct sess *s = (struct sess *)t;
  struct dtls_ep *ep = s->ep;
  struct ck__loop *loop = &ep->ep.ctx->loop;
  switch (s->state) {
  case S_DEAD:
    peer_gone(s);
    return;
  case S_IDLE:
    if (s->report) {
      /* Fails the calls to this server with the handshake's reason; the
       * session stays for the next call (with its name). */
      int err = s->report;
      struct ck_addr peer = s->peer;
      s->report = 0;
      ck__input_icmp(&ep->ep, &peer, err);
    }
    return;
  case S_HANDSHAKE:
    advance(s);
    return;
  case S_OPEN: {
    uint64_t idle = ck__loop_now(loop) - s->last_active;
    if (idle < ep->idle_ms) {
      ck__timer_start(loop, t, ep->idle_ms - idle, on_timer);
      return;
    }
    stats(ep)->expired++;
    sess_bye(s);
    sess_end(s, 0);
    return;
  }
  }
}

/* --- receiving --- */

static bool is_client_hello(const uint8_t *b, size_t len)
{
  return len >= 25 && b[0] == 22 && b[3] == 0 && b[4] == 0 && b[13] == 1;
}

/* Server: a datagram from a peer without a session (or a new
 * ClientHello from one with a session). Returns the session it makes,
 * or NULL when the datagram was answered statelessly or dropped. */
static struct sess *accept_peer(struct dtls_ep *ep, struct sess *old,
                                const struct ck_addr *from, const uint8_t *buf,
                                size_t len)
{
  if (!old && ep->count >= ep->max_sessions) {
    stats(ep)->refused_full++;
    if (!ep->full_logged) {
      ep->full_logged = true;
      ck__log(ep->ep.ctx, CK_LOG_WARN,
              "dtls: %zu sessions, the max_sessions limit: new peers are "
              "ignored until one ends",
              ep->count);
    }
    return NULL;
  }
  uint8_t state[CK__TLS_COOKIE_STATE];
  struct cookie_io cio = {ep, from};
  int rc = ck__tls_cookie(ep->cr, from, buf, len, state, &cookie_io, &cio);
  if (rc == CK_ENOTFOUND)
    stats(ep)->cookies_sent++;
  if (rc < 0)
    return NULL;
  /* The cookie proves the address: only now is state kept. */
  if (old)
    peer_gone(old);
  struct sess *s = sess_new(ep, from);
  if (!s)
    return NULL;
  if (start(s, state) < 0) {
    sess_free(s);
    return NULL;
  }
  return s;
}

/* Server: the records of a session dtls_rec.c runs. */
static void own_records(struct sess *s, const struct ck_addr *from,
                        const uint8_t *buf, size_t len)
{
  struct dtls_ep *ep = s->ep;
  size_t off = 0;
  for (int i = 0; i < 16 && s->state == S_OPEN; i++) {
    uint8_t type = 0;
    int n = ck__rec_open(ep->ciphers, &s->rec, buf, len, &off, &type,
                         ep->dec, sizeof ep->dec);
    if (n == CK_EMSG_SHORT)
      break;
    if (n < 0) {
      stats(ep)->records_dropped++;
    } else if (type == CT_APP) {
      if (n > 0)
        ck__input(&ep->ep, from, ep->dec, (size_t)n, false);
    } else if (type == CT_ALERT && n >= 2 &&
               (ep->dec[0] != AL_WARNING || ep->dec[1] == AL_CLOSE_NOTIFY)) {
      /* close_notify or a fatal alert: the peer is gone. A close_notify
       * is answered with ours (RFC 5246 §7.2.1). */
      if (ep->dec[0] == AL_WARNING)
        sess_bye(s);
      sess_end(s, 0);
      return;
    } else {
      /* A handshake record of this epoch (a Finished sent again, a
       * renegotiation, which RFC 7925 §17 rules out) or another alert. */
      stats(ep)->records_dropped++;
    }
  }
}

static void records(struct sess *s, const struct ck_addr *from)
{
  struct dtls_ep *ep = s->ep;
  s->last_active = ck__loop_now(&ep->ep.ctx->loop);
  s->last_rx = s->last_active;
  s->unanswered = 0;
  if (!s->tls) {
    own_records(s, from, s->in, s->in_len);
    s->in = NULL;
    return;
  }
  bool app = false;
  /* A datagram may carry several records; a bounded number is read. */
  for (int i = 0; i < 16; i++) {
    int n = ck__tls_recv(s->tls, ep->dec, sizeof ep->dec);
    if (n > 0) {
      app = true;
      /* ck__input may send on this session (an ACK, a response) but
       * frees nothing of it: sessions end only from their timers, from
       * here, or from ck_client_disconnect(), which the client's rules
       * keep out of its callbacks. */
      ck__input(&ep->ep, from, ep->dec, (size_t)n, false);
    } else if (n == CK_ENOTFOUND) {
      stats(ep)->records_dropped++;
    } else if (n < 0) {
      /* close_notify or a fatal alert: the peer is gone. */
      sess_end(s, 0);
      return;
    }
    if (s->state != S_OPEN || !ck__tls_more(s->tls))
      break;
  }
  s->in = NULL;
  /* The client's application record shows it has our Finished, which
   * we would otherwise have to send again (RFC 6347 §4.2.4). */
  if (app && ep->server)
    take_over(s);
}

void ck__dtls_input(struct ck__ep *base, const struct ck_addr *from,
                    const uint8_t *buf, size_t len)
{
  struct dtls_ep *ep = dep(base);
  struct sess *s = find(ep, from);
  if (ep->server && (!s || (s->state == S_OPEN && is_client_hello(buf, len)))) {
    s = accept_peer(ep, s, from, buf, len);
    if (!s)
      return;
  }
  if (!s || s->state == S_IDLE) {
    stats(ep)->records_dropped++;
    return;
  }
  s->in = buf;
  s->in_len = len;
  if (s->state == S_HANDSHAKE)
    advance(s);
  else
    records(s, from);
}

static void dtls_read(struct ck__io *io, unsigned events)
{
  struct dtls_ep *ep = (struct dtls_ep *)io;
  if (!(events & CK__READ))
    return;
  if (events & CK__ERROR)
    ck__udp_drain_errors(&ep->ep);
  /* Bounded per wake-up, so that timers and other endpoints are served
   * under a flood. */
  for (int i = 0; i < READ_MAX; i++) {
    struct ck_addr from;
    from.len = sizeof from.u;
    ssize_t n = recvfrom(io->fd, ep->rbuf, sizeof ep->rbuf, MSG_DONTWAIT,
                         &from.u.sa, &from.len);
    if (n < 0)
      break;
    ep->ep.ctx->stats.rx_datagrams++;
    ck__dtls_input(&ep->ep, &from, ep->rbuf, (size_t)n);
  }
}

/* --- the transport table --- */

static uint8_t *dtls_out_begin(struct ck__ep *ep, size_t *cap)
{
  *cap = PLAIN_MAX;
  return dep(ep)->plain;
}

/* Replaces a queued message with the same Message ID (a CON sent again
 * while the handshake runs) rather than sending it twice. */
static int enqueue(struct sess *s, const uint8_t *buf, size_t len)
{
  unsigned i = 0;
  for (; i < s->nq; i++)
    if (s->qlen[i] >= 4 && len >= 4 && memcmp(s->q[i] + 2, buf + 2, 2) == 0)
      break;
  if (i == QUEUE_MAX)
    return CK_EFULL;
  uint8_t *copy = malloc(len);
  if (!copy)
    return CK_ENOMEM;
  memcpy(copy, buf, len);
  if (i < s->nq)
    free(s->q[i]);
  else
    s->nq++;
  s->q[i] = copy;
  s->qlen[i] = (uint16_t)len;
  return 0;
}

/* A client session the server has stopped answering: it may have lost
 * the session (a restart), and would drop our records unanswered
 * forever (RFC 6347 §4.2.8 gives it no way to say so). After
 * STALE_SENDS records without a word back over STALE_MS, the next
 * message starts a new handshake; a live server answers that. */
enum { STALE_SENDS = 3, STALE_MS = 5000 };

static bool stale(struct sess *s, uint64_t now)
{
  return s->unanswered >= STALE_SENDS && now - s->last_rx >= STALE_MS;
}

/* Sooner, and whatever the transmission parameters: the first CON sent
 * since the server's last record goes a third time, so its first
 * retransmission went unanswered too (RFC 7252 §4.2). Other messages
 * sent meanwhile do not reset the count. */
static bool retried(struct sess *s, const uint8_t *m, size_t len)
{
  if (s->unanswered == 0)
    s->con_sends = 0;
  if (len < 4 || (m[0] & 0x30) != 0) /* CON is type 0 */
    return false;
  uint16_t mid = (uint16_t)(m[2] << 8 | m[3]);
  if (s->con_sends == 0)
    s->con_mid = mid;
  return mid == s->con_mid && ++s->con_sends >= 3;
}

static int dtls_out_commit(struct ck__ep *base, const struct ck_addr *to,
                           size_t len)
{
  struct dtls_ep *ep = dep(base);
  struct sess *s = find(ep, to);
  uint64_t now = ck__loop_now(&base->ctx->loop);
  int rc = CK_ENOTFOUND;
  if (s && !ep->server && s->state == S_OPEN &&
      (retried(s, ep->plain, len) || stale(s, now))) {
    ck__tls_bye(s->tls);
    sess_end(s, 0);
  }
  if (s && s->state == S_OPEN) {
    rc = sess_send(s, ep->plain, len);
    s->last_active = now;
    s->unanswered++;
  } else if (s && !ep->server) {
    rc = enqueue(s, ep->plain, len);
    if (rc == 0 && s->state == S_IDLE && (rc = start(s, NULL)) == 0)
      advance(s);
  }
  if (rc < 0)
    base->ctx->stats.tx_dropped++;
  return rc;
}

static void dtls_flush(struct ck__ep *ep)
{
  /* Records leave on commit. */
  ep->nsend = 0;
}

static void dtls_free(struct ck__ep *base)
{
  struct dtls_ep *ep = dep(base);
  for (size_t i = 0; i < ep->nbuckets; i++)
    while (ep->buckets[i]) {
      struct sess *s = ep->buckets[i];
      if (s->state == S_OPEN)
        sess_bye(s);
      sess_free(s);
    }
  free(ep->buckets);
  ck__rec_cache_free(ep->ciphers);
  if (ep->own_creds)
    ck__tls_creds_free(ep->cr);
  if (base->io.fd >= 0) {
    ck__backend_del(&base->ctx->loop, &base->io);
    close(base->io.fd);
  }
  free(ep);
}

static const struct ck__transport dtls_transport = {
    .name = "dtls",
    .out_begin = dtls_out_begin,
    .out_commit = dtls_out_commit,
    .flush = dtls_flush,
    .join = NULL, /* RFC 7252 §9.1: no DTLS for multicast */
    .free = dtls_free,
};

int ck__dtls_open(struct ck_ctx *ctx, const struct ck_addr *addr,
                  struct ck__tls_creds *cr, bool client, struct ck__ep **out)
{
  int fd;
  int rc = ck__udp_socket(ctx, addr, &fd);
  struct dtls_ep *ep = NULL;
  if (rc == 0 && !(ep = calloc(1, sizeof *ep))) {
    close(fd);
    rc = CK_ENOMEM;
  }
  if (rc == 0 && !(ep->buckets = calloc(BUCKETS_MIN, sizeof *ep->buckets))) {
    close(fd);
    free(ep);
    rc = CK_ENOMEM;
  }
  if (rc < 0) {
    if (!client)
      ck__tls_creds_free(cr);
    return rc;
  }
  if (!client && (rc = ck__rec_cache_new(CIPHER_CACHE, &ep->ciphers)) < 0) {
    close(fd);
    free(ep->buckets);
    free(ep);
    ck__tls_creds_free(cr);
    return rc;
  }
  ep->nbuckets = BUCKETS_MIN;
  ep->cr = cr;
  ep->server = !client;
  ep->own_creds = !client;
  ck__tls_limits(cr, &ep->max_sessions, &ep->idle_ms, &ep->handshake_ms);
  struct ck__ep *b = &ep->ep;
  b->ctx = ctx;
  b->tp = &dtls_transport;
  b->io.fd = fd;
  b->io.cb = dtls_read;
  b->client = client;
  b->secure = true;
  b->local.len = sizeof b->local.u;
  getsockname(fd, &b->local.u.sa, &b->local.len);
  if ((rc = ck__backend_add(&ctx->loop, &b->io, CK__READ)) < 0) {
    b->io.fd = -1;
    close(fd);
    dtls_free(b);
    return rc;
  }
  *out = b;
  return 0;
}

int ck__dtls_connect(struct ck__ep *base, const struct ck_addr *peer,
                     const char *name)
{
  struct dtls_ep *ep = dep(base);
  struct sess *s = find(ep, peer);
  if (s) {
    /* The same server under another name must pass the check again. */
    if ((!name) == (!s->name) && (!name || strcmp(name, s->name) == 0))
      return 0;
    if (s->state == S_OPEN)
      ck__tls_bye(s->tls);
    sess_end(s, 0);
  } else if (!(s = sess_new(ep, peer))) {
    return CK_ENOMEM;
  }
  free(s->name);
  s->name = NULL;
  if (name && !(s->name = strdup(name)))
    return CK_ENOMEM;
  return 0; /* the handshake starts with the first message */
}

void ck__dtls_disconnect(struct ck__ep *base, struct ck__tls_creds *cr)
{
  struct dtls_ep *ep = dep(base);
  for (size_t i = 0; i < ep->nbuckets; i++)
    for (struct sess *s = ep->buckets[i]; s; s = s->hnext) {
      if (s->state == S_OPEN)
        ck__tls_bye(s->tls);
      if (s->state != S_IDLE)
        sess_end(s, 0);
      if (cr) {
        /* A ticket would resume the session the old credentials made,
         * without the new ones ever being checked. */
        free(s->ticket);
        s->ticket = NULL;
        s->ticket_len = 0;
      }
    }
  if (cr)
    ep->cr = cr;
}

bool ck__dtls_is(const struct ck__ep *ep)
{
  return ep && ep->secure;
}

enum ck_security ck__dtls_identity(struct ck__ep *base,
                                   const struct ck_addr *peer, const char **id)
{
  struct sess *s = base && base->secure ? find(dep(base), peer) : NULL;
  if (!s || s->state != S_OPEN) {
    *id = "";
    return CK_SECURITY_NONE;
  }
  *id = s->id;
  return s->mode;
}

/* --- public --- */

int ck_ctx_listen_dtls(struct ck_ctx *ctx, const struct ck_addr *addr,
                       const struct ck_dtls_config *cfg)
{
  if (!ctx || !addr || !cfg)
    return CK_EINVAL;
  int fam = addr->u.sa.sa_family;
  if (fam != AF_INET && fam != AF_INET6)
    return CK_EINVAL;
  struct ck__tls_creds *cr;
  int rc = ck__tls_creds_new(cfg, true, &cr);
  if (rc < 0)
    return rc;
  struct ck__ep *ep;
  if ((rc = ck__dtls_open(ctx, addr, cr, false, &ep)) < 0)
    return rc;
  /* Appended, so that ck_ctx_local_addr(i) follows the listen order. */
  struct ck__ep **pp = &ctx->eps;
  while (*pp)
    pp = &(*pp)->next;
  *pp = ep;
  ctx->neps++;
  return 0;
}

void ck_ctx_dtls_stats(const struct ck_ctx *ctx, struct ck_dtls_stats *out)
{
  if (ctx && out)
    *out = ctx->dtls_stats;
}

int ck_request_identity(const struct ck_request *req, const char **out)
{
  const char *id = "";
  if (!req) {
    if (out)
      *out = NULL;
    return CK_EINVAL;
  }
  enum ck_security m = ck__dtls_identity(req->ep, req->peer, &id);
  if (out)
    *out = id;
  return (int)m;
}
