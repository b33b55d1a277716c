/* The DTLS 1.2 record layer of an established server session, run here
 * instead of in GnuTLS (issue 12: DTLS at scale). GnuTLS makes the
 * handshake; once a session with an AEAD suite is up and the client has
 * shown it has our last flight, dtls.c takes the keys out
 * (ck__tls_export) and frees the GnuTLS session, about 10 KB, keeping
 * only what a record needs: about 100 bytes of keys, salts, the epoch,
 * the sequence number and the anti-replay window.
 *
 * A record (RFC 6347 §4.1) is a 13-byte header (type, version, epoch,
 * 48-bit sequence number, length), then for AES-GCM (RFC 5288 §3) and
 * AES-CCM(-8) (RFC 6655 §3, RFC 7251) the 8-byte explicit nonce, the
 * ciphertext and the tag. The nonce is the 4-byte salt of the direction
 * followed by the explicit part, which we take to be the epoch and
 * sequence number, as GnuTLS and libcoap do. ChaCha20-Poly1305 (RFC
 * 7905 §2), which GnuTLS picks for a client that prefers it (libcoap's
 * coap-client-gnutls does), has no explicit part: its nonce is the
 * 12-byte IV XORed with the epoch and sequence number. The additional
 * data is the
 * epoch and sequence number, type, version and plaintext length (RFC
 * 5246 §6.2.3.3 with RFC 6347 §4.1.2.1's sequence number). A record of
 * another epoch, a replay (a 64-entry window, RFC 6347 §4.1.2.6) or one
 * that does not authenticate is dropped silently (§4.1.2.7).
 *
 * Initialised ciphers are what costs memory (a GCM key with its tables
 * is kilobytes), so they are not kept per session: the endpoint has a
 * small cache of them, least recently used evicted, and a session that
 * comes back after eviction has its cipher initialised again from its
 * raw key. */
#include <stdlib.h>
#include <string.h>

#include "coapkit/error.h"
#include "dtls.h"

enum { HDR = 13, EXPLICIT = 8 };

struct slot {
  struct ck__rec *owner; /* NULL: free */
  struct ck__aead_hd *rx, *tx;
  uint64_t used;
};

struct ck__rec_cache {
  unsigned n;
  uint64_t clock;
  struct slot slots[];
};

int ck__rec_cache_new(unsigned n, struct ck__rec_cache **out)
{
  struct ck__rec_cache *c = calloc(1, sizeof *c + n * sizeof c->slots[0]);
  if (!c)
    return CK_ENOMEM;
  c->n = n;
  *out = c;
  return 0;
}

static void slot_clear(struct slot *sl)
{
  ck__aead_free(sl->rx);
  ck__aead_free(sl->tx);
  sl->rx = sl->tx = NULL;
  if (sl->owner)
    sl->owner->slot = -1;
  sl->owner = NULL;
}

void ck__rec_cache_free(struct ck__rec_cache *c)
{
  if (!c)
    return;
  for (unsigned i = 0; i < c->n; i++)
    slot_clear(&c->slots[i]);
  free(c);
}

void ck__rec_init(struct ck__rec *r, const struct ck__rec_keys *k)
{
  r->k = *k;
  r->slot = -1;
}

void ck__rec_close(struct ck__rec_cache *c, struct ck__rec *r)
{
  if (r->slot >= 0 && (unsigned)r->slot < c->n &&
      c->slots[r->slot].owner == r)
    slot_clear(&c->slots[r->slot]);
  r->slot = -1;
  /* The keys die with the session. */
  volatile uint8_t *p = (volatile uint8_t *)&r->k;
  for (size_t i = 0; i < sizeof r->k; i++)
    p[i] = 0;
}

/* The slot holding r's ciphers, made (evicting the least recently used)
 * when it has none. */
static struct slot *ciphers(struct ck__rec_cache *c, struct ck__rec *r)
{
  c->clock++;
  if (r->slot >= 0 && c->slots[r->slot].owner == r) {
    c->slots[r->slot].used = c->clock;
    return &c->slots[r->slot];
  }
  unsigned v = 0;
  for (unsigned i = 0; i < c->n; i++) {
    if (!c->slots[i].owner) {
      v = i;
      break;
    }
    if (c->slots[i].used < c->slots[v].used)
      v = i;
  }
  struct slot *sl = &c->slots[v];
  slot_clear(sl);
  enum ck__aead a = (enum ck__aead)r->k.aead;
  if (ck__aead_new(a, r->k.rkey, r->k.key_len, &sl->rx) < 0 ||
      ck__aead_new(a, r->k.wkey, r->k.key_len, &sl->tx) < 0) {
    slot_clear(sl);
    return NULL;
  }
  sl->owner = r;
  sl->used = c->clock;
  r->slot = (int16_t)v;
  return sl;
}

