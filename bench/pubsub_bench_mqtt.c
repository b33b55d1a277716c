/* coap-pubsub-bench's MQTT side: the publisher and N subscribers as
 * libmosquitto clients of one broker (MQTT 3.1.1), all in this process
 * and driven by one epoll loop, as the CoAP side is, so that both
 * systems meet the same client machinery: one thread, one wait.
 *
 * libmosquitto's own loop (mosquitto_loop) polls one client; N of them
 * would need N threads. Instead each client's socket (mosquitto_socket)
 * is watched with epoll and handed to mosquitto_loop_read when readable,
 * to mosquitto_loop_write when it has output queued; mosquitto_loop_misc
 * runs once a second for the keepalive. mosquitto_loop_read reads one
 * packet at a time unless QoS 1/2 messages are queued and returns once
 * the socket would block (errno EAGAIN), so it is called again while
 * the socket still has data, up to READ_BURST packets per wake-up.
 *
 * mosquitto_new() also opens a socket pair per client, whose only use is
 * to wake mosquitto_loop() in another thread; every mosquitto_publish()
 * writes a byte into it. With three descriptors per client, 10,000
 * subscribers would not fit in a limit of 20,000 open files, so the pair
 * is refused: while mosquitto_new() runs, the soft limit is lowered to
 * the lowest free descriptor, socketpair() fails with EMFILE, and
 * libmosquitto carries on without it (it logs "Unable to open socket
 * pair, outgoing publish commands may be delayed", which concerns only
 * its threaded loop). That also spares the publisher a system call per
 * message that no MQTT client needs.
 *
 * Subscribers connect CONNECT_BATCH at a time: a broker's listen backlog
 * is finite, and ten thousand connections opened at once would be
 * dropped and retried by TCP after a second. Nagle's algorithm is off
 * on the clients (MOSQ_OPT_TCP_NODELAY) and, in the configuration the
 * scripts write, on the broker (set_tcp_nodelay), as CoAP over UDP has
 * no such delay.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mosquitto.h>

#include "pubsub_bench.h"

#define CONNECT_BATCH 64u
#define READ_BURST    64
#define MAX_EVENTS    512
#define KEEPALIVE_S   60

struct mqtt;

struct client {
  struct mqtt *q;
  struct mosquitto *m;
  unsigned idx; /* subscriber index; the publisher has nsubs */
  int fd;
  bool out;        /* EPOLLOUT is being watched */
  bool connected;  /* CONNACK accepted */
  bool subscribed; /* SUBACK granted */
};

struct mqtt {
  struct ps_run *r;
  int ep;
  char target[300];
  char topic[64];
  struct client *cl; /* nsubs subscribers, then the publisher */
  unsigned ncl;      /* clients created */
  unsigned connected, subscribed;
  bool closing;
  uint64_t misc_ns; /* when mosquitto_loop_misc last ran */
};

static int mosq_fail(struct mqtt *q, const char *what, int rc)
{
  if (rc == MOSQ_ERR_ERRNO && errno == ECONNREFUSED)
    return ps_fail(q->r, "nothing listens at %s (connection refused)",
                   q->target);
  return ps_fail(q->r, "%s %s: %s", what, q->target,
                 rc == MOSQ_ERR_ERRNO ? strerror(errno)
                                      : mosquitto_strerror(rc));
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
  struct client *c = obj;
  struct mqtt *q = c->q;
  if (rc != 0) {
    ps_fail(q->r, "%s refused the connection: %s", q->target,
            mosquitto_connack_string(rc));
    return;
  }
  c->connected = true;
  q->connected++;
  if (c->idx == q->r->nsubs)
    return; /* the publisher */
  rc = mosquitto_subscribe(m, NULL, q->topic, (int)q->r->qos);
  if (rc != MOSQ_ERR_SUCCESS)
    mosq_fail(q, "SUBSCRIBE to", rc);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n,
                         const int *granted)
{
  (void)m;
  (void)mid;
  struct client *c = obj;
  if (n < 1 || granted[0] > 2) {
    ps_fail(c->q->r, "%s refused the subscription to %s", c->q->target,
            c->q->topic);
    return;
  }
  c->subscribed = true;
  c->q->subscribed++;
}

