/* Discover a server's resources: GET /.well-known/core and read the
 * links (RFC 6690), as Qt CoAP's QCoapClient::discover() does. Prints one
 * line per link: its target, rt, ct, and "obs" when it is observable.
 *
 *   ./example_discover coap://127.0.0.1
 */
#include <stdio.h>
#include <string.h>

#include <coapkit/coapkit.h>

/* Prints " name=value", or " name=-" when the link lacks the parameter. */
static void print_param(const struct ck_link *link, const char *name)
{
  const struct ck_link_param *p = ck_link_param(link, name);
  if (p && p->val)
    printf(" %s=%.*s", name, (int)p->val_len, p->val);
  else
    printf(" %s=-", name);
}

int main(int argc, char **argv)
{
  const char *base = argc > 1 ? argv[1] : "coap://127.0.0.1";
  char uri[512];
  /* Discovery lives at a well-known path on the server (RFC 6690 §4). */
  snprintf(uri, sizeof uri, "%s/.well-known/core", base);

  struct ck_ctx *ctx;
  struct ck_client *client;
  if (ck_ctx_new(NULL, &ctx) < 0 || ck_client_new(ctx, NULL, &client) < 0)
    return 1;
  struct ck_client_request req;
  ck_client_request_init(&req, CK_GET, uri);
  req.accept = CK_CF_LINK_FORMAT;

  struct ck_client_result res;
  int rc = ck_client_do(client, &req, &res);
  if (rc < 0) {
    fprintf(stderr, "GET %s: %s\n", uri, ck_strerror(rc));
  } else if (res.code != CK_CONTENT) {
    char code[40];
    ck_code_format(code, sizeof code, res.code);
    fprintf(stderr, "GET %s: %s\n", uri, code);
    rc = 1;
  } else {
    /* The reader hands out views into res.body: nothing is copied, and
     * the links stay valid as long as the result does. */
    struct ck_link_reader r;
    struct ck_link link;
    ck_link_reader_init(&r, (const char *)res.body, res.body_len);
    while ((rc = ck_link_next(&r, &link)) == 1) {
      printf("<%.*s>", (int)link.target_len, link.target);
      print_param(&link, "rt");
      print_param(&link, "ct");
      printf("%s\n", ck_link_param(&link, "obs") ? " obs" : "");
    }
    if (rc < 0)
      fprintf(stderr, "%s: %s\n", uri, ck_strerror(rc));
  }
  ck_client_result_free(&res);
  ck_ctx_free(ctx); /* also frees the client */
  return rc != 0 ? 1 : 0;
}
