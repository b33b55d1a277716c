/* Message IDs: one sequence per peer (RFC 7252 §4.4).
 *
 * §4.4 asks that a Message ID not be reused with the same peer within
 * EXCHANGE_LIFETIME. One counter per context would wrap after 65,536
 * messages to all peers together, which a server notifying many
 * observers does in well under a second; one counter per peer wraps only
 * after 65,536 messages to that peer.
 *
 * The counters live in an eight-way set-associative table keyed by the
 * peer's address. A new peer starts at a random Message ID. When all
 * ways of its set hold peers that were sent to within EXCHANGE_LIFETIME,
 * the table doubles (up to MAX_SETS) instead of forgetting one; only at
 * that cap, or without memory, is the least recently used peer forgotten,
 * and it starts again at a random ID if it comes back: a collision with
 * one of its recent IDs is then a 1-in-65,536 chance rather than a
 * certainty. Lookups cost one hash and at most eight address compares.
 * Eight ways, not two: with two, a third recent peer in any one set
 * doubles the table, and peers that come and go (a few thousand within
 * EXCHANGE_LIFETIME) drove it to MAX_SETS, 6 MiB, by that birthday
 * bound; with eight it stays near one set (eight slots) per live peer.
 */
#include <stdlib.h>

#include "ctx.h"

enum { WAYS = 8, MIN_SETS = 8, MAX_SETS = 1 << 14 };

struct mid_slot {
  struct ck_addr peer;
  uint64_t used; /* last send, ms; 0: free */
  uint16_t next;
};

struct ck__mids {
  uint32_t nsets;         /* a power of two */
  struct mid_slot *slots; /* nsets * WAYS */
};

static struct mid_slot *set_of(struct ck__mids *t, const struct ck_addr *p)
{
  uint32_t h = ck_addr_hash(p);
  h ^= h >> 15;
  h *= 0x2c1b3c6du;
  h ^= h >> 12;
  return &t->slots[(h & (t->nsets - 1)) * WAYS];
}

static int mids_alloc(struct ck__mids *t, uint32_t nsets)
{
  struct mid_slot *s = calloc((size_t)nsets * WAYS, sizeof *s);
  if (!s)
    return CK_ENOMEM;
  t->slots = s;
  t->nsets = nsets;
  return 0;
}

/* Doubles the table, keeping every live counter that still fits (a set
 * of the new table can overflow only if both of the old ways and more
 * hash there, which the caller then handles like any full set). */
static void grow(struct ck_ctx *ctx)
{
  struct ck__mids *t = ctx->mids;
  struct ck__mids old = *t;
  if (mids_alloc(t, old.nsets * 2) < 0) {
    *t = old;
    return;
  }
  for (size_t i = 0; i < (size_t)old.nsets * WAYS; i++) {
    if (!old.slots[i].used)
      continue;
    struct mid_slot *set = set_of(t, &old.slots[i].peer);
    for (int w = 0; w < WAYS; w++)
      if (!set[w].used) {
        set[w] = old.slots[i];
        break;
      }
  }
  free(old.slots);
}

uint16_t ck__next_mid(struct ck_ctx *ctx, const struct ck_addr *peer)
{
  uint64_t now = ck__loop_now(&ctx->loop);
  uint16_t fresh;
  if (!ctx->mids) {
    ctx->mids = calloc(1, sizeof *ctx->mids);
    if (!ctx->mids || mids_alloc(ctx->mids, MIN_SETS) < 0) {
      free(ctx->mids);
      ctx->mids = NULL;
      /* Without memory, a random ID is the safest guess. */
      ck__random(ctx, &fresh, sizeof fresh);
      return fresh;
    }
  }
  struct ck__mids *t = ctx->mids;
  for (int tries = 0; tries < 2; tries++) {
    struct mid_slot *set = set_of(t, peer);
    for (int w = 0; w < WAYS; w++)
      if (set[w].used && ck_addr_equal(&set[w].peer, peer)) {
        set[w].used = now | 1;
        return set[w].next++;
      }
    struct mid_slot *victim = &set[0];
    for (int w = 0; w < WAYS; w++)
      if (set[w].used < victim->used)
        victim = &set[w];
    bool recent = victim->used && now < victim->used + ctx->exchange_lifetime;
    if (recent && tries == 0 && t->nsets < MAX_SETS) {
      grow(ctx);
      continue;
    }
    victim->peer = *peer;
    victim->used = now | 1;
    ck__random(ctx, &fresh, sizeof fresh);
    victim->next = (uint16_t)(fresh + 1);
    return fresh;
  }
  ck__random(ctx, &fresh, sizeof fresh);
  return fresh;
}

void ck__mids_free(struct ck_ctx *ctx)
{
  if (ctx->mids)
    free(ctx->mids->slots);
  free(ctx->mids);
  ctx->mids = NULL;
}