static void on_message(struct mosquitto *m, void *obj,
                       const struct mosquitto_message *msg)
{
  (void)m;
  struct client *c = obj;
  ps_deliver(c->q->r, c->idx, msg->payload, (size_t)msg->payloadlen,
             ps_now_ns());
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
  (void)m;
  (void)mid;
  struct client *c = obj;
  /* At QoS 0 this fires when the PUBLISH is written, not acknowledged. */
  if (c->q->r->qos > 0)
    c->q->r->st.pub_ok++;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
  (void)m;
  struct client *c = obj;
  if (rc != 0 && !c->q->closing)
    ps_fail(c->q->r, "%s closed the connection of client %u", c->q->target,
            c->idx);
}

/* Watches EPOLLOUT on c's socket exactly while libmosquitto has output
 * queued for it. */
static void want_out(struct client *c)
{
  bool w = mosquitto_want_write(c->m);
  if (w == c->out)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (w ? EPOLLOUT : 0),
                           .data.ptr = c};
  if (epoll_ctl(c->q->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
    c->out = w;
}

static int handle(struct client *c, uint32_t events)
{
  struct mqtt *q = c->q;
  int rc = MOSQ_ERR_SUCCESS;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (int k = 0; k < READ_BURST; k++) {
      errno = 0;
      rc = mosquitto_loop_read(c->m, 1);
      if (rc != MOSQ_ERR_SUCCESS || errno == EAGAIN)
        break;
    }
  }
  if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(c->m))
    rc = mosquitto_loop_write(c->m, 1);
  if (rc != MOSQ_ERR_SUCCESS)
    return mosq_fail(q, "connection to", rc);
  want_out(c);
  return q->r->err[0] ? -1 : 0;
}

static int wait_and_handle(struct mqtt *q, int timeout_ms)
{
  struct epoll_event ev[MAX_EVENTS];
  int n = epoll_wait(q->ep, ev, MAX_EVENTS, timeout_ms);
  if (n < 0 && errno != EINTR)
    return ps_fail(q->r, "epoll_wait: %s", strerror(errno));
  for (int k = 0; k < n; k++)
    if (handle(ev[k].data.ptr, ev[k].events) < 0)
      return -1;
  uint64_t now = ps_now_ns();
  if (now - q->misc_ns >= 1000000000u) {
    q->misc_ns = now;
    for (unsigned i = 0; i < q->ncl; i++)
      mosquitto_loop_misc(q->cl[i].m);
  }
  return q->r->err[0] ? -1 : 0;
}

