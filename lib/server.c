/* The server's request path: from the transport to a handler and back
 * (RFC 7252 §5, §8). Resources live in resource.c, request and response
 * objects in response.c, /.well-known/core in wellknown.c.
 *
 * The messaging layer (messaging.c) hands every request here through
 * ck__server_request(). Requests are deduplicated, checked for options we
 * do not understand (§5.4.1), routed to a resource, checked against its
 * methods and formats, reassembled when block-wise (block.c), handed to
 * the handler, and answered: piggybacked in the ACK, as NON, or later as
 * a separate CON when the handler deferred (§5.2.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "echo.h"
#include "peers.h"
#include "srv.h"

struct ck_deferred {
  struct ck__timer timer; /* first: the timer callback casts back */
  struct ck_ctx *ctx;
  struct ck_deferred *next, *prev;
  struct ck__reply rp;
  struct ck__dd_entry *dd;
  uint32_t dd_gen;
  /* A deferred observe registration: the resource and a copy of the
   * request, registered when the answer is sent. */
  struct ck_resource *obs_res;
  uint8_t *obs_req;
  size_t obs_req_len;
  struct ck_response resp;
};

/* Responses delayed by multicast leisure (RFC 7252 §8.2). */
struct delayed {
  struct ck__timer timer;
  struct ck_ctx *ctx;
  struct delayed *next, *prev;
  struct ck__ep *ep;
  struct ck_addr peer;
  size_t len;
  uint8_t msg[];
};

struct srv_lists {
  struct ck_deferred *deferred;
  struct delayed *delayed;
};

static struct srv_lists *lists(struct ck_ctx *ctx);

/* RFC 7967 §2.1: bit 2 suppresses 2.xx, bit 8 4.xx, bit 16 5.xx. */
static bool suppressed(uint32_t no_response, uint8_t code)
{
  unsigned cls = CK_CODE_CLASS(code);
  return (cls == 2 && (no_response & 2)) || (cls == 4 && (no_response & 8)) ||
         (cls == 5 && (no_response & 16));
}

static void delayed_fire(struct ck__timer *t)
{
  struct delayed *d = (struct delayed *)t;
  struct srv_lists *l = lists(d->ctx);
  (void)ck__ep_send(d->ep, &d->peer, d->msg, d->len);
  if (d->prev)
    d->prev->next = d->next;
  else
    l->delayed = d->next;
  if (d->next)
    d->next->prev = d->prev;
  free(d);
}

static void send_after_leisure(struct ck_ctx *ctx, struct ck__ep *ep,
                               const struct ck_addr *to, const uint8_t *msg,
                               size_t len)
{
  struct delayed *d = malloc(sizeof *d + len);
  if (!d) {
    ctx->stats.tx_dropped++;
    return;
  }
  memset(d, 0, sizeof *d);
  d->ctx = ctx;
  d->ep = ep;
  d->peer = *to;
  d->len = len;
  memcpy(d->msg, msg, len);
  uint32_t r;
  ck__random(ctx, &r, sizeof r);
  uint32_t leisure = ctx->cfg.params.default_leisure_ms;
  struct srv_lists *l = lists(ctx);
  d->next = l->delayed;
  if (l->delayed)
    l->delayed->prev = d;
  l->delayed = d;
  ck__timer_start(&ctx->loop, &d->timer, leisure ? r % leisure : 0,
                  delayed_fire);
}

static void separate_done(struct ck_ctx *ctx, void *user, int result,
                          const struct ck_msg *ack)
{
  /* The separate response was acknowledged, reset or timed out; nothing
   * remains to do for it (RFC 7252 §5.2.2). */
  (void)ctx;
  (void)user;
  (void)result;
  (void)ack;
}

