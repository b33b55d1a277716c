/* The MQTT bus (bus_mqtt.h): every bus operation goes through a real
 * MQTT broker, with libmosquitto speaking MQTT 5 on the library's loop.
 *
 * The connection. libmosquitto's socket is watched with ck_watch (read
 * always, write while mosquitto_want_write()), its keep alive runs from
 * a one-second ck_timer (mosquitto_loop_misc), and a lost connection is
 * retried after 0.5 s, doubling to 30 s. No thread: everything happens
 * on the daemon's loop, so callbacks need no locks. Clean start: the
 * broker keeps no session for us; the subscriptions are made again on
 * every connection. libmosquitto keeps unacknowledged QoS 1 and 2
 * publishes across a reconnection and sends them again (MQTT 5 §4.4),
 * so a publish waiting for its PUBACK is not lost with the connection;
 * it completes when the new connection acknowledges it.
 *
 * Publishing. While connected, a publish goes straight to libmosquitto;
 * one at QoS >= 1 is remembered by its packet identifier until the
 * broker acknowledges it (bus_publish_acked() answers then). While the
 * broker is away, publishes wait here in order, and go out when the
 * connection is back. Both kinds count against one bound (messages and
 * bytes); beyond it a publish is refused with -EAGAIN, and counted, so
 * that nothing is dropped without the publisher knowing.
 *
 * Metadata. MQTT 5 properties carry what CoAP has and MQTT 3.1.1 lacks:
 * the Content-Format as the user property "coap-cf", the expiry as the
 * message expiry interval (MQTT 5 §3.3.2.3.3), which the broker counts
 * down, so a retained message arrives with the seconds it has left.
 *
 * Subscriptions. One broker subscription per distinct filter, shared by
 * the local subscriptions to that filter (a group). Each SUBSCRIBE
 * carries a fresh subscription identifier (MQTT 5 §3.8.2.1.2), which the
 * broker puts on every PUBLISH it sends for that subscription, so an
 * incoming message is fanned out to exactly the groups it was sent for;
 * a broker that sends one copy per overlapping subscription (Mosquitto)
 * then does not make a local subscriber see duplicates. Retained
 * messages: MQTT sends them only on a SUBSCRIBE, so a new local
 * subscription to a filter already subscribed sends the SUBSCRIBE again
 * (MQTT 5 §3.8.4: it replaces the subscription and resends the retained
 * messages). Those arrive with RETAIN set (a message forwarded live has
 * it cleared: Retain As Published is off) and with the new identifier,
 * and go only to the subscriptions that joined with that identifier,
 * not to the older ones, which had theirs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <coapkit/coapkit.h>

#include "bus_mqtt.h"
#include "log.h"

/* The user property carrying the CoAP Content-Format. */
#define CF_KEY "coap-cf"

enum {
  RECONNECT_MIN_MS = 500,
  RECONNECT_MAX_MS = 30000,
  CONNECT_TIMEOUT_S = 10, /* a TCP or MQTT handshake taking longer is
                             abandoned and retried */
  SIDS_MAX = 16,          /* identifiers remembered per filter */
  SID_LIMIT = 268435455,  /* MQTT 5 §2.2.2.2: a variable byte integer */
  MID_BUCKETS = 1024,
  PREFIX_MAX = 256,
  HOST_MAX = 256,
  CRED_MAX = 256,
};

enum state { S_DOWN, S_CONNECTING, S_UP };

struct group;

/* A local subscription; handed out as a struct bus_sub *. */
struct msub {
  struct group *g;
  struct msub *next, *prev;
  struct msub *dead_next;
  bus_deliver_fn fn;
  void *user;
  uint64_t seq;  /* creation order: one made during a delivery misses it */
  uint32_t sid;  /* the SUBSCRIBE whose retained messages are for us */
  uint8_t qos;
  bool dead;
};

/* A subscription identifier of a group, in the table by identifier. */
struct sidref {
  uint32_t sid;
  struct group *g;
  struct sidref *hnext, *gnext;
};

/* The local subscriptions to one filter: one broker subscription. */
struct group {
  struct group *hnext;       /* hash chain, by filter */
  struct group *next, *prev; /* every group */
  struct group *dead_next;
  struct msub *subs, *tail;
  size_t live;
  struct sidref *sids; /* newest first */
  unsigned nsids;
  uint32_t owed; /* a SUBSCRIBE to send with this identifier, 0: none */
  uint8_t qos;   /* the highest asked */
  bool dead;
  char filter[]; /* the bus's filter, without the prefix */
};

/* A publish held: waiting for a connection (queue), or sent at QoS >= 1
 * and waiting for its acknowledgement (by packet identifier). */
