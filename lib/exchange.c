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

enum { CON_BUCKETS = 4096 };

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
  ctx->cons = calloc(1, sizeof *ctx->cons);
  if (!ctx->cons)
    return CK_ENOMEM;
  return ck__dedup_init(ctx);
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
  ck__dedup_close(ctx);
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
    (void)ck__ep_send(c->ep, &c->peer, c->msg, c->len);
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
  ck__timer_start(&ctx->loop, &c->timer, c->timeout, con_timeout);
  struct ck__con **b = &ctx->cons->buckets[c->mid % CON_BUCKETS];
  c->next = *b;
  *b = c;
  ctx->cons->count++;
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