int ck__send_reply(struct ck_ctx *ctx, struct ck__reply *rp,
                   struct ck_response *resp, struct ck__dd_entry *dd)
{
  uint8_t buf[CK__DGRAM_MAX];
  bool quiet = suppressed(rp->no_response, resp->code) ||
               (rp->multicast && CK_CODE_CLASS(resp->code) >= 4);
  if (quiet) {
    /* §8.2 and RFC 7967: no response; a CON still needs its ACK. */
    if (rp->req_type == CK_TYPE_CON && !rp->acked && !rp->multicast) {
      ck__send_empty(rp->ep, &rp->peer, CK_TYPE_ACK, rp->req_mid);
      if (dd) {
        uint8_t m[4];
        ck__empty_msg(m, CK_TYPE_ACK, rp->req_mid);
        ck__dedup_answer(ctx, dd, m, sizeof m);
      }
    } else if (dd) {
      dd->state = CK__DD_ANSWERED;
    }
    return 0;
  }

  /* RFC 7959 §2.4, §3.2: an answer that goes out in blocks is kept for
   * the later ones (repcache.c); when the cache is full it becomes 5.03. */
  if (!resp->err && !resp->rep)
    (void)ck__rep_offer(ctx, rp, resp);

  uint8_t type;
  uint16_t mid;
  if (rp->req_type == CK_TYPE_CON && !rp->acked) {
    type = CK_TYPE_ACK;
    mid = rp->req_mid;
  } else {
    type = (rp->req_type == CK_TYPE_CON && !rp->multicast) ? CK_TYPE_CON
                                                           : CK_TYPE_NON;
    mid = ck__next_mid(ctx, &rp->peer);
  }
  int n = resp->err ? resp->err
                    : ck__build_response(ctx, buf, sizeof buf, type, mid,
                                         rp->token, rp->tkl, resp, rp);
  if (n < 0) {
    /* The handler's answer cannot go out as it was given: an option or
     * the payload did not fit (its sticky error), or the whole does not
     * fit a datagram. Sending it without what was lost could mislead the
     * client; say 5.00 instead, and tell the operator. */
    ctx->stats.responses_failed++;
    ck__log(ctx, CK_LOG_ERROR,
            "the answer %u.%02u to a %s request could not be built (%s); "
            "sent 5.00 instead",
            CK_CODE_CLASS(resp->code), CK_CODE_DETAIL(resp->code),
            ck_code_name(rp->method), ck_strerror(n));
    struct ck_response err;
    ck__resp_init(&err, rp->method);
    err.code = CK_INTERNAL_SERVER_ERROR;
    struct ck__reply plain = *rp;
    plain.observe = plain.has_block1 = plain.has_block2 = false;
    n = ck__build_response(ctx, buf, sizeof buf, type, mid, rp->token,
                           rp->tkl, &err, &plain);
    if (n < 0)
      return n;
  }
  /* RFC 9175 §2.4: one comparison keeps small answers off the rest of
   * the check; a large one to an unverified source becomes a 4.01 with
   * Echo (echo.c). */
  if ((uint64_t)n > (uint64_t)ctx->cfg.echo_amplification * rp->req_len &&
      !rp->multicast && !rp->ep->secure) {
    n = ck__echo_gate(ctx, rp, buf, sizeof buf, n, type, mid);
    /* A POST's handler has run: its answer waits for the request's
     * return with the Echo, so the action is not done twice. */
    if (n > 0 && rp->echo_refused)
      ck__rep_keep_challenged(ctx, rp, resp);
    if (n == 0) {
      if (dd)
        dd->state = CK__DD_ANSWERED;
      return 0;
    }
  }
  ctx->stats.responses[buf[1]]++;
  if (rp->multicast) {
    send_after_leisure(ctx, rp->ep, &rp->peer, buf, (size_t)n);
  } else if (type == CK_TYPE_CON) {
    if (!ck__con_send(ctx, rp->ep, &rp->peer, buf, (size_t)n, NULL,
                      separate_done, NULL))
      ctx->stats.tx_dropped++;
  } else {
    (void)ck__ep_send(rp->ep, &rp->peer, buf, (size_t)n);
  }
  if (dd) {
    if (type == CK_TYPE_ACK)
      ck__dedup_answer(ctx, dd, buf, (size_t)n);
    else
      dd->state = rp->acked ? CK__DD_ACKED : CK__DD_ANSWERED;
  }
  if (resp->rep)
    ck__rep_sent(ctx, rp, resp);
  return n;
}

