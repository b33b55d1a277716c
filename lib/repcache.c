/* Representations kept for block-wise transfers (RFC 7959 §2.4, §3.2).
 *
 * A client fetches a large representation block by block, each block a
 * request of its own. Without a memory of the first answer, every block
 * ran the handler again and copied and hashed the whole representation,
 * 16,384 times for 16 MiB in 1 KiB blocks; and the answer to a POST
 * (§3.2: Block1 and Block2 together) could not be continued at all, since
 * running a POST again is not allowed and its body is gone. So when an
 * answer goes out in blocks and more follow, its code, options, payload
 * (moved or lent, never copied) and ETag (hashed once) are kept here,
 * keyed by the client's address, the method and the request's options
 * other than the block-wise ones (§2.4: later blocks come in requests
 * that differ only in Block2; FETCH's body counts too). Later blocks are
 * cut from it, and it is forgotten after its last block, after an idle
 * time (EXCHANGE_LIFETIME by default), or when the application says its
 * resource changed (GET and FETCH only: a POST's answer stays what it
 * was). A client that comes back after that gets a fresh run of the
 * handler and a new ETag, which tells it the representation may differ.
 *
 * Caps: entries and payload bytes. At a cap the least recently used
 * entry goes if it has been idle at least ACK_TIMEOUT * ACK_RANDOM_FACTOR
 * (a client still transferring asks sooner, or retransmits); otherwise
 * the new answer is refused with 5.03 and a Max-Age, as dedup.c does.
 */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "srv.h"

struct ck__rep {
  struct ck__rep *hnext;       /* hash chain */
  struct ck__rep *prev, *next; /* least recently used first */
  struct ck_addr peer;
  uint64_t key;
  uint64_t last_use;
  const struct ck_resource *res;
  uint8_t method;
  uint8_t code;
  bool challenged; /* its first block was held back for an Echo */
  bool etag_set;
  uint64_t etag;
  const uint8_t *payload;
  size_t len;
  void (*release)(void *arg);
  void *release_arg;
  unsigned nopts;
  size_t optbuf_len;
  struct ck__resp_opt opts[CK__RESP_OPTS];
  uint8_t optbuf[CK__RESP_OPTBUF];
};

struct ck__repcache {
  struct ck__rep **buckets;
  size_t nbuckets; /* a power of two */
  struct ck__rep *lru, *mru;
  size_t count;
  size_t bytes;
};

static uint32_t max_entries(const struct ck_ctx *ctx)
{
  return ctx->cfg.rep_max_entries ? ctx->cfg.rep_max_entries : 1024;
}

static size_t max_bytes(const struct ck_ctx *ctx)
{
  return ctx->cfg.rep_max_bytes ? ctx->cfg.rep_max_bytes : (size_t)256 << 20;
}

static uint64_t idle_ms(const struct ck_ctx *ctx)
{
  return ctx->cfg.rep_idle_ms ? ctx->cfg.rep_idle_ms : ctx->exchange_lifetime;
}

/* The youngest an entry may be forgotten at a cap: the latest a client
 * that lost its request retransmits it (RFC 7252 §4.2). */
