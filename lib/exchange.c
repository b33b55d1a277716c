/* The messaging layer: what RFC 7252 §4 asks of every endpoint.
 *
 * Received requests are remembered by (peer, Message ID) in a fixed-size
 * open-addressed table so that a retransmitted request is answered from
 * the cache instead of running its handler twice (§4.5). Each key has a
 * window of PROBE slots, aligned so that the window's compact keys (tag
 * and coarse expiry, 8 bytes a slot) fill one cache line: a lookup or an
 * insert reads that line and touches a full entry only on a tag match or
 * for the slot it takes. A full window never grows the table: it evicts
 * the oldest finished idempotent exchange, which §4.5 allows to be
 * processed again, and refuses a non-idempotent one (5.03) rather than
 * risk running it twice.
 *
 * Confirmable messages we send are retransmitted with the initial timeout
 * drawn from [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR] and doubled
 * each time, MAX_RETRANSMIT times (§4.2, §4.8), and matched with their
 * ACK or RST by Message ID and peer.
 */
#include <stdlib.h>
#include <string.h>

#include "exchange.h"

enum { PROBE = 8, CON_BUCKETS = 4096 };

/* The compact key of a slot: tag = MID | high hash bits; exp = expiry in
 * 1.024 s units (0: free), with IDEM set for idempotent exchanges. */
struct dd_key {
  uint32_t tag;
  uint32_t exp;
};

enum { IDEM = 1u << 31 };

struct ck__dedup {
  uint32_t mask;
  struct dd_key *keys; /* cache-line aligned */
  struct ck__dd_entry slots[];
};

struct ck__con {
  struct ck__timer timer; /* first: the timer callback casts back */
  struct ck_ctx *ctx;
  struct ck__con *next;
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
  uint8_t msg[];
};

struct ck__cons {
  size_t count;
  struct ck__con *buckets[CON_BUCKETS];
};

int ck__exchange_init(struct ck_ctx *ctx)
{
  uint32_t n = 64;
  while (n < ctx->cfg.dedup_entries && n < (1u << 24))
    n <<= 1;
  ctx->dedup = calloc(1, sizeof *ctx->dedup + n * sizeof(struct ck__dd_entry));
  ctx->cons = calloc(1, sizeof *ctx->cons);
  if (!ctx->dedup || !ctx->cons)
    return CK_ENOMEM;
  ctx->dedup->mask = n - 1;
  ctx->dedup->keys = aligned_alloc(64, n * sizeof(struct dd_key));
  if (!ctx->dedup->keys)
    return CK_ENOMEM;
  memset(ctx->dedup->keys, 0, n * sizeof(struct dd_key));
  return 0;
}

void ck__exchange_close(struct ck_ctx *ctx)
{
  if (ctx->cons) {
    for (size_t b = 0; b < CON_BUCKETS; b++) {
      struct ck__con *c;
      while ((c = ctx->cons->buckets[b]) != NULL) {
        ctx->cons->buckets[b] = c->next;
        ck__timer_stop(&ctx->loop, &c->timer);
        c->cb(ctx, c->user, CK_ECANCELED, NULL);
        free(c);
      }
    }
    free(ctx->cons);
    ctx->cons = NULL;
  }
  if (ctx->dedup) {
    for (uint32_t i = 0; i <= ctx->dedup->mask; i++)
      free(ctx->dedup->slots[i].heap);
    free(ctx->dedup->keys);
    free(ctx->dedup);
    ctx->dedup = NULL;
  }
}

