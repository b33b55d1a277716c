/* The table of remembered exchanges (RFC 7252 §4.5): a request, or a
 * confirmable response a client received, is remembered by (peer,
 * Message ID) with the answer we sent, so that its retransmission gets
 * the same answer and never runs a handler twice.
 *
 * Size follows the rate. The table starts empty and grows in chunks (64
 * entries, then 128, 256, ...) while its oldest entry is still within its
 * lifetime (EXCHANGE_LIFETIME or NON_LIFETIME, §4.8.2), so it holds what
 * the traffic of the last lifetime needs, up to a memory cap
 * (ck_ctx_config.dedup_max_bytes, 128 MiB by default; an eighth of it is
 * for answers too long for an entry). A program that is only a client,
 * or a server that sees few non-idempotent requests, stays at a few KiB.
 * Expired entries are reused oldest first, without a sweep.
 *
 * At the cap, the oldest entry is forgotten to make room (counted in
 * ck_stats.dedup_evictions) as long as it is at least PROTECT old:
 * ACK_TIMEOUT * ACK_RANDOM_FACTOR, 3 s with the defaults, the latest
 * moment a client sends its first retransmission (§4.2). That first
 * retransmission is where nearly every duplicate comes from, since a
 * later one needs our answer to be lost twice; Californium's crop
 * rotation deduplicator made the same bet with its 2 s period. Only when
 * the oldest entry is younger than PROTECT (the rate exceeds what the cap
 * holds for PROTECT) is a non-idempotent request refused with 5.03 and a
 * Max-Age of the seconds until the oldest ages past PROTECT; an
 * idempotent one is served without an entry. An entry whose handler has
 * not answered yet (PENDING) is never forgotten: it moves to the young
 * end instead. With 136 bytes an entry (index included), the default cap
 * sustains about 290,000 non-idempotent requests/s.
 *
 * Entries live in chunks that never move, so the request path allocates
 * nothing once the table has grown: a hash index (chained through the
 * entries, one 32-bit head per bucket) finds them, and a singly-linked
 * list through the entries keeps them in age order.
 */
#include <stdlib.h>
#include <string.h>

#include "dedup.h"

enum {
  FIRST = 64,      /* entries in the first chunk; chunk k has FIRST << k */
  MAX_CHUNKS = 23, /* enough for MAX_ENTRIES */
  MAX_REQUEUE = 8, /* PENDING entries moved aside per add, at most */
};

#define NIL UINT32_MAX
#define MAX_ENTRIES (1u << 28)
#define DEFAULT_MAX_BYTES ((size_t)128 << 20)

/* The cost per entry that the cap and the documentation count on. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct ck__dd_entry) == 128,
               "a dedup entry is two cache lines on LP64");

struct ck__dedup {
  uint32_t n;       /* entries in use: 0..n-1, all indexed and listed */
  uint32_t avail;   /* entries in the allocated chunks */
  uint32_t max;     /* the cap, in entries */
  uint32_t nchunks;
  uint32_t bmask;   /* buckets - 1 */
  uint32_t oldest, youngest;
  uint32_t *buckets;
  uint64_t protect; /* ms an entry is kept at least, when at the cap */
  size_t heap_bytes, heap_cap;
  size_t fixed_bytes; /* chunks, buckets and this struct */
  struct ck__dd_entry *chunks[MAX_CHUNKS];
};

static void account(struct ck_ctx *ctx)
{
  struct ck__dedup *d = ctx->dedup;
  ctx->stats.dedup_bytes = d->fixed_bytes + d->heap_bytes;
}

int ck__dedup_init(struct ck_ctx *ctx)
{
  struct ck__dedup *d = calloc(1, sizeof *d);
  if (!d)
    return CK_ENOMEM;
  size_t cap = ctx->cfg.dedup_max_bytes ? ctx->cfg.dedup_max_bytes
                                        : DEFAULT_MAX_BYTES;
  /* An entry costs itself and up to two bucket heads (the bucket count
   * is the power of two at or above the entry count). */
  size_t per = sizeof(struct ck__dd_entry) + 2 * sizeof(uint32_t);
  size_t max = (cap - cap / 8) / per;
  if (max > MAX_ENTRIES)
    max = MAX_ENTRIES;
  if (ctx->cfg.dedup_entries && ctx->cfg.dedup_entries < max)
    max = ctx->cfg.dedup_entries;
  d->max = max ? (uint32_t)max : 1;
  d->heap_cap = cap / 8;
  d->oldest = d->youngest = NIL;
  const struct ck_params *p = &ctx->cfg.params;
  d->protect = (uint64_t)((double)p->ack_timeout_ms * p->ack_random_factor);
  d->fixed_bytes = sizeof *d;
  ctx->dedup = d;
  account(ctx);
  return 0;
}

