/* Observers fed by the application (RFC 7641): the server side of a
 * resource whose notifications differ per observer, such as a pub/sub
 * topic, where each observer has its own stream of messages rather than
 * one shared state.
 *
 * A GET handler takes the observer over with ck_observer_new(); from then
 * on the application hands it notifications one by one. Each observer has
 * a queue: notifications go out in the order given, at most one CON is in
 * flight (the head of the queue, kept until acknowledged so it can be
 * sent again after a NAT rebinding), and the queue holds at most
 * queue_max entries, dropping the oldest waiting one when full, so a slow
 * client costs bounded memory and never holds up the others. Unlike a
 * plain observer, a newer notification does not replace the one in
 * flight (§4.5.2 allows that for state; messages are not state).
 *
 * Every notification takes the next Observe value of its observer; a
 * re-registration that replaces an observation continues its sequence,
 * so the client's freshness check (§3.4) accepts the new answer.
 */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "srv.h"

enum { DEFAULT_QUEUE = 100, DAY_MS = 24u * 3600u * 1000u };

struct ck__note {
  struct ck__note *next;
  uint64_t expires_ms;
  unsigned flags;
  bool has_cf;
  uint16_t cf;
  size_t len;
  uint8_t payload[];
};

static struct ck_ctx *ctx_of(const struct ck_observer *o)
{
  return o->res->ctx;
}

int ck_observer_new(const struct ck_request *req, struct ck_response *resp,
                    const struct ck_observer_config *cfg,
                    struct ck_observer **out)
{
  if (!req || !resp || !cfg || !out || !req->res || !req->ctx)
    return CK_EINVAL;
  struct ck_ctx *ctx = req->ctx;
  struct ck_resource *r = req->res;
  const struct ck_msg *m = req->msg;
  uint32_t obs;
  if (!r->observable || m->code != CK_GET || req->multicast ||
      ck_msg_opt_uint(m, CK_OPT_OBSERVE, &obs) < 0 || obs != 0 ||
      resp->obs || cfg->type > CK_OBSERVER_TYPE_NON)
    return CK_EINVAL;

  uint32_t seq = 1;
  struct ck_observer *old = ck__observe_find(ctx, req->peer, m->token, m->tkl);
  if (old) {
    /* §4.1: the new registration replaces the old one, and continues its
     * sequence so that the client takes the answer as fresh. */
    seq = (old->seq + 1) & 0xffffff;
    ck__observe_end(ctx, old, CK_OBSERVER_REPLACED);
  }
  int rc;
  struct ck_observer *o = ck__observe_alloc(ctx, r, req, &rc);
  if (!o)
    return rc;
  o->app = true;
  o->pending = true;
  o->type = (uint8_t)cfg->type;
  o->seq = seq;
  o->queue_max = cfg->queue_max ? cfg->queue_max : DEFAULT_QUEUE;
  o->on_end = cfg->on_end;
  o->user = cfg->user;
  rc = ck__observe_link(ctx, o);
  if (rc < 0) {
    ck__observe_unalloc(ctx, o);
    return rc;
  }
  resp->obs = o;
  *out = o;
  return 0;
}

static void note_pop(struct ck_observer *o)
{
  struct ck__note *n = o->qhead;
  o->qhead = n->next;
  if (!o->qhead)
    o->qtail = NULL;
  o->queued--;
  ctx_of(o)->stats.notify_queued--;
  free(n);
}

void ck__observer_clear(struct ck_observer *o)
{
  while (o->qhead)
    note_pop(o);
}

/* Writes notification n for o into buf with the builder: no response
 * object, no copy of the payload. Returns its length or an error. */
static int build(struct ck_ctx *ctx, struct ck_observer *o,
                 const struct ck__note *n, const void *payload, uint8_t type,
                 uint16_t mid, uint8_t *buf, size_t cap)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, type, CK_CONTENT, mid);
  ck_builder_token(&b, o->token, o->tkl);
  /* RFC 7641 §4.4: the Observe value orders the notifications. */
  ck_builder_opt_uint(&b, CK_OPT_OBSERVE, o->seq);
  if (n->has_cf)
    ck_builder_opt_uint(&b, CK_OPT_CONTENT_FORMAT, n->cf);
  if (n->expires_ms) {
    /* The seconds left, rounded up: stale no earlier than the message. */
    uint64_t now = ck__loop_now(&ctx->loop);
    uint64_t left = n->expires_ms > now ? n->expires_ms - now : 0;
    ck_builder_opt_uint(&b, CK_OPT_MAX_AGE, (uint32_t)((left + 999) / 1000));
  }
  ck_builder_payload(&b, payload, n->len);
  return ck_builder_finish(&b);
}

