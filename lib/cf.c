/* The Content-Formats registry: numbers to media types and back, so that
 * tools can print and accept names (RFC 7252 §12.3 and IANA's "CoAP
 * Content-Formats" registry). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "coapkit/cf.h"

/* Sorted by number. */
static const struct ck_cfdef defs[] = {
  {0, "text/plain;charset=utf-8"},
  {16, "application/cose;cose-type=\"cose-encrypt0\""},
  {17, "application/cose;cose-type=\"cose-mac0\""},
  {18, "application/cose;cose-type=\"cose-sign1\""},
  {19, "application/ace+cbor"},
  {21, "image/gif"},
  {22, "image/jpeg"},
  {23, "image/png"},
  {40, "application/link-format"},
  {41, "application/xml"},
  {42, "application/octet-stream"},
  {47, "application/exi"},
  {50, "application/json"},
  {51, "application/json-patch+json"},
  {52, "application/merge-patch+json"},
  {60, "application/cbor"},
  {61, "application/cwt"},
  {62, "application/multipart-core"},
  {63, "application/cbor-seq"},
  {96, "application/cose;cose-type=\"cose-encrypt\""},
  {97, "application/cose;cose-type=\"cose-mac\""},
  {98, "application/cose;cose-type=\"cose-sign\""},
  {101, "application/cose-key"},
  {102, "application/cose-key-set"},
  {110, "application/senml+json"},
  {111, "application/sensml+json"},
  {112, "application/senml+cbor"},
  {113, "application/sensml+cbor"},
  {114, "application/senml-exi"},
  {115, "application/sensml-exi"},
  {140, "application/yang-data+cbor;id=sid"},
  {256, "application/coap-group+json"},
  {258, "application/concise-problem-details+cbor"},
  {271, "application/swid+cbor"},
  {280, "application/pkcs7-mime;smime-type=server-generated-key"},
  {281, "application/pkcs7-mime;smime-type=certs-only"},
  {284, "application/pkcs8"},
  {285, "application/csrattrs"},
  {286, "application/pkcs10"},
  {287, "application/pkix-cert"},
  {290, "application/aif+cbor"},
  {291, "application/aif+json"},
  {310, "application/senml+xml"},
  {311, "application/sensml+xml"},
  {320, "application/senml-etch+json"},
  {322, "application/senml-etch+cbor"},
  {340, "application/yang-data+cbor"},
  {341, "application/yang-data+cbor;id=name"},
  {432, "application/td+json"},
  {433, "application/tm+json"},
  {10000, "application/vnd.ocf+cbor"},
  {10001, "application/oscore"},
  {10002, "application/javascript"},
  {11050, "application/json;content-coding=deflate"},
  {11060, "application/cbor;content-coding=deflate"},
  {11542, "application/vnd.oma.lwm2m+tlv"},
  {11543, "application/vnd.oma.lwm2m+json"},
  {11544, "application/vnd.oma.lwm2m+cbor"},
  {20000, "text/css"},
  {30000, "image/svg+xml"},
};

enum { NDEFS = sizeof defs / sizeof defs[0] };

/* Short names people type, as libcoap's coap-client accepts them. */
static const struct ck_cfdef aliases[] = {
  {0, "text"},         {0, "plain"},       {0, "text/plain"},
  {40, "link"},        {41, "xml"},        {42, "octet"},
  {42, "binary"},      {47, "exi"},        {50, "json"},
  {60, "cbor"},        {110, "senml+json"}, {112, "senml+cbor"},
};

const char *ck_cf_name(uint16_t num)
{
  for (size_t i = 0; i < NDEFS; i++)
    if (defs[i].num == num)
      return defs[i].name;
  return NULL;
}

const struct ck_cfdef *ck_cf_def_at(size_t i)
{
  return i < NDEFS ? &defs[i] : NULL;
}

int ck_cf_parse(const char *s, uint16_t *num)
{
  if (s == NULL || num == NULL || *s == '\0')
    return CK_EINVAL;
  if (s[0] >= '0' && s[0] <= '9') {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0')
      return CK_EINVAL;
    if (errno || v > UINT16_MAX)
      return CK_ERANGE;
    *num = (uint16_t)v;
    return 0;
  }
  for (size_t i = 0; i < NDEFS; i++)
    if (strcasecmp(defs[i].name, s) == 0) {
      *num = defs[i].num;
      return 0;
    }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcasecmp(aliases[i].name, s) == 0) {
      *num = aliases[i].num;
      return 0;
    }
  /* The media type alone names the entry without parameters, if any,
   * else the first entry of that type. */
  size_t n = strlen(s);
  for (size_t i = 0; i < NDEFS; i++) {
    const char *semi = strchr(defs[i].name, ';');
    size_t len = semi ? (size_t)(semi - defs[i].name) : strlen(defs[i].name);
    if (len == n && strncasecmp(defs[i].name, s, n) == 0) {
      *num = defs[i].num;
      return 0;
    }
  }
  return CK_ENOTFOUND;
}
