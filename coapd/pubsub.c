/* The publish/subscribe gateway (SPEC "Publish/subscribe gateway"): the
 * CoAP face of the bus, with the URIs, query keys and answers of EMQX's
 * CoAP gateway, so that devices written for EMQX work unchanged.
 *
 * ps/{+topic} (and mqtt/{+topic}, EMQX 4.x's name) is one resource tree.
 * POST or PUT publishes the payload to the topic; GET with Observe=0
 * subscribes with the topic as an MQTT filter; GET with Observe=1
 * unsubscribes. A subscription is a library observer taken over by the
 * gateway (ck_observer_new) and fed from a bus subscription: the library
 * keeps the order, the single CON in flight and the bounded queue, and
 * tells us when and why an observation ends (RST, timeout, ...), which
 * removes the bus subscription too.
 *
 * Who may do what: in connection mode every request names a session
 * (clientid + token, pubsub_session.c) whose user was checked when it
 * was created; otherwise, once the registry has users, each request
 * carries username + password. The user's ACL patterns decide (4.03).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub_int.h"

void pubsub_fail(struct pubsub *ps, struct ck_response *resp, uint8_t code,
                 const char *reason)
{
  if (code == CK_BAD_REQUEST)
    ps->st.bad_requests++;
  else if (code == CK_UNAUTHORIZED)
    ps->st.auth_failures++;
  else if (code == CK_FORBIDDEN)
    ps->st.acl_denied++;
  else if (code == CK_SERVICE_UNAVAILABLE) {
    ps->st.unavailable++;
    ck_response_opt_uint(resp, CK_OPT_MAX_AGE, 5); /* retry soon */
  }
  ck_response_code(resp, code);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, reason, strlen(reason));
}

/* The topic in path (n bytes, NUL-terminated, as ck_request_path()
 * wrote it): what follows "ps/" or "mqtt/", the segments joined with
 * '/'. Returns a pointer into path and its length in *len, or NULL
 * (answered) when it is empty or too long. */
static char *topic_of(struct pubsub *ps, struct ck_response *resp,
                      char *path, int n, size_t *len)
{
  if (n < 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "topic too long");
    return NULL;
  }
  char *slash = memchr(path, '/', (size_t)n);
  if (!slash || slash + 1 == path + n) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "empty topic");
    return NULL;
  }
  *len = (size_t)(path + n - (slash + 1));
  if (*len > BUS_TOPIC_MAX) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "topic too long");
    return NULL;
  }
  return slash + 1;
}

/* Decides who sends req. Returns 0 with *user (NULL: anonymous) and
 * *sess set, or -1 when resp was answered (4.00, 4.01). */
static int authenticate(struct pubsub *ps, const struct ck_request *req,
                        struct ck_response *resp, const struct query *q,
                        const char **user, struct session **sess,
                        char *name, size_t cap)
{
  *user = NULL;
  *sess = NULL;
  if (ps->cfg.connection_required || (q->clientid.set && q->token.set)) {
    /* Without --connection-required a session is optional, but a
     * request that names one must name it rightly. */
    *sess = session_check(ps, req, resp, q);
    if (!*sess)
      return -1;
    const char *u = session_username(*sess);
    *user = u && u[0] ? u : NULL;
    return 0;
  }
  if (!ps->reg || registry_user_count(ps->reg) == 0)
    return 0; /* no users: anonymous access, as in EMQX */
  if (!q->username.set || !q->password.set) {
    pubsub_fail(ps, resp, CK_UNAUTHORIZED, "username and password needed");
    return -1;
  }
  if (q->username.n >= cap ||
      registry_user_check(ps->reg, q->username.p, q->username.n,
                          q->password.p, q->password.n) < 0) {
    pubsub_fail(ps, resp, CK_UNAUTHORIZED, "bad username or password");
    return -1;
  }
  memcpy(name, q->username.p, q->username.n);
  name[q->username.n] = '\0';
  *user = name;
  return 0;
}