/* Sends an answer from the request path. ck__send_reply() fails only
 * when not even a 5.00 can be built; the client then retransmits (CON)
 * or gives up (NON), and the operator hears of it. */
static void reply(struct ck_ctx *ctx, struct ck__reply *rp,
                  struct ck_response *resp, struct ck__dd_entry *dd)
{
  int rc = ck__send_reply(ctx, rp, resp, dd);
  if (rc < 0)
    ck__log(ctx, CK_LOG_ERROR, "cannot answer a %s request: %s",
            ck_code_name(rp->method), ck_strerror(rc));
}

/* --- deferred (separate) responses --- */

static void deferred_unlink(struct ck_deferred *d)
{
  struct srv_lists *l = lists(d->ctx);
  if (d->prev)
    d->prev->next = d->next;
  else
    l->deferred = d->next;
  if (d->next)
    d->next->prev = d->prev;
  ck__timer_stop(&d->ctx->loop, &d->timer);
}

static struct ck__dd_entry *deferred_dd(struct ck_deferred *d)
{
  return d->dd && d->dd->gen == d->dd_gen ? d->dd : NULL;
}

static void deferred_ack(struct ck__timer *t)
{
  struct ck_deferred *d = (struct ck_deferred *)t;
  /* §5.2.2: the handler is slow; acknowledge the CON now so the client
   * stops retransmitting, and send the response as a CON later. */
  ck__send_empty(d->rp.ep, &d->rp.peer, CK_TYPE_ACK, d->rp.req_mid);
  d->rp.acked = true;
  struct ck__dd_entry *dd = deferred_dd(d);
  if (dd)
    dd->state = CK__DD_ACKED;
}

struct ck_deferred *ck_response_defer(struct ck_response *r, unsigned flags)
{
  /* The dispatcher placed the deferred record around this response when
   * the request allowed it; see ck__server_request(). */
  if (!r || !r->deferred)
    return NULL;
  struct ck_deferred *d =
    (struct ck_deferred *)((char *)r - offsetof(struct ck_deferred, resp));
  r->deferred = false; /* marks "taken": ck__server_request() must not answer */
  d->rp.acked = false;
  struct ck_ctx *ctx = d->ctx;
  /* The request is gone when the answer is sent: key its representation
   * now (repcache.c). */
  ck__rep_key(&d->rp);
  d->rp.req_msg = NULL;
  if (!d->dd && !d->rp.multicast) {
    /* A deferred answer must be remembered even for an idempotent
     * request, so that a retransmission while it is pending gets the
     * empty ACK instead of a second run of the handler. */
    int err;
    uint64_t life = d->rp.req_type == CK_TYPE_CON ? ctx->exchange_lifetime
                                                  : ctx->non_lifetime;
    d->dd = ck__dedup_add(ctx, &d->rp.peer, d->rp.req_mid, true, life, &err);
    d->dd_gen = d->dd ? d->dd->gen : 0;
    uint64_t until = ck__loop_now(&ctx->loop) + life;
    if (until > ctx->dd_idem_until)
      ctx->dd_idem_until = until;
  }
  struct srv_lists *l = lists(ctx);
  d->next = l->deferred;
  d->prev = NULL;
  if (l->deferred)
    l->deferred->prev = d;
  l->deferred = d;
  if (d->rp.req_type == CK_TYPE_CON && !d->rp.multicast) {
    uint64_t delay = (flags & CK_DEFER_ACK_NOW) ? 0
                                                : ctx->cfg.separate_delay_ms;
    ck__timer_start(&ctx->loop, &d->timer, delay, deferred_ack);
  }
  return d;
}

struct ck_response *ck_deferred_response(struct ck_deferred *d)
{
  return d ? &d->resp : NULL;
}

const struct ck_addr *ck_deferred_peer(const struct ck_deferred *d)
{
  return d ? &d->rp.peer : NULL;
}

