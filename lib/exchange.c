/* The messaging layer: what RFC 7252 §4 asks of every endpoint.
 *
 * Received requests are remembered so that a retransmission is answered
 * from the cache instead of running its handler twice (§4.5); that table
 * is dedup.c's, created and freed here with the rest of the layer.
 *
 * Confirmable messages we send are retransmitted with the initial timeout
 * drawn from [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR] and doubled
 * each time, MAX_RETRANSMIT times (§4.2, §4.8), and matched with their
 * ACK or RST by Message ID and peer.
 */
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

/* Pending CONs are hashed twice: by (peer, Message ID), to match an ACK or
 * RST, and by peer, so that an ICMP error fails that peer's CONs without a
 * scan of all of them (a server fanning CON notifications out to 100,000
 * observers has that many pending). Both tables double when the count
 * passes their size. */
enum { CON_BUCKETS_MIN = 1024 };

/* Records of CONs up to POOL_MSG bytes are kept for reuse when answered,
 * up to POOL_MAX of them: a server notifying many observers by CON then
 * allocates nothing per notification once the first round is out. The
 * pool never holds more than the most CONs pending at once, which malloc
 * would have kept in its arenas anyway. */
enum { POOL_MSG = 192, POOL_MAX = 1 << 17 };

struct ck__con {
  struct ck__timer timer; /* first: the timer callback casts back */
  struct ck_ctx *ctx;
  struct ck__con *next;                /* chain by (peer, mid) */
  struct ck__con *pnext, **pprev;      /* chain by peer */
  struct ck__ep *ep;
  struct ck_addr peer;
  const struct ck_params *params;
  uint64_t *counter;
  ck__con_filter filter;
  ck__con_cb cb;
  void *user;
  uint64_t timeout;
  uint32_t tries;
  uint16_t mid;
  uint16_t len;
  uint16_t cap; /* bytes msg[] has room for */
  uint8_t msg[];
};

struct ck__cons {
  size_t count;
  size_t mask; /* buckets - 1 */
  struct ck__con **by_mid;
  struct ck__con **by_peer;
  struct ck__con *pool; /* answered records of POOL_MSG, linked by next */
  size_t npool;
};

static struct ck__con *con_alloc(struct ck__cons *t, size_t len)
{
  struct ck__con *c;
  if (len <= POOL_MSG && t->pool) {
    c = t->pool;
    t->pool = c->next;
    t->npool--;
    return c;
  }
  size_t cap = len <= POOL_MSG ? POOL_MSG : len;
  c = malloc(sizeof *c + cap);
  if (c)
    c->cap = (uint16_t)cap;
  return c;
}

static void con_free(struct ck__cons *t, struct ck__con *c)
{
  if (c->cap == POOL_MSG && t->npool < POOL_MAX) {
    c->next = t->pool;
    t->pool = c;
    t->npool++;
    return;
  }
  free(c);
}

static size_t mid_slot(const struct ck__cons *t, const struct ck_addr *peer,
                       uint16_t mid)
{
  uint32_t h = (ck_addr_hash(peer) ^ mid) * 0x9e3779b1u;
  return (h ^ (h >> 15)) & t->mask;
}

static size_t peer_slot(const struct ck__cons *t, const struct ck_addr *peer)
{
  uint32_t h = ck_addr_hash(peer) * 0x85ebca6bu;
  return (h ^ (h >> 13)) & t->mask;
}

static void con_link(struct ck__cons *t, struct ck__con *c)
{
  struct ck__con **b = &t->by_mid[mid_slot(t, &c->peer, c->mid)];
  c->next = *b;
  *b = c;
  struct ck__con **p = &t->by_peer[peer_slot(t, &c->peer)];
  c->pnext = *p;
  if (*p)
    (*p)->pprev = &c->pnext;
  c->pprev = p;
  *p = c;
}

/* Doubles both tables; on failure they stay as they are (longer chains,
 * still correct). */
static void cons_grow(struct ck__cons *t)
{
  size_t n = (t->mask + 1) * 2;
  struct ck__con **m = calloc(n, sizeof *m), **p = calloc(n, sizeof *p);
  if (!m || !p) {
    free(m);
    free(p);
    return;
  }
  struct ck__con **old = t->by_mid;
  size_t old_n = t->mask + 1;
  free(t->by_peer);
  t->by_mid = m;
  t->by_peer = p;
  t->mask = n - 1;
  for (size_t b = 0; b < old_n; b++) {
    struct ck__con *c = old[b];
    while (c) {
      struct ck__con *next = c->next;
      con_link(t, c);
      c = next;
    }
  }
  free(old);
}

int ck__exchange_init(struct ck_ctx *ctx)
{
  struct ck__cons *t = calloc(1, sizeof *t);
  if (!t)
    return CK_ENOMEM;
  t->mask = CON_BUCKETS_MIN - 1;
  t->by_mid = calloc(CON_BUCKETS_MIN, sizeof *t->by_mid);
  t->by_peer = calloc(CON_BUCKETS_MIN, sizeof *t->by_peer);
  if (!t->by_mid || !t->by_peer) {
    free(t->by_mid);
    free(t->by_peer);
    free(t);
    return CK_ENOMEM;
  }
  ctx->cons = t;
  return ck__dedup_init(ctx);
}