struct outmsg {
  struct outmsg *next;
  bus_done_fn done;
  void *user;
  int mid;
  size_t len;
  int cf;
  uint8_t qos;
  bool retain;
  uint32_t expiry_s;
  char *topic; /* the MQTT topic, prefix included, after the payload */
  uint8_t data[];
};

struct mqtt {
  struct bus bus; /* first: a struct bus * is a struct mqtt * */
  struct ck_ctx *ctx;
  struct mosquitto *mosq;
  struct ck_watch *w;
  unsigned wev;
  struct ck_timer *tick, *retry;
  enum state state;
  uint64_t since_ms; /* when the state last changed */
  bool started, ever_up, sid_ok;
  uint32_t backoff_ms;
  uint32_t next_sid;
  uint64_t seq;
  char host[HOST_MAX];
  int port;
  char prefix[PREFIX_MAX];
  size_t plen;
  size_t max_held, max_bytes;
  unsigned keepalive;
  size_t held, held_bytes;
  struct outmsg *q_head, *q_tail;
  struct outmsg *acks[MID_BUCKETS];
  struct group **gtab;
  size_t gsize, ngroups;
  struct sidref **stab;
  size_t ssize, nsids;
  struct group *groups;
  unsigned busy;
  struct msub *dead_subs;
  struct group *dead_groups;
  struct bus_stats st;
};

/* --- the URL --- */

struct url {
  char host[HOST_MAX];
  int port;
  char user[CRED_MAX], pass[CRED_MAX];
  bool has_user;
  char prefix[PREFIX_MAX];
};

static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
  if (n >= cap)
    return -1;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

static int url_parse(const char *url, struct url *u, char *err, size_t cap)
{
  memset(u, 0, sizeof *u);
  u->port = 1883;
  static const char scheme[] = "mqtt://";
  if (!url || strncmp(url, scheme, sizeof scheme - 1) != 0) {
    snprintf(err, cap, "'%.100s' is not embedded or mqtt://HOST:PORT",
             url ? url : "");
    return -EINVAL;
  }
  const char *a = url + sizeof scheme - 1;
  size_t alen = strcspn(a, "/");
  const char *path = a[alen] ? a + alen + 1 : NULL;
  const char *at = NULL;
  for (const char *p = a; p < a + alen; p++)
    if (*p == '@')
      at = p;
  if (at) {
    const char *colon = memchr(a, ':', (size_t)(at - a));
    size_t ul = colon ? (size_t)(colon - a) : (size_t)(at - a);
    if (ul == 0 || copy_part(u->user, sizeof u->user, a, ul) < 0 ||
        (colon && copy_part(u->pass, sizeof u->pass, colon + 1,
                            (size_t)(at - colon - 1)) < 0)) {
      snprintf(err, cap, "bad or too long user name or password in the URL");
      return -EINVAL;
    }
    u->has_user = true;
    alen -= (size_t)(at + 1 - a);
    a = at + 1;
  }
  const char *hs = a, *he;
  const char *rest;
  if (*a == '[') {
    he = memchr(a, ']', alen);
    if (!he) {
      snprintf(err, cap, "'%.100s': unterminated [IPv6] address", url);
      return -EINVAL;
    }
    hs = a + 1;
    rest = he + 1;
  } else {
    he = memchr(a, ':', alen);
    if (!he)
      he = a + alen;
    rest = he;
  }
  if (he == hs || copy_part(u->host, sizeof u->host, hs,
                            (size_t)(he - hs)) < 0) {
    snprintf(err, cap, "'%.100s': no host, or a host name too long", url);
    return -EINVAL;
  }
  if (rest < a + alen) {
    size_t pl = (size_t)(a + alen - rest - 1);
    char port[8];
    if (*rest != ':' || pl == 0 || pl > 5 ||
        copy_part(port, sizeof port, rest + 1, pl) < 0 ||
        strspn(port, "0123456789") != pl || atoi(port) < 1 ||
        atoi(port) > 65535) {
      snprintf(err, cap, "'%.100s': the port is not 1 to 65535", url);
      return -EINVAL;
    }
    u->port = atoi(port);
  }
  if (path && *path) {
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
      n--;
    if (n == 0 || copy_part(u->prefix, sizeof u->prefix, path, n) < 0 ||
        !bus_topic_valid(u->prefix, n)) {
      snprintf(err, cap, "'%.100s': the prefix is not a topic name of at "
               "most %d bytes", url, PREFIX_MAX - 1);
      return -EINVAL;
    }
  }
  return 0;
}

int bus_mqtt_url_check(const char *url, char *err, size_t cap)
{
  struct url u;
  return url_parse(url, &u, err, cap);
}

/* --- tables --- */