static struct ck__dd_entry *at(const struct ck__dedup *d, uint32_t i)
{
  /* Chunk k starts at FIRST * (2^k - 1). */
  uint32_t q = i / FIRST + 1;
  unsigned k = 31u - (unsigned)__builtin_clz(q);
  return &d->chunks[k][i - FIRST * ((1u << k) - 1)];
}

void ck__dedup_close(struct ck_ctx *ctx)
{
  struct ck__dedup *d = ctx->dedup;
  if (!d)
    return;
  for (uint32_t i = 0; i < d->n; i++)
    free(at(d, i)->heap);
  for (uint32_t k = 0; k < d->nchunks; k++)
    free(d->chunks[k]);
  free(d->buckets);
  free(d);
  ctx->dedup = NULL;
}

static uint32_t dd_hash(const struct ck_addr *peer, uint16_t mid)
{
  /* MurmurHash3's finaliser: sequential MIDs from one peer must spread
   * over all buckets, not just differ in a few low bits. */
  uint32_t h = ck_addr_hash(peer) ^ mid;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static bool dd_live(const struct ck__dd_entry *e, uint64_t now)
{
  return e->state != CK__DD_FREE && now - e->born < e->life;
}

/* Makes room for at least one more entry: a new chunk, and a larger
 * index when the entries would outnumber its buckets. Only growth
 * allocates; the index is rebuilt then, which is rare (each chunk doubles
 * the table). */
static bool grow(struct ck_ctx *ctx, struct ck__dedup *d)
{
  if (d->avail >= d->max || d->nchunks == MAX_CHUNKS)
    return false;
  uint32_t size = FIRST << d->nchunks;
  if (size > d->max - d->avail)
    size = d->max - d->avail;
  struct ck__dd_entry *c = calloc(size, sizeof *c);
  if (!c)
    return false;
  uint32_t nb = d->buckets ? d->bmask + 1 : 0, want = nb ? nb : FIRST;
  while (want < d->avail + size)
    want <<= 1;
  if (want != nb) {
    uint32_t *b = malloc(want * sizeof *b);
    if (!b) {
      free(c);
      return false;
    }
    memset(b, 0xff, want * sizeof *b);
    free(d->buckets);
    d->buckets = b;
    d->bmask = want - 1;
    d->fixed_bytes += (size_t)(want - nb) * sizeof *b;
    for (uint32_t i = 0; i < d->n; i++) {
      struct ck__dd_entry *e = at(d, i);
      uint32_t *head = &b[dd_hash(&e->peer, e->mid) & d->bmask];
      e->next = *head;
      *head = i;
    }
  }
  d->chunks[d->nchunks++] = c;
  d->avail += size;
  d->fixed_bytes += (size_t)size * sizeof *c;
  account(ctx);
  return true;
}

static void unindex(struct ck__dedup *d, uint32_t i, struct ck__dd_entry *e)
{
  uint32_t *pp = &d->buckets[dd_hash(&e->peer, e->mid) & d->bmask];
  while (*pp != i && *pp != NIL)
    pp = &at(d, *pp)->next;
  if (*pp == i)
    *pp = e->next;
}

static uint32_t pop_oldest(struct ck__dedup *d)
{
  uint32_t i = d->oldest;
  d->oldest = at(d, i)->younger;
  if (d->oldest == NIL)
    d->youngest = NIL;
  return i;
}

static void push_youngest(struct ck__dedup *d, uint32_t i)
{
  at(d, i)->younger = NIL;
  if (d->youngest != NIL)
    at(d, d->youngest)->younger = i;
  else
    d->oldest = i;
  d->youngest = i;
}

/* Picks the entry for a new exchange, following the policy told at the
 * top of the file: an expired entry, else a fresh one while under the
 * cap, else the oldest when it is old enough. Returns NIL when there is
 * none. A reused entry comes out of the index and the age list. */
static uint32_t take(struct ck_ctx *ctx, struct ck__dedup *d, uint64_t now)
{
  for (unsigned requeued = 0;;) {
    struct ck__dd_entry *o = d->n ? at(d, d->oldest) : NULL;
    if (o && !dd_live(o, now)) {
      uint32_t i = pop_oldest(d);
      unindex(d, i, o);
      return i;
    }
    if (d->n < d->avail || grow(ctx, d))
      return d->n++;
    if (!o || now - o->born < d->protect)
      return NIL;
    if (o->state == CK__DD_PENDING) {
      /* The handler still works on it: a duplicate must not start it
       * again. Let it wait at the young end. */
      if (requeued++ == MAX_REQUEUE || d->n == 1)
        return NIL;
      push_youngest(d, pop_oldest(d));
      continue;
    }
    uint32_t i = pop_oldest(d);
    unindex(d, i, o);
    ctx->stats.dedup_evictions++;
    return i;
  }
}

static void drop_answer(struct ck__dedup *d, struct ck__dd_entry *e)
{
  if (e->heap) {
    d->heap_bytes -= e->resp_len;
    free(e->heap);
    e->heap = NULL;
  }
  e->resp_len = 0;
}

struct ck__dd_entry *ck__dedup_find(struct ck_ctx *ctx,
                                    const struct ck_addr *peer, uint16_t mid)
{
  struct ck__dedup *d = ctx->dedup;
  if (d->n == 0)
    return NULL;
  uint64_t now = ck__loop_now(&ctx->loop);
  uint32_t i = d->buckets[dd_hash(peer, mid) & d->bmask];
  while (i != NIL) {
    struct ck__dd_entry *e = at(d, i);
    /* An expired entry for the same key may linger until reused: look
     * on for a live one. */
    if (e->mid == mid && dd_live(e, now) && ck_addr_equal(&e->peer, peer))
      return e;
    i = e->next;
  }
  return NULL;
}

struct ck__dd_entry *ck__dedup_add(struct ck_ctx *ctx,
                                   const struct ck_addr *peer, uint16_t mid,
                                   bool idempotent, uint64_t lifetime_ms,
                                   int *err)
{
  struct ck__dedup *d = ctx->dedup;
  uint64_t now = ck__loop_now(&ctx->loop);
  uint32_t i = take(ctx, d, now);
  *err = 0;
  if (i == NIL) {
    ctx->stats.dedup_refused++;
    if (!idempotent)
      *err = CK_EFULL;
    return NULL;
  }
  struct ck__dd_entry *e = at(d, i);
  drop_answer(d, e);
  account(ctx);
  e->gen++;
  e->peer = *peer;
  e->mid = mid;
  e->born = now;
  e->life = lifetime_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)lifetime_ms;
  e->state = CK__DD_PENDING;
  e->idempotent = idempotent;
  uint32_t *head = &d->buckets[dd_hash(peer, mid) & d->bmask];
  e->next = *head;
  *head = i;
  push_youngest(d, i);
  return e;
}

