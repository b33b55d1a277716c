/* DTLS 1.2 with GnuTLS: the only file of the library that names GnuTLS.
 * dtls.c owns sockets, sessions and timers; here are the credentials of
 * the three security modes of RFC 7252 §9.1 (PreSharedKey, Certificate,
 * RawPublicKey of RFC 7250), a session's handshake and records over the
 * push/pull functions dtls.c lends it, the stateless cookies of RFC 6347
 * §4.2.1, and the translation of GnuTLS's failures into the distinct
 * errors callers see (wrong key, untrusted, expired, wrong name,
 * timeout).
 *
 * Everything is non-blocking: a session is created with GNUTLS_NONBLOCK,
 * its pull function never waits, and the handshake's retransmissions
 * are driven by dtls.c's timer from gnutls_dtls_get_timeout(). */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coapkit/error.h"
#include "dtls.h"

_Static_assert(sizeof(gnutls_dtls_prestate_st) <= CK__TLS_COOKIE_STATE,
               "cookie state too small");

struct ck__tls_creds {
  bool server;
  bool psk, cert, rpk; /* the modes offered */
  bool require_client_cert;
  bool verify_name; /* client: check the server's name (not for RPK) */
  gnutls_psk_client_credentials_t psk_cli;
  gnutls_psk_server_credentials_t psk_srv;
  gnutls_certificate_credentials_t certs;
  gnutls_priority_t prio;
  gnutls_datum_t cookie_key;
  gnutls_datum_t ticket_key; /* server: RFC 5077 session tickets */
  ck_dtls_psk_cb lookup;
  void *lookup_user;
  uint32_t max_sessions, idle_ms, handshake_ms;
};

struct ck__tls {
  gnutls_session_t s;
  bool unknown_id; /* server: the PSK lookup knew no such identity */
  bool enc_hs;     /* the datagram just pulled has an encrypted
                    * handshake record (a Finished) */
  struct ck__tls_creds *cr;
  const struct ck__tls_io *io;
  void *io_ptr;
  /* Application records received through GnuTLS: the highest sequence
   * number and the window below it, handed on by ck__tls_export so that
   * none of them can be replayed afterwards. */
  bool rseen;
  uint64_t rmax, rwin;
};

/* RFC 7252 §9.1.3.1 makes TLS_PSK_WITH_AES_128_CCM_8 mandatory for
 * PreSharedKey and §9.1.3.2/.3 TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 for
 * the others; GnuTLS's NORMAL leaves CCM-8 out, so it is added, with the
 * ECDHE-PSK suites as the modern choice. DTLS 1.2 only. */
static const char PRIO_BASE[] =
    "NORMAL:-VERS-ALL:+VERS-DTLS1.2:+AES-128-CCM-8:+AES-128-CCM";

static ssize_t push_fn(gnutls_transport_ptr_t p, const void *data, size_t len)
{
  struct ck__tls *t = p;
  return t->io->push(t->io_ptr, data, len);
}

static ssize_t pull_fn(gnutls_transport_ptr_t p, void *data, size_t len)
{
  struct ck__tls *t = p;
  ssize_t n = t->io->pull(t->io_ptr, data, len);
  if (n < 0) {
    gnutls_transport_set_errno(t->s, EAGAIN);
    return n;
  }
  /* RFC 6347 §4.1: records one after another, 13-byte headers; type 22
   * (handshake) at an epoch above 0 is the Finished. */
  const uint8_t *b = data;
  for (size_t off = 0; off + 13 <= (size_t)n;
       off += 13 + ((size_t)b[off + 11] << 8 | b[off + 12]))
    if (b[off] == 22 && (b[off + 3] | b[off + 4]))
      t->enc_hs = true;
  return n;
}

static int pull_timeout_fn(gnutls_transport_ptr_t p, unsigned ms)
{
  /* Never waits: with nothing fed in, GnuTLS returns GNUTLS_E_AGAIN and
   * dtls.c calls again from the loop, on a datagram or the timer. */
  (void)ms;
  struct ck__tls *t = p;
  return t->io->pending(t->io_ptr);
}

