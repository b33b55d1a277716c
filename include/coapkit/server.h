/* The server side of libcoapkit: resources on paths with a handler per
 * method, and the protocol duties the library performs for every server
 * (RFC 7252, 7641, 7959, 7967, 6690).
 *
 * A handler gets the request and a response to fill. It answers at once
 * (a piggybacked response) or calls ck_response_defer() and answers later
 * through the returned handle; if it has not answered within the
 * context's separate_delay_ms, the library sends an empty ACK and the
 * response later goes out as its own CON (RFC 7252 §5.2.2).
 *
 * The library itself answers /.well-known/core from the resources'
 * attributes, returns 4.04, 4.05, 4.02 (unrecognised critical option),
 * 4.06 (Accept not offered), 4.15 (Content-Format not accepted), answers
 * duplicates from its cache, slices large representations into Block2
 * blocks, reassembles Block1 uploads, keeps observers and sends their
 * notifications, honours No-Response, and treats multicast requests as
 * RFC 7252 §8.2 says.
 */
#ifndef COAPKIT_SERVER_H
#define COAPKIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/addr.h"
#include "coapkit/ctx.h"
#include "coapkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ck_resource;
struct ck_request;
struct ck_response;
struct ck_deferred;

/* Called for a request to res. req and resp are valid during the call
 * only. */
typedef void (*ck_handler_fn)(struct ck_resource *res,
                              const struct ck_request *req,
                              struct ck_response *resp, void *user);

/* Link attributes shown in /.well-known/core (RFC 6690 §3). Strings are
 * copied. ct < 0 means none. */
struct ck_resource_attrs {
  const char *rt;
  const char *iface; /* the "if" attribute */
  const char *title;
  int ct;
  uint32_t sz; /* 0: none */
  bool hidden; /* not listed in /.well-known/core */
};

/* Creates a resource at path ("sensors/temp", no leading slash needed).
 * A last segment "#" makes a tree: "ps/#" answers ps and every path below
 * it. Returns 0 and stores the resource in *out (owned by the context), or
 * CK_EEXIST (the path is taken), CK_EINVAL (ctx, path or out NULL) or
 * CK_ENOMEM. */
CK_EXPORT int ck_resource_new(struct ck_ctx *ctx, const char *path,
                              struct ck_resource **out);

/* Sets the handler for one method (CK_GET ... CK_IPATCH); a NULL fn
 * removes it. Methods without a handler are answered with 4.05. Returns 0
 * or CK_EINVAL (r NULL, method out of range). */
CK_EXPORT int ck_resource_handler(struct ck_resource *r, uint8_t method,
                                  ck_handler_fn fn, void *user);

/* Sets the link attributes. Returns 0, CK_ENOMEM (the old attributes
 * are kept) or CK_EINVAL (r or a NULL). */
CK_EXPORT int ck_resource_attrs(struct ck_resource *r,
                                const struct ck_resource_attrs *a);

/* Declares the content formats the resource produces: a request whose
 * Accept names another one gets 4.06. Up to 8; n == 0 clears. Returns 0
 * or CK_EINVAL (r NULL, n over 8, cfs NULL with n > 0). */
CK_EXPORT int ck_resource_produces(struct ck_resource *r, const uint16_t *cfs,
                                   size_t n);

/* Declares the content formats the resource accepts in request payloads:
 * another Content-Format gets 4.15. Up to 8; n == 0 clears. Returns 0 or
 * CK_EINVAL (r NULL, n over 8, cfs NULL with n > 0). */
CK_EXPORT int ck_resource_consumes(struct ck_resource *r, const uint16_t *cfs,
                                   size_t n);

/* Makes GET on the resource observable (RFC 7641): a GET with Observe=0
 * that the handler answers with 2.xx registers the client. con selects
 * CON notifications always; otherwise they are NON with a CON at least
 * every 24 hours. A NULL r is ignored. */
CK_EXPORT void ck_resource_observable(struct ck_resource *r, bool observable,
                                      bool con);

enum {
  CK_NOTIFY_CON = 1, /* send this notification as CON */
};

/* Tells every observer of r that its state changed: the GET handler runs
 * again for each observer and the result goes out as a notification with
 * the next sequence number. Returns the number of observers that remain
 * after the round: one whose handler answered other than 2.xx got that
 * answer and is removed (RFC 7641 §3.2), and is not counted; one whose
 * notification could not be built or allocated stays and is counted.
 * Returns 0 when r has no GET handler, CK_EINVAL for a NULL r. */
