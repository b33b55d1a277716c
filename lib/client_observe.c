/* Observations of a call (RFC 7641): notifications kept in order,
 * re-registration when Max-Age runs out, and the proactive cancel.
 *
 * The first 2.xx with an Observe option registers the call; each later
 * one is a notification, dropped when it is older than the last (§3.4:
 * sequence numbers compared modulo 2^24, or 128 s passed). A
 * notification re-arms the call's timer to Max-Age plus a little; when
 * it fires the request goes out again (§3.3.1). A proactive cancel sends
 * the request with Observe 1 (§3.6); a reactive one forgets the call, so
 * that the next notification is answered with RST.
 *
 * Re-registration is how an observer survives a server that restarted
 * and forgot it: no notification comes, Max-Age runs out, and the
 * request goes out again. The answer to it is the current state and is
 * taken as fresh whatever its sequence number, for a restarted server
 * numbers afresh (§3.4 orders the notifications of one registration).
 * A re-registration that gets no answer at all (the server is still
 * down: a timeout, an ICMP port unreachable) is tried again after 2, 4,
 * 8, 16 and 32 s before the call ends with that error; an error
 * response to it ends the call with that response (§3.2).
 */
#include "client_call.h"

enum {
  /* RFC 7641 §3.3.1: re-register a little after Max-Age runs out (as
   * Californium does), so a notification sent just in time still
   * arrives first. */
  REREGISTER_SLACK_MS = 2000,
  /* Tries after a re-registration without an answer: SLACK << n. */
  REREGISTER_RETRIES = 5,
};

/* RFC 7641 §3.4: is notification v (received at t) newer than the last? */
static bool fresher(const struct ck_call *call, uint32_t v, uint64_t t)
{
  if (!call->registered)
    return true;
  uint32_t v1 = call->seq;
  return (v1 < v && v - v1 < (1u << 23)) || (v1 > v && v1 - v > (1u << 23)) ||
         t > call->seq_time + 128000;
}

static void arm_reregister(struct ck_call *call, const struct ck_msg *m)
{
  uint32_t max_age = 60; /* RFC 7252 §5.10.5: the default */
  ck_msg_opt_uint(m, CK_OPT_MAX_AGE, &max_age);
  ck__timer_start(&call->cl->ctx->loop, &call->timer,
                  (uint64_t)max_age * 1000 + REREGISTER_SLACK_MS,
                  ck__call_on_timer);
}

bool ck__call_notification(struct ck_call *call, const struct ck_msg *m)
{
  struct ck_client *c = call->cl;
  uint32_t seq = 0;
  ck_msg_opt_uint(m, CK_OPT_OBSERVE, &seq);
  uint64_t now = ck__loop_now(&c->ctx->loop);
  /* The answer to a re-registration (its CON acknowledged, or a NON) is
   * the resource's state now, from a registration that may be new. */
  bool rereg = call->state == CK__CALL_REREGISTERING && !call->con;
  if (!rereg && !fresher(call, seq, now)) {
    c->stats.notifications_stale++;
    return false;
  }
  bool first = !call->registered;
  call->registered = true;
  call->seq = seq;
  call->seq_time = now;
  call->state = CK__CALL_OBSERVING;
  call->rereg_fails = 0;
  if (!first)
    c->stats.notifications++;
  arm_reregister(call, m);
  call->pending_seq = seq;
  call->body_len = 0;
  /* A registered observation no longer counts against NSTART. */
  if (first)
    ck__client_start_queued(c, &call->peer);
  return true;
}

void ck__call_notify(struct ck_call *call, const struct ck_msg *m,
                     const struct ck_addr *from)
{
  if (CK_CODE_CLASS(m->code) != 2) {
    /* RFC 7641 §3.2: an error ends the observation. */
    ck__call_finish(call, 0, m, from);
    return;
  }
  ck__call_deliver(call, m, from, false, 0);
  call->pending_seq = -1;
  call->body_len = 0;
  if (call->cancel_after != CK__CANCEL_NONE) {
    bool proactive = call->cancel_after == CK__CANCEL_PROACTIVE;
    call->cancel_after = CK__CANCEL_NONE;
    ck_call_cancel(call, proactive);
  }
}

bool ck__call_reregister_later(struct ck_call *call, int err)
{
  if (call->state != CK__CALL_REREGISTERING ||
      (err != CK_ETIMEDOUT && err != CK_EUNREACH && err != CK_EDTLS_TIMEOUT) ||
      call->rereg_fails >= REREGISTER_RETRIES)
    return false;
  struct ck_ctx *ctx = call->cl->ctx;
  if (call->con) {
    ck__con_cancel(ctx, call->con);
    call->con = NULL;
  }
  /* Back to waiting: the timer sends the registration again. */
  call->state = CK__CALL_OBSERVING;
  ck__timer_start(&ctx->loop, &call->timer,
                  (uint64_t)REREGISTER_SLACK_MS << call->rereg_fails,
                  ck__call_on_timer);
  call->rereg_fails++;
  return true;
}

int ck__call_deregister(struct ck_call *call)
{
  call->state = CK__CALL_CANCELLING;
  ck__timer_stop(&call->cl->ctx->loop, &call->timer);
  return ck__call_transmit(call);
}