static void register_deferred(struct ck_deferred *d)
{
  struct ck_msg m;
  if (!d->obs_res || ck_msg_parse(&m, d->obs_req, d->obs_req_len) < 0)
    return;
  struct ck_request req = {.ctx = d->ctx,
                           .ep = d->rp.ep,
                           .msg = &m,
                           .peer = &d->rp.peer,
                           .body = m.payload,
                           .body_len = m.payload_len};
  if (d->resp.obs)
    return; /* taken over by the application: see ck_deferred_send() */
  if (CK_CODE_CLASS(d->resp.code) == 2 &&
      ck__observe_add(d->ctx, d->obs_res, &req) == 0) {
    d->rp.observe = true;
    d->rp.obs_seq = d->obs_res->obs_seq;
  } else {
    ck__observe_remove_req(d->ctx, d->obs_res, &req);
  }
}

static void deferred_free(struct ck_deferred *d)
{
  ck__resp_free(&d->resp);
  free(d->obs_req);
  free(d);
}

int ck_deferred_send(struct ck_deferred *d)
{
  if (!d)
    return CK_EINVAL;
  deferred_unlink(d);
  struct ck_observer *o = d->resp.obs;
  if (o && ck__observer_answer(d->ctx, &d->resp)) {
    d->rp.observe = true;
    d->rp.obs_seq = o->seq;
  } else {
    o = NULL;
    register_deferred(d);
  }
  int rc = ck__send_reply(d->ctx, &d->rp, &d->resp, deferred_dd(d));
  if (d->rp.echo_refused && d->rp.observe) {
    ck__echo_unobserve(d->ctx, &d->rp);
    o = NULL;
  }
  if (o)
    ck__observer_answered(d->ctx, o);
  deferred_free(d);
  return rc < 0 ? rc : 0;
}

void ck_deferred_drop(struct ck_deferred *d)
{
  if (!d)
    return;
  deferred_unlink(d);
  struct ck__dd_entry *dd = deferred_dd(d);
  if (dd)
    dd->state = CK__DD_ANSWERED;
  if (d->resp.obs)
    ck__observe_end(d->ctx, d->resp.obs, CK_OBSERVER_REFUSED);
  deferred_free(d);
}

/* --- routing and dispatch --- */

static struct ck_resource *route(struct ck_ctx *ctx, const char *path,
                                 size_t n)
{
  struct ck_resource *best = NULL;
  for (struct ck_resource *r = ctx->resources; r; r = r->next) {
    if (!r->tree) {
      if (r->path_len == n && memcmp(r->path, path, n) == 0)
        return r;
    } else if (n >= r->path_len && memcmp(r->path, path, r->path_len) == 0 &&
               (n == r->path_len || r->path_len == 0 ||
                path[r->path_len] == '/')) {
      /* The longest tree prefix wins. */
      if (!best || r->path_len > best->path_len)
        best = r;
    }
  }
  return best;
}

/* RFC 7252 §5.4.1, §5.4.3, §5.4.5: unrecognised critical options, bad
 * lengths of critical options and repeated non-repeatable critical
 * options all make the request a 4.02. Proxy-Uri/Proxy-Scheme ask for a
 * proxy we are not (§5.7.2: 5.05). Returns 0 or the code to answer. */
static uint8_t check_options(struct ck_ctx *ctx, const struct ck_msg *m,
                             struct ck__reply *rp)
{
  struct ck_opt_iter it;
  struct ck_opt o;
  uint16_t prev = 0;
  bool first = true;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o)) {
    if (o.num == CK_OPT_PROXY_URI || o.num == CK_OPT_PROXY_SCHEME)
      return CK_PROXYING_NOT_SUPPORTED;
    bool repeated = !first && o.num == prev;
    first = false;
    prev = o.num;
    /* RFC 9175 §2.2.1: Echo is 1 to 40 bytes; the gate (echo.c) reads
     * it only when an answer is large. Taken here, where every option
     * is walked anyway. */
    if (o.num == CK_OPT_ECHO && o.len && o.len <= sizeof rp->echo) {
      memcpy(rp->echo, o.val, o.len);
      rp->echo_len = (uint8_t)o.len;
    }
    if (!ck_opt_is_critical(o.num))
      continue;
    if (!ck__known_opt(ctx, o.num))
      return CK_BAD_OPTION;
    const struct ck_optdef *d = ck_opt_def(o.num);
    if (d && (!ck_opt_len_ok(o.num, o.len) || (repeated && !d->repeatable)))
      return CK_BAD_OPTION;
  }
  return 0;
}

