/* GET a resource and print its payload: the first thing Qt CoAP's
 * documentation shows (QCoapClient::get), in C with coapkit.
 *
 *   ./example_get coap://coap.me/hello
 */
#include <stdio.h>

#include <coapkit/coapkit.h>

int main(int argc, char **argv)
{
  const char *uri = argc > 1 ? argv[1] : "coap://127.0.0.1/hello";
  struct ck_ctx *ctx;
  struct ck_client *client;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, NULL, &client) < 0)
    return 1;

  /* A request is a small struct; ck_client_request_init fills the defaults. */
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);

  /* The blocking form runs the context's loop until the answer comes. */
  struct ck_client_result res;
  int rc = ck_client_do(client, &req, &res);
  if (rc < 0) {
    fprintf(stderr, "GET %s: %s\n", uri, ck_strerror(rc));
  } else {
    char code[40];
    ck_code_format(code, sizeof code, res.code);
    printf("%s\n%.*s\n", code, (int)res.body_len, (const char *)res.body);
  }
  ck_client_result_free(&res);
  ck_ctx_free(ctx); /* also frees the client */
  return rc < 0 ? 1 : 0;
}