static size_t hash_str(const char *s)
{
  size_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int gtab_grow(struct mqtt *m)
{
  size_t size = m->gsize ? m->gsize * 2 : 64;
  struct group **t = calloc(size, sizeof *t);
  if (!t)
    return -ENOMEM;
  for (size_t i = 0; i < m->gsize; i++) {
    for (struct group *g = m->gtab[i], *n; g; g = n) {
      n = g->hnext;
      size_t k = hash_str(g->filter) & (size - 1);
      g->hnext = t[k];
      t[k] = g;
    }
  }
  free(m->gtab);
  m->gtab = t;
  m->gsize = size;
  return 0;
}

static struct group *group_find(const struct mqtt *m, const char *filter)
{
  if (!m->gsize)
    return NULL;
  struct group *g = m->gtab[hash_str(filter) & (m->gsize - 1)];
  while (g && strcmp(g->filter, filter) != 0)
    g = g->hnext;
  return g;
}

static int stab_grow(struct mqtt *m)
{
  size_t size = m->ssize ? m->ssize * 2 : 64;
  struct sidref **t = calloc(size, sizeof *t);
  if (!t)
    return -ENOMEM;
  for (size_t i = 0; i < m->ssize; i++) {
    for (struct sidref *r = m->stab[i], *n; r; r = n) {
      n = r->hnext;
      r->hnext = t[r->sid & (size - 1)];
      t[r->sid & (size - 1)] = r;
    }
  }
  free(m->stab);
  m->stab = t;
  m->ssize = size;
  return 0;
}

static struct sidref *sid_find(const struct mqtt *m, uint32_t sid)
{
  if (!m->ssize)
    return NULL;
  struct sidref *r = m->stab[sid & (m->ssize - 1)];
  while (r && r->sid != sid)
    r = r->hnext;
  return r;
}

static void sid_unhash(struct mqtt *m, struct sidref *r)
{
  struct sidref **pp = &m->stab[r->sid & (m->ssize - 1)];
  while (*pp != r)
    pp = &(*pp)->hnext;
  *pp = r->hnext;
  m->nsids--;
}

/* A new identifier for g's next SUBSCRIBE; 0 for want of memory. The
 * oldest of g's identifiers beyond SIDS_MAX is forgotten: messages still
 * carrying it are then matched by filter instead. */
static uint32_t sid_new(struct mqtt *m, struct group *g)
{
  if (m->nsids >= m->ssize * 2 && stab_grow(m) != 0)
    return 0;
  struct sidref *r = malloc(sizeof *r);
  if (!r)
    return 0;
  do {
    if (++m->next_sid > SID_LIMIT)
      m->next_sid = 1;
  } while (sid_find(m, m->next_sid));
  r->sid = m->next_sid;
  r->g = g;
  r->hnext = m->stab[r->sid & (m->ssize - 1)];
  m->stab[r->sid & (m->ssize - 1)] = r;
  m->nsids++;
  r->gnext = g->sids;
  g->sids = r;
  if (++g->nsids > SIDS_MAX) {
    struct sidref **pp = &g->sids;
    while ((*pp)->gnext)
      pp = &(*pp)->gnext;
    sid_unhash(m, *pp);
    free(*pp);
    *pp = NULL;
    g->nsids--;
  }
  return r->sid;
}

/* --- the socket on the loop --- */

static void lost(struct mqtt *m);

static void on_io(struct ck_watch *w, int fd, unsigned events, void *user);

/* Makes the watch follow libmosquitto's socket and wishes. */
static void sync_watch(struct mqtt *m)
{
  if (m->state == S_DOWN)
    return;
  int fd = mosquitto_socket(m->mosq);
  if (fd < 0) {
    lost(m);
    return;
  }
  unsigned ev =
    CK_WATCH_READ | (mosquitto_want_write(m->mosq) ? CK_WATCH_WRITE : 0u);
  if (!m->w) {
    if (ck_watch_new(m->ctx, fd, ev, on_io, m, &m->w) < 0) {
      log_warn("mqtt: cannot watch the broker's socket");
      m->w = NULL;
      lost(m);
      return;
    }
    m->wev = ev;
  } else if (ev != m->wev && ck_watch_set(m->w, ev) == 0) {
    m->wev = ev;
  }
}

static void lost(struct mqtt *m)
{
  if (m->state == S_DOWN)
    return;
  if (m->state == S_UP)
    log_warn("mqtt: lost the broker %s:%d; reconnecting", m->host, m->port);
  m->state = S_DOWN;
  m->since_ms = ck_ctx_now(m->ctx);
  m->st.connected = 0;
  /* Before libmosquitto reuses or closes the descriptor. */
  ck_watch_free(m->w);
  m->w = NULL;
  ck_timer_start(m->retry, m->backoff_ms, 0);
  m->backoff_ms = m->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
                                                       : m->backoff_ms * 2;
}

static void on_io(struct ck_watch *w, int fd, unsigned events, void *user)
{
  (void)w;
  (void)fd;
  struct mqtt *m = user;
  int rc = MOSQ_ERR_SUCCESS;
  if (events & CK_WATCH_READ)
    rc = mosquitto_loop_read(m->mosq, 1);
  if (rc == MOSQ_ERR_SUCCESS && m->state != S_DOWN &&
      (events & CK_WATCH_WRITE))
    rc = mosquitto_loop_write(m->mosq, 1);
  if (rc != MOSQ_ERR_SUCCESS)
    lost(m);
  else
    sync_watch(m);
}

static void attempt(struct mqtt *m)
{
  int rc = m->started ? mosquitto_reconnect_async(m->mosq)
                      : mosquitto_connect_bind_async(m->mosq, m->host, m->port,
                                                     (int)m->keepalive, NULL);
  m->started = true;
  m->state = S_CONNECTING;
  m->since_ms = ck_ctx_now(m->ctx);
  if (rc != MOSQ_ERR_SUCCESS) {
    log_debug("mqtt: cannot connect to %s:%d: %s", m->host, m->port,
              rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    lost(m);
    return;
  }
  sync_watch(m);
}

static void on_retry(struct ck_timer *t, void *user)
{
  (void)t;
  attempt(user);
}

static void on_tick(struct ck_timer *t, void *user)
{
  (void)t;
  struct mqtt *m = user;
  if (m->state == S_DOWN)
    return;
  if (m->state == S_CONNECTING &&
      ck_ctx_now(m->ctx) - m->since_ms > CONNECT_TIMEOUT_S * 1000u) {
    log_debug("mqtt: no answer from %s:%d", m->host, m->port);
    lost(m);
    return;
  }
  int rc = mosquitto_loop_misc(m->mosq);
  if (rc != MOSQ_ERR_SUCCESS)
    lost(m);
  else
    sync_watch(m);
}

/* --- publishing --- */

static void held_drop(struct mqtt *m, struct outmsg *o)
{
  m->held--;
  m->held_bytes -= o->len;
  m->st.buffered = m->held;
  free(o);
}

static int send_msg(struct mqtt *m, struct outmsg *o)
{
  mosquitto_property *props = NULL;
  int rc = MOSQ_ERR_SUCCESS;
  if (o->cf >= 0) {
    char cf[12];
    snprintf(cf, sizeof cf, "%d", o->cf);
    rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY,
                                            CF_KEY, cf);
  }
  if (rc == MOSQ_ERR_SUCCESS && o->expiry_s)
    rc = mosquitto_property_add_int32(
      &props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, o->expiry_s);
  int mid = 0;
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_publish_v5(m->mosq, &mid, o->topic, (int)o->len, o->data,
                              o->qos, o->retain, props);
  mosquitto_property_free_all(&props);
  o->mid = mid;
  return rc;
}

/* After a successful send: a QoS 0 message is done with; a QoS >= 1
 * one waits for its acknowledgement. */
static void sent(struct mqtt *m, struct outmsg *o)
{
  if (o->qos == 0) {
    held_drop(m, o);
    return;
  }
  struct outmsg **b = &m->acks[(unsigned)o->mid % MID_BUCKETS];
  o->next = *b;
  *b = o;
}

static int map_err(int rc)
{
  switch (rc) {
  case MOSQ_ERR_NOMEM:
    return -ENOMEM;
  case MOSQ_ERR_PAYLOAD_SIZE:
  case MOSQ_ERR_OVERSIZE_PACKET:
    return -EMSGSIZE;
  case MOSQ_ERR_INVAL:
  case MOSQ_ERR_QOS_NOT_SUPPORTED:
  case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
  case MOSQ_ERR_MALFORMED_UTF8:
    return -EINVAL;
  default:
    return -EIO;
  }
}

/* Sends what waited for the connection, in order, while it lasts. */
static void flush(struct mqtt *m)
{
  while (m->state == S_UP && m->q_head) {
    struct outmsg *o = m->q_head;
    m->q_head = o->next;
    if (!m->q_head)
      m->q_tail = NULL;
    int rc = send_msg(m, o);
    if (rc == MOSQ_ERR_SUCCESS) {
      sent(m, o);
      continue;
    }
    if (rc == MOSQ_ERR_NO_CONN) {
      o->next = m->q_head;
      m->q_head = o;
      if (!m->q_tail)
        m->q_tail = o;
      break;
    }
    bus_done_fn done = o->done;
    void *user = o->user;
    held_drop(m, o);
    m->st.dropped++;
    if (done)
      done(user, map_err(rc));
  }
}

static int op_publish(struct bus *b, const struct bus_msg *msg,
                      bus_done_fn done, void *user)
{
  struct mqtt *m = (struct mqtt *)b;
  if (!msg || !msg->topic || msg->qos > 2 || (msg->len > 0 && !msg->payload) ||
      !bus_topic_valid(msg->topic, strnlen(msg->topic, BUS_TOPIC_MAX + 1)))
    return -EINVAL;
  if (msg->len > (size_t)INT_MAX / 2)
    return -EMSGSIZE;
  if (m->held >= m->max_held || msg->len > m->max_bytes - m->held_bytes) {
    m->st.refused++;
    return -EAGAIN;
  }
  size_t tlen = strlen(msg->topic), full = m->plen + (m->plen ? 1 : 0) + tlen;
  struct outmsg *o = malloc(sizeof *o + msg->len + full + 1);
  if (!o)
    return -ENOMEM;
  *o = (struct outmsg){.done = msg->qos > 0 ? done : NULL,
                       .user = user,
                       .len = msg->len,
                       .cf = msg->cf,
                       .qos = msg->qos,
                       .retain = msg->retain,
                       .expiry_s = msg->expiry_s};
  if (msg->len)
    memcpy(o->data, msg->payload, msg->len);
  o->topic = (char *)o->data + msg->len;
  if (m->plen) {
    memcpy(o->topic, m->prefix, m->plen);
    o->topic[m->plen] = '/';
  }
  memcpy(o->topic + full - tlen, msg->topic, tlen + 1);
  m->held++;
  m->held_bytes += msg->len;
  m->st.buffered = m->held;
  int pending = o->done ? BUS_PENDING : 0;
  /* Behind what waits already, to keep the publish order. */
  if (m->state == S_UP && !m->q_head) {
    int rc = send_msg(m, o);
    if (rc == MOSQ_ERR_SUCCESS) {
      m->st.published++;
      sent(m, o);
      sync_watch(m);
      return pending;
    }
    if (rc != MOSQ_ERR_NO_CONN) {
      held_drop(m, o);
      return map_err(rc);
    }
  }
  m->st.published++;
  o->next = NULL;
  if (m->q_tail)
    m->q_tail->next = o;
  else
    m->q_head = o;
  m->q_tail = o;
  return pending;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
  (void)mosq;
  (void)props;
  struct mqtt *m = obj;
  struct outmsg **pp = &m->acks[(unsigned)mid % MID_BUCKETS];
  while (*pp && (*pp)->mid != mid)
    pp = &(*pp)->next;
  struct outmsg *o = *pp;
  if (!o)
    return; /* a QoS 0 message, written out */
  *pp = o->next;
  bus_done_fn done = o->done;
  void *user = o->user;
  held_drop(m, o);
  /* MQTT 5 §2.4: a reason code of 0x80 or more is a failure (not
   * authorized, quota exceeded, ...). */
  if (reason >= 0x80) {
    m->st.dropped++;
    log_debug("mqtt: the broker refused a publish: %s",
              mosquitto_reason_string(reason));
  }
  if (done)
    done(user, reason >= 0x80 ? -EIO : 0);
}

/* --- subscriptions --- */

static void group_send(struct mqtt *m, struct group *g)
{
  char full[PREFIX_MAX + BUS_TOPIC_MAX + 2];
  snprintf(full, sizeof full, "%s%s%s", m->prefix, m->plen ? "/" : "",
           g->filter);
  mosquitto_property *props = NULL;
  int rc = MOSQ_ERR_SUCCESS;
  if (m->sid_ok && g->owed)
    rc = mosquitto_property_add_varint(&props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER,
                                       g->owed);
  if (rc == MOSQ_ERR_SUCCESS)
    rc = mosquitto_subscribe_v5(m->mosq, NULL, full, g->qos, 0, props);
  mosquitto_property_free_all(&props);
  if (rc == MOSQ_ERR_SUCCESS)
    g->owed = 0;
  else if (rc != MOSQ_ERR_NO_CONN)
    log_warn("mqtt: cannot subscribe to %s: %s", full, mosquitto_strerror(rc));
}

static void group_free(struct group *g)
{
  while (g->subs) {
    struct msub *s = g->subs;
    g->subs = s->next;
    free(s);
  }
  free(g);
}

/* The last local subscription to g went: the broker's goes too. */
static void group_drop(struct mqtt *m, struct group *g)
{
  if (m->state == S_UP) {
    char full[PREFIX_MAX + BUS_TOPIC_MAX + 2];
    snprintf(full, sizeof full, "%s%s%s", m->prefix, m->plen ? "/" : "",
             g->filter);
    (void)mosquitto_unsubscribe_v5(m->mosq, NULL, full, NULL);
    sync_watch(m);
  }
  struct group **pp = &m->gtab[hash_str(g->filter) & (m->gsize - 1)];
  while (*pp != g)
    pp = &(*pp)->hnext;
  *pp = g->hnext;
  m->ngroups--;
  if (g->prev)
    g->prev->next = g->next;
  else
    m->groups = g->next;
  if (g->next)
    g->next->prev = g->prev;
  while (g->sids) {
    struct sidref *r = g->sids;
    g->sids = r->gnext;
    sid_unhash(m, r);
    free(r);
  }
  g->dead = true;
  if (m->busy) {
    g->dead_next = m->dead_groups;
    m->dead_groups = g;
  } else {
    group_free(g);
  }
}

static struct group *group_new(struct mqtt *m, const char *filter, size_t len)
{
  if (m->ngroups >= m->gsize * 2 && gtab_grow(m) != 0)
    return NULL;
  struct group *g = calloc(1, sizeof *g + len + 1);
  if (!g)
    return NULL;
  memcpy(g->filter, filter, len + 1);
  size_t k = hash_str(filter) & (m->gsize - 1);
  g->hnext = m->gtab[k];
  m->gtab[k] = g;
  g->next = m->groups;
  if (m->groups)
    m->groups->prev = g;
  m->groups = g;
  m->ngroups++;
  return g;
}

static void op_unsubscribe(struct bus *b, struct bus_sub *bs)
{
  struct mqtt *m = (struct mqtt *)b;
  struct msub *s = (struct msub *)bs;
  if (s->dead)
    return;
  s->dead = true;
  struct group *g = s->g;
  g->live--;
  m->st.subscriptions--;
  if (m->busy) {
    /* A delivery may be walking g's list: unlinked by the sweep. */
    s->dead_next = m->dead_subs;
    m->dead_subs = s;
  } else {
    if (s->prev)
      s->prev->next = s->next;
    else
      g->subs = s->next;
    if (s->next)
      s->next->prev = s->prev;
    else
      g->tail = s->prev;
    free(s);
  }
  if (g->live == 0)
    group_drop(m, g);
}

static int op_subscribe(struct bus *b, const char *filter, uint8_t qos,
                        bus_deliver_fn fn, void *user, struct bus_sub **out)
{
  struct mqtt *m = (struct mqtt *)b;
  size_t len = filter ? strnlen(filter, BUS_TOPIC_MAX + 1) : 0;
  if (!filter || !fn || !out || qos > 2 || !bus_filter_valid(filter, len))
    return -EINVAL;
  struct group *g = group_find(m, filter);
  bool fresh = !g;
  if (fresh && !(g = group_new(m, filter, len)))
    return -ENOMEM;
  struct msub *s = calloc(1, sizeof *s);
  /* The retained messages of this subscription come with the next
   * SUBSCRIBE's identifier: the one owed already, or a new one. */
  uint32_t sid = g->owed ? g->owed : s ? sid_new(m, g) : 0;
  if (!s || !sid) {
    free(s);
    if (fresh)
      group_drop(m, g);
    return -ENOMEM;
  }
  *s = (struct msub){
    .g = g, .prev = g->tail, .fn = fn, .user = user, .seq = m->seq++,
    .sid = sid, .qos = qos};
  if (g->tail)
    g->tail->next = s;
  else
    g->subs = s;
  g->tail = s;
  g->live++;
  g->owed = sid;
  if (qos > g->qos)
    g->qos = qos;
  m->st.subscriptions++;
  *out = (struct bus_sub *)s;
  if (m->state == S_UP) {
    group_send(m, g);
    sync_watch(m);
  }
  return 0;
}

/* --- receiving --- */

static int cf_of(const mosquitto_property *props)
{
  int cf = -1;
  char *k = NULL, *v = NULL;
  bool skip = false;
  const mosquitto_property *p = props;
  while ((p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY,
                                                  &k, &v, skip))) {
    skip = true;
    size_t n = strlen(v);
    if (strcmp(k, CF_KEY) == 0 && n > 0 && n <= 5 &&
        strspn(v, "0123456789") == n && atoi(v) <= 65535)
      cf = atoi(v);
    free(k);
    free(v);
    k = v = NULL;
  }
  return cf;
}

