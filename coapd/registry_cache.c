/* The registry's cache of verified passwords: a set of keyed hashes
 * (HMAC-SHA256 over who, the stored hash and the password; registry.c),
 * so that a client presenting the same password on every request pays
 * the slow hash once.
 *
 * It holds every password verified since the last reload, however many
 * clients there are: an open-addressing table that doubles at half load,
 * up to REG_CACHE_MAX entries. A fixed table of slots would make clients
 * whose hashes share a slot evict each other, and each would pay PBKDF2
 * (tens of milliseconds on the loop thread) on every request; with 1,000
 * devices in 1,024 slots that was most of them. At the cap the table is
 * emptied and starts over, which costs each client one hash again. An
 * all-zero entry marks an empty slot: HMAC output is never all zero in
 * practice, and if it were, that password would simply not be cached.
 */
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "registry_impl.h"

static size_t home(const uint8_t *mac, size_t cap)
{
  uint64_t h;
  memcpy(&h, mac, sizeof h); /* already uniform: it is a MAC */
  return (size_t)h & (cap - 1);
}

static bool empty(const uint8_t *slot)
{
  static const uint8_t zero[REG_MAC_LEN];
  return memcmp(slot, zero, REG_MAC_LEN) == 0;
}

bool registry__cache_has(const struct registry *r, const uint8_t *mac)
{
  if (!r->cache)
    return false;
  for (size_t i = home(mac, r->cache_cap);; i = (i + 1) & (r->cache_cap - 1)) {
    const uint8_t *slot = r->cache[i];
    if (empty(slot))
      return false;
    if (memcmp(slot, mac, REG_MAC_LEN) == 0)
      return true;
  }
}

static void put(uint8_t (*t)[REG_MAC_LEN], size_t cap, const uint8_t *mac)
{
  size_t i = home(mac, cap);
  while (!empty(t[i]))
    i = (i + 1) & (cap - 1);
  memcpy(t[i], mac, REG_MAC_LEN);
}

void registry__cache_add(struct registry *r, const uint8_t *mac)
{
  if (empty(mac) || registry__cache_has(r, mac))
    return;
  if ((r->cache_n + 1) * 2 > r->cache_cap) {
    size_t cap = r->cache_cap ? r->cache_cap * 2 : 256;
    if (cap > 2 * (size_t)REG_CACHE_MAX) {
      registry__cache_clear(r); /* at the cap: start over */
      cap = r->cache_cap;
    } else {
      uint8_t (*t)[REG_MAC_LEN] = calloc(cap, REG_MAC_LEN);
      if (!t)
        return; /* not cached: the next check hashes again */
      for (size_t i = 0; i < r->cache_cap; i++)
        if (!empty(r->cache[i]))
          put(t, cap, r->cache[i]);
      if (r->cache)
        gnutls_memset(r->cache, 0, r->cache_cap * REG_MAC_LEN);
      free(r->cache);
      r->cache = t;
      r->cache_cap = cap;
    }
  }
  put(r->cache, r->cache_cap, mac);
  r->cache_n++;
}

void registry__cache_clear(struct registry *r)
{
  if (r->cache)
    gnutls_memset(r->cache, 0, r->cache_cap * REG_MAC_LEN);
  r->cache_n = 0;
}

void registry__cache_free(struct registry *r)
{
  registry__cache_clear(r);
  free(r->cache);
  r->cache = NULL;
  r->cache_cap = 0;
}