static int psk_lookup_fn(gnutls_session_t s, const gnutls_datum_t *user,
                         gnutls_datum_t *key)
{
  struct ck__tls *t = gnutls_session_get_ptr(s);
  uint8_t k[CK__DTLS_KEY_MAX];
  if (!t || !t->cr->lookup)
    return -1;
  int n = user->size > CK__DTLS_ID_MAX
              ? -1
              : t->cr->lookup(t->cr->lookup_user, user->data, user->size, k,
                              sizeof k);
  if (n <= 0 || n > (int)sizeof k) {
    t->unknown_id = true;
    return -1;
  }
  key->data = gnutls_malloc((size_t)n);
  if (!key->data)
    return -1;
  memcpy(key->data, k, (size_t)n);
  key->size = (unsigned)n;
  gnutls_memset(k, 0, sizeof k);
  return 0;
}

/* RFC 7250: the public key presented is the one of the private key the
 * user names, so only one file is asked for. */
static int load_rpk(gnutls_certificate_credentials_t c, const char *file)
{
  gnutls_datum_t priv = {NULL, 0}, pub = {NULL, 0};
  gnutls_privkey_t pk = NULL;
  gnutls_pubkey_t pubk = NULL;
  int rc = CK_EDTLS_CREDS;
  if (gnutls_load_file(file, &priv) < 0 || gnutls_privkey_init(&pk) < 0 ||
      gnutls_privkey_import_x509_raw(pk, &priv, GNUTLS_X509_FMT_PEM, NULL, 0) <
          0 ||
      gnutls_pubkey_init(&pubk) < 0 ||
      gnutls_pubkey_import_privkey(pubk, pk, 0, 0) < 0 ||
      gnutls_pubkey_export2(pubk, GNUTLS_X509_FMT_PEM, &pub) < 0)
    goto out;
  if (gnutls_certificate_set_rawpk_key_mem(c, &pub, &priv, GNUTLS_X509_FMT_PEM,
                                           NULL, 0, NULL, 0, 0) >= 0)
    rc = 0;
out:
  if (pubk)
    gnutls_pubkey_deinit(pubk);
  if (pk)
    gnutls_privkey_deinit(pk);
  if (priv.data) {
    gnutls_memset(priv.data, 0, priv.size);
    gnutls_free(priv.data);
  }
  gnutls_free(pub.data);
  return rc;
}

static int load_certs(struct ck__tls_creds *cr, const struct ck_dtls_config *c)
{
  if (gnutls_certificate_allocate_credentials(&cr->certs) < 0)
    return CK_ENOMEM;
  if (c->rpk_key_file) {
    if (load_rpk(cr->certs, c->rpk_key_file) < 0)
      return CK_EDTLS_CREDS;
    cr->rpk = true;
  }
  if (c->cert_file || c->key_file) {
    if (!c->cert_file || !c->key_file ||
        gnutls_certificate_set_x509_key_file(
            cr->certs, c->cert_file, c->key_file, GNUTLS_X509_FMT_PEM) < 0)
      return CK_EDTLS_CREDS;
    cr->cert = true;
  }
  if (c->ca_file) {
    if (gnutls_certificate_set_x509_trust_file(cr->certs, c->ca_file,
                                               GNUTLS_X509_FMT_PEM) <= 0)
      return CK_EDTLS_CREDS;
  } else if (!cr->server && !cr->rpk) {
    /* A client without anchors of its own trusts what the system does;
     * a host without a store simply trusts no certificate. */
    (void)gnutls_certificate_set_x509_system_trust(cr->certs);
  }
  return 0;
}

static int build_priority(struct ck__tls_creds *cr)
{
  char p[256];
  /* A client offers only the key exchanges it has credentials for, so
   * that a server never picks one the client cannot finish. */
  const char *kx = "";
  if (cr->psk && !cr->cert && !cr->rpk)
    kx = ":-KX-ALL:+PSK:+ECDHE-PSK";
  else if (cr->psk)
    kx = ":+PSK:+ECDHE-PSK";
  const char *ctype =
      cr->rpk ? ":-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK" : "";
  int n = snprintf(p, sizeof p, "%s%s%s", PRIO_BASE, kx, ctype);
  if (n < 0 || (size_t)n >= sizeof p)
    return CK_EDTLS_CREDS;
  return gnutls_priority_init2(&cr->prio, p, NULL, 0) < 0 ? CK_EDTLS_CREDS : 0;
}