static bool allowed(struct pubsub *ps, const char *user, enum reg_acl kind,
                    const char *topic)
{
  if (!user || !ps->reg)
    return true; /* anonymous access is allowed only with no users */
  return registry_user_allows(ps->reg, user, kind, topic);
}

/* qos from the query, else from the request's type (NON 0, CON 1).
 * Returns 0..2, or -1 (answered). */
static int qos_of(struct pubsub *ps, const struct ck_request *req,
                  struct ck_response *resp, const struct query *q)
{
  if (!q->qos.set)
    return ck_request_msg(req)->type == CK_TYPE_CON ? 1 : 0;
  uint32_t v;
  if (qv_uint(&q->qos, 2, &v) < 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "qos must be 0, 1 or 2");
    return -1;
  }
  return (int)v;
}

/* A publish the bus settles later (MQTT QoS >= 1): the answer waits for
 * the broker, so that 2.04 means the message is safe. */
struct pending_pub {
  struct pubsub *ps;
  struct ck_deferred *d;
};

static void publish_done(void *user, int result)
{
  struct pending_pub *p = user;
  if (!p->d) { /* answered already, see h_publish */
    free(p);
    return;
  }
  struct ck_response *resp = ck_deferred_response(p->d);
  if (result < 0) {
    pubsub_fail(p->ps, resp, CK_SERVICE_UNAVAILABLE,
                "the bus did not take the message");
  } else {
    p->ps->st.published++;
    ck_response_code(resp, CK_CHANGED);
  }
  ck_deferred_send(p->d);
  free(p);
}

static void h_publish(struct pubsub *ps, const struct ck_request *req,
                      struct ck_response *resp, const struct query *q,
                      const char *user, const char *topic, size_t tlen)
{
  if (!bus_topic_valid(topic, tlen)) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST,
                "invalid topic to publish to (no + or #, no empty topic)");
    return;
  }
  int qos = qos_of(ps, req, resp, q);
  if (qos < 0)
    return;
  bool retain = false;
  if (q->retain.set && qv_bool(&q->retain, &retain) < 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "retain must be true or false");
    return;
  }
  uint32_t expiry = 0;
  if (q->expiry.set && qv_uint(&q->expiry, UINT32_MAX, &expiry) < 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "expiry must be seconds");
    return;
  }
  size_t len;
  const uint8_t *p = ck_request_payload(req, &len);
  if (len > ps->cfg.max_payload) {
    char why[64];
    snprintf(why, sizeof why, "payload over %u bytes", ps->cfg.max_payload);
    pubsub_fail(ps, resp, CK_BAD_REQUEST, why);
    return;
  }
  if (!allowed(ps, user, REG_ACL_PUB, topic)) {
    pubsub_fail(ps, resp, CK_FORBIDDEN, "not allowed to publish here");
    return;
  }
  struct bus_msg m = {.topic = topic,
                      .payload = p,
                      .len = len,
                      .cf = (int)ck_request_uint(req, CK_OPT_CONTENT_FORMAT,
                                                 UINT32_MAX),
                      .qos = (uint8_t)qos,
                      .retain = retain,
                      .expiry_s = expiry};
  if (!ck_request_has(req, CK_OPT_CONTENT_FORMAT))
    m.cf = -1;
  struct pending_pub *pp = NULL;
  if (qos > 0)
    pp = malloc(sizeof *pp);
  int rc = pp ? bus_publish_acked(ps->bus, &m, publish_done, pp)
              : bus_publish(ps->bus, &m);
  if (rc == BUS_PENDING) {
    pp->ps = ps;
    pp->d = ck_response_defer(resp, 0);
    if (!pp->d) {
      /* The library cannot hold this answer (it never refuses a fresh
       * request): the bus has the message; answer now. */
      ps->st.published++;
      ck_response_code(resp, CK_CHANGED);
    }
    return;
  }
  free(pp);
  if (rc == -EAGAIN) {
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE,
                "the broker is unreachable; try again");
  } else if (rc == -EINVAL || rc == -EMSGSIZE) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "message refused by the bus");
  } else if (rc == -ENOSPC || rc == -ENOMEM) {
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE, "retained store full");
  } else if (rc < 0) {
    pubsub_fail(ps, resp, CK_INTERNAL_SERVER_ERROR, "cannot store it");
  } else {
    ps->st.published++;
    ck_response_code(resp, CK_CHANGED);
  }
}