CK_EXPORT int ck_resource_changed(struct ck_resource *r, unsigned flags);

/* --- observers fed by the application ---
 *
 * For resources whose notifications differ per observer (a pub/sub
 * topic filter, say), the GET handler can take the observer over: the
 * application then hands it each notification with ck_observer_notify()
 * instead of the handler running again for ck_resource_changed(). The
 * library keeps the notifications to one observer in order, has at most
 * one CON notification in flight to it, and holds the others in a
 * bounded queue that drops its oldest entry when full.
 */
struct ck_observer;

/* Why an observation ended, as on_end receives it. */
enum ck_observer_end {
  CK_OBSERVER_DEREGISTERED = 1, /* GET with Observe=1 (RFC 7641 §3.6) */
  CK_OBSERVER_RESET,       /* RST to a notification (§3.6) */
  CK_OBSERVER_TIMEOUT,     /* a CON notification was never acknowledged
                            * (§4.5) */
  CK_OBSERVER_UNREACHABLE, /* an ICMP error from the client's address */
  CK_OBSERVER_REPLACED,    /* the client registered its token again */
  CK_OBSERVER_REFUSED,     /* the registration was answered other than
                            * 2.xx, or its deferred answer dropped */
  CK_OBSERVER_CLOSED       /* the resource or the context was freed */
};

/* Called once when an observation ends other than by ck_observer_free();
 * o is freed when it returns and must not be freed by the callback. The
 * callback may notify or free other observers. */
typedef void (*ck_observer_end_fn)(struct ck_observer *o, int why,
                                   void *user);

/* The type of an observer's notifications. */
enum ck_observer_type {
  CK_OBSERVER_TYPE_DEFAULT = 0, /* NON, or CON when the resource was made
                                 * observable with con */
  CK_OBSERVER_TYPE_CON,         /* always CON */
  CK_OBSERVER_TYPE_NON          /* NON; still a CON at least every 24
                                 * hours (RFC 7641 §4.5) */
};

struct ck_observer_config {
  uint32_t queue_max; /* notifications held while one is in flight, 100 */
  enum ck_observer_type type;
  ck_observer_end_fn on_end; /* may be NULL */
  void *user;
};

/* Takes over the observer that req (a GET with Observe=0 on an
 * observable resource, handled by the calling handler) registers. The
 * registration takes effect when the handler's answer goes out (at once,
 * or later through ck_deferred_send()) if it is 2.xx; otherwise on_end
 * gets CK_OBSERVER_REFUSED. Notifications given before the answer wait
 * for it. An earlier observation of the same client and token ends with
 * CK_OBSERVER_REPLACED. Returns 0 and stores the handle (owned by the
 * library) in *out, CK_EFULL when a cap is reached: max_observers
 * (counted in observers_rejected), max_observers_per_resource,
 * max_observers_per_peer or max_peers (their own counters), CK_EINVAL (NULL arguments; req not a GET with
 * Observe=0 on an observable resource; resp not req's response) or
 * CK_ENOMEM. */
CK_EXPORT int ck_observer_new(const struct ck_request *req,
                              struct ck_response *resp,
                              const struct ck_observer_config *cfg,
                              struct ck_observer **out);

/* One notification: a 2.05 with this payload and options. */
struct ck_notification {
  const void *payload;
  size_t len;
  bool has_cf;
  uint16_t cf; /* Content-Format, when has_cf */
  /* ck_ctx_now() time after which it is stale: a queued notification
   * past it is dropped, and one sent carries Max-Age = the seconds left.
   * 0: never. */
  uint64_t expires_ms;
  unsigned flags; /* CK_NOTIFY_CON: send this one as CON */
};

/* Sends n to o now, or queues a copy behind the CON in flight. When the
 * queue holds queue_max notifications, its oldest is dropped (counted in
 * stats.notify_dropped). Returns the number of notifications dropped
 * (0 or 1; past the context's max_queued_notes the oldest waiting one,
 * or this one when none waits, also counted in notify_dropped_cap),
 * CK_ENOSPC when the notification would not fit one datagram
 * (the library does not slice notifications), CK_ENOMEM, or CK_EINVAL
 * (o or n NULL, payload NULL with len > 0). */
