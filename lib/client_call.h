/* The inside of a client and of its calls, shared by the client's files:
 * client.c (clients, calls and their end), client_tx.c (what a call sends
 * next and what an answer means to it), client_match.c (how a received
 * message finds its call: the token table), client_block.c (block-wise
 * transfers), client_observe.c (notifications), client_trace.c (the
 * trace hook) and client_sync.c (the blocking form). Internal to
 * libcoapkit.
 */
#ifndef CK_CLIENT_CALL_H
#define CK_CLIENT_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coapkit/client.h"
#include "coapkit/opt.h"
#include "exchange.h"
#include "resolve.h"

enum {
  CK__TMPL_OPTS = 48, /* options of a request template */
  CK__ECHO_MAX = 40,  /* RFC 9175 §2.2.1: Echo is 1..40 bytes */
};

struct ck__tmpl_opt {
  uint16_t num;
  uint16_t len;
  uint32_t off;
};

/* Tracing (cfg.trace): a client's endpoint sends through a copy of its
 * transport whose commit shows each datagram to the hook first, so that
 * retransmissions, ACKs and RSTs are seen as well as requests. tp is the
 * first member: the endpoint's tp pointer leads back here. */
struct ck__trace_tp {
  struct ck__transport tp;
  const struct ck__transport *inner;
  struct ck_client *c;
  uint8_t *out; /* the buffer of the datagram being built */
};

/* A token a call is known by, as an entry of its client's token table.
 * A call has two: its own, and the one its block requests use after a
 * notification (RFC 7959 §3.4). */
struct ck__tok {
  struct ck__tok *next; /* in the table's bucket */
  struct ck_call *call;
  bool linked;
  uint8_t len;
  uint8_t bytes[CK_TOKEN_MAX];
};

/* Chained hash of the tokens of a client's live calls, so that a
 * response finds its call without a walk over every call. The bucket
 * array doubles when the entries outnumber it; when it cannot grow, the
 * chains get longer and nothing fails. */
struct ck__tokens {
  struct ck__tok **buckets;
  size_t nbuckets;
  size_t count;
};

struct ck_client {
  struct ck_ctx *ctx;
  struct ck_client *next;
  struct ck_client_config cfg;
  struct ck__ep *ep4, *ep6;
  struct ck__ep *dep4, *dep6;    /* DTLS, for coaps:// (dtls.c) */
  struct ck__tls_creds *creds;   /* theirs; NULL until needed */
  struct ck_call *calls; /* newest first */
  struct ck__tokens tokens;
  /* cfg.params without retransmissions: the CON of a short attempt at
   * an address that is not a call's last (see ck__call_short). */
  struct ck_params params_short;
  struct ck_client_stats stats;
  struct ck__trace_tp trace4, trace6, dtrace4, dtrace6;
};

/* Where a call stands. What the call is waiting for follows from it:
 * in the states from REQUESTING to CANCELLING a message of the call is
 * out; while call->con is set, its ACK is awaited (RFC 7252 §4.2),
 * otherwise a separate or NON response (§5.2.2, §5.2.3). */
enum ck__call_state {
  CK__CALL_RESOLVING,     /* the host name is being resolved (resolve.h) */
  CK__CALL_QUEUED,        /* held back by NSTART (§4.7) */
  CK__CALL_REQUESTING,    /* the request is out */
  CK__CALL_UPLOADING,     /* a Block1 block is out (RFC 7959 §2.5) */
  CK__CALL_DOWNLOADING,   /* a Block2 request is out (RFC 7959 §2.4) */
  CK__CALL_OBSERVING,     /* registered, between notifications (RFC 7641) */
  CK__CALL_REREGISTERING, /* Max-Age ran out: the request is out again */
  CK__CALL_CANCELLING,    /* the deregistration is out (RFC 7641 §3.6) */
  CK__CALL_DONE,          /* the final callback fired or is firing */
};

/* A cancel asked for from inside the call's own callback, done after it
 * returns. */
enum ck__cancel_after { CK__CANCEL_NONE, CK__CANCEL_REACTIVE,
                        CK__CANCEL_PROACTIVE };

