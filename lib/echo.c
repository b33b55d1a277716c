/* The server side of the Echo option (RFC 9175 §2.4): proof that a
 * request's source address is really there before a large answer goes
 * to it, and optionally proof that a state-changing request is fresh.
 *
 * Over plain UDP anyone can send a small request with someone else's
 * address and have us send a large answer to that victim. So a response
 * more than echo_amplification times the size of its request (3 by
 * default, the factor of RFC 9175 §2.4 item 3) goes only to a source we
 * have verified; any other gets a small 4.01 (Unauthorized) with an Echo
 * value, which a real client sends back with its next request (§2.3).
 *
 * We keep no state for a source before it has answered: the Echo value
 * carries its own proof, 4 bytes of our clock and a SipHash-2-4 MAC over
 * them and the peer's address under a per-context random key. Any value
 * with a correct MAC was made by us for that address, and its clock says
 * how old it is. Only a source that came back with a valid value enters
 * the verified table: a bounded hash table whose entries live in a ring
 * in insertion order, so that at the cap the oldest one is overwritten.
 *
 * The check costs a request nothing when the answer is small: the
 * caller compares two lengths before calling anything here. DTLS peers
 * proved their address with the handshake's cookie (dtls.c) and are not
 * checked; multicast requests are never answered with errors at all
 * (RFC 7252 §8.2), so they are not checked either.
 */
#include <stdlib.h>
#include <string.h>

#include "coapkit/opt.h"
#include "echo.h"
#include "srv.h"

enum { NIL = UINT32_MAX };

struct verified {
  struct ck_addr addr;
  uint64_t until;
  uint32_t next; /* hash chain */
  bool used;
};

struct ck__echo {
  uint64_t key[2];
  uint32_t cap;  /* entries */
  uint32_t mask; /* buckets - 1 */
  uint32_t head; /* the next slot of the ring, the oldest when full */
  uint32_t *buckets;
  struct verified *ent;
};

/* --- SipHash-2-4 (Aumasson and Bernstein), a MAC for short inputs --- */