/* Delivers d to g's subscriptions older than limit (to those that joined
 * with sid only, when sid is set). */
static void deliver_group(struct mqtt *m, struct group *g,
                          const struct bus_msg *d, uint32_t sid,
                          uint64_t limit)
{
  /* A callback may unsubscribe any of them: nothing is freed while busy,
   * so s->next stays good. */
  for (struct msub *s = g->subs; s; s = s->next) {
    if (s->dead || s->seq >= limit || (sid && s->sid != sid))
      continue;
    struct bus_msg x = *d;
    if (s->qos < x.qos)
      x.qos = s->qos;
    m->st.delivered++;
    s->fn(s->user, &x);
  }
}

static void sweep(struct mqtt *m)
{
  while (m->dead_subs) {
    struct msub *s = m->dead_subs;
    m->dead_subs = s->dead_next;
    if (s->g->dead)
      continue; /* freed with its group */
    struct group *g = s->g;
    if (s->prev)
      s->prev->next = s->next;
    else
      g->subs = s->next;
    if (s->next)
      s->next->prev = s->prev;
    else
      g->tail = s->prev;
    free(s);
  }
  while (m->dead_groups) {
    struct group *g = m->dead_groups;
    m->dead_groups = g->dead_next;
    group_free(g);
  }
}