/* --- subscriptions --- */

static void deliver(void *user, const struct bus_msg *m)
{
  struct sub *s = user;
  struct ck_notification n = {.payload = m->payload,
                              .len = m->len,
                              .has_cf = m->cf >= 0,
                              .cf = m->cf >= 0 ? (uint16_t)m->cf : 0};
  uint32_t left = m->from_retained ? m->expiry_left_s : m->expiry_s;
  if (left)
    n.expires_ms = ck_ctx_now(s->ps->ctx) + (uint64_t)left * 1000;
  int rc = ck_observer_notify(s->obs, &n);
  if (rc >= 0) {
    s->ps->st.notifications++;
    s->ps->st.queue_drops += (uint64_t)rc;
  }
}

static void sub_unlink(struct sub *s)
{
  struct pubsub *ps = s->ps;
  if (s->prev)
    s->prev->next = s->next;
  else
    ps->subs = s->next;
  if (s->next)
    s->next->prev = s->prev;
  session_remove_sub(s);
  bus_unsubscribe(ps->bus, s->bs);
  ps->st.subscriptions--;
  free(s);
}

static void on_end(struct ck_observer *o, int why, void *user)
{
  (void)o;
  struct sub *s = user;
  if (why == CK_OBSERVER_RESET)
    s->ps->st.ended_reset++;
  else if (why == CK_OBSERVER_TIMEOUT)
    s->ps->st.ended_timeout++;
  else
    s->ps->st.ended_other++;
  sub_unlink(s);
}

void sub_free(struct sub *s)
{
  ck_observer_free(s->obs);
  sub_unlink(s);
}

static void h_subscribe(struct pubsub *ps, const struct ck_request *req,
                        struct ck_response *resp, const struct query *q,
                        const char *user, struct session *sess,
                        const char *filter, size_t flen)
{
  if (ck_request_msg(req)->tkl == 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "observe needs a token");
    return;
  }
  if (!bus_filter_valid(filter, flen)) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "invalid topic filter");
    return;
  }
  int qos = qos_of(ps, req, resp, q);
  if (qos < 0)
    return;
  if (!allowed(ps, user, REG_ACL_SUB, filter)) {
    pubsub_fail(ps, resp, CK_FORBIDDEN, "not allowed to subscribe here");
    return;
  }
  struct sub *s = calloc(1, sizeof *s);
  if (!s) {
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE, "out of memory");
    return;
  }
  s->ps = ps;
  static const enum ck_observer_type types[] = {
    [NOTIFY_CON] = CK_OBSERVER_TYPE_CON, [NOTIFY_NON] = CK_OBSERVER_TYPE_NON};
  struct ck_observer_config oc = {
    .queue_max = ps->cfg.queue_max,
    .type = ps->cfg.notify_type == NOTIFY_QOS
              ? (qos == 0 ? CK_OBSERVER_TYPE_NON : CK_OBSERVER_TYPE_CON)
              : types[ps->cfg.notify_type],
    .on_end = on_end,
    .user = s};
  int rc = ck_observer_new(req, resp, &oc, &s->obs);
  if (rc < 0) {
    free(s);
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE,
                rc == CK_EFULL ? "too many subscriptions" : "out of memory");
    return;
  }
  s->next = ps->subs;
  if (ps->subs)
    ps->subs->prev = s;
  ps->subs = s;
  ps->st.subscriptions++;
  if (sess)
    session_add_sub(sess, s);
  /* The retained messages arrive during this call and wait in the
   * observer's queue until the 2.05 below has gone out. */
  rc = bus_subscribe(ps->bus, filter, (uint8_t)qos, deliver, s, &s->bs);
  if (rc < 0) {
    /* A non-2.xx answer ends the observer, and on_end the rest. */
    pubsub_fail(ps, resp,
                rc == -EINVAL ? CK_BAD_REQUEST : CK_SERVICE_UNAVAILABLE,
                rc == -EINVAL ? "invalid topic filter"
                              : "too many subscriptions");
    return;
  }
  ck_response_code(resp, CK_CONTENT);
}