/* mosquitto_new() without its wake-up socket pair (see the top). */
static struct mosquitto *new_without_pair(struct mqtt *q, const char *id,
                                          struct client *c)
{
  struct rlimit rl;
  int low = fcntl(q->ep, F_DUPFD, 0);
  if (low < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return NULL;
  close(low);
  struct rlimit tight = {(rlim_t)low, rl.rlim_max};
  bool lowered = setrlimit(RLIMIT_NOFILE, &tight) == 0;
  struct mosquitto *m = mosquitto_new(id, true, c);
  int e = errno;
  if (lowered)
    setrlimit(RLIMIT_NOFILE, &rl);
  errno = e;
  return m;
}

/* Creates client i and connects it (a blocking TCP connect on loopback;
 * the CONNACK arrives through the loop). */
static int start_client(struct mqtt *q, unsigned i, const char *host, int port)
{
  struct client *c = &q->cl[i];
  char id[48];
  snprintf(id, sizeof id, "psb-%04x-%u", q->r->run_id, i);
  c->q = q;
  c->idx = i;
  c->fd = -1;
  c->m = new_without_pair(q, id, c);
  if (!c->m)
    return ps_fail(q->r, "mosquitto_new: %s", strerror(errno));
  q->ncl++;
  mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_callback_set(c->m, on_connect);
  mosquitto_subscribe_callback_set(c->m, on_subscribe);
  mosquitto_message_callback_set(c->m, on_message);
  mosquitto_publish_callback_set(c->m, on_publish);
  mosquitto_disconnect_callback_set(c->m, on_disconnect);
  int rc = mosquitto_connect(c->m, host, port, KEEPALIVE_S);
  if (rc != MOSQ_ERR_SUCCESS)
    return mosq_fail(q, "connecting to", rc);
  c->fd = mosquitto_socket(c->m);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(q->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
    return ps_fail(q->r, "epoll_ctl: %s", strerror(errno));
  want_out(c);
  return 0;
}

static int mqtt_setup(void **ctx, struct ps_run *r, const char *host,
                      const char *port, const char *topic, unsigned timeout_ms)
{
  static bool lib_ready;
  if (!lib_ready) {
    mosquitto_lib_init();
    lib_ready = true;
  }
  struct mqtt *q = calloc(1, sizeof *q);
  if (!q)
    return ps_fail(r, "out of memory");
  *ctx = q;
  q->r = r;
  q->ep = -1;
  snprintf(q->target, sizeof q->target, "%s:%s", host, port);
  snprintf(q->topic, sizeof q->topic, "%s", topic);
  char *end;
  long p = strtol(port, &end, 10);
  if (*end || p < 1 || p > 65535)
    return ps_fail(r, "bad port '%s'", port);
  q->ep = epoll_create1(EPOLL_CLOEXEC);
  q->cl = calloc(r->nsubs + 1, sizeof *q->cl);
  if (q->ep < 0 || !q->cl)
    return ps_fail(r, "out of memory");
  q->misc_ns = ps_now_ns();

  uint64_t deadline = ps_now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (q->subscribed < r->nsubs) {
    if (ps_now_ns() >= deadline)
      return ps_fail(r,
                     "%u of %u subscriptions to %s not confirmed within "
                     "%u ms",
                     r->nsubs - q->subscribed, r->nsubs, q->topic, timeout_ms);
    while (q->ncl < r->nsubs && q->ncl - q->subscribed < CONNECT_BATCH)
      if (start_client(q, q->ncl, host, (int)p) < 0)
        return -1;
    if (wait_and_handle(q, 5) < 0)
      return -1;
  }
  if (start_client(q, r->nsubs, host, (int)p) < 0)
    return -1;
  while (!q->cl[r->nsubs].connected) {
    if (ps_now_ns() >= deadline)
      return ps_fail(r,
                     "the publisher's connection to %s was not "
                     "accepted within %u ms",
                     q->target, timeout_ms);
    if (wait_and_handle(q, 5) < 0)
      return -1;
  }
  return 0;
}

static int mqtt_publish(void *ctx, const uint8_t *payload, size_t len)
{
  struct mqtt *q = ctx;
  struct client *c = &q->cl[q->r->nsubs];
  int rc = mosquitto_publish(c->m, NULL, q->topic, (int)len, payload,
                             (int)q->r->qos, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    q->r->st.pub_err++;
    return mosq_fail(q, "publishing to", rc);
  }
  /* What the socket did not take stays queued until it is writable. */
  want_out(c);
  return 0;
}

static int mqtt_poll(void *ctx, int timeout_ms)
{
  return wait_and_handle(ctx, timeout_ms);
}

static void mqtt_close(void *ctx)
{
  struct mqtt *q = ctx;
  q->closing = true;
  for (unsigned i = 0; i < q->ncl; i++) {
    struct client *c = &q->cl[i];
    if (c->connected) {
      mosquitto_disconnect(c->m);
      mosquitto_loop_write(c->m, 1);
    }
    mosquitto_destroy(c->m);
  }
  free(q->cl);
  if (q->ep >= 0)
    close(q->ep);
  free(q);
}

const struct ps_proto ps_proto_mqtt = {
    .name = "mosquitto",
    .setup = mqtt_setup,
    .publish = mqtt_publish,
    .poll = mqtt_poll,
    .close = mqtt_close,
};