CK_EXPORT int ck_observer_notify(struct ck_observer *o,
                                 const struct ck_notification *n);

/* Moves the observation to the address and endpoint req came from: a
 * client behind a NAT whose mapping changed keeps its observation (the
 * application decides that req comes from the same client). A CON in
 * flight is sent again to the new address. Returns 0 or CK_EINVAL. */
CK_EXPORT int ck_observer_move(struct ck_observer *o,
                               const struct ck_request *req);

/* The observer's address; NULL for a NULL o. */
CK_EXPORT const struct ck_addr *ck_observer_peer(const struct ck_observer *o);

/* Notifications waiting in o's queue, the one in flight included. */
CK_EXPORT size_t ck_observer_queued(const struct ck_observer *o);

/* Ends the observation without telling the client and without calling
 * on_end; the client's next notification never comes, and an RST or a
 * re-registration from it is treated as for an unknown token. A NULL o
 * is ignored. */
CK_EXPORT void ck_observer_free(struct ck_observer *o);

/* Returns the number of current observers of r (0 for a NULL r). */
CK_EXPORT size_t ck_resource_observers(const struct ck_resource *r);

/* Returns the resource's path as given to ck_resource_new(), without
 * leading or trailing '/' and without a tree's "/#"; NULL for a NULL r. */
CK_EXPORT const char *ck_resource_path(const struct ck_resource *r);

/* Marks a critical option number as understood by the application's
 * handlers, so requests carrying it are not refused with 4.02. The
 * library understands the Uri-*, Accept and Block options itself; a
 * server whose handlers evaluate If-Match and If-None-Match against
 * their representations (RFC 7252 §5.10.8) declares them here. Returns
 * 0, or CK_EINVAL for a NULL ctx. */
CK_EXPORT int ck_ctx_recognize_option(struct ck_ctx *ctx, uint16_t num);

/* --- requests --- */

/* The request's method code (CK_GET ...); 0 for a NULL req. */
CK_EXPORT uint8_t ck_request_method(const struct ck_request *req);

/* The request message as received (for a reassembled Block1 upload: its
 * last block, whose options the handler sees); NULL for a NULL req. */
CK_EXPORT const struct ck_msg *ck_request_msg(const struct ck_request *req);

/* The sender's address; NULL for a NULL req. */
CK_EXPORT const struct ck_addr *ck_request_peer(const struct ck_request *req);

/* True when the request was sent to a multicast group (false for a NULL
 * req). */
CK_EXPORT bool ck_request_multicast(const struct ck_request *req);

/* How the request's peer authenticated itself (dtls.h): returns
 * CK_SECURITY_NONE for a request over plain UDP, else the DTLS mode of
 * its session, and stores the peer's identity in *out when out is not
 * NULL: the PSK identity, the client certificate's subject CN ("" when
 * it sent none), or the SHA-256 fingerprint of its raw public key in
 * hex. The string is valid during the handler's call. A NULL req
 * returns CK_EINVAL and stores NULL. */
CK_EXPORT int ck_request_identity(const struct ck_request *req,
                                  const char **out);

/* The request body: the payload, or the whole reassembled Block1 upload.
 * *len receives its length; the pointer is valid during the handler (and
 * may be NULL when the length is 0). Returns NULL, leaving *len alone,
 * when req or len is NULL. */
CK_EXPORT const uint8_t *ck_request_payload(const struct ck_request *req,
                                            size_t *len);

/* Finds the Uri-Query option "key=value" (or a bare "key") and stores a
 * view of its value. Returns 0, CK_ENOTFOUND, or CK_EINVAL when any
 * argument is NULL. */
CK_EXPORT int ck_request_query(const struct ck_request *req, const char *key,
                               const char **val, size_t *len);

/* Writes the request's Uri-Path segments joined with '/' (no leading
 * slash, raw bytes, NUL-terminated). Returns the length, CK_ENOSPC (cap
 * must exceed it) or CK_EINVAL (req NULL, buf NULL with cap > 0). */
CK_EXPORT int ck_request_path(const struct ck_request *req, char *buf,
                              size_t cap);

/* The value of an unsigned option, or def when it is absent, does not
 * fit 32 bits, or req is NULL. */
CK_EXPORT uint32_t ck_request_uint(const struct ck_request *req, uint16_t num,
                                   uint32_t def);

