/* One call's conversation: what it sends next, and what each answer
 * means to it.
 *
 * Every message of a call is its request template once more, with the
 * options its state asks for: the next Block1 slice while UPLOADING, a
 * Block2 number while DOWNLOADING, Observe 0 to (re-)register and 1 to
 * deregister. A CON goes through the messaging layer (exchange.c), which
 * retransmits it and hands back its ACK (on_con); a NON waits on the
 * call's own timer. An answer, piggybacked or on its own, goes through
 * ck__call_response(), which moves the call to its next state or ends
 * it.
 */
#include <string.h>

#include "client_call.h"

struct send_opts {
  const struct ck__tok *tok;
  uint8_t method;
  int observe;  /* -1: none */
  bool block1;  /* send block up_num of the upload */
  bool block2;  /* ask for block down_num */
  bool payload; /* carry the payload (or the Block1 slice) */
};

static void on_con(struct ck_ctx *ctx, void *user, int result,
                   const struct ck_msg *ack);

/* Whether an ACK that matches our CON by Message ID is its answer. A
 * refused one is ignored, and the CON goes on being retransmitted. */
static bool ack_ok(void *user, const struct ck_msg *ack)
{
  struct ck_call *call = user;
  if (ack->code == CK_CODE_EMPTY)
    return true;
  const struct ck__tok *t = call->sent_tok;
  /* RFC 7252 §5.3.2: a piggybacked response carries the request's token;
   * §5.4.1: one with a critical option we do not understand is
   * rejected. */
  if (t && ack->tkl == t->len && memcmp(ack->token, t->bytes, t->len) == 0 &&
      ck__client_understood(ack))
    return true;
  ck__trace_in(call->cl, &call->peer, ack);
  call->cl->stats.rejected++;
  return false;
}

static int build(struct ck_call *call, uint8_t *buf, size_t cap, uint8_t type,
                 uint16_t mid, const struct send_opts *so)
{
  struct ck_builder b;
  ck_builder_init(&b, buf, cap, (enum ck_type)type, so->method, mid);
  ck_builder_token(&b, so->tok->bytes, so->tok->len);
  for (unsigned i = 0; i < call->nopts; i++)
    ck_builder_opt(&b, call->opts[i].num, call->optval + call->opts[i].off,
                   call->opts[i].len);
  if (so->observe >= 0)
    ck_builder_opt_uint(&b, CK_OPT_OBSERVE, (uint32_t)so->observe);
  if (call->echo_len)
    ck_builder_opt(&b, CK_OPT_ECHO, call->echo, call->echo_len);
  const uint8_t *pl = call->payload;
  size_t plen = so->payload ? call->payload_len : 0;
  int rc = ck__call_block_opts(call, &b, so->block1, so->block2, &pl, &plen);
  if (rc < 0)
    return rc;
  ck_builder_payload(&b, pl, plen);
  return ck_builder_finish(&b);
}

static int send_msg(struct ck_call *call, const struct send_opts *so)
{
  struct ck_client *c = call->cl;
  struct ck_ctx *ctx = c->ctx;
  uint8_t buf[CK__DGRAM_MAX];
  bool con = !call->non && !call->multicast;
  uint16_t mid = ck__next_mid(ctx, &call->peer);
  int n;
  if (call->ping) {
    ck__empty_msg(buf, CK_TYPE_CON, mid);
    n = 4;
  } else {
    n = build(call, buf, sizeof buf, con ? CK_TYPE_CON : CK_TYPE_NON, mid, so);
    if (n < 0)
      return n;
  }
  call->mid = mid;
  call->sent_tok = so->tok;
  if (con) {
    if (call->con)
      ck__con_cancel(ctx, call->con);
    /* An address that is not the call's last gets one transmission
     * (client.c, "addresses"). */
    call->con = ck__con_send(ctx, call->ep, &call->peer, buf, (size_t)n,
                             ck__call_short(call) ? &c->params_short
                                                  : &c->cfg.params,
                             on_con, call);
    if (!call->con)
      return CK_ENOMEM;
    ck__con_count_into(call->con, &c->stats.retransmits);
    ck__con_filter_acks(call->con, ack_ok);
    return 0;
  }
  int rc = ck__ep_send(call->ep, &call->peer, buf, (size_t)n);
  if (rc < 0)
    return rc;
  /* A NON request has no ACK: wait as long as a CON could take
   * (MAX_TRANSMIT_WAIT), or the multicast response window; at an
   * address that is not the call's last, as long as a CON's first
   * timeout may be (client.c, "addresses"). */
  const struct ck_params *p = &c->cfg.params;
  uint64_t wait = call->multicast ? c->cfg.max_server_response_delay_ms
                  : ck__call_short(call)
                    ? (uint64_t)((double)p->ack_timeout_ms *
                                 p->ack_random_factor)
                    : ck_params_max_transmit_span(p) * 2 + p->ack_timeout_ms;
  ck__timer_start(&ctx->loop, &call->timer, wait, ck__call_on_timer);
  return 0;
}

