/* The messaging layer's routing (RFC 7252 §4): the one place every
 * received datagram enters, whatever its transport, and the one place
 * every datagram leaves through.
 *
 * ck__input() parses a datagram into a zero-copy view and sorts it:
 *  - malformed: RST when it is a CON (§4.2), silence otherwise; counted;
 *  - ACK and RST: to the pending CONs (exchange.c), which match them by
 *    Message ID and peer; an RST nobody's CON expects may cancel an
 *    observation (RFC 7641 §3.6) or reject a client's NON request;
 *  - empty CON: a ping, answered with RST (§4.3);
 *  - requests: to the server (server.c);
 *  - responses: a retransmission we already acknowledged gets the same
 *    answer again, anything else goes to the client, and what no call
 *    expects is rejected with RST (§4.2, §4.3).
 * ICMP errors that transports read come in through ck__input_icmp() and
 * end the peer's exchanges and observations at once.
 */
#include <string.h>

#include "exchange.h"
#include "srv.h"

void ck__empty_msg(uint8_t out[4], uint8_t type, uint16_t mid)
{
  out[0] = (uint8_t)(CK_COAP_VERSION << 6 | type << 4);
  out[1] = CK_CODE_EMPTY;
  out[2] = (uint8_t)(mid >> 8);
  out[3] = (uint8_t)mid;
}

void ck__send_empty(struct ck__ep *ep, const struct ck_addr *to, uint8_t type,
                    uint16_t mid)
{
  uint8_t m[4];
  ck__empty_msg(m, type, mid);
  (void)ck__ep_send(ep, to, m, sizeof m);
}

int ck__ep_send(struct ck__ep *ep, const struct ck_addr *to, const uint8_t *buf,
                size_t len)
{
  size_t cap;
  uint8_t *out = ep->tp->out_begin(ep, &cap);
  if (!out || len > cap) {
    ep->ctx->stats.tx_dropped++;
    return CK_ENOSPC;
  }
  memcpy(out, buf, len);
  int rc = ep->tp->out_commit(ep, to, len);
  /* The contract of ctx.h: a send made outside a callback (a request
   * started by the application, a deferred answer sent later) leaves
   * before the call returns, so an application that then sleeps for
   * ck_ctx_timeout() does not hold it back. */
  if (ep->ctx->loop.depth == 0)
    ep->tp->flush(ep);
  return rc;
}

/* A response (class 2-5) that is not an ACK: a separate response, a NON
 * response or a notification. */
static void response_input(struct ck__ep *ep, const struct ck_addr *from,
                           const struct ck_msg *m, bool mc)
{
  struct ck_ctx *ctx = ep->ctx;
  struct ck__dd_entry *dd = ck__dedup_find(ctx, from, m->mid);
  if (dd) {
    /* Our ACK was lost and the server retransmits: answer the same way,
     * deliver nothing twice (§4.5). */
    size_t clen;
    const uint8_t *cached = ck__dedup_cached(dd, &clen);
    ctx->stats.rx_duplicates++;
    if (cached)
      (void)ck__ep_send(ep, from, cached, clen);
    return;
  }
  /* An unexpected NON is rejected with RST too: that is how a server
   * learns that a NON notification's observer forgot it (RFC 7641
   * §3.6). */
  if (!mc && !ck__client_input(ctx, ep, from, m))
    ck__send_empty(ep, from, CK_TYPE_RST, m->mid);
}

void ck__input(struct ck__ep *ep, const struct ck_addr *from,
               const uint8_t *buf, size_t len, bool mc)
{
  struct ck_ctx *ctx = ep->ctx;
  struct ck_msg m;
  if (len > CK__DGRAM_MAX) {
    if (ck_msg_parse(&m, buf, CK__DGRAM_MAX) != CK_EMSG_SHORT && !mc)
      ck__server_too_large(ep, from, &m, buf);
    ctx->stats.rx_malformed++;
    return;
  }
  int rc = ck_msg_parse(&m, buf, len);
  if (rc < 0) {
    ctx->stats.rx_malformed++;
    /* §4.2/§4.3: a CON with a format error is rejected with RST;
     * anything else is silently dropped. */
    if (rc != CK_EMSG_SHORT && rc != CK_EMSG_VERSION && m.type == CK_TYPE_CON &&
        !mc)
      ck__send_empty(ep, from, CK_TYPE_RST, m.mid);
    return;
  }
  if (m.type == CK_TYPE_ACK || m.type == CK_TYPE_RST) {
    /* §4.2, §4.3: an RST is always empty, and an ACK is empty or carries
     * a response. Anything else is a format error, and rejecting an ACK
     * or RST means ignoring it silently: the exchange goes on as if it
     * had never come. */
    if ((m.type == CK_TYPE_RST && m.code != CK_CODE_EMPTY) ||
        (m.type == CK_TYPE_ACK && m.code != CK_CODE_EMPTY &&
         CK_CODE_CLASS(m.code) == 0)) {
      ctx->stats.rx_malformed++;
      return;
    }
    if (ck__con_input(ctx, from, &m))
      return;
    if (m.type == CK_TYPE_RST && !ck__observe_rst(ctx, from, m.mid))
      ck__client_rst(ctx, from, m.mid);
    return;
  }
  if (m.code == CK_CODE_EMPTY) {
    /* §4.3: an empty CON is a ping, answered with RST; an empty NON is
     * rejected silently. */
    if (m.type == CK_TYPE_CON && !mc)
      ck__send_empty(ep, from, CK_TYPE_RST, m.mid);
    return;
  }
  if (CK_CODE_CLASS(m.code) != 0) {
    response_input(ep, from, &m, mc);
    return;
  }
  ck__server_request(ep, from, &m, mc);
}

void ck__input_icmp(struct ck__ep *ep, const struct ck_addr *peer, int err)
{
  struct ck_ctx *ctx = ep->ctx;
  /* The port is closed or the host unreachable: pending CONs to it fail
   * at once (the client's calls and the server's CON notifications), and
   * so do its NON observations, which would otherwise last until the
   * next daily CON (RFC 7641 §4.5). */
  ck__con_fail_peer(ctx, peer, err);
  ck__client_icmp(ctx, peer, err);
  ck__observe_peer_gone(ctx, peer);
}
