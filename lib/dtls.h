/* The DTLS transport's two halves and what the rest of the library asks
 * of it. dtls.c is the transport (struct ck__transport): the socket,
 * sessions keyed by peer address, cookies before state, timers, queues;
 * it knows no GnuTLS name. dtls_gnutls.c is the one file that speaks
 * GnuTLS: credentials, a session's handshake and records, and the
 * mapping of GnuTLS's errors onto ours. Internal to libcoapkit. */
#ifndef CK_DTLS_H
#define CK_DTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "coapkit/dtls.h"
#include "transport.h"

/* Longest PSK identity and key kept (RFC 4279 §5.3 allows 2^16 - 1 for
 * an identity; CoAP devices use short ones), and the largest record a
 * session sends. */
enum { CK__DTLS_ID_MAX = 128, CK__DTLS_KEY_MAX = 64, CK__DTLS_MTU = 1400 };

/* --- dtls_gnutls.c --- */

struct ck__tls_creds;
struct ck__tls;

/* Loads the credentials of cfg for one side. Returns 0, CK_EDTLS_CREDS
 * (nothing usable for a server, or a file that does not load) or
 * CK_ENOMEM. */
int ck__tls_creds_new(const struct ck_dtls_config *cfg, bool server,
                      struct ck__tls_creds **out);
void ck__tls_creds_free(struct ck__tls_creds *cr);

/* What a session needs from dtls.c: its datagram I/O. */
struct ck__tls_io {
  /* Sends one datagram; returns len, or -1 with errno (EAGAIN...). */
  ssize_t (*push)(void *io, const void *data, size_t len);
  /* Copies the datagram being fed in (once); -1 with EAGAIN if none. */
  ssize_t (*pull)(void *io, void *data, size_t len);
  /* 1 when a datagram is being fed in, else 0. */
  int (*pending)(void *io);
};

/* How a session starts. A server session is made from a datagram whose
 * cookie verified (cookie_state: what ck__tls_cookie kept); a client
 * session verifies the server's certificate against name (NULL: no
 * name check; it must outlive the session) and offers to resume the
 * session whose ticket is in resume (resume_len bytes, or none). */
struct ck__tls_start {
  const void *cookie_state;
  const char *name;
  const uint8_t *resume;
  size_t resume_len;
};

/* Starts a session. Returns 0, CK_ENOMEM or CK_EDTLS. */
int ck__tls_new(struct ck__tls_creds *cr, bool server,
                const struct ck__tls_start *st, const struct ck__tls_io *io,
                void *io_ptr, struct ck__tls **out);

/* After the handshake: whether it resumed a session, and (client) the
 * ticket to resume this one with later, in a malloc'd buffer the caller
 * frees. Returns 0 or CK_ENOTFOUND (nothing to save). */
bool ck__tls_resumed(struct ck__tls *t);
int ck__tls_ticket(struct ck__tls *t, uint8_t **data, size_t *len);
void ck__tls_free(struct ck__tls *t);

/* Advances the handshake. Returns 1 when done, 0 when it waits for a
 * datagram or a timer (*next_ms: when ck__tls_handshake should be
 * called again), or a negative CK_EDTLS... error (an alert has been
 * sent to the peer). */
int ck__tls_handshake(struct ck__tls *t, unsigned *next_ms);

/* The handshake ran out of time: the error to report (CK_EDTLS_TIMEOUT,
 * or CK_EDTLS_PSK when a PSK server went silent after our Finished). */
int ck__tls_timed_out(struct ck__tls *t);

/* Decrypts the next record of the datagram being fed in. Returns its
 * length (0: an empty record or none left), CK_ENOTFOUND when the
 * record was dropped (bad MAC, replay), CK_ERESET when the peer closed
 * the session, or another negative error that ends it. */
int ck__tls_recv(struct ck__tls *t, uint8_t *buf, size_t cap);

/* Whether more decrypted records wait (a datagram may hold several). */
bool ck__tls_more(struct ck__tls *t);

/* Encrypts and sends one record. Returns 0 or a negative error. */
int ck__tls_send(struct ck__tls *t, const uint8_t *buf, size_t len);

/* Sends close_notify, best effort. */
void ck__tls_bye(struct ck__tls *t);

/* The authenticated peer, once the handshake is done: its mode and an
 * identity written into id (NUL-terminated, see ck_request_identity). */
enum ck_security ck__tls_identity(struct ck__tls *t, char *id, size_t cap);

/* An established session's record state (RFC 6347 §4.1), taken out of
 * GnuTLS so that a server can free the GnuTLS session and run the
 * record layer itself (dtls_rec.c): the suite's AEAD, each direction's
 * key and implicit nonce (salt), the epoch, the next sequence number to
 * send and the anti-replay window of what was received. */
enum ck__aead {
  CK__AEAD_NONE,
  CK__AEAD_AES_128_GCM,
  CK__AEAD_AES_256_GCM,
  CK__AEAD_AES_128_CCM,
  CK__AEAD_AES_256_CCM,
  CK__AEAD_AES_128_CCM_8,
  CK__AEAD_AES_256_CCM_8,
  CK__AEAD_CHACHA20_POLY1305,
};

struct ck__rec_keys {
  uint8_t aead; /* enum ck__aead */
  uint8_t key_len, tag_len;
  uint16_t epoch;
  uint64_t wseq; /* the next record's 48-bit sequence number */
  uint64_t rmax; /* the highest sequence number received */
  uint64_t rwin; /* bit i: rmax - i was received (RFC 6347 §4.1.2.6) */
  uint8_t wkey[32], rkey[32];
  /* AES: the 4-byte salt; ChaCha20-Poly1305 (RFC 7905 §2): the 12-byte
   * IV the sequence number is XORed into, with no explicit nonce. */
  uint8_t wiv[12], riv[12];
};