/* Sends n (payload apart) to o. Returns 1 when it went out as a CON,
 * which is then in flight, 0 when it went out as NON or was dropped. */
static int send_note(struct ck_ctx *ctx, struct ck_observer *o,
                     const struct ck__note *n, const void *payload)
{
  uint64_t now = ck__loop_now(&ctx->loop);
  bool con = o->type == CK_OBSERVER_TYPE_CON || (n->flags & CK_NOTIFY_CON) ||
             (o->type == CK_OBSERVER_TYPE_DEFAULT && o->res->con_notify) ||
             now - o->last_con >= DAY_MS;
  uint8_t buf[CK__DGRAM_MAX];
  uint16_t mid = ck__next_mid(ctx, &o->peer);
  o->seq = (o->seq + 1) & 0xffffff;
  int len = build(ctx, o, n, payload, con ? CK_TYPE_CON : CK_TYPE_NON, mid,
                  buf, sizeof buf);
  if (len < 0) {
    ctx->stats.tx_dropped++; /* checked to fit when given: cannot happen */
    return 0;
  }
  ctx->stats.responses[CK_CONTENT]++;
  ck__observe_sent_mid(ctx, o, mid);
  if (!con) {
    (void)ck__ep_send(o->ep, &o->peer, buf, (size_t)len);
    return 0;
  }
  o->last_con = now;
  o->con = ck__observe_con_send(ctx, o, buf, (size_t)len);
  if (!o->con) {
    ctx->stats.tx_dropped++;
    return 0;
  }
  return 1;
}

/* Sends what waits in o's queue: NONs one after the other, up to and
 * including the first CON, which then stays at the head until its ACK. */
static void pump(struct ck_ctx *ctx, struct ck_observer *o)
{
  if (o->pending || o->con)
    return;
  uint64_t now = ck__loop_now(&ctx->loop);
  while (o->qhead && !o->con) {
    struct ck__note *n = o->qhead;
    if (n->expires_ms && n->expires_ms <= now) {
      note_pop(o); /* stale before it could leave */
      continue;
    }
    if (send_note(ctx, o, n, n->payload) == 0)
      note_pop(o);
  }
}

static struct ck__note *note_new(const struct ck_notification *n)
{
  struct ck__note *e = malloc(sizeof *e + n->len);
  if (!e)
    return NULL;
  e->next = NULL;
  e->expires_ms = n->expires_ms;
  e->flags = n->flags;
  e->has_cf = n->has_cf;
  e->cf = n->cf;
  e->len = n->len;
  if (n->len)
    memcpy(e->payload, n->payload, n->len);
  return e;
}

static void note_push(struct ck_observer *o, struct ck__note *e)
{
  if (o->qtail)
    o->qtail->next = e;
  else
    o->qhead = e;
  o->qtail = e;
  o->queued++;
  ctx_of(o)->stats.notify_queued++;
}

/* Makes room for one more: drops the oldest entry that is not in flight
 * (the one in flight must stay until its ACK, or a resend would break
 * the order). Returns 1 when one was dropped. */
static int make_room(struct ck_ctx *ctx, struct ck_observer *o)
{
  /* Past max_queued_notes, the observer that adds one pays with its own
   * oldest: the others' queues stay as they are. */
  bool total = ctx->stats.notify_queued >= ctx->cfg.max_queued_notes;
  bool own = o->queued >= o->queue_max;
  if (!own && !total)
    return 0;
  struct ck__note **pp = &o->qhead;
  if (o->con && *pp)
    pp = &(*pp)->next;
  struct ck__note *victim = *pp;
  if (!victim)
    return 0;
  *pp = victim->next;
  if (o->qtail == victim)
    o->qtail = o->qhead; /* only the one in flight, if any, is left */
  free(victim);
  o->queued--;
  ctx->stats.notify_queued--;
  ctx->stats.notify_dropped++;
  if (!own)
    ctx->stats.notify_dropped_cap++;
  return 1;
}

