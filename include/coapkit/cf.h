/* The CoAP Content-Formats registry (RFC 7252 §12.3 and IANA).
 *
 * Maps content-format numbers, as carried by Content-Format and Accept, to
 * their media types and back, so that tools can show and accept names
 * such as "application/json" instead of 50.
 */
#ifndef COAPKIT_CF_H
#define COAPKIT_CF_H

#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ck_cf {
  CK_CF_TEXT_PLAIN = 0,
  CK_CF_LINK_FORMAT = 40,
  CK_CF_XML = 41,
  CK_CF_OCTET_STREAM = 42,
  CK_CF_EXI = 47,
  CK_CF_JSON = 50,
  CK_CF_JSON_PATCH = 51,
  CK_CF_MERGE_PATCH = 52,
  CK_CF_CBOR = 60,
  CK_CF_SENML_JSON = 110,
  CK_CF_SENML_CBOR = 112,
};

/* A registry entry: the number and the media type with parameters, as
 * IANA writes it (e.g. "text/plain;charset=utf-8"). */
struct ck_cfdef {
  uint16_t num;
  const char *name;
};

/* Returns the media type of a content format, or NULL if unregistered. */
CK_EXPORT const char *ck_cf_name(uint16_t num);

/* Looks a content format up by name or number. Accepts the full registry
 * name, the media type without parameters ("text/plain"), a short alias
 * ("json", "cbor", "text", "link", "octet"), or a decimal number 0-65535.
 * Returns 0 and sets *num, or CK_ENOTFOUND (no such name), CK_ERANGE (a
 * number over 65535) or CK_EINVAL (s or num NULL, s empty, or s starting
 * with a digit but not all digits, such as "50x"). */
CK_EXPORT int ck_cf_parse(const char *s, uint16_t *num);

/* Returns the i-th registry entry in number order, or NULL past the end. */
CK_EXPORT const struct ck_cfdef *ck_cf_def_at(size_t i);

#ifdef __cplusplus
}
#endif

#endif