int ck__tls_creds_new(const struct ck_dtls_config *c, bool server,
                      struct ck__tls_creds **out)
{
  struct ck_dtls_config none = {0};
  if (!c)
    c = &none;
  struct ck__tls_creds *cr = calloc(1, sizeof *cr);
  if (!cr)
    return CK_ENOMEM;
  cr->server = server;
  cr->require_client_cert = server && c->require_client_cert;
  cr->max_sessions = c->max_sessions ? c->max_sessions : 10000;
  cr->idle_ms = c->idle_timeout_ms ? c->idle_timeout_ms : 300000;
  cr->handshake_ms = c->handshake_timeout_ms ? c->handshake_timeout_ms
                     : server                ? 10000
                                             : 20000;
  int rc = CK_EDTLS_CREDS;
  if (server && c->psk_lookup) {
    if (gnutls_psk_allocate_server_credentials(&cr->psk_srv) < 0)
      goto fail;
    gnutls_psk_set_server_credentials_function2(cr->psk_srv, psk_lookup_fn);
    if (c->psk_hint &&
        gnutls_psk_set_server_credentials_hint(cr->psk_srv, c->psk_hint) < 0)
      goto fail;
    cr->lookup = c->psk_lookup;
    cr->lookup_user = c->psk_user;
    cr->psk = true;
  } else if (!server && (c->psk || c->psk_identity)) {
    gnutls_datum_t key = {(unsigned char *)(uintptr_t)c->psk,
                          (unsigned)c->psk_len};
    if (!c->psk || !c->psk_identity || !c->psk_len ||
        c->psk_len > CK__DTLS_KEY_MAX ||
        strlen(c->psk_identity) > CK__DTLS_ID_MAX ||
        gnutls_psk_allocate_client_credentials(&cr->psk_cli) < 0 ||
        gnutls_psk_set_client_credentials(cr->psk_cli, c->psk_identity, &key,
                                          GNUTLS_PSK_KEY_RAW) < 0)
      goto fail;
    cr->psk = true;
  }
  bool want_certs = c->cert_file || c->key_file || c->rpk_key_file ||
                    c->ca_file || (!server && !cr->psk);
  if (want_certs && (rc = load_certs(cr, c)) < 0)
    goto fail;
  rc = CK_EDTLS_CREDS;
  if (server && !cr->psk && !cr->cert && !cr->rpk)
    goto fail;
  if (server && cr->require_client_cert && !c->ca_file && !cr->rpk)
    goto fail; /* nothing to verify client certificates against */
  if (!server && !cr->psk && !cr->rpk)
    cr->cert = true; /* verifies the server's certificate */
  cr->verify_name = !server && !cr->rpk;
  if ((rc = build_priority(cr)) < 0)
    goto fail;
  if (server &&
      (gnutls_key_generate(&cr->cookie_key, GNUTLS_COOKIE_KEY_SIZE) < 0 ||
       gnutls_session_ticket_key_generate(&cr->ticket_key) < 0)) {
    rc = CK_ENOMEM;
    goto fail;
  }
  *out = cr;
  return 0;
fail:
  ck__tls_creds_free(cr);
  return rc;
}

void ck__tls_creds_free(struct ck__tls_creds *cr)
{
  if (!cr)
    return;
  if (cr->psk_cli)
    gnutls_psk_free_client_credentials(cr->psk_cli);
  if (cr->psk_srv)
    gnutls_psk_free_server_credentials(cr->psk_srv);
  if (cr->certs)
    gnutls_certificate_free_credentials(cr->certs);
  if (cr->prio)
    gnutls_priority_deinit(cr->prio);
  gnutls_datum_t *keys[2] = {&cr->cookie_key, &cr->ticket_key};
  for (int i = 0; i < 2; i++)
    if (keys[i]->data) {
      gnutls_memset(keys[i]->data, 0, keys[i]->size);
      gnutls_free(keys[i]->data);
    }
  free(cr);
}