int ck_observer_notify(struct ck_observer *o, const struct ck_notification *n)
{
  if (!o || !n || (!n->payload && n->len > 0))
    return CK_EINVAL;
  struct ck_ctx *ctx = ctx_of(o);
  /* The library does not slice notifications into blocks: a client
   * would fetch the rest with a GET the application cannot answer
   * consistently. Refuse what would not fit one datagram with room for
   * the header, token and options. */
  if (n->len > CK__DGRAM_MAX - 64)
    return CK_ENOSPC;
  if (!o->pending && !o->con && !o->qhead) {
    /* Nothing waits: send it straight from the caller's buffer, and copy
     * it only when it goes out as a CON, which may need sending again
     * after a move. */
    struct ck__note view = {.expires_ms = n->expires_ms,
                            .flags = n->flags,
                            .has_cf = n->has_cf,
                            .cf = n->cf,
                            .len = n->len};
    bool outside = ck__batch_begin(ctx);
    int con = send_note(ctx, o, &view, n->payload);
    if (con) {
      struct ck__note *e = note_new(n);
      if (e) {
        note_push(o, e);
      } else {
        /* No copy: the CON still goes out, but cannot be resent. */
        ck__con_cancel(ctx, o->con);
        o->con = NULL;
      }
    }
    ck__batch_end(ctx, outside);
    return 0;
  }
  int dropped = make_room(ctx, o);
  if (!dropped && ctx->stats.notify_queued >= ctx->cfg.max_queued_notes) {
    /* At the total cap with nothing of its own waiting (only the CON in
     * flight): the new one is the one that drops. */
    ctx->stats.notify_dropped++;
    ctx->stats.notify_dropped_cap++;
    return 1;
  }
  struct ck__note *e = note_new(n);
  if (!e)
    return CK_ENOMEM;
  note_push(o, e);
  bool outside = ck__batch_begin(ctx);
  pump(ctx, o);
  ck__batch_end(ctx, outside);
  return dropped;
}

void ck__observer_con_done(struct ck_ctx *ctx, struct ck_observer *o)
{
  if (o->qhead)
    note_pop(o); /* the CON in flight was acknowledged */
  pump(ctx, o);
}

bool ck__observer_answer(struct ck_ctx *ctx, struct ck_response *resp)
{
  struct ck_observer *o = resp->obs;
  resp->obs = NULL;
  if (CK_CODE_CLASS(resp->code) != 2) {
    ck__observe_end(ctx, o, CK_OBSERVER_REFUSED);
    return false;
  }
  return true;
}

void ck__observer_answered(struct ck_ctx *ctx, struct ck_observer *o)
{
  o->pending = false;
  pump(ctx, o);
}

int ck_observer_move(struct ck_observer *o, const struct ck_request *req)
{
  if (!o || !req || !req->peer)
    return CK_EINVAL;
  struct ck_ctx *ctx = ctx_of(o);
  o->ep = req->ep;
  if (ck_addr_equal(&o->peer, req->peer))
    return 0;
  ck__observe_repeer(ctx, o, req->peer);
  if (o->con) {
    /* The CON in flight goes to the old address: send it again to the
     * new one, under a new Message ID, with the same Observe value. */
    ck__con_cancel(ctx, o->con);
    o->con = NULL;
    o->seq = (o->seq - 1) & 0xffffff;
    bool outside = ck__batch_begin(ctx);
    pump(ctx, o);
    ck__batch_end(ctx, outside);
  }
  return 0;
}

const struct ck_addr *ck_observer_peer(const struct ck_observer *o)
{
  return o ? &o->peer : NULL;
}

size_t ck_observer_queued(const struct ck_observer *o)
{
  return o ? o->queued : 0;
}

void ck_observer_free(struct ck_observer *o)
{
  if (o)
    ck__observe_end(ctx_of(o), o, 0);
}
