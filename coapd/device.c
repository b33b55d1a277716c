/* The device endpoint's requests (SPEC "Device endpoint", Drogue Cloud's
 * CoAP contract): POST or PUT v1/{channel}[/{subject...}] with the query
 * keys application, device, data_schema, as and ct (alias
 * commandTimeout).
 *
 * A request is checked in the order that costs least to refuse: the
 * path and query (4.00), the credentials (4.03), the body (4.13, and
 * 4.06 for a JSON content format whose body is not JSON), a place to
 * wait for commands (5.03). Only then is the event built and published;
 * a CON request is published at QoS 1, and when the bus settles that
 * later (an MQTT broker's PUBACK) the answer waits for it, so that 2.04
 * means the message is safe. With ct the answer then waits on for a
 * command (device_command.c).
 *
 * Every Uri-Query option is read, not only the first as Drogue's
 * endpoint does; a repeated key keeps its last value, unknown keys are
 * ignored. Values are the options' bytes: the client percent-decoded
 * them when it split the URI (RFC 7252 §6.4).
 *
 * Who sends: option 4209 (device_auth.c), or the transport's identity
 * (device_transport_identity(): the DTLS session's PSK identity or
 * certificate CN). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device_int.h"

/* A value of the query: a view into the request. */
struct qv {
  const char *p;
  size_t n;
  bool set;
};

struct dquery {
  struct qv application, device, data_schema, as, ct;
};

static bool key_is(const uint8_t *k, size_t n, const char *name)
{
  return strlen(name) == n && memcmp(k, name, n) == 0;
}

static void query_read(const struct ck_request *req, struct dquery *q)
{
  memset(q, 0, sizeof *q);
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, ck_request_msg(req));
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_QUERY)
      continue;
    const uint8_t *eq = memchr(o.val, '=', o.len);
    size_t kn = eq ? (size_t)(eq - o.val) : o.len;
    struct qv v = {.p = eq ? (const char *)eq + 1 : "",
                   .n = eq ? o.len - kn - 1 : 0,
                   .set = true};
    struct qv *s = key_is(o.val, kn, "application")      ? &q->application
                   : key_is(o.val, kn, "device")         ? &q->device
                   : key_is(o.val, kn, "data_schema")    ? &q->data_schema
                   : key_is(o.val, kn, "as")             ? &q->as
                   : key_is(o.val, kn, "ct")             ? &q->ct
                   : key_is(o.val, kn, "commandTimeout") ? &q->ct
                                                         : NULL;
    if (s)
      *s = v;
  }
}

/* Copies a name (1..255 bytes, no NUL and none of "/+#@:", the
 * registry's rule) into buf; false when it is not one. */
static bool name_copy(const char *p, size_t n, char buf[REG_NAME_MAX])
{
  if (n == 0 || n >= REG_NAME_MAX || !device_utf8_valid((const void *)p, n))
    return false;
  for (size_t i = 0; i < n; i++)
    if (strchr("/+#@:", p[i]))
      return false;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return true;
}

static void fail(struct device_ep *d, struct ck_response *resp, uint8_t code,
                 const char *reason)
{
  if (code == CK_FORBIDDEN)
    d->st.auth_failures++;
  else if (code == CK_SERVICE_UNAVAILABLE)
    d->st.unavailable++;
  else if (CK_CODE_CLASS(code) == 4)
    d->st.bad_requests++;
  if (code == CK_SERVICE_UNAVAILABLE)
    ck_response_opt_uint(resp, CK_OPT_MAX_AGE, 5); /* retry soon */
  ck_response_code(resp, code);
  ck_response_content(resp, CK_CF_TEXT_PLAIN, reason, strlen(reason));
}

/* --- who sends --- */

enum device_identity_kind { DEVICE_IDENTITY_NONE, DEVICE_IDENTITY_PSK,
                            DEVICE_IDENTITY_CERT };

/* The transport's word on who the peer is (ck_request_identity): the
 * PSK identity of its DTLS session (as registered with --psk-identity,
 * "device@application" by Drogue's convention) or its certificate's CN.
 * Plain UDP, a raw public key and a session without a client
 * certificate give none. Returns the kind and fills buf (NUL-terminated)
 * for PSK and CERT. */
