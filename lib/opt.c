/* The option registry (IANA "CoAP Option Numbers") and the helpers for
 * uint and block option values (RFC 7252 §3.2, RFC 7959 §2.2). */
#include <strings.h>

#include "coapkit/opt.h"

#define E CK_OPTFMT_EMPTY
#define O CK_OPTFMT_OPAQUE
#define U CK_OPTFMT_UINT
#define S CK_OPTFMT_STRING

/* Sorted by number. Length ranges are those of the defining RFCs. */
static const struct ck_optdef defs[] = {
  {CK_OPT_IF_MATCH, O, true, 0, 8, "If-Match"},
  {CK_OPT_URI_HOST, S, false, 1, 255, "Uri-Host"},
  {CK_OPT_ETAG, O, true, 1, 8, "ETag"},
  {CK_OPT_IF_NONE_MATCH, E, false, 0, 0, "If-None-Match"},
  {CK_OPT_OBSERVE, U, false, 0, 3, "Observe"},
  {CK_OPT_URI_PORT, U, false, 0, 2, "Uri-Port"},
  {CK_OPT_LOCATION_PATH, S, true, 0, 255, "Location-Path"},
  {CK_OPT_OSCORE, O, false, 0, 255, "OSCORE"},
  /* Defined by GlobalPlatform; its value is opaque to CoAP. */
  {CK_OPT_SCP82_PARAMS, O, false, 0, 255, "SCP82-Params"},
  {CK_OPT_URI_PATH, S, true, 0, 255, "Uri-Path"},
  {CK_OPT_CONTENT_FORMAT, U, false, 0, 2, "Content-Format"},
  {CK_OPT_MAX_AGE, U, false, 0, 4, "Max-Age"},
  {CK_OPT_URI_QUERY, S, true, 0, 255, "Uri-Query"},
  {CK_OPT_HOP_LIMIT, U, false, 1, 1, "Hop-Limit"},
  {CK_OPT_ACCEPT, U, false, 0, 2, "Accept"},
  {CK_OPT_Q_BLOCK1, U, false, 0, 3, "Q-Block1"},
  {CK_OPT_LOCATION_QUERY, S, true, 0, 255, "Location-Query"},
  {CK_OPT_EDHOC, E, false, 0, 0, "EDHOC"},
  {CK_OPT_BLOCK2, U, false, 0, 3, "Block2"},
  {CK_OPT_BLOCK1, U, false, 0, 3, "Block1"},
  {CK_OPT_SIZE2, U, false, 0, 4, "Size2"},
  /* RFC 9177 §4: Q-Block2 may be repeated in a request. */
  {CK_OPT_Q_BLOCK2, U, true, 0, 3, "Q-Block2"},
  {CK_OPT_PROXY_URI, S, false, 1, 1034, "Proxy-Uri"},
  {CK_OPT_PROXY_SCHEME, S, false, 1, 255, "Proxy-Scheme"},
  {CK_OPT_SIZE1, U, false, 0, 4, "Size1"},
  {CK_OPT_ECHO, O, false, 1, 40, "Echo"},
  {CK_OPT_NO_RESPONSE, U, false, 0, 1, "No-Response"},
  {CK_OPT_REQUEST_TAG, O, true, 0, 8, "Request-Tag"},
  {CK_OPT_OCF_ACCEPT_CF_VERSION, U, false, 2, 2,
   "OCF-Accept-Content-Format-Version"},
  {CK_OPT_OCF_CF_VERSION, U, false, 2, 2, "OCF-Content-Format-Version"},
};

#undef E
#undef O
#undef U
#undef S

enum { NDEFS = sizeof defs / sizeof defs[0] };

const struct ck_optdef *ck_opt_def(uint16_t num)
{
  size_t lo = 0, hi = NDEFS;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (defs[mid].num == num)
      return &defs[mid];
    if (defs[mid].num < num)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

const struct ck_optdef *ck_opt_def_by_name(const char *name)
{
  if (name == NULL)
    return NULL;
  for (size_t i = 0; i < NDEFS; i++)
    if (strcasecmp(defs[i].name, name) == 0)
      return &defs[i];
  return NULL;
}

const struct ck_optdef *ck_opt_def_at(size_t i)
{
  return i < NDEFS ? &defs[i] : NULL;
}

bool ck_opt_len_ok(uint16_t num, size_t len)
{
  const struct ck_optdef *d = ck_opt_def(num);
  return d == NULL || (len >= d->min_len && len <= d->max_len);
}

size_t ck_opt_uint_encode(uint32_t v, uint8_t out[4])
{
  if (!out)
    return 0;
  size_t n = v > 0xffffff ? 4 : v > 0xffff ? 3 : v > 0xff ? 2 : v ? 1 : 0;
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return n;
}

int ck_opt_uint_decode(const uint8_t *val, size_t len, uint32_t *out)
{
  /* RFC 7252 §3.2: senders use the minimal length, but receivers must
   * accept leading zeros; only the magnitude matters. */
  if (!out || (!val && len))
    return CK_EINVAL;
  while (len > 4 && *val == 0) {
    val++;
    len--;
  }
  if (len > 4)
    return CK_ERANGE;
  uint32_t v = 0;
  for (size_t i = 0; i < len; i++)
    v = v << 8 | val[i];
  *out = v;
  return 0;
}

int ck_block_decode(uint32_t v, struct ck_block *out)
{
  if (!out)
    return CK_EINVAL;
  unsigned szx = v & 7;
  /* RFC 7959 §2.2: SZX 7 is reserved (RFC 8323 gives it to BERT, which
   * exists only over reliable transports). */
  if (szx == 7 || (v >> 4) > 0xfffff)
    return CK_ERANGE;
  out->num = v >> 4;
  out->more = (v & 8) != 0;
  out->szx = (uint8_t)szx;
  return 0;
}

int ck_block_encode(const struct ck_block *b, uint32_t *out)
{
  if (!b || !out)
    return CK_EINVAL;
  if (b->num > 0xfffff || b->szx > 6)
    return CK_ERANGE;
  *out = b->num << 4 | (b->more ? 8u : 0u) | b->szx;
  return 0;
}

int ck_block_szx(size_t size)
{
  for (int szx = 0; szx <= 6; szx++)
    if (CK_BLOCK_SIZE(szx) == size)
      return szx;
  return CK_ERANGE;
}