void ck__exchange_close(struct ck_ctx *ctx)
{
  struct ck__cons *t = ctx->cons;
  if (t) {
    for (size_t b = 0; t->by_mid && b <= t->mask; b++) {
      struct ck__con *c;
      while ((c = t->by_mid[b]) != NULL) {
        t->by_mid[b] = c->next;
        ck__timer_stop(&ctx->loop, &c->timer);
        c->cb(ctx, c->user, CK_ECANCELED, NULL);
        con_free(t, c);
      }
    }
    while (t->pool) {
      struct ck__con *c = t->pool;
      t->pool = c->next;
      free(c);
    }
    free(t->by_mid);
    free(t->by_peer);
    free(t);
    ctx->cons = NULL;
  }
  ck__dedup_close(ctx);
}

/* --- confirmable messages --- */

static void con_unlink(struct ck_ctx *ctx, struct ck__con *c)
{
  struct ck__cons *t = ctx->cons;
  struct ck__con **pp = &t->by_mid[mid_slot(t, &c->peer, c->mid)];
  while (*pp && *pp != c)
    pp = &(*pp)->next;
  if (*pp)
    *pp = c->next;
  *c->pprev = c->pnext;
  if (c->pnext)
    c->pnext->pprev = c->pprev;
  t->count--;
  ck__timer_stop(&ctx->loop, &c->timer);
}

static void con_timeout(struct ck__timer *t)
{
  struct ck__con *c = (struct ck__con *)t;
  struct ck_ctx *ctx = c->ctx;
  if (c->tries < c->params->max_retransmit) {
    c->tries++;
    c->timeout *= 2;
    ctx->stats.tx_retransmits++;
    if (c->counter)
      (*c->counter)++;
    (void)ck__ep_send(c->ep, &c->peer, c->msg, c->len);
    ck__timer_start(&ctx->loop, &c->timer, c->timeout, con_timeout);
    return;
  }
  con_unlink(ctx, c);
  c->cb(ctx, c->user, CK_ETIMEDOUT, NULL);
  con_free(ctx->cons, c);
}

struct ck__con *ck__con_send(struct ck_ctx *ctx, struct ck__ep *ep,
                             const struct ck_addr *peer, const uint8_t *msg,
                             size_t len, const struct ck_params *params,
                             ck__con_cb cb, void *user)
{
  if (len < CK_HEADER_LEN || len > UINT16_MAX)
    return NULL;
  struct ck__con *c = con_alloc(ctx->cons, len);
  if (!c)
    return NULL;
  uint16_t cap = c->cap;
  memset(c, 0, sizeof *c);
  c->cap = cap;
  c->ctx = ctx;
  c->ep = ep;
  c->peer = *peer;
  c->params = params ? params : &ctx->cfg.params;
  c->cb = cb;
  c->user = user;
  c->mid = (uint16_t)(msg[2] << 8 | msg[3]);
  c->len = (uint16_t)len;
  memcpy(c->msg, msg, len);

  /* RFC 7252 §4.2: the first timeout is random in
   * [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR]. */
  const struct ck_params *p = c->params;
  uint32_t r;
  ck__random(ctx, &r, sizeof r);
  double span = (double)p->ack_timeout_ms * (p->ack_random_factor - 1.0);
  c->timeout = p->ack_timeout_ms + (uint64_t)(span * (r / 4294967296.0));
  ck__timer_start(&ctx->loop, &c->timer, c->timeout, con_timeout);
  struct ck__cons *t = ctx->cons;
  if (t->count > t->mask)
    cons_grow(t);
  con_link(t, c);
  t->count++;
  (void)ck__ep_send(ep, peer, msg, len);
  return c;
}

void ck__con_count_into(struct ck__con *c, uint64_t *counter)
{
  c->counter = counter;
}

void ck__con_filter_acks(struct ck__con *c, ck__con_filter f)
{
  c->filter = f;
}

void ck__con_cancel(struct ck_ctx *ctx, struct ck__con *c)
{
  if (!c)
    return;
  con_unlink(ctx, c);
  con_free(ctx->cons, c);
}

bool ck__con_input(struct ck_ctx *ctx, const struct ck_addr *peer,
                   const struct ck_msg *m)
{
  struct ck__cons *t = ctx->cons;
  for (struct ck__con *c = t->by_mid[mid_slot(t, peer, m->mid)]; c;
       c = c->next) {
    if (c->mid == m->mid && ck_addr_equal(&c->peer, peer)) {
      if (m->type == CK_TYPE_ACK && c->filter && !c->filter(c->user, m))
        return true; /* rejected: ignored, c stays pending */
      con_unlink(ctx, c);
      c->cb(ctx, c->user, m->type == CK_TYPE_RST ? CK_ERESET : 0, m);
      con_free(ctx->cons, c);
      return true;
    }
  }
  return false;
}

int ck__con_fail_peer(struct ck_ctx *ctx, const struct ck_addr *peer,
                      int err)
{
  int n = 0;
  /* A callback may cancel other CONs (even the chain's next one), so
   * after each callback the chain is searched again from its head. */
  for (;;) {
    struct ck__cons *t = ctx->cons;
    struct ck__con *c = t->by_peer[peer_slot(t, peer)];
    while (c && !ck_addr_equal(&c->peer, peer))
      c = c->pnext;
    if (!c)
      return n;
    con_unlink(ctx, c);
    c->cb(ctx, c->user, err, NULL);
    con_free(ctx->cons, c);
    n++;
  }
}

size_t ck__con_count(const struct ck_ctx *ctx)
{
  return ctx->cons->count;
}
