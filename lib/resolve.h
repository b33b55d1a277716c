/* Name resolution on the context's own loop, with c-ares: a host name in
 * a URI becomes a short list of addresses without ever blocking the loop
 * and without threads (issue 8). c-ares's sockets are watched through the
 * loop's backend and its timeouts are driven by a loop timer; /etc/hosts
 * is honoured (c-ares reads it before asking DNS, and never asks DNS for
 * "localhost", RFC 6761 §6.3). Literal IPv4/IPv6 addresses need no DNS.
 * Internal to libcoapkit.
 *
 * How the client uses it. Resolve once per request; the callback hands
 * over up to CK__RESOLVE_MAX_ADDRS addresses, best first (c-ares orders
 * them by RFC 6724's destination address selection and we keep that
 * order, minus duplicates). Copy them into the call. Send to addrs[0];
 * when that attempt fails because the peer is unreachable (an ICMP error,
 * CK_EUNREACH via ck__input_icmp) or because the exchange timed out
 * (CK_ETIMEDOUT), move to addrs[1] with a fresh exchange, and so on. Only
 * when the last address fails does the call fail, with that address's
 * error. A 4.xx/5.xx response or an RST is an answer, not a failure of
 * the address: do not move on. If the call is cancelled while resolving,
 * call ck__resolve_cancel().
 *
 * Bounds: at most CK__RESOLVE_MAX_PENDING resolutions per context
 * (CK_EFULL beyond); each try of a DNS server waits CK__RESOLVE_TRY_MS,
 * twice per server (c-ares doubles the wait on the second round), and a
 * resolution fails with CK_ETIMEDOUT after CK__RESOLVE_DEADLINE_MS at
 * most, however many servers resolv.conf lists.
 *
 * DNS servers: those of /etc/resolv.conf, unless the environment variable
 * CK_DNS_SERVERS holds a comma-separated list in c-ares's CSV syntax
 * ("127.0.0.1:5353,[::1]:53"). It is read when a context first resolves,
 * and ignored in set-uid programs (secure_getenv). Tests use it to point
 * the resolver at a DNS server of their own.
 *
 * Timing: c-ares measures its timeouts on the real monotonic clock; the
 * loop timer only wakes it. A context whose clock a test has frozen still
 * resolves literals and names found in /etc/hosts, but a DNS server that
 * does not answer then never times out. */
#ifndef CK_RESOLVE_H
#define CK_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "coapkit/addr.h"

struct ck_ctx;
struct ck__resolver;
struct ck__resolve_req;

enum {
  CK__RESOLVE_MAX_ADDRS = 8,     /* addresses handed to the callback */
  CK__RESOLVE_MAX_PENDING = 64,  /* resolutions in flight per context */
  CK__RESOLVE_TRY_MS = 1000,     /* first wait for one DNS server */
  CK__RESOLVE_TRIES = 2,         /* rounds over the DNS servers */
  CK__RESOLVE_DEADLINE_MS = 5000 /* hard bound on one resolution */
};

/* Called exactly once per successful ck__resolve_start(), from the loop
 * (never from inside ck__resolve_start), unless cancelled first. On
 * success err is 0 and addrs holds n >= 1 addresses, each with the port
 * given to ck__resolve_start; they are valid during the call only. On
 * failure addrs is NULL, n is 0 and err is:
 *   CK_EURI_HOST  the name does not exist (NXDOMAIN), has no address of
 *                 the family, or the DNS server failed it (SERVFAIL,
 *                 REFUSED, a malformed answer);
 *   CK_ETIMEDOUT  no DNS server answered in time;
 *   CK_EUNREACH   every DNS server refused (ICMP port unreachable);
 *   CK_ENOMEM     out of memory.
 * The request handle is invalid once the callback runs. */
typedef void (*ck__resolve_cb)(void *user, int err,
                               const struct ck_addr *addrs, size_t n);

/* Starts resolving host (a name or a literal IPv4/IPv6 address, without
 * brackets or port; an IPv6 literal may carry a %zone) to addresses of
 * family (AF_UNSPEC, AF_INET or AF_INET6) with the given port. On success
 * returns 0, stores a handle in *out (out may be NULL when the caller
 * never cancels) and cb will fire once. On failure returns CK_EINVAL (no
 * host, an empty or over-long one, an unknown family), CK_EURI_HOST (a
 * host with a single colon, which is no name and no address), CK_EFULL
 * (CK__RESOLVE_MAX_PENDING in flight), CK_ENOMEM or CK_ESYS (c-ares would
 * not start), and cb never fires. */
int ck__resolve_start(struct ck_ctx *ctx, const char *host, uint16_t port,
                      int family, ck__resolve_cb cb, void *user,
                      struct ck__resolve_req **out);

/* Cancels a resolution whose callback has not run yet: the callback never
 * fires, and the handle is invalid on return. A DNS query already sent
 * runs to its end inside c-ares and still counts against
 * CK__RESOLVE_MAX_PENDING until then; its answer is dropped. */
void ck__resolve_cancel(struct ck__resolve_req *req);

/* Called by ck_ctx_free before the loop closes: pending resolutions are
 * dropped WITHOUT calling their callbacks (whoever started them is being
 * freed with the context), c-ares's sockets are closed and everything is
 * freed. Does nothing if the context never resolved a name. */
void ck__resolve_free(struct ck_ctx *ctx);

#endif
