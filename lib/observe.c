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
 *
 * To find the observer an RST refers to, each observer is also hashed by
 * (address, Message ID of its last notification): Message IDs follow one
 * sequence per peer (mid.c), so the ID alone does not name an observer.
 * An ICMP error for an observer's address ends its observations at once.
 */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "srv.h"

enum { HASH_BUCKETS = 1 << 16, DAY_MS = 24u * 3600u * 1000u };

struct ck__observer {
  struct ck__observer *next, *prev; /* the resource's list */
  struct ck__observer *hnext;       /* hash chain by (peer, token) */
  struct ck__observer *mnext;       /* hash chain by (peer, last_mid) */
  struct ck_resource *res;
  struct ck__ep *ep;
  struct ck__con *con; /* a CON notification in flight */
  uint8_t *req;
  struct ck_addr peer;
  uint64_t last_con;
  uint16_t req_len;
  uint16_t last_mid;
  uint8_t tkl;
  uint8_t token[CK_TOKEN_MAX];
};

struct ck__observers {
  struct ck__observer *buckets[HASH_BUCKETS];
  struct ck__observer *by_mid[HASH_BUCKETS];
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

static void mid_unlink(struct ck_ctx *ctx, struct ck__observer *o)
{
  struct ck__observer **pp =
    &ctx->obs->by_mid[mid_hash(&o->peer, o->last_mid)];
  while (*pp && *pp != o)
    pp = &(*pp)->mnext;
  if (*pp)
    *pp = o->mnext;
  o->mnext = NULL;
}

static void mid_link(struct ck_ctx *ctx, struct ck__observer *o)
{
  struct ck__observer **b = &ctx->obs->by_mid[mid_hash(&o->peer, o->last_mid)];
  o->mnext = *b;
  *b = o;
}

static struct ck__observer *find(struct ck_ctx *ctx,
                                 const struct ck_addr *peer,
                                 const uint8_t *tok, uint8_t tkl)
{
  if (!ctx->obs)
    return NULL;
  for (struct ck__observer *o = ctx->obs->buckets[obs_hash(peer, tok, tkl)];
       o; o = o->hnext)
    if (o->tkl == tkl && memcmp(o->token, tok, tkl) == 0 &&
        ck_addr_equal(&o->peer, peer))
      return o;
  return NULL;
}

static void obs_remove(struct ck_ctx *ctx, struct ck__observer *o)
{
  struct ck_resource *r = o->res;
  if (o->prev)
    o->prev->next = o->next;
  else
    r->obs_head = o->next;
  if (o->next)
    o->next->prev = o->prev;
  r->nobs--;
  struct ck__observer **pp =
    &ctx->obs->buckets[obs_hash(&o->peer, o->token, o->tkl)];
  while (*pp && *pp != o)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = o->hnext;
  mid_unlink(ctx, o);
  if (o->con)
    ck__con_cancel(ctx, o->con);
  ctx->stats.observers--;
  free(o->req);
  free(o);
}

int ck__observe_add(struct ck_ctx *ctx, struct ck_resource *r,
                    const struct ck_request *req)
{
  const struct ck_msg *m = req->msg;
  if (!ctx->obs) {
    ctx->obs = calloc(1, sizeof *ctx->obs);
    if (!ctx->obs)
      return CK_ENOMEM;
  }
  struct ck__observer *o = find(ctx, req->peer, m->token, m->tkl);
  if (o && o->res != r) {
    /* The client reused the token for another resource: the old
     * observation ends (RFC 7641 §3.1 keys observations by token). */
    obs_remove(ctx, o);
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
  if (ctx->stats.observers >= ctx->cfg.max_observers) {
    ctx->stats.observers_rejected++;
    free(copy);
    return CK_EFULL;
  }
  o = calloc(1, sizeof *o);
  if (!o) {
    free(copy);
    return CK_ENOMEM;
  }
  o->res = r;
  o->ep = req->ep;
  o->peer = *req->peer;
  o->tkl = m->tkl;
  memcpy(o->token, m->token, m->tkl);
  o->req = copy;
  o->req_len = (uint16_t)m->len;
  o->last_con = ck__loop_now(&ctx->loop);
  o->next = r->obs_head;
  if (r->obs_head)
    r->obs_head->prev = o;
  r->obs_head = o;
  r->nobs++;
  uint32_t h = obs_hash(&o->peer, o->token, o->tkl);
  o->hnext = ctx->obs->buckets[h];
  ctx->obs->buckets[h] = o;
  ctx->stats.observers++;
  return 0;
}

void ck__observe_remove_req(struct ck_ctx *ctx, struct ck_resource *r,
                            const struct ck_request *req)
{
  struct ck__observer *o =
    find(ctx, req->peer, req->msg->token, req->msg->tkl);
  if (o && o->res == r)
    obs_remove(ctx, o);
}

bool ck__observe_rst(struct ck_ctx *ctx, const struct ck_addr *peer,
                     uint16_t mid)
{
  if (!ctx->obs)
    return false;
  struct ck__observer *o = ctx->obs->by_mid[mid_hash(peer, mid)];
  while (o && (o->last_mid != mid || !ck_addr_equal(&o->peer, peer)))
    o = o->mnext;
  if (!o)
    return false;
  /* RFC 7641 §3.6: an RST to a notification cancels the observation. */
  obs_remove(ctx, o);
  return true;
}

static void con_done(struct ck_ctx *ctx, void *user, int result,
                     const struct ck_msg *ack)
{
  (void)ack;
  struct ck__observer *o = user;
  if (result == CK_ECANCELED)
    return; /* the context is closing and frees the observer itself */
  o->con = NULL;
  /* §4.5: a CON notification that times out or is reset means the
   * client is gone or no longer interested. */
  if (result == CK_ETIMEDOUT || result == CK_ERESET || result == CK_EUNREACH)
    obs_remove(ctx, o);
}

/* Sends one notification to o. Returns true when o is still there. */
static bool notify(struct ck_ctx *ctx, struct ck__observer *o,
                   unsigned flags)
{
  struct ck_resource *r = o->res;
  struct ck_msg m;
  if (ck_msg_parse(&m, o->req, o->req_len) < 0) {
    obs_remove(ctx, o);
    return false;
  }
  struct ck_request req = {.ctx = ctx,
                           .ep = o->ep,
                           .msg = &m,
                           .peer = &o->peer,
                           .multicast = false,
                           .body = m.payload,
                           .body_len = m.payload_len};
  struct ck_response *resp = malloc(sizeof *resp);
  if (!resp)
    return true;
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
  free(resp);
  if (n < 0)
    return true;
  if (con) {
    /* §4.5.2: a newer notification replaces one still in flight. */
    if (o->con)
      ck__con_cancel(ctx, o->con);
    o->con = ck__con_send(ctx, o->ep, &o->peer, buf, (size_t)n, NULL,
                          con_done, o);
    o->last_con = now;
  } else {
    (void)ck__ep_send(o->ep, &o->peer, buf, (size_t)n);
  }
  mid_unlink(ctx, o);
  o->last_mid = mid;
  mid_link(ctx, o);
  if (!ok) {
    /* §3.2: a non-2.xx notification ends the observation. */
    obs_remove(ctx, o);
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
  if (!r->handlers[CK_GET])
    return 0;
  int n = 0;
  struct ck__observer *o = r->obs_head;
  /* Called from outside the loop, the notifications still leave in
   * batches, and all of them before this call returns (ctx.h); inside,
   * they join the iteration's batch like any send. */
  bool outside = ctx->loop.depth == 0;
  ctx->loop.depth++;
  while (o) {
    /* The handler may not remove other observers, but notify() may
     * remove this one: take the next first. */
    struct ck__observer *next = o->next;
    if (notify(ctx, o, flags))
      n++;
    o = next;
  }
  ctx->loop.depth--;
  if (outside)
    ck__flush_all(ctx);
  return n;
}

void ck__observe_peer_gone(struct ck_ctx *ctx, const struct ck_addr *peer)
{
  if (!ctx->obs || ctx->stats.observers == 0)
    return;
  /* A scan of every observer: ICMP errors are rare and rate-limited by
   * the kernel, and only the peer itself can draw them. */
  for (struct ck_resource *r = ctx->resources; r; r = r->next) {
    struct ck__observer *o = r->obs_head;
    while (o) {
      struct ck__observer *next = o->next;
      if (ck_addr_equal(&o->peer, peer))
        obs_remove(ctx, o);
      o = next;
    }
  }
}

void ck__observe_close(struct ck_ctx *ctx)
{
  if (!ctx->obs)
    return;
  for (struct ck_resource *r = ctx->resources; r; r = r->next)
    while (r->obs_head)
      obs_remove(ctx, r->obs_head);
  free(ctx->obs);
  ctx->obs = NULL;
}

void ck__observe_resource_free(struct ck_ctx *ctx, struct ck_resource *r)
{
  while (ctx->obs && r->obs_head)
    obs_remove(ctx, r->obs_head);
}
