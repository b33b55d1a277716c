/* PUT a payload to a resource, as Qt CoAP's documentation shows with
 * QCoapClient::put(url, data), in C with coapkit.
 *
 *   ./example_put coap://127.0.0.1/resource "Some payload"
 */
#include <stdio.h>
#include <string.h>

#include <coapkit/coapkit.h>

int main(int argc, char **argv)
{
  const char *uri = argc > 1 ? argv[1] : "coap://127.0.0.1/resource";
  const char *payload = argc > 2 ? argv[2] : "Some payload";
  struct ck_ctx *ctx;
  struct ck_client *client;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, NULL, &client) < 0)
    return 1;

  /* The payload is copied when the request is sent; a large one goes
   * block-wise (Block1) without anything more to do here. */
  struct ck_client_request req;
  ck_client_request_init(&req, CK_PUT, uri);
  req.payload = payload;
  req.payload_len = strlen(payload);
  req.content_format = CK_CF_TEXT_PLAIN;

  struct ck_client_result res;
  int rc = ck_client_do(client, &req, &res);
  if (rc < 0) {
    fprintf(stderr, "PUT %s: %s\n", uri, ck_strerror(rc));
  } else {
    /* The server's answer, e.g. "2.04 Changed", is data, not an error. */
    char code[40];
    ck_code_format(code, sizeof code, res.code);
    printf("%s\n", code);
  }
  ck_client_result_free(&res);
  ck_ctx_free(ctx); /* also frees the client */
  return rc < 0 ? 1 : 0;
}
