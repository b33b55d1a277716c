/* The CoAP option registry and option value helpers.
 *
 * Every option registered at IANA's "CoAP Option Numbers" registry is
 * known here with its name, value format and length range. Whether an
 * option is critical, unsafe-to-forward or not part of the cache key is
 * not stored: it follows from the number's bits (RFC 7252 §5.4.6), so the
 * helpers below work for unregistered numbers too.
 */
#ifndef COAPKIT_OPT_H
#define COAPKIT_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Registered option numbers. */
enum ck_optnum {
  CK_OPT_IF_MATCH = 1,
  CK_OPT_URI_HOST = 3,
  CK_OPT_ETAG = 4,
  CK_OPT_IF_NONE_MATCH = 5,
  CK_OPT_OBSERVE = 6,
  CK_OPT_URI_PORT = 7,
  CK_OPT_LOCATION_PATH = 8,
  CK_OPT_OSCORE = 9,
  CK_OPT_SCP82_PARAMS = 10,
  CK_OPT_URI_PATH = 11,
  CK_OPT_CONTENT_FORMAT = 12,
  CK_OPT_MAX_AGE = 14,
  CK_OPT_URI_QUERY = 15,
  CK_OPT_HOP_LIMIT = 16,
  CK_OPT_ACCEPT = 17,
  CK_OPT_Q_BLOCK1 = 19,
  CK_OPT_LOCATION_QUERY = 20,
  CK_OPT_EDHOC = 21,
  CK_OPT_BLOCK2 = 23,
  CK_OPT_BLOCK1 = 27,
  CK_OPT_SIZE2 = 28,
  CK_OPT_Q_BLOCK2 = 31,
  CK_OPT_PROXY_URI = 35,
  CK_OPT_PROXY_SCHEME = 39,
  CK_OPT_SIZE1 = 60,
  CK_OPT_ECHO = 252,
  CK_OPT_NO_RESPONSE = 258,
  CK_OPT_REQUEST_TAG = 292,
  CK_OPT_OCF_ACCEPT_CF_VERSION = 2049,
  CK_OPT_OCF_CF_VERSION = 2053,
};

/* Value formats (RFC 7252 §3.2). */
enum ck_optfmt {
  CK_OPTFMT_EMPTY,
  CK_OPTFMT_OPAQUE,
  CK_OPTFMT_UINT,
  CK_OPTFMT_STRING,
};

/* A registry entry. */
struct ck_optdef {
  uint16_t num;
  uint8_t fmt; /* enum ck_optfmt */
  bool repeatable;
  uint16_t min_len;
  uint16_t max_len;
  const char *name; /* as IANA spells it, e.g. "Content-Format" */
};

/* Returns the registry entry for num, or NULL for an unregistered one. */
CK_EXPORT const struct ck_optdef *ck_opt_def(uint16_t num);

/* Returns the entry whose name matches (ignoring case), or NULL (also
 * for a NULL name). */
CK_EXPORT const struct ck_optdef *ck_opt_def_by_name(const char *name);

/* Returns the i-th registry entry in number order, or NULL past the end;
 * for listing every known option. */
CK_EXPORT const struct ck_optdef *ck_opt_def_at(size_t i);

/* RFC 7252 §5.4.6: the number's bits classify every option. */
static inline bool ck_opt_is_critical(uint16_t num)
{
  return (num & 1) != 0;
}

static inline bool ck_opt_is_unsafe(uint16_t num)
{
  return (num & 2) != 0;
}

static inline bool ck_opt_is_nocachekey(uint16_t num)
{
  return (num & 0x1e) == 0x1c;
}

/* Returns true when len fits the registered length range of num (any
 * length fits an unregistered option). RFC 7252 §5.4.3: a value outside
 * the range is treated like an unrecognised option. */
CK_EXPORT bool ck_opt_len_ok(uint16_t num, size_t len);

/* Encodes v in the fewest bytes (0 for the value 0, RFC 7252 §3.2) into
 * out and returns how many were written (0 to 4); 0 when out is NULL. */
CK_EXPORT size_t ck_opt_uint_encode(uint32_t v, uint8_t out[4]);

/* Decodes a big-endian unsigned integer of len bytes into *out. Leading
 * zero bytes are accepted, however many. Returns 0, CK_ERANGE when the
 * value does not fit 32 bits (more than 4 bytes after the leading zeros),
 * or CK_EINVAL when out is NULL, or val is NULL and len > 0. */
CK_EXPORT int ck_opt_uint_decode(const uint8_t *val, size_t len, uint32_t *out);

/* A Block1/Block2/Q-Block value (RFC 7959 §2.2). */
struct ck_block {
  uint32_t num; /* block number, 0 to 2^20-1 */
  bool more;
  uint8_t szx; /* block size is 1 << (szx + 4); 0 to 6 */
};

/* Block size in bytes for a size exponent. */
#define CK_BLOCK_SIZE(szx) (1u << ((szx) + 4))

/* Decodes a block option value. Returns 0, CK_ERANGE for SZX 7 (BERT,
 * reserved over UDP) or a number wider than 20 bits, or CK_EINVAL when
 * out is NULL. */
CK_EXPORT int ck_block_decode(uint32_t v, struct ck_block *out);

/* Encodes a block option value. Returns 0, CK_ERANGE for a number wider
 * than 20 bits or SZX above 6, or CK_EINVAL when b or out is NULL. */
CK_EXPORT int ck_block_encode(const struct ck_block *b, uint32_t *out);

/* Returns the SZX for a block size of 16 to 1024 bytes (a power of two),
 * or CK_ERANGE. */
CK_EXPORT int ck_block_szx(size_t size);

#ifdef __cplusplus
}
#endif

#endif
