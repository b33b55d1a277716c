/* The client side of libcoapkit: requests with every method, Observe,
 * block-wise transfer, ping and discovery (RFC 7252, 7641, 7959, 6690,
 * 7390), on a context's event loop.
 *
 * A call is one operation started with ck_client_send(). Its callback
 * fires one or more times and exactly once with resp->final set: a plain
 * request calls back once; an observation calls back for each
 * notification and finally when it ends (cancelled, rejected, or failed);
 * a multicast request calls back for each responder and finally when the
 * response window closes. The call handle is valid until that final
 * callback returns.
 *
 * An observation outlives a server that restarts and forgets it (RFC
 * 7641 §3.3.1): when the Max-Age of the latest notification (60 s
 * without the option) has run out, and 2 s more, with no newer one, the
 * request goes out again with the same token. Its answer reaches the
 * callback as the current state (has_observe set), whatever its sequence
 * number, since a restarted server numbers afresh; later notifications
 * are ordered from there, and none is delivered twice. A
 * re-registration that gets no answer (a timeout, an ICMP error: the
 * server is still down) is tried again 2, 4, 8, 16 and 32 s later before
 * the call ends with that error; an error response to it (4.04, 5.03
 * ...) ends the call, with that response in the final callback.
 *
 * Large bodies are moved block-wise automatically: uploads with Block1
 * (retrying with smaller blocks on 4.13), downloads with Block2, and the
 * callback sees the whole body.
 */
#ifndef COAPKIT_CLIENT_H
#define COAPKIT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/addr.h"
#include "coapkit/ctx.h"
#include "coapkit/dtls.h"
#include "coapkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ck_client;
struct ck_call;

/* A socket option applied to the client's sockets. */
struct ck_sockopt {
  int level;
  int name;
  int value;
};

/* A message trace hook: called for every message the client's endpoints
 * send (requests, their retransmissions, ACKs and RSTs) with sent true,
 * and for every message that reaches the client (ACKs, RSTs, responses,
 * notifications) with sent false. peer is the destination or the
 * source. m and peer are valid during the call only. The hook observes:
 * it must not call back into the client. Tools use it to show an
 * exchange (coap -v) or its progress. */
typedef void (*ck_trace_cb)(void *user, bool sent, const struct ck_addr *peer,
                            const struct ck_msg *m);

/* Settings of a client; zero fields take their defaults. These are the
 * transmission parameters Qt's QCoapClient exposes, and more. */
struct ck_client_config {
  struct ck_params params;            /* all zero: RFC 7252 defaults */
  uint32_t max_server_response_delay_ms; /* multicast window, 5000 */
  uint8_t min_token_len;              /* 1..8, default 4 */
  uint16_t block_size;                /* preferred, 16..1024, default 1024 */
  uint32_t max_body;                  /* largest body received, 64 MiB */
  uint32_t nstart;                    /* CON calls in flight per server */
  struct ck_sockopt sockopts[4];      /* level 0 ends the list */
  ck_trace_cb trace;                  /* NULL: no tracing */
  void *trace_user;
  /* Credentials for coaps:// calls (dtls.h), read by ck_client_new()
   * and not kept. NULL: the server is verified by certificate against
   * the system's trust store. */
  const struct ck_dtls_config *dtls;
};

/* Creates a client on ctx. cfg may be NULL. Returns 0 and stores the
 * client in *out, or CK_EINVAL / CK_ENOMEM, or CK_EDTLS_CREDS when
 * cfg->dtls names credentials that do not load. */
CK_EXPORT int ck_client_new(struct ck_ctx *ctx,
                            const struct ck_client_config *cfg,
                            struct ck_client **out);

/* Cancels every call (their final callbacks fire with CK_ECANCELED) and
 * frees the client. Must not be called from one of its callbacks. */
CK_EXPORT void ck_client_free(struct ck_client *c);

/* A request a client sends (a server's handler gets a struct ck_request
 * instead: ck_client_ names the client's side, plain ck_request and
 * ck_response the server's). Strings and buffers are copied by
 * ck_client_send(). A zeroed struct is a CON GET with no options: every
 * zero field means "none" or "the default". */
struct ck_client_request {
  uint8_t method;        /* CK_GET ... CK_IPATCH; 0: GET */
  bool ping;             /* send an empty CON instead (RFC 7252 §4.3);
                          * only uri and the client's settings count */
  const char *uri;       /* coap://host[:port]/path?query */
  bool non;              /* send as NON instead of CON */
  bool observe;          /* register an observation (GET, FETCH); it
                          * registers again by itself (see above) */
  const void *payload;
  size_t payload_len;
  bool has_content_format; /* false: no Content-Format option */
  uint16_t content_format;
  bool has_accept;       /* false: no Accept option */
  uint16_t accept;
  const struct ck_opt *opts; /* more options, any order */
  size_t nopts;
  const uint8_t *token;  /* NULL: random, of min_token_len bytes */
  size_t token_len;
  uint16_t block_size;   /* 0: the client's */
};

/* Zeroes r and sets its method and URI. */
CK_EXPORT void ck_client_request_init(struct ck_client_request *r,
                                      uint8_t method, const char *uri);