static enum device_identity_kind
device_transport_identity(const struct ck_request *req, char *buf, size_t cap)
{
  const char *id = NULL;
  int sec = ck_request_identity(req, &id);
  if (cap)
    buf[0] = '\0';
  if (!id || !id[0] || strlen(id) >= cap ||
      (sec != CK_SECURITY_PSK && sec != CK_SECURITY_CERT))
    return DEVICE_IDENTITY_NONE;
  memcpy(buf, id, strlen(id) + 1);
  return sec == CK_SECURITY_PSK ? DEVICE_IDENTITY_PSK : DEVICE_IDENTITY_CERT;
}

/* Who is authenticated, and for whom it publishes. */
struct who {
  char application[REG_NAME_MAX];
  char sender[REG_NAME_MAX]; /* authenticated */
  char device[REG_NAME_MAX]; /* the event's device: sender, or as= */
};

/* Option 4209's credentials, with the query's application. Returns 0,
 * or -1 when resp was answered. */
static int auth_basic(struct device_ep *d, const struct ck_opt *o,
                      const struct dquery *q, struct ck_response *resp,
                      struct who *w)
{
  char buf[DEVICE_CREDS_MAX];
  struct device_creds c;
  if (device_auth_parse(o->val, o->len, buf, sizeof buf, &c) < 0) {
    fail(d, resp, CK_FORBIDDEN, "option 4209 is not Basic credentials");
    return -1;
  }
  const char *app = c.application ? c.application : q->application.p;
  size_t app_len = c.application ? c.application_len : q->application.n;
  if (!c.application && !q->application.set) {
    fail(d, resp, CK_BAD_REQUEST,
         "credentials without @application need ?application=");
    return -1;
  }
  if (c.application && q->application.set &&
      (q->application.n != c.application_len ||
       memcmp(q->application.p, c.application, c.application_len) != 0)) {
    fail(d, resp, CK_FORBIDDEN, "application does not match credentials");
    return -1;
  }
  if (!name_copy(app, app_len, w->application) ||
      !name_copy(c.device, c.device_len, w->sender) ||
      registry_device_check_password(d->reg, w->application, w->sender,
                                     c.password, c.password_len) < 0) {
    fail(d, resp, CK_FORBIDDEN, "bad device, application or password");
    return -1;
  }
  return 0;
}

/* The DTLS identity, looked up in the registry. Returns 0, or -1 when
 * resp was answered. */
static int auth_transport(struct device_ep *d, const struct ck_request *req,
                          struct ck_response *resp, struct who *w)
{
  char id[REG_NAME_MAX];
  enum device_identity_kind k = device_transport_identity(req, id, sizeof id);
  struct reg_device rd;
  int rc = k == DEVICE_IDENTITY_PSK    ? registry_device_by_psk(d->reg, id, &rd)
           : k == DEVICE_IDENTITY_CERT ? registry_device_by_cn(d->reg, id, &rd)
                                       : -ENOENT;
  if (k == DEVICE_IDENTITY_NONE) {
    fail(d, resp, CK_FORBIDDEN, "credentials needed (option 4209)");
    return -1;
  }
  if (rc < 0) {
    fail(d, resp, CK_FORBIDDEN, "unknown DTLS identity");
    return -1;
  }
  memcpy(w->application, rd.application, sizeof w->application);
  memcpy(w->sender, rd.device, sizeof w->sender);
  return 0;
}