/* GET on a topic without Observe: its retained message, if any. The
 * embedded bus hands retained messages over during bus_subscribe(); a
 * broker sends them a round trip later, so then the answer waits (up to
 * READ_WAIT_MS) for the first one. */
enum { READ_WAIT_MS = 500 };

struct read_wait {
  struct read_wait *next, *prev; /* ps->reads, while the answer waits */
  struct pubsub *ps;
  struct ck_response *resp; /* the handler's, or the deferred one */
  struct ck_deferred *d;    /* set once the answer waits */
  struct bus_sub *bs;
  struct ck_timer *timer;
  bool got;
};

static void read_finish(struct read_wait *w)
{
  if (w->prev)
    w->prev->next = w->next;
  else
    w->ps->reads = w->next;
  if (w->next)
    w->next->prev = w->prev;
  bus_unsubscribe(w->ps->bus, w->bs);
  ck_timer_free(w->timer);
  ck_deferred_send(w->d);
  free(w);
}

static void keep_first(void *user, const struct bus_msg *m)
{
  struct read_wait *w = user;
  if (w->got || !m->from_retained)
    return;
  w->got = true;
  if (m->cf >= 0)
    ck_response_opt_uint(w->resp, CK_OPT_CONTENT_FORMAT, (uint32_t)m->cf);
  ck_response_payload(w->resp, m->payload, m->len);
  ck_response_code(w->resp, CK_CONTENT);
  if (w->d) /* it came from the broker, after the handler returned */
    ck_timer_start(w->timer, 0, 0);
}

static void read_timeout(struct ck_timer *t, void *user)
{
  (void)t;
  read_finish(user); /* 4.04 unless keep_first answered */
}

static void h_read(struct pubsub *ps, struct ck_response *resp,
                   const char *user, const char *topic, size_t tlen)
{
  if (!bus_topic_valid(topic, tlen)) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "invalid topic");
    return;
  }
  if (!allowed(ps, user, REG_ACL_SUB, topic)) {
    pubsub_fail(ps, resp, CK_FORBIDDEN, "not allowed to read here");
    return;
  }
  ck_response_code(resp, CK_NOT_FOUND);
  struct read_wait *w = calloc(1, sizeof *w);
  if (!w) {
    pubsub_fail(ps, resp, CK_SERVICE_UNAVAILABLE, "out of memory");
    return;
  }
  w->ps = ps;
  w->resp = resp;
  if (bus_subscribe(ps->bus, topic, 0, keep_first, w, &w->bs) < 0) {
    free(w);
    return;
  }
  if (w->got || ck_timer_new(ps->ctx, read_timeout, w, &w->timer) < 0 ||
      !(w->d = ck_response_defer(resp, 0))) {
    /* Answered during the subscription (the embedded bus), or cannot
     * wait: answer now with what we have. */
    bus_unsubscribe(ps->bus, w->bs);
    ck_timer_free(w->timer);
    free(w);
    return;
  }
  w->resp = ck_deferred_response(w->d);
  ck_response_code(w->resp, CK_NOT_FOUND);
  w->next = ps->reads;
  if (ps->reads)
    ps->reads->prev = w;
  ps->reads = w;
  ck_timer_start(w->timer, READ_WAIT_MS, 0);
}

