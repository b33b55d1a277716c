/* CoAP URIs (RFC 7252 §6).
 *
 * ck_uri_parse() splits a coap:// or coaps:// URI into views of its
 * components without copying. ck_uri_opts() decomposes a parsed URI into
 * Uri-Host, Uri-Port, Uri-Path and Uri-Query options exactly as RFC 7252
 * §6.4 describes, and ck_uri_from_msg() recomposes a request's URI from
 * its options as §6.5 describes.
 */
#ifndef COAPKIT_URI_H
#define COAPKIT_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coapkit/error.h"
#include "coapkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CK_PORT_COAP 5683
#define CK_PORT_COAPS 5684

enum ck_scheme {
  CK_SCHEME_COAP,
  CK_SCHEME_COAPS,
};

/* A parsed URI. The string views point into the parsed text and are still
 * percent-encoded as written. */
struct ck_uri {
  uint8_t scheme;       /* enum ck_scheme */
  bool host_is_literal; /* an IPv4 address or a bracketed IP literal */
  bool host_is_ipv6;
  bool port_given;       /* the URI names a port */
  uint16_t port;         /* the port given, else the scheme's default */
  const char *host;      /* without brackets; IPv6 zones keep "%25" */
  size_t host_len;
  const char *path; /* from the first '/', or empty */
  size_t path_len;
  const char *query; /* after '?', NULL when the URI has no '?' */
  size_t query_len;
};

/* Parses s[0..len) as an absolute coap or coaps URI. Returns 0, or
 * CK_EURI_SCHEME (not coap/coaps), CK_EURI_FRAGMENT (has '#'),
 * CK_EURI_HOST, CK_EURI_PORT, CK_EURI_ESCAPE (bad %-escape) or
 * CK_EURI_SYNTAX (any other malformation). Never reads past len. */
int ck_uri_parse(struct ck_uri *u, const char *s, size_t len);

/* Decomposes u into options as RFC 7252 §6.4 requires: Uri-Host unless the
 * host is an IP literal (lower-cased and percent-decoded), Uri-Port unless
 * it is the scheme's default, one Uri-Path per segment after removing "."
 * and ".." segments (none for an empty path or "/"), one Uri-Query per
 * '&'-separated part, each percent-decoded. Option values are written to
 * scratch[0..scratch_cap) and the views in opts point there, so scratch
 * must outlive opts. Returns the number of options stored (in option
 * number order), or CK_ENOSPC (opts or scratch too small),
 * CK_EURI_ESCAPE, CK_EURI_TOOLONG (a value over 255 bytes). */
int ck_uri_opts(const struct ck_uri *u, struct ck_opt *opts, size_t cap,
                uint8_t *scratch, size_t scratch_cap);

/* Parses s and adds its options to b, using scratch as ck_uri_opts() does
 * (scratch must outlive b). Returns 0 or a negative error. */
int ck_uri_to_builder(const char *s, struct ck_builder *b, uint8_t *scratch,
                      size_t scratch_cap);

/* Recomposes the URI of request m as RFC 7252 §6.5 describes. secure
 * selects coaps. dest_host (an IP address, IPv6 without brackets) and
 * dest_port are the request's destination, used when m has no Uri-Host or
 * Uri-Port. Characters outside the unreserved set and the sub-delims
 * allowed in each component are percent-encoded. Writes a NUL-terminated
 * string to out. Returns its length, or CK_ENOSPC. */
int ck_uri_from_msg(const struct ck_msg *m, bool secure, const char *dest_host,
                    uint16_t dest_port, char *out, size_t cap);

/* Percent-decodes src[0..len) into out (which may equal src). Returns the
 * decoded length, CK_EURI_ESCAPE for a malformed escape, or CK_ENOSPC. */
int ck_uri_pct_decode(const char *src, size_t len, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
