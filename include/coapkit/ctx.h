/* A coapkit context: the event loop, the endpoints (sockets) and the
 * messaging state that clients and servers share.
 *
 * A context is used from one thread; several contexts may run in several
 * threads. The library can run its own loop (ck_run), with the
 * application's descriptors and timers on it (loop.h), or be driven from
 * an application's loop: ck_ctx_fd() is one file descriptor that becomes
 * readable when there is work, ck_ctx_timeout() tells when the next timer
 * is due, and ck_ctx_process() does what is ready.
 *
 * Sending: a message the library sends from inside one of its callbacks
 * is batched and leaves when the callback's loop iteration ends; a
 * message sent from outside (ck_client_send(), ck_deferred_send() or
 * ck_resource_changed() called by the application between iterations)
 * leaves before that call returns. So an application may send, then
 * sleep for ck_ctx_timeout() milliseconds, and nothing waits.
 */
#ifndef COAPKIT_CTX_H
#define COAPKIT_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "coapkit/export.h"

#include "coapkit/addr.h"
#include "coapkit/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ck_ctx;

/* Transmission parameters (RFC 7252 §4.8). Times are in milliseconds.
 * Zero takes the default; a value out of range (ack_timeout_ms and
 * processing_delay_ms and default_leisure_ms over 600000,
 * ack_random_factor outside 1..10, max_retransmit over 20, nstart over
 * 1000, max_latency_ms over 3600000) makes ck_ctx_new() and
 * ck_client_new() fail with CK_EINVAL. */
struct ck_params {
  uint32_t ack_timeout_ms;    /* ACK_TIMEOUT, 2000 */
  float ack_random_factor;    /* ACK_RANDOM_FACTOR, 1.5 */
  uint32_t max_retransmit;    /* MAX_RETRANSMIT, 4; 0 takes the default,
                               * CK_MAX_RETRANSMIT_NONE means none */
  uint32_t nstart;            /* NSTART, 1 */
  uint32_t default_leisure_ms; /* DEFAULT_LEISURE, 5000 */
  uint32_t max_latency_ms;    /* MAX_LATENCY, 100000 */
  uint32_t processing_delay_ms; /* PROCESSING_DELAY, = ACK_TIMEOUT */
};

/* For ck_params.max_retransmit: send a CON once, never again. */
#define CK_MAX_RETRANSMIT_NONE UINT32_MAX

/* Fills p with the defaults of RFC 7252 §4.8. A NULL p is ignored. */
CK_EXPORT void ck_params_default(struct ck_params *p);

/* MAX_TRANSMIT_SPAN, EXCHANGE_LIFETIME and NON_LIFETIME derived from p as
 * RFC 7252 §4.8.2 defines them, in milliseconds; 0 for a NULL p. */
CK_EXPORT uint64_t ck_params_max_transmit_span(const struct ck_params *p);
CK_EXPORT uint64_t ck_params_exchange_lifetime(const struct ck_params *p);
CK_EXPORT uint64_t ck_params_non_lifetime(const struct ck_params *p);

