/* Observers on the server (RFC 7641).
 *
 * A GET with Observe=0 on an observable resource, answered 2.xx, makes
 * its sender an observer, keyed by (address, token). The observer keeps a
 * copy of its request so that a notification is simply the GET handler
 * run again on that request. Notifications are NON unless the resource or
 * the caller wants CON, and at least one in 24 hours is CON so that a
 * vanished client is noticed (§4.5). An observer goes away when it
 * answers a notification with RST, when a CON notification times out,
 * when it deregisters (Observe=1), or when a notification is not 2.xx.
 * A registration past max_observers, max_observers_per_resource,
 * max_observers_per_peer or max_peers (peers.c) is answered as a plain
 * GET, without Observe (§4.1), and counted.
 *
 * To find the observer an RST refers to, each observer is also hashed by
 * (address, Message ID of its last notification): Message IDs follow one
 * sequence per peer (mid.c), so the ID alone does not name an observer.
 * An ICMP error for an observer's address ends its observations at once;
 * a third hash, by address alone, finds them without a scan of every
 * observer (a dead peer must not cost the others their notifications).
 * Observers that the application feeds itself (observer.c) live in the
 * same tables, so RST, ICMP, deregistration and re-registration find
 * them alike.
 */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "peers.h"
#include "srv.h"

enum { HASH_BUCKETS = 1 << 16, DAY_MS = 24u * 3600u * 1000u };


struct ck__observers {
  struct ck_observer *buckets[HASH_BUCKETS];
  struct ck_observer *by_mid[HASH_BUCKETS];
  struct ck_observer *by_peer[HASH_BUCKETS];
};

int ck__observe_init(struct ck_ctx *ctx)
{
  /* Allocated on the first registration: most contexts never observe. */
  ctx->obs = NULL;
  return 0;
}

static uint32_t obs_hash(const struct ck_addr *peer, const uint8_t *tok,
                         uint8_t tkl)
{
  uint32_t h = ck_addr_hash(peer);
  for (uint8_t i = 0; i < tkl; i++)
    h = (h ^ tok[i]) * 16777619u;
  return (h ^ (h >> 16)) & (HASH_BUCKETS - 1);
}

static uint32_t mid_hash(const struct ck_addr *peer, uint16_t mid)
{
  uint32_t h = (ck_addr_hash(peer) ^ mid) * 0x9e3779b1u;
  return (h >> 16) & (HASH_BUCKETS - 1);
}

static void mid_unlink(struct ck_ctx *ctx, struct ck_observer *o)
{
  struct ck_observer **pp =
    &ctx->obs->by_mid[mid_hash(&o->peer, o->last_mid)];
  while (*pp && *pp != o)
    pp = &(*pp)->mnext;
  if (*pp)
    *pp = o->mnext;
  o->mnext = NULL;
}

static void mid_link(struct ck_ctx *ctx, struct ck_observer *o)
{
  struct ck_observer **b = &ctx->obs->by_mid[mid_hash(&o->peer, o->last_mid)];
  o->mnext = *b;
  *b = o;
}

struct ck_observer *ck__observe_find(struct ck_ctx *ctx,
                                     const struct ck_addr *peer,
                                     const uint8_t *tok, uint8_t tkl)
{
  if (!ctx->obs)
    return NULL;
  for (struct ck_observer *o = ctx->obs->buckets[obs_hash(peer, tok, tkl)];
       o; o = o->hnext)
    if (o->tkl == tkl && memcmp(o->token, tok, tkl) == 0 &&
        ck_addr_equal(&o->peer, peer))
      return o;
  return NULL;
}

static uint32_t peer_hash(const struct ck_addr *peer)
{
  uint32_t h = ck_addr_hash(peer) * 0x85ebca6bu;
  return (h ^ (h >> 16)) & (HASH_BUCKETS - 1);
}

static void hash_unlink(struct ck_ctx *ctx, struct ck_observer *o)
{
  *o->pprev = o->pnext;
  if (o->pnext)
    o->pnext->pprev = o->pprev;
  struct ck_observer **pp =
    &ctx->obs->buckets[obs_hash(&o->peer, o->token, o->tkl)];
  while (*pp && *pp != o)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = o->hnext;
}