void ck__tls_limits(const struct ck__tls_creds *cr, uint32_t *max_sessions,
                    uint32_t *idle_ms, uint32_t *handshake_ms)
{
  *max_sessions = cr->max_sessions;
  *idle_ms = cr->idle_ms;
  *handshake_ms = cr->handshake_ms;
}

int ck__tls_new(struct ck__tls_creds *cr, bool server,
                const struct ck__tls_start *st, const struct ck__tls_io *io,
                void *io_ptr, struct ck__tls **out)
{
  const char *name = st->name;
  struct ck__tls *t = calloc(1, sizeof *t);
  if (!t)
    return CK_ENOMEM;
  t->cr = cr;
  t->io = io;
  t->io_ptr = io_ptr;
  unsigned flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_DATAGRAM |
                   GNUTLS_NONBLOCK | (cr->rpk ? GNUTLS_ENABLE_RAWPK : 0);
  if (gnutls_init(&t->s, flags) < 0) {
    free(t);
    return CK_ENOMEM;
  }
  gnutls_session_t s = t->s;
  int rc = gnutls_priority_set(s, cr->prio);
  if (rc >= 0 && cr->psk_srv)
    rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, cr->psk_srv);
  if (rc >= 0 && cr->psk_cli)
    rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, cr->psk_cli);
  if (rc >= 0 && cr->certs)
    rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cr->certs);
  if (rc < 0) {
    ck__tls_free(t);
    return CK_EDTLS;
  }
  gnutls_session_set_ptr(s, t);
  gnutls_transport_set_ptr(s, t);
  gnutls_transport_set_push_function(s, push_fn);
  gnutls_transport_set_pull_function(s, pull_fn);
  gnutls_transport_set_pull_timeout_function(s, pull_timeout_fn);
  gnutls_dtls_set_mtu(s, CK__DTLS_MTU);
  /* RFC 6347 §4.2.4.1: start at 1 s, double per flight; the whole
   * handshake is bounded by the configured time. */
  gnutls_dtls_set_timeouts(s, 1000, cr->handshake_ms);
  if (server) {
    gnutls_dtls_prestate_set(
        s, (gnutls_dtls_prestate_st *)(uintptr_t)st->cookie_state);
    /* Stateless resumption (RFC 5077): a client that comes back skips
     * the key exchange, and the server keeps nothing for it meanwhile. */
    (void)gnutls_session_ticket_enable_server(s, &cr->ticket_key);
    if (cr->require_client_cert) {
      gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
      if (!cr->rpk)
        gnutls_session_set_verify_cert(s, NULL, 0);
    } else if (cr->cert || cr->rpk) {
      /* Ask, so that a client that has a certificate can be named. */
      gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
    }
  } else if (st->resume && st->resume_len) {
    /* A ticket GnuTLS will not take, or the server no longer honours,
     * just means a full handshake. */
    (void)gnutls_session_set_data(s, st->resume, st->resume_len);
  }
  if (!server && cr->cert && cr->verify_name) {
    gnutls_session_set_verify_cert(s, name, 0);
    if (name && name[0] && !strchr(name, ':') &&
        strspn(name, "0123456789.") != strlen(name))
      (void)gnutls_server_name_set(s, GNUTLS_NAME_DNS, name, strlen(name));
  }
  *out = t;
  return 0;
}

bool ck__tls_resumed(struct ck__tls *t)
{
  return gnutls_session_is_resumed(t->s) != 0;
}

int ck__tls_ticket(struct ck__tls *t, uint8_t **data, size_t *len)
{
  gnutls_datum_t d = {NULL, 0};
  if (gnutls_session_get_data2(t->s, &d) < 0 || !d.data || !d.size)
    return CK_ENOTFOUND;
  *data = malloc(d.size);
  if (*data) {
    memcpy(*data, d.data, d.size);
    *len = d.size;
  }
  gnutls_free(d.data);
  return *data ? 0 : CK_ENOMEM;
}

