/* The inside of struct ck_ctx, shared by the modules of the library: the
 * transports (transport.h), the messaging layer (messaging.h, exchange.c,
 * mid.c), the server (server.c, block.c, observe.c) and the client.
 * Internal to libcoapkit. */
#ifndef CK_CTX_H
#define CK_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "coapkit/client.h"
#include "coapkit/ctx.h"
#include "coapkit/dtls.h"
#include "coapkit/msg.h"
#include "coapkit/server.h"
#include "loop.h"
#include "messaging.h"
#include "transport.h"

struct ck__dedup;
struct ck__mids;
struct ck__cons;
struct ck__observers;
struct ck__uploads;
struct ck__echo;
struct ck__peers;
struct ck__repcache;

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
  struct ck__mids *mids; /* mid.c: the Message ID of each peer */
  void (*random)(void *user, void *buf, size_t len);
  void *random_user;
  /* Bytes drawn ahead from the OS source (ctx.c): a busy server needs 4
   * random bytes per CON and would otherwise make a system call each. */
  uint8_t rnd[256];
  uint16_t rnd_left;
  struct ck_stats stats;
  struct ck_dtls_stats dtls_stats; /* dtls.c */
  struct ck__dedup *dedup;
  struct ck__cons *cons;
  struct ck__observers *obs;
  struct ck__uploads *uploads;
  struct ck__echo *echo; /* echo.c: key and verified sources */
  struct ck__peers *peers; /* peers.c: state held per peer */
  struct ck__repcache *reps; /* repcache.c: created on first use */
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
  struct ck_watch *dead_watches; /* handles.c: freed during callbacks */
  struct ck__resolver *resolver; /* resolve.c: created on the first name */
  ck_log_cb log;
  void *log_user;
};

/* Formats one line to the context's log hook, if any (ctx.c). */
void ck__log(struct ck_ctx *ctx, enum ck_log_level level, const char *fmt,
             ...) __attribute__((format(printf, 3, 4)));

/* Frees the watches freed during the last iteration (handles.c). */
void ck__watches_reap(struct ck_ctx *ctx);

/* Flushes every endpoint's queued datagrams. */
void ck__flush_all(struct ck_ctx *ctx);

/* Brackets sends made by a public call that may run outside the loop
 * (ck_resource_changed, ck_observer_notify): inside the pair, sends are
 * batched; ck__batch_end() flushes them when the call came from outside
 * an iteration, so they leave before the call returns (ctx.h), and
 * leaves them to the iteration's batch otherwise. */
static inline bool ck__batch_begin(struct ck_ctx *ctx)
{
  return ctx->loop.depth++ == 0;
}

static inline void ck__batch_end(struct ck_ctx *ctx, bool outside)
{
  ctx->loop.depth--;
  if (outside)
    ck__flush_all(ctx);
}

/* Gives every zero field of p its RFC 7252 §4.8 default (and turns
 * CK_MAX_RETRANSMIT_NONE into 0), for contexts and clients alike.
 * Returns 0, or CK_EINVAL for a value out of range (see ck_params). */
int ck__params_fill(struct ck_params *p);

/* Fills buf with random bytes from the context's source. */
void ck__random(struct ck_ctx *ctx, void *buf, size_t len);


#endif