static void on_message(struct mosquitto *mosq, void *obj,
                       const struct mosquitto_message *mm,
                       const mosquitto_property *props)
{
  (void)mosq;
  struct mqtt *m = obj;
  const char *topic = mm->topic;
  if (m->plen) {
    if (strncmp(topic, m->prefix, m->plen) != 0 || topic[m->plen] != '/') {
      m->st.dropped++;
      return;
    }
    topic += m->plen + 1;
  }
  if (!bus_topic_valid(topic, strnlen(topic, BUS_TOPIC_MAX + 1)) ||
      mm->payloadlen < 0) {
    m->st.dropped++;
    return;
  }
  struct bus_msg d = {.topic = topic,
                      .payload = mm->payload,
                      .len = (size_t)mm->payloadlen,
                      .cf = cf_of(props),
                      .qos = (uint8_t)mm->qos,
                      .retain = mm->retain,
                      .from_retained = mm->retain};
  uint32_t exp = 0;
  if (mosquitto_property_read_int32(props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
                                    &exp, false))
    d.expiry_s = d.expiry_left_s = exp;
  uint64_t limit = m->seq;
  m->busy++;
  bool any = false, known = false, skip = false;
  uint32_t sid = 0;
  const mosquitto_property *p = props;
  while ((p = mosquitto_property_read_varint(
            p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &sid, skip))) {
    skip = true;
    any = true;
    struct sidref *r = sid_find(m, sid);
    if (!r || r->g->dead)
      continue;
    known = true;
    deliver_group(m, r->g, &d, mm->retain ? sid : 0, limit);
  }
  /* No identifier we know (a broker without them, or one forgotten):
   * by filter. Retained messages of a forgotten SUBSCRIBE had nobody
   * left waiting for them. */
  if (!known && !(any && mm->retain)) {
    for (struct group *g = m->groups; g; g = g->next)
      if (!g->dead && bus_filter_match(g->filter, topic))
        deliver_group(m, g, &d, 0, limit);
  }
  if (--m->busy == 0)
    sweep(m);
}