/* Settings of a context. Zero fields take their defaults. */
struct ck_ctx_config {
  struct ck_params params; /* all zero: RFC 7252 defaults */
  /* Remembered exchanges (RFC 7252 §4.5). The table starts empty, grows
   * with the rate of non-idempotent requests (and of CON responses a
   * client receives) and keeps each exchange for EXCHANGE_LIFETIME, up to
   * dedup_max_bytes of memory (0: 128 MiB, about 290,000 requests/s of
   * headroom; answers longer than 58 bytes share an eighth of it). At the
   * cap the oldest exchange is forgotten (stats.dedup_evictions) when it
   * is at least ACK_TIMEOUT * ACK_RANDOM_FACTOR old (3 s), the latest a
   * first retransmission comes; younger, a POST or PATCH is refused with
   * 5.03 and Max-Age (stats.dedup_refused). dedup_entries, when not 0,
   * caps the number of exchanges too. */
  size_t dedup_max_bytes;
  uint32_t dedup_entries;
  /* Also remember answers to idempotent requests (GET, PUT, DELETE,
   * FETCH, iPATCH) so a duplicate never runs the handler twice. Off by
   * default: RFC 7252 §4.5 lets a server skip them, and a duplicate of
   * an idempotent request may simply be processed again. Non-idempotent
   * (POST, PATCH) and deferred requests are always remembered. */
  bool remember_idempotent;
  uint32_t max_body;       /* largest Block1 body reassembled, 16 MiB */
  uint32_t max_uploads;    /* concurrent Block1 reassemblies, 1024 */
  uint32_t max_observers;  /* observers across all resources, 1000000 */
  uint32_t separate_delay_ms; /* wait before an empty ACK, 100 */
  int rcvbuf;              /* SO_RCVBUF in bytes, 4 MiB */
  int sndbuf;              /* SO_SNDBUF in bytes, 4 MiB */
  /* Amplification (RFC 9175 §2.4): over plain UDP, a response larger
   * than echo_amplification times its request's datagram goes only to a
   * source address that has shown it receives what we send; any other
   * gets 4.01 (Unauthorized) with an Echo option to send back. 0 takes
   * 3; CK_ECHO_OFF turns the check off. DTLS peers (verified by the
   * handshake's cookie) and multicast requests are not checked. */
  uint32_t echo_amplification;
  uint32_t echo_fresh_ms;     /* how long an Echo value is valid, 60000 */
  uint32_t echo_verified_ms;  /* how long a source stays verified,
                               * 600000 */
  uint32_t echo_verified_max; /* verified sources remembered, 4096; at the
                               * cap the oldest is forgotten
                               * (stats.echo_evictions) */
  /* RFC 9175 §2.4 item 1: POST, PUT, PATCH, iPATCH and DELETE run only
   * with an Echo value at most echo_fresh_ms old; without one they are
   * answered 4.01 with a new Echo and the handler does not run. Off by
   * default. */
  bool echo_require_fresh;
  /* Limits on what peers can make the server hold (RFC 7252 §11.3 asks
   * a server to bound the state others can create). A peer is a source
   * address without its port, an IPv6 one by its /64 prefix: a host
   * gets ports and interface identifiers for free, but not addresses or
   * prefixes. Clients behind one NAT share a peer, so the per-peer caps
   * are off (0: the table's whole cap) unless set. */
  uint32_t max_peers;      /* peers holding observers or uploads at once,
                            * 1000000 */
  uint32_t max_observers_per_peer;     /* 0: max_observers */
  uint32_t max_observers_per_resource; /* 0: max_observers */
  uint32_t max_uploads_per_peer;       /* 0: max_uploads */
  /* Bytes held by all Block1 reassemblies together, 256 MiB; a block
   * that would pass it ends its upload with 5.03 and Max-Age. */
  size_t max_upload_bytes;
  /* An upload with no block for this long is dropped (uploads_expired);
   * 0: EXCHANGE_LIFETIME (247 s with the defaults). */
  uint32_t upload_idle_ms;
  /* Notifications queued by all observers of ck_observer_new() together,
   * 1000000; beyond it an observer's own oldest waiting one drops. */
  uint32_t max_queued_notes;
  /* Representations kept for block-wise transfers (RFC 7959 §2.4, and
   * §3.2 for the answer to a POST): an answer sent in Block2 blocks is
   * kept for its client, so the handler runs once per transfer and the
   * later blocks come from it. One is forgotten after its last block, or
   * when rep_idle_ms pass without a request for it (0: EXCHANGE_LIFETIME),
   * or when ck_resource_changed() is called for its resource (GET and
   * FETCH). At most rep_max_entries (0: 1024) holding rep_max_bytes of
   * payload (0: 256 MiB): beyond them the least recently used is
   * forgotten if it has waited ACK_TIMEOUT * ACK_RANDOM_FACTOR (3 s)
   * (stats.rep_evictions), else the answer is 5.03 with Max-Age
   * (stats.rep_refused). */
  uint32_t rep_max_entries;
  size_t rep_max_bytes;
  uint32_t rep_idle_ms;
  /* Threads receiving and sending on each plain-UDP listener (0 or 1:
   * none besides the loop's; at most CK_WORKERS_MAX). With N > 1,
   * ck_ctx_listen() opens N sockets on the address with SO_REUSEPORT,
   * so the kernel gives each peer to one of them, and each socket has a
   * thread of its own that receives and sends. One lock serializes all
   * protocol and application work: the loop's thread holds it except
   * while it waits in ck_run() or ck_ctx_process(), and a worker takes
   * it only to hand its datagrams to the protocol, so callbacks still
   * run one at a time and need no locks of their own. Only the kernel's
   * datagram work runs in parallel. An application that drives the
   * context from its own poll loop (ck_ctx_fd) lets the workers run
   * only inside ck_ctx_process(). DTLS endpoints and clients have no
   * workers. */
  uint32_t workers;
};