struct ck_call {
  struct ck__timer timer; /* first: the timer callback casts back */
  struct ck_client *cl;
  struct ck_call *next, *prev;
  ck_client_response_cb cb;
  void *user;
  struct ck__ep *ep;
  bool secure;          /* coaps:// */
  char *host;           /* coaps://: the name the certificate must carry */
  struct ck_addr peer;  /* addrs[cur]; all zero while RESOLVING */
  struct ck__con *con;  /* the CON whose ACK is awaited, or NULL */
  struct ck__resolve_req *rreq; /* while RESOLVING */
  /* The addresses of the host, best first; the call tries them in turn
   * until one answers (client.c, "addresses"). heard: addrs[cur] has
   * answered something, so the call stays with it. */
  struct ck_addr addrs[CK__RESOLVE_MAX_ADDRS];
  uint8_t naddrs, cur;
  bool heard;
  enum ck__call_state state;
  uint8_t cancel_after; /* enum ck__cancel_after */
  bool in_cb;           /* inside cb: cancel waits for it to return */
  bool marked;          /* picked by a scan (ck__client_icmp) */
  /* What the call is, fixed at ck_client_send(). */
  uint8_t method;
  bool non, multicast, observe, ping, explicit_block;
  struct ck__tok tok, alt; /* alt: block requests after a notification */
  const struct ck__tok *sent_tok; /* the token of the last request */
  uint16_t mid;
  uint64_t t_first;
  /* Block-wise state (client_block.c). */
  uint8_t szx1, szx2;
  uint32_t up_num;
  uint8_t req_tag[4];
  uint32_t down_num;
  uint8_t etag[8];
  uint8_t etag_len;
  uint8_t *body;
  size_t body_len, body_cap;
  /* Observe state (client_observe.c): registered once a notification
   * came, which makes seq and seq_time valid. */
  bool registered;
  uint32_t seq;
  uint64_t seq_time;
  int64_t pending_seq; /* the sequence number to report, or -1 */
  uint8_t rereg_fails;  /* re-registrations in a row that got no answer */
  /* RFC 9175 §2.3: the Echo value a server asked for, carried by every
   * later request of the call; a 4.01 with Echo is answered by sending
   * the request again, once in a row. */
  uint8_t echo[CK__ECHO_MAX];
  uint8_t echo_len;
  bool echo_retried;
  /* The request as a template. */
  unsigned nopts;
  struct ck__tmpl_opt opts[CK__TMPL_OPTS];
  uint8_t *optval;
  uint8_t *payload;
  size_t payload_len;
};

/* True while a message of the call is out and its answer awaited. */
static inline bool ck__call_outstanding(const struct ck_call *call)
{
  return call->state >= CK__CALL_REQUESTING &&
         call->state <= CK__CALL_CANCELLING &&
         call->state != CK__CALL_OBSERVING;
}

/* True while the call gives its address a short attempt: it has not
 * heard from it, and another address is left to try. */
static inline bool ck__call_short(const struct ck_call *call)
{
  return !call->heard && call->cur + 1 < call->naddrs;
}

/* client.c. ck__call_fail() ends the call with err, unless err says the
 * current address never answered (CK_ETIMEDOUT, CK_EUNREACH) and the
 * call may move on to its next address, which it then does. */
void ck__call_finish(struct ck_call *call, int err, const struct ck_msg *m,
                     const struct ck_addr *from);
void ck__call_fail(struct ck_call *call, int err);
void ck__call_deliver(struct ck_call *call, const struct ck_msg *m,
                      const struct ck_addr *from, bool final, int err);
void ck__client_start_queued(struct ck_client *c, const struct ck_addr *peer);

/* client_tx.c: sends the call's next message as its state says; hands a
 * response to the call; the call's timer. */
int ck__call_transmit(struct ck_call *call);
void ck__call_response(struct ck_call *call, const struct ck_msg *m,
                       const struct ck_addr *from);
void ck__call_on_timer(struct ck__timer *t);

/* client_match.c: the token table; whether every critical option of a
 * response is one the client understands (RFC 7252 §5.4.1). */
bool ck__client_understood(const struct ck_msg *m);
void ck__tokens_add(struct ck_client *c, struct ck__tok *t);
void ck__tokens_del(struct ck_client *c, struct ck__tok *t);
void ck__tokens_free(struct ck_client *c);

/* client_block.c. The answer functions return 1 when they took the
 * response (asked for more, or finished the call), 0 when the caller
 * goes on with it. */
int ck__call_upload_answer(struct ck_call *call, const struct ck_msg *m);
int ck__call_download_answer(struct ck_call *call, const struct ck_msg *m);
int ck__call_block_opts(struct ck_call *call, struct ck_builder *b,
                        bool block1, bool block2, const uint8_t **pl,
                        size_t *plen);

/* client_observe.c. ck__call_notification() returns false for a stale
 * notification (to be dropped). ck__call_reregister_later() returns true
 * when a re-registration that failed with err (no answer) was put off
 * to a later try instead of ending the call. */
bool ck__call_notification(struct ck_call *call, const struct ck_msg *m);
bool ck__call_reregister_later(struct ck_call *call, int err);
void ck__call_notify(struct ck_call *call, const struct ck_msg *m,
                     const struct ck_addr *from);
int ck__call_deregister(struct ck_call *call);

/* client_trace.c */
void ck__trace_install(struct ck_client *c, struct ck__ep *ep,
                       struct ck__trace_tp *t);
void ck__trace_remove(struct ck__ep *ep, struct ck__trace_tp *t);
void ck__trace_in(struct ck_client *c, const struct ck_addr *from,
                  const struct ck_msg *m);
void ck__trace_rst_in(struct ck_client *c, const struct ck_addr *from,
                      uint16_t mid);

#endif