static bool in_list(const uint16_t *l, unsigned n, uint32_t v)
{
  for (unsigned i = 0; i < n; i++)
    if (l[i] == v)
      return true;
  return false;
}

static bool idempotent(uint8_t method)
{
  /* RFC 7252 §5.1 and RFC 8132 §2: POST and PATCH are not. */
  return method != CK_POST && method != CK_PATCH;
}

static void answer_now(struct ck_ctx *ctx, struct ck__reply *rp,
                       uint8_t code, struct ck__dd_entry *dd)
{
  struct ck_response resp;
  ck__resp_init(&resp, rp->method);
  resp.code = code;
  rp->observe = false;
  reply(ctx, rp, &resp, dd);
}

void ck__server_request(struct ck__ep *ep, const struct ck_addr *from,
                        const struct ck_msg *m, bool mc)
{
  struct ck_ctx *ctx = ep->ctx;
  struct ck__reply rp;
  rp.ep = ep;
  rp.peer = *from;
  rp.req_type = m->type;
  rp.method = m->code;
  rp.req_mid = m->mid;
  rp.tkl = m->tkl;
  memcpy(rp.token, m->token, m->tkl);
  rp.multicast = mc;
  rp.acked = false;
  rp.observe = false;
  rp.obs_seq = 0;
  rp.has_block1 = false;
  rp.block1 = 0;
  rp.req_len = (uint16_t)m->len;
  rp.echo_len = 0;
  rp.echo_refused = false;
  rp.req_msg = m;
  rp.res = NULL;
  rp.rep_keyed = false;
  rp.rep_key = 0;
  rp.has_block2 = ck_msg_opt_uint(m, CK_OPT_BLOCK2, &rp.block2) == 0;
  rp.want_size2 = ck_msg_opt_count(m, CK_OPT_SIZE2) > 0;
  if (ck_msg_opt_uint(m, CK_OPT_NO_RESPONSE, &rp.no_response) < 0)
    rp.no_response = 0;

  /* RFC 7252 §4.5: a duplicate is answered as the original was. An
   * idempotent request can only duplicate an idempotent one (same MID,
   * same request), and those are in the table only when remembered or
   * deferred: skip the lookup when none can be live. */
  struct ck__dd_entry *dd = NULL;
  /* A Block1 block changes the upload's state, so even a PUT block must
   * not run twice: it counts as non-idempotent here. */
  bool idem = idempotent(m->code) && ck_msg_opt_count(m, CK_OPT_BLOCK1) == 0;
  if (!idem || ctx->cfg.remember_idempotent ||
      ck__loop_now(&ctx->loop) < ctx->dd_idem_until)
    dd = ck__dedup_find(ctx, from, m->mid);
  if (dd) {
    ctx->stats.rx_duplicates++;
    size_t len;
    const uint8_t *cached = ck__dedup_cached(dd, &len);
    if (cached) {
      (void)ck__ep_send(ep, from, cached, len);
      return;
    }
    if (dd->state == CK__DD_PENDING)
      return; /* the handler is still at work; its answer will come */
    if (dd->state == CK__DD_ACKED && m->type == CK_TYPE_CON) {
      ck__send_empty(ep, from, CK_TYPE_ACK, m->mid);
      return;
    }
    if (!dd->idempotent || m->type != CK_TYPE_CON)
      return;
    /* An idempotent request whose answer was not kept runs again. */
  } else if (!idem || ctx->cfg.remember_idempotent) {
    /* RFC 7252 §4.5 lets a server forget idempotent exchanges: a
     * duplicate then simply runs the handler again. By default only
     * non-idempotent requests (and deferred ones, see
     * ck_response_defer()) take a table entry, which keeps the table out
     * of the hot path of GET-heavy servers. */
    int err;
    uint64_t life = m->type == CK_TYPE_CON ? ctx->exchange_lifetime
                                           : ctx->non_lifetime;
    dd = ck__dedup_add(ctx, from, m->mid, idem, life, &err);
    if (!dd && err == CK_EFULL) {
      struct ck_response resp;
      ck__resp_init(&resp, m->code);
      resp.code = CK_SERVICE_UNAVAILABLE;
      /* Tell the client when to retry: when the oldest remembered
       * exchange may be forgotten (dedup.c). */
      ck_response_opt_uint(&resp, CK_OPT_MAX_AGE,
                           ck__dedup_retry_after(ctx));
      reply(ctx, &rp, &resp, NULL);
      return;
    }
  }

  uint8_t bad = check_options(ctx, m, &rp);
  if (bad) {
    answer_now(ctx, &rp, bad, dd);
    return;
  }
  if (ctx->cfg.echo_require_fresh && !mc && ck__echo_need_fresh(ctx, &rp)) {
    /* RFC 9175 §2.4 item 1: the handler runs only for a request proved
     * fresh; the client repeats it with this Echo (§2.3). */
    struct ck_response resp;
    ck__resp_init(&resp, m->code);
    resp.code = CK_UNAUTHORIZED;
    uint8_t val[CK__ECHO_LEN];
    ck__echo_make(ctx, &rp.peer, val);
    (void)ck_response_opt(&resp, CK_OPT_ECHO, val, sizeof val);
    reply(ctx, &rp, &resp, dd);
    return;
  }

  char path[1024];
  int plen = 0;
  {
    struct ck_request tmp = {.msg = m};
    plen = ck_request_path(&tmp, path, sizeof path);
  }
  if (plen < 0) {
    answer_now(ctx, &rp, CK_NOT_FOUND, dd);
    return;
  }

  struct ck_request req = {.ctx = ctx,
                           .ep = ep,
                           .msg = m,
                           .res = NULL,
                           .peer = from,
                           .multicast = mc,
                           .body = m->payload,
                           .body_len = m->payload_len};

  /* The response lives inside a deferred record so that the handler can
   * keep it. Most requests never defer, so one spare record is kept and
   * reused: the steady state allocates nothing per request. */
  struct ck_deferred *d = ctx->spare_deferred;
  ctx->spare_deferred = NULL;
  if (!d)
    d = malloc(sizeof *d);
  if (!d) {
    answer_now(ctx, &rp, CK_SERVICE_UNAVAILABLE, dd);
    return;
  }
  memset(&d->timer, 0, sizeof d->timer);
  d->ctx = ctx;
  d->obs_res = NULL;
  d->obs_req = NULL;
  d->dd = dd;
  d->dd_gen = dd ? dd->gen : 0;
  struct ck_response *resp = &d->resp;
  ck__resp_init(resp, m->code);
  /* An observer the handler took over (ck_observer_new), activated once
   * its registering answer is out. */
  struct ck_observer *taken = NULL;

  if ((size_t)plen == strlen(".well-known/core") &&
      memcmp(path, ".well-known/core", (size_t)plen) == 0 &&
      !route(ctx, path, (size_t)plen)) {
    if (m->code != CK_GET)
      resp->code = CK_METHOD_NOT_ALLOWED;
    else
      ck__well_known(ctx, &req, resp);
    d->rp = rp;
    goto send;
  }

  struct ck_resource *r = route(ctx, path, (size_t)plen);
  if (!r) {
    resp->code = CK_NOT_FOUND;
    d->rp = rp;
    goto send;
  }
  req.res = r;
  rp.res = r;
  if (m->code > CK_IPATCH || !r->handlers[m->code]) {
    /* RFC 7252 §5.8: a method code we do not recognise, like one the
     * resource does not support, is answered 4.05 (§5.9.2.6). */
    resp->code = CK_METHOD_NOT_ALLOWED;
    d->rp = rp;
    goto send;
  }
  uint32_t v;
  if (r->nconsumes && ck_msg_opt_uint(m, CK_OPT_CONTENT_FORMAT, &v) == 0 &&
      !in_list(r->consumes, r->nconsumes, v)) {
    resp->code = CK_UNSUPPORTED_CONTENT_FORMAT;
    d->rp = rp;
    goto send;
  }
  if (r->nproduces && ck_msg_opt_uint(m, CK_OPT_ACCEPT, &v) == 0 &&
      !in_list(r->produces, r->nproduces, v)) {
    resp->code = CK_NOT_ACCEPTABLE;
    d->rp = rp;
    goto send;
  }

  struct ck_block want;
  bool want_ok = rp.has_block2 && ck_block_decode(rp.block2, &want) == 0;
  if (rp.echo_len && !mc &&
      (m->code == CK_GET || m->code == CK_FETCH || m->code == CK_POST ||
       m->code == CK_PATCH) &&
      ck_msg_opt_count(m, CK_OPT_BLOCK1) == 0 &&
      ck_msg_opt_count(m, CK_OPT_OBSERVE) == 0 &&
      (!rp.has_block2 || (want_ok && want.num == 0))) {
    /* RFC 9175 §2.4: the answer (a GET's first block, a POST's answer)
     * went back as a 4.01 with Echo; the request returns with it, and
     * the answer kept for it is sent now instead of running the handler
     * again. (Not for an Observe registration: that must go through the
     * handler's path.) */
    d->rp = rp;
    if (ck__rep_lookup_challenged(ctx, &d->rp, resp))
      goto send;
  }
  if (want_ok && !mc && want.num > 0 &&
      ck_msg_opt_count(m, CK_OPT_BLOCK1) == 0) {
    /* RFC 7959 §2.4, §3.2: a later block of an answer we keep is cut
     * from it; the handler ran once, for the first. */
    d->rp = rp;
    if (ck__rep_lookup(ctx, &d->rp, resp))
      goto send;
    if (!idempotent(m->code)) {
      /* The rest of a POST's answer we no longer hold: running the
       * handler again would repeat the action, with no body. */
      resp->code = CK_REQUEST_ENTITY_INCOMPLETE;
      goto send;
    }
  }

  bool completed_upload = false;
  if (ck_msg_opt_count(m, CK_OPT_BLOCK1) > 0) {
    int rc = ck__block1_input(ctx, &req, &rp, resp, path, (size_t)plen);
    if (rc == 0) {
      d->rp = rp;
      goto send;
    }
    completed_upload = true;
  }

  uint32_t obs = 0;
  bool has_obs = m->code == CK_GET && r->observable &&
                 ck_msg_opt_uint(m, CK_OPT_OBSERVE, &obs) == 0 && !mc;
  if (has_obs && obs == 1)
    ck__observe_remove_req(ctx, r, &req);

  d->rp = rp;
  resp->deferred = true; /* ck_response_defer() may take it */
  ck__run_handler(r, &req, resp);
  if (completed_upload)
    ck__block1_done(ctx);
  if (!resp->deferred) {
    /* Deferred: d now belongs to the handler. An observation is
     * registered when the deferred answer is sent. */
    if (has_obs && obs == 0) {
      d->obs_req = malloc(m->len);
      if (d->obs_req) {
        memcpy(d->obs_req, m->data, m->len);
        d->obs_req_len = m->len;
        d->obs_res = r;
      }
    }
    return;
  }
  resp->deferred = false;
  taken = resp->obs;
  if (taken) {
    if (ck__observer_answer(ctx, resp)) {
      d->rp.observe = true;
      d->rp.obs_seq = taken->seq;
    } else {
      taken = NULL;
    }
  } else if (has_obs && obs == 0) {
    if (CK_CODE_CLASS(resp->code) == 2 && ck__observe_add(ctx, r, &req) == 0) {
      d->rp.observe = true;
      d->rp.obs_seq = r->obs_seq;
    } else {
      ck__observe_remove_req(ctx, r, &req);
    }
  }

send:
  reply(ctx, &d->rp, resp, dd);
  if (d->rp.echo_refused && d->rp.observe) {
    /* The registration was answered with 4.01: it did not happen. */
    ck__echo_unobserve(ctx, &d->rp);
    taken = NULL;
  }
  if (taken)
    ck__observer_answered(ctx, taken);
  ck__resp_free(resp);
  if (!ctx->spare_deferred)
    ctx->spare_deferred = d;
  else
    free(d);
}