static uint64_t min_age(const struct ck_ctx *ctx)
{
  const struct ck_params *p = &ctx->cfg.params;
  return (uint64_t)((double)p->ack_timeout_ms * p->ack_random_factor);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static bool block_option(uint16_t num)
{
  /* The options by which the requests of one transfer may differ:
   * Block2 and Size2 (§2.4), Block1 and Size1 (§3.2: the request for
   * the rest of a POST's answer carries no body), Observe (§2.6: blocks
   * after a notification are plain GETs), and the RFC 9175 freshness and
   * matching options, which are per request. */
  switch (num) {
  case CK_OPT_BLOCK2:
  case CK_OPT_SIZE2:
  case CK_OPT_BLOCK1:
  case CK_OPT_SIZE1:
  case CK_OPT_OBSERVE:
  case CK_OPT_REQUEST_TAG:
  case CK_OPT_ECHO:
  case CK_OPT_NO_RESPONSE:
    return true;
  default:
    return false;
  }
}

void ck__rep_key(struct ck__reply *rp)
{
  if (rp->rep_keyed || !rp->req_msg)
    return;
  const struct ck_msg *m = rp->req_msg;
  uint64_t h = 14695981039346656037ull;
  if (rp->peer.u.sa.sa_family == AF_INET) {
    h = fnv(h, &rp->peer.u.in4.sin_port, 2);
    h = fnv(h, &rp->peer.u.in4.sin_addr, 4);
  } else if (rp->peer.u.sa.sa_family == AF_INET6) {
    h = fnv(h, &rp->peer.u.in6.sin6_port, 2);
    h = fnv(h, &rp->peer.u.in6.sin6_addr, 16);
  }
  h = fnv(h, &m->code, 1);
  struct ck_opt_iter it;
  struct ck_opt o;
  ck_opt_iter_init(&it, m);
  while (ck_opt_next(&it, &o)) {
    if (block_option(o.num))
      continue;
    uint8_t hdr[4] = {(uint8_t)(o.num >> 8), (uint8_t)o.num,
                      (uint8_t)(o.len >> 8), (uint8_t)o.len};
    h = fnv(h, hdr, sizeof hdr);
    h = fnv(h, o.val, o.len);
  }
  /* RFC 8132 §2.3.2: every block of a FETCH repeats its body, which
   * selects the representation. */
  if (m->code == CK_FETCH)
    h = fnv(h, m->payload, m->payload_len);
  rp->rep_key = h;
  rp->rep_keyed = true;
}

static struct ck__rep **bucket(struct ck__repcache *c, uint64_t key)
{
  return &c->buckets[(key ^ (key >> 32)) & (c->nbuckets - 1)];
}

static struct ck__rep *find(struct ck__repcache *c, const struct ck__reply *rp)
{
  if (!c || !c->buckets)
    return NULL;
  for (struct ck__rep *e = *bucket(c, rp->rep_key); e; e = e->hnext)
    if (e->key == rp->rep_key && e->method == rp->method &&
        ck_addr_equal(&e->peer, &rp->peer))
      return e;
  return NULL;
}

static void lru_unlink(struct ck__repcache *c, struct ck__rep *e)
{
  if (e->prev)
    e->prev->next = e->next;
  else
    c->lru = e->next;
  if (e->next)
    e->next->prev = e->prev;
  else
    c->mru = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push(struct ck__repcache *c, struct ck__rep *e)
{
  e->prev = c->mru;
  e->next = NULL;
  if (c->mru)
    c->mru->next = e;
  else
    c->lru = e;
  c->mru = e;
}

static void drop(struct ck_ctx *ctx, struct ck__rep *e)
{
  struct ck__repcache *c = ctx->reps;
  struct ck__rep **pp = bucket(c, e->key);
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  lru_unlink(c, e);
  c->count--;
  c->bytes -= e->len;
  ctx->stats.rep_entries = c->count;
  ctx->stats.rep_bytes = c->bytes;
  /* Last: the application's release may do anything, even free
   * resources of its own that the entry no longer refers to. */
  void (*release)(void *) = e->release;
  void *arg = e->release_arg;
  free(e);
  if (release)
    release(arg);
}

void ck__rep_sweep(struct ck_ctx *ctx)
{
  struct ck__repcache *c = ctx->reps;
  if (!c)
    return;
  uint64_t now = ck__loop_now(&ctx->loop);
  while (c->lru && now - c->lru->last_use >= idle_ms(ctx))
    drop(ctx, c->lru);
}

void ck__rep_invalidate(struct ck_ctx *ctx, const struct ck_resource *r)
{
  struct ck__repcache *c = ctx->reps;
  if (!c)
    return;
  struct ck__rep *e = c->lru;
  while (e) {
    struct ck__rep *next = e->next;
    if (e->res == r && (e->method == CK_GET || e->method == CK_FETCH))
      drop(ctx, e);
    e = next;
  }
}

void ck__rep_close(struct ck_ctx *ctx)
{
  struct ck__repcache *c = ctx->reps;
  if (!c)
    return;
  while (c->lru)
    drop(ctx, c->lru);
  free(c->buckets);
  free(c);
  ctx->reps = NULL;
}

/* Lends e's representation to resp, which then answers from it. */
static void lend(struct ck__rep *e, struct ck_response *resp)
{
  resp->code = e->code;
  resp->nopts = e->nopts;
  memcpy(resp->opts, e->opts, e->nopts * sizeof e->opts[0]);
  resp->optbuf_len = e->optbuf_len;
  memcpy(resp->optbuf, e->optbuf, e->optbuf_len);
  resp->payload = (uint8_t *)(uintptr_t)e->payload;
  resp->payload_len = e->len;
  resp->ref = true; /* borrowed: nothing to release */
  resp->release = NULL;
  resp->rep = e;
  resp->etag_set = e->etag_set;
  resp->etag = e->etag;
}

/* A POST or PATCH whose answer was held back for an Echo is kept under a
 * key that also covers its body: only the same request, sent again with
 * the Echo, gets that answer. */
static bool body_keyed(const struct ck__reply *rp)
{
  return rp->method == CK_POST || rp->method == CK_PATCH;
}

/* The key a held-back answer is kept under (rp's own key is left as it
 * is, for the block-wise lookups of the same request). */
static uint64_t challenge_key(struct ck__reply *rp)
{
  ck__rep_key(rp);
  if (!rp->rep_keyed || !body_keyed(rp) || !rp->req_msg)
    return rp->rep_key;
  return fnv(rp->rep_key ^ 0x9e3779b97f4a7c15ull, rp->req_msg->payload,
             rp->req_msg->payload_len);
}

/* Moves e to another key's hash chain. */
static void rekey(struct ck__repcache *c, struct ck__rep *e, uint64_t key)
{
  struct ck__rep **pp = bucket(c, e->key);
  while (*pp && *pp != e)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = e->hnext;
  e->key = key;
  struct ck__rep **b = bucket(c, key);
  e->hnext = *b;
  *b = e;
}

static bool lookup(struct ck_ctx *ctx, struct ck__reply *rp,
                   struct ck_response *resp, bool challenged)
{
  if (!ctx->reps)
    return false;
  ck__rep_key(rp);
  uint64_t base = rp->rep_key;
  if (challenged)
    rp->rep_key = challenge_key(rp);
  struct ck__rep *e = find(ctx->reps, rp);
  rp->rep_key = base;
  if (!e || (challenged && !e->challenged))
    return false;
  if (ck__loop_now(&ctx->loop) - e->last_use >= idle_ms(ctx)) {
    /* Past its idle time, though not swept yet: as good as gone. */
    drop(ctx, e);
    return false;
  }
  if (e->challenged && e->key != base) {
    /* Its later blocks are asked without the body: it takes the plain
     * key, replacing what that client had under it (a transfer it
     * started over). */
    struct ck__rep *old = find(ctx->reps, rp);
    if (old)
      drop(ctx, old);
    rekey(ctx->reps, e, base);
  }
  e->challenged = false;
  ck__resp_free(resp);
  lend(e, resp);
  return true;
}

bool ck__rep_lookup(struct ck_ctx *ctx, struct ck__reply *rp,
                    struct ck_response *resp)
{
  return lookup(ctx, rp, resp, false);
}

bool ck__rep_lookup_challenged(struct ck_ctx *ctx, struct ck__reply *rp,
                               struct ck_response *resp)
{
  return lookup(ctx, rp, resp, true);
}

/* The block the request asks for (RFC 7959 §2.2: with no Block2, the
 * first, of 1024 bytes), as ck__build_response() cuts it. */
static void wanted(const struct ck__reply *rp, size_t *off, size_t *bsize)
{
  struct ck_block want = {.num = 0, .more = false, .szx = 6};
  if (rp->has_block2 && ck_block_decode(rp->block2, &want) < 0) {
    want.num = 0;
    want.szx = 6;
  }
  *bsize = CK_BLOCK_SIZE(want.szx);
  *off = (size_t)want.num * *bsize;
}

static int refuse(struct ck_ctx *ctx, struct ck__reply *rp,
                  struct ck_response *resp, uint64_t wait_ms)
{
  ctx->stats.rep_refused++;
  ck__resp_free(resp);
  ck__resp_init(resp, rp->method);
  resp->code = CK_SERVICE_UNAVAILABLE;
  rp->observe = false;
  ck_response_opt_uint(resp, CK_OPT_MAX_AGE,
                       (uint32_t)((wait_ms + 999) / 1000));
  return CK_EFULL;
}

/* Makes room for one more entry of len bytes. Returns 0, or the
 * milliseconds until the least recently used may go. */
static uint64_t make_room(struct ck_ctx *ctx, size_t len)
{
  struct ck__repcache *c = ctx->reps;
  ck__rep_sweep(ctx);
  uint64_t now = ck__loop_now(&ctx->loop);
  while (c->lru &&
         (c->count >= max_entries(ctx) || c->bytes + len > max_bytes(ctx))) {
    uint64_t age = now - c->lru->last_use;
    if (age < min_age(ctx))
      return min_age(ctx) - age;
    ctx->stats.rep_evictions++;
    drop(ctx, c->lru);
  }
  return 0;
}

static int offer(struct ck_ctx *ctx, struct ck__reply *rp,
                 struct ck_response *resp, bool challenged)
{
  size_t off, bsize;
  wanted(rp, &off, &bsize);
  /* Only an answer with blocks after this one: a single block needs no
   * memory, and a request past the end gets 4.02 from the builder. */
  if (resp->rep || rp->multicast ||
      (!challenged && off + bsize >= resp->payload_len))
    return 0;
  ck__rep_key(rp);
  if (!rp->rep_keyed)
    return 0;
  if (resp->payload_len > max_bytes(ctx))
    return refuse(ctx, rp, resp, idle_ms(ctx)); /* never fits */
  struct ck__repcache *c = ctx->reps;
  if (!c) {
    c = calloc(1, sizeof *c);
    size_t nb = 16;
    while (nb < max_entries(ctx) && nb < ((size_t)1 << 20))
      nb <<= 1;
    struct ck__rep **b = c ? calloc(nb, sizeof *b) : NULL;
    if (!b) {
      free(c);
      return 0; /* answered without memory, as before: blocks re-run */
    }
    c->buckets = b;
    c->nbuckets = nb;
    ctx->reps = c;
  }
  /* A client that starts over (block 0 again) replaces what it had. */
  struct ck__rep *old = find(c, rp);
  if (old)
    drop(ctx, old);
  uint64_t wait = make_room(ctx, resp->payload_len);
  if (wait)
    return refuse(ctx, rp, resp, wait);
  struct ck__rep *e = malloc(sizeof *e);
  if (!e)
    return 0;
  if (resp->ref) {
    e->payload = resp->payload;
    e->release = resp->release;
    e->release_arg = resp->release_arg;
  } else if (resp->payload != resp->inl) {
    /* The handler's copy moves here; free is its release. */
    e->payload = resp->payload;
    e->release = free;
    e->release_arg = resp->payload;
  } else {
    uint8_t *p = malloc(resp->payload_len);
    if (!p) {
      free(e);
      return 0;
    }
    memcpy(p, resp->payload, resp->payload_len);
    e->payload = p;
    e->release = free;
    e->release_arg = p;
  }
  e->len = resp->payload_len;
  e->peer = rp->peer;
  e->key = rp->rep_key;
  e->method = rp->method;
  e->res = rp->res;
  e->code = resp->code;
  e->nopts = resp->nopts;
  memcpy(e->opts, resp->opts, resp->nopts * sizeof resp->opts[0]);
  e->optbuf_len = resp->optbuf_len;
  memcpy(e->optbuf, resp->optbuf, resp->optbuf_len);
  /* RFC 7959 §2.4: one ETag per representation, hashed once. */
  e->etag_set = !ck__resp_has_opt(resp, CK_OPT_ETAG);
  e->etag = e->etag_set ? ck__etag_of(ctx, e->payload, e->len) : 0;
  e->last_use = ck__loop_now(&ctx->loop);
  struct ck__rep **b = bucket(c, e->key);
  e->hnext = *b;
  *b = e;
  lru_push(c, e);
  c->count++;
  c->bytes += e->len;
  ctx->stats.rep_entries = c->count;
  ctx->stats.rep_bytes = c->bytes;
  /* resp now borrows the payload it gave away. */
  resp->ref = true;
  resp->release = NULL;
  resp->payload = (uint8_t *)(uintptr_t)e->payload;
  resp->rep = e;
  resp->etag_set = e->etag_set;
  resp->etag = e->etag;
  e->challenged = challenged;
  return 0;
}

int ck__rep_offer(struct ck_ctx *ctx, struct ck__reply *rp,
                  struct ck_response *resp)
{
  return offer(ctx, rp, resp, false);
}

void ck__rep_keep_challenged(struct ck_ctx *ctx, struct ck__reply *rp,
                             struct ck_response *resp)
{
  size_t off, bsize;
  wanted(rp, &off, &bsize);
  /* Not a Block1 upload's answer, nor a later block (served from what is
   * kept already: the handler did not run for it). */
  if (!body_keyed(rp) || !rp->req_msg || off > 0 ||
      ck_msg_opt_count(rp->req_msg, CK_OPT_BLOCK1) > 0)
    return;
  if (resp->rep) {
    /* Kept already, under the key without the body: move it. */
    rekey(ctx->reps, resp->rep, challenge_key(rp));
    resp->rep->challenged = true;
    return;
  }
  if (resp->payload_len == 0)
    return;
  ck__rep_key(rp);
  uint64_t base = rp->rep_key;
  rp->rep_key = challenge_key(rp);
  (void)offer(ctx, rp, resp, true);
  rp->rep_key = base;
}

void ck__rep_sent(struct ck_ctx *ctx, const struct ck__reply *rp,
                  struct ck_response *resp)
{
  struct ck__rep *e = resp->rep;
  size_t off, bsize;
  wanted(rp, &off, &bsize);
  resp->rep = NULL;
  resp->payload = resp->inl;
  resp->payload_len = 0;
  resp->ref = false;
  if (rp->echo_refused) {
    /* Held for the request's return with an Echo (RFC 9175 §2.4). */
    e->challenged = true;
    e->last_use = ck__loop_now(&ctx->loop);
    return;
  }
  if (off + bsize >= e->len) {
    /* The last block (or past it): the transfer is over. A lost
     * answer to it is for dedup.c (POST) or a fresh run (GET). */
    drop(ctx, e);
    return;
  }
  e->challenged = false;
  e->last_use = ck__loop_now(&ctx->loop);
  lru_unlink(ctx->reps, e);
  lru_push(ctx->reps, e);
}