/* True when the request carries the option (false for a NULL req). */
CK_EXPORT bool ck_request_has(const struct ck_request *req, uint16_t num);

/* --- responses --- */

/* Sets the response code (default 2.05 for GET and FETCH, 2.02 for
 * DELETE, 2.04 otherwise). A NULL r is ignored. */
CK_EXPORT void ck_response_code(struct ck_response *r, uint8_t code);

/* Adds an option; the value is copied. Returns 0, CK_ENOSPC (over 24
 * options, or 600 bytes of values, in one response) or CK_EINVAL (r
 * NULL; val NULL with len > 0; s NULL). Except for a NULL r, an error
 * also stays with the response, whose answer then goes out as 5.00
 * (stats.responses_failed) rather than without the option. */
CK_EXPORT int ck_response_opt(struct ck_response *r, uint16_t num,
                              const void *val, size_t len);
CK_EXPORT int ck_response_opt_uint(struct ck_response *r, uint16_t num,
                                   uint32_t v);
CK_EXPORT int ck_response_opt_str(struct ck_response *r, uint16_t num,
                                  const char *s);

/* Sets the payload; it is copied, and its size is bounded only by
 * memory. A payload larger than the block size the client asked for (or
 * 1024 bytes) is sent block-wise (Block2) with Size2 and an ETag. Returns
 * 0, CK_ENOMEM or CK_EINVAL (r NULL; p NULL with len > 0). Except for a
 * NULL r, an error also makes the answer a 5.00, as for an option. */
CK_EXPORT int ck_response_payload(struct ck_response *r, const void *p,
                                  size_t len);

/* Sets the payload without copying it: the library reads p until it no
 * longer needs it, then calls release(arg), exactly once, from the
 * context's thread (release may be NULL for memory that outlives the
 * context). A representation sent in Block2 blocks is kept by reference
 * until its transfer ends (ck_ctx_config.rep_*), so a large one is never
 * copied per block or per transfer. p must not change until release.
 * Returns 0, or CK_EINVAL (r NULL; p NULL with len > 0), in which case
 * release is not called and, except for a NULL r, the answer is a 5.00.
 * A later ck_response_payload*() on r releases this payload first. */
CK_EXPORT int ck_response_payload_ref(struct ck_response *r, const void *p,
                                      size_t len, void (*release)(void *arg),
                                      void *arg);

/* Shorthand: Content-Format option and payload. Returns 0 or the first
 * error of ck_response_opt_uint() and ck_response_payload(). */
CK_EXPORT int ck_response_content(struct ck_response *r, uint16_t cf,
                                  const void *p, size_t len);

enum {
  CK_DEFER_ACK_NOW = 1, /* send the empty ACK at once, not after a delay */
};

/* Takes the answer out of the handler: the handler returns without a
 * response and answers later with ck_deferred_response() and
 * ck_deferred_send(). A deferred GET with Observe=0 on an observable
 * resource registers its observer when the 2.xx answer is sent. Returns
 * the handle, or NULL when the handler runs for a notification (which
 * cannot be deferred), r was deferred already (or came from
 * ck_deferred_response()), or r is NULL; the handler must then answer at
 * once. */
CK_EXPORT struct ck_deferred *ck_response_defer(struct ck_response *r,
                                                unsigned flags);

/* The response to fill for a deferred request; valid until
 * ck_deferred_send() or ck_deferred_drop(). NULL for a NULL d. */
CK_EXPORT struct ck_response *ck_deferred_response(struct ck_deferred *d);

/* The deferred request's sender; NULL for a NULL d. */
CK_EXPORT const struct ck_addr *ck_deferred_peer(const struct ck_deferred *d);

/* Sends the response and frees the handle. Returns 0, or CK_EINVAL for a
 * NULL d. A response that cannot be built as given (an option or the
 * payload refused, or too large for a datagram) goes out as 5.00,
 * counted in stats.responses_failed and logged, and this still returns
 * 0; only if even that 5.00 cannot be built is its error returned. The
 * handle is freed either way. */
CK_EXPORT int ck_deferred_send(struct ck_deferred *d);

/* Frees the handle without answering (the client will time out). A NULL
 * d is ignored. */
CK_EXPORT void ck_deferred_drop(struct ck_deferred *d);

#ifdef __cplusplus
}
#endif

#endif
