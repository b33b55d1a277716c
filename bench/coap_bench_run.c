/* coap-bench's load engine: one thread's connections driven by one epoll
 * loop.
 *
 * A connection is a simulated client: its own UDP socket, connect()ed to
 * the server so that the kernel filters foreign datagrams and reports ICMP
 * port unreachable as ECONNREFUSED, its own Message ID counter started at
 * a random value, and --pipeline slots (one by default), each holding one
 * request in flight: its Message ID, its random 4-byte token and when it
 * left. In observe mode the one slot holds the observation instead. The
 * loop is closed: a slot sends its next request as soon as the previous
 * one is answered, lost or failed, so the load follows the server's pace
 * with exactly as many requests outstanding as there are slots.
 *
 * System calls, not CoAP, are what a request costs here, so they are
 * batched per socket: a slot whose request is ready is staged on its
 * connection, and once per turn of the loop each connection sends all it
 * has staged with one sendmmsg() and reads with one recvmmsg() up to as
 * many datagrams as it has slots. With K slots a request costs about 1/K
 * of a send, a receive and an epoll wake-up. Each slot keeps its own
 * 8 bytes of header and token; the rest of the request is the shared
 * template, sent from where it lies (two iovecs), so nothing is copied.
 *
 * RFC 7252 §4.4 wants a Message ID left unused for EXCHANGE_LIFETIME
 * (247 s) before it is reused towards the same endpoint. A fast
 * connection goes through all 65536 in a few seconds, so when a socket has
 * used every ID once it is replaced by a new socket, which the server sees
 * as a new endpoint; the new one is opened before the old is closed so
 * that the kernel cannot hand back the same port. With several slots the
 * connection first lets the requests still in flight on the old socket
 * finish (its slots park meanwhile), so that no answer is lost to the
 * swap.
 *
 * Requests are not retransmitted: every slot waits the same --timeout, so
 * the slots waiting form a FIFO ordered by deadline and expiring them is
 * O(1) per request. With --rate a slot waits the same pace after each
 * answer or loss, another FIFO, before its next request. A slot whose
 * socket reports an error waits a short back-off, also a FIFO, before it
 * tries again, so that a closed port does not turn into a busy loop.
 * Nothing here allocates once the run has started.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

#include "coap_bench.h"

#define MAX_EVENTS 256
#define RAND_POOL  4096
#define MID_SPACE  65536u
#define RX_CAP     65536
/* Datagrams read per recvmmsg(): a socket has at most as many answers due
 * as it has slots. */
#define RX_BATCH 32u
/* The header and token: what each slot sends of its own. */
#define HDR_LEN 8
/* How long a slot waits after a socket error before it sends again. */
#define BACKOFF_NS 10000000ull

enum slot_state {
  S_IDLE,
  S_STAGED,    /* request built, to go out with its socket's next batch */
  S_WAIT,      /* request sent; in the wait list */
  S_WAIT_SEP,  /* empty ACK received, separate response due; in the list */
  S_BACKOFF,   /* socket error; in the back-off list */
  S_PARKED,    /* Message IDs used up: waits for the socket to be replaced */
  S_PACE,      /* --rate: waiting for its next turn; in the pace list */
  S_OBSERVING, /* observe mode: registered, receiving notifications */
  S_DONE,      /* observe mode: the server declined or ended it */
};

struct conn;

struct slot {
  struct slot *prev, *next; /* in the wait or back-off list, else self */
  struct slot *tx_next;     /* in its connection's staged list */
  struct conn *conn;
  uint64_t t_ns; /* when sent (waiting) or when to retry (back-off) */
  uint32_t token;
  uint16_t mid;
  uint16_t ack_mid; /* the last CON acknowledged for it, to ACK a repeat */
  bool ack_valid;
  uint8_t state;
  uint8_t hdr[HDR_LEN]; /* header and token as sent */
};