void ck__dedup_answer(struct ck_ctx *ctx, struct ck__dd_entry *e,
                      const uint8_t *msg, size_t len)
{
  struct ck__dedup *d = ctx->dedup;
  drop_answer(d, e);
  e->state = CK__DD_ANSWERED;
  if (len <= CK__DD_INLINE) {
    memcpy(e->inl, msg, len);
    e->resp_len = (uint16_t)len;
  } else if (!e->idempotent && len <= UINT16_MAX &&
             d->heap_bytes + len <= d->heap_cap) {
    /* A long answer to a non-idempotent request must be kept: without
     * it a duplicate could only be ignored. Past the heap budget it is,
     * which still never runs the handler twice. */
    e->heap = malloc(len);
    if (e->heap) {
      memcpy(e->heap, msg, len);
      e->resp_len = (uint16_t)len;
      d->heap_bytes += len;
    }
  }
  account(ctx);
}

const uint8_t *ck__dedup_cached(const struct ck__dd_entry *e, size_t *len)
{
  if (e->resp_len == 0)
    return NULL;
  *len = e->resp_len;
  return e->heap ? e->heap : e->inl;
}

uint32_t ck__dedup_retry_after(struct ck_ctx *ctx)
{
  struct ck__dedup *d = ctx->dedup;
  if (d->n == 0)
    return 1;
  uint64_t age = ck__loop_now(&ctx->loop) - at(d, d->oldest)->born;
  if (age >= d->protect)
    return 1;
  return (uint32_t)((d->protect - age + 999) / 1000);
}