/* Server, after the handshake: fills k when the suite is one dtls_rec.c
 * runs (AES-GCM, AES-CCM, AES-CCM-8, ChaCha20-Poly1305; RFC 5288,
 * RFC 6655, RFC 7905). Returns 0, or
 * CK_ENOTFOUND for any other suite (the session stays with GnuTLS). */
int ck__tls_export(struct ck__tls *t, struct ck__rec_keys *k);

/* An initialised AEAD cipher (one key). new returns 0, CK_ENOMEM or
 * CK_EDTLS. seal writes len bytes of ciphertext and tag_len of tag to
 * out; open takes len bytes of ciphertext with its tag and writes the
 * plaintext to out; both return the bytes written or CK_EDTLS (for
 * open: the record does not authenticate). */
struct ck__aead_hd;
int ck__aead_new(enum ck__aead a, const uint8_t *key, size_t key_len,
                 struct ck__aead_hd **out);
void ck__aead_free(struct ck__aead_hd *h);
int ck__aead_seal(struct ck__aead_hd *h, const uint8_t nonce[12],
                  const uint8_t ad[13], size_t tag_len, const uint8_t *in,
                  size_t len, uint8_t *out, size_t cap);
int ck__aead_open(struct ck__aead_hd *h, const uint8_t nonce[12],
                  const uint8_t ad[13], size_t tag_len, const uint8_t *in,
                  size_t len, uint8_t *out, size_t cap);

/* Stateless cookies (RFC 6347 §4.2.1). verify returns 0 when the
 * ClientHello in buf carries our cookie for peer, and fills state (of
 * CK__TLS_COOKIE_STATE bytes) for ck__tls_new; otherwise sends a
 * HelloVerifyRequest through push and returns CK_ENOTFOUND (or
 * CK_EINVAL for a datagram that is no ClientHello, answered nothing). */
enum { CK__TLS_COOKIE_STATE = 64 };
int ck__tls_cookie(struct ck__tls_creds *cr, const struct ck_addr *peer,
                   const uint8_t *buf, size_t len, void *state,
                   const struct ck__tls_io *io, void *io_ptr);

/* The limits of the credentials' config, defaults filled in. */
void ck__tls_limits(const struct ck__tls_creds *cr, uint32_t *max_sessions,
                    uint32_t *idle_ms, uint32_t *handshake_ms);

/* --- dtls_rec.c --- */

/* A session's record layer once GnuTLS is gone: its keys and its slot
 * in the endpoint's cache of initialised ciphers (-1: none). */
struct ck__rec {
  struct ck__rec_keys k;
  int16_t slot;
};

/* The cipher handles of the sessions in use, at most n of them, least
 * recently used evicted: an idle session keeps only its raw keys. */
struct ck__rec_cache;
int ck__rec_cache_new(unsigned n, struct ck__rec_cache **out);
void ck__rec_cache_free(struct ck__rec_cache *c);

/* Takes r over from k; r's keys are wiped by ck__rec_close. */
void ck__rec_init(struct ck__rec *r, const struct ck__rec_keys *k);
void ck__rec_close(struct ck__rec_cache *c, struct ck__rec *r);

/* Writes one record of type carrying len bytes of in to out. Returns its
 * length, CK_ENOSPC, or another negative error. */
int ck__rec_seal(struct ck__rec_cache *c, struct ck__rec *r, uint8_t type,
                 const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Reads the record at *off of the datagram buf (len bytes) and moves
 * *off past it. Returns the plaintext's length in out, with its type in
 * *type; CK_ENOTFOUND for a record that is dropped (another epoch, a
 * replay, one that does not authenticate, RFC 6347 §4.1.2.7), or
 * CK_EMSG_SHORT when no whole record is left. */
int ck__rec_open(struct ck__rec_cache *c, struct ck__rec *r,
                 const uint8_t *buf, size_t len, size_t *off, uint8_t *type,
                 uint8_t *out, size_t cap);

/* --- dtls.c --- */

/* Opens a DTLS endpoint bound to addr; takes cr (freed with the
 * endpoint, also on failure). */
int ck__dtls_open(struct ck_ctx *ctx, const struct ck_addr *addr,
                  struct ck__tls_creds *cr, bool client, struct ck__ep **out);

/* Client: makes sure a session to peer exists or is being made, with
 * name as the certificate name to verify. Returns 0 or an error. */
int ck__dtls_connect(struct ck__ep *ep, const struct ck_addr *peer,
                     const char *name);

/* Client: closes every session of ep (close_notify), keeping the
 * socket and each server's name (and ticket, to resume with); the next
 * message to a server makes a new session. With cr not NULL (the
 * caller owns it) the new sessions use cr, and no ticket is kept. */
void ck__dtls_disconnect(struct ck__ep *ep, struct ck__tls_creds *cr);

/* Feeds one datagram from `from` to ep as if its socket had read it
 * (the fuzz target's way in; dtls_read() uses it too). */
void ck__dtls_input(struct ck__ep *ep, const struct ck_addr *from,
                    const uint8_t *buf, size_t len);

/* Whether ep is a DTLS endpoint; the identity of peer's session on it
 * (CK_SECURITY_NONE and "" when there is none). */
bool ck__dtls_is(const struct ck__ep *ep);
enum ck_security ck__dtls_identity(struct ck__ep *ep,
                                   const struct ck_addr *peer, const char **id);

#endif