/* The largest ck_ctx_config.workers. */
#define CK_WORKERS_MAX 64

/* For ck_ctx_config.echo_amplification: no amplification check. */
#define CK_ECHO_OFF UINT32_MAX

/* Creates a context. cfg may be NULL for defaults. Returns 0 and stores
 * the context in *out, or CK_EINVAL (out NULL, a parameter out of
 * range), CK_ENOMEM or CK_ESYS. Like every constructor of the library,
 * it takes its out-parameter last. */
CK_EXPORT int ck_ctx_new(const struct ck_ctx_config *cfg,
                         struct ck_ctx **out);

/* Closes every endpoint and frees the context and everything it owns.
 * Pending request callbacks fire with CK_ECANCELED first. A NULL ctx is
 * ignored. */
CK_EXPORT void ck_ctx_free(struct ck_ctx *ctx);

/* Opens a UDP endpoint bound to addr (port 0 picks a free port) that
 * accepts requests for the context's resources. Returns 0, CK_EINVAL
 * when ctx or addr is NULL or addr is neither IPv4 nor IPv6, CK_ENOMEM,
 * or CK_ESYS with errno set, e.g. EADDRINUSE. */
CK_EXPORT int ck_ctx_listen(struct ck_ctx *ctx, const struct ck_addr *addr);

/* Stores the local address of the i-th endpoint (in ck_ctx_listen order)
 * in *out. Returns 0, CK_ENOTFOUND (no i-th endpoint) or CK_EINVAL (ctx
 * or out NULL). */
CK_EXPORT int ck_ctx_local_addr(struct ck_ctx *ctx, unsigned i,
                                struct ck_addr *out);

/* Joins the multicast group (e.g. "224.0.1.187", "ff02::fd") on every
 * endpoint of the group's family, on interface ifname (NULL: the
 * default). Requests sent to the group are then answered after a random
 * leisure and never with 4.xx/5.xx (RFC 7252 §8.2). Returns 0 when at
 * least one endpoint joined, else CK_EINVAL (ctx or group NULL, group
 * not a multicast address, or no interface named ifname), CK_ESYS (errno
 * set), or CK_ENOTFOUND when no endpoint of the group's family is
 * listening (yet). */
CK_EXPORT int ck_ctx_join(struct ck_ctx *ctx, const char *group,
                          const char *ifname);

/* The file descriptor to watch for readability in an application's loop,
 * and the number of milliseconds until the next timer (-1: none; no
 * output ever waits for the next iteration, see above). Both return CK_EINVAL for a NULL ctx, which for
 * ck_ctx_timeout() is the same -1. */
CK_EXPORT int ck_ctx_fd(const struct ck_ctx *ctx);
CK_EXPORT int ck_ctx_timeout(struct ck_ctx *ctx);

/* Processes what is ready, waiting at most timeout_ms (0: do not wait,
 * -1: wait for the next event or timer). Returns the number of events
 * and timers handled, CK_ESYS when waiting failed (errno set; an
 * interrupted wait is not an error), or CK_EINVAL for a NULL ctx. */
CK_EXPORT int ck_ctx_process(struct ck_ctx *ctx, int timeout_ms);

/* Runs the loop until ck_stop() is called. Returns 0, or the first error
 * of ck_ctx_process() (CK_ESYS, or CK_EINVAL for a NULL ctx). */
CK_EXPORT int ck_run(struct ck_ctx *ctx);

/* Makes ck_run() return after the current iteration. Safe to call from a
 * callback; not from another thread or a signal handler (use
 * ck_stop_fd() there). A NULL ctx is ignored. */
CK_EXPORT void ck_stop(struct ck_ctx *ctx);

/* A descriptor that stops ck_run() when one byte is written to it, for
 * signal handlers and other threads; CK_EINVAL for a NULL ctx. */
CK_EXPORT int ck_stop_fd(const struct ck_ctx *ctx);

/* Replaces the monotonic clock (milliseconds) and the random source, for
 * deterministic tests. A NULL function restores the default; a NULL ctx
 * is ignored. */
