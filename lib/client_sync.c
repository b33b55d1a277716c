/* The blocking form of a call: ck_client_do() sends a request and runs
 * the context's loop until its final callback, which copies the answer
 * into a ck_client_result the caller owns.
 *
 * The callback writes into a waiter on ck_client_do()'s stack, so the
 * call must never outlive that frame: when the loop fails, the call is
 * cancelled before returning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_call.h"

struct waiter {
  bool done;
  struct ck_client_result *out;
};

static void on_result(struct ck_call *call, const struct ck_client_response *r,
                      void *user)
{
  (void)call;
  struct waiter *w = user;
  struct ck_client_result *out = w->out;
  if (!r->final)
    return;
  w->done = true;
  out->err = r->err;
  out->code = r->code;
  out->rtt_ms = r->rtt_ms;
  out->security = r->security;
  snprintf(out->peer_identity, sizeof out->peer_identity, "%s",
           r->peer_identity ? r->peer_identity : "");
  if (r->peer)
    out->peer = *r->peer;
  if (r->msg) {
    out->raw = malloc(r->msg->len);
    if (out->raw) {
      memcpy(out->raw, r->msg->data, r->msg->len);
      out->has_msg = ck_msg_parse(&out->msg, out->raw, r->msg->len) == 0;
    } else {
      out->err = CK_ENOMEM;
    }
  }
  if (r->body_len) {
    out->body = malloc(r->body_len);
    if (out->body) {
      memcpy(out->body, r->body, r->body_len);
      out->body_len = r->body_len;
    } else {
      out->err = CK_ENOMEM;
    }
  }
}

int ck_client_do(struct ck_client *c, const struct ck_client_request *req,
                 struct ck_client_result *out)
{
  if (!out)
    return CK_EINVAL;
  memset(out, 0, sizeof *out);
  if (!c)
    return out->err = CK_EINVAL;
  if (req && req->observe)
    return out->err = CK_EINVAL;
  struct waiter w = {.done = false, .out = out};
  struct ck_call *call;
  int rc = ck_client_send(c, req, on_result, &w, &call);
  if (rc < 0)
    return out->err = rc;
  /* Bounded: every call ends by its own timers at the latest. */
  while (!w.done) {
    rc = ck_ctx_process(c->ctx, -1);
    if (rc < 0 && !w.done) {
      /* The call must not call back into this frame once it is gone:
       * cancel it now (its final callback lands here) and report the
       * loop's error instead. */
      ck_call_cancel(call, false);
      ck_client_result_free(out);
      return out->err = rc;
    }
  }
  return out->err;
}

void ck_client_result_free(struct ck_client_result *r)
{
  if (!r)
    return;
  free(r->raw);
  free(r->body);
  r->raw = NULL;
  r->body = NULL;
  r->has_msg = false;
  r->body_len = 0;
}
