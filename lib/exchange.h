/* The messaging layer (RFC 7252 §4): confirmable messages we send, with
 * their retransmission and matching of ACK/RST by Message ID, and (in
 * dedup.h, included here) the deduplication table of received messages.
 * Internal to libcoapkit. */
#ifndef CK_EXCHANGE_H
#define CK_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "dedup.h"

int ck__exchange_init(struct ck_ctx *ctx);
void ck__exchange_close(struct ck_ctx *ctx);

/* --- confirmable messages we send (RFC 7252 §4.2) --- */

struct ck__con;

/* Result: 0 when ACKed (ack is the ACK, possibly carrying a response),
 * CK_ERESET, CK_ETIMEDOUT, or CK_ECANCELED when the context closes. */
typedef void (*ck__con_cb)(struct ck_ctx *ctx, void *user, int result,
                           const struct ck_msg *ack);

/* Sends the CON message msg (copied; its MID identifies it) and
 * retransmits it until it is acknowledged, reset, or MAX_RETRANSMIT is
 * exhausted; then calls cb exactly once. params (NULL: the context's)
 * must outlive the message. Returns the handle, or NULL when out of
 * memory (cb is not called then). */
struct ck__con *ck__con_send(struct ck_ctx *ctx, struct ck__ep *ep,
                             const struct ck_addr *peer, const uint8_t *msg,
                             size_t len, const struct ck_params *params,
                             ck__con_cb cb, void *user);

/* Also counts c's retransmissions in *counter (a client's statistics). */
void ck__con_count_into(struct ck__con *c, uint64_t *counter);

/* Lets c's owner refuse an ACK that matches c by Message ID but cannot
 * be its answer: f returns false for such an ACK, which is then silently
 * ignored (RFC 7252 §4.2) while c stays pending and is retransmitted. */
typedef bool (*ck__con_filter)(void *user, const struct ck_msg *ack);
void ck__con_filter_acks(struct ck__con *c, ck__con_filter f);

/* Forgets c without calling its callback. */
void ck__con_cancel(struct ck_ctx *ctx, struct ck__con *c);

/* Offers a received ACK or RST to the pending CONs. Returns true when it
 * matched one (whose callback has then run). */
bool ck__con_input(struct ck_ctx *ctx, const struct ck_addr *peer,
                   const struct ck_msg *m);

/* Fails every pending CON to peer with err (e.g. CK_EUNREACH after an
 * ICMP error). Returns how many. */
int ck__con_fail_peer(struct ck_ctx *ctx, const struct ck_addr *peer,
                      int err);

/* Number of CONs awaiting an answer. */
size_t ck__con_count(const struct ck_ctx *ctx);

#endif