void ck__tls_free(struct ck__tls *t)
{
  if (!t)
    return;
  gnutls_deinit(t->s);
  free(t);
}

static bool kx_is_psk(gnutls_session_t s)
{
  gnutls_kx_algorithm_t kx = gnutls_kx_get(s);
  return kx == GNUTLS_KX_PSK || kx == GNUTLS_KX_ECDHE_PSK ||
         kx == GNUTLS_KX_DHE_PSK || kx == GNUTLS_KX_RSA_PSK;
}

/* The distinct reasons of issue 10: what went wrong, not just that. */
static int map_error(struct ck__tls *t, int e)
{
  gnutls_session_t s = t->s;
  if (e == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ||
      e == GNUTLS_E_CERTIFICATE_ERROR) {
    unsigned st = gnutls_session_get_verify_cert_status(s);
    if (st & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED))
      return CK_EDTLS_EXPIRED;
    if (st & GNUTLS_CERT_UNEXPECTED_OWNER)
      return CK_EDTLS_NAME;
    return CK_EDTLS_UNTRUSTED;
  }
  if (e == GNUTLS_E_NO_CERTIFICATE_FOUND)
    return CK_EDTLS_UNTRUSTED;
  /* A PSK server that refuses our Finished, with silence (GnuTLS drops
   * a record it cannot decrypt, RFC 6347 §4.1.2.7) or with an alert it
   * sends in the clear (libcoap), does not share our key: RFC 4279 §2
   * leaves the alert optional, so this is how a wrong key shows. */
  if (!t->cr->server && kx_is_psk(s) &&
      gnutls_handshake_get_last_in(s) == GNUTLS_HANDSHAKE_SERVER_HELLO_DONE &&
      (e == GNUTLS_E_TIMEDOUT || e == GNUTLS_E_UNEXPECTED_PACKET ||
       e == GNUTLS_E_FATAL_ALERT_RECEIVED || e == GNUTLS_E_DECRYPTION_FAILED))
    return CK_EDTLS_PSK;
  if (e == GNUTLS_E_TIMEDOUT)
    return CK_EDTLS_TIMEOUT;
  if (e == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    switch (gnutls_alert_get(s)) {
    case GNUTLS_A_UNKNOWN_PSK_IDENTITY:
      return CK_EDTLS_PSK;
    case GNUTLS_A_DECRYPT_ERROR:
    case GNUTLS_A_BAD_RECORD_MAC:
    case GNUTLS_A_DECRYPTION_FAILED:
      return kx_is_psk(s) || t->cr->psk ? CK_EDTLS_PSK : CK_EDTLS;
    /* An alert about a certificate is about ours (or its absence,
     * when the peer requires one): not the same as distrusting the
     * peer's. */
    case GNUTLS_A_CERTIFICATE_EXPIRED:
    case GNUTLS_A_BAD_CERTIFICATE:
    case GNUTLS_A_UNKNOWN_CA:
    case GNUTLS_A_CERTIFICATE_UNKNOWN:
    case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
    case GNUTLS_A_CERTIFICATE_REVOKED:
    case GNUTLS_A_ACCESS_DENIED:
      return CK_EDTLS_REFUSED;
    default:
      return CK_EDTLS;
    }
  }
  if (e == GNUTLS_E_DECRYPTION_FAILED || e == GNUTLS_E_ERROR_IN_FINISHED_PACKET)
    return kx_is_psk(s) ? CK_EDTLS_PSK : CK_EDTLS;
  return CK_EDTLS;
}