/* --- connection events --- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
  (void)mosq;
  (void)flags;
  struct mqtt *m = obj;
  if (rc != 0) {
    /* libmosquitto drops the connection next: lost() follows. */
    log_warn("mqtt: the broker %s:%d refused the connection: %s", m->host,
             m->port, mosquitto_reason_string(rc));
    return;
  }
  m->state = S_UP;
  m->since_ms = ck_ctx_now(m->ctx);
  m->st.connected = 1;
  if (m->ever_up)
    m->st.reconnects++;
  log_info("mqtt: connected to the broker %s:%d%s", m->host, m->port,
           m->ever_up ? " again" : "");
  m->ever_up = true;
  m->backoff_ms = RECONNECT_MIN_MS;
  uint8_t avail = 1;
  mosquitto_property_read_byte(props, MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE,
                               &avail, false);
  m->sid_ok = avail != 0;
  /* Clean start: the broker knows none of our subscriptions. Those owed
   * a SUBSCRIBE keep their identifier (their subscriptions wait for
   * retained messages); the others get a new one nobody waits on, so
   * that their subscribers do not see the retained messages twice. */
  for (struct group *g = m->groups; g; g = g->next) {
    if (!g->owed)
      g->owed = sid_new(m, g);
    group_send(m, g);
  }
  flush(m);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
  (void)mosq;
  (void)rc;
  (void)props;
  lost(obj);
}

