/* coap-pubsub-bench's CoAP side: the publisher and N subscribers of
 * coapd's pub/sub gateway (SPEC.md, "Publish/subscribe gateway", EMQX's
 * CoAP gateway contract), on raw UDP sockets with the codec of
 * <coapkit/msg.h>, all driven by one epoll loop.
 *
 * Each subscriber is its own UDP socket, connect()ed to the gateway, so
 * the gateway sees N endpoints and the kernel reports a closed port as
 * ECONNREFUSED. It subscribes with CON GET /ps/TOPIC?qos=Q, Observe: 0
 * and a 4-byte token of its own (its index), answered 2.05 with Observe
 * (RFC 7641 §3.1); registrations go out 256 at a time and are sent again
 * after a second, up to five times. Notifications come as NON (qos=0) or
 * CON (qos=1), which are acknowledged at once (RFC 7252 §4.2).
 *
 * The publisher sends POST /ps/TOPIC?qos=Q, NON for QoS 0 and CON for
 * QoS 1, as MQTT's QoS 0 PUBLISH goes unacknowledged and QoS 1 gets a
 * PUBACK. RFC 7252 §4.4 wants a Message ID unused for EXCHANGE_LIFETIME
 * (247 s) towards one endpoint, and the gateway remembers POSTs (§4.5),
 * so after 65536 publishes the publisher moves to a new socket (a new
 * endpoint), keeping the previous one open for its late answers.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <coapkit/coapkit.h>

#include "pubsub_bench.h"

#define REG_BATCH  256u
#define REG_TRIES  5u
#define REG_RTO_NS 1000000000ull
#define MAX_EVENTS 512
#define RECV_BURST 64
#define PUB_TAG    (1ull << 62)
#define MAX_SEGS   16
#define CF_OCTETS  42 /* application/octet-stream */

enum sub_state { SUB_IDLE, SUB_SENT, SUB_SEPARATE, SUB_OBSERVING };

struct sub {
  int fd;
  uint16_t mid; /* of the registration */
  uint8_t state;
  uint8_t tries;
  bool con_seen;    /* con_mid holds the last CON notification's ID */
  uint16_t con_mid; /* to acknowledge a repeat without counting it */
  uint64_t t_ns;    /* when the registration was last sent */
};

struct coap {
  struct ps_run *r;
  int ep;
  struct sockaddr_storage addr;
  socklen_t alen;
  char target[300];          /* for messages: host:port */
  char topic[64];            /* printable, for messages */
  char path[64];             /* the topic, split at '/' into seg[] */
  const char *seg[MAX_SEGS]; /* "ps" and the topic's segments */
  unsigned nseg;
  char query[8]; /* "qos=0" */
  struct sub *subs;
  int pub_fd, pub_old_fd;
  uint16_t pub_mid;
  uint32_t pub_used;
  unsigned observing;
  unsigned ended;
  uint8_t rx[2048];
};

static int err_no(struct coap *c, const char *what, int e)
{
  if (e == ECONNREFUSED)
    return ps_fail(c->r, "nothing listens at %s (ICMP port unreachable)",
                   c->target);
  return ps_fail(c->r, "%s: %s", what, strerror(e));
}