int ck__tls_handshake(struct ck__tls *t, unsigned *next_ms)
{
  gnutls_session_t s = t->s;
  unsigned discarded = gnutls_record_get_discarded(s);
  t->enc_hs = false;
  int e = gnutls_handshake(s);
  if (e == GNUTLS_E_SUCCESS)
    return 1;
  if (e == GNUTLS_E_AGAIN || e == GNUTLS_E_INTERRUPTED ||
      e == GNUTLS_E_WARNING_ALERT_RECEIVED || !gnutls_error_is_fatal(e)) {
    /* A PSK server that cannot decrypt the client's Finished drops it
     * (RFC 6347 §4.1.2.7) and would wait out the handshake's time; the
     * key differs, so say so at once with decrypt_error (RFC 4279 §2),
     * which the client can tell from silence. */
    /* Only a Finished that did not decrypt says so: a datagram the
     * network duplicated is discarded too (a replay), and is no sign. */
    if (t->cr->server && kx_is_psk(s) && t->enc_hs &&
        gnutls_record_get_discarded(s) > discarded &&
        gnutls_handshake_get_last_in(s) ==
            GNUTLS_HANDSHAKE_CLIENT_KEY_EXCHANGE) {
      (void)gnutls_alert_send(s, GNUTLS_AL_FATAL,
                              t->unknown_id ? GNUTLS_A_UNKNOWN_PSK_IDENTITY
                                            : GNUTLS_A_DECRYPT_ERROR);
      return CK_EDTLS_PSK;
    }
    *next_ms = gnutls_dtls_get_timeout(s);
    return 0;
  }
  int rc = map_error(t, e);
  if (t->unknown_id) {
    (void)gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_UNKNOWN_PSK_IDENTITY);
    return CK_EDTLS_PSK;
  }
  if (rc == CK_EDTLS_UNTRUSTED || rc == CK_EDTLS_EXPIRED ||
      rc == CK_EDTLS_NAME) {
    /* GnuTLS's choice for a missing client certificate is a bare
     * handshake_failure; name the certificate, as libcoap does, so the
     * peer can tell (RFC 5246 §7.2.2). */
    (void)gnutls_alert_send(s, GNUTLS_AL_FATAL,
                            rc == CK_EDTLS_EXPIRED
                                ? GNUTLS_A_CERTIFICATE_EXPIRED
                                : GNUTLS_A_BAD_CERTIFICATE);
  } else if (e != GNUTLS_E_TIMEDOUT && e != GNUTLS_E_FATAL_ALERT_RECEIVED) {
    (void)gnutls_alert_send_appropriate(s, e);
  }
  return rc;
}

int ck__tls_timed_out(struct ck__tls *t)
{
  return map_error(t, GNUTLS_E_TIMEDOUT);
}

static void window_mark(struct ck__tls *t, const uint8_t seq[8])
{
  uint64_t q = 0;
  for (int i = 2; i < 8; i++)
    q = q << 8 | seq[i];
  if (!t->rseen || q > t->rmax) {
    uint64_t d = t->rseen ? q - t->rmax : 64;
    t->rwin = (d >= 64 ? 0 : t->rwin << d) | 1;
    t->rmax = q;
    t->rseen = true;
  } else if (t->rmax - q < 64) {
    t->rwin |= (uint64_t)1 << (t->rmax - q);
  }
}

