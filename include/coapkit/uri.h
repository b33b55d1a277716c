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
#include "coapkit/export.h"

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
 * percent-encoded as written: decode a literal host with
 * ck_uri_pct_decode() before handing it to inet_pton(). */
struct ck_uri {
  uint8_t scheme;       /* enum ck_scheme */
  bool host_is_literal; /* an IPv4 address (even one written with
                           percent-escapes, "%31.2.3.4") or a bracketed
                           IPv6 literal */
  bool host_is_ipv6;
  bool port_given;       /* the URI names a port ("h:" names none) */
  uint16_t port;         /* the port given, else the scheme's default */
  const char *host;      /* without brackets; IPv6 zones keep "%25" */
  size_t host_len;
  const char *path; /* from the first '/', or empty */
  size_t path_len;
  const char *query; /* after '?', NULL when the URI has no '?' */
  size_t query_len;
};

/* Parses s[0..len) as an absolute coap or coaps URI (scheme in any case).
 * Returns 0, or CK_EURI_SCHEME (no scheme, or not coap/coaps),
 * CK_EURI_FRAGMENT (has '#'), CK_EURI_HOST (no authority, empty host, a
 * malformed IP literal or a character a host cannot hold), CK_EURI_PORT
 * (not digits, or over 65535), CK_EURI_ESCAPE (bad %-escape),
 * CK_EURI_SYNTAX (any other malformation, including userinfo, which CoAP
 * URIs cannot have) or CK_EINVAL (u is NULL, or s is NULL and len > 0).
 * Never reads past len. */
CK_EXPORT int ck_uri_parse(struct ck_uri *u, const char *s, size_t len);

/* Decomposes u into options as RFC 7252 §6.4 requires: Uri-Host unless the
 * host is an IP literal (percent-decoded and lower-cased), Uri-Port unless
 * it is the scheme's default, one Uri-Path per segment after removing "."
 * and ".." segments (RFC 3986 §5.2.4; "%2E" counts as "."), none when the
 * path is then empty or "/", and a trailing "/" giving an empty last
 * segment; one Uri-Query per '&'-separated argument, empty ones included
 * ("?" alone is one empty argument). Values are percent-decoded. They are
 * written to scratch[0..scratch_cap) and the views in opts point there, so
 * scratch must outlive opts. Returns the number of options stored (in
 * option number order), or CK_ENOSPC (opts or scratch too small; the
 * buffers need exactly one entry per option and the sum of the value
 * lengths), CK_EURI_ESCAPE, CK_EURI_TOOLONG (a value over 255 bytes) or
 * CK_EINVAL (u NULL, opts NULL with cap > 0, scratch NULL with
 * scratch_cap > 0, an unknown scheme, an empty host that is not a
 * literal, a host or path view that is NULL with a length, or a path
 * not starting with '/'). */
CK_EXPORT int ck_uri_opts(const struct ck_uri *u, struct ck_opt *opts,
                          size_t cap, uint8_t *scratch, size_t scratch_cap);

/* Parses the NUL-terminated s and adds its options to b, using scratch as
 * ck_uri_opts() does (scratch must outlive b). Returns 0, CK_EINVAL (b or
 * s NULL), an error of ck_uri_parse() or ck_uri_opts(), or
 * CK_EOPT_TOOMANY when b has no room left for the options. Except for a
 * NULL b, the error, like the builder's own errors, is also remembered in
 * b and returned by ck_builder_finish(). */
CK_EXPORT int ck_uri_to_builder(const char *s, struct ck_builder *b,
                                uint8_t *scratch, size_t scratch_cap);

/* Recomposes the URI of request m as RFC 7252 §6.5 describes. secure
 * selects coaps. dest_host (an IP address, IPv6 without brackets and with
 * a zone as "%eth0"; may be NULL when m has a Uri-Host) and dest_port are
 * the request's destination, used when m has no Uri-Host or Uri-Port.
 * The port is left out when it is the scheme's default, and the path is
 * "/" when m has no Uri-Path. Each component keeps the characters §6.5
 * allows it (a path segment: unreserved, sub-delims, ':' and '@'; a query
 * argument: those but '&', and '/' and '?'; a Uri-Host that is not an IP
 * literal: unreserved and sub-delims) and percent-encodes every other
 * byte. Writes a NUL-terminated string to out. Returns its length, or
 * CK_ENOSPC (cap must exceed the length), CK_EURI_HOST (neither Uri-Host
 * nor dest_host, an empty Uri-Host, or an empty dest_host or "[]"),
 * CK_EURI_PORT (Uri-Port over 65535),
 * CK_EURI_SYNTAX (a Uri-Path of "." or "..", which RFC 7252 §5.10.1
 * forbids and no URI can express) or CK_EINVAL (m NULL, out NULL with
 * cap > 0, or dest_host is not an IPv6 address yet has a ':'). */
CK_EXPORT int ck_uri_from_msg(const struct ck_msg *m, bool secure,
                              const char *dest_host, uint16_t dest_port,
                              char *out, size_t cap);

/* Percent-decodes src[0..len) into out (which may equal src); out is not
 * NUL-terminated. Returns the decoded length, CK_EURI_ESCAPE for a
 * malformed escape, CK_ENOSPC, or CK_EINVAL when src is NULL and len > 0
 * or out is NULL and cap > 0. */
CK_EXPORT int ck_uri_pct_decode(const char *src, size_t len, char *out,
                                size_t cap);

#ifdef __cplusplus
}
#endif

#endif