CK_EXPORT void ck_ctx_set_clock(struct ck_ctx *ctx,
                                uint64_t (*now_ms)(void *user), void *user);
CK_EXPORT void
ck_ctx_set_random(struct ck_ctx *ctx,
                  void (*fill)(void *user, void *buf, size_t len), void *user);

/* Log levels of the library's messages. */
enum ck_log_level {
  CK_LOG_ERROR = 0,
  CK_LOG_WARN = 1,
  CK_LOG_INFO = 2,
  CK_LOG_DEBUG = 3,
};

/* Receives the library's log lines: what went wrong that no caller was
 * there to be told (a handler's response that did not fit, a failed
 * send). msg is one line without a newline, valid during the call. */
typedef void (*ck_log_cb)(void *user, enum ck_log_level level,
                          const char *msg);

/* Sets the log hook (NULL: the library logs nothing, the default). A
 * NULL ctx is ignored. */
CK_EXPORT void ck_ctx_set_log(struct ck_ctx *ctx, ck_log_cb cb, void *user);

/* Counters an operator can read. */
struct ck_stats {
  uint64_t rx_datagrams;
  uint64_t tx_datagrams;
  uint64_t rx_malformed;   /* format errors (answered with RST for CON) */
  uint64_t rx_duplicates;  /* retransmitted requests answered from cache */
  uint64_t tx_retransmits;
  uint64_t tx_dropped;     /* sends that failed or found no room */
  uint64_t dedup_evictions; /* exchanges forgotten early: table at its cap */
  uint64_t dedup_refused;  /* exchanges not remembered: oldest too young */
  uint64_t dedup_bytes;    /* current: memory the dedup table holds */
  uint64_t observers;      /* current */
  uint64_t observers_rejected; /* refused because of max_observers */
  uint64_t uploads_rejected;   /* refused because of max_uploads */
  uint64_t responses_failed;   /* handler answers that could not be built
                                * as given (an option or payload did not
                                * fit): answered 5.00 and logged */
  uint64_t notify_dropped;     /* notifications an observer's full queue
                                * dropped (ck_observer_notify) */
  /* RFC 9175 (ck_ctx_config.echo_*): */
  uint64_t echo_challenges;    /* large answers replaced by 4.01 + Echo */
  uint64_t echo_fresh_challenges; /* state-changing requests refused for
                                   * want of a fresh Echo */
  uint64_t echo_rejected;      /* Echo values forged, altered, for another
                                * address or expired */
  uint64_t echo_verified;      /* sources entered in the verified table */
  uint64_t echo_evictions;     /* verified sources forgotten at the cap */
  uint64_t echo_dropped;       /* answers not sent: even the 4.01 would
                                * have been too large */
  uint64_t rep_entries;  /* current: representations kept for Block2 */
  uint64_t rep_bytes;    /* current: their payload bytes */
  uint64_t rep_evictions; /* forgotten early: the cache at its cap */
  uint64_t rep_refused;  /* answered 5.03: the cache full of young ones */
  /* Responses sent (piggybacked, separate and notifications), by code
   * byte: responses[CK_NOT_FOUND] counts the 4.04s. */
  uint64_t responses[256];
  /* Limits (struct ck_ctx_config): what is held now, and what was
   * refused or reaped. */
  uint64_t peers;              /* current: peers holding state */
  uint64_t peers_rejected;     /* refused because of max_peers */
  uint64_t observers_rejected_peer;     /* max_observers_per_peer */
  uint64_t observers_rejected_resource; /* max_observers_per_resource */
  uint64_t uploads;            /* current Block1 reassemblies */
  uint64_t upload_bytes;       /* current: bytes they hold */
  uint64_t uploads_rejected_peer;  /* refused: max_uploads_per_peer */
  uint64_t uploads_rejected_bytes; /* ended: max_upload_bytes */
  uint64_t uploads_expired;    /* dropped after upload_idle_ms */
  uint64_t notify_queued;      /* current: notifications queued */
  uint64_t notify_dropped_cap; /* of notify_dropped: max_queued_notes */
};

/* Copies the counters to *out; does nothing when ctx or out is NULL. */
CK_EXPORT void ck_ctx_stats(const struct ck_ctx *ctx, struct ck_stats *out);

#ifdef __cplusplus
}
#endif

#endif