void ck__server_too_large(struct ck__ep *ep, const struct ck_addr *from,
                          const struct ck_msg *m, const uint8_t *buf)
{
  /* RFC 7959 §2.9.3: 4.13 for a CON request, with the size we take. */
  if (m->type != CK_TYPE_CON || CK_CODE_CLASS(m->code) != 0 || !m->code ||
      m->tkl > CK_TOKEN_MAX)
    return;
  struct ck__reply rp = {.ep = ep, .peer = *from, .req_type = m->type,
                         .method = m->code, .req_mid = m->mid,
                         .tkl = m->tkl, .req_len = CK__DGRAM_MAX};
  memcpy(rp.token, buf + CK_HEADER_LEN, m->tkl);
  struct ck_response resp;
  ck__resp_init(&resp, m->code);
  resp.code = CK_REQUEST_ENTITY_TOO_LARGE;
  ck_response_opt_uint(&resp, CK_OPT_SIZE1, 1024);
  reply(ep->ctx, &rp, &resp, NULL);
}

/* --- lifetime --- */

static void sweep(struct ck__timer *t)
{
  struct ck_ctx *ctx =
    (struct ck_ctx *)((char *)t - offsetof(struct ck_ctx, sweep));
  ck__uploads_sweep(ctx);
  ck__rep_sweep(ctx);
  ck__timer_start(&ctx->loop, &ctx->sweep, ck__uploads_sweep_ms(ctx), sweep);
}