static void on_log(struct mosquitto *mosq, void *obj, int level,
                   const char *str)
{
  (void)mosq;
  (void)obj;
  if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
    log_debug("mqtt: libmosquitto: %s", str);
}

/* --- the rest of the operations --- */

static void op_stats(const struct bus *b, struct bus_stats *out)
{
  *out = ((const struct mqtt *)b)->st;
}

static void op_free(struct bus *b)
{
  struct mqtt *m = (struct mqtt *)b;
  if (m->mosq) {
    if (m->state == S_UP)
      (void)mosquitto_disconnect(m->mosq);
    mosquitto_destroy(m->mosq);
  }
  ck_watch_free(m->w);
  ck_timer_free(m->tick);
  ck_timer_free(m->retry);
  while (m->q_head) {
    struct outmsg *o = m->q_head;
    m->q_head = o->next;
    free(o);
  }
  for (size_t i = 0; i < MID_BUCKETS; i++) {
    while (m->acks[i]) {
      struct outmsg *o = m->acks[i];
      m->acks[i] = o->next;
      free(o);
    }
  }
  while (m->groups) {
    struct group *g = m->groups;
    m->groups = g->next;
    while (g->sids) {
      struct sidref *r = g->sids;
      g->sids = r->gnext;
      free(r);
    }
    group_free(g);
  }
  free(m->gtab);
  free(m->stab);
  free(m);
}

