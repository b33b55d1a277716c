/* Secure CoAP (coaps://): DTLS 1.2 (RFC 6347) in the three security
 * modes of RFC 7252 §9.1: PreSharedKey, Certificate (X.509) and
 * RawPublicKey (RFC 7250).
 *
 * One struct ck_dtls_config describes the credentials of either side. A
 * server passes it to ck_ctx_listen_dtls(); a client points
 * ck_client_config.dtls at it, and every coaps:// call of that client
 * (observations and block-wise transfers included) then runs over a DTLS
 * session to its server, made on first use and kept until
 * ck_client_disconnect() or ck_client_free(). The library copies what
 * it needs (keys, file contents) when the call that takes the config
 * returns; the config and its strings may be freed afterwards.
 *
 * A handler learns who its authenticated peer is with
 * ck_request_identity() (server.h). Handshake failures reach a client
 * call's final callback as distinct errors (error.h): CK_EDTLS_PSK (a
 * key or identity the server does not share), CK_EDTLS_UNTRUSTED (the
 * server's certificate does not chain to a trust anchor),
 * CK_EDTLS_EXPIRED (it is outside its validity), CK_EDTLS_NAME (it does
 * not name the URI's host), CK_EDTLS_REFUSED (the server refused our
 * certificate, or our lack of one), CK_EDTLS_TIMEOUT (no handshake
 * within handshake_timeout_ms), or CK_EDTLS for any other failure.
 */
#ifndef COAPKIT_DTLS_H
#define COAPKIT_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/addr.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ck_ctx;

/* How a peer authenticated itself (ck_request_identity()). */
enum ck_security {
  CK_SECURITY_NONE = 0, /* plain UDP (coap://) */
  CK_SECURITY_PSK = 1,  /* the identity is the PSK identity */
  CK_SECURITY_CERT = 2, /* the identity is the certificate's subject CN,
                         * or "" when the client presented none */
  CK_SECURITY_RPK = 3,  /* the identity is the SHA-256 fingerprint of
                         * the peer's raw public key, 64 hex digits */
};

/* A server's PSK lookup (RFC 4279 §5): the key of the identity the
 * client sent (identity_len bytes, not NUL-terminated). Writes the key,
 * at most key_cap (64) bytes, into key and returns its length, or
 * returns a negative value for an unknown identity: the handshake then
 * fails with an unknown_psk_identity alert. Called on the loop, during a
 * handshake; it must not block. */
typedef int (*ck_dtls_psk_cb)(void *user, const uint8_t *identity,
                              size_t identity_len, uint8_t *key,
                              size_t key_cap);

/* Credentials and limits. A zero field means "none" or "the default".
 * At least one mode's credentials must be given for a server
 * (ck_ctx_listen_dtls() returns CK_EDTLS_CREDS otherwise); a client
 * with none offers the Certificate mode and verifies the server against
 * ca_file, or the system's trust store when ca_file is NULL. */
struct ck_dtls_config {
  /* PreSharedKey. A client sends psk_identity and proves psk (1 to 64
   * bytes); a server looks keys up with psk_lookup and sends psk_hint
   * (may be NULL) in its ServerKeyExchange. */
  const char *psk_identity;
  const uint8_t *psk;
  size_t psk_len;
  ck_dtls_psk_cb psk_lookup;
  void *psk_user;
  const char *psk_hint;
  /* Certificate: PEM files. cert_file is the chain (own certificate
   * first) and key_file its private key. ca_file holds the trust
   * anchors a client verifies the server against (chain, validity and
   * the URI's host name, RFC 6125) and a server verifies client
   * certificates against. */
  const char *cert_file;
  const char *key_file;
  const char *ca_file;
  /* Server: ask every client for a certificate (or raw public key) and
   * refuse one that sends none or one that ca_file does not trust. */
  bool require_client_cert;
  /* RawPublicKey (RFC 7250): the PEM private key whose public key this
   * side presents. The peer's key is not verified by the library: the
   * application decides whom it trusts by its fingerprint. */
  const char *rpk_key_file;
  /* Server limits. */
  uint32_t max_sessions;    /* established and handshaking, 10000 */
  uint32_t idle_timeout_ms; /* a silent session is dropped, 300000 */
  /* Both sides: a handshake not done in this time fails, 20000 for a
   * client, 10000 for a server. */
  uint32_t handshake_timeout_ms;
};

/* Opens a DTLS endpoint bound to addr (port 0: a free port; coaps' port
 * is 5684) that serves the context's resources to authenticated peers.
 * A ClientHello is answered with a stateless HelloVerifyRequest cookie
 * (RFC 6347 §4.2.1) and no state is kept for a peer until it returns the
 * cookie; sessions are keyed by the peer's address, capped by
 * max_sessions (a new peer beyond it is ignored and logged through the
 * context's log hook) and dropped after idle_timeout_ms of silence.
 * Returns 0, CK_EINVAL (ctx, addr or cfg NULL, or addr neither IPv4 nor
 * IPv6), CK_EDTLS_CREDS (no credentials, or a file that does not load),
 * CK_ENOMEM, or CK_ESYS with errno set. */
CK_EXPORT int ck_ctx_listen_dtls(struct ck_ctx *ctx, const struct ck_addr *addr,
                                 const struct ck_dtls_config *cfg);

/* Counters of a context's DTLS endpoints (ck_ctx_dtls_stats()). */
struct ck_dtls_stats {
  uint64_t sessions;   /* current, both sides */
  uint64_t handshakes; /* completed, resumed ones included */
  uint64_t resumed;    /* handshakes that resumed a session
                        * (RFC 5077 tickets) */
  uint64_t handshakes_failed;
  uint64_t cookies_sent;    /* HelloVerifyRequests */
  uint64_t refused_full;    /* ClientHellos ignored at max_sessions */
  uint64_t expired;         /* sessions dropped for idleness */
  uint64_t records_dropped; /* datagrams that did not decrypt */
};

/* Copies the DTLS counters to *out; does nothing when ctx or out is
 * NULL. */
CK_EXPORT void ck_ctx_dtls_stats(const struct ck_ctx *ctx,
                                 struct ck_dtls_stats *out);

#ifdef __cplusplus
}
#endif

#endif