static int authenticate(struct device_ep *d, const struct ck_request *req,
                        struct ck_response *resp, const struct dquery *q,
                        struct who *w)
{
  struct ck_opt o;
  int rc = ck_msg_opt(ck_request_msg(req), DEVICE_OPT_AUTH, &o) == 0
             ? auth_basic(d, &o, q, resp, w)
             : auth_transport(d, req, resp, w);
  if (rc < 0)
    return rc;
  if (q->application.set &&
      (q->application.n != strlen(w->application) ||
       memcmp(q->application.p, w->application, q->application.n) != 0)) {
    fail(d, resp, CK_FORBIDDEN, "application does not match credentials");
    return -1;
  }
  if (q->device.set &&
      (q->device.n != strlen(w->sender) ||
       memcmp(q->device.p, w->sender, q->device.n) != 0)) {
    fail(d, resp, CK_FORBIDDEN, "device does not match credentials");
    return -1;
  }
  memcpy(w->device, w->sender, sizeof w->device);
  if (!q->as.set)
    return 0;
  /* as=: a gateway publishes for a device it is registered to act for
   * (coapd device add ... --gateway-for). */
  if (!name_copy(q->as.p, q->as.n, w->device) ||
      (strcmp(w->device, w->sender) != 0 &&
       !registry_device_acts_for(d->reg, w->application, w->sender,
                                 w->device))) {
    fail(d, resp, CK_FORBIDDEN, "not a gateway for that device");
    return -1;
  }
  return 0;
}

/* --- the request --- */

/* v1/{channel}[/{subject...}]: the channel (one topic level) and the
 * rest joined with '/'. Returns 0, or -1 when resp was answered. */
static int path_read(struct device_ep *d, const struct ck_request *req,
                     struct ck_response *resp, char *channel, size_t ccap,
                     char *suffix, size_t scap)
{
  struct ck_opt_iter it;
  struct ck_opt o;
  size_t seg = 0, sn = 0;
  channel[0] = suffix[0] = '\0';
  ck_opt_iter_init(&it, ck_request_msg(req));
  while (ck_opt_next(&it, &o)) {
    if (o.num != CK_OPT_URI_PATH || seg++ == 0)
      continue; /* the first is "v1" */
    if (!device_utf8_valid(o.val, o.len)) {
      fail(d, resp, CK_BAD_REQUEST, "path is not UTF-8");
      return -1;
    }
    if (seg == 2) {
      if (o.len == 0 || o.len >= ccap || memchr(o.val, '/', o.len) ||
          memchr(o.val, '+', o.len) || memchr(o.val, '#', o.len)) {
        fail(d, resp, CK_BAD_REQUEST,
             o.len == 0 ? "empty channel"
                        : "invalid channel (no / + #, up to 255 bytes)");
        return -1;
      }
      memcpy(channel, o.val, o.len);
      channel[o.len] = '\0';
      continue;
    }
    if (sn + o.len + 2 > scap) {
      fail(d, resp, CK_BAD_REQUEST, "path too long");
      return -1;
    }
    if (sn)
      suffix[sn++] = '/';
    memcpy(suffix + sn, o.val, o.len);
    sn += o.len;
    suffix[sn] = '\0';
  }
  if (!channel[0]) {
    fail(d, resp, CK_BAD_REQUEST, "empty channel: POST v1/{channel}");
    return -1;
  }
  return 0;
}

/* ct: seconds to wait, cut to max_ct_s. Returns 0.., or -1 (answered). */
static int64_t ct_read(struct device_ep *d, struct ck_response *resp,
                       const struct qv *v)
{
  if (!v->set)
    return 0;
  uint64_t x = 0;
  bool ok = v->n > 0 && v->n <= 10;
  for (size_t i = 0; ok && i < v->n; i++) {
    ok = v->p[i] >= '0' && v->p[i] <= '9';
    x = x * 10 + (uint64_t)(v->p[i] - '0');
  }
  if (!ok) {
    fail(d, resp, CK_BAD_REQUEST, "ct must be seconds");
    return -1;
  }
  return x > d->cfg.max_ct_s ? d->cfg.max_ct_s : (int64_t)x;
}

/* A telemetry message on its way: the publish the bus may settle later,
 * and the wait for a command that follows it. */
struct pending {
  struct device_ep *d;
  struct pending *next, *prev; /* d->pendings, while the bus has it */
  struct ck_deferred *def;
  struct waiter *w; /* NULL without ct */
  uint32_t ct_s;
};