struct conn {
  struct slot *slots; /* the engine's, nslots of them */
  struct slot *staged, **staged_tail;
  struct conn *dirty_next; /* in the engine's list of connections to flush */
  bool dirty;
  uint16_t mid;       /* the next Message ID */
  unsigned busy;      /* slots staged or waiting for an answer */
  uint32_t mids_used; /* Message IDs used on this socket */
  const uint8_t *req; /* its request: the thread's copy, or its own */
  size_t req_len;
  int fd;
};

struct bench_engine {
  struct bench_thread *t;
  const struct bench_cfg *cfg;
  struct bench_shared *sh;
  struct bench_stats *st;
  int ep;
  bool counting; /* past the warm-up */
  bool heard;    /* this thread has heard from the server */
  bool checked;  /* thread 0: the reachability check is done */
  uint64_t timeout_ns;
  unsigned nconns;
  unsigned nslots; /* per connection */
  unsigned rx_batch;
  struct conn *conns;
  struct slot *slots;  /* nconns * nslots */
  struct conn *dirty;  /* connections with staged requests */
  struct slot wait;    /* sentinel of the FIFO of requests in flight */
  struct slot backoff; /* sentinel of the FIFO of slots backing off */
  struct slot pace;    /* sentinel of the FIFO of slots pacing (--rate) */
  uint8_t *req;        /* this thread's copy of the templates */
  uint8_t *dereg;
  /* One connection's batch at a time: nslots to send, rx_batch to read. */
  struct mmsghdr *tx;
  struct iovec *tx_iov;
  struct slot **tx_slot;
  struct mmsghdr *rx;
  struct iovec *rx_iov;
  uint8_t *rx_buf; /* rx_batch * RX_CAP */
  size_t rnd_pos;
  uint8_t rnd[RAND_POOL];
};

uint64_t bench_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void list_init(struct slot *s)
{
  s->prev = s->next = s;
}

static bool list_empty(const struct slot *head)
{
  return head->next == head;
}

static void list_push(struct slot *head, struct slot *s)
{
  s->prev = head->prev;
  s->next = head;
  head->prev->next = s;
  head->prev = s;
}

static void list_del(struct slot *s)
{
  s->prev->next = s->next;
  s->next->prev = s->prev;
  list_init(s);
}

/* Refills the pool of random bytes that tokens and initial Message IDs
 * come from: one getrandom() per 1024 tokens. */