static void h_topic(struct ck_resource *r, const struct ck_request *req,
                    struct ck_response *resp, void *user)
{
  (void)r;
  struct pubsub *ps = user;
  /* The path once: it names the connection resource or holds the topic,
   * which query_from_topic() may cut in place. */
  char path[BUS_TOPIC_MAX + 16];
  int n = ck_request_path(req, path, sizeof path);
  if (n == (int)strlen("mqtt/connection") &&
      memcmp(path, "mqtt/connection", (size_t)n) == 0) {
    struct query q;
    query_parse(req, &q);
    session_request(ps, req, resp, &q);
    return;
  }
  size_t tlen;
  char *topic = topic_of(ps, resp, path, n, &tlen);
  if (!topic)
    return;
  uint8_t method = ck_request_method(req);
  uint32_t obs = ck_request_uint(req, CK_OPT_OBSERVE, UINT32_MAX);
  if (method == CK_GET && obs == 1) {
    /* The library has ended the observation already (RFC 7641 §3.6). */
    ck_response_code(resp, ps->cfg.unsubscribe_code);
    return;
  }
  if (method != CK_GET && method != CK_POST && method != CK_PUT) {
    ck_response_code(resp, CK_METHOD_NOT_ALLOWED);
    return;
  }
  struct query q;
  query_parse(req, &q);
  tlen = query_from_topic(topic, tlen, &q);
  if (tlen == 0) {
    pubsub_fail(ps, resp, CK_BAD_REQUEST, "empty topic");
    return;
  }
  const char *who;
  struct session *sess;
  char name[REG_NAME_MAX];
  if (authenticate(ps, req, resp, &q, &who, &sess, name, sizeof name) < 0)
    return;
  if (method != CK_GET)
    h_publish(ps, req, resp, &q, who, topic, tlen);
  else if (obs == 0)
    h_subscribe(ps, req, resp, &q, who, sess, topic, tlen);
  else
    h_read(ps, resp, who, topic, tlen);
}

static int add_tree(struct pubsub *ps, const char *path,
                    struct ck_resource **out)
{
  int rc = ck_resource_new(ps->ctx, path, out);
  if (rc < 0)
    return rc;
  static const uint8_t methods[] = {CK_GET, CK_POST, CK_PUT, CK_DELETE};
  for (size_t i = 0; i < sizeof methods; i++)
    ck_resource_handler(*out, methods[i], h_topic, ps);
  ck_resource_observable(*out, true, false);
  struct ck_resource_attrs a = {.rt = "core.ps", .ct = -1};
  return ck_resource_attrs(*out, &a);
}

int pubsub_new(struct ck_ctx *ctx, const struct pubsub_config *cfg,
               struct bus *bus, struct registry *reg, struct store *st,
               struct pubsub **out)
{
  struct pubsub *ps = calloc(1, sizeof *ps);
  if (!ps)
    return CK_ENOMEM;
  ps->ctx = ctx;
  ps->cfg = *cfg;
  if (!ps->cfg.heartbeat_s)
    ps->cfg.heartbeat_s = 30;
  if (!ps->cfg.unsubscribe_code)
    ps->cfg.unsubscribe_code = CK_CONTENT;
  if (!ps->cfg.queue_max)
    ps->cfg.queue_max = 100;
  if (!ps->cfg.max_sessions)
    ps->cfg.max_sessions = 100000;
  if (!ps->cfg.max_payload)
    ps->cfg.max_payload = 1024;
  ps->bus = bus;
  ps->reg = reg;
  ps->store = st;
  int rc = add_tree(ps, "ps/#", &ps->ps_res);
  if (rc == 0)
    rc = add_tree(ps, "mqtt/#", &ps->mqtt_res);
  if (rc == 0)
    rc = sessions_init(ps);
  if (rc < 0) {
    pubsub_free(ps);
    return rc;
  }
  *out = ps;
  return 0;
}

void pubsub_free(struct pubsub *ps)
{
  if (!ps)
    return;
  sessions_close(ps);
  while (ps->reads)
    read_finish(ps->reads);
  while (ps->subs)
    sub_free(ps->subs);
  free(ps);
}

void pubsub_stats(const struct pubsub *ps, struct pubsub_stats *out)
{
  *out = ps->st;
}