static uint64_t rotl(uint64_t x, int b)
{
  return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                              \
  do {                                                                        \
    v0 += v1;                                                                 \
    v1 = rotl(v1, 13);                                                        \
    v1 ^= v0;                                                                 \
    v0 = rotl(v0, 32);                                                        \
    v2 += v3;                                                                 \
    v3 = rotl(v3, 16);                                                        \
    v3 ^= v2;                                                                 \
    v0 += v3;                                                                 \
    v3 = rotl(v3, 21);                                                        \
    v3 ^= v0;                                                                 \
    v2 += v1;                                                                 \
    v1 = rotl(v1, 17);                                                        \
    v1 ^= v2;                                                                 \
    v2 = rotl(v2, 32);                                                        \
  } while (0)

static uint64_t le64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static uint64_t siphash(const uint64_t k[2], const uint8_t *in, size_t len)
{
  uint64_t v0 = 0x736f6d6570736575ull ^ k[0];
  uint64_t v1 = 0x646f72616e646f6dull ^ k[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ k[0];
  uint64_t v3 = 0x7465646279746573ull ^ k[1];
  size_t full = len & ~(size_t)7;
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = le64(in + i);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)len << 56;
  for (size_t i = full; i < len; i++)
    b |= (uint64_t)in[i] << (8 * (i - full));
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* --- the state, made on first use --- */

static struct ck__echo *state(struct ck_ctx *ctx)
{
  if (ctx->echo)
    return ctx->echo;
  struct ck__echo *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  /* Drawn on first use rather than at ck_ctx_new(), so a test's random
   * source (ck_ctx_set_random) makes the key too. */
  ck__random(ctx, e->key, sizeof e->key);
  ctx->echo = e;
  return e;
}

void ck__echo_free(struct ck_ctx *ctx)
{
  struct ck__echo *e = ctx->echo;
  if (!e)
    return;
  free(e->buckets);
  free(e->ent);
  free(e);
  ctx->echo = NULL;
}

/* --- Echo values --- */

static uint64_t mac(const struct ck__echo *e, const struct ck_addr *peer,
                    const uint8_t ts[4])
{
  uint8_t in[4 + 2 + 2 + 16];
  size_t n = 0;
  memcpy(in, ts, 4);
  n = 4;
  uint16_t fam = peer->u.sa.sa_family;
  memcpy(in + n, &fam, 2);
  n += 2;
  if (fam == AF_INET6) {
    memcpy(in + n, &peer->u.in6.sin6_port, 2);
    memcpy(in + n + 2, &peer->u.in6.sin6_addr, 16);
    n += 18;
  } else {
    memcpy(in + n, &peer->u.in4.sin_port, 2);
    memcpy(in + n + 2, &peer->u.in4.sin_addr, 4);
    n += 6;
  }
  return siphash(e->key, in, n);
}

void ck__echo_make(struct ck_ctx *ctx, const struct ck_addr *peer,
                   uint8_t out[CK__ECHO_LEN])
{
  struct ck__echo *e = state(ctx);
  uint32_t now = (uint32_t)ck__loop_now(&ctx->loop);
  out[0] = (uint8_t)(now >> 24);
  out[1] = (uint8_t)(now >> 16);
  out[2] = (uint8_t)(now >> 8);
  out[3] = (uint8_t)now;
  /* Without memory for the key there is no proof to give: a value no
   * one can validate still makes a client ask again, in vain. */
  uint64_t t = e ? mac(e, peer, out) : 0;
  memcpy(out + 4, &t, 8);
}

int ck__echo_check(struct ck_ctx *ctx, const struct ck_addr *peer,
                   const uint8_t *val, size_t len, uint32_t max_age_ms)
{
  struct ck__echo *e = state(ctx);
  if (!e || len != CK__ECHO_LEN)
    return CK_EINVAL;
  uint64_t t = mac(e, peer, val);
  /* Constant time, so the MAC cannot be guessed byte by byte. */
  uint8_t diff = 0;
  const uint8_t *tb = (const uint8_t *)&t;
  for (int i = 0; i < 8; i++)
    diff |= (uint8_t)(tb[i] ^ val[4 + i]);
  if (diff)
    return CK_EINVAL;
  uint32_t ts = (uint32_t)val[0] << 24 | (uint32_t)val[1] << 16 |
                (uint32_t)val[2] << 8 | val[3];
  /* Modular age: the clock wraps every 49 days; a value "from the
   * future" looks very old and fails too. */
  uint32_t age = (uint32_t)ck__loop_now(&ctx->loop) - ts;
  return age <= max_age_ms ? 0 : CK_ETIMEDOUT;
}

/* --- the verified table --- */

static uint32_t bucket(const struct ck__echo *e, const struct ck_addr *a)
{
  return ck_addr_hash(a) & e->mask;
}

static struct verified *lookup(struct ck__echo *e, const struct ck_addr *a)
{
  if (!e || !e->buckets)
    return NULL;
  for (uint32_t i = e->buckets[bucket(e, a)]; i != NIL; i = e->ent[i].next)
    if (ck_addr_equal(&e->ent[i].addr, a))
      return &e->ent[i];
  return NULL;
}

bool ck__echo_is_verified(struct ck_ctx *ctx, const struct ck_addr *peer)
{
  struct verified *v = lookup(ctx->echo, peer);
  return v && v->until > ck__loop_now(&ctx->loop);
}

static int table_init(struct ck_ctx *ctx, struct ck__echo *e)
{
  uint32_t cap = ctx->cfg.echo_verified_max;
  uint32_t nb = 1;
  while (nb < cap && nb < (1u << 30))
    nb <<= 1;
  e->buckets = malloc(nb * sizeof *e->buckets);
  e->ent = calloc(cap, sizeof *e->ent);
  if (!e->buckets || !e->ent) {
    free(e->buckets);
    free(e->ent);
    e->buckets = NULL;
    e->ent = NULL;
    return CK_ENOMEM;
  }
  for (uint32_t i = 0; i < nb; i++)
    e->buckets[i] = NIL;
  e->cap = cap;
  e->mask = nb - 1;
  return 0;
}

static void unlink_slot(struct ck__echo *e, uint32_t slot)
{
  uint32_t *p = &e->buckets[bucket(e, &e->ent[slot].addr)];
  while (*p != NIL && *p != slot)
    p = &e->ent[*p].next;
  if (*p == slot)
    *p = e->ent[slot].next;
}

int ck__echo_mark_verified(struct ck_ctx *ctx, const struct ck_addr *peer)
{
  struct ck__echo *e = state(ctx);
  if (!e || (!e->buckets && table_init(ctx, e) < 0))
    return CK_ENOMEM;
  uint64_t now = ck__loop_now(&ctx->loop);
  uint64_t until = now + ctx->cfg.echo_verified_ms;
  struct verified *v = lookup(e, peer);
  if (v) {
    v->until = until;
    return 0;
  }
  uint32_t slot = e->head;
  e->head = (e->head + 1) % e->cap;
  struct verified *old = &e->ent[slot];
  if (old->used) {
    /* The ring is full: the oldest entry makes room. Only one still in
     * force is a loss an operator should see. */
    if (old->until > now)
      ctx->stats.echo_evictions++;
    unlink_slot(e, slot);
  }
  old->addr = *peer;
  old->until = until;
  old->used = true;
  uint32_t b = bucket(e, peer);
  old->next = e->buckets[b];
  e->buckets[b] = slot;
  ctx->stats.echo_verified++;
  return 0;
}

/* --- the gate --- */

/* Whether the Echo the request carried proves its source, within the
 * freshness the context allows; counts a value that fails. */
static bool echo_proves(struct ck_ctx *ctx, const struct ck__reply *rp)
{
  if (!rp->echo_len)
    return false;
  if (ck__echo_check(ctx, &rp->peer, rp->echo, rp->echo_len,
                     ctx->cfg.echo_fresh_ms) < 0) {
    ctx->stats.echo_rejected++;
    return false;
  }
  return true;
}

int ck__echo_gate(struct ck_ctx *ctx, struct ck__reply *rp, uint8_t *buf,
                  size_t cap, int n, uint8_t type, uint16_t mid)
{
  if (ck__echo_is_verified(ctx, &rp->peer))
    return n;
  if (echo_proves(ctx, rp)) {
    /* Without room in the table the answer still goes: this request
     * proved its source. */
    (void)ck__echo_mark_verified(ctx, &rp->peer);
    return n;
  }
  rp->echo_refused = true;
  /* RFC 9175 §2.4 item 3: 4.01 (Unauthorized) with an Echo, which the
   * client sends back with its request (§2.3). */
  struct ck_response resp;
  ck__resp_init(&resp, rp->method);
  resp.code = CK_UNAUTHORIZED;
  uint8_t val[CK__ECHO_LEN];
  ck__echo_make(ctx, &rp->peer, val);
  (void)ck_response_opt(&resp, CK_OPT_ECHO, val, sizeof val);
  struct ck__reply plain = *rp;
  plain.observe = plain.has_block1 = plain.has_block2 = false;
  plain.want_size2 = false;
  int m = ck__build_response(ctx, buf, cap, type, mid, rp->token, rp->tkl,
                             &resp, &plain);
  uint64_t limit = (uint64_t)ctx->cfg.echo_amplification * rp->req_len;
  if (m < 0 || (uint64_t)m > limit) {
    /* A request so small that even the challenge would amplify (a
     * header without token or options): nothing goes out. */
    ctx->stats.echo_dropped++;
    return 0;
  }
  ctx->stats.echo_challenges++;
  return m;
}

bool ck__echo_need_fresh(struct ck_ctx *ctx, const struct ck__reply *rp)
{
  switch (rp->method) {
  case CK_POST:
  case CK_PUT:
  case CK_DELETE:
  case CK_PATCH:
  case CK_IPATCH:
    break;
  default:
    return false;
  }
  if (echo_proves(ctx, rp)) {
    /* A fresh Echo proves the source as well (§2.4 item 3). */
    if (!rp->ep->secure)
      (void)ck__echo_mark_verified(ctx, &rp->peer);
    return false;
  }
  ctx->stats.echo_fresh_challenges++;
  return true;
}

void ck__echo_unobserve(struct ck_ctx *ctx, const struct ck__reply *rp)
{
  struct ck_observer *o = ck__observe_find(ctx, &rp->peer, rp->token, rp->tkl);
  if (o)
    ck__observe_end(ctx, o, o->app ? CK_OBSERVER_REFUSED : 0);
}