/* The message is on the bus: answer 2.04 now, or wait for a command. */
static void accepted(struct pending *p, struct ck_response *resp)
{
  p->d->st.accepted++;
  ck_response_code(resp, CK_CHANGED);
  if (!p->w)
    return;
  /* The empty ACK goes first so the device's retransmissions stop
   * while it waits (RFC 7252 §5.2.2). */
  struct ck_deferred *def =
    p->def ? p->def : ck_response_defer(resp, CK_DEFER_ACK_NOW);
  p->def = NULL;
  if (def)
    waiter_start(p->w, def, p->ct_s);
  else
    waiter_cancel(p->w); /* the library cannot hold it: 2.04 now */
  p->w = NULL;
}

static void pending_unlink(struct pending *p)
{
  if (p->prev)
    p->prev->next = p->next;
  else
    p->d->pendings = p->next;
  if (p->next)
    p->next->prev = p->prev;
}

static void publish_done(void *user, int result)
{
  struct pending *p = user;
  if (!p->def) { /* answered already, or the endpoint is gone */
    free(p);
    return;
  }
  pending_unlink(p);
  struct ck_response *resp = ck_deferred_response(p->def);
  if (result < 0) {
    waiter_cancel(p->w);
    fail(p->d, resp, CK_SERVICE_UNAVAILABLE, "the bus did not take it");
  } else {
    accepted(p, resp);
  }
  if (p->def)
    (void)ck_deferred_send(p->def);
  free(p);
}

/* Puts the event on the bus; takes p over. */
static void publish(struct device_ep *d, const struct ck_request *req,
                    struct ck_response *resp, const char *topic,
                    const char *json, size_t len, struct pending *p)
{
  bool con = ck_request_msg(req)->type == CK_TYPE_CON;
  struct bus_msg m = {.topic = topic,
                      .payload = (const uint8_t *)json,
                      .len = len,
                      .cf = CK_CF_JSON,
                      .qos = con ? 1 : 0};
  int rc = con ? bus_publish_acked(d->bus, &m, publish_done, p)
               : bus_publish(d->bus, &m);
  if (rc == BUS_PENDING) {
    p->def = ck_response_defer(resp, p->w ? CK_DEFER_ACK_NOW : 0);
    if (!p->def) {
      /* The library cannot hold this answer (it never refuses a fresh
       * request): the bus has the message, say so now; done frees p. */
      waiter_cancel(p->w);
      p->w = NULL;
      d->st.accepted++;
      ck_response_code(resp, CK_CHANGED);
      return;
    }
    p->next = d->pendings;
    if (d->pendings)
      d->pendings->prev = p;
    d->pendings = p;
    return;
  }
  if (rc == 0) {
    accepted(p, resp);
  } else {
    waiter_cancel(p->w);
    if (rc == -EMSGSIZE)
      fail(d, resp, CK_REQUEST_ENTITY_TOO_LARGE, "event too large");
    else if (rc == -EINVAL)
      fail(d, resp, CK_BAD_REQUEST, "the bus refused the topic");
    else
      fail(d, resp, CK_SERVICE_UNAVAILABLE, "the bus is full");
  }
  free(p);
}