static struct srv_lists *lists(struct ck_ctx *ctx)
{
  return (struct srv_lists *)ctx->srv_lists;
}

int ck__srv_init(struct ck_ctx *ctx)
{
  /* If-Match and If-None-Match are not here: only the application knows
   * a representation's ETag and existence, so a server that does not
   * evaluate them must refuse them with 4.02 (RFC 7252 §5.4.1) until it
   * says it does with ck_ctx_recognize_option(). */
  static const uint16_t understood[] = {
    CK_OPT_URI_HOST, CK_OPT_URI_PORT, CK_OPT_URI_PATH, CK_OPT_URI_QUERY,
    CK_OPT_ACCEPT,   CK_OPT_BLOCK2,   CK_OPT_BLOCK1,
  };
  for (size_t i = 0; i < sizeof understood / sizeof understood[0]; i++)
    ck_ctx_recognize_option(ctx, understood[i]);
  ctx->srv_lists = calloc(1, sizeof(struct srv_lists));
  if (!ctx->srv_lists)
    return CK_ENOMEM;
  int rc = ck__uploads_init(ctx);
  if (rc == 0)
    rc = ck__observe_init(ctx);
  if (rc == 0)
    ck__timer_start(&ctx->loop, &ctx->sweep, ck__uploads_sweep_ms(ctx),
                    sweep);
  return rc;
}

void ck__srv_close(struct ck_ctx *ctx)
{
  struct srv_lists *l = lists(ctx);
  if (l) {
    while (l->deferred)
      ck_deferred_drop(l->deferred);
    while (l->delayed) {
      struct delayed *d = l->delayed;
      l->delayed = d->next;
      ck__timer_stop(&ctx->loop, &d->timer);
      free(d);
    }
  }
  ck__observe_close(ctx);
  ck__echo_free(ctx);
  ck__uploads_close(ctx);
  ck__peers_close(ctx);
  ck__rep_close(ctx);
  ck__resources_free(ctx);
  free(ctx->srv_lists);
  ctx->srv_lists = NULL;
  free(ctx->spare_deferred);
  ctx->spare_deferred = NULL;
  ck__timer_stop(&ctx->loop, &ctx->sweep);
}