static void hash_link(struct ck_ctx *ctx, struct ck_observer *o)
{
  uint32_t h = obs_hash(&o->peer, o->token, o->tkl);
  o->hnext = ctx->obs->buckets[h];
  ctx->obs->buckets[h] = o;
  struct ck_observer **p = &ctx->obs->by_peer[peer_hash(&o->peer)];
  o->pnext = *p;
  if (*p)
    (*p)->pprev = &o->pnext;
  o->pprev = p;
  *p = o;
}

static void unlink_all(struct ck_ctx *ctx, struct ck_observer *o)
{
  struct ck_resource *r = o->res;
  if (o->prev)
    o->prev->next = o->next;
  else
    r->obs_head = o->next;
  if (o->next)
    o->next->prev = o->prev;
  r->nobs--;
  hash_unlink(ctx, o);
  if (o->has_mid)
    mid_unlink(ctx, o);
}

void ck__observe_end(struct ck_ctx *ctx, struct ck_observer *o, int why)
{
  if (o->ending)
    return; /* on_end is running for it already */
  unlink_all(ctx, o);
  if (o->con)
    ck__con_cancel(ctx, o->con);
  o->con = NULL;
  ctx->stats.observers--;
  ck__peer_release(ctx, o->holder, CK__PEER_OBSERVER);
  if (o->app) {
    ck__observer_clear(o);
    if (why && o->on_end) {
      o->ending = true;
      o->on_end(o, why, o->user);
    }
  }
  free(o->req);
  free(o);
}

static void obs_remove(struct ck_ctx *ctx, struct ck_observer *o, int why)
{
  ck__observe_end(ctx, o, why);
}

int ck__observe_link(struct ck_ctx *ctx, struct ck_observer *o)
{
  if (!ctx->obs) {
    ctx->obs = calloc(1, sizeof *ctx->obs);
    if (!ctx->obs)
      return CK_ENOMEM;
  }
  struct ck_resource *r = o->res;
  o->prev = NULL;
  o->next = r->obs_head;
  if (r->obs_head)
    r->obs_head->prev = o;
  r->obs_head = o;
  r->nobs++;
  hash_link(ctx, o);
  /* Hashed by Message ID once a notification has gone out. */
  o->mnext = NULL;
  ctx->stats.observers++;
  return 0;
}

void ck__observe_sent_mid(struct ck_ctx *ctx, struct ck_observer *o,
                          uint16_t mid)
{
  if (o->has_mid)
    mid_unlink(ctx, o);
  o->last_mid = mid;
  o->has_mid = true;
  mid_link(ctx, o);
}

void ck__observe_repeer(struct ck_ctx *ctx, struct ck_observer *o,
                        const struct ck_addr *peer)
{
  /* o stays counted for the peer it registered from (peers.c): a NAT
   * rebinding moves one client, and the cap was checked when it came. */
  hash_unlink(ctx, o);
  if (o->has_mid)
    mid_unlink(ctx, o);
  o->peer = *peer;
  hash_link(ctx, o);
  if (o->has_mid)
    mid_link(ctx, o);
}

struct ck_observer *ck__observe_alloc(struct ck_ctx *ctx,
                                      struct ck_resource *r,
                                      const struct ck_request *req, int *err)
{
  if (ctx->stats.observers >= ctx->cfg.max_observers) {
    ctx->stats.observers_rejected++;
    *err = CK_EFULL;
    return NULL;
  }
  if (r->nobs >= ctx->cfg.max_observers_per_resource) {
    ctx->stats.observers_rejected_resource++;
    *err = CK_EFULL;
    return NULL;
  }
  struct ck_observer *o = calloc(1, sizeof *o);
  if (!o) {
    *err = CK_ENOMEM;
    return NULL;
  }
  bool full;
  o->holder = ck__peer_hold(ctx, req->peer, CK__PEER_OBSERVER, &full);
  if (!o->holder) {
    free(o);
    *err = full ? CK_EFULL : CK_ENOMEM;
    return NULL;
  }
  const struct ck_msg *m = req->msg;
  o->res = r;
  o->ep = req->ep;
  o->peer = *req->peer;
  o->tkl = m->tkl;
  memcpy(o->token, m->token, m->tkl);
  o->last_con = ck__loop_now(&ctx->loop);
  return o;
}

