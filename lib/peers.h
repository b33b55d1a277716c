/* The state each peer holds on the server (peers.c): how many observers
 * and Block1 uploads one source has, so that one source cannot take a
 * whole table. Internal to libcoapkit. */
#ifndef CK_PEERS_H
#define CK_PEERS_H

#include "ctx.h"

struct ck__peer;

enum ck__peer_kind { CK__PEER_OBSERVER, CK__PEER_UPLOAD };

/* Counts one more item of kind for peer. Returns the peer's entry, or
 * NULL when a cap says no: max_peers for a new peer, the per-peer cap of
 * kind for a known one (each counted in ctx->stats), or no memory
 * (*full is then false). */
struct ck__peer *ck__peer_hold(struct ck_ctx *ctx, const struct ck_addr *peer,
                               enum ck__peer_kind kind, bool *full);

/* Counts one item of kind less for p (NULL is ignored); the entry goes
 * when it holds nothing. */
void ck__peer_release(struct ck_ctx *ctx, struct ck__peer *p,
                      enum ck__peer_kind kind);

/* Frees the table; every hold must have been released. */
void ck__peers_close(struct ck_ctx *ctx);

#endif
