/* The server side of the Echo option (RFC 9175 §2.2-§2.4): Echo values
 * that validate themselves, the table of source addresses that proved
 * they receive what is sent to them, and the gate that keeps a response
 * to an unverified source within a multiple of its request. Internal to
 * libcoapkit. */
#ifndef CK_ECHO_H
#define CK_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coapkit/addr.h"

struct ck_ctx;
struct ck__reply;

/* An Echo value we make: 4 bytes of the context's clock (milliseconds,
 * wrapping) and 8 bytes of a keyed MAC over them and the peer's address.
 * RFC 9175 §2.2.1 allows 1 to 40 bytes; 12 keeps the 4.01 that carries
 * it small, so the challenge itself does not amplify. */
enum { CK__ECHO_LEN = 12, CK__ECHO_OPT_MAX = 40 };

/* Writes a fresh Echo value for peer into out. */
void ck__echo_make(struct ck_ctx *ctx, const struct ck_addr *peer,
                   uint8_t out[CK__ECHO_LEN]);

/* Checks an Echo value that a request from peer carried: 0 when we made
 * it for peer at most max_age_ms ago, CK_ETIMEDOUT when it is older (or
 * from the future), CK_EINVAL when we did not make it for peer (wrong
 * length, another address, altered bytes). */
int ck__echo_check(struct ck_ctx *ctx, const struct ck_addr *peer,
                   const uint8_t *val, size_t len, uint32_t max_age_ms);

/* Whether peer is in the verified table and still fresh there. */
bool ck__echo_is_verified(struct ck_ctx *ctx, const struct ck_addr *peer);

/* Enters peer in the verified table for echo_verified_ms (refreshing it
 * if already there); at echo_verified_max the oldest entry goes
 * (counted in echo_evictions). Returns 0 or CK_ENOMEM. */
int ck__echo_mark_verified(struct ck_ctx *ctx, const struct ck_addr *peer);

/* The amplification gate, called by ck__send_reply() only when the
 * response in buf (n bytes) is larger than the allowed multiple of the
 * request. Returns n when the peer is verified (or proves it now with a
 * valid Echo), else replaces buf's content with a 4.01 carrying a new
 * Echo (type and mid as given) and returns its length, or 0 when even
 * that would be too large (nothing is sent). Sets rp->echo_refused when
 * the answer was replaced or dropped. */
int ck__echo_gate(struct ck_ctx *ctx, struct ck__reply *rp, uint8_t *buf,
                  size_t cap, int n, uint8_t type, uint16_t mid);

/* RFC 9175 §2.4 item 1: with echo_require_fresh, whether a
 * state-changing request from rp's peer must be refused with 4.01 and a
 * new Echo (true) because it carries no valid, fresh Echo. */
bool ck__echo_need_fresh(struct ck_ctx *ctx, const struct ck__reply *rp);

/* After a reply whose answer the gate replaced: ends the observation the
 * request registered, so nothing more goes to an unverified source. */
void ck__echo_unobserve(struct ck_ctx *ctx, const struct ck__reply *rp);

void ck__echo_free(struct ck_ctx *ctx);

#endif