int ck__tls_recv(struct ck__tls *t, uint8_t *buf, size_t cap)
{
  uint8_t seq[8];
  ssize_t n = gnutls_record_recv_seq(t->s, buf, cap, seq);
  if (n > 0)
    window_mark(t, seq);
  if (n >= 0)
    return n == 0 ? CK_ERESET : (int)n;
  if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
    return 0;
  if (n == GNUTLS_E_REHANDSHAKE) {
    /* RFC 7925 §17: no renegotiation for constrained devices. */
    (void)gnutls_alert_send(t->s, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
    return CK_ENOTFOUND;
  }
  if (n == GNUTLS_E_FATAL_ALERT_RECEIVED)
    return CK_ERESET;
  if (!gnutls_error_is_fatal((int)n))
    return CK_ENOTFOUND;
  return CK_EDTLS;
}

bool ck__tls_more(struct ck__tls *t)
{
  return gnutls_record_check_pending(t->s) > 0;
}

int ck__tls_send(struct ck__tls *t, const uint8_t *buf, size_t len)
{
  ssize_t n = gnutls_record_send(t->s, buf, len);
  return n == (ssize_t)len ? 0 : CK_ESYS;
}

void ck__tls_bye(struct ck__tls *t)
{
  (void)gnutls_bye(t->s, GNUTLS_SHUT_WR);
}

static void hex(const uint8_t *b, size_t n, char *out, size_t cap)
{
  static const char d[] = "0123456789abcdef";
  size_t i = 0;
  for (; i < n && 2 * i + 2 < cap; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * i] = '\0';
}

enum ck_security ck__tls_identity(struct ck__tls *t, char *id, size_t cap)
{
  gnutls_session_t s = t->s;
  id[0] = '\0';
  if (kx_is_psk(s)) {
    gnutls_datum_t u = {NULL, 0};
    if (t->cr->server && gnutls_psk_server_get_username2(s, &u) == 0 &&
        u.data) {
      size_t n = u.size < cap - 1 ? u.size : cap - 1;
      memcpy(id, u.data, n);
      id[n] = '\0';
    } else if (!t->cr->server) {
      /* The server's identity hint (RFC 4279 §5.2), if it sent one. */
      const char *hint = gnutls_psk_client_get_hint(s);
      if (hint)
        snprintf(id, cap, "%s", hint);
    }
    return CK_SECURITY_PSK;
  }
  unsigned n = 0;
  const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
  if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) == GNUTLS_CRT_RAWPK) {
    uint8_t fp[32];
    if (peers && n > 0 &&
        gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size, fp) ==
            0)
      hex(fp, sizeof fp, id, cap);
    return CK_SECURITY_RPK;
  }
  gnutls_x509_crt_t crt;
  if (peers && n > 0 && gnutls_x509_crt_init(&crt) == 0) {
    size_t len = cap;
    if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
                                      id, &len) < 0)
      id[0] = '\0';
    gnutls_x509_crt_deinit(crt);
  }
  return CK_SECURITY_CERT;
}

int ck__tls_cookie(struct ck__tls_creds *cr, const struct ck_addr *peer,
                   const uint8_t *buf, size_t len, void *state,
                   const struct ck__tls_io *io, void *io_ptr)
{
  /* Only a ClientHello (record type 22, epoch 0, handshake type 1) is
   * answered: anything else from an unknown peer is dropped unanswered,
   * so a spoofed source gets nothing back and we keep nothing. */
  if (len < 25 || buf[0] != 22 || buf[3] != 0 || buf[4] != 0 || buf[13] != 1)
    return CK_EINVAL;
  gnutls_dtls_prestate_st *ps = state;
  memset(ps, 0, sizeof *ps);
  if (gnutls_dtls_cookie_verify(&cr->cookie_key, (void *)(uintptr_t)&peer->u,
                                peer->len, (void *)(uintptr_t)buf, len,
                                ps) == 0)
    return 0;
  struct ck__tls tmp = {.cr = cr, .io = io, .io_ptr = io_ptr};
  (void)gnutls_dtls_cookie_send(&cr->cookie_key, (void *)(uintptr_t)&peer->u,
                                peer->len, ps, &tmp, push_fn);
  return CK_ENOTFOUND;
}

/* --- the record state, for dtls_rec.c --- */

static const struct {
  gnutls_cipher_algorithm_t g;
  enum ck__aead a;
  uint8_t key_len, tag_len;
} AEADS[] = {
    {GNUTLS_CIPHER_AES_128_GCM, CK__AEAD_AES_128_GCM, 16, 16},
    {GNUTLS_CIPHER_AES_256_GCM, CK__AEAD_AES_256_GCM, 32, 16},
    {GNUTLS_CIPHER_AES_128_CCM, CK__AEAD_AES_128_CCM, 16, 16},
    {GNUTLS_CIPHER_AES_256_CCM, CK__AEAD_AES_256_CCM, 32, 16},
    {GNUTLS_CIPHER_AES_128_CCM_8, CK__AEAD_AES_128_CCM_8, 16, 8},
    {GNUTLS_CIPHER_AES_256_CCM_8, CK__AEAD_AES_256_CCM_8, 32, 8},
    {GNUTLS_CIPHER_CHACHA20_POLY1305, CK__AEAD_CHACHA20_POLY1305, 32, 16},
};