static void rnd_fill(struct bench_engine *e)
{
  size_t got = 0;
  while (got < RAND_POOL) {
    ssize_t n = getrandom(e->rnd + got, RAND_POOL - got, 0);
    if (n > 0) {
      got += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    /* No getrandom(): stir the old pool with the clock (splitmix64). */
    uint64_t x = bench_now_ns();
    for (size_t i = got; i < RAND_POOL; i++) {
      x += 0x9e3779b97f4a7c15u;
      uint64_t z = x ^ e->rnd[i];
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
      e->rnd[i] = (uint8_t)(z ^ (z >> 31));
    }
    break;
  }
  e->rnd_pos = 0;
}

static uint32_t rnd32(struct bench_engine *e)
{
  uint32_t v;
  if (e->rnd_pos + sizeof v > RAND_POOL)
    rnd_fill(e);
  memcpy(&v, e->rnd + e->rnd_pos, sizeof v);
  e->rnd_pos += sizeof v;
  return v;
}

/* Opens a new socket for c, connected to the server and registered with
 * epoll, with a fresh random Message ID. Returns 0 or a negative errno;
 * c->fd is changed only on success. */
static int open_sock(struct bench_engine *e, struct conn *c)
{
  const struct bench_cfg *cfg = e->cfg;
  int fd =
      socket(cfg->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0 ||
      epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  c->fd = fd;
  c->mid = (uint16_t)rnd32(e);
  c->mids_used = 0;
  for (unsigned i = 0; i < e->nslots; i++)
    c->slots[i].ack_valid = false;
  return 0;
}

static void sock_error(struct bench_engine *e, int err)
{
  if (e->counting)
    e->st->errors++;
  e->st->last_errno = err;
}

/* Gives c a new socket once its Message IDs are used up (see the top).
 * Called only when none of its requests is in flight. */
static void rotate(struct bench_engine *e, struct conn *c)
{
  int old = c->fd;
  int rc = open_sock(e, c);
  if (rc < 0) {
    /* Out of sockets or ports: keep the old one and reuse its IDs. */
    sock_error(e, -rc);
    c->mids_used = 0;
    return;
  }
  close(old);
  e->st->rotations++;
}

static void to_backoff(struct bench_engine *e, struct slot *s, uint64_t now)
{
  s->state = S_BACKOFF;
  s->t_ns = now + BACKOFF_NS;
  list_push(&e->backoff, s);
}

/* The slot's request is answered, lost or failed: it is free to send. */
static void release(struct slot *s)
{
  list_del(s);
  s->conn->busy--;
  s->state = S_IDLE;
}

static void stage(struct bench_engine *e, struct slot *s);

/* Stages the slot's next request with a new Message ID and token; it
 * leaves with its socket's next batch (flush). */
static void send_req(struct bench_engine *e, struct slot *s)
{
  struct conn *c = s->conn;
  /* An observation is bound to its socket, and observing uses few IDs. */
  if (c->mids_used >= MID_SPACE && !e->cfg->observe) {
    if (c->busy > 0) {
      /* Answers are still due on this socket: swap it once they are in. */
      s->state = S_PARKED;
      return;
    }
    rotate(e, c);
    for (unsigned i = 0; i < e->nslots; i++)
      if (c->slots[i].state == S_PARKED && &c->slots[i] != s)
        stage(e, &c->slots[i]);
  }
  stage(e, s);
}

/* The slot's request ended: the next one goes now, or with --rate after
 * the pace (every slot waits the same, so the list stays in order). */
static void next_req(struct bench_engine *e, struct slot *s, uint64_t now)
{
  if (e->cfg->pace_ns == 0) {
    send_req(e, s);
    return;
  }
  s->state = S_PACE;
  s->t_ns = now + e->cfg->pace_ns;
  list_push(&e->pace, s);
}

static void stage(struct bench_engine *e, struct slot *s)
{
  struct conn *c = s->conn;
  uint16_t mid = c->mid++;
  c->mids_used++;
  uint32_t tok = rnd32(e);
  s->hdr[2] = (uint8_t)(mid >> 8);
  s->hdr[3] = (uint8_t)mid;
  memcpy(s->hdr + 4, &tok, sizeof tok);
  s->mid = mid;
  s->token = tok;
  s->state = S_STAGED;
  s->tx_next = NULL;
  *c->staged_tail = s;
  c->staged_tail = &s->tx_next;
  c->busy++;
  if (!c->dirty) {
    c->dirty = true;
    c->dirty_next = e->dirty;
    e->dirty = c;
  }
}

/* Sends what c has staged, with as few sendmmsg() calls as the kernel
 * allows: normally one. */
static void flush_conn(struct bench_engine *e, struct conn *c)
{
  unsigned n = 0;
  for (struct slot *s = c->staged; s != NULL; s = s->tx_next) {
    struct iovec *iov = &e->tx_iov[2 * n];
    iov[0] = (struct iovec){.iov_base = s->hdr, .iov_len = HDR_LEN};
    iov[1] = (struct iovec){.iov_base = (void *)(c->req + HDR_LEN),
                            .iov_len = c->req_len - HDR_LEN};
    e->tx[n].msg_hdr = (struct msghdr){.msg_iov = iov, .msg_iovlen = 2};
    e->tx_slot[n++] = s;
  }
  c->staged = NULL;
  c->staged_tail = &c->staged;
  uint64_t now = bench_now_ns();
  unsigned done = 0;
  while (done < n) {
    int r = sendmmsg(c->fd, e->tx + done, n - done, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      /* The first of the rest failed (an earlier datagram's ICMP error,
       * or a full buffer): it backs off, the others are tried again. */
      struct slot *s = e->tx_slot[done++];
      sock_error(e, r < 0 ? errno : EAGAIN);
      s->conn->busy--;
      to_backoff(e, s, now);
      continue;
    }
    for (unsigned i = done; i < done + (unsigned)r; i++) {
      struct slot *s = e->tx_slot[i];
      s->t_ns = now;
      s->state = S_WAIT;
      list_push(&e->wait, s);
    }
    if (e->counting)
      e->st->sent += (unsigned)r;
    done += (unsigned)r;
  }
}

/* Sends every connection's staged requests. */
static void flush(struct bench_engine *e)
{
  while (e->dirty != NULL) {
    struct conn *c = e->dirty;
    e->dirty = c->dirty_next;
    c->dirty = false;
    flush_conn(e, c);
  }
}

static void send_empty(struct conn *c, enum ck_type type, uint16_t mid)
{
  uint8_t b[4] = {(uint8_t)(CK_COAP_VERSION << 6 | type << 4), CK_CODE_EMPTY,
                  (uint8_t)(mid >> 8), (uint8_t)mid};
  /* A failure shows up again as an error on the next receive. */
  (void)send(c->fd, b, sizeof b, 0);
}

static bool token_is(const struct ck_msg *m, uint32_t tok)
{
  return m->tkl == sizeof tok && memcmp(m->token, &tok, sizeof tok) == 0;
}

/* A connection has few slots (at most BENCH_MAX_PIPELINE): a scan is
 * cheaper than any index. */
static struct slot *find_mid(struct bench_engine *e, struct conn *c,
                             uint16_t mid)
{
  for (unsigned i = 0; i < e->nslots; i++) {
    struct slot *s = &c->slots[i];
    if (s->state == S_WAIT && s->mid == mid)
      return s;
  }
  return NULL;
}

static struct slot *find_token(struct bench_engine *e, struct conn *c,
                               const struct ck_msg *m)
{
  for (unsigned i = 0; i < e->nslots; i++) {
    struct slot *s = &c->slots[i];
    if ((s->state == S_WAIT || s->state == S_WAIT_SEP ||
         s->state == S_OBSERVING) &&
        token_is(m, s->token))
      return s;
  }
  return NULL;
}

/* A response to the slot's request arrived (piggybacked or separate). */
static void complete(struct bench_engine *e, struct slot *s,
                     const struct ck_msg *m, uint64_t now)
{
  struct bench_stats *st = e->st;
  release(s);
  bool ok = CK_CODE_CLASS(m->code) == 2;
  if (e->cfg->observe) {
    /* Registrations happen once, mostly in the warm-up: count them all. */
    st->responses++;
    st->codes[m->code]++;
    st->ok += ok;
    bench_hist_add(&st->lat, now - s->t_ns);
    struct ck_opt o;
    if (ok && ck_msg_opt(m, CK_OPT_OBSERVE, &o) == 0) {
      s->state = S_OBSERVING;
      st->observing++;
    } else {
      s->state = S_DONE;
      st->not_observable += ok;
    }
    return;
  }
  if (e->counting) {
    st->responses++;
    st->codes[m->code]++;
    st->ok += ok;
    bench_hist_add(&st->lat, now - s->t_ns);
  }
  next_req(e, s, now);
}

/* A socket error on c (ICMP port unreachable): the kernel keeps one error
 * for however many datagrams drew one, so every request in flight on the
 * socket backs off. */
static void conn_failed(struct bench_engine *e, struct conn *c, uint64_t now)
{
  for (unsigned i = 0; i < e->nslots; i++) {
    struct slot *s = &c->slots[i];
    if (s->state == S_WAIT || s->state == S_WAIT_SEP) {
      release(s);
      to_backoff(e, s, now);
    }
  }
}

static void on_ack(struct bench_engine *e, struct conn *c,
                   const struct ck_msg *m, uint64_t now)
{
  struct slot *s = find_mid(e, c, m->mid);
  if (s == NULL) {
    if (e->counting)
      e->st->stray++;
    return;
  }
  if (m->type == CK_TYPE_RST) {
    if (e->counting)
      e->st->rst++;
    release(s);
    if (e->cfg->observe) {
      s->state = S_DONE;
      return;
    }
    next_req(e, s, now);
    return;
  }
  if (m->code == CK_CODE_EMPTY) {
    /* RFC 7252 §5.2.2: the response follows in its own CON. The slot
     * keeps its place in the wait list, so the timeout still runs from
     * the request. */
    s->state = S_WAIT_SEP;
    return;
  }
  if (!token_is(m, s->token)) {
    if (e->counting)
      e->st->stray++;
    return;
  }
  complete(e, s, m, now);
}

/* A CON or NON from the server: a separate response, a response to a NON
 * request, or a notification. */
static void on_message(struct bench_engine *e, struct conn *c,
                       const struct ck_msg *m, uint64_t now)
{
  struct bench_stats *st = e->st;
  if (CK_CODE_CLASS(m->code) == 0) {
    /* A request or a CoAP ping: we serve nothing (RFC 7252 §4.3). */
    if (m->type == CK_TYPE_CON)
      send_empty(c, CK_TYPE_RST, m->mid);
    if (e->counting)
      st->stray++;
    return;
  }
  struct slot *s = find_token(e, c, m);
  if (m->type == CK_TYPE_CON) {
    /* The slot has moved on to a new token by the time a separate
     * response is repeated, so a repeat is known by Message ID. */
    bool repeat = false;
    for (unsigned i = 0; i < e->nslots && !repeat; i++)
      repeat = c->slots[i].ack_valid && c->slots[i].ack_mid == m->mid;
    if (s == NULL && !repeat) {
      /* RFC 7252 §5.3.2: reject a response we cannot match. */
      send_empty(c, CK_TYPE_RST, m->mid);
    } else {
      /* Acknowledge it, and again if the server repeats it because our
       * ACK was lost; a repeat is not counted twice. */
      send_empty(c, CK_TYPE_ACK, m->mid);
      if (s != NULL) {
        s->ack_valid = true;
        s->ack_mid = m->mid;
      }
    }
    if (repeat)
      return;
  }
  if (s == NULL) {
    if (e->counting)
      st->stray++;
    return;
  }
  if (s->state == S_OBSERVING) {
    /* RFC 7641 §3.2: a notification that is not 2.xx ends it. */
    if (CK_CODE_CLASS(m->code) != 2) {
      s->state = S_DONE;
      st->ended++;
    } else if (e->counting) {
      st->notifications++;
    }
    return;
  }
  if (!e->cfg->non && e->counting)
    st->separate++;
  complete(e, s, m, now);
}

/* Handles one datagram of n bytes (more than RX_CAP: truncated). */
static void on_datagram(struct bench_engine *e, struct conn *c,
                        const uint8_t *buf, size_t n, bool trunc, uint64_t now)
{
  /* Even an empty ACK or a malformed datagram shows that the server is
   * there, which is all the reachability check asks. */
  e->st->received++;
  if (!e->heard) {
    e->heard = true;
    atomic_store_explicit(&e->sh->heard, true, memory_order_relaxed);
  }
  struct ck_msg m;
  if (trunc) {
    if (e->counting)
      e->st->bad++;
    return;
  }
  if (ck_msg_parse(&m, buf, n) < 0) {
    if (e->counting)
      e->st->bad++;
    /* RFC 7252 §4.2: a malformed CON is rejected with a Reset. */
    if (n >= CK_HEADER_LEN && m.type == CK_TYPE_CON)
      send_empty(c, CK_TYPE_RST, m.mid);
    return;
  }
  if (m.type == CK_TYPE_ACK || m.type == CK_TYPE_RST)
    on_ack(e, c, &m, now);
  else
    on_message(e, c, &m, now);
}

static void on_readable(struct bench_engine *e, struct conn *c)
{
  /* One recvmmsg() takes what the socket holds, up to one answer per
   * slot; level-triggered epoll reports any rest again. */
  int n = recvmmsg(c->fd, e->rx, e->rx_batch, 0, NULL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return;
    sock_error(e, errno);
    conn_failed(e, c, bench_now_ns());
    return;
  }
  uint64_t now = bench_now_ns();
  for (int i = 0; i < n; i++) {
    const struct mmsghdr *h = &e->rx[i];
    on_datagram(e, c, h->msg_hdr.msg_iov->iov_base, h->msg_len,
                (h->msg_hdr.msg_flags & MSG_TRUNC) != 0, now);
  }
}

/* Declares lost the requests whose timeout has passed and retries the
 * slots whose back-off has passed; each sends its next request. */
static void expire(struct bench_engine *e, uint64_t now)
{
  while (!list_empty(&e->wait)) {
    struct slot *s = e->wait.next;
    if (s->t_ns + e->timeout_ns > now)
      break;
    release(s);
    /* A loss counts when its request was sent in the window, so that a
     * burst lost at the start stays in the warm-up. */
    if (s->t_ns >= e->sh->m0_ns)
      e->st->lost++;
    next_req(e, s, now);
  }
  while (!list_empty(&e->backoff)) {
    struct slot *s = e->backoff.next;
    if (s->t_ns > now)
      break;
    list_del(s);
    s->state = S_IDLE;
    send_req(e, s);
  }
  while (!list_empty(&e->pace)) {
    struct slot *s = e->pace.next;
    if (s->t_ns > now)
      break;
    list_del(s);
    s->state = S_IDLE;
    send_req(e, s);
  }
}

/* Starts counting at the end of the warm-up, and in thread 0 samples the
 * CPU time and decides whether the server answers at all. */
static void phase(struct bench_engine *e, uint64_t now)
{
  struct bench_shared *sh = e->sh;
  bool first = e->t->index == 0;
  if (!e->counting && now >= sh->m0_ns) {
    e->counting = true;
    if (first) {
      getrusage(RUSAGE_SELF, &sh->ru0);
      sh->ru0_set = true;
    }
  }
  if (first && !e->checked && now >= sh->t0_ns + e->timeout_ns) {
    e->checked = true;
    if (!atomic_load(&sh->heard))
      atomic_store(&sh->abort, true);
  }
}

/* Milliseconds until the next deadline this thread must act on. */
static int next_wakeup(const struct bench_engine *e, uint64_t now)
{
  const struct bench_shared *sh = e->sh;
  uint64_t next = sh->m1_ns;
  if (!e->counting && sh->m0_ns < next)
    next = sh->m0_ns;
  if (e->t->index == 0 && !e->checked && sh->t0_ns + e->timeout_ns < next)
    next = sh->t0_ns + e->timeout_ns;
  if (!list_empty(&e->wait) && e->wait.next->t_ns + e->timeout_ns < next)
    next = e->wait.next->t_ns + e->timeout_ns;
  if (!list_empty(&e->backoff) && e->backoff.next->t_ns < next)
    next = e->backoff.next->t_ns;
  if (!list_empty(&e->pace) && e->pace.next->t_ns < next)
    next = e->pace.next->t_ns;
  if (next <= now)
    return 0;
  uint64_t ms = (next - now + 999999) / 1000000;
  return ms > 1000 ? 1000 : (int)ms;
}

/* RFC 7641 §3.6: cancel each observation with a GET carrying Observe: 1
 * and the observation's token, so that the server stops notifying. */
static void deregister(struct bench_engine *e)
{
  for (unsigned i = 0; i < e->nconns; i++) {
    struct conn *c = &e->conns[i];
    struct slot *s = &c->slots[0];
    if (s->state != S_OBSERVING)
      continue;
    uint16_t mid = c->mid++;
    uint8_t *p = e->dereg;
    p[2] = (uint8_t)(mid >> 8);
    p[3] = (uint8_t)mid;
    memcpy(p + 4, &s->token, sizeof s->token);
    (void)send(c->fd, p, e->cfg->dereg_len, 0);
  }
}

void bench_engine_run(struct bench_thread *t)
{
  struct bench_engine *e = t->eng;
  struct bench_shared *sh = e->sh;
  struct epoll_event evs[MAX_EVENTS];
  struct timespec ts = {.tv_sec = (time_t)(sh->t0_ns / 1000000000u),
                        .tv_nsec = (long)(sh->t0_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
  phase(e, bench_now_ns());
  /* With --rate the first requests are spread over one pace, in order. */
  unsigned nslots = e->nconns * e->nslots;
  for (unsigned i = 0; i < nslots; i++) {
    struct slot *s = &e->slots[i];
    if (e->cfg->pace_ns == 0) {
      send_req(e, s);
      continue;
    }
    s->state = S_PACE;
    s->t_ns = sh->t0_ns + e->cfg->pace_ns * i / nslots;
    list_push(&e->pace, s);
  }
  for (;;) {
    uint64_t now = bench_now_ns();
    if (now >= sh->m1_ns ||
        atomic_load_explicit(&sh->abort, memory_order_relaxed) ||
        atomic_load_explicit(&sh->stop, memory_order_relaxed))
      break;
    phase(e, now);
    expire(e, now);
    /* Everything answered since the last wait goes out now, one batch
     * per socket. */
    flush(e);
    int n = epoll_wait(e->ep, evs, MAX_EVENTS, next_wakeup(e, now));
    if (n < 0 && errno != EINTR) {
      sock_error(e, errno);
      break;
    }
    /* The wait may have crossed the end of the warm-up: what arrived
     * since belongs to the window. */
    if (!e->counting)
      phase(e, bench_now_ns());
    for (int i = 0; i < n; i++)
      on_readable(e, evs[i].data.ptr);
  }
  if (t->index == 0) {
    sh->end_ns = bench_now_ns();
    getrusage(RUSAGE_SELF, &sh->ru1);
  }
  /* Staged requests never left, so they are not in flight. */
  for (unsigned i = 0; i < e->nconns * e->nslots; i++) {
    uint8_t state = e->slots[i].state;
    if (state == S_WAIT || state == S_WAIT_SEP)
      e->st->inflight++;
  }
  if (e->cfg->observe)
    deregister(e);
}

/* Allocates everything the run needs, so that it allocates nothing.
 * Returns 0 or -ENOMEM. */
static int alloc_engine(struct bench_engine *e, const struct bench_cfg *cfg)
{
  size_t nslots = (size_t)e->nconns * e->nslots;
  e->conns = calloc(e->nconns, sizeof *e->conns);
  e->slots = calloc(nslots, sizeof *e->slots);
  e->req = malloc(cfg->req_len);
  e->dereg = malloc(cfg->dereg_len ? cfg->dereg_len : 1);
  e->tx = calloc(e->nslots, sizeof *e->tx);
  e->tx_iov = calloc(2 * (size_t)e->nslots, sizeof *e->tx_iov);
  e->tx_slot = calloc(e->nslots, sizeof *e->tx_slot);
  e->rx = calloc(e->rx_batch, sizeof *e->rx);
  e->rx_iov = calloc(e->rx_batch, sizeof *e->rx_iov);
  e->rx_buf = malloc((size_t)e->rx_batch * RX_CAP);
  if (e->conns != NULL)
    for (unsigned i = 0; i < e->nconns; i++)
      e->conns[i].fd = -1;
  if (e->conns == NULL || e->slots == NULL || e->req == NULL ||
      e->dereg == NULL || e->tx == NULL || e->tx_iov == NULL ||
      e->tx_slot == NULL || e->rx == NULL || e->rx_iov == NULL ||
      e->rx_buf == NULL)
    return -ENOMEM;
  for (unsigned i = 0; i < e->rx_batch; i++) {
    e->rx_iov[i] = (struct iovec){.iov_base = e->rx_buf + (size_t)i * RX_CAP,
                                  .iov_len = RX_CAP};
    e->rx[i].msg_hdr =
        (struct msghdr){.msg_iov = &e->rx_iov[i], .msg_iovlen = 1};
  }
  return 0;
}

int bench_engine_init(struct bench_thread *t)
{
  const struct bench_cfg *cfg = t->cfg;
  struct bench_engine *e = calloc(1, sizeof *e);
  if (e == NULL)
    return -ENOMEM;
  t->eng = e;
  e->t = t;
  e->cfg = cfg;
  e->sh = t->sh;
  e->st = &t->st;
  e->ep = -1;
  e->timeout_ns = (uint64_t)cfg->timeout_ms * 1000000u;
  e->nconns = t->nconns;
  e->nslots = cfg->pipeline ? cfg->pipeline : 1;
  e->rx_batch = e->nslots < RX_BATCH ? e->nslots : RX_BATCH;
  list_init(&e->wait);
  list_init(&e->backoff);
  list_init(&e->pace);
  if (alloc_engine(e, cfg) < 0) {
    bench_engine_free(t);
    return -ENOMEM;
  }
  memcpy(e->req, cfg->req, cfg->req_len);
  if (cfg->dereg_len)
    memcpy(e->dereg, cfg->dereg, cfg->dereg_len);
  rnd_fill(e);
  for (unsigned i = 0; i < t->nconns; i++) {
    struct conn *c = &e->conns[i];
    c->slots = &e->slots[(size_t)i * e->nslots];
    c->staged_tail = &c->staged;
    c->req = e->req;
    c->req_len = cfg->req_len;
    if (cfg->conn_reqs != NULL) {
      size_t k = (size_t)t->first + i;
      c->req = cfg->conn_reqs + k * cfg->conn_stride;
      c->req_len = cfg->conn_lens[k];
    }
    for (unsigned j = 0; j < e->nslots; j++) {
      struct slot *s = &c->slots[j];
      list_init(s);
      s->conn = c;
      /* Version, type, token length and code: the rest is per send. */
      memcpy(s->hdr, c->req, HDR_LEN);
    }
  }
  e->ep = epoll_create1(EPOLL_CLOEXEC);
  if (e->ep < 0) {
    int err = errno;
    bench_engine_free(t);
    return -err;
  }
  for (unsigned i = 0; i < t->nconns; i++) {
    int rc = open_sock(e, &e->conns[i]);
    if (rc < 0) {
      bench_engine_free(t);
      return rc;
    }
  }
  return 0;
}

void bench_engine_free(struct bench_thread *t)
{
  struct bench_engine *e = t->eng;
  if (e == NULL)
    return;
  if (e->conns != NULL)
    for (unsigned i = 0; i < e->nconns; i++)
      if (e->conns[i].fd >= 0)
        close(e->conns[i].fd);
  if (e->ep >= 0)
    close(e->ep);
  free(e->conns);
  free(e->slots);
  free(e->req);
  free(e->dereg);
  free(e->tx);
  free(e->tx_iov);
  free(e->tx_slot);
  free(e->rx);
  free(e->rx_iov);
  free(e->rx_buf);
  free(e);
  t->eng = NULL;
}