void ck__observe_unalloc(struct ck_ctx *ctx, struct ck_observer *o)
{
  ck__peer_release(ctx, o->holder, CK__PEER_OBSERVER);
  free(o->req);
  free(o);
}

int ck__observe_add(struct ck_ctx *ctx, struct ck_resource *r,
                    const struct ck_request *req)
{
  const struct ck_msg *m = req->msg;
  struct ck_observer *o = ck__observe_find(ctx, req->peer, m->token, m->tkl);
  if (o && (o->res != r || o->app)) {
    /* The client reused the token for another resource, or the
     * application fed the old observation: it ends (RFC 7641 §3.1 keys
     * observations by token). */
    obs_remove(ctx, o, CK_OBSERVER_REPLACED);
    o = NULL;
  }
  uint8_t *copy = malloc(m->len);
  if (!copy)
    return CK_ENOMEM;
  memcpy(copy, m->data, m->len);
  if (o) {
    /* §4.1: a repeated registration replaces the entry. */
    free(o->req);
    o->req = copy;
    o->req_len = (uint16_t)m->len;
    o->ep = req->ep;
    return 0;
  }
  int err;
  o = ck__observe_alloc(ctx, r, req, &err);
  if (!o) {
    free(copy);
    return err;
  }
  o->req = copy;
  o->req_len = (uint16_t)m->len;
  int rc = ck__observe_link(ctx, o);
  if (rc < 0)
    ck__observe_unalloc(ctx, o);
  return rc;
}

void ck__observe_remove_req(struct ck_ctx *ctx, struct ck_resource *r,
                            const struct ck_request *req)
{
  struct ck_observer *o =
    ck__observe_find(ctx, req->peer, req->msg->token, req->msg->tkl);
  if (o && o->res == r)
    obs_remove(ctx, o, CK_OBSERVER_DEREGISTERED);
}

bool ck__observe_rst(struct ck_ctx *ctx, const struct ck_addr *peer,
                     uint16_t mid)
{
  if (!ctx->obs)
    return false;
  struct ck_observer *o = ctx->obs->by_mid[mid_hash(peer, mid)];
  while (o && (o->last_mid != mid || !ck_addr_equal(&o->peer, peer)))
    o = o->mnext;
  if (!o)
    return false;
  /* RFC 7641 §3.6: an RST to a notification cancels the observation. */
  obs_remove(ctx, o, CK_OBSERVER_RESET);
  return true;
}

static void con_done(struct ck_ctx *ctx, void *user, int result,
                     const struct ck_msg *ack)
{
  (void)ack;
  struct ck_observer *o = user;
  if (result == CK_ECANCELED)
    return; /* the context is closing and frees the observer itself */
  o->con = NULL;
  if (o->app && result == 0) {
    ck__observer_con_done(ctx, o);
    return;
  }
  /* §4.5: a CON notification that times out or is reset means the
   * client is gone or no longer interested. */
  if (result == CK_ETIMEDOUT)
    obs_remove(ctx, o, CK_OBSERVER_TIMEOUT);
  else if (result == CK_ERESET)
    obs_remove(ctx, o, CK_OBSERVER_RESET);
  else if (result == CK_EUNREACH)
    obs_remove(ctx, o, CK_OBSERVER_UNREACHABLE);
}

struct ck__con *ck__observe_con_send(struct ck_ctx *ctx,
                                     struct ck_observer *o,
                                     const uint8_t *buf, size_t len)
{
  return ck__con_send(ctx, o->ep, &o->peer, buf, len, NULL, con_done, o);
}

/* Sends one notification to o, with resp as the handler's scratch
 * response (one per round, not one allocation per observer). Returns
 * true when o is still there. */
