/* The inside of struct ck_ctx and of an endpoint, shared by the modules of
 * the library: the transport seam (udp.c now, DTLS later), the messaging
 * layer (exchange.c) and the server (server.c, block.c, observe.c).
 * Internal to libcoapkit. */
#ifndef CK_CTX_H
#define CK_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "coapkit/client.h"
#include "coapkit/ctx.h"
#include "coapkit/msg.h"
#include "coapkit/server.h"
#include "loop.h"

/* Datagrams per recvmmsg/sendmmsg call, and the largest datagram. */
enum { CK__BATCH = 32, CK__DGRAM_MAX = 1600 };

struct ck__ep;

/* The transport seam: how the messaging layer sends on an endpoint. A
 * message is built in place into the buffer out_begin() returns, then
 * queued with out_commit(); flush() pushes queued datagrams to the
 * network. UDP builds straight into its sendmmsg batch; DTLS will build
 * into a plaintext buffer and encrypt on commit. */
struct ck__transport {
  const char *name;
  uint8_t *(*out_begin)(struct ck__ep *ep, size_t *cap);
  int (*out_commit)(struct ck__ep *ep, const struct ck_addr *to,
                    size_t len);
  void (*flush)(struct ck__ep *ep);
  void (*close)(struct ck__ep *ep);
};

struct ck__ep {
  struct ck__io io;
  struct ck_ctx *ctx;
  struct ck__ep *next;
  const struct ck__transport *tp;
  struct ck_addr local;
  bool multicast; /* joined a group: look at each datagram's destination */
  bool client;    /* an ephemeral endpoint of a client */
  unsigned nsend;
  struct mmsghdr smsg[CK__BATCH];
  struct iovec siov[CK__BATCH];
  struct ck_addr sto[CK__BATCH];
  uint8_t sbuf[CK__BATCH][CK__DGRAM_MAX];
  struct mmsghdr rmsg[CK__BATCH];
  struct iovec riov[CK__BATCH];
  struct ck_addr rfrom[CK__BATCH];
  uint8_t rctl[CK__BATCH][64];
  uint8_t rbuf[CK__BATCH][CK__DGRAM_MAX];
};

/* Sends one datagram (copied). Returns 0 or an error. */
int ck__ep_send(struct ck__ep *ep, const struct ck_addr *to,
                const uint8_t *buf, size_t len);

/* Opens a UDP endpoint (udp.c). */
int ck__udp_open(struct ck_ctx *ctx, const struct ck_addr *addr,
                 struct ck__ep **out);
int ck__udp_join(struct ck__ep *ep, const char *group, const char *ifname);

struct ck__dedup;
struct ck__cons;
struct ck__observers;
struct ck__uploads;

/* Recognised critical options, as a bitmap over 0..65535. */
enum { CK__OPTBITS_WORDS = 65536 / 64 };

struct ck_ctx {
  struct ck__loop loop;
  struct ck_ctx_config cfg;
  uint64_t exchange_lifetime;
  uint64_t non_lifetime;
  struct ck__ep *eps;
  unsigned neps;
  int stop_pipe[2];
  struct ck__io stop_io;
  uint16_t next_mid;
  void (*random)(void *user, void *buf, size_t len);
  void *random_user;
  struct ck_stats stats;
  struct ck__dedup *dedup;
  struct ck__cons *cons;
  struct ck__observers *obs;
  struct ck__uploads *uploads;
  struct ck_resource *resources; /* list, in creation order */
  struct ck_resource *resources_tail;
  uint64_t known_opts[CK__OPTBITS_WORDS];
  uint64_t etag_seed;
  uint64_t dd_idem_until; /* server.c: when remembered idempotent
                           * exchanges (deferred ones) have all expired */
  void *srv_lists;                  /* server.c: deferred and delayed */
  struct ck_deferred *spare_deferred; /* server.c: reused per request */
  struct ck__timer sweep;
  struct ck_client *clients; /* client.c: every client of the context */
};

/* Called by a transport for every datagram received. dst_multicast tells
 * whether it was sent to a group address. */
void ck__input(struct ck__ep *ep, const struct ck_addr *from,
               const uint8_t *buf, size_t len, bool dst_multicast);

/* client.c: a response (CON or NON) arrived; returns true when a call
 * took it. An RST arrived that no pending CON matched (a NON request's
 * rejection). An ICMP error arrived for peer. */
bool ck__client_input(struct ck_ctx *ctx, struct ck__ep *ep,
                      const struct ck_addr *from, const struct ck_msg *m);
void ck__client_rst(struct ck_ctx *ctx, const struct ck_addr *from,
                    uint16_t mid);
void ck__client_icmp(struct ck_ctx *ctx, const struct ck_addr *peer, int err);

/* Opens a client endpoint of the family of addr (ephemeral port). */
int ck__udp_open_client(struct ck_ctx *ctx, int family,
                        const struct ck_sockopt *opts, size_t nopts,
                        struct ck__ep **out);

/* Flushes every endpoint's queued datagrams. */
void ck__flush_all(struct ck_ctx *ctx);

/* Gives every zero field of p its RFC 7252 §4.8 default (and turns
 * CK_MAX_RETRANSMIT_NONE into 0), for contexts and clients alike.
 * Returns 0, or CK_EINVAL for a value out of range (see ck_params). */
int ck__params_fill(struct ck_params *p);

/* Fills buf with random bytes from the context's source. */
void ck__random(struct ck_ctx *ctx, void *buf, size_t len);

/* The next Message ID of this context. */
uint16_t ck__next_mid(struct ck_ctx *ctx);

#endif
