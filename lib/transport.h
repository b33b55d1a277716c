/* The transport seam: what the messaging layer needs from a way of moving
 * datagrams. An endpoint (struct ck__ep) is one socket of a context; its
 * transport is a table of functions, so UDP (udp.c), DTLS (dtls.c) and
 * TCP or WebSockets later plug in without an #ifdef in the layers above.
 *
 * Receiving: a transport hands every datagram it reads (already decrypted,
 * for DTLS) to ck__input() of the messaging layer, and every ICMP error it
 * learns of to ck__input_icmp(). Sending: the messaging layer asks for a
 * buffer (out_begin), builds a message into it and commits it (out_commit);
 * flush() pushes what was committed to the network. Internal to
 * libcoapkit. */
#ifndef CK_TRANSPORT_H
#define CK_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "coapkit/addr.h"
#include "coapkit/client.h"
#include "loop.h"

struct ck_ctx;

/* Datagrams per recvmmsg/sendmmsg call, and the largest datagram. */
enum { CK__BATCH = 32, CK__DGRAM_MAX = 1600 };

struct ck__ep;

/* The transport seam: how the messaging layer sends on an endpoint. A
 * message is built in place into the buffer out_begin() returns, then
 * queued with out_commit(); flush() pushes queued datagrams to the
 * network. UDP builds straight into its sendmmsg batch; DTLS builds
 * into a plaintext buffer and encrypts and sends on commit. */
struct ck__transport {
  const char *name;
  uint8_t *(*out_begin)(struct ck__ep *ep, size_t *cap);
  int (*out_commit)(struct ck__ep *ep, const struct ck_addr *to, size_t len);
  void (*flush)(struct ck__ep *ep);
  /* Joins a multicast group; NULL when the transport cannot (DTLS). */
  int (*join)(struct ck__ep *ep, const char *group, const char *ifname);
  /* Closes the socket and frees the endpoint. */
  void (*free)(struct ck__ep *ep);
};

/* What every endpoint has; a transport allocates a larger structure that
 * begins with this one and keeps its own state (batches, sessions) in the
 * rest. */
struct ck__ep {
  struct ck__io io; /* first: the loop's callback casts back */
  struct ck_ctx *ctx;
  struct ck__ep *next;
  const struct ck__transport *tp;
  struct ck_addr local;
  bool multicast; /* joined a group: look at each datagram's destination */
  bool client;    /* an ephemeral endpoint of a client */
  bool secure;    /* DTLS (dtls.c): coaps:// */
  /* One of a listener's SO_REUSEPORT sockets after the first (udp.c);
   * not a listener of its own. */
  bool sibling;
  unsigned nsend; /* datagrams committed and not yet flushed */
};

/* Opens a UDP endpoint bound to addr (udp.c). */
int ck__udp_open(struct ck_ctx *ctx, const struct ck_addr *addr,
                 struct ck__ep **out);

/* Opens a listening endpoint bound to addr: one endpoint, or with
 * ck_ctx_config.workers = N > 1 a chain of N (linked by next) sharing the
 * address, each read by a worker thread instead of the loop; all but the
 * first are siblings (udp.c). */
int ck__udp_listen(struct ck_ctx *ctx, const struct ck_addr *addr,
                   struct ck__ep **out);

/* Stops and joins the threads of the siblings in the list eps; the
 * caller holds the context's gate, and holds it again on return. */
void ck__udp_workers_stop(struct ck_ctx *ctx, struct ck__ep *eps);

/* Makes a non-blocking UDP socket bound to addr, with the context's
 * buffer sizes and IP_RECVERR, for udp.c and dtls.c. Returns 0 and the
 * descriptor in *fd, CK_EINVAL (not IPv4/IPv6) or CK_ESYS. */
int ck__udp_socket(struct ck_ctx *ctx, const struct ck_addr *addr, int *fd);

/* Reads ep's socket error queue and hands ICMP errors to
 * ck__input_icmp(). */
void ck__udp_drain_errors(struct ck__ep *ep);

/* Opens a client endpoint of the given family (ephemeral port). */
int ck__udp_open_client(struct ck_ctx *ctx, int family,
                        const struct ck_sockopt *opts, size_t nopts,
                        struct ck__ep **out);

#endif