static uint32_t dd_hash(const struct ck_addr *peer, uint16_t mid)
{
  /* MurmurHash3's finaliser: sequential MIDs from one peer must spread
   * over all windows, not just differ in a few low bits. */
  uint32_t h = ck_addr_hash(peer) ^ mid;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static uint32_t dd_tag(uint32_t h, uint16_t mid)
{
  return (h & 0xffff0000u) | mid;
}

/* The coarse clock of the keys: milliseconds / 1024, never 0. */
static uint32_t coarse(uint64_t ms)
{
  return (uint32_t)((ms >> 10) & 0x7fffffff) | 1u;
}

static bool key_live(const struct dd_key *k, uint32_t now_c)
{
  return (k->exp & ~IDEM) > now_c;
}

static bool dd_live(const struct ck__dd_entry *e, uint64_t now)
{
  return e->state != CK__DD_FREE && e->expires > now;
}

struct ck__dd_entry *ck__dedup_find(struct ck_ctx *ctx,
                                    const struct ck_addr *peer, uint16_t mid)
{
  struct ck__dedup *d = ctx->dedup;
  uint64_t now = ck__loop_now(&ctx->loop);
  uint32_t h = dd_hash(peer, mid), tag = dd_tag(h, mid);
  uint32_t base = h & d->mask & ~(uint32_t)(PROBE - 1);
  for (uint32_t i = 0; i < PROBE; i++) {
    if (d->keys[base + i].tag != tag || d->keys[base + i].exp == 0)
      continue;
    struct ck__dd_entry *e = &d->slots[base + i];
    if (e->mid == mid && dd_live(e, now) && ck_addr_equal(&e->peer, peer))
      return e;
  }
  return NULL;
}

static void dd_reset(struct ck__dd_entry *e)
{
  free(e->heap);
  e->heap = NULL;
  e->resp_len = 0;
  e->gen++;
}

struct ck__dd_entry *ck__dedup_add(struct ck_ctx *ctx,
                                   const struct ck_addr *peer, uint16_t mid,
                                   bool idempotent, uint64_t lifetime_ms,
                                   int *err)
{
  struct ck__dedup *d = ctx->dedup;
  uint64_t now = ck__loop_now(&ctx->loop);
  uint32_t now_c = coarse(now);
  uint32_t h = dd_hash(peer, mid);
  uint32_t base = h & d->mask & ~(uint32_t)(PROBE - 1);
  uint32_t victim = UINT32_MAX;
  bool evict = false;
  for (uint32_t i = 0; i < PROBE; i++) {
    if (!key_live(&d->keys[base + i], now_c)) {
      victim = base + i;
      break;
    }
  }
  if (victim == UINT32_MAX) {
    /* Every slot is live: only a finished idempotent exchange may be
     * forgotten early. This is the rare path that reads the entries. */
    for (uint32_t i = 0; i < PROBE; i++) {
      struct ck__dd_entry *e = &d->slots[base + i];
      if ((d->keys[base + i].exp & IDEM) && e->state == CK__DD_ANSWERED &&
          (victim == UINT32_MAX || e->expires < d->slots[victim].expires))
        victim = base + i;
    }
    evict = victim != UINT32_MAX;
  }
  *err = 0;
  if (victim == UINT32_MAX) {
    if (!idempotent)
      *err = CK_EFULL;
    return NULL;
  }
  if (evict)
    ctx->stats.dedup_evictions++;
  struct ck__dd_entry *e = &d->slots[victim];
  dd_reset(e);
  e->peer = *peer;
  e->mid = mid;
  e->expires = now + lifetime_ms;
  e->state = CK__DD_PENDING;
  e->idempotent = idempotent;
  /* Round the coarse expiry up so the key never calls a live entry
   * expired; the entry's exact expiry decides in ck__dedup_find(). */
  d->keys[victim].tag = dd_tag(h, mid);
  d->keys[victim].exp = (coarse(e->expires) + 1) | (idempotent ? IDEM : 0);
  return e;
}

void ck__dedup_answer(struct ck_ctx *ctx, struct ck__dd_entry *e,
                      const uint8_t *msg, size_t len)
{
  (void)ctx;
  free(e->heap);
  e->heap = NULL;
  e->resp_len = 0;
  e->state = CK__DD_ANSWERED;
  if (len <= CK__DD_INLINE) {
    memcpy(e->inl, msg, len);
    e->resp_len = (uint16_t)len;
  } else if (!e->idempotent && len <= UINT16_MAX) {
    e->heap = malloc(len);
    if (e->heap) {
      memcpy(e->heap, msg, len);
      e->resp_len = (uint16_t)len;
    }
  }
}

const uint8_t *ck__dedup_cached(const struct ck__dd_entry *e, size_t *len)
{
  if (e->resp_len == 0)
    return NULL;
  *len = e->resp_len;
  return e->heap ? e->heap : e->inl;
}

/* --- confirmable messages --- */

static void con_unlink(struct ck_ctx *ctx, struct ck__con *c)
{
  struct ck__con **pp = &ctx->cons->buckets[c->mid % CON_BUCKETS];
  while (*pp && *pp != c)
    pp = &(*pp)->next;
  if (*pp)
    *pp = c->next;
  ctx->cons->count--;
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
    ck__ep_send(c->ep, &c->peer, c->msg, c->len);
    ck__timer_start(&ctx->loop, &c->timer, c->timeout, con_timeout);
    return;
  }
  con_unlink(ctx, c);
  c->cb(ctx, c->user, CK_ETIMEDOUT, NULL);
  free(c);
}

struct ck__con *ck__con_send(struct ck_ctx *ctx, struct ck__ep *ep,
                             const struct ck_addr *peer, const uint8_t *msg,
                             size_t len, const struct ck_params *params,
                             ck__con_cb cb, void *user)
{
  if (len < CK_HEADER_LEN || len > UINT16_MAX)
    return NULL;
  struct ck__con *c = malloc(sizeof *c + len);
  if (!c)
    return NULL;
  memset(c, 0, sizeof *c);
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
  if (ck__timer_start(&ctx->loop, &c->timer, c->timeout, con_timeout) < 0) {
    free(c);
    return NULL;
  }
  struct ck__con **b = &ctx->cons->buckets[c->mid % CON_BUCKETS];
  c->next = *b;
  *b = c;
  ctx->cons->count++;
  ck__ep_send(ep, peer, msg, len);
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
  free(c);
}

bool ck__con_input(struct ck_ctx *ctx, const struct ck_addr *peer,
                   const struct ck_msg *m)
{
  for (struct ck__con *c = ctx->cons->buckets[m->mid % CON_BUCKETS]; c;
       c = c->next) {
    if (c->mid == m->mid && ck_addr_equal(&c->peer, peer)) {
      if (m->type == CK_TYPE_ACK && c->filter && !c->filter(c->user, m))
        return true; /* rejected: ignored, c stays pending */
      con_unlink(ctx, c);
      c->cb(ctx, c->user, m->type == CK_TYPE_RST ? CK_ERESET : 0, m);
      free(c);
      return true;
    }
  }
  return false;
}

int ck__con_fail_peer(struct ck_ctx *ctx, const struct ck_addr *peer,
                      int err)
{
  int n = 0;
  for (size_t b = 0; b < CON_BUCKETS; b++) {
    /* A callback may cancel other CONs (even this bucket's next one), so
     * after each callback the bucket is searched again from its head. */
    for (;;) {
      struct ck__con *c = ctx->cons->buckets[b];
      while (c && !ck_addr_equal(&c->peer, peer))
        c = c->next;
      if (!c)
        break;
      con_unlink(ctx, c);
      c->cb(ctx, c->user, err, NULL);
      free(c);
      n++;
    }
  }
  return n;
}

size_t ck__con_count(const struct ck_ctx *ctx)
{
  return ctx->cons->count;
}
