/* The messaging layer's entry points (RFC 7252 §4): where transports hand
 * in what they receive, where everything above sends, and the hooks by
 * which received messages reach the server and the client. Internal to
 * libcoapkit. */
#ifndef CK_MESSAGING_H
#define CK_MESSAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coapkit/msg.h"
#include "transport.h"

/* From transports: a datagram arrived on ep from `from` (len larger than
 * CK__DGRAM_MAX means it was cut); dst_multicast tells whether it was
 * sent to a group address. */
void ck__input(struct ck__ep *ep, const struct ck_addr *from,
               const uint8_t *buf, size_t len, bool dst_multicast);

/* From transports: an ICMP error (err, e.g. CK_EUNREACH) arrived for a
 * datagram we sent to peer, or the kernel refused to send to it. */
void ck__input_icmp(struct ck__ep *ep, const struct ck_addr *peer, int err);

/* Sends one datagram (copied) on ep. Inside a loop iteration it joins the
 * endpoint's batch; outside, it leaves before this returns (ctx.h).
 * Returns 0 or an error. A failure is counted in tx_dropped and is, to
 * the protocol, a datagram the network lost: a CON is retransmitted, a
 * NON or an ACK is repeated when the peer repeats its message. So most
 * callers rightly go on (and say so with a (void) cast). */
int ck__ep_send(struct ck__ep *ep, const struct ck_addr *to, const uint8_t *buf,
                size_t len);

/* Writes the 4 bytes of an empty message (ACK, RST, or a CON ping). */
void ck__empty_msg(uint8_t out[4], uint8_t type, uint16_t mid);

/* Sends an empty ACK or RST with mid. */
void ck__send_empty(struct ck__ep *ep, const struct ck_addr *to, uint8_t type,
                    uint16_t mid);

/* The next Message ID to use with peer (mid.c), and the table's end. */
uint16_t ck__next_mid(struct ck_ctx *ctx, const struct ck_addr *peer);
void ck__mids_free(struct ck_ctx *ctx);

/* --- the layers above, called by ck__input() --- */

/* server.c: a request (code class 0, not empty) that is not a duplicate
 * of one the messaging layer already answered. */
void ck__server_request(struct ck__ep *ep, const struct ck_addr *from,
                        const struct ck_msg *m, bool mc);

/* server.c: a datagram larger than we accept; m holds its parsed header
 * (RFC 7959 §2.9.3: a CON request gets 4.13 with Size1). */
void ck__server_too_large(struct ck__ep *ep, const struct ck_addr *from,
                          const struct ck_msg *m, const uint8_t *buf);

/* observe.c: an RST that may cancel an observation (true when it did);
 * a peer that is gone (ICMP): its observations end. */
bool ck__observe_rst(struct ck_ctx *ctx, const struct ck_addr *peer,
                     uint16_t mid);
void ck__observe_peer_gone(struct ck_ctx *ctx, const struct ck_addr *peer);

/* client.c: a response (CON or NON) arrived; returns true when a call
 * took it. An RST arrived that no pending CON matched (a NON request's
 * rejection). An ICMP error arrived for peer, whose pending CONs have
 * already been failed (ck__input_icmp()). */
bool ck__client_input(struct ck_ctx *ctx, struct ck__ep *ep,
                      const struct ck_addr *from, const struct ck_msg *m);
void ck__client_rst(struct ck_ctx *ctx, const struct ck_addr *from,
                    uint16_t mid);
void ck__client_icmp(struct ck_ctx *ctx, const struct ck_addr *peer, int err);

#endif