static uint64_t seq48(const unsigned char b[8])
{
  uint64_t q = 0;
  for (int i = 2; i < 8; i++)
    q = q << 8 | b[i];
  return q;
}

int ck__tls_export(struct ck__tls *t, struct ck__rec_keys *k)
{
  gnutls_cipher_algorithm_t c = gnutls_cipher_get(t->s);
  unsigned i = 0;
  while (i < sizeof AEADS / sizeof AEADS[0] && AEADS[i].g != c)
    i++;
  if (i == sizeof AEADS / sizeof AEADS[0])
    return CK_ENOTFOUND;
  memset(k, 0, sizeof *k);
  k->aead = (uint8_t)AEADS[i].a;
  k->key_len = AEADS[i].key_len;
  k->tag_len = AEADS[i].tag_len;
  /* RFC 5288 §3 / RFC 6655 §3: the implicit part of the nonce is the
   * 4-byte "salt" GnuTLS keeps as the IV; the explicit part travels in
   * each record. RFC 7905 §2: ChaCha20-Poly1305's IV is 12 bytes. For
   * DTLS the sequence number's top two bytes are the epoch. */
  size_t ivlen = k->aead == CK__AEAD_CHACHA20_POLY1305 ? 12 : 4;
  for (unsigned dir = 0; dir < 2; dir++) {
    gnutls_datum_t iv = {NULL, 0}, key = {NULL, 0};
    unsigned char seq[8];
    if (gnutls_record_get_state(t->s, dir, NULL, &iv, &key, seq) < 0 ||
        key.size != k->key_len || iv.size < ivlen)
      return CK_ENOTFOUND;
    memcpy(dir ? k->rkey : k->wkey, key.data, key.size);
    memcpy(dir ? k->riv : k->wiv, iv.data, ivlen);
    if (!dir) {
      k->epoch = (uint16_t)(seq[0] << 8 | seq[1]);
      k->wseq = seq48(seq);
    }
  }
  k->rmax = t->rseen ? t->rmax : 0;
  k->rwin = t->rseen ? t->rwin : 0;
  return 0;
}

struct ck__aead_hd {
  gnutls_aead_cipher_hd_t h;
};

int ck__aead_new(enum ck__aead a, const uint8_t *key, size_t key_len,
                 struct ck__aead_hd **out)
{
  unsigned i = 0;
  while (i < sizeof AEADS / sizeof AEADS[0] && AEADS[i].a != a)
    i++;
  if (i == sizeof AEADS / sizeof AEADS[0] || key_len != AEADS[i].key_len)
    return CK_EDTLS;
  struct ck__aead_hd *h = malloc(sizeof *h);
  if (!h)
    return CK_ENOMEM;
  gnutls_datum_t k = {(unsigned char *)(uintptr_t)key, (unsigned)key_len};
  if (gnutls_aead_cipher_init(&h->h, AEADS[i].g, &k) < 0) {
    free(h);
    return CK_ENOMEM;
  }
  *out = h;
  return 0;
}

void ck__aead_free(struct ck__aead_hd *h)
{
  if (!h)
    return;
  gnutls_aead_cipher_deinit(h->h);
  free(h);
}

int ck__aead_seal(struct ck__aead_hd *h, const uint8_t nonce[12],
                  const uint8_t ad[13], size_t tag_len, const uint8_t *in,
                  size_t len, uint8_t *out, size_t cap)
{
  size_t n = cap;
  if (gnutls_aead_cipher_encrypt(h->h, nonce, 12, ad, 13, tag_len, in, len,
                                 out, &n) < 0)
    return CK_EDTLS;
  return (int)n;
}

int ck__aead_open(struct ck__aead_hd *h, const uint8_t nonce[12],
                  const uint8_t ad[13], size_t tag_len, const uint8_t *in,
                  size_t len, uint8_t *out, size_t cap)
{
  size_t n = cap;
  if (gnutls_aead_cipher_decrypt(h->h, nonce, 12, ad, 13, tag_len, in, len,
                                 out, &n) < 0)
    return CK_EDTLS;
  return (int)n;
}
