/* Per-peer accounting on the server: the observers (RFC 7641) and Block1
 * uploads (RFC 7959) each source holds, so that the caps of struct
 * ck_ctx_config can be shared out and one source cannot take a whole
 * table, and so that the number of sources holding state is bounded
 * itself (RFC 7252 §11.3: a server should limit the state others create).
 *
 * What a "peer" is: the source address without its port, and for IPv6
 * its /64 prefix. Ports are free to any host, and so is the interface
 * identifier of an IPv6 address inside the prefix its network routes to
 * it (RFC 4291 §2.5.1, RFC 8981 makes hosts change it at will); keying
 * by either would let one host count as thousands. The price: clients
 * behind one NAT, or on one /64, share a peer's allowance, which is why
 * the per-peer caps are off unless configured. An IPv4-mapped IPv6
 * address counts as its IPv4 address.
 *
 * The table is a hash of chains, allocated on the first hold; an entry
 * lives while it holds something, so its size is bounded by the
 * observers and uploads, and by max_peers.
 */
#include <stdlib.h>
#include <string.h>

#include "peers.h"

enum { BUCKETS = 1 << 14, KEYLEN = 8 };

struct ck__peer {
  struct ck__peer *next;
  uint8_t key[KEYLEN]; /* IPv4: the 4 bytes; IPv6: the /64 prefix */
  uint8_t v6;
  uint32_t n[2];       /* by enum ck__peer_kind */
};

struct ck__peers {
  struct ck__peer *buckets[BUCKETS];
};

static void key_of(const struct ck_addr *a, uint8_t key[KEYLEN], uint8_t *v6)
{
  memset(key, 0, KEYLEN);
  if (a->u.sa.sa_family == AF_INET) {
    memcpy(key, &a->u.in4.sin_addr, 4);
    *v6 = 0;
    return;
  }
  if (a->u.sa.sa_family != AF_INET6) {
    *v6 = 2; /* not IP (a test's fake transport): all one peer */
    return;
  }
  const uint8_t *b = a->u.in6.sin6_addr.s6_addr;
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(b, mapped, 12) == 0) {
    memcpy(key, b + 12, 4);
    *v6 = 0;
  } else {
    memcpy(key, b, KEYLEN);
    *v6 = 1;
  }
}

static uint32_t hash_key(const uint8_t key[KEYLEN], uint8_t v6)
{
  uint32_t h = 2166136261u ^ v6;
  for (unsigned i = 0; i < KEYLEN; i++)
    h = (h ^ key[i]) * 16777619u;
  return (h ^ (h >> 15)) & (BUCKETS - 1);
}

static uint32_t per_peer_cap(const struct ck_ctx *ctx, enum ck__peer_kind k)
{
  return k == CK__PEER_OBSERVER ? ctx->cfg.max_observers_per_peer
                                : ctx->cfg.max_uploads_per_peer;
}

struct ck__peer *ck__peer_hold(struct ck_ctx *ctx, const struct ck_addr *peer,
                               enum ck__peer_kind kind, bool *full)
{
  *full = false;
  uint8_t key[KEYLEN], v6;
  key_of(peer, key, &v6);
  if (!ctx->peers) {
    ctx->peers = calloc(1, sizeof *ctx->peers);
    if (!ctx->peers)
      return NULL;
  }
  struct ck__peer **b = &ctx->peers->buckets[hash_key(key, v6)];
  struct ck__peer *p = *b;
  while (p && (p->v6 != v6 || memcmp(p->key, key, KEYLEN) != 0))
    p = p->next;
  if (p) {
    if (p->n[kind] >= per_peer_cap(ctx, kind)) {
      if (kind == CK__PEER_OBSERVER)
        ctx->stats.observers_rejected_peer++;
      else
        ctx->stats.uploads_rejected_peer++;
      *full = true;
      return NULL;
    }
  } else {
    if (ctx->stats.peers >= ctx->cfg.max_peers) {
      ctx->stats.peers_rejected++;
      *full = true;
      return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p)
      return NULL;
    memcpy(p->key, key, KEYLEN);
    p->v6 = v6;
    p->next = *b;
    *b = p;
    ctx->stats.peers++;
  }
  p->n[kind]++;
  return p;
}

void ck__peer_release(struct ck_ctx *ctx, struct ck__peer *p,
                      enum ck__peer_kind kind)
{
  if (!p || !ctx->peers)
    return;
  if (p->n[kind])
    p->n[kind]--;
  if (p->n[0] || p->n[1])
    return;
  struct ck__peer **pp = &ctx->peers->buckets[hash_key(p->key, p->v6)];
  while (*pp && *pp != p)
    pp = &(*pp)->next;
  if (*pp)
    *pp = p->next;
  free(p);
  ctx->stats.peers--;
}

void ck__peers_close(struct ck_ctx *ctx)
{
  if (!ctx->peers)
    return;
  for (unsigned i = 0; i < BUCKETS; i++) {
    while (ctx->peers->buckets[i]) {
      struct ck__peer *p = ctx->peers->buckets[i];
      ctx->peers->buckets[i] = p->next;
      free(p);
    }
  }
  free(ctx->peers);
  ctx->peers = NULL;
  ctx->stats.peers = 0;
}