/* What a callback receives; valid during the callback only. */
struct ck_client_response {
  int err;          /* 0, or CK_ETIMEDOUT, CK_ERESET, CK_EUNREACH,
                     * CK_ECANCELED, CK_EBADRESP, CK_EFULL ... */
  bool final;       /* the call's last callback */
  uint8_t code;     /* the response code, 0 when err is set */
  const struct ck_msg *msg; /* the last message received, or NULL */
  const uint8_t *body;      /* the whole (reassembled) payload */
  size_t body_len;
  const struct ck_addr *peer; /* who answered (multicast: each server) */
  bool has_observe;
  uint32_t observe;         /* the notification's sequence number */
  uint64_t rtt_ms;          /* from the first transmission to this answer
                             * (to the address that answered) */
  /* coaps://: how the server authenticated itself (enum ck_security,
   * dtls.h) and its identity: the subject CN of its certificate, the
   * SHA-256 fingerprint of its raw public key in hex (which the
   * application must check itself: the library trusts any), or the
   * PSK identity hint it sent. CK_SECURITY_NONE and "" for coap://,
   * and while no session is up. */
  int security;
  const char *peer_identity;
};

typedef void (*ck_client_response_cb)(struct ck_call *call,
                                      const struct ck_client_response *resp,
                                      void *user);

/* Starts a call. Returns 0 and, if out is not NULL, stores the handle;
 * or a negative error, in which case cb never fires: CK_EINVAL (a bad
 * argument, or a CK_DNS_SERVERS that does not parse), a URI error
 * (CK_EURI_SCHEME, CK_EURI_HOST for a host that is no name and no
 * address, ...), CK_ENOMEM, or, for a host name,
 * CK_EFULL (too many resolutions in flight) or CK_ESYS (the resolver
 * would not start).
 *
 * A literal IPv4/IPv6 address is sent to at once. A host name is
 * resolved on the context's loop, never blocking it (/etc/hosts, then
 * DNS; CK_DNS_SERVERS in the environment overrides resolv.conf's
 * servers): the call returns 0 at once, and what goes wrong later
 * reaches the final callback, exactly once, like any other error:
 * CK_EURI_HOST (no such name, or no address), CK_ETIMEDOUT (no DNS
 * server answered within 5 s), CK_EUNREACH (every DNS server refused).
 * Cancelling the call or freeing the client while it resolves fires the
 * final callback with CK_ECANCELED then, and the resolution's answer is
 * never delivered.
 *
 * A name's addresses (up to 8, best first by RFC 6724) are tried in
 * turn: when the current one never answered, because an ICMP error said
 * it is unreachable (CK_EUNREACH) or because it stayed silent
 * (CK_ETIMEDOUT), the request goes to the next one; the call fails only
 * when the last one failed, with that one's error. Any response, an RST
 * or an empty ACK binds the call to the address that sent it. The last
 * address gets the whole exchange (the params' MAX_RETRANSMIT), each one
 * before it a single transmission and the first ACK timeout. resp->peer
 * names the address that answered, or for an error the last one
 * tried. */
CK_EXPORT int ck_client_send(struct ck_client *c,
                             const struct ck_client_request *req,
                             ck_client_response_cb cb, void *user,
                             struct ck_call **out);

/* Closes the client's DTLS sessions (close_notify), so that the next
 * coaps:// message to a server makes a new one; calls go on. With
 * cfg not NULL the client's DTLS credentials are replaced by cfg's
 * first (as QCoapClient::disconnect allows). Returns 0, CK_EINVAL for a
 * NULL c, or CK_EDTLS_CREDS / CK_ENOMEM (the old credentials stay). */
CK_EXPORT int ck_client_disconnect(struct ck_client *c,
                                   const struct ck_dtls_config *cfg);

/* Ends a call early. For an observation, proactive cancels by sending
 * GET with Observe=1 (RFC 7641 §3.6) and ends when the server answers;
 * otherwise the call is forgotten, and the next notification is answered
 * with RST (reactive). The final callback fires with CK_ECANCELED. */
CK_EXPORT void ck_call_cancel(struct ck_call *call, bool proactive);

/* The token the call uses (for display). Returns its length. */
CK_EXPORT size_t ck_call_token(const struct ck_call *call, uint8_t out[8]);

/* The Message ID of the call's last transmission. */
CK_EXPORT uint16_t ck_call_mid(const struct ck_call *call);

/* The result of a blocking call: owns a copy of the last message and the
 * body; release with ck_client_result_free(). */
struct ck_client_result {
  int err;
  uint8_t code;
  struct ck_msg msg;     /* valid when has_msg */
  bool has_msg;
  uint8_t *body;
  size_t body_len;
  struct ck_addr peer;
  uint64_t rtt_ms;
  uint8_t *raw; /* owns msg's bytes */
  int security;             /* as in struct ck_client_response */
  char peer_identity[130];  /* its identity, cut to fit */
};

/* Sends req and runs the context's loop until the answer (or error).
 * Returns 0 with *out filled, or a negative error (out->err too). Not
 * for observations or multicast. */
CK_EXPORT int ck_client_do(struct ck_client *c,
                           const struct ck_client_request *req,
                           struct ck_client_result *out);

CK_EXPORT void ck_client_result_free(struct ck_client_result *r);

/* Counters of a client. */
struct ck_client_stats {
  uint64_t requests;
  uint64_t retransmits; /* CON transmissions repeated for want of an ACK */
  uint64_t notifications;
  uint64_t notifications_stale; /* reordered, dropped (RFC 7641 §3.4) */
  uint64_t rejected; /* responses with unknown tokens, answered RST; as
                      * they belong to no client, each client counts them */
};

CK_EXPORT void ck_client_stats(const struct ck_client *c,
                               struct ck_client_stats *out);

#ifdef __cplusplus
}
#endif

#endif
