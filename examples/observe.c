/* Observe a resource, print a few notifications, then cancel: Qt CoAP's
 * QCoapClient::observe() and cancelObserve(), in C with coapkit.
 *
 *   ./example_observe coap://127.0.0.1/time 3
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <coapkit/coapkit.h>

struct state {
  struct ck_ctx *ctx;
  int left; /* notifications still to print */
  bool cancelled;
};

/* Called for every notification, and once more, with final set, when the
 * observation has ended. */
static void on_notify(struct ck_call *call, const struct ck_client_response *resp,
                      void *user)
{
  struct state *s = user;
  char code[40];
  if (resp->final) {
    /* A cancel we asked for ends with CK_ECANCELED; an error code (or a
     * response without Observe) means the server did not observe. */
    s->cancelled = resp->err == CK_ECANCELED;
    if (s->cancelled) {
      printf("cancelled\n");
    } else if (resp->err < 0) {
      fprintf(stderr, "observe: %s\n", ck_strerror(resp->err));
    } else {
      ck_code_format(code, sizeof code, resp->code);
      fprintf(stderr, "not observed: %s\n", code);
    }
    ck_stop(s->ctx);
    return;
  }
  ck_code_format(code, sizeof code, resp->code);
  printf("notification %u: %s %.*s\n", (unsigned)resp->observe, code,
         (int)resp->body_len, (const char *)resp->body);
  fflush(stdout);
  /* Proactive cancel: tell the server with GET Observe=1 (RFC 7641 §3.6)
   * instead of waiting for the next notification to answer it with RST.
   * Cancelling from the callback is allowed; it takes effect after it. */
  if (--s->left == 0)
    ck_call_cancel(call, true);
}

int main(int argc, char **argv)
{
  const char *uri = argc > 1 ? argv[1] : "coap://127.0.0.1/time";
  int count = argc > 2 ? atoi(argv[2]) : 3;
  struct state s = {.left = count > 0 ? count : 1};
  struct ck_client *client;
  if (ck_ctx_new(NULL, &s.ctx) < 0 || ck_client_new(s.ctx, NULL, &client) < 0)
    return 1;

  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  req.observe = true;

  /* The asynchronous form: the callback fires for each notification, and
   * ck_run() runs the loop until the callback calls ck_stop(). */
  int rc = ck_client_send(client, &req, on_notify, &s, NULL);
  if (rc < 0)
    fprintf(stderr, "observe %s: %s\n", uri, ck_strerror(rc));
  else
    rc = ck_run(s.ctx);
  ck_ctx_free(s.ctx); /* also frees the client */
  return rc < 0 || !s.cancelled ? 1 : 0;
}