static int open_sock(struct coap *c, uint64_t tag)
{
  int fd =
      socket(c->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return err_no(c, "socket", errno);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
  if (connect(fd, (struct sockaddr *)&c->addr, c->alen) < 0 ||
      epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int e = errno;
    close(fd);
    return err_no(c, "connect", e);
  }
  return fd;
}

/* Adds Uri-Path ps/TOPIC and Uri-Query qos=Q to b. */
static void add_uri(struct coap *c, struct ck_builder *b)
{
  for (unsigned i = 0; i < c->nseg; i++)
    ck_builder_opt_str(b, CK_OPT_URI_PATH, c->seg[i]);
  ck_builder_opt_str(b, CK_OPT_URI_QUERY, c->query);
}

/* Sends subscriber i's GET with Observe obs (0 register, 1 deregister). */
static int send_get(struct coap *c, unsigned i, enum ck_type type, uint32_t obs)
{
  uint8_t buf[256];
  struct ck_builder b;
  uint32_t tok = i;
  ck_builder_init(&b, buf, sizeof buf, type, CK_GET, c->subs[i].mid);
  ck_builder_token(&b, &tok, sizeof tok);
  ck_builder_opt_uint(&b, CK_OPT_OBSERVE, obs);
  add_uri(c, &b);
  int len = ck_builder_finish(&b);
  if (len < 0)
    return ps_fail(c->r, "building GET: %s", ck_strerror(len));
  if (send(c->subs[i].fd, buf, (size_t)len, 0) < 0 && obs == 0)
    return err_no(c, "send", errno);
  return 0;
}

static void send_ack(int fd, uint16_t mid)
{
  uint8_t ack[4] = {0x60, 0, (uint8_t)(mid >> 8), (uint8_t)mid};
  (void)send(fd, ack, sizeof ack, 0);
}

/* "4.04 Not Found" and, when there is one, the diagnostic payload. */
static void describe(const struct ck_msg *m, char *out, size_t cap)
{
  char code[48];
  ck_code_format(code, sizeof code, m->code);
  int pl = m->payload_len > 120 ? 120 : (int)m->payload_len;
  if (pl > 0)
    snprintf(out, cap, "%s (\"%.*s\")", code, pl, (const char *)m->payload);
  else
    snprintf(out, cap, "%s", code);
}

/* A datagram for subscriber i. Returns 0 or -1 after ps_fail(). */
static int sub_input(struct coap *c, unsigned i, const uint8_t *d, size_t len,
                     uint64_t now)
{
  struct sub *s = &c->subs[i];
  struct ck_msg m;
  uint32_t tok, obs;
  if (ck_msg_parse(&m, d, len) < 0) {
    c->r->st.foreign++;
    return 0;
  }
  if (m.type == CK_TYPE_CON) {
    send_ack(s->fd, m.mid);
    /* RFC 7252 §4.5: a CON sent again (our ACK was lost) is the same
     * message; acknowledged again, not delivered again. */
    if (s->con_seen && m.mid == s->con_mid)
      return 0;
    s->con_seen = true;
    s->con_mid = m.mid;
  }
  if (m.type == CK_TYPE_RST) {
    if (s->state == SUB_OBSERVING)
      return 0;
    return ps_fail(c->r, "GET /ps/%s?%s (Observe 0) answered with a Reset",
                   c->topic, c->query);
  }
  if (m.code == CK_CODE_EMPTY) {
    if (m.type == CK_TYPE_ACK && s->state == SUB_SENT && m.mid == s->mid)
      s->state = SUB_SEPARATE; /* RFC 7252 §5.2.2: the answer comes later */
    return 0;
  }
  if (m.tkl != sizeof tok || (memcpy(&tok, m.token, sizeof tok), tok != i)) {
    c->r->st.foreign++;
    return 0;
  }
  bool has_obs = ck_msg_opt_uint(&m, CK_OPT_OBSERVE, &obs) == 0;
  if (s->state != SUB_OBSERVING) {
    char why[200];
    describe(&m, why, sizeof why);
    if (CK_CODE_CLASS(m.code) != 2)
      return ps_fail(c->r, "GET /ps/%s?%s (Observe 0) answered %s%s", c->topic,
                     c->query, why,
                     m.code == CK_NOT_FOUND
                         ? ": is coapd's pub/sub gateway (ps/) enabled?"
                         : "");
    if (!has_obs)
      return ps_fail(c->r,
                     "GET /ps/%s?%s (Observe 0) answered %s without "
                     "Observe: the subscription was not accepted",
                     c->topic, c->query, why);
    s->state = SUB_OBSERVING;
    c->observing++;
    /* The gateway sends a retained message first; there is none on a
     * topic of this run's own, but an answer with a payload is still a
     * delivery. */
    if (m.payload_len)
      ps_deliver(c->r, i, m.payload, m.payload_len, now);
    return 0;
  }
  if (CK_CODE_CLASS(m.code) != 2 || !has_obs) {
    /* RFC 7641 §3.2: a notification with an error code, or without
     * Observe, ends the observation. */
    if (c->ended++ == 0) {
      char why[200];
      describe(&m, why, sizeof why);
      fprintf(stderr,
              "coap-pubsub-bench: coapd ended an observation with "
              "%s\n",
              why);
    }
    c->r->st.errors++;
  }
  if (m.payload_len)
    ps_deliver(c->r, i, m.payload, m.payload_len, now);
  return 0;
}

/* A datagram on a publisher socket: the answer to a publish. */
static int pub_input(struct coap *c, int fd, const uint8_t *d, size_t len)
{
  struct ck_msg m;
  if (ck_msg_parse(&m, d, len) < 0)
    return 0;
  if (m.type == CK_TYPE_CON)
    send_ack(fd, m.mid);
  if (m.code == CK_CODE_EMPTY)
    return 0; /* an empty ACK: a separate answer follows */
  if (m.code == CK_CHANGED) {
    c->r->st.pub_ok++;
    return 0;
  }
  c->r->st.pub_err++;
  if (CK_CODE_CLASS(m.code) == 4) {
    char why[200];
    describe(&m, why, sizeof why);
    return ps_fail(c->r, "POST /ps/%s?%s answered %s", c->topic, c->query, why);
  }
  return 0;
}

static int on_ready(struct coap *c, uint64_t tag, uint64_t now)
{
  bool pub = tag & PUB_TAG;
  int fd = pub ? (int)(tag & 0xffffffffu) : c->subs[tag].fd;
  for (int k = 0; k < RECV_BURST; k++) {
    ssize_t n = recv(fd, c->rx, sizeof c->rx, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return 0;
      c->r->st.errors++;
      c->r->st.last_errno = errno;
      if (errno == ECONNREFUSED && c->observing < c->r->nsubs)
        return err_no(c, "recv", errno);
      return 0;
    }
    int rc = pub ? pub_input(c, fd, c->rx, (size_t)n)
                 : sub_input(c, (unsigned)tag, c->rx, (size_t)n, now);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int wait_and_handle(struct coap *c, int timeout_ms)
{
  struct epoll_event ev[MAX_EVENTS];
  int n = epoll_wait(c->ep, ev, MAX_EVENTS, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : err_no(c, "epoll_wait", errno);
  uint64_t now = ps_now_ns();
  for (int k = 0; k < n; k++)
    if (on_ready(c, ev[k].data.u64, now) < 0)
      return -1;
  return 0;
}

static int resolve(struct coap *c, const char *host, const char *port)
{
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  struct addrinfo *ai;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0)
    return ps_fail(c->r, "%s: %s", c->target, gai_strerror(rc));
  memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
  c->alen = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

static void coap_close(void *ctx);

static int coap_setup(void **ctx, struct ps_run *r, const char *host,
                      const char *port, const char *topic, unsigned timeout_ms)
{
  struct coap *c = calloc(1, sizeof *c);
  if (!c)
    return ps_fail(r, "out of memory");
  *ctx = c;
  c->r = r;
  c->pub_fd = c->pub_old_fd = -1;
  snprintf(c->target, sizeof c->target, "%s:%s", host, port);
  snprintf(c->topic, sizeof c->topic, "%s", topic);
  snprintf(c->query, sizeof c->query, "qos=%u", r->qos);
  snprintf(c->path, sizeof c->path, "%s", topic);
  c->seg[c->nseg++] = "ps";
  for (char *p = c->path, *slash; p && c->nseg < MAX_SEGS; p = slash) {
    slash = strchr(p, '/');
    c->seg[c->nseg++] = p;
    if (slash)
      *slash++ = '\0';
  }
  c->ep = epoll_create1(EPOLL_CLOEXEC);
  c->subs = calloc(r->nsubs, sizeof *c->subs);
  if (c->ep < 0 || !c->subs)
    return ps_fail(r, "out of memory");
  for (unsigned i = 0; i < r->nsubs; i++)
    c->subs[i].fd = -1;
  if (resolve(c, host, port) < 0)
    return -1;
  for (unsigned i = 0; i < r->nsubs; i++) {
    int fd = open_sock(c, i);
    if (fd < 0)
      return -1;
    c->subs[i].fd = fd;
    c->subs[i].mid = (uint16_t)(i * 7919u);
  }
  int fd = open_sock(c, PUB_TAG);
  if (fd < 0)
    return -1;
  c->pub_fd = fd;
  epoll_ctl(c->ep, EPOLL_CTL_MOD, fd,
            &(struct epoll_event){.events = EPOLLIN,
                                  .data.u64 = PUB_TAG | (unsigned)fd});

  /* Register, REG_BATCH in flight at once, each sent again after
   * REG_RTO_NS up to REG_TRIES times. */
  uint64_t deadline = ps_now_ns() + (uint64_t)timeout_ms * 1000000u;
  unsigned next = 0, inflight = 0;
  while (c->observing < r->nsubs) {
    uint64_t now = ps_now_ns();
    if (now >= deadline)
      return ps_fail(r,
                     "%u of %u subscriptions to /ps/%s not confirmed "
                     "within %u ms",
                     r->nsubs - c->observing, r->nsubs, c->topic, timeout_ms);
    inflight = 0;
    for (unsigned i = 0; i < next; i++) {
      struct sub *s = &c->subs[i];
      if (s->state == SUB_SENT && now - s->t_ns >= REG_RTO_NS) {
        if (s->tries >= REG_TRIES)
          return ps_fail(r,
                         "no answer from %s to GET /ps/%s (Observe 0) "
                         "after %u tries",
                         c->target, c->topic, REG_TRIES);
        s->tries++;
        s->t_ns = now;
        if (send_get(c, i, CK_TYPE_CON, 0) < 0)
          return -1;
      }
      inflight += s->state == SUB_SENT || s->state == SUB_SEPARATE;
    }
    while (next < r->nsubs && inflight < REG_BATCH) {
      struct sub *s = &c->subs[next];
      s->state = SUB_SENT;
      s->tries = 1;
      s->t_ns = now;
      if (send_get(c, next, CK_TYPE_CON, 0) < 0)
        return -1;
      next++;
      inflight++;
    }
    if (wait_and_handle(c, 5) < 0)
      return -1;
  }
  return 0;
}

/* Moves the publisher to a new socket once its Message IDs are used. */
static int pub_rotate(struct coap *c)
{
  int fd = open_sock(c, PUB_TAG);
  if (fd < 0)
    return -1;
  epoll_ctl(c->ep, EPOLL_CTL_MOD, fd,
            &(struct epoll_event){.events = EPOLLIN,
                                  .data.u64 = PUB_TAG | (unsigned)fd});
  if (c->pub_old_fd >= 0)
    close(c->pub_old_fd);
  c->pub_old_fd = c->pub_fd;
  c->pub_fd = fd;
  c->pub_used = 0;
  return 0;
}

static int coap_publish(void *ctx, const uint8_t *payload, size_t len)
{
  struct coap *c = ctx;
  if (c->pub_used == 65536 && pub_rotate(c) < 0)
    return -1;
  uint8_t buf[PS_MAX_PAYLOAD + 128];
  struct ck_builder b;
  ck_builder_init(&b, buf, sizeof buf, c->r->qos ? CK_TYPE_CON : CK_TYPE_NON,
                  CK_POST, c->pub_mid++);
  c->pub_used++;
  ck_builder_token(&b, &c->pub_used, sizeof c->pub_used);
  add_uri(c, &b);
  ck_builder_opt_uint(&b, CK_OPT_CONTENT_FORMAT, CF_OCTETS);
  ck_builder_payload(&b, payload, len);
  int n = ck_builder_finish(&b);
  if (n < 0)
    return ps_fail(c->r, "building POST: %s", ck_strerror(n));
  if (send(c->pub_fd, buf, (size_t)n, 0) < 0) {
    if (errno == ECONNREFUSED)
      return err_no(c, "send", errno);
    c->r->st.pub_err++;
    c->r->st.errors++;
    c->r->st.last_errno = errno;
  }
  return 0;
}

static int coap_poll(void *ctx, int timeout_ms)
{
  return wait_and_handle(ctx, timeout_ms);
}

static void coap_close(void *ctx)
{
  struct coap *c = ctx;
  if (c->subs) {
    for (unsigned i = 0; i < c->r->nsubs; i++) {
      if (c->subs[i].fd < 0)
        continue;
      /* RFC 7641 §3.6: deregister, so that the gateway stops notifying a
       * closed port; best effort, no answer awaited. */
      if (c->subs[i].state == SUB_OBSERVING) {
        c->subs[i].mid++;
        send_get(c, i, CK_TYPE_NON, 1);
      }
      close(c->subs[i].fd);
    }
    free(c->subs);
  }
  if (c->ended > 1)
    fprintf(stderr, "coap-pubsub-bench: coapd ended %u observations\n",
            c->ended);
  if (c->pub_fd >= 0)
    close(c->pub_fd);
  if (c->pub_old_fd >= 0)
    close(c->pub_old_fd);
  if (c->ep >= 0)
    close(c->ep);
  free(c);
}

const struct ps_proto ps_proto_coap = {
    .name = "coapd",
    .setup = coap_setup,
    .publish = coap_publish,
    .poll = coap_poll,
    .close = coap_close,
};