static const struct bus_ops mqtt_ops = {
  .publish = op_publish,
  .subscribe = op_subscribe,
  .unsubscribe = op_unsubscribe,
  .stats = op_stats,
  .free = op_free,
};

static int lib_init(void)
{
  static bool done;
  if (done)
    return 0;
  if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
    return -ENOMEM;
  done = true;
  return 0;
}

static int setup(struct mqtt *m, const struct bus_mqtt_config *cfg,
                 const struct url *u)
{
  char id[128];
  if (cfg->client_id && *cfg->client_id) {
    snprintf(id, sizeof id, "%s", cfg->client_id);
  } else {
    char host[64] = "host";
    if (gethostname(host, sizeof host) != 0)
      snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    snprintf(id, sizeof id, "coapd-%s-%ld", host, (long)getpid());
  }
  m->mosq = mosquitto_new(id, true, m);
  if (!m->mosq)
    return errno == EINVAL ? -EINVAL : -ENOMEM;
  if (mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                           MQTT_PROTOCOL_V5) != MOSQ_ERR_SUCCESS)
    return -EINVAL;
  if (u->has_user &&
      mosquitto_username_pw_set(m->mosq, u->user, u->pass[0] ? u->pass : NULL)
        != MOSQ_ERR_SUCCESS)
    return -EINVAL;
  if (cfg->cafile && *cfg->cafile) {
    const char *cert = cfg->certfile && *cfg->certfile ? cfg->certfile : NULL;
    const char *key = cfg->keyfile && *cfg->keyfile ? cfg->keyfile : NULL;
    int rc = mosquitto_tls_set(m->mosq, cfg->cafile, NULL, cert, key, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
      log_error("mqtt: TLS settings refused: %s", mosquitto_strerror(rc));
      return -EINVAL;
    }
  }
  mosquitto_connect_v5_callback_set(m->mosq, on_connect);
  mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
  mosquitto_publish_v5_callback_set(m->mosq, on_publish);
  mosquitto_message_v5_callback_set(m->mosq, on_message);
  mosquitto_log_callback_set(m->mosq, on_log);
  int rc = ck_timer_new(m->ctx, on_tick, m, &m->tick);
  if (rc == 0)
    rc = ck_timer_new(m->ctx, on_retry, m, &m->retry);
  if (rc < 0)
    return -ENOMEM;
  if (gtab_grow(m) != 0 || stab_grow(m) != 0)
    return -ENOMEM;
  return 0;
}

int bus_mqtt_new(struct ck_ctx *ctx, const struct bus_mqtt_config *cfg,
                 struct bus **out)
{
  if (!ctx || !cfg || !out)
    return -EINVAL;
  *out = NULL;
  struct url u;
  char why[256];
  int rc = url_parse(cfg->url, &u, why, sizeof why);
  if (rc < 0) {
    log_error("mqtt: %s", why);
    return rc;
  }
  if ((rc = lib_init()) < 0)
    return rc;
  struct mqtt *m = calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  m->bus.ops = &mqtt_ops;
  m->ctx = ctx;
  memcpy(m->host, u.host, sizeof m->host);
  m->port = u.port;
  memcpy(m->prefix, u.prefix, sizeof m->prefix);
  m->plen = strlen(m->prefix);
  m->max_held = cfg->max_buffered ? cfg->max_buffered : 10000;
  m->max_bytes =
    cfg->max_buffered_bytes ? cfg->max_buffered_bytes : (size_t)16 << 20;
  m->keepalive = cfg->keepalive_s >= 5 ? cfg->keepalive_s : 30;
  m->backoff_ms = RECONNECT_MIN_MS;
  m->sid_ok = true;
  if ((rc = setup(m, cfg, &u)) < 0) {
    op_free(&m->bus);
    return rc;
  }
  ck_timer_start(m->tick, 1000, 1000);
  attempt(m);
  *out = &m->bus;
  return 0;
}