static bool notify(struct ck_ctx *ctx, struct ck_observer *o,
                   unsigned flags, struct ck_response *resp)
{
  struct ck_resource *r = o->res;
  struct ck_msg m;
  if (ck_msg_parse(&m, o->req, o->req_len) < 0) {
    obs_remove(ctx, o, CK_OBSERVER_CLOSED);
    return false;
  }
  struct ck_request req = {.ctx = ctx,
                           .ep = o->ep,
                           .msg = &m,
                           .peer = &o->peer,
                           .multicast = false,
                           .body = m.payload,
                           .body_len = m.payload_len};
  ck__resp_init(resp, CK_GET);
  ck__run_handler(r, &req, resp);

  uint64_t now = ck__loop_now(&ctx->loop);
  bool ok = CK_CODE_CLASS(resp->code) == 2;
  bool con = (flags & CK_NOTIFY_CON) || r->con_notify ||
             now - o->last_con >= DAY_MS;
  struct ck__reply rp;
  memset(&rp, 0, sizeof rp);
  rp.method = CK_GET;
  rp.observe = ok;
  rp.obs_seq = r->obs_seq;
  uint8_t buf[CK__DGRAM_MAX];
  uint16_t mid = ck__next_mid(ctx, &o->peer);
  int n = ck__build_response(ctx, buf, sizeof buf,
                             con ? CK_TYPE_CON : CK_TYPE_NON, mid, o->token,
                             o->tkl, resp, &rp);
  ck__resp_free(resp);
  if (n < 0)
    return true;
  if (con) {
    /* §4.5.2: a newer notification replaces one still in flight. */
    if (o->con)
      ck__con_cancel(ctx, o->con);
    o->con = ck__observe_con_send(ctx, o, buf, (size_t)n);
    o->last_con = now;
  } else {
    (void)ck__ep_send(o->ep, &o->peer, buf, (size_t)n);
  }
  ctx->stats.responses[buf[1]]++;
  ck__observe_sent_mid(ctx, o, mid);
  if (!ok) {
    /* §3.2: a non-2.xx notification ends the observation. */
    obs_remove(ctx, o, CK_OBSERVER_CLOSED);
    return false;
  }
  return true;
}

int ck_resource_changed(struct ck_resource *r, unsigned flags)
{
  if (!r)
    return CK_EINVAL;
  struct ck_ctx *ctx = r->ctx;
  r->obs_seq = (r->obs_seq + 1) & 0xffffff;
  /* Blocks still to come of the old state are cut from the new one
   * (RFC 7959 §2.4: its new ETag tells the client). */
  ck__rep_invalidate(ctx, r);
  if (!r->handlers[CK_GET])
    return 0;
  int n = 0;
  struct ck_observer *o = r->obs_head;
  struct ck_response *resp = o ? malloc(sizeof *resp) : NULL;
  if (o && !resp)
    return (int)r->nobs; /* none could be notified; all remain */
  /* Called from outside the loop, the notifications still leave in
   * batches, and all of them before this call returns (ctx.h); inside,
   * they join the iteration's batch like any send. */
  bool outside = ck__batch_begin(ctx);
  while (o) {
    /* The handler may not remove other observers, but notify() may
     * remove this one: take the next first. */
    struct ck_observer *next = o->next;
    if (o->app)
      n++; /* fed by the application, not by the handler */
    else if (notify(ctx, o, flags, resp))
      n++;
    o = next;
  }
  free(resp);
  ck__batch_end(ctx, outside);
  return n;
}

void ck__observe_peer_gone(struct ck_ctx *ctx, const struct ck_addr *peer)
{
  if (!ctx->obs || ctx->stats.observers == 0)
    return;
  /* Ending an observer may end others of the same peer (an application
   * observer's on_end), so the chain is searched again from its head
   * after each one. Bounded: every round removes one observer. */
  for (;;) {
    struct ck_observer *o = ctx->obs->by_peer[peer_hash(peer)];
    while (o && (o->ending || !ck_addr_equal(&o->peer, peer)))
      o = o->pnext;
    if (!o)
      return;
    obs_remove(ctx, o, CK_OBSERVER_UNREACHABLE);
  }
}

void ck__observe_close(struct ck_ctx *ctx)
{
  if (!ctx->obs)
    return;
  for (struct ck_resource *r = ctx->resources; r; r = r->next)
    while (r->obs_head)
      obs_remove(ctx, r->obs_head, CK_OBSERVER_CLOSED);
  free(ctx->obs);
  ctx->obs = NULL;
}

void ck__observe_resource_free(struct ck_ctx *ctx, struct ck_resource *r)
{
  while (ctx->obs && r->obs_head)
    obs_remove(ctx, r->obs_head, CK_OBSERVER_CLOSED);
}