static void h_telemetry(struct ck_resource *r, const struct ck_request *req,
                        struct ck_response *resp, void *user)
{
  (void)r;
  struct device_ep *d = user;
  char channel[REG_NAME_MAX], suffix[BUS_TOPIC_MAX];
  if (path_read(d, req, resp, channel, sizeof channel, suffix,
                sizeof suffix) < 0)
    return;
  struct dquery q;
  query_read(req, &q);
  int64_t ct = ct_read(d, resp, &q.ct);
  if (ct < 0)
    return;
  char schema[1024];
  if (q.data_schema.set &&
      (q.data_schema.n >= sizeof schema ||
       !device_utf8_valid((const uint8_t *)q.data_schema.p,
                          q.data_schema.n))) {
    fail(d, resp, CK_BAD_REQUEST, "data_schema: UTF-8, under 1024 bytes");
    return;
  }
  if (q.data_schema.set) {
    memcpy(schema, q.data_schema.p, q.data_schema.n);
    schema[q.data_schema.n] = '\0';
  }
  struct who w;
  if (authenticate(d, req, resp, &q, &w) < 0)
    return;
  size_t len = 0;
  const uint8_t *body = ck_request_payload(req, &len);
  if (len > d->cfg.max_payload) {
    char why[64];
    snprintf(why, sizeof why, "payload over %u bytes", d->cfg.max_payload);
    fail(d, resp, CK_REQUEST_ENTITY_TOO_LARGE, why);
    return;
  }
  int cf = ck_request_has(req, CK_OPT_CONTENT_FORMAT)
             ? (int)ck_request_uint(req, CK_OPT_CONTENT_FORMAT, 65536)
             : -1;
  if (device_cf_is_json(cf) && !device_json_valid(body, len)) {
    fail(d, resp, CK_NOT_ACCEPTABLE,
         "the content format is JSON but the payload is not");
    return;
  }
  struct pending *p = calloc(1, sizeof *p);
  if (p && ct > 0 && !(p->w = waiter_reserve(d, w.application, w.device))) {
    free(p);
    fail(d, resp, CK_SERVICE_UNAVAILABLE, "too many devices waiting");
    return;
  }
  char id[37], when[32];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct device_event ev = {.id = id,
                            .time = when,
                            .application = w.application,
                            .device = w.device,
                            .sender = w.sender,
                            .channel = channel,
                            .suffix = suffix[0] ? suffix : NULL,
                            .data_schema = q.data_schema.set ? schema : NULL,
                            .cf = cf,
                            .data = body,
                            .len = len};
  char *json = NULL;
  size_t jlen = 0;
  int rc = p ? device_event_uuid(id) : -ENOMEM;
  if (rc == 0)
    rc = device_event_time((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                           when);
  if (rc == 0)
    rc = device_event_json(&ev, &json, &jlen);
  if (rc < 0) {
    if (p)
      waiter_cancel(p->w);
    free(p);
    fail(d, resp, CK_SERVICE_UNAVAILABLE, "cannot build the event");
    return;
  }
  char topic[BUS_TOPIC_MAX + 1];
  snprintf(topic, sizeof topic, "app/%s/%s/%s", w.application, w.device,
           channel);
  p->d = d;
  p->ct_s = (uint32_t)ct;
  publish(d, req, resp, topic, json, jlen, p);
  free(json);
}

int device_new(struct ck_ctx *ctx, const struct device_config *cfg,
               struct bus *bus, struct registry *reg, struct device_ep **out)
{
  struct device_ep *d = calloc(1, sizeof *d);
  if (!d)
    return CK_ENOMEM;
  d->ctx = ctx;
  if (cfg)
    d->cfg = *cfg;
  if (!d->cfg.max_waiting)
    d->cfg.max_waiting = 10000;
  if (!d->cfg.max_ct_s)
    d->cfg.max_ct_s = 60;
  if (!d->cfg.max_payload)
    d->cfg.max_payload = 16384;
  d->bus = bus;
  d->reg = reg;
  int rc = ck_resource_new(ctx, "v1/#", &d->res);
  if (rc == 0)
    rc = ck_resource_handler(d->res, CK_POST, h_telemetry, d);
  if (rc == 0)
    rc = ck_resource_handler(d->res, CK_PUT, h_telemetry, d);
  if (rc == 0)
    rc = ck_ctx_recognize_option(ctx, DEVICE_OPT_AUTH);
  if (rc == 0)
    rc = commands_init(d);
  if (rc < 0) {
    device_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

void device_free(struct device_ep *d)
{
  if (!d)
    return;
  commands_close(d);
  while (d->pendings) {
    struct pending *p = d->pendings;
    pending_unlink(p);
    waiter_cancel(p->w);
    p->w = NULL;
    struct ck_response *resp = ck_deferred_response(p->def);
    fail(d, resp, CK_SERVICE_UNAVAILABLE, "shutting down");
    (void)ck_deferred_send(p->def);
    p->def = NULL; /* publish_done only frees it now */
  }
  /* The resource stays the context's; nothing may call us any more. */
  ck_resource_handler(d->res, CK_POST, NULL, NULL);
  ck_resource_handler(d->res, CK_PUT, NULL, NULL);
  free(d);
}

void device_stats(const struct device_ep *d, struct device_stats *out)
{
  *out = d->st;
}