static void put48(uint8_t *p, uint64_t v)
{
  for (int i = 5; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static size_t explicit_len(const struct ck__rec_keys *k)
{
  return k->aead == CK__AEAD_CHACHA20_POLY1305 ? 0 : EXPLICIT;
}

/* nonce = salt || epoch || seq, or iv ^ (0 || epoch || seq) (12 bytes);
 * ad = epoch || seq || type || version || plaintext length (13 bytes). */
static void nonce_ad(const struct ck__rec_keys *k, const uint8_t iv[12],
                     const uint8_t hdr[HDR], size_t plain_len,
                     uint8_t nonce[12], uint8_t ad[13])
{
  if (explicit_len(k)) {
    memcpy(nonce, iv, 4);
    memcpy(nonce + 4, hdr + 3, 8);
  } else {
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; i++)
      nonce[4 + i] ^= hdr[3 + i];
  }
  memcpy(ad, hdr + 3, 8);
  memcpy(ad + 8, hdr, 3);
  ad[11] = (uint8_t)(plain_len >> 8);
  ad[12] = (uint8_t)plain_len;
}

int ck__rec_seal(struct ck__rec_cache *c, struct ck__rec *r, uint8_t type,
                 const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
  size_t ex = explicit_len(&r->k);
  size_t body = ex + len + r->k.tag_len;
  if (cap < HDR + body || body > 0xffff)
    return CK_ENOSPC;
  /* RFC 6347 §4.1: a sequence number never wraps within an epoch. */
  if (r->k.wseq >= ((uint64_t)1 << 48) - 1)
    return CK_ERANGE;
  struct slot *sl = ciphers(c, r);
  if (!sl)
    return CK_ENOMEM;
  out[0] = type;
  out[1] = 0xfe, out[2] = 0xfd; /* DTLS 1.2 */
  out[3] = (uint8_t)(r->k.epoch >> 8), out[4] = (uint8_t)r->k.epoch;
  put48(out + 5, r->k.wseq);
  out[11] = (uint8_t)(body >> 8), out[12] = (uint8_t)body;
  uint8_t nonce[12], ad[13];
  nonce_ad(&r->k, r->k.wiv, out, len, nonce, ad);
  memcpy(out + HDR, out + 3, ex);
  int n = ck__aead_seal(sl->tx, nonce, ad, r->k.tag_len, in, len,
                        out + HDR + ex, cap - HDR - ex);
  if (n < 0)
    return n;
  r->k.wseq++;
  return (int)(HDR + ex) + n;
}

/* RFC 6347 §4.1.2.6: whether q is new, and (mark) remembering it. */
static bool window_fresh(const struct ck__rec_keys *k, uint64_t q)
{
  if (q > k->rmax || (k->rmax == 0 && k->rwin == 0))
    return true;
  uint64_t d = k->rmax - q;
  return d < 64 && !(k->rwin & ((uint64_t)1 << d));
}

static void window_mark(struct ck__rec_keys *k, uint64_t q)
{
  if (q > k->rmax || (k->rmax == 0 && k->rwin == 0)) {
    uint64_t d = k->rwin ? q - k->rmax : 64;
    k->rwin = (d >= 64 ? 0 : k->rwin << d) | 1;
    k->rmax = q;
  } else {
    k->rwin |= (uint64_t)1 << (k->rmax - q);
  }
}

int ck__rec_open(struct ck__rec_cache *c, struct ck__rec *r,
                 const uint8_t *buf, size_t len, size_t *off, uint8_t *type,
                 uint8_t *out, size_t cap)
{
  if (*off + HDR > len)
    return CK_EMSG_SHORT;
  const uint8_t *h = buf + *off;
  size_t body = (size_t)h[11] << 8 | h[12];
  if (*off + HDR + body > len) {
    *off = len; /* RFC 6347 §4.1.2.7: the rest of the datagram goes too */
    return CK_EMSG_SHORT;
  }
  *off += HDR + body;
  uint16_t epoch = (uint16_t)(h[3] << 8 | h[4]);
  uint64_t q = 0;
  for (int i = 5; i < 11; i++)
    q = q << 8 | h[i];
  if (epoch != r->k.epoch || h[1] != 0xfe || h[2] != 0xfd ||
      body < explicit_len(&r->k) + r->k.tag_len || !window_fresh(&r->k, q))
    return CK_ENOTFOUND;
  size_t ex = explicit_len(&r->k);
  size_t plain = body - ex - r->k.tag_len;
  if (plain > cap)
    return CK_ENOTFOUND;
  struct slot *sl = ciphers(c, r);
  if (!sl)
    return CK_ENOTFOUND;
  /* The explicit nonce is the sender's to choose (RFC 5288 §3): take it
   * from the record rather than assuming it is the sequence number. */
  uint8_t nonce[12], ad[13];
  nonce_ad(&r->k, r->k.riv, h, plain, nonce, ad);
  memcpy(nonce + 4, h + HDR, ex);
  int n = ck__aead_open(sl->rx, nonce, ad, r->k.tag_len, h + HDR + ex,
                        body - ex, out, cap);
  if (n < 0)
    return CK_ENOTFOUND;
  /* Only an authentic record moves the window (§4.1.2.6). */
  window_mark(&r->k, q);
  *type = h[0];
  return n;
}