int ck__call_transmit(struct ck_call *call)
{
  struct send_opts so = {.tok = &call->tok,
                         .method = call->method,
                         .observe = -1,
                         .payload = true};
  switch (call->state) {
  case CK__CALL_CANCELLING:
    so.observe = 1;
    so.payload = call->method == CK_FETCH;
    break;
  case CK__CALL_UPLOADING:
    so.block1 = true;
    so.observe = call->observe ? 0 : -1;
    break;
  case CK__CALL_DOWNLOADING:
    so.block2 = true;
    /* RFC 7959 §2.4: later blocks are asked for without Observe, and
     * after a notification with a token of their own (§3.4). */
    if (call->registered) {
      so.tok = &call->alt;
      so.method = call->method == CK_FETCH ? CK_FETCH : CK_GET;
    }
    so.payload = call->method == CK_FETCH;
    break;
  default:
    so.observe = call->observe ? 0 : -1;
    /* Early negotiation (§2.4): a non-default size is asked for at once. */
    so.block2 = call->explicit_block &&
                (call->method == CK_GET || call->method == CK_FETCH);
    break;
  }
  return send_msg(call, &so);
}

/* RFC 9175 §2.3: a 4.01 with Echo asks for the request once more,
 * carrying the value. It is the same request: the template with the
 * state's options, the token kept (a new Message ID tells it apart, and
 * the dedup table keeps a retransmitted 4.01 from answering it). Once in
 * a row: a second 4.01 with Echo is the answer. Returns true when the
 * request went again (or the call ended trying). */
static bool echo_again(struct ck_call *call, const struct ck_msg *m)
{
  struct ck_opt e;
  bool echo = !call->multicast && ck_msg_opt(m, CK_OPT_ECHO, &e) == 0 &&
              e.len >= 1 && e.len <= CK__ECHO_MAX;
  bool ask = echo && m->code == CK_UNAUTHORIZED && ck__call_outstanding(call);
  if (echo) {
    /* §2.3: any response's Echo goes with the next request. */
    memcpy(call->echo, e.val, e.len);
    call->echo_len = (uint8_t)e.len;
  }
  if (!ask || call->echo_retried) {
    call->echo_retried = false;
    return false;
  }
  call->echo_retried = true;
  int rc = ck__call_transmit(call);
  if (rc < 0)
    ck__call_finish(call, rc, NULL, NULL);
  return true;
}

void ck__call_response(struct ck_call *call, const struct ck_msg *m,
                       const struct ck_addr *from)
{
  struct ck_ctx *ctx = call->cl->ctx;
  call->heard = true; /* the call stays with this address */
  /* Between notifications the timer is the Max-Age one: a stale
   * notification, dropped below, must leave it running. */
  if (!call->multicast && call->state != CK__CALL_OBSERVING)
    ck__timer_stop(&ctx->loop, &call->timer);
  if (call->ping) {
    ck__call_finish(call, 0, m, from);
    return;
  }
  if (call->state == CK__CALL_CANCELLING) {
    ck__call_finish(call, CK_ECANCELED, NULL, from);
    return;
  }
  if (echo_again(call, m))
    return;
  if (call->state == CK__CALL_UPLOADING && ck__call_upload_answer(call, m))
    return;
  if (call->observe && CK_CODE_CLASS(m->code) == 2 &&
      ck_msg_opt_count(m, CK_OPT_OBSERVE) > 0 &&
      call->state != CK__CALL_DOWNLOADING &&
      !ck__call_notification(call, m))
    return;
  if (ck__call_download_answer(call, m))
    return;
  if (call->observe && call->registered) {
    ck__call_notify(call, m, from);
    return;
  }
  if (call->multicast) {
    ck__call_deliver(call, m, from, false, 0);
    call->body_len = 0;
    if (call->cancel_after != CK__CANCEL_NONE)
      ck__call_finish(call, CK_ECANCELED, NULL, NULL);
    return;
  }
  ck__call_finish(call, 0, m, from);
}

static void on_con(struct ck_ctx *ctx, void *user, int result,
                   const struct ck_msg *ack)
{
  struct ck_call *call = user;
  call->con = NULL;
  if (result == CK_ECANCELED)
    return; /* the context is closing; ck_client_free() reports it */
  if (ack) {
    ck__trace_in(call->cl, &call->peer, ack);
    call->heard = true; /* even an empty ACK binds the call to it */
  }
  if (result < 0) {
    if (call->ping && result == CK_ERESET) {
      /* RFC 7252 §4.3: RST answers a ping. */
      ck__call_finish(call, 0, NULL, &call->peer);
      return;
    }
    if (call->state == CK__CALL_CANCELLING)
      ck__call_finish(call, CK_ECANCELED, NULL, NULL);
    else
      ck__call_fail(call, result); /* perhaps on to the next address */
    return;
  }
  if (ack->code != CK_CODE_EMPTY) {
    ck__call_response(call, ack, &call->peer);
    return;
  }
  if (call->ping) {
    ck__call_finish(call, 0, ack, &call->peer);
    return;
  }
  /* §5.2.2: the answer comes later as its own message. A registered
   * observation already has its notifications: only its Max-Age timer
   * runs then. */
  if (call->state != CK__CALL_OBSERVING)
    ck__timer_start(&ctx->loop, &call->timer, ctx->exchange_lifetime,
                    ck__call_on_timer);
}

void ck__call_on_timer(struct ck__timer *t)
{
  struct ck_call *call = (struct ck_call *)t;
  if (call->multicast) {
    /* RFC 7390 §2.7: the response window has closed. */
    ck__call_finish(call, 0, NULL, NULL);
    return;
  }
  if (call->state == CK__CALL_OBSERVING) {
    /* RFC 7641 §3.3.1: Max-Age ran out without a notification. */
    call->state = CK__CALL_REREGISTERING;
    int rc = ck__call_transmit(call);
    if (rc < 0)
      ck__call_finish(call, rc, NULL, NULL);
    return;
  }
  /* No response to a NON, or no separate response after an empty ACK
   * (the latter ends the call: the address has answered). */
  ck__call_fail(call, CK_ETIMEDOUT);
}
